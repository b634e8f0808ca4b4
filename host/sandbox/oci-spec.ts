// The OCI runtime spec (config.json) hako hands the guest agent for a
// container or an exec'd process. The agent fills in root.path,
// linux.cgroupsPath and process.terminal (guest/agent/agent.proto); the rest
// is the usual default of OCI runtimes: its own pid, ipc, uts and mount
// namespaces, the VM's network (one sandbox is one pod, as in Kata), the
// default capability set and masked /proc paths.
import { HakoError } from '../errors.js';

export interface ProcessOptions {
  /** Program and arguments; args[0] is looked up in PATH inside the container. */
  args: string[];
  /** Environment; PATH (and TERM with a tty) get a default unless given. */
  env?: Record<string, string>;
  /** Working directory inside the container (default "/"). */
  cwd?: string;
  /** A pseudo-terminal for stdin/stdout (stderr merged into stdout). */
  tty?: boolean;
  /** Keep stdin open for writing (otherwise the process reads /dev/null). */
  stdin?: boolean;
  /** User and group to run as (default root). */
  user?: { uid: number; gid: number };
}

/** A host directory mounted into the container (shared into the VM with virtio-fs). */
export interface Volume {
  /** The directory on the host. */
  source: string;
  /** Where the container sees it: an absolute path, not "/". */
  destination: string;
  readOnly?: boolean;
}

export interface ContainerOptions extends ProcessOptions {
  /** [A-Za-z0-9][A-Za-z0-9_.-]{0,63}, unique in the sandbox. */
  id: string;
  /**
   * A host directory as the container's root file system, shared into the VM
   * with virtio-fs (default: the sandbox's root file system image). Writes
   * reach the directory, unless `readOnly`: then they stay in the guest (a
   * tmpfs overlay) and end with the container.
   */
  rootfs?: { directory: string; readOnly?: boolean };
  volumes?: Volume[];
  hostname?: string;
  /** cgroup memory.max in bytes (default: no limit beyond the VM's RAM). */
  memoryLimitBytes?: number;
}

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

/** Checks a container or exec id against the agent's rule; `what` names it in the error. */
export function checkId(id: string, what: string): string {
  if (typeof id !== 'string' || !ID_PATTERN.test(id)) {
    throw new HakoError('INVALID_ARGUMENT', `${what} must match ${ID_PATTERN.source}, got ${JSON.stringify(id)}`);
  }
  return id;
}

/** The OCI "process" object for `opts`. */
export function processSpec(opts: ProcessOptions): object {
  const { args, env = {}, cwd = '/', tty = false, user = { uid: 0, gid: 0 } } = opts;
  if (!Array.isArray(args) || args.length === 0 || !args.every((a) => typeof a === 'string' && !a.includes('\0'))) {
    throw new HakoError('INVALID_ARGUMENT', `args must be a non-empty array of strings without NUL bytes, got ${JSON.stringify(args)}`);
  }
  if (typeof cwd !== 'string' || !cwd.startsWith('/')) {
    throw new HakoError('INVALID_ARGUMENT', `cwd must be an absolute path, got ${JSON.stringify(cwd)}`);
  }
  // Defaults for what the caller (or the image) does not set, so each variable appears once.
  const vars = [...('PATH' in env ? [] : [DEFAULT_PATH]), ...(tty && !('TERM' in env) ? ['TERM=xterm'] : [])];
  for (const [key, value] of Object.entries(env)) {
    if (key === '' || key.includes('=') || key.includes('\0') || String(value).includes('\0')) {
      throw new HakoError('INVALID_ARGUMENT', `env: ${JSON.stringify(key)} is not a valid variable name (no '=' or NUL, not empty)`);
    }
    vars.push(`${key}=${value}`);
  }
  for (const [name, id] of Object.entries(user)) {
    if (!Number.isInteger(id) || id < 0 || id > 0xfffffffe) {
      throw new HakoError('INVALID_ARGUMENT', `user.${name} must be an integer from 0 to 4294967294, got ${id}`);
    }
  }
  return {
    terminal: tty,
    user,
    args,
    env: vars,
    cwd,
    capabilities: { bounding: CAPABILITIES, effective: CAPABILITIES, permitted: CAPABILITIES },
    rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
    noNewPrivileges: true,
  };
}

/** Checks the volumes' destinations (their sources are checked when mounted). */
export function checkVolumes(volumes: Volume[]): void {
  volumes.forEach((v, i) => {
    if (typeof v.destination !== 'string' || !v.destination.startsWith('/') || v.destination.includes('\0') ||
        v.destination.split('/').every((c) => c === '' || c === '.')) {
      throw new HakoError('INVALID_ARGUMENT', `volumes[${i}].destination must be an absolute path other than /, got ${JSON.stringify(v.destination)}`);
    }
  });
}

/** The whole config.json of container `opts`; `volumeSources[i]` is where the guest sees volume i. */
export function containerSpec(opts: ContainerOptions, volumeSources: string[] = []): object {
  checkId(opts.id, 'container id');
  const volumes = opts.volumes ?? [];
  checkVolumes(volumes);
  const { memoryLimitBytes } = opts;
  if (memoryLimitBytes !== undefined && (!Number.isSafeInteger(memoryLimitBytes) || memoryLimitBytes < 4096)) {
    throw new HakoError('INVALID_ARGUMENT', `memoryLimitBytes must be an integer of at least 4096, got ${memoryLimitBytes}`);
  }
  return {
    ociVersion: '1.0.2',
    process: processSpec(opts),
    root: { path: 'rootfs', readonly: false },
    hostname: opts.hostname ?? opts.id,
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
      ...volumes.map((v, i) => ({
        destination: v.destination, type: 'bind', source: volumeSources[i],
        options: ['rbind', 'nosuid', 'nodev', v.readOnly ? 'ro' : 'rw'],
      })),
    ],
    linux: {
      namespaces: [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'cgroup' }],
      ...(memoryLimitBytes !== undefined ? { resources: { memory: { limit: memoryLimitBytes, swap: memoryLimitBytes } } } : {}),
      // The VM is the boundary to the host; these keep one container from reading the guest kernel's memory and
      // keys or reconfiguring the kernel its pod shares. Each path costs mounts, slow where guest kernel code is
      // emulated (about 0.3 s each on PVM hosts), so the list holds only what matters inside a sandbox.
      maskedPaths: ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/sys/firmware'],
      readonlyPaths: ['/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}
