// Loads hako's configuration: the base file, then the drop-ins in config.d/
// beside it in file-name order, over the defaults in schema.ts. Tables merge
// key by key and a later value replaces an earlier one, arrays included, so
// every key ends with one value and the place that set it (its provenance).
// A missing base file or config.d/ means defaults, except that a base file
// named with --config (LoadOptions.path) must exist, so a typo there is not
// silently ignored. A file that does not parse, an unknown key or a value of
// the wrong type is a ConfigError naming the file, line and key.
import fs from 'node:fs';
import path from 'node:path';
import { parse, TomlError } from 'smol-toml';
import { ConfigError } from './errors.js';
import { scanKeyLines } from './lines.js';
import { Invalid, leaves, SCHEMA, tomlType, type ConfigKey, type ConfigValues, type DefaultContext, type Table } from './schema.js';

export const DEFAULT_CONFIG_PATH = '/etc/hako/configuration.toml';
/** The drop-in directory, beside the base file. */
export const DROP_IN_DIR = 'config.d';

/** Where a key's value came from. `line` is undefined only if the key's line could not be found (lines.ts). */
export type Source = { kind: 'default' } | { kind: 'file'; file: string; line: number | undefined };

export interface LoadedConfig {
  values: ConfigValues;
  provenance: Record<ConfigKey, Source>;
  /** The base file, whether or not it exists. */
  base: string;
  /** The files read, in the order applied. */
  files: string[];
}

export interface LoadOptions {
  /** The base file (e.g. from --config), which must exist; else $HAKO_CONFIG, else DEFAULT_CONFIG_PATH, either of which may be missing. */
  path?: string;
  /** For HAKO_CONFIG and the defaults that depend on the environment (default process.env). */
  env?: NodeJS.ProcessEnv;
}

type Flat = Map<string, { value: unknown; source: Source }>;

export function loadConfig(options: LoadOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const base = path.resolve(options.path ?? (env.HAKO_CONFIG || DEFAULT_CONFIG_PATH));
  const files: string[] = [];
  const flat: Flat = new Map();

  const baseText = readOptional(base, options.path !== undefined);
  if (baseText !== undefined) {
    applyFile(base, baseText, env, flat);
    files.push(base);
  }
  for (const file of dropIns(path.join(path.dirname(base), DROP_IN_DIR))) {
    applyFile(file, read(file), env, flat);
    files.push(file);
  }

  // Defaults last, in schema order, so a default may depend on keys above it whatever set them.
  const values: Record<string, unknown> = {};
  const provenance: Record<string, Source> = {};
  const resolved: Record<string, unknown> = {};
  for (const { key, leaf } of leaves()) {
    const dotted = key.join('.');
    const set = flat.get(dotted);
    const value = set ? set.value
      : typeof leaf.default === 'function' ? (leaf.default as (ctx: DefaultContext) => unknown)({ env, values: resolved }) : leaf.default;
    resolved[dotted] = value;
    provenance[dotted] = set ? set.source : { kind: 'default' };
    let table = values;
    for (const name of key.slice(0, -1)) table = (table[name] ??= {}) as Record<string, unknown>;
    // A copy, so that a caller changing its arrays cannot change the schema's defaults.
    table[key.at(-1)!] = Array.isArray(value) ? [...value] : value;
  }
  return { values: values as ConfigValues, provenance: provenance as Record<ConfigKey, Source>, base, files };
}

function read(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(file, undefined, undefined, `cannot read: ${(e as Error).message}`, { cause: e });
  }
}

/** The base file's text, or undefined when it does not exist and need not. */
function readOptional(file: string, mustExist: boolean): string | undefined {
  if (fs.existsSync(file)) return read(file);
  if (mustExist) throw new ConfigError(file, undefined, undefined, 'no such configuration file');
  return undefined;
}

/** The *.toml files in `dir` in file-name order (dot files skipped, like a shell glob); none if `dir` is missing. */
function dropIns(dir: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new ConfigError(dir, undefined, undefined, `cannot list drop-in directory: ${(e as Error).message}`, { cause: e });
  }
  return names.filter((n) => n.endsWith('.toml') && !n.startsWith('.')).sort().map((n) => path.join(dir, n));
}

const isTable = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);

function applyFile(file: string, text: string, env: NodeJS.ProcessEnv, flat: Flat): void {
  const lines = scanKeyLines(text);
  let doc: Record<string, unknown>;
  try {
    // Integers as BigInt so that 2 and 2.0 stay apart: schema.ts wants integers where it says so.
    doc = parse(text, { integersAsBigInt: true, unsafeKeyBehaviour: 'keep' });
  } catch (e) {
    if (!(e instanceof TomlError)) throw e;
    const problem = e.message.replace(/^Invalid TOML document: /, '').split('\n')[0];
    throw new ConfigError(file, e.line, lines.keyAt(e.line)?.join('.'), `invalid TOML: ${problem}`, { cause: e });
  }

  const fail = (key: string[], problem: string): never => {
    throw new ConfigError(file, lines.lineOf(key), key.join('.'), problem);
  };
  const walk = (table: Record<string, unknown>, schema: Table, prefix: string[]) => {
    for (const [name, value] of Object.entries(table)) {
      const key = [...prefix, name];
      const entry = Object.hasOwn(schema.keys, name) ? schema.keys[name]! : undefined;
      if (!entry) {
        const where = prefix.length === 0 ? 'the top level has the tables' : `[${prefix.join('.')}] has`;
        fail(key, `unknown key (${where} ${Object.keys(schema.keys).join(', ')})`);
      } else if (entry.kind === 'table') {
        if (!isTable(value)) fail(key, `expected a table ([${key.join('.')}]), got ${tomlType(value)}`);
        walk(value as Record<string, unknown>, entry, key);
      } else {
        const checked = entry.check(value, env);
        if (checked instanceof Invalid) fail(key, checked.reason);
        flat.set(key.join('.'), { value: checked, source: { kind: 'file', file, line: lines.lineOf(key) } });
      }
    }
  };
  walk(doc, SCHEMA, []);
}
