/*
 * int_extremes.c -- runs one integer-only layer (lsl_int_run) on parameters and inputs
 * read from a file, and writes the outputs, for tests/runtime/test_integer_extremes.py:
 * built with -fsanitize=address,undefined -fno-sanitize-recover=all, it shows that the
 * extreme cases (every weight +-127 / -128, inputs and state at the ends of their types,
 * the largest multipliers) run without undefined behaviour and give the reference's
 * integers.
 *
 * Input (little-endian): int32 cell, I, H, F, bits, B, T; int8 w_ih (G*H*I), w_hh
 * (G*H*H); int32 b_ih, b_hh, m_ih, shift_ih, m_hh, shift_hh (G*H each); int16 x (B*T*I),
 * state (per lsl_int_state_values). Output: int32 rc of lsl_int_model_check, int32 rc of
 * lsl_int_run, int16 out (B*T*H), state.
 * Usage: int_extremes IN OUT
 */
#define _POSIX_C_SOURCE 200112L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lsl.h"

static void *slurp(FILE *f, size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p || fread(p, 1, n, f) != n) {
        fprintf(stderr, "short input\n");
        exit(2);
    }
    return p;
}

int main(int argc, char **argv) {
    int32_t hdr[7], rc[2];
    FILE *f, *o;
    lsl_int_direction d;
    lsl_int_model m;
    int32_t G, I, H, B, T;
    size_t rows, nstate, need;
    int16_t *x, *state, *out;
    void *work = NULL;
    if (argc != 3 || !(f = fopen(argv[1], "rb"))) {
        fprintf(stderr, "usage: int_extremes IN OUT\n");
        return 2;
    }
    if (fread(hdr, 4, 7, f) != 7) return 2;
    G = hdr[0] == LSL_LSTM ? 4 : 3;
    I = hdr[1];
    H = hdr[2];
    B = hdr[5];
    T = hdr[6];
    rows = (size_t)G * H;
    memset(&d, 0, sizeof(d));
    d.input_size = I;
    d.hidden_size = H;
    d.cell_frac = hdr[3];
    d.input_bits = hdr[4];
    d.w_ih = slurp(f, rows * I);
    d.w_hh = slurp(f, rows * H);
    d.b_ih = slurp(f, rows * 4);
    d.b_hh = slurp(f, rows * 4);
    d.m_ih = slurp(f, rows * 4);
    d.shift_ih = slurp(f, rows * 4);
    d.m_hh = slurp(f, rows * 4);
    d.shift_hh = slurp(f, rows * 4);
    m.cell = hdr[0];
    m.num_layers = 1;
    m.num_directions = 1;
    m.layout = LSL_INT_ROWS;
    m.dirs = &d;
    x = slurp(f, (size_t)B * T * I * 2);
    nstate = (size_t)B * H * (hdr[0] == LSL_LSTM ? 2 : 1);
    state = slurp(f, nstate * 2);
    fclose(f);
    out = calloc((size_t)B * T * H, 2);
    rc[0] = lsl_int_model_check(&m);
    rc[1] = LSL_ERR_ARG;
    if (rc[0] == LSL_OK) {
        need = lsl_int_run_bytes(&m, B, T);
        if (posix_memalign(&work, 64, need) != 0) return 2;
        rc[1] = lsl_int_run(&m, B, T, x, NULL, out, state, work, need);
    }
    if (!(o = fopen(argv[2], "wb"))) return 2;
    fwrite(rc, 4, 2, o);
    fwrite(out, 2, (size_t)B * T * H, o);
    fwrite(state, 2, nstate, o);
    fclose(o);
    free(work);
    free(out);
    free(x);
    free(state);
    free((void *)d.w_ih);
    free((void *)d.w_hh);
    free((void *)d.b_ih);
    free((void *)d.b_hh);
    free((void *)d.m_ih);
    free((void *)d.shift_ih);
    free((void *)d.m_hh);
    free((void *)d.shift_hh);
    return 0;
}
