/* A tiny "kernel" for kvm-tier tests of the Vmm: booted like vmlinux (64-bit entry, CPL0,
 * RSI = zero page). It prints over the 8250 UART (port I/O exits), performs the virtio-mmio
 * handshake on device 0 (MMIO exits; the test attaches a virtio-blk drive there), reads its first
 * sector through the queue (an ioeventfd kick, served by the device event loop), reports each
 * result on the serial line and resets the machine through the i8042 (exit code 0). */
    .code64
    .text
    .globl _start
_start:
    lea msg_hello(%rip), %rsi
    call puts
    /* "spin" on the command line: idle forever (for host-side stop tests) */
    cmpl $0x6e697073, 0x20000
    je idle
    /* The boot page tables map only the first 1 GiB: map 3..4 GiB (MMIO) with a PD at 0xc000. */
    mov $0xc000, %rdi
    mov $0xc0000083, %rax
    mov $512, %ecx
5:  mov %rax, (%rdi)
    add $0x200000, %rax
    add $8, %rdi
    loop 5b
    movq $0xc003, 0xa018            /* PDPT[3] -> PD */
    mov %cr3, %rax
    mov %rax, %cr3
    /* zero page sanity: boot_flag 0xaa55 at 0x1fe, HdrS at 0x202 */
    mov $0x7000, %rbx
    cmpw $0xaa55, 0x1fe(%rbx)
    jne fail
    cmpl $0x53726448, 0x202(%rbx)
    jne fail
    lea msg_zeropage(%rip), %rsi
    call puts

    mov $0xd0000000, %rbx
    cmpl $0x74726976, 0x000(%rbx)   /* MagicValue "virt" */
    jne fail
    cmpl $2, 0x004(%rbx)            /* Version 2 (modern) */
    jne fail
    cmpl $2, 0x008(%rbx)            /* DeviceID 2: block */
    jne fail
    movl $0, 0x070(%rbx)            /* reset */
    movl $1, 0x070(%rbx)            /* ACKNOWLEDGE */
    movl $3, 0x070(%rbx)            /* | DRIVER */
    movl $1, 0x014(%rbx)            /* DeviceFeaturesSel = 1 */
    testl $1, 0x010(%rbx)           /* VIRTIO_F_VERSION_1 (feature bit 32) offered */
    jz fail
    movl $1, 0x024(%rbx)            /* DriverFeaturesSel = 1 */
    movl $1, 0x020(%rbx)            /* accept VIRTIO_F_VERSION_1 */
    movl $0, 0x024(%rbx)
    movl $0, 0x020(%rbx)
    movl $11, 0x070(%rbx)           /* | FEATURES_OK */
    testl $8, 0x070(%rbx)           /* device kept FEATURES_OK */
    jz fail
    movl $0, 0x030(%rbx)            /* QueueSel 0 */
    cmpl $0, 0x034(%rbx)            /* QueueNumMax > 0 */
    je fail
    /* One virtio-blk IN request for sector 0 on a 4-entry queue (rings at 2 MiB), polled (no
     * interrupt): the drive's first 8 bytes must be "KILNDISK" (the test writes them). */
    movl $4, 0x038(%rbx)            /* QueueNum 4 */
    movl $0x200000, 0x080(%rbx)     /* QueueDesc */
    movl $0, 0x084(%rbx)
    movl $0x201000, 0x090(%rbx)     /* QueueDriver (avail ring) */
    movl $0, 0x094(%rbx)
    movl $0x202000, 0x0a0(%rbx)     /* QueueDevice (used ring) */
    movl $0, 0x0a4(%rbx)
    movl $1, 0x044(%rbx)            /* QueueReady */
    movl $15, 0x070(%rbx)           /* | DRIVER_OK */
    mov $0x200000, %rdi             /* descriptors: header (16), data (512, write), status (1, write) */
    movq $0x203000, 0(%rdi)
    movl $16, 8(%rdi)
    movw $1, 12(%rdi)               /* NEXT */
    movw $1, 14(%rdi)
    movq $0x204000, 16(%rdi)
    movl $512, 24(%rdi)
    movw $3, 28(%rdi)               /* NEXT | WRITE */
    movw $2, 30(%rdi)
    movq $0x205000, 32(%rdi)
    movl $1, 40(%rdi)
    movw $2, 44(%rdi)               /* WRITE */
    movw $0, 46(%rdi)
    movq $0, 0x203000               /* header: type IN, sector 0 */
    movq $0, 0x203008
    movb $0xff, 0x205000            /* status: not yet written */
    movw $0, 0x201004               /* avail ring[0] = descriptor 0 */
    movw $1, 0x201000               /* VIRTQ_AVAIL_F_NO_INTERRUPT */
    movw $1, 0x201002               /* avail idx 1 */
    movl $0, 0x050(%rbx)            /* QueueNotify 0 */
    mov $0x10000000, %ecx           /* bounded wait: a lost request is a FAIL, not a hang */
7:  pause
    cmpw $1, 0x202002               /* used idx */
    je 8f
    loop 7b
    jmp fail
8:
    cmpb $0, 0x205000               /* VIRTIO_BLK_S_OK */
    jne fail
    mov $0x4b5349444e4c494b, %rax   /* "KILNDISK" */
    cmpq %rax, 0x204000
    jne fail
    lea msg_block(%rip), %rsi
    call puts
    movl $0, 0x070(%rbx)            /* reset, then the handshake again up to FEATURES_OK */
    movl $1, 0x070(%rbx)
    movl $3, 0x070(%rbx)
    movl $1, 0x024(%rbx)
    movl $1, 0x020(%rbx)
    movl $0, 0x024(%rbx)
    movl $0, 0x020(%rbx)
    movl $11, 0x070(%rbx)
    movl $0, 0x030(%rbx)            /* QueueSel 0 */
    movl $3, 0x038(%rbx)            /* QueueNum 3: not a power of two -> must be refused */
    movl $0, 0x070(%rbx)            /* reset the device again */
    cmpl $0, 0x070(%rbx)
    jne fail
    lea msg_virtio(%rip), %rsi
    call puts
    /* an unmapped MMIO read returns all ones */
    mov $0xd0100000, %rcx
    cmpl $0xffffffff, (%rcx)
    jne fail
    lea msg_done(%rip), %rsi
    call puts
reset:
    mov $0xfe, %al
    out %al, $0x64                  /* i8042: pulse reset line */
1:  hlt
    jmp 1b
idle:
    cli
6:  hlt
    jmp 6b
fail:
    lea msg_fail(%rip), %rsi
    call puts
    jmp reset

/* puts: writes the NUL-terminated string at RSI to COM1, waiting for THR empty. */
puts:
    mov $0x3f8, %dx
2:  lodsb
    test %al, %al
    jz 4f
    mov %al, %ah
    mov $0x3fd, %dx
3:  in %dx, %al                     /* LSR: THR empty? */
    test $0x20, %al
    jz 3b
    mov $0x3f8, %dx
    mov %ah, %al
    out %al, %dx
    jmp 2b
4:  ret

    .section .rodata
msg_hello:    .asciz "kiln-tiny-guest: serial ok\n"
msg_zeropage: .asciz "kiln-tiny-guest: zero page ok\n"
msg_virtio:   .asciz "kiln-tiny-guest: virtio-mmio handshake ok\n"
msg_block:    .asciz "kiln-tiny-guest: block read ok\n"
msg_done:     .asciz "kiln-tiny-guest: done\n"
msg_fail:     .asciz "kiln-tiny-guest: FAIL\n"
    .section .note.GNU-stack, "", @progbits
