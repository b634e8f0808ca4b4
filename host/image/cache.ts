// ext4 images of directory trees, cached by content in
//   <paths.cache_dir>/images/<key>.ext4
// (paths.cache_dir: by default ${HAKO_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/hako})
// where the key covers the tree (treeHash), the image format and the mkfs
// version. Images are deterministic, so processes that build the same entry at
// once write identical files and the last rename wins.
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig, type LoadedConfig } from '../config/load.js';
import { imagesDir } from '../config/settings.js';
import { HakoError } from '../errors.js';
import { bundledGuest, type BundledGuest } from '../guest.js';
import { makeExt4Image, treeHash } from './ext4.js';

/** Bump when makeExt4Image's options change what it writes. */
const IMAGE_FORMAT = 1;

/** Where images are kept: the images directory in the configuration's (by default the one `env` names) cache root. */
export function imageRoot(env: NodeJS.ProcessEnv = process.env, config: LoadedConfig = loadConfig({ env })): string {
  return imagesDir(config, env);
}

function mkfsVersion(): string {
  const r = spawnSync('mkfs.ext4', ['-V'], { encoding: 'utf8' });
  return (r.stderr ?? '').split('\n')[0] ?? '';
}

/** Where the image known by `key` (e.g. "tree <hash>") is cached: a hash over the key, the image format and the mkfs version. */
export function imageCacheFile(key: string, root = imageRoot()): string {
  const hash = createHash('sha256')
    .update(`format ${IMAGE_FORMAT}\n${key}\nmkfs ${mkfsVersion()}`)
    .digest('hex').slice(0, 16);
  return path.join(root, `${hash}.ext4`);
}

/** Makes the cache entry `file` with `make` writing a temporary file, renamed into place once complete. */
export function storeImage(file: string, make: (tmp: string) => void): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    make(tmp);
    fs.renameSync(tmp, file);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

/** The cached ext4 image of `dir`, made first if missing; returns its path. */
export function cachedExt4Image(dir: string, root = imageRoot()): string {
  const file = imageCacheFile(`tree ${treeHash(dir)}`, root);
  if (!fs.existsSync(file)) storeImage(file, (tmp) => makeExt4Image(dir, tmp));
  return file;
}

/** The default container root file system (busybox, guest/rootfs/) as a cached ext4 image. */
export function bundledRootfsImage(guest: BundledGuest = bundledGuest(), root = imageRoot()): string {
  if (!guest.rootfs || !fs.existsSync(guest.rootfs)) {
    throw new HakoError('NOT_BUILT', `the bundled guest's root file system ${guest.rootfs ?? '(not in build/guest.json)'} is missing; run 'npm run setup'`);
  }
  return cachedExt4Image(guest.rootfs, root);
}
