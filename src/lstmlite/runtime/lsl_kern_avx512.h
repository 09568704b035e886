/*
 * lsl_kern_avx512.h -- inline pieces the AVX-512 kernel files share (the dense
 * lsl_kern_avx512.c and the sparse lsl_kern_avx512_sparse.c): target attributes,
 * vpdpbusd, sigmoid / tanh and the staged LSTM cell update of the fused steps.
 * Why a header: both fused single-stream steps (dense and sparse) must run the very
 * same float operations as lstm_pointwise, so that each equals its unfused path bit
 * for bit; one copy of the code keeps them from drifting apart.
 * Include only from files compiled for x86-64 with GCC or Clang (LSL_HAVE_X86).
 */
#ifndef LSTMLITE_LSL_KERN_AVX512_H
#define LSTMLITE_LSL_KERN_AVX512_H

#include <immintrin.h>

#include "lsl_fastmath.h" /* the tanh coefficients */
#include "lsl_internal.h"

#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#define T512VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,avx512vnni")))
#define AINL static inline __attribute__((always_inline))

/* acc + sum of 4 products u8 (x) * s8 (w) per 32-bit lane (vpdpbusd), w from memory.
 * Why asm: GCC 12 keeps the intrinsic's result apart from its accumulator operand in
 * loops over accumulator arrays and pays one or two register copies per product --
 * as many instructions as the products themselves; the asm form accumulates in place
 * and folds the load. */
AINL T512VNNI __m512i dpbusd_m(__m512i acc, __m512i x, const void *w) {
    __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(x), "m"(*(const char(*)[64])w));
    return acc;
}
AINL T512VNNI __m512i dpbusd_r(__m512i acc, __m512i x, __m512i w) {
    __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(x), "v"(w));
    return acc;
}

/* ---- element-wise: exp, sigmoid, tanh -------------------------------------------- */

/* tanh as Eigen's rational approximation (odd degree-13 / even degree-6 polynomials,
 * input clamped to +-7.9): at most 2.6e-7 relative error over the whole line, only
 * FMAs and one reciprocal, no exp or branch blend. half = 1: tanh(x / 2) / 2 to the bit,
 * evaluated at x (lsl_kern_avx2.h's ratio256 says how). */
AINL T512 __m512 ratio512(__m512 x, const int half) {
    const __m512 clamp = _mm512_set1_ps(half ? 2.0f * LSL_TANH_CLAMP : LSL_TANH_CLAMP);
    __m512 x2, p, q, r;
#define C_(c, scale) _mm512_set1_ps((c) * (half ? (scale) : 1.0f))
    /* (bound, x) operand order: max/min return x when it is NaN, so NaN propagates */
    x = _mm512_min_ps(clamp, _mm512_max_ps(_mm512_sub_ps(_mm512_setzero_ps(), clamp), x));
    x2 = _mm512_mul_ps(x, x);
    p = _mm512_fmadd_ps(x2, C_(LSL_TANH_P6, 0x1p-14f), C_(LSL_TANH_P5, 0x1p-12f));
    p = _mm512_fmadd_ps(x2, p, C_(LSL_TANH_P4, 0x1p-10f));
    p = _mm512_fmadd_ps(x2, p, C_(LSL_TANH_P3, 0x1p-8f));
    p = _mm512_fmadd_ps(x2, p, C_(LSL_TANH_P2, 0x1p-6f));
    p = _mm512_fmadd_ps(x2, p, C_(LSL_TANH_P1, 0x1p-4f));
    p = _mm512_fmadd_ps(x2, p, C_(LSL_TANH_P0, 0x1p-2f));
    p = _mm512_mul_ps(x, p);
    q = _mm512_fmadd_ps(x2, C_(LSL_TANH_Q3, 0x1p-6f), C_(LSL_TANH_Q2, 0x1p-4f));
    q = _mm512_fmadd_ps(x2, q, C_(LSL_TANH_Q1, 0x1p-2f));
    q = _mm512_fmadd_ps(x2, q, C_(LSL_TANH_Q0, 1.0f));
#undef C_
    /* 1 / q: 14-bit estimate and one Newton step (q is in [0.0049, 0.09]) */
    r = _mm512_rcp14_ps(q);
    r = _mm512_fmadd_ps(r, _mm512_fnmadd_ps(q, r, _mm512_set1_ps(1.0f)), r);
    return _mm512_mul_ps(p, r);
}

AINL T512 __m512 tanh512(__m512 x) { return ratio512(x, 0); }

