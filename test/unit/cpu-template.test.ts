import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { applyTemplate, defaultTemplate, hiddenFeatures } from '../../host/cpu/template.js';
import { vcpuCpuid } from '../../host/cpu/cpuid.js';
import type { CpuidEntry } from '../../host/native.js';

const entry = (fn: number, index: number, regs: Partial<CpuidEntry>): CpuidEntry =>
  ({ function: fn, index, flags: 0, eax: 0, ebx: 0, ecx: 0, edx: 0, ...regs });

const ALL = 0xffffffff;
const hostLeaves = (): CpuidEntry[] => [
  entry(0x0, 0, { eax: 0x10 }),
  entry(0x1, 0, { eax: 0xa10f11, ebx: 0x00020800, ecx: ALL, edx: ALL }),
  entry(0x7, 0, { ebx: ALL, ecx: ALL, edx: ALL }),
  entry(0x7, 1, { eax: ALL }),
  entry(0xb, 0, {}), entry(0xb, 1, {}), entry(0xb, 2, {}),
  entry(0xd, 0, { eax: 7 }), entry(0xd, 1, { eax: 0xf }),
  entry(0x40000000, 0, { eax: 0x40000001, ebx: 0x4b4d564b }),
  entry(0x40000001, 0, { eax: 0x01007aff }),
  entry(0x80000001, 0, { ecx: ALL }),
];

const bitSet = (v: number, b: number) => ((v >>> b) & 1) === 1;
const leaf = (es: CpuidEntry[], fn: number, index = 0) => es.find((e) => e.function === fn && e.index === index)!;

test('host template passes every leaf through unchanged, as copies', () => {
  const src = hostLeaves();
  const out = applyTemplate(src, 'host');
  assert.equal(out, src);
  out[1]!.ecx = 0;
  assert.is(src[1]!.ecx, ALL);
});

test('compatible hides what the PVM emulator rejects', () => {
  const out = applyTemplate(hostLeaves(), 'compatible');
  const l1 = leaf(out, 1);
  for (const b of [26, 27, 13, 23, 22, 28]) assert.not.ok(bitSet(l1.ecx, b), `leaf 1 ecx bit ${b}`);
  const l7 = leaf(out, 7);
  for (const b of [0, 3, 8, 20, 5, 16]) assert.not.ok(bitSet(l7.ebx, b), `leaf 7 ebx bit ${b}`);
  for (const b of [2, 22]) assert.not.ok(bitSet(l7.ecx, b), `leaf 7 ecx bit ${b}`);
  assert.not.ok(bitSet(leaf(out, 0x80000001).ecx, 5), 'abm');
  assert.not.ok(bitSet(l7.ebx, 9) || bitSet(l7.edx, 4), 'erms, fsrm');
  const kvm = leaf(out, 0x40000001).eax;
  for (const b of [7, 11, 13, 16]) assert.not.ok(bitSet(kvm, b), `KVM feature bit ${b} makes hypercalls`);
  assert.ok(bitSet(kvm, 0) && bitSet(kvm, 3) && bitSet(kvm, 24), 'kvmclock and its stable bit kept');
  // Untouched features survive: sse (edx 25), pae (edx 6), smep (leaf 7 ebx 7).
  assert.ok(bitSet(l1.edx, 25) && bitSet(l1.edx, 6) && bitSet(l7.ebx, 7));
  assert.ok(bitSet(l1.ecx, 0), 'sse3 kept');
});

test('compatible drops the XSAVE state leaf and hides AVX-512 bf16 in subleaf 1', () => {
  const out = applyTemplate(hostLeaves(), 'compatible');
  assert.not.ok(out.some((e) => e.function === 0xd));
  assert.not.ok(bitSet(leaf(out, 7, 1).eax, 5));
  assert.ok(hiddenFeatures('compatible').includes('xsave'));
  assert.equal(hiddenFeatures('host'), []);
});

test('default template follows the host kind', () => {
  assert.is(defaultTemplate(true), 'compatible');
  assert.is(defaultTemplate(false), 'host');
});

test('per-vCPU CPUID carries APIC id, count, hypervisor bit and TSC frequency', () => {
  const out = vcpuCpuid(hostLeaves(), { apicId: 3, vcpuCount: 4, tscKhz: 2_500_000 });
  const l1 = leaf(out, 1);
  assert.is(l1.ebx >>> 24, 3);
  assert.is((l1.ebx >>> 16) & 0xff, 4);
  assert.is(l1.ebx & 0xffff, 0x0800, 'clflush size and brand kept');
  assert.ok(bitSet(l1.ecx, 31));
  assert.ok(bitSet(l1.edx, 28), 'HTT with several vCPUs');
  assert.is(leaf(out, 0xb, 0).edx, 3);
  assert.is(leaf(out, 0xb, 1).ebx, 4, 'logical processors at core level');
  assert.is(leaf(out, 0xb, 2).ecx & 0xff00, 0, 'level type invalid ends enumeration');
  assert.is(leaf(out, 0x40000000).eax, 0x40000010);
  const timing = leaf(out, 0x40000010);
  assert.is(timing.eax, 2_500_000);
  assert.is(timing.ebx, 1_000_000);
});

test('a single vCPU clears HTT', () => {
  const out = vcpuCpuid(hostLeaves(), { apicId: 0, vcpuCount: 1, tscKhz: 1 });
  assert.not.ok(bitSet(leaf(out, 1).edx, 28));
});

test.run();
