/*
 * lsl_kern_avx2.h -- the 256-bit kernels shared by the AVX2 table (lsl_kern_avx2.c)
 * and the AVX-VNNI table (lsl_kern_avx2_vnni.c), whose dynamic products and fused step
 * loops the AVX-512 table without VNNI reuses (lsl_kern_avx512.c): int8 matrix products
 * whose weights stay int8 in the inner loop, the fused single-stream LSTM step, sigmoid / tanh and
 * the cell update.
 *
 * Why a header: the two tables differ only in the instruction that multiplies 4 u8
 * activations by 4 s8 weights per 32-bit lane (vpmaddubsw + vpmaddwd on AVX2, VEX
 * vpdpbusd on AVX-VNNI); the loops, layouts and float epilogues are one copy, passed a
 * compile-time `kind`, so the two tables give the same bits (the int32 sums are exact)
 * and the fused steps equal the unfused paths (same float operations, same order).
 * (The AVX-VNNI table's dynamic products, which need other tiles than the sign forms,
 * are its own, in lsl_kern_avx2_vnni.c, with this header's epilogue.)
 * Every function here carries target("avx2,fma") and is always inlined (but
 * sums16_masked / sums16_u7 and cells_avx2, static functions of their own: see why
 * there); a caller with a wider target (avx2,fma,avxvnni, or avx512f) may inline them.
 * The VNNI instruction is inline asm, so this header compiles in a file whose functions
 * lack the avxvnni target.
 * Include only from files compiled for x86-64 with GCC or Clang (LSL_HAVE_X86).
 */
#ifndef LSTMLITE_LSL_KERN_AVX2_H
#define LSTMLITE_LSL_KERN_AVX2_H

#include <immintrin.h>
#include <string.h>

#include "lsl_fastmath.h" /* the tanh coefficients */
#include "lsl_internal.h"

#define TAVX2 __attribute__((target("avx2,fma")))
#define AINL static inline __attribute__((always_inline))

/* How a kernel multiplies int8 weights (the `kind` argument, a constant after inlining).
 * All of them keep the weights int8 in the inner loop and sum exactly in int32. */
#define LSL_K_DYN 0  /* u8 activations u = q + 128: vpsignb + vpmaddubsw + vpmaddwd (AVX2) */
#define LSL_K_VNNI 1 /* u8 activations u = q + 128: VEX vpdpbusd (AVX-VNNI) */
#define LSL_K_DIG 2  /* float activations as three signed 7-bit digits (below), sign form */
#define LSL_K_DYNX 3 /* LSL_K_DYN with |q| instead of |w|: weights without -128 only */
#define LSL_K_VNNI3 4 /* float activations as three 8-bit limbs (LSL_LIMB_MAX): vpdpbusd */
#define LSL_K_DYNM 5  /* LSL_K_DYNX from two planes, |q| and q's sign mask: dot4_masked */
#define LSL_K_U7 6    /* u8 activations u = q + 128 times 7-bit weights (LSL_MATRIX_W7):
                       * vpmaddubsw + vpmaddwd, no sign step */
#define LSL_K_H7 7    /* LSL_ACT_DYN7's v = q + 64 (1..127) times 7-bit weights: the epilogue
                       * takes 64 sum(w) off (lsl_kern_avx2.c's gemm_h7) */

/* Float activations without VNNI: LSL_DIG_MAX (three 7-bit digits) and LSL_D15_MAX (two
 * digits), in lsl_internal.h. */

/* VEX vpdpbusd (AVX-VNNI). With LSL_TEST_AVX2_VNNI_AS_EVEX (tests only) the EVEX form,
 * which AVX-512 VNNI CPUs run: lsl_isa.c then offers the avx2-vnni table there, so a
 * machine without AVX-VNNI still tests that table's code (only the encoding differs). */
#if defined(LSL_TEST_AVX2_VNNI_AS_EVEX)
#define LSL_VPDPBUSD "vpdpbusd"
#else
#define LSL_VPDPBUSD "%{vex%} vpdpbusd"
#endif

/* Rows of float activations from which the AVX2-family tables (the AVX-VNNI one too)
 * convert each int8 panel to floats once and run the fp32 tile (lsl_kern_avx2.c); >=
 * LSL_UNPACK_MIN_ROWS, from which lsl_matmul_bytes reserves the panel. Below it, the
 * two digits (LSL_D15_MAX) row by row: per row of a B-stream LSTM (Zen 4, I=40 H=128 T=100, forced avx2) B = 2
 * took 314 us, B = 3 unpacked 342 (the two digits: 3 x 310), B = 4 unpacked 279, B = 8
 * 241. The AVX-VNNI table's three limbs (three vpdpbusd per weight vector, in place of
 * the two digits) switch at the same row: per row (Xeon with AVX-VNNI, the same LSTM, forced
 * avx2-vnni) B = 2 took 364 us in limbs and 414 unpacked, B = 3 376 and 404, B = 4 352 and
 * 334, B = 8 331 and 292, B = 16 325 and 261 (its switch was at 32 rows, measured on an
 * earlier build; 2 threads at B = 32 give each thread 16 rows, so they ran 0.68 x the
 * 1-thread time, 0.56 x now). */
#define LSL_UNPACK_ROWS 4

static inline int lsl_k_limbs(const int kind) { return kind == LSL_K_DIG || kind == LSL_K_VNNI3 ? 3 : 1; }

/* ---- int8 dot products: 32 bytes of weights = 8 rows x 4 k (the packed layout's half
 * panel), one 32-bit lane per row ------------------------------------------------------ */

/* The 4 bytes at p in every lane (a broadcast load). */
AINL TAVX2 __m256i quad_at(const uint8_t *p) {
    return _mm256_castps_si256(_mm256_broadcast_ss((const float *)(const void *)p));
}

/* The activation operand of 4 activations (4 bytes at p) for every lane: u itself for
 * vpdpbusd; q = u ^ 0x80 (u - 128 as signed bytes) for the dynamic sign form; the
 * digits as they are. A broadcast load and a vector xor: no trip through a general
 * register (vmovd), which measured as the tile's bottleneck. */
AINL TAVX2 __m256i act_quad(const int kind, const uint8_t *p) {
    const __m256i v = quad_at(p);
    return kind == LSL_K_DYN || kind == LSL_K_DYNX ? _mm256_xor_si256(v, _mm256_set1_epi8((char)0x80)) : v;
}

/* The 7-bit weights' product (LSL_K_U7): acc += per lane the 4 products of the quad u
 * (broadcast, 0..255) with the weights at w, within [-64, 64] (see dot4_rows). */
AINL TAVX2 __m256i dot4_u7(__m256i acc, __m256i u, const int8_t *w) {
    const __m256i p = _mm256_maddubs_epi16(u, _mm256_loadu_si256((const __m256i *)w));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
}

/* acc[i] += per lane the sum of its 4 products x_i[k] * w[k] (i < MB), exact in int32.
 * Sign form (LSL_K_DYN, LSL_K_DIG): vpmaddubsw multiplies unsigned by signed bytes and
 * adds adjacent pairs into int16 with saturation, so it is given |w| (vpabsb: 0..128,
 * exact as an unsigned byte even for w = -128) and x * sign(w) (vpsignb: x is in
 * [-127, 127], so negating it cannot overflow; 0 where w = 0). Each product is at most
 * 127 * 128 = 16256 in magnitude and a pair at most 32512 < 32767: it never saturates,
 * for any int8 weight. vpmaddwd with ones then adds a row's two pairs into int32; |w|
 * is computed once for all MB rows.
 * LSL_K_VNNI, LSL_K_VNNI3: vpdpbusd (4 u8 x s8 products into int32, no saturation) on
 * u = q + 128 or on the limbs; scaled_sums subtracts the offset's 128 * sum(w) per row.
 * LSL_K_U7: vpmaddubsw on u = q + 128 (0..255) and the weights as they are, which are
 * within [-64, 64] (LSL_MATRIX_W7): a pair is at most 2 * 255 * 64 = 32640, so it never
 * saturates; the offset comes off as for VNNI. Three instructions per weight vector and
 * row, two of them on the multiplier pipes (ONNX Runtime's AVX2 loop, which gets there
 * by quantizing its weights to 7 bits too).
 * Why asm for vpdpbusd: it then compiles inside target("avx2,fma") functions, so one
 * copy of the loops serves both tables; "x" keeps the operands in ymm0-15 (VEX). */
AINL TAVX2 void dot4_rows(const int kind, const int MB, __m256i *acc, const __m256i *x, const int8_t *w) {
    int i;
    if (kind == LSL_K_VNNI || kind == LSL_K_VNNI3) {
        for (i = 0; i < MB; ++i) {
            __m256i a = acc[i]; /* a local, not the array element: GCC keeps an asm operand that
                                 * is an array element in memory (a store per product) */
            __asm__(LSL_VPDPBUSD " %2, %1, %0" : "+x"(a) : "x"(x[i]), "m"(*(const char(*)[32])w));
            acc[i] = a;
        }
    } else if (kind == LSL_K_U7) {
        for (i = 0; i < MB; ++i) acc[i] = dot4_u7(acc[i], x[i], w);
    } else if (kind == LSL_K_DYNX) {
        /* the same products as |w| * (q sign(w)): |q| * (w sign(q)), exact while w is
         * never -128 (-(-128) would wrap). |q| is the same for every weight vector of
         * the k4 step, so the compiler computes it once: one instruction less per
         * weight vector, measured 7 % of a B = 1 sequence. */
        const __m256i wv = _mm256_loadu_si256((const __m256i *)w);
        for (i = 0; i < MB; ++i) {
            const __m256i p = _mm256_maddubs_epi16(_mm256_abs_epi8(x[i]), _mm256_sign_epi8(wv, x[i]));
            acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
        }
    } else {
        const __m256i wv = _mm256_loadu_si256((const __m256i *)w), aw = _mm256_abs_epi8(wv);
        for (i = 0; i < MB; ++i) {
            const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(x[i], wv)),
                                                _mm256_set1_epi16(1));
            acc[i] = _mm256_add_epi32(acc[i], p);
        }
    }
}

/* dot4_rows for one row of LSL_K_VNNI as a value (a named accumulator stays in its
 * register where an array element may not). */
AINL TAVX2 __m256i dot4_vnni(__m256i acc, __m256i x, const int8_t *w) {
    dot4_rows(LSL_K_VNNI, 1, &acc, &x, w);
    return acc;
}

