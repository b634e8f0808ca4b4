// One vsock stream between a guest port and a host Unix socket (the host's
// `handle`): its state, both directions' credit (virtio 1.2 spec 5.10.6.3)
// and its I/O on the host socket through the env imports.
//
// Guest->host: we advertise BUF_ALLOC bytes of buffer and count in fwdCnt
// what the host socket actually took. Bytes the socket refuses wait in
// `pending` (<= BUF_ALLOC, which the credit check guarantees) and go out when
// the host reports the socket writable.
// Host->guest: we read from the socket only into a guest rx buffer and only
// while the guest's credit (its buf_alloc minus our bytes it has not
// forwarded) allows, so a slow guest leaves the data in the host socket.

import { vsockClose, vsockRead, vsockShutdown, vsockWatch, vsockWrite } from '../../env';
import { DescriptorChain, IoVecList } from '../chain';
import { MAX_QUEUE_SIZE } from '../features';
import { IOVEC_SIZE } from '../io';
import { HEADER_SIZE, SHUTDOWN_BOTH, SHUTDOWN_RCV, SHUTDOWN_SEND } from './packet';
import { PendingBuffer, setIov } from './pending_buffer';

/** Receive buffer we advertise per connection: the most guest->host bytes one connection may hold here. */
export const BUF_ALLOC: u32 = 256 * 1024;
/** Tell the guest about freed buffer once it may believe less than half of BUF_ALLOC is free. */
const CREDIT_UPDATE_THRESHOLD: u32 = BUF_ALLOC / 2;

export const EAGAIN: i32 = 11;
export const ENOBUFS: i32 = 105;

export const enum ConnectionState {
  /** Host-initiated: REQUEST sent (or to be sent) to the guest, no answer yet. */
  CONNECTING = 0,
  ESTABLISHED = 1,
  /** Over: the host socket is closed, an RST to the guest is pending; removed once it is delivered. */
  CLOSING = 2,
}

// Control packets a connection owes the guest (bits of `pendingControl`).
export const CONTROL_REQUEST: u32 = 1;
export const CONTROL_RESPONSE: u32 = 2;
export const CONTROL_CREDIT_UPDATE: u32 = 4;
export const CONTROL_RST: u32 = 8;

// The I/O vector of one host call, static (one call at a time: the module is single-threaded).
const IOV_BYTES: i32 = <i32>MAX_QUEUE_SIZE * <i32>IOVEC_SIZE;
const iov: usize = memory.data(IOV_BYTES, 16);

/** Writes `pieces` as I/O vector entries at `iov`; returns their count. */
function toIov(pieces: IoVecList): u32 {
  for (let i = 0; i < pieces.count; i++) setIov(iov + <usize>i * IOVEC_SIZE, <usize>pieces.addr(i), pieces.len(i));
  return <u32>pieces.count;
}

export class Connection {
  pendingControl: u32 = 0;
  /** The host's socket is still ours (vsockClose not called yet). */
  handleOpen: bool = true;

  // Guest -> host.
  /** Payload bytes received from the guest. */
  rxCnt: u32 = 0;
  /** Of those, bytes the host socket took. */
  fwdCnt: u32 = 0;
  /** fwdCnt as last told to the guest (in any packet's header). */
  fwdCntSent: u32 = 0;
  readonly pending: PendingBuffer = new PendingBuffer(BUF_ALLOC);
  /** SHUTDOWN flags the guest sent. */
  guestShutdown: u32 = 0;
  /** Of those, the ones passed on to the host (vsockShutdown), which waits until `pending` is empty. */
  shutdownForwarded: u32 = 0;

  // Host -> guest.
  peerBufAlloc: u32 = 0;
  peerFwdCnt: u32 = 0;
  /** Payload bytes sent to the guest. */
  txCnt: u32 = 0;
  /** The host socket reached end of file (SHUTDOWN(SEND) sent to the guest). */
  hostEof: bool = false;
  /** The host reported the socket readable and no read has found it empty since. */
  hostReadable: bool = false;

  /** What vsockWatch last asked for. */
  private watchingRead: bool = false;
  private watchingWrite: bool = false;

  constructor(
    readonly handle: u32,
    /** Our (host-side) port. */
    readonly localPort: u32,
    readonly guestPort: u32,
    public state: ConnectionState,
  ) {}

  /** The guest's credit information, from any packet of this connection. */
  updatePeerCredit(bufAlloc: u32, fwdCnt: u32): void {
    this.peerBufAlloc = bufAlloc;
    this.peerFwdCnt = fwdCnt;
  }

  /** Bytes the guest can take now. 0 if its counters make no sense (fwd_cnt ahead of what we sent, buf_alloc shrunk). */
  peerCredit(): u32 {
    const unread = this.txCnt - this.peerFwdCnt;
    return unread >= this.peerBufAlloc ? 0 : this.peerBufAlloc - unread;
  }

