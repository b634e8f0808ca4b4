// Every configuration key in one place: its TOML type, its default and what it
// means. The loader (load.ts) checks files against this, `hako config default`
// prints it as the documented default file (render.ts), and the value types the
// rest of host/ sees are derived from it, so a key is added here and nowhere else.
// The schema is two levels deep: tables ([resources]) of keys (vcpus). Keys
// are snake_case in files and in the loaded values alike, so one name is used
// everywhere (messages, provenance, `hako config show`).
import os from 'node:os';
import path from 'node:path';
import { CPU_TEMPLATES } from '../cpu/template.js';
import { FS_CACHE_MODES, MAX_MEMORY_MIB, MIN_MEMORY_MIB } from '../vmm/config.js';

/** What a default may depend on: the environment, and keys defined above it in SCHEMA order. */
export interface DefaultContext {
  env: NodeJS.ProcessEnv;
  values: Record<string, unknown>;
}

/** A key's value: `check` turns a parsed TOML value into T or returns what was wrong with it. */
export interface Leaf<T> {
  kind: 'leaf';
  doc: string;
  /** A value, or a function of the environment and of keys above (documented by `defaultDoc`). */
  default: T | ((ctx: DefaultContext) => T);
  /** When `default` is a function: what it is, and the value it has with no environment variables set. */
  defaultDoc?: { note: string; value: T };
  check(value: unknown, env: NodeJS.ProcessEnv): T | Invalid;
}

export interface Table {
  kind: 'table';
  doc: string;
  keys: Record<string, Leaf<unknown> | Table>;
}

/** Why a value was rejected, e.g. "expected an integer, got a string". */
export class Invalid {
  constructor(readonly reason: string) {}
}

/** How TOML names the type of a parsed value (smol-toml with integers as BigInt). */
export function tomlType(value: unknown): string {
  if (typeof value === 'bigint') return 'an integer';
  if (typeof value === 'number') return Number.isFinite(value) ? 'a float' : 'a float (inf or nan)';
  if (typeof value === 'string') return 'a string';
  if (typeof value === 'boolean') return 'a boolean';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Date) return 'a date-time';
  return 'a table';
}

const got = (value: unknown) =>
  typeof value === 'string' ? `a string (${JSON.stringify(value)})`
    : typeof value === 'bigint' || typeof value === 'number' || typeof value === 'boolean' ? `${tomlType(value)} (${value})`
      : tomlType(value);

function integer(doc: string, dflt: number, min: number, max = Number.MAX_SAFE_INTEGER): Leaf<number> {
  return {
    kind: 'leaf', doc, default: dflt,
    check(value) {
      if (typeof value !== 'bigint') return new Invalid(`expected an integer, got ${got(value)}`);
      if (value < BigInt(min) || value > BigInt(max)) {
        return new Invalid(max === Number.MAX_SAFE_INTEGER ? `must be at least ${min}, got ${value}` : `must be from ${min} to ${max}, got ${value}`);
      }
      return Number(value);
    },
  };
}

function boolean(doc: string, dflt: boolean): Leaf<boolean> {
  return { kind: 'leaf', doc, default: dflt, check: (value) => typeof value === 'boolean' ? value : new Invalid(`expected a boolean (true or false), got ${got(value)}`) };
}

function oneOf<const T extends string>(doc: string, choices: readonly T[], dflt: NoInfer<T>): Leaf<T> {
  const list = choices.map((c) => JSON.stringify(c)).join(', ');
  return {
    kind: 'leaf', doc: `${doc} One of ${list}.`, default: dflt,
    check(value) {
      if (typeof value !== 'string') return new Invalid(`expected a string, one of ${list}, got ${got(value)}`);
      return choices.includes(value as T) ? value as T : new Invalid(`must be one of ${list}, got ${JSON.stringify(value)}`);
    },
  };
}

function text(doc: string, dflt: string): Leaf<string> {
  return {
    kind: 'leaf', doc, default: dflt,
    check(value) {
      if (typeof value !== 'string') return new Invalid(`expected a string, got ${got(value)}`);
      return value.includes('\0') ? new Invalid('must not contain NUL characters') : value;
    },
  };
}