/* The sign-mask form of LSL_K_DYNX for one activation row (LSL_K_DYNM): acc += per lane
 * the 4 products of the quad's |q| (aq, broadcast) with w sign(q), where w sign(q) is
 * (w ^ mask) - mask and mask is 0xFF in the bytes where q < 0 (broadcast). Exact as
 * LSL_K_DYNX (w is never -128, so -w fits; a pair is at most 2 * 127 * 127). The two
 * quads come precomputed from planes (sign_planes), so a k4 step loads them and
 * does no arithmetic of its own. Why: on Zen 4 vpsignb, vpabsb, vpmaddubsw and vpmaddwd
 * all issue on the same two vector pipes, so the sign form's three of them per weight
 * vector took 12 cycles per 8 weight vectors; vpxor and vpsubb go to any of the four
 * pipes, and this form's five instructions take 10 (a stand-alone H = 128 / 256
 * recurrent product: 20.0 -> 23.7 int8 MACs a cycle). */
AINL TAVX2 __m256i dot4_masked(__m256i acc, __m256i aq, __m256i mask, const int8_t *w) {
    const __m256i wv = _mm256_loadu_si256((const __m256i *)w);
    const __m256i p = _mm256_maddubs_epi16(aq, _mm256_sub_epi8(_mm256_xor_si256(wv, mask), mask));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
}

/* One quantized row u (q + 128, kpad bytes) as LSL_K_DYNM's two planes: |q| at aq, and
 * at mask 0xFF where q < 0, else 0 (kpad bytes each; aq may be u itself). */
AINL TAVX2 void sign_planes(int32_t kpad, const uint8_t *u, uint8_t *aq, uint8_t *mask) {
    int32_t j = 0;
    for (; j + 32 <= kpad; j += 32) {
        const __m256i q = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(u + j)), _mm256_set1_epi8((char)0x80));
        _mm256_storeu_si256((__m256i *)(mask + j), _mm256_cmpgt_epi8(_mm256_setzero_si256(), q));
        _mm256_storeu_si256((__m256i *)(aq + j), _mm256_abs_epi8(q));
    }
    for (; j < kpad; ++j) {
        const int q = (int)u[j] - LSL_Q_OFFSET;
        mask[j] = q < 0 ? 0xFF : 0;
        aq[j] = (uint8_t)(q < 0 ? -q : q);
    }
}

/* n floats at p (n >= 8: a plain load / store); a tail through vmaskmovps, which
 * neither reads nor writes past p[n - 1]. No stack buffer: zeroing one in every
 * epilogue measured as a tenth of a small tile's time. */
AINL TAVX2 __m256i tail_mask(int32_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
AINL TAVX2 __m256 ld(const float *p, int32_t n) {
    return n >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, tail_mask(n));
}
AINL TAVX2 void st(float *p, __m256 v, int32_t n) {
    if (n >= 8)
        _mm256_storeu_ps(p, v);
    else
        _mm256_maskstore_ps(p, tail_mask(n), v);
}

/* The float-activation quantizers' row scale (the AVX2 digits, the two digits, and
 * lsl_kern_avx2_vnni.c's limbs): *xs = max|row| / qmax and the factor qmax / max|row|
 * that makes codes of the row; 0 (and *xs = 0) for an all-zero row, 0 (and *xs = NaN)
 * for a row with a NaN, an infinity or a value past 3e38, which has no fixed-point form:
 * the products compute such a row in float (lsl_avx2_float_rows), and a fused step's
 * state h (never such a value unless it is NaN) gets NaN outputs. */
static inline float float_row_scale(const float *row, int32_t k, float qmax, float *xs) {
    float amax = 0.0f;
    int32_t j;
    int bad = 0;
    for (j = 0; j < k; ++j) {
        const float a = row[j] < 0 ? -row[j] : row[j];
        bad |= !(a <= 3.0e38f); /* NaN or inf */
        amax = a > amax ? a : amax;
    }
    if (bad || !(amax > 0.0f)) {
        *xs = bad ? __builtin_nanf("") : 0.0f;
        return 0.0f;
    }
    *xs = amax / qmax;
    return qmax / amax;
}

/* The fixed-point codes of n (<= 8) floats at p: x * inv rounded to nearest even,
 * clamped to +-qmax. */
AINL TAVX2 __m256i fixed_codes(const float *p, int32_t n, __m256 vinv, __m256i qmax) {
    const __m256i q = _mm256_cvtps_epi32(_mm256_mul_ps(ld(p, n), vinv));
    return _mm256_min_epi32(_mm256_max_epi32(q, _mm256_sub_epi32(_mm256_setzero_si256(), qmax)), qmax);
}

/* The products of rows row0 .. row0 + 7 (`valid` of them exist) with one activation
 * row of scale xs, from its int32 sums a[0..L-1]: vpdpbusd's sums less 128 * sum(w)
 * (for the limbs, on the high limb, then ((a0 256) + a1) 256 + a2 in float, as
 * lsl_kern_avx512.h's gate_from_sums); the digits' sums combined as (a2 128 + a1) 128
 * + a0 in float; then times (xs * scale[row]), as every ISA computes it. The weight
 * scales and sums come as pointers (scaled_sums_of: a sparse matrix's view copies them
 * once, as a store into y may alias them; scaled_sums: a matrix's own). */
AINL TAVX2 __m256 scaled_sums_of(const int kind, const __m256i *a, const float *scale, const int32_t *wsum,
                                 int32_t row0, int32_t valid, float xs) {
    __m256 v;
    if (kind == LSL_K_VNNI || kind == LSL_K_VNNI3 || kind == LSL_K_U7 || kind == LSL_K_H7) {
        const int *ws = (const int *)(wsum + row0);
        const __m256i sum = valid >= 8 ? _mm256_loadu_si256((const __m256i *)ws) : _mm256_maskload_epi32(ws, tail_mask(valid));
        v = _mm256_cvtepi32_ps(_mm256_sub_epi32(a[0], _mm256_slli_epi32(sum, kind == LSL_K_H7 ? 6 : 7)));
        if (kind == LSL_K_VNNI3) {
            const __m256 b = _mm256_set1_ps(256.0f);
            v = _mm256_fmadd_ps(_mm256_fmadd_ps(v, b, _mm256_cvtepi32_ps(a[1])), b, _mm256_cvtepi32_ps(a[2]));
        }
    } else if (kind == LSL_K_DIG) {
        const __m256 b = _mm256_set1_ps(128.0f);
        v = _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_cvtepi32_ps(a[2]), b, _mm256_cvtepi32_ps(a[1])), b,
                            _mm256_cvtepi32_ps(a[0]));
    } else {
        v = _mm256_cvtepi32_ps(a[0]);
    }
    return _mm256_mul_ps(v, _mm256_mul_ps(ld(scale + row0, valid), _mm256_set1_ps(xs)));
}
AINL TAVX2 __m256 scaled_sums(const int kind, const __m256i *a, const lsl_matrix *w, int32_t row0, int32_t valid,
                              float xs) {
    return scaled_sums_of(kind, a, w->scale, w->wsum, row0, valid, xs);
}

/* ---- element-wise ------------------------------------------------------------------ */

/* tanh as in lsl_kern_avx512.h (Eigen's rational tanh), as lsl_fastmath.h writes it:
 * x (p / q), clamped. A true division rather than vrcpps and two Newton steps: the
 * divider works beside the FMA ports (on Zen 4 a vdivps every 3 cycles alongside two
 * FMAs a cycle), where the reciprocal's five instructions queued on the FMA ports the
 * cell updates saturate; and the quotient is correctly rounded.
 * half = 0 gives tanh; half = 1 (a constant where it is inlined) gives tanh(x / 2) / 2
 * evaluated at x itself, with P's coefficient of x^2k divided by
 * 4^(k + 1) and Q's by 4^k. Those are powers of two, so every rounding of the Horner
 * chains is the tanh chain's at x / 2, scaled: tanh256(x / 2) / 2 to the bit, without
 * the multiplies by 1/2. (The scalar lsl_fast_sigmoidf keeps tanh(x / 2) / 2 + 1/2 as
 * written: the same fold saved 0.1 % of the portable layer and cost the float core
 * 170-200 bytes of microcontroller flash.) */
AINL TAVX2 __m256 ratio256(__m256 x, const int half) {
    const __m256 clamp = _mm256_set1_ps(half ? 2.0f * LSL_TANH_CLAMP : LSL_TANH_CLAMP);
    __m256 x2, p, q;
#define C_(c, scale) _mm256_set1_ps((c) * (half ? (scale) : 1.0f))
    /* (bound, x) operand order: max/min return x when it is NaN, so NaN propagates */
    x = _mm256_min_ps(clamp, _mm256_max_ps(_mm256_sub_ps(_mm256_setzero_ps(), clamp), x));
    x2 = _mm256_mul_ps(x, x);
    p = _mm256_fmadd_ps(x2, C_(LSL_TANH_P6, 0x1p-14f), C_(LSL_TANH_P5, 0x1p-12f));
    p = _mm256_fmadd_ps(x2, p, C_(LSL_TANH_P4, 0x1p-10f));
    p = _mm256_fmadd_ps(x2, p, C_(LSL_TANH_P3, 0x1p-8f));
    p = _mm256_fmadd_ps(x2, p, C_(LSL_TANH_P2, 0x1p-6f));
    p = _mm256_fmadd_ps(x2, p, C_(LSL_TANH_P1, 0x1p-4f));
    p = _mm256_fmadd_ps(x2, p, C_(LSL_TANH_P0, 0x1p-2f));
    q = _mm256_fmadd_ps(x2, C_(LSL_TANH_Q3, 0x1p-6f), C_(LSL_TANH_Q2, 0x1p-4f));
    q = _mm256_fmadd_ps(x2, q, C_(LSL_TANH_Q1, 0x1p-2f));
    q = _mm256_fmadd_ps(x2, q, C_(LSL_TANH_Q0, 1.0f)); /* q in [0.0049, 0.09] */
#undef C_
    return _mm256_mul_ps(x, _mm256_div_ps(p, q));
}

AINL TAVX2 __m256 tanh256(__m256 x) { return ratio256(x, 0); }

/* sigmoid(x) = tanh(x / 2) / 2 + 1/2: ratio256 with half = 1 is tanh256(x / 2) / 2 to
 * the bit, and adding 1/2 rounds as the fmadd(tanh, 1/2, 1/2) it replaced: the same bits
 * with two multiplies fewer on the FMA ports the cell updates saturate (cells of
 * I=40/H=128, T = 100: 18.9 -> 18.1 us, Zen 4). */
AINL TAVX2 __m256 sigmoid256(__m256 x) { return _mm256_add_ps(ratio256(x, 1), _mm256_set1_ps(0.5f)); }

