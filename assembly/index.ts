// The module's interface to the VMM (host/wasm/devices.ts): every port-I/O
// and MMIO exit of a vCPU is forwarded here, and console input goes in
// through serialReceive; virtio devices are added and kicked through the
// exports of virtio/; device state is saved and restored for snapshots
// through a blob in the module's heap. Sizes are in bytes; values are
// zero-extended.

import { com1, mmio, pio } from './machine';
import { restoreErrorTag, restoreMachineState, saveMachineState } from './machine_state';
import { MAX_STATE_LENGTH } from './snapshot';

export { setGuestRamBytes } from './virtio/guest_memory';
export { addVirtioRng, virtioFailure, virtioNotify, virtioResumed } from './virtio/devices';
export { addVirtioBlock, ioComplete, ioCompleteEnd, ioInFlight } from './virtio/devices';
export { addVirtioVsock, vsockHostConnect, vsockReady, vsockTransportReset } from './virtio/devices';
export { addVirtioFs, virtioFsTagBuffer } from './virtio/devices';

/** A guest port read of `size` bytes (1, 2 or 4); unclaimed ports and other sizes read all ones. */
export function ioRead(port: u32, size: u32): u32 {
  return <u32>pio.read(port, size);
}

/** A guest port write; ignored for unclaimed ports and invalid sizes. */
export function ioWrite(port: u32, size: u32, value: u32): void {
  pio.write(port, size, value);
}

/** A guest MMIO read of `size` bytes (1, 2, 4 or 8); unclaimed addresses and other sizes read 0. */
export function mmioRead(addr: u64, size: u32): u64 {
  return mmio.read(addr, size);
}

/** A guest MMIO write; ignored for unclaimed addresses and invalid sizes. */
export function mmioWrite(addr: u64, size: u32, value: u64): void {
  mmio.write(addr, size, value);
}

/**
 * Offers one console input byte (low 8 bits of `byte`) to COM1. Returns false
 * when the UART cannot take it now (receive FIFO full, or loopback mode); the
 * host keeps it and retries after the guest's next access to ports 0x3f8-0x3ff,
 * the only thing that can make room.
 */
export function serialReceive(byte: u32): bool {
  return com1.receive(<u8>byte);
}

/**
 * The blob saveState wrote last, or the buffer allocState handed out. Held
 * here so the collector keeps it while the host copies in or out.
 */
let stateBlob = new Uint8Array(0);

/** Serializes every device's state (format: snapshot.ts); returns its address, valid until the next state call. */
export function saveState(): usize {
  stateBlob = saveMachineState();
  return stateBlob.dataStart;
}

/** Length in bytes of the blob saveState returned, or of the buffer allocState handed out. */
export function stateLength(): u32 {
  return stateBlob.length;
}

/** A buffer of `length` bytes for the host to copy a blob into before restoreState; 0 if longer than MAX_STATE_LENGTH. */
export function allocState(length: u32): usize {
  if (length > MAX_STATE_LENGTH) return 0;
  stateBlob = new Uint8Array(length);
  return stateBlob.dataStart;
}

/** Restores every device from the allocState buffer, all or nothing; returns a RestoreStatus (0 = restored). */
export function restoreState(): u32 {
  return restoreMachineState(stateBlob);
}

/** After a refused restore: the tag of the section at fault, or 0 if the fault was outside any section. */
export function restoreErrorSection(): u32 {
  return restoreErrorTag;
}
export { hashPages, pageHashBuffer } from './page_hash';
