/*
 * fuzz_step.c -- libFuzzer target for the step functions: a small valid model built
 * here from the fuzzer's bytes, stepped on fuzzer-chosen inputs and state, extreme
 * values included (float: 0, +-FLT_MAX, +-inf, NaN, subnormals; integer: the ends of
 * every type). The first byte picks the engine:
 *
 *   0  float runtime (lsl_model_step, then lsl_model_run on the same inputs): LSTM /
 *      GRU / FastGRNN, 1-2 layers, fp32 / int8 (float or dynamic 8-bit activations) /
 *      (1, 4)-block sparse int8 / low-rank matrices, optional projection, embedding and
 *      head, on an instruction-set table the fuzzer picks among those this CPU runs
 *   1  integer-only LSTM / GRU (lsl_int_step, lsl_int_run), int8 weights, int16 state,
 *      any int32 biases, requantization multipliers and shifts, plus lsl_int_dense
 *   2  TFLite-compatible integer LSTM (lsl_tflite_step / _run), int8 and 16x8, both
 *      kernels, any multipliers and shifts the check admits
 *
 * Every call must return a documented code (and LSL_OK where the inputs are valid):
 * crashes, sanitizer reports (ASan, UBSan: overflow, shifts, float-to-int casts) and
 * hangs are bugs. Out-of-range parameters are used too: they must be refused.
 */
#define _POSIX_C_SOURCE 200112L /* posix_memalign */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lsl.h"
#include "lsl_tflite.h"

#define MAXD 9 /* sizes 1..MAXD: small models, many executions */

/* ---- reading the fuzzer's bytes (zeros once they run out) ----------------------------- */
typedef struct {
    const uint8_t *p;
    size_t n, i;
} bytes_t;

static uint32_t u8(bytes_t *b) { return b->i < b->n ? b->p[b->i++] : 0; }
static uint32_t u16(bytes_t *b) { return u8(b) | (u8(b) << 8); }
static uint32_t u32(bytes_t *b) { return u16(b) | (u16(b) << 16); }
static int32_t range(bytes_t *b, int32_t lo, int32_t hi) { return lo + (int32_t)(u8(b) % (uint32_t)(hi - lo + 1)); }

/* A float: mostly ordinary values, with every extreme reachable by one byte. */
static float f32(bytes_t *b) {
    const uint32_t k = u8(b);
    switch (k) {
    case 0: return 0.0f;
    case 1: return -0.0f;
    case 2: return FLT_MAX;
    case 3: return -FLT_MAX;
    case 4: return INFINITY;
    case 5: return -INFINITY;
    case 6: return NAN;
    case 7: return FLT_MIN / 8.0f; /* subnormal */
    case 8: return 1.0e30f;
    case 9: return -1.0e30f;
    case 10: { /* any bit pattern */
        uint32_t bits = u32(b);
        float f;
        memcpy(&f, &bits, 4);
        return f;
    }
    default: return ((float)k - 128.0f) / 16.0f;
    }
}

/* An int32 with the extremes one byte away. */
static int32_t i32(bytes_t *b) {
    const uint32_t k = u8(b);
    switch (k) {
    case 0: return INT32_MAX;
    case 1: return INT32_MIN;
    case 2: return 0;
    case 3: return (int32_t)u32(b);
    default: return (int32_t)k * (int32_t)(u8(b) | 1) * ((k & 1) ? -1 : 1);
    }
}

static int16_t i16(bytes_t *b) {
    const uint32_t k = u8(b);
    if (k == 0) return INT16_MAX;
    if (k == 1) return INT16_MIN;
    if (k == 2) return (int16_t)u16(b);
    return (int16_t)(((int32_t)k - 128) * 64);
}

static int8_t i8(bytes_t *b) { return (int8_t)u8(b); }

static void *amalloc(size_t n) {
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? n : 64) != 0) return NULL;
    return p;
}

/* ---- a tiny arena so that every buffer of one input is freed at once ----------------- */
#define MAX_ALLOCS 256
typedef struct {
    void *p[MAX_ALLOCS];
    int n;
} pool_t;

