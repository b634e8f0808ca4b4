// The host side of a VM's virtio-vsock device, hybrid vsock as Firecracker
// does it: the VM listens on a Unix socket; a host client connects and sends
// "CONNECT <guest port>\n" (handshake.ts); the device model opens the guest
// connection and, once the guest accepts, the host answers "OK <host port>\n"
// and the socket carries the stream. A guest connecting to host port P gets
// the Unix socket "<path>_P". The device model (assembly/virtio/vsock/)
// decides everything about the streams; this file owns the sockets: a handle
// table the model names them by, readiness polling, and the import functions
// it calls (`callbacks`).
import fs from 'node:fs';
import { isKvmError, type NativeAddon, type SocketWatch } from '../native.js';
import type { VsockCallbacks } from '../wasm/devices.js';
import { MAX_HANDSHAKE_LINE, okLine, parseConnectLine } from './handshake.js';

/** What the backend needs of the vsock device model (Devices' vsock exports for one device). */
export interface VsockDevice {
  /** The Wasm memory's current buffer: the I/O vectors and the ranges they name are in it. */
  memory(): ArrayBuffer;
  /** A client asked for `guestPort` on socket `handle`: the host port the device uses, or -errno. */
  hostConnect(handle: number, guestPort: number): number;
  /** Socket `handle` is ready as the device asked (watch). */
  ready(handle: number, readable: boolean, writable: boolean): void;
  /** The device model threw (a bug in assembly/, never the guest's doing): the VM should stop. */
  fail(error: Error): void;
}

/** A client that sends no complete CONNECT line within this long is disconnected. */
export const HANDSHAKE_TIMEOUT_MS = 5_000;

export interface VsockBackendOptions {
  /** Default HANDSHAKE_TIMEOUT_MS. */
  handshakeTimeoutMs?: number;
}
/** Host sockets per VM (connections and handshakes): bounds the fds a guest or host clients can make us hold. */
export const MAX_SOCKETS = 1024;
/** How long accepting pauses after accept failed (e.g. EMFILE), rather than spinning on the ready listener. */
const ACCEPT_RETRY_MS = 100;

const EBADF = -9, EAGAIN = -11, EINVAL = -22, EMFILE = -24, ECONNREFUSED = -111;
const SHUTDOWN_SEND = 2;

/** A client that has not finished its CONNECT line yet. */
interface Handshake {
  fd: number;
  watch: SocketWatch;
  received: number[];
  timer: NodeJS.Timeout;
}

/** One socket the device model knows by its handle. */
interface Connection {
  fd: number;
  watch: SocketWatch;
  /** A host-initiated connection: the port its "OK" line names. */
  hostPort?: number;
}

/** The minimal scratch layout for the handshake's socket I/O: one I/O vector, then its bytes. */
const SCRATCH_IOV = 0;
const SCRATCH_DATA = 16;
const SCRATCH_BYTES = SCRATCH_DATA + MAX_HANDSHAKE_LINE;

export class VsockBackend {
  private readonly handshakes = new Set<Handshake>();
  private readonly connections = new Map<number, Connection>();
  private nextHandle = 0;
  private listenWatch: SocketWatch | undefined;
  private acceptRetry: NodeJS.Timeout | undefined;
  private closed = false;
  /** What the device model calls, synchronously; none of them throws into it. */
  readonly callbacks: VsockCallbacks = {
    read: (handle, iov, count) => this.read(handle, iov, count),
    write: (handle, iov, count) => this.write(handle, iov, count),
    watch: (handle, readable, writable) => this.watch(handle, readable, writable),
    connect: (hostPort) => this.connect(hostPort),
    connected: (handle) => this.connected(handle),
    shutdown: (handle, flags) => this.shutdown(handle, flags),
    close: (handle) => this.closeConnection(handle),
  };
  /** The handshake's own little memory: the line is read and the answer written through socketReadv/Writev. */
  private readonly scratch = new ArrayBuffer(SCRATCH_BYTES);

  private constructor(
    private readonly addon: NativeAddon,
    readonly socketPath: string,
    private readonly device: VsockDevice,
    private readonly listener: number,
    /** The listening socket file's identity, so close() unlinks only our own. */
    private readonly socketFile: fs.Stats,
    private readonly handshakeTimeoutMs: number,
  ) {}

