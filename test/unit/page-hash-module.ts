// The page hash exports of the real device module (build/wasm/hako.wasm) in
// an instance of their own, whose other imports throw if called: for the
// page hash's unit test and micro-benchmark, without a VM's device callbacks.
import { readFile } from 'node:fs/promises';
import { WASM_PATH } from '../../host/wasm/devices.js';
import { memoryImportLimits } from '../../host/wasm/memory-import.js';

/** assembly/page_hash.ts's HASH_PAGES_REFUSED. */
export const HASH_PAGES_REFUSED = 0xffffffff;

export interface PageHashModule {
  /** Guest RAM (from address 0) and the module's heap. */
  memory: WebAssembly.Memory;
  setGuestRamBytes(bytes: number): void;
  /** pageHashBuffer: a buffer for `pages` hashes, or 0 when `pages` is too many. */
  buffer(pages: number): number;
  /** hashPages: the number of all-zero pages, or HASH_PAGES_REFUSED. */
  hashPages(addr: number, pages: number, out: number): number;
}

interface RawExports {
  setGuestRamBytes(bytes: bigint): void;
  pageHashBuffer(pages: number): number;
  hashPages(addr: number, pages: number, out: number): number;
}

export async function loadPageHash(): Promise<PageHashModule> {
  const bytes = await readFile(WASM_PATH);
  const module = await WebAssembly.compile(bytes);
  const memory = new WebAssembly.Memory({ initial: memoryImportLimits(bytes).initial });
  const env: WebAssembly.ModuleImports = { memory };
  for (const i of WebAssembly.Module.imports(module)) {
    if (i.kind === 'function') env[i.name] = () => { throw new Error(`page hash test: unexpected call of import ${i.name}`); };
  }
  const raw = (await WebAssembly.instantiate(module, { env })).exports as unknown as RawExports;
  return {
    memory,
    setGuestRamBytes: (n) => raw.setGuestRamBytes(BigInt(n)),
    buffer: (pages) => raw.pageHashBuffer(pages) >>> 0,
    hashPages: (addr, pages, out) => raw.hashPages(addr, pages, out) >>> 0,
  };
}
