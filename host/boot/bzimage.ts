// bzImage through the Linux 64-bit boot protocol (Documentation/x86/boot.rst):
// the setup header, where the protected-mode kernel goes, and boot_params.
import type { E820Entry } from './e820.js';
import { BootError } from './errors.js';
import { clearRange, dataView } from './guestmem.js';
import { BOOT_PARAMS_ADDR, HIMEM_START, alignUp } from './layout.js';

/** Offsets in the bzImage file and in boot_params ("zero page"), which share the setup header layout. */
export const BP = {
  extRamdiskImage: 0x0c0,
  extRamdiskSize: 0x0c4,
  extCmdLinePtr: 0x0c8,
  e820Entries: 0x1e8,
  setupHeader: 0x1f1,
  setupSects: 0x1f1,
  syssize: 0x1f4,
  bootFlag: 0x1fe,
  jump: 0x200,
  header: 0x202,
  version: 0x206,
  typeOfLoader: 0x210,
  loadflags: 0x211,
  ramdiskImage: 0x218,
  ramdiskSize: 0x21c,
  cmdLinePtr: 0x228,
  initrdAddrMax: 0x22c,
  kernelAlignment: 0x230,
  relocatableKernel: 0x234,
  xloadflags: 0x236,
  cmdlineSize: 0x238,
  prefAddress: 0x258,
  initSize: 0x260,
  /** The setup header may extend at most to here (edd_mbr_sig_buffer follows). */
  setupHeaderLimit: 0x290,
  e820Table: 0x2d0,
  size: 0x1000,
} as const;
const E820_ENTRY_SIZE = 20;
const E820_MAX_ENTRIES_ZEROPAGE = 128;

const HDRS_MAGIC = 0x5372_6448; // "HdrS"
const BOOT_FLAG = 0xaa55;
const MIN_VERSION = 0x020c; // 2.12: xloadflags and the 64-bit entry
const LOADED_HIGH = 1 << 0;
const XLF_KERNEL_64 = 1 << 0;
const LOADER_TYPE_UNDEFINED = 0xff;
/** The 64-bit entry is this far into the protected-mode kernel. */
const STARTUP_64_OFFSET = 0x200;

export interface BzImage {
  /** File offset and size of the protected-mode kernel (after the real-mode setup sectors). */
  payloadOffset: number;
  payloadSize: number;
  /** Where we load the protected-mode kernel. */
  loadAddr: number;
  /** One past the highest address the kernel uses before it reads the memory map (decompression buffer). */
  end: number;
  /** Highest address the initrd may occupy (inclusive). */
  initrdAddrMax: number;
  /** Longest command line the kernel accepts, without the NUL. */
  cmdlineMax: number;
  /** End of the setup header in the file (0x202 + byte at 0x201). */
  setupHeaderEnd: number;
}

