/*
 * lsl_kern_neon.c -- aarch64 Advanced SIMD (NEON) kernels: the "neon" table (Armv8.0,
 * every aarch64 CPU) and "neon-dotprod" (Armv8.2 SDOT: Cortex-A55/A75 and later,
 * Neoverse, Apple M1 and later). A panel (16 rows) is four 128-bit registers.
 *
 *   fp32      broadcast(x[k]) * the panel's 16 weights of column k, FMLA into 4
 *             accumulators per activation row; up to 4 activation rows share each
 *             weight load.
 *   int8, float activations
 *             the packed [k/4][16][4] block widened to float (SXTL, SCVTF): register
 *             j holds row j's 4 weights, FMLA by the 4 activations, and the 4 lanes
 *             of a row are added at the end.
 *   int8, dynamic activations (u = q + 128; q = u ^ 0x80 as int8)
 *             neon: SMULL + SMLAL of two 4-column blocks into int16 (two products of
 *             |127 * 128| fit: 32512 <= 32767), then SADALP into int32 -- exact.
 *             neon-dotprod: SDOT, the int8 layout's own shape (4 k of one row per
 *             32-bit lane), into int32 -- exact.
 *             Integer sums are exact, and the epilogue is the portable kernel's
 *             (float)acc * (xs * scale) in the same order, so every table gives the
 *             portable kernels' bits.
 * Quantization, the sparse products and the element-wise updates are the portable
 * kernels (compiled for aarch64 they are NEON code already: the element-wise loops
 * vectorize over lsl_fastmath.h).
 *
 * Why the dot-product table is separate: SDOT is optional before Armv8.4 (Cortex-A53,
 * A72 and the Raspberry Pi 3/4 lack it); the function carries target("+dotprod") so
 * the rest of the build stays Armv8.0, and lsl_isa.c enables the table from HWCAP.
 */
#include "lsl_internal.h"

#if defined(LSL_HAVE_NEON)
#include <arm_neon.h>
#include <string.h>

#define NINL static inline __attribute__((always_inline))

/* The panels in the order `rev` asks for (see lsl_internal.h). */
#define PANEL_OF(j, panels, rev) ((rev) ? (panels)-1 - (j) : (j))

/* ---- fp32 ------------------------------------------------------------------------- */

/* MB activation rows times one panel: y[i][r] += sum_k x[i][k] * pw[k][r]. Each row's
 * sequence of FMAs is the same for every MB, so a row's result does not depend on how
 * many rows share the call (a stream alone equals the same stream in a batch). */
NINL void tile_f32(const int MB, const float *pw, int32_t K, const float *x, int32_t ldx, float *y, int32_t ldy,
                   int32_t nr) {
    float32x4_t acc[4][4];
    int32_t k;
    int i, h;
    for (i = 0; i < MB; ++i)
        for (h = 0; h < 4; ++h) acc[i][h] = vdupq_n_f32(0.0f);
    for (k = 0; k < K; ++k) {
        const float32x4_t w0 = vld1q_f32(pw + (size_t)k * LSL_PANEL), w1 = vld1q_f32(pw + (size_t)k * LSL_PANEL + 4);
        const float32x4_t w2 = vld1q_f32(pw + (size_t)k * LSL_PANEL + 8), w3 = vld1q_f32(pw + (size_t)k * LSL_PANEL + 12);
        for (i = 0; i < MB; ++i) {
            const float xv = x[(size_t)i * ldx + k];
            acc[i][0] = vfmaq_n_f32(acc[i][0], w0, xv);
            acc[i][1] = vfmaq_n_f32(acc[i][1], w1, xv);
            acc[i][2] = vfmaq_n_f32(acc[i][2], w2, xv);
            acc[i][3] = vfmaq_n_f32(acc[i][3], w3, xv);
        }
    }
    for (i = 0; i < MB; ++i) {
        float *yr = y + (size_t)i * ldy;
        if (nr == LSL_PANEL) {
            for (h = 0; h < 4; ++h) vst1q_f32(yr + 4 * h, vaddq_f32(vld1q_f32(yr + 4 * h), acc[i][h]));
        } else {
            float tmp[LSL_PANEL];
            int32_t r;
            for (h = 0; h < 4; ++h) vst1q_f32(tmp + 4 * h, acc[i][h]);
            for (r = 0; r < nr; ++r) yr[r] += tmp[r];
        }
    }
}

