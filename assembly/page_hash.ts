// A fast 64-bit hash of 4 KiB guest pages, for finding pages that are all
// zero or probably equal (snapshots, templates). NOT cryptographic: a hostile
// guest can make two different pages hash alike, so equal hashes must be
// confirmed by comparing the bytes before a page is shared or skipped.
//
// The hash, per page of 512 little-endian u64 words w[0..511]: eight lanes
// a[0..7], lane j takes words j, j + 8, j + 16, ... as
//   a[j] = rotl(a[j] + (w ^ (w >> 29)) * M1, 31)
// (independent lanes, so the multiplies overlap; the shift lets high input
// bits reach low product bits), then the lanes are folded and the result is
// avalanched. test/unit/page-hash.test.ts has a BigInt reference.

import { inGuestRam } from './virtio/guest_memory';

export const PAGE_BYTES: u32 = 4096;
const LANES = 8;
const M1: u64 = 0x8f34b195e5b0d363;
const M2: u64 = 0x8a416b126c2638cf;
const M3: u64 = 0x84e65efc43d36583;

/** What hashPages returns when a range is refused (no valid count comes near it: guest RAM is at most 3 GiB). */
export const HASH_PAGES_REFUSED: u32 = 0xffffffff;

/** The most pages one call hashes: all of the largest guest RAM (3 GiB), so the buffer is at most 6 MiB. */
const MAX_PAGES: u32 = 3 << 18;

/** Where hashPages writes: a module-owned buffer, so the hashes never land in guest RAM. */
let hashes = new Uint64Array(0);

/** A buffer for `pages` hashes (u64 each) for hashPages' `out`, valid until the next call; 0 if `pages` exceeds 3 GiB of pages. */
export function pageHashBuffer(pages: u32): usize {
  if (pages > MAX_PAGES) return 0;
  if (<u32>hashes.length < pages) hashes = new Uint64Array(pages);
  return hashes.dataStart;
}

@inline function mix(lane: u64, word: u64): u64 {
  return rotl<u64>(lane + (word ^ (word >> 29)) * M1, 31);
}

/** Stores the hash of the page at `page` at `out`; returns whether every word of the page is zero. */
@inline function hashPage(page: usize, out: usize): bool {
  let a0: u64 = M2, a1: u64 = M2 * 2, a2: u64 = M2 * 3, a3: u64 = M2 * 4;
  let a4: u64 = M2 * 5, a5: u64 = M2 * 6, a6: u64 = M2 * 7, a7: u64 = M2 * 8;
  let any: u64 = 0;
  for (let p = page, end = page + PAGE_BYTES; p < end; p += LANES * 8) {
    const w0 = load<u64>(p, 0), w1 = load<u64>(p, 8), w2 = load<u64>(p, 16), w3 = load<u64>(p, 24);
    const w4 = load<u64>(p, 32), w5 = load<u64>(p, 40), w6 = load<u64>(p, 48), w7 = load<u64>(p, 56);
    a0 = mix(a0, w0); a1 = mix(a1, w1); a2 = mix(a2, w2); a3 = mix(a3, w3);
    a4 = mix(a4, w4); a5 = mix(a5, w5); a6 = mix(a6, w6); a7 = mix(a7, w7);
    any |= w0 | w1 | w2 | w3 | w4 | w5 | w6 | w7;
  }
  let h: u64 = 0;
  h = rotl<u64>(h ^ a0, 27) * M3; h = rotl<u64>(h ^ a1, 27) * M3; h = rotl<u64>(h ^ a2, 27) * M3;
  h = rotl<u64>(h ^ a3, 27) * M3; h = rotl<u64>(h ^ a4, 27) * M3; h = rotl<u64>(h ^ a5, 27) * M3;
  h = rotl<u64>(h ^ a6, 27) * M3; h = rotl<u64>(h ^ a7, 27) * M3;
  h ^= h >> 32; h *= M1; h ^= h >> 29; h *= M2; h ^= h >> 32;
  store<u64>(out, h);
  return any == 0;
}

/**
 * Hashes `pages` 4 KiB pages of guest RAM from `addr` (any alignment) and
 * writes one u64 per page at `out`, which must lie in the buffer
 * pageHashBuffer handed out. Returns how many pages are all zero, or
 * HASH_PAGES_REFUSED (writing nothing) when [addr, addr + pages * 4 KiB) is not
 * inside guest RAM or `out` is not inside that buffer.
 */
export function hashPages(addr: usize, pages: u32, out: usize): u32 {
  const buffer = hashes.dataStart;
  const outBytes = <u64>pages * 8;
  if (!inGuestRam(<u64>addr, <u64>pages * PAGE_BYTES)) return HASH_PAGES_REFUSED;
  if (out < buffer || <u64>(out - buffer) + outBytes > <u64>hashes.byteLength) return HASH_PAGES_REFUSED;
  let zero: u32 = 0;
  for (let i: u32 = 0; i < pages; i++) {
    if (hashPage(addr + (<usize>i) * PAGE_BYTES, out + (<usize>i << 3))) zero++;
  }
  return zero;
}
