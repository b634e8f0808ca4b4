// The BIOS-style E820 memory map given to the kernel (boot_params for the
// 64-bit boot protocol, hvm_memmap_table for PVH).
import { BootError } from './errors.js';
import { EBDA_START, HIGH_RAM_BASE, HIMEM_START, LEGACY_HOLE_START, MiB, PAGE_SIZE, lowRamBytes } from './layout.js';

export const E820_RAM = 1;
export const E820_RESERVED = 2;

export interface E820Entry {
  addr: number;
  size: number;
  type: number;
}

/** Smallest guest RAM we build a map for: the legacy first MiB plus room for a kernel to start. */
export const MIN_RAM_BYTES = 2 * MiB;

/**
 * Usable base memory below the EBDA, the EBDA and the legacy VGA/ROM hole
 * reserved, RAM from 1 MiB to the MMIO gap, and RAM above 4 GiB. The MMIO gap
 * itself is left out so the kernel sees it as a hole.
 */
export function e820Map(ramBytes: number): E820Entry[] {
  if (!Number.isSafeInteger(ramBytes) || ramBytes < MIN_RAM_BYTES || ramBytes % PAGE_SIZE !== 0) {
    throw new BootError(`guest RAM size ${ramBytes} is invalid: expected a multiple of ${PAGE_SIZE} bytes, at least ${MIN_RAM_BYTES}`);
  }
  const low = lowRamBytes(ramBytes);
  const map: E820Entry[] = [
    { addr: 0, size: EBDA_START, type: E820_RAM },
    { addr: EBDA_START, size: LEGACY_HOLE_START - EBDA_START, type: E820_RESERVED },
    { addr: LEGACY_HOLE_START, size: HIMEM_START - LEGACY_HOLE_START, type: E820_RESERVED },
    { addr: HIMEM_START, size: low - HIMEM_START, type: E820_RAM },
  ];
  if (ramBytes > low) map.push({ addr: HIGH_RAM_BASE, size: ramBytes - low, type: E820_RAM });
  return map;
}