  /**
   * Listens on `socketPath` (replacing a stale socket file; a KvmError if another process listens there
   * or the path is not a socket) and serves the vsock device `device`.
   */
  static listen(addon: NativeAddon, socketPath: string, device: VsockDevice, opts: VsockBackendOptions = {}): VsockBackend {
    const listener = addon.unixListen(socketPath);
    let backend: VsockBackend;
    try {
      backend = new VsockBackend(addon, socketPath, device, listener, fs.statSync(socketPath),
        opts.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS);
      backend.listenWatch = addon.pollFd(listener, true, false, () => backend.acceptAll());
    } catch (e) {
      addon.closeFd(listener);
      fs.rmSync(socketPath, { force: true });
      throw e;
    }
    return backend;
  }

  /** Host sockets open now (connections, handshakes), for tests and diagnostics. */
  get socketCount(): number {
    return this.connections.size + this.handshakes.size;
  }

  /** Closes the listener, every handshake and connection, and removes the socket file. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.acceptRetry);
    this.listenWatch?.close();
    this.addon.closeFd(this.listener);
    try {
      const now = fs.statSync(this.socketPath);
      if (now.ino === this.socketFile.ino && now.dev === this.socketFile.dev) fs.rmSync(this.socketPath);
    } catch {
      // Already gone: nothing to remove.
    }
    for (const handshake of [...this.handshakes]) this.dropHandshake(handshake);
    for (const handle of [...this.connections.keys()]) this.closeConnection(handle);
  }

  // ---- the device model's calls ----

  private read(handle: number, iov: number, count: number): number {
    const connection = this.connections.get(handle);
    if (!connection) return EBADF;
    return this.transfer(() => this.addon.socketReadv(connection.fd, this.device.memory(), iov, count));
  }

  private write(handle: number, iov: number, count: number): number {
    const connection = this.connections.get(handle);
    if (!connection) return EBADF;
    return this.transfer(() => this.addon.socketWritev(connection.fd, this.device.memory(), iov, count));
  }

  private watch(handle: number, readable: boolean, writable: boolean): void {
    const connection = this.connections.get(handle);
    try {
      connection?.watch.setEvents(readable, writable);
    } catch {
      // The kernel cannot poll it (out of memory): end the connection the device's own way, by a read that sees EOF.
      this.shutdownQuietly(connection!.fd, 'both');
      setImmediate(() => {
        if (this.connections.get(handle) === connection) this.ready(handle, true, false);
      });
    }
  }

  private connect(hostPort: number): number {
    if (this.closed) return ECONNREFUSED;
    if (this.socketCount >= MAX_SOCKETS) return EMFILE;
    let fd: number;
    try {
      fd = this.addon.unixConnect(`${this.socketPath}_${hostPort}`);
    } catch (e) {
      return isKvmError(e) ? -e.errno : ECONNREFUSED;
    }
    return this.addConnection(fd);
  }

  private connected(handle: number): void {
    const connection = this.connections.get(handle);
    if (connection?.hostPort === undefined) return;
    // A fresh socket's buffer takes the short line whole; anything else means the client is gone or
    // broken: shutting the socket down makes the device's next read see the end and close it.
    const line = okLine(connection.hostPort);
    if (this.writeScratch(connection.fd, line) !== line.length) this.shutdownQuietly(connection.fd, 'both');
  }

  private shutdown(handle: number, flags: number): void {
    const connection = this.connections.get(handle);
    // The device writes out what it buffered before it passes the guest's SHUTDOWN on: the host has nothing pending.
    if (connection && (flags & SHUTDOWN_SEND) !== 0) this.shutdownQuietly(connection.fd, 'write');
  }

  private closeConnection(handle: number): void {
    const connection = this.connections.get(handle);
    if (!connection) return;
    this.connections.delete(handle);
    connection.watch.close();
    this.addon.closeFd(connection.fd);
  }

  // ---- internals ----

  /** Runs one socket transfer; a thrown error (wrong argument types: a host bug) becomes -EINVAL for the device. */
  private transfer(io: () => number): number {
    try {
      return io();
    } catch {
      return EINVAL;
    }
  }

  private shutdownQuietly(fd: number, how: 'write' | 'both'): void {
    try {
      this.addon.shutdownSocket(fd, how);
    } catch {
      // The socket is broken already: the device's next read or write reports it.
    }
  }

  /** A new handle for `fd`, which the table now owns; readiness is reported once the device asks (watch). */
  private addConnection(fd: number, hostPort?: number): number {
    while (this.connections.has(this.nextHandle)) this.nextHandle = (this.nextHandle + 1) & 0x7fffffff;
    const handle = this.nextHandle;
    this.nextHandle = (this.nextHandle + 1) & 0x7fffffff;
    let watch: SocketWatch;
    try {
      watch = this.addon.pollFd(fd, false, false, (readable, writable, hangup) => this.ready(handle, readable || hangup, writable));
    } catch (e) {
      this.addon.closeFd(fd);
      return isKvmError(e) ? -e.errno : EMFILE;
    }
    this.connections.set(handle, { fd, watch, hostPort });
    return handle;
  }

