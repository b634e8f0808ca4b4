# Console output on COM1, polled: usable at CPL0 and at CPL3 (IOPL 3).
# Also the probe's exit through the exit port.
	.include "defs.s"
	.text

# putc(dil): waits until the transmitter holding register is empty, then writes.
	.globl putc
putc:
	mov $COM1_LSR, %dx
1:	in %dx, %al
	test $LSR_THRE, %al
	jz 1b
	mov %dil, %al
	mov $COM1, %dx
	out %al, %dx
	ret

# puts(rdi): writes the NUL-terminated string at rdi.
	.globl puts
puts:
	push %rbx
	mov %rdi, %rbx
1:	movzbl (%rbx), %edi
	test %edi, %edi
	jz 2f
	call putc
	inc %rbx
	jmp 1b
2:	pop %rbx
	ret

# putdec(rdi): writes rdi as an unsigned decimal number.
	.globl putdec
putdec:
	push %rbx
	sub $32, %rsp
	lea 32(%rsp), %rbx
	movb $0, -1(%rbx)
	dec %rbx
	mov %rdi, %rax
	mov $10, %ecx
1:	xor %edx, %edx
	div %rcx
	add $'0', %dl
	dec %rbx
	mov %dl, (%rbx)
	test %rax, %rax
	jnz 1b
	mov %rbx, %rdi
	call puts
	add $32, %rsp
	pop %rbx
	ret

# puthex(rdi): writes rdi as 0x followed by 16 hex digits.
	.globl puthex
puthex:
	push %rbx
	push %r12
	mov %rdi, %rbx
	mov $'0', %edi
	call putc
	mov $'x', %edi
	call putc
	mov $16, %r12d
1:	rol $4, %rbx
	mov %ebx, %edi
	and $0xf, %edi
	movzbl hex_digits(%rdi), %edi
	call putc
	dec %r12d
	jnz 1b
	pop %r12
	pop %rbx
	ret

# exit(dil): 0 = done, anything else = failed. hako stops the VM (exit status
# 0 for 0); QEMU's isa-debug-exit exits with status (value << 1) | 1.
	.globl exit
exit:
	mov %dil, %al
	out %al, $EXIT_PORT
1:	pause
	jmp 1b

# fail(rdi): writes "probe: error: <string at rdi>" and exits with 1.
	.globl fail
fail:
	push %rdi
	mov $msg_error, %rdi
	call puts
	pop %rdi
	call puts
	mov $'\n', %edi
	call putc
	mov $1, %edi
	jmp exit

	.section .rodata
hex_digits: .ascii "0123456789abcdef"
msg_error: .asciz "probe: error: "
