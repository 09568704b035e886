/*
 * test_fastmath.c -- lsl_fastmath.h against double-precision libm, built and run by
 * tests/c/test_fastmath.py (natively and, cross-compiled, under qemu-aarch64).
 *
 * Walks every 64th float bit pattern of the whole line (both signs, NaN and inf
 * included; `test_fastmath N` every N-th, for an emulator) and every float of [-1, 1]
 * with step 2^-20, and checks the bounds that lsl_fastmath.h states. Prints the worst
 * errors found.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lsl_fastmath.h"

static int failures = 0;
#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            if (failures++ < 10) fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

/* The bounds of lsl_fastmath.h's header comment. */
#define TANH_MAX_ULP 7.0
#define TANH_MAX_REL 4e-7
#define SIGMOID_MAX_ABS 2.5e-7

static double worst_tanh_ulp = 0, worst_tanh_rel = 0, worst_sig_abs = 0;
static float worst_tanh_x = 0, worst_sig_x = 0;

/* Distance between adjacent floats at the magnitude of v (v a double). */
static double ulp_of(double v) {
    int e;
    v = fabs(v);
    if (v < 1.1754943508222875e-38) return ldexp(1.0, -149);
    frexp(v, &e);
    return ldexp(1.0, e - 24);
}

static void check_one(float x) {
    float t = lsl_fast_tanhf(x), s = lsl_fast_sigmoidf(x);
    if (isnan(x)) {
        CHECK(isnan(t) && isnan(s));
        return;
    }
    {
        double rt = tanh((double)x), rs = 1.0 / (1.0 + exp(-(double)x));
        double ulps = fabs(t - rt) / ulp_of(rt), rel = rt != 0 ? fabs(t - rt) / fabs(rt) : fabs(t);
        double abs_s = fabs(s - rs);
        CHECK(ulps <= TANH_MAX_ULP && rel <= TANH_MAX_REL);
        CHECK(abs_s <= SIGMOID_MAX_ABS);
        CHECK(t >= -1.0f && t <= 1.0f && s >= 0.0f && s <= 1.0f);
        if (ulps > worst_tanh_ulp) worst_tanh_ulp = ulps, worst_tanh_x = x;
        if (rel > worst_tanh_rel) worst_tanh_rel = rel;
        if (abs_s > worst_sig_abs) worst_sig_abs = abs_s, worst_sig_x = x;
    }
}

int main(int argc, char **argv) {
    const uint64_t stride = argc > 1 ? strtoull(argv[1], NULL, 10) : 64;
    uint64_t b;
    int32_t i;
    if (stride == 0) return 2;
    for (b = 0; b <= 0xFFFFFFFFu; b += stride) {
        uint32_t bits = (uint32_t)b;
        float x;
        memcpy(&x, &bits, 4);
        check_one(x);
    }
    for (i = -(1 << 20); i <= (1 << 20); ++i) check_one((float)ldexp((double)i, -20));
    /* the values the clamp and odd symmetry must get right */
    CHECK(lsl_fast_tanhf(INFINITY) == 1.0f && lsl_fast_tanhf(-INFINITY) == -1.0f);
    CHECK(lsl_fast_sigmoidf(INFINITY) == 1.0f && lsl_fast_sigmoidf(-INFINITY) == 0.0f);
    CHECK(lsl_fast_tanhf(0.0f) == 0.0f && lsl_fast_sigmoidf(0.0f) == 0.5f);
    CHECK(lsl_fast_tanhf(-0.3f) == -lsl_fast_tanhf(0.3f));
    printf("tanh: max %.2f ulp (x = %.9g), max relative %.3g; sigmoid: max absolute %.3g (x = %.9g)\n",
           worst_tanh_ulp, worst_tanh_x, worst_tanh_rel, worst_sig_abs, worst_sig_x);
    if (failures) {
        fprintf(stderr, "%d checks failed\n", failures);
        return 1;
    }
    printf("ok\n");
    return 0;
}
