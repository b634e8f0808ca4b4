// virtio-fs (virtio 1.2 spec 5.11): a host directory shared with the guest
// over FUSE. Queue 0 is the hiprio queue (FORGET, BATCH_FORGET), queue 1 the
// one request queue; both are served alike by the share's FuseServer, one
// chain at a time, synchronously. Config space: the tag the guest mounts by
// (36 bytes, NUL-padded) and num_request_queues. A chain without room for a
// reply header breaks the protocol and fails the device.

import { StateReader, StateWriter } from '../../snapshot';
import { DescriptorChain } from '../chain';
import { VirtioDevice } from '../device';
import { FUSE_KERNEL_MINOR_VERSION, FUSE_MIN_MINOR_VERSION } from './abi';
import { CACHE_ALWAYS, FuseServer } from './server';

export const DEVICE_ID_FS: u32 = 26;
export const TAG_SIZE: i32 = 36;
const QUEUE_MAX_SIZE: u16 = 1024;
const QUEUE_COUNT: i32 = 2;
const REQUEST_QUEUES: u32 = 1;
/** Config space: u8 tag[36], le32 num_request_queues. */
const CONFIG_SIZE: u32 = <u32>TAG_SIZE + 4;

/** failure code (VirtioDevice.fail) for a chain with no room for the 16-byte reply header; above every QueueError. */
export const FS_ERROR_NO_REPLY_ROOM: u32 = 0x110;

export class VirtioFs extends VirtioDevice {
  readonly server: FuseServer;
  private readonly config: StaticArray<u8> = new StaticArray<u8>(<i32>CONFIG_SIZE);
  private readonly chain: DescriptorChain = new DescriptorChain();

  /** @param tag the TAG_SIZE bytes at Wasm address `tag` */
  constructor(tag: usize, share: u32, readOnly: bool, cacheMode: u32) {
    super(DEVICE_ID_FS, QUEUE_COUNT, QUEUE_MAX_SIZE);
    this.server = new FuseServer(share, readOnly, cacheMode);
    const config = changetype<usize>(this.config);
    memory.copy(config, tag, <usize>TAG_SIZE);
    store<u32>(config + <usize>TAG_SIZE, REQUEST_QUEUES);
  }

  /** No feature bits of its own (no notification queue, no DAX window). */
  deviceFeatures(): u64 {
    return 0;
  }

  configRead(offset: u32, size: u32): u64 {
    if (size == 0 || size > 8 || offset > CONFIG_SIZE || size > CONFIG_SIZE - offset) return 0;
    let value: u64 = 0;
    for (let i: u32 = 0; i < size; i++) value |= <u64>this.config[offset + i] << (<u64>i * 8);
    return value;
  }

  queueNotify(index: i32): void {
    const queue = this.queues[index];
    const chain = this.chain;
    const server = this.server;
    do {
      let popped: i32;
      while ((popped = queue.pop(chain)) == 1) {
        const used = server.serve(chain);
        if (used < 0) {
          this.fail(FS_ERROR_NO_REPLY_ROOM);
          return;
        }
        queue.pushUsed(chain.head, <u32>used);
      }
      if (popped < 0) {
        this.fail(<u32>-popped);
        return;
      }
    } while (queue.enableNotifications());
    if (queue.needsNotification()) this.signalUsed();
  }

  /** The driver is gone: every host handle it held is closed, and the next driver starts with INIT. */
  reset(): void {
    this.server.forgetAll();
    this.server.initialized = false;
  }

  /**
   * Payload: the INIT state (initialized, minor) and the share's settings
   * (share id, read-only, cache mode). Not the inode and file tables: host
   * handles do not survive a snapshot.
   */
  save(w: StateWriter): void {
    const server = this.server;
    w.bool(server.initialized);
    w.u32(server.minor);
    w.u32(server.share);
    w.bool(server.readOnly);
    w.u32(server.cacheMode);
  }

  /**
   * Takes the INIT state; the share settings must be ones a device can have,
   * but this device keeps its own (the host chose them for this VM). Every
   * nodeid but the root's and every fh then answers -ESTALE: the tables are
   * dropped without closing anything, as the handles they named belonged to
   * the host's previous registration of the share.
   */
  restore(r: StateReader): bool {
    const initialized = r.bool();
    const minor = r.u32();
    r.u32(); // share id: the host re-registers the share under the same id
    r.bool();
    const cacheMode = r.u32();
    r.check(cacheMode <= CACHE_ALWAYS);
    r.check(!initialized || (minor >= FUSE_MIN_MINOR_VERSION && minor <= FUSE_KERNEL_MINOR_VERSION));
    if (!r.ok) return false;
    const server = this.server;
    server.initialized = initialized;
    server.minor = minor;
    server.dropAll();
    return true;
  }
}
