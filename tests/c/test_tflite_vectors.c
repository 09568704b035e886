/*
 * test_tflite_vectors.c -- lsl_tflite.c alone (no Python, no libm) on one TFLite Micro
 * vector set, read straight from CMSIS-NN's C headers. Built once per set by
 * tests/c/test_tflite_c.py with
 *   -DCASE_HEADER='"<set>/test_data.h"' -DLO=<set> -DUP=<SET>
 * and prints "ok" when every output equals TFLite Micro's.
 */
#include <stdbool.h> /* the vector headers say true/false */
#include <stdio.h>
#include <string.h>

#include "lsl_tflite.h"
#include "lsl_tflite.h" /* twice on purpose: the include guard works */

#include CASE_HEADER

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define A(name) CAT(LO, CAT(_, name)) /* lstm_1 ## _ ## input_tensor */
#define C(name) CAT(UP, CAT(_, name)) /* LSTM_1 ## _ ## BATCH_SIZE */

#define H_ C(HIDDEN_SIZE)
#define B_ C(BATCH_SIZE)
#define T_ C(TIME_STEPS)

#define GATE(k, lo, UPG)                                                                                     \
    do {                                                                                                     \
        p.gates[k].input_weights = A(CAT(lo, _gate_input_weights));                                          \
        p.gates[k].hidden_weights = A(CAT(lo, _gate_hidden_weights));                                        \
        if (sizeof(A(CAT(lo, _gate_bias))[0]) == 4)                                                          \
            p.gates[k].bias32 = (const int32_t *)(const void *)A(CAT(lo, _gate_bias));                       \
        else                                                                                                 \
            p.gates[k].bias64 = (const int64_t *)(const void *)A(CAT(lo, _gate_bias));                       \
        p.gates[k].input_multiplier = C(CAT(UPG, _GATE_INPUT_MULTIPLIER));                                   \
        p.gates[k].input_shift = C(CAT(UPG, _GATE_INPUT_SHIFT));                                             \
        p.gates[k].hidden_multiplier = C(CAT(UPG, _GATE_HIDDEN_MULTIPLIER));                                 \
        p.gates[k].hidden_shift = C(CAT(UPG, _GATE_HIDDEN_SHIFT));                                           \
    } while (0)

static int16_t cell[B_ * H_];
static int16_t scratch[LSL_TFLITE_SCRATCH_VALUES(H_)];
static int16_t hidden_buf[B_ * H_]; /* big enough for int8 or int16 */
static int16_t out_buf[B_ * T_ * H_];

int main(void) {
    lsl_tflite_params p;
    int rc, k, bad = 0;
    const int n = B_ * T_ * H_;
    memset(&p, 0, sizeof p);
    p.input_size = C(INPUT_SIZE);
    p.hidden_size = H_;
    p.activation_bits = (int32_t)(8 * sizeof(A(input_tensor)[0]));
    p.input_zero_point = -(C(INPUT_ZERO_POINT)); /* the headers hold the offset, -z_x */
    p.output_zero_point = C(OUTPUT_ZERO_POINT);
    p.hidden_zero_point = C(OUTPUT_ZERO_POINT);
    p.cell_scale_power = C(CELL_SCALE_POWER);
    p.forget_cell_multiplier = C(FORGET_TO_CELL_MULTIPLIER);
    p.forget_cell_shift = C(FORGET_TO_CELL_SHIFT);
    p.input_cell_multiplier = C(INPUT_TO_CELL_MULTIPLIER);
    p.input_cell_shift = C(INPUT_TO_CELL_SHIFT);
    p.output_multiplier = C(OUTPUT_MULTIPLIER);
    p.output_shift = C(OUTPUT_SHIFT);
    p.cell_clip = C(CELL_CLIP);
    GATE(LSL_TFLITE_GATE_INPUT, input, INPUT);
    GATE(LSL_TFLITE_GATE_FORGET, forget, FORGET);
    GATE(LSL_TFLITE_GATE_CELL, cell, CELL);
    GATE(LSL_TFLITE_GATE_OUTPUT, output, OUTPUT);

    /* reset must set every value: start it from garbage, not the static arrays' zeros */
    memset(cell, 0x5a, sizeof cell);
    memset(hidden_buf, 0x5a, sizeof hidden_buf);
    rc = lsl_tflite_reset(&p, B_, hidden_buf, cell);
    if (rc == LSL_TFLITE_OK)
        rc = lsl_tflite_run(&p, B_, T_, C(TIME_MAJOR) ? 1 : 0, A(input_tensor), out_buf, hidden_buf, cell, scratch);
    if (rc != LSL_TFLITE_OK) {
        printf("error %d\n", rc);
        return 1;
    }
    for (k = 0; k < n; k++) {
        long got = p.activation_bits == 8 ? (long)((const int8_t *)(const void *)out_buf)[k] : (long)out_buf[k];
        if (got != (long)A(output)[k]) {
            if (bad < 5) printf("output %d: got %ld, TFLite %ld\n", k, got, (long)A(output)[k]);
            bad++;
        }
    }
    if (bad) {
        printf("%d of %d outputs differ\n", bad, n);
        return 1;
    }
    printf("ok %d outputs\n", n);
    return 0;
}
