// hako's guest exit port: the guest kernel (patched, told the port by
// hako.exit_port=) writes 0 here on poweroff and 1 on panic, so the VMM can
// stop the VM with the right status. Same place and shape as the
// isa-debug-exit device guest/qemu-boot.sh gives QEMU: 4 ports, any write
// of any size reports its value.

import { BusDevice } from '../bus';
import { guestExit } from '../env';

export const EXIT_PORT_WINDOW_SIZE: u32 = 4;

export class ExitPort extends BusDevice {
  read(offset: u32, size: u32): u64 {
    return u64.MAX_VALUE; // write-only
  }

  write(offset: u32, size: u32, value: u64): void {
    guestExit(<u32>value);
  }
}