/* sigmoid(x) = (1 + tanh(x / 2)) / 2: absolute error about 1.3e-8. ratio512 with half
 * = 1 plus 1/2: the bits of fmadd(tanh512(x / 2), 1/2, 1/2) with two multiplies fewer
 * on the FMA ports (see lsl_kern_avx2.h's sigmoid256). */
AINL T512 __m512 sigmoid512(__m512 x) { return _mm512_add_ps(ratio512(x, 1), _mm512_set1_ps(0.5f)); }

/* The cell update of units j .. j + 15 from their gate pre-activations, in five stages
 * (the four gate functions, then c and h) so that the caller can spread them over
 * the next block's products: lstm_pointwise's operations, in its order. */
AINL T512 void cell_stage(int st, __m512 *gate, int32_t j, float *c, float *h) {
    switch (st) {
    case 0: gate[0] = sigmoid512(gate[0]); break;
    case 1: gate[1] = sigmoid512(gate[1]); break;
    case 2: gate[2] = tanh512(gate[2]); break;
    case 3: gate[3] = sigmoid512(gate[3]); break;
    default: {
        __m512 cn = _mm512_fmadd_ps(gate[1], _mm512_loadu_ps(c + j), _mm512_mul_ps(gate[0], gate[2]));
        _mm512_storeu_ps(c + j, cn);
        _mm512_storeu_ps(h + j, _mm512_mul_ps(gate[3], tanh512(cn)));
    }
    }
}

/* Gate pre-activations of rows row0 .. row0 + 15 from their VNNI sums: the dense
 * epilogue (offset correction on the first limb a0, the limbs a1, a2 combined when
 * L == 3, row scale times activation scale xs) added to the input projection g. */
AINL T512VNNI __m512 gate_from_sums(const int L, const lsl_matrix *w, int32_t row0, __m512i a0, __m512i a1,
                                    __m512i a2, float xs, const float *g) {
    const __m512i corr = _mm512_slli_epi32(_mm512_loadu_si512((const void *)(w->wsum + row0)), 7);
    __m512 v = _mm512_cvtepi32_ps(_mm512_sub_epi32(a0, corr));
    if (L == 3) {
        v = _mm512_fmadd_ps(v, _mm512_set1_ps(256.0f), _mm512_cvtepi32_ps(a1));
        v = _mm512_fmadd_ps(v, _mm512_set1_ps(256.0f), _mm512_cvtepi32_ps(a2));
    }
    v = _mm512_mul_ps(v, _mm512_mul_ps(_mm512_loadu_ps(w->scale + row0), _mm512_set1_ps(xs)));
    return _mm512_add_ps(_mm512_loadu_ps(g + row0), v);
}

/* One block of 16 hidden units of a fused single-stream LSTM step: its four gates'
 * products into gate[], the previous block's (pend, units pj..) cell update spread over
 * them. The dense and the sparse W_hh each have one. */
typedef void (*lsl_lstm_block_fn)(const int L, const lsl_matrix *w, int32_t hidden, int32_t jb, const uint8_t *u,
                                  size_t lstride, float xs, const float *g, __m512 *gate, __m512 *pend, int32_t pj,
                                  float *c, float *h);

/* The blocks of a fused step in panel order (or reversed: `rev`, see lsl_internal.h),
 * each block's cell update finished during the next one's products; always inlined,
 * so `block` is a constant and gets inlined too. */
AINL T512VNNI void lstm_blocks(lsl_lstm_block_fn block, const int L, const lsl_matrix *w, int32_t hidden,
                               const uint8_t *u, size_t lstride, float xs, const float *g, float *c, float *h,
                               int rev) {
    const int32_t blocks = hidden / LSL_PANEL;
    __m512 gate[4], pend[4];
    int32_t b, pj = -1;
    int st;
    for (st = 0; st < 4; ++st) pend[st] = _mm512_setzero_ps(); /* not read while pj < 0 */
    for (b = 0; b < blocks; ++b) {
        const int32_t jb = rev ? blocks - 1 - b : b;
        block(L, w, hidden, jb, u, lstride, xs, g, gate, pend, pj, c, h);
        for (st = 0; st < 4; ++st) pend[st] = gate[st];
        pj = jb * LSL_PANEL;
    }
    for (st = 0; st < 5; ++st) cell_stage(st, pend, pj, c, h);
}

#endif /* LSTMLITE_LSL_KERN_AVX512_H */
