// virtio-rng (virtio 1.x spec 5.4): one queue of device-writable buffers that
// the device fills with random bytes from the host. It has no config space,
// no feature bits and no state beyond its queue.

import { fillRandom } from '../../env';
import { StateReader, StateWriter } from '../../snapshot';
import { DescriptorChain } from '../chain';
import { VirtioDevice } from '../device';
import { DEVICE_ID_RNG } from '../features';

const QUEUE_MAX_SIZE: u16 = 256;

export class VirtioRng extends VirtioDevice {
  private chain: DescriptorChain = new DescriptorChain();

  constructor() {
    super(DEVICE_ID_RNG, 1, QUEUE_MAX_SIZE);
  }

  deviceFeatures(): u64 {
    return 0;
  }

  configRead(offset: u32, size: u32): u64 {
    return 0;
  }

  /** Fills every writable byte of each available chain, then interrupts if the driver wants it. */
  queueNotify(index: i32): void {
    const queue = this.queues[index];
    const chain = this.chain;
    do {
      let popped: i32;
      while ((popped = queue.pop(chain)) == 1) {
        for (let i = 0; i < chain.writableCount; i++) {
          const len = chain.writableLen(i);
          if (len > 0) fillRandom(chain.writableAddr(i), len);
        }
        queue.pushUsed(chain.head, chain.writableBytes);
      }
      if (popped < 0) {
        this.fail(-popped);
        return;
      }
    } while (queue.enableNotifications());
    if (queue.needsNotification()) this.signalUsed();
  }

  save(w: StateWriter): void {}

  restore(r: StateReader): bool {
    return true;
  }
}
