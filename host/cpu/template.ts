// CPU templates: which CPUID features a guest sees. `host` passes through what
// KVM supports; `compatible` also hides what the PVM emulator on kvm_pvm hosts
// cannot execute in guest kernel mode (DESIGN.md), plus the features that
// depend on them, so the guest never picks those instructions.
import type { CpuidEntry } from '../native.js';

export type CpuTemplateName = 'host' | 'compatible';
export const CPU_TEMPLATES: readonly CpuTemplateName[] = ['host', 'compatible'];

type Reg = 'eax' | 'ebx' | 'ecx' | 'edx';
interface HiddenBit { leaf: number; index?: number; reg: Reg; bit: number; name: string }

const bit = (leaf: number, reg: Reg, b: number, name: string, index?: number): HiddenBit =>
  index === undefined ? { leaf, reg, bit: b, name } : { leaf, index, reg, bit: b, name };

/** Features hidden by `compatible`. Names follow /proc/cpuinfo. */
const COMPATIBLE_HIDDEN: readonly HiddenBit[] = [
  // Rejected by the PVM emulator in guest kernel code.
  bit(0x1, 'ecx', 26, 'xsave'),
  bit(0x1, 'ecx', 27, 'osxsave'),
  bit(0x1, 'ecx', 13, 'cx16'),
  bit(0x1, 'ecx', 23, 'popcnt'),
  bit(0x1, 'ecx', 22, 'movbe'),
  bit(0x7, 'ebx', 0, 'fsgsbase', 0),
  bit(0x7, 'ebx', 3, 'bmi1', 0),
  bit(0x7, 'ebx', 8, 'bmi2', 0),
  bit(0x7, 'ebx', 20, 'smap', 0),
  bit(0x7, 'ecx', 2, 'umip', 0),
  bit(0x7, 'ecx', 22, 'rdpid', 0),
  bit(0x80000001, 'ecx', 5, 'abm'), // LZCNT and POPCNT on AMD
  // Emulated one byte per step: the kernel's rep movsb/stosb paths crawl.
  bit(0x7, 'ebx', 9, 'erms', 0),
  bit(0x7, 'edx', 4, 'fsrm', 0),
  // KVM paravirt features that make hypercalls, which do not return under
  // PVM: SMP guests hang at the first PV IPI or PV spinlock kick.
  bit(0x40000001, 'eax', 7, 'kvm-pv-unhalt'),
  bit(0x40000001, 'eax', 11, 'kvm-pv-ipi'),
  bit(0x40000001, 'eax', 13, 'kvm-pv-sched-yield'),
  bit(0x40000001, 'eax', 16, 'kvm-hc-map-gpa-range'),
  // State that lives in XSAVE areas: meaningless without xsave.
  bit(0x1, 'ecx', 28, 'avx'),
  bit(0x1, 'ecx', 29, 'f16c'),
  bit(0x1, 'ecx', 12, 'fma'),
  bit(0x7, 'ebx', 5, 'avx2', 0),
  bit(0x7, 'ebx', 16, 'avx512f', 0),
  bit(0x7, 'ebx', 17, 'avx512dq', 0),
  bit(0x7, 'ebx', 21, 'avx512ifma', 0),
  bit(0x7, 'ebx', 26, 'avx512pf', 0),
  bit(0x7, 'ebx', 27, 'avx512er', 0),
  bit(0x7, 'ebx', 28, 'avx512cd', 0),
  bit(0x7, 'ebx', 30, 'avx512bw', 0),
  bit(0x7, 'ebx', 31, 'avx512vl', 0),
  bit(0x7, 'ecx', 1, 'avx512vbmi', 0),
  bit(0x7, 'ecx', 6, 'avx512_vbmi2', 0),
  bit(0x7, 'ecx', 9, 'vaes', 0),
  bit(0x7, 'ecx', 10, 'vpclmulqdq', 0),
  bit(0x7, 'ecx', 11, 'avx512_vnni', 0),
  bit(0x7, 'ecx', 12, 'avx512_bitalg', 0),
  bit(0x7, 'ecx', 14, 'avx512_vpopcntdq', 0),
  bit(0x7, 'edx', 2, 'avx512_4vnniw', 0),
  bit(0x7, 'edx', 3, 'avx512_4fmaps', 0),
  bit(0x7, 'edx', 8, 'avx512_vp2intersect', 0),
  bit(0x7, 'edx', 23, 'avx512_fp16', 0),
  bit(0x7, 'eax', 4, 'avx_vnni', 1),
  bit(0x7, 'eax', 5, 'avx512_bf16', 1),
  bit(0x80000001, 'ecx', 16, 'fma4'),
  bit(0x80000001, 'ecx', 11, 'xop'),
];

/** Whole leaves dropped by `compatible`: XSAVE state enumeration. */
const COMPATIBLE_DROPPED_LEAVES = new Set([0xd]);

export function applyTemplate(entries: readonly CpuidEntry[], template: CpuTemplateName): CpuidEntry[] {
  const out = entries.map((e) => ({ ...e }));
  if (template === 'host') return out;
  const kept = out.filter((e) => !COMPATIBLE_DROPPED_LEAVES.has(e.function));
  for (const h of COMPATIBLE_HIDDEN) {
    for (const e of kept) {
      if (e.function === h.leaf && (h.index === undefined || e.index === h.index)) e[h.reg] = (e[h.reg] & ~(1 << h.bit)) >>> 0;
    }
  }
  return kept;
}

/** Names of the features `template` hides (for messages and docs). */
export function hiddenFeatures(template: CpuTemplateName): string[] {
  return template === 'host' ? [] : COMPATIBLE_HIDDEN.map((h) => h.name);
}

/** `compatible` on PVM hosts (their emulator rejects some instructions), `host` elsewhere. */
export function defaultTemplate(pvmHost: boolean): CpuTemplateName {
  return pvmHost ? 'compatible' : 'host';
}
