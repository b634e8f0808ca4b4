// OCI image layout directories (image-spec image-layout.md): `oci-layout`,
// `index.json` and content-addressed `blobs/<alg>/<hex>`. Picks one image
// manifest (by ref name annotation, then linux/amd64, or the only one) and
// describes its layers for unpackLayers; every blob read is verified.
import fs from 'node:fs';
import { HakoError } from '../errors.js';
import { formatDigest, parseDigest, verifyBytes, type Digest } from './digest.js';
import { parseImageConfig, parseJsonObject, type ImageConfig } from './image-config.js';
import { openBlob, type Layer } from './layers.js';

/** An image ready to unpack: `id` names its content (the manifest digest, or the config digest of a docker archive). */
export interface ImageSource {
  id: string;
  config: ImageConfig;
  layers: Layer[];
}

/** Manifests and configs are small; a bigger one is refused rather than read into memory. */
export const MAX_JSON_BYTES = 4 << 20;
const REF_NAME = 'org.opencontainers.image.ref.name';
const INDEX_TYPES = ['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json'];
const MANIFEST_TYPES = ['application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json'];

interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  annotations: Record<string, string>;
  platform?: { os?: string; architecture?: string };
}

function descriptor(value: unknown, what: string): Descriptor {
  const d = value as Record<string, unknown> | null;
  if (typeof d !== 'object' || d === null) throw new HakoError('INVALID_ARGUMENT', `${what}: expected a descriptor object`);
  if (typeof d.mediaType !== 'string') throw new HakoError('INVALID_ARGUMENT', `${what}: "mediaType" is not a string`);
  if (!Number.isSafeInteger(d.size) || (d.size as number) < 0) throw new HakoError('INVALID_ARGUMENT', `${what}: "size" is not a byte count`);
  return {
    mediaType: d.mediaType,
    digest: parseDigest(d.digest, what),
    size: d.size as number,
    annotations: typeof d.annotations === 'object' && d.annotations !== null ? d.annotations as Record<string, string> : {},
    platform: typeof d.platform === 'object' && d.platform !== null ? d.platform as Descriptor['platform'] : undefined,
  };
}

function descriptors(value: unknown, what: string): Descriptor[] {
  if (!Array.isArray(value)) throw new HakoError('INVALID_ARGUMENT', `${what}: expected an array of descriptors`);
  return value.map((d, i) => descriptor(d, `${what}[${i}]`));
}

const blobPath = (d: Digest): string => `blobs/${d.algorithm}/${d.hex}`;

/** Reads a small file of the layout (at most MAX_JSON_BYTES). */
function readSmall(dir: string, rel: string, what: string): Buffer {
  let fd: number;
  try {
    fd = openBlob(dir, rel);
  } catch (e) {
    throw new HakoError('INVALID_ARGUMENT', `${what}: ${dir}/${rel} cannot be read: ${(e as Error).message}`, { cause: e });
  }
  try {
    const size = fs.fstatSync(fd).size;
    if (size > MAX_JSON_BYTES) throw new HakoError('INVALID_ARGUMENT', `${what}: ${size} bytes, more than the ${MAX_JSON_BYTES} allowed`);
    return fs.readFileSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads and verifies a small blob (manifest, index, config). */
function readBlob(dir: string, d: Descriptor, what: string): Buffer {
  const bytes = readSmall(dir, blobPath(d.digest), `${what} ${formatDigest(d.digest)}`);
  if (bytes.length !== d.size) {
    throw new HakoError('INVALID_ARGUMENT', `${what} ${formatDigest(d.digest)}: ${bytes.length} bytes, expected ${d.size} (damaged or tampered with)`);
  }
  verifyBytes(bytes, d.digest, `${what} ${formatDigest(d.digest)}`);
  return bytes;
}

const platformName = (d: Descriptor): string => `${d.platform?.os ?? '?'}/${d.platform?.architecture ?? '?'}`;

/** The one image manifest `list` leads to: through nested indexes, preferring linux/amd64, or the only candidate. */
function pickManifest(dir: string, list: Descriptor[], what: string): Descriptor {
  const usable = list.filter((d) => INDEX_TYPES.includes(d.mediaType) || MANIFEST_TYPES.includes(d.mediaType));
  const amd64 = usable.filter((d) => d.platform?.os === 'linux' && d.platform.architecture === 'amd64');
  const picked = amd64.length > 0 ? amd64[0] : usable.length === 1 ? usable[0] : undefined;
  if (!picked) {
    throw new HakoError('INVALID_ARGUMENT', `${what}: no linux/amd64 image among ${usable.length} manifests (${usable.map(platformName).join(', ') || 'none'})`);
  }
  if (MANIFEST_TYPES.includes(picked.mediaType)) return picked;
  const index = parseJsonObject(readBlob(dir, picked, 'image index'), `image index ${formatDigest(picked.digest)}`);
  return pickManifest(dir, descriptors(index.manifests, `image index ${formatDigest(picked.digest)}: manifests`), `image index ${formatDigest(picked.digest)}`);
}

/** The manifests of index.json named `ref` (an annotation equal to it, or ending in `:ref`), or all when `ref` is undefined. */
function byRefName(list: Descriptor[], ref: string | undefined, what: string): Descriptor[] {
  if (ref === undefined) return list;
  const named = list.filter((d) => d.annotations[REF_NAME] === ref || d.annotations[REF_NAME]?.endsWith(`:${ref}`));
  if (named.length === 0) {
    const names = list.map((d) => d.annotations[REF_NAME]).filter((n) => n !== undefined);
    throw new HakoError('INVALID_ARGUMENT', `${what}: no image named '${ref}' (names: ${names.join(', ') || 'none'})`);
  }
  return named;
}

/** Reads the OCI layout `dir` and picks its image (named `ref` if given). */
export function readOciLayout(dir: string, ref?: string): ImageSource {
  const what = `OCI layout ${dir}`;
  const layout = parseJsonObject(readSmall(dir, 'oci-layout', what), `${what}: oci-layout`);
  if (typeof layout.imageLayoutVersion !== 'string' || !layout.imageLayoutVersion.startsWith('1.')) {
    throw new HakoError('INVALID_ARGUMENT', `${what}: oci-layout has imageLayoutVersion ${JSON.stringify(layout.imageLayoutVersion)}, expected 1.x`);
  }
  const index = parseJsonObject(readSmall(dir, 'index.json', what), `${what}: index.json`);
  const manifestDesc = pickManifest(dir, byRefName(descriptors(index.manifests, `${what}: index.json manifests`), ref, what), what);
  const manifestWhat = `image manifest ${formatDigest(manifestDesc.digest)}`;
  const manifest = parseJsonObject(readBlob(dir, manifestDesc, 'image manifest'), manifestWhat);
  const configDesc = descriptor(manifest.config, `${manifestWhat}: config`);
  const { config, diffIds } = parseImageConfig(readBlob(dir, configDesc, 'image config'), `image config ${formatDigest(configDesc.digest)}`);
  const layerDescs = descriptors(manifest.layers, `${manifestWhat}: layers`);
  if (layerDescs.length !== diffIds.length) {
    throw new HakoError('INVALID_ARGUMENT', `${manifestWhat}: ${layerDescs.length} layers but the config lists ${diffIds.length} diff IDs`);
  }
  return {
    id: formatDigest(manifestDesc.digest),
    config,
    layers: layerDescs.map((d, i) => ({
      open: () => openBlob(dir, blobPath(d.digest)),
      digest: d.digest,
      size: d.size,
      diffId: diffIds[i],
      name: formatDigest(d.digest),
    })),
  };
}
