/* KVM self-test guest: long mode at CPL0 -> iretq to CPL3 -> SYSCALL -> handler must run at
 * CPL0. Progress is reported as 32-bit MMIO writes to KILN_SELFTEST_MMIO (no memslot there).
 * Assembled into the host library as data; the host copies it to guest physical 0x8000. */
#define LOAD_ADDR 0x8000
#define MMIO 0x1ff000
#define ABS(label) (LOAD_ADDR + (label - kiln_selftest_guest_start))

    .section .rodata.kiln_selftest, "a"
    .globl kiln_selftest_guest_start
    .globl kiln_selftest_guest_end
    .globl kiln_selftest_guest_lstar
    .code64
kiln_selftest_guest_start:
    movl $1, MMIO               /* stage 1: running at CPL0 in long mode */
    pushq $0x23                 /* SS: user data, RPL 3 */
    pushq $0x9ff0               /* RSP */
    pushq $0x2                  /* RFLAGS */
    pushq $0x2b                 /* CS: user code, RPL 3 */
    pushq $ABS(user_entry)
    iretq
user_entry:
    movl $2, MMIO               /* stage 2: reached CPL3 */
    syscall
    movl $0xdead, MMIO          /* SYSCALL fell through */
1:  jmp 1b
kiln_selftest_guest_lstar:
    movq %cr0, %rax             /* privileged: faults (-> triple fault) unless CPL0 */
    movw %cs, %ax
    movzwl %ax, %eax
    orl $0x300, %eax            /* stage 3 with CS in the low byte */
    movl %eax, MMIO
2:  hlt
    jmp 2b
kiln_selftest_guest_end:
    .section .note.GNU-stack, "", @progbits
