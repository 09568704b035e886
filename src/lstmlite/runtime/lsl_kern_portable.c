/*
 * lsl_kern_portable.c -- the portable C99 kernels: every ISA's reference, and the
 * only code a microcontroller build compiles. Plain loops over the packed layout.
 */
#include <math.h>

#include "lsl_internal.h"

static void gemm_f32(const lsl_matrix *w, int32_t m, const float *x, int32_t ldx, float *y, int32_t ldy, int rev) {
    const float *data = (const float *)w->data;
    int32_t panels = lsl_panels(w->rows), p, i, k, r;
    (void)rev; /* the order of panels does not matter to a cache-less target */
    for (p = 0; p < panels; ++p) {
        const float *pw = data + (size_t)p * w->kpad * LSL_PANEL;
        int32_t nr = w->rows - p * LSL_PANEL < LSL_PANEL ? w->rows - p * LSL_PANEL : LSL_PANEL;
        for (i = 0; i < m; ++i) {
            float acc[LSL_PANEL] = {0};
            const float *xr = x + (size_t)i * ldx;
            for (k = 0; k < w->cols; ++k)
                for (r = 0; r < LSL_PANEL; ++r) acc[r] += xr[k] * pw[k * LSL_PANEL + r];
            for (r = 0; r < nr; ++r) y[(size_t)i * ldy + p * LSL_PANEL + r] += acc[r];
        }
    }
}

static void gemm_i8(const lsl_matrix *w, int32_t m, const float *x, int32_t ldx, float *y, int32_t ldy, int rev,
                    void *work) {
    const int8_t *data = (const int8_t *)w->data;
    int32_t panels = lsl_panels(w->rows), p, i, k, r;
    (void)rev;
    (void)work;
    for (p = 0; p < panels; ++p) {
        const int8_t *pw = data + (size_t)p * w->kpad * LSL_PANEL;
        int32_t nr = w->rows - p * LSL_PANEL < LSL_PANEL ? w->rows - p * LSL_PANEL : LSL_PANEL;
        for (i = 0; i < m; ++i) {
            float acc[LSL_PANEL] = {0};
            const float *xr = x + (size_t)i * ldx;
            for (k = 0; k < w->cols; ++k)
                for (r = 0; r < LSL_PANEL; ++r) acc[r] += xr[k] * (float)pw[((k / 4) * LSL_PANEL + r) * 4 + k % 4];
            for (r = 0; r < nr; ++r) y[(size_t)i * ldy + p * LSL_PANEL + r] += acc[r] * w->scale[p * LSL_PANEL + r];
        }
    }
}

static void gemm_dyn8(const lsl_matrix *w, int32_t m, const uint8_t *u, int32_t ldu, const float *xs, float *y,
                      int32_t ldy, int rev) {
    const int8_t *data = (const int8_t *)w->data;
    int32_t panels = lsl_panels(w->rows), p, i, k, r;
    (void)rev;
    for (p = 0; p < panels; ++p) {
        const int8_t *pw = data + (size_t)p * w->kpad * LSL_PANEL;
        int32_t nr = w->rows - p * LSL_PANEL < LSL_PANEL ? w->rows - p * LSL_PANEL : LSL_PANEL;
        for (i = 0; i < m; ++i) {
            int32_t acc[LSL_PANEL] = {0};
            const uint8_t *ur = u + (size_t)i * ldu;
            for (k = 0; k < w->kpad; ++k) {
                int32_t q = (int32_t)ur[k] - LSL_Q_OFFSET;
                for (r = 0; r < LSL_PANEL; ++r) acc[r] += q * pw[((k / 4) * LSL_PANEL + r) * 4 + k % 4];
            }
            for (r = 0; r < nr; ++r)
                y[(size_t)i * ldy + p * LSL_PANEL + r] += (float)acc[r] * (xs[i] * w->scale[p * LSL_PANEL + r]);
        }
    }
}

/* ---- (1, 4)-block sparse: walk the ELL segments (layout in lsl_internal.h) -------- */

/* Calls body(lane, k, wq) for every stored block of panel p: k = first column, wq = the
 * block's 4 weights; padding slots (all-zero weights) are skipped. */
