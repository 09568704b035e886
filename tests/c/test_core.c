/*
 * test_core.c -- C-level tests of the lstmlite runtime, built and run by
 * tests/c/test_c_runtime.py (also under AddressSanitizer + UBSan) and, cross-compiled
 * for aarch64 and run under qemu-aarch64, by tests/c/test_aarch64.py.
 *
 *   test_core            LSTM/GRU layers with odd sizes on every ISA against a plain
 *                        double-precision implementation of the equations, run vs
 *                        step, and the error codes of bad calls (lsl_model_run_parallel's
 *                        too); int8 on every ISA (dynamic: bit for bit against the
 *                        portable kernels), dense and block-sparse, and the
 *                        single-stream step (fused where a table has one) against a
 *                        batch
 *   test_core FILE.lsl   additionally: load FILE, then load thousands of truncated and
 *                        byte-flipped copies; each must load or fail with an error
 *                        code (the sanitizers catch any out-of-bounds read)
 *   LSTMLITE_ISA=NAME    must name a table this CPU runs; the output's
 *                        "LSTMLITE_ISA chose NAME" says which table it chose
 */
#define _POSIX_C_SOURCE 200112L /* posix_memalign */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lsl.h"
#include "lsl_internal.h" /* the tables' lstm_pointwise (test_sigmoid_is_half_tanh) */

static int failures = 0;
#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            ++failures;                                                     \
        }                                                                   \
    } while (0)

static double frand(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return ((double)((*s >> 8) & 0xFFFF) / 65535.0 - 0.5) * 1.2;
}

static void *amalloc(size_t n) {
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? n : 64) != 0) return NULL;
    return p;
}

static double sig(double v) { return 1.0 / (1.0 + exp(-v)); }

/* Reference: one direction, one layer, row-major weights, double precision. */
static void ref_layer(int cell, int I, int H, int T, const float *wih, const float *whh, const float *bih,
                      const float *bhh, const float *x, double *out) {
    int G = cell == LSL_LSTM ? 4 : 3, t, r, k;
    double *h = calloc((size_t)H, sizeof(double)), *c = calloc((size_t)H, sizeof(double));
    double *gi = malloc(sizeof(double) * G * H), *gh = malloc(sizeof(double) * G * H);
    for (t = 0; t < T; ++t) {
        for (r = 0; r < G * H; ++r) {
            gi[r] = bih[r];
            gh[r] = bhh[r];
            for (k = 0; k < I; ++k) gi[r] += (double)wih[r * I + k] * x[t * I + k];
            for (k = 0; k < H; ++k) gh[r] += (double)whh[r * H + k] * h[k];
        }
        for (r = 0; r < H; ++r) {
            if (cell == LSL_LSTM) {
                double ig = sig(gi[r] + gh[r]), fg = sig(gi[H + r] + gh[H + r]);
                double gg = tanh(gi[2 * H + r] + gh[2 * H + r]), og = sig(gi[3 * H + r] + gh[3 * H + r]);
                c[r] = fg * c[r] + ig * gg;
                h[r] = og * tanh(c[r]);
            } else {
                double rg = sig(gi[r] + gh[r]), zg = sig(gi[H + r] + gh[H + r]);
                double ng = tanh(gi[2 * H + r] + rg * gh[2 * H + r]);
                h[r] = (1 - zg) * ng + zg * h[r];
            }
            out[t * H + r] = h[r];
        }
    }
    free(h);
    free(c);
    free(gi);
    free(gh);
}

/* lsl_model_run_parallel's error codes: a workspace one byte short is LSL_ERR_BUFFER,
 * and a chunk that fails (here a zero length, which lsl_model_run refuses) fails the
 * call whichever chunk it is, the calling thread's first chunk included. */
static void test_parallel_errors(const lsl_model *model, int I, int H, int T) {
    const int32_t batch = 3, threads = 2, t = T; /* chunks of 2 and 1 rows */
    int32_t ok[3], first[3], last[3], b;
    float *x = calloc((size_t)batch * T * I, sizeof(float)), *out = malloc(sizeof(float) * batch * T * H);
    const size_t need = lsl_model_run_parallel_bytes(model, batch, t, threads);
    void *work = amalloc(need);
    for (b = 0; b < batch; ++b) ok[b] = first[b] = last[b] = t;
    first[0] = 0;
    last[batch - 1] = 0;
    CHECK(x && out && work && need > 0);
    if (x && out && work) {
        CHECK(lsl_model_run_parallel(model, threads, batch, t, x, NULL, ok, out, NULL, work, need) == LSL_OK);
        CHECK(lsl_model_run_parallel(model, threads, batch, t, x, NULL, ok, out, NULL, work, need - 1) ==
              LSL_ERR_BUFFER);
        CHECK(lsl_model_run_parallel(model, threads, batch, t, x, NULL, first, out, NULL, work, need) ==
              LSL_ERR_SHAPE);
        CHECK(lsl_model_run_parallel(model, threads, batch, t, x, NULL, last, out, NULL, work, need) ==
              LSL_ERR_SHAPE);
    }
    free(x);
    free(out);
    free(work);
}

