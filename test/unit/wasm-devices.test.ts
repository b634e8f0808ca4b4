import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { loadDevices, MAX_WASM_PAGES, WASM_PATH } from '../../host/wasm/devices.js';
import { memoryImportLimits } from '../../host/wasm/memory-import.js';
import { ConsoleInput } from '../../host/wasm/console-input.js';
import { createHarness } from './device-harness.js';

const AS_DATA_BASE = 0xc000_0000;
const COM1 = 0x3f8;
const LSR_DR = 0x01;

test('wasm: the memory spans guest low RAM up to the module data at 3 GiB, growable to 4 GiB', async () => {
  const { initial, maximum } = memoryImportLimits(readFileSync(WASM_PATH));
  assert.ok(initial > AS_DATA_BASE / 65536, `initial ${initial} pages`);
  assert.is(maximum, undefined, 'the module leaves the maximum to the host');
  const { devices } = await createHarness();
  assert.is(devices.memory.buffer.byteLength, initial * 65536);
  assert.ok(devices.memory.grow(1) === initial, 'can grow (maximum is 4 GiB)');
  assert.is(MAX_WASM_PAGES, 65536);
});

test('wasm: the module imports exactly what loadDevices provides', () => {
  const module = new WebAssembly.Module(readFileSync(WASM_PATH));
  const imports = WebAssembly.Module.imports(module).map((i) => `${i.module}.${i.name}:${i.kind}`).sort();
  assert.equal(imports, [
    'env.abort:function', 'env.consoleWrite:function', 'env.fillRandom:function', 'env.fsCreate:function',
    'env.fsFallocate:function', 'env.fsForget:function', 'env.fsFsync:function', 'env.fsGetattr:function',
    'env.fsGetxattr:function', 'env.fsLink:function', 'env.fsListxattr:function', 'env.fsLookup:function',
    'env.fsLseek:function', 'env.fsMkdir:function', 'env.fsMknod:function', 'env.fsOpen:function',
    'env.fsRead:function', 'env.fsReaddir:function', 'env.fsReadlink:function', 'env.fsRelease:function',
    'env.fsRemovexattr:function', 'env.fsRename:function', 'env.fsSetattr:function', 'env.fsSetxattr:function',
    'env.fsStatfs:function', 'env.fsSymlink:function', 'env.fsUnlink:function', 'env.fsWrite:function',
    'env.guestExit:function', 'env.ioSubmit:function', 'env.irqLine:function', 'env.irqPulse:function',
    'env.memory:memory', 'env.resetRequest:function', 'env.vsockClose:function', 'env.vsockConnect:function',
    'env.vsockConnected:function', 'env.vsockRead:function', 'env.vsockShutdown:function', 'env.vsockWatch:function',
    'env.vsockWrite:function', 'env.wallClockSeconds:function',
  ]);
});

test('wasm: guest RAM (below 3 GiB) is not touched by the module', async () => {
  const h = await createHarness();
  const ram = new Uint8Array(h.devices.memory.buffer, 0, AS_DATA_BASE);
  h.devices.ioWrite(COM1, 1, 0x41);
  h.devices.serialReceive(0x42);
  h.devices.ioRead(0x71, 1);
  // A fresh memory is all zeros and must stay so: check the first MiB, then every 16 MiB up to 3 GiB.
  assert.ok(ram.subarray(0, 0x10_0000).every((b) => b === 0));
  for (let addr = 0; addr < AS_DATA_BASE; addr += 0x100_0000) assert.is(ram[addr], 0);
  assert.is(ram[AS_DATA_BASE - 1], 0);
});

test('wasm: memoryImportLimits rejects what is not a Wasm binary, or a module without memory import', () => {
  assert.throws(() => memoryImportLimits(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8])), /bad magic/);
  assert.throws(() => memoryImportLimits(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0])), /imports no memory/);
  assert.throws(() => memoryImportLimits(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 2, 5, 1])), /truncated/);
});

test('wasm: loadDevices names the missing file and how to build it', async () => {
  try {
    await loadDevices({ irqLine() {}, consoleWrite() {}, resetRequest() {}, guestExit() {}, wallClockSeconds: () => 0, irqPulse() {}, fillRandom() {}, ioSubmit() {} }, '/nonexistent/hako.wasm');
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /\/nonexistent\/hako\.wasm.*npx asc --config asconfig\.json/);
  }
});

test('wasm: access() adapts ExitHandler calls: pio and mmio, reads and writes', async () => {
  const h = await createHarness();
  const { devices } = h;
  assert.is(devices.access('pio', COM1, 1, true, 0x68n), 0n);
  assert.equal(h.console, [0x68]);
  assert.is(devices.access('pio', 0x2f8, 4, false, 0n), 0xffff_ffffn);
  assert.is(devices.access('pio', COM1 + 7, 1, true, 0xffff_ff5an), 0n, 'value cut to the access size');
  assert.is(devices.access('pio', COM1 + 7, 1, false, 0n), 0x5an);
  assert.is(devices.access('mmio', 0xd000_0000, 4, false, 0n), 0n);
  assert.is(devices.access('mmio', 0xd000_0000, 8, true, 2n ** 64n - 1n), 0n);
});

test('wasm: console input waits for room in the UART and is handed over as the guest reads', async () => {
  const h = await createHarness();
  const { devices } = h;
  devices.access('pio', COM1 + 2, 1, true, 0x01n); // FIFO on: 16 bytes
  const text = Buffer.from('a line longer than sixteen bytes\n');
  devices.consoleInput(text);
  text.fill(0); // the caller may reuse its buffer
  const got: number[] = [];
  while (devices.access('pio', COM1 + 5, 1, false, 0n) & BigInt(LSR_DR)) {
    got.push(Number(devices.access('pio', COM1, 1, false, 0n)));
  }
  assert.is(Buffer.from(got).toString(), 'a line longer than sixteen bytes\n');
});

test('wasm: ConsoleInput keeps order across chunks and stops at the first refusal', () => {
  let room = 3;
  const taken: number[] = [];
  const input = new ConsoleInput((byte) => {
    if (room === 0) return false;
    room--;
    taken.push(byte);
    return true;
  });
  input.push(new Uint8Array([1, 2]));
  input.push(new Uint8Array([]));
  input.push(new Uint8Array([3, 4, 5]));
  assert.equal(taken, [1, 2, 3]);
  assert.is(input.pendingBytes, 2);
  room = 1;
  input.pump();
  assert.equal(taken, [1, 2, 3, 4]);
  room = 10;
  input.pump();
  assert.equal(taken, [1, 2, 3, 4, 5]);
  assert.is(input.pendingBytes, 0);
});

test.run();
