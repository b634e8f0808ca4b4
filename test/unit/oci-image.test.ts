// OCI image layouts and docker save archives (host/image/): no KVM. The
// images are made here from scratch, tar headers and all, so they can hold
// whiteouts, opaque directories and hostile entries.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { Header } from 'tar';
import { HakoError } from '../../host/errors.js';
import { unpackLayers } from '../../host/image/layers.js';
import { loadImage, splitImageRef } from '../../host/image/oci.js';
import { readOciLayout } from '../../host/image/oci-layout.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-oci-'));
const cache = path.join(tmp, 'cache');
const MTIME = new Date(1_000_000_000_000);
let counter = 0;
const fresh = (name: string): string => path.join(tmp, `${name}-${++counter}`);

interface Entry {
  path: string;
  type?: 'File' | 'Directory' | 'SymbolicLink' | 'Link';
  body?: string | Buffer;
  linkpath?: string;
  mode?: number;
  uid?: number;
  gid?: number;
}

/** A tar of `entries`, written header by header (ustar; paths under 100 bytes). */
function tarOf(entries: Entry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const type = e.type ?? 'File';
    const body = Buffer.from(e.body ?? '');
    const header = new Header({
      path: e.path, type, linkpath: e.linkpath, mtime: MTIME, uid: e.uid ?? 0, gid: e.gid ?? 0,
      mode: e.mode ?? (type === 'Directory' ? 0o755 : 0o644), size: type === 'File' ? body.length : 0,
    });
    const block = Buffer.alloc(512);
    header.encode(block, 0);
    blocks.push(block);
    if (type === 'File') blocks.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

const sha256 = (b: Buffer): string => `sha256:${crypto.createHash('sha256').update(b).digest('hex')}`;

function writeBlob(layout: string, bytes: Buffer): { digest: string; size: number } {
  const digest = sha256(bytes);
  fs.mkdirSync(path.join(layout, 'blobs/sha256'), { recursive: true });
  fs.writeFileSync(path.join(layout, 'blobs/sha256', digest.slice(7)), bytes);
  return { digest, size: bytes.length };
}

const runConfig = { Entrypoint: ['/bin/tool'], Cmd: ['--serve'], Env: ['PATH=/bin', 'A=1'], WorkingDir: '/srv', User: '1000:1000' };

function configOf(layers: Buffer[]): Buffer {
  return Buffer.from(JSON.stringify({
    architecture: 'amd64', os: 'linux', config: runConfig,
    rootfs: { type: 'layers', diff_ids: layers.map(sha256) },
  }));
}

type Compression = boolean | 'zstd';
const compress = (layer: Buffer, how: Compression): Buffer =>
  how === 'zstd' ? execFileSync('zstd', ['-q', '-c'], { input: layer }) : how ? zlib.gzipSync(layer) : layer;
const layerSuffix = (how: Compression): string => (how === 'zstd' ? '+zstd' : how ? '+gzip' : '');

/** Writes an OCI image manifest for `layers` (each gzipped if `gzip[i]` is true, zstd-compressed if 'zstd'); returns its descriptor. */
function ociManifest(layout: string, layers: Buffer[], gzip: Compression[]): { mediaType: string; digest: string; size: number } {
  const config = writeBlob(layout, configOf(layers));
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: layers.map((l, i) => ({
      mediaType: `application/vnd.oci.image.layer.v1.tar${layerSuffix(gzip[i]!)}`,
      ...writeBlob(layout, compress(l, gzip[i]!)),
    })),
  }));
  return { mediaType: 'application/vnd.oci.image.manifest.v1+json', ...writeBlob(layout, manifest) };
}

/** An OCI layout directory holding one image of `layers`, named `name`. */
function ociLayout(layers: Buffer[], gzip: Compression[] = layers.map((_, i) => i % 2 === 0), name = 'latest'): string {
  const layout = fresh('layout');
  const manifest = ociManifest(layout, layers, gzip);
  fs.writeFileSync(path.join(layout, 'oci-layout'), '{"imageLayoutVersion": "1.0.0"}');
  fs.writeFileSync(path.join(layout, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{ ...manifest, annotations: { 'org.opencontainers.image.ref.name': name } }],
  }));
  return layout;
}

