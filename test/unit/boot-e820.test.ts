import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { E820_RAM, E820_RESERVED, e820Map } from '../../host/boot/e820.js';
import { BootError } from '../../host/boot/errors.js';
import { GiB, MiB, ramRegions } from '../../host/boot/layout.js';

const legacy = [
  { addr: 0, size: 0x9fc00, type: E820_RAM },
  { addr: 0x9fc00, size: 0x400, type: E820_RESERVED },
  { addr: 0xa0000, size: 0x60000, type: E820_RESERVED },
];

for (const mib of [64, 256]) {
  test(`e820: ${mib} MiB is base memory plus RAM from 1 MiB`, () => {
    assert.equal(e820Map(mib * MiB), [...legacy, { addr: 0x100000, size: mib * MiB - 0x100000, type: E820_RAM }]);
  });
}

test('e820: 3 GiB fills low RAM up to the MMIO gap', () => {
  assert.equal(e820Map(3 * GiB), [...legacy, { addr: 0x100000, size: 0xc000_0000 - 0x100000, type: E820_RAM }]);
});

test('e820: 4 GiB puts the last GiB above 4 GiB, leaving the MMIO gap out', () => {
  assert.equal(e820Map(4 * GiB), [
    ...legacy,
    { addr: 0x100000, size: 0xc000_0000 - 0x100000, type: E820_RAM },
    { addr: 0x1_0000_0000, size: 1 * GiB, type: E820_RAM },
  ]);
});

test('e820: usable RAM adds up to the RAM size minus the legacy holes', () => {
  for (const ram of [64 * MiB, 3 * GiB, 4 * GiB, 24 * GiB]) {
    const usable = e820Map(ram).filter((e) => e.type === E820_RAM).reduce((n, e) => n + e.size, 0);
    assert.is(usable, ram - (0x100000 - 0x9fc00));
    assert.is(ramRegions(ram).reduce((n, r) => n + r.size, 0), ram);
  }
});

test('e820: rejects RAM sizes that are tiny or not page multiples', () => {
  for (const bad of [0, 1 * MiB, 64 * MiB + 1, -4096, Number.NaN]) {
    assert.throws(() => e820Map(bad), (e: unknown) => e instanceof BootError && /guest RAM size/.test(e.message));
  }
});

test.run();
