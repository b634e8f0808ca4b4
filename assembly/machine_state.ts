// Saving and restoring the state of every device in machine.ts, one section
// per device (blob framing in snapshot.ts). A restore is all or nothing: the
// blob is first loaded into scratch devices, which validates every section,
// and only then into the live devices.

import { I8042, I8042_STATE_TAG, I8042_STATE_VERSION } from './devices/i8042';
import { Rtc, RTC_STATE_TAG, RTC_STATE_VERSION } from './devices/rtc';
import { Serial, SERIAL_STATE_TAG, SERIAL_STATE_VERSION } from './devices/serial';
import { com1, i8042, rtc } from './machine';
import { RestoreStatus, STATE_FORMAT_VERSION, STATE_MAGIC, StateReader, StateWriter } from './snapshot';

const SECTION_COUNT: u16 = 3;
const SERIAL_SEEN: u32 = 1;
const I8042_SEEN: u32 = 2;
const RTC_SEEN: u32 = 4;
const ALL_SEEN: u32 = SERIAL_SEEN | I8042_SEEN | RTC_SEEN;

/** Tag of the section a refused restore stopped at, 0 if the failure was not in a section. */
export let restoreErrorTag: u32 = 0;

export function saveMachineState(): Uint8Array {
  const w = new StateWriter();
  w.header(SECTION_COUNT);
  let start = w.beginSection(SERIAL_STATE_TAG, SERIAL_STATE_VERSION);
  com1.save(w);
  w.endSection(start);
  start = w.beginSection(I8042_STATE_TAG, I8042_STATE_VERSION);
  i8042.save(w);
  w.endSection(start);
  start = w.beginSection(RTC_STATE_TAG, RTC_STATE_VERSION);
  rtc.save(w);
  w.endSection(start);
  return w.bytes();
}

/**
 * Restores every device from `blob`, or changes nothing and says why not.
 * Interrupt lines are then driven to the levels the restored state implies
 * (the host hears about lines that change).
 */
export function restoreMachineState(blob: Uint8Array): RestoreStatus {
  restoreErrorTag = 0;
  const scratchSerial = new Serial(com1.irq.gsi);
  const scratchI8042 = new I8042(i8042.kbdIrq.gsi, i8042.auxIrq.gsi);
  const checked = loadSections(blob, scratchSerial, scratchI8042, new Rtc());
  if (checked != RestoreStatus.OK) return checked;
  // Same bytes, same checks: this cannot fail now.
  const loaded = loadSections(blob, com1, i8042, rtc);
  assert(loaded == RestoreStatus.OK);
  com1.updateIrq();
  i8042.updateIrqs();
  return RestoreStatus.OK;
}

function loadSections(blob: Uint8Array, serial: Serial, kbc: I8042, clock: Rtc): RestoreStatus {
  const r = StateReader.of(blob);
  const magic = r.u32();
  const format = r.u16();
  const count = r.u16();
  if (!r.ok) return RestoreStatus.TRUNCATED;
  if (magic != STATE_MAGIC) return RestoreStatus.BAD_MAGIC;
  if (format != STATE_FORMAT_VERSION) return RestoreStatus.BAD_FORMAT_VERSION;
  let seen: u32 = 0;
  for (let i: u32 = 0; i < count; i++) {
    const tag = r.u32();
    restoreErrorTag = tag;
    const version = r.u16();
    const payload = r.slice(r.u32());
    if (payload === null) return RestoreStatus.TRUNCATED;
    let bit: u32 = 0;
    let expectedVersion: u16 = 0;
    if (tag == SERIAL_STATE_TAG) {
      bit = SERIAL_SEEN;
      expectedVersion = SERIAL_STATE_VERSION;
    } else if (tag == I8042_STATE_TAG) {
      bit = I8042_SEEN;
      expectedVersion = I8042_STATE_VERSION;
    } else if (tag == RTC_STATE_TAG) {
      bit = RTC_SEEN;
      expectedVersion = RTC_STATE_VERSION;
    } else {
      return RestoreStatus.UNKNOWN_SECTION;
    }
    if (seen & bit) return RestoreStatus.DUPLICATE_SECTION;
    seen |= bit;
    if (version != expectedVersion) return RestoreStatus.BAD_SECTION_VERSION;
    const ok =
      bit == SERIAL_SEEN ? serial.restore(payload) : bit == I8042_SEEN ? kbc.restore(payload) : clock.restore(payload);
    // A payload must be exactly as long as its device's fields.
    if (!ok || !payload.atEnd()) return RestoreStatus.BAD_SECTION;
  }
  restoreErrorTag = 0;
  if (seen != ALL_SEEN) return RestoreStatus.MISSING_SECTION;
  if (!r.atEnd()) return RestoreStatus.TRAILING_BYTES;
  return RestoreStatus.OK;
}
