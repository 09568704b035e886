/*
 * lsl_parallel.c -- whole-sequence runs with the batch split across threads.
 *
 * Sequences of a batch are independent, so B rows are cut into `threads` contiguous
 * chunks and each chunk is an ordinary lsl_model_run on its own slice of the inputs,
 * lengths and outputs, with its own workspace. The weights are shared read-only. The
 * state buffer is not row-contiguous (per layer and direction it holds h for all B
 * rows, then c for all B rows), so each chunk gathers its rows of the caller's state
 * into its workspace, runs, and scatters the final state back.
 *
 * No kernel mixes rows (dynamic activation scales are per row), so each row's result
 * is the one-thread run's: bit for bit with dynamic int8 activations (integer
 * products), and within float rounding otherwise (≤ 1e-5 relative), where a kernel
 * may tile a smaller batch differently or pick another method for it (the AVX2
 * float-activation int8 GEMMs do at 4 rows); the tests check both on every ISA.
 *
 * POSIX threads; built with LSL_NO_THREADS (or on a platform without them) the
 * chunks run one after the other on the calling thread, with the same result. The
 * microcontroller C never includes this file.
 */
#if !defined(LSL_NO_THREADS) && !defined(_WIN32)
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#define LSL_USE_PTHREADS 1
#endif

#include <string.h>

#include "lsl_internal.h"

/* Widths (floats per row) of the state's blocks, in buffer order: per layer and
 * direction, h (P or H) and, for an LSTM, c (H). Returns the number of blocks. */
static int32_t state_blocks(const lsl_model *model, int32_t *widths, int32_t cap) {
    int32_t k, d, n = 0;
    for (k = 0; k < model->num_layers; ++k) {
        const lsl_layer *l = &model->layers[k];
        const int32_t out = l->proj_size > 0 ? l->proj_size : l->hidden_size;
        for (d = 0; d < l->num_directions; ++d) {
            if (n + 2 > cap) return -1;
            widths[n++] = out;
            if (l->cell == LSL_LSTM) widths[n++] = l->hidden_size;
        }
    }
    return n;
}

#define MAX_BLOCKS 256  /* 64 layers x 2 directions x (h, c): far beyond any real model */

/* Copy rows [r0, r0 + rows) of a `batch`-row state into (to_chunk) or out of a
 * `rows`-row chunk state. */
static void move_rows(const int32_t *widths, int32_t blocks, int32_t batch, int32_t r0, int32_t rows,
                      float *full, float *chunk, int to_chunk) {
    size_t off_full = 0, off_chunk = 0;
    int32_t j;
    for (j = 0; j < blocks; ++j) {
        const size_t w = (size_t)widths[j];
        float *a = full + off_full + (size_t)r0 * w;
        float *b = chunk + off_chunk;
        if (to_chunk)
            memcpy(b, a, (size_t)rows * w * sizeof(float));
        else
            memcpy(a, b, (size_t)rows * w * sizeof(float));
        off_full += (size_t)batch * w;
        off_chunk += (size_t)rows * w;
    }
}

typedef struct {
    const lsl_model *model;
    int32_t rows, t;
    const float *x;
    const int32_t *tokens, *lengths;
    float *out, *state; /* state: the chunk's own copy, or NULL (zeros) */
    void *work;
    size_t work_bytes;
    int rc;
} chunk_job;

static void run_chunk(chunk_job *j) {
    j->rc = lsl_model_run(j->model, j->rows, j->t, j->x, j->tokens, j->lengths, j->out, j->state, j->work,
                          j->work_bytes);
}

#if defined(LSL_USE_PTHREADS)
static void *run_chunk_thread(void *arg) {
    run_chunk((chunk_job *)arg);
    return NULL;
}
#endif

/* Rows of chunk i when `batch` rows are cut into n nearly equal chunks. */
static int32_t chunk_rows(int32_t batch, int32_t n, int32_t i) { return batch / n + (i < batch % n ? 1 : 0); }

static int32_t effective_threads(int32_t batch, int32_t threads) {
    if (threads < 1) threads = 1;
    if (threads > LSL_MAX_THREADS) threads = LSL_MAX_THREADS;
    return threads < batch ? threads : batch;
}