const base = tarOf([
  { path: './', type: 'Directory' },
  { path: 'bin/', type: 'Directory' },
  { path: 'bin/tool', body: '#!tool\n', mode: 0o755 },
  { path: 'bin/tool-link', type: 'Link', linkpath: 'bin/tool' },
  { path: 'bin/sh', type: 'SymbolicLink', linkpath: 'tool' },
  { path: 'bin/su', body: 'su', mode: 0o4755 },
  { path: 'etc/', type: 'Directory' },
  { path: 'etc/passwd', body: 'root:x:0:0::/root:/bin/sh\n' },
  { path: 'gone.txt', body: 'bye' },
  { path: 'gonedir/', type: 'Directory' },
  { path: 'gonedir/x', body: 'x' },
  { path: 'opq/', type: 'Directory' },
  { path: 'opq/old', body: 'old' },
  { path: 'opq/sub/', type: 'Directory' },
  { path: 'opq/sub/older', body: 'older' },
  { path: 'a/', type: 'Directory' },
  { path: 'a/inside', body: 'in a' },
  { path: 'home/u/', type: 'Directory', uid: 1000, gid: 1000, mode: 0o700 },
  { path: 'home/u/notes', body: 'mine', uid: 1000, gid: 1000, mode: 0o600 },
  { path: 'proc/', type: 'Directory', mode: 0o555 },
]);
const upper = tarOf([
  { path: 'etc/', type: 'Directory' },
  { path: 'etc/passwd', body: 'root:x:0:0::/root:/bin/sh\nu:x:1000:1000::/home/u:/bin/sh\n' },
  { path: '.wh.gone.txt' },
  { path: '.wh.gonedir' },
  { path: 'opq/', type: 'Directory' },
  { path: 'opq/new', body: 'new' },
  { path: 'opq/.wh..wh..opq' },
  { path: 'a', body: 'a is a file now' },
  { path: 'srv/', type: 'Directory' },
]);
const empty = Buffer.alloc(1024); // an empty layer (e.g. from a metadata-only build step)

test('an OCI layout: layers with whiteouts, an opaque directory, links and owners unpack to the merged tree', async () => {
  const layout = ociLayout([base, upper, empty], [true, false, false]);
  const tree = fresh('tree');
  fs.mkdirSync(tree);
  const image = readOciLayout(layout);
  assert.equal(image.config, { entrypoint: ['/bin/tool'], cmd: ['--serve'], env: ['PATH=/bin', 'A=1'], workingDir: '/srv', user: '1000:1000' });
  await unpackLayers(image.layers, tree);

  const read = (p: string): string => fs.readFileSync(path.join(tree, p), 'utf8');
  const exists = (p: string): boolean => fs.lstatSync(path.join(tree, p), { throwIfNoEntry: false }) !== undefined;
  const stat = (p: string): fs.Stats => fs.lstatSync(path.join(tree, p));
  assert.is(read('bin/tool'), '#!tool\n');
  assert.is(stat('bin/tool').ino, stat('bin/tool-link').ino, 'hard link');
  assert.is(fs.readlinkSync(path.join(tree, 'bin/sh')), 'tool');
  assert.match(read('etc/passwd'), /^u:x:1000/m);
  assert.not.ok(exists('gone.txt'), 'whiteout of a file');
  assert.not.ok(exists('gonedir'), 'whiteout of a directory');
  assert.is(read('opq/new'), 'new');
  assert.not.ok(exists('opq/old'), 'opaque directory keeps nothing from below');
  assert.not.ok(exists('opq/sub'));
  assert.not.ok(exists('opq/.wh..wh..opq'));
  assert.is(read('a'), 'a is a file now', 'a directory replaced by a file');
  assert.ok(stat('srv').isDirectory());
  // Metadata from the headers: modes (set-user-ID, 0555 directories), owners, mtimes.
  assert.is(stat('bin/su').mode & 0o7777, 0o4755);
  assert.is(stat('bin/tool').mode & 0o7777, 0o755);
  assert.is(stat('proc').mode & 0o7777, 0o555);
  assert.is(stat('home/u/notes').mode & 0o7777, 0o600);
  if (process.getuid?.() === 0) {
    assert.is(stat('home/u/notes').uid, 1000);
    assert.is(stat('home/u').gid, 1000);
  }
  assert.is(stat('etc').mtimeMs, MTIME.getTime());
  assert.is(stat('bin/sh').mtimeMs, MTIME.getTime());
});

