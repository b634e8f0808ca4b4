// Console input waiting for the guest's UART. The UART takes bytes only while
// its receive FIFO has room, and room appears only when the guest accesses
// the UART, i.e. during a port-I/O exit: so bytes are offered when they
// arrive and again after every port-I/O exit until all are taken.

export class ConsoleInput {
  private chunks: Uint8Array[] = [];
  /** Bytes of chunks[0] already taken. */
  private taken = 0;

  /** @param offer hands one byte to the UART; false when it has no room now. */
  constructor(private readonly offer: (byte: number) => boolean) {}

  get pendingBytes(): number {
    return this.chunks.reduce((n, c) => n + c.length, 0) - this.taken;
  }

  push(data: Uint8Array): void {
    if (data.length === 0) return;
    this.chunks.push(new Uint8Array(data)); // a copy: the caller may reuse its buffer (Buffer#slice would not copy)
    this.pump();
  }

  /** Offers pending bytes, in order, until the UART is full. */
  pump(): void {
    while (this.chunks.length > 0) {
      const chunk = this.chunks[0]!;
      while (this.taken < chunk.length) {
        if (!this.offer(chunk[this.taken]!)) return;
        this.taken++;
      }
      this.chunks.shift();
      this.taken = 0;
    }
  }
}