static void test_layer(int cell, int I, int H, int T, int isa) {
    unsigned seed = (unsigned)(cell * 1000 + I * 10 + H);
    int G = cell == LSL_LSTM ? 4 : 3, i, t;
    float *wih = malloc(sizeof(float) * G * H * I), *whh = malloc(sizeof(float) * G * H * H);
    float *bih = malloc(sizeof(float) * G * H), *bhh = malloc(sizeof(float) * G * H);
    float *x = malloc(sizeof(float) * T * I), *out = malloc(sizeof(float) * T * H), *sout = malloc(sizeof(float) * H);
    double *ref = malloc(sizeof(double) * T * H), maxref = 0, maxerr = 0, maxstep = 0;
    size_t b1 = lsl_matrix_packed_bytes(G * H, I, LSL_F32, LSL_ACT_FLOAT);
    size_t b2 = lsl_matrix_packed_bytes(G * H, H, LSL_F32, LSL_ACT_FLOAT);
    void *p1 = amalloc(b1), *p2 = amalloc(b2), *work, *swork;
    float *state;
    size_t need, sneed;
    lsl_layer layer;
    lsl_model model;
    for (i = 0; i < G * H * I; ++i) wih[i] = (float)frand(&seed);
    for (i = 0; i < G * H * H; ++i) whh[i] = (float)frand(&seed);
    for (i = 0; i < G * H; ++i) {
        bih[i] = (float)frand(&seed);
        bhh[i] = (float)frand(&seed);
    }
    for (i = 0; i < T * I; ++i) x[i] = (float)(2 * frand(&seed));
    memset(&layer, 0, sizeof(layer));
    memset(&model, 0, sizeof(model));
    layer.cell = cell;
    layer.input_size = I;
    layer.hidden_size = H;
    layer.num_directions = 1;
    CHECK(lsl_matrix_pack(&layer.dir[0].w_ih, G * H, I, LSL_F32, LSL_ACT_FLOAT, wih, NULL, p1, b1) == LSL_OK);
    CHECK(lsl_matrix_pack(&layer.dir[0].w_hh, G * H, H, LSL_F32, LSL_ACT_FLOAT, whh, NULL, p2, b2) == LSL_OK);
    layer.dir[0].b_ih = bih;
    layer.dir[0].b_hh = bhh;
    model.num_layers = 1;
    model.layers = &layer;
    CHECK(lsl_model_check(&model) == LSL_OK);
    CHECK(lsl_isa_set(isa) == LSL_OK);

    need = lsl_model_run_bytes(&model, 1, T);
    work = amalloc(need);
    CHECK(lsl_model_run(&model, 1, T, x, NULL, NULL, out, NULL, work, need) == LSL_OK);
    ref_layer(cell, I, H, T, wih, whh, bih, bhh, x, ref);
    for (i = 0; i < T * H; ++i) {
        maxref = fabs(ref[i]) > maxref ? fabs(ref[i]) : maxref;
        maxerr = fabs(out[i] - ref[i]) > maxerr ? fabs(out[i] - ref[i]) : maxerr;
    }
    CHECK(maxerr <= 1e-5 * maxref);

    /* streaming gives the same outputs */
    sneed = lsl_model_step_bytes(&model, 1);
    swork = amalloc(sneed);
    state = calloc(lsl_model_state_floats(&model, 1), sizeof(float));
    for (t = 0; t < T; ++t) {
        CHECK(lsl_model_step(&model, 1, x + t * I, NULL, state, sout, swork, sneed) == LSL_OK);
        for (i = 0; i < H; ++i) maxstep = fabs(sout[i] - out[t * H + i]) > maxstep ? fabs(sout[i] - out[t * H + i]) : maxstep;
    }
    CHECK(maxstep <= 1e-5 * maxref);

    /* error codes, never a crash */
    CHECK(lsl_model_run(&model, 1, T, x, NULL, NULL, out, NULL, work, need - 1) == LSL_ERR_BUFFER);
    CHECK(lsl_model_run(&model, 1, T, NULL, NULL, NULL, out, NULL, work, need) == LSL_ERR_ARG);
    CHECK(lsl_model_run(&model, 0, T, x, NULL, NULL, out, NULL, work, need) == LSL_ERR_SHAPE);
    CHECK(lsl_model_run(NULL, 1, T, x, NULL, NULL, out, NULL, work, need) == LSL_ERR_ARG);
    CHECK(lsl_model_step(&model, 1, x, NULL, NULL, sout, swork, sneed) == LSL_ERR_ARG);
    CHECK(lsl_model_step(&model, 1, x, NULL, state, sout, swork, sneed - 1) == LSL_ERR_BUFFER);
    {
        int32_t bad_len = T + 1;
        CHECK(lsl_model_run(&model, 1, T, x, NULL, &bad_len, out, NULL, work, need) == LSL_ERR_SHAPE);
    }
    test_parallel_errors(&model, I, H, T);
    layer.hidden_size = H + 1; /* no longer matches the packed matrices */
    CHECK(lsl_model_check(&model) == LSL_ERR_SHAPE);
    CHECK(lsl_model_run_bytes(&model, 1, T) == 0);
    layer.hidden_size = H;
    layer.num_directions = 2; /* direction 1 has no weights */
    CHECK(lsl_model_check(&model) != LSL_OK);
    layer.num_directions = 1;
    CHECK(lsl_matrix_pack(&layer.dir[0].w_ih, G * H, I, LSL_F32, LSL_ACT_FLOAT, wih, NULL, p1, b1 - 1) ==
          LSL_ERR_BUFFER);
    CHECK(lsl_matrix_pack(&layer.dir[0].w_ih, G * H, I, LSL_I8, LSL_ACT_FLOAT, wih, NULL, p1, b1) == LSL_ERR_ARG);
    CHECK(lsl_matrix_pack(&layer.dir[0].w_ih, 0, I, LSL_F32, LSL_ACT_FLOAT, wih, NULL, p1, b1) == LSL_ERR_SHAPE);

    lsl_isa_set(LSL_ISA_AUTO);
    free(wih); free(whh); free(bih); free(bhh); free(x); free(out); free(sout); free(ref);
    free(p1); free(p2); free(work); free(swork); free(state);
}

/* int8 weights on every ISA. Dynamic int8 sums are exact integers, so every ISA must
 * give the portable kernels' bits: a matrix product with weights at -128 and 127 and
 * activations at +-max|row| (the AVX2 sign form's worst case: every product 127 * 128);
 * float activations give the dequantized product (1e-6 of its largest value). And an
 * LSTM whose stream run alone (B = 1: the fused step where the table has one) equals
 * the same stream run in a batch of 2 (the matrix product, then the cell update), for
 * every activation form; for dynamic int8 (8- or 16-bit activations) a VNNI table equals
 * its twin without, and a NEON table the portable kernels. */
/* Matrix m (R rows, K columns) times M rows x on every table, its work exactly
 * lsl_matmul_bytes (under AddressSanitizer a kernel that needs more fails): dynamic
 * activations give the portable kernels' bits, float activations `ref` (M x R, the
 * double-precision product, bias included) within 1e-6 of its largest value (K / 300
 * times that past 300 columns). With a bias (R values, or NULL), the product of an input
 * projection: y = bias + x m^T, which the kernels take into their epilogues. */
static void check_every_isa(const lsl_matrix *m, int act, int M, int K, int R, const float *x, const double *ref,
                            const float *bias) {
    const size_t wbytes = lsl_matmul_bytes(m, M), n = (size_t)M * R;
    float *y = malloc(LSL_ISA_COUNT * n * sizeof(float));
    void *work = amalloc(wbytes);
    size_t j;
    int isa;
    for (isa = LSL_ISA_PORTABLE; isa < LSL_ISA_COUNT; ++isa) {
        float *yi = y + (size_t)isa * n;
        if (!lsl_isa_supported(isa)) continue;
        CHECK(lsl_isa_set(isa) == LSL_OK);
        memset(yi, 0, n * sizeof(float));
        if (bias)
            CHECK(lsl_matmul_bias_unchecked(lsl_kernels_active(), m, M, x, K, bias, yi, R, work, 0) == LSL_OK);
        else
            CHECK(lsl_matmul(m, M, x, K, yi, R, work, wbytes) == LSL_OK);
        if (act != LSL_ACT_FLOAT) { /* dynamic 7, 8 or 16 bits: exact sums */
            CHECK(memcmp(yi, y, n * sizeof(float)) == 0);
        } else {
            double maxref = 0, maxerr = 0;
            for (j = 0; j < n; ++j) {
                maxref = fabs(ref[j]) > maxref ? fabs(ref[j]) : maxref;
                maxerr = fabs(yi[j] - ref[j]) > maxerr ? fabs(yi[j] - ref[j]) : maxerr;
            }
            /* a float sum's rounding grows with its length: 1e-6 up to 300 columns */
            CHECK(maxerr <= 1e-6 * maxref * (K > 300 ? K / 300.0 : 1.0));
        }
    }
    lsl_isa_set(LSL_ISA_AUTO);
    free(y);
    free(work);
}

/* One dense int8 product of M rows x K columns on every table (check_every_isa). */
static void check_int8_matmul(int act, int M, int K) {
    enum { R = 40, MAXM = 33, MAXK = 1100 };
    static int8_t w[R * MAXK];
    static float scale[R], x[MAXM * MAXK];
    static double ref[MAXM * R];
    unsigned seed = 7 + (unsigned)(M * K);
    int i, r, k;
    lsl_matrix m;
    size_t bytes = lsl_matrix_packed_bytes(R, K, LSL_I8, act);
    void *buf = amalloc(bytes);
    /* LSL_ACT_DYN7 (7-bit activations): 7-bit weights, at their extremes +-64 */
    for (i = 0; i < R * K; ++i)
        w[i] = (int8_t)(act == LSL_ACT_DYN7 ? (frand(&seed) < 0 ? -64 : 64) : (frand(&seed) < 0 ? -128 : 127));
    for (i = 0; i < R; ++i) scale[i] = 0.01f + 0.001f * (float)i;
    /* dynamic: every activation at +-max|row|; float: magnitudes down to max / 5, so that
     * every digit of the AVX2 forms (LSL_D15_MAX, LSL_DIG_MAX) is in play */
    for (i = 0; i < M * K; ++i)
        x[i] = act == LSL_ACT_FLOAT ? (float)(2.5 * frand(&seed) / (1 + i % 5)) : (frand(&seed) < 0 ? -2.5f : 2.5f);
    for (i = 0; i < M; ++i)
        for (r = 0; r < R; ++r) {
            ref[i * R + r] = 0;
            for (k = 0; k < K; ++k) ref[i * R + r] += (double)x[i * K + k] * w[r * K + k] * scale[r];
        }
    CHECK(lsl_matrix_pack(&m, R, K, LSL_I8, act, w, scale, buf, bytes) == LSL_OK);
    check_every_isa(&m, act, M, K, R, x, ref, NULL);
    free(buf);
}

