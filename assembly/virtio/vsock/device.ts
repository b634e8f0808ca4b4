// virtio-vsock (virtio 1.2 spec 5.10) backed by host Unix sockets, hybrid
// vsock as Firecracker does it: the host side (host/vsock/) owns the sockets
// and the "CONNECT <port>" handshake; this device parses every guest packet,
// runs each connection's state machine and credit, and moves payload between
// guest buffers and host sockets through the env imports.
//
// Queues: rx (0) carries our packets to the guest, tx (1) the guest's to us,
// event (2) the TRANSPORT_RESET event. Control packets we owe the guest
// (REQUEST, RESPONSE, CREDIT_UPDATE, RST) wait in their connection's
// pendingControl bits, or for packets of no connection in a bounded queue,
// until the guest supplies rx buffers; host data is read only into an rx
// buffer. A guest breaking the stream protocol gets its connection reset;
// a broken ring makes the device fail.

import { vsockConnect, vsockConnected } from '../../env';
import { StateReader, StateWriter } from '../../snapshot';
import { DescriptorChain, IoVecList } from '../chain';
import { VirtioDevice } from '../device';
import { Virtqueue } from '../queue';
import { readU64, writeU64 } from '../state';
import {
  BUF_ALLOC,
  Connection,
  ConnectionState,
  CONTROL_CREDIT_UPDATE,
  CONTROL_REQUEST,
  CONTROL_RESPONSE,
  CONTROL_RST,
  EAGAIN,
  ENOBUFS,
} from './connection';
import { ConnectionTable } from './connection_table';
import {
  HEADER_SIZE,
  HeaderError,
  MAX_PAYLOAD,
  OP_CREDIT_REQUEST,
  OP_CREDIT_UPDATE,
  OP_REQUEST,
  OP_RESPONSE,
  OP_RST,
  OP_RW,
  OP_SHUTDOWN,
  PacketHeader,
  SHUTDOWN_BOTH,
  SHUTDOWN_SEND,
} from './packet';
import { StrayRsts } from './stray_rsts';

export const DEVICE_ID_VSOCK: u32 = 19;
const QUEUE_SIZE: u16 = 256;
const RX_QUEUE: i32 = 0;
const TX_QUEUE: i32 = 1;
const EVENT_QUEUE: i32 = 2;
const QUEUE_COUNT: i32 = 3;

/** Config space: le64 guest_cid. */
const CONFIG_SIZE: u32 = 8;
/** struct virtio_vsock_event: le32 id. */
const EVENT_SIZE: u32 = 4;
const EVENT_TRANSPORT_RESET: u32 = 0;

const EEXIST: i32 = 17;
const ECONNREFUSED: i32 = 111;

/** CIDs 0-2 are reserved (hypervisor, local, host) and 0xffffffff is VMADDR_CID_ANY; Linux CIDs are 32-bit. */
export function isValidGuestCid(cid: u64): bool {
  return cid >= 3 && cid < 0xffff_ffff;
}

export class VirtioVsock extends VirtioDevice {
  private readonly table: ConnectionTable = new ConnectionTable();
  private readonly strayRsts: StrayRsts = new StrayRsts();
  /** A TRANSPORT_RESET event waits for an event buffer. */
  private eventPending: bool = false;
  private readonly chain: DescriptorChain = new DescriptorChain();
  private readonly header: PacketHeader = new PacketHeader();
  /** Scratch: the guest-memory pieces of one payload. */
  private readonly pieces: IoVecList = new IoVecList();

  /** @param guestCid the guest's CID (isValidGuestCid) */
  constructor(public guestCid: u64) {
    super(DEVICE_ID_VSOCK, QUEUE_COUNT, QUEUE_SIZE);
  }

  /** No feature bits: stream sockets only, which a device offering none supports. */
  deviceFeatures(): u64 {
    return 0;
  }

  configRead(offset: u32, size: u32): u64 {
    if (size == 0 || size > 8 || offset > CONFIG_SIZE || size > CONFIG_SIZE - offset) return 0;
    const value = this.guestCid >> (<u64>offset * 8);
    return size == 8 ? value : value & ((<u64>1 << (<u64>size * 8)) - 1);
  }

  queueNotify(index: i32): void {
    if (index == EVENT_QUEUE) {
      this.deliverEvent();
      return;
    }
    if (index == TX_QUEUE) this.serveTx();
    // New rx buffers, or replies and credit for what the guest sent.
    this.serveRx();
  }