  private ready(handle: number, readable: boolean, writable: boolean): void {
    try {
      this.device.ready(handle, readable, writable);
    } catch (e) {
      this.deviceFailed(e);
    }
  }

  private deviceFailed(e: unknown): void {
    // Stop polling: every socket stays ready, and the device cannot serve it any more.
    this.close();
    this.device.fail(e instanceof Error ? e : new Error(String(e)));
  }

  private acceptAll(): void {
    for (;;) {
      let fd: number | null;
      try {
        fd = this.addon.unixAccept(this.listener);
      } catch {
        // Out of fds or similar: the listener stays ready, so look again a little later rather than spin.
        this.listenWatch!.setEvents(false, false);
        this.acceptRetry = setTimeout(() => this.listenWatch!.setEvents(true, false), ACCEPT_RETRY_MS).unref();
        return;
      }
      if (fd === null) return;
      if (this.socketCount >= MAX_SOCKETS) {
        this.addon.closeFd(fd);
        continue;
      }
      this.startHandshake(fd);
    }
  }

  private startHandshake(fd: number): void {
    const handshake: Handshake = {
      fd,
      watch: undefined as unknown as SocketWatch,
      received: [],
      timer: setTimeout(() => this.dropHandshake(handshake), this.handshakeTimeoutMs).unref(),
    };
    try {
      handshake.watch = this.addon.pollFd(fd, true, false, () => this.continueHandshake(handshake));
    } catch {
      clearTimeout(handshake.timer);
      this.addon.closeFd(fd);
      return;
    }
    this.handshakes.add(handshake);
  }

  /** Reads what the client sent, a byte at a time so nothing past its newline is consumed. */
  private continueHandshake(handshake: Handshake): void {
    for (;;) {
      const n = this.readScratchByte(handshake.fd);
      if (n === EAGAIN) return;
      if (n !== 1) {
        this.dropHandshake(handshake); // EOF or error before a whole line
        return;
      }
      handshake.received.push(new Uint8Array(this.scratch)[SCRATCH_DATA]!);
      const request = parseConnectLine(Uint8Array.from(handshake.received));
      if (request.kind === 'partial') continue;
      if (request.kind === 'invalid') {
        this.dropHandshake(handshake);
        return;
      }
      this.forward(handshake, request.port);
      return;
    }
  }

  /** Hands a client's socket over to the device model as a host-initiated connection to `guestPort`. */
  private forward(handshake: Handshake, guestPort: number): void {
    this.handshakes.delete(handshake);
    clearTimeout(handshake.timer);
    handshake.watch.close();
    const handle = this.addConnection(handshake.fd);
    if (handle < 0) return; // addConnection closed the fd
    let hostPort: number;
    try {
      hostPort = this.device.hostConnect(handle, guestPort);
    } catch (e) {
      this.deviceFailed(e);
      return;
    }
    // Refused now (e.g. the guest is not up); a guest without a listener on the port answers later, with a close.
    if (hostPort < 0) this.closeConnection(handle);
    else this.connections.get(handle)!.hostPort = hostPort;
  }

  private dropHandshake(handshake: Handshake): void {
    if (!this.handshakes.delete(handshake)) return;
    clearTimeout(handshake.timer);
    handshake.watch.close();
    this.addon.closeFd(handshake.fd);
  }

  private readScratchByte(fd: number): number {
    const view = new DataView(this.scratch);
    view.setBigUint64(SCRATCH_IOV, BigInt(SCRATCH_DATA), true);
    view.setBigUint64(SCRATCH_IOV + 8, 1n, true);
    return this.addon.socketReadv(fd, this.scratch, SCRATCH_IOV, 1);
  }

  private writeScratch(fd: number, text: string): number {
    const bytes = Buffer.from(text, 'latin1');
    new Uint8Array(this.scratch).set(bytes, SCRATCH_DATA);
    const view = new DataView(this.scratch);
    view.setBigUint64(SCRATCH_IOV, BigInt(SCRATCH_DATA), true);
    view.setBigUint64(SCRATCH_IOV + 8, BigInt(bytes.length), true);
    return this.addon.socketWritev(fd, this.scratch, SCRATCH_IOV, 1);
  }
}
