// Initial CPU mode for the boot protocols: a GDT, identity-map page tables,
// and the special registers for a 64-bit (Linux 64-bit boot protocol) or a
// 32-bit flat protected-mode (PVH) start.
import type { Segment, Sregs } from '../native.js';
import { clearRange, dataView } from './guestmem.js';
import { GDT_ADDR, GiB, IDENTITY_MAP_BYTES, MiB, PAGE_SIZE, PD_ADDR, PDPT_ADDR, PML4_ADDR } from './layout.js';

/** Access/flags word of a descriptor (bits 40-55): G, D/B, L, AVL, limit[19:16] placeholder, P, DPL, S, type. */
interface Descriptor {
  flags: number;
  base: number;
  limit: number;
}

const CODE32: Descriptor = { flags: 0xc09b, base: 0, limit: 0xfffff }; // G, D, P, S, execute/read accessed
const CODE64: Descriptor = { flags: 0xa09b, base: 0, limit: 0xfffff }; // G, L, P, S, execute/read accessed
const DATA: Descriptor = { flags: 0xc093, base: 0, limit: 0xfffff };   // G, B, P, S, read/write accessed
// PVH requires an active 32-bit TSS with base 0 and limit 0x67; in long mode the
// same descriptor is the low half of a 16-byte TSS descriptor whose high half is 0.
const TSS: Descriptor = { flags: 0x008b, base: 0, limit: 0x67 };       // P, busy TSS

/**
 * Selectors, in the order of Linux's own boot GDT: the 64-bit boot protocol
 * requires __BOOT_CS = 0x10 and __BOOT_DS = 0x18.
 */
export const SELECTORS = { code32: 0x08, code64: 0x10, data: 0x18, tss: 0x20 } as const;
const GDT: Descriptor[] = [{ flags: 0, base: 0, limit: 0 }, CODE32, CODE64, DATA, TSS, { flags: 0, base: 0, limit: 0 }];

const CR0_PE = 1n << 0n;
const CR0_ET = 1n << 4n;
const CR0_PG = 1n << 31n;
const CR4_PAE = 1n << 5n;
const EFER_LME = 1n << 8n;
const EFER_LMA = 1n << 10n;

const PTE_PRESENT = 1n << 0n;
const PTE_WRITABLE = 1n << 1n;
const PTE_HUGE = 1n << 7n;
const PAGE_2M = 2 * MiB;

/** The 8-byte GDT entry for a descriptor. */
function encodeDescriptor(d: Descriptor): bigint {
  const base = BigInt(d.base >>> 0);
  const limit = BigInt(d.limit);
  return ((base & 0xff00_0000n) << 32n)
    | (BigInt(d.flags & 0xf0ff) << 40n)
    | ((limit & 0xf_0000n) << 32n)
    | ((base & 0x00ff_ffffn) << 16n)
    | (limit & 0xffffn);
}

/** The kvm_segment KVM loads for `selector`, matching what the CPU would cache from the GDT entry. */
function segment(d: Descriptor, selector: number): Segment {
  const g = (d.flags >> 15) & 1;
  return {
    base: BigInt(d.base),
    limit: g ? d.limit * PAGE_SIZE + (PAGE_SIZE - 1) : d.limit,
    selector,
    type: d.flags & 0xf,
    s: (d.flags >> 4) & 1,
    dpl: (d.flags >> 5) & 3,
    present: (d.flags >> 7) & 1,
    avl: (d.flags >> 12) & 1,
    l: (d.flags >> 13) & 1,
    db: (d.flags >> 14) & 1,
    g,
  };
}

function writeGdt(mem: Uint8Array): Pick<Sregs, 'gdt' | 'idt' | 'tr'> {
  clearRange(mem, GDT_ADDR, GDT.length * 8, 'GDT');
  const view = dataView(mem);
  GDT.forEach((d, i) => view.setBigUint64(GDT_ADDR + i * 8, encodeDescriptor(d), true));
  return {
    gdt: { base: BigInt(GDT_ADDR), limit: GDT.length * 8 - 1 },
    // No IDT: the kernel installs its own before enabling interrupts.
    idt: { base: 0n, limit: 0 },
    tr: segment(TSS, SELECTORS.tss),
  };
}

/** Identity-maps [0, IDENTITY_MAP_BYTES) with 2 MiB pages; returns CR3. */
function writePageTables(mem: Uint8Array): bigint {
  const directories = IDENTITY_MAP_BYTES / GiB;
  clearRange(mem, PML4_ADDR, PAGE_SIZE, 'PML4');
  clearRange(mem, PDPT_ADDR, PAGE_SIZE, 'PDPT');
  clearRange(mem, PD_ADDR, directories * PAGE_SIZE, 'page directories');
  const view = dataView(mem);
  const table = PTE_PRESENT | PTE_WRITABLE;
  view.setBigUint64(PML4_ADDR, BigInt(PDPT_ADDR) | table, true);
  for (let i = 0; i < directories; i++) {
    view.setBigUint64(PDPT_ADDR + i * 8, BigInt(PD_ADDR + i * PAGE_SIZE) | table, true);
  }
  for (let i = 0; i < IDENTITY_MAP_BYTES / PAGE_2M; i++) {
    view.setBigUint64(PD_ADDR + i * 8, BigInt(i) * BigInt(PAGE_2M) | table | PTE_HUGE, true);
  }
  return BigInt(PML4_ADDR);
}

/** Writes the GDT; returns its tables with `cs` and flat data segments in every other segment register. */
function flatSegments(mem: Uint8Array, cs: Segment): Partial<Sregs> {
  const data = segment(DATA, SELECTORS.data);
  return { ...writeGdt(mem), cs, ds: data, es: data, fs: data, gs: data, ss: data };
}

/**
 * Writes the GDT and page tables and returns the sregs fields to merge over
 * KVM_GET_SREGS for a start in 64-bit mode with paging on (Linux 64-bit boot
 * protocol: CS = __BOOT_CS, DS/ES/SS = __BOOT_DS, flat 4 GiB).
 */
export function setupLongMode(mem: Uint8Array): Partial<Sregs> {
  return {
    ...flatSegments(mem, segment(CODE64, SELECTORS.code64)),
    cr0: CR0_PE | CR0_ET | CR0_PG,
    cr3: writePageTables(mem),
    cr4: CR4_PAE,
    efer: EFER_LME | EFER_LMA,
  };
}

/**
 * Writes the GDT and returns the sregs fields for a start in 32-bit flat
 * protected mode with paging off, as the PVH entry requires: CR0.PE only,
 * CR4 = 0, flat 4 GiB code and data segments, an active 32-bit TSS.
 */
export function setupProtectedMode(mem: Uint8Array): Partial<Sregs> {
  return {
    ...flatSegments(mem, segment(CODE32, SELECTORS.code32)),
    cr0: CR0_PE | CR0_ET,
    cr3: 0n,
    cr4: 0n,
    efer: 0n,
  };
}
