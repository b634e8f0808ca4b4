# The probe's workload, run at CPL3: finds a virtio-blk and a virtio-rng
# device, then times each test with the TSC and prints one line per test:
#   probe: NAME cycles=C ops=N [bytes=B]
# (C: TSC cycles for all N operations), then "probe: done" and exits through
# the exit port. "probe: start" and "probe: done" end with " tsc=<TSC>" so the
# host can convert cycles to time. Every count is fixed and random sectors
# come from a fixed-seed xorshift, so every VMM gets the same work.
	.include "defs.s"

	.equ REG_READS, 20000
	.equ BLK_QUEUE_SIZE, 128        # 32 requests of 3 descriptors
	.equ RNG_QUEUE_SIZE, 8
	.equ BLK_MAX_DEPTH, 32
	.equ RANDOM_SEED, 0x9e3779b97f4a7c15
	.equ BLK_DATA_BYTES, 1 << 20
	.equ RNG_REQUEST_BYTES, 4096
	.equ RNG_REQUESTS, 1000

# One virtio-blk test: run it, then print its line.
	.macro blk_test name, type, count, depth, bytes, sequential
	mov $\type, %edi
	mov $\count, %esi
	mov $\depth, %edx
	mov $\bytes, %ecx
	mov $\sequential, %r8d
	call blk_run
	mov $\name, %rdi
	mov $\count, %esi
	mov $(\count * \bytes), %rdx
	call report
	.endm

	.text
	.globl user_main
user_main:
	mov $msg_start, %rdi
	call put_tsc_line
	call find_devices
	mov blk_base, %rdi
	call virtio_init
	mov blk_base, %rsi
	mov MMIO_CONFIG(%rsi), %eax     # capacity in sectors, u64
	mov MMIO_CONFIG + 4(%rsi), %edx
	shl $32, %rdx
	or %rax, %rdx
	mov %rdx, blk_sectors
	mov $blk_queue, %rdi
	mov $BLK_QUEUE_SIZE, %edx
	call queue_setup
	mov blk_base, %rdi
	call driver_ok
	mov rng_base, %rdi
	call virtio_init
	mov $rng_queue, %rdi
	mov rng_base, %rsi
	mov $RNG_QUEUE_SIZE, %edx
	call queue_setup
	mov rng_base, %rdi
	call driver_ok

	mov blk_base, %rdi
	mov $REG_READS, %esi
	call mmio_reads
	mov $name_mmio, %rdi
	mov $REG_READS, %esi
	xor %edx, %edx
	call report

	blk_test name_rand_read_qd1, BLK_T_IN, 2000, 1, 4096, 0
	blk_test name_rand_write_qd1, BLK_T_OUT, 2000, 1, 4096, 0
	blk_test name_rand_read_qd32, BLK_T_IN, 8000, 32, 4096, 0
	blk_test name_rand_write_qd32, BLK_T_OUT, 8000, 32, 4096, 0
	blk_test name_seq_read, BLK_T_IN, 64, 1, 1 << 20, 1

	mov $RNG_REQUESTS, %edi
	call rng_run
	mov $name_rng, %rdi
	mov $RNG_REQUESTS, %esi
	mov rng_bytes, %rdx
	call report

	mov $msg_done, %rdi
	call put_tsc_line
	xor %edi, %edi
	jmp exit

# put_tsc_line(rdi = "probe: start" or "probe: done"): writes the string and
# " tsc=<TSC>": the host times both lines to learn the TSC rate.
put_tsc_line:
	push %rbx
	push %rdi
	call tsc
	mov %rax, %rbx
	pop %rdi
	call puts
	mov $msg_tsc, %rdi
	call puts
	mov %rbx, %rdi
	call putdec
	mov $'\n', %edi
	call putc
	pop %rbx
	ret

# tsc: rax = the time-stamp counter, after earlier instructions finish.
tsc:
	lfence
	rdtsc
	shl $32, %rdx
	or %rdx, %rax
	ret

# report(rdi = name, rax = cycles, esi = ops, rdx = bytes or 0)
report:
	push %rbx
	push %r12
	push %r13
	push %r14
	mov %rax, %rbx
	mov %esi, %r12d
	mov %rdx, %r13
	mov %rdi, %r14
	mov $msg_prefix, %rdi
	call puts
	mov %r14, %rdi
	call puts
	mov $msg_cycles, %rdi
	call puts
	mov %rbx, %rdi
	call putdec
	mov $msg_ops, %rdi
	call puts
	mov %r12, %rdi
	call putdec
	test %r13, %r13
	jz 1f
	mov $msg_bytes, %rdi
	call puts
	mov %r13, %rdi
	call putdec
