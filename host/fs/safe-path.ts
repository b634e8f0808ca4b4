// Paths that come from a container spec, an image, a mount request or a guest
// are only ever resolved here, inside a root directory, by the kernel
// (openat2 through the addon) and relative to the root's fd: `..`, absolute
// symlinks and a symlink swapped in while a path resolves (CVE-2021-30465)
// cannot reach a host file outside the root. Callers get file descriptors, not
// re-resolvable strings; realPath() is for messages only.
import fs from 'node:fs';
import { HakoError } from '../errors.js';
import { isKvmError, native } from '../native.js';

/**
 * How a Root resolves paths:
 * - 'in-root' (default): like chroot, as OCI runtimes resolve inside a rootfs. `..` at the root stays at
 *   the root and a symlink to /etc/passwd means <root>/etc/passwd: an escape is clamped, never followed.
 * - 'beneath': any step out of the root (`..` above it, an absolute path or symlink) fails ('escape').
 * - 'no-symlinks': 'beneath', and any symlink fails ('symlink').
 * Magic links (/proc/<pid>/fd/*, /proc/<pid>/root) fail ('symlink') in every mode.
 */
export type ResolveMode = 'in-root' | 'beneath' | 'no-symlinks';

/** Why a path was refused or failed; `code` of the HakoError says whether the path or the host is at fault. */
export type SafePathReason =
  | 'escape'        // the path leads out of the root ('beneath', 'no-symlinks')
  | 'symlink'       // a symlink that may not be followed: any under 'no-symlinks', a magic link, too many links
  | 'not-found'
  | 'exists'
  | 'not-directory' // a component that must be a directory is not
  | 'wrong-type'    // e.g. openFile of a device node or FIFO, readlink of something not a symlink
  | 'invalid'       // malformed: a NUL byte, or no last component to remove or rename
  | 'race'          // renames kept racing with the resolution of `..`: try again
  | 'unsupported'   // the kernel lacks openat2 (Linux < 5.6)
  | 'failed';       // any other error of the host (see `cause`)

/** What each errno of the addon's calls means for the path, and how messages say it. */
const errnoReasons: Record<string, [SafePathReason, string]> = {
  EXDEV: ['escape', 'leads out of the root'],
  ELOOP: ['symlink', 'goes through a symlink that may not be followed (a magic link, a loop, any under no-symlinks)'],
  ENOENT: ['not-found', 'does not exist'],
  EEXIST: ['exists', 'exists already'],
  ENOTDIR: ['not-directory', 'has a component that is not a directory'],
  EAGAIN: ['race', 'kept racing with renames; try again'],
  ENOSYS: ['unsupported', 'cannot be resolved safely: openat2 needs Linux 5.6 or later'],
};

const hostReasons: SafePathReason[] = ['race', 'unsupported', 'failed'];

export class SafePathError extends HakoError {
  constructor(
    readonly reason: SafePathReason,
    /** The path as the caller gave it (for mkdirAll, its prefix that failed), relative to `root`. */
    readonly path: string,
    /** The root directory on the host. */
    readonly root: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(hostReasons.includes(reason) ? 'VM_FAILED' : 'INVALID_ARGUMENT', message, options);
    this.name = 'SafePathError';
  }
}

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK, O_NOCTTY } = fs.constants;

/** A directory that confines every path resolved through it. Close it when done; the fds it returns are the caller's. */
export class Root {
  private fd: number;

  private constructor(readonly dir: string, readonly mode: ResolveMode, fd: number) {
    this.fd = fd;
  }

  /** Opens the host directory `dir` (a trusted path: it is resolved normally) as a root. */
  static open(dir: string, mode: ResolveMode = 'in-root'): Root {
    let fd: number;
    try {
      fd = fs.openSync(dir, native().O_PATH | O_DIRECTORY);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new HakoError('INVALID_ARGUMENT', `root directory ${dir} cannot be opened: ${code ?? String(e)}`, { cause: e });
    }
    return new Root(dir, mode, fd);
  }

  /**
   * Opens the regular file or directory at `rel` with `flags` (fs.constants.O_*; `mode` applies when O_CREAT
   * creates it) and returns its fd, which the caller closes. O_NONBLOCK and O_NOCTTY are added so a FIFO or
   * terminal cannot hang or capture the VMM (they change nothing for files and directories); anything else
   * than a file or directory is then refused ('wrong-type'). Opening a device node has by then run its
   * driver's open: roots holding untrusted device nodes belong on nodev mounts.
   */
  openFile(rel: string, flags = O_RDONLY, mode = 0o644): number {
    const fd = this.resolve(rel, flags | O_NONBLOCK | O_NOCTTY, mode);
    const stats = fs.fstatSync(fd);
    if (!stats.isFile() && !stats.isDirectory()) {
      fs.closeSync(fd);
      throw this.refuse('wrong-type', rel, 'is neither a regular file nor a directory');
    }
    return fd;
  }

  /**
   * An O_PATH fd naming what `rel` resolves to (the symlink itself if `follow` is false and it is one), which
   * the caller closes: it opens nothing, so it is safe on any file type, and it is what a mount should
   * target (through /proc/self/fd/<fd>) instead of a path that could be swapped meanwhile.
   */
  openPath(rel: string, follow = true): number {
    return this.resolve(rel, native().O_PATH | (follow ? 0 : O_NOFOLLOW), 0);
  }

