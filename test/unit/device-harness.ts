// A fresh instance of the real device module (build/wasm/hako.wasm) with
// recording callbacks, for the device unit tests.
import { loadDevices, type Devices } from '../../host/wasm/devices.js';

export interface Harness {
  devices: Devices;
  /** Current level of every interrupt line the module has driven. */
  irq: Map<number, boolean>;
  /** Every irqLine call, in order. */
  irqLog: [gsi: number, level: boolean][];
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

export async function createHarness(now = 1_700_000_000): Promise<Harness> {
  const irq = new Map<number, boolean>();
  const irqLog: [number, boolean][] = [];
  const consoleBytes: number[] = [];
  const exits: number[] = [];
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
  });
  return {
    devices,
    irq,
    irqLog,
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