#define SPARSE_FOR_BLOCKS(w, p, BODY)                                                              \
    do {                                                                                           \
        const unsigned char *base_ = (const unsigned char *)(w)->data;                             \
        const lsl_sparse_hdr *hdr_ = (const lsl_sparse_hdr *)base_;                                \
        const int32_t *tab_ = (const int32_t *)(base_ + hdr_->seg_offset);                         \
        int32_t win_, s_, lane;                                                                    \
        for (win_ = 0; win_ < hdr_->windows; ++win_) {                                             \
            const int32_t seg_ = (p) * hdr_->windows + win_, n_ = tab_[2 * seg_ + 1];              \
            const unsigned char *idx_ = base_ + tab_[2 * seg_];                                    \
            const int8_t *wts_ = (const int8_t *)(idx_ + (size_t)64 * ((n_ + 3) / 4));             \
            for (s_ = 0; s_ < n_; ++s_)                                                            \
                for (lane = 0; lane < LSL_PANEL; ++lane) {                                         \
                    const int8_t *wq = wts_ + (size_t)64 * s_ + 4 * lane;                          \
                    const int32_t k = 4 * (win_ * (LSL_SPARSE_WIN / 4) +                           \
                                           idx_[(size_t)64 * (s_ / 4) + 4 * lane + s_ % 4]);       \
                    if ((wq[0] | wq[1] | wq[2] | wq[3]) == 0) continue;                            \
                    BODY                                                                           \
                }                                                                                  \
        }                                                                                          \
    } while (0)

void lsl_portable_gemm_sparse_i8(const lsl_matrix *w, int32_t m, const float *x, int32_t ldx, float *y,
                                 int32_t ldy, int rev, void *work) {
    int32_t panels = lsl_panels(w->rows), p, i, r, j;
    (void)rev;
    (void)work;
    for (p = 0; p < panels; ++p) {
        int32_t nr = w->rows - p * LSL_PANEL < LSL_PANEL ? w->rows - p * LSL_PANEL : LSL_PANEL;
        for (i = 0; i < m; ++i) {
            float acc[LSL_PANEL] = {0}, poison = 0.0f;
            const float *xr = x + (size_t)i * ldx;
            /* A NaN or inf anywhere in the row poisons every output, as the dense
             * product with its zero weights would (0 * inf = NaN). */
            for (j = 0; j < w->cols; ++j) poison += xr[j] * 0.0f;
            for (r = 0; r < LSL_PANEL; ++r) acc[r] = poison;
            SPARSE_FOR_BLOCKS(w, p, {
                for (j = 0; j < 4 && k + j < w->cols; ++j) acc[lane] += xr[k + j] * (float)wq[j];
            });
            for (r = 0; r < nr; ++r) y[(size_t)i * ldy + p * LSL_PANEL + r] += acc[r] * w->scale[p * LSL_PANEL + r];
        }
    }
}

void lsl_portable_gemm_sparse_dyn8(const lsl_matrix *w, int32_t m, const uint8_t *u, int32_t ldu, const float *xs,
                                   float *y, int32_t ldy, int rev) {
    int32_t panels = lsl_panels(w->rows), p, i, r, j;
    (void)rev;
    for (p = 0; p < panels; ++p) {
        int32_t nr = w->rows - p * LSL_PANEL < LSL_PANEL ? w->rows - p * LSL_PANEL : LSL_PANEL;
        for (i = 0; i < m; ++i) {
            int32_t acc[LSL_PANEL] = {0};
            const uint8_t *ur = u + (size_t)i * ldu;
            SPARSE_FOR_BLOCKS(w, p, {
                for (j = 0; j < 4; ++j) acc[lane] += ((int32_t)ur[k + j] - LSL_Q_OFFSET) * wq[j];
            });
            for (r = 0; r < nr; ++r)
                y[(size_t)i * ldy + p * LSL_PANEL + r] += (float)acc[r] * (xs[i] * w->scale[p * LSL_PANEL + r]);
        }
    }
}

static float sigmoidf_(float v) { return 1.0f / (1.0f + expf(-v)); }

void lsl_portable_lstm_pointwise(int32_t hidden, const float *gates, float *c, float *h) {
    int32_t j;
    for (j = 0; j < hidden; ++j) {
        float ig = sigmoidf_(gates[j]);
        float fg = sigmoidf_(gates[hidden + j]);
        float gg = tanhf(gates[2 * hidden + j]);
        float og = sigmoidf_(gates[3 * hidden + j]);
        float cn = fg * c[j] + ig * gg;
        c[j] = cn;
        h[j] = og * tanhf(cn);
    }
}

void lsl_portable_gru_pointwise(int32_t hidden, const float *gi, const float *gh, float *h) {
    int32_t j;
    for (j = 0; j < hidden; ++j) {
        float r = sigmoidf_(gi[j] + gh[j]);
        float z = sigmoidf_(gi[hidden + j] + gh[hidden + j]);
        float n = tanhf(gi[2 * hidden + j] + r * gh[2 * hidden + j]);
        h[j] = n + z * (h[j] - n); /* = (1 - z) n + z h, PyTorch's form */
    }
}

const lsl_kernels lsl_kernels_portable = {
    LSL_ISA_PORTABLE, gemm_f32, gemm_i8, gemm_dyn8, lsl_quantize_rows, lsl_portable_gemm_sparse_i8,
    lsl_portable_gemm_sparse_dyn8, lsl_portable_lstm_pointwise, lsl_portable_gru_pointwise,
    NULL, NULL, /* no fused single-stream steps: the generic path */
};
