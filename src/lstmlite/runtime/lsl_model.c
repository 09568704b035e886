/*
 * lsl_model.c -- the model driver: checks, workspace sizes, whole-sequence run and
 * streaming step. Portable C99; all arithmetic goes through the active kernel table.
 *
 * Whole sequence, per layer and direction:
 *   G (T*B, G*H) = bias + X (T*B, I) @ W_ih^T     one batched matmul for all steps
 *   for each step t (reversed for the backward direction):
 *     LSTM: G[t] += h @ W_hh^T; cell update; h = W_hr h_raw when projected
 *     GRU : gh = b_hh + h @ W_hh^T; cell update
 * Activations are time-major inside the workspace ((t, b) row = t*B + b) so one
 * step's rows are contiguous; inputs and outputs are batch-first at the API.
 */
#include <math.h>
#include <string.h>

#include "lsl_internal.h"

#define MAX_LAYERS 64

/* ---- small helpers ------------------------------------------------------------------ */

static int32_t gates_of(int32_t cell) { return cell == LSL_LSTM ? 4 : (cell == LSL_GRU ? 3 : 1); }

static float apply_fn(int32_t fn, float x) { return fn == LSL_FN_TANH ? tanhf(x) : 1.0f / (1.0f + expf(-x)); }

/* FastGRNN update of one row: pre (H) = W x + U h without biases; h (H) in place.
 * Plain C rather than a kernel-table entry: O(H) work beside the two products. */
static void fastgrnn_pointwise(const lsl_layer *l, const lsl_direction *dr, const float *pre, float *h) {
    int32_t j;
    for (j = 0; j < l->hidden_size; ++j) {
        const float z = apply_fn(l->gate_fn, pre[j] + dr->b_ih[j]);
        const float cand = apply_fn(l->update_fn, pre[j] + dr->b_hh[j]);
        h[j] = (dr->zeta * (1.0f - z) + dr->nu) * cand + z * h[j];
    }
}
static int32_t out_of(const lsl_layer *l) { return l->proj_size > 0 ? l->proj_size : l->hidden_size; }
static int32_t feat_of(const lsl_layer *l) { return l->num_directions * out_of(l); }

static int matrix_ok(const lsl_matrix *m, int32_t rows, int32_t cols) {
    if (m->rows != rows || m->cols != cols || !m->data) return 0;
    if (m->dtype == LSL_LOWRANK) {
        const lsl_matrix *f = (const lsl_matrix *)m->data;
        return m->kpad >= 1 && f[0].dtype != LSL_LOWRANK && f[1].dtype != LSL_LOWRANK &&
               matrix_ok(&f[0], m->kpad, cols) && matrix_ok(&f[1], rows, m->kpad);
    }
    if (m->dtype == LSL_F32) return m->act == LSL_ACT_FLOAT && m->kpad == cols;
    if ((m->dtype != LSL_I8 && m->dtype != LSL_I8_SPARSE) || !m->scale) return 0;
    if (m->act != LSL_ACT_FLOAT && m->act != LSL_ACT_DYN8 &&
        !((m->act == LSL_ACT_DYN16 || m->act == LSL_ACT_DYN7) && m->dtype == LSL_I8))
        return 0;
    if (m->act == LSL_ACT_DYN7 && !(m->reserved & LSL_MATRIX_W7)) return 0;
    return m->wsum != NULL && m->kpad == (cols + 3) / 4 * 4;
}

/* y rows (n each, stride ldy) = b1 + b2 (either may be NULL: zeros). */
static void fill_bias(int32_t rows, int32_t n, const float *b1, const float *b2, float *y, int32_t ldy) {
    int32_t i, j;
    for (j = 0; j < n; ++j) y[j] = (b1 ? b1[j] : 0.0f) + (b2 ? b2[j] : 0.0f);
    for (i = 1; i < rows; ++i) memcpy(y + (size_t)i * (size_t)ldy, y, (size_t)n * sizeof(float));
}

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

/* ---- checks and sizes ---------------------------------------------------------------- */

int32_t lsl_model_input_size(const lsl_model *model) {
    if (!model) return 0;
    if (model->embedding.num > 0) return model->embedding.dim;
    return model->num_layers > 0 && model->layers ? model->layers[0].input_size : 0;
}

int32_t lsl_model_feature_size(const lsl_model *model) {
    if (!model || model->num_layers <= 0 || !model->layers) return 0;
    return feat_of(&model->layers[model->num_layers - 1]);
}

