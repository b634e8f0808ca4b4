# Constants shared by the probe's source files.

# Segment selectors (GDT in boot.s); the user ones carry RPL 3.
	.equ KERNEL_CS, 0x08
	.equ KERNEL_DS, 0x10
	.equ USER_DS, 0x18 | 3
	.equ USER_CS, 0x20 | 3
	.equ TSS_SEL, 0x28

# Port I/O: COM1 and the exit port (hako's, and QEMU's isa-debug-exit at the same address).
	.equ COM1, 0x3f8
	.equ COM1_LSR, COM1 + 5
	.equ LSR_THRE, 0x20
	.equ EXIT_PORT, 0xf4

# virtio-mmio (virtio 1.x, section 4.2.2) register offsets.
	.equ VIRTIO_MAGIC, 0x74726976
	.equ MMIO_MAGIC, 0x000
	.equ MMIO_VERSION, 0x004
	.equ MMIO_DEVICE_ID, 0x008
	.equ MMIO_DEVICE_FEATURES, 0x010
	.equ MMIO_DEVICE_FEATURES_SEL, 0x014
	.equ MMIO_DRIVER_FEATURES, 0x020
	.equ MMIO_DRIVER_FEATURES_SEL, 0x024
	.equ MMIO_QUEUE_SEL, 0x030
	.equ MMIO_QUEUE_NUM_MAX, 0x034
	.equ MMIO_QUEUE_NUM, 0x038
	.equ MMIO_QUEUE_READY, 0x044
	.equ MMIO_QUEUE_NOTIFY, 0x050
	.equ MMIO_STATUS, 0x070
	.equ MMIO_QUEUE_DESC_LOW, 0x080
	.equ MMIO_QUEUE_DESC_HIGH, 0x084
	.equ MMIO_QUEUE_AVAIL_LOW, 0x090
	.equ MMIO_QUEUE_AVAIL_HIGH, 0x094
	.equ MMIO_QUEUE_USED_LOW, 0x0a0
	.equ MMIO_QUEUE_USED_HIGH, 0x0a4
	.equ MMIO_CONFIG, 0x100
	.equ MMIO_SLOT_BYTES, 0x200

# Device status bits.
	.equ STATUS_ACKNOWLEDGE, 1
	.equ STATUS_DRIVER, 2
	.equ STATUS_DRIVER_OK, 4
	.equ STATUS_FEATURES_OK, 8

	.equ DEVICE_ID_BLOCK, 2
	.equ DEVICE_ID_RNG, 4

# Split virtqueue layout.
	.equ DESC_F_NEXT, 1
	.equ DESC_F_WRITE, 2
	.equ AVAIL_F_NO_INTERRUPT, 1
	.equ USED_F_NO_NOTIFY, 1

# virtio-blk request types.
	.equ BLK_T_IN, 0
	.equ BLK_T_OUT, 1

# Driver-side state of one virtqueue (struct queue in virtio.s).
	.equ Q_BASE, 0        # the device's MMIO window
	.equ Q_DESC, 8
	.equ Q_AVAIL, 16
	.equ Q_USED, 24
	.equ Q_SIZE, 32       # u32
	.equ Q_MASK, 36       # u32
	.equ Q_AVAIL_IDX, 40  # u32 holding the u16 index
	.equ Q_LAST_USED, 44  # u32 holding the u16 index
	.equ Q_BYTES, 48