  /** Every connection ends with the driver that knew it: the host sockets are closed, nothing is sent. */
  reset(): void {
    this.closeAll();
    this.eventPending = false;
  }

  /**
   * Payload: guest_cid, a pending TRANSPORT_RESET. Connections are not saved:
   * their host sockets do not survive; after a restore the host calls
   * transportReset so the guest drops its side too.
   */
  save(w: StateWriter): void {
    writeU64(w, this.guestCid);
    w.bool(this.eventPending);
  }

  /** Leaves the connections alone: a refused restore puts the old state back, and they must survive that. */
  restore(r: StateReader): bool {
    const cid = readU64(r);
    const eventPending = r.bool();
    r.check(isValidGuestCid(cid));
    if (!r.ok) return false;
    this.guestCid = cid;
    this.eventPending = eventPending;
    return true;
  }

  /**
   * A host client asked for guest port `guestPort` through host socket
   * `handle`: sends the guest a REQUEST. Returns our local port for it, or
   * -errno (the host keeps and closes the handle): -ECONNREFUSED while the
   * driver is not running, -ENOBUFS with MAX_CONNECTIONS, -EEXIST for a
   * handle in use. The outcome is vsockConnected or vsockClose.
   */
  hostConnect(handle: u32, guestPort: u32): i32 {
    if (!this.isLive()) return -ECONNREFUSED;
    const table = this.table;
    if (table.isFull()) return -ENOBUFS;
    if (table.findByHandle(handle) !== null) return -EEXIST;
    const connection = new Connection(handle, table.allocateLocalPort(), guestPort, ConnectionState.CONNECTING);
    connection.pendingControl = CONTROL_REQUEST;
    table.add(connection);
    this.serveRx();
    return <i32>connection.localPort;
  }

  /** The host socket `handle` is readable (data, end of file or error) and/or writable. Unknown handles are ignored. */
  hostReady(handle: u32, readable: bool, writable: bool): void {
    const connection = this.table.findByHandle(handle);
    if (connection === null) return;
    if (!this.isLive()) {
      // No rings to move data through: stop the reports until the driver resets us.
      connection.refreshWatch(false);
      return;
    }
    if (readable) connection.hostReadable = true;
    if (writable && connection.flush() < 0) this.abort(connection);
    else this.settle(connection);
    this.serveRx();
  }

  /**
   * After a restore: forgets every connection (closing the host sockets),
   * takes CID `guestCid` (isValidGuestCid) and queues a TRANSPORT_RESET
   * event, on which the guest re-reads the CID and resets its sockets.
   */
  transportReset(guestCid: u64): void {
    this.closeAll();
    this.guestCid = guestCid;
    this.eventPending = true;
    this.deliverEvent();
  }

  private closeAll(): void {
    const list = this.table.list;
    for (let i = 0; i < list.length; i++) unchecked(list[i]).closeHost();
    this.table.clear();
    this.strayRsts.clear();
  }

  /** Takes every packet the guest sent. */
  private serveTx(): void {
    const queue = this.queues[TX_QUEUE];
    const chain = this.chain;
    do {
      let popped: i32;
      while ((popped = queue.pop(chain)) == 1) {
        this.receive(chain);
        queue.pushUsed(chain.head, 0);
      }
      if (popped < 0) {
        this.fail(<u32>-popped);
        break;
      }
    } while (queue.enableNotifications());
    if (queue.needsNotification()) this.signalUsed();
  }

  /** One packet from the guest. */
  private receive(chain: DescriptorChain): void {
    const header = this.header;
    // Too short to name a connection: nobody to answer.
    if (!header.readFrom(chain)) return;
    const error = header.validate(this.guestCid, chain.readableBytes);
    // A packet with wrong CIDs is not from our guest's socket: it names no connection of ours.
    const connection: Connection | null =
      error == HeaderError.WRONG_CID ? null : this.table.find(header.dstPort, header.srcPort);
    if (connection === null) {
      if (error == HeaderError.NONE && header.op == OP_REQUEST) this.guestConnect(header);
      else if (header.op != OP_RST) this.strayRsts.push(header.dstPort, header.srcPort);
      return;
    }
    if (connection.state == ConnectionState.CLOSING) {
      // Our RST is on its way; the guest's RST ends it here too.
      if (header.op == OP_RST) this.table.remove(connection);
      return;
    }
    if (header.op == OP_RST) {
      connection.closeHost();
      this.table.remove(connection);
      return;
    }
    if (error != HeaderError.NONE) {
      this.abort(connection);
      return;
    }
    connection.updatePeerCredit(header.bufAlloc, header.fwdCnt);
    if (connection.state == ConnectionState.CONNECTING) {
      if (header.op != OP_RESPONSE) {
        this.abort(connection);
        return;
      }
      connection.state = ConnectionState.ESTABLISHED;
      vsockConnected(connection.handle);
    } else if (!this.receiveEstablished(connection, chain)) {
      this.abort(connection);
      return;
    }
    this.settle(connection);
  }

