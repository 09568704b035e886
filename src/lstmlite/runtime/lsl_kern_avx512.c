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
#include <string.h>

#include "lsl_kern_avx512.h" /* T512, dpbusd, sigmoid512 / tanh512, cell_stage */
#include "lsl_kern_avx2.h"   /* the dynamic products this table shares with AVX2: lstm_step1_sign16 */

/* ---- fp32 GEMM -------------------------------------------------------------------- */

/* y[i, 16 rows] += acc (* scale); the last panel may be partial (masked). */
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

/* MB activation rows x NP panels starting at output row `row0` of a matrix with
 * `rows` rows; `base` points at the first panel (stride `pstride` floats). For MB == 1
 * the k loop keeps two accumulator sets (even / odd k) so enough FMAs are in flight.
 * `scale` (per output row, indexed from row0) or NULL. */
AINL T512 void tile_f32_raw(const int MB, const int NP, const float *base, size_t pstride, int32_t K, int32_t rows,
                            int32_t row0, const float *scale, const float *x, int32_t ldx, float *y, int32_t ldy) {
    __m512 acc[4][4], acc2[4];
    int32_t k = 0;
    int i, p;
    for (i = 0; i < MB; ++i)
        for (p = 0; p < NP; ++p) acc[i][p] = _mm512_setzero_ps();
    for (p = 0; p < NP; ++p) acc2[p] = _mm512_setzero_ps();
    if (MB == 1) {
        for (; k + 1 < K; k += 2) {
            __m512 x0 = _mm512_set1_ps(x[k]), x1 = _mm512_set1_ps(x[k + 1]);
            for (p = 0; p < NP; ++p) {
                const float *wp = base + p * pstride + (size_t)k * LSL_PANEL;
                acc[0][p] = _mm512_fmadd_ps(x0, _mm512_loadu_ps(wp), acc[0][p]);
                acc2[p] = _mm512_fmadd_ps(x1, _mm512_loadu_ps(wp + LSL_PANEL), acc2[p]);
            }
        }
    }
    for (; k < K; ++k) {
        __m512 wv[4];
        for (p = 0; p < NP; ++p) wv[p] = _mm512_loadu_ps(base + p * pstride + (size_t)k * LSL_PANEL);
        for (i = 0; i < MB; ++i) {
            __m512 xb = _mm512_set1_ps(x[(size_t)i * ldx + k]);
            for (p = 0; p < NP; ++p) acc[i][p] = _mm512_fmadd_ps(xb, wv[p], acc[i][p]);
        }
    }
    if (MB == 1)
        for (p = 0; p < NP; ++p) acc[0][p] = _mm512_add_ps(acc[0][p], acc2[p]);
    for (i = 0; i < MB; ++i)
        for (p = 0; p < NP; ++p) {
            int32_t r = row0 + p * LSL_PANEL;
            store_tile(acc[i][p], y + (size_t)i * ldy + r, rows - r, scale ? scale + p * LSL_PANEL : NULL);
        }
}

AINL T512 void tile_f32(const int MB, const int NP, const lsl_matrix *w, int32_t p0, const float *x, int32_t ldx,
                        float *y, int32_t ldy) {
    const size_t pstride = (size_t)w->kpad * LSL_PANEL;
    tile_f32_raw(MB, NP, (const float *)w->data + (size_t)p0 * pstride, pstride, w->cols, w->rows, p0 * LSL_PANEL,
                 NULL, x, ldx, y, ldy);
}

/* int8 weights, float activations, without VNNI: byte kk of each 32-bit lane is the
 * weight at k = 4 k4 + kk, sign-extended by shifts and converted. Activations past
 * `cols` are read as 0 (0 * NaN would not be 0). */
AINL T512 __m512 i8_lane(__m512i v, const int kk) {
    switch (kk) {
    case 0: return _mm512_cvtepi32_ps(_mm512_srai_epi32(_mm512_slli_epi32(v, 24), 24));
    case 1: return _mm512_cvtepi32_ps(_mm512_srai_epi32(_mm512_slli_epi32(v, 16), 24));
    case 2: return _mm512_cvtepi32_ps(_mm512_srai_epi32(_mm512_slli_epi32(v, 8), 24));
    default: return _mm512_cvtepi32_ps(_mm512_srai_epi32(v, 24));
    }
}