int lsl_model_check(const lsl_model *model) {
    int32_t k, d, in;
    if (!model || !model->layers) return LSL_ERR_ARG;
    if (model->num_layers < 1 || model->num_layers > MAX_LAYERS) return LSL_ERR_SHAPE;
    if (model->embedding.num < 0) return LSL_ERR_SHAPE;
    if (model->embedding.num > 0) {
        const lsl_embedding *e = &model->embedding;
        if (e->dim <= 0 || !e->table) return LSL_ERR_ARG;
        if (e->dtype != LSL_F32 && !(e->dtype == LSL_I8 && e->scale)) return LSL_ERR_ARG;
        if (e->dim != model->layers[0].input_size) return LSL_ERR_SHAPE;
    }
    in = model->layers[0].input_size;
    for (k = 0; k < model->num_layers; ++k) {
        const lsl_layer *l = &model->layers[k];
        int32_t g, h = l->hidden_size, p = l->proj_size;
        if (l->cell != LSL_LSTM && l->cell != LSL_GRU && l->cell != LSL_FASTGRNN) return LSL_ERR_ARG;
        if (l->cell == LSL_FASTGRNN) {
            const float zeta = l->dir[0].zeta, nu = l->dir[0].nu;
            if (l->num_directions != 1 || p != 0 || !l->dir[0].b_ih || !l->dir[0].b_hh) return LSL_ERR_ARG;
            if ((l->gate_fn != LSL_FN_SIGMOID && l->gate_fn != LSL_FN_TANH) ||
                (l->update_fn != LSL_FN_SIGMOID && l->update_fn != LSL_FN_TANH))
                return LSL_ERR_ARG;
            if (!(zeta == zeta) || !(nu == nu) || fabsf(zeta) > 3.0e38f || fabsf(nu) > 3.0e38f) return LSL_ERR_ARG;
        }
        if (l->num_directions != 1 && l->num_directions != 2) return LSL_ERR_ARG;
        if (h <= 0 || l->input_size <= 0 || p < 0 || (p > 0 && (p >= h || l->cell != LSL_LSTM)))
            return LSL_ERR_SHAPE;
        if (l->input_size != in) return LSL_ERR_SHAPE;
        if ((int64_t)h * 4 > ((int64_t)1 << 24)) return LSL_ERR_SHAPE;
        g = gates_of(l->cell);
        for (d = 0; d < l->num_directions; ++d) {
            const lsl_direction *dr = &l->dir[d];
            if (!matrix_ok(&dr->w_ih, g * h, l->input_size)) return LSL_ERR_SHAPE;
            if (!matrix_ok(&dr->w_hh, g * h, out_of(l))) return LSL_ERR_SHAPE;
            if (p > 0 && !matrix_ok(&dr->w_hr, p, h)) return LSL_ERR_SHAPE;
            if ((dr->b_ih == NULL) != (dr->b_hh == NULL)) return LSL_ERR_ARG;
        }
        in = feat_of(l);
    }
    if (model->head_mode != LSL_HEAD_NONE && model->head_mode != LSL_HEAD_LAST && model->head_mode != LSL_HEAD_EACH)
        return LSL_ERR_ARG;
    if (model->head_mode != LSL_HEAD_NONE && !matrix_ok(&model->head, model->head.rows, in)) return LSL_ERR_SHAPE;
    if (model->head_mode != LSL_HEAD_NONE && model->head.rows <= 0) return LSL_ERR_SHAPE;
    if (model->pooling < LSL_POOL_LAST || model->pooling > LSL_POOL_MAX) return LSL_ERR_ARG;
    return LSL_OK;
}

size_t lsl_model_state_floats(const lsl_model *model, int32_t batch) {
    size_t n = 0;
    int32_t k;
    if (lsl_model_check(model) != LSL_OK || batch <= 0) return 0;
    for (k = 0; k < model->num_layers; ++k) {
        const lsl_layer *l = &model->layers[k];
        n += (size_t)l->num_directions * (size_t)batch *
             (size_t)(out_of(l) + (l->cell == LSL_LSTM ? l->hidden_size : 0));
    }
    return n;
}

