// The guest-physical memory map of an x86_64 VM: where RAM is, where the MMIO
// gap is, and the fixed addresses of every structure the boot code writes.
// Everything below 1 MiB is ours; the kernel is loaded at or above 1 MiB.
//
//   0x0000_0000  real-mode IVT + BIOS data area (left zero; Linux reads the BDA)
//   0x0000_1000  GDT
//   0x0000_5000  PVH hvm_start_info, module list, memory map
//   0x0000_7000  Linux boot_params ("zero page")
//   0x0000_9000  identity-map page tables: PML4, PDPT, 4 page directories
//   0x0002_0000  kernel command line
//   0x0009_fc00  EBDA (reserved)
//   0x000a_0000  VGA / option ROMs / BIOS (reserved); MP table at 0xf0000
//   0x0010_0000  kernel, then free RAM, initrd at the top of low RAM
//   0xc000_0000  MMIO gap (virtio-mmio, IOAPIC, LAPIC) up to 4 GiB
//   0x1_0000_0000  RAM above 3 GiB continues here (addon-owned memory slot)

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
export const PAGE_SIZE = 4 * KiB;

/** Low RAM lives in the Wasm memory window [0, LOW_RAM_MAX). */
export const LOW_RAM_MAX = 3 * GiB;
export const MMIO_GAP_START = 0xc000_0000;
export const MMIO_GAP_END = 4 * GiB;
/** RAM beyond LOW_RAM_MAX is placed from here (outside the Wasm memory). */
export const HIGH_RAM_BASE = 4 * GiB;

export const VIRTIO_MMIO_BASE = 0xd000_0000;
/** One virtio-mmio register window per device, back to back (QEMU microvm's layout). */
export const VIRTIO_MMIO_SIZE = 0x200;
/**
 * Interrupt lines for virtio-mmio devices, in device order: the IOAPIC pins
 * the legacy devices (timer 0/2, i8042 1/12, COM 3/4, RTC 8, FPU 13) leave
 * free. Edge-triggered (ISA default in our MP table), as irqfd delivers them.
 */
export const VIRTIO_GSIS: readonly number[] = [5, 6, 7, 9, 10, 11, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23];
export const IOAPIC_ADDR = 0xfec0_0000;
export const LAPIC_ADDR = 0xfee0_0000;

/** Extended BIOS data area: the last KiB of base memory, reserved in the E820 map. */
export const EBDA_START = 0x9_fc00;
/** VGA memory, option ROMs and the BIOS area, reserved up to 1 MiB. */
export const LEGACY_HOLE_START = 0xa_0000;
/** First address the kernel may be loaded at; all our structures are below it. */
export const HIMEM_START = 1 * MiB;

export const GDT_ADDR = 0x1000;

export const PVH_START_INFO_ADDR = 0x5000;
/** One hvm_modlist_entry (the initrd), right after the 56-byte hvm_start_info. */
export const PVH_MODLIST_ADDR = 0x5040;
export const PVH_MEMMAP_ADDR = 0x5100;
/** hvm_memmap_table_entry is 24 bytes; the table ends at 0x6000. */
export const PVH_MEMMAP_MAX_ENTRIES = Math.floor((0x6000 - PVH_MEMMAP_ADDR) / 24);

export const BOOT_PARAMS_ADDR = 0x7000;

export const PML4_ADDR = 0x9000;
export const PDPT_ADDR = 0xa000;
/** Page directories for the identity map, one page per GiB. */
export const PD_ADDR = 0xb000;
/** The boot page tables identity-map [0, 4 GiB) with 2 MiB pages: low RAM and the MMIO gap. */
export const IDENTITY_MAP_BYTES = 4 * GiB;

export const CMDLINE_ADDR = 0x2_0000;
/** Linux's x86 COMMAND_LINE_SIZE, including the terminating NUL. */
export const CMDLINE_MAX_BYTES = 2048;

/** Intel MP table: floating pointer and configuration table in the BIOS area, which Linux scans. */
export const MPTABLE_ADDR = 0xf_0000;
export const MPTABLE_MAX_BYTES = 64 * KiB;

export interface MemoryRegion {
  start: number;
  size: number;
}

/** Bytes of guest RAM held in the Wasm memory, at guest-physical [0, lowRamBytes). */
export function lowRamBytes(ramBytes: number): number {
  return Math.min(ramBytes, LOW_RAM_MAX);
}

/** Guest RAM as guest-physical regions: low RAM, then RAM above the MMIO gap if any. */
export function ramRegions(ramBytes: number): MemoryRegion[] {
  const regions: MemoryRegion[] = [{ start: 0, size: lowRamBytes(ramBytes) }];
  if (ramBytes > LOW_RAM_MAX) regions.push({ start: HIGH_RAM_BASE, size: ramBytes - LOW_RAM_MAX });
  return regions;
}

export function alignUp(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}

export function alignDown(value: number, alignment: number): number {
  return Math.floor(value / alignment) * alignment;
}