AINL T512 void tile_i8(const int MB, const int NP, const lsl_matrix *w, int32_t p0, const float *x, int32_t ldx,
                       float *y, int32_t ldy) {
    __m512 acc[4][4];
    const int8_t *base = (const int8_t *)w->data + (size_t)p0 * w->kpad * LSL_PANEL;
    const size_t pstride = (size_t)w->kpad * LSL_PANEL;
    const int32_t K4 = w->kpad / 4;
    int32_t k4;
    int i, p, kk;
    for (i = 0; i < MB; ++i)
        for (p = 0; p < NP; ++p) acc[i][p] = _mm512_setzero_ps();
    for (k4 = 0; k4 < K4; ++k4) {
        __m512i wv[4];
        float xq[4][4];
        for (p = 0; p < NP; ++p) wv[p] = _mm512_loadu_si512((const void *)(base + p * pstride + (size_t)k4 * 64));
        for (i = 0; i < MB; ++i)
            for (kk = 0; kk < 4; ++kk)
                xq[i][kk] = 4 * k4 + kk < w->cols ? x[(size_t)i * ldx + 4 * k4 + kk] : 0.0f;
        for (kk = 0; kk < 4; ++kk) {
            __m512 wf[4];
            for (p = 0; p < NP; ++p) wf[p] = i8_lane(wv[p], kk);
            for (i = 0; i < MB; ++i) {
                __m512 xb = _mm512_set1_ps(xq[i][kk]);
                for (p = 0; p < NP; ++p) acc[i][p] = _mm512_fmadd_ps(xb, wf[p], acc[i][p]);
            }
        }
    }
    for (i = 0; i < MB; ++i)
        for (p = 0; p < NP; ++p) {
            int32_t row0 = (p0 + p) * LSL_PANEL;
            store_tile(acc[i][p], y + (size_t)i * ldy + row0, w->rows - row0, w->scale + row0);
        }
}

/* Call TILE_CALL(MB, NP) with compile-time MB, NP in 1..4 (so each tile is its own
 * fully unrolled, register-resident instance). */
#define DISPATCH_4x4(mb, np, TILE_CALL)                                                            \
    switch ((mb) * 8 + (np)) {                                                                     \
    case 9: TILE_CALL(1, 1); break;  case 10: TILE_CALL(1, 2); break;                              \
    case 11: TILE_CALL(1, 3); break; case 12: TILE_CALL(1, 4); break;                              \
    case 17: TILE_CALL(2, 1); break; case 18: TILE_CALL(2, 2); break;                              \
    case 19: TILE_CALL(2, 3); break; case 20: TILE_CALL(2, 4); break;                              \
    case 25: TILE_CALL(3, 1); break; case 26: TILE_CALL(3, 2); break;                              \
    case 27: TILE_CALL(3, 3); break; case 28: TILE_CALL(3, 4); break;                              \
    case 33: TILE_CALL(4, 1); break; case 34: TILE_CALL(4, 2); break;                              \
    case 35: TILE_CALL(4, 3); break; default: TILE_CALL(4, 4); break;                              \
    }

/* Groups of 4 panels (64 output rows; their weights stay in L1 while every block of
 * 4 activation rows passes), first to last or last to first (`rev`). */