size_t lsl_model_run_out_floats(const lsl_model *model, int32_t t) {
    if (lsl_model_check(model) != LSL_OK || t <= 0) return 0;
    switch (model->head_mode) {
    case LSL_HEAD_NONE: return (size_t)t * (size_t)lsl_model_feature_size(model);
    case LSL_HEAD_LAST: return (size_t)model->head.rows;
    default: return (size_t)t * (size_t)model->head.rows;
    }
}

size_t lsl_model_step_out_floats(const lsl_model *model) {
    if (lsl_model_check(model) != LSL_OK) return 0;
    return model->head_mode == LSL_HEAD_NONE ? (size_t)lsl_model_feature_size(model) : (size_t)model->head.rows;
}

/* Largest per-layer quantities, for sizing buffers. */
typedef struct dims {
    size_t feat_max;   /* max layer output features D*(P or H), and the model input */
    size_t gates_max;  /* max G*H */
    size_t hidden_max; /* max H */
} dims;

static dims model_dims(const lsl_model *model) {
    dims d = {0, 0, 0};
    int32_t k;
    d.feat_max = (size_t)lsl_model_input_size(model);
    for (k = 0; k < model->num_layers; ++k) {
        const lsl_layer *l = &model->layers[k];
        d.feat_max = max_sz(d.feat_max, (size_t)feat_of(l));
        d.gates_max = max_sz(d.gates_max, (size_t)gates_of(l->cell) * (size_t)l->hidden_size);
        d.hidden_max = max_sz(d.hidden_max, (size_t)l->hidden_size);
    }
    return d;
}

/* Scratch the matmuls need, rows_in for W_ih and the head, rows_rec for the rest. */
static size_t matmul_scratch(const lsl_model *model, int32_t rows_in, int32_t rows_rec, int32_t rows_head) {
    size_t s = 0;
    int32_t k, d;
    for (k = 0; k < model->num_layers; ++k) {
        const lsl_layer *l = &model->layers[k];
        for (d = 0; d < l->num_directions; ++d) {
            s = max_sz(s, lsl_matmul_bytes(&l->dir[d].w_ih, rows_in));
            s = max_sz(s, lsl_matmul_bytes(&l->dir[d].w_hh, rows_rec));
            if (l->proj_size > 0) s = max_sz(s, lsl_matmul_bytes(&l->dir[d].w_hr, rows_rec));
        }
    }
    if (model->head_mode != LSL_HEAD_NONE) s = max_sz(s, lsl_matmul_bytes(&model->head, rows_head));
    return s;
}

/* ---- whole sequences ------------------------------------------------------------------ */

/* Steps whose input projections are computed together: all of them when they fit in
 * about 256 KB (they stay in L2 for the recurrence that reads them), else fewer, but
 * at least 8 activation rows per matmul where T allows. */
static int32_t chunk_steps(int32_t batch, int32_t t, int32_t gh) {
    int64_t fit = ((int64_t)1 << 16) / ((int64_t)batch * gh);
    int64_t c = fit < 1 ? 1 : fit;
    if (c * batch < 8) c = (8 + batch - 1) / batch;
    return (int32_t)(c < t ? c : t);
}

typedef struct run_bufs {
    float *xin, *buf_a, *buf_b, *gates, *rec, *tmp, *state0, *pooled, *bias;
    void *mm;
} run_bufs;

static size_t run_layout(const lsl_model *model, int32_t batch, int32_t t, char *base, size_t cap, run_bufs *b) {
    lsl_arena a;
    dims d = model_dims(model);
    size_t rows = (size_t)batch * (size_t)t;
    run_bufs dummy;
    size_t chunk_floats = 0;
    int32_t chunk_rows = 0, k;
    for (k = 0; k < model->num_layers; ++k) { /* the largest chunk of any layer */
        int32_t gh = gates_of(model->layers[k].cell) * model->layers[k].hidden_size;
        int32_t r = chunk_steps(batch, t, gh) * batch;
        chunk_floats = max_sz(chunk_floats, (size_t)r * (size_t)gh);
        chunk_rows = r > chunk_rows ? r : chunk_rows;
    }
    if (!b) b = &dummy;
    a.base = base;
    a.used = 0;
    a.cap = cap;
    b->xin = (float *)lsl_take(&a, lsl_fl(rows * (size_t)lsl_model_input_size(model)));
    b->buf_a = (float *)lsl_take(&a, lsl_fl(rows * d.feat_max));
    b->buf_b = (float *)lsl_take(&a, lsl_fl(rows * d.feat_max));
    b->gates = (float *)lsl_take(&a, lsl_fl(chunk_floats));
    b->rec = (float *)lsl_take(&a, lsl_fl((size_t)batch * d.gates_max));
    b->tmp = (float *)lsl_take(&a, lsl_fl((size_t)batch * max_sz(d.hidden_max, d.feat_max)));
    b->state0 = (float *)lsl_take(&a, lsl_fl(lsl_model_state_floats(model, batch)));
    b->pooled = (float *)lsl_take(&a, lsl_fl((size_t)batch * d.feat_max));
    b->bias = (float *)lsl_take(&a, lsl_fl((size_t)d.gates_max)); /* a direction's input-projection bias */
    b->mm = lsl_take(&a, max_sz(matmul_scratch(model, chunk_rows, batch,
                                           model->head_mode == LSL_HEAD_EACH ? t : batch), LSL_ALIGN));
    return a.used;
}

