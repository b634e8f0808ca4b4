// Image archives: what `docker save` writes (manifest.json naming each image's
// config and layer tars, older versions with <id>/layer.tar and symlinks for
// repeated layers, newer ones an OCI layout besides), and OCI layouts in a tar
// (`oci-archive`). A first read-only pass finds the image and its config, so a
// cached image needs no extraction; extractArchive() unpacks the archive (by node-tar,
// refusing entries that would land outside) where its layers are then read.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { list, extract as extractTar, type ReadEntry } from 'tar';
import { HakoError } from '../errors.js';
import { parseDigest, verifyBytes, type Digest } from './digest.js';
import { parseImageConfig, type ImageConfig } from './image-config.js';
import { openBlob, treePath, type Layer } from './layers.js';
import { MAX_JSON_BYTES } from './oci-layout.js';

/** All files kept from one pass together; beyond this, the archive is refused. */
const MAX_KEPT_BYTES = 64 << 20;
/** What the first pass keeps: the archive's indexes and classic docker save configs (<hex>.json). */
const isMetadata = (p: string): boolean => ['manifest.json', 'index.json', 'oci-layout'].includes(p) || (p.endsWith('.json') && !p.includes('/'));

export type ArchiveImage =
  /** A docker save archive: the image's config is known; its layers are files of the extracted archive. */
  | { kind: 'docker'; id: string; config: ImageConfig; layers: (dir: string) => Layer[] }
  /** An OCI layout in a tar: read it with readOciLayout once extracted. */
  | { kind: 'oci' };

/** Reads the archive through, keeping the regular files `wanted` picks (each at most MAX_JSON_BYTES) by their path. */
async function keepFiles(file: string, wanted: (p: string) => boolean): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  let kept = 0;
  let tooBig: string | undefined; // thrown once the read is over: a throw from onReadEntry would escape the stream
  try {
    await list({
      file,
      onReadEntry: (entry: ReadEntry) => {
        const p = treePath(entry.path);
        if ((entry.type !== 'File' && entry.type !== 'OldFile') || !wanted(p) || tooBig) return;
        kept += entry.size;
        if (entry.size > MAX_JSON_BYTES) tooBig = `${p} is over ${MAX_JSON_BYTES} bytes`;
        else if (kept > MAX_KEPT_BYTES) tooBig = `its metadata files are over ${MAX_KEPT_BYTES} bytes`;
        if (tooBig) return;
        const chunks: Buffer[] = [];
        entry.on('data', (c: Buffer) => chunks.push(c));
        entry.on('end', () => files.set(p, Buffer.concat(chunks)));
      },
    });
  } catch (e) {
    throw new HakoError('INVALID_ARGUMENT', `image archive ${file}: cannot be read as a tar: ${(e as Error).message}`, { cause: e });
  }
  if (tooBig) throw new HakoError('INVALID_ARGUMENT', `image archive ${file}: ${tooBig}`);
  return files;
}

/** The sha256 a docker save path embeds (<hex>.json, <hex>/layer.tar is not a digest, blobs/sha256/<hex>), if any. */
function pathDigest(p: string): Digest | undefined {
  const m = /(?:^|\/)(?:blobs\/sha256\/)?([0-9a-f]{64})(?:\.json)?$/.exec(p);
  return m && !p.endsWith('/layer.tar') ? parseDigest(`sha256:${m[1]}`, p) : undefined;
}

interface ManifestEntry {
  Config: string;
  RepoTags: string[];
  Layers: string[];
}

function manifestEntries(bytes: Buffer, what: string): ManifestEntry[] {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new HakoError('INVALID_ARGUMENT', `${what}: not valid JSON (${(e as Error).message})`, { cause: e });
  }
  const ok = Array.isArray(value) && value.every((m) => typeof m === 'object' && m !== null && typeof m.Config === 'string' &&
    Array.isArray(m.Layers) && m.Layers.every((l: unknown) => typeof l === 'string') &&
    (m.RepoTags == null || (Array.isArray(m.RepoTags) && m.RepoTags.every((t: unknown) => typeof t === 'string'))));
  if (!ok) throw new HakoError('INVALID_ARGUMENT', `${what}: expected [{"Config": string, "RepoTags": [string], "Layers": [string]}]`);
  return (value as ManifestEntry[]).map((m) => ({ ...m, RepoTags: m.RepoTags ?? [] }));
}

