/*
 * lsl_kern_avx512.c -- AVX-512 kernels (F/BW/VL/DQ, and VNNI for dynamic int8).
 *
 * Every function carries a target attribute instead of the file being compiled with
 * -mavx512f, so one portable build holds these kernels and the dispatcher
 * (lsl_isa.c) only calls them after __builtin_cpu_supports says the CPU has them.
 *
 * One zmm register holds one panel (16 output rows). A tile computes MB activation
 * rows x NP panels; MB and NP are compile-time constants after inlining so the
 * accumulators live in registers.
 */
#include "lsl_internal.h"

#if defined(LSL_HAVE_X86)
#include <immintrin.h>
#include <string.h>

#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#define T512VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,avx512vnni")))
#define AINL static inline __attribute__((always_inline))

/* ---- float / weight-only int8 GEMM ---------------------------------------------- */

AINL T512 __m512 load_w_f32(const void *p) { return _mm512_loadu_ps((const float *)p); }
AINL T512 __m512 load_w_i8(const void *p) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p)));
}

/* y[i, rows of panels p0..p0+NP) += acc (* scale). `nrows` rows of y exist from the
 * first panel's first row, so the last panel may be partial (masked store). */
AINL T512 void store_tile(__m512 acc, float *yrow, int32_t valid, const float *scale) {
    if (valid >= LSL_PANEL) {
        __m512 v = scale ? _mm512_mul_ps(acc, _mm512_loadu_ps(scale)) : acc;
        _mm512_storeu_ps(yrow, _mm512_add_ps(_mm512_loadu_ps(yrow), v));
    } else if (valid > 0) {
        __mmask16 mk = (__mmask16)((1u << valid) - 1u);
        __m512 v = scale ? _mm512_mul_ps(acc, _mm512_maskz_loadu_ps(mk, scale)) : acc;
        _mm512_mask_storeu_ps(yrow, mk, _mm512_add_ps(_mm512_maskz_loadu_ps(mk, yrow), v));
    }
}

/* IS_I8 selects the weight load; MB activation rows, NP panels. For MB == 1 the k
 * loop keeps two accumulator sets (even / odd k) so enough FMAs are in flight. */
AINL T512 void tile_f(const int IS_I8, const int MB, const int NP, const lsl_matrix *w, int32_t p0,
                      const float *x, int32_t ldx, float *y, int32_t ldy) {
    __m512 acc[4][4], acc2[4];
    const size_t esz = IS_I8 ? 1 : 4;
    const char *base = (const char *)w->data + (size_t)p0 * w->kpad * LSL_PANEL * esz;
    const size_t pstride = (size_t)w->kpad * LSL_PANEL * esz;
    const int32_t K = w->cols;
    int32_t k = 0;
    int i, p;
    for (i = 0; i < MB; ++i)
        for (p = 0; p < NP; ++p) acc[i][p] = _mm512_setzero_ps();
    for (p = 0; p < NP; ++p) acc2[p] = _mm512_setzero_ps();
    if (MB == 1) {
        for (; k + 1 < K; k += 2) {
            __m512 x0 = _mm512_set1_ps(x[k]), x1 = _mm512_set1_ps(x[k + 1]);
            for (p = 0; p < NP; ++p) {
                const char *wp = base + p * pstride + (size_t)k * LSL_PANEL * esz;
                __m512 w0 = IS_I8 ? load_w_i8(wp) : load_w_f32(wp);
                __m512 w1 = IS_I8 ? load_w_i8(wp + LSL_PANEL * esz) : load_w_f32(wp + LSL_PANEL * esz);
                acc[0][p] = _mm512_fmadd_ps(x0, w0, acc[0][p]);
                acc2[p] = _mm512_fmadd_ps(x1, w1, acc2[p]);
            }
        }
    }
    for (; k < K; ++k) {
        __m512 wv[4];
        for (p = 0; p < NP; ++p) {
            const char *wp = base + p * pstride + (size_t)k * LSL_PANEL * esz;
            wv[p] = IS_I8 ? load_w_i8(wp) : load_w_f32(wp);
        }
        for (i = 0; i < MB; ++i) {
            __m512 xb = _mm512_set1_ps(x[(size_t)i * ldx + k]);
            for (p = 0; p < NP; ++p) acc[i][p] = _mm512_fmadd_ps(xb, wv[p], acc[i][p]);
        }
    }
    if (MB == 1)
        for (p = 0; p < NP; ++p) acc[0][p] = _mm512_add_ps(acc[0][p], acc2[p]);
    for (i = 0; i < MB; ++i)
        for (p = 0; p < NP; ++p) {
            int32_t row0 = (p0 + p) * LSL_PANEL;
            store_tile(acc[i][p], y + (size_t)i * ldy + row0, w->rows - row0, IS_I8 ? w->scale + row0 : NULL);
        }
}

