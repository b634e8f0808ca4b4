// Image layers (OCI image-spec layer.md) applied in order to one directory:
// each layer's blob is verified against its digest and its uncompressed tar
// against the config's diff ID, then its whiteouts remove what lower layers
// left, then node-tar extracts it. node-tar refuses entries with `..`, hard
// links leading out and writes through symlinks, and strips leading `/`; any
// entry it refuses fails the whole image. Symlinks are made here instead, with
// their targets as stored: node-tar would rewrite absolute targets and refuse
// `..` ones, which images use and which resolve inside the container's root.
// The directory must be private (fresh, 0700, under our control), as node-tar
// and the removals check paths with lstat before using them.
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { Decompress as ZstdDecompress } from 'fzstd';
import { Parser, Unpack, type ReadEntry } from 'tar';
import { HakoError } from '../errors.js';
import { Root } from '../fs/safe-path.js';
import { checkDigest, digestHash, formatDigest, type Digest } from './digest.js';

export interface Layer {
  /** The blob as stored (its digest and size, when the manifest gives them), opened anew on each call. */
  open: () => number;
  digest?: Digest;
  size?: number;
  /** The digest of the uncompressed tar (the config's rootfs.diff_ids entry). */
  diffId: Digest;
  /** Names the layer in messages: its digest, or its path in an archive. */
  name: string;
}

/** What an entry's header says about it; applied after all layers, once nothing will be written into a directory again. */
interface Meta {
  mode: number;
  uid: number;
  gid: number;
  mtime: Date;
}

/** What a layer does besides adding files: its whiteouts and opaque directories, and its non-directory paths (to replace directories). */
interface LayerScan {
  entries: number;
  whiteouts: string[];
  opaque: string[];
  nonDirectories: string[];
  /** [path, target] of each symlink, in archive order. */
  symlinks: [string, string][];
  meta: Map<string, Meta>;
}

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';
/** The first four bytes of a zstd frame (RFC 8878). */
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
/** Entry types node-tar writes to the tree; devices and FIFOs are skipped (the container's /dev comes from the runtime). */
const EXTRACTED_TYPES = new Set(['File', 'OldFile', 'ContiguousFile', 'Link', 'Directory', 'GNUDumpDir']);
const KEPT_TYPES = new Set([...EXTRACTED_TYPES, 'SymbolicLink']);

/** Opens the regular file `rel` of the image directory or archive `dir`, resolved inside it (no symlink leads out); returns its fd. */
export function openBlob(dir: string, rel: string): number {
  const root = Root.open(dir, 'in-root');
  try {
    return root.openFile(rel);
  } finally {
    root.close();
  }
}

/** The entry's path relative to the tree's root ('.' for the root), as node-tar will write it. */
export function treePath(entryPath: string): string {
  const p = path.posix.normalize(entryPath.replace(/^\/+/, ''));
  return p === './' || p === '' ? '.' : p.replace(/\/+$/, '');
}

/** A stream stage that passes chunks on and lets `see` hash and count them. */
function tap(see: (chunk: Buffer) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      see(chunk);
      callback(null, chunk);
    },
  });
}

/** Decompresses a zstd stream (Node 20's zlib has no zstd); a damaged stream fails the pipeline. */
function zstdDecompress(): Transform {
  let push: (chunk: Uint8Array) => void = () => {};
  const decoder = new ZstdDecompress((data) => push(data));
  const feed = (chunk: Uint8Array, final: boolean, stream: Transform, callback: TransformCallback) => {
    push = (data) => stream.push(Buffer.from(data)); // a copy: the decoder may reuse its window
    try {
      decoder.push(chunk, final);
      callback();
    } catch (e) {
      callback(new Error(`zstd: ${(e as Error).message}`));
    }
  };
  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) { feed(chunk, false, this, callback); },
    flush(callback: TransformCallback) { feed(new Uint8Array(0), true, this, callback); },
  });
}

/** A pipeline's last stage writing into a node-tar Parser or Unpack, done when it has handled every entry. */
function into(parser: Parser): (source: AsyncIterable<Buffer>) => Promise<void> {
  return async (source) => {
    const finished = new Promise<void>((resolve, reject) => {
      parser.on('end', resolve);
      parser.on('error', reject);
    });
    finished.catch(() => undefined); // awaited below; an error meanwhile is not an unhandled rejection
    for await (const chunk of source) {
      if (!parser.write(chunk)) await Promise.race([new Promise((r) => parser.once('drain', r)), finished]);
    }
    parser.end();
    await finished;
  };
}

/**
 * Streams the layer's tar (decompressed if it is gzip or zstd) into `parser`, then checks
 * the blob's size and digest and the tar's diff ID.
 */