/** "~/x" is $HOME/x; other paths must be absolute, since a relative one would depend on the caller's directory. */
function expandHome(p: string, env: NodeJS.ProcessEnv): string {
  return p === '~' || p.startsWith('~/') ? path.join(env.HOME || os.homedir(), p.slice(1)) : p;
}

/** A file or directory path; `optional` allows "" (meaning: see the key's doc). */
function filePath(doc: string, dflt: string | ((ctx: DefaultContext) => string),
  opts: { optional?: boolean; defaultDoc?: { note: string; value: string } } = {}): Leaf<string> {
  const leaf: Leaf<string> = {
    kind: 'leaf', doc, default: dflt,
    check(value, env) {
      if (typeof value !== 'string') return new Invalid(`expected a path (a string), got ${got(value)}`);
      if (value === '' && opts.optional) return value;
      if (value.includes('\0')) return new Invalid('must not contain NUL characters');
      const expanded = expandHome(value, env);
      return path.isAbsolute(expanded) ? path.normalize(expanded) : new Invalid(`must be an absolute path or start with ~/, got ${JSON.stringify(value)}`);
    },
  };
  if (opts.defaultDoc !== undefined) leaf.defaultDoc = opts.defaultDoc;
  return leaf;
}

function stringList<const T extends string>(doc: string, choices: readonly T[]): Leaf<T[]> {
  const list = choices.map((c) => JSON.stringify(c)).join(', ');
  return {
    kind: 'leaf', doc: `${doc} Each one of ${list}.`, default: [],
    check(value) {
      if (!Array.isArray(value)) return new Invalid(`expected an array of strings, got ${got(value)}`);
      for (const [i, item] of value.entries()) {
        if (!choices.includes(item as T)) {
          return new Invalid(`item ${i} must be one of ${list}, got ${typeof item === 'string' ? JSON.stringify(item) : got(item)}`);
        }
      }
      return value as T[];
    },
  };
}

const table = <K extends Table['keys']>(doc: string, keys: K) => ({ kind: 'table' as const, doc, keys });

/** The areas HAKO_TRACE knows (host/vmm/vm.ts). */
export const TRACE_AREAS = ['startup'] as const;
export type TraceArea = typeof TRACE_AREAS[number];

/** Message severities, most severe first. */
export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = typeof LOG_LEVELS[number];

/** The hako cache root guest/build.sh and the template and image caches share. */
function defaultCacheDir({ env }: DefaultContext): string {
  return env.HAKO_CACHE_DIR || path.join(env.XDG_CACHE_HOME || path.join(env.HOME || os.homedir(), '.cache'), 'hako');
}

