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

/* fp32: MB rows x NP panels, each panel two ymm halves (h = 0, 1). */
AINL TAVX2 void tile_f32(const int MB, const int NP, const lsl_matrix *w, int32_t p0, const float *x, int32_t ldx,
                         float *y, int32_t ldy) {
    __m256 acc[4][2][2];
    const float *base = (const float *)w->data + (size_t)p0 * w->kpad * LSL_PANEL;
    const size_t pstride = (size_t)w->kpad * LSL_PANEL;
    int32_t k;
    int i, p, h;
    for (i = 0; i < MB; ++i)
        for (p = 0; p < NP; ++p)
            for (h = 0; h < 2; ++h) acc[i][p][h] = _mm256_setzero_ps();
    for (k = 0; k < w->cols; ++k) {
        __m256 wv[2][2];
        for (p = 0; p < NP; ++p)
            for (h = 0; h < 2; ++h) wv[p][h] = _mm256_loadu_ps(base + p * pstride + (size_t)k * LSL_PANEL + 8 * h);
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
                store8(acc[i][p][h], y + (size_t)i * ldy + row0, w->rows - row0, NULL);
            }
}

/* int8 weights, float activations, on the VNNI layout: 32 bytes hold 8 rows x 4 k;
 * byte kk of each 32-bit lane is row r's weight at k = 4 k4 + kk, sign-extended by a
 * left then arithmetic right shift. Activations past `cols` are read as 0 (the
 * padded weights are 0, but 0 * NaN would not be). */
AINL TAVX2 __m256 i8_lane(__m256i v, const int kk) {
    switch (kk) {
    case 0: return _mm256_cvtepi32_ps(_mm256_srai_epi32(_mm256_slli_epi32(v, 24), 24));
    case 1: return _mm256_cvtepi32_ps(_mm256_srai_epi32(_mm256_slli_epi32(v, 16), 24));
    case 2: return _mm256_cvtepi32_ps(_mm256_srai_epi32(_mm256_slli_epi32(v, 8), 24));
    default: return _mm256_cvtepi32_ps(_mm256_srai_epi32(v, 24));
    }
}

AINL TAVX2 void tile_i8(const int MB, const int NP, const lsl_matrix *w, int32_t p0, const float *x, int32_t ldx,
                        float *y, int32_t ldy) {
    __m256 acc[4][2][2];
    const int8_t *base = (const int8_t *)w->data + (size_t)p0 * w->kpad * LSL_PANEL;
    const size_t pstride = (size_t)w->kpad * LSL_PANEL;
    const int32_t K4 = w->kpad / 4;
    int32_t k4;
    int i, p, h, kk;
    for (i = 0; i < MB; ++i)
        for (p = 0; p < NP; ++p)
            for (h = 0; h < 2; ++h) acc[i][p][h] = _mm256_setzero_ps();
    for (k4 = 0; k4 < K4; ++k4) {
        __m256i wv[2][2];
        float xq[4][4];
        for (p = 0; p < NP; ++p)
            for (h = 0; h < 2; ++h)
                wv[p][h] = _mm256_loadu_si256((const __m256i *)(base + p * pstride + (size_t)k4 * 64 + 32 * h));
        for (i = 0; i < MB; ++i)
            for (kk = 0; kk < 4; ++kk)
                xq[i][kk] = 4 * k4 + kk < w->cols ? x[(size_t)i * ldx + 4 * k4 + kk] : 0.0f;
        for (kk = 0; kk < 4; ++kk) {
            __m256 wf[2][2];
            for (p = 0; p < NP; ++p)
                for (h = 0; h < 2; ++h) wf[p][h] = i8_lane(wv[p][h], kk);
            for (i = 0; i < MB; ++i) {
                __m256 xb = _mm256_set1_ps(xq[i][kk]);
                for (p = 0; p < NP; ++p)
                    for (h = 0; h < 2; ++h) acc[i][p][h] = _mm256_fmadd_ps(xb, wf[p][h], acc[i][p][h]);
            }
        }
    }
    for (i = 0; i < MB; ++i)
        for (p = 0; p < NP; ++p)
            for (h = 0; h < 2; ++h) {
                int32_t row0 = (p0 + p) * LSL_PANEL + 8 * h;
                store8(acc[i][p][h], y + (size_t)i * ldy + row0, w->rows - row0, w->scale + row0);
            }
}

