// 16550A UART (the PC's COM1): the guest's console. Transmission is
// instantaneous (each THR byte goes straight to the host), so the transmitter
// is always empty; received bytes come from the host through receive() into a
// 16-byte FIFO. Linux's 8250 driver probes it as a 16550A: IER keeps only its
// low nibble, loopback reflects MCR on MSR, IIR[7:6] show the FIFO, IIR bit 5
// (64-byte FIFO) stays clear and the loopback FIFO depth is 16.

import { BusDevice } from '../bus';
import { consoleWrite } from '../env';
import { IrqLine } from '../irq';
import { sectionTag, StateReader, StateWriter } from '../snapshot';

// Register offsets (DLAB = LCR bit 7 switches offsets 0 and 1 to the divisor latch).
const RBR_THR: u32 = 0;
const IER: u32 = 1;
const IIR_FCR: u32 = 2;
const LCR: u32 = 3;
const MCR: u32 = 4;
const LSR: u32 = 5;
const MSR: u32 = 6;
const SCR: u32 = 7;

const IER_RDI: u8 = 0x01; // received data available
const IER_THRI: u8 = 0x02; // transmitter holding register empty
const IER_RLSI: u8 = 0x04; // receiver line status
const IER_MSI: u8 = 0x08; // modem status
const IER_MASK: u8 = 0x0f;

// Interrupt identification codes in IIR[3:0], highest priority first.
const IIR_RLS: u8 = 0x06;
const IIR_RDA: u8 = 0x04;
const IIR_RX_TIMEOUT: u8 = 0x0c;
const IIR_THRE: u8 = 0x02;
const IIR_MSI: u8 = 0x00;
const IIR_NONE: u8 = 0x01;
const IIR_FIFO_ENABLED: u8 = 0xc0;

const FCR_ENABLE: u8 = 0x01;
const FCR_CLEAR_RX: u8 = 0x02;
const FCR_TRIGGER_MASK: u8 = 0xc0;

const LCR_DLAB: u8 = 0x80;

const MCR_DTR: u8 = 0x01;
const MCR_RTS: u8 = 0x02;
const MCR_OUT1: u8 = 0x04;
const MCR_OUT2: u8 = 0x08;
const MCR_LOOP: u8 = 0x10;
const MCR_MASK: u8 = 0x1f;

const LSR_DR: u8 = 0x01;
const LSR_OE: u8 = 0x02;
const LSR_THRE: u8 = 0x20;
const LSR_TEMT: u8 = 0x40;

const MSR_DCTS: u8 = 0x01;
const MSR_DDSR: u8 = 0x02;
const MSR_TERI: u8 = 0x04;
const MSR_DDCD: u8 = 0x08;
const MSR_CTS: u8 = 0x10;
const MSR_DSR: u8 = 0x20;
const MSR_RI: u8 = 0x40;
const MSR_DCD: u8 = 0x80;
const MSR_DELTAS: u8 = MSR_DCTS | MSR_DDSR | MSR_TERI | MSR_DDCD;
/** Modem lines of the host side when not in loopback: carrier, data set ready and clear to send, like QEMU and Firecracker. */
const MSR_HOST_LINES: u8 = MSR_DCD | MSR_DSR | MSR_CTS;

/** 16550A receive FIFO depth; also what Linux measures in loopback to tell a 16550A from larger-FIFO parts. */
export const RX_FIFO_SIZE: u32 = 16;
const RX_FIFO_MASK: u32 = RX_FIFO_SIZE - 1;

export const SERIAL_STATE_TAG: u32 = sectionTag(0x55, 0x41, 0x52, 0x54); // "UART"
export const SERIAL_STATE_VERSION: u16 = 1;

/** Received-data trigger levels selected by FCR[7:6]. */
function triggerLevel(fcr: u8): u32 {
  const sel = fcr >> 6;
  return sel == 0 ? 1 : sel == 1 ? 4 : sel == 2 ? 8 : 14;
}

export class Serial extends BusDevice {
  ier: u8 = 0;
  lcr: u8 = 0;
  mcr: u8 = 0;
  scr: u8 = 0;
  /** FIFO enable and trigger bits of the write-only FCR. */
  fcr: u8 = 0;
  /** Baud-rate divisor; stored for the guest only (the host side has no line speed). 12 = 9600 baud. */
  divisor: u16 = 12;
  /** Latched line errors (only overrun can happen); cleared by reading LSR. */
  lsrErrors: u8 = 0;
  /** MSR delta bits (low nibble); cleared by reading MSR. */
  msrDeltas: u8 = 0;
  /** THR-empty interrupt raised and not yet acknowledged by an IIR read or THR write. */
  thrEmptyPending: bool = false;
  /** Last byte taken from the FIFO: what RBR shows when the FIFO is empty. */
  rbr: u8 = 0;
  rxFifo: StaticArray<u8> = new StaticArray<u8>(RX_FIFO_SIZE);
  rxHead: u32 = 0;
  rxCount: u32 = 0;
  irq: IrqLine;

