// Bounds-checked access to the guest's low RAM (the Uint8Array view of the Wasm memory).
import { BootError } from './errors.js';

export function dataView(mem: Uint8Array): DataView {
  return new DataView(mem.buffer, mem.byteOffset, mem.byteLength);
}

/** Throws unless [addr, addr + size) lies inside guest low RAM; `what` names the structure for the message. */
export function checkRange(mem: Uint8Array, addr: number, size: number, what: string): void {
  if (!Number.isSafeInteger(addr) || !Number.isSafeInteger(size) || addr < 0 || size < 0 || addr + size > mem.length) {
    throw new BootError(`${what} at 0x${addr.toString(16)} (+0x${size.toString(16)} bytes) does not fit in guest RAM of 0x${mem.length.toString(16)} bytes`);
  }
}

/** Zeroes [addr, addr + size) after checking it is in guest RAM. */
export function clearRange(mem: Uint8Array, addr: number, size: number, what: string): void {
  checkRange(mem, addr, size, what);
  mem.fill(0, addr, addr + size);
}
