// Address decoding for emulated accesses: the VMM hands every port-I/O and
// MMIO exit to a Bus, which forwards it to the device whose window contains
// the whole access. Accesses nobody claims, and accesses of a size the bus
// does not carry, behave like the hardware's unclaimed cycles.

/** A device's register window. `offset` is relative to the window base; values are zero-extended to 64 bits. */
export abstract class BusDevice {
  abstract read(offset: u32, size: u32): u64;
  abstract write(offset: u32, size: u32, value: u64): void;
}

/** All ones in the low `size` bytes (a whole u64 from 8 bytes up). */
export function onesOfSize(size: u32): u64 {
  return size >= 8 ? u64.MAX_VALUE : (<u64>1 << (<u64>size << 3)) - 1;
}

class Window {
  constructor(
    readonly base: u64,
    /** First address after the window. */
    readonly end: u64,
    readonly device: BusDevice,
  ) {}
}

export class Bus {
  /** Sorted by base, never overlapping. */
  private windows: Array<Window> = [];

  /**
   * @param sizeMask bit n set = n-byte accesses are valid
   * @param unclaimedReadValue what an unclaimed read returns, cut to the access size
   */
  constructor(
    private readonly sizeMask: u32,
    private readonly unclaimedReadValue: u64,
  ) {}

  /** Claims [base, base + length) for `device`. Aborts on an empty, wrapping, oversized or overlapping window: that is a wiring bug. */
  register(base: u64, length: u64, device: BusDevice): void {
    const end = base + length;
    if (length == 0 || end < base || length > <u64>u32.MAX_VALUE + 1) {
      throw new Error('bus window must be non-empty, at most 4 GiB and not wrap');
    }
    const windows = this.windows;
    let at = 0;
    while (at < windows.length && windows[at].base < base) at++;
    if (at > 0 && windows[at - 1].end > base) throw new Error('bus window overlaps the previous one');
    if (at < windows.length && windows[at].base < end) throw new Error('bus window overlaps the next one');
    const window = new Window(base, end, device);
    windows.push(window);
    for (let i = windows.length - 1; i > at; i--) windows[i] = windows[i - 1];
    windows[at] = window;
  }

  read(addr: u64, size: u32): u64 {
    const window = this.find(addr, size);
    const mask = onesOfSize(size);
    if (window === null) return this.unclaimedReadValue & mask;
    return window.device.read(<u32>(addr - window.base), size) & mask;
  }

  write(addr: u64, size: u32, value: u64): void {
    const window = this.find(addr, size);
    if (window === null) return;
    window.device.write(<u32>(addr - window.base), size, value & onesOfSize(size));
  }

  /** The window holding all of [addr, addr + size), or null if the size is invalid or no single window does. */
  private find(addr: u64, size: u32): Window | null {
    if (size >= 32 || ((this.sizeMask >>> size) & 1) == 0) return null;
    const last = addr + size - 1;
    if (last < addr) return null;
    // Binary search for the last window whose base is <= addr.
    const windows = this.windows;
    let lo = 0;
    let hi = windows.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (unchecked(windows[mid]).base <= addr) lo = mid + 1;
      else hi = mid;
    }
    if (lo == 0) return null;
    const window = unchecked(windows[lo - 1]);
    return last < window.end ? window : null;
  }
}

/** Port I/O carries 1, 2 or 4 bytes; unclaimed ports float high (read all ones), as on the ISA bus. */
export function createPioBus(): Bus {
  return new Bus((1 << 1) | (1 << 2) | (1 << 4), u64.MAX_VALUE);
}

/** MMIO carries 1, 2, 4 or 8 bytes; unclaimed addresses read 0, as QEMU's unassigned memory does. */
export function createMmioBus(): Bus {
  return new Bus((1 << 1) | (1 << 2) | (1 << 4) | (1 << 8), 0);
}