  /** Makes the directory `rel` and any missing parents inside the root (like mkdir -p); `mode` is masked by umask. */
  mkdirAll(rel: string, mode = 0o755): void {
    const lead = rel.startsWith('/') ? '/' : '';
    const names = rel.split('/').filter((name) => name !== '' && name !== '.');
    // Every prefix is resolved from the root again: a symlink or `..` met on the way must resolve as
    // it would from the root, and a directory made by mkdirat is only trusted once openat2 reaches it.
    for (let i = 0; i < names.length; i++) {
      const prefix = lead + names.slice(0, i + 1).join('/');
      if (this.isDirectory(prefix)) continue;
      this.withPath(lead + names.slice(0, i).join('/') || '.', true, (parent) => {
        this.call(prefix, () => native().mkdirAt(parent, names[i], mode));
      });
      if (!this.isDirectory(prefix)) {
        throw this.refuse('exists', prefix, 'is in the way: a dangling symlink, or it was replaced while being made');
      }
    }
  }

  /** fs.Stats of what `rel` resolves to (of a final symlink itself if `follow` is false). */
  stat(rel: string, follow = true): fs.Stats {
    return this.withPath(rel, follow, (fd) => fs.fstatSync(fd));
  }

  /** The host path `rel` resolves to now, for messages and logs: opening this string again would not be confined. */
  realPath(rel: string): string {
    return this.withPath(rel, true, (fd) => fs.readlinkSync(`/proc/self/fd/${fd}`));
  }

  /** The target of the symlink at `rel`, as stored (resolving it is the caller's next openFile or openPath). */
  readlink(rel: string): string {
    return this.withPath(rel, false, (fd) => {
      if (!fs.fstatSync(fd).isSymbolicLink()) throw this.refuse('wrong-type', rel, 'is not a symlink');
      return this.call(rel, () => native().readlinkAt(fd));
    });
  }

  /** Removes the file, symlink or empty directory `rel` names (a final symlink itself, never its target). */
  remove(rel: string): void {
    const [parent, name] = this.split(rel);
    this.withPath(parent, true, (dir) => this.call(rel, () => {
      try {
        native().unlinkAt(dir, name, false);
      } catch (e) {
        if (!isKvmError(e) || e.code !== 'EISDIR') throw e;
        native().unlinkAt(dir, name, true);
      }
    }));
  }

  /** Renames `from` to `to` (both inside the root); with `noReplace`, an existing `to` fails ('exists'). */
  rename(from: string, to: string, noReplace = false): void {
    const [fromParent, fromName] = this.split(from);
    const [toParent, toName] = this.split(to);
    this.withPath(fromParent, true, (fromDir) => this.withPath(toParent, true, (toDir) =>
      this.call(from, () => native().renameAt(fromDir, fromName, toDir, toName, noReplace))));
  }

  /** Closes the root's fd (idempotent); fds it returned stay open. */
  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }

  private resolve(rel: string, flags: number, mode: number): number {
    if (this.fd < 0) throw new HakoError('INVALID_ARGUMENT', `root ${this.dir} is closed`);
    if (rel.includes('\0')) throw this.refuse('invalid', rel, 'contains a NUL byte');
    return this.call(rel, () => native().openAt(this.fd, rel, flags, mode, this.mode));
  }

  /** Runs `use` with an O_PATH fd of `rel`, closed afterwards. */
  private withPath<T>(rel: string, follow: boolean, use: (fd: number) => T): T {
    const fd = this.openPath(rel, follow);
    try {
      return use(fd);
    } finally {
      fs.closeSync(fd);
    }
  }

  private isDirectory(rel: string): boolean {
    try {
      fs.closeSync(this.resolve(rel, native().O_PATH | O_DIRECTORY, 0));
      return true;
    } catch (e) {
      if (e instanceof SafePathError && e.reason === 'not-found') return false;
      throw e;
    }
  }

  /** [parent, last name] of `rel`; the parent is resolved by the kernel, the name must be a plain one. */
  private split(rel: string): [string, string] {
    const trimmed = rel.replace(/\/+$/, '');
    const slash = trimmed.lastIndexOf('/');
    const name = trimmed.slice(slash + 1);
    if (name === '' || name === '.' || name === '..') throw this.refuse('invalid', rel, 'does not end in a name');
    return [slash < 0 ? '.' : trimmed.slice(0, slash) || '/', name];
  }

  /** Runs a native call, turning its KvmError into a SafePathError that names `rel`. */
  private call<T>(rel: string, syscall: () => T): T {
    try {
      return syscall();
    } catch (e) {
      if (!isKvmError(e)) throw e;
      const [reason, meaning] = errnoReasons[e.code] ?? ['failed', 'failed'];
      throw this.refuse(reason, rel, `${meaning} (${e.message})`, e);
    }
  }

  private refuse(reason: SafePathReason, rel: string, why: string, cause?: unknown): SafePathError {
    return new SafePathError(reason, rel, this.dir,
      `path '${rel}' in root ${this.dir} (${this.mode}) ${why}`, { cause });
  }
}