static void *take(pool_t *pl, size_t n) {
    void *p;
    if (pl->n >= MAX_ALLOCS) abort(); /* the harness's own limit: a bug here, not in the runtime */
    p = amalloc(n);
    if (!p) abort();
    memset(p, 0, n ? n : 64);
    pl->p[pl->n++] = p;
    return p;
}

static void release(pool_t *pl) {
    int i;
    for (i = 0; i < pl->n; ++i) free(pl->p[i]);
    pl->n = 0;
}

/* ---- engine 0: the float runtime ------------------------------------------------------- */

/* Pack a (rows x cols) matrix in form `form`: 0 fp32, 1 int8, 2 block-sparse int8, 3 low
 * rank (fp32 or int8 factors). Returns 0 when the packer refused what it was given (that
 * is allowed: a non-finite scale, say), 1 when packed. */
static int make_matrix(bytes_t *b, pool_t *pl, lsl_matrix *m, int32_t rows, int32_t cols, int32_t form, int32_t act,
                       int depth) {
    const size_t n = (size_t)rows * (size_t)cols;
    size_t need;
    void *buf;
    int32_t r, j;
    if (form == 3 && depth == 0) {
        lsl_matrix *f = (lsl_matrix *)take(pl, 2 * sizeof(lsl_matrix));
        const int32_t rank = range(b, 1, 3), sub = (int32_t)(u8(b) % 2);
        if (!make_matrix(b, pl, &f[0], rank, cols, sub, act, 1)) return 0;
        if (!make_matrix(b, pl, &f[1], rows, rank, sub, act, 1)) return 0;
        if (lsl_matrix_lowrank(m, f) != LSL_OK) abort(); /* valid factors */
        return 1;
    }
    if (form == 0 || form == 3) {
        float *w = (float *)take(pl, n * sizeof(float));
        for (r = 0; r < (int32_t)n; ++r) w[r] = f32(b);
        need = lsl_matrix_packed_bytes(rows, cols, LSL_F32, LSL_ACT_FLOAT);
        if (need == 0) abort();
        buf = take(pl, need);
        if (lsl_matrix_pack(m, rows, cols, LSL_F32, LSL_ACT_FLOAT, w, NULL, buf, need) != LSL_OK) abort();
        return 1;
    }
    {
        float *scale = (float *)take(pl, (size_t)rows * sizeof(float));
        int8_t *q = (int8_t *)take(pl, n);
        int finite = 1, rc;
        for (r = 0; r < rows; ++r) {
            scale[r] = f32(b);
            if (!(fabsf(scale[r]) <= 3.0e38f)) finite = 0;
        }
        for (r = 0; r < (int32_t)n; ++r) {
            q[r] = i8(b);
            if (q[r] == -128) q[r] = -127; /* symmetric codes */
        }
        if (form == 1) {
            need = lsl_matrix_packed_bytes(rows, cols, LSL_I8, act);
            if (need == 0) abort();
            buf = take(pl, need);
            rc = lsl_matrix_pack(m, rows, cols, LSL_I8, act, q, scale, buf, need);
        } else {
            /* (1, 4) blocks of each row, kept when the fuzzer says so */
            const int32_t nb = (cols + 3) / 4;
            int32_t *rowptr = (int32_t *)take(pl, (size_t)(rows + 1) * sizeof(int32_t));
            uint16_t *bcol = (uint16_t *)take(pl, (size_t)rows * nb * sizeof(uint16_t) + 2);
            int8_t *vals = (int8_t *)take(pl, (size_t)rows * nb * 4 + 4);
            int32_t k = 0;
            for (r = 0; r < rows; ++r) {
                rowptr[r] = k;
                for (j = 0; j < nb; ++j) {
                    int32_t c;
                    if (!(u8(b) & 1)) continue;
                    bcol[k] = (uint16_t)j;
                    for (c = 0; c < 4; ++c) vals[4 * k + c] = 4 * j + c < cols ? q[(size_t)r * cols + 4 * j + c] : 0;
                    ++k;
                }
            }
            rowptr[rows] = k;
            need = lsl_matrix_sparse_bytes(rows, cols, act, rowptr, bcol, vals);
            if (need == 0) abort(); /* a valid pattern */
            buf = take(pl, need);
            rc = lsl_matrix_pack_sparse(m, rows, cols, act, rowptr, bcol, vals, scale, buf, need);
        }
        if (rc != LSL_OK && !(rc == LSL_ERR_ARG && !finite)) abort(); /* only a non-finite scale is refused */
        return rc == LSL_OK;
    }
}

