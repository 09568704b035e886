/*
 * lsl_kern_avx2.c -- AVX2 + FMA kernels. A panel (16 rows) is two ymm registers.
 * Same structure as lsl_kern_avx512.c; see there for the why.
 */
#include "lsl_internal.h"

#if defined(LSL_HAVE_X86)
#include <immintrin.h>
#include <string.h>

#define TAVX2 __attribute__((target("avx2,fma")))
#define AINL static inline __attribute__((always_inline))

AINL TAVX2 __m256 load8_f32(const void *p) { return _mm256_loadu_ps((const float *)p); }
AINL TAVX2 __m256 load8_i8(const void *p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}

/* Add 8 lanes (times scale) into y; `valid` lanes exist. */
AINL TAVX2 void store8(__m256 acc, float *yrow, int32_t valid, const float *scale) {
    if (valid >= 8) {
        __m256 v = scale ? _mm256_mul_ps(acc, _mm256_loadu_ps(scale)) : acc;
        _mm256_storeu_ps(yrow, _mm256_add_ps(_mm256_loadu_ps(yrow), v));
    } else if (valid > 0) {
        float tmp[8];
        int32_t r;
        _mm256_storeu_ps(tmp, acc);
        for (r = 0; r < valid; ++r) yrow[r] += scale ? tmp[r] * scale[r] : tmp[r];
    }
}

/* MB rows x NP panels, each panel two halves (h = 0, 1). */
AINL TAVX2 void tile_f(const int IS_I8, const int MB, const int NP, const lsl_matrix *w, int32_t p0,
                       const float *x, int32_t ldx, float *y, int32_t ldy) {
    __m256 acc[4][2][2];
    const size_t esz = IS_I8 ? 1 : 4;
    const char *base = (const char *)w->data + (size_t)p0 * w->kpad * LSL_PANEL * esz;
    const size_t pstride = (size_t)w->kpad * LSL_PANEL * esz;
    const int32_t K = w->cols;
    int32_t k;
    int i, p, h;
    for (i = 0; i < MB; ++i)
        for (p = 0; p < NP; ++p)
            for (h = 0; h < 2; ++h) acc[i][p][h] = _mm256_setzero_ps();
    for (k = 0; k < K; ++k) {
        __m256 wv[2][2];
        for (p = 0; p < NP; ++p)
            for (h = 0; h < 2; ++h) {
                const char *wp = base + p * pstride + ((size_t)k * LSL_PANEL + 8 * h) * esz;
                wv[p][h] = IS_I8 ? load8_i8(wp) : load8_f32(wp);
            }
        for (i = 0; i < MB; ++i) {
            __m256 xb = _mm256_set1_ps(x[(size_t)i * ldx + k]);
            for (p = 0; p < NP; ++p)
                for (h = 0; h < 2; ++h) acc[i][p][h] = _mm256_fmadd_ps(xb, wv[p][h], acc[i][p][h]);
        }
    }
    for (i = 0; i < MB; ++i)
        for (p = 0; p < NP; ++p)
            for (h = 0; h < 2; ++h) {
                int32_t row0 = (p0 + p) * LSL_PANEL + 8 * h;
                store8(acc[i][p][h], y + (size_t)i * ldy + row0, w->rows - row0, IS_I8 ? w->scale + row0 : NULL);
            }
}

