/*
 * lsl_matrix.c -- packing weight matrices into the kernels' panel layout, dynamic
 * activation quantization, and the one matmul entry point the layers call.
 */
#include <math.h>
#include <string.h>

#include "lsl_internal.h"

static int32_t kpad_for(int32_t cols, int32_t dtype, int32_t act) {
    (void)act;
    return dtype == LSL_I8 ? (cols + 3) / 4 * 4 : cols;
}

static size_t elem_bytes(int32_t dtype) { return dtype == LSL_F32 ? 4 : 1; }

static int valid_form(int32_t dtype, int32_t act) {
    if (dtype == LSL_F32) return act == LSL_ACT_FLOAT;
    if (dtype == LSL_I8)
        return act == LSL_ACT_FLOAT || act == LSL_ACT_DYN8 || act == LSL_ACT_DYN16 || act == LSL_ACT_DYN7;
    return 0;
}

/* Byte offsets of the three parts inside a pack buffer. */
static void pack_offsets(int32_t rows, int32_t cols, int32_t dtype, int32_t act, size_t *scale_off,
                         size_t *wsum_off, size_t *total) {
    size_t panels = (size_t)lsl_panels(rows);
    size_t data = panels * LSL_PANEL * (size_t)kpad_for(cols, dtype, act) * elem_bytes(dtype);
    size_t padded_rows = panels * LSL_PANEL;
    *scale_off = lsl_round_up(data, LSL_ALIGN);
    *wsum_off = lsl_round_up(*scale_off + (dtype == LSL_I8 ? padded_rows * sizeof(float) : 0), LSL_ALIGN);
    *total = lsl_round_up(*wsum_off + (dtype == LSL_I8 ? padded_rows * sizeof(int32_t) : 0), LSL_ALIGN);
}

size_t lsl_matrix_packed_bytes(int32_t rows, int32_t cols, int32_t dtype, int32_t act) {
    size_t a, b, total;
    if (rows <= 0 || cols <= 0 || !valid_form(dtype, act)) return 0;
    /* Keep every offset a kernel computes inside int32 / size_t comfortably. */
    if ((int64_t)rows * (int64_t)cols > ((int64_t)1 << 30)) return 0;
    if (dtype == LSL_I8 && cols > LSL_I8_MAX_COLS) return 0; /* int32 sums could overflow */
    pack_offsets(rows, cols, dtype, act, &a, &b, &total);
    return total;
}

int lsl_matrix_pack(lsl_matrix *m, int32_t rows, int32_t cols, int32_t dtype, int32_t act, const void *src,
                    const float *scale, void *buf, size_t buf_bytes) {
    size_t scale_off, wsum_off, total, need;
    int32_t kpad, panels, p, r, k, flags = 0;
    if (!m || !src || !buf) return LSL_ERR_ARG;
    if (!valid_form(dtype, act)) return LSL_ERR_ARG;
    if (dtype == LSL_I8 && !scale) return LSL_ERR_ARG;
    need = lsl_matrix_packed_bytes(rows, cols, dtype, act);
    if (need == 0) return LSL_ERR_SHAPE;
    if (buf_bytes < need) return LSL_ERR_BUFFER;
    if (((uintptr_t)buf) % LSL_ALIGN) return LSL_ERR_ARG;
    pack_offsets(rows, cols, dtype, act, &scale_off, &wsum_off, &total);
    memset(buf, 0, total);
    kpad = kpad_for(cols, dtype, act);
    panels = lsl_panels(rows);

    if (dtype == LSL_F32) {
        const float *w = (const float *)src;
        float *d = (float *)buf;
        for (p = 0; p < panels; ++p)
            for (r = 0; r < LSL_PANEL && p * LSL_PANEL + r < rows; ++r)
                for (k = 0; k < cols; ++k)
                    d[((size_t)p * (size_t)kpad + (size_t)k) * LSL_PANEL + (size_t)r] =
                        w[(size_t)(p * LSL_PANEL + r) * (size_t)cols + (size_t)k];
    } else {
        const int8_t *w = (const int8_t *)src;
        int8_t *d = (int8_t *)buf;
        float *sc = (float *)((char *)buf + scale_off);
        for (r = 0; r < rows; ++r) {
            if (!(scale[r] == scale[r]) || fabsf(scale[r]) > 3.0e38f) return LSL_ERR_ARG; /* NaN / inf */
            sc[r] = scale[r];
        }
        for (p = 0; p < panels; ++p)
            for (r = 0; r < LSL_PANEL && p * LSL_PANEL + r < rows; ++r)
                for (k = 0; k < cols; ++k) {
                    int8_t v = w[(size_t)(p * LSL_PANEL + r) * (size_t)cols + (size_t)k];
                    d[(((size_t)p * (size_t)(kpad / 4) + (size_t)(k / 4)) * LSL_PANEL + (size_t)r) * 4 +
                      (size_t)(k % 4)] = v;
                }
        {
            /* row sums: the VNNI kernels' correction for their unsigned operands */
            int32_t *ws = (int32_t *)((char *)buf + wsum_off);
            int m128 = 0, over64 = 0;
            for (r = 0; r < rows; ++r) {
                int32_t s = 0;
                for (k = 0; k < cols; ++k) {
                    const int8_t v = w[(size_t)r * (size_t)cols + (size_t)k];
                    s += v;
                    m128 |= v == -128;
                    over64 |= v > 64 || v < -64;
                }
                ws[r] = s;
            }
            m->wsum = ws;
            flags = (m128 ? 0 : LSL_MATRIX_NO_M128) | (over64 ? 0 : LSL_MATRIX_W7);
            if (act == LSL_ACT_DYN7 && over64) return LSL_ERR_ARG; /* 7-bit activations: 7-bit weights only */
        }
        m->scale = sc;
    }
    if (dtype == LSL_F32) {
        m->scale = NULL;
        m->wsum = NULL;
    }
    m->rows = rows;
    m->cols = cols;
    m->dtype = dtype;
    m->act = act;
    m->kpad = kpad;
    m->reserved = flags;
    m->data = buf;
    return LSL_OK;
}