  /** A valid packet other than RST for an established connection; false if it breaks the protocol. */
  private receiveEstablished(connection: Connection, chain: DescriptorChain): bool {
    const header = this.header;
    switch (header.op) {
      case OP_RW: {
        if (connection.guestShutdown & SHUTDOWN_SEND) return false;
        if (connection.exceedsCredit(header.len)) return false;
        return connection.sendToHost(chain, HEADER_SIZE, header.len, this.pieces) == 0;
      }
      case OP_SHUTDOWN:
        connection.guestShutdown |= header.flags & SHUTDOWN_BOTH;
        return true;
      case OP_CREDIT_REQUEST:
        connection.pendingControl |= CONTROL_CREDIT_UPDATE;
        return true;
      case OP_CREDIT_UPDATE:
        return true;
    }
    // REQUEST or RESPONSE on an established connection.
    return false;
  }

  /** The guest's REQUEST to host port header.dstPort: connects through the host and answers RESPONSE, or RST. */
  private guestConnect(header: PacketHeader): void {
    const table = this.table;
    const result = table.isFull() ? -ENOBUFS : vsockConnect(header.dstPort);
    // A handle the table already holds would be a host bug; refusing keeps the table consistent.
    if (result < 0 || table.findByHandle(<u32>result) !== null) {
      this.strayRsts.push(header.dstPort, header.srcPort);
      return;
    }
    const connection = new Connection(<u32>result, header.dstPort, header.srcPort, ConnectionState.ESTABLISHED);
    connection.updatePeerCredit(header.bufAlloc, header.fwdCnt);
    connection.pendingControl = CONTROL_RESPONSE;
    table.add(connection);
  }

  /**
   * After anything happened on `connection`: passes the guest's shutdown to
   * the host once its data is through (with both directions shut the
   * connection is over: RST), owes the guest a CREDIT_UPDATE if its view of
   * our buffer is stale, and updates what the host watches.
   */
  private settle(connection: Connection): void {
    connection.forwardShutdown();
    if (connection.fullyShut()) {
      this.abort(connection);
      return;
    }
    if (connection.guestMayBeStarved()) connection.pendingControl |= CONTROL_CREDIT_UPDATE;
    connection.refreshWatch(this.isLive());
  }

  /** Ends `connection`: the host socket is closed now, the guest gets an RST when an rx buffer comes. */
  private abort(connection: Connection): void {
    connection.closeHost();
    connection.state = ConnectionState.CLOSING;
    connection.pendingControl = CONTROL_RST;
  }

  /** Fills rx buffers while there is something to send: stray RSTs, control packets, then host data. */
  private serveRx(): void {
    if (!this.isLive()) return;
    const queue = this.queues[RX_QUEUE];
    const chain = this.chain;
    while (this.strayRsts.length > 0 || this.table.nextWithControl() !== null || this.table.nextReadable(false) !== null) {
      if (!this.popBuffer(queue, chain)) break;
      const used = chain.writableBytes < HEADER_SIZE ? 0 : this.fill(chain);
      if (used < 0) queue.undoPop();
      else queue.pushUsed(chain.head, <u32>used);
    }
    if (queue.needsNotification()) this.signalUsed();
  }

