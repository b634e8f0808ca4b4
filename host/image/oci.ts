// `hako run --image REF`: a container root file system from an OCI image
// layout directory or an image archive (docker save, or an OCI layout in a
// tar), as a cached ext4 image plus the image's run configuration. The cache
// is keyed by the image's digest (manifest, or config for docker save), so the
// same image again is found without unpacking anything.
import fs from 'node:fs';
import path from 'node:path';
import { HakoError } from '../errors.js';
import { imageCacheFile, imageRoot, storeImage } from './cache.js';
import { extractArchive, readImageArchive } from './docker-archive.js';
import { makeExt4Image } from './ext4.js';
import type { ImageConfig } from './image-config.js';
import { unpackLayers, type Layer } from './layers.js';
import { readUserDb, type UserDb } from './users.js';
import { readOciLayout } from './oci-layout.js';

export type { ImageConfig } from './image-config.js';

/** Bump when unpacking changes what a tree holds for the same layers. */
const UNPACK_FORMAT = 2;

export interface LoadedImage {
  /** The ext4 image of the root file system (in the image cache: read-only, shared). */
  rootfsImage: string;
  /** How the image says to run it. */
  config: ImageConfig;
  /** The image's digest: its manifest's, or for a docker save archive its config's (the image ID). */
  id: string;
  /** Its /etc/passwd and /etc/group, for user names (kept beside the ext4 image in the cache). */
  users: UserDb;
}

/**
 * Splits REF into the layout directory or archive file and the image name in
 * it: "DIR", "DIR:NAME" (an org.opencontainers.image.ref.name annotation),
 * "FILE.tar", "FILE.tar:REPO:TAG" (a docker save RepoTags entry). A path that
 * exists is taken whole, colons and all.
 */
export function splitImageRef(ref: string): { path: string; name?: string } {
  if (fs.existsSync(ref)) return { path: ref };
  for (let i = ref.indexOf(':'); i > 0; i = ref.indexOf(':', i + 1)) {
    const name = ref.slice(i + 1);
    if (name !== '' && fs.existsSync(ref.slice(0, i))) return { path: ref.slice(0, i), name };
  }
  throw new HakoError('INVALID_ARGUMENT', `image '${ref}': no such OCI layout directory or image archive ` +
    `(expected DIR, DIR:NAME, FILE.tar or FILE.tar:REPO:TAG; pulling from a registry is not supported)`);
}

/** Loads the image `ref` (see splitImageRef): its root file system as an ext4 image, made and cached first if needed. */
export async function loadImage(ref: string, root = imageRoot()): Promise<LoadedImage> {
  const { path: source, name } = splitImageRef(ref);
  let work: string | undefined;
  // Private (0700) scratch space next to the cache: the extracted archive and the unpacked tree.
  const scratch = (sub: string): string => {
    if (!work) {
      fs.mkdirSync(root, { recursive: true });
      work = fs.mkdtempSync(path.join(root, 'unpack-'));
    }
    return path.join(work, sub);
  };
  try {
    let image: { id: string; config: ImageConfig; layers: () => Promise<Layer[]> };
    if (fs.statSync(source).isDirectory()) {
      const oci = readOciLayout(source, name);
      image = { ...oci, layers: async () => oci.layers };
    } else {
      const archive = await readImageArchive(source, name);
      const dir = scratch('archive');
      if (archive.kind === 'docker') {
        image = { ...archive, layers: async () => { await extractArchive(source, dir); return archive.layers(dir); } };
      } else {
        await extractArchive(source, dir);
        const oci = readOciLayout(dir, name);
        image = { ...oci, layers: async () => oci.layers };
      }
    }
    const rootfsImage = imageCacheFile(`oci ${UNPACK_FORMAT}\nimage ${image.id}`, root);
    const usersFile = `${rootfsImage}.users.json`;
    if (!fs.existsSync(rootfsImage) || !fs.existsSync(usersFile)) {
      const tree = scratch('rootfs');
      fs.mkdirSync(tree);
      await unpackLayers(await image.layers(), tree);
      const users = JSON.stringify(readUserDb(tree));
      storeImage(usersFile, (tmp) => fs.writeFileSync(tmp, users));
      storeImage(rootfsImage, (tmp) => makeExt4Image(tree, tmp));
    }
    return { rootfsImage, config: image.config, id: image.id, users: JSON.parse(fs.readFileSync(usersFile, 'utf8')) as UserDb };
  } finally {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  }
}
