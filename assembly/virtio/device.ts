// What every virtio device has, whatever its transport: device id, queues,
// negotiated features, device status, interrupt status and config generation.
// A concrete device (rng/, block/) supplies its feature bits, config space
// and queue handling; the transport (mmio.ts) drives the state below from
// the driver's register writes.

import { irqPulse } from '../env';
import { StateReader, StateWriter } from '../snapshot';
import {
  INTERRUPT_CONFIG,
  INTERRUPT_VRING,
  STATUS_DEVICE_NEEDS_RESET,
  STATUS_DRIVER_OK,
  STATUS_DRIVER_BITS,
  STATUS_FAILED,
  TRANSPORT_FEATURES,
} from './features';
import { Virtqueue } from './queue';
import { readU64, writeU64 } from './state';

export abstract class VirtioDevice {
  readonly queues: Array<Virtqueue> = [];
  /** Features the driver accepted (meaningful once FEATURES_OK is set). */
  driverFeatures: u64 = 0;
  /** Device status register (features.ts STATUS_*). */
  status: u32 = 0;
  /** virtio-mmio InterruptStatus: INTERRUPT_* bits raised and not yet acknowledged. */
  interruptStatus: u32 = 0;
  /** Bumped on every config change so the driver can read the config space consistently. */
  configGeneration: u32 = 0;
  /** The QueueError that made the device fail (0 while it has not), for the host's diagnostics. */
  failure: u32 = 0;
  /** Interrupt line, set by the transport when it attaches the device. */
  gsi: u32 = 0;
  /**
   * Set by a device's restore when the config space it restored into differs
   * from the saved one (another disk size); the interrupt telling the driver
   * is raised once the VM resumes (resumed()), when the irqchip can take it.
   */
  configChangedOnRestore: bool = false;

  constructor(
    readonly deviceId: u32,
    queueCount: i32,
    queueMaxSize: u16,
  ) {
    for (let i = 0; i < queueCount; i++) this.queues.push(new Virtqueue(queueMaxSize));
  }

  /** Device-specific feature bits; the transport adds TRANSPORT_FEATURES. */
  abstract deviceFeatures(): u64;

  /** Reads the device config space; offsets past its end read 0. */
  abstract configRead(offset: u32, size: u32): u64;

  /** Writes the device config space; ignored unless a device has writable fields. */
  configWrite(offset: u32, size: u32, value: u64): void {}

  /** DRIVER_OK was set, queues are valid and `driverFeatures` final. */
  activate(): void {}

  /** The driver kicked queue `index` (checked: it exists and is ready, and the device is live). */
  abstract queueNotify(index: i32): void;

  /** Device-specific part of a device reset (the queues and common state are reset by resetDevice). */
  reset(): void {}

  /** Device-specific state, after the common part (see saveCommon). */
  abstract save(w: StateWriter): void;

  /** Loads what save wrote; false if it is not a state this device can hold. */
  abstract restore(r: StateReader): bool;

  /** Everything the driver may accept. */
  offeredFeatures(): u64 {
    return this.deviceFeatures() | TRANSPORT_FEATURES;
  }

  /** DRIVER_OK set, and neither failed nor given up by the driver. */
  isLive(): bool {
    return (this.status & (STATUS_DRIVER_OK | STATUS_DEVICE_NEEDS_RESET | STATUS_FAILED)) == STATUS_DRIVER_OK;
  }

  /** Interrupts the driver for new used buffers. */
  signalUsed(): void {
    this.interrupt(INTERRUPT_VRING);
  }

  /**
   * The driver broke the protocol (`error` is a QueueError or a device's own
   * code): sets DEVICE_NEEDS_RESET and tells a running driver through a config
   * interrupt. The device is no longer live, so it ignores kicks until reset.
   */
  fail(error: u32): void {
    if (this.status & STATUS_DEVICE_NEEDS_RESET) return;
    this.failure = error;
    this.status |= STATUS_DEVICE_NEEDS_RESET;
    if (this.status & STATUS_DRIVER_OK) this.interrupt(INTERRUPT_CONFIG);
  }

  /** The config space changed under the driver. */
  configChanged(): void {
    this.configGeneration++;
    this.interrupt(INTERRUPT_CONFIG);
  }

  /** The restored VM is about to run: tells a live driver about a config space that changed in the restore. */
  resumed(): void {
    if (this.configChangedOnRestore && this.isLive()) this.configChanged();
    this.configChangedOnRestore = false;
  }

  /** Device reset (the driver wrote 0 to the status register). The config generation carries on. */
  resetDevice(): void {
    this.driverFeatures = 0;
    this.status = 0;
    this.interruptStatus = 0;
    this.failure = 0;
    for (let i = 0; i < this.queues.length; i++) this.queues[i].reset();
    this.reset();
  }

  /** The transport-independent state: common fields, then every queue. */
  saveCommon(w: StateWriter): void {
    w.u32(this.deviceId);
    writeU64(w, this.driverFeatures);
    w.u32(this.status);
    w.u32(this.interruptStatus);
    w.u32(this.configGeneration);
    w.u32(this.failure);
    w.u16(<u16>this.queues.length);
    for (let i = 0; i < this.queues.length; i++) this.queues[i].save(w);
  }

  /** Loads what saveCommon wrote; false unless it is the same kind of device with the same queues, in a reachable state. */
  restoreCommon(r: StateReader): bool {
    r.check(r.u32() == this.deviceId);
    // Any bits: a driver may write unoffered ones (FEATURES_OK is then refused).
    this.driverFeatures = readU64(r);
    this.status = r.u32();
    r.check((this.status & ~(STATUS_DRIVER_BITS | STATUS_DEVICE_NEEDS_RESET)) == 0);
    this.interruptStatus = r.u32();
    r.check((this.interruptStatus & ~(INTERRUPT_VRING | INTERRUPT_CONFIG)) == 0);
    this.configGeneration = r.u32();
    this.failure = r.u32();
    r.check(r.u16() == <u16>this.queues.length);
    for (let i = 0; i < this.queues.length && r.ok; i++) this.queues[i].restore(r);
    return r.ok;
  }

  private interrupt(bits: u32): void {
    this.interruptStatus |= bits;
    irqPulse(this.gsi);
  }
}
