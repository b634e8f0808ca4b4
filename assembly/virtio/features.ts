// Constants of the virtio 1.x spec shared by the transport and the devices:
// feature bits, device status bits, interrupt status bits, device ids.

// Feature bits (bit numbers turned into masks).
/** The driver can put indirect descriptor tables in the ring (spec 2.7.5.3). */
export const VIRTIO_F_INDIRECT_DESC: u64 = 1 << 28;
/** used_event / avail_event notification suppression (spec 2.7.7, 2.7.10). */
export const VIRTIO_F_EVENT_IDX: u64 = 1 << 29;
/** A virtio 1.x ("modern") device; the legacy interface is not offered, so a driver must accept this. */
export const VIRTIO_F_VERSION_1: u64 = 1 << 32;
/** What every device offers on top of its own feature bits. */
export const TRANSPORT_FEATURES: u64 = VIRTIO_F_VERSION_1 | VIRTIO_F_EVENT_IDX | VIRTIO_F_INDIRECT_DESC;

// Device status bits (spec 2.1).
export const STATUS_ACKNOWLEDGE: u32 = 1;
export const STATUS_DRIVER: u32 = 2;
export const STATUS_DRIVER_OK: u32 = 4;
export const STATUS_FEATURES_OK: u32 = 8;
export const STATUS_DEVICE_NEEDS_RESET: u32 = 0x40;
export const STATUS_FAILED: u32 = 0x80;
/** The bits a driver may set (DEVICE_NEEDS_RESET is the device's). */
export const STATUS_DRIVER_BITS: u32 =
  STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_DRIVER_OK | STATUS_FEATURES_OK | STATUS_FAILED;

// InterruptStatus bits (virtio-mmio, spec 4.2.2).
/** A queue has new used buffers. */
export const INTERRUPT_VRING: u32 = 1;
/** The configuration changed (also raised on DEVICE_NEEDS_RESET). */
export const INTERRUPT_CONFIG: u32 = 2;

// Device ids (spec 5).
export const DEVICE_ID_BLOCK: u32 = 2;
export const DEVICE_ID_RNG: u32 = 4;

/** Largest queue size any device offers; bounds the chain and I/O-vector storage. */
export const MAX_QUEUE_SIZE: u16 = 1024;
