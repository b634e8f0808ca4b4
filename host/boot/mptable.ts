// Intel MultiProcessor Specification 1.4 tables: how a guest without ACPI
// learns its CPUs (local APIC ids), the IOAPIC and how ISA IRQs reach it.
import { BootError } from './errors.js';
import { clearRange, dataView } from './guestmem.js';
import { IOAPIC_ADDR, LAPIC_ADDR, MPTABLE_ADDR, MPTABLE_MAX_BYTES } from './layout.js';

/** APIC ids 0..N-1 go to CPUs and N to the IOAPIC; 0xff is the broadcast id. */
export const MAX_VCPUS = 254;
/** KVM's in-kernel IOAPIC has 24 pins. */
export const IOAPIC_PINS = 24;

const FLOATING_POINTER_SIZE = 16;
const HEADER_SIZE = 44;
const CPU_ENTRY_SIZE = 20;
const ENTRY_SIZE = 8; // bus, IOAPIC, interrupt and local interrupt entries

const MP_PROCESSOR = 0;
const MP_BUS = 1;
const MP_IOAPIC = 2;
const MP_INTSRC = 3;
const MP_LINTSRC = 4;
const MP_IRQ_INT = 0;
const MP_IRQ_NMI = 1;
const MP_IRQ_EXTINT = 3;
const MP_IRQ_CONFORMS_TO_BUS = 0; // polarity and trigger of the bus (ISA: edge, active high)
const MP_APIC_ALL = 0xff;

const CPU_ENABLED = 1;
const CPU_BOOTPROCESSOR = 2;
const CPU_SIGNATURE = 0x600; // family 6; informational only
const CPU_FEATURES = (1 << 0) | (1 << 9); // FPU, APIC
const LAPIC_VERSION = 0x14;
const IOAPIC_VERSION = 0x11; // what KVM's IOAPIC reports
const MPC_APIC_USABLE = 1;
const SPEC_1_4 = 4;
const ISA_BUS_ID = 0;

/** Bytes of the floating pointer plus configuration table for `vcpus` CPUs. */
export function mpTableSize(vcpus: number): number {
  return FLOATING_POINTER_SIZE + HEADER_SIZE + vcpus * CPU_ENTRY_SIZE + ENTRY_SIZE * (2 + IOAPIC_PINS + 2);
}

function checksum(bytes: Uint8Array): number {
  let sum = 0;
  for (const b of bytes) sum += b;
  return (256 - (sum & 0xff)) & 0xff;
}

function writeAscii(mem: Uint8Array, at: number, text: string, width: number): void {
  for (let i = 0; i < width; i++) mem[at + i] = i < text.length ? text.charCodeAt(i) : 0x20;
}

/**
 * Writes the MP floating pointer and configuration table at MPTABLE_ADDR:
 * CPUs with APIC ids 0..vcpus-1 (0 is the BSP), one ISA bus, the IOAPIC
 * (id = vcpus) with IOAPIC pin n = IRQ n for every pin (KVM's default GSI
 * routing, which its PIT uses for IRQ 0), ExtINT on the BSP's LINT0 and NMI
 * on every CPU's LINT1.
 */
export function writeMpTable(mem: Uint8Array, vcpus: number): void {
  if (!Number.isInteger(vcpus) || vcpus < 1 || vcpus > MAX_VCPUS) {
    throw new BootError(`vCPU count ${vcpus} is invalid: expected 1 to ${MAX_VCPUS}`);
  }
  const size = mpTableSize(vcpus);
  if (size > MPTABLE_MAX_BYTES) throw new BootError(`MP table for ${vcpus} vCPUs does not fit in ${MPTABLE_MAX_BYTES} bytes`);
  clearRange(mem, MPTABLE_ADDR, size, 'MP table');
  const view = dataView(mem);
  const table = MPTABLE_ADDR + FLOATING_POINTER_SIZE;
  const ioapicId = vcpus;

  let at = table + HEADER_SIZE;
  let entries = 0;
  const entry = (bytes: number): number => {
    const start = at;
    at += bytes;
    entries++;
    return start;
  };

  for (let id = 0; id < vcpus; id++) {
    const e = entry(CPU_ENTRY_SIZE);
    view.setUint8(e, MP_PROCESSOR);
    view.setUint8(e + 1, id);
    view.setUint8(e + 2, LAPIC_VERSION);
    view.setUint8(e + 3, CPU_ENABLED | (id === 0 ? CPU_BOOTPROCESSOR : 0));
    view.setUint32(e + 4, CPU_SIGNATURE, true);
    view.setUint32(e + 8, CPU_FEATURES, true);
  }

  const bus = entry(ENTRY_SIZE);
  view.setUint8(bus, MP_BUS);
  view.setUint8(bus + 1, ISA_BUS_ID);
  writeAscii(mem, bus + 2, 'ISA', 6);

  const ioapic = entry(ENTRY_SIZE);
  view.setUint8(ioapic, MP_IOAPIC);
  view.setUint8(ioapic + 1, ioapicId);
  view.setUint8(ioapic + 2, IOAPIC_VERSION);
  view.setUint8(ioapic + 3, MPC_APIC_USABLE);
  view.setUint32(ioapic + 4, IOAPIC_ADDR, true);

  for (let pin = 0; pin < IOAPIC_PINS; pin++) {
    const e = entry(ENTRY_SIZE);
    view.setUint8(e, MP_INTSRC);
    view.setUint8(e + 1, MP_IRQ_INT);
    view.setUint16(e + 2, MP_IRQ_CONFORMS_TO_BUS, true);
    view.setUint8(e + 4, ISA_BUS_ID);
    view.setUint8(e + 5, pin);
    view.setUint8(e + 6, ioapicId);
    view.setUint8(e + 7, pin);
  }

  const lint = (type: number, destApic: number, lintPin: number): void => {
    const e = entry(ENTRY_SIZE);
    view.setUint8(e, MP_LINTSRC);
    view.setUint8(e + 1, type);
    view.setUint16(e + 2, MP_IRQ_CONFORMS_TO_BUS, true);
    view.setUint8(e + 4, ISA_BUS_ID);
    view.setUint8(e + 5, 0);
    view.setUint8(e + 6, destApic);
    view.setUint8(e + 7, lintPin);
  };
  lint(MP_IRQ_EXTINT, 0, 0);
  lint(MP_IRQ_NMI, MP_APIC_ALL, 1);

  mem.set([0x50, 0x43, 0x4d, 0x50], table); // "PCMP"
  view.setUint16(table + 4, at - table, true);
  view.setUint8(table + 6, SPEC_1_4);
  writeAscii(mem, table + 8, 'HAKO', 8);
  writeAscii(mem, table + 16, 'HAKO VM', 12);
  view.setUint16(table + 34, entries, true);
  view.setUint32(table + 36, LAPIC_ADDR, true);
  view.setUint8(table + 7, checksum(mem.subarray(table, at)));

  const mpf = MPTABLE_ADDR;
  mem.set([0x5f, 0x4d, 0x50, 0x5f], mpf); // "_MP_"
  view.setUint32(mpf + 4, table, true);
  view.setUint8(mpf + 8, FLOATING_POINTER_SIZE / 16);
  view.setUint8(mpf + 9, SPEC_1_4);
  // feature1 = 0: the configuration table is present; feature2 = 0: virtual wire mode, no IMCR.
  view.setUint8(mpf + 10, checksum(mem.subarray(mpf, mpf + FLOATING_POINTER_SIZE)));
}
