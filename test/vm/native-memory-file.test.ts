// mapMemoryFile and addFileMemory: guest RAM as a private copy-on-write clone
// of a file (a snapshot's memory). JS writes stay in the process; other clones
// and the file never see them. writeSlotToFile saves addon-owned RAM.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isKvmError, native } from '../../host/native.js';

const addon = native();
const WASM_PAGE = 64 * 1024;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hako-memory-file-'));

/** A file of `bytes` bytes, byte i holding i * 7 mod 251 (no period that lines up with pages). */
function patternFile(name: string, bytes: number): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, Uint8Array.from({ length: bytes }, (_, i) => (i * 7) % 251));
  return file;
}

const matchesPattern = (bytes: Uint8Array, from = 0) => bytes.every((b, i) => b === ((from + i) * 7) % 251);

test('the memory reads the file; its writes reach neither the file nor another clone', () => {
  const size = 4 * WASM_PAGE;
  const file = patternFile('ram', size);
  const before = fs.readFileSync(file);
  const first = new WebAssembly.Memory({ initial: 8 });
  addon.mapMemoryFile(first.buffer, size, file, first);
  const ram = new Uint8Array(first.buffer);
  assert.ok(matchesPattern(ram.subarray(0, size)), 'the mapped bytes are the file');
  assert.ok(ram.subarray(size).every((b) => b === 0), 'past `size` the memory is untouched');

  ram.fill(0xaa, 0, 4096);
  ram[size - 1] = 0x55;
  assert.is(ram[100], 0xaa);
  assert.ok(fs.readFileSync(file).equals(before), 'the file is unchanged');

  const second = new WebAssembly.Memory({ initial: 4 });
  addon.mapMemoryFile(second.buffer, size, file, second);
  assert.ok(matchesPattern(new Uint8Array(second.buffer)), 'a second clone sees the file, not the first one\'s writes');
  assert.is(ram[100], 0xaa, 'the first clone keeps its writes');
});

test('bad sizes, short files and foreign buffers are refused before anything is mapped', () => {
  const file = patternFile('short', WASM_PAGE);
  const memory = new WebAssembly.Memory({ initial: 2 });
  const ram = new Uint8Array(memory.buffer);
  const refused = (size: number, path: string, message: RegExp, code = 'EINVAL') => {
    try {
      addon.mapMemoryFile(memory.buffer, size, path, memory);
    } catch (e) {
      assert.ok(isKvmError(e), String(e));
      assert.is(e.code, code);
      assert.match(e.message, message);
      return;
    }
    assert.unreachable(`mapping ${size} bytes of ${path} succeeded`);
  };
  refused(2 * WASM_PAGE, file, new RegExp(`^mmap\\(${file}\\): EINVAL .*the file is 0x10000 bytes, shorter than the size 0x20000`));
  refused(100, file, /size 0x64 must be > 0, a multiple of the page size 0x1000 and within the buffer's byteLength 0x20000/);
  refused(4 * WASM_PAGE, file, /within the buffer's byteLength 0x20000/);
  refused(WASM_PAGE, path.join(dir, 'missing'), /^open\(.*missing\): ENOENT/, 'ENOENT');
  refused(WASM_PAGE, dir, /not a regular file/);
  assert.ok(ram.every((b) => b === 0), 'the memory is untouched');
  assert.throws(() => addon.mapMemoryFile(new ArrayBuffer(WASM_PAGE), WASM_PAGE, file, memory),
    (e: Error) => e instanceof TypeError && /buffer its current buffer/.test(e.message));
  assert.throws(() => addon.mapMemoryFile(memory.buffer, WASM_PAGE, file, {} as WebAssembly.Memory),
    (e: Error) => e instanceof TypeError && /must be a WebAssembly.Memory/.test(e.message));
});

test('mapping 256 MiB takes microseconds', () => {
  const size = 256 * 1024 * 1024;
  const file = path.join(dir, 'big');
  fs.writeFileSync(file, '');
  fs.truncateSync(file, size);
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, Buffer.from('end'), 0, 3, size - 3);
  fs.closeSync(fd);
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const memory = new WebAssembly.Memory({ initial: size / WASM_PAGE });
    const started = process.hrtime.bigint();
    addon.mapMemoryFile(memory.buffer, size, file, memory);
    times.push(Number(process.hrtime.bigint() - started) / 1000);
    assert.is(Buffer.from(memory.buffer, size - 3, 3).toString(), 'end');
  }
  const median = [...times].sort((a, b) => a - b)[2]!;
  console.log(`  mapMemoryFile(256 MiB): median ${median.toFixed(1)} us (${times.map((t) => t.toFixed(1)).join(', ')})`);
  assert.ok(median < 5000, `median ${median} us`);
});

test('a VM\'s addon-owned memory: written to a file, mapped back copy-on-write at an offset', () => {
  const page = 4096;
  const vm = new addon.Vm();
  try {
    vm.addAnonymousMemory(1, 2 ** 32, 4 * page);
    const file = path.join(dir, 'slot');
    const fd = fs.openSync(file, 'w+');
    fs.ftruncateSync(fd, 8 * page);
    vm.writeSlotToFile(1, fd, 2 * page);
    fs.closeSync(fd);
    assert.ok(fs.readFileSync(file).every((b) => b === 0), 'untouched memory reads as zeros');
    assert.is(fs.statSync(file).blocks, 0, 'zero pages are left as holes');

    const data = patternFile('data', 8 * page);
    vm.addFileMemory(2, 2 ** 33, data, 2 * page, 4 * page);
    const refused = (call: () => void, message: RegExp) => {
      try {
        call();
      } catch (e) {
        assert.ok(isKvmError(e), String(e));
        assert.match(e.message, message);
        return;
      }
      assert.unreachable(`accepted: ${call}`);
    };
    refused(() => vm.addFileMemory(3, 2 ** 34, data, 100, page), /EINVAL .*file offset 0x64, a multiple of the page size/);
    refused(() => vm.addFileMemory(3, 2 ** 34, data, 6 * page, 4 * page), /EINVAL .*the file is 0x8000 bytes, shorter than the size 0x4000 to map from offset 0x6000/);
    refused(() => vm.addFileMemory(2, 2 ** 34, data, 0, page), /EEXIST .*slot 2 is in use/);
    const memory = new WebAssembly.Memory({ initial: 1 });
    vm.setMemory(0, 0, memory.buffer, WASM_PAGE, memory);
    refused(() => vm.writeSlotToFile(0, 0, 0), /EINVAL .*slot 0 is not addon-owned memory/);

    // What the file mapping holds comes back out through writeSlotToFile: the file's bytes from the offset.
    const copy = path.join(dir, 'copy');
    const copyFd = fs.openSync(copy, 'w+');
    fs.ftruncateSync(copyFd, 4 * page);
    vm.writeSlotToFile(2, copyFd, 0);
    fs.closeSync(copyFd);
    assert.ok(matchesPattern(fs.readFileSync(copy), 2 * page), 'the slot holds the file from the offset');
  } finally {
    vm.close();
  }
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

test.run();
