/*
 * bench_cmsis.c -- CMSIS-NN's arm_lstm_unidirectional_s8 on an LSTM of the same shape,
 * T steps between two calls of bench_marker() (see bench_ours.c). The weights and
 * quantization parameters come from cmsis_data.h, written by bench_mcu.py; their values
 * only steer saturation branches, the work per step is set by the shape.
 */
#include <stdio.h>
#include <string.h>

#include "arm_nnfunctions.h"
#include "cmsis_data.h"

void __attribute__((noinline)) bench_marker(void) { __asm__ volatile("" ::: "memory"); }

static int16_t temp1[HIDDEN], temp2[HIDDEN], cell[HIDDEN];
static int8_t hidden[HIDDEN];
static int8_t output[STEPS * HIDDEN];

static cmsis_nn_lstm_gate gate(int k, arm_nn_activation_type act) {
    cmsis_nn_lstm_gate g;
    g.input_multiplier = 1518500250;
    g.input_shift = -9;
    g.input_weights = w_ih + (size_t)k * HIDDEN * INPUT;
    g.input_effective_bias = bias + (size_t)k * HIDDEN;
    g.hidden_multiplier = 1518500250;
    g.hidden_shift = -9;
    g.hidden_weights = w_hh + (size_t)k * HIDDEN * HIDDEN;
    g.hidden_effective_bias = zero_bias;
    g.bias = NULL;
    g.activation_type = act;
    return g;
}

int main(void) {
    cmsis_nn_lstm_params p;
    cmsis_nn_lstm_context ctx;
    arm_cmsis_nn_status rc;
    memset(&p, 0, sizeof p);
    p.time_major = 1;
    p.batch_size = 1;
    p.time_steps = STEPS;
    p.input_size = INPUT;
    p.hidden_size = HIDDEN;
    p.input_offset = 0;
    p.forget_to_cell_multiplier = 1073741824;
    p.forget_to_cell_shift = -14;
    p.input_to_cell_multiplier = 1073741824;
    p.input_to_cell_shift = -18;
    p.cell_clip = 32767;
    p.cell_scale_power = -11;
    p.output_multiplier = 1073741824;
    p.output_shift = -15;
    p.output_offset = 0;
    p.input_gate = gate(0, ARM_SIGMOID); /* PyTorch's gate order: i, f, g, o */
    p.forget_gate = gate(1, ARM_SIGMOID);
    p.cell_gate = gate(2, ARM_TANH);
    p.output_gate = gate(3, ARM_SIGMOID);
    ctx.temp1 = temp1;
    ctx.temp2 = temp2;
    ctx.cell_state = cell;
    ctx.hidden_state = hidden; /* zero state, and every step runs both products */
    bench_marker();
    rc = arm_lstm_unidirectional_s8(input, output, &p, &ctx);
    bench_marker();
    printf("rc %d out0 %d\n", (int)rc, (int)output[(STEPS - 1) * HIDDEN]);
    return rc != ARM_CMSIS_NN_SUCCESS;
}