/* The LSTM cell update of n <= 8 units from their gate pre-activations (i, f, g, o):
 * c and h at units j.. written. lstm_pointwise and the fused steps both call it, so
 * they compute the same bits. */
AINL TAVX2 void cell8(__m256 gi, __m256 gf, __m256 gg, __m256 go, float *c, float *h, int32_t n) {
    const __m256 ig = sigmoid256(gi), fg = sigmoid256(gf), g = tanh256(gg), og = sigmoid256(go);
    const __m256 cn = _mm256_fmadd_ps(fg, ld(c, n), _mm256_mul_ps(ig, g));
    st(c, cn, n);
    st(h, _mm256_mul_ps(og, tanh256(cn)), n);
}

/* The cell update of n units (n a multiple of 16, at most LSL_CELLS_MAX) from their gate
 * pre-activations gi, gf, gg, go (n floats each): cell8's operations on every 8 units, so
 * the same bits, in two passes: first the gates and c for all n units (o's sigmoid kept
 * in a small buffer), then h = o tanh(c). Why: a unit's update is one chain of dependent
 * FMAs (the gates' sigmoids and tanh, c, then tanh(c): over 100 cycles of latency) longer
 * than the scheduler holds; run unit block after unit block, tanh(c) at the end of each
 * block waited on its own. The first pass's blocks are independent of one another and
 * the second pass's too, so the core overlaps them (Zen 4, 128 units: 82 -> 65 TSC
 * cycles per 16 units stand-alone). Each pass takes two blocks of 8 side by side. A
 * function of its own (not always inlined): the fused steps take it as their
 * lsl_cells_fn. */
#define LSL_CELLS_MAX 64
static __attribute__((unused)) TAVX2 void cells_avx2(const float *gi, const float *gf, const float *gg,
                                                     const float *go, int32_t n, float *c, float *h) {
    float og[LSL_CELLS_MAX] __attribute__((aligned(32)));
    int32_t j;
    for (j = 0; j < n; j += 16) {
        const __m256 i0 = sigmoid256(_mm256_loadu_ps(gi + j)), i1 = sigmoid256(_mm256_loadu_ps(gi + j + 8));
        const __m256 f0 = sigmoid256(_mm256_loadu_ps(gf + j)), f1 = sigmoid256(_mm256_loadu_ps(gf + j + 8));
        const __m256 g0 = tanh256(_mm256_loadu_ps(gg + j)), g1 = tanh256(_mm256_loadu_ps(gg + j + 8));
        _mm256_store_ps(og + j, sigmoid256(_mm256_loadu_ps(go + j)));
        _mm256_store_ps(og + j + 8, sigmoid256(_mm256_loadu_ps(go + j + 8)));
        _mm256_storeu_ps(c + j, _mm256_fmadd_ps(f0, _mm256_loadu_ps(c + j), _mm256_mul_ps(i0, g0)));
        _mm256_storeu_ps(c + j + 8, _mm256_fmadd_ps(f1, _mm256_loadu_ps(c + j + 8), _mm256_mul_ps(i1, g1)));
    }
    for (j = 0; j < n; j += 16) {
        _mm256_storeu_ps(h + j, _mm256_mul_ps(_mm256_load_ps(og + j), tanh256(_mm256_loadu_ps(c + j))));
        _mm256_storeu_ps(h + j + 8, _mm256_mul_ps(_mm256_load_ps(og + j + 8), tanh256(_mm256_loadu_ps(c + j + 8))));
    }
}

/* ---- dense int8 products (LSL_I8) ---------------------------------------------- */

/* MB activation rows x NP panels from panel p0: y += product. u: L planes (stride
 * lstride bytes) of rows of kpad bytes (stride ldu); xs: the rows' scales. The halves
 * of a panel (8 rows each) one after the other, so that NP x L x MB accumulators and
 * L x MB activation registers fit the 16 ymm registers. (Both halves at once, reusing
 * each activation register twice, measured the same at 2 and 3 rows, slower at 4.) */
/* One k4 step of tile_q8 into the accumulator set acc ([panel][limb][row]). */
AINL TAVX2 void tile_step(const int kind, const int MB, const int NP, __m256i acc[4][3][4], const int8_t *wp0,
                          size_t pstride, const uint8_t *u, int32_t ldu, size_t lstride, int32_t k4) {
    const int L = lsl_k_limbs(kind);
    __m256i xb[3][4];
    int i, p, l;
    if (kind == LSL_K_DYNM) { /* one row: |q| at u, the sign mask at u + lstride */
        const __m256i aq = quad_at(u + 4 * k4), mask = quad_at(u + lstride + 4 * k4);
        for (p = 0; p < NP; ++p)
            acc[p][0][0] = dot4_masked(acc[p][0][0], aq, mask, wp0 + p * pstride + (size_t)k4 * 64);
        return;
    }
    for (l = 0; l < L; ++l)
        for (i = 0; i < MB; ++i) xb[l][i] = act_quad(kind, u + l * lstride + (size_t)i * ldu + 4 * k4);
    for (p = 0; p < NP; ++p) {
        const int8_t *wp = wp0 + p * pstride + (size_t)k4 * 64;
        if (L == 1) {
            dot4_rows(kind, MB, acc[p][0], xb[0], wp);
        } else { /* the three limbs of one row against one weight vector */
            for (i = 0; i < MB; ++i) {
                __m256i a3[3] = {acc[p][0][i], acc[p][1][i], acc[p][2][i]};
                const __m256i x3[3] = {xb[0][i], xb[1][i], xb[2][i]};
                dot4_rows(kind, 3, a3, x3, wp);
                for (l = 0; l < 3; ++l) acc[p][l][i] = a3[l];
            }
        }
    }
}

AINL TAVX2 void tile_q8(const int kind, const int MB, const int NP, const lsl_matrix *w, int32_t p0,
                        const uint8_t *u, int32_t ldu, size_t lstride, const float *xs, float *y, int32_t ldy) {
    const int L = lsl_k_limbs(kind);
    const int8_t *base = (const int8_t *)w->data + (size_t)p0 * w->kpad * LSL_PANEL;
    const size_t pstride = (size_t)w->kpad * LSL_PANEL;
    const int32_t K4 = w->kpad / 4;
    int32_t k4;
    int i, p, h, l;
    for (h = 0; h < 2; ++h) {
        __m256i acc[4][3][4]; /* [panel][limb][row] */
        for (p = 0; p < NP; ++p)
            for (l = 0; l < L; ++l)
                for (i = 0; i < MB; ++i) acc[p][l][i] = _mm256_setzero_si256();
        for (k4 = 0; k4 < K4; ++k4) tile_step(kind, MB, NP, acc, base + 32 * h, pstride, u, ldu, lstride, k4);
        for (p = 0; p < NP; ++p) {
            const int32_t row0 = (p0 + p) * LSL_PANEL + 8 * h, valid = w->rows - row0;
            if (valid <= 0) continue;
            for (i = 0; i < MB; ++i) {
                float *yr = y + (size_t)i * ldy + row0;
                const __m256i a[3] = {acc[p][0][i], acc[p][L > 1][i], acc[p][2 * (L > 1)][i]};
                st(yr, _mm256_add_ps(ld(yr, valid), scaled_sums(kind, a, w, row0, valid, xs[i])), valid);
            }
        }
    }
}

/* y += the products of 4 rows x both halves of a panel from their int32 sums acc[row][half]
 * (rows row0 .. row0 + 15 of w), as tile_q8's epilogue: tile4_u7's and gemm_h7's tiles. */
AINL TAVX2 void tile4_epilogue(const int kind, __m256i acc[4][2], const lsl_matrix *w, int32_t row0, const float *xs,
                               float *y, int32_t ldy) {
    const int32_t valid = w->rows - row0;
    int i;
    for (i = 0; i < 4; ++i) {
        float *yr = y + (size_t)i * ldy + row0;
        const __m256i s0[1] = {acc[i][0]}, s1[1] = {acc[i][1]};
        st(yr, _mm256_add_ps(ld(yr, valid), scaled_sums(kind, s0, w, row0, valid, xs[i])), valid);
        if (valid > 8)
            st(yr + 8, _mm256_add_ps(ld(yr + 8, valid - 8), scaled_sums(kind, s1, w, row0 + 8, valid - 8, xs[i])),
               valid - 8);
    }
}

/* LSL_K_U7, four rows at once: 4 rows x both halves of panel p (8 accumulators), each
 * half's weight vector loaded once per k4 step for the four rows; tile_q8 takes one half
 * at a time and GCC folded its weight loads into every row's vpmaddubsw (a load per
 * product instruction). The whole k4 loop is asm: from intrinsics GCC stored the eight
 * accumulators to the stack on every step. Zen 4, AVX2 table, I=40 H=128 T=100 B=32:
 * int7r + dynamic16 4,213 -> 4,074 us, int7 + dynamic 4,182 -> 3,906 us. */
#define U7_ROW(ADDR, A0, A1)                                                                                   \
    "vpbroadcastd " ADDR ", %[x]\n\t"                                                                          \
    "vpmaddubsw %[w0], %[x], %[t]\n\t"                                                                        \
    "vpmaddubsw %[w1], %[x], %[x]\n\t"                                                                        \
    "vpmaddwd %[one], %[t], %[t]\n\t"                                                                         \
    "vpmaddwd %[one], %[x], %[x]\n\t"                                                                         \
    "vpaddd %[t], %[" #A0 "], %[" #A0 "]\n\t"                                                                 \
    "vpaddd %[x], %[" #A1 "], %[" #A1 "]\n\t"
