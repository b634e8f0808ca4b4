// ELF64 vmlinux: validation, PT_LOAD placement at physical addresses, and the
// PVH entry point from the Xen ELF note (XEN_ELFNOTE_PHYS32_ENTRY).
import { BootError } from './errors.js';
import { HIMEM_START } from './layout.js';

const ELF_MAGIC = [0x7f, 0x45, 0x4c, 0x46];
const ELFCLASS64 = 2;
const ELFDATA2LSB = 1;
const EV_CURRENT = 1;
const ET_EXEC = 2;
const EM_X86_64 = 62;
const EHDR_SIZE = 64;
const PHDR_SIZE = 56;
const PT_LOAD = 1;
const PT_NOTE = 4;
const XEN_ELFNOTE_PHYS32_ENTRY = 18;

export interface ElfSegment {
  /** Guest-physical load address. */
  paddr: number;
  fileOffset: number;
  fileSize: number;
  memSize: number;
}

export interface ElfKernel {
  segments: ElfSegment[];
  /** 32-bit PVH entry point (physical), from the Xen note. */
  pvhEntry: number;
  /** Lowest and one past the highest physical address the segments occupy. */
  start: number;
  end: number;
}

export function isElf(bytes: Uint8Array): boolean {
  return ELF_MAGIC.every((b, i) => bytes[i] === b);
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/** Parses and validates an ELF64 x86-64 executable with a PVH entry note; `name` is used in error messages. */
export function parseElf(bytes: Uint8Array, name: string): ElfKernel {
  const bad = (what: string): BootError => new BootError(`ELF kernel ${name}: ${what}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u64 = (at: number, field: string): number => {
    const v = view.getBigUint64(at, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(`${field} ${hex(Number(v))} is out of range`);
    return Number(v);
  };

  if (bytes.length < EHDR_SIZE) throw bad(`truncated: ${bytes.length} bytes is shorter than the 64-byte ELF header`);
  if (!isElf(bytes)) throw bad('bad magic: not an ELF file');
  if (bytes[4] !== ELFCLASS64) throw bad(`ELF class ${bytes[4]} is not ELFCLASS64 (2): a 64-bit kernel is required`);
  if (bytes[5] !== ELFDATA2LSB) throw bad(`data encoding ${bytes[5]} is not little-endian (1)`);
  if (bytes[6] !== EV_CURRENT) throw bad(`ELF version ${bytes[6]} is not 1`);
  const type = view.getUint16(16, true);
  if (type !== ET_EXEC) throw bad(`ELF type ${type} is not an executable (ET_EXEC, 2)`);
  const machine = view.getUint16(18, true);
  if (machine !== EM_X86_64) throw bad(`machine ${machine} is not x86-64 (EM_X86_64, 62)`);

  const phoff = u64(32, 'program header offset');
  const phentsize = view.getUint16(54, true);
  const phnum = view.getUint16(56, true);
  if (phentsize < PHDR_SIZE) throw bad(`program header entry size ${phentsize} is smaller than ${PHDR_SIZE}`);
  if (phnum === 0) throw bad('no program headers');
  if (phoff + phnum * phentsize > bytes.length) {
    throw bad(`truncated: ${phnum} program headers at offset ${hex(phoff)} end past the file size ${hex(bytes.length)}`);
  }

  const segments: ElfSegment[] = [];
  let pvhEntry: number | undefined;
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    const ptype = view.getUint32(ph, true);
    if (ptype !== PT_LOAD && ptype !== PT_NOTE) continue;
    const fileOffset = u64(ph + 8, `segment ${i} offset`);
    const paddr = u64(ph + 24, `segment ${i} physical address`);
    const fileSize = u64(ph + 32, `segment ${i} file size`);
    const memSize = u64(ph + 40, `segment ${i} memory size`);
    if (fileOffset + fileSize > bytes.length) {
      throw bad(`truncated: segment ${i} (file offset ${hex(fileOffset)}, ${hex(fileSize)} bytes) ends past the file size ${hex(bytes.length)}`);
    }
    if (ptype === PT_NOTE) {
      pvhEntry ??= findPvhEntry(view, fileOffset, fileSize, bad);
      continue;
    }
    if (fileSize > memSize) throw bad(`segment ${i} file size ${hex(fileSize)} exceeds its memory size ${hex(memSize)}`);
    if (memSize > 0) segments.push({ paddr, fileOffset, fileSize, memSize });
  }

  if (segments.length === 0) throw bad('no loadable (PT_LOAD) segments');
  if (pvhEntry === undefined) {
    throw bad('no PVH entry point (Xen ELF note XEN_ELFNOTE_PHYS32_ENTRY): build the kernel with CONFIG_PVH=y or boot its bzImage');
  }
  const entry = pvhEntry;
  if (!segments.some((s) => entry >= s.paddr && entry < s.paddr + s.fileSize)) {
    throw bad(`PVH entry point ${hex(entry)} is not inside a loaded segment`);
  }
  const sorted = [...segments].sort((a, b) => a.paddr - b.paddr);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    if (sorted[i]!.paddr < prev.paddr + prev.memSize) throw bad(`segments at ${hex(prev.paddr)} and ${hex(sorted[i]!.paddr)} overlap`);
  }
  const last = sorted[sorted.length - 1]!;
  return { segments, pvhEntry: entry, start: sorted[0]!.paddr, end: last.paddr + last.memSize };
}

/** Walks the notes of one PT_NOTE segment; returns the PVH entry if the "Xen" PHYS32_ENTRY note is there. */
function findPvhEntry(view: DataView, offset: number, size: number, bad: (what: string) => BootError): number | undefined {
  const align4 = (n: number): number => (n + 3) & ~3;
  const end = offset + size;
  let at = offset;
  while (at + 12 <= end) {
    const nameSize = view.getUint32(at, true);
    const descSize = view.getUint32(at + 4, true);
    const type = view.getUint32(at + 8, true);
    const name = at + 12;
    const desc = name + align4(nameSize);
    const next = desc + align4(descSize);
    if (next > end) throw bad(`truncated ELF note at file offset ${hex(at)}`);
    const isXen = nameSize === 4 && view.getUint32(name, true) === 0x006e6558; // "Xen\0"
    if (isXen && type === XEN_ELFNOTE_PHYS32_ENTRY) {
      // Linux emits the entry as a pointer-sized value (8 bytes on x86-64); others use 4.
      if (descSize === 4) return view.getUint32(desc, true);
      if (descSize === 8 && view.getUint32(desc + 4, true) === 0) return view.getUint32(desc, true);
      throw bad(`PVH entry note has a ${descSize}-byte value; expected a 32-bit physical address`);
    }
    at = next;
  }
  return undefined;
}

/**
 * Copies the PT_LOAD segments to their physical addresses and zeroes their
 * BSS; every segment must lie in guest RAM at or above 1 MiB (below it are
 * the boot structures).
 */
export function loadElf(mem: Uint8Array, elf: ElfKernel, bytes: Uint8Array, name: string): void {
  for (const s of elf.segments) {
    if (s.paddr < HIMEM_START || s.paddr + s.memSize > mem.length) {
      throw new BootError(`ELF kernel ${name}: segment at ${hex(s.paddr)} (${hex(s.memSize)} bytes) is outside guest RAM [${hex(HIMEM_START)}, ${hex(mem.length)})`);
    }
    mem.set(bytes.subarray(s.fileOffset, s.fileOffset + s.fileSize), s.paddr);
    mem.fill(0, s.paddr + s.fileSize, s.paddr + s.memSize);
  }
}