  /** Whether `len` more bytes from the guest exceed the credit we gave it (buffer minus what it knows is unforwarded). */
  exceedsCredit(len: u32): bool {
    return <u64>(this.rxCnt - this.fwdCntSent) + <u64>len > <u64>BUF_ALLOC;
  }

  /** Whether the guest's idea of our free buffer is stale enough to send it a CREDIT_UPDATE. */
  guestMayBeStarved(): bool {
    return this.fwdCnt - this.fwdCntSent >= CREDIT_UPDATE_THRESHOLD;
  }

  /** Whether host data may go to the guest now (credit aside). */
  canSendData(): bool {
    return (
      this.state == ConnectionState.ESTABLISHED &&
      !this.hostEof &&
      (this.guestShutdown & SHUTDOWN_RCV) == 0 &&
      (this.pendingControl & CONTROL_RESPONSE) == 0
    );
  }

  /** The host said its socket is readable, and the guest may take data now. */
  hasDataForGuest(): bool {
    return this.hostReadable && this.handleOpen && this.canSendData() && this.peerCredit() > 0;
  }

  /**
   * Guest payload at readable bytes [offset, offset + len) of `chain` (in
   * range, credit checked) for the host: written straight from guest memory
   * when nothing is pending, the rest kept in `pending`. Returns 0, or the
   * -errno that ends the connection. `pieces` is scratch.
   */
  sendToHost(chain: DescriptorChain, offset: u32, len: u32, pieces: IoVecList): i32 {
    this.rxCnt += len;
    let written: u32 = 0;
    if (this.pending.length == 0 && len > 0) {
      pieces.clear();
      // Cannot fail: a chain has at most MAX_QUEUE_SIZE pieces.
      chain.readableSlice(offset, len, pieces);
      const result = vsockWrite(this.handle, iov, toIov(pieces));
      if (result < 0 && result != -EAGAIN) return result;
      written = result < 0 ? 0 : min(<u32>result, len);
      this.fwdCnt += written;
    }
    if (!this.pending.push(chain, offset + written, len - written)) return -ENOBUFS;
    return 0;
  }

  /** Writes pending bytes to the host until it refuses more; returns 0, or the -errno that ends the connection. */
  flush(): i32 {
    const pending = this.pending;
    while (pending.length > 0) {
      const count = pending.fillIov(iov);
      const result = vsockWrite(this.handle, iov, count);
      if (result == -EAGAIN || result == 0) return 0;
      if (result < 0) return result;
      const n = min(<u32>result, pending.length);
      pending.consume(n);
      this.fwdCnt += n;
    }
    return 0;
  }

  /**
   * Reads at most `max` bytes from the host into `chain`'s writable area
   * after the header; returns vsockRead's result (bytes, 0 end of file,
   * -errno). `pieces` is scratch.
   */
  readFromHost(chain: DescriptorChain, max: u32, pieces: IoVecList): i32 {
    pieces.clear();
    // Cannot fail: the caller checked the chain has HEADER_SIZE + max writable bytes.
    chain.writableSlice(HEADER_SIZE, max, pieces);
    const result = vsockRead(this.handle, iov, toIov(pieces));
    return result > 0 ? <i32>min(<u32>result, max) : result;
  }

  /** Passes the guest's SHUTDOWN flags on to the host once every byte it sent before them reached the socket. */
  forwardShutdown(): void {
    if (!this.handleOpen || this.pending.length > 0 || this.shutdownForwarded == this.guestShutdown) return;
    this.shutdownForwarded = this.guestShutdown;
    vsockShutdown(this.handle, this.guestShutdown);
  }

  /**
   * Nothing can flow any more, and the host has every byte the guest sent:
   * the guest shut both directions, or its sending and the host its own.
   */
  fullyShut(): bool {
    const forwarded = this.shutdownForwarded;
    return forwarded == SHUTDOWN_BOTH || ((forwarded & SHUTDOWN_SEND) != 0 && this.hostEof);
  }

  /**
   * Tells the host which readiness to report: readable while data could go
   * to the guest and we do not already know there is some, writable while
   * bytes are pending. Nothing while the device is not live.
   */
  refreshWatch(live: bool): void {
    if (!this.handleOpen) return;
    const read = live && this.canSendData() && !this.hostReadable && this.peerCredit() > 0;
    const write = live && this.pending.length > 0;
    if (read == this.watchingRead && write == this.watchingWrite) return;
    this.watchingRead = read;
    this.watchingWrite = write;
    vsockWatch(this.handle, read, write);
  }

  /** Gives the host socket back (once). */
  closeHost(): void {
    if (!this.handleOpen) return;
    this.handleOpen = false;
    vsockClose(this.handle);
  }
}