static int sizes_ok(int32_t batch, int32_t t) {
    return batch > 0 && t > 0 && (int64_t)batch * (int64_t)t <= ((int64_t)1 << 28);
}

size_t lsl_model_run_bytes(const lsl_model *model, int32_t batch, int32_t t) {
    if (lsl_model_check(model) != LSL_OK || !sizes_ok(batch, t)) return 0;
    return run_layout(model, batch, t, NULL, (size_t)-1, NULL);
}

/* Embedding lookup into time-major rows (t*B + b). */
static int embed(const lsl_embedding *e, int32_t batch, int32_t t, const int32_t *tokens, float *xin) {
    int32_t b, s, j;
    for (b = 0; b < batch; ++b)
        for (s = 0; s < t; ++s) {
            int32_t id = tokens[(size_t)b * (size_t)t + (size_t)s];
            float *dst = xin + ((size_t)s * (size_t)batch + (size_t)b) * (size_t)e->dim;
            if (id < 0 || id >= e->num) return LSL_ERR_TOKEN;
            if (e->dtype == LSL_F32) {
                memcpy(dst, (const float *)e->table + (size_t)id * (size_t)e->dim, (size_t)e->dim * sizeof(float));
            } else {
                const int8_t *row = (const int8_t *)e->table + (size_t)id * (size_t)e->dim;
                for (j = 0; j < e->dim; ++j) dst[j] = (float)row[j] * e->scale[id];
            }
        }
    return LSL_OK;
}

/* One stream of a plain int8 LSTM (dense or sparse w_hh): the kernel table's fused
 * step (matrix-vector product and cell update per block of 16 units) where it has
 * one, else NULL (the caller runs the matmul and lstm_pointwise). */
static lsl_lstm_step1_fn fused_step(const lsl_kernels *kern, const lsl_layer *l, const lsl_direction *dr,
                                    int32_t batch) {
    if (batch != 1 || l->cell != LSL_LSTM || l->proj_size != 0 || l->hidden_size % LSL_PANEL != 0) return NULL;
    if (dr->w_hh.act == LSL_ACT_DYN16) return NULL; /* packed so through the C API: the fused steps take 8 bits */
    lsl_lstm_step1_fn step = NULL;
    if (dr->w_hh.dtype == LSL_I8) step = kern->lstm_step1;
    if (dr->w_hh.dtype == LSL_I8_SPARSE) step = kern->lstm_step1_sparse;
    return step && kern->step1_takes && !kern->step1_takes(&dr->w_hh) ? NULL : step;
}

/* One direction of one layer over the whole sequence.
 * in: (T*B, I) time-major; out: column block d*O of the outputs, step s of row b at
 * out + s * sstride + b * ldo (time-major (T*B, D*O): sstride = B * ldo; the caller's
 * batch-first (B, T, D*O): ldo = T * D*O, sstride = D*O); h, c: this direction's state
 * (B, O) and (B, H). */
