/* A tiny "kernel" for kvm-tier tests of the Vmm: booted like vmlinux (64-bit entry, CPL0,
 * RSI = zero page). It prints over the 8250 UART (port I/O exits), performs the virtio-mmio
 * handshake on device 0 (MMIO exits; the test attaches a virtio-blk drive there), reports each
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
msg_done:     .asciz "kiln-tiny-guest: done\n"
msg_fail:     .asciz "kiln-tiny-guest: FAIL\n"
    .section .note.GNU-stack, "", @progbits