#define GEMM_DRIVER(NAME, TILE)                                                                    \
    static T512 void NAME(const lsl_matrix *w, int32_t m, const float *x, int32_t ldx, float *y,   \
                          int32_t ldy, int rev) {                                                  \
        int32_t panels = lsl_panels(w->rows), groups = (panels + 3) / 4, g, i;                     \
        for (g = 0; g < groups; ++g) {                                                             \
            int32_t p = 4 * (rev ? groups - 1 - g : g), np = panels - p < 4 ? panels - p : 4;      \
            for (i = 0; i < m; i += 4) {                                                           \
                const float *xi = x + (size_t)i * ldx;                                             \
                float *yi = y + (size_t)i * ldy;                                                   \
                int32_t mb = m - i < 4 ? m - i : 4;                                                \
                DISPATCH_4x4(mb, np, TILE##_CALL)                                                  \
            }                                                                                      \
        }                                                                                          \
    }

#define tile_f32_CALL(MB, NP) tile_f32(MB, NP, w, p, xi, ldx, yi, ldy)
#define tile_i8_CALL(MB, NP) tile_i8(MB, NP, w, p, xi, ldx, yi, ldy)

GEMM_DRIVER(gemm_f32, tile_f32)
GEMM_DRIVER(gemm_i8_float, tile_i8)

/* Float activations without VNNI: fewer than LSL_UNPACK_ROWS rows (up to LSL_D15_KMAX
 * columns) as the AVX2 table's two digits, which take the single-stream step too (lstm_step1_novnni);
 * more rows, or longer ones, the 512-bit float tiles. */
static T512 void gemm_i8_novnni(const lsl_matrix *w, int32_t m, const float *x, int32_t ldx, float *y, int32_t ldy,
                                int rev, void *work) {
    if (m < LSL_UNPACK_ROWS && w->kpad <= LSL_D15_KMAX)
        lsl_avx2_gemm_i8(w, m, x, ldx, y, ldy, rev, work);
    else
        gemm_i8_float(w, m, x, ldx, y, ldy, rev);
}


/* ---- VNNI: dynamic int8, and float activations as three 8-bit limbs ---------------- *
 * One tile: MB activation rows x NP panels x L limbs (L = 1: dynamic int8, the
 * operand u = q + 128; L = 3: u = q + 2^23 as bytes hi, mid, lo in three planes of
 * stride `lstride`). Each (row, panel, limb) accumulates sum_k u * w in int32. */
AINL T512VNNI void tile_vnni(const int L, const int MB, const int NP, const lsl_matrix *w, int32_t p0,
                             const uint8_t *u, int32_t ldu, size_t lstride, const float *xs, float *y, int32_t ldy) {
    __m512i acc[3][4][4];
    const int8_t *base = (const int8_t *)w->data + (size_t)p0 * w->kpad * LSL_PANEL;
    const size_t pstride = (size_t)w->kpad * LSL_PANEL;
    const int32_t K4 = w->kpad / 4;
    int32_t k;
    int i, p, l;
    for (l = 0; l < 3; ++l)
        for (i = 0; i < MB; ++i)
            for (p = 0; p < NP; ++p) acc[l][i][p] = _mm512_setzero_si512();
    k = 0;
    if (L == 1 && MB == 1) { /* odd k4 into a second set (the unused limb slots): more
                              * dot products in flight for the single-stream step */
        for (; k + 1 < K4; k += 2) {
            int32_t q0, q1;
            __m512i x0, x1;
            memcpy(&q0, u + 4 * k, 4);
            memcpy(&q1, u + 4 * k + 4, 4);
            x0 = _mm512_set1_epi32(q0);
            x1 = _mm512_set1_epi32(q1);
            for (p = 0; p < NP; ++p) {
                const int8_t *wp = base + p * pstride + (size_t)k * 64;
                acc[0][0][p] = dpbusd_m(acc[0][0][p], x0, wp);
                acc[1][0][p] = dpbusd_m(acc[1][0][p], x1, wp + 64);
            }
        }
        for (p = 0; p < NP; ++p) acc[0][0][p] = _mm512_add_epi32(acc[0][0][p], acc[1][0][p]);
    }
    for (; k < K4; ++k) {
        __m512i wv[4];
        for (p = 0; p < NP; ++p) wv[p] = _mm512_loadu_si512((const void *)(base + p * pstride + (size_t)k * 64));
        for (l = 0; l < L; ++l)
            for (i = 0; i < MB; ++i) {
                int32_t quad;
                __m512i xb;
                memcpy(&quad, u + l * lstride + (size_t)i * ldu + 4 * k, 4);
                xb = _mm512_set1_epi32(quad);
                for (p = 0; p < NP; ++p) acc[l][i][p] = dpbusd_r(acc[l][i][p], xb, wv[p]);
            }
    }
    for (p = 0; p < NP; ++p) {
        int32_t row0 = (p0 + p) * LSL_PANEL, valid = w->rows - row0;
        __mmask16 mk = valid >= LSL_PANEL ? (__mmask16)0xFFFF : (__mmask16)((1u << valid) - 1u);
        /* The operand offset lives in the top byte only (128 << 16 for limbs), so
         * sum(u w) - 128 sum(w) on the first limb removes it exactly (mod 2^32, and
         * the true value fits). */
        __m512i corr = _mm512_slli_epi32(_mm512_maskz_loadu_epi32(mk, w->wsum + row0), 7);
        __m512 sc = _mm512_maskz_loadu_ps(mk, w->scale + row0);
        for (i = 0; i < MB; ++i) {
            float *yr = y + (size_t)i * ldy + row0;
            __m512 v = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[0][i][p], corr));
            if (L == 3) { /* hi * 2^16 + mid * 2^8 + lo, in float: rounding ~1e-7 */
                v = _mm512_fmadd_ps(v, _mm512_set1_ps(256.0f), _mm512_cvtepi32_ps(acc[1][i][p]));
                v = _mm512_fmadd_ps(v, _mm512_set1_ps(256.0f), _mm512_cvtepi32_ps(acc[2][i][p]));
            }
            v = _mm512_mul_ps(v, _mm512_mul_ps(sc, _mm512_set1_ps(xs[i])));
            _mm512_mask_storeu_ps(yr, mk, _mm512_add_ps(_mm512_maskz_loadu_ps(mk, yr), v));
        }
    }
}

