/*
 * run_lsl.c -- load a .lsl file and print what the model outputs for a fixed input: the
 * program tests/c/test_other_cpus.py builds for other CPUs (32-bit, big-endian, aarch64)
 * and runs under QEMU, to compare the values with the same program run natively. A
 * loader that read a field in the host's byte order, or a size in 64 bits only, gives
 * other numbers there (or fails to load), where test_core.c's loading and fuzzing of the
 * same files only sees whether they load.
 *
 *   run_lsl FILE.lsl float|dynamic     prints the output count, then one value a line
 *
 * The input: batch 2, 5 steps; token ids (i * 7 + 3) mod the vocabulary for a model
 * with an embedding, else features ((37 i) mod 101) / 50 - 1, exact in float.
 */
#define _POSIX_C_SOURCE 200112L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lsl.h"

enum { BATCH = 2, STEPS = 5 };

static void *amalloc(size_t n) {
    void *p = NULL;
    return posix_memalign(&p, 64, n ? n : 64) == 0 ? p : NULL;
}

int main(int argc, char **argv) {
    FILE *f;
    long len;
    unsigned char *data;
    size_t need = 0, wbytes, n, i;
    void *arena, *work;
    const lsl_model *m = NULL;
    float *x, *out;
    int32_t *tok, in, act, rc;
    if (argc != 3 || (strcmp(argv[2], "float") != 0 && strcmp(argv[2], "dynamic") != 0)) {
        fprintf(stderr, "usage: run_lsl FILE.lsl float|dynamic\n");
        return 2;
    }
    act = strcmp(argv[2], "float") == 0 ? LSL_ACT_FLOAT : LSL_ACT_DYN8;
    if (!(f = fopen(argv[1], "rb")) || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) <= 0) {
        fprintf(stderr, "run_lsl: cannot read %s\n", argv[1]);
        return 1;
    }
    fseek(f, 0, SEEK_SET);
    data = malloc((size_t)len);
    if (!data || fread(data, 1, (size_t)len, f) != (size_t)len) return 1;
    fclose(f);
    if ((rc = lsl_load(data, (size_t)len, act, NULL, 0, NULL, &need)) != LSL_OK ||
        (rc = lsl_load(data, (size_t)len, act, arena = amalloc(need), need, &m, NULL)) != LSL_OK) {
        fprintf(stderr, "run_lsl: lsl_load: %d\n", (int)rc);
        return 1;
    }
    in = lsl_model_input_size(m);
    n = lsl_model_run_out_floats(m, STEPS) * BATCH;
    wbytes = lsl_model_run_bytes(m, BATCH, STEPS);
    x = malloc(sizeof(float) * BATCH * STEPS * (size_t)(in > 0 ? in : 1));
    tok = malloc(sizeof(int32_t) * BATCH * STEPS);
    out = malloc(sizeof(float) * n);
    work = amalloc(wbytes);
    if (!x || !tok || !out || !work) return 1;
    for (i = 0; i < (size_t)BATCH * STEPS * (size_t)(in > 0 ? in : 1); ++i)
        x[i] = (float)((int)(i * 37 % 101) - 50) / 50.0f;
    for (i = 0; i < (size_t)BATCH * STEPS; ++i)
        tok[i] = m->embedding.num > 0 ? (int32_t)((i * 7 + 3) % (size_t)m->embedding.num) : 0;
    rc = lsl_model_run(m, BATCH, STEPS, m->embedding.num > 0 ? NULL : x, m->embedding.num > 0 ? tok : NULL, NULL, out,
                       NULL, work, wbytes);
    if (rc != LSL_OK) {
        fprintf(stderr, "run_lsl: lsl_model_run: %d\n", (int)rc);
        return 1;
    }
    printf("%zu\n", n);
    for (i = 0; i < n; ++i) printf("%.9g\n", out[i]);
    free(data);
    free(arena);
    free(x);
    free(tok);
    free(out);
    free(work);
    return 0;
}