1:	mov $'\n', %edi
	call putc
	pop %r14
	pop %r13
	pop %r12
	pop %rbx
	ret

# mmio_reads(rdi = MMIO base, esi = count): reads MagicValue count times, each
# a VM exit to the VMM and back; rax = cycles.
mmio_reads:
	push %rbx
	mov %esi, %ebx
	call tsc
	mov %rax, %r8
1:	mov MMIO_MAGIC(%rdi), %eax
	dec %ebx
	jnz 1b
	call tsc
	sub %r8, %rax
	pop %rbx
	ret

# next_random: rax = the next xorshift64 value.
next_random:
	mov random_state, %rax
	mov %rax, %rdx
	shl $13, %rdx
	xor %rdx, %rax
	mov %rax, %rdx
	shr $7, %rdx
	xor %rdx, %rax
	mov %rax, %rdx
	shl $17, %rdx
	xor %rdx, %rax
	mov %rax, random_state
	ret

# blk_run(edi = request type, esi = count, edx = queue depth, ecx = bytes per
# request, r8d = 1 for sequential blocks from sector 0, 0 for random ones):
# keeps `depth` requests in flight until `count` have completed; rax = cycles.
# Request slot s uses descriptors 3s (header), 3s+1 (data), 3s+2 (status).
blk_run:
	push %rbx
	push %rbp
	push %r12
	push %r13
	push %r14
	push %r15
	mov %edi, blk_type
	mov %esi, %r12d                 # r12: requests left to submit
	mov %esi, %r13d                 # r13: requests left to complete
	mov %edx, %r14d                 # r14: depth
	mov %ecx, blk_request_bytes
	mov %r8d, blk_sequential
	lea (%rdx, %rdx, 2), %eax
	cmp blk_queue + Q_SIZE, %eax
	ja 9f
	# The disk in blocks of the request size; sectors per block.
	mov %ecx, %ebx
	shr $9, %ebx                    # 512-byte sectors
	mov %rbx, blk_block_sectors
	mov blk_sectors, %rax
	xor %edx, %edx
	div %rbx
	test %rax, %rax
	jz 8f
	mov %rax, blk_blocks
	movq $0, blk_next_block
	mov $RANDOM_SEED, %rax
	mov %rax, random_state

	xor %ebx, %ebx                  # rbx: slot
1:	call blk_chain
	inc %ebx
	cmp %r14d, %ebx
	jb 1b

	call tsc
	mov %rax, %r15
	xor %ebx, %ebx
2:	test %r12d, %r12d               # fill the queue
	jz 3f
	cmp %r14d, %ebx
	jae 3f
	call blk_submit
	inc %ebx
	jmp 2b
3:	mov $blk_queue, %rdi
	call queue_kick
4:	mov $blk_queue, %rdi
	call queue_wait
	mov %eax, %ebp                  # rbp: used chains to collect
	mov %r12d, blk_unsubmitted
5:	mov $blk_queue, %rdi
	call queue_pop
	xor %edx, %edx
	mov $3, %ecx
	div %ecx
	mov %eax, %ebx
	cmpb $0, blk_status(%rbx)
	jne 7f
	test %r12d, %r12d
	jz 6f
	call blk_submit
6:	dec %r13d
	dec %ebp
	jnz 5b
	test %r13d, %r13d
	jz 10f
	cmp blk_unsubmitted, %r12d      # kick only when this round added requests
	je 4b
	mov $blk_queue, %rdi
	call queue_kick
	jmp 4b
10:	call tsc
	sub %r15, %rax
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %rbp
	pop %rbx
	ret
7:	mov $msg_blk_failed, %rdi
	jmp fail
8:	mov $msg_disk_small, %rdi
	jmp fail
9:	mov $msg_blk_queue_small, %rdi
	jmp fail

# blk_chain(ebx = slot): writes the three descriptors of request slot ebx.
blk_chain:
	push %r12
	lea (%rbx, %rbx, 2), %r12d      # r12: head descriptor
	mov $blk_queue, %rdi
	mov %r12d, %esi
	mov %rbx, %rdx
	shl $4, %rdx
	add $blk_headers, %rdx
	mov $16, %ecx
	mov $DESC_F_NEXT, %r8d
	lea 1(%r12), %r9d
	call desc_set
	mov $blk_queue, %rdi
	lea 1(%r12), %esi
	mov blk_request_bytes, %ecx
	mov %ecx, %edx
	imul %rbx, %rdx
	add $blk_data, %rdx
	mov $DESC_F_NEXT, %r8d
	cmpl $BLK_T_IN, blk_type
	jne 1f
	or $DESC_F_WRITE, %r8d          # a read: the device writes the data