/* Driver: m == 1 walks groups of 4 panels (L = 1) or 2 panels with two rows... the
 * tile shapes keep at most 16 accumulators in registers. */
AINL T512VNNI void vnni_driver(const int L, const lsl_matrix *w, int32_t m, const uint8_t *u, int32_t ldu,
                               size_t lstride, const float *xs, float *y, int32_t ldy, int rev) {
    int32_t panels = lsl_panels(w->rows), g, i;
    if (m == 1) {
        const int NPG = 4; /* 4 panels x L limbs accumulators */
        int32_t groups = (panels + NPG - 1) / NPG;
        for (g = 0; g < groups; ++g) {
            int32_t p = NPG * (rev ? groups - 1 - g : g);
            switch (panels - p < NPG ? panels - p : NPG) {
            case 4: tile_vnni(L, 1, 4, w, p, u, ldu, lstride, xs, y, ldy); break;
            case 3: tile_vnni(L, 1, 3, w, p, u, ldu, lstride, xs, y, ldy); break;
            case 2: tile_vnni(L, 1, 2, w, p, u, ldu, lstride, xs, y, ldy); break;
            default: tile_vnni(L, 1, 1, w, p, u, ldu, lstride, xs, y, ldy); break;
            }
        }
        return;
    }
    if (L == 1) {
        int32_t groups = (panels + 3) / 4;
        for (g = 0; g < groups; ++g) {
            int32_t p = 4 * (rev ? groups - 1 - g : g), np = panels - p < 4 ? panels - p : 4;
            for (i = 0; i < m; i += 4) {
                const uint8_t *ui = u + (size_t)i * ldu;
                float *yi = y + (size_t)i * ldy;
                int32_t mb = m - i < 4 ? m - i : 4;
#define VNNI1_CALL(MB, NP) tile_vnni(1, MB, NP, w, p, ui, ldu, lstride, xs + i, yi, ldy)
                DISPATCH_4x4(mb, np, VNNI1_CALL)
#undef VNNI1_CALL
            }
        }
    } else { /* three limbs: 2 rows x 4 panels x 3 = 24 accumulators, and per k4 four
              * weight loads and six broadcasts (2 x 2 tiles: 13% slower at K = 128) */
        int32_t groups = (panels + 3) / 4;
        for (g = 0; g < groups; ++g) {
            int32_t p = 4 * (rev ? groups - 1 - g : g), np = panels - p < 4 ? panels - p : 4;
            for (i = 0; i < m; i += 2) {
                const uint8_t *ui = u + (size_t)i * ldu;
                float *yi = y + (size_t)i * ldy;
                if (m - i >= 2) {
                    switch (np) {
                    case 4: tile_vnni(3, 2, 4, w, p, ui, ldu, lstride, xs + i, yi, ldy); break;
                    case 3: tile_vnni(3, 2, 3, w, p, ui, ldu, lstride, xs + i, yi, ldy); break;
                    case 2: tile_vnni(3, 2, 2, w, p, ui, ldu, lstride, xs + i, yi, ldy); break;
                    default: tile_vnni(3, 2, 1, w, p, ui, ldu, lstride, xs + i, yi, ldy); break;
                    }
                } else {
                    switch (np) {
                    case 4: tile_vnni(3, 1, 4, w, p, ui, ldu, lstride, xs + i, yi, ldy); break;
                    case 3: tile_vnni(3, 1, 3, w, p, ui, ldu, lstride, xs + i, yi, ldy); break;
                    case 2: tile_vnni(3, 1, 2, w, p, ui, ldu, lstride, xs + i, yi, ldy); break;
                    default: tile_vnni(3, 1, 1, w, p, ui, ldu, lstride, xs + i, yi, ldy); break;
                    }
                }
            }
        }
    }
}

