// A sandbox's shared directory on the host: bind mounts of a container's
// root file system and volumes, read-only where asked, and removal that
// unmounts first and never deletes through a mount. Needs root (mount(2)), not KVM.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mountsBelow, SandboxShare, unmountAndRemove } from '../../host/sandbox/shares.js';

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-shares-'));
test.after(() => {
  unmountAndRemove(scratch);
});

function dirWith(name: string, files: Record<string, string>): string {
  const dir = path.join(scratch, name);
  fs.mkdirSync(dir);
  for (const [f, body] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), body);
  return dir;
}

test('rootfs and volumes are bind-mounted under <container>/ in the share; removal unmounts and keeps the sources', () => {
  const sandboxDir = path.join(scratch, 'sandbox');
  fs.mkdirSync(sandboxDir);
  const share = new SandboxShare(sandboxDir);
  const rootfs = dirWith('rootfs-src', { 'hello.txt': 'hi' });
  const data = dirWith('data-src', { 'keep.txt': 'precious' });
  assert.is(share.addRootfs('web', rootfs, false), 'web/rootfs');
  assert.is(share.addVolume('web', 0, data, true), '/run/hako-shared/web/volumes/0');
  assert.is(fs.readFileSync(path.join(share.root, 'web/rootfs/hello.txt'), 'utf8'), 'hi');
  fs.writeFileSync(path.join(share.root, 'web/rootfs/new.txt'), 'written');
  assert.is(fs.readFileSync(path.join(rootfs, 'new.txt'), 'utf8'), 'written', 'a writable rootfs writes through');
  assert.throws(() => fs.writeFileSync(path.join(share.root, 'web/volumes/0/x'), 'x'), /EROFS/);
  assert.equal(mountsBelow(sandboxDir).sort(), [path.join(share.root, 'web/rootfs'), path.join(share.root, 'web/volumes/0')]);

  unmountAndRemove(sandboxDir);
  assert.not.ok(fs.existsSync(sandboxDir));
  assert.equal(mountsBelow(scratch), []);
  assert.is(fs.readFileSync(path.join(data, 'keep.txt'), 'utf8'), 'precious', 'a volume source survives the removal');
  assert.is(fs.readFileSync(path.join(rootfs, 'hello.txt'), 'utf8'), 'hi');
});

test('a missing or non-directory source is refused, naming the field; nothing stays mounted', () => {
  const sandboxDir = path.join(scratch, 'sandbox2');
  fs.mkdirSync(sandboxDir);
  const share = new SandboxShare(sandboxDir);
  const file = path.join(scratch, 'plain-file');
  fs.writeFileSync(file, '');
  assert.throws(() => share.addRootfs('c', path.join(scratch, 'missing'), false), /rootfs.directory must be a directory on the host/);
  assert.throws(() => share.addVolume('c', 3, file, false), /volumes\[3\]\.source must be a directory on the host/);
  assert.equal(mountsBelow(sandboxDir), []);
  unmountAndRemove(sandboxDir);
});

test('mount points with spaces are found (mountinfo escapes them) and unmounted', () => {
  const sandboxDir = path.join(scratch, 'with space');
  fs.mkdirSync(sandboxDir);
  const share = new SandboxShare(sandboxDir);
  share.addRootfs('c', dirWith('src 2', { f: 'x' }), true);
  assert.equal(mountsBelow(sandboxDir), [path.join(share.root, 'c/rootfs')]);
  unmountAndRemove(sandboxDir);
  assert.not.ok(fs.existsSync(sandboxDir));
});

test.run();