/* max |row[j]| over k values; NaN where the row has no fixed-point form (a NaN, an
 * infinity or a value past 3e38). The quantizers then write zero codes (the kernels stay
 * in range) and a NaN scale, so the row's outputs are NaN as a float product's are: a
 * NaN input must not vanish into a code (lrintf(NaN) made it -qmax). All zeros: 0. */
static float row_amax(const float *row, int32_t k) {
    float amax = 0.0f;
    int32_t j;
    int bad = 0;
    for (j = 0; j < k; ++j) {
        float a = fabsf(row[j]);
        bad |= !(a <= 3.0e38f);
        amax = a > amax ? a : amax;
    }
    return bad ? NAN : amax;
}

void lsl_quantize_rows(int32_t m, int32_t k, int32_t kpad, const float *x, int32_t ldx, uint8_t *u, float *xs,
                       int32_t qmax) {
    const float fq = (float)qmax;
    int32_t i, j;
    for (i = 0; i < m; ++i) {
        const float *row = x + (size_t)i * (size_t)ldx;
        uint8_t *q = u + (size_t)i * (size_t)kpad;
        float amax = row_amax(row, k), inv;
        if (!(amax > 0.0f)) {
            /* all zeros, or non-finite input (amax NaN: no 8-bit form): zero codes so the
             * kernels stay in range; the scale 0 or NaN (the outputs NaN) */
            memset(q, LSL_Q_OFFSET, (size_t)kpad);
            xs[i] = amax == amax ? 0.0f : NAN;
            continue;
        }
        inv = fq / amax;
        for (j = 0; j < k; ++j) {
            long v = lrintf(row[j] * inv);
            v = v > qmax ? qmax : (v < -qmax ? -qmax : v);
            q[j] = (uint8_t)(v + LSL_Q_OFFSET);
        }
        for (; j < kpad; ++j) q[j] = LSL_Q_OFFSET;
        xs[i] = amax / fq;
    }
}

void lsl_quantize_rows16(int32_t m, int32_t k, int32_t kpad, const float *x, int32_t ldx, int16_t *q, float *xs) {
    const int32_t qmax = lsl_dyn16_qmax(kpad);
    const float fq = (float)qmax; /* exact: qmax < 2^24 */
    int32_t i, j;
    for (i = 0; i < m; ++i) {
        const float *row = x + (size_t)i * (size_t)ldx;
        int16_t *qr = q + (size_t)i * (size_t)kpad;
        float amax = row_amax(row, k), inv;
        if (!(amax > 0.0f)) { /* zeros or non-finite: zero codes, scale 0 or NaN, as lsl_quantize_rows */
            memset(qr, 0, (size_t)kpad * sizeof(int16_t));
            xs[i] = amax == amax ? 0.0f : NAN;
            continue;
        }
        inv = fq / amax;
        for (j = 0; j < k; ++j) {
            long v = lrintf(row[j] * inv);
            v = v > qmax ? qmax : (v < -qmax ? -qmax : v);
            qr[j] = (int16_t)v;
        }
        for (; j < kpad; ++j) qr[j] = 0;
        xs[i] = amax / fq;
    }
}