static T512VNNI void gemm_dyn8_vnni(const lsl_matrix *w, int32_t m, const uint8_t *u, int32_t ldu, const float *xs,
                                    const float *bias, float *y, int32_t ldy, int rev) {
    lsl_bias_rows(m, bias, w->rows, y, ldy);
    vnni_driver(1, w, m, u, ldu, 0, xs, y, ldy, rev);
}

/* Float activations to three limb planes (hi, mid, lo; each m x kpad bytes) and per-row
 * scales xs = max|row| / (2^23 - 1). An all-zero row becomes q = 0, xs = 0; a NaN, an
 * infinity or a value past 3e38 q = 0, xs = NaN (lsl_avx2_float_rows takes such a row). */
T512 void lsl_avx512_quantize_limbs(int32_t m, int32_t k, int32_t kpad, const float *x, int32_t ldx, uint8_t *u,
                                size_t lstride, float *xs) {
    int32_t i, j;
    for (i = 0; i < m; ++i) {
        const float *row = x + (size_t)i * ldx;
        uint8_t *hi = u + (size_t)i * kpad, *mid = hi + lstride, *lo = mid + lstride;
        __m512 vmax = _mm512_setzero_ps(), vinv;
        __mmask16 nan = 0;
        float amax;
        for (j = 0; j < k; j += 16) {
            __mmask16 mk = k - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (k - j)) - 1u);
            __m512 v = _mm512_maskz_loadu_ps(mk, row + j);
            nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
            vmax = _mm512_max_ps(_mm512_abs_ps(v), vmax);
        }
        amax = _mm512_reduce_max_ps(vmax);
        if (nan || !(amax > 0.0f) || amax > 3.0e38f) {
            /* zeros give q = 0; a NaN, inf or value past 3e38 has no fixed-point
             * form: xs NaN marks the row for the float product (lsl_avx2_float_rows) */
            memset(hi, 128, (size_t)kpad);
            memset(mid, 0, (size_t)kpad);
            memset(lo, 0, (size_t)kpad);
            xs[i] = (nan || amax > 3.0e38f) ? __builtin_nanf("") : 0.0f;
            continue;
        }
        vinv = _mm512_set1_ps(LSL_LIMB_MAX / amax);
        for (j = 0; j < kpad; j += 16) {
            int32_t n = kpad - j < 16 ? kpad - j : 16;
            __mmask16 st = (__mmask16)(n == 16 ? 0xFFFFu : (1u << n) - 1u);
            int32_t nk = k - j < 0 ? 0 : (k - j < 16 ? k - j : 16);
            __mmask16 ld = (__mmask16)(nk == 16 ? 0xFFFFu : (1u << nk) - 1u);
            __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(ld, row + j), vinv));
            q = _mm512_min_epi32(_mm512_max_epi32(q, _mm512_set1_epi32(-8388607)), _mm512_set1_epi32(8388607));
            q = _mm512_add_epi32(q, _mm512_set1_epi32(8388608)); /* padding lanes: q = 0 */
            _mm_mask_storeu_epi8(hi + j, st, _mm512_cvtepi32_epi8(_mm512_srli_epi32(q, 16)));
            _mm_mask_storeu_epi8(mid + j, st, _mm512_cvtepi32_epi8(_mm512_srli_epi32(q, 8)));
            _mm_mask_storeu_epi8(lo + j, st, _mm512_cvtepi32_epi8(q));
        }
        xs[i] = amax / LSL_LIMB_MAX;
    }
}

/* Float activations on VNNI always go through the three limbs, however many rows.
 * (Unpacking the int8 panels to float for the fp32 tile from 8 rows on was replaced:
 * per 64 products the limbs issue 3 vpdpbusd against 4 FMAs, and with 2 x 4 tiles
 * they measured as fast at K = 40 and 12-16% faster at K = 64..256, 100 rows x 512
 * outputs; the unpacked panels also outgrew L1 past K = 128.) */
static T512VNNI void gemm_i8_vnni(const lsl_matrix *w, int32_t m, const float *x, int32_t ldx, float *y,
                                  int32_t ldy, int rev, void *work) {
    const size_t lstride = (size_t)m * w->kpad;
    uint8_t *u = (uint8_t *)work;
    float *xs = (float *)((char *)work + lsl_round_up(3 * lstride, LSL_ALIGN));
    lsl_avx512_quantize_limbs(m, w->cols, w->kpad, x, ldx, u, lstride, xs);
    lsl_avx2_float_rows(w, m, x, ldx, xs, y, ldy, rev);
    vnni_driver(3, w, m, u, w->kpad, lstride, xs, y, ldy, rev);
}

