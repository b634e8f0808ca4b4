// 64-bit fields (guest addresses, feature words) in the virtio snapshot
// sections, as two little-endian u32 halves: snapshot.ts has no u64.

import { StateReader, StateWriter } from '../snapshot';

export function writeU64(w: StateWriter, value: u64): void {
  w.u32(<u32>value);
  w.u32(<u32>(value >> 32));
}

export function readU64(r: StateReader): u64 {
  const low = r.u32();
  return low | (<u64>r.u32() << 32);
}