int lsl_matrix_lowrank(lsl_matrix *m, const lsl_matrix *factors) {
    const lsl_matrix *v, *u;
    if (!m || !factors) return LSL_ERR_ARG;
    v = &factors[0];
    u = &factors[1];
    if (!v->data || !u->data || v->dtype == LSL_LOWRANK || u->dtype == LSL_LOWRANK) return LSL_ERR_ARG;
    if (v->rows < 1 || u->cols != v->rows) return LSL_ERR_SHAPE;
    memset(m, 0, sizeof(*m));
    m->rows = u->rows;
    m->cols = v->cols;
    m->dtype = LSL_LOWRANK;
    m->act = v->act;
    m->kpad = v->rows;
    m->data = factors;
    return LSL_OK;
}

/* Bytes of the rank-r intermediate x V^T that a low-rank product keeps in `work`. */
static size_t lowrank_tmp_bytes(const lsl_matrix *w, int32_t m) {
    return lsl_round_up((size_t)m * (size_t)w->kpad * sizeof(float), LSL_ALIGN);
}

size_t lsl_matmul_bytes(const lsl_matrix *w, int32_t m) {
    if (!w || m <= 0) return 0;
    if (w->dtype == LSL_LOWRANK) {
        const lsl_matrix *f = (const lsl_matrix *)w->data;
        size_t a = lsl_matmul_bytes(&f[0], m), b = lsl_matmul_bytes(&f[1], m);
        return lowrank_tmp_bytes(w, m) + (a > b ? a : b);
    }
    if (w->dtype != LSL_I8 && w->dtype != LSL_I8_SPARSE) return 0;
    {
        /* DYN8: one u8 row per activation row, two for a single row (|q| and sign planes
         * of the AVX2 and AVX-512-without-VNNI fused steps, lsl_kern_avx2.h's
         * LSL_K_DYNM); DYN16: an int16 row; ACT_FLOAT: three (the 24-bit limbs); plus a
         * scale per row. The
         * sparse kernels read whole 128-byte windows of each row. */
        const size_t planes = w->act == LSL_ACT_FLOAT ? 3 : (w->act == LSL_ACT_DYN16 ? 2 : (m == 1 ? 2 : 1));
        const size_t width = (size_t)(w->dtype == LSL_I8_SPARSE ? lsl_sparse_upad(w->kpad) : w->kpad);
        size_t bytes = planes * (size_t)m * width;
        if (w->act == LSL_ACT_FLOAT && w->dtype == LSL_I8 && m >= LSL_UNPACK_MIN_ROWS) {
            const size_t panel = (size_t)LSL_PANEL * (size_t)w->kpad * sizeof(float); /* an unpacked panel */
            if (panel > bytes) bytes = panel;
        }
        return lsl_round_up(bytes, LSL_ALIGN) + lsl_round_up((size_t)m * sizeof(float), LSL_ALIGN);
    }
}

/* An LSL_ACT_DYN16 product: x quantized to int16 codes at the start of work (their
 * scales after them, as lsl_matmul_bytes lays it out), then y = (bias or y) + x W^T. */
static void dyn16_product(const lsl_kernels *kern, const lsl_matrix *w, int32_t m, const float *x, int32_t ldx,
                          const float *bias, float *y, int32_t ldy, void *work, int rev) {
    int16_t *q = (int16_t *)work;
    float *xs = (float *)((char *)work + lsl_round_up((size_t)m * (size_t)w->kpad * sizeof(int16_t), LSL_ALIGN));
    kern->quantize_rows16(m, w->cols, w->kpad, x, ldx, q, xs);
    kern->gemm_dyn16(w, m, q, w->kpad, xs, bias, y, ldy, rev);
}

void lsl_bias_rows(int32_t m, const float *bias, int32_t n, float *y, int32_t ldy) {
    int32_t i;
    if (bias)
        for (i = 0; i < m; ++i) memcpy(y + (size_t)i * (size_t)ldy, bias, (size_t)n * sizeof(float));
}