1:	lea 2(%r12), %r9d
	call desc_set
	mov $blk_queue, %rdi
	lea 2(%r12), %esi
	lea blk_status(%rbx), %rdx
	mov $1, %ecx
	mov $DESC_F_WRITE, %r8d
	xor %r9d, %r9d
	call desc_set
	pop %r12
	ret

# blk_submit(ebx = slot): fills slot ebx's header with the next sector and
# adds it to the avail ring; counts it in r12.
blk_submit:
	mov %rbx, %rdi
	shl $4, %rdi
	add $blk_headers, %rdi
	mov blk_type, %eax
	mov %eax, (%rdi)
	movl $0, 4(%rdi)
	push %rdi
	cmpl $0, blk_sequential
	je 1f
	mov blk_next_block, %rax
	lea 1(%rax), %rcx
	mov %rcx, blk_next_block
	jmp 2f
1:	call next_random
2:	xor %edx, %edx
	divq blk_blocks
	mov %rdx, %rax
	mulq blk_block_sectors
	pop %rdi
	mov %rax, 8(%rdi)
	movb $0xff, blk_status(%rbx)
	mov $blk_queue, %rdi
	lea (%rbx, %rbx, 2), %esi
	call queue_add
	dec %r12d
	ret

# rng_run(edi = count): count 4 KiB requests to virtio-rng, one at a time;
# rax = cycles, rng_bytes = what the device wrote.
rng_run:
	push %rbx
	push %r12
	push %r13
	mov %edi, %ebx
	mov $rng_queue, %rdi
	xor %esi, %esi
	mov $rng_buffer, %edx
	mov $RNG_REQUEST_BYTES, %ecx
	mov $DESC_F_WRITE, %r8d
	xor %r9d, %r9d
	call desc_set
	xor %r13d, %r13d                # r13: bytes
	call tsc
	mov %rax, %r12
1:	mov $rng_queue, %rdi
	xor %esi, %esi
	call queue_add
	mov $rng_queue, %rdi
	call queue_kick
	mov $rng_queue, %rdi
	call queue_wait
	mov $rng_queue, %rdi
	call queue_pop
	add %rdx, %r13
	dec %ebx
	jnz 1b
	call tsc
	sub %r12, %rax
	mov %r13, rng_bytes
	pop %r13
	pop %r12
	pop %rbx
	ret

	.section .rodata
msg_start: .asciz "probe: start"
msg_done: .asciz "probe: done"
msg_tsc: .asciz " tsc="
msg_prefix: .asciz "probe: "
msg_cycles: .asciz " cycles="
msg_ops: .asciz " ops="
msg_bytes: .asciz " bytes="
msg_blk_failed: .asciz "a virtio-blk request failed (status byte not VIRTIO_BLK_S_OK)"
msg_disk_small: .asciz "the virtio-blk disk is smaller than one request"
msg_blk_queue_small: .asciz "the virtio-blk queue is too small for the queue depth"
name_mmio: .asciz "mmio-read"
name_rand_read_qd1: .asciz "blk-randread-4k-qd1"
name_rand_write_qd1: .asciz "blk-randwrite-4k-qd1"
name_rand_read_qd32: .asciz "blk-randread-4k-qd32"
name_rand_write_qd32: .asciz "blk-randwrite-4k-qd32"
name_seq_read: .asciz "blk-seqread-1m-qd1"
name_rng: .asciz "rng-4k"

	.data
	.balign 8
# struct queue (defs.s): MMIO base, then the rings' addresses.
blk_queue: .quad 0, blk_desc, blk_avail, blk_used, 0, 0
rng_queue: .quad 0, rng_desc, rng_avail, rng_used, 0, 0
blk_sectors: .quad 0
blk_blocks: .quad 0
blk_block_sectors: .quad 0
blk_next_block: .quad 0
random_state: .quad 0
rng_bytes: .quad 0
blk_type: .long 0
blk_unsubmitted: .long 0
blk_request_bytes: .long 0
blk_sequential: .long 0

	.bss
	.balign 4096
blk_desc: .skip 4096
blk_avail: .skip 4096
blk_used: .skip 4096
rng_desc: .skip 4096
rng_avail: .skip 4096
rng_used: .skip 4096
rng_buffer: .skip RNG_REQUEST_BYTES
blk_headers: .skip 16 * BLK_MAX_DEPTH
blk_status: .skip BLK_MAX_DEPTH
	.balign 4096
blk_data: .skip BLK_DATA_BYTES