/* Bytes of one chunk's slot: its run workspace and, when a state is given, its state. */
static size_t slot_bytes(const lsl_model *model, int32_t rows, int32_t t) {
    const size_t run = lsl_model_run_bytes(model, rows, t);
    if (run == 0) return 0;
    return lsl_round_up(run, LSL_ALIGN) + lsl_fl(lsl_model_state_floats(model, rows));
}

size_t lsl_model_run_parallel_bytes(const lsl_model *model, int32_t batch, int32_t t, int32_t threads) {
    const int32_t n = effective_threads(batch, threads);
    size_t total = 0;
    int32_t i;
    if (batch <= 0 || t <= 0) return 0;
    for (i = 0; i < n; ++i) {
        const size_t s = slot_bytes(model, chunk_rows(batch, n, i), t);
        if (s == 0) return 0;
        total += s;
    }
    return total;
}

int lsl_model_run_parallel(const lsl_model *model, int32_t threads, int32_t batch, int32_t t, const float *x,
                           const int32_t *tokens, const int32_t *lengths, float *out, float *state, void *work,
                           size_t work_bytes) {
    chunk_job jobs[LSL_MAX_THREADS];
    int32_t widths[MAX_BLOCKS], blocks = 0, n, i, r0 = 0;
    const size_t out_row = lsl_model_run_out_floats(model, t);
    const int32_t in_row = model->embedding.num > 0 ? 1 : lsl_model_input_size(model);
    char *slot = (char *)work;
    int rc = lsl_model_check(model);
    if (rc != LSL_OK) return rc;
    if (!out || !work || batch <= 0 || t <= 0) return LSL_ERR_ARG;
    if (((uintptr_t)work) % LSL_ALIGN) return LSL_ERR_ARG;
    n = effective_threads(batch, threads);
    if (n == 1) return lsl_model_run(model, batch, t, x, tokens, lengths, out, state, work, work_bytes);
    if (work_bytes < lsl_model_run_parallel_bytes(model, batch, t, threads)) return LSL_ERR_BUFFER;
    if (state) {
        blocks = state_blocks(model, widths, MAX_BLOCKS);
        if (blocks < 0) return LSL_ERR_UNSUPPORTED;
    }
    for (i = 0; i < n; ++i) {
        chunk_job *j = &jobs[i];
        const int32_t rows = chunk_rows(batch, n, i);
        const size_t run = lsl_round_up(lsl_model_run_bytes(model, rows, t), LSL_ALIGN);
        j->model = model;
        j->rows = rows;
        j->t = t;
        j->x = x ? x + (size_t)r0 * t * in_row : NULL;
        j->tokens = tokens ? tokens + (size_t)r0 * t : NULL;
        j->lengths = lengths ? lengths + r0 : NULL;
        j->out = out + (size_t)r0 * out_row;
        j->work = slot;
        j->work_bytes = run;
        j->state = state ? (float *)(slot + run) : NULL;
        if (state) move_rows(widths, blocks, batch, r0, rows, state, j->state, 1);
        j->rc = LSL_OK;
        slot += slot_bytes(model, rows, t);
        r0 += rows;
    }
#if defined(LSL_USE_PTHREADS)
    {
        pthread_t tid[LSL_MAX_THREADS];
        int started[LSL_MAX_THREADS] = {0};
        for (i = 1; i < n; ++i) started[i] = pthread_create(&tid[i], NULL, run_chunk_thread, &jobs[i]) == 0;
        run_chunk(&jobs[0]);
        for (i = 1; i < n; ++i) {
            if (started[i])
                pthread_join(tid[i], NULL);
            else
                run_chunk(&jobs[i]); /* no thread to be had: run it here, same result */
        }
    }
#else
    for (i = 0; i < n; ++i) run_chunk(&jobs[i]);
#endif
    for (i = 0; i < n; ++i)
        if (jobs[i].rc != LSL_OK) return jobs[i].rc;
    if (state)
        for (i = 0, r0 = 0; i < n; r0 += jobs[i].rows, ++i)
            move_rows(widths, blocks, batch, r0, jobs[i].rows, state, jobs[i].state, 0);
    return LSL_OK;
}
