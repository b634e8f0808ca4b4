// MC146818 real-time clock and CMOS memory at ports 0x70 (index) and 0x71
// (data). The clock follows the host's wall clock plus an offset the guest
// changes by writing the time registers; the registers are refreshed from it
// on every read unless the guest froze them with status B's SET bit. Defaults
// are QEMU's: BCD, 24-hour mode, 32.768 kHz time base. No interrupt sources
// are modelled (no IRQ 8: periodic, alarm and update-ended flags stay clear).

import { BusDevice } from '../bus';
import { CivilDate, civilFromDays, daysFromCivil, daysInMonth, floorDiv } from '../calendar';
import { wallClockSeconds } from '../env';
import { sectionTag, StateReader, StateWriter } from '../snapshot';

const INDEX: u32 = 0;
const DATA: u32 = 1;
export const RTC_WINDOW_SIZE: u32 = 2;

export const RTC_STATE_TAG: u32 = sectionTag(0x52, 0x54, 0x43, 0x20); // "RTC "
export const RTC_STATE_VERSION: u16 = 1;

const INDEX_NMI_DISABLE: u8 = 0x80;
const INDEX_MASK: u8 = 0x7f;
const CMOS_SIZE: i32 = 128;

const REG_SECONDS: u8 = 0x00;
const REG_MINUTES: u8 = 0x02;
const REG_HOURS: u8 = 0x04;
const REG_WEEKDAY: u8 = 0x06;
const REG_DAY: u8 = 0x07;
const REG_MONTH: u8 = 0x08;
const REG_YEAR: u8 = 0x09;
const REG_A: u8 = 0x0a;
const REG_B: u8 = 0x0b;
const REG_C: u8 = 0x0c;
const REG_D: u8 = 0x0d;
/** Where PC firmware (and QEMU) keep the century. */
const REG_CENTURY: u8 = 0x32;

const A_UIP: u8 = 0x80;
const A_DEFAULT: u8 = 0x26; // 32.768 kHz divider, 1024 Hz periodic rate
const B_SET: u8 = 0x80;
const B_UIE: u8 = 0x10;
const B_BINARY: u8 = 0x04;
const B_24H: u8 = 0x02;
const D_VALID: u8 = 0x80; // battery good, RAM and time valid
const HOUR_PM: u8 = 0x80;

/** UIP rises this long before each once-a-second update (it never stays set). */
const UIP_LEAD_SECONDS: f64 = 244e-6;
const SECONDS_PER_DAY: i64 = 86400;
/** The registers hold years 0000-9999 (century and year registers). */
const MIN_SECONDS: f64 = <f64>(daysFromCivil(0, 1, 1) * SECONDS_PER_DAY);
const MAX_SECONDS: f64 = <f64>(daysFromCivil(10000, 1, 1) * SECONDS_PER_DAY - 1);
/** Largest guest-minus-host offset a restored RTC accepts: the span of times the registers can hold. */
const MAX_OFFSET_SECONDS: f64 = MAX_SECONDS - MIN_SECONDS;

function isClockRegister(reg: u8): bool {
  return (
    reg == REG_SECONDS || reg == REG_MINUTES || reg == REG_HOURS || reg == REG_WEEKDAY ||
    reg == REG_DAY || reg == REG_MONTH || reg == REG_YEAR || reg == REG_CENTURY
  );
}

/** Host time, or 0 if the host handed over something that is not a time. */
function hostSeconds(): f64 {
  const t = wallClockSeconds();
  return isFinite(t) ? t : 0;
}

export class Rtc extends BusDevice {
  index: u8 = 0;
  /** Bit 7 of the index port; kept for the guest, NMIs are not gated here. */
  nmiDisabled: bool = false;
  /** CMOS memory; entries 0x00-0x09 and 0x32 hold the last latched time. */
  cmos: StaticArray<u8> = new StaticArray<u8>(CMOS_SIZE);
  /** Guest clock minus host clock, in seconds. */
  offsetSeconds: f64 = 0;
  private date: CivilDate = new CivilDate();

