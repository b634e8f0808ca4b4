# PVH entry and the little the probe does at CPL0: long mode with identity
# page tables, a GDT with user segments, a TSS and an IDT that reports any
# exception, then iretq to user_main at CPL3 with IOPL 3. Guest kernel code is
# emulated on PVM hosts (about 0.6 us per instruction), so everything after
# this file runs at CPL3, where the guest runs at native speed.
	.include "defs.s"

	.equ CR0_PE, 1 << 0
	.equ CR0_PG, 1 << 31
	.equ CR4_PAE, 1 << 5
	.equ MSR_EFER, 0xc0000080
	.equ EFER_LME, 1 << 8
	.equ RFLAGS_IOPL3, 3 << 12
	.equ RFLAGS_RESERVED, 1 << 1
	# Page-table entry bits: present, writable, user, 2 MiB page, cache disabled.
	.equ PTE_P, 1 << 0
	.equ PTE_W, 1 << 1
	.equ PTE_U, 1 << 2
	.equ PTE_PCD, 1 << 4
	.equ PTE_PS, 1 << 7
	.equ MMIO_START, 0xc0000000
	.equ EXCEPTION_VECTORS, 32

# XEN_ELFNOTE_PHYS32_ENTRY: where PVH loaders (hako, QEMU) start us. The
# value is 8 bytes, as Linux emits it; QEMU reads a pointer-sized value.
	.section .note.Xen, "a", @note
	.balign 4
	.long 4, 8, 18
	.asciz "Xen"
	.balign 4
	.quad pvh_entry

	.text
	.code32
# PVH: 32-bit protected mode, paging off, flat segments, EBX = start info.
	.globl pvh_entry
pvh_entry:
	cli
	lgdt gdt_pointer
	mov %cr4, %eax
	or $CR4_PAE, %eax
	mov %eax, %cr4
	mov $pml4, %eax
	mov %eax, %cr3
	mov $MSR_EFER, %ecx
	rdmsr
	or $EFER_LME, %eax
	wrmsr
	mov %cr0, %eax
	or $(CR0_PG | CR0_PE), %eax
	mov %eax, %cr0
	ljmp $KERNEL_CS, $long_mode

	.code64
long_mode:
	mov $KERNEL_DS, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	xor %eax, %eax
	mov %eax, %fs
	mov %eax, %gs
	mov $kernel_stack_top, %rsp
	call fill_idt
	call fill_tss_descriptor
	lidt idt_pointer
	mov $TSS_SEL, %eax
	ltr %ax
	# The frame iretq pops: RIP, CS, RFLAGS (interrupts off: nothing is
	# delivered, the devices are polled), RSP, SS.
	push $USER_DS
	push $user_stack_top
	push $(RFLAGS_IOPL3 | RFLAGS_RESERVED)
	push $USER_CS
	push $user_main
	iretq

# Interrupt gates for vectors 0-31, each pointing at its 16-byte stub.
fill_idt:
	mov $idt, %rdi
	mov $exception_stubs, %rax
	mov $EXCEPTION_VECTORS, %ecx
1:	mov %ax, (%rdi)                 # offset 15:0
	movw $KERNEL_CS, 2(%rdi)
	movw $0x8e00, 4(%rdi)           # present, DPL 0, 64-bit interrupt gate
	mov %rax, %rdx
	shr $16, %rdx
	mov %dx, 6(%rdi)                # offset 31:16
	shr $16, %rdx
	mov %edx, 8(%rdi)               # offset 63:32
	add $16, %rax
	add $16, %rdi
	loop 1b
	ret

# The 64-bit TSS descriptor: the TSS gives the stack for exceptions from CPL3.
fill_tss_descriptor:
	mov $tss, %rax
	mov $(tss_end - tss - 1), %edx
	mov %dx, tss_descriptor         # limit 15:0
	mov %ax, tss_descriptor + 2     # base 15:0
	shr $16, %rax
	mov %al, tss_descriptor + 4     # base 23:16
	movb $0x89, tss_descriptor + 5  # present, available 64-bit TSS
	mov %ah, tss_descriptor + 7     # base 31:24
	movq $kernel_stack_top, tss + 4 # RSP0
	movw $(tss_end - tss), tss + 102 # no I/O bitmap: IOPL 3 allows every port
	ret