/* Dynamic int8 sums near and past 2^24, every activation code 127 and every weight 127
 * but 126 in each column k with k % every == at: M rows of K columns on every table
 * (check_every_isa: the same bits). A kernel whose sums go through floats (the portable
 * one where DYN_EXACT_FLOATS) holds them exactly only up to EXACT_COLS columns, and only
 * if it moves each of its four partial sums to int32 before adding them up. The two
 * cases below were found by simulating such sums in float32, so that each way of
 * getting it wrong gives a float sum that differs from the exact one: K = 4096 (the
 * exact form's widest), where the four partial sums (about 16.5 million each) added as
 * floats round (65891029 to 65891032); K = 4400, past it, where each partial sum
 * passes 2^24 within its first 1043 products and rounds if kept in a float. The row
 * scales are powers of two, so that the epilogue's products keep such a difference (at
 * 2.5 / 127 they rounded it away). */
static void check_dyn8_long_sums(int M, int K, int every, int at) {
    enum { R = 20, MAXM = 3, MAXK = 4400 };
    static int8_t w[R * MAXK];
    static float scale[R], x[MAXM * MAXK];
    lsl_matrix m;
    size_t bytes = lsl_matrix_packed_bytes(R, K, LSL_I8, LSL_ACT_DYN8);
    void *buf = amalloc(bytes);
    int i;
    CHECK(M <= MAXM && K <= MAXK);
    for (i = 0; i < R * K; ++i) w[i] = (int8_t)(i % K % every == at ? 126 : 127);
    for (i = 0; i < R; ++i) scale[i] = 1.0f / 64.0f;
    for (i = 0; i < M * K; ++i) x[i] = 127.0f; /* codes 127 at a row scale of 1: the scales keep every bit */
    CHECK(lsl_matrix_pack(&m, R, K, LSL_I8, LSL_ACT_DYN8, w, scale, buf, bytes) == LSL_OK);
    check_every_isa(&m, LSL_ACT_DYN8, M, K, R, x, NULL, NULL);
    free(buf);
}

/* One (1, 4)-block sparse product (LSL_I8_SPARSE, R rows, K columns, M activation rows)
 * on every table (check_every_isa), dynamic int8 or float activations. `share`: the rows of a
 * 16-row panel keep the same blocks (2: LSL_MATRIX_SHARED16), each half panel its own
 * (1: LSL_MATRIX_SHARED8), or every row its own (0); the kernels take each pattern in a
 * loop of their own, and several rows at once in groups (M = 1 .. 9 covers every
 * group's remainder). `m128`: weights at -128 and 127, else +-127 (the AVX2 forms that
 * need no -128, LSL_MATRIX_NO_M128). R rows (up to 44: 44 leaves a last panel of 12 rows,
 * its second half partly filled); `with_bias`: the input projection's product. */
static void check_sparse_matmul(int act, int M, int K, int share, int m128, int R, int with_bias) {
    enum { MAXR = 44, MAXM = 9, MAXK = 300, MAXB = MAXR * MAXK / 4 };
    static int8_t values[4 * MAXB];
    static int32_t rowptr[MAXR + 1];
    static uint16_t bcol[MAXB];
    static float scale[MAXR], bias[MAXR], x[MAXM * MAXK];
    static double ref[MAXM * MAXR];
    unsigned seed = 11 + (unsigned)(M * K + 7 * share + m128);
    int i, r, k, b, nb = 0;
    lsl_matrix m;
    size_t bytes;
    void *buf;
    for (r = 0; r < R; ++r) {
        /* the row whose pattern this row follows: its panel's first, its half's, or itself */
        const int lead = share == 2 ? r / 16 * 16 : (share == 1 ? r / 8 * 8 : r);
        unsigned ps = 1000u + (unsigned)lead; /* the pattern: a function of the lead row */
        rowptr[r] = nb;
        for (b = 0; b < (K + 3) / 4; ++b) {
            int keep = frand(&ps) < -0.3; /* about 25 % of the blocks kept */
            /* half panels that share (1): block 0 in every first half, never in a second
             * half, which keeps block 1 -- so the halves' first slots differ and the
             * matrix is SHARED8 without being SHARED16 (checked below) */
            if (share == 1 && b <= 1) keep = (r % 16 < 8) ? (b == 0 || keep) : b == 1;
            if (keep) {
                bcol[nb] = (uint16_t)b;
                for (k = 0; k < 4; ++k)
                    values[4 * nb + k] = (int8_t)(4 * b + k >= K ? 0
                                                  : (frand(&seed) < 0 ? (m128 ? -128 : -127) : 127));
                ++nb;
            }
        }
    }
    rowptr[R] = nb;
    for (i = 0; i < R; ++i) scale[i] = 0.01f + 0.001f * (float)i;
    for (i = 0; i < R; ++i) bias[i] = (float)(with_bias ? frand(&seed) : 0.0);
    for (i = 0; i < M * K; ++i) x[i] = frand(&seed) < 0 ? -2.5f : 2.5f;
    for (i = 0; i < M; ++i)
        for (r = 0; r < R; ++r) {
            ref[i * R + r] = bias[r];
            for (b = rowptr[r]; b < rowptr[r + 1]; ++b)
                for (k = 0; k < 4 && 4 * bcol[b] + k < K; ++k)
                    ref[i * R + r] += (double)x[i * K + 4 * bcol[b] + k] * values[4 * b + k] * scale[r];
        }
    bytes = lsl_matrix_sparse_bytes(R, K, act, rowptr, bcol, values);
    CHECK(bytes > 0);
    buf = amalloc(bytes);
    CHECK(lsl_matrix_pack_sparse(&m, R, K, act, rowptr, bcol, values, scale, buf, bytes) == LSL_OK);
    /* the sharing the case means to test is the one the packer found */
    CHECK(((m.reserved & LSL_MATRIX_SHARED16) ? 2 : (m.reserved & LSL_MATRIX_SHARED8) ? 1 : 0) == share);
    check_every_isa(&m, act, M, K, R, x, ref, with_bias ? bias : NULL);
    free(buf);
}

static void test_sparse_every_isa(void) {
    int act, M, share, m128;
    for (act = LSL_ACT_FLOAT; act <= LSL_ACT_DYN8; ++act)
        for (share = 0; share <= 2; ++share)
            for (m128 = 0; m128 <= 1; ++m128) {
                /* even M: 44 rows and a bias (the input projection of an LSTM with H = 11) */
                for (M = 1; M <= 9; ++M) check_sparse_matmul(act, M, 37, share, m128, M % 2 ? 40 : 44, M % 2 == 0);
                check_sparse_matmul(act, 5, 300, share, m128, 40, 0); /* three windows */
                check_sparse_matmul(act, 1, 37, share, m128, 44, 1);
            }
}

/* Every table's dynamic quantizers give lsl_quantize_rows' (lsl_quantize_rows16's) codes
 * and scales, byte for byte: rows of every length class (the vector loops' chains and
 * tails), random magnitudes with the row's largest at each position in turn (a
 * maximum that skips a chain or a tail would miss it), a row of zeros, a row with a
 * NaN, and rows with an infinity or a value past 3e38 (each: zero codes and a NaN scale). The matrix products' checks above use +-2.5 only, where any subset of
 * a row has the whole row's maximum. */
