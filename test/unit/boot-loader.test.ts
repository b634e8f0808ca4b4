import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BootError } from '../../host/boot/errors.js';
import { BOOT_PARAMS_ADDR, CMDLINE_ADDR, MiB, PVH_START_INFO_ADDR } from '../../host/boot/layout.js';
import { detectKernel, loadLinux } from '../../host/boot/loader.js';
import { makeBzImage, makeElf } from '../fixtures/kernel-images.js';

const RAM = 64 * MiB;

function throwsBoot(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof BootError && pattern.test(e.message));
}

function cmdlineAt(mem: Uint8Array, addr: number): string {
  return new TextDecoder().decode(mem.subarray(addr, mem.indexOf(0, addr)));
}

test('loader: detectKernel tells ELF from bzImage and names unknown files', () => {
  assert.is(detectKernel(makeElf(), 'vmlinux').kind, 'elf-pvh');
  assert.is(detectKernel(makeBzImage(), 'bzImage').kind, 'bzimage');
  throwsBoot(() => detectKernel(new Uint8Array(4096), '/tmp/zeros'), /^not a bzImage or ELF vmlinux: \/tmp\/zeros$/);
});

test('loader: ELF vmlinux boots through PVH with the initrd at the top of RAM', () => {
  const mem = new Uint8Array(RAM);
  const initrd = new Uint8Array(5000).fill(7);
  const boot = loadLinux(mem, { kernel: makeElf({ pvhEntry: 0x100_0010 }), kernelName: 'vmlinux', initrd, cmdline: 'console=ttyS0 quiet', ramBytes: RAM, vcpus: 2 });
  assert.is(boot.protocol, 'pvh');
  assert.equal(boot.regs, { rip: 0x100_0010n, rbx: BigInt(PVH_START_INFO_ADDR), rflags: 2n });
  assert.is(boot.sregs.cr0, 0x11n);
  assert.equal(boot.initrd, { start: RAM - 8192, size: 5000 });
  assert.ok(mem.subarray(RAM - 8192, RAM - 8192 + 5000).every((b) => b === 7));
  assert.is(cmdlineAt(mem, CMDLINE_ADDR), 'console=ttyS0 quiet');
  assert.is(mem[0x100_0000], 0xcc, 'kernel loaded');
  const v = new DataView(mem.buffer);
  assert.is(v.getUint32(PVH_START_INFO_ADDR, true), 0x336ec578);
  assert.is(v.getUint32(PVH_START_INFO_ADDR + 12, true), 1);
  assert.is(String.fromCharCode(...mem.subarray(0xf0000, 0xf0004)), '_MP_');
});

test('loader: bzImage boots through the 64-bit protocol with RSI = boot_params', () => {
  const mem = new Uint8Array(RAM);
  const boot = loadLinux(mem, { kernel: makeBzImage({ initrdAddrMax: 0x1ff_ffff }), kernelName: 'bzImage', initrd: new Uint8Array(100), cmdline: 'x', ramBytes: RAM, vcpus: 1 });
  assert.is(boot.protocol, 'linux64');
  assert.equal(boot.regs, { rip: 0x100200n, rsi: BigInt(BOOT_PARAMS_ADDR), rflags: 2n });
  assert.is(boot.sregs.efer, 0x500n);
  assert.equal(boot.initrd, { start: 0x200_0000 - 4096, size: 100 }, 'below initrd_addr_max');
  const v = new DataView(mem.buffer);
  assert.is(v.getUint32(BOOT_PARAMS_ADDR + 0x218, true), 0x200_0000 - 4096);
  assert.is(v.getUint32(BOOT_PARAMS_ADDR + 0x228, true), CMDLINE_ADDR);
});

test('loader: a view larger than low RAM is only written below ramBytes', () => {
  const mem = new Uint8Array(RAM + MiB).fill(0xab);
  loadLinux(mem, { kernel: makeElf(), kernelName: 'vmlinux', initrd: new Uint8Array(10), cmdline: '', ramBytes: RAM, vcpus: 1 });
  assert.ok(mem.subarray(RAM).every((b) => b === 0xab));
});

test('loader: bad inputs', () => {
  const base = { kernel: makeElf(), kernelName: 'vmlinux', cmdline: '', ramBytes: RAM, vcpus: 1 };
  throwsBoot(() => loadLinux(new Uint8Array(RAM), { ...base, cmdline: 'a'.repeat(2048) }), /command line is 2048 bytes; the kernel accepts at most 2047/);
  throwsBoot(() => loadLinux(new Uint8Array(RAM * 2), { ...base, kernel: makeBzImage({ cmdlineSize: 255 }), cmdline: 'a'.repeat(256), ramBytes: RAM * 2 }), /at most 255/);
  throwsBoot(() => loadLinux(new Uint8Array(RAM), { ...base, cmdline: 'a\0b' }), /NUL/);
  throwsBoot(() => loadLinux(new Uint8Array(RAM), { ...base, initrd: new Uint8Array(RAM), initrdName: 'big.cpio' }), /initrd big.cpio \(67108864 bytes\) does not fit/);
  throwsBoot(() => loadLinux(new Uint8Array(RAM), { ...base, initrd: new Uint8Array(0) }), /initrd initrd is empty/);
  throwsBoot(() => loadLinux(new Uint8Array(RAM), { ...base, vcpus: 300 }), /vCPU count 300/);
  throwsBoot(() => loadLinux(new Uint8Array(RAM / 2), base), /guest RAM view has/);
  throwsBoot(() => loadLinux(new Uint8Array(RAM), { ...base, kernel: makeElf({ segments: [{ paddr: 0x400_0000, data: new Uint8Array(16) }] }) }), /outside guest RAM/);
});

test.run();
