/*
 * lsl_tflite.h -- TFLite-compatible integer LSTM: computes exactly what TensorFlow Lite
 * Micro computes for a fused UNIDIRECTIONAL_SEQUENCE_LSTM with int8 (or 16x8: int16)
 * activations, int8 weights and an int16 cell state. Bit-exact with
 * lstmlite.reference.tflite_int (which documents every rounding and saturation).
 *
 * Self-contained portable C99: this header and lsl_tflite.c need only <stdint.h> and
 * <stddef.h> (plus <arm_acle.h> and <string.h> on a core with the DSP extension, whose
 * SMLAD the int8 matmuls use); no malloc, no libm, caller-owned buffers, int error codes. No
 * implementation-defined behaviour: right shifts of negative values and left shifts are
 * written as floor divisions / multiplications.
 *
 * Example (one int8 layer, B = 1, T steps, batch-major):
 *
 *     lsl_tflite_params p = {0};            // fill sizes, zero points (hidden_zero_point
 *                                           // too, normally = output_zero_point),
 *                                           // multipliers, gates
 *     int8_t h[H]; int16_t c[H]; int16_t scratch[LSL_TFLITE_SCRATCH_VALUES(H)];
 *     lsl_tflite_reset(&p, 1, h, c);        // h = output zero point, c = 0
 *     int rc = lsl_tflite_run(&p, 1, T, 0, x, y, h, c, scratch);   // y: (1, T, H) int8
 */
#ifndef LSL_TFLITE_H
#define LSL_TFLITE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LSL_TFLITE_OK 0
#define LSL_TFLITE_EINVAL (-1)    /* a parameter out of its documented range, or a NULL buffer */
#define LSL_TFLITE_EOVERFLOW (-2) /* an accumulator TFLite would wrap (never for real models) */

/* Gate order of the arrays below: TFLite's input, forget, cell, output. */
#define LSL_TFLITE_GATE_INPUT 0
#define LSL_TFLITE_GATE_FORGET 1
#define LSL_TFLITE_GATE_CELL 2
#define LSL_TFLITE_GATE_OUTPUT 3

/* Whose arithmetic to reproduce (lstmlite.reference.tflite_int, `kernel`). */
#define LSL_TFLITE_KERNEL_MICRO 0 /* TensorFlow Lite Micro / CMSIS-NN: LUT activations, mbqm cell products */
#define LSL_TFLITE_KERNEL_LITE 1  /* desktop TFLite / LiteRT (int8 only): gemmlowp activations, shifts */

/* int16 scratch values lsl_tflite_step / _run need (rows are processed one at a time, so
 * the batch size does not matter): four gates and one matmul temporary of H each. */
#define LSL_TFLITE_SCRATCH_VALUES(hidden) (5 * (size_t)(hidden))

typedef struct {
    const int8_t *input_weights;  /* (H, I) row-major, zero point 0 */
    const int8_t *hidden_weights; /* (H, H) row-major */
    const int32_t *bias32;        /* (H,) bias of the input matmul (int8 models), or NULL */
    const int64_t *bias64;        /* (H,) used when bias32 is NULL (16x8 models); both NULL: 0 */
    int32_t input_multiplier;     /* [0, 2^31): input matmul -> Q3.12, TFLite's mbqm form */
    int32_t input_shift;          /* left shift, negative = right, [-31, 30] */
    int32_t hidden_multiplier;    /* recurrent matmul -> Q3.12 */
    int32_t hidden_shift;
} lsl_tflite_gate;

typedef struct {
    int32_t input_size;        /* I >= 1 */
    int32_t hidden_size;       /* H >= 1 */
    int32_t activation_bits;   /* 8: int8 input/hidden, int32 acc; 16: int16, int64 acc */
    int32_t input_zero_point;  /* z_x (e.g. -128); the kernel adds -z_x */
    int32_t output_zero_point; /* z_h of the output = hidden-state tensor (the recurrent matmul subtracts it) */
    int32_t hidden_zero_point; /* added to the requantized o * tanh(c); normally = output_zero_point
                                  (desktop TFLite's "effective hidden" intermediate can differ) */
    int32_t cell_scale_power;  /* p: the cell state's scale is 2^p, [-31, 2] */
    int32_t forget_cell_multiplier, forget_cell_shift; /* f * c -> cell (2^-15) */
    int32_t input_cell_multiplier, input_cell_shift;   /* i * g -> cell */
    int32_t output_multiplier, output_shift;           /* o * tanh(c) -> output */
    int32_t cell_clip;       /* quantized clip, 0 = none, else |c| <= cell_clip */
    int32_t single_rounding; /* 0: TFLite's default double rounding; 1: TFLITE_SINGLE_ROUNDING */
    int32_t kernel;          /* LSL_TFLITE_KERNEL_MICRO (0) or LSL_TFLITE_KERNEL_LITE */
    lsl_tflite_gate gates[4];
} lsl_tflite_params;

/* LSL_TFLITE_OK when every field lies in its range, else LSL_TFLITE_EINVAL. */
int lsl_tflite_check(const lsl_tflite_params *p);

/* LSL_TFLITE_OK when no matmul accumulator can overflow for any input and state in the
 * activation range, else LSL_TFLITE_EOVERFLOW (call once, after lsl_tflite_check: it
 * reads every weight). Per gate and row, |b| + sum_j |W[r, j]| * max|v - z| (v over the
 * int8 / int16 range, z the matmul's zero point) must be at most 2^31 - 1 (int8; 2^(31-s)
 * - 1 when the multiplier's shift s > 0) or 2^47 - 1 (16x8). Steps re-check each actual
 * accumulator anyway, so an unchecked model can only fail with EOVERFLOW, never wrap. */
int lsl_tflite_check_bounds(const lsl_tflite_params *p);

/* TFLite's reset state for `batch` rows: hidden (B, H) = output zero point (int8 or int16
 * per activation_bits), cell (B, H) = 0. */
int lsl_tflite_reset(const lsl_tflite_params *p, int32_t batch, void *hidden, int16_t *cell);

/* One step for `batch` rows. x: (B, I) int8/int16; hidden (B, H) int8/int16 and cell (B, H)
 * int16 are read and updated in place (the new hidden is the step's output); scratch:
 * LSL_TFLITE_SCRATCH_VALUES(H) int16. */
int lsl_tflite_step(const lsl_tflite_params *p, int32_t batch, const void *x, void *hidden, int16_t *cell,
                    int16_t *scratch);

/* A whole sequence. x: (B, T, I), or (T, B, I) when time_major; out: same layout with H;
 * hidden/cell: the state, updated in place (stateful use: pass them to the next call). */
int lsl_tflite_run(const lsl_tflite_params *p, int32_t batch, int32_t steps, int time_major, const void *x,
                   void *out, void *hidden, int16_t *cell, int16_t *scratch);

/* TFLite's int16 activations, exposed for tests: sigmoid of Q3.12 -> Q0.15, and tanh of a
 * value with 12 - left_shift fraction bits -> Q0.15. */
int16_t lsl_tflite_sigmoid(int16_t x);
int16_t lsl_tflite_tanh(int16_t x, int32_t left_shift);
/* The LITE kernel's gemmlowp logistic / tanh of a Q(k).(15-k) value, k = integer_bits in 0..7. */
int16_t lsl_tflite_lite_logistic(int16_t x, int32_t integer_bits);
int16_t lsl_tflite_lite_tanh(int16_t x, int32_t integer_bits);

#ifdef __cplusplus
}
#endif

#endif /* LSL_TFLITE_H */
