// Snapshot and restore on tiny guests that count in memory and record the
// first console byte they receive (one with RAM above the Wasm window): clones
// continue from the snapshot, stay independent of each other, and never write
// to the snapshot's memory file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { HIGH_RAM_BASE, LOW_RAM_MAX } from '../../host/boot/layout.js';
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

// A guest with RAM above the 3 GiB Wasm window. It turns on long-mode paging
// and runs on in compatibility mode (32-bit code, 4-level page tables), where
// the virtual HIGH_VIRT maps to guest-physical 4 GiB, the first high RAM byte.
// (32-bit PAE paging alone triple-faults under PVM.)
// setup: PML4 at 2 MiB -> PDPT: [0] -> PD0 (identity 2 MiB: code and data), [1] -> PD1 (HIGH_VIRT -> 4 GiB)
//        CR3 = PML4; CR4.PAE; EFER.LME; CR0.PG; mov dword [HIGH_MARK], MARKER
// loop:  inc dword [COUNTER]; poll COM1 as above; on a byte: mov [HIGH_INPUT], al;
//        mov eax, [HIGH_MARK]; mov [COPY], eax  (what this VM reads from high RAM)
const PML4 = 0x20_0000;
const HIGH_VIRT = 0x4000_0000;
const HIGH_MARK = HIGH_VIRT + 0x1000;
const HIGH_INPUT = HIGH_MARK + 4;
const COPY = SCRATCH + 8;
const MARKER = 0x6869_6768; // "high"
const movDword = (addr: number, value: number) => [0xc7, 0x05, ...le32(addr), ...le32(value)];
const setup = [
  ...movDword(PML4, (PML4 + 0x1000) | 3),
  ...movDword(PML4 + 0x1000, (PML4 + 0x2000) | 3), ...movDword(PML4 + 0x1008, (PML4 + 0x3000) | 3),
  ...movDword(PML4 + 0x2000, 0x83), ...movDword(PML4 + 0x3000, 0x83), ...movDword(PML4 + 0x3004, 1),
  0xb8, ...le32(PML4), 0x0f, 0x22, 0xd8,                                    // mov eax, PML4; mov cr3, eax
  0x0f, 0x20, 0xe0, 0x0d, ...le32(0x20), 0x0f, 0x22, 0xe0,                  // CR4 |= PAE
  0xb9, ...le32(0xc000_0080), 0x0f, 0x32, 0x0d, ...le32(0x100), 0x0f, 0x30, // EFER |= LME
  0x0f, 0x20, 0xc0, 0x0d, ...le32(0x8000_0000), 0x0f, 0x22, 0xc0,           // CR0 |= PG
  ...movDword(HIGH_MARK, MARKER),
];
const highTail = [0x66, 0xba, ...le32(COM1).slice(0, 2), 0xec, 0xa2, ...le32(HIGH_INPUT), 0xa1, ...le32(HIGH_MARK), 0xa3, ...le32(COPY)];
const highCode = [...loop, 0x74, (-(loop.length + 2)) & 0xff];
highCode.push(...highTail, 0xeb, (-(highCode.length + highTail.length + 2)) & 0xff);
const highGuest = writeTinyGuest(tmp, 'high', [...setup, ...highCode]);
const HIGH_MIB = 3200;

/** Reads `length` bytes of the memory file of `dir` at guest-physical `gpa` (high RAM follows low RAM in the file). */
function readGuest(dir: string, gpa: number, length: number): Buffer {
  const offset = gpa >= HIGH_RAM_BASE ? LOW_RAM_MAX + gpa - HIGH_RAM_BASE : gpa;
  const fd = fs.openSync(memoryFile(dir), 'r');
  try {
    const out = Buffer.alloc(length);
    fs.readSync(fd, out, 0, length, offset);
    return out;
  } finally {
    fs.closeSync(fd);
  }
}