AINL TAVX2 void tile4_u7(const lsl_matrix *w, int32_t p, const uint8_t *u, int32_t ldu, const float *xs, float *y,
                         int32_t ldy) {
    const int8_t *wp = (const int8_t *)w->data + (size_t)p * w->kpad * LSL_PANEL;
    const uint8_t *b0 = u, *b2 = u + 2 * (size_t)ldu; /* rows 0, 1 at b0 (+ ld); 2, 3 at b2 */
    const size_t stride = (size_t)ldu;
    const int32_t row0 = p * LSL_PANEL;
    __m256i a00 = _mm256_setzero_si256(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
    __m256i w0, w1, x, t, acc[4][2];
    const __m256i one = _mm256_set1_epi16(1);
    size_t n = (size_t)(w->kpad / 4); /* >= 1 */
    __asm__("1:\n\t"
            "vmovdqu (%[wp]), %[w0]\n\t"
            "vmovdqu 32(%[wp]), %[w1]\n\t"
            U7_ROW("(%[b0])", a00, a01) U7_ROW("(%[b0],%[ld])", a10, a11) U7_ROW("(%[b2])", a20, a21)
            U7_ROW("(%[b2],%[ld])", a30, a31)
            "add $64, %[wp]\n\t"
            "add $4, %[b0]\n\t"
            "add $4, %[b2]\n\t"
            "dec %[n]\n\t"
            "jnz 1b"
            : [a00] "+x"(a00), [a01] "+x"(a01), [a10] "+x"(a10), [a11] "+x"(a11), [a20] "+x"(a20), [a21] "+x"(a21),
              [a30] "+x"(a30), [a31] "+x"(a31), [w0] "=&x"(w0), [w1] "=&x"(w1), [x] "=&x"(x), [t] "=&x"(t),
              [wp] "+r"(wp), [b0] "+r"(b0), [b2] "+r"(b2), [n] "+r"(n)
            : [ld] "r"(stride), [one] "x"(one)
            : "memory", "cc"); /* it only reads memory; "m" operands would pass asm's 30-operand limit */
    acc[0][0] = a00, acc[0][1] = a01, acc[1][0] = a10, acc[1][1] = a11;
    acc[2][0] = a20, acc[2][1] = a21, acc[3][0] = a30, acc[3][1] = a31;
    tile4_epilogue(LSL_K_U7, acc, w, row0, xs, y, ldy);
}
#undef U7_ROW

/* The longest rows the one-row dynamic product turns into LSL_K_DYNM planes (on the
 * stack, 2 x kpad bytes); longer ones keep the LSL_K_DYNX form. */
#define LSL_DYNM_KMAX 2048

#define TILE_Q8(MB, NP) tile_q8(kind, MB, NP, w, p, u + (size_t)i * ldu, ldu, lstride, xs + i, y + (size_t)i * ldy, ldy)

/* One activation row: groups of `per` panels (per x L accumulator chains). */
AINL TAVX2 void gemm_row_q8(const int kind, const int32_t per, const lsl_matrix *w, const uint8_t *u,
                            size_t lstride, const float *xs, float *y, int rev) {
    const int32_t panels = lsl_panels(w->rows), groups = (panels + per - 1) / per, i = 0, ldu = 0, ldy = 0;
    int32_t g;
    for (g = 0; g < groups; ++g) {
        const int32_t p = per * (rev ? groups - 1 - g : g), np = panels - p < per ? panels - p : per;
        switch (np) {
        case 4: TILE_Q8(1, 4); break;
        case 3: TILE_Q8(1, 3); break;
        case 2: TILE_Q8(1, 2); break;
        default: TILE_Q8(1, 1); break;
        }
    }
}

/* The dense products of the AVX2-family tables: one row in groups of panels (one
 * accumulator per panel and half; where no weight is -128, the sign-mask form from |q|
 * and sign planes on the stack up to LSL_DYNM_KMAX columns, |q| rather than |w| beyond),
 * more rows in blocks per panel (|w| computed once for the block). Panels last to first
 * with `rev` (see lsl_internal.h). */
AINL TAVX2 void gemm_q8(const int kind, const lsl_matrix *w, int32_t m, const uint8_t *u, int32_t ldu,
                        size_t lstride, const float *xs, float *y, int32_t ldy, int rev) {
    const int32_t panels = lsl_panels(w->rows), per = lsl_k_limbs(kind) == 3 ? 2 : 4;
    int32_t g, i = 0;
    if (m == 1) {
        if (kind == LSL_K_DYN && (w->reserved & LSL_MATRIX_NO_M128) && w->kpad <= LSL_DYNM_KMAX) {
            uint8_t planes[2 * LSL_DYNM_KMAX] __attribute__((aligned(32)));
            sign_planes(w->kpad, u, planes, planes + w->kpad);
            gemm_row_q8(LSL_K_DYNM, per, w, planes, (size_t)w->kpad, xs, y, rev);
        } else if (kind == LSL_K_DYN && (w->reserved & LSL_MATRIX_NO_M128))
            gemm_row_q8(LSL_K_DYNX, per, w, u, lstride, xs, y, rev);
        else
            gemm_row_q8(kind, per, w, u, lstride, xs, y, rev);
        return;
    }
    for (g = 0; g < panels; ++g) {
        const int32_t p = rev ? panels - 1 - g : g;
        if (lsl_k_limbs(kind) == 3) { /* 2 rows x 3 limbs = 6 accumulators, 6 activations */
            for (i = 0; i < m; i += 2) {
                if (m - i >= 2)
                    TILE_Q8(2, 1);
                else
                    TILE_Q8(1, 1);
            }
            continue;
        }
        for (i = 0; i < m; i += 4) {
            switch (m - i < 4 ? m - i : 4) {
            case 4:
                if (kind == LSL_K_U7)
                    tile4_u7(w, p, u + (size_t)i * ldu, ldu, xs + i, y + (size_t)i * ldy, ldy);
                else
                    TILE_Q8(4, 1);
                break;
            case 3: TILE_Q8(3, 1); break;
            case 2: TILE_Q8(2, 1); break;
            default: TILE_Q8(1, 1); break;
            }
        }
    }
}
#undef TILE_Q8

/* ---- fused single-stream LSTM step ----------------------------------------------- *
 * As in lsl_kern_avx512.c: with H % 16 == 0, units j .. j + 7 (j = 8 jb) have their
 * gates i, f, g, o in rows j + q H (q = 0..3), so one pass over those four half panels
 * ends with everything their cell update needs in registers: no store and reload of
 * the 4H pre-activations. The per-lane sums (exact) and the float epilogue are
 * tile_q8's and the cell update is lstm_pointwise's (cells_avx2, or the table's own
 * lsl_cells_fn), so the step equals gemm + lstm_pointwise bit for bit. h is quantized
 * first (every block reads all of it), so the blocks may overwrite it as they finish. */
/* lstm_step1_sign16, for the one-limb forms (the dynamic sign forms, LSL_K_U7 and
 * LSL_K_VNNI): blocks of 16 units, both halves of each gate panel, so one activation broadcast
 * (and |q|) serves eight weight vectors instead of four: 5 % of a B = 1 sequence. The
 * cell updates are lstm_pointwise's, in the same order of operations, so the bits do not
 * change.
 * The blocks go in groups of LSL_S16_GROUP: the group's gate pre-activations wait in a
 * small buffer and their cell updates run after the group's products. Why: a cell
 * update is a chain of dependent FMAs (sigmoid, tanh, c, tanh(c): ~130 cycles of
 * latency) that, run at the end of every block, held up the reorder buffer before the
 * next block's products could fill it; the group's independent updates overlap one
 * another instead (8 % of a step at H = 128 and 256 on Zen 4). */
#define LSL_S16_GROUP 4
#if LSL_S16_GROUP * LSL_PANEL > LSL_CELLS_MAX
#error "a group's cell updates must fit one lsl_cells_fn call"
#endif

/* The k4 loop of lstm_step1_sign16 for LSL_K_DYNM and LSL_K_U7: the 8 accumulators of
 * one block of 16 units (acc[q][half]: gate q, half of its panel), from the |q| (x) and
 * sign-mask (m) planes or from u itself. Functions of their own, not inlined, with
 * eight named accumulators: inside the step, or as an array, GCC kept some of them on
 * the stack, and their store and reload each k4 step, not the vector pipes, set the
 * pace. SUMS16 is the loop; DOT(acc, w) one weight vector's products. */
#define SUMS16(QUADS, DOT)                                                                                      \
    const size_t g2 = 2 * gstride, g3 = 3 * gstride;                                                          \
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;       \
    int32_t k4;                                                                                               \
    for (k4 = 0; k4 < K4; ++k4) {                                                                             \
        QUADS;                                                                                                \
        const int8_t *wk = base + (size_t)k4 * 64; /* gate q at q gstride, half at 32 */                      \
        a0 = DOT(a0, wk), a1 = DOT(a1, wk + 32), a2 = DOT(a2, wk + gstride), a3 = DOT(a3, wk + gstride + 32); \
        a4 = DOT(a4, wk + g2), a5 = DOT(a5, wk + g2 + 32), a6 = DOT(a6, wk + g3), a7 = DOT(a7, wk + g3 + 32); \
    }                                                                                                         \
    _mm256_storeu_si256(&acc[0][0], a0), _mm256_storeu_si256(&acc[0][1], a1);                                 \
    _mm256_storeu_si256(&acc[1][0], a2), _mm256_storeu_si256(&acc[1][1], a3);                                 \
    _mm256_storeu_si256(&acc[2][0], a4), _mm256_storeu_si256(&acc[2][1], a5);                                 \
    _mm256_storeu_si256(&acc[3][0], a6), _mm256_storeu_si256(&acc[3][1], a7)

#define DOT_MASKED(A, W) dot4_masked(A, x, m, W)
static __attribute__((noinline, unused)) TAVX2 void sums16_masked(const int8_t *base, size_t gstride, int32_t K4,
                                                          const uint8_t *aq, const uint8_t *mask, __m256i acc[4][2]) {
    SUMS16(const __m256i x = quad_at(aq + 4 * k4); const __m256i m = quad_at(mask + 4 * k4), DOT_MASKED);
}
#undef DOT_MASKED

#define DOT_U7(A, W) dot4_u7(A, x, W)
static __attribute__((noinline, unused)) TAVX2 void sums16_u7(const int8_t *base, size_t gstride, int32_t K4,
                                                      const uint8_t *u, __m256i acc[4][2]) {
    SUMS16(const __m256i x = quad_at(u + 4 * k4), DOT_U7);
}
#undef DOT_U7

/* LSL_K_VNNI (u = q + 128): one vpdpbusd per weight vector, eight chains (latency 5:
 * at most 1.6 a cycle), each k4 step reading the whole 64-byte line of both halves of a
 * gate's panel. Streaming a matrix larger than L1 from L2 it runs about one a cycle on
 * a Xeon (about 33 bytes of weights a cycle; the same loop over L1 runs 40 % faster). It ran in
 * lstm_step1_q8's blocks of 8 units (one half, with a second accumulator set by k4),
 * which read half of each line and left the other half to the next block:
 * Xeon with AVX-VNNI, H = 256, the recurrent products alone took 3.53 us a step that
 * way, 2.29 this way (H = 128: 0.93 -> 0.57); a whole step 3.5 -> 3.2 us. */
#define DOT_VNNI(A, W) dot4_vnni(A, x, W)
static __attribute__((noinline, unused)) TAVX2 void sums16_vnni(const int8_t *base, size_t gstride, int32_t K4,
                                                        const uint8_t *u, __m256i acc[4][2]) {
    SUMS16(const __m256i x = quad_at(u + 4 * k4), DOT_VNNI);
}
#undef DOT_VNNI
#undef SUMS16

/* The cell update of n units (a multiple of 16, at most LSL_CELLS_MAX) from their gate
 * pre-activations gi, gf, gg, go (n floats each, 64-byte aligned in lstm_step1_sign16's
 * buffer), c and h at the units, as the table's lstm_pointwise computes it: the last
 * stage of lstm_step1_sign16, which the AVX-512 table without VNNI runs with its own
 * 512-bit update (lsl_kern_avx512.c). */
typedef void (*lsl_cells_fn)(const float *gi, const float *gf, const float *gg, const float *go, int32_t n, float *c,
                             float *h);

AINL TAVX2 void lstm_step1_sign16(const int kind, lsl_cells_fn cells, const lsl_matrix *w, int32_t hidden,
                                  const uint8_t *u, size_t lstride, float xs, const float *g, float *c, float *h,
                                  int rev) {
    const size_t pstride = (size_t)w->kpad * LSL_PANEL, gstride = (size_t)(hidden / LSL_PANEL) * pstride;
    const int32_t K4 = w->kpad / 4, blocks = hidden / LSL_PANEL;
    /* [gate][unit of the group, in order (rev or not): its units are consecutive]; 64-byte
     * aligned: the 512-bit update loads it */
    float gates[4][LSL_S16_GROUP * LSL_PANEL] __attribute__((aligned(64)));
    int32_t b0, b, k4;
    int q, half;
    for (b0 = 0; b0 < blocks; b0 += LSL_S16_GROUP) {
        const int32_t nb = blocks - b0 < LSL_S16_GROUP ? blocks - b0 : LSL_S16_GROUP;
        for (b = 0; b < nb; ++b) {
            const int32_t jb = rev ? blocks - 1 - (b0 + b) : b0 + b, j = LSL_PANEL * jb;
            const int8_t *base = (const int8_t *)w->data + (size_t)jb * pstride; /* gate q: panel jb + q H/16 */
            __m256i acc[4][2];
            for (q = 0; q < 4; ++q) acc[q][0] = acc[q][1] = _mm256_setzero_si256();
            if (kind == LSL_K_DYNM) /* |q| in plane 0, the sign mask in plane 1 */
                sums16_masked(base, gstride, K4, u, u + lstride, acc);
            else if (kind == LSL_K_U7)
                sums16_u7(base, gstride, K4, u, acc);
            else if (kind == LSL_K_VNNI)
                sums16_vnni(base, gstride, K4, u, acc);
            else
                for (k4 = 0; k4 < K4; ++k4) {
                    const __m256i x = act_quad(kind, u + 4 * k4);
                    for (q = 0; q < 4; ++q)
                        for (half = 0; half < 2; ++half)
                            dot4_rows(kind, 1, &acc[q][half], &x, base + q * gstride + (size_t)k4 * 64 + 32 * half);
                }
            for (half = 0; half < 2; ++half) {
                const int32_t jh = j + 8 * half, at = LSL_PANEL * (rev ? nb - 1 - b : b) + 8 * half;
                for (q = 0; q < 4; ++q)
                    _mm256_store_ps(gates[q] + at,
                                    _mm256_add_ps(_mm256_loadu_ps(g + q * hidden + jh),
                                                  scaled_sums(kind, &acc[q][half], w, q * hidden + jh, 8, xs)));
            }
        }
        {
            const int32_t j = LSL_PANEL * (rev ? blocks - b0 - nb : b0); /* the group's first unit */
            cells(gates[0], gates[1], gates[2], gates[3], LSL_PANEL * nb, c + j, h + j);
        }
    }
}

/* The fused step with dynamic activations, h quantized into u (kpad bytes; the second
 * plane of lsl_matmul_bytes's two after it): the form the weights allow (7-bit codes:
 * LSL_K_U7; no -128: the sign-mask planes; else the sign form), ending in `cells`. The
 * AVX2 table and the AVX-512 table without VNNI share it. */
AINL TAVX2 void lstm_step1_dyn(lsl_cells_fn cells, const lsl_matrix *w, int32_t hidden, uint8_t *u, float xs,
                               const float *g, float *c, float *h, int rev) {
    if (w->reserved & LSL_MATRIX_W7) { /* LSL_ACT_DYN7's codes too (see gemm_h7 for why not its form) */
        lstm_step1_sign16(LSL_K_U7, cells, w, hidden, u, 0, xs, g, c, h, rev);
    } else if (w->reserved & LSL_MATRIX_NO_M128) {
        sign_planes(w->kpad, u, u, u + w->kpad);
        lstm_step1_sign16(LSL_K_DYNM, cells, w, hidden, u, (size_t)w->kpad, xs, g, c, h, rev);
    } else {
        lstm_step1_sign16(LSL_K_DYN, cells, w, hidden, u, 0, xs, g, c, h, rev);
    }
}

/* ---- float activations in two digits (LSL_D15_MAX) -------------------------------- */

/* vpmaddwd's lanes (rows 0, 0, 1, 1 | 2, 2, 3, 3 of a quarter panel, two column pairs
 * each) of rows 0-3 (a) and 4-7 (b) as the 8 rows' sums, in order. */
AINL TAVX2 __m256i rows8_sums(__m256i a, __m256i b) {
    return _mm256_permute4x64_epi64(_mm256_hadd_epi32(a, b), 0xD8);
}

/* The digits' quad (4 columns) at L (d0, int16) and D (d1, int8) in every 64-bit lane of
 * x0 and x1, both as int16. */
#define D15_QUADS(L, D)                                                                                        \
    "vpbroadcastq " L ", %[x0]\n\t"                                                                            \
    "vpbroadcastd " D ", %x[x1]\n\t"                                                                          \
    "vpmovsxbw %x[x1], %[x1]\n\t"

/* One gate's k4 step in d15_halves' loop: its two quarter panels (rows 0-3 at P, 4-7 at
 * P16) times both digits, into A0 (d0, rows 0-3), A1 (d0, 4-7), A2 (d1, 0-3), A3. */
#define D15_GATE(P, P16, A0, A1, A2, A3)                                                                       \
    "vpmovsxbw " P ", %[w0]\n\t"                                                                              \
    "vpmovsxbw " P16 ", %[w1]\n\t"                                                                            \
    "vpmaddwd %[x0], %[w0], %[t]\n\t"                                                                         \
    "vpaddd %[t], %[" #A0 "], %[" #A0 "]\n\t"                                                                 \
    "vpmaddwd %[x0], %[w1], %[t]\n\t"                                                                         \
    "vpaddd %[t], %[" #A1 "], %[" #A1 "]\n\t"                                                                 \
    "vpmaddwd %[x1], %[w0], %[w0]\n\t"                                                                        \
    "vpaddd %[w0], %[" #A2 "], %[" #A2 "]\n\t"                                                                \
    "vpmaddwd %[x1], %[w1], %[w1]\n\t"                                                                        \
    "vpaddd %[w1], %[" #A3 "], %[" #A3 "]\n\t"

/* The 8 rows of two half panels (at wp and wp + gstride, 64 bytes a k4 step: two gates'
 * of a block, or gstride = 32, both halves of one panel) times one row of digits (d0 at
 * lo, d1 at hi): s[g][0] the d0 sums, s[g][1] the d1 sums. The loop is asm, as madd2
 * (and why): from intrinsics GCC kept an accumulator in memory, a store-to-load chain
 * through every step (1.4x the layer's time). */
AINL TAVX2 void d15_halves(const int8_t *wp, size_t gstride, int32_t K4, const int16_t *lo, const int8_t *hi,
                           __m256i s[2][2]) {
    __m256i a00 = _mm256_setzero_si256(), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00, a13 = a00;
    __m256i x0, x1, w0, w1, t;
    size_t n = (size_t)K4;
    if (n)
        __asm__("1:\n\t"
                D15_QUADS("(%[lp])", "(%[hp])")
                D15_GATE("(%[p])", "16(%[p])", a00, a01, a02, a03)
                D15_GATE("(%[p],%[gs])", "16(%[p],%[gs])", a10, a11, a12, a13)
                "add $8, %[lp]\n\t"
                "add $4, %[hp]\n\t"
                "add $64, %[p]\n\t"
                "dec %[n]\n\t"
                "jnz 1b"
                : [a00] "+x"(a00), [a01] "+x"(a01), [a02] "+x"(a02), [a03] "+x"(a03), [a10] "+x"(a10),
                  [a11] "+x"(a11), [a12] "+x"(a12), [a13] "+x"(a13), [x0] "=&x"(x0), [x1] "=&x"(x1),
                  [w0] "=&x"(w0), [w1] "=&x"(w1), [t] "=&x"(t), [p] "+r"(wp), [lp] "+r"(lo), [hp] "+r"(hi),
                  [n] "+r"(n)
                : [gs] "r"(gstride)
                : "memory", "cc");
    s[0][0] = rows8_sums(a00, a01);
    s[0][1] = rows8_sums(a02, a03);
    s[1][0] = rows8_sums(a10, a11);
    s[1][1] = rows8_sums(a12, a13);
}

/* The products of rows row0 .. row0 + 7 (`valid` of them) from their digit sums s:
 * (d1 sums 2^15 + d0 sums) in float, times (xs * scale[row]). */
AINL TAVX2 __m256 d15_scaled(const __m256i s[2], const lsl_matrix *w, int32_t row0, int32_t valid, float xs) {
    const __m256 v = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[1]), _mm256_set1_ps(32768.0f), _mm256_cvtepi32_ps(s[0]));
    return _mm256_mul_ps(v, _mm256_mul_ps(ld(w->scale + row0, valid), _mm256_set1_ps(xs)));
}

