/*
 * lsl_fastmath.h -- the runtime's one tanh and sigmoid for float code: scalar inline
 * functions with no libm call and no branch, so that GCC/Clang -O3 vectorize a loop
 * over them (SSE/AVX on x86, NEON on aarch64) -- the portable kernels' element-wise
 * loops and the NEON table, which reuses them.
 *
 * tanh is Eigen's rational approximation (odd degree-13 / even degree-6 polynomials,
 * input clamped to +-7.9053), the one the AVX2 kernels evaluate with FMAs and a
 * division and the AVX-512 ones with FMAs and a refined reciprocal; here it is plain
 * multiplies, adds and one division, so every path computes the same function and
 * results agree to a few ulp.
 * sigmoid(x) = (1 + tanh(x / 2)) / 2, as there: no exp is needed at all.
 *
 * Error bounds, checked for every 64th float of the whole line and every float in
 * [-1, 1] by step 2^-20 (tests/c/test_fastmath.c, against double-precision libm):
 *   lsl_fast_tanhf:     relative error <= 4e-7 and <= 7 ulp everywhere (measured:
 *                       3.6e-7, 6.1 ulp near |x| = 5.9)
 *   lsl_fast_sigmoidf:  absolute error <= 2.5e-7 (measured 2.0e-7); no relative bound
 *                       for x below about -9, where 1 + tanh cancels -- an LSTM adds
 *                       gate products, so the absolute error is what matters
 * NaN propagates; +-inf give +-1 (tanh) and 1 / 0 (sigmoid).
 * Results are bit-identical on every target that rounds IEEE single precision and
 * does not fuse a*b+c (the build passes -ffp-contract=off).
 */
#ifndef LSTMLITE_LSL_FASTMATH_H
#define LSTMLITE_LSL_FASTMATH_H

#include <stdint.h>
#include <string.h>

/* Eigen's rational tanh, x P(x^2) / Q(x^2) for |x| up to the clamp: the one set of
 * coefficients every path evaluates (here, lsl_kern_avx2.h, lsl_kern_avx512.h). P from
 * the coefficient of x^12 down to x^0, Q from x^6 down. */
#define LSL_TANH_CLAMP 7.90531110763549805f /* tanh rounds to 1 there */
#define LSL_TANH_P6 (-2.76076847742355e-16f)
#define LSL_TANH_P5 2.00018790482477e-13f
#define LSL_TANH_P4 (-8.60467152213735e-11f)
#define LSL_TANH_P3 5.12229709037114e-08f
#define LSL_TANH_P2 1.48572235717979e-05f
#define LSL_TANH_P1 6.37261928875436e-04f
#define LSL_TANH_P0 4.89352455891786e-03f
#define LSL_TANH_Q3 1.19825839466702e-06f
#define LSL_TANH_Q2 1.18534705686654e-04f
#define LSL_TANH_Q1 2.26843463243900e-03f
#define LSL_TANH_Q0 4.89352518554385e-03f /* Q is in [0.0049, 0.09]: no division by zero */

/* Float <-> bits; memcpy is the defined way, and compilers turn it into a move. */
static inline uint32_t lsl_fbits_(float x) {
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    return b;
}
static inline float lsl_bitsf_(uint32_t b) {
    float x;
    memcpy(&x, &b, sizeof x);
    return x;
}

/* The clamp works on the bits, with integer compares: GCC (12, under its default
 * -ftrapping-math) will not if-convert a float compare, and a loop with a branch is not
 * vectorized. |x|'s bits order like |x|; NaN's lie above inf's and stay as they are. */
static inline float lsl_fast_tanhf(float x) {
    const uint32_t clamp = 0x40FCF84Fu; /* LSL_TANH_CLAMP's bits */
    const uint32_t inf = 0x7F800000u;
    uint32_t b = lsl_fbits_(x), sign = b & 0x80000000u, mag = b ^ sign;
    float x2, p, q;
    mag = ((mag > clamp) & (mag <= inf)) ? clamp : mag;
    x = lsl_bitsf_(mag | sign);
    x2 = x * x;
    p = x2 * LSL_TANH_P6 + LSL_TANH_P5;
    p = x2 * p + LSL_TANH_P4;
    p = x2 * p + LSL_TANH_P3;
    p = x2 * p + LSL_TANH_P2;
    p = x2 * p + LSL_TANH_P1;
    p = x2 * p + LSL_TANH_P0;
    q = x2 * LSL_TANH_Q3 + LSL_TANH_Q2;
    q = x2 * q + LSL_TANH_Q1;
    q = x2 * q + LSL_TANH_Q0;
    /* x times the even ratio (about 1 near 0), not (x p) / q: x p would underflow and
     * lose bits for tiny x */
    return x * (p / q);
}

static inline float lsl_fast_sigmoidf(float x) { return lsl_fast_tanhf(0.5f * x) * 0.5f + 0.5f; }

#endif /* LSTMLITE_LSL_FASTMATH_H */