static void float_engine(bytes_t *b) {
    pool_t pl = {{0}, 0};
    lsl_layer layers[2];
    lsl_model model;
    const int32_t nl = range(b, 1, 2), isa = range(b, 0, LSL_ISA_COUNT - 1);
    int32_t k, in, i, batch, steps, G, emb;
    size_t need, state_n, out_n;
    float *x, *state, *state2, *out;
    int32_t *tokens;
    void *work;
    int rc;
    memset(layers, 0, sizeof(layers));
    memset(&model, 0, sizeof(model));
    if (lsl_isa_supported(isa)) lsl_isa_set(isa); /* exercise every table this CPU has */
    else lsl_isa_set(LSL_ISA_AUTO);

    emb = (int32_t)(u8(b) % 3); /* 0 none, 1 fp32 table, 2 int8 table */
    in = range(b, 1, MAXD);
    for (k = 0; k < nl; ++k) {
        lsl_layer *l = &layers[k];
        const int32_t form = (int32_t)(u8(b) % 4), act = (int32_t)(u8(b) % 2);
        int32_t d, O;
        l->cell = range(b, LSL_LSTM, LSL_FASTGRNN);
        l->input_size = in;
        l->hidden_size = range(b, 1, MAXD);
        l->num_directions = (l->cell != LSL_FASTGRNN && (u8(b) & 1)) ? 2 : 1;
        l->proj_size = (l->cell == LSL_LSTM && l->hidden_size > 1 && (u8(b) & 1)) ? range(b, 1, l->hidden_size - 1) : 0;
        G = l->cell == LSL_LSTM ? 4 : (l->cell == LSL_GRU ? 3 : 1);
        O = l->proj_size ? l->proj_size : l->hidden_size;
        if (l->cell == LSL_FASTGRNN) {
            l->gate_fn = range(b, LSL_FN_SIGMOID, LSL_FN_TANH);
            l->update_fn = range(b, LSL_FN_SIGMOID, LSL_FN_TANH);
        }
        for (d = 0; d < l->num_directions; ++d) {
            lsl_direction *dr = &l->dir[d];
            if (!make_matrix(b, &pl, &dr->w_ih, G * l->hidden_size, in, form, act, 0)) goto done;
            if (!make_matrix(b, &pl, &dr->w_hh, G * l->hidden_size, O, form, act, 0)) goto done;
            if (l->proj_size && !make_matrix(b, &pl, &dr->w_hr, l->proj_size, l->hidden_size, form, act, 0)) goto done;
            if (l->cell == LSL_FASTGRNN || (u8(b) & 1)) {
                float *bi = (float *)take(&pl, (size_t)G * l->hidden_size * sizeof(float));
                float *bh = (float *)take(&pl, (size_t)G * l->hidden_size * sizeof(float));
                for (i = 0; i < G * l->hidden_size; ++i) {
                    bi[i] = f32(b);
                    bh[i] = f32(b);
                }
                dr->b_ih = bi;
                dr->b_hh = bh;
            }
            if (l->cell == LSL_FASTGRNN) {
                dr->zeta = f32(b);
                dr->nu = f32(b);
            }
        }
        in = l->num_directions * O;
    }
    model.num_layers = nl;
    model.layers = layers;
    if (emb) {
        const int32_t num = range(b, 1, 6), dim = layers[0].input_size;
        model.embedding.num = num;
        model.embedding.dim = dim;
        model.embedding.dtype = emb == 1 ? LSL_F32 : LSL_I8;
        if (emb == 1) {
            float *t = (float *)take(&pl, (size_t)num * dim * sizeof(float));
            for (i = 0; i < num * dim; ++i) t[i] = f32(b);
            model.embedding.table = t;
        } else {
            int8_t *t = (int8_t *)take(&pl, (size_t)num * dim);
            float *s = (float *)take(&pl, (size_t)num * sizeof(float));
            for (i = 0; i < num * dim; ++i) t[i] = i8(b);
            for (i = 0; i < num; ++i) s[i] = f32(b);
            model.embedding.table = t;
            model.embedding.scale = s;
        }
    }
    model.head_mode = (int32_t)(u8(b) % 3);
    model.pooling = LSL_POOL_LAST;
    if (model.head_mode != LSL_HEAD_NONE) {
        const int32_t nout = range(b, 1, 4);
        float *hb = (float *)take(&pl, (size_t)nout * sizeof(float));
        if (!make_matrix(b, &pl, &model.head, nout, in, (int32_t)(u8(b) % 4), (int32_t)(u8(b) % 2), 0)) goto done;
        for (i = 0; i < nout; ++i) hb[i] = f32(b);
        model.head_bias = (u8(b) & 1) ? hb : NULL;
        if (model.head_mode == LSL_HEAD_LAST) model.pooling = range(b, LSL_POOL_LAST, LSL_POOL_MAX);
    }
    /* a model whose FastGRNN zeta / nu are not finite is refused; everything else is valid */
    rc = lsl_model_check(&model);
    if (rc != LSL_OK) {
        for (k = 0; k < nl; ++k)
            if (layers[k].cell == LSL_FASTGRNN && !(fabsf(layers[k].dir[0].zeta) <= 3.0e38f &&
                                                    fabsf(layers[k].dir[0].nu) <= 3.0e38f))
                goto done;
        abort();
    }

    batch = range(b, 1, 3);
    steps = range(b, 1, 4);
    state_n = lsl_model_state_floats(&model, batch);
    if (state_n == 0) abort();
    state = (float *)take(&pl, state_n * sizeof(float));
    state2 = (float *)take(&pl, state_n * sizeof(float));
    for (i = 0; i < (int32_t)state_n; ++i) state2[i] = state[i] = f32(b);
    x = (float *)take(&pl, (size_t)batch * steps * layers[0].input_size * sizeof(float));
    tokens = (int32_t *)take(&pl, (size_t)batch * steps * sizeof(int32_t));
    for (i = 0; i < batch * steps * layers[0].input_size; ++i) x[i] = f32(b);
    for (i = 0; i < batch * steps; ++i) tokens[i] = emb ? (int32_t)(u8(b) % (uint32_t)model.embedding.num) : 0;

    /* streaming: step by step (unidirectional models; others are refused as unsupported) */
    need = lsl_model_step_bytes(&model, batch);
    out_n = lsl_model_step_out_floats(&model) * batch;
    if (need == 0 || out_n == 0) abort();
    work = take(&pl, need);
    out = (float *)take(&pl, out_n * sizeof(float));
    for (i = 0; i < steps; ++i) {
        float *xs = (float *)take(&pl, (size_t)batch * layers[0].input_size * sizeof(float));
        int32_t *ts = (int32_t *)take(&pl, (size_t)batch * sizeof(int32_t));
        int32_t s, j;
        for (s = 0; s < batch; ++s) { /* step i of each stream (x is batch-first) */
            memcpy(xs + (size_t)s * layers[0].input_size, x + ((size_t)s * steps + i) * layers[0].input_size,
                   (size_t)layers[0].input_size * sizeof(float));
            ts[s] = tokens[s * steps + i];
        }
        rc = lsl_model_step(&model, batch, emb ? NULL : xs, emb ? ts : NULL, state, out, work, need);
        if (rc == LSL_ERR_UNSUPPORTED) break;
        if (rc != LSL_OK) abort();
        for (j = 0; j < (int32_t)out_n; ++j) (void)out[j];
    }
    if (emb) { /* an id outside the vocabulary is refused before it is read */
        int32_t bad[3] = {model.embedding.num, -1, INT32_MAX};
        rc = lsl_model_step(&model, batch, NULL, bad, state, out, work, need);
        if (rc != LSL_ERR_TOKEN && rc != LSL_ERR_UNSUPPORTED) abort();
    }

    /* whole sequence on the same inputs, with lengths */
    {
        int32_t *lengths = (int32_t *)take(&pl, (size_t)batch * sizeof(int32_t));
        need = lsl_model_run_bytes(&model, batch, steps);
        out_n = lsl_model_run_out_floats(&model, steps) * batch;
        if (need == 0 || out_n == 0) abort();
        for (i = 0; i < batch; ++i) lengths[i] = range(b, 1, steps);
        work = take(&pl, need);
        out = (float *)take(&pl, out_n * sizeof(float));
        rc = lsl_model_run(&model, batch, steps, emb ? NULL : x, emb ? tokens : NULL, (u8(b) & 1) ? lengths : NULL,
                           out, (u8(b) & 1) ? state2 : NULL, work, need);
        if (rc != LSL_OK) abort();
        if (batch > 1) {
            need = lsl_model_run_parallel_bytes(&model, batch, steps, 2);
            work = take(&pl, need);
            rc = lsl_model_run_parallel(&model, 2, batch, steps, emb ? NULL : x, emb ? tokens : NULL, lengths, out,
                                        NULL, work, need);
            if (rc != LSL_OK) abort();
        }
    }
done:
    release(&pl);
}

