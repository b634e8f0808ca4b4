import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SELECTORS, setupLongMode, setupProtectedMode } from '../../host/boot/longmode.js';
import { GDT_ADDR, MiB } from '../../host/boot/layout.js';

function guestRam(): Uint8Array {
  return new Uint8Array(2 * MiB).fill(0xaa); // garbage, to check every structure is fully written
}

/** Translates a virtual address the way the MMU does with 4-level paging (2 MiB or 4 KiB leaves). */
function translate(mem: Uint8Array, cr3: bigint, va: bigint): bigint | undefined {
  const view = new DataView(mem.buffer);
  let table = cr3 & ~0xfffn;
  for (const shift of [39n, 30n, 21n, 12n]) {
    const index = (va >> shift) & 0x1ffn;
    const entry = view.getBigUint64(Number(table + index * 8n), true);
    if ((entry & 1n) === 0n) return undefined;
    const frame = entry & 0x000f_ffff_ffff_f000n;
    const huge = (entry & 0x80n) !== 0n;
    if (shift === 12n || (huge && shift === 21n)) return frame + (va & ((1n << shift) - 1n));
    assert.not.ok(huge && shift === 30n, '1 GiB pages are not used');
    table = frame;
  }
  return undefined;
}

function gdtEntry(mem: Uint8Array, selector: number): bigint {
  return new DataView(mem.buffer).getBigUint64(GDT_ADDR + (selector & ~7), true);
}

test('long mode: page tables identity-map the first 4 GiB and nothing above', () => {
  const mem = guestRam();
  const sregs = setupLongMode(mem);
  for (const va of [0n, 0x1000n, 0x100_0000n, 0x1234_5678n, 0xbfff_ffffn, 0xd000_0000n, 0xfec0_0000n, 0xfee0_0fffn, 0xffff_ffffn]) {
    assert.is(translate(mem, sregs.cr3!, va), va, `0x${va.toString(16)}`);
  }
  assert.is(translate(mem, sregs.cr3!, 0x1_0000_0000n), undefined);
  assert.is(translate(mem, sregs.cr3!, 0x8000_0000_0000n), undefined);
});

test('long mode: control registers and EFER', () => {
  const sregs = setupLongMode(guestRam());
  assert.is(sregs.cr0, 0x8000_0011n); // PG | ET | PE
  assert.is(sregs.cr4, 0x20n);        // PAE
  assert.is(sregs.efer, 0x500n);      // LMA | LME
});

test('long mode: segments follow the 64-bit boot protocol and match the GDT', () => {
  const mem = guestRam();
  const s = setupLongMode(mem);
  assert.is(s.cs!.selector, 0x10);
  assert.is(s.cs!.l, 1);
  assert.is(s.cs!.db, 0);
  assert.is(s.cs!.type, 0xb);
  for (const seg of [s.ds!, s.es!, s.ss!, s.fs!, s.gs!]) {
    assert.is(seg.selector, 0x18);
    assert.is(seg.type, 3);
    assert.is(seg.limit, 0xffff_ffff);
    assert.is(seg.base, 0n);
  }
  assert.is(gdtEntry(mem, 0), 0n);
  assert.is(gdtEntry(mem, SELECTORS.code32), 0x00cf_9b00_0000_ffffn);
  assert.is(gdtEntry(mem, SELECTORS.code64), 0x00af_9b00_0000_ffffn);
  assert.is(gdtEntry(mem, SELECTORS.data), 0x00cf_9300_0000_ffffn);
  assert.is(gdtEntry(mem, SELECTORS.tss), 0x0000_8b00_0000_0067n);
  assert.is(gdtEntry(mem, SELECTORS.tss + 8), 0n, 'high half of the 16-byte TSS descriptor');
  assert.equal(s.gdt, { base: BigInt(GDT_ADDR), limit: 6 * 8 - 1 });
  assert.is(s.tr!.selector, 0x20);
  assert.is(s.tr!.type, 0xb);
  assert.is(s.tr!.s, 0);
  assert.is(s.tr!.limit, 0x67);
});

test('protected mode: PVH entry state (PE only, paging off, flat 32-bit segments)', () => {
  const mem = guestRam();
  const s = setupProtectedMode(mem);
  assert.is(s.cr0, 0x11n);
  assert.is(s.cr4, 0n);
  assert.is(s.efer, 0n);
  assert.is(s.cs!.selector, SELECTORS.code32);
  assert.is(s.cs!.db, 1);
  assert.is(s.cs!.l, 0);
  assert.is(s.cs!.limit, 0xffff_ffff);
  assert.is(s.cs!.base, 0n);
  assert.is(s.ss!.db, 1);
  assert.is(s.tr!.base, 0n);
  assert.is(s.tr!.limit, 0x67);
  assert.is(s.tr!.type, 0xb); // busy 32-bit TSS
  assert.is(gdtEntry(mem, SELECTORS.code32), 0x00cf_9b00_0000_ffffn);
});

test.run();