# One 16-byte stub per vector: push a zero where the CPU pushes no error
# code, then the vector.
	.macro stub vector
	.balign 16
	.if \vector == 13
	jmp general_protection
	.exitm
	.endif
	.if \vector == 8 || (\vector >= 10 && \vector <= 14) || \vector == 17 || \vector == 21 || \vector == 29 || \vector == 30
	.else
	push $0
	.endif
	push $\vector
	jmp exception
	.endm
	.balign 16
exception_stubs:
	.altmacro
	.set vector, 0
	.rept EXCEPTION_VECTORS
	stub %vector
	.set vector, vector + 1
	.endr
	.noaltmacro

# PVM hosts do not honour IOPL 3 at CPL3: in and out fault there. Do the
# forms the probe uses (in al,dx; out dx,al; out imm8,al) for it and return
# after the instruction; console output and the exit are not timed. On other
# hosts they never fault. Stack: error code, RIP, CS, RFLAGS, RSP, SS.
general_protection:
	testb $3, 16(%rsp)
	jz 4f                           # not from user mode
	push %rsi
	mov 16(%rsp), %rsi
	cmpb $0xec, (%rsi)
	je 1f
	cmpb $0xee, (%rsi)
	je 2f
	cmpb $0xe6, (%rsi)
	je 3f
	pop %rsi
4:	push $13
	jmp exception
1:	in %dx, %al
	incq 16(%rsp)
	jmp 5f
2:	out %al, %dx
	incq 16(%rsp)
	jmp 5f
3:	push %rdx
	movzbl 1(%rsi), %edx
	out %al, %dx
	pop %rdx
	addq $2, 16(%rsp)
5:	pop %rsi
	add $8, %rsp                    # the error code
	iretq

# An exception is a bug in the probe or a VMM: report it and exit with 1.
# Stack: vector, error code, RIP, CS, RFLAGS, RSP, SS.
exception:
	mov $msg_exception, %rdi
	call puts
	mov (%rsp), %rdi
	call putdec
	mov $msg_error_code, %rdi
	call puts
	mov 8(%rsp), %rdi
	call puthex
	mov $msg_rip, %rdi
	call puts
	mov 16(%rsp), %rdi
	call puthex
	mov $msg_cr2, %rdi
	call puts
	mov %cr2, %rdi
	call puthex
	mov $'\n', %edi
	call putc
	mov $1, %edi
	jmp exit

	.section .rodata
msg_exception: .asciz "probe: error: exception "
msg_error_code: .asciz " error code "
msg_rip: .asciz " rip "
msg_cr2: .asciz " cr2 "

	.data
	.balign 8
gdt:
	.quad 0
	.quad 0x00af9a000000ffff        # 0x08 kernel code, 64-bit
	.quad 0x00cf92000000ffff        # 0x10 kernel data
	.quad 0x00cff2000000ffff        # 0x18 user data, DPL 3
	.quad 0x00affa000000ffff        # 0x20 user code, 64-bit, DPL 3
tss_descriptor:
	.quad 0, 0                      # 0x28, filled by fill_tss_descriptor
gdt_end:
gdt_pointer:
	.word gdt_end - gdt - 1
	.quad gdt
idt_pointer:
	.word EXCEPTION_VECTORS * 16 - 1
	.quad idt

# Identity map of the first 4 GiB in 2 MiB pages, all user-accessible (the
# probe's code, data and the virtio-mmio windows are used at CPL3); the MMIO
# hole above 3 GiB uncached.
	.balign 4096
pml4:
	.quad pdpt + PTE_P + PTE_W + PTE_U
	.fill 511, 8, 0
pdpt:
	.quad pd + 0x0000 + PTE_P + PTE_W + PTE_U
	.quad pd + 0x1000 + PTE_P + PTE_W + PTE_U
	.quad pd + 0x2000 + PTE_P + PTE_W + PTE_U
	.quad pd + 0x3000 + PTE_P + PTE_W + PTE_U
	.fill 508, 8, 0
pd:
	.set page, 0
	.rept 2048
	.if page >= MMIO_START
	.quad page + PTE_P + PTE_W + PTE_U + PTE_PS + PTE_PCD
	.else
	.quad page + PTE_P + PTE_W + PTE_U + PTE_PS
	.endif
	.set page, page + 0x200000
	.endr

	.bss
	.balign 16
idt:
	.skip EXCEPTION_VECTORS * 16
tss:
	.skip 104
tss_end:
	.balign 4096
	.skip 16384
kernel_stack_top:
	.skip 65536
	.globl user_stack_top
user_stack_top:
