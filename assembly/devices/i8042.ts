// i8042 PS/2 controller, mainly so the guest can reset the machine (Linux's
// reboot=k pulses the reset line with command 0xFE). The controller answers
// the commands Linux's probe uses (self test, CTR read/write, port enable and
// tests, AUX loopback); nothing is plugged into either PS/2 port, so a byte
// sent to the keyboard or mouse is answered with 0xFE and the timeout status
// bit, as a controller does when no device replies.
//
// Decodes ports 0x60 (data) and 0x64 (status/command), registered as one
// 5-port window: the ports between are not decoded here (0x61 belongs to the
// PIT's speaker gate, which the in-kernel PIT emulates).

import { BusDevice } from '../bus';
import { resetRequest } from '../env';
import { IrqLine } from '../irq';
import { sectionTag, StateReader, StateWriter } from '../snapshot';

/** Offsets within the window at 0x60. */
const DATA: u32 = 0;
const STATUS_COMMAND: u32 = 4;
export const I8042_WINDOW_SIZE: u32 = 5;

export const I8042_STATE_TAG: u32 = sectionTag(0x4b, 0x42, 0x43, 0x20); // "KBC "
export const I8042_STATE_VERSION: u16 = 1;

const STR_OBF: u8 = 0x01;
const STR_SYS: u8 = 0x04;
const STR_CMD: u8 = 0x08; // last write went to the command port
const STR_UNLOCKED: u8 = 0x10; // keyboard not inhibited by a keylock
const STR_AUXDATA: u8 = 0x20;
const STR_TIMEOUT: u8 = 0x40;

const CTR_KBDINT: u8 = 0x01;
const CTR_AUXINT: u8 = 0x02;
const CTR_SYS: u8 = 0x04;
const CTR_KBDDIS: u8 = 0x10;
const CTR_AUXDIS: u8 = 0x20;
const CTR_XLATE: u8 = 0x40;

const CMD_READ_CTR: u8 = 0x20;
const CMD_WRITE_CTR: u8 = 0x60;
const CMD_AUX_DISABLE: u8 = 0xa7;
const CMD_AUX_ENABLE: u8 = 0xa8;
const CMD_AUX_TEST: u8 = 0xa9;
const CMD_SELF_TEST: u8 = 0xaa;
const CMD_KBD_TEST: u8 = 0xab;
const CMD_KBD_DISABLE: u8 = 0xad;
const CMD_KBD_ENABLE: u8 = 0xae;
const CMD_READ_OUTPUT_PORT: u8 = 0xd0;
const CMD_WRITE_OUTPUT_PORT: u8 = 0xd1;
const CMD_WRITE_KBD_OUTPUT: u8 = 0xd2;
const CMD_WRITE_AUX_OUTPUT: u8 = 0xd3;
const CMD_WRITE_AUX: u8 = 0xd4;
/** 0xF0-0xFF pulse output-port bits 0-3 low where the command has zeros; bit 0 is the CPU reset line. */
const CMD_PULSE_BASE: u8 = 0xf0;

const SELF_TEST_PASSED: u8 = 0x55;
const INTERFACE_TEST_PASSED: u8 = 0x00;
const NO_DEVICE_REPLY: u8 = 0xfe;

const OUTPUT_PORT_RESET: u8 = 0x01; // 0 holds the CPU in reset
const OUTPUT_PORT_A20: u8 = 0x02;

/** Nothing is waiting for a data byte. */
const NO_COMMAND: u8 = 0;

/** Commands followed by a data byte written to port 0x60. */
function takesDataByte(cmd: u8): bool {
  return (
    cmd == CMD_WRITE_CTR || cmd == CMD_WRITE_OUTPUT_PORT || cmd == CMD_WRITE_KBD_OUTPUT ||
    cmd == CMD_WRITE_AUX_OUTPUT || cmd == CMD_WRITE_AUX
  );
}

export class I8042 extends BusDevice {
  /** Controller configuration byte, as firmware leaves it: keyboard interrupt on, translation on. */
  ctr: u8 = CTR_KBDINT | CTR_SYS | CTR_XLATE;
  outputPort: u8 = OUTPUT_PORT_RESET | OUTPUT_PORT_A20;
  /** Command whose data byte the next write to 0x60 carries, or NO_COMMAND. */
  pendingCommand: u8 = NO_COMMAND;
  lastWriteWasCommand: bool = false;
  /** Output buffer: one byte, which channel it came from, and whether it reports a device timeout. */
  output: u8 = 0;
  outputFull: bool = false;
  outputFromAux: bool = false;
  outputTimeout: bool = false;
  kbdIrq: IrqLine;
  auxIrq: IrqLine;

  constructor(kbdGsi: u32, auxGsi: u32) {
    super();
    this.kbdIrq = new IrqLine(kbdGsi);
    this.auxIrq = new IrqLine(auxGsi);
  }

  /**
   * Payload (version 1): ctr, outputPort, pendingCommand, lastWriteWasCommand,
   * output, outputFull, outputFromAux, outputTimeout. The interrupt lines'
   * levels are not saved: they follow from these.
   */
  save(w: StateWriter): void {
    w.u8(this.ctr);
    w.u8(this.outputPort);
    w.u8(this.pendingCommand);
    w.bool(this.lastWriteWasCommand);
    w.u8(this.output);
    w.bool(this.outputFull);
    w.bool(this.outputFromAux);
    w.bool(this.outputTimeout);
  }