/* The fused step on float activations (kpad <= LSL_D15_KMAX): h in two digits at work,
 * laid out as lsl_avx2_gemm_i8 lays out one row (d0 in 2 kpad bytes, then d1), then
 * lstm_step1_q8's blocks of 8 units, the gates two at a time (8 accumulators), ending in
 * `cells` (cells_avx2, or the AVX-512 table's cells_512). */
AINL TAVX2 void lstm_step1_d15(lsl_cells_fn cells, const lsl_matrix *w, int32_t hidden, void *work, const float *g,
                               float *c, float *h, int rev) {
    const size_t pstride = (size_t)w->kpad * LSL_PANEL, gstride = (size_t)(hidden / LSL_PANEL) * pstride;
    const int32_t K4 = w->kpad / 4, blocks = hidden / 8;
    int16_t *lo = (int16_t *)work;
    int8_t *hi = (int8_t *)work + 2 * (size_t)w->kpad;
    float gates[4][2 * LSL_S16_GROUP * 8] __attribute__((aligned(32)));
    float xs;
    int32_t b0, b;
    int q;
    lsl_avx2_quantize_d15(1, hidden, w->kpad, h, hidden, lo, hi, &xs);
    for (b0 = 0; b0 < blocks; b0 += 2 * LSL_S16_GROUP) {
        const int32_t nb = blocks - b0 < 2 * LSL_S16_GROUP ? blocks - b0 : 2 * LSL_S16_GROUP;
        for (b = 0; b < nb; ++b) {
            const int32_t jb = rev ? blocks - 1 - (b0 + b) : b0 + b, j = 8 * jb;
            const int8_t *base = (const int8_t *)w->data + (size_t)(j / LSL_PANEL) * pstride + 32 * (jb & 1);
            for (q = 0; q < 4; q += 2) {
                __m256i s[2][2];
                int t;
                d15_halves(base + q * gstride, gstride, K4, lo, hi, s);
                for (t = 0; t < 2; ++t)
                    _mm256_store_ps(gates[q + t] + 8 * (rev ? nb - 1 - b : b),
                                    _mm256_add_ps(_mm256_loadu_ps(g + (q + t) * hidden + j),
                                                  d15_scaled(s[t], w, (q + t) * hidden + j, 8, xs)));
            }
        }
        { /* nb is even (hidden % 16 == 0): whole blocks of 16 units */
            const int32_t j = 8 * (rev ? blocks - b0 - nb : b0);
            cells(gates[0], gates[1], gates[2], gates[3], 8 * nb, c + j, h + j);
        }
    }
}

