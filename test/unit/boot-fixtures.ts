// Hand-built kernel images for the boot unit tests.

export interface ElfSpec {
  machine?: number;
  elfClass?: number;
  segments?: { paddr: number; data: Uint8Array; memSize?: number }[];
  /** PVH entry for the Xen note; undefined leaves the note out. */
  pvhEntry?: number | undefined;
  noteDescSize?: 4 | 8;
}

/** An ELF64 x86-64 executable: header, program headers, one Xen PHYS32_ENTRY note, then the segments' data. */
export function makeElf(spec: ElfSpec = {}): Uint8Array {
  const segments = spec.segments ?? [{ paddr: 0x100_0000, data: new Uint8Array(0x100).fill(0xcc), memSize: 0x2000 }];
  const pvhEntry = 'pvhEntry' in spec ? spec.pvhEntry : segments[0]!.paddr;
  const descSize = spec.noteDescSize ?? 8;
  const phnum = segments.length + (pvhEntry === undefined ? 0 : 1);
  const noteOffset = 64 + phnum * 56;
  const noteSize = pvhEntry === undefined ? 0 : 12 + 4 + descSize;
  let dataOffset = noteOffset + noteSize;
  const total = dataOffset + segments.reduce((n, s) => n + s.data.length, 0);
  const bytes = new Uint8Array(total);
  const v = new DataView(bytes.buffer);
  bytes.set([0x7f, 0x45, 0x4c, 0x46, spec.elfClass ?? 2, 1, 1]);
  v.setUint16(16, 2, true);
  v.setUint16(18, spec.machine ?? 62, true);
  v.setUint32(20, 1, true);
  v.setBigUint64(24, BigInt(segments[0]!.paddr), true);
  v.setBigUint64(32, 64n, true);
  v.setUint16(52, 64, true);
  v.setUint16(54, 56, true);
  v.setUint16(56, phnum, true);
  let ph = 64;
  for (const s of segments) {
    v.setUint32(ph, 1, true); // PT_LOAD
    v.setUint32(ph + 4, 7, true);
    v.setBigUint64(ph + 8, BigInt(dataOffset), true);
    v.setBigUint64(ph + 16, BigInt(s.paddr) + 0xffff_ffff_8000_0000n, true);
    v.setBigUint64(ph + 24, BigInt(s.paddr), true);
    v.setBigUint64(ph + 32, BigInt(s.data.length), true);
    v.setBigUint64(ph + 40, BigInt(s.memSize ?? s.data.length), true);
    bytes.set(s.data, dataOffset);
    dataOffset += s.data.length;
    ph += 56;
  }
  if (pvhEntry !== undefined) {
    v.setUint32(ph, 4, true); // PT_NOTE
    v.setBigUint64(ph + 8, BigInt(noteOffset), true);
    v.setBigUint64(ph + 32, BigInt(noteSize), true);
    v.setBigUint64(ph + 40, BigInt(noteSize), true);
    v.setUint32(noteOffset, 4, true);
    v.setUint32(noteOffset + 4, descSize, true);
    v.setUint32(noteOffset + 8, 18, true); // XEN_ELFNOTE_PHYS32_ENTRY
    bytes.set([0x58, 0x65, 0x6e, 0], noteOffset + 12); // "Xen\0"
    v.setUint32(noteOffset + 16, pvhEntry, true);
  }
  return bytes;
}

export interface BzImageSpec {
  version?: number;
  xloadflags?: number;
  loadflags?: number;
  setupSects?: number;
  payload?: Uint8Array;
  initSize?: number;
  prefAddress?: number;
  relocatable?: boolean;
  alignment?: number;
  cmdlineSize?: number;
  initrdAddrMax?: number;
}

/** A bzImage: real-mode setup sectors holding a protocol 2.15 setup header, then the protected-mode payload. */
export function makeBzImage(spec: BzImageSpec = {}): Uint8Array {
  const setupSects = spec.setupSects ?? 4;
  const payload = spec.payload ?? new Uint8Array(0x1000).fill(0x90);
  const offset = ((setupSects || 4) + 1) * 512; // 0 means 4
  const bytes = new Uint8Array(offset + payload.length);
  const v = new DataView(bytes.buffer);
  bytes[0x1f1] = setupSects;
  v.setUint32(0x1f4, Math.ceil(payload.length / 16), true);
  v.setUint16(0x1fe, 0xaa55, true);
  bytes[0x200] = 0xeb;
  bytes[0x201] = 0x26c - 0x202;
  bytes.set([0x48, 0x64, 0x72, 0x53], 0x202); // "HdrS"
  v.setUint16(0x206, spec.version ?? 0x020f, true);
  bytes[0x211] = spec.loadflags ?? 0x01;
  v.setUint32(0x214, 0x100000, true);
  v.setUint32(0x22c, spec.initrdAddrMax ?? 0x7fff_ffff, true);
  v.setUint32(0x230, spec.alignment ?? 0x20_0000, true);
  bytes[0x234] = (spec.relocatable ?? true) ? 1 : 0;
  bytes[0x235] = 21;
  v.setUint16(0x236, spec.xloadflags ?? 0x3, true);
  v.setUint32(0x238, spec.cmdlineSize ?? 2047, true);
  v.setBigUint64(0x258, BigInt(spec.prefAddress ?? 0x100_0000), true);
  v.setUint32(0x260, spec.initSize ?? 0x80_0000, true);
  bytes.set(payload, offset);
  return bytes;
}
