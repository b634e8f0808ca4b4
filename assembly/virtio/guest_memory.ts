// Guest RAM as the device models see it: guest-physical address == Wasm
// address for [0, guestRamBytes). The module's own data sits above 3 GiB in
// the same memory, so every guest-supplied range must be checked against
// guestRamBytes, never against memory.size().

/** The largest low RAM the memory layout leaves room for (the module's statics start at 3 GiB). */
export const MAX_GUEST_RAM_BYTES: u64 = 3 << 30;

/** Size of guest low RAM; 0 (no guest address valid) until the host calls setGuestRamBytes. */
export let guestRamBytes: u64 = 0;

/** Sets the guest RAM size (the export the host calls once, before adding devices), capped at MAX_GUEST_RAM_BYTES so a guest range can never reach the module's data. */
export function setGuestRamBytes(bytes: u64): void {
  guestRamBytes = bytes < MAX_GUEST_RAM_BYTES ? bytes : MAX_GUEST_RAM_BYTES;
}

/** True iff [gpa, gpa + len) lies inside guest RAM (computed without overflow). */
export function inGuestRam(gpa: u64, len: u64): bool {
  return gpa <= guestRamBytes && len <= guestRamBytes - gpa;
}
