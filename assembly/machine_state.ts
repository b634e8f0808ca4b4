// Saving and restoring the state of every device in machine.ts and of every
// virtio device, one section per device (blob framing in snapshot.ts). A
// restore is all or nothing: the blob is first loaded into scratch legacy
// devices and into the live virtio devices (which may hold host resources
// such as open disks, so they are not duplicated: a copy of their state is
// put back if anything fails), which validates every section, and only then
// into the live devices.

import { I8042, I8042_STATE_TAG, I8042_STATE_VERSION } from './devices/i8042';
import { Rtc, RTC_STATE_TAG, RTC_STATE_VERSION } from './devices/rtc';
import { Serial, SERIAL_STATE_TAG, SERIAL_STATE_VERSION } from './devices/serial';
import { com1, i8042, rtc } from './machine';
import { RestoreStatus, sectionTag, STATE_FORMAT_VERSION, STATE_MAGIC, StateReader, StateWriter } from './snapshot';
import { virtioDevices } from './virtio/devices';

const LEGACY_SECTION_COUNT: u16 = 3;
const SERIAL_SEEN: u32 = 1;
const I8042_SEEN: u32 = 2;
const RTC_SEEN: u32 = 4;
const ALL_SEEN: u32 = SERIAL_SEEN | I8042_SEEN | RTC_SEEN;

/** Tag of the section a refused restore stopped at, 0 if the failure was not in a section. */
export let restoreErrorTag: u32 = 0;

/** Virtio device `index` saves as section "VIO" + ('0' + index); the restoring VM must have the same devices in the same order. */
const VIRTIO_TAG_PREFIX: u32 = sectionTag(0x56, 0x49, 0x4f, 0); // "VIO"
const VIRTIO_TAG_INDEX_BASE: u32 = 0x30; // '0'
const VIRTIO_STATE_VERSION: u16 = 1;

function virtioTag(index: i32): u32 {
  return VIRTIO_TAG_PREFIX | ((VIRTIO_TAG_INDEX_BASE + <u32>index) << 24);
}

/** The virtio device a section tag names, or -1. */
function virtioIndex(tag: u32): i32 {
  if ((tag & 0x00ff_ffff) != VIRTIO_TAG_PREFIX) return -1;
  const index = <i32>(tag >>> 24) - <i32>VIRTIO_TAG_INDEX_BASE;
  return index >= 0 && index < virtioDevices.length ? index : -1;
}

function saveVirtio(w: StateWriter, index: i32): void {
  const start = w.beginSection(virtioTag(index), VIRTIO_STATE_VERSION);
  virtioDevices[index].save(w);
  w.endSection(start);
}

export function saveMachineState(): Uint8Array {
  const w = new StateWriter();
  w.header(LEGACY_SECTION_COUNT + <u16>virtioDevices.length);
  let start = w.beginSection(SERIAL_STATE_TAG, SERIAL_STATE_VERSION);
  com1.save(w);
  w.endSection(start);
  start = w.beginSection(I8042_STATE_TAG, I8042_STATE_VERSION);
  i8042.save(w);
  w.endSection(start);
  start = w.beginSection(RTC_STATE_TAG, RTC_STATE_VERSION);
  rtc.save(w);
  w.endSection(start);
  for (let i = 0; i < virtioDevices.length; i++) saveVirtio(w, i);
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
  const virtioBackup = new StateWriter();
  for (let i = 0; i < virtioDevices.length; i++) saveVirtio(virtioBackup, i);
  const checked = loadSections(blob, scratchSerial, scratchI8042, new Rtc());
  if (checked != RestoreStatus.OK) {
    // Our own sections, just written: this cannot fail.
    const undone = loadVirtioSections(StateReader.of(virtioBackup.bytes()), virtioDevices.length);
    assert(undone);
    return checked;
  }
  // Same bytes, same checks: this cannot fail now.
  const loaded = loadSections(blob, com1, i8042, rtc);
  assert(loaded == RestoreStatus.OK);
  com1.updateIrq();
  i8042.updateIrqs();
  return RestoreStatus.OK;
}

/** Loads `count` consecutive virtio sections (a backup saveVirtio wrote) back into the live devices. */
function loadVirtioSections(r: StateReader, count: i32): bool {
  for (let i = 0; i < count; i++) {
    r.u32(); // tag: sections are in device order
    const version = r.u16();
    const payload = r.slice(r.u32());
    if (payload === null || loadVirtioSection(i, version, payload, 0) != RestoreStatus.OK) return false;
  }
  return r.atEnd();
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
  let virtioSeen: u64 = 0;
  for (let i: u32 = 0; i < count; i++) {
    const tag = r.u32();
    restoreErrorTag = tag;
    const version = r.u16();
    const payload = r.slice(r.u32());
    if (payload === null) return RestoreStatus.TRUNCATED;
    const virtio = virtioIndex(tag);
    if (virtio >= 0) {
      const status = loadVirtioSection(virtio, version, payload, virtioSeen);
      if (status != RestoreStatus.OK) return status;
      virtioSeen |= <u64>1 << <u64>virtio;
      continue;
    }
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
  if (seen != ALL_SEEN || virtioSeen != allVirtioSeen()) return RestoreStatus.MISSING_SECTION;
  if (!r.atEnd()) return RestoreStatus.TRAILING_BYTES;
  return RestoreStatus.OK;
}

/** Restores live virtio device `index` from its section payload. */
function loadVirtioSection(index: i32, version: u16, payload: StateReader, seen: u64): RestoreStatus {
  if (seen & (<u64>1 << <u64>index)) return RestoreStatus.DUPLICATE_SECTION;
  if (version != VIRTIO_STATE_VERSION) return RestoreStatus.BAD_SECTION_VERSION;
  if (!virtioDevices[index].restore(payload) || !payload.atEnd()) return RestoreStatus.BAD_SECTION;
  return RestoreStatus.OK;
}

function allVirtioSeen(): u64 {
  const n = virtioDevices.length;
  return n >= 64 ? u64.MAX_VALUE : (<u64>1 << <u64>n) - 1;
}