static void gemm_f32(const lsl_matrix *w, int32_t m, const float *x, int32_t ldx, float *y, int32_t ldy, int rev) {
    const float *data = (const float *)w->data;
    const int32_t panels = lsl_panels(w->rows);
    int32_t j, i;
    for (j = 0; j < panels; ++j) {
        const int32_t p = PANEL_OF(j, panels, rev);
        const float *pw = data + (size_t)p * w->kpad * LSL_PANEL;
        const int32_t nr = w->rows - p * LSL_PANEL < LSL_PANEL ? w->rows - p * LSL_PANEL : LSL_PANEL;
        float *yp = y + p * LSL_PANEL;
        for (i = 0; i + 4 <= m; i += 4)
            tile_f32(4, pw, w->cols, x + (size_t)i * ldx, ldx, yp + (size_t)i * ldy, ldy, nr);
        switch (m - i) {
        case 3: tile_f32(3, pw, w->cols, x + (size_t)i * ldx, ldx, yp + (size_t)i * ldy, ldy, nr); break;
        case 2: tile_f32(2, pw, w->cols, x + (size_t)i * ldx, ldx, yp + (size_t)i * ldy, ldy, nr); break;
        case 1: tile_f32(1, pw, w->cols, x + (size_t)i * ldx, ldx, yp + (size_t)i * ldy, ldy, nr); break;
        default: break;
        }
    }
}

/* ---- int8 weights, float activations -------------------------------------------- */

/* The 4 activations of column block k4; columns past `cols` read as 0 (their weights
 * are 0, but 0 * NaN is not, and the row may end there). */
NINL float32x4_t x4(const float *xr, int32_t k4, int32_t cols) {
    if (4 * k4 + 4 <= cols) return vld1q_f32(xr + 4 * k4);
    {
        float t[4];
        int j;
        for (j = 0; j < 4; ++j) t[j] = 4 * k4 + j < cols ? xr[4 * k4 + j] : 0.0f;
        return vld1q_f32(t);
    }
}

static void gemm_i8(const lsl_matrix *w, int32_t m, const float *x, int32_t ldx, float *y, int32_t ldy, int rev,
                    void *work) {
    const int8_t *data = (const int8_t *)w->data;
    const int32_t panels = lsl_panels(w->rows), nk4 = w->kpad / 4;
    int32_t j, i, k4, r;
    (void)work;
    for (j = 0; j < panels; ++j) {
        const int32_t p = PANEL_OF(j, panels, rev);
        const int8_t *pw = data + (size_t)p * w->kpad * LSL_PANEL;
        const int32_t nr = w->rows - p * LSL_PANEL < LSL_PANEL ? w->rows - p * LSL_PANEL : LSL_PANEL;
        for (i = 0; i < m; ++i) {
            const float *xr = x + (size_t)i * ldx;
            float32x4_t acc[LSL_PANEL];
            for (r = 0; r < LSL_PANEL; ++r) acc[r] = vdupq_n_f32(0.0f);
            for (k4 = 0; k4 < nk4; ++k4) {
                const float32x4_t xq = x4(xr, k4, w->cols);
                const int8_t *b = pw + (size_t)k4 * 4 * LSL_PANEL;
                int g;
                for (g = 0; g < 4; ++g) {
                    const int8x16_t wb = vld1q_s8(b + 16 * g); /* rows 4g .. 4g+3, 4 k each */
                    const int16x8_t lo = vmovl_s8(vget_low_s8(wb)), hi = vmovl_high_s8(wb);
                    acc[4 * g] = vfmaq_f32(acc[4 * g], vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo))), xq);
                    acc[4 * g + 1] = vfmaq_f32(acc[4 * g + 1], vcvtq_f32_s32(vmovl_high_s16(lo)), xq);
                    acc[4 * g + 2] = vfmaq_f32(acc[4 * g + 2], vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi))), xq);
                    acc[4 * g + 3] = vfmaq_f32(acc[4 * g + 3], vcvtq_f32_s32(vmovl_high_s16(hi)), xq);
                }
            }
            {
                float *yr = y + (size_t)i * ldy + p * LSL_PANEL;
                const float *sc = w->scale + p * LSL_PANEL;
                for (r = 0; r < nr; ++r) yr[r] += vaddvq_f32(acc[r]) * sc[r];
            }
        }
    }
}

/* ---- int8 weights, dynamic int8 activations -------------------------------------- */

