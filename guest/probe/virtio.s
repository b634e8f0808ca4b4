# A polling virtio-mmio driver: device discovery, feature negotiation
# (VIRTIO_F_VERSION_1 only) and split virtqueues in the probe's own memory.
# No interrupts: the driver asks for none and spins on the used ring.
	.include "defs.s"

# Where VMMs put virtio-mmio windows, 0x200 bytes each: QEMU microvm's 24
# transports, then hako's (host/boot/layout.ts). Empty slots read 0.
	.equ QEMU_MMIO_BASE, 0xfeb00000
	.equ QEMU_MMIO_SLOTS, 24
	.equ HAKO_MMIO_BASE, 0xd0000000
	.equ HAKO_MMIO_SLOTS, 16
	# A device that has not answered after this many TSC cycles (about 20 s
	# at 3 GHz) never will.
	.equ WAIT_CYCLES, 1 << 36

	.text

# find_devices: sets blk_base and rng_base to the first virtio-blk and
# virtio-rng device found; fails if either is missing.
	.globl find_devices
find_devices:
	mov $QEMU_MMIO_BASE, %edi
	mov $QEMU_MMIO_SLOTS, %esi
	call scan_window
	mov $HAKO_MMIO_BASE, %edi
	mov $HAKO_MMIO_SLOTS, %esi
	call scan_window
	mov $msg_no_blk, %rdi
	cmpq $0, blk_base
	je fail
	mov $msg_no_rng, %rdi
	cmpq $0, rng_base
	je fail
	ret

# scan_window(rdi = first slot, esi = slots)
scan_window:
1:	cmpl $VIRTIO_MAGIC, MMIO_MAGIC(%rdi)
	jne 3f
	mov MMIO_DEVICE_ID(%rdi), %eax
	mov $blk_base, %rdx
	cmp $DEVICE_ID_BLOCK, %eax
	je 2f
	mov $rng_base, %rdx
	cmp $DEVICE_ID_RNG, %eax
	jne 3f
2:	cmpq $0, (%rdx)
	jne 3f                          # keep the first of a kind
	cmpl $2, MMIO_VERSION(%rdi)
	jne legacy
	mov %rdi, (%rdx)
3:	add $MMIO_SLOT_BYTES, %rdi
	dec %esi
	jnz 1b
	ret
legacy:
	mov $msg_legacy, %rdi
	jmp fail

# virtio_init(rdi = MMIO base): reset, then ACKNOWLEDGE, DRIVER and
# FEATURES_OK with VIRTIO_F_VERSION_1 (feature bit 32) as the only feature.
	.globl virtio_init
virtio_init:
	movl $0, MMIO_STATUS(%rdi)
	movl $STATUS_ACKNOWLEDGE, MMIO_STATUS(%rdi)
	movl $(STATUS_ACKNOWLEDGE | STATUS_DRIVER), MMIO_STATUS(%rdi)
	movl $1, MMIO_DEVICE_FEATURES_SEL(%rdi)
	testl $1, MMIO_DEVICE_FEATURES(%rdi)
	jz 1f
	movl $0, MMIO_DRIVER_FEATURES_SEL(%rdi)
	movl $0, MMIO_DRIVER_FEATURES(%rdi)
	movl $1, MMIO_DRIVER_FEATURES_SEL(%rdi)
	movl $1, MMIO_DRIVER_FEATURES(%rdi)
	movl $(STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK), MMIO_STATUS(%rdi)
	testl $STATUS_FEATURES_OK, MMIO_STATUS(%rdi)
	jz 2f
	ret
1:	mov $msg_no_version_1, %rdi
	jmp fail
2:	mov $msg_features_refused, %rdi
	jmp fail

# driver_ok(rdi = MMIO base): the driver is ready; the device may use its queues.
	.globl driver_ok
driver_ok:
	movl $(STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK), MMIO_STATUS(%rdi)
	ret

# queue_setup(rdi = struct queue with its rings' addresses filled in,
# rsi = MMIO base, edx = wanted size): makes queue 0 of the device live with
# min(wanted, QueueNumMax) entries, which must be a power of two.
	.globl queue_setup
queue_setup:
	mov %rsi, Q_BASE(%rdi)
	movl $0, MMIO_QUEUE_SEL(%rsi)
	mov MMIO_QUEUE_NUM_MAX(%rsi), %eax
	cmp %edx, %eax
	cmova %edx, %eax
	test %eax, %eax
	jz 1f
	lea -1(%rax), %ecx
	test %ecx, %eax
	jnz 1f
	mov %eax, Q_SIZE(%rdi)
	mov %ecx, Q_MASK(%rdi)
	movl $0, Q_AVAIL_IDX(%rdi)
	movl $0, Q_LAST_USED(%rdi)
	mov %eax, MMIO_QUEUE_NUM(%rsi)
	mov Q_DESC(%rdi), %rax
	mov %eax, MMIO_QUEUE_DESC_LOW(%rsi)
	movl $0, MMIO_QUEUE_DESC_HIGH(%rsi)
	mov Q_AVAIL(%rdi), %rax
	movw $AVAIL_F_NO_INTERRUPT, (%rax)
	movw $0, 2(%rax)
	mov %eax, MMIO_QUEUE_AVAIL_LOW(%rsi)
	movl $0, MMIO_QUEUE_AVAIL_HIGH(%rsi)
	mov Q_USED(%rdi), %rax
	mov %eax, MMIO_QUEUE_USED_LOW(%rsi)
	movl $0, MMIO_QUEUE_USED_HIGH(%rsi)
	movl $1, MMIO_QUEUE_READY(%rsi)
	ret
