import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadElf, parseElf } from '../../host/boot/elf.js';
import { BootError } from '../../host/boot/errors.js';
import { MiB } from '../../host/boot/layout.js';
import { makeElf } from '../fixtures/kernel-images.js';

function throwsBoot(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof BootError && pattern.test(e.message) && e.message.includes('vmlinux-test'));
}

test('elf: PT_LOAD segments and the PVH entry (8-byte and 4-byte notes)', () => {
  for (const noteDescSize of [8, 4] as const) {
    const elf = parseElf(makeElf({ pvhEntry: 0x100_0040, noteDescSize }), 'vmlinux-test');
    assert.is(elf.pvhEntry, 0x100_0040);
    assert.equal(elf.segments.map((s) => [s.paddr, s.fileSize, s.memSize]), [[0x100_0000, 0x100, 0x2000]]);
    assert.is(elf.start, 0x100_0000);
    assert.is(elf.end, 0x100_2000);
  }
});

test('elf: load copies file data and zeroes the BSS', () => {
  const data = new Uint8Array(0x30).map((_, i) => i + 1);
  const bytes = makeElf({ segments: [{ paddr: 0x20_0000, data, memSize: 0x100 }, { paddr: 0x30_0000, data }] });
  const mem = new Uint8Array(4 * MiB).fill(0xff);
  loadElf(mem, parseElf(bytes, 'vmlinux-test'), bytes, 'vmlinux-test');
  assert.equal([...mem.subarray(0x20_0000, 0x20_0030)], [...data]);
  assert.ok(mem.subarray(0x20_0030, 0x20_0100).every((b) => b === 0));
  assert.is(mem[0x20_0100], 0xff);
  assert.equal([...mem.subarray(0x30_0000, 0x30_0030)], [...data]);
});

test('elf: bad headers', () => {
  throwsBoot(() => parseElf(makeElf().subarray(0, 40), 'vmlinux-test'), /truncated.*ELF header/);
  const badMagic = makeElf();
  badMagic[1] = 0;
  throwsBoot(() => parseElf(badMagic, 'vmlinux-test'), /bad magic/);
  throwsBoot(() => parseElf(makeElf({ elfClass: 1 }), 'vmlinux-test'), /ELFCLASS64/);
  throwsBoot(() => parseElf(makeElf({ machine: 183 }), 'vmlinux-test'), /machine 183 is not x86-64/);
});

test('elf: truncated program headers and segments', () => {
  const full = makeElf();
  throwsBoot(() => parseElf(full.subarray(0, 100), 'vmlinux-test'), /truncated: 2 program headers/);
  throwsBoot(() => parseElf(full.subarray(0, full.length - 1), 'vmlinux-test'), /truncated: segment 0/);
});

test('elf: no PVH note, entry outside the segments, overlapping segments', () => {
  throwsBoot(() => parseElf(makeElf({ pvhEntry: undefined }), 'vmlinux-test'), /no PVH entry point/);
  throwsBoot(() => parseElf(makeElf({ pvhEntry: 0x500_0000 }), 'vmlinux-test'), /entry point 0x5000000 is not inside a loaded segment/);
  const data = new Uint8Array(0x10);
  throwsBoot(() => parseElf(makeElf({ segments: [{ paddr: 0x100_0000, data, memSize: 0x2000 }, { paddr: 0x100_1000, data }] }), 'vmlinux-test'), /overlap/);
});

test('elf: segments outside guest RAM or over the boot structures are refused', () => {
  const data = new Uint8Array(0x10);
  const mem = new Uint8Array(4 * MiB);
  const beyond = makeElf({ segments: [{ paddr: 0x100_0000, data }] });
  throwsBoot(() => loadElf(mem, parseElf(beyond, 'vmlinux-test'), beyond, 'vmlinux-test'), /outside guest RAM/);
  const low = makeElf({ segments: [{ paddr: 0x7000, data }] });
  throwsBoot(() => loadElf(mem, parseElf(low, 'vmlinux-test'), low, 'vmlinux-test'), /outside guest RAM \[0x100000/);
});

test.run();