static void test_quantize_rows_every_isa(void) {
    enum { MAXK = 300, ROWS = 14, KPAD = 304 };
    static const int lengths[] = {1, 5, 8, 31, 32, 33, 40, 64, 127, 128, 129, 300};
    static float x[ROWS * MAXK], xs_ref[ROWS], xs16_ref[ROWS], xs[ROWS];
    static uint8_t u_ref[ROWS * KPAD], u[ROWS * KPAD];
    static int16_t q_ref[ROWS * KPAD], q[ROWS * KPAD];
    static const int32_t qmaxes[] = {127, 63};
    unsigned seed = 3;
    int li, isa, pos, i, j, qi;
    for (li = 0; li < (int)(sizeof lengths / sizeof lengths[0]); ++li) {
        const int32_t k = lengths[li], kpad = (k + 3) / 4 * 4;
        for (pos = 0; pos < k; pos += (k > 40 ? 7 : 1)) { /* the maximum's place, row 0 */
            for (i = 0; i < ROWS; ++i)
                for (j = 0; j < k; ++j) x[i * MAXK + j] = (float)(frand(&seed) * (1 + (i + j) % 5));
            for (i = 0; i < ROWS - 2; ++i) x[i * MAXK + (pos + 3 * i) % k] = (i % 2 ? -3.5f : 3.5f);
            x[(ROWS - 4) * MAXK + pos] = 1.0f / 0.0f; /* an infinity, and a value past 3e38 */
            x[(ROWS - 3) * MAXK + (pos + 1) % k] = -3.1e38f;
            for (j = 0; j < k; ++j) x[(ROWS - 2) * MAXK + j] = 0.0f;
            x[(ROWS - 1) * MAXK + pos] = 0.0f / 0.0f; /* NaN: zero codes, a NaN scale */
            for (qi = 0; qi < 2; ++qi) {
                lsl_quantize_rows(ROWS, k, kpad, x, MAXK, u_ref, xs_ref, qmaxes[qi]);
                for (isa = LSL_ISA_PORTABLE; isa < LSL_ISA_COUNT; ++isa) {
                    const lsl_kernels *kern;
                    if (!lsl_isa_supported(isa)) continue;
                    CHECK(lsl_isa_set(isa) == LSL_OK);
                    kern = lsl_kernels_active();
                    kern->quantize_rows(ROWS, k, kpad, x, MAXK, u, xs, qmaxes[qi]);
                    if (memcmp(u, u_ref, (size_t)ROWS * kpad) || memcmp(xs, xs_ref, sizeof xs)) {
                        fprintf(stderr, "%s: quantize_rows (k %d, maximum at %d, qmax %d) differs\n",
                                lsl_isa_name(isa), (int)k, pos, (int)qmaxes[qi]);
                        CHECK(0);
                    }
                    if (qi == 0 && kern->quantize_rows16) {
                        lsl_quantize_rows16(ROWS, k, kpad, x, MAXK, q_ref, xs16_ref);
                        kern->quantize_rows16(ROWS, k, kpad, x, MAXK, q, xs);
                        if (memcmp(q, q_ref, (size_t)ROWS * kpad * sizeof(int16_t)) || memcmp(xs, xs16_ref, sizeof xs)) {
                            fprintf(stderr, "%s: quantize_rows16 (k %d, maximum at %d) differs\n", lsl_isa_name(isa),
                                    (int)k, pos);
                            CHECK(0);
                        }
                    }
                }
            }
        }
    }
    lsl_isa_set(LSL_ISA_AUTO);
}

#if defined(LSL_HAVE_X86)
/* A float's fixed-point code as the x86 float-activation quantizers make it: x * inv in
 * float, rounded to nearest even (cvtps2dq), clamped to +-qmax (exact in float). */
static int32_t fixed_code(float x, float inv, float qmax) {
    float v = nearbyintf(x * inv);
    v = v > qmax ? qmax : (v < -qmax ? -qmax : v);
    return (int32_t)v;
}

/* The x86 float-activation quantizers against a scalar statement of their codes: the
 * AVX2 table's three 7-bit digits (LSL_DIG_MAX) and two digits (LSL_D15_MAX), the VNNI
 * tables' three 8-bit limbs (LSL_LIMB_MAX). q = fixed_code(x, MAX / max|row|), split into
 * balanced digits (or offset by 2^23 into bytes); a zero row gives q = 0 and scale 0, a
 * row with a NaN or an infinity scale NaN. The products' checks allow 1e-6, which a code
 * rounded the wrong way (truncated) or a NaN missed passes: this pins the codes. */
static void test_float_codes(void) {
    enum { MAXK = 300, ROWS = 6 };
    static const int lengths[] = {1, 5, 9, 33, 40, 128, 300};
    static float x[ROWS * MAXK], xs[ROWS], xs_ref[ROWS];
    static int8_t d8[3 * ROWS * MAXK], r8[3 * ROWS * MAXK];
    static int16_t d16[ROWS * MAXK], r16[ROWS * MAXK];
    static uint8_t u8[3 * ROWS * MAXK], ru8[3 * ROWS * MAXK];
    unsigned seed = 5;
    int li, i, j, form;
    for (li = 0; li < (int)(sizeof lengths / sizeof lengths[0]); ++li) {
        const int32_t k = lengths[li], kpad = (k + 3) / 4 * 4;
        const size_t ls = (size_t)ROWS * kpad; /* a plane's bytes (values) */
        for (i = 0; i < ROWS; ++i)
            for (j = 0; j < k; ++j) x[i * MAXK + j] = (float)(frand(&seed) * 3.0 / (1 + (i + j) % 7));
        for (j = 0; j < k; ++j) x[3 * MAXK + j] = 0.0f; /* row 3: zeros */
        x[4 * MAXK + k / 2] = 0.0f / 0.0f;                /* row 4: a NaN */
        x[5 * MAXK + k - 1] = -1.0f / 0.0f;               /* row 5: -inf */
        for (form = 0; form < 3; ++form) {
            const float qmax = form == 0 ? LSL_DIG_MAX : (form == 1 ? LSL_D15_MAX : LSL_LIMB_MAX);
            if (!lsl_isa_supported(form == 2 ? LSL_ISA_AVX512_VNNI : LSL_ISA_AVX2)) continue;
            for (i = 0; i < ROWS; ++i) {
                const float *row = x + (size_t)i * MAXK;
                float amax = 0.0f, inv;
                int bad = 0;
                for (j = 0; j < k; ++j) {
                    const float a = fabsf(row[j]);
                    bad |= !(a <= 3.0e38f);
                    amax = a > amax ? a : amax;
                }
                xs_ref[i] = bad ? NAN : (amax > 0.0f ? amax / qmax : 0.0f);
                inv = bad || !(amax > 0.0f) ? 0.0f : qmax / amax;
                for (j = 0; j < kpad; ++j) {
                    const int32_t q = j < k && inv > 0.0f ? fixed_code(row[j], inv, qmax) : 0;
                    const size_t at = (size_t)i * kpad + j;
                    if (form == 0) { /* q = (d2 128 + d1) 128 + d0, d0 and d1 in [-64, 63] */
                        const int32_t d0 = ((q + 64) & 127) - 64, q1 = (q - d0) / 128, d1 = ((q1 + 64) & 127) - 64;
                        r8[at] = (int8_t)d0, r8[ls + at] = (int8_t)d1, r8[2 * ls + at] = (int8_t)((q1 - d1) / 128);
                    } else if (form == 1) { /* q = d1 2^15 + d0, d0 in [-2^14, 2^14) */
                        const int32_t d0 = ((q + 16384) & 32767) - 16384;
                        r16[at] = (int16_t)d0, r8[at] = (int8_t)((q - d0) / 32768);
                    } else { /* q + 2^23 as bytes hi, mid, lo */
                        const uint32_t u = (uint32_t)(q + 8388608);
                        ru8[at] = (uint8_t)(u >> 16), ru8[ls + at] = (uint8_t)(u >> 8), ru8[2 * ls + at] = (uint8_t)u;
                    }
                }
            }
            if (form == 0) {
                lsl_avx2_quantize_digits(ROWS, k, kpad, x, MAXK, (uint8_t *)d8, ls, xs);
                CHECK(memcmp(d8, r8, 3 * ls) == 0);
            } else if (form == 1) {
                lsl_avx2_quantize_d15(ROWS, k, kpad, x, MAXK, d16, d8, xs);
                CHECK(memcmp(d16, r16, ls * sizeof *d16) == 0 && memcmp(d8, r8, ls) == 0);
            } else {
                lsl_avx512_quantize_limbs(ROWS, k, kpad, x, MAXK, u8, ls, xs);
                CHECK(memcmp(u8, ru8, 3 * ls) == 0);
            }
            for (i = 0; i < ROWS; ++i) CHECK(isnan(xs_ref[i]) ? isnan(xs[i]) != 0 : xs[i] == xs_ref[i]);
        }
    }
}
#endif

