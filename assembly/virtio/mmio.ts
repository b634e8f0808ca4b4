// The virtio-mmio transport, version 2 (virtio 1.x spec 4.2.2): the register
// window through which the driver finds the device, negotiates features,
// sets up queues, kicks them and acknowledges interrupts. Registers below
// the config space take 32-bit accesses only (spec 4.2.2.2); others read 0
// and are ignored when written.

import { BusDevice } from '../bus';
import { StateReader, StateWriter } from '../snapshot';
import { VirtioDevice } from './device';
import {
  STATUS_DEVICE_NEEDS_RESET,
  STATUS_DRIVER_BITS,
  STATUS_DRIVER_OK,
  STATUS_FEATURES_OK,
  VIRTIO_F_EVENT_IDX,
  VIRTIO_F_INDIRECT_DESC,
  VIRTIO_F_VERSION_1,
} from './features';
import { QueueError } from './queue';

export const VIRTIO_MMIO_WINDOW_SIZE: u64 = 0x200;

/** "virt" as a little-endian u32. */
const MAGIC_VALUE: u32 = 0x74726976;
const VERSION: u32 = 2;
/** "HAKO" as a little-endian u32. */
const VENDOR_ID: u32 = 0x4f4b4148;

const MAGIC: u32 = 0x000;
const VERSION_REG: u32 = 0x004;
const DEVICE_ID: u32 = 0x008;
const VENDOR_ID_REG: u32 = 0x00c;
const DEVICE_FEATURES: u32 = 0x010;
const DEVICE_FEATURES_SEL: u32 = 0x014;
const DRIVER_FEATURES: u32 = 0x020;
const DRIVER_FEATURES_SEL: u32 = 0x024;
const QUEUE_SEL: u32 = 0x030;
const QUEUE_NUM_MAX: u32 = 0x034;
const QUEUE_NUM: u32 = 0x038;
const QUEUE_READY: u32 = 0x044;
const QUEUE_NOTIFY: u32 = 0x050;
const INTERRUPT_STATUS: u32 = 0x060;
const INTERRUPT_ACK: u32 = 0x064;
const STATUS: u32 = 0x070;
const QUEUE_DESC_LOW: u32 = 0x080;
const QUEUE_DESC_HIGH: u32 = 0x084;
const QUEUE_DRIVER_LOW: u32 = 0x090;
const QUEUE_DRIVER_HIGH: u32 = 0x094;
const QUEUE_DEVICE_LOW: u32 = 0x0a0;
const QUEUE_DEVICE_HIGH: u32 = 0x0a4;
const SHM_LEN_LOW: u32 = 0x0b0;
const SHM_LEN_HIGH: u32 = 0x0b4;
const SHM_BASE_LOW: u32 = 0x0b8;
const SHM_BASE_HIGH: u32 = 0x0bc;
const CONFIG_GENERATION: u32 = 0x0fc;
const CONFIG: u32 = 0x100;

export class VirtioMmio extends BusDevice {
  /** Which 32-bit half of the features DeviceFeatures shows / DriverFeatures sets. */
  deviceFeaturesSel: u32 = 0;
  driverFeaturesSel: u32 = 0;
  /** The queue the Queue* registers address; may be out of range (they then read 0 and ignore writes). */
  queueSel: u32 = 0;

  constructor(readonly device: VirtioDevice, gsi: u32) {
    super();
    device.gsi = gsi;
  }

  read(offset: u32, size: u32): u64 {
    const device = this.device;
    if (offset >= CONFIG) return device.configRead(offset - CONFIG, size);
    if (size != 4) return 0;
    switch (offset) {
      case MAGIC:
        return MAGIC_VALUE;
      case VERSION_REG:
        return VERSION;
      case DEVICE_ID:
        return device.deviceId;
      case VENDOR_ID_REG:
        return VENDOR_ID;
      case DEVICE_FEATURES:
        return this.deviceFeaturesSel < 2 ? <u32>(device.offeredFeatures() >> (this.deviceFeaturesSel * 32)) : 0;
      case QUEUE_NUM_MAX:
        return this.queueSel < <u32>device.queues.length ? device.queues[this.queueSel].maxSize : 0;
      case QUEUE_READY:
        return this.queueSel < <u32>device.queues.length && device.queues[this.queueSel].ready ? 1 : 0;
      case INTERRUPT_STATUS:
        return device.interruptStatus;
      case STATUS:
        return device.status;
      // No shared memory regions: a length of all ones says so (spec 4.2.2).
      case SHM_LEN_LOW:
      case SHM_LEN_HIGH:
      case SHM_BASE_LOW:
      case SHM_BASE_HIGH:
        return u32.MAX_VALUE;
      case CONFIG_GENERATION:
        return device.configGeneration;
    }
    return 0;
  }

  write(offset: u32, size: u32, value: u64): void {
    const device = this.device;
    if (offset >= CONFIG) {
      device.configWrite(offset - CONFIG, size, value);
      return;
    }
    if (size != 4) return;
    const v = <u32>value;
    switch (offset) {
      case DEVICE_FEATURES_SEL:
        this.deviceFeaturesSel = v;
        break;
      case DRIVER_FEATURES_SEL:
        this.driverFeaturesSel = v;
        break;
      case DRIVER_FEATURES:
        this.writeDriverFeatures(v);
        break;
      case QUEUE_SEL:
        this.queueSel = v;
        break;
      case QUEUE_NOTIFY:
        this.notify(v);
        break;
      case INTERRUPT_ACK:
        device.interruptStatus &= ~v;
        break;
      case STATUS:
        this.writeStatus(v);
        break;
      default:
        this.writeQueueRegister(offset, v);
    }
  }