#define GEMM_DRIVER(NAME, IS_I8)                                                                   \
    static TAVX2 void NAME(const lsl_matrix *w, int32_t m, const float *x, int32_t ldx, float *y,  \
                           int32_t ldy) {                                                          \
        int32_t panels = lsl_panels(w->rows), p = 0, i;                                            \
        if (m == 1) {                                                                              \
            for (; p + 2 <= panels; p += 2) tile_f(IS_I8, 1, 2, w, p, x, ldx, y, ldy);             \
            for (; p < panels; ++p) tile_f(IS_I8, 1, 1, w, p, x, ldx, y, ldy);                     \
            return;                                                                                \
        }                                                                                          \
        for (; p < panels; ++p) {                                                                  \
            for (i = 0; i < m; i += 4) {                                                           \
                const float *xi = x + (size_t)i * ldx;                                             \
                float *yi = y + (size_t)i * ldy;                                                   \
                switch (m - i < 4 ? m - i : 4) {                                                   \
                case 4: tile_f(IS_I8, 4, 1, w, p, xi, ldx, yi, ldy); break;                        \
                case 3: tile_f(IS_I8, 3, 1, w, p, xi, ldx, yi, ldy); break;                        \
                case 2: tile_f(IS_I8, 2, 1, w, p, xi, ldx, yi, ldy); break;                        \
                default: tile_f(IS_I8, 1, 1, w, p, xi, ldx, yi, ldy); break;                       \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

GEMM_DRIVER(gemm_f32, 0)
GEMM_DRIVER(gemm_i8, 1)

/* ---- dynamic int8 without VNNI --------------------------------------------------
 * 16 packed bytes = 4 rows x 4 k. Sign-extend to int16 and vpmaddwd against the
 * activation quad (q0 q1 q2 q3) repeated: lanes hold row r's (k0k1) and (k2k3)
 * partial sums, added pairwise at the end. vpmaddubsw would be faster but saturates
 * at 8-bit x 8-bit, so it could not match the other paths' exact int32 sums. */
AINL TAVX2 void tile_dyn(const int MB, const int NP, const lsl_matrix *w, int32_t p0, const uint8_t *u, int32_t ldu,
                         const float *xs, float *y, int32_t ldy) {
    __m256i acc[2][2][4];
    const int8_t *base = (const int8_t *)w->data + (size_t)p0 * w->kpad * LSL_PANEL;
    const size_t pstride = (size_t)w->kpad * LSL_PANEL;
    const int32_t K4 = w->kpad / 4;
    const __m128i offset = _mm_set1_epi16(LSL_Q_OFFSET);
    int32_t k;
    int i, p, c;
    for (i = 0; i < MB; ++i)
        for (p = 0; p < NP; ++p)
            for (c = 0; c < 4; ++c) acc[i][p][c] = _mm256_setzero_si256();
    for (k = 0; k < K4; ++k) {
        __m256i xq[2];
        for (i = 0; i < MB; ++i) {
            int32_t quad;
            __m128i q16;
            memcpy(&quad, u + (size_t)i * ldu + 4 * k, 4);
            q16 = _mm_sub_epi16(_mm_cvtepu8_epi16(_mm_cvtsi32_si128(quad)), offset);
            xq[i] = _mm256_broadcastq_epi64(q16);
        }
        for (p = 0; p < NP; ++p)
            for (c = 0; c < 4; ++c) {
                __m256i wv = _mm256_cvtepi8_epi16(
                    _mm_loadu_si128((const __m128i *)(base + p * pstride + (size_t)k * 64 + 16 * c)));
                for (i = 0; i < MB; ++i) acc[i][p][c] = _mm256_add_epi32(acc[i][p][c], _mm256_madd_epi16(wv, xq[i]));
            }
    }
    for (i = 0; i < MB; ++i)
        for (p = 0; p < NP; ++p) {
            int32_t row0 = (p0 + p) * LSL_PANEL, r, valid = w->rows - row0;
            int32_t part[4][8];
            for (c = 0; c < 4; ++c) _mm256_storeu_si256((__m256i *)part[c], acc[i][p][c]);
            valid = valid < LSL_PANEL ? valid : LSL_PANEL;
            for (r = 0; r < valid; ++r) {
                int32_t s = part[r / 4][2 * (r % 4)] + part[r / 4][2 * (r % 4) + 1];
                y[(size_t)i * ldy + row0 + r] += (float)s * (xs[i] * w->scale[row0 + r]);
            }
        }
}

TAVX2 void lsl_avx2_gemm_dyn8(const lsl_matrix *w, int32_t m, const uint8_t *u, int32_t ldu, const float *xs,
                              float *y, int32_t ldy) {
    int32_t panels = lsl_panels(w->rows), p = 0, i;
    if (m == 1) {
        for (; p + 2 <= panels; p += 2) tile_dyn(1, 2, w, p, u, ldu, xs, y, ldy);
        for (; p < panels; ++p) tile_dyn(1, 1, w, p, u, ldu, xs, y, ldy);
        return;
    }
    for (; p < panels; ++p)
        for (i = 0; i < m; i += 2) {
            if (m - i >= 2)
                tile_dyn(2, 1, w, p, u + (size_t)i * ldu, ldu, xs + i, y + (size_t)i * ldy, ldy);
            else
                tile_dyn(1, 1, w, p, u + (size_t)i * ldu, ldu, xs + i, y + (size_t)i * ldy, ldy);
        }
}

/* ---- dynamic activation quantization (same results as lsl_quantize_rows) ---------- */

TAVX2 void lsl_avx2_quantize_rows(int32_t m, int32_t k, int32_t kpad, const float *x, int32_t ldx, uint8_t *u,
                                  float *xs) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    int32_t i, j;
    for (i = 0; i < m; ++i) {
        const float *row = x + (size_t)i * ldx;
        uint8_t *q = u + (size_t)i * kpad;
        __m256 vmax = _mm256_setzero_ps(), vinv;
        __m128 h;
        float amax, inv;
        for (j = 0; j + 8 <= k; j += 8) /* NaN-skipping max, as in C */
            vmax = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(row + j)), vmax);
        h = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
        amax = _mm_cvtss_f32(h);
        for (; j < k; ++j) {
            float a = row[j] < 0 ? -row[j] : row[j];
            amax = a > amax ? a : amax;
        }
        if (!(amax > 0.0f) || amax > 3.0e38f) {
            memset(q, LSL_Q_OFFSET, (size_t)kpad);
            xs[i] = 0.0f;
            continue;
        }
        inv = 127.0f / amax;
        vinv = _mm256_set1_ps(inv);
        for (j = 0; j + 8 <= k; j += 8) {
            __m256i v = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(row + j), vinv));
            __m128i w16;
            v = _mm256_min_epi32(_mm256_max_epi32(v, _mm256_set1_epi32(-127)), _mm256_set1_epi32(127));
            v = _mm256_add_epi32(v, _mm256_set1_epi32(LSL_Q_OFFSET));
            w16 = _mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
            _mm_storel_epi64((__m128i *)(q + j), _mm_packus_epi16(w16, w16));
        }
        for (; j < k; ++j) {
            int32_t v = _mm_cvtss_si32(_mm_set_ss(row[j] * inv)); /* round to nearest even */
            v = v > 127 ? 127 : (v < -127 ? -127 : v);
            q[j] = (uint8_t)(v + LSL_Q_OFFSET);
        }
        for (; j < kpad; ++j) q[j] = LSL_Q_OFFSET;
        xs[i] = amax / 127.0f;
    }
}

