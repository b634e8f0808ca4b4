import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BootError } from '../../host/boot/errors.js';
import { MiB } from '../../host/boot/layout.js';
import { mpTableSize, writeMpTable } from '../../host/boot/mptable.js';

function sum(bytes: Uint8Array): number {
  return bytes.reduce((n, b) => n + b, 0) & 0xff;
}

const ascii = (bytes: Uint8Array): string => String.fromCharCode(...bytes);

/** Finds the floating pointer the way Linux does (16-byte steps over 0xf0000-0xfffff) and parses the table. */
function parse(mem: Uint8Array) {
  const view = new DataView(mem.buffer);
  let mpf = -1;
  for (let at = 0xf0000; at < 0x100000; at += 16) {
    if (ascii(mem.subarray(at, at + 4)) === '_MP_') { mpf = at; break; }
  }
  assert.ok(mpf >= 0, 'floating pointer found in the BIOS area');
  assert.is(sum(mem.subarray(mpf, mpf + 16)), 0, 'floating pointer checksum');
  assert.is(mem[mpf + 8], 1);
  assert.is(mem[mpf + 9], 4);
  assert.is(mem[mpf + 11], 0, 'feature1: table present');
  const table = view.getUint32(mpf + 4, true);
  assert.is(ascii(mem.subarray(table, table + 4)), 'PCMP');
  const length = view.getUint16(table + 4, true);
  assert.is(sum(mem.subarray(table, table + length)), 0, 'table checksum');
  assert.is(mem[table + 6], 4);
  assert.is(view.getUint32(table + 36, true), 0xfee0_0000);
  const count = view.getUint16(table + 34, true);
  const entries: { type: number; at: number }[] = [];
  let at = table + 44;
  for (let i = 0; i < count; i++) {
    const type = mem[at]!;
    entries.push({ type, at });
    at += type === 0 ? 20 : 8;
  }
  assert.is(at, table + length, 'entries fill the table exactly');
  return { view, entries, end: at, mpf };
}

for (const vcpus of [1, 2, 8, 254]) {
  test(`mptable: ${vcpus} vCPUs`, () => {
    const mem = new Uint8Array(2 * MiB).fill(0xee);
    writeMpTable(mem, vcpus);
    const { view, entries, end, mpf } = parse(mem);
    assert.is(end - mpf, mpTableSize(vcpus));

    const cpus = entries.filter((e) => e.type === 0);
    assert.equal(cpus.map((c) => mem[c.at + 1]), [...Array(vcpus).keys()], 'APIC ids 0..N-1');
    cpus.forEach((c, i) => assert.is(mem[c.at + 3], i === 0 ? 3 : 1, 'enabled, BSP flag on 0 only'));

    const buses = entries.filter((e) => e.type === 1);
    assert.is(buses.length, 1);
    assert.is(ascii(mem.subarray(buses[0]!.at + 2, buses[0]!.at + 8)), 'ISA   ');

    const ioapics = entries.filter((e) => e.type === 2);
    assert.is(ioapics.length, 1);
    assert.is(mem[ioapics[0]!.at + 1], vcpus, 'IOAPIC id N');
    assert.is(mem[ioapics[0]!.at + 3], 1, 'usable');
    assert.is(view.getUint32(ioapics[0]!.at + 4, true), 0xfec0_0000);

    const irqs = entries.filter((e) => e.type === 3);
    assert.is(irqs.length, 24);
    irqs.forEach((e, pin) => {
      assert.is(mem[e.at + 1], 0, 'INT');
      assert.is(mem[e.at + 4], 0, 'ISA bus');
      assert.is(mem[e.at + 5], pin, 'source IRQ');
      assert.is(mem[e.at + 6], vcpus, 'to the IOAPIC');
      assert.is(mem[e.at + 7], pin, 'same pin (KVM default GSI routing)');
    });

    const lints = entries.filter((e) => e.type === 4).map((e) => [mem[e.at + 1], mem[e.at + 6], mem[e.at + 7]]);
    assert.equal(lints, [[3, 0, 0], [1, 0xff, 1]], 'ExtINT on the BSP LINT0, NMI on every LINT1');
  });
}

test('mptable: rejects vCPU counts outside 1..254', () => {
  for (const bad of [0, 255, 1.5, -1]) {
    assert.throws(() => writeMpTable(new Uint8Array(2 * MiB), bad), (e: unknown) => e instanceof BootError && /vCPU count/.test(e.message));
  }
});

test.run();
