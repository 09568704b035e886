/*
 * bench_isa.c -- one LSTM layer (B = 1) run through every kernel level this CPU has,
 * fp32, int8 (float activations) and dynamic int8, to compare the portable C against the SIMD kernels when the
 * whole runtime is built for the host:
 *
 *   gcc -std=c99 -O3 -march=native -ffp-contract=off -fno-math-errno \
 *       -I src/lstmlite/runtime benchmarks/c/bench_isa.c src/lstmlite/runtime/lsl_*.c -lm -o bench_isa
 *   ./bench_isa [input_size hidden_size seq_len [runs]]      (default 40 128 100 200)
 *
 * Prints the median of `runs` (at most 1000) runs of lsl_model_run per (level, form), in
 * microseconds; the levels of a form take turns, run by run.
 * benchmarks/bench_portable.py builds and runs it, and stores the results.
 */
#define _POSIX_C_SOURCE 200112L /* posix_memalign, clock_gettime */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lsl.h"

#define MAX_RUNS 1000

static void *amalloc(size_t n) {
    void *p = NULL;
    return posix_memalign(&p, 64, n ? n : 64) == 0 ? p : NULL;
}

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A random (rows x cols) matrix packed as dtype/act; int8 values come with scale 1/64. */
static void pack(lsl_matrix *m, int32_t rows, int32_t cols, int32_t dtype, int32_t act, unsigned *seed) {
    size_t bytes = lsl_matrix_packed_bytes(rows, cols, dtype, act), n = (size_t)rows * cols, i;
    float *f = malloc(n * sizeof(float)), *scale = malloc((size_t)rows * sizeof(float));
    int8_t *q = malloc(n);
    void *buf = amalloc(bytes);
    for (i = 0; i < n; ++i) {
        *seed = *seed * 1103515245u + 12345u;
        q[i] = (int8_t)((*seed >> 16) % 255 - 127);
        f[i] = q[i] / 64.0f;
    }
    for (i = 0; i < (size_t)rows; ++i) scale[i] = 1.0f / 64.0f;
    if (lsl_matrix_pack(m, rows, cols, dtype, act, dtype == LSL_F32 ? (const void *)f : (const void *)q,
                        dtype == LSL_F32 ? NULL : scale, buf, bytes) != LSL_OK) {
        fprintf(stderr, "pack failed\n");
        exit(1);
    }
    free(f);
    free(q);
    free(scale);
}

/* Median microseconds of one lsl_model_run of the layer over a (1, T, I) sequence on
 * each of the n kernel levels in `levels`, into med[]: the levels take turns, one run
 * each per round, so that a machine that slows down for a while (a shared host) slows
 * every level alike and their ratios hold. */
static void time_layer(const lsl_model *model, int32_t I, int32_t H, int32_t T, int runs, const int *levels, int n,
                       double *med) {
    size_t need = lsl_model_run_bytes(model, 1, T);
    float *x = malloc(sizeof(float) * T * I), *out = malloc(sizeof(float) * T * H);
    void *work = amalloc(need);
    static double t[32][MAX_RUNS];
    double t0;
    int32_t i;
    int l;
    for (i = 0; i < T * I; ++i) x[i] = (float)((i * 37 % 101) / 50.0 - 1.0);
    for (i = 0; i < runs; ++i)
        for (l = 0; l < n; ++l) {
            if (lsl_isa_set(levels[l]) != LSL_OK) exit(1);
            t0 = now_us();
            if (lsl_model_run(model, 1, T, x, NULL, NULL, out, NULL, work, need) != LSL_OK) exit(1);
            t[l][i] = now_us() - t0;
        }
    for (l = 0; l < n; ++l) {
        qsort(t[l], (size_t)runs, sizeof(double), cmp_double);
        med[l] = t[l][runs / 2];
    }
    free(x);
    free(out);
    free(work);
}

int main(int argc, char **argv) {
    int32_t I = argc > 3 ? atoi(argv[1]) : 40, H = argc > 3 ? atoi(argv[2]) : 128, T = argc > 3 ? atoi(argv[3]) : 100;
    int runs = argc > 4 ? atoi(argv[4]) : 200;
    const char *forms[3] = {"fp32", "int8", "int8-dyn"};
    int level, f, levels[32], n, l;
    double med[32];
    if (I < 1 || H < 1 || T < 1 || runs < 1 || runs > MAX_RUNS) {
        fprintf(stderr, "usage: bench_isa [input_size hidden_size seq_len [runs (1..%d)]]\n", MAX_RUNS);
        return 2;
    }
    for (f = 0; f < 3; ++f) {
        unsigned seed = 1;
        lsl_layer layer;
        lsl_model model;
        float *bias = calloc((size_t)4 * H, sizeof(float));
        int32_t dtype = f ? LSL_I8 : LSL_F32, act = f == 2 ? LSL_ACT_DYN8 : LSL_ACT_FLOAT;
        memset(&layer, 0, sizeof layer);
        memset(&model, 0, sizeof model);
        layer.cell = LSL_LSTM;
        layer.input_size = I;
        layer.hidden_size = H;
        layer.num_directions = 1;
        pack(&layer.dir[0].w_ih, 4 * H, I, dtype, act, &seed);
        pack(&layer.dir[0].w_hh, 4 * H, H, dtype, act, &seed);
        layer.dir[0].b_ih = bias;
        layer.dir[0].b_hh = bias;
        model.num_layers = 1;
        model.layers = &layer;
        n = 0;
        for (level = 0; level < 32; ++level)
            if (lsl_isa_set(level) == LSL_OK) levels[n++] = level;
        time_layer(&model, I, H, T, runs, levels, n, med);
        for (l = 0; l < n; ++l)
            printf("%-9s %-13s I=%d H=%d T=%d B=1: %8.1f us\n", forms[f], lsl_isa_name(levels[l]), I, H, T, med[l]);
        lsl_isa_set(LSL_ISA_AUTO);
        free(bias);
    }
    return 0;
}
