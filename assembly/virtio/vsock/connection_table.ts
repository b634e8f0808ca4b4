// The device's connections, at most MAX_CONNECTIONS, keyed by (our local
// port, guest port) for guest packets and by host handle for the host's
// readiness reports. Linear scans: the table is small and scans allocate
// nothing.

import { Connection } from './connection';

/**
 * Connections per device, closing ones included. Bounds the memory a guest
 * can make us hold: each may buffer up to BUF_ALLOC (256 KiB) of guest->host
 * data, so at most 64 MiB per device.
 */
export const MAX_CONNECTIONS: i32 = 256;
/** Local ports for host-initiated connections start here (above the ports services listen on), as Firecracker's do. */
const FIRST_LOCAL_PORT: u32 = 1 << 30;

export class ConnectionTable {
  readonly list: Array<Connection> = [];
  private nextLocalPort: u32 = FIRST_LOCAL_PORT;
  /** Where the round-robin search for a connection with host data resumes. */
  private cursor: i32 = 0;

  isFull(): bool {
    return this.list.length >= MAX_CONNECTIONS;
  }

  find(localPort: u32, guestPort: u32): Connection | null {
    const list = this.list;
    for (let i = 0; i < list.length; i++) {
      const c = unchecked(list[i]);
      if (c.localPort == localPort && c.guestPort == guestPort) return c;
    }
    return null;
  }

  /** The connection owning host handle `handle`; closing connections gave theirs back, so they never match. */
  findByHandle(handle: u32): Connection | null {
    const list = this.list;
    for (let i = 0; i < list.length; i++) {
      const c = unchecked(list[i]);
      if (c.handleOpen && c.handle == handle) return c;
    }
    return null;
  }

  add(connection: Connection): void {
    this.list.push(connection);
  }

  remove(connection: Connection): void {
    const list = this.list;
    const i = list.indexOf(connection);
    if (i < 0) return;
    const last = list.pop();
    if (i < list.length) unchecked((list[i] = last));
  }

  /** Forgets every connection (their host sockets must be closed already). */
  clear(): void {
    this.list.length = 0;
    this.cursor = 0;
  }

  /** A local port no connection uses, for a host-initiated connection; the caller checked the table is not full. */
  allocateLocalPort(): u32 {
    while (true) {
      const port = this.nextLocalPort;
      this.nextLocalPort = port == u32.MAX_VALUE ? FIRST_LOCAL_PORT : port + 1;
      if (!this.usesLocalPort(port)) return port;
    }
    return 0; // unreachable: fewer connections than ports
  }

  /** The first connection owing the guest a control packet, or null. */
  nextWithControl(): Connection | null {
    const list = this.list;
    for (let i = 0; i < list.length; i++) {
      const c = unchecked(list[i]);
      if (c.pendingControl != 0) return c;
    }
    return null;
  }

  /**
   * The next connection, round robin, with host data for the guest
   * (Connection.hasDataForGuest), or null. `take`: it is served now, so the
   * next search starts after it.
   */
  nextReadable(take: bool): Connection | null {
    const list = this.list;
    const n = list.length;
    for (let k = 0; k < n; k++) {
      const i = (this.cursor + k) % n;
      const c = unchecked(list[i]);
      if (c.hasDataForGuest()) {
        if (take) this.cursor = i + 1;
        return c;
      }
    }
    return null;
  }

  private usesLocalPort(port: u32): bool {
    const list = this.list;
    for (let i = 0; i < list.length; i++) if (unchecked(list[i]).localPort == port) return true;
    return false;
  }
}