static void run_direction(const lsl_kernels *kern, const lsl_layer *l, int32_t d, int32_t batch, int32_t t,
                          const int32_t *lengths, const float *in, float *out, int32_t ldo, size_t sstride, float *h,
                          float *c, const run_bufs *bf) {
    const lsl_direction *dr = &l->dir[d];
    const int32_t H = l->hidden_size, O = out_of(l), GH = gates_of(l->cell) * H;
    const int32_t chunk = chunk_steps(batch, t, GH);
    int32_t s, b, first = 0;
    float *G = bf->gates;
    const lsl_lstm_step1_fn fused = fused_step(kern, l, dr, batch);

    for (s = 0; s < t; ++s) {
        const int32_t step = d == 0 ? s : t - 1 - s;
        float *g;
        if (s % chunk == 0) {
            /* Input projections of the next `chunk` steps (in time order) as one
             * matmul: G (n*B, G*H) = bias + X @ W_ih^T. */
            int32_t n = t - s < chunk ? t - s : chunk, rows = n * batch;
            first = d == 0 ? s : t - s - n;
            if (s == 0) {
                if (l->cell == LSL_LSTM)
                    fill_bias(1, GH, dr->b_ih, dr->b_hh, bf->bias, GH);
                else if (l->cell == LSL_GRU)
                    fill_bias(1, GH, dr->b_ih, NULL, bf->bias, GH);
                else /* FastGRNN: W x is shared by two branches with their own biases */
                    fill_bias(1, GH, NULL, NULL, bf->bias, GH);
            }
            lsl_matmul_bias_unchecked(kern, &dr->w_ih, rows, in + (size_t)first * (size_t)batch * (size_t)l->input_size,
                                      l->input_size, bf->bias, G, GH, bf->mm, 0);
        }
        g = G + (size_t)(step - first) * (size_t)batch * (size_t)GH;
        float *o = out + (size_t)step * sstride + (size_t)d * (size_t)O;
        if (fused) {
            if (!(lengths && step >= lengths[0])) fused(&dr->w_hh, H, g, c, h, bf->mm, s & 1);
        } else if (l->cell == LSL_LSTM) {
            lsl_matmul_unchecked(kern, &dr->w_hh, batch, h, O, g, GH, bf->mm, s & 1);
            for (b = 0; b < batch; ++b) {
                float *hraw = l->proj_size > 0 ? bf->tmp + (size_t)b * (size_t)H : h + (size_t)b * (size_t)O;
                if (lengths && step >= lengths[b]) continue;
                kern->lstm_pointwise(H, g + (size_t)b * (size_t)GH, c + (size_t)b * (size_t)H, hraw);
            }
            if (l->proj_size > 0) {
                /* h = W_hr h_raw, written only for rows still running. */
                float *proj = bf->rec;
                memset(proj, 0, (size_t)batch * (size_t)O * sizeof(float));
                lsl_matmul_unchecked(kern, &dr->w_hr, batch, bf->tmp, H, proj, O, bf->mm, 0);
                for (b = 0; b < batch; ++b)
                    if (!(lengths && step >= lengths[b]))
                        memcpy(h + (size_t)b * (size_t)O, proj + (size_t)b * (size_t)O, (size_t)O * sizeof(float));
            }
        } else if (l->cell == LSL_FASTGRNN) {
            lsl_matmul_unchecked(kern, &dr->w_hh, batch, h, O, g, GH, bf->mm, s & 1); /* pre = W x + U h */
            for (b = 0; b < batch; ++b)
                if (!(lengths && step >= lengths[b]))
                    fastgrnn_pointwise(l, dr, g + (size_t)b * (size_t)GH, h + (size_t)b * (size_t)H);
        } else {
            float *gh = bf->rec;
            fill_bias(batch, GH, dr->b_hh, NULL, gh, GH);
            lsl_matmul_unchecked(kern, &dr->w_hh, batch, h, O, gh, GH, bf->mm, s & 1);
            for (b = 0; b < batch; ++b) {
                if (lengths && step >= lengths[b]) continue;
                kern->gru_pointwise(H, g + (size_t)b * (size_t)GH, gh + (size_t)b * (size_t)GH,
                                    h + (size_t)b * (size_t)H);
            }
        }
        for (b = 0; b < batch; ++b) {
            if (lengths && step >= lengths[b])
                memset(o + (size_t)b * (size_t)ldo, 0, (size_t)O * sizeof(float));
            else
                memcpy(o + (size_t)b * (size_t)ldo, h + (size_t)b * (size_t)O, (size_t)O * sizeof(float));
        }
    }
}