  constructor() {
    super();
    this.cmos[REG_A] = A_DEFAULT;
    this.cmos[REG_B] = B_24H;
  }

  /**
   * Payload (version 1): index, nmiDisabled, offsetSeconds f64, the 128 CMOS
   * bytes. The clock is saved as the guest's offset from host time, not as a
   * time: a restored guest's clock keeps running with the host's (a clone
   * restored days later reads the current time plus the offset its guest
   * set), as a battery-backed RTC keeps time while the machine is off.
   */
  save(w: StateWriter): void {
    w.u8(this.index);
    w.bool(this.nmiDisabled);
    w.f64(this.offsetSeconds);
    for (let i = 0; i < CMOS_SIZE; i++) w.u8(unchecked(this.cmos[i]));
  }

  /**
   * Loads a version-1 payload, accepting only states the RTC can reach. On
   * false this instance is half-loaded (the machine restores into scratch
   * instances first).
   */
  restore(r: StateReader): bool {
    this.index = r.u8();
    r.check((this.index & ~INDEX_MASK) == 0);
    this.nmiDisabled = r.bool();
    this.offsetSeconds = r.f64();
    r.check(isFinite(this.offsetSeconds) && Math.abs(this.offsetSeconds) <= MAX_OFFSET_SECONDS);
    for (let i = 0; i < CMOS_SIZE; i++) unchecked((this.cmos[i] = r.u8()));
    const b = this.reg(REG_B);
    // UIP is computed on read, SET masks UIE, and C and D are read-only (never stored).
    r.check((this.reg(REG_A) & A_UIP) == 0);
    r.check((b & B_SET) == 0 || (b & B_UIE) == 0);
    r.check(this.reg(REG_C) == 0 && this.reg(REG_D) == 0);
    return r.ok;
  }

  read(offset: u32, size: u32): u64 {
    if (size != 1) return u64.MAX_VALUE;
    // The index port is write-only and reads as an undriven bus.
    if (offset == DATA) return this.readRegister(this.index);
    return u64.MAX_VALUE;
  }

  write(offset: u32, size: u32, value: u64): void {
    if (size != 1) return;
    const byte = <u8>value;
    if (offset == INDEX) {
      this.index = byte & INDEX_MASK;
      this.nmiDisabled = (byte & INDEX_NMI_DISABLE) != 0;
    } else if (offset == DATA) {
      this.writeRegister(this.index, byte);
    }
  }

  private readRegister(reg: u8): u8 {
    switch (reg) {
      case REG_A:
        return this.reg(REG_A) | (this.updateInProgress() ? A_UIP : 0);
      case REG_C:
        return 0;
      case REG_D:
        return D_VALID;
    }
    if (isClockRegister(reg) && !this.frozen()) this.latchTime();
    return this.reg(reg);
  }

  private writeRegister(reg: u8, byte: u8): void {
    switch (reg) {
      case REG_A:
        this.setReg(REG_A, byte & ~A_UIP);
        return;
      case REG_B:
        this.writeStatusB(byte);
        return;
      case REG_C:
      case REG_D:
        return; // read-only
    }
    if (isClockRegister(reg) && !this.frozen()) {
      // Setting one field of a running clock: the others keep their current values.
      this.latchTime();
      this.setReg(reg, byte);
      this.commitTime();
    } else {
      this.setReg(reg, byte);
    }
  }

  private writeStatusB(byte: u8): void {
    const wasFrozen = this.frozen();
    if (byte & B_SET) {
      // SET stops the clock at its current time and disables update interrupts.
      if (!wasFrozen) this.latchTime();
      byte &= ~B_UIE;
    }
    this.setReg(REG_B, byte);
    if (wasFrozen && !(byte & B_SET)) this.commitTime();
  }

  private frozen(): bool {
    return (this.reg(REG_B) & B_SET) != 0;
  }

