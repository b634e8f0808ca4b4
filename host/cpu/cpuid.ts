// Per-vCPU CPUID: the template-filtered host leaves plus this vCPU's identity
// (APIC ID, topology) and the timing leaf that lets the guest skip TSC
// calibration, which can hang here without a platform timer (DESIGN.md).
import type { CpuidEntry } from '../native.js';

export interface VcpuIdentity {
  apicId: number;
  vcpuCount: number;
  /** TSC frequency from KVM_GET_TSC_KHZ. */
  tscKhz: number;
}

const LEAF_FEATURES = 0x1;
const LEAF_EXT_TOPOLOGY = 0xb;
const LEAF_V2_EXT_TOPOLOGY = 0x1f;
const LEAF_HYPERVISOR = 0x40000000;
const LEAF_HYPERVISOR_TIMING = 0x40000010;
const LEAF_AMD_SIZE = 0x80000008;
const LEAF_AMD_EXT_APIC = 0x8000001e;

const ECX_HYPERVISOR = 1 << 31;
const EDX_HTT = 1 << 28;
/** KVM's local APIC timer ticks at 1 GHz. */
const KVM_APIC_BUS_KHZ = 1_000_000;

/** Topology levels for leaves 0xB/0x1F: one thread per core, all vCPUs on one package. */
function topologyLeaf(e: CpuidEntry, id: VcpuIdentity): void {
  const coreBits = Math.ceil(Math.log2(Math.max(1, id.vcpuCount)));
  switch (e.index) {
    case 0: // SMT level
      Object.assign(e, { eax: 0, ebx: 1, ecx: (1 << 8) | 0 });
      break;
    case 1: // core level
      Object.assign(e, { eax: coreBits, ebx: id.vcpuCount, ecx: (2 << 8) | 1 });
      break;
    default: // invalid level ends the enumeration
      Object.assign(e, { eax: 0, ebx: 0, ecx: e.index });
  }
  e.edx = id.apicId;
}

export function vcpuCpuid(base: readonly CpuidEntry[], id: VcpuIdentity): CpuidEntry[] {
  const out = base.map((e) => ({ ...e }));
  for (const e of out) {
    switch (e.function) {
      case LEAF_FEATURES:
        e.ebx = ((e.ebx & 0x0000ffff) | ((Math.min(id.vcpuCount, 255) & 0xff) << 16) | ((id.apicId & 0xff) << 24)) >>> 0;
        e.ecx = (e.ecx | ECX_HYPERVISOR) >>> 0;
        e.edx = (id.vcpuCount > 1 ? e.edx | EDX_HTT : e.edx & ~EDX_HTT) >>> 0;
        break;
      case LEAF_EXT_TOPOLOGY:
      case LEAF_V2_EXT_TOPOLOGY:
        topologyLeaf(e, id);
        break;
      case LEAF_HYPERVISOR:
        e.eax = Math.max(e.eax, LEAF_HYPERVISOR_TIMING) >>> 0;
        break;
      case LEAF_AMD_SIZE:
        e.ecx = ((e.ecx & ~0xff) | ((id.vcpuCount - 1) & 0xff)) >>> 0;
        break;
      case LEAF_AMD_EXT_APIC:
        e.eax = id.apicId >>> 0;
        e.ebx = e.ebx & ~0xff; // compute unit id 0, one thread per unit
        break;
    }
  }
  const timing = out.find((e) => e.function === LEAF_HYPERVISOR_TIMING);
  const values = { eax: id.tscKhz >>> 0, ebx: KVM_APIC_BUS_KHZ, ecx: 0, edx: 0 };
  if (timing) Object.assign(timing, values);
  else out.push({ function: LEAF_HYPERVISOR_TIMING, index: 0, flags: 0, ...values });
  return out;
}
