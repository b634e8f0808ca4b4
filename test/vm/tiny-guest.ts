// Tiny guest kernels for VM tests that must not wait minutes for Linux: a few
// bytes of 32-bit x86 code in an ELF vmlinux with a PVH note, so hako boots
// them exactly like a real kernel (PVH entry, flat protected mode, paging off).
import fs from 'node:fs';
import path from 'node:path';
import { EXIT_PORT } from '../../host/vmm/cmdline.js';
import { makeElf } from '../fixtures/kernel-images.js';

export const COM1 = 0x3f8;
export const I8042_COMMAND = 0x64;
export const I8042_RESET = 0xfe;
export const RTC_INDEX = 0x70;
export const RTC_DATA = 0x71;

/** Where the code is loaded and the PVH entry points. */
export const ENTRY = 0x10_0000;
/** Zeroed RAM after the code (the segment's BSS), e.g. for an empty IDT descriptor. */
export const SCRATCH = ENTRY + 0x1000;
const SEGMENT_BYTES = 0x2000;

const le = (value: number, bytes: number): number[] =>
  Array.from({ length: bytes }, (_, i) => (value >>> (8 * i)) & 0xff);

/** 32-bit protected-mode encodings the tiny guests use. */
export const x86 = {
  movAl: (v: number) => [0xb0, v & 0xff],
  movDx: (v: number) => [0x66, 0xba, ...le(v, 2)],
  /** out imm8, al (ports below 0x100) */
  outAl: (port: number) => [0xe6, port],
  outDxAl: [0xee],
  /** in al, imm8 */
  inAl: (port: number) => [0xe4, port],
  /** lidt [addr] */
  lidt: (addr: number) => [0x0f, 0x01, 0x1d, ...le(addr, 4)],
  ud2: [0x0f, 0x0b],
  int3: [0xcc],
  jmpSelf: [0xeb, 0xfe],
  /** jmp short back over the `distance` bytes ending with this 2-byte jump (at most 128). */
  jmpBack: (distance: number) => {
    if (distance > 128) throw new Error(`a short jump reaches back 128 bytes, not ${distance}`);
    return [0xeb, (-distance) & 0xff];
  },
};

/** Writes `text` to COM1 one byte at a time (no LSR polling: hako's UART is always ready). */
export function print(text: string): number[] {
  return [...x86.movDx(COM1), ...[...Buffer.from(text)].flatMap((b) => [...x86.movAl(b), ...x86.outDxAl])];
}

/** Writes `value` to the exit port: 0 powers off, anything else reports a panic; then waits to be stopped. */
export function exitWith(value: number): number[] {
  return [...x86.movAl(value), ...x86.outAl(EXIT_PORT), ...x86.jmpSelf];
}

/** An ELF vmlinux whose PVH entry runs `code`. */
export function tinyGuest(code: number[]): Uint8Array {
  if (code.length > SCRATCH - ENTRY) throw new Error(`tiny guest code is ${code.length} bytes; at most ${SCRATCH - ENTRY} fit`);
  return makeElf({ segments: [{ paddr: ENTRY, data: Uint8Array.from(code), memSize: SEGMENT_BYTES }], pvhEntry: ENTRY });
}

/** Writes a tiny guest to `dir`/`name` and returns its path. */
export function writeTinyGuest(dir: string, name: string, code: number[]): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, tinyGuest(code));
  return file;
}