  /**
   * Loads a version-1 payload, accepting only states the controller can
   * reach. On false this instance is half-loaded (the machine restores into
   * scratch instances first). Call updateIrqs afterwards to drive the lines.
   */
  restore(r: StateReader): bool {
    this.ctr = r.u8();
    this.outputPort = r.u8();
    this.pendingCommand = r.u8();
    r.check(takesDataByte(this.pendingCommand) || this.pendingCommand == NO_COMMAND);
    this.lastWriteWasCommand = r.bool();
    this.output = r.u8();
    this.outputFull = r.bool();
    this.outputFromAux = r.bool();
    this.outputTimeout = r.bool();
    return r.ok;
  }

  read(offset: u32, size: u32): u64 {
    if (size != 1) return u64.MAX_VALUE;
    if (offset == DATA) return this.readData();
    if (offset == STATUS_COMMAND) return this.status();
    return u64.MAX_VALUE;
  }

  write(offset: u32, size: u32, value: u64): void {
    if (size != 1) return;
    if (offset == DATA) {
      this.lastWriteWasCommand = false;
      this.writeData(<u8>value);
    } else if (offset == STATUS_COMMAND) {
      this.lastWriteWasCommand = true;
      this.command(<u8>value);
    }
  }

  private status(): u8 {
    let status = STR_UNLOCKED;
    if (this.ctr & CTR_SYS) status |= STR_SYS;
    if (this.lastWriteWasCommand) status |= STR_CMD;
    if (this.outputFull) {
      status |= STR_OBF;
      if (this.outputFromAux) status |= STR_AUXDATA;
      if (this.outputTimeout) status |= STR_TIMEOUT;
    }
    // IBF (input buffer full) is never set: every write is consumed at once.
    return status;
  }

  /** Reading 0x60 empties the output buffer; with nothing new it repeats the last byte. */
  private readData(): u8 {
    if (this.outputFull) {
      this.outputFull = false;
      this.updateIrqs();
    }
    return this.output;
  }

  private command(cmd: u8): void {
    this.pendingCommand = NO_COMMAND;
    switch (cmd) {
      case CMD_READ_CTR:
        this.respond(this.ctr, false, false);
        break;
      case CMD_AUX_DISABLE:
        this.setCtr(this.ctr | CTR_AUXDIS);
        break;
      case CMD_AUX_ENABLE:
        this.setCtr(this.ctr & ~CTR_AUXDIS);
        break;
      case CMD_AUX_TEST:
      case CMD_KBD_TEST:
        this.respond(INTERFACE_TEST_PASSED, false, false);
        break;
      case CMD_SELF_TEST:
        this.setCtr(this.ctr | CTR_SYS);
        this.respond(SELF_TEST_PASSED, false, false);
        break;
      case CMD_KBD_DISABLE:
        this.setCtr(this.ctr | CTR_KBDDIS);
        break;
      case CMD_KBD_ENABLE:
        this.setCtr(this.ctr & ~CTR_KBDDIS);
        break;
      case CMD_READ_OUTPUT_PORT:
        this.respond(this.outputPort, false, false);
        break;
      default:
        if (takesDataByte(cmd)) this.pendingCommand = cmd;
        else if (cmd >= CMD_PULSE_BASE && (cmd & OUTPUT_PORT_RESET) == 0) resetRequest();
      // Other commands (controller RAM, input port, vendor extensions) are ignored.
    }
  }

  private writeData(byte: u8): void {
    const cmd = this.pendingCommand;
    this.pendingCommand = NO_COMMAND;
    switch (cmd) {
      case CMD_WRITE_CTR:
        this.setCtr(byte);
        break;
      case CMD_WRITE_OUTPUT_PORT:
        this.outputPort = byte;
        if ((byte & OUTPUT_PORT_RESET) == 0) resetRequest();
        break;
      case CMD_WRITE_KBD_OUTPUT:
        this.respond(byte, false, false);
        break;
      case CMD_WRITE_AUX_OUTPUT:
        this.respond(byte, true, false);
        break;
      case CMD_WRITE_AUX:
        this.respond(NO_DEVICE_REPLY, true, true);
        break;
      default:
        // A byte for the keyboard, which is absent.
        this.respond(NO_DEVICE_REPLY, false, true);
    }
  }

  /** Puts a byte in the output buffer (replacing an unread one) and raises that channel's interrupt if enabled. */
  private respond(byte: u8, fromAux: bool, timeout: bool): void {
    this.output = byte;
    this.outputFull = true;
    this.outputFromAux = fromAux;
    this.outputTimeout = timeout;
    this.updateIrqs();
  }

  private setCtr(ctr: u8): void {
    this.ctr = ctr;
    this.updateIrqs();
  }

  updateIrqs(): void {
    const full = this.outputFull;
    this.kbdIrq.set(full && !this.outputFromAux && (this.ctr & CTR_KBDINT) != 0);
    this.auxIrq.set(full && this.outputFromAux && (this.ctr & CTR_AUXINT) != 0);
  }
}