/* Column block k4's 4 activation bytes as q = u - 128, repeated in all 4 lanes. */
NINL int8x16_t q4(const uint8_t *ur, int32_t k4) {
    uint32_t word;
    memcpy(&word, ur + 4 * k4, 4);
    return vreinterpretq_s8_u8(veorq_u8(vreinterpretq_u8_u32(vdupq_n_u32(word)), vdupq_n_u8(0x80)));
}

/* The epilogue every table shares with the portable kernel, in its order:
 * y += (float)acc * (xs * scale). */
NINL void store_dyn8(const int32_t *sums, int32_t nr, float xs, const float *scale, float *yr) {
    int32_t r;
    for (r = 0; r < nr; ++r) yr[r] += (float)sums[r] * (xs * scale[r]);
}

/* MB activation rows times one panel, SMULL/SMLAL + SADALP. acc[i][j] holds rows 2j and
 * 2j+1: lanes (row 2j: k0+k1, k2+k3; row 2j+1: k0+k1, k2+k3) summed over the blocks. */
NINL void tile_dyn8_neon(const int MB, const int8_t *pw, int32_t nk4, const uint8_t *u, int32_t ldu,
                         const float *xs, const float *scale, float *y, int32_t ldy, int32_t nr) {
    int32x4_t acc[2][8];
    int32_t k4;
    int i, g;
    for (i = 0; i < MB; ++i)
        for (g = 0; g < 8; ++g) acc[i][g] = vdupq_n_s32(0);
    for (k4 = 0; k4 + 2 <= nk4; k4 += 2) {
        const int8_t *b0 = pw + (size_t)k4 * 4 * LSL_PANEL, *b1 = b0 + 4 * LSL_PANEL;
        int8x16_t q0[2], q1[2];
        for (i = 0; i < MB; ++i) {
            q0[i] = q4(u + (size_t)i * ldu, k4);
            q1[i] = q4(u + (size_t)i * ldu, k4 + 1);
        }
        for (g = 0; g < 4; ++g) {
            const int8x16_t w0 = vld1q_s8(b0 + 16 * g), w1 = vld1q_s8(b1 + 16 * g);
            for (i = 0; i < MB; ++i) {
                int16x8_t lo = vmull_s8(vget_low_s8(w0), vget_low_s8(q0[i]));
                int16x8_t hi = vmull_high_s8(w0, q0[i]);
                lo = vmlal_s8(lo, vget_low_s8(w1), vget_low_s8(q1[i]));
                hi = vmlal_high_s8(hi, w1, q1[i]);
                acc[i][2 * g] = vpadalq_s16(acc[i][2 * g], lo);
                acc[i][2 * g + 1] = vpadalq_s16(acc[i][2 * g + 1], hi);
            }
        }
    }
    if (k4 < nk4) { /* an odd last block */
        const int8_t *b0 = pw + (size_t)k4 * 4 * LSL_PANEL;
        for (g = 0; g < 4; ++g) {
            const int8x16_t w0 = vld1q_s8(b0 + 16 * g);
            for (i = 0; i < MB; ++i) {
                const int8x16_t q = q4(u + (size_t)i * ldu, k4);
                acc[i][2 * g] = vpadalq_s16(acc[i][2 * g], vmull_s8(vget_low_s8(w0), vget_low_s8(q)));
                acc[i][2 * g + 1] = vpadalq_s16(acc[i][2 * g + 1], vmull_high_s8(w0, q));
            }
        }
    }
    for (i = 0; i < MB; ++i) {
        int32_t sums[LSL_PANEL];
        for (g = 0; g < 4; ++g) vst1q_s32(sums + 4 * g, vpaddq_s32(acc[i][2 * g], acc[i][2 * g + 1]));
        store_dyn8(sums, nr, xs[i], scale, y + (size_t)i * ldy);
    }
}