/* The fused step in blocks of 8 units for the forms of three limbs (LSL_K_DIG,
 * LSL_K_VNNI3: 4 gates x 3 limbs = 12 accumulators, as many as the 16 registers allow);
 * the one-limb forms take lstm_step1_sign16. */
AINL TAVX2 void lstm_step1_q8(const int kind, const lsl_matrix *w, int32_t hidden, const uint8_t *u,
                              size_t lstride, float xs, const float *g, float *c, float *h, int rev) {
    const int L = lsl_k_limbs(kind);
    const size_t pstride = (size_t)w->kpad * LSL_PANEL;
    const int32_t K4 = w->kpad / 4, blocks = hidden / 8;
    /* the cell updates after groups of blocks, in two passes (cells_avx2), as
     * lstm_step1_sign16 (and why); [gate][unit of the group, in order (rev or not)] */
    float gates[4][2 * LSL_S16_GROUP * 8] __attribute__((aligned(32)));
    int32_t b0, b, k4;
    int q, l;
    for (b0 = 0; b0 < blocks; b0 += 2 * LSL_S16_GROUP) {
        const int32_t nb = blocks - b0 < 2 * LSL_S16_GROUP ? blocks - b0 : 2 * LSL_S16_GROUP;
        for (b = 0; b < nb; ++b) {
            const int32_t jb = rev ? blocks - 1 - (b0 + b) : b0 + b, j = 8 * jb;
            /* row j of gate q: panel (q H + j) / 16, half (j / 8) % 2 */
            const int8_t *base = (const int8_t *)w->data + (size_t)(j / LSL_PANEL) * pstride + 32 * (jb & 1);
            const size_t gstride = (size_t)(hidden / LSL_PANEL) * pstride;
            __m256i acc[4][3];
            for (q = 0; q < 4; ++q)
                for (l = 0; l < L; ++l) acc[q][l] = _mm256_setzero_si256();
            for (k4 = 0; k4 < K4; ++k4) {
                __m256i xb[3];
                for (l = 0; l < L; ++l) xb[l] = act_quad(kind, u + l * lstride + 4 * k4);
                for (q = 0; q < 4; ++q) {
                    const int8_t *wp = base + q * gstride + (size_t)k4 * 64;
                    if (L == 1) {
                        dot4_rows(kind, 1, &acc[q][0], xb, wp);
                    } else {
                        dot4_rows(kind, 3, acc[q], xb, wp);
                    }
                }
            }
            for (q = 0; q < 4; ++q)
                _mm256_store_ps(gates[q] + 8 * (rev ? nb - 1 - b : b),
                                _mm256_add_ps(_mm256_loadu_ps(g + q * hidden + j),
                                              scaled_sums(kind, acc[q], w, q * hidden + j, 8, xs)));
        }
        { /* nb is even (hidden % 16 == 0): whole blocks of 16 units */
            const int32_t j = 8 * (rev ? blocks - b0 - nb : b0); /* the group's first unit */
            cells_avx2(gates[0], gates[1], gates[2], gates[3], 8 * nb, c + j, h + j);
        }
    }
}

/* ---- (1, 4)-block sparse int8 (LSL_I8_SPARSE, layout in lsl_internal.h) ---------- *
 * As lsl_kern_avx512_sparse.c does it, with 8 lanes: lane r of a slot multiplies the 4
 * activations of its own block, fetched from the window's 128 activation bytes (32
 * quads) kept in four registers. vpermd picks within 8 quads, so a fetch is four
 * vpermd (one per register, index bits 0-2) and three blends (bits 3 and 4); zero
 * blocks cost nothing. The sums are exact, so the results equal the dense kernels'.
 * The fetch is two thirds of a slot's instructions; where the 8 rows of each half panel
 * share their blocks (LSL_MATRIX_SHARED8: (8, 4)-block pruning), a slot broadcasts the
 * half's one quad instead, as the dense kernels do. A quad's byte offset is
 * (size_t)4 * its index byte: x86 addressing then scales the zero-extended byte in the
 * load itself, where an int product cost a shift and a sign extension per slot (with
 * the unsigned division of slot counts into quad groups: 4 % of the sparse layers' time
 * on AVX2, 6 % with AVX-VNNI). */

/* The 32 quads of one window of one activation row as the operand act_quad would give
 * (dynamic: q = u ^ 0x80). */
AINL TAVX2 void window_table(const int kind, const uint8_t *row, __m256i t[4]) {
    int r;
    for (r = 0; r < 4; ++r) {
        t[r] = _mm256_loadu_si256((const __m256i *)(row + 32 * r));
        if (kind == LSL_K_DYN || kind == LSL_K_DYNX) t[r] = _mm256_xor_si256(t[r], _mm256_set1_epi8((char)0x80));
    }
}

/* Each lane's quad number (0..31) is byte j of its 32-bit word in v. blendv reads only
 * bit 31 of a lane, so v shifted left by 28 - 8j (27 - 8j) puts bit 3 (bit 4) of that
 * byte there; vpermd reads only bits 0-2 of v >> 8j. */
AINL TAVX2 __m256i fetch_quads(const __m256i t[4], __m256i v, const int j) {
    const __m256i idx = j ? _mm256_srli_epi32(v, 8 * j) : v;
    const __m256 b3 = _mm256_castsi256_ps(_mm256_slli_epi32(v, 28 - 8 * j));
    const __m256 b4 = _mm256_castsi256_ps(_mm256_slli_epi32(v, 27 - 8 * j));
    const __m256 lo = _mm256_blendv_ps(_mm256_castsi256_ps(_mm256_permutevar8x32_epi32(t[0], idx)),
                                       _mm256_castsi256_ps(_mm256_permutevar8x32_epi32(t[1], idx)), b3);
    const __m256 hi = _mm256_blendv_ps(_mm256_castsi256_ps(_mm256_permutevar8x32_epi32(t[2], idx)),
                                       _mm256_castsi256_ps(_mm256_permutevar8x32_epi32(t[3], idx)), b3);
    return _mm256_castps_si256(_mm256_blendv_ps(lo, hi, b4));
}

/* Slot j (0..3) of an index group: both halves of the panel, every limb. */
AINL TAVX2 void sparse_slot(const int kind, const __m256i t[3][4], const __m256i v[2], const int j, const int8_t *wp,
                            __m256i acc[2][3]) {
    const int L = lsl_k_limbs(kind);
    int h, l;
    for (h = 0; h < 2; ++h) {
        __m256i x[3];
        for (l = 0; l < L; ++l) x[l] = fetch_quads(t[l], v[h], j);
        dot4_rows(kind, L, acc[h], x, wp + 32 * h); /* L limbs of one row: one |w| */
    }
}

/* Panel p for one activation row (L planes at u, stride lstride; windows of 128 bytes):
 * y (the panel's 16 outputs) += product. */
AINL TAVX2 void sparse_panel(const int kind, const lsl_matrix *w, int32_t p, const uint8_t *u, size_t lstride,
                             float xs, float *y) {
    const int L = lsl_k_limbs(kind);
    const unsigned char *base = (const unsigned char *)w->data;
    const lsl_sparse_hdr *hdr = (const lsl_sparse_hdr *)base;
    const int32_t *e = (const int32_t *)(base + hdr->seg_offset) + 2 * (size_t)p * hdr->windows;
    __m256i acc[2][3];
    int32_t win, s;
    int h, l;
    for (h = 0; h < 2; ++h)
        for (l = 0; l < 3; ++l) acc[h][l] = _mm256_setzero_si256();
    for (win = 0; win < hdr->windows; ++win, e += 2) {
        const int32_t n = e[1];
        const unsigned char *ip = base + e[0];
        const int8_t *wp = (const int8_t *)(ip + lsl_segment_index_bytes(n));
        __m256i t[3][4];
        if (n == 0) continue;
        for (l = 0; l < L; ++l) window_table(kind, u + l * lstride + (size_t)win * LSL_SPARSE_WIN, t[l]);
        for (s = 0; s < n; s += 4, ip += 64) {
            const __m256i v[2] = {_mm256_loadu_si256((const __m256i *)ip), _mm256_loadu_si256((const __m256i *)(ip + 32))};
            sparse_slot(kind, t, v, 0, wp + (size_t)64 * s, acc);
            if (s + 1 < n) sparse_slot(kind, t, v, 1, wp + (size_t)64 * (s + 1), acc);
            if (s + 2 < n) sparse_slot(kind, t, v, 2, wp + (size_t)64 * (s + 2), acc);
            if (s + 3 < n) sparse_slot(kind, t, v, 3, wp + (size_t)64 * (s + 3), acc);
        }
    }
    for (h = 0; h < 2; ++h) {
        const int32_t row0 = p * LSL_PANEL + 8 * h, valid = w->rows - row0;
        if (valid <= 0) continue;
        st(y + row0, _mm256_add_ps(ld(y + row0, valid), scaled_sums(kind, acc[h], w, row0, valid, xs)), valid);
    }
}

