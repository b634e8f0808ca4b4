// Snapshot and restore on a tiny guest that counts in memory and records the
// first console byte it receives: clones continue from the snapshot, stay
// independent of each other, and never write to the snapshot's memory file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { defaultTemplate } from '../../host/cpu/template.js';
import { HakoError } from '../../host/errors.js';
import { memoryFile, sha256, SNAPSHOT_FORMAT_VERSION } from '../../host/snapshot/format.js';
import { isPvmHost } from '../../host/vmm/kvm.js';
import { Vm } from '../../host/vmm/vm.js';
import { COM1, SCRATCH, writeTinyGuest } from './tiny-guest.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-snapshot-'));
const COUNTER = SCRATCH;
const MARK = SCRATCH + 4;
const le32 = (v: number) => [0, 8, 16, 24].map((s) => (v >>> s) & 0xff);

// loop: inc dword [COUNTER]
//       mov dx, COM1+5; in al, dx; test al, 1; jz loop      (LSR: data ready?)
//       mov dx, COM1;   in al, dx; mov [MARK], al; jmp loop  (store the byte)
const loop = [
  0xff, 0x05, ...le32(COUNTER),
  0x66, 0xba, ...le32(COM1 + 5).slice(0, 2), 0xec, 0xa8, 0x01,
];
const code = [...loop, 0x74, (-(loop.length + 2)) & 0xff];
const tail = [0x66, 0xba, ...le32(COM1).slice(0, 2), 0xec, 0xa2, ...le32(MARK)];
code.push(...tail, 0xeb, (-(code.length + tail.length + 2)) & 0xff);
const guest = writeTinyGuest(tmp, 'counter', code);

const config = { kernel: guest, cmdline: '', vcpus: 1, memoryMiB: 64, cpuTemplate: defaultTemplate(isPvmHost()) };

function memoryOf(dir: string): { counter: number; mark: number } {
  const mem = fs.readFileSync(memoryFile(dir));
  return { counter: mem.readUInt32LE(COUNTER), mark: mem[MARK]! };
}

/** Runs `vm` for `ms`, optionally sending console input, then snapshots it to `dir`. */
async function runThenSnapshot(vm: Vm, ms: number, dir: string, input?: string): Promise<void> {
  const done = vm.run();
  if (input) vm.sendConsoleInput(Buffer.from(input));
  await sleep(ms);
  await vm.snapshot(dir);
  vm.stop();
  assert.is((await done).kind, 'stopped');
}

const base = path.join(tmp, 'base');

test('snapshot a running guest, restore it twice in parallel: both continue independently', async () => {
  await runThenSnapshot(await Vm.create(config), 150, base);
  const before = memoryOf(base);
  const baseHash = sha256(fs.readFileSync(memoryFile(base)));
  assert.ok(before.counter > 0, 'the guest counted before the snapshot');
  assert.is(before.mark, 0);

  const [a, b] = await Promise.all([Vm.restore(base), Vm.restore(base)]);
  await Promise.all([
    runThenSnapshot(a!, 150, path.join(tmp, 'a'), 'A'),
    runThenSnapshot(b!, 150, path.join(tmp, 'b'), 'B'),
  ]);
  const ca = memoryOf(path.join(tmp, 'a'));
  const cb = memoryOf(path.join(tmp, 'b'));
  assert.ok(ca.counter > before.counter && cb.counter > before.counter, `counters continue: ${before.counter} -> ${ca.counter}, ${cb.counter}`);
  assert.is(String.fromCharCode(ca.mark), 'A', 'clone A saw only its own input');
  assert.is(String.fromCharCode(cb.mark), 'B', 'clone B saw only its own input');
  assert.is(sha256(fs.readFileSync(memoryFile(base))), baseHash, "the snapshot's memory file is untouched");
});

test('a snapshot pauses the guest and lets it continue: a second snapshot of the same VM counted further', async () => {
  const vm = await Vm.create(config);
  const done = vm.run();
  await sleep(100);
  await vm.snapshot(path.join(tmp, 'first'));
  await sleep(100);
  await vm.snapshot(path.join(tmp, 'second'));
  vm.stop();
  assert.is((await done).kind, 'stopped');
  const first = memoryOf(path.join(tmp, 'first')).counter;
  const second = memoryOf(path.join(tmp, 'second')).counter;
  assert.ok(first > 0 && second > first, `the guest kept counting after the first snapshot: ${first} -> ${second}`);
});

function copySnapshot(name: string): string {
  const dir = path.join(tmp, name);
  fs.cpSync(base, dir, { recursive: true, preserveTimestamps: true });
  return dir;
}

async function refused(dir: string, message: RegExp): Promise<void> {
  try {
    await Vm.restore(dir);
  } catch (e) {
    assert.instance(e, HakoError);
    assert.is((e as HakoError).code, 'BAD_SNAPSHOT');
    assert.match((e as Error).message, message);
    return;
  }
  assert.unreachable(`restored ${dir}`);
}

test('a truncated or tampered memory file is refused', async () => {
  const truncated = copySnapshot('truncated');
  fs.truncateSync(memoryFile(truncated), 4096);
  await refused(truncated, /memory\.bin is 4096 bytes, the manifest says/);

  const tampered = copySnapshot('tampered');
  const fd = fs.openSync(memoryFile(tampered), 'r+');
  fs.writeSync(fd, Buffer.from([0x42]), 0, 1, MARK);
  fs.closeSync(fd);
  await refused(tampered, /does not match the sha256/);
});

test('a manifest from another format version or another CPU template is refused', async () => {
  const edit = (name: string, change: (m: Record<string, any>) => void) => {
    const dir = copySnapshot(name);
    const file = path.join(dir, 'manifest.json');
    const m = JSON.parse(fs.readFileSync(file, 'utf8'));
    change(m);
    fs.writeFileSync(file, JSON.stringify(m));
    return dir;
  };
  await refused(edit('version', (m) => { m.formatVersion = 99; }), new RegExp(`format version 99 is not the one this hako reads \\(${SNAPSHOT_FORMAT_VERSION}\\)`));
  const other = config.cpuTemplate === 'host' ? 'compatible' : 'host';
  await refused(edit('template', (m) => { m.vm.cpuTemplate = other; }), new RegExp(`made with CPU template ${other}`));
});

test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
test.run();