/* Packing refuses what the kernels cannot take: a matrix for 7-bit activations
 * (LSL_ACT_DYN7) with a weight past +-64, and a sparse block with a nonzero value past
 * the last column (the kernels read the activations' zero padding there). */
static void test_pack_refuses(void) {
    enum { R = 16, K = 37 };
    static int8_t w[R * K], values[4];
    static float scale[R];
    static int32_t rowptr[R + 1];
    static const uint16_t bcol[1] = {9}; /* columns 36 .. 39 of 37 */
    static const int weights[] = {-66, -65, -64, 64, 65, 66};
    const size_t bytes = lsl_matrix_packed_bytes(R, K, LSL_I8, LSL_ACT_DYN7);
    void *buf = amalloc(bytes);
    lsl_matrix m;
    int i, r;
    for (r = 0; r < R; ++r) scale[r] = 0.01f;
    for (i = 0; i < (int)(sizeof weights / sizeof weights[0]); ++i) {
        memset(w, 0, sizeof w);
        w[5 * K + 36] = (int8_t)weights[i];
        CHECK((lsl_matrix_pack(&m, R, K, LSL_I8, LSL_ACT_DYN7, w, scale, buf, bytes) == LSL_OK) ==
              (weights[i] >= -64 && weights[i] <= 64));
    }
    for (r = 0; r <= R; ++r) rowptr[r] = r == 0 ? 0 : 1; /* row 0 keeps block 9 */
    memset(values, 0, sizeof values);
    values[0] = 1; /* column 36, the last */
    CHECK(lsl_matrix_sparse_bytes(R, K, LSL_ACT_DYN8, rowptr, bcol, values) > 0);
    for (i = 1; i < 4; ++i) { /* columns 37 .. 39 */
        values[i] = -1;
        CHECK(lsl_matrix_sparse_bytes(R, K, LSL_ACT_DYN8, rowptr, bcol, values) == 0);
        values[i] = 0;
    }
    free(buf);
}

/* Unpacking compressed rows to dense codes (the loader's path for a sparse matrix a table
 * runs faster dense) writes each row's codes and nothing past the matrix: the last block
 * of every row is partial (37 columns), so a copy that forgot the row's end would put the
 * block's padding into the next row's first bytes and, for the last row, past the buffer
 * (the bytes after it are a canary here; the sanitizer run sees the same on the heap). */
static void test_expand_csr(void) {
    enum { R = 5, K = 37, BLOCKS = 2 * R, CANARY = 4 };
    static int32_t rowptr[R + 1];
    static uint16_t bcol[BLOCKS];
    static int8_t values[4 * BLOCKS], expect[R * K];
    int8_t *codes = malloc(R * K + CANARY);
    lsl_csr csr;
    int r, j;
    for (r = 0; r < R; ++r) {
        rowptr[r + 1] = 2 * (r + 1);
        bcol[2 * r] = (uint16_t)r;     /* columns 4r .. 4r + 3 */
        bcol[2 * r + 1] = 9;           /* columns 36 .. 39 of 37: only 36 exists */
        for (j = 0; j < 4; ++j) {
            values[8 * r + j] = (int8_t)(10 * r + j + 1);
            expect[r * K + 4 * r + j] = (int8_t)(10 * r + j + 1);
        }
        values[8 * r + 4] = (int8_t)(-r - 1); /* column 36; 37 .. 39 stay 0 (the format's padding) */
        expect[r * K + 36] = (int8_t)(-r - 1);
    }
    csr.rowptr = (const unsigned char *)rowptr;
    csr.bcol = (const unsigned char *)bcol;
    csr.le = 0;
    CHECK(codes != NULL);
    if (!codes) return;
    memset(codes, 0x5a, R * K + CANARY);
    lsl_sparse_expand_csr(R, K, &csr, values, codes);
    CHECK(memcmp(codes, expect, sizeof expect) == 0);
    for (j = 0; j < CANARY; ++j) CHECK(codes[R * K + j] == 0x5a);
    free(codes);
}

/* x (M rows of m's width) @ m^T on every table this CPU has, into y (M x m->rows): the
 * last row's outputs must all be NaN and no other row's (x holds a NaN in its last row
 * only). `what` names the product in the message. */
static void nan_only_in_last_row(const lsl_matrix *m, int M, const float *x, float *y, void *work, size_t wbytes,
                                 const char *what) {
    const int R = m->rows, K = m->cols;
    int isa, i, r;
    for (isa = LSL_ISA_PORTABLE; isa < LSL_ISA_COUNT; ++isa) {
        if (!lsl_isa_supported(isa)) continue;
        CHECK(lsl_isa_set(isa) == LSL_OK);
        memset(y, 0, (size_t)M * R * sizeof *y);
        CHECK(lsl_matmul(m, M, x, K, y, R, work, wbytes) == LSL_OK);
        for (i = 0; i < M; ++i)
            for (r = 0; r < R; ++r)
                if ((i == M - 1) != (isnan(y[i * R + r]) != 0)) {
                    fprintf(stderr, "%s: %s product, %d rows, NaN in row %d: output (%d, %d) = %g\n",
                            lsl_isa_name(isa), what, M, M - 1, i, r, (double)y[i * R + r]);
                    CHECK(0);
                    i = M, r = R;
                }
    }
}

/* A NaN in a row of float activations reaches every output of that row, on every table,
 * as in a float product, and no other row's: dense int8 (one and two rows: the AVX2
 * digits; five: the unpacked panels) and (1, 4)-block sparse with the NaN in a column no
 * kept block reads (the sparse kernels skip it: they add 0 x the row to every output). */
static void test_nan_reaches_every_output(void) {
    enum { R = 32, K = 40, MAXM = 5 };
    static int8_t w[R * K], values[4 * R];
    static float scale[R], x[MAXM * K], y[MAXM * R];
    static int32_t rowptr[R + 1];
    static uint16_t bcol[R];
    static const int rows_of_x[] = {1, 2, 5};
    unsigned seed = 13;
    int sparse, mi, i, r;
    for (i = 0; i < R * K; ++i) w[i] = (int8_t)(frand(&seed) * 120);
    for (r = 0; r < R; ++r) {
        scale[r] = 0.01f;
        rowptr[r] = r, bcol[r] = 0; /* every row keeps block 0 only: columns 0 .. 3 */
        for (i = 0; i < 4; ++i) values[4 * r + i] = (int8_t)(1 + r + i);
    }
    rowptr[R] = R;
    for (sparse = 0; sparse <= 1; ++sparse) {
        const size_t bytes = sparse ? lsl_matrix_sparse_bytes(R, K, LSL_ACT_FLOAT, rowptr, bcol, values)
                                    : lsl_matrix_packed_bytes(R, K, LSL_I8, LSL_ACT_FLOAT);
        void *buf = amalloc(bytes);
        lsl_matrix m;
        CHECK(sparse ? lsl_matrix_pack_sparse(&m, R, K, LSL_ACT_FLOAT, rowptr, bcol, values, scale, buf, bytes) == LSL_OK
                     : lsl_matrix_pack(&m, R, K, LSL_I8, LSL_ACT_FLOAT, w, scale, buf, bytes) == LSL_OK);
        for (mi = 0; mi < 3; ++mi) {
            const int M = rows_of_x[mi];
            const size_t wbytes = lsl_matmul_bytes(&m, M);
            void *work = amalloc(wbytes);
            for (i = 0; i < M * K; ++i) x[i] = (float)frand(&seed);
            x[(M - 1) * K + 21] = 0.0f / 0.0f; /* the last row, column 21 (block 5) */
            nan_only_in_last_row(&m, M, x, y, work, wbytes, sparse ? "sparse" : "dense");
            free(work);
        }
        free(buf);
    }
    lsl_isa_set(LSL_ISA_AUTO);
}