const debugfs = (image: string, request: string): string =>
  execFileSync('debugfs', ['-R', request, image], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();

test('loadImage: an OCI layout becomes a cached ext4 image, found again by its manifest digest without unpacking', async () => {
  const layout = ociLayout([base, upper]);
  const first = await loadImage(layout, cache);
  assert.match(first.id, /^sha256:[0-9a-f]{64}$/);
  assert.is(first.config.workingDir, '/srv');
  assert.match(debugfs(first.rootfsImage, 'cat /opq/new'), /^new$/);
  assert.match(debugfs(first.rootfsImage, 'stat /bin/su'), /Mode:\s+04755/);
  execFileSync('e2fsck', ['-fn', first.rootfsImage], { stdio: 'ignore' });
  assert.equal(fs.readdirSync(cache).filter((f) => f.startsWith('unpack-')), [], 'scratch space removed');
  // The layers are not read again: remove them and load once more.
  for (const f of fs.readdirSync(path.join(layout, 'blobs/sha256'))) {
    if (fs.statSync(path.join(layout, 'blobs/sha256', f)).size > 1000) fs.rmSync(path.join(layout, 'blobs/sha256', f));
  }
  const again = await loadImage(`${layout}:latest`, cache);
  assert.is(again.rootfsImage, first.rootfsImage);
  assert.match(again.users.passwd, /^u:x:1000:1000:/m, "the image's /etc/passwd is kept for user names");
  assert.is(again.users.group, '');
});

test("an image whose /etc/passwd is an absolute symlink: read inside the image's tree, not from the host", async () => {
  const layer = tarOf([
    { path: 'etc/', type: 'Directory' },
    { path: 'etc/passwd', type: 'SymbolicLink', linkpath: '/etc/shadow-of-image' },
    { path: 'etc/shadow-of-image', body: 'app:x:7:8::/:/bin/sh\n' },
    { path: 'etc/group', type: 'SymbolicLink', linkpath: '/../../../../etc/hostname' },
  ]);
  const loaded = await loadImage(ociLayout([layer]), cache);
  assert.is(loaded.users.passwd, 'app:x:7:8::/:/bin/sh\n');
  assert.is(loaded.users.group, '', "a link to the host's /etc/hostname resolves inside the tree, where there is none");
});

test('an image index: the linux/amd64 manifest is picked, and ref names select among images', async () => {
  const layout = fresh('index');
  const arm = ociManifest(layout, [tarOf([{ path: 'arch', body: 'arm64' }])], [true]);
  const amd = ociManifest(layout, [tarOf([{ path: 'arch', body: 'amd64' }])], [true]);
  const other = ociManifest(layout, [tarOf([{ path: 'arch', body: 'other' }])], [false]);
  const index = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      { ...arm, platform: { os: 'linux', architecture: 'arm64' } },
      { ...amd, platform: { os: 'linux', architecture: 'amd64' } },
    ],
  }));
  fs.writeFileSync(path.join(layout, 'oci-layout'), '{"imageLayoutVersion": "1.0.0"}');
  fs.writeFileSync(path.join(layout, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [
      { mediaType: 'application/vnd.oci.image.index.v1+json', ...writeBlob(layout, index), annotations: { 'org.opencontainers.image.ref.name': 'example.com/multi:1' } },
      { ...other, annotations: { 'org.opencontainers.image.ref.name': 'other' } },
    ],
  }));
  const multi = await loadImage(`${layout}:1`, cache);
  assert.is(multi.id, amd.digest);
  assert.is(debugfs(multi.rootfsImage, 'cat /arch'), 'amd64');
  assert.is((await loadImage(`${layout}:other`, cache)).id, other.digest);
  try {
    await loadImage(layout, cache);
    assert.unreachable('two images and no name');
  } catch (e) {
    assert.match((e as Error).message, /no linux\/amd64 image among 2 manifests/);
  }
  try {
    await loadImage(`${layout}:nope`, cache);
    assert.unreachable('unknown name');
  } catch (e) {
    assert.match((e as Error).message, /no image named 'nope' \(names: example.com\/multi:1, other\)/);
  }
});