/** The entry tagged `ref` (or `ref:latest`), or the only one. */
function pickEntry(entries: ManifestEntry[], ref: string | undefined, file: string): ManifestEntry {
  const what = `image archive ${file}`;
  const tags = entries.flatMap((m) => m.RepoTags);
  if (ref !== undefined) {
    const tagged = entries.find((m) => m.RepoTags.includes(ref) || m.RepoTags.includes(`${ref}:latest`));
    if (!tagged) throw new HakoError('INVALID_ARGUMENT', `${what}: no image tagged '${ref}' (tags: ${tags.join(', ') || 'none'})`);
    return tagged;
  }
  if (entries.length !== 1) {
    throw new HakoError('INVALID_ARGUMENT', `${what}: holds ${entries.length} images; name one as ${file}:REPO:TAG (tags: ${tags.join(', ') || 'none'})`);
  }
  return entries[0];
}

/** Finds the image in the archive `file` (tagged `ref` if given), reading but not extracting it. */
export async function readImageArchive(file: string, ref?: string): Promise<ArchiveImage> {
  const what = `image archive ${file}`;
  const files = await keepFiles(file, isMetadata);
  const manifest = files.get('manifest.json');
  if (!manifest) {
    if (files.has('index.json') && files.has('oci-layout')) return { kind: 'oci' };
    throw new HakoError('INVALID_ARGUMENT', `${what}: neither a docker save archive (manifest.json) nor an OCI layout (oci-layout, index.json)`);
  }
  const entry = pickEntry(manifestEntries(manifest, `${what}: manifest.json`), ref, file);
  const configPath = treePath(entry.Config);
  // Docker 25+ keeps the config under blobs/, with the layers: read through again for it alone.
  const configBytes = files.get(configPath) ?? (await keepFiles(file, (p) => p === configPath)).get(configPath);
  if (!configBytes) throw new HakoError('INVALID_ARGUMENT', `${what}: config ${entry.Config} is missing`);
  const configDigest = pathDigest(configPath);
  if (configDigest) verifyBytes(configBytes, configDigest, `${what}: config ${entry.Config}`);
  const { config, diffIds } = parseImageConfig(configBytes, `${what}: config ${entry.Config}`);
  if (entry.Layers.length !== diffIds.length) {
    throw new HakoError('INVALID_ARGUMENT', `${what}: manifest.json lists ${entry.Layers.length} layers but the config ${diffIds.length} diff IDs`);
  }
  return {
    kind: 'docker',
    // The image ID docker shows: the config's digest, which covers the layers through their diff IDs.
    id: `sha256:${createHash('sha256').update(configBytes).digest('hex')}`,
    config,
    layers: (dir) => entry.Layers.map((p, i) => ({
      open: () => openBlob(dir, treePath(p)),
      digest: pathDigest(treePath(p)),
      diffId: diffIds[i],
      name: `${p} (${diffIds[i].algorithm}:${diffIds[i].hex})`,
    })),
  };
}

/** Extracts the archive `file` into the empty private directory `dir`: regular files, directories and links only. */
export async function extractArchive(file: string, dir: string): Promise<void> {
  const refused: string[] = [];
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  try {
    await extractTar({
      file,
      cwd: dir,
      preserveOwner: false,
      filter: (_p: string, entry) => ['File', 'OldFile', 'Directory', 'SymbolicLink', 'Link'].includes((entry as ReadEntry).type),
      onwarn: (code: string, message: string, data: Record<string, unknown>) => {
        if (code !== 'TAR_ENTRY_INFO') refused.push(`${(data.entry as ReadEntry | undefined)?.path ?? ''}: ${message} (${code})`);
      },
    });
  } catch (e) {
    throw new HakoError('INVALID_ARGUMENT', `image archive ${file}: cannot be extracted: ${(e as Error).message}`, { cause: e });
  }
  if (refused.length > 0) {
    throw new HakoError('INVALID_ARGUMENT', `image archive ${file}: refused entries: ${refused.slice(0, 5).join('; ')}`);
  }
}