/* Panel p for one activation row of a LSL_MATRIX_SHARED8 matrix, three-limb kinds
 * (LSL_K_DIG, LSL_K_VNNI3; limb l at u + l lstride): per slot and half, one broadcast
 * quad per limb against the half's 8 x 4 weights (|w| once for the limbs); with
 * LSL_MATRIX_SHARED16 half 1 reuses half 0's quads. The same exact sums as
 * sparse_panel. One-limb kinds take several rows at once: sparse_rows_shared. */
AINL TAVX2 void sparse_panel_shared(const int kind, const lsl_matrix *w, int32_t p, const uint8_t *u,
                                    size_t lstride, float xs, float *y) {
    const int L = lsl_k_limbs(kind);
    const unsigned char *base = (const unsigned char *)w->data;
    const lsl_sparse_hdr *hdr = (const lsl_sparse_hdr *)base;
    const int32_t *e = (const int32_t *)(base + hdr->seg_offset) + 2 * (size_t)p * hdr->windows;
    __m256i acc[2][3]; /* [half][limb] */
    int32_t win, s;
    int h, l;
    for (h = 0; h < 2; ++h)
        for (l = 0; l < 3; ++l) acc[h][l] = _mm256_setzero_si256();
    for (win = 0; win < hdr->windows; ++win, e += 2) {
        const int32_t n = e[1];
        const unsigned char *ip = base + e[0];
        const int8_t *wp = (const int8_t *)(ip + lsl_segment_index_bytes(n));
        const uint8_t *row = u + (size_t)win * LSL_SPARSE_WIN;
        for (s = 0; s < n; ++s) {
            const unsigned char *is = ip + (size_t)64 * (s / 4) + s % 4;
            __m256i xq[3]; /* half 0's quads, one per limb */
            for (h = 0; h < 2; ++h) {
                const size_t at = (size_t)4 * is[32 * h]; /* lane 8h's block: the half's */
                if (!(h == 1 && (w->reserved & LSL_MATRIX_SHARED16)))
                    for (l = 0; l < L; ++l) xq[l] = act_quad(kind, row + l * lstride + at);
                dot4_rows(kind, L, acc[h], xq, wp + (size_t)64 * s + 32 * h);
            }
        }
    }
    for (h = 0; h < 2; ++h) {
        const int32_t row0 = p * LSL_PANEL + 8 * h, valid = w->rows - row0;
        if (valid <= 0) continue;
        st(y + row0, _mm256_add_ps(ld(y + row0, valid), scaled_sums(kind, acc[h], w, row0, valid, xs)), valid);
    }
}

/* The fields a sparse matrix's panel loop reads, copied once: a store into y may alias
 * them as far as the compiler knows, so it would reload them for every panel (the AVX2
 * view on Zen 4, I40 H128 80 % (16, 4)-sparse int8-dyn: 89 -> 85 us a sequence). */
typedef struct lsl_sparse_view {
    const unsigned char *base; /* w->data */
    const int32_t *seg;        /* the segment table: (offset, n) pairs, panel-major */
    const float *scale;        /* w->scale */
    const int32_t *wsum;       /* w->wsum (the offset's correction of LSL_K_VNNI) */
    int32_t windows, rows;
    int shared16; /* LSL_MATRIX_SHARED16 */
} lsl_sparse_view;

AINL lsl_sparse_view sparse_view_of(const lsl_matrix *w) {
    const unsigned char *base = (const unsigned char *)w->data;
    const lsl_sparse_hdr *hdr = (const lsl_sparse_hdr *)base;
    lsl_sparse_view v;
    v.base = base;
    v.seg = (const int32_t *)(base + hdr->seg_offset);
    v.scale = w->scale;
    v.wsum = w->wsum;
    v.windows = hdr->windows;
    v.rows = w->rows;
    v.shared16 = (w->reserved & LSL_MATRIX_SHARED16) != 0;
    return v;
}

/* Panel p for MB (1 to 4) activation rows (row i at u + i ldu, scale xs[i], output
 * y + i ldy) of a LSL_MATRIX_SHARED8 matrix, one-limb kinds (LSL_K_DYN, LSL_K_DYNX,
 * LSL_K_VNNI): per slot one broadcast quad per row and half (one for both halves with
 * LSL_MATRIX_SHARED16) against the half's 8 x 4 weights (|w| once for the MB rows),
 * the accumulators in registers and the matrix's fields from the view. The exact sums
 * and epilogue of sparse_panel. Why a loop of its own: the one it replaced (a
 * [half][row][limb] accumulator array, the fields reloaded after every store into y,
 * which may alias them) had GCC spill its sums every slot: the input projection of
 * I=40/H=128 80 % (16, 4)-sparse dynamic int8, T = 100, took 16.8 -> 12.9 us (Zen 4). */
AINL TAVX2 void sparse_rows_shared(const int kind, const int MB, const lsl_sparse_view *v, int32_t p,
                                   const uint8_t *u, int32_t ldu, const float *xs, const float *bias, float *y,
                                   int32_t ldy) {
    const int32_t *e = v->seg + 2 * (size_t)p * v->windows;
    __m256i a0[4], a1[4], xq[4];
    int32_t win, s;
    int h, i;
    for (i = 0; i < MB; ++i) a0[i] = a1[i] = _mm256_setzero_si256();
    for (win = 0; win < v->windows; ++win, e += 2) {
        const int32_t n = e[1];
        const unsigned char *ip = v->base + e[0];
        const int8_t *wp = (const int8_t *)(ip + lsl_segment_index_bytes(n));
        const uint8_t *row = u + (size_t)win * LSL_SPARSE_WIN;
        for (s = 0; s < n; ++s) {
            const unsigned char *is = ip + (size_t)64 * (s / 4) + s % 4; /* half h's block: is[32 h] */
            const int8_t *ws = wp + (size_t)64 * s;
            for (i = 0; i < MB; ++i) xq[i] = act_quad(kind, row + (size_t)i * ldu + (size_t)4 * is[0]);
            dot4_rows(kind, MB, a0, xq, ws);
            if (!v->shared16)
                for (i = 0; i < MB; ++i) xq[i] = act_quad(kind, row + (size_t)i * ldu + (size_t)4 * is[32]);
            dot4_rows(kind, MB, a1, xq, ws + 32);
        }
    }
    if (v->rows - p * LSL_PANEL >= LSL_PANEL) { /* a whole panel: no tail masks */
        const int32_t row0 = p * LSL_PANEL;
        const __m256 sc0 = _mm256_loadu_ps(v->scale + row0), sc1 = _mm256_loadu_ps(v->scale + row0 + 8);
        __m256 b0 = _mm256_setzero_ps(), b1 = b0;
        __m256i off0 = _mm256_setzero_si256(), off1 = off0;
        if (bias) b0 = _mm256_loadu_ps(bias + row0), b1 = _mm256_loadu_ps(bias + row0 + 8);
        if (kind == LSL_K_VNNI) {
            off0 = _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)(v->wsum + row0)), 7);
            off1 = _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)(v->wsum + row0 + 8)), 7);
        }
        for (i = 0; i < MB; ++i) {
            float *yr = y + (size_t)i * ldy + row0;
            const __m256 xv = _mm256_set1_ps(xs[i]);
            const __m256 s0 = _mm256_cvtepi32_ps(_mm256_sub_epi32(a0[i], off0));
            const __m256 s1 = _mm256_cvtepi32_ps(_mm256_sub_epi32(a1[i], off1));
            _mm256_storeu_ps(yr, _mm256_add_ps(bias ? b0 : _mm256_loadu_ps(yr), _mm256_mul_ps(s0, _mm256_mul_ps(sc0, xv))));
            _mm256_storeu_ps(yr + 8, _mm256_add_ps(bias ? b1 : _mm256_loadu_ps(yr + 8), _mm256_mul_ps(s1, _mm256_mul_ps(sc1, xv))));
        }
        return;
    }
    for (h = 0; h < 2; ++h) { /* scaled_sums with the view's fields, then (bias or y) + */
        const int32_t row0 = p * LSL_PANEL + 8 * h, valid = v->rows - row0;
        __m256 sc, bv = _mm256_setzero_ps();
        __m256i off = _mm256_setzero_si256();
        if (valid <= 0) continue;
        sc = ld(v->scale + row0, valid);
        if (bias) bv = ld(bias + row0, valid);
        if (kind == LSL_K_VNNI)
            off = _mm256_slli_epi32(valid >= 8 ? _mm256_loadu_si256((const __m256i *)(v->wsum + row0))
                                               : _mm256_maskload_epi32((const int *)(v->wsum + row0), tail_mask(valid)),
                                    7);
        for (i = 0; i < MB; ++i) {
            float *yr = y + (size_t)i * ldy + row0;
            const __m256 sums = _mm256_cvtepi32_ps(_mm256_sub_epi32(h ? a1[i] : a0[i], off));
            st(yr, _mm256_add_ps(bias ? bv : ld(yr, valid), _mm256_mul_ps(sums, _mm256_mul_ps(sc, _mm256_set1_ps(xs[i])))),
               valid);
        }
    }
}

/* y's 16 rows of panel p += the panel's sums a0 (rows 0-7) and a1 (8-15) times their
 * weight scales and the activation scale xs: scaled_sums(LSL_K_DYNM, ...) with the
 * view's fields (sparse_panels_masked's epilogue), without tail masks for a whole panel. */
AINL TAVX2 void masked_epilogue(const lsl_sparse_view *v, int32_t p, __m256i a0, __m256i a1, __m256 xs, float *y) {
    const int32_t row0 = p * LSL_PANEL;
    const __m256 t0 = _mm256_cvtepi32_ps(a0), t1 = _mm256_cvtepi32_ps(a1);
    if (v->rows - row0 >= LSL_PANEL) {
        _mm256_storeu_ps(y + row0, _mm256_add_ps(_mm256_loadu_ps(y + row0),
                                                 _mm256_mul_ps(t0, _mm256_mul_ps(_mm256_loadu_ps(v->scale + row0), xs))));
        _mm256_storeu_ps(y + row0 + 8,
                         _mm256_add_ps(_mm256_loadu_ps(y + row0 + 8),
                                       _mm256_mul_ps(t1, _mm256_mul_ps(_mm256_loadu_ps(v->scale + row0 + 8), xs))));
    } else {
        int h;
        for (h = 0; h < 2; ++h) {
            const int32_t r0 = row0 + 8 * h, valid = v->rows - r0;
            if (valid <= 0) continue;
            st(y + r0, _mm256_add_ps(ld(y + r0, valid), _mm256_mul_ps(h ? t1 : t0, _mm256_mul_ps(ld(v->scale + r0, valid), xs))),
               valid);
        }
    }
}