  /** A kick of queue `index`, from QueueNotify or the host's ioeventfd; ignored unless the device can serve it. */
  notify(index: u32): void {
    const device = this.device;
    if (index >= <u32>device.queues.length || !device.isLive() || !device.queues[index].ready) return;
    device.queueNotify(<i32>index);
  }

  /** Selectors, then the device's common state and queues, then its own state. */
  save(w: StateWriter): void {
    w.u32(this.deviceFeaturesSel);
    w.u32(this.driverFeaturesSel);
    w.u32(this.queueSel);
    this.device.saveCommon(w);
    this.device.save(w);
  }

  /** Loads what save wrote; false if it is not a state of this device. On false the device is half-loaded. */
  restore(r: StateReader): bool {
    this.deviceFeaturesSel = r.u32();
    this.driverFeaturesSel = r.u32();
    this.queueSel = r.u32();
    return r.ok && this.device.restoreCommon(r) && this.device.restore(r);
  }

  /** Feature bits are accepted until FEATURES_OK; bits of halves above 64 do not exist. */
  private writeDriverFeatures(v: u32): void {
    const device = this.device;
    if (device.status & STATUS_FEATURES_OK || this.driverFeaturesSel >= 2) return;
    const shift = <u64>this.driverFeaturesSel * 32;
    device.driverFeatures = (device.driverFeatures & ~(<u64>u32.MAX_VALUE << shift)) | (<u64>v << shift);
  }

  /**
   * Writing 0 resets the device. Otherwise the driver adds status bits (spec
   * 3.1.1): FEATURES_OK sticks only for an acceptable feature set (the driver
   * reads it back), and DRIVER_OK only after FEATURES_OK, with valid queues.
   */
  private writeStatus(v: u32): void {
    const device = this.device;
    if (v == 0) {
      device.resetDevice();
      return;
    }
    const old = device.status;
    let added = v & STATUS_DRIVER_BITS & ~old;
    if (added & STATUS_FEATURES_OK && !this.featuresAcceptable()) added &= ~STATUS_FEATURES_OK;
    const featuresOk = (old | added) & STATUS_FEATURES_OK;
    if (added & STATUS_DRIVER_OK && !featuresOk) added &= ~STATUS_DRIVER_OK;
    device.status = old | added;
    if (added & STATUS_DRIVER_OK) this.activate();
  }

  /** VERSION_1 accepted (we have no legacy interface) and nothing the device did not offer. */
  private featuresAcceptable(): bool {
    const features = this.device.driverFeatures;
    return (features & VIRTIO_F_VERSION_1) != 0 && (features & ~this.device.offeredFeatures()) == 0;
  }

  private activate(): void {
    const device = this.device;
    const features = device.driverFeatures;
    for (let i = 0; i < device.queues.length; i++) {
      const queue = device.queues[i];
      queue.eventIdx = (features & VIRTIO_F_EVENT_IDX) != 0;
      queue.indirect = (features & VIRTIO_F_INDIRECT_DESC) != 0;
    }
    if (!(device.status & STATUS_DEVICE_NEEDS_RESET)) device.activate();
  }

  /** Queue setup registers: only while the selected queue is not ready (spec 4.2.2.3). */
  private writeQueueRegister(offset: u32, v: u32): void {
    const device = this.device;
    if (this.queueSel >= <u32>device.queues.length) return;
    const queue = device.queues[this.queueSel];
    if (offset == QUEUE_READY) {
      if (v == 0) {
        queue.ready = false;
      } else if (!queue.ready) {
        // A queue outside guest RAM, misaligned or of a bad size must never be used.
        if (queue.isValid()) queue.ready = true;
        else device.fail(QueueError.INVALID_QUEUE_CONFIG);
      }
      return;
    }
    if (queue.ready) return;
    switch (offset) {
      case QUEUE_NUM:
        queue.size = <u16>min(v, 0xffff);
        break;
      case QUEUE_DESC_LOW:
        queue.descAddr = setLow(queue.descAddr, v);
        break;
      case QUEUE_DESC_HIGH:
        queue.descAddr = setHigh(queue.descAddr, v);
        break;
      case QUEUE_DRIVER_LOW:
        queue.availAddr = setLow(queue.availAddr, v);
        break;
      case QUEUE_DRIVER_HIGH:
        queue.availAddr = setHigh(queue.availAddr, v);
        break;
      case QUEUE_DEVICE_LOW:
        queue.usedAddr = setLow(queue.usedAddr, v);
        break;
      case QUEUE_DEVICE_HIGH:
        queue.usedAddr = setHigh(queue.usedAddr, v);
        break;
    }
  }
}

function setLow(value: u64, low: u32): u64 {
  return (value & 0xffff_ffff_0000_0000) | low;
}

function setHigh(value: u64, high: u32): u64 {
  return (value & 0xffff_ffff) | (<u64>high << 32);
}