/* ---- dynamic activation quantization (same results as lsl_quantize_rows) ---------- */

T512 void lsl_avx512_quantize_rows(int32_t m, int32_t k, int32_t kpad, const float *x, int32_t ldx, uint8_t *u,
                                   float *xs, int32_t qmax) {
    const float fq = (float)qmax;
    int32_t i, j;
    for (i = 0; i < m; ++i) {
        const float *row = x + (size_t)i * ldx;
        uint8_t *q = u + (size_t)i * kpad;
        __m512 vmax = _mm512_setzero_ps(), vinv;
        __mmask16 bad = 0;
        float amax, inv;
        for (j = 0; j < k; j += 16) {
            __mmask16 mk = k - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (k - j)) - 1u);
            const __m512 a = _mm512_abs_ps(_mm512_maskz_loadu_ps(mk, row + j));
            vmax = _mm512_max_ps(a, vmax);
            bad |= _mm512_cmp_ps_mask(a, _mm512_set1_ps(3.0e38f), _CMP_NLE_UQ); /* NaN, inf, past 3e38 */
        }
        amax = _mm512_reduce_max_ps(vmax);
        if (bad || !(amax > 0.0f)) { /* zero codes; the scale NaN or 0, as lsl_quantize_rows */
            memset(q, LSL_Q_OFFSET, (size_t)kpad);
            xs[i] = bad ? __builtin_nanf("") : 0.0f;
            continue;
        }
        inv = fq / amax;
        vinv = _mm512_set1_ps(inv);
        for (j = 0; j < k; j += 16) {
            __mmask16 mk = k - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (k - j)) - 1u);
            __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(mk, row + j), vinv));
            v = _mm512_min_epi32(_mm512_max_epi32(v, _mm512_set1_epi32(-qmax)), _mm512_set1_epi32(qmax));
            v = _mm512_add_epi32(v, _mm512_set1_epi32(LSL_Q_OFFSET));
            _mm_mask_storeu_epi8(q + j, mk, _mm512_cvtepi32_epi8(v));
        }
        for (j = k; j < kpad; ++j) q[j] = LSL_Q_OFFSET;
        xs[i] = amax / fq;
    }
}


/* The cell update of n <= LSL_CELLS_MAX units in two passes, as cells_avx2 (and why):
 * the gates and c of every unit, then h = o tanh(c); the same operations per unit as one
 * pass would do, so the same bits. The fused step without VNNI ends in it too. */
static T512 void cells_512(const float *gi, const float *gf, const float *gg, const float *go, int32_t n, float *c,
                           float *h) {
    float og[LSL_CELLS_MAX] __attribute__((aligned(64)));
    int32_t j;
#pragma GCC unroll 2
    for (j = 0; j < n; j += 16) {
        const __mmask16 mk = (__mmask16)(n - j >= 16 ? 0xFFFFu : (1u << (n - j)) - 1u);
        const __m512 ig = sigmoid512(_mm512_maskz_loadu_ps(mk, gi + j));
        const __m512 fg = sigmoid512(_mm512_maskz_loadu_ps(mk, gf + j));
        const __m512 g = tanh512(_mm512_maskz_loadu_ps(mk, gg + j));
        _mm512_store_ps(og + j, sigmoid512(_mm512_maskz_loadu_ps(mk, go + j)));
        _mm512_mask_storeu_ps(c + j, mk, _mm512_fmadd_ps(fg, _mm512_maskz_loadu_ps(mk, c + j), _mm512_mul_ps(ig, g)));
    }
#pragma GCC unroll 2
    for (j = 0; j < n; j += 16) {
        const __mmask16 mk = (__mmask16)(n - j >= 16 ? 0xFFFFu : (1u << (n - j)) - 1u);
        const __m512 th = tanh512(_mm512_maskz_loadu_ps(mk, c + j));
        _mm512_mask_storeu_ps(h + j, mk, _mm512_mul_ps(_mm512_load_ps(og + j), th));
    }
}

static T512 void lstm_pointwise(int32_t hidden, const float *gates, float *c, float *h) {
    int32_t j, n;
    for (j = 0; j < hidden; j += n) {
        n = hidden - j < LSL_CELLS_MAX ? hidden - j : LSL_CELLS_MAX;
        cells_512(gates + j, gates + hidden + j, gates + 2 * hidden + j, gates + 3 * hidden + j, n, c + j, h + j);
    }
}