/* Pooled features of the top layer's output (T*B, F) for a HEAD_LAST model. */
static void pool(const lsl_model *model, int32_t batch, int32_t t, const int32_t *lengths, const float *top,
                 float *pooled) {
    const lsl_layer *l = &model->layers[model->num_layers - 1];
    const int32_t F = feat_of(l), O = out_of(l);
    int32_t b, s, j;
    for (b = 0; b < batch; ++b) {
        int32_t len = lengths ? lengths[b] : t;
        float *dst = pooled + (size_t)b * (size_t)F;
        if (model->pooling == LSL_POOL_LAST) {
            memcpy(dst, top + ((size_t)(len - 1) * (size_t)batch + (size_t)b) * (size_t)F, (size_t)O * sizeof(float));
            if (l->num_directions == 2) memcpy(dst + O, top + (size_t)b * (size_t)F + O, (size_t)O * sizeof(float));
        } else {
            for (j = 0; j < F; ++j) dst[j] = top[(size_t)b * (size_t)F + (size_t)j];
            for (s = 1; s < len; ++s) {
                const float *row = top + ((size_t)s * (size_t)batch + (size_t)b) * (size_t)F;
                if (model->pooling == LSL_POOL_MEAN)
                    for (j = 0; j < F; ++j) dst[j] += row[j];
                else
                    for (j = 0; j < F; ++j) dst[j] = row[j] > dst[j] ? row[j] : dst[j];
            }
            if (model->pooling == LSL_POOL_MEAN)
                for (j = 0; j < F; ++j) dst[j] /= (float)len;
        }
    }
}

/* Pointer to layer k, direction d's h and c inside a state buffer of `batch` streams. */
static void state_ptrs(const lsl_model *model, float *state, int32_t batch, int32_t k, int32_t d, float **h,
                       float **c) {
    size_t off = 0;
    int32_t i;
    for (i = 0; i < k; ++i) {
        const lsl_layer *l = &model->layers[i];
        off += (size_t)l->num_directions * (size_t)batch *
               (size_t)(out_of(l) + (l->cell == LSL_LSTM ? l->hidden_size : 0));
    }
    {
        const lsl_layer *l = &model->layers[k];
        size_t per = (size_t)batch * (size_t)(out_of(l) + (l->cell == LSL_LSTM ? l->hidden_size : 0));
        off += per * (size_t)d;
        *h = state + off;
        *c = l->cell == LSL_LSTM ? state + off + (size_t)batch * (size_t)out_of(l) : NULL;
    }
}

int lsl_model_run(const lsl_model *model, int32_t batch, int32_t t, const float *x, const int32_t *tokens,
                  const int32_t *lengths, float *out, float *state, void *work, size_t work_bytes) {
    const lsl_kernels *kern = lsl_kernels_active();
    run_bufs bf;
    const float *in;
    float *top = NULL;
    int32_t k, d, b, s, I, F;
    int rc = lsl_model_check(model);
    if (rc != LSL_OK) return rc;
    if (!out || !work) return LSL_ERR_ARG;
    if (!sizes_ok(batch, t)) return LSL_ERR_SHAPE;
    if ((model->embedding.num > 0) ? !tokens : !x) return LSL_ERR_ARG;
    if (((uintptr_t)work) % LSL_ALIGN) return LSL_ERR_ARG;
    if (work_bytes < lsl_model_run_bytes(model, batch, t)) return LSL_ERR_BUFFER;
    if (lengths)
        for (b = 0; b < batch; ++b)
            if (lengths[b] < 1 || lengths[b] > t) return LSL_ERR_SHAPE;
    run_layout(model, batch, t, (char *)work, work_bytes, &bf);

    I = lsl_model_input_size(model);
    if (model->embedding.num > 0) {
        rc = embed(&model->embedding, batch, t, tokens, bf.xin);
        if (rc != LSL_OK) return rc;
    } else {
        for (b = 0; b < batch; ++b) /* batch-first -> time-major */
            for (s = 0; s < t; ++s)
                memcpy(bf.xin + ((size_t)s * (size_t)batch + (size_t)b) * (size_t)I,
                       x + ((size_t)b * (size_t)t + (size_t)s) * (size_t)I, (size_t)I * sizeof(float));
    }
    if (!state) {
        state = bf.state0;
        memset(state, 0, lsl_model_state_floats(model, batch) * sizeof(float));
    }

    in = bf.xin;
    F = lsl_model_feature_size(model);
    for (k = 0; k < model->num_layers; ++k) {
        const lsl_layer *l = &model->layers[k];
        /* Without a head the top layer writes the caller's batch-first (B, T, F) rows
         * itself (no time-major copy to transpose afterwards); every other layer writes
         * time-major rows for the next one, or for the head. */
        const int direct = k == model->num_layers - 1 && model->head_mode == LSL_HEAD_NONE &&
                           (int64_t)t * F <= INT32_MAX; /* its row stride is an int32 */
        float *dst = direct ? out : ((k % 2 == 0) ? bf.buf_a : bf.buf_b);
        const int32_t ldo = direct ? t * F : feat_of(l);
        const size_t sstride = direct ? (size_t)F : (size_t)batch * (size_t)feat_of(l);
        for (d = 0; d < l->num_directions; ++d) {
            float *h, *c;
            state_ptrs(model, state, batch, k, d, &h, &c);
            run_direction(kern, l, d, batch, t, lengths, in, dst, ldo, sstride, h, c, &bf);
        }
        in = dst;
        top = dst;
    }

    if (model->head_mode == LSL_HEAD_NONE) {
        if (top != out) /* rows too long for the top layer's int32 stride: transpose here */
            for (b = 0; b < batch; ++b)
                for (s = 0; s < t; ++s)
                    memcpy(out + ((size_t)b * (size_t)t + (size_t)s) * (size_t)F,
                           top + ((size_t)s * (size_t)batch + (size_t)b) * (size_t)F, (size_t)F * sizeof(float));
    } else if (model->head_mode == LSL_HEAD_LAST) {
        const int32_t n = model->head.rows;
        pool(model, batch, t, lengths, top, bf.pooled);
        fill_bias(batch, n, model->head_bias, NULL, out, n);
        lsl_matmul_unchecked(kern, &model->head, batch, bf.pooled, F, out, n, bf.mm, 0);
    } else {
        const int32_t n = model->head.rows;
        for (b = 0; b < batch; ++b) { /* rows of sequence b are strided by B in `top` */
            float *ob = out + (size_t)b * (size_t)t * (size_t)n;
            fill_bias(t, n, model->head_bias, NULL, ob, n);
            lsl_matmul_unchecked(kern, &model->head, t, top + (size_t)b * (size_t)F, batch * F, ob, n, bf.mm, 0);
        }
    }
    return LSL_OK;
}

