// Argument handling the sandbox commands (run, exec, ps, kill, rm) share:
// where hako's options end and the container's command begins, -e and -u
// values, and the configuration they start from.
import path from 'node:path';
import type { ParseArgsConfig } from 'node:util';
import { loadConfig, type LoadedConfig } from '../config/load.js';
import { HakoError } from '../errors.js';
import type { Volume } from '../sandbox/oci-spec.js';

type Options = NonNullable<ParseArgsConfig['options']>;

/** --config FILE, accepted by every command that acts on VMs, templates or sandboxes. */
export const CONFIG_OPTION = { config: { type: 'string' } } as const;

/**
 * Splits `argv` into hako's options and the operands after them: everything
 * from the first argument that is neither an option nor an option's value
 * (so a command's own options stay its own, as in `hako run ls -l`), or
 * everything after `--`.
 */
export function splitOperands(argv: string[], options: Options): { options: string[]; operands: string[] } {
  const takesValue = (name: string | undefined) => name !== undefined && options[name]?.type === 'string';
  const longName = (short: string) => Object.keys(options).find((name) => options[name]!.short === short);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') return { options: argv.slice(0, i), operands: argv.slice(i + 1) };
    if (arg.startsWith('--')) {
      if (!arg.includes('=') && takesValue(arg.slice(2))) i++;
    } else if (arg.startsWith('-') && arg.length > 1) {
      // A cluster of short options (-it); one that takes a value takes the rest of it, or the next argument.
      for (let j = 1; j < arg.length; j++) {
        if (takesValue(longName(arg[j]!))) {
          if (j === arg.length - 1) i++;
          break;
        }
      }
    } else {
      return { options: argv.slice(0, i), operands: argv.slice(i) };
    }
  }
  return { options: argv, operands: [] };
}

/** -e values: NAME=VALUE, or NAME for this process's value of NAME (skipped when it has none), as docker does. */
export function envOptions(values: string[] | undefined, env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const item of values ?? []) {
    const eq = item.indexOf('=');
    const name = eq < 0 ? item : item.slice(0, eq);
    if (!/^[^=\0]+$/.test(name) || item.includes('\0')) {
      throw new HakoError('INVALID_ARGUMENT', `-e expects NAME=VALUE or NAME, got ${JSON.stringify(item)}`);
    }
    const value = eq < 0 ? env[name] : item.slice(eq + 1);
    if (value !== undefined) vars[name] = value;
  }
  return vars;
}

/** "K=V" strings (an image's Env) as a map; later ones win. */
export function envList(list: string[]): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const item of list) {
    const eq = item.indexOf('=');
    if (eq > 0) vars[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return vars;
}

/** -v HOST:DIR[:ro] (HOST made absolute; both checked again when mounted). */
export function volumeOptions(list: string[] = []): Volume[] {
  return list.map((item) => {
    const m = /^([^:]+):(\/[^:]*)(?::(ro|rw))?$/.exec(item);
    if (!m) throw new HakoError('INVALID_ARGUMENT', `-v expects HOST:DIR[:ro|:rw] with DIR absolute, got ${JSON.stringify(item)}`);
    return { source: path.resolve(m[1]!), destination: m[2]!, readOnly: m[3] === 'ro' };
  });
}

/** -w: an absolute path in the container. */
export function workdirOption(value: string | undefined): string | undefined {
  if (value !== undefined && !value.startsWith('/')) {
    throw new HakoError('INVALID_ARGUMENT', `--workdir expects an absolute path, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** The configuration, from --config FILE when given. */
export function commandConfig(configFile: string | undefined): LoadedConfig {
  if (configFile === '') throw new HakoError('INVALID_ARGUMENT', '--config expects a file path, got ""');
  return loadConfig(configFile === undefined ? {} : { path: configFile });
}

export { stateDir } from '../config/settings.js';
