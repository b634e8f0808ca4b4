// The one entry point for booting Linux: detects the kernel format, writes the
// kernel, initrd, command line, boot structures, MP table, GDT and page tables
// into guest RAM, and returns the boot vCPU's initial registers.
// ELF vmlinux boots through PVH (32-bit entry, no decompression: the fast path
// on emulated CPUs); bzImage through the 64-bit boot protocol.
import type { Regs, Sregs } from '../native.js';
import { type BzImage, bzImageEntry, isBzImage, loadBzImage, parseBzImage, writeBootParams } from './bzimage.js';
import { e820Map } from './e820.js';
import { type ElfKernel, isElf, loadElf, parseElf } from './elf.js';
import { BootError } from './errors.js';
import { clearRange } from './guestmem.js';
import { CMDLINE_ADDR, CMDLINE_MAX_BYTES, type MemoryRegion, PAGE_SIZE, alignDown, alignUp, lowRamBytes } from './layout.js';
import { setupLongMode, setupProtectedMode } from './longmode.js';
import { writeMpTable } from './mptable.js';
import { writeStartInfo } from './pvh.js';

export type BootImage =
  | { kind: 'elf-pvh'; elf: ElfKernel }
  | { kind: 'bzimage'; bzimage: BzImage };

/** Recognises and validates a kernel image; `name` (e.g. its path) appears in error messages. */
export function detectKernel(bytes: Uint8Array, name: string): BootImage {
  if (isElf(bytes)) return { kind: 'elf-pvh', elf: parseElf(bytes, name) };
  if (isBzImage(bytes)) return { kind: 'bzimage', bzimage: parseBzImage(bytes, name) };
  throw new BootError(`not a bzImage or ELF vmlinux: ${name}`);
}

export interface LinuxBootOptions {
  kernel: Uint8Array;
  kernelName: string;
  initrd?: Uint8Array;
  initrdName?: string;
  cmdline: string;
  /** All guest RAM, including what lies above the MMIO gap. */
  ramBytes: number;
  vcpus: number;
}

export interface LinuxBootState {
  /** Merge over zeroed registers for the boot vCPU. */
  regs: Partial<Regs>;
  /** Merge over KVM_GET_SREGS for the boot vCPU. */
  sregs: Partial<Sregs>;
  protocol: 'pvh' | 'linux64';
  kernel: MemoryRegion;
  initrd?: MemoryRegion;
}

const RFLAGS_RESERVED = 0x2n; // bit 1 always reads 1; IF stays clear as both protocols require

/**
 * Boots Linux into `mem`, the guest's low RAM (guest-physical 0 up to
 * min(ramBytes, 3 GiB)); application processors are announced in the MP table
 * and started by the guest through INIT/SIPI.
 */
export function loadLinux(mem: Uint8Array, opts: LinuxBootOptions): LinuxBootState {
  const e820 = e820Map(opts.ramBytes);
  const lowBytes = lowRamBytes(opts.ramBytes);
  if (mem.length < lowBytes) {
    throw new BootError(`guest RAM view has ${mem.length} bytes; ${lowBytes} are needed for ${opts.ramBytes} bytes of RAM`);
  }
  const ram = mem.subarray(0, lowBytes);
  const image = detectKernel(opts.kernel, opts.kernelName);
  const cmdlineMax = image.kind === 'bzimage' ? Math.min(image.bzimage.cmdlineMax, CMDLINE_MAX_BYTES - 1) : CMDLINE_MAX_BYTES - 1;
  writeCmdline(ram, opts.cmdline, cmdlineMax);
  writeMpTable(ram, opts.vcpus);

  let kernel: MemoryRegion;
  let initrdMax: number;
  if (image.kind === 'elf-pvh') {
    loadElf(ram, image.elf, opts.kernel, opts.kernelName);
    kernel = { start: image.elf.start, size: image.elf.end - image.elf.start };
    initrdMax = ram.length - 1;
  } else {
    loadBzImage(ram, image.bzimage, opts.kernel, opts.kernelName);
    kernel = { start: image.bzimage.loadAddr, size: image.bzimage.end - image.bzimage.loadAddr };
    initrdMax = image.bzimage.initrdAddrMax;
  }
  const initrd = opts.initrd && placeInitrd(ram, opts.initrd, opts.initrdName ?? 'initrd', kernel.start + kernel.size, initrdMax);
  const bootData = { cmdlineAddr: CMDLINE_ADDR, e820, ...(initrd && { initrd: { addr: initrd.start, size: initrd.size } }) };

  if (image.kind === 'elf-pvh') {
    const startInfo = writeStartInfo(ram, bootData);
    return {
      regs: { rip: BigInt(image.elf.pvhEntry), rbx: BigInt(startInfo), rflags: RFLAGS_RESERVED },
      sregs: setupProtectedMode(ram),
      protocol: 'pvh',
      kernel,
      ...(initrd && { initrd }),
    };
  }
  const bootParams = writeBootParams(ram, image.bzimage, opts.kernel, bootData);
  return {
    regs: { rip: BigInt(bzImageEntry(image.bzimage)), rsi: BigInt(bootParams), rflags: RFLAGS_RESERVED },
    sregs: setupLongMode(ram),
    protocol: 'linux64',
    kernel,
    ...(initrd && { initrd }),
  };
}

/** Writes the NUL-terminated command line; `max` is the longest the kernel accepts, without the NUL. */
function writeCmdline(ram: Uint8Array, cmdline: string, max: number): void {
  const bytes = new TextEncoder().encode(cmdline);
  if (bytes.includes(0)) throw new BootError('kernel command line contains a NUL character');
  if (bytes.length > max) throw new BootError(`kernel command line is ${bytes.length} bytes; the kernel accepts at most ${max}`);
  clearRange(ram, CMDLINE_ADDR, bytes.length + 1, 'kernel command line');
  ram.set(bytes, CMDLINE_ADDR);
}

/** Puts the initrd page-aligned at the top of low RAM (below `maxAddr`, inclusive) and above the kernel. */
function placeInitrd(ram: Uint8Array, initrd: Uint8Array, name: string, kernelEnd: number, maxAddr: number): MemoryRegion {
  if (initrd.length === 0) throw new BootError(`initrd ${name} is empty`);
  const top = alignDown(Math.min(ram.length, maxAddr + 1), PAGE_SIZE);
  const start = alignDown(top - initrd.length, PAGE_SIZE);
  const floor = alignUp(kernelEnd, PAGE_SIZE);
  if (start < floor) {
    throw new BootError(`initrd ${name} (${initrd.length} bytes) does not fit between the kernel's end 0x${floor.toString(16)} and 0x${top.toString(16)}: give the VM more memory or use a smaller initrd`);
  }
  ram.set(initrd, start);
  return { start, size: initrd.length };
}