export function isBzImage(bytes: Uint8Array): boolean {
  return bytes.length >= BP.header + 4 && dataView(bytes).getUint32(BP.header, true) === HDRS_MAGIC;
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/** Validates the setup header of a bzImage that supports the 64-bit boot protocol. */
export function parseBzImage(bytes: Uint8Array, name: string): BzImage {
  const bad = (what: string): BootError => new BootError(`bzImage ${name}: ${what}`);
  if (!isBzImage(bytes)) throw bad('no "HdrS" setup header signature at offset 0x202');
  const view = dataView(bytes);
  const setupHeaderEnd = BP.jump + 2 + bytes[BP.jump + 1]!;
  if (setupHeaderEnd > BP.setupHeaderLimit) throw bad(`setup header end ${hex(setupHeaderEnd)} is past ${hex(BP.setupHeaderLimit)}`);
  if (bytes.length < setupHeaderEnd) throw bad(`truncated: ${bytes.length} bytes, the setup header ends at ${hex(setupHeaderEnd)}`);
  const version = view.getUint16(BP.version, true);
  if (version < MIN_VERSION) {
    throw bad(`boot protocol ${version >> 8}.${version & 0xff} is too old: 2.12 or later is needed for the 64-bit entry`);
  }
  if (setupHeaderEnd < BP.initSize + 4) throw bad(`setup header ends at ${hex(setupHeaderEnd)}, before init_size`);
  if (view.getUint16(BP.bootFlag, true) !== BOOT_FLAG) throw bad(`boot_flag at 0x1fe is not 0xaa55`);
  if (!(bytes[BP.loadflags]! & LOADED_HIGH)) throw bad('not a bzImage (loadflags LOADED_HIGH is clear)');
  if (!(view.getUint16(BP.xloadflags, true) & XLF_KERNEL_64)) throw bad('no 64-bit entry point (xloadflags XLF_KERNEL_64 is clear)');

  const setupSects = bytes[BP.setupSects] || 4; // 0 means 4
  const payloadOffset = (setupSects + 1) * 512;
  const payloadSize = bytes.length - payloadOffset;
  const declared = view.getUint32(BP.syssize, true) * 16;
  if (payloadSize <= 0 || payloadSize < declared) {
    throw bad(`truncated: the protected-mode kernel at offset ${hex(payloadOffset)} should be ${hex(declared)} bytes, the file has ${hex(Math.max(payloadSize, 0))}`);
  }

  // Where the kernel decompresses and runs (arch/x86/boot/compressed/head_64.S):
  // relocatable kernels at the load address rounded up to kernel_alignment, but
  // not below pref_address (LOAD_PHYSICAL_ADDR); others at pref_address.
  const loadAddr = HIMEM_START;
  const alignment = view.getUint32(BP.kernelAlignment, true);
  const prefAddress = Number(view.getBigUint64(BP.prefAddress, true));
  const relocatable = bytes[BP.relocatableKernel] !== 0;
  if (relocatable && (alignment === 0 || (alignment & (alignment - 1)) !== 0)) throw bad(`kernel_alignment ${hex(alignment)} is not a power of two`);
  const runtimeStart = relocatable ? Math.max(alignUp(loadAddr, alignment), prefAddress) : prefAddress;
  if (!Number.isSafeInteger(runtimeStart) || runtimeStart < HIMEM_START) throw bad(`preferred load address ${hex(prefAddress)} is invalid`);
  const end = Math.max(loadAddr + payloadSize, runtimeStart + view.getUint32(BP.initSize, true));

  return {
    payloadOffset,
    payloadSize,
    loadAddr,
    end,
    initrdAddrMax: view.getUint32(BP.initrdAddrMax, true),
    cmdlineMax: view.getUint32(BP.cmdlineSize, true),
    setupHeaderEnd,
  };
}

/** Copies the protected-mode kernel to its load address. */
export function loadBzImage(mem: Uint8Array, image: BzImage, bytes: Uint8Array, name: string): void {
  if (image.end > mem.length) {
    throw new BootError(`bzImage ${name}: needs guest RAM up to ${hex(image.end)} to decompress, but the VM has ${hex(mem.length)} bytes of low RAM`);
  }
  mem.set(bytes.subarray(image.payloadOffset), image.loadAddr);
}

export interface BootParamsInput {
  cmdlineAddr: number;
  initrd?: { addr: number; size: number };
  e820: E820Entry[];
}

/**
 * Writes boot_params at BOOT_PARAMS_ADDR: a clean page with the kernel's setup
 * header copied in (so the sentinel stays 0), then the loader's fields.
 * loadflags is kept as the kernel set it: CAN_USE_HEAP only matters to the
 * real-mode setup code and KEEP_SEGMENTS is obsolete, neither runs here.
 */
export function writeBootParams(mem: Uint8Array, image: BzImage, bytes: Uint8Array, input: BootParamsInput): number {
  if (input.e820.length > E820_MAX_ENTRIES_ZEROPAGE) throw new BootError(`E820 map has ${input.e820.length} entries; boot_params holds ${E820_MAX_ENTRIES_ZEROPAGE}`);
  clearRange(mem, BOOT_PARAMS_ADDR, BP.size, 'boot_params');
  const at = BOOT_PARAMS_ADDR;
  mem.set(bytes.subarray(BP.setupHeader, image.setupHeaderEnd), at + BP.setupHeader);
  const view = dataView(mem);
  view.setUint8(at + BP.typeOfLoader, LOADER_TYPE_UNDEFINED);
  const split = (value: number, low: number, high: number): void => {
    view.setUint32(at + low, value % 2 ** 32, true);
    view.setUint32(at + high, Math.floor(value / 2 ** 32), true);
  };
  split(input.cmdlineAddr, BP.cmdLinePtr, BP.extCmdLinePtr);
  if (input.initrd) {
    split(input.initrd.addr, BP.ramdiskImage, BP.extRamdiskImage);
    split(input.initrd.size, BP.ramdiskSize, BP.extRamdiskSize);
  }
  view.setUint8(at + BP.e820Entries, input.e820.length);
  input.e820.forEach((e, i) => {
    const entry = at + BP.e820Table + i * E820_ENTRY_SIZE;
    view.setBigUint64(entry, BigInt(e.addr), true);
    view.setBigUint64(entry + 8, BigInt(e.size), true);
    view.setUint32(entry + 16, e.type, true);
  });
  return at;
}

/** Where execution starts: the 64-bit entry of the protected-mode kernel. */
export function bzImageEntry(image: BzImage): number {
  return image.loadAddr + STARTUP_64_OFFSET;
}