  constructor(gsi: u32) {
    super();
    this.irq = new IrqLine(gsi);
  }

  /** Queues one byte from the host. False when it cannot be taken now (FIFO full or loopback mode): retry after the guest's next access to this UART. */
  receive(byte: u8): bool {
    if (this.mcr & MCR_LOOP) return false;
    if (this.rxCount >= this.rxCapacity()) return false;
    this.pushRx(byte);
    this.updateIrq();
    return true;
  }

  /**
   * Payload (version 1): ier, lcr, mcr, scr, fcr, divisor u16, lsrErrors,
   * msrDeltas, thrEmptyPending, rbr, the receive FIFO's count, then its bytes
   * oldest first. The interrupt line's level is not saved: it follows from these.
   */
  save(w: StateWriter): void {
    w.u8(this.ier);
    w.u8(this.lcr);
    w.u8(this.mcr);
    w.u8(this.scr);
    w.u8(this.fcr);
    w.u16(this.divisor);
    w.u8(this.lsrErrors);
    w.u8(this.msrDeltas);
    w.bool(this.thrEmptyPending);
    w.u8(this.rbr);
    w.u8(<u8>this.rxCount);
    for (let i: u32 = 0; i < this.rxCount; i++) w.u8(unchecked(this.rxFifo[(this.rxHead + i) & RX_FIFO_MASK]));
  }

  /**
   * Loads a version-1 payload, accepting only states the UART can reach. On
   * false this instance is half-loaded (the machine restores into scratch
   * instances first). Call updateIrq afterwards to drive the line.
   */
  restore(r: StateReader): bool {
    this.ier = r.u8();
    r.check((this.ier & ~IER_MASK) == 0);
    this.lcr = r.u8();
    this.mcr = r.u8();
    r.check((this.mcr & ~MCR_MASK) == 0);
    this.scr = r.u8();
    this.fcr = r.u8();
    // writeFcr keeps the trigger bits only with the FIFO enabled.
    r.check(this.fcr == 0 || (this.fcr & ~(FCR_ENABLE | FCR_TRIGGER_MASK)) == 0 && (this.fcr & FCR_ENABLE) != 0);
    this.divisor = r.u16();
    this.lsrErrors = r.u8();
    r.check((this.lsrErrors & ~LSR_OE) == 0);
    this.msrDeltas = r.u8();
    r.check((this.msrDeltas & ~MSR_DELTAS) == 0);
    this.thrEmptyPending = r.bool();
    r.check(!this.thrEmptyPending || (this.ier & IER_THRI) != 0);
    this.rbr = r.u8();
    const count: u32 = r.u8();
    r.check(count <= this.rxCapacity());
    if (!r.ok) return false;
    this.rxHead = 0;
    this.rxCount = count;
    for (let i: u32 = 0; i < count; i++) unchecked((this.rxFifo[i] = r.u8()));
    return r.ok;
  }

  read(offset: u32, size: u32): u64 {
    if (size != 1) return u64.MAX_VALUE;
    switch (offset) {
      case RBR_THR:
        return this.lcr & LCR_DLAB ? this.divisor & 0xff : this.readRbr();
      case IER:
        return this.lcr & LCR_DLAB ? this.divisor >> 8 : this.ier;
      case IIR_FCR:
        return this.readIir();
      case LCR:
        return this.lcr;
      case MCR:
        return this.mcr;
      case LSR:
        return this.readLsr();
      case MSR:
        return this.readMsr();
      case SCR:
        return this.scr;
    }
    return u64.MAX_VALUE;
  }

  write(offset: u32, size: u32, value: u64): void {
    if (size != 1) return;
    const byte = <u8>value;
    switch (offset) {
      case RBR_THR:
        if (this.lcr & LCR_DLAB) this.divisor = (this.divisor & 0xff00) | byte;
        else this.writeThr(byte);
        break;
      case IER:
        if (this.lcr & LCR_DLAB) this.divisor = (this.divisor & 0x00ff) | (<u16>byte << 8);
        else this.writeIer(byte);
        break;
      case IIR_FCR:
        this.writeFcr(byte);
        break;
      case LCR:
        this.lcr = byte;
        break;
      case MCR:
        this.writeMcr(byte);
        break;
      case SCR:
        this.scr = byte;
        break;
      // LSR and MSR writes (factory test) are ignored.
    }
  }

  private readRbr(): u8 {
    if (this.rxCount > 0) {
      this.rbr = unchecked(this.rxFifo[this.rxHead]);
      this.rxHead = (this.rxHead + 1) & RX_FIFO_MASK;
      this.rxCount--;
      this.updateIrq();
    }
    return this.rbr;
  }

  private writeThr(byte: u8): void {
    if (this.mcr & MCR_LOOP) this.loopBack(byte);
    else consoleWrite(byte);
    // Sent at once: the holding register is empty again, which is a new THRE event.
    this.thrEmptyPending = (this.ier & IER_THRI) != 0;
    this.updateIrq();
  }