  /**
   * Puts the next packet into rx buffer `chain` (>= HEADER_SIZE writable
   * bytes); returns the bytes written, or -1 if it turned out there was
   * nothing to put (the host had no data after all).
   */
  private fill(chain: DescriptorChain): i32 {
    const strays = this.strayRsts;
    if (strays.length > 0) {
      this.header.set(this.guestCid, strays.localPort(), strays.guestPort(), OP_RST, 0, 0, 0, 0);
      this.header.writeTo(chain);
      strays.shift();
      return <i32>HEADER_SIZE;
    }
    const control = this.table.nextWithControl();
    if (control !== null) {
      this.sendControl(control, chain);
      return <i32>HEADER_SIZE;
    }
    const connection = this.table.nextReadable(true)!;
    const room = min(chain.writableBytes - HEADER_SIZE, min(connection.peerCredit(), MAX_PAYLOAD));
    // A buffer with no room for payload: returned empty (Linux drops it) rather than looping on it.
    if (room == 0) return 0;
    const result = connection.readFromHost(chain, room, this.pieces);
    if (result > 0) {
      connection.txCnt += <u32>result;
      this.sendHeader(connection, chain, OP_RW, <u32>result, 0);
      connection.refreshWatch(true);
      return <i32>HEADER_SIZE + result;
    }
    connection.hostReadable = false;
    if (result == -EAGAIN) {
      connection.refreshWatch(true);
      return -1;
    }
    if (result == 0) {
      // The host will send no more; the guest may still send, unless it is done too.
      connection.hostEof = true;
      this.sendHeader(connection, chain, OP_SHUTDOWN, 0, SHUTDOWN_SEND);
      if (connection.fullyShut()) this.abort(connection);
      else connection.refreshWatch(true);
    } else {
      connection.closeHost();
      this.sendHeader(connection, chain, OP_RST, 0, 0);
      this.table.remove(connection);
    }
    return <i32>HEADER_SIZE;
  }

  /** Sends the most urgent control packet `connection` owes; a delivered RST ends it. */
  private sendControl(connection: Connection, chain: DescriptorChain): void {
    const pending = connection.pendingControl;
    if (pending & CONTROL_RST) {
      this.sendHeader(connection, chain, OP_RST, 0, 0);
      this.table.remove(connection);
      return;
    }
    let op = OP_CREDIT_UPDATE; // cleared by sendHeader
    if (pending & CONTROL_REQUEST) {
      op = OP_REQUEST;
      connection.pendingControl &= ~CONTROL_REQUEST;
    } else if (pending & CONTROL_RESPONSE) {
      op = OP_RESPONSE;
      connection.pendingControl &= ~CONTROL_RESPONSE;
    }
    this.sendHeader(connection, chain, op, 0, 0);
    // After a RESPONSE the host's data may flow.
    connection.refreshWatch(true);
  }

  /** Writes a header of `connection` with our current credit, which also answers any CREDIT_UPDATE it owed. */
  private sendHeader(connection: Connection, chain: DescriptorChain, op: u16, len: u32, flags: u32): void {
    this.header.set(this.guestCid, connection.localPort, connection.guestPort, op, len, flags, BUF_ALLOC, connection.fwdCnt);
    this.header.writeTo(chain);
    connection.fwdCntSent = connection.fwdCnt;
    connection.pendingControl &= ~CONTROL_CREDIT_UPDATE;
  }

  /**
   * Pops the next driver buffer of `queue` into `chain`: false when the ring is
   * empty (notifications re-enabled, so a later kick brings more) or broken
   * (the device has failed).
   */
  private popBuffer(queue: Virtqueue, chain: DescriptorChain): bool {
    while (true) {
      const popped = queue.pop(chain);
      if (popped > 0) return true;
      if (popped < 0) {
        this.fail(<u32>-popped);
        return false;
      }
      if (!queue.enableNotifications()) return false;
    }
  }

  /** Hands a pending TRANSPORT_RESET to the guest if it has an event buffer (else on its next event-queue kick). */
  private deliverEvent(): void {
    if (!this.eventPending || !this.isLive()) return;
    const queue = this.queues[EVENT_QUEUE];
    const chain = this.chain;
    while (this.popBuffer(queue, chain)) {
      // A buffer too small for the event is handed back empty.
      if (chain.writableBytes < EVENT_SIZE) {
        queue.pushUsed(chain.head, 0);
        continue;
      }
      const event = memory.data(<i32>EVENT_SIZE);
      store<u32>(event, EVENT_TRANSPORT_RESET);
      chain.writeBytes(0, event, EVENT_SIZE);
      queue.pushUsed(chain.head, EVENT_SIZE);
      this.eventPending = false;
      break;
    }
    if (queue.needsNotification()) this.signalUsed();
  }
}
