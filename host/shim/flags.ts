// The command line containerd gives a runtime v2 shim, in Go's flag syntax.

export interface Flags {
  namespace: string;
  address: string;
  publishBinary: string;
  id: string;
  bundle: string;
  socket: string;
  debug: boolean;
  action: string;
}

/** Go's flag syntax as containerd uses it: `-name value` or `-name=value`, booleans alone, then the action. */
export function parseFlags(argv: string[]): Flags {
  const flags: Flags = { namespace: '', address: '', publishBinary: '', id: '', bundle: '', socket: '', debug: false, action: '' };
  const names: Record<string, keyof Flags> = {
    namespace: 'namespace', address: 'address', 'publish-binary': 'publishBinary', id: 'id', bundle: 'bundle', socket: 'socket',
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const m = /^--?([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (m === null) {
      flags.action = arg;
      continue;
    }
    const [, name, inline] = m as unknown as [string, string, string | undefined];
    if (name === 'debug') {
      flags.debug = inline === undefined || inline === 'true';
      continue;
    }
    const key = names[name];
    if (key === undefined) throw new Error(`unknown flag -${name}; known: -${[...Object.keys(names), 'debug'].join(', -')}`);
    const value = inline ?? argv[++i];
    if (value === undefined) throw new Error(`flag -${name} needs a value`);
    (flags as unknown as Record<string, string>)[key] = value;
  }
  return flags;
}