  /** In loopback the transmitter feeds the receiver; a byte that does not fit is an overrun. */
  private loopBack(byte: u8): void {
    if (this.rxCount < this.rxCapacity()) {
      this.pushRx(byte);
      return;
    }
    this.lsrErrors |= LSR_OE;
    // Without FIFO the new byte replaces the one in RBR; with FIFO it is lost.
    if (!this.fifoEnabled()) unchecked((this.rxFifo[this.rxHead] = byte));
  }

  private writeIer(byte: u8): void {
    const changed = (this.ier ^ byte) & IER_MASK;
    this.ier = byte & IER_MASK;
    // Enabling THRI while the transmitter is empty (it always is) raises THRE
    // again even if it was acknowledged: Linux's startup THRE test relies on it.
    if (changed & IER_THRI) this.thrEmptyPending = (this.ier & IER_THRI) != 0;
    this.updateIrq();
  }

  private readIir(): u8 {
    const id = this.interruptId();
    // Reading IIR acknowledges a THRE interrupt when it is the one reported.
    if (id == IIR_THRE) {
      this.thrEmptyPending = false;
      this.updateIrq();
    }
    return id | (this.fifoEnabled() ? IIR_FIFO_ENABLED : 0);
  }

  private writeFcr(byte: u8): void {
    // Switching the FIFOs on or off empties them; other bits only count with FCR0 set.
    if ((byte ^ this.fcr) & FCR_ENABLE) this.clearRx();
    if (byte & FCR_ENABLE) {
      if (byte & FCR_CLEAR_RX) this.clearRx();
      this.fcr = byte & (FCR_ENABLE | FCR_TRIGGER_MASK);
    } else {
      this.fcr = 0;
    }
    this.updateIrq();
  }

  private writeMcr(byte: u8): void {
    const before = this.modemLines();
    this.mcr = byte & MCR_MASK;
    const after = this.modemLines();
    const changed = before ^ after;
    if (changed & MSR_CTS) this.msrDeltas |= MSR_DCTS;
    if (changed & MSR_DSR) this.msrDeltas |= MSR_DDSR;
    if (changed & before & MSR_RI) this.msrDeltas |= MSR_TERI; // trailing edge only
    if (changed & MSR_DCD) this.msrDeltas |= MSR_DDCD;
    this.updateIrq();
  }

  private readLsr(): u8 {
    const lsr = LSR_THRE | LSR_TEMT | this.lsrErrors | (this.rxCount > 0 ? LSR_DR : 0);
    if (this.lsrErrors) {
      this.lsrErrors = 0;
      this.updateIrq();
    }
    return lsr;
  }

  private readMsr(): u8 {
    const msr = this.modemLines() | this.msrDeltas;
    if (this.msrDeltas) {
      this.msrDeltas = 0;
      this.updateIrq();
    }
    return msr;
  }

  /** MSR[7:4]: in loopback the UART's own modem outputs, otherwise the host side's lines. */
  private modemLines(): u8 {
    const mcr = this.mcr;
    if (!(mcr & MCR_LOOP)) return MSR_HOST_LINES;
    return (
      (mcr & MCR_RTS ? MSR_CTS : 0) |
      (mcr & MCR_DTR ? MSR_DSR : 0) |
      (mcr & MCR_OUT1 ? MSR_RI : 0) |
      (mcr & MCR_OUT2 ? MSR_DCD : 0)
    );
  }

  /** The highest-priority enabled interrupt condition, as IIR[3:0]. */
  private interruptId(): u8 {
    const ier = this.ier;
    if (ier & IER_RLSI && this.lsrErrors) return IIR_RLS;
    if (ier & IER_RDI && this.rxCount > 0) {
      // Host bytes arrive one at a time, so a FIFO below its trigger level is
      // reported as a character timeout at once instead of after 4 idle chars.
      if (this.fifoEnabled() && this.rxCount < triggerLevel(this.fcr)) return IIR_RX_TIMEOUT;
      return IIR_RDA;
    }
    if (ier & IER_THRI && this.thrEmptyPending) return IIR_THRE;
    if (ier & IER_MSI && this.msrDeltas) return IIR_MSI;
    return IIR_NONE;
  }

  /** The interrupt output follows IIR (not gated by MCR.OUT2, as in QEMU and Firecracker). */
  updateIrq(): void {
    this.irq.set(this.interruptId() != IIR_NONE);
  }

  private fifoEnabled(): bool {
    return (this.fcr & FCR_ENABLE) != 0;
  }

  /** Without FIFO the receiver holds a single byte. */
  private rxCapacity(): u32 {
    return this.fifoEnabled() ? RX_FIFO_SIZE : 1;
  }

  private pushRx(byte: u8): void {
    unchecked((this.rxFifo[(this.rxHead + this.rxCount) & RX_FIFO_MASK] = byte));
    this.rxCount++;
  }

  private clearRx(): void {
    this.rxHead = 0;
    this.rxCount = 0;
  }
}