export const SCHEMA = table('', {
  hypervisor: table('The hypervisor: KVM, through /dev/kvm.', {
    pvm: oneOf('Whether the host KVM is kvm_pvm (pagetable-based virtualization), which emulates guest kernel '
      + 'code, so hako adds workarounds to the guest\'s command line and CPU template: "auto" detects it from '
      + '/sys/module/kvm_pvm.',
    ['auto', 'on', 'off'], 'auto'),
    cpu_template: oneOf('The CPUID features the guest sees: "host" passes through what KVM supports, "compatible" '
      + 'also hides those the PVM emulator cannot execute; "auto" is compatible on PVM hosts and host elsewhere. '
      + 'Templates have auto\'s, so with another one \'hako boot\' cold-boots and sandboxes cannot start.',
    ['auto', ...CPU_TEMPLATES], 'auto'),
  }),
  guest: table('What the VM boots. Another guest than the bundled one applies to \'hako boot\' only, which '
    + 'then cold-boots it; sandboxes (hako run, the Node API) run the bundled guest, whose agent runs their containers.', {
    kernel: filePath('The kernel: an ELF vmlinux with a PVH entry, or a bzImage. "" boots the bundled guest that guest/ builds.', '', { optional: true }),
    initramfs: filePath('The initramfs. "" means the bundled guest\'s with the bundled kernel, and none with another kernel.', '', { optional: true }),
    cmdline: text('The kernel command line; hako appends the options its platform needs. "" means the bundled '
      + 'guest\'s with the bundled kernel, and "console=ttyS0 reboot=k panic=-1" with another kernel.', ''),
    rng: boolean('Give the guest a virtio-rng device fed from the host\'s getrandom.', true),
  }),
  resources: table('The size of each VM.', {
    vcpus: integer('Number of vCPUs (at most what the host\'s KVM allows).', 1, 1),
    memory_mib: integer(`Guest RAM in MiB, ${MIN_MEMORY_MIB} to ${MAX_MEMORY_MIB}.`, 256, MIN_MEMORY_MIB, MAX_MEMORY_MIB),
  }),
  virtiofs: table('Host directories shared with the guest (hako boot --share, hako run --rootfs DIR and -v).', {
    cache: oneOf('How long the guest may cache what it learnt of a shared directory: "none" asks the host every '
      + 'time, "auto" trusts names and attributes for a second and drops a file\'s cached data when it is opened, '
      + '"always" trusts them for a day and keeps file data (only for directories nothing but this guest changes). '
      + 'Templates are made with it, so changing it makes new ones.',
    FS_CACHE_MODES, 'auto'),
  }),
  paths: table('Where hako keeps its files.', {
    state_dir: filePath('Runtime state of running VMs (sockets, pid files); lost at reboot. $HAKO_STATE_DIR, '
      + 'when set, overrides it.', '/run/hako'),
    cache_dir: filePath('Caches that can be rebuilt: guest builds, disk images, VM templates. $HAKO_CACHE_DIR, '
      + 'when set, overrides it (and templates.cache_dir).', defaultCacheDir,
      { defaultDoc: { note: '$XDG_CACHE_HOME/hako if set, else ~/.cache/hako', value: '~/.cache/hako' } }),
  }),
  templates: table('VM templates: snapshots of the bundled guest taken once its init is up, which VMs start as clones of.', {
    enabled: boolean('Start the bundled guest as a clone of a template (made by one cold boot when missing) '
      + 'instead of cold-booting it each time. false is \'hako boot --no-template\'; sandboxes need templates.', true),
    cache_dir: filePath('Where templates are kept.', ({ values }) => path.join(values['paths.cache_dir'] as string, 'templates'),
      { defaultDoc: { note: 'the templates directory in paths.cache_dir', value: '~/.cache/hako/templates' } }),
  }),
  logging: table('What hako prints about itself on standard error.', {
    level: oneOf('The least severe messages printed ("info": progress such as making a template; "debug": '
      + 'also the configuration files read).', LOG_LEVELS, 'info'),
    trace: stringList('Timing traces to print, besides those $HAKO_TRACE names (comma-separated).', TRACE_AREAS),
  }),
});

type ValuesOf<T extends Table> = {
  [K in keyof T['keys']]: T['keys'][K] extends Leaf<infer V> ? V : T['keys'][K] extends Table ? ValuesOf<T['keys'][K]> : never;
};

type KeysOf<T extends Table, P extends string = ''> = {
  [K in keyof T['keys'] & string]: T['keys'][K] extends Table ? KeysOf<T['keys'][K], `${P}${K}.`> : `${P}${K}`;
}[keyof T['keys'] & string];

/** The loaded configuration, e.g. `values.resources.memory_mib`. */
export type ConfigValues = ValuesOf<typeof SCHEMA>;
/** A dotted key, e.g. "resources.memory_mib". */
export type ConfigKey = KeysOf<typeof SCHEMA>;

/** Every key with its schema entry, in schema order. */
export function leaves(t: Table = SCHEMA, prefix: string[] = []): { key: string[]; leaf: Leaf<unknown> }[] {
  return Object.entries(t.keys).flatMap(([name, entry]) =>
    entry.kind === 'leaf' ? [{ key: [...prefix, name], leaf: entry }] : leaves(entry, [...prefix, name]));
}