/* ---- engine 1: the integer-only form --------------------------------------------------- */

static void int_engine(bytes_t *b) {
    pool_t pl = {{0}, 0};
    lsl_int_direction dirs[4];
    lsl_int_model m;
    int32_t k, d, r, in, batch, steps, G, I0;
    size_t need, state_n, n;
    int16_t *x, *state, *out;
    void *work;
    int rc, bad = 0;
    memset(dirs, 0, sizeof(dirs));
    m.cell = (u8(b) & 1) ? LSL_GRU : LSL_LSTM;
    m.num_layers = range(b, 1, 2);
    m.num_directions = range(b, 1, 2);
    m.layout = LSL_INT_ROWS;
    m.dirs = dirs;
    G = m.cell == LSL_LSTM ? 4 : 3;
    I0 = in = range(b, 1, MAXD);
    for (k = 0; k < m.num_layers; ++k) {
        int32_t width = 0;
        const int32_t H = range(b, 1, MAXD);
        for (d = 0; d < m.num_directions; ++d) {
            lsl_int_direction *dr = &dirs[k * m.num_directions + d];
            int8_t *wih, *whh;
            int32_t *v[6];
            int j;
            dr->input_size = in;
            dr->hidden_size = H;
            dr->cell_frac = (u8(b) & 7) == 0 ? range(b, -2, 20) : range(b, 5, 15); /* sometimes out of range */
            dr->input_bits = k == 0 ? ((u8(b) & 1) ? 16 : 8) : 16;
            if (k > 0 || d > 0) dr->input_bits = k == 0 ? dirs[0].input_bits : 16;
            wih = (int8_t *)take(&pl, (size_t)G * H * in);
            whh = (int8_t *)take(&pl, (size_t)G * H * H);
            for (r = 0; r < G * H * in; ++r) wih[r] = i8(b);
            for (r = 0; r < G * H * H; ++r) whh[r] = i8(b);
            dr->w_ih = wih;
            dr->w_hh = whh;
            for (j = 0; j < 6; ++j) v[j] = (int32_t *)take(&pl, (size_t)G * H * sizeof(int32_t));
            for (r = 0; r < G * H; ++r) {
                v[0][r] = i32(b);                                         /* b_ih */
                v[1][r] = i32(b);                                         /* b_hh */
                v[2][r] = (u8(b) & 15) == 0 ? i32(b) : (int32_t)(u32(b) & 0x7FFFFFFF); /* m_ih */
                v[3][r] = (u8(b) & 15) == 0 ? i32(b) : range(b, 0, 62); /* shift_ih */
                v[4][r] = (u8(b) & 15) == 0 ? i32(b) : (int32_t)(u32(b) & 0x7FFFFFFF);
                v[5][r] = (u8(b) & 15) == 0 ? i32(b) : range(b, 0, 62);
                if (v[2][r] < 0 || v[4][r] < 0 || v[3][r] < 0 || v[3][r] > 62 || v[5][r] < 0 || v[5][r] > 62) bad = 1;
            }
            dr->b_ih = v[0];
            dr->b_hh = v[1];
            dr->m_ih = v[2];
            dr->shift_ih = v[3];
            dr->m_hh = v[4];
            dr->shift_hh = v[5];
            if (m.cell == LSL_LSTM && (dr->cell_frac < 5 || dr->cell_frac > 15)) bad = 1;
            width += H;
        }
        in = width;
    }
    rc = lsl_int_model_check(&m);
    if (rc == LSL_OK && bad) abort(); /* an out-of-range field must be refused */
    if (rc != LSL_OK) {
        if (!bad && rc != LSL_ERR_OVERFLOW) abort(); /* only the accumulator bound may refuse the rest */
        goto done;
    }
    batch = range(b, 1, 3);
    steps = range(b, 1, 4);
    state_n = lsl_int_state_values(&m, batch);
    state = (int16_t *)take(&pl, state_n * 2);
    for (n = 0; n < state_n; ++n) state[n] = i16(b);
    x = (int16_t *)take(&pl, (size_t)batch * steps * I0 * 2);
    for (n = 0; n < (size_t)batch * steps * I0; ++n) x[n] = i16(b);
    out = (int16_t *)take(&pl, (size_t)batch * steps * in * 2);
    if (m.num_directions == 1) {
        need = lsl_int_step_bytes(&m, batch);
        work = take(&pl, need);
        rc = lsl_int_step(&m, batch, x, state, out, work, need);
        if (rc != LSL_OK && rc != LSL_ERR_RANGE) abort(); /* the model check bounds every accumulator */
        rc = lsl_int_step_prechecked(&m, batch, x, state, out, work, need);
        if (rc != LSL_OK && rc != LSL_ERR_RANGE) abort();
    }
    need = lsl_int_run_bytes(&m, batch, steps);
    work = take(&pl, need);
    {
        int32_t lengths[3];
        for (r = 0; r < batch; ++r) lengths[r] = range(b, 1, steps);
        rc = lsl_int_run(&m, batch, steps, x, lengths, out, state, work, need);
        if (rc != LSL_OK && rc != LSL_ERR_RANGE) abort();
    }
    { /* the integer head: any int8 weights, int32 biases, int16 inputs */
        const int32_t rows = range(b, 1, 4), cols = range(b, 1, 40);
        int8_t *w = (int8_t *)take(&pl, (size_t)rows * cols);
        int32_t *bias = (int32_t *)take(&pl, (size_t)rows * 4), *o = (int32_t *)take(&pl, (size_t)rows * 4);
        int16_t *v = (int16_t *)take(&pl, (size_t)cols * 2);
        for (r = 0; r < rows * cols; ++r) w[r] = i8(b);
        for (r = 0; r < rows; ++r) bias[r] = i32(b);
        for (r = 0; r < cols; ++r) v[r] = i16(b);
        rc = lsl_int_dense(w, bias, rows, cols, v, o);
        if (rc != LSL_OK && rc != LSL_ERR_OVERFLOW) abort();
    }
done:
    release(&pl);
}

