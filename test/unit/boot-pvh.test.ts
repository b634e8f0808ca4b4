import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { e820Map } from '../../host/boot/e820.js';
import { CMDLINE_ADDR, MiB, PVH_START_INFO_ADDR } from '../../host/boot/layout.js';
import { writeStartInfo } from '../../host/boot/pvh.js';

// Offsets from include/xen/interface/hvm/start_info.h.
test('pvh: hvm_start_info version 1 with initrd module and memory map', () => {
  const mem = new Uint8Array(2 * MiB).fill(0x55);
  const e820 = e820Map(256 * MiB);
  const at = writeStartInfo(mem, { cmdlineAddr: CMDLINE_ADDR, initrd: { addr: 0xf00_0000, size: 12345 }, e820 });
  assert.is(at, PVH_START_INFO_ADDR);
  const v = new DataView(mem.buffer);
  assert.is(v.getUint32(at, true), 0x336ec578, 'magic');
  assert.is(v.getUint32(at + 4, true), 1, 'version');
  assert.is(v.getUint32(at + 8, true), 0, 'flags');
  assert.is(v.getUint32(at + 12, true), 1, 'nr_modules');
  const modlist = Number(v.getBigUint64(at + 16, true));
  assert.is(Number(v.getBigUint64(at + 24, true)), CMDLINE_ADDR, 'cmdline_paddr');
  assert.is(v.getBigUint64(at + 32, true), 0n, 'rsdp_paddr');
  const memmap = Number(v.getBigUint64(at + 40, true));
  assert.is(v.getUint32(at + 48, true), e820.length, 'memmap_entries');
  assert.is(v.getUint32(at + 52, true), 0, 'reserved');

  assert.is(v.getBigUint64(modlist, true), 0xf00_0000n, 'module paddr');
  assert.is(v.getBigUint64(modlist + 8, true), 12345n, 'module size');
  assert.is(v.getBigUint64(modlist + 16, true), 0n, 'module cmdline');
  assert.is(v.getBigUint64(modlist + 24, true), 0n, 'module reserved');

  e820.forEach((e, i) => {
    const entry = memmap + i * 24;
    assert.is(Number(v.getBigUint64(entry, true)), e.addr);
    assert.is(Number(v.getBigUint64(entry + 8, true)), e.size);
    assert.is(v.getUint32(entry + 16, true), e.type);
    assert.is(v.getUint32(entry + 20, true), 0);
  });
});

test('pvh: without an initrd there are no modules', () => {
  const mem = new Uint8Array(2 * MiB).fill(0x55);
  const at = writeStartInfo(mem, { cmdlineAddr: CMDLINE_ADDR, e820: e820Map(64 * MiB) });
  const v = new DataView(mem.buffer);
  assert.is(v.getUint32(at + 12, true), 0);
  assert.is(v.getBigUint64(at + 16, true), 0n);
});

test.run();