static T512 void gru_pointwise(int32_t hidden, const float *gi, const float *gh, float *h) {
    int32_t j;
#pragma GCC unroll 2
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

/* ---- fused single-stream LSTM step (VNNI) ---------------------------------------- *
 * For one stream a step is a matrix-vector product and the cell update. When H % 16
 * == 0, hidden units 16 jb .. 16 jb + 15 have their gates i, f, g, o in panels jb,
 * jb + H/16, jb + 2 H/16, jb + 3 H/16, so one tile over those four panels ends with
 * everything the cell update of those units needs, in registers: no store and reload
 * of the 4H gate pre-activations, and the out-of-order core overlaps one block's
 * sigmoids and tanhs with the next block's weight loads (which wait on L2 once W_hh
 * outgrows L1). The float operations are tile_vnni's epilogue and lstm_pointwise's,
 * in the same order, so the results equal the unfused path bit for bit (the int32
 * sums are exact in any order). The cell update's five stages (cell_stage) are in
 * lsl_kern_avx512.h, shared with the sparse fused step. */

/* Products of block jb into gate[] (pre-activations); meanwhile the five stages of the
 * previous block's cell update (pend, units pj .. pj + 15; pj < 0: none) are spread
 * over the k loop. Why: the products of a block mostly wait on loads from L2 and the
 * cell update is all arithmetic, but the out-of-order window is too small to overlap
 * a whole cell update with the next block's loads by itself. */
AINL T512VNNI void lstm_block_vnni(const int L, const lsl_matrix *w, int32_t hidden, int32_t jb, const uint8_t *u,
                                   size_t lstride, float xs, const float *g, __m512 *gate, __m512 *pend,
                                   int32_t pj, float *c, float *h) {
    const size_t pstride = (size_t)w->kpad * LSL_PANEL, gstride = (size_t)(hidden / LSL_PANEL) * pstride;
    const int8_t *base = (const int8_t *)w->data + (size_t)jb * pstride;
    const int32_t K4 = w->kpad / 4, j = jb * LSL_PANEL;
    const int32_t iters = L == 1 ? K4 / 2 : K4;
    __m512i acc[3][4];
    int32_t k = 0, it = 0, next = 0;
    int l, p, st = pj >= 0 ? 0 : 5;
    for (l = 0; l < 3; ++l)
        for (p = 0; p < 4; ++p) acc[l][p] = _mm512_setzero_si512();
    if (L == 1) { /* even and odd k4 in two sets: eight dot products in flight */
        for (; k + 1 < K4; k += 2, ++it) {
            int32_t q0, q1;
            __m512i x0, x1;
            if (st < 5 && it == next) {
                cell_stage(st, pend, pj, c, h);
                ++st;
                next = st * iters / 5;
            }
            memcpy(&q0, u + 4 * k, 4);
            memcpy(&q1, u + 4 * k + 4, 4);
            x0 = _mm512_set1_epi32(q0);
            x1 = _mm512_set1_epi32(q1);
            for (p = 0; p < 4; ++p) {
                const int8_t *wp = base + p * gstride + (size_t)k * 64;
                acc[0][p] = dpbusd_m(acc[0][p], x0, wp);
                acc[1][p] = dpbusd_m(acc[1][p], x1, wp + 64);
            }
        }
        for (; k < K4; ++k) {
            int32_t q0;
            __m512i x0;
            memcpy(&q0, u + 4 * k, 4);
            x0 = _mm512_set1_epi32(q0);
            for (p = 0; p < 4; ++p)
                acc[0][p] = dpbusd_m(acc[0][p], x0, base + p * gstride + (size_t)k * 64);
        }
        for (p = 0; p < 4; ++p) acc[0][p] = _mm512_add_epi32(acc[0][p], acc[1][p]);
    } else {
        for (; k < K4; ++k, ++it) {
            __m512i wv[4];
            if (st < 5 && it == next) {
                cell_stage(st, pend, pj, c, h);
                ++st;
                next = st * iters / 5;
            }
            for (p = 0; p < 4; ++p)
                wv[p] = _mm512_loadu_si512((const void *)(base + p * gstride + (size_t)k * 64));
            for (l = 0; l < 3; ++l) {
                int32_t quad;
                __m512i xb;
                memcpy(&quad, u + l * lstride + 4 * k, 4);
                xb = _mm512_set1_epi32(quad);
                for (p = 0; p < 4; ++p) acc[l][p] = dpbusd_r(acc[l][p], xb, wv[p]);
            }
        }
    }
    for (; st < 5; ++st) cell_stage(st, pend, pj, c, h);
    for (p = 0; p < 4; ++p) /* tile_vnni's epilogue, into registers */
        gate[p] = gate_from_sums(L, w, p * hidden + j, acc[0][p], L == 3 ? acc[1][p] : acc[0][p],
                                 L == 3 ? acc[2][p] : acc[0][p], xs, g);
}

/* h is quantized first (all of it: every block reads all of h), so the blocks may
 * overwrite it as they finish. Blocks are walked last to first when `rev`. */
static T512VNNI void lstm_step1_vnni(const lsl_matrix *w, int32_t hidden, const float *g, float *c, float *h,
                                     void *work, int rev) {
    uint8_t *u = (uint8_t *)work;
    float xs;
    if (lsl_act_u8(w->act)) {
        lsl_avx512_quantize_rows(1, hidden, w->kpad, h, hidden, u, &xs, lsl_act_qmax(w->act));
        lstm_blocks(lstm_block_vnni, 1, w, hidden, u, 0, xs, g, c, h, rev);
    } else {
        lsl_avx512_quantize_limbs(1, hidden, w->kpad, h, hidden, u, (size_t)w->kpad, &xs);
        lstm_blocks(lstm_block_vnni, 3, w, hidden, u, (size_t)w->kpad, xs, g, c, h, rev);
    }
}

/* ---- fused single-stream LSTM step without VNNI ------------------------------------ *
 * This table's dynamic products are the AVX2 table's (lsl_avx2_gemm_dyn8), and so are
 * its float-activation products of up to three rows (gemm_i8_novnni: the two digits), and
 * its cell update is lstm_pointwise's 512-bit one; so its fused step is the AVX2 step's
 * loops (lstm_step1_sign16: the sign-mask or 7-bit form, 16 units a block; lstm_step1_d15
 * for float activations) ending in lstm_pointwise's cells_512: the same operations as
 * the matrix product + lstm_pointwise, bit for bit. Float activations past
 * LSL_D15_KMAX columns keep the unfused path (takes_step): the 512-bit float tiles. */

/* The step above takes 8-bit dynamic activations, and float ones where gemm_i8_novnni
 * multiplies one row in the AVX2 table's two digits (lsl_kernels.step1_takes). */
static int takes_step(const lsl_matrix *w_hh) {
    return lsl_act_u8(w_hh->act) || (w_hh->act == LSL_ACT_FLOAT && w_hh->kpad <= LSL_D15_KMAX);
}

/* Only ever called for what takes_step takes (lsl_model.c's fused_step asks before
 * every use): the AVX2 table's steps ending in cells_512. */
static T512 void lstm_step1_novnni(const lsl_matrix *w, int32_t hidden, const float *g, float *c, float *h,
                                   void *work, int rev) {
    uint8_t *u = (uint8_t *)work;
    float xs;
    if (lsl_act_u8(w->act)) {
        lsl_avx512_quantize_rows(1, hidden, w->kpad, h, hidden, u, &xs, lsl_act_qmax(w->act));
        lstm_step1_dyn(cells_512, w, hidden, u, xs, g, c, h, rev);
    } else {
        lstm_step1_d15(cells_512, w, hidden, work, g, c, h, rev);
    }
}

const lsl_kernels lsl_kernels_avx512 = {
    LSL_ISA_AVX512, gemm_f32, gemm_i8_novnni, lsl_avx2_gemm_dyn8, lsl_avx512_quantize_rows,
    lsl_avx2_gemm_sparse_i8, lsl_avx2_gemm_sparse_dyn8, lstm_pointwise, gru_pointwise,
    lstm_step1_novnni, NULL, takes_step, /* dense: dynamic, and float activations up to LSL_D15_KMAX; no fused sparse step */
    lsl_avx2_gemm_dyn16, lsl_avx2_quantize_rows16,
};
const lsl_kernels lsl_kernels_avx512_vnni = {
    LSL_ISA_AVX512_VNNI, gemm_f32, gemm_i8_vnni, gemm_dyn8_vnni, lsl_avx512_quantize_rows,
    lsl_avx512_gemm_sparse_i8, lsl_avx512_gemm_sparse_dyn8, lstm_pointwise, gru_pointwise, lstm_step1_vnni,
    lsl_avx512_lstm_step1_sparse, NULL, lsl_avx2_gemm_dyn16, /* the AVX2 table's int16 tile */
    lsl_avx2_quantize_rows16,
};

#endif /* LSL_HAVE_X86 */
