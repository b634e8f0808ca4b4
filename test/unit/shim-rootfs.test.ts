// containerd's rootfs mounts for a task: fstab options split into mount(2)
// flags and file-system data, an overlay stacked on <bundle>/rootfs and taken
// down again. Needs root (mount(2)), not KVM.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { native } from '../../host/native.js';
import { isMountPoint, mountAll, parseOptions, unmountAll } from '../../host/shim/rootfs.js';

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-shim-rootfs-'));
test.after(() => {
  if (isMountPoint(path.join(scratch, 'rootfs'))) unmountAll(path.join(scratch, 'rootfs'));
  fs.rmSync(scratch, { recursive: true, force: true });
});

test('options: flags by name, defaults dropped, the rest is data in order', () => {
  assert.equal(parseOptions(['index=off', 'workdir=/w', 'upperdir=/u', 'lowerdir=/l']), { flags: [], data: 'index=off,workdir=/w,upperdir=/u,lowerdir=/l' });
  assert.equal(parseOptions(['rbind', 'ro', 'rw', 'nosuid']), { flags: ['bind', 'rec', 'rdonly', 'nosuid'], data: '' });
});

test("an overlay of two directories on <bundle>/rootfs, as containerd's overlayfs snapshotter describes it", () => {
  for (const d of ['lower', 'upper', 'work']) fs.mkdirSync(path.join(scratch, d));
  fs.writeFileSync(path.join(scratch, 'lower', 'from-image'), 'layer');
  const target = path.join(scratch, 'rootfs');
  mountAll([{
    type: 'overlay', source: 'overlay',
    options: ['index=off', `workdir=${scratch}/work`, `upperdir=${scratch}/upper`, `lowerdir=${scratch}/lower`],
  }], target);
  assert.ok(isMountPoint(target));
  assert.is(fs.readFileSync(path.join(target, 'from-image'), 'utf8'), 'layer');
  fs.writeFileSync(path.join(target, 'written'), 'x');
  assert.ok(fs.existsSync(path.join(scratch, 'upper', 'written')), 'writes land in the upper directory');
  unmountAll(target);
  assert.not.ok(isMountPoint(target));
});

test('a failed mount throws naming it and leaves nothing mounted', () => {
  const target = path.join(scratch, 'rootfs');
  assert.throws(() => mountAll([{ type: 'overlay', source: 'overlay', options: [`lowerdir=${scratch}/missing`] }], target), /mount.*overlay/);
  assert.not.ok(isMountPoint(target));
});

test('mountFs rejects a flag name it does not know rather than ignoring it', () => {
  assert.throws(() => native().mountFs('none', path.join(scratch, 'rootfs'), 'tmpfs', ['readonly'], ''), /flags\[0\] must name an MS_\* flag/);
});

test.run();
