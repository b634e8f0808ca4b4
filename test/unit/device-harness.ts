// A fresh instance of the real device module (build/wasm/hako.wasm) with
// recording callbacks, for the device unit tests.
import { loadDevices, type Devices } from '../../host/wasm/devices.js';

export interface Harness {
  devices: Devices;
  /** Current level of every interrupt line the module has driven. */
  irq: Map<number, boolean>;
  /** Every irqLine call, in order. */
  irqLog: [gsi: number, level: boolean][];
  /** Every irqPulse call (virtio interrupts), in order. */
  pulses: number[];
  /** Every fillRandom call, in order; the range is filled with `randomByte(gpa + i)`. */
  fills: [gpa: number, length: number][];
  /** Every ioSubmit call (block I/O), decoded at the time of the call, in order. */
  ioBatches: IoRecord[][];
  /** Bytes the guest sent on COM1. */
  console: number[];
  resets: number;
  /** Values written to the exit port. */
  exits: number[];
  /** Host wall clock the RTC sees, UNIX seconds; tests move it. */
  clock: { now: number };
  inb(port: number): number;
  outb(port: number, value: number): void;
  /** Whether `gsi` is asserted. */
  level(gsi: number): boolean;
}

/** An I/O record (assembly/virtio/io.ts) as the host received it. */
export interface IoRecord {
  id: number;
  /** 0 READ, 1 WRITE, 2 FLUSH, 3 DISCARD, 4 WRITE_ZEROES. */
  op: number;
  flags: number;
  file: number;
  offset: bigint;
  length: bigint;
  iovPtr: number;
  iovecs: [gpa: bigint, len: bigint][];
}

/** Decodes `count` 32-byte records at `records`, with their I/O vectors. */
function decodeIoRecords(memory: WebAssembly.Memory, records: number, count: number): IoRecord[] {
  const m = new DataView(memory.buffer);
  const decoded: IoRecord[] = [];
  for (let i = 0; i < count; i++) {
    const at = records + 32 * i;
    const iovPtr = m.getUint32(at + 24, true);
    const iovecs: [bigint, bigint][] = [];
    for (let v = 0; v < m.getUint32(at + 28, true); v++) {
      iovecs.push([m.getBigUint64(iovPtr + 16 * v, true), m.getBigUint64(iovPtr + 16 * v + 8, true)]);
    }
    decoded.push({
      id: m.getUint32(at, true),
      op: m.getUint8(at + 4),
      flags: m.getUint8(at + 5),
      file: m.getUint16(at + 6, true),
      offset: m.getBigUint64(at + 8, true),
      length: m.getBigUint64(at + 16, true),
      iovPtr,
      iovecs,
    });
  }
  return decoded;
}

/** The deterministic "random" byte fillRandom writes at guest address `gpa`, so tests can check what was filled. */
export function randomByte(gpa: number): number {
  return ((gpa * 0x9e3779b1) >>> 24) | 1;
}

export async function createHarness(now = 1_700_000_000): Promise<Harness> {
  const irq = new Map<number, boolean>();
  const irqLog: [number, boolean][] = [];
  const consoleBytes: number[] = [];
  const exits: number[] = [];
  const pulses: number[] = [];
  const fills: [number, number][] = [];
  const ioBatches: IoRecord[][] = [];
  const clock = { now };
  let resets = 0;
  const devices = await loadDevices({
    irqLine(gsi, level) {
      irq.set(gsi, level);
      irqLog.push([gsi, level]);
    },
    consoleWrite(byte) {
      consoleBytes.push(byte);
    },
    resetRequest() {
      resets++;
    },
    guestExit(code) {
      exits.push(code);
    },
    wallClockSeconds: () => clock.now,
    irqPulse(gsi) {
      pulses.push(gsi);
    },
    fillRandom(gpa, length) {
      fills.push([gpa, length]);
      const bytes = new Uint8Array(devices.memory.buffer, gpa, length);
      for (let i = 0; i < length; i++) bytes[i] = randomByte(gpa + i);
    },
    ioSubmit(records, count) {
      ioBatches.push(decodeIoRecords(devices.memory, records, count));
    },
  });
  return {
    devices,
    irq,
    irqLog,
    pulses,
    fills,
    ioBatches,
    console: consoleBytes,
    get resets() {
      return resets;
    },
    exits,
    clock,
    inb: (port) => devices.ioRead(port, 1),
    outb: (port, value) => devices.ioWrite(port, 1, value),
    level: (gsi) => irq.get(gsi) ?? false,
  };
}
