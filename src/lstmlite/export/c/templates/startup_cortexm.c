/*
 * startup_cortexm.c -- the smallest start-up a Cortex-M3/M4 program needs on the QEMU
 * mps2 boards (and most real parts): a vector table, .data copied from flash, .bss
 * zeroed, the FPU enabled when the build uses it, then main() and a semihosting exit.
 * Newlib's stock crt0 is not used (it locks up on these boards), so the link takes
 * -nostartfiles and this file instead.
 */
#include <stdint.h>
#include <stdlib.h>

extern uint32_t __data_load, __data_start, __data_end, __bss_start, __bss_end, __stack_top;
extern int main(void);
extern void initialise_monitor_handles(void); /* newlib's rdimon: semihosting stdio */

void lstmlite_reset_handler(void);
static void fault_handler(void) { for (;;) {} }

/* A vector: a handler, or (the first) the initial stack pointer, a data address, which ISO C
 * does not convert to a function pointer (-Wpedantic): a union holds either, one word. */
typedef union {
    void (*handler)(void);
    const uint32_t *stack;
} vector;

/* Initial stack pointer, then reset, NMI, hard fault, and the rest of the 16 core vectors. */
__attribute__((section(".vectors"), used)) static const vector vectors[16] = {
    {.stack = &__stack_top}, {lstmlite_reset_handler}, {fault_handler}, {fault_handler}, {fault_handler},
    {fault_handler}, {fault_handler}, {0}, {0}, {0}, {0}, {fault_handler}, {fault_handler}, {0}, {fault_handler},
    {fault_handler},
};

void lstmlite_reset_handler(void) {
    uint32_t *src = &__data_load, *dst = &__data_start;
    while (dst < &__data_end) *dst++ = *src++;
    for (dst = &__bss_start; dst < &__bss_end;) *dst++ = 0;
#if defined(__ARM_FP)
    /* CPACR: full access to coprocessors 10 and 11 (the FPU), before any float code. */
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb");
#endif
    initialise_monitor_handles();
    exit(main());
}
