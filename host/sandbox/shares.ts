// A sandbox's shared directory: the root of its virtio-fs share (tag
// "hako-shared", mounted by the agent at /run/hako-shared). Each container's
// root file system directory and volumes are bind-mounted into it, as Kata
// does, so one device serves the whole pod:
//   <sandbox dir>/shared/<container>/rootfs
//   <sandbox dir>/shared/<container>/volumes/<n>
// Removing a sandbox directory unmounts what is mounted below it first, and
// removes nothing while a mount remains: a recursive delete through a bind
// mount would delete the user's files.
import fs from 'node:fs';
import path from 'node:path';
import { HakoError } from '../errors.js';
import { native } from '../native.js';

/** The share's tag, and where the guest's agent mounts it. */
export const SHARE_TAG = 'hako-shared';
export const GUEST_SHARE_DIR = '/run/hako-shared';

/** The mount points below `dir` (mountinfo's fifth field, octal escapes decoded), deepest first. */
export function mountsBelow(dir: string): string[] {
  const prefix = path.resolve(dir) + '/';
  const decode = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => p !== undefined && decode(p).startsWith(prefix))
    .map(decode)
    .sort((a, b) => b.length - a.length);
}

/**
 * Removes the directory `dir` (a sandbox's, or a container's in the share)
 * after unmounting everything below it; refuses, removing nothing, if a
 * mount stays.
 */
export function unmountAndRemove(dir: string): void {
  for (const mount of mountsBelow(dir)) {
    try {
      native().unmount(mount);
    } catch { /* checked below */ }
  }
  const left = mountsBelow(dir);
  if (left.length > 0) {
    throw new HakoError('VM_FAILED', `${dir} still has mounts (${left.join(', ')}): not removed; unmount them and retry`);
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

export class SandboxShare {
  /** The host directory the VM's virtio-fs device serves. */
  readonly root: string;

  constructor(sandboxDir: string) {
    this.root = path.join(sandboxDir, 'shared');
    fs.mkdirSync(this.root, { mode: 0o755 });
  }

  /** Bind-mounts the host directory `source` at `<container>/<name>` in the share; returns that path relative to the share. */
  private bind(container: string, name: string, source: string, readOnly: boolean, what: string): string {
    const abs = path.resolve(source);
    if (!fs.statSync(abs, { throwIfNoEntry: false })?.isDirectory()) {
      throw new HakoError('INVALID_ARGUMENT', `${what} must be a directory on the host, got ${JSON.stringify(source)}`);
    }
    const rel = path.posix.join(container, name);
    const target = path.join(this.root, rel);
    fs.mkdirSync(target, { recursive: true, mode: 0o755 });
    native().bindMount(abs, target, readOnly);
    return rel;
  }

  /** A container's root file system directory; returns its path relative to the share. */
  addRootfs(container: string, source: string, readOnly: boolean): string {
    return this.bind(container, 'rootfs', source, readOnly, 'rootfs.directory');
  }

  /** Volume number `index` of a container; returns where the guest sees it. */
  addVolume(container: string, index: number, source: string, readOnly: boolean): string {
    return path.posix.join(GUEST_SHARE_DIR, this.bind(container, path.posix.join('volumes', String(index)), source, readOnly, `volumes[${index}].source`));
  }

}
