// Disk images for virtio-blk: the `PATH[,ro]` syntax the CLI and config use,
// and opening an image with the checks a user should hear about before boot.
import fs from 'node:fs';
import { HakoError } from '../errors.js';
import { native } from '../native.js';

export const SECTOR_SIZE = 512;

export interface DiskConfig {
  /** A raw image file. */
  path: string;
  /** Attach read-only: the guest's writes fail and the file is opened O_RDONLY, so it is never modified. */
  readOnly: boolean;
}

/** An open image: the VMM owns `fd` until close(). */
export interface OpenDisk {
  config: DiskConfig;
  fd: number;
  sectors: bigint;
  close(): void;
}

/** Parses `PATH[,ro]` (the --disk option). */
export function parseDiskOption(value: string): DiskConfig {
  const comma = value.lastIndexOf(',');
  const flag = comma < 0 ? '' : value.slice(comma + 1);
  if (flag === 'ro') return { path: checkPath(value.slice(0, comma), value), readOnly: true };
  if (flag === 'rw') return { path: checkPath(value.slice(0, comma), value), readOnly: false };
  if (comma >= 0 && /^[a-z]+$/.test(flag)) {
    throw new HakoError('INVALID_ARGUMENT', `--disk ${JSON.stringify(value)}: unknown flag ${JSON.stringify(flag)}; expected PATH, PATH,ro or PATH,rw`);
  }
  return { path: checkPath(value, value), readOnly: false };
}

function checkPath(path: string, option: string): string {
  if (path === '') throw new HakoError('INVALID_ARGUMENT', `--disk ${JSON.stringify(option)}: expected PATH[,ro] with a non-empty PATH`);
  return path;
}

/**
 * Opens a raw image for a VM and locks it (exclusive when writable, shared
 * when read-only; released by close()); throws INVALID_ARGUMENT naming the
 * file and the problem.
 */
export function openDisk(config: DiskConfig): OpenDisk {
  const bad = (why: string, cause?: unknown): never => {
    throw new HakoError('INVALID_ARGUMENT', `disk ${config.path}: ${why}`, cause === undefined ? undefined : { cause });
  };
  let fd: number;
  try {
    fd = fs.openSync(config.path, config.readOnly ? 'r' : 'r+');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file'
      : code === 'EACCES' || code === 'EPERM' ? `permission denied${config.readOnly ? '' : ' (attach it read-only with ,ro?)'}`
      : code === 'EISDIR' ? 'is a directory'
      : code === 'EROFS' ? 'is on a read-only file system (attach it read-only with ,ro)'
      : (e as Error).message;
    return bad(why, e);
  }
  try {
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) bad('not a regular file (hako attaches raw image files)');
    if (stat.size < SECTOR_SIZE) bad(`${stat.size} bytes; an image must hold at least one ${SECTOR_SIZE}-byte sector`);
    if (stat.size % SECTOR_SIZE !== 0) bad(`${stat.size} bytes, not a multiple of the ${SECTOR_SIZE}-byte sector size`);
    // A writer excludes everyone, readers share: a VM never reads an image another one is changing.
    if (!native().lockFile(fd, !config.readOnly)) {
      bad(`in use by another VM or program (locked); ${config.readOnly ? 'it is attached writable elsewhere' : 'attach it to one VM at a time, or read-only (,ro) to several'}`);
    }
    let closed = false;
    return {
      config,
      fd,
      sectors: BigInt(stat.size / SECTOR_SIZE),
      close: () => {
        if (closed) return;
        closed = true;
        fs.closeSync(fd);
      },
    };
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
}
