// Reads the limits of a Wasm module's imported memory straight from its
// binary: the JS API cannot tell how many pages an import needs, and the
// device module's minimum grows with its static data (it sits above 3 GiB).

/** Page limits a module declares for its imported memory. */
export interface MemoryLimits {
  initial: number;
  maximum: number | undefined;
}

const IMPORT_SECTION = 2;
const enum ImportKind { Function = 0, Table = 1, Memory = 2, Global = 3, Tag = 4 }

class Reader {
  offset = 0;
  constructor(private readonly bytes: Uint8Array) {}

  byte(): number {
    if (this.offset >= this.bytes.length) throw new Error(`Wasm binary truncated at byte ${this.offset}`);
    return this.bytes[this.offset++]!;
  }

  /** Unsigned LEB128 of up to 32 bits. */
  u32(): number {
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
    }
    throw new Error(`Wasm binary has an over-long integer before byte ${this.offset}`);
  }

  skip(n: number): void {
    this.offset += n;
    if (this.offset > this.bytes.length) throw new Error(`Wasm binary truncated at byte ${this.bytes.length}`);
  }

  limits(): MemoryLimits {
    const flags = this.byte();
    if (flags > 3) throw new Error(`Wasm memory limits flags 0x${flags.toString(16)} not supported (memory64?)`);
    const initial = this.u32();
    const maximum = flags & 1 ? this.u32() : undefined;
    return { initial, maximum };
  }
}

/** The limits of the memory that `wasm` imports; throws if it imports none. */
export function memoryImportLimits(wasm: Uint8Array): MemoryLimits {
  const r = new Reader(wasm);
  const magic = [0x00, 0x61, 0x73, 0x6d];
  if (!magic.every((b) => r.byte() === b)) throw new Error('not a Wasm binary (bad magic number)');
  r.skip(4); // version
  while (r.offset < wasm.length) {
    const id = r.byte();
    const size = r.u32();
    if (id !== IMPORT_SECTION) {
      r.skip(size);
      continue;
    }
    for (let count = r.u32(); count > 0; count--) {
      r.skip(r.u32()); // module name
      r.skip(r.u32()); // field name
      const kind = r.byte();
      switch (kind) {
        case ImportKind.Function: r.u32(); break;
        case ImportKind.Table: r.byte(); r.limits(); break;
        case ImportKind.Memory: return r.limits();
        case ImportKind.Global: r.skip(2); break;
        case ImportKind.Tag: r.byte(); r.u32(); break;
        default: throw new Error(`Wasm import of unknown kind ${kind} at byte ${r.offset - 1}`);
      }
    }
    break;
  }
  throw new Error('Wasm module imports no memory');
}