/* A dynamic 8-bit product (LSL_I8 or LSL_I8_SPARSE, LSL_ACT_DYN8 / DYN7): x quantized per
 * row to u8 codes at the start of work (the sparse kernels read whole windows), then
 * y = (bias or y) + x W^T. */
static void dyn8_product(const lsl_kernels *kern, const lsl_matrix *w, int32_t m, const float *x, int32_t ldx,
                         const float *bias, float *y, int32_t ldy, void *work, int rev) {
    const int sparse = w->dtype == LSL_I8_SPARSE;
    const int32_t upad = sparse ? lsl_sparse_upad(w->kpad) : w->kpad;
    uint8_t *u = (uint8_t *)work;
    float *xs = (float *)((char *)work + lsl_round_up((size_t)m * (size_t)upad, LSL_ALIGN));
    kern->quantize_rows(m, w->cols, upad, x, ldx, u, xs, lsl_act_qmax(w->act));
    (sparse ? kern->gemm_sparse_dyn8 : kern->gemm_dyn8)(w, m, u, upad, xs, bias, y, ldy, rev);
}

/* The internal entry: no argument checks beyond what the caller guarantees. */
int lsl_matmul_unchecked(const lsl_kernels *kern, const lsl_matrix *w, int32_t m, const float *x, int32_t ldx,
                         float *y, int32_t ldy, void *work, int rev) {
    if (w->dtype == LSL_LOWRANK) {
        /* y += (x V^T) U^T through a rank-r row block at the start of work */
        const lsl_matrix *f = (const lsl_matrix *)w->data;
        const int32_t r = w->kpad;
        float *tmp = (float *)work;
        void *rest = (char *)work + lowrank_tmp_bytes(w, m);
        memset(tmp, 0, (size_t)m * (size_t)r * sizeof(float));
        lsl_matmul_unchecked(kern, &f[0], m, x, ldx, tmp, r, rest, rev);
        return lsl_matmul_unchecked(kern, &f[1], m, tmp, r, y, ldy, rest, rev);
    }
    if (w->dtype == LSL_F32) {
        kern->gemm_f32(w, m, x, ldx, y, ldy, rev);
    } else if (w->act == LSL_ACT_FLOAT) {
        (w->dtype == LSL_I8_SPARSE ? kern->gemm_sparse_i8 : kern->gemm_i8)(w, m, x, ldx, y, ldy, rev, work);
    } else if (w->act == LSL_ACT_DYN16) { /* LSL_I8 only (lsl_matrix_pack refuses the rest) */
        dyn16_product(kern, w, m, x, ldx, NULL, y, ldy, work, rev);
    } else {
        dyn8_product(kern, w, m, x, ldx, NULL, y, ldy, work, rev);
    }
    return LSL_OK;
}

int lsl_matmul_bias_unchecked(const lsl_kernels *kern, const lsl_matrix *w, int32_t m, const float *x, int32_t ldx,
                              const float *bias, float *y, int32_t ldy, void *work, int rev) {
    /* the dynamic products take the bias into their epilogue (no copy of it into every
     * row first: the input projection of I=40/H=128, T = 100, wrote 200 KB so) */
    if (w->dtype == LSL_I8 && w->act == LSL_ACT_DYN16) {
        dyn16_product(kern, w, m, x, ldx, bias, y, ldy, work, rev);
        return LSL_OK;
    }
    if ((w->dtype == LSL_I8 || w->dtype == LSL_I8_SPARSE) && lsl_act_u8(w->act)) {
        dyn8_product(kern, w, m, x, ldx, bias, y, ldy, work, rev);
        return LSL_OK;
    }
    lsl_bias_rows(m, bias, w->rows, y, ldy);
    return lsl_matmul_unchecked(kern, w, m, x, ldx, y, ldy, work, rev);
}

int lsl_matmul(const lsl_matrix *w, int32_t m, const float *x, int32_t ldx, float *y, int32_t ldy, void *work,
               size_t work_bytes) {
    if (!w || !x || !y || !w->data) return LSL_ERR_ARG;
    if (m <= 0 || ldx < w->cols || ldy < w->rows) return LSL_ERR_SHAPE;
    if (work_bytes < lsl_matmul_bytes(w, m) || (lsl_matmul_bytes(w, m) && !work)) return LSL_ERR_BUFFER;
    return lsl_matmul_unchecked(lsl_kernels_active(), w, m, x, ldx, y, ldy, work, 0);
}