/* Walk the panels in groups of NP (weights stay in L1 across the row blocks) and the
 * activation rows in blocks of 4. */
#define GEMM_DRIVER(NAME, IS_I8)                                                                   \
    static T512 void NAME(const lsl_matrix *w, int32_t m, const float *x, int32_t ldx, float *y,   \
                          int32_t ldy) {                                                           \
        int32_t panels = lsl_panels(w->rows), p = 0, i;                                            \
        if (m == 1) {                                                                              \
            for (; p + 4 <= panels; p += 4) tile_f(IS_I8, 1, 4, w, p, x, ldx, y, ldy);             \
            for (; p < panels; ++p) tile_f(IS_I8, 1, 1, w, p, x, ldx, y, ldy);                     \
            return;                                                                                \
        }                                                                                          \
        for (; p < panels; p += 2) {                                                               \
            int two = p + 2 <= panels;                                                             \
            for (i = 0; i < m; i += 4) {                                                           \
                const float *xi = x + (size_t)i * ldx;                                             \
                float *yi = y + (size_t)i * ldy;                                                   \
                int32_t mb = m - i < 4 ? m - i : 4;                                                \
                if (two) {                                                                         \
                    switch (mb) {                                                                  \
                    case 4: tile_f(IS_I8, 4, 2, w, p, xi, ldx, yi, ldy); break;                    \
                    case 3: tile_f(IS_I8, 3, 2, w, p, xi, ldx, yi, ldy); break;                    \
                    case 2: tile_f(IS_I8, 2, 2, w, p, xi, ldx, yi, ldy); break;                    \
                    default: tile_f(IS_I8, 1, 2, w, p, xi, ldx, yi, ldy); break;                   \
                    }                                                                              \
                } else {                                                                           \
                    switch (mb) {                                                                  \
                    case 4: tile_f(IS_I8, 4, 1, w, p, xi, ldx, yi, ldy); break;                    \
                    case 3: tile_f(IS_I8, 3, 1, w, p, xi, ldx, yi, ldy); break;                    \
                    case 2: tile_f(IS_I8, 2, 1, w, p, xi, ldx, yi, ldy); break;                    \
                    default: tile_f(IS_I8, 1, 1, w, p, xi, ldx, yi, ldy); break;                   \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

GEMM_DRIVER(gemm_f32, 0)
GEMM_DRIVER(gemm_i8, 1)

/* ---- dynamic int8 GEMM with VNNI ------------------------------------------------ */

AINL T512VNNI void tile_vnni(const int MB, const int NP, const lsl_matrix *w, int32_t p0, const uint8_t *u,
                             int32_t ldu, const float *xs, float *y, int32_t ldy) {
    __m512i acc[4][4];
    const int8_t *base = (const int8_t *)w->data + (size_t)p0 * w->kpad * LSL_PANEL;
    const size_t pstride = (size_t)w->kpad * LSL_PANEL;
    const int32_t K4 = w->kpad / 4;
    int32_t k;
    int i, p;
    __m512i acc2[4];
    for (i = 0; i < MB; ++i)
        for (p = 0; p < NP; ++p) acc[i][p] = _mm512_setzero_si512();
    for (p = 0; p < NP; ++p) acc2[p] = _mm512_setzero_si512();
    k = 0;
    if (MB == 1) { /* two accumulator sets keep 2 * NP dot products in flight */
        for (; k + 1 < K4; k += 2) {
            int32_t q0, q1;
            __m512i x0, x1;
            memcpy(&q0, u + 4 * k, 4);
            memcpy(&q1, u + 4 * k + 4, 4);
            x0 = _mm512_set1_epi32(q0);
            x1 = _mm512_set1_epi32(q1);
            for (p = 0; p < NP; ++p) {
                const int8_t *wp = base + p * pstride + (size_t)k * 64;
                acc[0][p] = _mm512_dpbusd_epi32(acc[0][p], x0, _mm512_loadu_si512((const void *)wp));
                acc2[p] = _mm512_dpbusd_epi32(acc2[p], x1, _mm512_loadu_si512((const void *)(wp + 64)));
            }
        }
    }
    for (; k < K4; ++k) {
        __m512i wv[4];
        for (p = 0; p < NP; ++p) wv[p] = _mm512_loadu_si512((const void *)(base + p * pstride + (size_t)k * 64));
        for (i = 0; i < MB; ++i) {
            int32_t quad;
            memcpy(&quad, u + (size_t)i * ldu + 4 * k, 4);
            __m512i xb = _mm512_set1_epi32(quad);
            for (p = 0; p < NP; ++p) acc[i][p] = _mm512_dpbusd_epi32(acc[i][p], xb, wv[p]);
        }
    }
    if (MB == 1)
        for (p = 0; p < NP; ++p) acc[0][p] = _mm512_add_epi32(acc[0][p], acc2[p]);
    for (p = 0; p < NP; ++p) {
        int32_t row0 = (p0 + p) * LSL_PANEL, valid = w->rows - row0;
        __mmask16 mk = valid >= LSL_PANEL ? (__mmask16)0xFFFF : (__mmask16)((1u << valid) - 1u);
        /* u = q + 128, so sum(u w) - 128 sum(w) = sum(q w) exactly (mod 2^32, and the
         * true value fits). */
        __m512i corr = _mm512_slli_epi32(_mm512_maskz_loadu_epi32(mk, w->wsum + row0), 7);
        __m512 sc = _mm512_maskz_loadu_ps(mk, w->scale + row0);
        for (i = 0; i < MB; ++i) {
            float *yr = y + (size_t)i * ldy + row0;
            __m512 v = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[i][p], corr));
            v = _mm512_mul_ps(v, _mm512_mul_ps(sc, _mm512_set1_ps(xs[i])));
            _mm512_mask_storeu_ps(yr, mk, _mm512_add_ps(_mm512_maskz_loadu_ps(mk, yr), v));
        }
    }
}

static T512VNNI void gemm_dyn8_vnni(const lsl_matrix *w, int32_t m, const uint8_t *u, int32_t ldu, const float *xs,
                                    float *y, int32_t ldy) {
    int32_t panels = lsl_panels(w->rows), p = 0, i;
    if (m == 1) {
        for (; p + 4 <= panels; p += 4) tile_vnni(1, 4, w, p, u, ldu, xs, y, ldy);
        for (; p < panels; ++p) tile_vnni(1, 1, w, p, u, ldu, xs, y, ldy);
        return;
    }
    for (; p < panels; p += 2) {
        int two = p + 2 <= panels;
        for (i = 0; i < m; i += 4) {
            const uint8_t *ui = u + (size_t)i * ldu;
            float *yi = y + (size_t)i * ldy;
            int32_t mb = m - i < 4 ? m - i : 4;
            if (two) {
                switch (mb) {
                case 4: tile_vnni(4, 2, w, p, ui, ldu, xs + i, yi, ldy); break;
                case 3: tile_vnni(3, 2, w, p, ui, ldu, xs + i, yi, ldy); break;
                case 2: tile_vnni(2, 2, w, p, ui, ldu, xs + i, yi, ldy); break;
                default: tile_vnni(1, 2, w, p, ui, ldu, xs + i, yi, ldy); break;
                }
            } else {
                switch (mb) {
                case 4: tile_vnni(4, 1, w, p, ui, ldu, xs + i, yi, ldy); break;
                case 3: tile_vnni(3, 1, w, p, ui, ldu, xs + i, yi, ldy); break;
                case 2: tile_vnni(2, 1, w, p, ui, ldu, xs + i, yi, ldy); break;
                default: tile_vnni(1, 1, w, p, ui, ldu, xs + i, yi, ldy); break;
                }
            }
        }
    }
}

/* ---- dynamic activation quantization (same results as lsl_quantize_rows) ---------- */

static T512 void quantize_rows(int32_t m, int32_t k, int32_t kpad, const float *x, int32_t ldx, uint8_t *u,
                               float *xs) {
    int32_t i, j;
    for (i = 0; i < m; ++i) {
        const float *row = x + (size_t)i * ldx;
        uint8_t *q = u + (size_t)i * kpad;
        __m512 vmax = _mm512_setzero_ps(), vinv;
        float amax, inv;
        for (j = 0; j < k; j += 16) {
            __mmask16 mk = k - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (k - j)) - 1u);
            /* max(|x|, acc) returns acc when x is NaN: NaNs are skipped, as in C */
            vmax = _mm512_max_ps(_mm512_abs_ps(_mm512_maskz_loadu_ps(mk, row + j)), vmax);
        }
        amax = _mm512_reduce_max_ps(vmax);
        if (!(amax > 0.0f) || amax > 3.0e38f) {
            memset(q, LSL_Q_OFFSET, (size_t)kpad);
            xs[i] = 0.0f;
            continue;
        }
        inv = 127.0f / amax;
        vinv = _mm512_set1_ps(inv);
        for (j = 0; j < k; j += 16) {
            __mmask16 mk = k - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (k - j)) - 1u);
            __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(mk, row + j), vinv));
            v = _mm512_min_epi32(_mm512_max_epi32(v, _mm512_set1_epi32(-127)), _mm512_set1_epi32(127));
            v = _mm512_add_epi32(v, _mm512_set1_epi32(LSL_Q_OFFSET));
            _mm_mask_storeu_epi8(q + j, mk, _mm512_cvtepi32_epi8(v));
        }
        for (j = k; j < kpad; ++j) q[j] = LSL_Q_OFFSET;
        xs[i] = amax / 127.0f;
    }
}