/** Expects `load` to fail with a HakoError whose message matches `pattern`. */
async function refused(load: () => Promise<unknown>, pattern: RegExp): Promise<void> {
  try {
    await load();
  } catch (e) {
    assert.instance(e, HakoError);
    assert.match((e as Error).message, pattern);
    return;
  }
  assert.unreachable(`expected an error matching ${pattern}`);
}

test('a tampered layer blob is refused, naming its digest; nothing is cached', async () => {
  const layout = ociLayout([base, upper, empty], [true, false, true]); // not an image cached by the tests before
  const manifest = JSON.parse(fs.readFileSync(path.join(layout, 'blobs/sha256',
    JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8')).manifests[0].digest.slice(7)), 'utf8'));
  const layer = manifest.layers[1].digest as string;
  const file = path.join(layout, 'blobs/sha256', layer.slice(7));
  const bytes = fs.readFileSync(file);
  bytes[1030] ^= 1; // a byte of etc/passwd's content: still a valid tar
  fs.writeFileSync(file, bytes);
  const before = fs.existsSync(cache) ? fs.readdirSync(cache).length : 0;
  await refused(() => loadImage(layout, cache), new RegExp(`layer ${layer}: content has digest sha256:[0-9a-f]{64}, expected ${layer}`));
  assert.is(fs.readdirSync(cache).length, before);
});

test('zstd-compressed layers unpack like gzip ones; a damaged zstd stream is refused, naming the layer', async () => {
  const tree = fresh('tree');
  fs.mkdirSync(tree);
  await unpackLayers(readOciLayout(ociLayout([base, upper], ['zstd', 'zstd'])).layers, tree);
  assert.match(fs.readFileSync(path.join(tree, 'etc/passwd'), 'utf8'), /^u:x:1000/m);
  assert.is(fs.readlinkSync(path.join(tree, 'bin/sh')), 'tool');

  const layout = ociLayout([base], ['zstd']);
  const image = readOciLayout(layout);
  const file = path.join(layout, 'blobs/sha256', image.layers[0]!.digest!.hex);
  const bytes = fs.readFileSync(file);
  fs.writeFileSync(file, bytes.subarray(0, bytes.length - 9)); // cut inside the last block
  const damaged = fresh('tree');
  fs.mkdirSync(damaged);
  await refused(() => unpackLayers(readOciLayout(layout).layers, damaged), new RegExp(`layer ${image.layers[0]!.name}`));
});

/** Unpacks `layers` (an OCI layout of them) into a fresh tree, returning the tree. */
async function unpack(layers: Buffer[]): Promise<string> {
  const tree = fresh('tree');
  fs.mkdirSync(tree);
  await unpackLayers(readOciLayout(ociLayout(layers, layers.map(() => false))).layers, tree);
  return tree;
}

test('hostile entries cannot write outside the tree: ../, absolute paths, symlinks and hard links leading out', async () => {
  const outside = fresh('outside');
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, 'victim'), 'safe');
  const rel = path.relative('/', outside); // outside's path without the leading /

  await refused(() => unpack([tarOf([{ path: '../../../../../../../../..' + outside + '/dotdot', body: 'x' }])]), /contains '\.\.'/);
  // An absolute path is made relative: it lands inside the tree.
  const absTree = await unpack([tarOf([{ path: `${outside}/abs`, body: 'x' }])]);
  assert.is(fs.readFileSync(path.join(absTree, rel, 'abs'), 'utf8'), 'x');
  // A symlink out of the tree, then an entry through it: in the same layer, and in a later one.
  const link = tarOf([{ path: 'out', type: 'SymbolicLink', linkpath: outside }]);
  // In one layer, symlinks are made after the other entries: out/same lands in a directory the symlink then replaces.
  const same = await unpack([tarOf([{ path: 'out', type: 'SymbolicLink', linkpath: outside }, { path: 'out/same', body: 'x' }])]);
  assert.is(fs.readlinkSync(path.join(same, 'out')), outside);
  await refused(() => unpack([link, tarOf([{ path: 'out/later', body: 'x' }])]), /symbolic link/i);
  const up = tarOf([{ path: 'up', type: 'SymbolicLink', linkpath: '../../../../../../../..' }]);
  await refused(() => unpack([up, tarOf([{ path: `up/${rel}/up`, body: 'x' }])]), /symbolic link/i);
  await refused(() => unpack([up, tarOf([{ path: `up/${rel}/sym`, type: 'SymbolicLink', linkpath: 'x' }])]), /cannot make symlink 'up\/.*symlink/);
  // A hard link to a file outside.
  await refused(() => unpack([tarOf([{ path: 'hard', type: 'Link', linkpath: `../../../../../../../..${outside}/victim` }])]), /contains '\.\.'/);
  await refused(() => unpack([link, tarOf([{ path: 'hard2', type: 'Link', linkpath: 'out/victim' }])]), /symbolic link/i);
  // A whiteout through a symlink must not delete what it points to.
  await refused(() => unpack([link, tarOf([{ path: 'out/.wh.victim' }])]), /cannot remove 'out\/victim'/);
  // Symlinks keep their targets as stored (in the guest they resolve inside the container's root), and can be replaced.
  const kept = await unpack([link, up]);
  assert.is(fs.readlinkSync(path.join(kept, 'out')), outside);
  assert.is(fs.readlinkSync(path.join(kept, 'up')), '../../../../../../../..');
  const replaced = await unpack([link, tarOf([{ path: 'out', body: 'replaced' }])]);
  assert.is(fs.readFileSync(path.join(replaced, 'out'), 'utf8'), 'replaced');

  assert.equal(fs.readdirSync(outside), ['victim']);
  assert.is(fs.readFileSync(path.join(outside, 'victim'), 'utf8'), 'safe');
});

/** A docker save archive (the classic layout: <id>/layer.tar, <config hex>.json, manifest.json). */
function dockerArchive(layers: Buffer[], tags: string[]): { file: string; configDigest: string } {
  const config = configOf(layers);
  const configDigest = sha256(config);
  const ids = layers.map((l, i) => sha256(Buffer.concat([l, Buffer.from(`id ${i}`)])).slice(7)); // docker's are chain IDs: distinct
  const entries: Entry[] = [];
  layers.forEach((l, i) => {
    entries.push({ path: `${ids[i]}/`, type: 'Directory' });
    // docker save writes a repeated layer once, linking to it from the other directories.
    const earlier = layers.findIndex((m) => m.equals(l));
    entries.push(earlier < i
      ? { path: `${ids[i]}/layer.tar`, type: 'SymbolicLink', linkpath: `../${ids[earlier]}/layer.tar` }
      : { path: `${ids[i]}/layer.tar`, body: l });
  });
  entries.push({ path: `${configDigest.slice(7)}.json`, body: config });
  entries.push({ path: 'manifest.json', body: JSON.stringify([{ Config: `${configDigest.slice(7)}.json`, RepoTags: tags, Layers: ids.map((id) => `${id}/layer.tar`) }]) });
  const file = `${fresh('docker')}.tar`;
  fs.writeFileSync(file, tarOf(entries));
  return { file, configDigest };
}

/** A docker save archive as Docker 25 and later write it: blobs/sha256/<hex> besides manifest.json. */
function dockerBlobsArchive(layers: Buffer[], tags: string[]): { file: string; configDigest: string } {
  const config = configOf(layers);
  const configDigest = sha256(config);
  const blobs = [...layers, config];
  const entries: Entry[] = [{ path: 'blobs/', type: 'Directory' }, { path: 'blobs/sha256/', type: 'Directory' }];
  for (const b of blobs) entries.push({ path: `blobs/sha256/${sha256(b).slice(7)}`, body: b });
  entries.push({ path: 'manifest.json', body: JSON.stringify([{ Config: `blobs/sha256/${configDigest.slice(7)}`, RepoTags: tags, Layers: layers.map((l) => `blobs/sha256/${sha256(l).slice(7)}`) }]) });
  const file = `${fresh('docker25')}.tar`;
  fs.writeFileSync(file, tarOf(entries));
  return { file, configDigest };
}

test('loadImage: a docker save archive, selected by its tag, with a repeated layer', async () => {
  const { file, configDigest } = dockerArchive([base, upper, empty, empty], ['hako/test:1']);
  const loaded = await loadImage(`${file}:hako/test:1`, cache);
  assert.is(loaded.id, configDigest);
  assert.equal(loaded.config.entrypoint, ['/bin/tool']);
  assert.match(debugfs(loaded.rootfsImage, 'cat /etc/passwd'), /^u:x:1000/m);
  assert.match(debugfs(loaded.rootfsImage, 'ls /'), /opq/);
  assert.not.match(debugfs(loaded.rootfsImage, 'ls /'), /gone/);
  assert.is((await loadImage(file, cache)).rootfsImage, loaded.rootfsImage);
  await refused(() => loadImage(`${file}:other`, cache), /no image tagged 'other' \(tags: hako\/test:1\)/);
});

test('loadImage: a docker save archive with blobs/sha256 paths (Docker 25+); a damaged config is refused', async () => {
  const { file, configDigest } = dockerBlobsArchive([base, upper], ['hako/blobs:latest']);
  const loaded = await loadImage(`${file}:hako/blobs`, cache);
  assert.is(loaded.id, configDigest);
  assert.is(debugfs(loaded.rootfsImage, 'cat /opq/new'), 'new');
  const bytes = fs.readFileSync(file);
  const at = bytes.indexOf('"Entrypoint"');
  bytes[at + 1] = 'e'.charCodeAt(0);
  const damaged = `${fresh('docker25-damaged')}.tar`;
  fs.writeFileSync(damaged, bytes);
  await refused(() => loadImage(damaged, cache), new RegExp(`config blobs/sha256/${configDigest.slice(7)}: content has digest`));
});

test('a docker save archive whose layer does not match its diff ID is refused, naming the layer', async () => {
  const good = dockerArchive([base], []);
  const tampered = tarOf([{ path: 'etc/passwd', body: 'evil' }]);
  // Same config (diff IDs of `base`), other layer content.
  const bytes = fs.readFileSync(good.file);
  const at = bytes.indexOf(base);
  const file = `${fresh('tampered')}.tar`;
  fs.writeFileSync(file, Buffer.concat([bytes.subarray(0, at), tampered, Buffer.alloc(base.length - tampered.length), bytes.subarray(at + base.length)]));
  await refused(() => loadImage(file, cache), new RegExp(`layer [0-9a-f]{64}/layer\\.tar \\(${sha256(base)}\\).*expected ${sha256(base)}`));
});

test('an archive entry leading out of the extraction directory refuses the archive', async () => {
  const { file } = dockerArchive([tarOf([{ path: 'f', body: 'f' }])], []);
  const hostile = `${fresh('hostile')}.tar`;
  const escape = `../../../../../../../..${tmp}/escaped`;
  fs.writeFileSync(hostile, Buffer.concat([tarOf([{ path: escape, body: 'x' }]).subarray(0, 1024), fs.readFileSync(file)]));
  await refused(() => loadImage(hostile, cache), /refused entries: .*contains '\.\.'/);
  assert.not.ok(fs.existsSync(path.join(tmp, 'escaped')));
});

test('an OCI layout in a tar (oci-archive) loads like the directory', async () => {
  const layout = ociLayout([base]);
  const entries: Entry[] = [];
  const walk = (rel: string): void => {
    for (const name of fs.readdirSync(path.join(layout, rel))) {
      const p = rel ? `${rel}/${name}` : name;
      if (fs.statSync(path.join(layout, p)).isDirectory()) {
        entries.push({ path: `${p}/`, type: 'Directory' });
        walk(p);
      } else entries.push({ path: p, body: fs.readFileSync(path.join(layout, p)) });
    }
  };
  walk('');
  const file = `${fresh('oci-archive')}.tar`;
  fs.writeFileSync(file, tarOf(entries));
  const fromTar = await loadImage(file, cache);
  assert.is(fromTar.id, readOciLayout(layout).id);
  assert.is(debugfs(fromTar.rootfsImage, 'cat /bin/tool'), '#!tool\n');
});

test('splitImageRef: an existing path is taken whole; otherwise the name follows the first colon after an existing path', () => {
  const dir = fresh('a:b');
  fs.mkdirSync(dir);
  assert.equal(splitImageRef(dir), { path: dir });
  assert.equal(splitImageRef(`${dir}:repo/x:tag`), { path: dir, name: 'repo/x:tag' });
  assert.throws(() => splitImageRef('/nonexistent/image:tag'), /no such OCI layout directory or image archive/);
});

test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
test.run();
