// The module's interface to the VMM (host/wasm/devices.ts): every port-I/O
// and MMIO exit of a vCPU is forwarded here, and console input goes in
// through serialReceive. Sizes are in bytes; values are zero-extended.

import { com1, mmio, pio } from './machine';

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