/* ---- element-wise: exp, sigmoid, tanh -------------------------------------------- */

/* Cephes' expf: range reduction by ln 2 in two parts, degree-5 polynomial, then
 * scale by 2^n (scalef). About 1 ulp on [-87, 88]; inputs are clamped there. */
AINL T512 __m512 exp512(__m512 x) {
    const __m512 hi = _mm512_set1_ps(88.0f), lo = _mm512_set1_ps(-87.0f);
    __m512 fx, y, z;
    x = _mm512_min_ps(_mm512_max_ps(x, lo), hi);
    fx = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                              _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(0.693359375f), x);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(-2.12194440e-4f), x);
    z = _mm512_mul_ps(x, x);
    y = _mm512_set1_ps(1.9875691500E-4f);
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.3981999507E-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(8.3334519073E-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(4.1665795894E-2f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.6666665459E-1f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(5.0000001201E-1f));
    y = _mm512_fmadd_ps(y, z, _mm512_add_ps(x, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(y, fx);
}

/* 1 / d: the 14-bit estimate plus one Newton step (about 2^-27 relative), several
 * times cheaper than vdivps. d here is in [1, inf]; rcp14(inf) = 0 stays 0. */
AINL T512 __m512 recip512(__m512 d) {
    __m512 r = _mm512_rcp14_ps(d);
    return _mm512_fmadd_ps(r, _mm512_fnmadd_ps(d, r, _mm512_set1_ps(1.0f)), r);
}

AINL T512 __m512 sigmoid512(__m512 x) {
    const __m512 one = _mm512_set1_ps(1.0f);
    return recip512(_mm512_add_ps(one, exp512(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

/* tanh: Cephes' odd polynomial below |x| = 0.625 (where 1 - 2/(e^2x + 1) would lose
 * relative precision), the exp form above. */
AINL T512 __m512 tanh512(__m512 x) {
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 ax = _mm512_abs_ps(x), z, small, big, e;
    __mmask16 is_small = _mm512_cmp_ps_mask(ax, _mm512_set1_ps(0.625f), _CMP_LT_OQ);
    z = _mm512_mul_ps(x, x);
    small = _mm512_set1_ps(-5.70498872745E-3f);
    small = _mm512_fmadd_ps(small, z, _mm512_set1_ps(2.06390887954E-2f));
    small = _mm512_fmadd_ps(small, z, _mm512_set1_ps(-5.37397155531E-2f));
    small = _mm512_fmadd_ps(small, z, _mm512_set1_ps(1.33314422036E-1f));
    small = _mm512_fmadd_ps(small, z, _mm512_set1_ps(-3.33332819422E-1f));
    small = _mm512_fmadd_ps(_mm512_mul_ps(small, z), x, x);
    e = exp512(_mm512_mul_ps(_mm512_min_ps(ax, _mm512_set1_ps(10.0f)), _mm512_set1_ps(2.0f)));
    big = _mm512_fnmadd_ps(_mm512_set1_ps(2.0f), recip512(_mm512_add_ps(e, one)), one);
    /* copy x's sign onto the |x| result */
    big = _mm512_or_ps(big, _mm512_and_ps(x, _mm512_set1_ps(-0.0f)));
    return _mm512_mask_blend_ps(is_small, big, small);
}

static T512 void lstm_pointwise(int32_t hidden, const float *gates, float *c, float *h) {
    int32_t j;
    for (j = 0; j < hidden; j += 16) {
        int32_t n = hidden - j < 16 ? hidden - j : 16;
        __mmask16 mk = (__mmask16)(n == 16 ? 0xFFFFu : (1u << n) - 1u);
        __m512 ig = sigmoid512(_mm512_maskz_loadu_ps(mk, gates + j));
        __m512 fg = sigmoid512(_mm512_maskz_loadu_ps(mk, gates + hidden + j));
        __m512 gg = tanh512(_mm512_maskz_loadu_ps(mk, gates + 2 * hidden + j));
        __m512 og = sigmoid512(_mm512_maskz_loadu_ps(mk, gates + 3 * hidden + j));
        __m512 cn = _mm512_fmadd_ps(fg, _mm512_maskz_loadu_ps(mk, c + j), _mm512_mul_ps(ig, gg));
        _mm512_mask_storeu_ps(c + j, mk, cn);
        _mm512_mask_storeu_ps(h + j, mk, _mm512_mul_ps(og, tanh512(cn)));
    }
}

static T512 void gru_pointwise(int32_t hidden, const float *gi, const float *gh, float *h) {
    int32_t j;
    for (j = 0; j < hidden; j += 16) {
        int32_t n = hidden - j < 16 ? hidden - j : 16;
        __mmask16 mk = (__mmask16)(n == 16 ? 0xFFFFu : (1u << n) - 1u);
        __m512 r = sigmoid512(_mm512_add_ps(_mm512_maskz_loadu_ps(mk, gi + j), _mm512_maskz_loadu_ps(mk, gh + j)));
        __m512 z = sigmoid512(_mm512_add_ps(_mm512_maskz_loadu_ps(mk, gi + hidden + j),
                                            _mm512_maskz_loadu_ps(mk, gh + hidden + j)));
        __m512 nn = tanh512(_mm512_fmadd_ps(r, _mm512_maskz_loadu_ps(mk, gh + 2 * hidden + j),
                                            _mm512_maskz_loadu_ps(mk, gi + 2 * hidden + j)));
        __m512 hp = _mm512_maskz_loadu_ps(mk, h + j);
        _mm512_mask_storeu_ps(h + j, mk, _mm512_fmadd_ps(z, _mm512_sub_ps(hp, nn), nn));
    }
}

/* Defined in lsl_kern_avx2.c: dynamic int8 without VNNI (vpmaddwd). */
void lsl_avx2_quantize_rows(int32_t m, int32_t k, int32_t kpad, const float *x, int32_t ldx, uint8_t *u, float *xs);
void lsl_avx2_gemm_dyn8(const lsl_matrix *w, int32_t m, const uint8_t *u, int32_t ldu, const float *xs, float *y,
                        int32_t ldy);

const lsl_kernels lsl_kernels_avx512 = {
    LSL_ISA_AVX512, gemm_f32, gemm_i8, lsl_avx2_gemm_dyn8, quantize_rows, lstm_pointwise, gru_pointwise,
};
const lsl_kernels lsl_kernels_avx512_vnni = {
    LSL_ISA_AVX512, gemm_f32, gemm_i8, gemm_dyn8_vnni, quantize_rows, lstm_pointwise, gru_pointwise,
};

#endif /* LSL_HAVE_X86 */