/* Every panel of a LSL_MATRIX_SHARED8 matrix (first to last, or last to first: `rev`)
 * for one activation row in the sign-mask form (LSL_K_DYNM: |q| plane at u, sign plane
 * at u + lstride, whole windows): y += product. Slots in their index groups of 4 (slot
 * s's half-h block index is byte s % 4 + 32 h of its group's 64); with S16
 * (LSL_MATRIX_SHARED16, a constant where it is inlined) one quad serves both halves. The
 * 0 to 3 slots after the last whole group of 4 go by a switch that falls through (no
 * loop, no per-slot test of the sharing), and a whole panel's epilogue needs no masks:
 * the general loop's remainder and tests took the 100 recurrent products of I=40/H=128
 * 80 % (16, 4)-sparse dynamic int8 41 us where this took 36.5 (Zen 4, a C harness timing
 * that part alone). A panel's epilogue waits for its last products' latency; it is
 * issued after the next panel's first group of slots, so that the core has independent
 * products to run meanwhile: 37.2 -> 35.1 us there. */
AINL TAVX2 void sparse_panels_masked(const int S16, const lsl_sparse_view *v, int32_t panels, int rev,
                                     const uint8_t *u, size_t lstride, __m256 xs, float *y) {
    __m256i prev0 = _mm256_setzero_si256(), prev1 = prev0;
    int32_t g, prev = -1;
    for (g = 0; g < panels; ++g) {
        const int32_t p = rev ? panels - 1 - g : g;
        const int32_t *e = v->seg + 2 * (size_t)p * v->windows;
        __m256i a0 = _mm256_setzero_si256(), a1 = a0;
        int32_t win, s;
        for (win = 0; win < v->windows; ++win, e += 2) {
            const int32_t n = e[1];
            const unsigned char *ip = v->base + e[0];
            const int8_t *wp = (const int8_t *)(ip + lsl_segment_index_bytes(n));
            const uint8_t *row = u + (size_t)win * LSL_SPARSE_WIN;
            const unsigned char *ix;
            const int8_t *ws;
#define SLOT16(J)                                                                                   \
    do {                                                                                            \
        const size_t at_ = (size_t)4 * ix[J];                                                       \
        __m256i aq_ = quad_at(row + at_), mask_ = quad_at(row + lstride + at_);                     \
        a0 = dot4_masked(a0, aq_, mask_, ws + 64 * (J));                                            \
        if (!S16) { /* half 1's own block */                                                        \
            const size_t at1_ = (size_t)4 * ix[32 + (J)];                                           \
            aq_ = quad_at(row + at1_), mask_ = quad_at(row + lstride + at1_);                       \
        }                                                                                           \
        a1 = dot4_masked(a1, aq_, mask_, ws + 64 * (J) + 32);                                       \
    } while (0)
#define GROUP16()                                                                                   \
    do {                                                                                            \
        ix = ip + (size_t)16 * s; /* the group of slots s .. s + 3 */                               \
        ws = wp + (size_t)64 * s;                                                                   \
        SLOT16(0);                                                                                  \
        SLOT16(1);                                                                                  \
        SLOT16(2);                                                                                  \
        SLOT16(3);                                                                                  \
    } while (0)
            s = 0;
            if (n >= 4) {
                GROUP16();
                s = 4;
            }
            if (prev >= 0) { /* the previous panel's epilogue, behind independent products */
                masked_epilogue(v, prev, prev0, prev1, xs, y);
                prev = -1;
            }
            for (; s + 4 <= n; s += 4) GROUP16();
            ix = ip + (size_t)16 * s;
            ws = wp + (size_t)64 * s;
            switch (n - s) {
            case 3: SLOT16(2); /* fall through */
            case 2: SLOT16(1); /* fall through */
            case 1: SLOT16(0); /* fall through */
            default: break;
            }
#undef GROUP16
#undef SLOT16
        }
        if (prev >= 0) masked_epilogue(v, prev, prev0, prev1, xs, y); /* no window */
        prev0 = a0, prev1 = a1, prev = p;
    }
    if (prev >= 0) masked_epilogue(v, prev, prev0, prev1, xs, y);
}

/* One slot of a panel whose halves share their blocks (LSL_MATRIX_SHARED8) on two-digit
 * float activations: half h's quad (d0 at l[h], d1 at d[h]) times its 8 x 4 weights at
 * wp + 32 h, into a[4 h .. 4 h + 3] as d15_halves' loop (asm for the same reason). */
AINL TAVX2 void d15_slot(__m256i a[8], const int16_t *l0, const int8_t *d0, const int16_t *l1, const int8_t *d1,
                         const int8_t *wp) {
    __m256i x0, x1, w0, w1, t;
    __asm__(D15_QUADS("(%[l0])", "(%[d0])") D15_GATE("(%[wp])", "16(%[wp])", a0, a1, a2, a3)
            D15_QUADS("(%[l1])", "(%[d1])") D15_GATE("32(%[wp])", "48(%[wp])", a4, a5, a6, a7)
            : [a0] "+x"(a[0]), [a1] "+x"(a[1]), [a2] "+x"(a[2]), [a3] "+x"(a[3]), [a4] "+x"(a[4]), [a5] "+x"(a[5]),
              [a6] "+x"(a[6]), [a7] "+x"(a[7]), [x0] "=&x"(x0), [x1] "=&x"(x1), [w0] "=&x"(w0), [w1] "=&x"(w1),
              [t] "=&x"(t)
            : [l0] "r"(l0), [d0] "r"(d0), [l1] "r"(l1), [d1] "r"(d1), [wp] "r"(wp)
            : "memory");
}
#undef D15_GATE
#undef D15_QUADS

/* sparse_panel_shared on two-digit float activations (one row: d0 at lo, d1 at hi, rows
 * of whole windows): y += products. */
AINL TAVX2 void sparse_panel_d15(const lsl_sparse_view *v, int32_t p, const int16_t *lo, const int8_t *hi, float xs,
                                 const lsl_matrix *w, float *y) {
    const int32_t *e = v->seg + 2 * (size_t)p * v->windows;
    __m256i a[8];
    int32_t win, s;
    int h;
    for (h = 0; h < 8; ++h) a[h] = _mm256_setzero_si256();
    for (win = 0; win < v->windows; ++win, e += 2) {
        const int32_t n = e[1];
        const unsigned char *ip = v->base + e[0];
        const int8_t *wp = (const int8_t *)(ip + lsl_segment_index_bytes(n));
        const int16_t *lw = lo + (size_t)win * LSL_SPARSE_WIN;
        const int8_t *hw = hi + (size_t)win * LSL_SPARSE_WIN;
        for (s = 0; s < n; ++s) {
            const unsigned char *is = ip + (size_t)64 * (s / 4) + s % 4;
            /* lanes 0 and 8: the halves' */
            const size_t at0 = (size_t)4 * is[0], at1 = v->shared16 ? at0 : (size_t)4 * is[32];
            d15_slot(a, lw + at0, hw + at0, lw + at1, hw + at1, wp + (size_t)64 * s);
        }
    }
    for (h = 0; h < 2; ++h) {
        const int32_t row0 = p * LSL_PANEL + 8 * h, valid = v->rows - row0;
        __m256i sums[2];
        if (valid <= 0) continue;
        sums[0] = rows8_sums(a[4 * h], a[4 * h + 1]);
        sums[1] = rows8_sums(a[4 * h + 2], a[4 * h + 3]);
        st(y + row0, _mm256_add_ps(ld(y + row0, valid), d15_scaled(sums, w, row0, valid, xs)), valid);
    }
}

/* The sparse products: panels in order (or last to first: `rev`), each for every
 * activation row (its weights stay in L1 while the rows pass). LSL_K_DYNM: one row of
 * a LSL_MATRIX_SHARED8 matrix (lsl_avx2_gemm_sparse_dyn8). */
AINL TAVX2 void gemm_sparse_q8(const int kind, const lsl_matrix *w, int32_t m, const uint8_t *u, int32_t ldu,
                               size_t lstride, const float *xs, const float *bias, float *y, int32_t ldy, int rev) {
    const int32_t panels = lsl_panels(w->rows);
    const lsl_sparse_view view = sparse_view_of(w);
    const __m256 xs0 = _mm256_set1_ps(xs[0]);
    /* several rows at once, the bias in the epilogue (sparse_rows_shared); the other
     * loops add into y, so they get the bias copied there first */
    const int rows_shared = kind != LSL_K_DYNM && (w->reserved & LSL_MATRIX_SHARED8) && lsl_k_limbs(kind) == 1;
    int32_t g, i;
    if (!rows_shared) {
        lsl_bias_rows(m, bias, w->rows, y, ldy);
        bias = NULL;
    }
    if (kind == LSL_K_DYNM) { /* one row of a shared-block matrix (lsl_avx2_gemm_sparse_dyn8) */
        if (view.shared16)
            sparse_panels_masked(1, &view, panels, rev, u, lstride, xs0, y);
        else
            sparse_panels_masked(0, &view, panels, rev, u, lstride, xs0, y);
        return;
    }
    for (g = 0; g < panels; ++g) {
        const int32_t p = rev ? panels - 1 - g : g;
        if (rows_shared) {
            for (i = 0; i < m; i += 4) {
#define ROWS_SHARED(MB) sparse_rows_shared(kind, MB, &view, p, u + (size_t)i * ldu, ldu, xs + i, bias, y + (size_t)i * ldy, ldy)
                switch (m - i < 4 ? m - i : 4) {
                case 4: ROWS_SHARED(4); break;
                case 3: ROWS_SHARED(3); break;
                case 2: ROWS_SHARED(2); break;
                default: ROWS_SHARED(1); break;
                }
#undef ROWS_SHARED
            }
            continue;
        }
        if (w->reserved & LSL_MATRIX_SHARED8) {
            for (i = 0; i < m; ++i) sparse_panel_shared(kind, w, p, u + (size_t)i * ldu, lstride, xs[i], y + (size_t)i * ldy);
            continue;
        }
        for (i = 0; i < m; ++i) sparse_panel(kind, w, p, u + (size_t)i * ldu, lstride, xs[i], y + (size_t)i * ldy);
    }
}

#endif /* LSTMLITE_LSL_KERN_AVX2_H */