#define GEMM_DYN8_BODY(TILE, MBMAX)                                                                       \
    const int8_t *data = (const int8_t *)w->data;                                                          \
    const int32_t panels = lsl_panels(w->rows), nk4 = w->kpad / 4;                                         \
    int32_t j, i;                                                                                          \
    for (j = 0; j < panels; ++j) {                                                                         \
        const int32_t p = PANEL_OF(j, panels, rev);                                                        \
        const int8_t *pw = data + (size_t)p * w->kpad * LSL_PANEL;                                         \
        const int32_t nr = w->rows - p * LSL_PANEL < LSL_PANEL ? w->rows - p * LSL_PANEL : LSL_PANEL;      \
        const float *sc = w->scale + p * LSL_PANEL;                                                        \
        float *yp = y + p * LSL_PANEL;                                                                     \
        for (i = 0; i + MBMAX <= m; i += MBMAX)                                                            \
            TILE(MBMAX, pw, nk4, u + (size_t)i * ldu, ldu, xs + i, sc, yp + (size_t)i * ldy, ldy, nr);     \
        for (; i < m; ++i) TILE(1, pw, nk4, u + (size_t)i * ldu, ldu, xs + i, sc, yp + (size_t)i * ldy, ldy, nr); \
    }

static void gemm_dyn8_neon(const lsl_matrix *w, int32_t m, const uint8_t *u, int32_t ldu, const float *xs,
                           const float *bias, float *y, int32_t ldy, int rev) {
    lsl_bias_rows(m, bias, w->rows, y, ldy);
    GEMM_DYN8_BODY(tile_dyn8_neon, 2)
}

const lsl_kernels lsl_kernels_neon = {
    LSL_ISA_NEON, gemm_f32, gemm_i8, gemm_dyn8_neon, lsl_quantize_rows, lsl_portable_gemm_sparse_i8,
    lsl_portable_gemm_sparse_dyn8, lsl_portable_lstm_pointwise, lsl_portable_gru_pointwise,
    NULL, NULL, NULL, /* no fused single-stream steps: the generic path */
    lsl_portable_gemm_dyn16, lsl_quantize_rows16, /* the input projections' 16-bit products: the portable C */
};

#if defined(LSL_HAVE_NEON_DOTPROD)
#define TDOT __attribute__((target("arch=armv8.2-a+dotprod")))

/* MB activation rows times one panel with SDOT: acc[i][g] lane j = row 4g + j. */
NINL TDOT void tile_dyn8_dot(const int MB, const int8_t *pw, int32_t nk4, const uint8_t *u, int32_t ldu,
                             const float *xs, const float *scale, float *y, int32_t ldy, int32_t nr) {
    int32x4_t acc[4][4];
    int32_t k4;
    int i, g;
    for (i = 0; i < MB; ++i)
        for (g = 0; g < 4; ++g) acc[i][g] = vdupq_n_s32(0);
    for (k4 = 0; k4 < nk4; ++k4) {
        const int8_t *b = pw + (size_t)k4 * 4 * LSL_PANEL;
        const int8x16_t w0 = vld1q_s8(b), w1 = vld1q_s8(b + 16), w2 = vld1q_s8(b + 32), w3 = vld1q_s8(b + 48);
        for (i = 0; i < MB; ++i) {
            const int8x16_t q = q4(u + (size_t)i * ldu, k4);
            acc[i][0] = vdotq_s32(acc[i][0], w0, q);
            acc[i][1] = vdotq_s32(acc[i][1], w1, q);
            acc[i][2] = vdotq_s32(acc[i][2], w2, q);
            acc[i][3] = vdotq_s32(acc[i][3], w3, q);
        }
    }
    for (i = 0; i < MB; ++i) {
        int32_t sums[LSL_PANEL];
        for (g = 0; g < 4; ++g) vst1q_s32(sums + 4 * g, acc[i][g]);
        store_dyn8(sums, nr, xs[i], scale, y + (size_t)i * ldy);
    }
}

static TDOT void gemm_dyn8_dot(const lsl_matrix *w, int32_t m, const uint8_t *u, int32_t ldu, const float *xs,
                               const float *bias, float *y, int32_t ldy, int rev) {
    lsl_bias_rows(m, bias, w->rows, y, ldy);
    GEMM_DYN8_BODY(tile_dyn8_dot, 4)
}

const lsl_kernels lsl_kernels_neon_dotprod = {
    LSL_ISA_NEON_DOTPROD, gemm_f32, gemm_i8, gemm_dyn8_dot, lsl_quantize_rows, lsl_portable_gemm_sparse_i8,
    lsl_portable_gemm_sparse_dyn8, lsl_portable_lstm_pointwise, lsl_portable_gru_pointwise,
    NULL, NULL, NULL, lsl_portable_gemm_dyn16, lsl_quantize_rows16,
};
#endif /* LSL_HAVE_NEON_DOTPROD */

#endif /* LSL_HAVE_NEON */
