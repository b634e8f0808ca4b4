// PVH boot (Xen's direct-boot ABI, which Linux also accepts on KVM): the
// hvm_start_info structure, its module list (the initrd) and memory map.
import type { E820Entry } from './e820.js';
import { BootError } from './errors.js';
import { clearRange, dataView } from './guestmem.js';
import { PVH_MEMMAP_ADDR, PVH_MEMMAP_MAX_ENTRIES, PVH_MODLIST_ADDR, PVH_START_INFO_ADDR } from './layout.js';

const XEN_HVM_START_MAGIC = 0x336e_c578;
/** Version 1 adds the memory map, which Linux requires when not running on Xen. */
const START_INFO_VERSION = 1;
const START_INFO_SIZE = 56;
const MODLIST_ENTRY_SIZE = 32;
const MEMMAP_ENTRY_SIZE = 24;

export interface StartInfoInput {
  cmdlineAddr: number;
  initrd?: { addr: number; size: number };
  e820: E820Entry[];
}

/** Writes hvm_start_info, the module list and the memory map; returns the start info address (for EBX). */
export function writeStartInfo(mem: Uint8Array, input: StartInfoInput): number {
  if (input.e820.length > PVH_MEMMAP_MAX_ENTRIES) {
    throw new BootError(`memory map has ${input.e820.length} entries; the PVH memory map holds ${PVH_MEMMAP_MAX_ENTRIES}`);
  }
  clearRange(mem, PVH_START_INFO_ADDR, START_INFO_SIZE, 'PVH start info');
  clearRange(mem, PVH_MODLIST_ADDR, MODLIST_ENTRY_SIZE, 'PVH module list');
  clearRange(mem, PVH_MEMMAP_ADDR, input.e820.length * MEMMAP_ENTRY_SIZE, 'PVH memory map');
  const view = dataView(mem);
  const at = PVH_START_INFO_ADDR;
  view.setUint32(at, XEN_HVM_START_MAGIC, true);
  view.setUint32(at + 4, START_INFO_VERSION, true);
  if (input.initrd) {
    view.setUint32(at + 12, 1, true); // nr_modules: the first module is the initrd
    view.setBigUint64(at + 16, BigInt(PVH_MODLIST_ADDR), true);
    view.setBigUint64(PVH_MODLIST_ADDR, BigInt(input.initrd.addr), true);
    view.setBigUint64(PVH_MODLIST_ADDR + 8, BigInt(input.initrd.size), true);
  }
  view.setBigUint64(at + 24, BigInt(input.cmdlineAddr), true);
  // rsdp_paddr stays 0: no ACPI, the guest finds its CPUs in the MP table.
  view.setBigUint64(at + 40, BigInt(PVH_MEMMAP_ADDR), true);
  view.setUint32(at + 48, input.e820.length, true);
  input.e820.forEach((e, i) => {
    const entry = PVH_MEMMAP_ADDR + i * MEMMAP_ENTRY_SIZE;
    view.setBigUint64(entry, BigInt(e.addr), true);
    view.setBigUint64(entry + 8, BigInt(e.size), true);
    view.setUint32(entry + 16, e.type, true);
  });
  return at;
}
