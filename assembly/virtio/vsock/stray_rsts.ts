// RSTs owed to the guest for packets that belong to no connection (a RW to a
// closed port, a refused REQUEST, a malformed header). A hostile guest can
// send such packets faster than it takes rx buffers, so the queue is bounded
// and drops beyond its capacity: a lost RST only leaves a bogus guest socket
// waiting for its own timeout.

/** RSTs held at most. */
export const MAX_STRAY_RSTS: i32 = 64;

export class StrayRsts {
  length: i32 = 0;
  private readonly localPorts: StaticArray<u32> = new StaticArray<u32>(MAX_STRAY_RSTS);
  private readonly guestPorts: StaticArray<u32> = new StaticArray<u32>(MAX_STRAY_RSTS);
  private start: i32 = 0;

  /** Queues an RST from our `localPort` to `guestPort`, unless full. */
  push(localPort: u32, guestPort: u32): void {
    if (this.length == MAX_STRAY_RSTS) return;
    const i = (this.start + this.length) % MAX_STRAY_RSTS;
    unchecked((this.localPorts[i] = localPort));
    unchecked((this.guestPorts[i] = guestPort));
    this.length++;
  }

  /** Local port of the oldest RST (length > 0). */
  localPort(): u32 {
    return unchecked(this.localPorts[this.start]);
  }

  /** Guest port of the oldest RST (length > 0). */
  guestPort(): u32 {
    return unchecked(this.guestPorts[this.start]);
  }

  /** Drops the oldest RST (length > 0), once delivered. */
  shift(): void {
    this.start = (this.start + 1) % MAX_STRAY_RSTS;
    this.length--;
  }

  clear(): void {
    this.start = 0;
    this.length = 0;
  }
}
