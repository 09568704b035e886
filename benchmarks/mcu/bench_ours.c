/*
 * bench_ours.c -- T steps of a generated lstmlite model between two calls of
 * bench_marker(), which bench_mcu.py finds in QEMU's execution trace to count the
 * instructions in between. Input: example_data.h of the generated project.
 */
#include <stdio.h>

#include "model.h"
#include "example_data.h"

void __attribute__((noinline)) bench_marker(void) { __asm__ volatile("" ::: "memory"); }

int main(void) {
    lstmlite_output_t out[LSTMLITE_MODEL_OUTPUT_SIZE];
    int32_t t;
    int rc = lstmlite_model_init();
    bench_marker();
    for (t = 0; t < EXAMPLE_STEPS && rc == LSTMLITE_OK; ++t)
        rc = lstmlite_model_step(&example_input[t * LSTMLITE_MODEL_INPUT_SIZE], out);
    bench_marker();
    printf("rc %d out0 %ld\n", rc, (long)out[0]);
    return rc != LSTMLITE_OK;
}
