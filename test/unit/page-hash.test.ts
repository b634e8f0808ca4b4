import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HASH_PAGES_REFUSED, loadPageHash, type PageHashModule } from './page-hash-module.js';

const PAGE = 4096;
const RAM = 1 << 20;
const M1 = 0x8f34b195e5b0d363n, M2 = 0x8a416b126c2638cfn, M3 = 0x84e65efc43d36583n;
const MASK = (1n << 64n) - 1n;
const rotl = (x: bigint, r: bigint) => ((x << r) | (x >> (64n - r))) & MASK;

/** The hash as assembly/page_hash.ts defines it, one word at a time. */
function referenceHash(page: Uint8Array): bigint {
  const words = new DataView(page.buffer, page.byteOffset, PAGE);
  const lanes = Array.from({ length: 8 }, (_, j) => (M2 * BigInt(j + 1)) & MASK);
  for (let i = 0; i < PAGE / 8; i++) {
    const w = words.getBigUint64(8 * i, true);
    lanes[i % 8] = rotl((lanes[i % 8]! + (((w ^ (w >> 29n)) * M1) & MASK)) & MASK, 31n);
  }
  let h = 0n;
  for (const a of lanes) h = (rotl(h ^ a, 27n) * M3) & MASK;
  h ^= h >> 32n; h = (h * M1) & MASK; h ^= h >> 29n; h = (h * M2) & MASK; h ^= h >> 32n;
  return h;
}

let m: PageHashModule;
const ram = () => new Uint8Array(m.memory.buffer, 0, RAM);
const hashesAt = (out: number, pages: number) => [...new BigUint64Array(m.memory.buffer, out, pages)];

test.before(async () => {
  m = await loadPageHash();
  m.setGuestRamBytes(RAM);
});

test.before.each(() => {
  ram().fill(0);
});

test('matches the reference, counts zero pages, works at any alignment', () => {
  const r = ram();
  for (let i = 0; i < 3 * PAGE; i++) r[PAGE + i] = (i * 131 + 7) & 0xff; // pages 1-3 non-zero, 0 and 4 zero
  r[5 * PAGE - 1] = 0; // page 4 stays zero
  const out = m.buffer(5);
  assert.is(m.hashPages(0, 5, out), 2);
  assert.equal(hashesAt(out, 5), [0, 1, 2, 3, 4].map((p) => referenceHash(r.subarray(p * PAGE, (p + 1) * PAGE))));
  assert.is(m.hashPages(PAGE + 3, 2, out), 0, 'unaligned pages');
  assert.equal(hashesAt(out, 2), [1, 2].map((p) => referenceHash(r.slice(p * PAGE + 3, (p + 1) * PAGE + 3))));
});

test('every single-bit change of a page changes its hash', () => {
  const r = ram();
  const out = m.buffer(1);
  m.hashPages(0, 1, out);
  const zero = hashesAt(out, 1)[0];
  const seen = new Set<bigint>([zero!]);
  for (const bit of [0, 1, 63, 64, 4095 * 8, 4096 * 8 - 1, 1234 * 8 + 5]) {
    r[bit >> 3] = 1 << (bit & 7);
    assert.is(m.hashPages(0, 1, out), 0);
    const h = hashesAt(out, 1)[0]!;
    assert.not.ok(seen.has(h), `bit ${bit}`);
    seen.add(h);
    r[bit >> 3] = 0;
  }
  // Swapping two words of the same lane moves them to other rotations: a different hash.
  r[0] = 1; r[64] = 2;
  m.hashPages(0, 1, out);
  const before = hashesAt(out, 1)[0];
  r[0] = 2; r[64] = 1;
  m.hashPages(0, 1, out);
  assert.is.not(hashesAt(out, 1)[0], before);
});

test('refuses ranges outside guest RAM and outputs outside its buffer, writing nothing', () => {
  const out = m.buffer(4);
  new BigUint64Array(m.memory.buffer, out, 4).fill(7n);
  assert.is(m.hashPages(RAM - PAGE, 2, out), HASH_PAGES_REFUSED, 'past the end of guest RAM');
  assert.is(m.hashPages(RAM + PAGE, 1, out), HASH_PAGES_REFUSED, 'after guest RAM');
  assert.is(m.hashPages(0xffff_f000, 1, out), HASH_PAGES_REFUSED, 'the top of the 32-bit space');
  assert.is(m.hashPages(0, 0xffff_ffff, out), HASH_PAGES_REFUSED, 'a page count that overflows 32 bits');
  assert.is(m.hashPages(0, 1, PAGE), HASH_PAGES_REFUSED, 'output into guest RAM');
  assert.is(m.hashPages(0, RAM / PAGE, out), HASH_PAGES_REFUSED, 'more hashes than the buffer holds (it grows to at most 5)');
  assert.is(m.hashPages(0, 1, out - 8), HASH_PAGES_REFUSED, 'output before the buffer');
  assert.equal(hashesAt(out, 4), [7n, 7n, 7n, 7n]);
  assert.is(m.hashPages(RAM - PAGE, 1, out + 24), 1, 'the last page of guest RAM into the last slot');
  assert.is(m.hashPages(RAM, 0, out), 0, 'no pages');
  assert.is.not(m.buffer(3 << 18), 0, 'hashes for all of 3 GiB fit');
  assert.is(m.buffer((3 << 18) + 1), 0, 'more pages than 3 GiB of guest RAM');
});

test.run();
