// ext4 images from directory trees (host/image/): no KVM, the image is read
// back with debugfs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HakoError } from '../../host/errors.js';
import { cachedExt4Image } from '../../host/image/cache.js';
import { imageBytes, makeExt4Image, measureTree, treeHash } from '../../host/image/ext4.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-image-'));
const big = crypto.randomBytes(300_000);

/** A small tree with what a root file system has: nested directories, a hard link, symlinks, modes, an empty file. */
function makeTree(dir: string): void {
  fs.mkdirSync(path.join(dir, 'bin'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'etc/deep/er'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'bin/tool'), big, { mode: 0o755 });
  fs.linkSync(path.join(dir, 'bin/tool'), path.join(dir, 'bin/tool-link'));
  fs.symlinkSync('/bin/tool', path.join(dir, 'bin/short'));
  fs.symlinkSync('/' + 'x'.repeat(100), path.join(dir, 'bin/long'));
  fs.writeFileSync(path.join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n', { mode: 0o644 });
  fs.writeFileSync(path.join(dir, 'etc/deep/er/empty'), '');
  fs.mkdirSync(path.join(dir, 'tmp'), { mode: 0o1777 });
  fs.chmodSync(path.join(dir, 'tmp'), 0o1777);
  for (let i = 0; i < 300; i++) fs.writeFileSync(path.join(dir, 'etc', `f${i}`), `${i}\n`);
  const epoch = new Date(1000_000_000 * 1000);
  const touch = (p: string): void => {
    fs.lutimesSync(p, epoch, epoch);
    if (fs.lstatSync(p).isDirectory()) for (const n of fs.readdirSync(p)) touch(path.join(p, n));
  };
  touch(dir);
}

const debugfs = (image: string, request: string): string =>
  execFileSync('debugfs', ['-R', request, image], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();

test('measureTree counts inodes once per hard link and blocks per file', () => {
  const dir = path.join(tmp, 'measure');
  makeTree(dir);
  const size = measureTree(dir);
  // bin, etc, etc/deep, etc/deep/er, tmp; tool (+link), short, long, passwd, empty, 300 small files
  assert.is(size.inodes, 5 + 5 + 300);
  assert.ok(size.dataBlocks >= Math.ceil(big.length / 4096) + 300 + 1, `dataBlocks ${size.dataBlocks}`);
  assert.is(imageBytes(size) % (1 << 20), 0);
});

test('makeExt4Image: the files, links, modes and times are in the image, and it passes e2fsck', () => {
  const dir = path.join(tmp, 'tree');
  makeTree(dir);
  const image = path.join(tmp, 'tree.ext4');
  makeExt4Image(dir, image);
  assert.is(fs.statSync(image).size, imageBytes(measureTree(dir)));
  execFileSync('e2fsck', ['-fn', image], { stdio: 'ignore' }); // throws on any inconsistency

  const dumped = path.join(tmp, 'dumped');
  execFileSync('debugfs', ['-R', `dump /bin/tool ${dumped}`, image], { stdio: 'ignore' });
  assert.ok(fs.readFileSync(dumped).equals(big), 'bin/tool differs');
  assert.is(debugfs(image, 'cat /etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  assert.is(debugfs(image, 'cat /etc/f299'), '299\n');
  assert.match(debugfs(image, 'stat /bin/short'), /Fast link dest: "\/bin\/tool"/);
  assert.match(debugfs(image, 'stat /bin/long'), /Type: symlink/);
  const tool = debugfs(image, 'stat /bin/tool');
  assert.match(tool, /Mode:\s+0755/);
  assert.match(tool, /Links: 2/);
  assert.match(tool, /mtime: 0x3b9aca00/); // the tree's mtime, 10^9
  assert.match(tool, /ctime: 0x00000001/);
  assert.match(tool, /atime: 0x00000001/);
  assert.match(debugfs(image, 'stat /tmp'), /Mode:\s+01777/);
  assert.match(debugfs(image, 'ls -l /etc/deep/er'), /empty/);
});

test('the same tree made twice, with other ctimes and atimes, gives the same image bytes', () => {
  const a = path.join(tmp, 'same-a'), b = path.join(tmp, 'same-b');
  makeTree(a);
  makeTree(b); // created later: other ctimes
  fs.readFileSync(path.join(b, 'bin/tool')); // and maybe another atime
  const sha = (dir: string): string => {
    const image = `${dir}.ext4`;
    makeExt4Image(dir, image);
    return crypto.createHash('sha256').update(fs.readFileSync(image)).digest('hex');
  };
  assert.is(sha(a), sha(b));
  assert.is(treeHash(a), treeHash(b));
  fs.writeFileSync(path.join(b, 'etc/f0'), 'changed\n');
  fs.lutimesSync(path.join(b, 'etc/f0'), new Date(1000_000_000 * 1000), new Date(1000_000_000 * 1000));
  assert.is.not(treeHash(a), treeHash(b));
});

test('cachedExt4Image builds once per tree content and reuses the entry', () => {
  const dir = path.join(tmp, 'cached');
  makeTree(dir);
  const root = path.join(tmp, 'cache');
  const first = cachedExt4Image(dir, root);
  const mtime = fs.statSync(first).mtimeMs;
  assert.is(cachedExt4Image(dir, root), first);
  assert.is(fs.statSync(first).mtimeMs, mtime);
  assert.equal(fs.readdirSync(root), [path.basename(first)]);
  fs.writeFileSync(path.join(dir, 'etc/new'), 'x');
  assert.is.not(cachedExt4Image(dir, root), first);
});

test('a source that is not a directory is refused, naming it', () => {
  const file = path.join(tmp, 'not-a-dir');
  fs.writeFileSync(file, '');
  for (const source of [file, path.join(tmp, 'missing')]) {
    try {
      makeExt4Image(source, path.join(tmp, 'x.ext4'));
      assert.unreachable('did not throw');
    } catch (e) {
      assert.instance(e, HakoError);
      assert.is((e as HakoError).code, 'INVALID_ARGUMENT');
      assert.match((e as Error).message, `image source ${source}: expected a directory`);
    }
  }
});

test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test.run();