/* ---- streaming ------------------------------------------------------------------------ */

typedef struct step_bufs {
    unsigned char *hint; /* kept across calls: which panel order the last step used */
    float *xin, *gates, *rec, *tmp;
    void *mm;
} step_bufs;

static size_t step_layout(const lsl_model *model, int32_t batch, char *base, size_t cap, step_bufs *b) {
    lsl_arena a;
    dims d = model_dims(model);
    step_bufs dummy;
    if (!b) b = &dummy;
    a.base = base;
    a.used = 0;
    a.cap = cap;
    b->hint = (unsigned char *)lsl_take(&a, LSL_ALIGN);
    b->xin = (float *)lsl_take(&a, lsl_fl((size_t)batch * (size_t)lsl_model_input_size(model)));
    b->gates = (float *)lsl_take(&a, lsl_fl((size_t)batch * d.gates_max));
    b->rec = (float *)lsl_take(&a, lsl_fl((size_t)batch * d.gates_max));
    b->tmp = (float *)lsl_take(&a, lsl_fl((size_t)batch * d.hidden_max));
    b->mm = lsl_take(&a, max_sz(matmul_scratch(model, batch, batch, batch), LSL_ALIGN));
    return a.used;
}

static int step_supported(const lsl_model *model) {
    int32_t k;
    for (k = 0; k < model->num_layers; ++k)
        if (model->layers[k].num_directions != 1) return 0;
    if (model->head_mode == LSL_HEAD_LAST && model->pooling != LSL_POOL_LAST) return 0;
    return 1;
}

size_t lsl_model_step_bytes(const lsl_model *model, int32_t batch) {
    if (lsl_model_check(model) != LSL_OK || batch <= 0 || batch > (1 << 24)) return 0;
    return step_layout(model, batch, NULL, (size_t)-1, NULL);
}

