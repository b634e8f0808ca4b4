// The VM's emulated devices and where they sit: legacy PC devices at their
// fixed ISA ports and interrupt lines, and hako's exit port. Future
// virtio-mmio devices register their windows on `mmio`. Devices with state
// are exported for machine_state.ts, which saves and restores them.

import { createMmioBus, createPioBus } from './bus';
import { EXIT_PORT_WINDOW_SIZE, ExitPort } from './devices/exit_port';
import { I8042, I8042_WINDOW_SIZE } from './devices/i8042';
import { Rtc, RTC_WINDOW_SIZE } from './devices/rtc';
import { Serial } from './devices/serial';

const COM1_PORT: u64 = 0x3f8;
const COM1_WINDOW_SIZE: u64 = 8;
const COM1_GSI: u32 = 4;
const I8042_PORT: u64 = 0x60;
const I8042_KBD_GSI: u32 = 1;
const I8042_AUX_GSI: u32 = 12;
const RTC_PORT: u64 = 0x70;
/** host/vmm/cmdline.ts passes it to the guest kernel as hako.exit_port=. */
const EXIT_PORT: u64 = 0xf4;

export const pio = createPioBus();
export const mmio = createMmioBus();

export const com1 = new Serial(COM1_GSI);
pio.register(COM1_PORT, COM1_WINDOW_SIZE, com1);
export const i8042 = new I8042(I8042_KBD_GSI, I8042_AUX_GSI);
export const rtc = new Rtc();
pio.register(I8042_PORT, I8042_WINDOW_SIZE, i8042);
pio.register(RTC_PORT, RTC_WINDOW_SIZE, rtc);
pio.register(EXIT_PORT, EXIT_PORT_WINDOW_SIZE, new ExitPort());
