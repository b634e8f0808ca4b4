// ext4 images made from a directory tree without mounting anything (mkfs.ext4 -d),
// for container root file systems on a virtio-blk disk. The same tree gives the
// same image bytes: fixed UUID, directory hash seed and times; the copied files
// keep their mode, owner and mtime. Images are read-only base layers (the agent
// puts an overlay on top), so they have no journal and no reserved blocks.
import { createHash, type Hash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { HakoError } from '../errors.js';

const BLOCK = 4096;
const INODE_SIZE = 256;
/** The image's UUID and directory-index hash seed ("hako" + a fixed pattern). */
const UUID = '6b61686f-0000-4000-8000-000000000001';
/** Every time mkfs stamps, and the copied files' ctime and atime. 0 would mean "unset" to E2FSPROGS_FAKE_TIME. */
const IMAGE_TIME = 1;
/** Inodes below this are reserved by ext4 (2 is the root directory, 11 lost+found); the tree's start here. */
const FIRST_INODE = 12;

/** What mkfs needs to hold a tree. */
export interface TreeSize {
  /** Inodes for the tree's entries (hard links counted once), the root directory excluded. */
  inodes: number;
  /** 4 KiB blocks of file data, directory entries and long symlink targets. */
  dataBlocks: number;
}

/** Walks `dir` (not following symlinks); throws INVALID_ARGUMENT if it is not a directory. */
export function measureTree(dir: string): TreeSize {
  const seen = new Set<string>();
  let inodes = 0, dataBlocks = 0;
  const walk = (d: string): void => {
    const entries = fs.readdirSync(d, { withFileTypes: true });
    // ext4 directory entries: 8 bytes + the name, 4-byte aligned; the "." and ".." entries.
    dataBlocks += Math.ceil((24 + entries.reduce((n, e) => n + 8 + ((Buffer.byteLength(e.name) + 3) & ~3), 0)) / BLOCK);
    for (const e of entries) {
      const p = path.join(d, e.name);
      const st = fs.lstatSync(p, { bigint: true });
      const id = `${st.dev}:${st.ino}`;
      if (seen.has(id)) continue;
      seen.add(id);
      inodes++;
      if (st.isDirectory()) walk(p);
      // A file's blocks plus one extent-tree block per 128 MiB; symlinks over 59 bytes need a block.
      else if (st.isFile()) dataBlocks += Math.ceil(Number(st.size) / BLOCK) + Math.ceil(Number(st.size) / (128 << 20));
      else if (st.isSymbolicLink() && st.size > 59n) dataBlocks++;
    }
  };
  if (!fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory()) {
    throw new HakoError('INVALID_ARGUMENT', `image source ${dir}: expected a directory`);
  }
  walk(dir);
  return { inodes, dataBlocks };
}

/**
 * Image size in bytes for a tree: its data with 10% headroom for what the
 * estimate misses (extent blocks of fragmented files, htree index blocks),
 * the inode tables, and 2 MiB for superblocks, group descriptors and bitmaps;
 * in whole MiB.
 */
export function imageBytes(size: TreeSize): number {
  const bytes = size.dataBlocks * BLOCK * 1.1 + inodeCount(size) * INODE_SIZE + (2 << 20);
  return Math.ceil(bytes / (1 << 20)) * (1 << 20);
}

/** The tree's inodes, lost+found's and spare ones; mkfs rounds up to whole inode-table blocks per group. */
function inodeCount(size: TreeSize): number {
  return size.inodes + FIRST_INODE + 16;
}

/** Runs an e2fsprogs tool with the fixed time; returns its stderr. */
function runTool(cmd: string, args: string[], what: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, E2FSPROGS_FAKE_TIME: String(IMAGE_TIME) } });
  if (r.error) {
    const missing = (r.error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new HakoError('NOT_BUILT', `${what}: cannot run ${cmd}${missing ? ' (apt-get install e2fsprogs)' : `: ${r.error.message}`}`, { cause: r.error });
  }
  if (r.status !== 0) throw new HakoError('INVALID_ARGUMENT', `${what}: ${cmd} failed (exit ${r.status ?? r.signal}): ${r.stderr.trim()}`);
  return r.stderr;
}

/**
 * Writes an ext4 image of `dir` to `file` (replaced if it exists). Owners come
 * from the tree, so build trees as root (or with fixed owners) for images
 * whose files belong to root.
 */
export function makeExt4Image(dir: string, file: string): void {
  const size = measureTree(dir);
  const what = `making an ext4 image of ${dir}`;
  fs.rmSync(file, { force: true });
  fs.writeFileSync(file, '');
  fs.truncateSync(file, imageBytes(size));
  runTool('mkfs.ext4', [
    '-q', '-F', '-b', String(BLOCK), '-I', String(INODE_SIZE), '-N', String(inodeCount(size)), '-m', '0',
    '-O', '^has_journal', '-U', UUID, '-E', `hash_seed=${UUID},root_owner=0:0`, '-d', dir, file,
  ], what);
  // mkfs copies each file's ctime (which cannot be set on the host) and atime
  // (which reading the tree may just have changed); it numbers the tree's
  // inodes from FIRST_INODE up in the order it copies them.
  const fixTimes = [2, FIRST_INODE - 1, ...Array.from({ length: size.inodes }, (_, i) => FIRST_INODE + i)]
    .flatMap((ino) => [`sif <${ino}> ctime @${IMAGE_TIME}`, `sif <${ino}> atime @${IMAGE_TIME}`]);
  const script = `${file}.debugfs`;
  fs.writeFileSync(script, fixTimes.join('\n') + '\n');
  try {
    // debugfs exits 0 whatever its commands do; anything on stderr but its banner is a failure.
    const stderr = runTool('debugfs', ['-w', '-f', script, file], what);
    const failed = stderr.split('\n').find((l) => l !== '' && !l.startsWith('debugfs '));
    if (failed) throw new HakoError('INVALID_ARGUMENT', `${what}: debugfs could not fix the inode times: ${failed}`);
  } finally {
    fs.rmSync(script, { force: true });
  }
}

function hashFile(h: Hash, file: string): void {
  const fd = fs.openSync(file, 'r');
  try {
    const chunk = Buffer.alloc(1 << 20);
    for (let n; (n = fs.readSync(fd, chunk)) > 0;) h.update(chunk.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * 16 hex digits of a sha256 over the tree: each entry's path, type, mode,
 * owner, mtime and content or link target (what the image holds), in name order.
 */
export function treeHash(dir: string): string {
  const h = createHash('sha256');
  const walk = (rel: string): void => {
    const abs = path.join(dir, rel);
    const st = fs.lstatSync(abs, { bigint: true });
    h.update(`${rel}\0${st.mode}\0${st.uid}:${st.gid}\0${st.mtimeNs}\0${st.rdev}\0`);
    if (st.isFile()) hashFile(h, abs);
    else if (st.isSymbolicLink()) h.update(fs.readlinkSync(abs));
    else if (st.isDirectory()) for (const name of fs.readdirSync(abs).sort()) walk(path.join(rel, name));
    h.update('\0');
  };
  walk('.');
  return h.digest('hex').slice(0, 16);
}