/* Panel groups in order, or last to first with `rev`; rows in blocks of 4. */
#define GEMM_DRIVER(NAME, TILE)                                                                    \
    static TAVX2 void NAME(const lsl_matrix *w, int32_t m, const float *x, int32_t ldx, float *y,  \
                           int32_t ldy, int rev) {                                                 \
        int32_t panels = lsl_panels(w->rows), g, i;                                                \
        if (m == 1) {                                                                              \
            int32_t groups = (panels + 1) / 2;                                                     \
            for (g = 0; g < groups; ++g) {                                                         \
                int32_t p = 2 * (rev ? groups - 1 - g : g);                                        \
                if (p + 2 <= panels)                                                               \
                    TILE(1, 2, w, p, x, ldx, y, ldy);                                              \
                else                                                                               \
                    TILE(1, 1, w, p, x, ldx, y, ldy);                                              \
            }                                                                                      \
            return;                                                                                \
        }                                                                                          \
        for (g = 0; g < panels; ++g) {                                                             \
            int32_t p = rev ? panels - 1 - g : g;                                                  \
            for (i = 0; i < m; i += 4) {                                                           \
                const float *xi = x + (size_t)i * ldx;                                             \
                float *yi = y + (size_t)i * ldy;                                                   \
                switch (m - i < 4 ? m - i : 4) {                                                   \
                case 4: TILE(4, 1, w, p, xi, ldx, yi, ldy); break;                                 \
                case 3: TILE(3, 1, w, p, xi, ldx, yi, ldy); break;                                 \
                case 2: TILE(2, 1, w, p, xi, ldx, yi, ldy); break;                                 \
                default: TILE(1, 1, w, p, xi, ldx, yi, ldy); break;                                \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

GEMM_DRIVER(gemm_f32, tile_f32)
GEMM_DRIVER(gemm_i8_float, tile_i8)

/* The table entry; the AVX-512 table without VNNI uses it as well. */
TAVX2 void lsl_avx2_gemm_i8(const lsl_matrix *w, int32_t m, const float *x, int32_t ldx, float *y, int32_t ldy,
                            int rev, void *work) {
    (void)work;
    gemm_i8_float(w, m, x, ldx, y, ldy, rev);
}

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
                              float *y, int32_t ldy, int rev) {
    int32_t panels = lsl_panels(w->rows), g, i;
    if (m == 1) {
        int32_t groups = (panels + 1) / 2;
        for (g = 0; g < groups; ++g) {
            int32_t p = 2 * (rev ? groups - 1 - g : g);
            if (p + 2 <= panels)
                tile_dyn(1, 2, w, p, u, ldu, xs, y, ldy);
            else
                tile_dyn(1, 1, w, p, u, ldu, xs, y, ldy);
        }
        return;
    }
    for (g = 0; g < panels; ++g) {
        int32_t p = rev ? panels - 1 - g : g;
        for (i = 0; i < m; i += 2) {
            if (m - i >= 2)
                tile_dyn(2, 1, w, p, u + (size_t)i * ldu, ldu, xs + i, y + (size_t)i * ldy, ldy);
            else
                tile_dyn(1, 1, w, p, u + (size_t)i * ldu, ldu, xs + i, y + (size_t)i * ldy, ldy);
        }
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

/* tanh and sigmoid as in lsl_kern_avx512.c (Eigen's rational tanh). */
AINL TAVX2 __m256 tanh256(__m256 x) {
    const __m256 clamp = _mm256_set1_ps(7.90531110763549805f);
    __m256 x2, p, q, r;
    /* (bound, x) operand order: max/min return x when it is NaN, so NaN propagates */
    x = _mm256_min_ps(clamp, _mm256_max_ps(_mm256_sub_ps(_mm256_setzero_ps(), clamp), x));
    x2 = _mm256_mul_ps(x, x);
    p = _mm256_fmadd_ps(x2, _mm256_set1_ps(-2.76076847742355e-16f), _mm256_set1_ps(2.00018790482477e-13f));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(-8.60467152213735e-11f));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(5.12229709037114e-08f));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(1.48572235717979e-05f));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(6.37261928875436e-04f));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(4.89352455891786e-03f));
    p = _mm256_mul_ps(x, p);
    q = _mm256_fmadd_ps(x2, _mm256_set1_ps(1.19825839466702e-06f), _mm256_set1_ps(1.18534705686654e-04f));
    q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(2.26843463243900e-03f));
    q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(4.89352518554385e-03f));
    /* 12-bit estimate and two Newton steps */
    r = _mm256_rcp_ps(q);
    r = _mm256_fmadd_ps(r, _mm256_fnmadd_ps(q, r, _mm256_set1_ps(1.0f)), r);
    r = _mm256_fmadd_ps(r, _mm256_fnmadd_ps(q, r, _mm256_set1_ps(1.0f)), r);
    return _mm256_mul_ps(p, r);
}

AINL TAVX2 __m256 sigmoid256(__m256 x) {
    const __m256 half = _mm256_set1_ps(0.5f);
    return _mm256_fmadd_ps(tanh256(_mm256_mul_ps(x, half)), half, half);
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
    LSL_ISA_AVX2, gemm_f32, lsl_avx2_gemm_i8, lsl_avx2_gemm_dyn8, lsl_avx2_quantize_rows,
    lsl_portable_gemm_sparse_i8, lsl_portable_gemm_sparse_dyn8, lstm_pointwise, gru_pointwise,
    NULL, NULL, /* no fused single-stream steps: the generic path */
};

#endif /* LSL_HAVE_X86 */