async function readLayer(layer: Layer, parser: Parser): Promise<void> {
  const fd = layer.open();
  const magic = Buffer.alloc(4);
  try {
    fs.readSync(fd, magic, 0, 4, 0);
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
  const decompress = magic.equals(ZSTD_MAGIC) ? zstdDecompress()
    : magic[0] === 0x1f && magic[1] === 0x8b ? zlib.createGunzip()
    : new PassThrough();
  const stream = fs.createReadStream('', { fd, start: 0 }); // closes fd when done or destroyed
  const blobHash = layer.digest && digestHash(layer.digest);
  const diffHash = digestHash(layer.diffId);
  let blobBytes = 0;
  try {
    await pipeline(
      stream,
      tap((c) => { blobHash?.update(c); blobBytes += c.length; }),
      decompress,
      tap((c) => diffHash.update(c)),
      into(parser),
    );
  } catch (e) {
    if (e instanceof HakoError) throw e;
    throw new HakoError('INVALID_ARGUMENT', `layer ${layer.name}: ${(e as Error).message}`, { cause: e });
  } finally {
    stream.destroy();
  }
  if (layer.size !== undefined && blobBytes !== layer.size) {
    throw new HakoError('INVALID_ARGUMENT', `layer ${layer.name}: ${blobBytes} bytes, expected ${layer.size} (damaged or tampered with)`);
  }
  if (layer.digest && blobHash) checkDigest(layer.digest, blobHash.digest('hex'), `layer ${layer.name}`);
  checkDigest(layer.diffId, diffHash.digest('hex'), `layer ${layer.name} (uncompressed, diff ID ${formatDigest(layer.diffId)})`);
}

/** Reads the layer once without writing anything, verifying it, and collects what it removes and each entry's metadata. */
async function scanLayer(layer: Layer): Promise<LayerScan> {
  const scan: LayerScan = { entries: 0, whiteouts: [], opaque: [], nonDirectories: [], symlinks: [], meta: new Map() };
  const parser = new Parser({
    onReadEntry: (entry: ReadEntry) => {
      scan.entries++;
      const p = treePath(entry.path);
      const name = path.posix.basename(p);
      const parent = path.posix.dirname(p);
      if (name === OPAQUE) scan.opaque.push(parent);
      else if (name.startsWith(WHITEOUT + WHITEOUT)) { /* other aufs metadata: nothing to do */ }
      else if (name.startsWith(WHITEOUT)) {
        const gone = name.slice(WHITEOUT.length);
        // ".wh.", ".wh.." and ".wh..." would name the directory itself or its parent: not a whiteout of an entry.
        if (gone !== '' && gone !== '.' && gone !== '..') scan.whiteouts.push(path.posix.join(parent, gone));
      }
      else if (KEPT_TYPES.has(entry.type)) {
        const isDir = entry.type === 'Directory' || entry.type === 'GNUDumpDir';
        if (!isDir) scan.nonDirectories.push(p);
        if (entry.type === 'SymbolicLink') scan.symlinks.push([p, entry.linkpath ?? '']);
        // A hard link shares its target's inode, whose own entry has the metadata.
        if (entry.type !== 'Link') {
          scan.meta.set(p, { mode: (entry.mode ?? (isDir ? 0o755 : 0o644)) & 0o7777, uid: entry.uid ?? 0, gid: entry.gid ?? 0, mtime: entry.mtime ?? new Date(0) });
        }
      }
      entry.resume();
    },
  });
  await readLayer(layer, parser);
  return scan;
}

/** Removes `rel` (a whole directory tree too) unless it is missing; a symlink on the way there is refused by `root`. */
function removeTree(root: Root, dir: string, rel: string, layer: Layer): void {
  if (rel === '.' || rel.startsWith('../')) throw new HakoError('INVALID_ARGUMENT', `layer ${layer.name}: whiteout of '${rel}' is outside the image's tree`);
  try {
    root.stat(path.posix.dirname(rel)); // 'no-symlinks': throws if the parent path holds a symlink
  } catch (e) {
    const reason = (e as { reason?: string }).reason;
    if (reason === 'not-found' || reason === 'not-directory') return; // nothing there to remove
    throw new HakoError('INVALID_ARGUMENT', `layer ${layer.name}: cannot remove '${rel}': ${(e as Error).message}`, { cause: e });
  }
  fs.rmSync(path.join(dir, rel), { recursive: true, force: true }); // does not follow symlinks inside
}

function forgetUnder(meta: Map<string, Meta>, rel: string, keepSelf: boolean): void {
  for (const p of meta.keys()) if ((!keepSelf && p === rel) || p.startsWith(rel === '.' ? '' : `${rel}/`)) meta.delete(p);
}

/** Applies the layer's removals to the tree: whiteouts, opaque directories' old contents, directories it replaces by other types. */
function applyRemovals(root: Root, dir: string, scan: LayerScan, meta: Map<string, Meta>, layer: Layer): void {
  for (const rel of scan.whiteouts) {
    removeTree(root, dir, rel, layer);
    forgetUnder(meta, rel, false);
  }
  for (const rel of scan.opaque) {
    const abs = path.join(dir, rel);
    if (fs.lstatSync(abs, { throwIfNoEntry: false })?.isDirectory()) {
      for (const name of fs.readdirSync(abs)) removeTree(root, dir, rel === '.' ? name : `${rel}/${name}`, layer);
    }
    forgetUnder(meta, rel, true);
  }
  for (const rel of scan.nonDirectories) {
    if (fs.lstatSync(path.join(dir, rel), { throwIfNoEntry: false })?.isDirectory()) removeTree(root, dir, rel, layer);
  }
}

/** Extracts the layer (verifying it again: the blob may have changed since the scan), refusing the image on any bad entry. */
async function extractLayer(layer: Layer, dir: string): Promise<void> {
  const refused: string[] = [];
  const unpack = new Unpack({
    cwd: dir,
    // Owners, modes and times are set afterwards from the headers (applyMeta), exactly and for symlinks too.
    preserveOwner: false,
    noMtime: true,
    maxDepth: 1024,
    filter: (p: string, entry) => {
      const name = path.posix.basename(treePath(p));
      return !name.startsWith(WHITEOUT) && EXTRACTED_TYPES.has((entry as ReadEntry).type);
    },
    onwarn: (code: string, message: string, data: Record<string, unknown>) => {
      if (code !== 'TAR_ENTRY_INFO') refused.push(`${(data.entry as ReadEntry | undefined)?.path ?? ''}: ${message} (${code})`);
    },
  });
  await readLayer(layer, unpack);
  if (refused.length > 0) {
    throw new HakoError('INVALID_ARGUMENT', `layer ${layer.name}: refused entries: ${refused.slice(0, 5).join('; ')}${refused.length > 5 ? ` and ${refused.length - 5} more` : ''}`);
  }
}

/** Makes the layer's symlinks, replacing what is there; their parent paths may hold no symlink. */
function makeSymlinks(root: Root, dir: string, scan: LayerScan, layer: Layer): void {
  for (const [rel, target] of scan.symlinks) {
    if (rel === '.') throw new HakoError('INVALID_ARGUMENT', `layer ${layer.name}: the root directory cannot be a symlink`);
    try {
      root.mkdirAll(path.posix.dirname(rel)); // 'no-symlinks': throws if the path holds a symlink
    } catch (e) {
      throw new HakoError('INVALID_ARGUMENT', `layer ${layer.name}: cannot make symlink '${rel}': ${(e as Error).message}`, { cause: e });
    }
    const abs = path.join(dir, rel);
    fs.rmSync(abs, { recursive: true, force: true });
    fs.symlinkSync(target, abs);
  }
}

/** Sets each entry's owner (when we may), mode and mtime from its last header, walking the tree without following symlinks. */
function applyMeta(dir: string, meta: Map<string, Meta>): void {
  const asRoot = process.getuid?.() === 0;
  const walk = (rel: string): void => {
    const abs = path.join(dir, rel);
    const st = fs.lstatSync(abs);
    if (st.isDirectory()) for (const name of fs.readdirSync(abs)) walk(rel === '.' ? name : `${rel}/${name}`);
    const m = meta.get(rel);
    if (!m) return;
    if (asRoot) fs.lchownSync(abs, m.uid, m.gid);
    if (!st.isSymbolicLink()) fs.chmodSync(abs, m.mode); // after chown, which clears set-user-ID bits
    fs.lutimesSync(abs, m.mtime, m.mtime);
  };
  walk('.');
}

/**
 * Applies `layers` (bottom first) to the empty private directory `dir`. Owners
 * are kept only when running as root; otherwise files belong to the caller.
 */
export async function unpackLayers(layers: Layer[], dir: string): Promise<void> {
  const meta = new Map<string, Meta>();
  const root = Root.open(dir, 'no-symlinks');
  try {
    for (const layer of layers) {
      const scan = await scanLayer(layer);
      if (scan.entries === 0) continue; // an empty layer (only the end-of-archive blocks): nothing to extract
      applyRemovals(root, dir, scan, meta, layer);
      await extractLayer(layer, dir);
      makeSymlinks(root, dir, scan, layer);
      for (const [p, m] of scan.meta) meta.set(p, m);
    }
  } finally {
    root.close();
  }
  applyMeta(dir, meta);
}