/* ---- element-wise ------------------------------------------------------------------ */

/* Cephes expf (see lsl_kern_avx512.c); 2^n built in the exponent field, n in [-126, 127]. */
AINL TAVX2 __m256 exp256(__m256 x) {
    __m256 fx, y, z;
    __m256i e;
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
    fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
    z = _mm256_mul_ps(x, x);
    y = _mm256_set1_ps(1.9875691500E-4f);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507E-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073E-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894E-2f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459E-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201E-1f));
    y = _mm256_fmadd_ps(y, z, _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
    e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

/* 1 / d for d in [1, inf]: 12-bit estimate and two Newton steps (full precision),
 * cheaper than vdivps. */
AINL TAVX2 __m256 recip256(__m256 d) {
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 r = _mm256_rcp_ps(d);
    r = _mm256_fmadd_ps(r, _mm256_fnmadd_ps(d, r, one), r);
    return _mm256_fmadd_ps(r, _mm256_fnmadd_ps(d, r, one), r);
}

AINL TAVX2 __m256 sigmoid256(__m256 x) {
    const __m256 one = _mm256_set1_ps(1.0f);
    return recip256(_mm256_add_ps(one, exp256(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

AINL TAVX2 __m256 tanh256(__m256 x) {
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    __m256 ax = _mm256_andnot_ps(sign, x), z, small, big, e, is_small;
    is_small = _mm256_cmp_ps(ax, _mm256_set1_ps(0.625f), _CMP_LT_OQ);
    z = _mm256_mul_ps(x, x);
    small = _mm256_set1_ps(-5.70498872745E-3f);
    small = _mm256_fmadd_ps(small, z, _mm256_set1_ps(2.06390887954E-2f));
    small = _mm256_fmadd_ps(small, z, _mm256_set1_ps(-5.37397155531E-2f));
    small = _mm256_fmadd_ps(small, z, _mm256_set1_ps(1.33314422036E-1f));
    small = _mm256_fmadd_ps(small, z, _mm256_set1_ps(-3.33332819422E-1f));
    small = _mm256_fmadd_ps(_mm256_mul_ps(small, z), x, x);
    e = exp256(_mm256_mul_ps(_mm256_min_ps(ax, _mm256_set1_ps(10.0f)), _mm256_set1_ps(2.0f)));
    big = _mm256_fnmadd_ps(_mm256_set1_ps(2.0f), recip256(_mm256_add_ps(e, one)), one);
    big = _mm256_or_ps(big, _mm256_and_ps(x, sign));
    return _mm256_blendv_ps(big, small, is_small);
}

/* Masked tails through a small stack buffer (AVX2 has no cheap masked float ops we
 * want on the hot path). */
AINL TAVX2 __m256 ld(const float *p, int32_t n) {
    float tmp[8] = {0};
    if (n >= 8) return _mm256_loadu_ps(p);
    memcpy(tmp, p, (size_t)n * sizeof(float));
    return _mm256_loadu_ps(tmp);
}
AINL TAVX2 void st(float *p, __m256 v, int32_t n) {
    float tmp[8];
    if (n >= 8) {
        _mm256_storeu_ps(p, v);
        return;
    }
    _mm256_storeu_ps(tmp, v);
    memcpy(p, tmp, (size_t)n * sizeof(float));
}

static TAVX2 void lstm_pointwise(int32_t hidden, const float *gates, float *c, float *h) {
    int32_t j;
    for (j = 0; j < hidden; j += 8) {
        int32_t n = hidden - j;
        __m256 ig = sigmoid256(ld(gates + j, n));
        __m256 fg = sigmoid256(ld(gates + hidden + j, n));
        __m256 gg = tanh256(ld(gates + 2 * hidden + j, n));
        __m256 og = sigmoid256(ld(gates + 3 * hidden + j, n));
        __m256 cn = _mm256_fmadd_ps(fg, ld(c + j, n), _mm256_mul_ps(ig, gg));
        st(c + j, cn, n);
        st(h + j, _mm256_mul_ps(og, tanh256(cn)), n);
    }
}

static TAVX2 void gru_pointwise(int32_t hidden, const float *gi, const float *gh, float *h) {
    int32_t j;
    for (j = 0; j < hidden; j += 8) {
        int32_t n = hidden - j;
        __m256 r = sigmoid256(_mm256_add_ps(ld(gi + j, n), ld(gh + j, n)));
        __m256 z = sigmoid256(_mm256_add_ps(ld(gi + hidden + j, n), ld(gh + hidden + j, n)));
        __m256 nn = tanh256(_mm256_fmadd_ps(r, ld(gh + 2 * hidden + j, n), ld(gi + 2 * hidden + j, n)));
        __m256 hp = ld(h + j, n);
        st(h + j, _mm256_fmadd_ps(z, _mm256_sub_ps(hp, nn), nn), n);
    }
}

const lsl_kernels lsl_kernels_avx2 = {
    LSL_ISA_AVX2, gemm_f32, gemm_i8, lsl_avx2_gemm_dyn8, lsl_avx2_quantize_rows, lstm_pointwise, gru_pointwise,
};

#endif /* LSL_HAVE_X86 */