/* A NaN in one row of float activations stays in that row, on every table: dense int8
 * with K = 37 columns, so the last block of 4 is partial (its weights past column 36 are
 * zero), and the NaN in the first column of the last row, which is what follows the
 * previous row's column 36 in x. A kernel that loads that whole last block multiplies
 * the next row's first values by the zero weights, and 0 x NaN poisons every output of
 * the previous row: catches the NEON x4 loading 4 columns wherever the block starts
 * inside the row (4 k4 < cols instead of 4 k4 + 4 <= cols), which 40 columns, as above,
 * never exercise. */
static void test_nan_stays_in_its_row(void) {
    enum { R = 20, K = 37, MAXM = 5 };
    static int8_t w[R * K];
    static float scale[R], x[MAXM * K], y[MAXM * R];
    const size_t bytes = lsl_matrix_packed_bytes(R, K, LSL_I8, LSL_ACT_FLOAT);
    void *buf = amalloc(bytes);
    unsigned seed = 17;
    lsl_matrix m;
    int M, i, r;
    for (i = 0; i < R * K; ++i) w[i] = (int8_t)(frand(&seed) * 120);
    for (r = 0; r < R; ++r) scale[r] = 0.01f;
    CHECK(lsl_matrix_pack(&m, R, K, LSL_I8, LSL_ACT_FLOAT, w, scale, buf, bytes) == LSL_OK);
    for (M = 2; M <= MAXM; ++M) {
        const size_t wbytes = lsl_matmul_bytes(&m, M);
        void *work = amalloc(wbytes);
        for (i = 0; i < M * K; ++i) x[i] = (float)frand(&seed);
        x[(M - 1) * K] = 0.0f / 0.0f; /* the last row's first column */
        nan_only_in_last_row(&m, M, x, y, work, wbytes, "dense");
        free(work);
    }
    lsl_isa_set(LSL_ISA_AUTO);
    free(buf);
}

/* Every table's sigmoid is its own tanh at x / 2, halved, plus 1/2, to the bit: the
 * identity lsl_fastmath.h computes it by, which the AVX2 and AVX-512 tables evaluate from
 * x itself with rescaled coefficients (a power of 4 wrong, or a rounding more or less,
 * breaks it). Read through the table's lstm_pointwise, where c' = sigmoid(f) c +
 * sigmoid(i) tanh(g) and h = sigmoid(o) tanh(c'), using only values it gives exactly
 * (tanh(0) = 0, so sigmoid(0) = 1/2): gates (0, x, 0, 0) from c = 1 give c' = sigmoid(x);
 * gates (0, 0, 0, 0) from c = x give h = tanh(x / 2) / 2. x: random magnitudes from
 * 2^-40 to 2^5 of both signs, the clamps' neighbourhoods, zeros and infinities. */
static void test_sigmoid_is_half_tanh(void) {
    enum { H = 64, ROUNDS = 256 };
    static const float edges[] = {0.0f, -0.0f, 15.8106222f, -15.8106222f, 15.8106232f, 7.90531111f, -7.90531111f,
                                  1e30f, -1e30f, 1.0f / 0.0f, -1.0f / 0.0f, 1e-40f, -1e-45f, 0.5f, -0.5f, 3.0f};
    float gates[4 * H], c[H], h[H], x[H], sigmoid_x[H];
    unsigned seed = 11;
    int isa, round, j, bad = 0;
    for (isa = LSL_ISA_PORTABLE; isa < LSL_ISA_COUNT; ++isa) {
        const lsl_kernels *k;
        if (!lsl_isa_supported(isa)) continue;
        CHECK(lsl_isa_set(isa) == LSL_OK);
        k = lsl_kernels_active();
        for (round = 0; round < ROUNDS; ++round) {
            for (j = 0; j < H; ++j) {
                seed = seed * 1103515245u + 12345u;
                x[j] = round == 0 && j < (int)(sizeof edges / sizeof edges[0])
                           ? edges[j]
                           : (float)ldexp(1.0 + (seed >> 9) / 8388608.0, (int)((seed >> 3) % 46) - 40) * ((seed & 1) ? -1.0f : 1.0f);
            }
            memset(gates, 0, sizeof gates);
            for (j = 0; j < H; ++j) gates[H + j] = x[j], c[j] = 1.0f;
            k->lstm_pointwise(H, gates, c, h);
            memcpy(sigmoid_x, c, sizeof c);
            memset(gates, 0, sizeof gates);
            memcpy(c, x, sizeof c);
            k->lstm_pointwise(H, gates, c, h);
            for (j = 0; j < H; ++j) {
                const float want = h[j] + 0.5f;
                if (memcmp(&want, &sigmoid_x[j], sizeof want) != 0 && bad++ < 5)
                    fprintf(stderr, "%s: sigmoid(%.9g) = %.9g, tanh(x / 2) / 2 + 1/2 = %.9g\n", lsl_isa_name(isa),
                            x[j], sigmoid_x[j], want);
            }
        }
    }
    CHECK(bad == 0);
    lsl_isa_set(LSL_ISA_AUTO);
}

static void test_int8_every_isa(int act) {
    enum { I = 5, H = 16, T = 6 };
    static int8_t wih[4 * H * I], whh[4 * H * H];
    static float sih[4 * H], shh[4 * H], bias[4 * H];
    static float xs[2 * T * I], both[LSL_ISA_COUNT][2 * T * H], one[T * H];
    unsigned seed = 7;
    int i, isa;
    void *work;
    /* one to three rows: the AVX2 table's two-digit form (up to LSL_D15_KMAX columns, past
     * it the three digits), the VNNI tables' limbs */
    check_int8_matmul(act, 1, 37);
    check_int8_matmul(act, 2, 300);
    check_int8_matmul(act, 1, 1100);
    check_int8_matmul(act, 3, 37);
    /* many rows: the AVX2-family tables switch to unpacked panels (LSL_UNPACK_ROWS: 4), whose
     * work must fit in what lsl_matmul_bytes reserves (checked under AddressSanitizer) */
    check_int8_matmul(act, 16, 300);
    check_int8_matmul(act, 21, 129);
    check_int8_matmul(act, 33, 300);
    if (act == LSL_ACT_DYN8) {
        check_dyn8_long_sums(1, 4096, 3, 1);
        check_dyn8_long_sums(3, 4096, 3, 1);
        check_dyn8_long_sums(1, 4400, 6, 0);
    }

    {
        lsl_layer layer;
        lsl_model model;
        size_t b1 = lsl_matrix_packed_bytes(4 * H, I, LSL_I8, act);
        size_t b2 = lsl_matrix_packed_bytes(4 * H, H, LSL_I8, act), need;
        void *p1 = amalloc(b1), *p2 = amalloc(b2);
        const double wmax = act == LSL_ACT_DYN7 ? 64 : 200; /* DYN7 packs 7-bit weights only */
        for (i = 0; i < 4 * H * I; ++i) wih[i] = (int8_t)(frand(&seed) * wmax);
        for (i = 0; i < 4 * H * H; ++i) whh[i] = (int8_t)(frand(&seed) * wmax);
        for (i = 0; i < 4 * H; ++i) {
            sih[i] = 0.01f;
            shh[i] = 0.02f;
            bias[i] = (float)frand(&seed);
        }
        for (i = 0; i < 2 * T * I; ++i) xs[i] = (float)(2 * frand(&seed));
        memset(&layer, 0, sizeof(layer));
        memset(&model, 0, sizeof(model));
        layer.cell = LSL_LSTM;
        layer.input_size = I;
        layer.hidden_size = H;
        layer.num_directions = 1;
        CHECK(lsl_matrix_pack(&layer.dir[0].w_ih, 4 * H, I, LSL_I8, act, wih, sih, p1, b1) == LSL_OK);
        CHECK(lsl_matrix_pack(&layer.dir[0].w_hh, 4 * H, H, LSL_I8, act, whh, shh, p2, b2) == LSL_OK);
        layer.dir[0].b_ih = bias;
        layer.dir[0].b_hh = bias;
        model.num_layers = 1;
        model.layers = &layer;
        need = lsl_model_run_bytes(&model, 2, T);
        work = amalloc(need);
        for (isa = LSL_ISA_PORTABLE; isa < LSL_ISA_COUNT; ++isa) {
            if (!lsl_isa_supported(isa)) continue;
            CHECK(lsl_isa_set(isa) == LSL_OK);
            CHECK(lsl_model_run(&model, 2, T, xs, NULL, NULL, both[isa], NULL, work, need) == LSL_OK);
            for (i = 0; i < 2; ++i) {
                CHECK(lsl_model_run(&model, 1, T, xs + i * T * I, NULL, NULL, one, NULL, work, need) == LSL_OK);
                CHECK(memcmp(one, both[isa] + i * T * H, sizeof(one)) == 0);
            }
        }
        /* a VNNI table and its twin share all float code: the same bits */
        if (act != LSL_ACT_FLOAT && lsl_isa_supported(LSL_ISA_AVX2_VNNI))
            CHECK(memcmp(both[LSL_ISA_AVX2_VNNI], both[LSL_ISA_AVX2], sizeof(both[0])) == 0);
        if (act != LSL_ACT_FLOAT && lsl_isa_supported(LSL_ISA_AVX512_VNNI))
            CHECK(memcmp(both[LSL_ISA_AVX512_VNNI], both[LSL_ISA_AVX512], sizeof(both[0])) == 0);
        /* the NEON tables' float code (quantizer, element-wise updates) is the portable
         * kernels': for dynamic int8 the whole LSTM gives the portable bits */
        if (act != LSL_ACT_FLOAT && lsl_isa_supported(LSL_ISA_NEON))
            CHECK(memcmp(both[LSL_ISA_NEON], both[LSL_ISA_PORTABLE], sizeof(both[0])) == 0);
        if (act != LSL_ACT_FLOAT && lsl_isa_supported(LSL_ISA_NEON_DOTPROD))
            CHECK(memcmp(both[LSL_ISA_NEON_DOTPROD], both[LSL_ISA_PORTABLE], sizeof(both[0])) == 0);
        lsl_isa_set(LSL_ISA_AUTO);
        free(p1);
        free(p2);
        free(work);
    }
}