  private now(): f64 {
    const t = hostSeconds() + this.offsetSeconds;
    return t < MIN_SECONDS ? MIN_SECONDS : t > MAX_SECONDS ? MAX_SECONDS : t;
  }

  private updateInProgress(): bool {
    if (this.frozen()) return false;
    const t = this.now();
    return t - Math.floor(t) >= 1 - UIP_LEAD_SECONDS;
  }

  /** Writes the current guest time into the clock registers, in the data mode status B selects. */
  private latchTime(): void {
    const t = <i64>Math.floor(this.now());
    const days = floorDiv(t, SECONDS_PER_DAY);
    const secondOfDay = <i32>(t - days * SECONDS_PER_DAY);
    const date = this.date;
    civilFromDays(days, date);
    this.setReg(REG_SECONDS, this.encode(secondOfDay % 60));
    this.setReg(REG_MINUTES, this.encode((secondOfDay / 60) % 60));
    this.setReg(REG_HOURS, this.encodeHour(secondOfDay / 3600));
    this.setReg(REG_WEEKDAY, this.encode(date.weekday + 1)); // Sunday = 1
    this.setReg(REG_DAY, this.encode(date.day));
    this.setReg(REG_MONTH, this.encode(date.month));
    this.setReg(REG_YEAR, this.encode(<i32>(date.year % 100)));
    this.setReg(REG_CENTURY, this.encode(<i32>(date.year / 100)));
  }

  /** Makes the time in the registers the guest's clock; an invalid date is ignored. The weekday register is not used. */
  private commitTime(): void {
    const second = this.decode(this.reg(REG_SECONDS), 59);
    const minute = this.decode(this.reg(REG_MINUTES), 59);
    const hour = this.decodeHour(this.reg(REG_HOURS));
    const day = this.decode(this.reg(REG_DAY), 31);
    const month = this.decode(this.reg(REG_MONTH), 12);
    const year = this.decode(this.reg(REG_YEAR), 99);
    const century = this.decode(this.reg(REG_CENTURY), 99);
    if (second < 0 || minute < 0 || hour < 0 || day < 1 || month < 1 || year < 0 || century < 0) return;
    const fullYear: i64 = century * 100 + year;
    if (day > daysInMonth(fullYear, month)) return;
    const t = daysFromCivil(fullYear, month, day) * SECONDS_PER_DAY + hour * 3600 + minute * 60 + second;
    this.offsetSeconds = <f64>t - hostSeconds();
  }

  private encode(value: i32): u8 {
    if (this.reg(REG_B) & B_BINARY) return <u8>value;
    return <u8>(((value / 10) << 4) | (value % 10));
  }

  private encodeHour(hour: i32): u8 {
    if (this.reg(REG_B) & B_24H) return this.encode(hour);
    const hour12 = hour % 12 == 0 ? 12 : hour % 12;
    return this.encode(hour12) | (hour >= 12 ? HOUR_PM : 0);
  }

  /** The register's value, or -1 if it is not a valid number up to `max` in the current data mode. */
  private decode(byte: u8, max: i32): i32 {
    let value: i32 = byte;
    if (!(this.reg(REG_B) & B_BINARY)) {
      const tens = byte >> 4;
      const ones = byte & 0x0f;
      if (tens > 9 || ones > 9) return -1;
      value = tens * 10 + ones;
    }
    return value <= max ? value : -1;
  }

  private decodeHour(byte: u8): i32 {
    if (this.reg(REG_B) & B_24H) return this.decode(byte, 23);
    const hour12 = this.decode(byte & ~HOUR_PM, 12);
    if (hour12 < 1) return -1;
    return (hour12 % 12) + (byte & HOUR_PM ? 12 : 0);
  }

  /** `reg` is below 0x80: the index port masks bit 7 off. */
  private reg(reg: u8): u8 {
    return unchecked(this.cmos[reg & INDEX_MASK]);
  }

  private setReg(reg: u8, value: u8): void {
    unchecked((this.cmos[reg & INDEX_MASK] = value));
  }
}