int lsl_model_step(const lsl_model *model, int32_t batch, const float *x, const int32_t *tokens, float *state,
                   float *out, void *work, size_t work_bytes) {
    const lsl_kernels *kern = lsl_kernels_active();
    step_bufs bf;
    const float *in;
    int32_t k, b, I;
    int rev;
    int rc = lsl_model_check(model);
    if (rc != LSL_OK) return rc;
    if (!step_supported(model)) return LSL_ERR_UNSUPPORTED;
    if (!state || !out || !work) return LSL_ERR_ARG;
    if (batch <= 0 || batch > (1 << 24)) return LSL_ERR_SHAPE;
    if ((model->embedding.num > 0) ? !tokens : !x) return LSL_ERR_ARG;
    if (((uintptr_t)work) % LSL_ALIGN) return LSL_ERR_ARG;
    if (work_bytes < lsl_model_step_bytes(model, batch)) return LSL_ERR_BUFFER;
    step_layout(model, batch, (char *)work, work_bytes, &bf);
    /* Alternate the panel order from call to call (see lsl_internal.h). Whatever the
     * byte holds is valid: it only steers cache reuse. */
    rev = bf.hint[0] & 1;
    bf.hint[0] = (unsigned char)(rev ^ 1);

    I = lsl_model_input_size(model);
    if (model->embedding.num > 0) {
        rc = embed(&model->embedding, batch, 1, tokens, bf.xin);
        if (rc != LSL_OK) return rc;
        in = bf.xin;
    } else {
        in = x;
    }
    for (k = 0; k < model->num_layers; ++k) {
        const lsl_layer *l = &model->layers[k];
        const lsl_direction *dr = &l->dir[0];
        const int32_t H = l->hidden_size, O = out_of(l), GH = gates_of(l->cell) * H;
        const lsl_lstm_step1_fn fused = fused_step(kern, l, dr, batch);
        float *h, *c;
        state_ptrs(model, state, batch, k, 0, &h, &c);
        if (l->cell == LSL_LSTM) {
            fill_bias(batch, GH, dr->b_ih, dr->b_hh, bf.gates, GH);
            lsl_matmul_unchecked(kern, &dr->w_ih, batch, in, I, bf.gates, GH, bf.mm, rev);
            if (fused) {
                fused(&dr->w_hh, H, bf.gates, c, h, bf.mm, rev);
                in = h;
                I = O;
                continue;
            }
            lsl_matmul_unchecked(kern, &dr->w_hh, batch, h, O, bf.gates, GH, bf.mm, rev);
            for (b = 0; b < batch; ++b) {
                float *hraw = l->proj_size > 0 ? bf.tmp + (size_t)b * (size_t)H : h + (size_t)b * (size_t)O;
                kern->lstm_pointwise(H, bf.gates + (size_t)b * (size_t)GH, c + (size_t)b * (size_t)H, hraw);
            }
            if (l->proj_size > 0) {
                memset(h, 0, (size_t)batch * (size_t)O * sizeof(float));
                lsl_matmul_unchecked(kern, &dr->w_hr, batch, bf.tmp, H, h, O, bf.mm, 0);
            }
        } else if (l->cell == LSL_FASTGRNN) {
            fill_bias(batch, GH, NULL, NULL, bf.gates, GH);
            lsl_matmul_unchecked(kern, &dr->w_ih, batch, in, I, bf.gates, GH, bf.mm, rev);
            lsl_matmul_unchecked(kern, &dr->w_hh, batch, h, O, bf.gates, GH, bf.mm, rev);
            for (b = 0; b < batch; ++b)
                fastgrnn_pointwise(l, dr, bf.gates + (size_t)b * (size_t)GH, h + (size_t)b * (size_t)H);
        } else {
            fill_bias(batch, GH, dr->b_ih, NULL, bf.gates, GH);
            lsl_matmul_unchecked(kern, &dr->w_ih, batch, in, I, bf.gates, GH, bf.mm, rev);
            fill_bias(batch, GH, dr->b_hh, NULL, bf.rec, GH);
            lsl_matmul_unchecked(kern, &dr->w_hh, batch, h, O, bf.rec, GH, bf.mm, rev);
            for (b = 0; b < batch; ++b)
                kern->gru_pointwise(H, bf.gates + (size_t)b * (size_t)GH, bf.rec + (size_t)b * (size_t)GH,
                                    h + (size_t)b * (size_t)H);
        }
        in = h; /* the next layer reads this layer's new h (batch, O) */
        I = O;
    }
    if (model->head_mode == LSL_HEAD_NONE) {
        memcpy(out, in, (size_t)batch * (size_t)I * sizeof(float));
    } else {
        fill_bias(batch, model->head.rows, model->head_bias, NULL, out, model->head.rows);
        lsl_matmul_unchecked(kern, &model->head, batch, in, I, out, model->head.rows, bf.mm, 0);
    }
    return LSL_OK;
}
