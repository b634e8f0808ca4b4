import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDisk, parseDiskOption } from '../../host/block/disk.js';
import { HakoError } from '../../host/errors.js';
import { virtioDevices } from '../../host/vmm/config.js';
import { virtioCmdline, virtioSlot } from '../../host/vmm/virtio.js';

const throwsArg = (fn: () => unknown, message: RegExp) => {
  try {
    fn();
  } catch (e) {
    assert.instance(e, HakoError);
    assert.is((e as HakoError).code, 'INVALID_ARGUMENT');
    assert.match((e as Error).message, message);
    return;
  }
  assert.unreachable('did not throw');
};

test('--disk PATH[,ro|,rw]', () => {
  assert.equal(parseDiskOption('a.img'), { path: 'a.img', readOnly: false });
  assert.equal(parseDiskOption('a.img,ro'), { path: 'a.img', readOnly: true });
  assert.equal(parseDiskOption('a.img,rw'), { path: 'a.img', readOnly: false });
  assert.equal(parseDiskOption('dir,with,commas/a.img'), { path: 'dir,with,commas/a.img', readOnly: false });
  throwsArg(() => parseDiskOption('a.img,readonly'), /unknown flag "readonly"; expected PATH, PATH,ro or PATH,rw/);
  throwsArg(() => parseDiskOption(',ro'), /non-empty PATH/);
});

test('openDisk checks the image and reports its capacity in sectors', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-disk-'));
  try {
    const good = path.join(dir, 'good.img');
    fs.writeFileSync(good, Buffer.alloc(4096));
    const disk = openDisk({ path: good, readOnly: true });
    assert.is(disk.sectors, 8n);
    disk.close();
    disk.close(); // idempotent
    const odd = path.join(dir, 'odd.img');
    fs.writeFileSync(odd, Buffer.alloc(1000));
    throwsArg(() => openDisk({ path: odd, readOnly: false }), /odd\.img: 1000 bytes, not a multiple of the 512-byte sector size/);
    const empty = path.join(dir, 'empty.img');
    fs.writeFileSync(empty, '');
    throwsArg(() => openDisk({ path: empty, readOnly: false }), /at least one 512-byte sector/);
    throwsArg(() => openDisk({ path: path.join(dir, 'missing.img'), readOnly: false }), /missing\.img: no such file/);
    throwsArg(() => openDisk({ path: dir, readOnly: true }), /not a regular file|is a directory/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a writable disk is locked against every other user; read-only ones share', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-disk-'));
  try {
    const image = path.join(dir, 'shared.img');
    fs.writeFileSync(image, Buffer.alloc(4096));
    const writer = openDisk({ path: image, readOnly: false });
    throwsArg(() => openDisk({ path: image, readOnly: false }), /shared\.img: in use by another VM or program \(locked\)/);
    throwsArg(() => openDisk({ path: image, readOnly: true }), /in use by another VM/);
    writer.close();
    const r1 = openDisk({ path: image, readOnly: true });
    const r2 = openDisk({ path: image, readOnly: true });
    throwsArg(() => openDisk({ path: image, readOnly: false }), /attached writable elsewhere|in use/);
    r1.close();
    r2.close();
    openDisk({ path: image, readOnly: false }).close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('virtio devices: disks first, then the rng; one window and interrupt line each, announced on the command line', () => {
  const devices = virtioDevices({
    kernel: 'k', cmdline: '', vcpus: 1, memoryMiB: 256, cpuTemplate: 'host',
    disks: [{ path: 'a.img', readOnly: false }, { path: 'b.img', readOnly: true }],
  });
  assert.equal(devices.map((d) => d.kind), ['block', 'block', 'rng']);
  assert.equal(virtioSlot(0), { base: 0xd000_0000, gsi: 5 });
  assert.equal(virtioSlot(2), { base: 0xd000_0400, gsi: 7 });
  assert.equal(virtioCmdline(devices), [
    'virtio_mmio.device=512@0xd0000000:5',
    'virtio_mmio.device=512@0xd0000200:6',
    'virtio_mmio.device=512@0xd0000400:7',
  ]);
  throwsArg(() => virtioSlot(16), /at most 16 virtio devices/);
  assert.equal(virtioDevices({ kernel: 'k', cmdline: '', vcpus: 1, memoryMiB: 256, cpuTemplate: 'host', rng: false }), []);
});

test.run();
