// What hako prints about itself on standard error, as logging.level and
// logging.trace say: "hako: " lines at a severity, and timing traces.
import type { LoadedConfig } from './load.js';
import { LOG_LEVELS, TRACE_AREAS, type LogLevel, type TraceArea } from './schema.js';

export type Logger = Record<LogLevel, (line: string) => void>;

/** A logger printing "hako: LINE" for messages at logging.level or more severe. */
export function logger(config: LoadedConfig, write: (text: string) => void = (text) => process.stderr.write(text)): Logger {
  const least = LOG_LEVELS.indexOf(config.values.logging.level);
  const at = (level: LogLevel) => (line: string) => {
    if (LOG_LEVELS.indexOf(level) <= least) write(`hako: ${line}\n`);
  };
  return { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') };
}

/** The traces to print: logging.trace and those $HAKO_TRACE names (comma-separated; unknown areas ignored). */
export function traceAreas(config: LoadedConfig, env: NodeJS.ProcessEnv = process.env): TraceArea[] {
  const fromEnv = (env.HAKO_TRACE ?? '').split(',').filter((a): a is TraceArea => (TRACE_AREAS as readonly string[]).includes(a));
  return [...new Set([...config.values.logging.trace, ...fromEnv])];
}

/** At debug level: which files the configuration came from. */
export function logConfigFiles(config: LoadedConfig, log: Logger): void {
  log.debug(`configuration: ${config.files.join(', ') || `defaults (${config.base} not found)`}`);
}