/* ---- engine 2: TFLite-compatible integer LSTM ----------------------------------------- */

static void tflite_engine(bytes_t *b) {
    pool_t pl = {{0}, 0};
    lsl_tflite_params p;
    int32_t g, r, batch, steps;
    const int32_t I = range(b, 1, MAXD), H = range(b, 1, MAXD);
    size_t esz;
    void *x, *hidden, *out;
    int16_t *cell, *scratch;
    int rc, bounded;
    memset(&p, 0, sizeof(p));
    p.input_size = I;
    p.hidden_size = H;
    p.activation_bits = (u8(b) & 1) ? 16 : 8;
    p.kernel = (u8(b) & 3) == 0 ? LSL_TFLITE_KERNEL_LITE : LSL_TFLITE_KERNEL_MICRO;
    p.input_zero_point = p.activation_bits == 8 ? (int8_t)u8(b) : (int16_t)u16(b);
    p.output_zero_point = p.activation_bits == 8 ? (int8_t)u8(b) : (int16_t)u16(b);
    p.hidden_zero_point = (u8(b) & 3) ? p.output_zero_point : (p.activation_bits == 8 ? (int8_t)u8(b) : (int16_t)u16(b));
    p.cell_scale_power = range(b, -33, 4); /* a few values outside [-31, 2] too */
    p.forget_cell_multiplier = (int32_t)(u32(b) & 0x7FFFFFFF);
    p.forget_cell_shift = range(b, -32, 1);
    p.input_cell_multiplier = (int32_t)(u32(b) & 0x7FFFFFFF);
    p.input_cell_shift = range(b, -32, 1);
    p.output_multiplier = (int32_t)(u32(b) & 0x7FFFFFFF);
    p.output_shift = range(b, -32, 1);
    p.cell_clip = (u8(b) & 1) ? (int32_t)u16(b) : 0;
    p.single_rounding = (int32_t)(u8(b) & 1);
    for (g = 0; g < 4; ++g) {
        lsl_tflite_gate *q = &p.gates[g];
        int8_t *wi = (int8_t *)take(&pl, (size_t)H * I), *wh = (int8_t *)take(&pl, (size_t)H * H);
        for (r = 0; r < H * I; ++r) wi[r] = i8(b);
        for (r = 0; r < H * H; ++r) wh[r] = i8(b);
        q->input_weights = wi;
        q->hidden_weights = wh;
        if (p.activation_bits == 8) {
            int32_t *bias = (int32_t *)take(&pl, (size_t)H * 4);
            for (r = 0; r < H; ++r) bias[r] = i32(b);
            q->bias32 = bias;
        } else {
            int64_t *bias = (int64_t *)take(&pl, (size_t)H * 8);
            for (r = 0; r < H; ++r) bias[r] = (int64_t)i32(b) * (int64_t)(u8(b) + 1);
            q->bias64 = bias;
        }
        q->input_multiplier = (int32_t)(u32(b) & 0x7FFFFFFF);
        q->input_shift = range(b, -32, 31);
        q->hidden_multiplier = (int32_t)(u32(b) & 0x7FFFFFFF);
        q->hidden_shift = range(b, -32, 31);
    }
    batch = range(b, 1, 3);
    steps = range(b, 1, 4);
    esz = p.activation_bits == 8 ? 1 : 2;
    x = take(&pl, (size_t)batch * steps * I * esz);
    out = take(&pl, (size_t)batch * steps * H * esz);
    hidden = take(&pl, (size_t)batch * H * esz);
    cell = (int16_t *)take(&pl, (size_t)batch * H * 2);
    scratch = (int16_t *)take(&pl, LSL_TFLITE_SCRATCH_VALUES(H) * 2);
    for (r = 0; r < batch * steps * I; ++r) {
        if (esz == 1) ((int8_t *)x)[r] = i8(b);
        else ((int16_t *)x)[r] = i16(b);
    }
    rc = lsl_tflite_check(&p);
    if (rc != LSL_TFLITE_OK) goto done;
    if (lsl_tflite_reset(&p, batch, hidden, cell) != LSL_TFLITE_OK) abort();
    for (r = 0; r < batch * H; ++r) { /* any state, not only the reset one */
        if (u8(b) & 1) {
            cell[r] = i16(b);
            if (esz == 1) ((int8_t *)hidden)[r] = i8(b);
            else ((int16_t *)hidden)[r] = i16(b);
        }
    }
    /* within the documented accumulator bounds no step may overflow, whatever the
     * inputs and state: that checks the bound's derivation, not only its code */
    bounded = lsl_tflite_check_bounds(&p);
    if (bounded != LSL_TFLITE_OK && bounded != LSL_TFLITE_EOVERFLOW) abort();
    rc = lsl_tflite_step(&p, batch, x, hidden, cell, scratch);
    if (rc != LSL_TFLITE_OK && !(rc == LSL_TFLITE_EOVERFLOW && bounded != LSL_TFLITE_OK)) abort();
    rc = lsl_tflite_run(&p, batch, steps, (int)(u8(b) & 1), x, out, hidden, cell, scratch);
    if (rc != LSL_TFLITE_OK && !(rc == LSL_TFLITE_EOVERFLOW && bounded != LSL_TFLITE_OK)) abort();
done:
    release(&pl);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    bytes_t b;
    b.p = data;
    b.n = size;
    b.i = 0;
    switch (u8(&b) % 3) {
    case 0: float_engine(&b); break;
    case 1: int_engine(&b); break;
    default: tflite_engine(&b); break;
    }
    return 0;
}