/* Run a loaded model on 2 sequences of 3 steps (zeros, or token 0): a model that
 * passed the loader's checks must run without touching memory it does not own. */
static void run_once(const lsl_model *m) {
    const int32_t batch = 2, steps = 3, in = lsl_model_input_size(m);
    const size_t wbytes = lsl_model_run_bytes(m, batch, steps);
    const int tokens = m->embedding.num > 0;
    float *x = calloc((size_t)batch * steps * (size_t)(in > 0 ? in : 1), sizeof(float));
    int32_t *tok = calloc((size_t)batch * steps, sizeof(int32_t));
    float *out = malloc(lsl_model_run_out_floats(m, steps) * batch * sizeof(float) + 4);
    void *work = amalloc(wbytes ? wbytes : 64);
    CHECK(x && tok && out && work);
    if (x && tok && out && work)
        CHECK(lsl_model_run(m, batch, steps, tokens ? NULL : x, tokens ? tok : NULL, NULL, out, NULL, work,
                            wbytes) == LSL_OK);
    free(x);
    free(tok);
    free(out);
    free(work);
}

static void fuzz_file(const char *path) {
    FILE *f = fopen(path, "rb");
    long len;
    unsigned char *data, *copy;
    unsigned seed = 12345;
    size_t need = 0, cut;
    int i, rc, loaded = 0;
    CHECK(f != NULL);
    if (!f) return;
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    fseek(f, 0, SEEK_SET);
    data = malloc((size_t)len);
    copy = malloc((size_t)len);
    CHECK(fread(data, 1, (size_t)len, f) == (size_t)len);
    fclose(f);

    CHECK(lsl_load(data, (size_t)len, LSL_ACT_FLOAT, NULL, 0, NULL, &need) == LSL_OK);
    {
        void *arena = amalloc(need);
        const lsl_model *m = NULL;
        CHECK(lsl_load(data, (size_t)len, LSL_ACT_DYN8, NULL, 0, NULL, &need) == LSL_OK);
        free(arena);
        arena = amalloc(need);
        CHECK(lsl_load(data, (size_t)len, LSL_ACT_DYN8, arena, need, &m, NULL) == LSL_OK);
        CHECK(m != NULL && lsl_model_check(m) == LSL_OK);
        CHECK(lsl_load(data, (size_t)len, LSL_ACT_DYN8, arena, need - 1, &m, NULL) == LSL_ERR_BUFFER);
        free(arena);
        /* block-sparse matrices kept sparse whatever the table would run faster */
        CHECK(lsl_load(data, (size_t)len, LSL_ACT_DYN8 | LSL_LOAD_KEEP_SPARSE, NULL, 0, NULL, &need) == LSL_OK);
        arena = amalloc(need);
        CHECK(lsl_load(data, (size_t)len, LSL_ACT_DYN8 | LSL_LOAD_KEEP_SPARSE, arena, need, &m, NULL) == LSL_OK);
        CHECK(m != NULL && lsl_model_check(m) == LSL_OK && !lsl_matrix_from_sparse(&m->layers[0].dir[0].w_hh));
        free(arena);
        /* 7-bit states: a dynamic mode only; they load (and check) with any weights, 8 bits
         * kept where the recurrent weights are not 7-bit */
        CHECK(lsl_load(data, (size_t)len, LSL_ACT_FLOAT | LSL_LOAD_H7, NULL, 0, NULL, &need) == LSL_ERR_ARG);
        CHECK(lsl_load(data, (size_t)len, LSL_ACT_DYN16 | LSL_LOAD_H7, NULL, 0, NULL, &need) == LSL_OK);
        arena = amalloc(need);
        CHECK(lsl_load(data, (size_t)len, LSL_ACT_DYN16 | LSL_LOAD_H7, arena, need, &m, NULL) == LSL_OK);
        CHECK(m != NULL && lsl_model_check(m) == LSL_OK);
        run_once(m);
        free(arena);
    }
    /* every truncation: the declared size no longer fits */
    for (cut = 0; cut < (size_t)len; cut += 1 + cut / 64) {
        rc = lsl_load(data, cut, LSL_ACT_FLOAT, NULL, 0, NULL, &need);
        CHECK(rc != LSL_OK);
    }
    /* random byte flips -- in the header and tables for even i, anywhere (the sparse
     * rowptr / bcol and the low-rank factors live past the tables) for odd i -- then a
     * full load if it sizes, and a run of whatever loaded; every other pair of flips
     * keeps block-sparse matrices sparse (else the table may unpack them dense) */
    for (i = 0; i < 3000; ++i) {
        const int32_t act = (i & 2) ? (LSL_ACT_FLOAT | LSL_LOAD_KEEP_SPARSE) : LSL_ACT_FLOAT;
        int flips = 1 + i % 3, j;
        long span = (i & 1) ? len : (len < 2048 ? len : 2048);
        memcpy(copy, data, (size_t)len);
        for (j = 0; j < flips; ++j) {
            seed = seed * 1103515245u + 12345u;
            copy[(seed >> 4) % (unsigned long)span] ^= (unsigned char)(1u << ((seed >> 20) % 8));
        }
        rc = lsl_load(copy, (size_t)len, act, NULL, 0, NULL, &need);
        if (rc == LSL_OK && need < ((size_t)1 << 28)) {
            void *arena = amalloc(need);
            const lsl_model *m = NULL;
            rc = lsl_load(copy, (size_t)len, act, arena, need, &m, NULL);
            if (rc == LSL_OK) {
                ++loaded;
                CHECK(lsl_model_check(m) == LSL_OK);
                run_once(m);
            }
            free(arena);
        }
    }
    fprintf(stderr, "fuzz: %d of 3000 mutated files still loaded (flips in padding or values)\n", loaded);
    free(data);
    free(copy);
}

