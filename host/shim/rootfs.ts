// The root file system containerd hands a task: mounts (an overlay of the
// image's snapshot layers, or a bind of one directory) to stack on
// <bundle>/rootfs, described fstab-style like its containerd.types.Mount.
import fs from 'node:fs';
import path from 'node:path';
import { HakoError } from '../errors.js';
import { native } from '../native.js';

export interface Mount {
  type: string;
  source: string;
  options: string[];
}

/** fstab options that are mount(2) flags (native mountFs names); the rest go to the file system as data. */
const FLAG_OPTIONS: Record<string, string[]> = {
  ro: ['rdonly'], nosuid: ['nosuid'], nodev: ['nodev'], noexec: ['noexec'], sync: ['sync'], dirsync: ['dirsync'],
  noatime: ['noatime'], nodiratime: ['nodiratime'], relatime: ['relatime'], strictatime: ['strictatime'],
  bind: ['bind'], rbind: ['bind', 'rec'],
};
/** Options that only clear a flag mount(2) leaves clear anyway. */
const DEFAULT_OPTIONS = new Set(['rw', 'suid', 'dev', 'exec', 'async', 'atime', 'diratime', 'defaults']);

/** Splits a mount's options into mount(2) flags and file-system data, as containerd's mount package does. */
export function parseOptions(options: string[]): { flags: string[]; data: string } {
  const flags = new Set<string>();
  const data: string[] = [];
  for (const option of options) {
    const f = FLAG_OPTIONS[option];
    if (f) f.forEach((x) => flags.add(x));
    else if (!DEFAULT_OPTIONS.has(option)) data.push(option);
  }
  return { flags: [...flags], data: data.join(',') };
}

/** Mounts `mounts` one over the other on `target` (created if missing); undoes them if one fails. */
export function mountAll(mounts: Mount[], target: string): void {
  fs.mkdirSync(target, { recursive: true, mode: 0o755 });
  let done = 0;
  try {
    for (const m of mounts) {
      const { flags, data } = parseOptions(m.options);
      if (flags.includes('bind')) {
        // Flags of a bind mount only apply through a remount, which bindMount does.
        if (data !== '') throw new HakoError('INVALID_ARGUMENT', `bind mount of ${m.source}: unexpected options ${data}`);
        native().bindMount(path.resolve(m.source), target, flags.includes('rdonly'));
      } else {
        native().mountFs(m.source, target, m.type, flags, data);
      }
      done++;
    }
  } catch (e) {
    if (done > 0) unmountAll(target);
    throw e;
  }
}

/** True when `dir` is a mount point (mountinfo's fifth field, octal escapes decoded). */
export function isMountPoint(dir: string): boolean {
  const abs = path.resolve(dir);
  const decode = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((line) => {
    const field = line.split(' ')[4];
    return field !== undefined && decode(field) === abs;
  });
}

/** Unmounts everything stacked on `target`; throws if something stays mounted. */
export function unmountAll(target: string): void {
  for (let i = 0; i < 32 && isMountPoint(target); i++) native().unmount(path.resolve(target));
  if (isMountPoint(target)) throw new HakoError('VM_FAILED', `${target} is still mounted after 32 unmounts`);
}
