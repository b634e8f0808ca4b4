import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BP, bzImageEntry, isBzImage, loadBzImage, parseBzImage, writeBootParams } from '../../host/boot/bzimage.js';
import { e820Map } from '../../host/boot/e820.js';
import { BootError } from '../../host/boot/errors.js';
import { BOOT_PARAMS_ADDR, CMDLINE_ADDR, MiB } from '../../host/boot/layout.js';
import { makeBzImage, makeElf } from '../fixtures/kernel-images.js';

function throwsBoot(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof BootError && pattern.test(e.message) && e.message.includes('bz-test'));
}

test('bzimage: offsets match Documentation/x86/boot.rst and zero-page.rst', () => {
  assert.equal(BP, {
    extRamdiskImage: 0x0c0, extRamdiskSize: 0x0c4, extCmdLinePtr: 0x0c8, e820Entries: 0x1e8,
    setupHeader: 0x1f1, setupSects: 0x1f1, syssize: 0x1f4, bootFlag: 0x1fe, jump: 0x200, header: 0x202,
    version: 0x206, typeOfLoader: 0x210, loadflags: 0x211, ramdiskImage: 0x218, ramdiskSize: 0x21c,
    cmdLinePtr: 0x228, initrdAddrMax: 0x22c, kernelAlignment: 0x230, relocatableKernel: 0x234,
    xloadflags: 0x236, cmdlineSize: 0x238, prefAddress: 0x258, initSize: 0x260,
    setupHeaderLimit: 0x290, e820Table: 0x2d0, size: 0x1000,
  });
});

test('bzimage: detection and parsing of a crafted header', () => {
  const bytes = makeBzImage({ setupSects: 0, initSize: 0x40_0000 });
  assert.ok(isBzImage(bytes));
  assert.not.ok(isBzImage(makeElf()));
  const image = parseBzImage(bytes, 'bz-test');
  assert.is(image.payloadOffset, 5 * 512, 'setup_sects 0 means 4');
  assert.is(image.payloadSize, 0x1000);
  assert.is(image.loadAddr, 0x100000);
  assert.is(bzImageEntry(image), 0x100200);
  // Relocatable: runs at max(align_up(1 MiB, 2 MiB), pref_address) = 16 MiB, needs init_size there.
  assert.is(image.end, 0x100_0000 + 0x40_0000);
  assert.is(image.cmdlineMax, 2047);
  assert.is(image.initrdAddrMax, 0x7fff_ffff);
  assert.is(image.setupHeaderEnd, 0x26c);
});

test('bzimage: non-relocatable kernels run at pref_address', () => {
  const image = parseBzImage(makeBzImage({ relocatable: false, prefAddress: 0x200_0000, initSize: 0x10_0000 }), 'bz-test');
  assert.is(image.end, 0x210_0000);
});

test('bzimage: refuses what the 64-bit boot protocol cannot start', () => {
  throwsBoot(() => parseBzImage(makeBzImage({ version: 0x020b }), 'bz-test'), /boot protocol 2\.11 is too old/);
  throwsBoot(() => parseBzImage(makeBzImage({ xloadflags: 0 }), 'bz-test'), /XLF_KERNEL_64/);
  throwsBoot(() => parseBzImage(makeBzImage({ loadflags: 0 }), 'bz-test'), /LOADED_HIGH/);
  throwsBoot(() => parseBzImage(makeBzImage({ alignment: 0x30_0000 }), 'bz-test'), /not a power of two/);
  const bytes = makeBzImage();
  throwsBoot(() => parseBzImage(bytes.subarray(0, bytes.length - 16), 'bz-test'), /truncated: the protected-mode kernel/);
  throwsBoot(() => parseBzImage(bytes.subarray(0, 0x240), 'bz-test'), /truncated: 576 bytes/);
  const noMagic = makeBzImage();
  noMagic[0x202] = 0;
  throwsBoot(() => parseBzImage(noMagic, 'bz-test'), /HdrS/);
});

test('bzimage: load needs room for the decompression buffer', () => {
  const bytes = makeBzImage();
  throwsBoot(() => loadBzImage(new Uint8Array(16 * MiB), parseBzImage(bytes, 'bz-test'), bytes, 'bz-test'), /needs guest RAM up to 0x1800000/);
  const mem = new Uint8Array(32 * MiB);
  loadBzImage(mem, parseBzImage(bytes, 'bz-test'), bytes, 'bz-test');
  assert.equal([...mem.subarray(0x100000, 0x100000 + 0x1000)], [...bytes.subarray(5 * 512)]);
});

test('bzimage: boot_params holds the setup header and the loader fields, nothing else', () => {
  const bytes = makeBzImage();
  const image = parseBzImage(bytes, 'bz-test');
  const mem = new Uint8Array(32 * MiB).fill(0x77);
  const e820 = e820Map(5 * 1024 * MiB);
  const at = writeBootParams(mem, image, bytes, { cmdlineAddr: CMDLINE_ADDR, initrd: { addr: 0x7000_0000, size: 0x1234 }, e820 });
  assert.is(at, BOOT_PARAMS_ADDR);
  const v = new DataView(mem.buffer, at, 0x1000);
  const zp = mem.subarray(at, at + 0x1000);
  assert.is(v.getUint32(0x202, true), 0x53726448, 'HdrS copied');
  assert.is(v.getUint16(0x1fe, true), 0xaa55);
  assert.is(v.getUint16(0x206, true), 0x020f);
  assert.is(v.getUint32(0x260, true), 0x80_0000, 'init_size copied');
  assert.is(zp[0x210], 0xff, 'type_of_loader');
  assert.is(zp[0x211], 0x01, 'loadflags as the kernel set them');
  assert.is(v.getUint32(0x228, true), CMDLINE_ADDR);
  assert.is(v.getUint32(0x0c8, true), 0);
  assert.is(v.getUint32(0x218, true), 0x7000_0000);
  assert.is(v.getUint32(0x21c, true), 0x1234);
  assert.is(v.getUint32(0x0c0, true), 0);
  assert.is(v.getUint32(0x0c4, true), 0);
  assert.is(zp[0x1ef], 0, 'sentinel clear');
  assert.is(zp[0x1e8], e820.length);
  e820.forEach((e, i) => {
    assert.is(Number(v.getBigUint64(0x2d0 + i * 20, true)), e.addr);
    assert.is(Number(v.getBigUint64(0x2d0 + i * 20 + 8, true)), e.size);
    assert.is(v.getUint32(0x2d0 + i * 20 + 16, true), e.type);
  });
  assert.ok(zp.subarray(0, 0x0c0).every((b) => b === 0), 'screen_info etc. zero');
  assert.ok(zp.subarray(0x26c, 0x2d0).every((b) => b === 0), 'after the setup header');
});

test.run();