test('a restore may swap disk images of any size, same number and mode; a mismatch is refused naming the disk', async () => {
  const image = (name: string, bytes = 1 << 20) => {
    const file = path.join(tmp, name);
    fs.writeFileSync(file, Buffer.alloc(bytes));
    return file;
  };
  const withDisk = path.join(tmp, 'with-disk');
  await runThenSnapshot(await Vm.create({ ...config, disks: [{ path: image('a.img'), readOnly: false }] }), 100, withDisk);
  for (const other of [image('b.img'), image('d.img', 2 << 20)]) {
    const clone = await Vm.restore(withDisk, { disks: [{ path: other, readOnly: false }] });
    const done = clone.run();
    await sleep(50);
    clone.stop();
    assert.is((await done).kind, 'stopped');
  }
  const fails = async (disks: { path: string; readOnly: boolean }[], message: RegExp) => {
    try {
      await Vm.restore(withDisk, { disks });
    } catch (e) {
      assert.match((e as Error).message, message);
      return;
    }
    assert.unreachable('restored');
  };
  await fails([], /has 1 disk\(s\); the restore gave 0/);
  await fails([{ path: image('c.img'), readOnly: true }], /disk 1 of snapshot .* is writable; .*c\.img must be attached the same way/);
});

test('a VM with disks releases every fd when it ends, and when a bad disk stops its creation', async () => {
  const fds = () => fs.readdirSync('/proc/self/fd').length;
  const good = path.join(tmp, 'fd-good.img');
  fs.writeFileSync(good, Buffer.alloc(1 << 20));
  const before = fds();
  const vm = await Vm.create({ ...config, disks: [{ path: good, readOnly: false }] });
  const done = vm.run();
  await sleep(50);
  vm.stop();
  await done;
  assert.is(fds(), before, 'fds after the VM ended');
  try {
    await Vm.create({ ...config, disks: [{ path: good, readOnly: false }, { path: path.join(tmp, 'missing.img'), readOnly: false }] });
    assert.unreachable('created');
  } catch (e) {
    assert.match((e as Error).message, /missing\.img: no such file/);
  }
  assert.is(fds(), before, 'fds after a refused creation');
});

test('RAM above the 3 GiB Wasm window: snapshotted, cloned copy-on-write, the memory file untouched', async () => {
  const highBase = path.join(tmp, 'high-base');
  await runThenSnapshot(await Vm.create({ ...config, kernel: highGuest, memoryMiB: HIGH_MIB }), 150, highBase);
  const file = memoryFile(highBase);
  assert.is(fs.statSync(file).size, HIGH_MIB * 1024 * 1024);
  assert.ok(fs.statSync(file).blocks * 512 < 64 * 1024 * 1024, 'untouched RAM is left as holes');
  assert.is(readGuest(highBase, HIGH_RAM_BASE + 0x1000, 4).readUInt32LE(), MARKER, 'the guest wrote its marker into high RAM');
  assert.is(readGuest(highBase, COPY, 4).readUInt32LE(), 0);
  const before = readGuest(highBase, HIGH_RAM_BASE, 0x2000);

  const clone = path.join(tmp, 'high-clone');
  await runThenSnapshot(await Vm.restore(highBase), 150, clone, 'C');
  assert.is(readGuest(clone, COPY, 4).readUInt32LE(), MARKER, 'the clone read the marker from the mapped memory file');
  assert.is(String.fromCharCode(readGuest(clone, HIGH_RAM_BASE + 0x1004, 1)[0]!), 'C', 'the clone wrote its input into high RAM');
  assert.ok(readGuest(highBase, HIGH_RAM_BASE, 0x2000).equals(before), "the clone's write did not reach the snapshot's memory file");
  assert.ok(readGuest(clone, COUNTER, 4).readUInt32LE() > readGuest(highBase, COUNTER, 4).readUInt32LE(), 'the clone kept counting');
});

test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
test.run();