1:	mov $msg_queue_size, %rdi
	jmp fail

# queue_add(rdi = queue, esi = head descriptor): puts a chain in the avail
# ring; the device sees it after queue_kick.
	.globl queue_add
queue_add:
	mov Q_AVAIL_IDX(%rdi), %eax
	mov %eax, %ecx
	and Q_MASK(%rdi), %ecx
	mov Q_AVAIL(%rdi), %rdx
	mov %si, 4(%rdx, %rcx, 2)
	inc %eax
	movzwl %ax, %eax
	mov %eax, Q_AVAIL_IDX(%rdi)
	ret

# queue_kick(rdi = queue): publishes the avail index, then notifies the
# device unless it asked not to be (VIRTQ_USED_F_NO_NOTIFY), as Linux does
# without VIRTIO_F_EVENT_IDX.
	.globl queue_kick
queue_kick:
	mov Q_AVAIL(%rdi), %rdx
	mov Q_AVAIL_IDX(%rdi), %eax
	mov %ax, 2(%rdx)
	mfence                          # the index store before the flags load
	mov Q_USED(%rdi), %rdx
	testw $USED_F_NO_NOTIFY, (%rdx)
	jnz 1f
	mov Q_BASE(%rdi), %rdx
	movl $0, MMIO_QUEUE_NOTIFY(%rdx)
1:	ret

# queue_wait(rdi = queue): spins until the device has used a chain; returns
# in eax how many it used since the last queue_pop.
	.globl queue_wait
queue_wait:
	push %rbx
	mov Q_USED(%rdi), %r8
	rdtsc
	shl $32, %rdx
	or %rax, %rdx
	movabs $WAIT_CYCLES, %rbx
	add %rdx, %rbx                  # rbx: deadline
	mov %rdi, %r9
1:	mov $1024, %ecx
2:	movzwl 2(%r8), %eax
	sub Q_LAST_USED(%r9), %eax
	and $0xffff, %eax
	jnz 3f
	pause
	dec %ecx
	jnz 2b
	rdtsc
	shl $32, %rdx
	or %rax, %rdx
	cmp %rbx, %rdx
	jb 1b
	mov $msg_timeout, %rdi
	jmp fail
3:	pop %rbx
	ret

# queue_pop(rdi = queue): the next used element: eax = head id, edx = bytes written.
	.globl queue_pop
queue_pop:
	mov Q_LAST_USED(%rdi), %ecx
	mov %ecx, %eax
	and Q_MASK(%rdi), %eax
	mov Q_USED(%rdi), %rdx
	lea 4(%rdx, %rax, 8), %r8
	inc %ecx
	movzwl %cx, %ecx
	mov %ecx, Q_LAST_USED(%rdi)
	mov (%r8), %eax
	mov 4(%r8), %edx
	ret

# desc_set(rdi = queue, esi = index, rdx = address, ecx = length,
# r8d = flags, r9d = next)
	.globl desc_set
desc_set:
	mov Q_DESC(%rdi), %rax
	shl $4, %esi
	add %rsi, %rax
	mov %rdx, (%rax)
	mov %ecx, 8(%rax)
	mov %r8w, 12(%rax)
	mov %r9w, 14(%rax)
	ret

	.section .rodata
msg_no_blk: .asciz "no virtio-blk device (version 2) in the virtio-mmio windows at 0xfeb00000 or 0xd0000000"
msg_no_rng: .asciz "no virtio-rng device (version 2) in the virtio-mmio windows at 0xfeb00000 or 0xd0000000"
msg_legacy: .asciz "a legacy (version 1) virtio-mmio device; QEMU needs -global virtio-mmio.force-legacy=false"
msg_no_version_1: .asciz "a device without VIRTIO_F_VERSION_1"
msg_features_refused: .asciz "a device refused VIRTIO_F_VERSION_1 (FEATURES_OK not set)"
msg_queue_size: .asciz "a device's queue 0 is missing or its size is not a power of two"
msg_timeout: .asciz "timed out waiting for a device to use a buffer"

	.data
	.balign 8
	.globl blk_base, rng_base
blk_base: .quad 0
rng_base: .quad 0
