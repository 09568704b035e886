/*
 * fuzz_load.c -- libFuzzer target for the .lsl loader (lsl_load) and whatever it loads.
 *
 * Input: the bytes of a .lsl file. Each input is tried twice: as given, and -- for
 * version 5 files, whose CRC-32 would otherwise refuse almost every mutation before the
 * parser sees it -- with the last four bytes replaced by the CRC of the rest, so the
 * fuzzer explores the table parser and the unpackers behind the checksum.
 * A file that loads (sizing pass, then the real load into an arena of exactly that
 * size) must pass lsl_model_check and then runs: a whole sequence (B = 2, T = 3, with
 * lengths) and three streaming steps on fixed inputs, under both activation modes.
 * Any crash, sanitizer report, leak or hang is a bug in the runtime.
 *
 * Build (tests/c/fuzz/_fuzz.py does this):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
 *         -I src/lstmlite/runtime tests/c/fuzz/fuzz_load.c src/lstmlite/runtime/lsl_*.c -lm
 */
#define _POSIX_C_SOURCE 200112L /* posix_memalign */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lsl.h"

/* What one input may ask for: a larger model is refused by the harness (a real caller
 * decides from `need` too), so a 100-byte file cannot make the fuzzer spend seconds
 * filling a gigabyte arena. */
#define MAX_ARENA ((size_t)64 << 20)
#define MAX_WORK ((size_t)64 << 20)

static void *amalloc(size_t n) {
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? n : 64) != 0) return NULL;
    return p;
}

static uint32_t crc32_ieee(const uint8_t *p, size_t n) {
    uint32_t crc = 0xFFFFFFFFu;
    size_t i;
    int k;
    for (i = 0; i < n; ++i) {
        crc ^= p[i];
        for (k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return crc ^ 0xFFFFFFFFu;
}

/* Fixed, finite inputs: a few different magnitudes and signs. */
static void fill_inputs(float *x, size_t n) {
    size_t i;
    for (i = 0; i < n; ++i) x[i] = (float)((int)(i % 7) - 3) * 0.75f;
}

static void run_model(const lsl_model *m) {
    const int32_t B = 2, T = 3, I = lsl_model_input_size(m);
    const int token_model = m->embedding.num > 0;
    int32_t lengths[2] = {3, 1}, tokens[6], i;
    size_t work_bytes, state_n, out_n;
    float *x = NULL, *out = NULL, *state = NULL;
    void *work = NULL;
    int rc;
    if (I <= 0 || (size_t)I > (1u << 20)) return;
    for (i = 0; i < B * T; ++i) tokens[i] = token_model ? (int32_t)((i * 7919u) % (uint32_t)m->embedding.num) : 0;

    /* whole sequences */
    work_bytes = lsl_model_run_bytes(m, B, T);
    out_n = lsl_model_run_out_floats(m, T) * B;
    state_n = lsl_model_state_floats(m, B);
    if (work_bytes > 0 && work_bytes <= MAX_WORK && out_n > 0 && state_n > 0) {
        x = (float *)malloc(sizeof(float) * (size_t)B * T * I);
        out = (float *)malloc(sizeof(float) * out_n);
        state = (float *)calloc(state_n, sizeof(float));
        work = amalloc(work_bytes);
        if (x && out && state && work) {
            fill_inputs(x, (size_t)B * T * I);
            rc = lsl_model_run(m, B, T, token_model ? NULL : x, token_model ? tokens : NULL, lengths, out, state, work,
                               work_bytes);
            if (rc != LSL_OK && rc != LSL_ERR_UNSUPPORTED) abort(); /* a checked model with valid inputs */
            rc = lsl_model_run(m, B, T, token_model ? NULL : x, token_model ? tokens : NULL, lengths, out, NULL, work,
                               work_bytes - 1);
            if (rc != LSL_ERR_BUFFER) abort();
            if (token_model) { /* an id outside the vocabulary is refused, never read */
                int32_t bad[6] = {0, 0, 0, 0, 0, m->embedding.num};
                rc = lsl_model_run(m, B, T, NULL, bad, NULL, out, NULL, work, work_bytes);
                if (rc != LSL_ERR_TOKEN) abort();
            }
        }
        free(x);
        free(out);
        free(state);
        free(work);
        x = out = state = NULL;
        work = NULL;
    }

    /* streaming: three steps, state carried */
    work_bytes = lsl_model_step_bytes(m, B);
    out_n = lsl_model_step_out_floats(m) * B;
    if (work_bytes > 0 && work_bytes <= MAX_WORK && out_n > 0 && state_n > 0) {
        x = (float *)malloc(sizeof(float) * (size_t)B * I);
        out = (float *)malloc(sizeof(float) * out_n);
        state = (float *)calloc(state_n, sizeof(float));
        work = amalloc(work_bytes);
        if (x && out && state && work) {
            fill_inputs(x, (size_t)B * I);
            for (i = 0; i < 3; ++i) {
                rc = lsl_model_step(m, B, token_model ? NULL : x, token_model ? tokens + 2 * i : NULL, state, out,
                                    work, work_bytes);
                if (rc != LSL_OK && rc != LSL_ERR_UNSUPPORTED) abort();
            }
        }
        free(x);
        free(out);
        free(state);
        free(work);
    }
}

static void try_load(const uint8_t *data, size_t size) {
    /* float, dynamic, and 16-bit inputs with 7-bit states (the recurrent matrices' own act) */
    static const int32_t acts[] = {LSL_ACT_FLOAT, LSL_ACT_DYN8, LSL_ACT_DYN16 | LSL_LOAD_H7};
    size_t a;
    for (a = 0; a < sizeof acts / sizeof acts[0]; ++a) {
        const int32_t act = acts[a];
        size_t need = 0;
        void *arena;
        const lsl_model *m = NULL;
        int rc = lsl_load(data, size, act, NULL, 0, NULL, &need);
        if (rc != LSL_OK) return; /* refused: the point is that it returned */
        if (need == 0 || need > MAX_ARENA) return;
        arena = amalloc(need);
        if (!arena) return;
        if (need > 64) { /* one byte short is refused, never overrun */
            rc = lsl_load(data, size, act, arena, need - 1, &m, NULL);
            if (rc != LSL_ERR_BUFFER && rc != LSL_OK && rc != LSL_ERR_FORMAT) abort();
        }
        m = NULL;
        rc = lsl_load(data, size, act, arena, need, &m, NULL);
        if (rc == LSL_OK) {
            if (!m || lsl_model_check(m) != LSL_OK) abort(); /* loaded means runnable */
            run_model(m);
        }
        free(arena);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    try_load(data, size);
    /* a version 5 file with its checksum made right: the parser behind the CRC */
    if (size >= 16 && memcmp(data, "LSTMLITE", 8) == 0 && data[8] == 5 && data[9] == 0 && data[10] == 0 &&
        data[11] == 0) {
        uint8_t *copy = (uint8_t *)malloc(size);
        uint32_t crc;
        if (!copy) return 0;
        memcpy(copy, data, size);
        crc = crc32_ieee(copy, size - 4);
        copy[size - 4] = (uint8_t)crc;
        copy[size - 3] = (uint8_t)(crc >> 8);
        copy[size - 2] = (uint8_t)(crc >> 16);
        copy[size - 1] = (uint8_t)(crc >> 24);
        try_load(copy, size);
        free(copy);
    }
    return 0;
}