#if defined(LSL_HAVE_X86)
/* lsl_isa_x86_decide on CPUs and OS states this machine may not have: the x86 tables a
 * CPU's cpuid bits and XCR0 give. An OS that saves no ZMM state (XCR0 without bits 5-7)
 * must not get the AVX-512 tables though the CPU has them, one without YMM state no AVX
 * table at all: QEMU's user mode always reports both saved, so only this reaches it. */
static unsigned x86_tables(uint32_t leaf1_ecx, uint32_t max_leaf, uint32_t leaf7_ebx, uint32_t leaf7_ecx,
                           uint32_t leaf7_1_eax, uint64_t xcr0) {
    lsl_x86_cpu cpu;
    int sup[LSL_ISA_COUNT] = {0}, level;
    unsigned mask = 0;
    memset(&cpu, 0, sizeof cpu);
    cpu.leaf1_ecx = leaf1_ecx;
    cpu.max_leaf = max_leaf;
    cpu.max_sub7 = 1;
    cpu.leaf7_ebx = leaf7_ebx;
    cpu.leaf7_ecx = leaf7_ecx;
    cpu.leaf7_1_eax = leaf7_1_eax;
    cpu.xcr0 = xcr0;
    lsl_isa_x86_decide(&cpu, sup);
    for (level = 0; level < LSL_ISA_COUNT; ++level) mask |= sup[level] ? 1u << level : 0u;
    return mask;
}

static void test_x86_decide(void) {
    const uint32_t osxsave = 1u << 27, avx = 1u << 28, fma = 1u << 12, l1 = osxsave | avx | fma;
    const uint32_t avx2 = 1u << 5, f = 1u << 16, dq = 1u << 17, bw = 1u << 30, vl = 1u << 31;
    const uint32_t avx512 = avx2 | f | dq | bw | vl, vnni512 = 1u << 11, avxvnni = 1u << 4;
    const uint64_t ymm = 0x7, zmm = 0xE7; /* x87, XMM, YMM (+ opmask, ZMM_Hi256, Hi16_ZMM) */
    const unsigned A2 = 1u << LSL_ISA_AVX2, A512 = 1u << LSL_ISA_AVX512, V512 = 1u << LSL_ISA_AVX512_VNNI;
#if defined(LSL_HAVE_AVXVNNI)
    const unsigned V2 = 1u << LSL_ISA_AVX2_VNNI; /* (the EVEX test build adds it to AVX-512 VNNI: same cases) */
#else
    const unsigned V2 = 0; /* no avx2-vnni table in this build */
#endif
    int bit;
    /* a Sapphire Rapids: everything, then the OS's state taken away a piece at a time */
    CHECK(x86_tables(l1, 0x20, avx512, vnni512, avxvnni, zmm) == (A2 | V2 | A512 | V512));
    CHECK(x86_tables(l1, 0x20, avx512, vnni512, avxvnni, ymm) == (A2 | V2)); /* no ZMM state */
    for (bit = 5; bit <= 7; ++bit) /* opmask, ZMM_Hi256, Hi16_ZMM: each is needed */
        CHECK(x86_tables(l1, 0x20, avx512, vnni512, 0, zmm & ~(1u << bit)) == A2);
    CHECK(x86_tables(l1, 0x20, avx512, vnni512, avxvnni, 0x3) == 0); /* no YMM state */
    CHECK(x86_tables(l1, 0x20, avx512, vnni512, avxvnni, 0x5) == 0); /* no XMM state */
    CHECK(x86_tables(l1 & ~osxsave, 0x20, avx512, vnni512, avxvnni, zmm) == 0);
    CHECK(x86_tables(l1 & ~avx, 0x20, avx512, vnni512, avxvnni, zmm) == 0);
    CHECK(x86_tables(l1 & ~fma, 0x20, avx512, vnni512, avxvnni, zmm) == 0);
    CHECK(x86_tables(l1, 6, avx512, vnni512, avxvnni, zmm) == 0); /* no leaf 7 */
    /* AVX-512 needs each of F, DQ, BW and VL; VNNI needs AVX-512 */
    CHECK(x86_tables(l1, 0x20, avx512 & ~f, vnni512, 0, zmm) == A2);
    CHECK(x86_tables(l1, 0x20, avx512 & ~dq, vnni512, 0, zmm) == A2);
    CHECK(x86_tables(l1, 0x20, avx512 & ~bw, vnni512, 0, zmm) == A2);
    CHECK(x86_tables(l1, 0x20, avx512 & ~vl, vnni512, 0, zmm) == A2);
    CHECK(x86_tables(l1, 0x20, avx512, 0, 0, zmm) == (A2 | A512));
    /* an Alder Lake (AVX2 + AVX-VNNI, no AVX-512) and a Zen 3 (AVX2 only) */
    CHECK(x86_tables(l1, 0x20, avx2, 0, avxvnni, ymm) == (A2 | V2));
    CHECK(x86_tables(l1, 0x10, avx2, 0, 0, ymm) == A2);
    CHECK(x86_tables(l1, 0x10, 0, 0, avxvnni, ymm) == 0); /* AVX-VNNI needs AVX2 */
}
#endif

int main(int argc, char **argv) {
    int isa, best = lsl_isa_best(), forced = -1;
    const char *env = getenv("LSTMLITE_ISA");
    /* LSTMLITE_ISA set: it must name a table this CPU runs, and the default table
     * (before any lsl_isa_set) is that one; the output names it, so a test run under an
     * emulated CPU can assert which table the environment chose */
    if (env && *env) {
        CHECK(lsl_isa_from_env() == LSL_OK);
        forced = lsl_isa_current();
    }
    CHECK(lsl_isa_supported(best) && lsl_isa_supported(LSL_ISA_PORTABLE));
    for (isa = LSL_ISA_PORTABLE; isa < LSL_ISA_COUNT; ++isa) {
        CHECK(lsl_isa_parse(lsl_isa_name(isa)) == isa);
        if (!lsl_isa_supported(isa)) {
            CHECK(lsl_isa_set(isa) == LSL_ERR_ISA);
            continue;
        }
        test_layer(LSL_LSTM, 13, 37, 9, isa);
        test_layer(LSL_GRU, 13, 37, 9, isa);
        test_layer(LSL_LSTM, 3, 16, 5, isa);
        test_layer(LSL_GRU, 40, 64, 6, isa);
    }
    CHECK(lsl_isa_set(LSL_ISA_COUNT) == LSL_ERR_ISA);
    test_sigmoid_is_half_tanh();
    test_quantize_rows_every_isa();
    test_pack_refuses();
    test_expand_csr();
    test_nan_reaches_every_output();
    test_nan_stays_in_its_row();
#if defined(LSL_HAVE_X86)
    test_float_codes();
    test_x86_decide();
#endif
    test_int8_every_isa(LSL_ACT_DYN8);
    test_sparse_every_isa();
    test_int8_every_isa(LSL_ACT_DYN16); /* both matrices so (the C API packs any LSL_I8 so) */
    test_int8_every_isa(LSL_ACT_DYN7);  /* 7-bit weights and activations */
    test_int8_every_isa(LSL_ACT_FLOAT);
    CHECK(lsl_isa_parse("sse9") == LSL_ERR_ISA && lsl_isa_parse("auto") == LSL_ISA_AUTO);
    CHECK(strcmp(lsl_strerror(LSL_ERR_FORMAT), "malformed .lsl model file") == 0);
    for (isa = 1; isa < argc; ++isa) fuzz_file(argv[isa]);
    if (failures) {
        fprintf(stderr, "%d checks failed\n", failures);
        return 1;
    }
    printf("ok (best ISA %s;", lsl_isa_name(best));
    if (forced >= 0) printf(" LSTMLITE_ISA chose %s;", lsl_isa_name(forced));
    printf(" ran");
    for (isa = LSL_ISA_PORTABLE; isa < LSL_ISA_COUNT; ++isa)
        if (lsl_isa_supported(isa)) printf(" %s", lsl_isa_name(isa));
    printf(")\n");
    return 0;
}
