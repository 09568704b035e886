/*
 * lsl_kern_avx512_sparse.c -- AVX-512 VNNI kernels for (1, 4)-block sparse int8
 * matrices (LSL_I8_SPARSE; the ELL layout is described in lsl_internal.h).
 *
 * A zmm register holds one panel (16 output rows), as in the dense kernels; the
 * difference is the activation operand. Dense: every lane multiplies the same 4
 * activations (a broadcast). Sparse: lane r multiplies the 4 activations of its own
 * block, fetched with one permute (vpermd / vpermt2d) from the window's 128
 * activation bytes kept in two registers. So a slot costs a permute and a vpdpbusd,
 * and zero blocks cost nothing.
 *
 * Float activations use the three 8-bit limbs of the dense VNNI kernel (24-bit fixed
 * point, ~1e-7 relative): three permutes and three vpdpbusd per slot.
 *
 * A LSL_MATRIX_SHARED16 matrix ((16, 4)-block pruning) has all 16 lanes read the same
 * block in every slot: its kernels (`S` set) broadcast the 4 activation bytes from
 * memory instead of permuting a window held in registers, and take the slot's block
 * number from one index byte, where the permutes cost a shuffle per slot and two
 * registers per activation row and limb (I=40/H=128 80 % (16, 4)-sparse dynamic int8,
 * Zen 4, a C harness: the input projection of T = 100 rows 17.1 -> 16.0 us, the fused
 * step's sequence 49.5 -> 48.3 us). row1 keeps the permutes (see there).
 *
 * The products of several rows (the input projection) take the bias in their epilogue
 * (store_rows) instead of a copy into every row of y first: 16.0 -> 9.9 us there.
 */
#include <string.h>

#include "lsl_internal.h"

#if defined(LSL_HAVE_X86)
#include "lsl_kern_avx512.h" /* T512VNNI, dpbusd_m, cell_stage */

#define WIN_BLOCKS (LSL_SPARSE_WIN / 4)
#define MAXMB 8 /* activation rows per tile (one limb); 3 with three limbs */

/* Each lane's 4 activation bytes: entry `idx` of the window's table (t0, t1).
 * vpermt2d reads only the low 5 bits of each index, so the higher index bytes packed
 * into the same word do not matter. (A window of at most 16 blocks could use vpermd
 * with one table: it costs the same.) */
AINL T512VNNI __m512i fetch(__m512i idx, __m512i t0, __m512i t1) { return _mm512_permutex2var_epi32(t0, idx, t1); }

/* One slot for MB rows x L limbs into accumulator set a (0, or 1 for the second set a
 * single row alternates with, to halve the dependency chains). */
AINL T512VNNI void slot(const int L, const int MB, __m512i idx, const int8_t *wp,
                        __m512i t[3][MAXMB][2], __m512i acc[3][MAXMB], const int a) {
    const __m512i wv = _mm512_loadu_si512((const void *)wp);
    int l, i;
    for (l = 0; l < L; ++l)
        for (i = 0; i < MB; ++i)
            acc[l][i + a] = _mm512_dpbusd_epi32(acc[l][i + a], fetch(idx, t[l][i][0], t[l][i][1]), wv);
}

/* The 4 activation bytes at p in every lane (vpbroadcastd from memory). */
AINL T512VNNI __m512i quad512(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return _mm512_set1_epi32(v);
}

/* One slot of a LSL_MATRIX_SHARED16 matrix for MB rows x L limbs (row i, limb l at
 * row + l lstride + i ldu; the slot's block at byte `at`) into accumulator set a. */
AINL T512VNNI void shared_slot(const int L, const int MB, const uint8_t *row, int32_t ldu, size_t lstride, size_t at,
                               const int8_t *wp, __m512i acc[3][MAXMB], const int a) {
    int l, i;
    if (L == 1 && MB == 1) {
        acc[0][a] = dpbusd_m(acc[0][a], quad512(row + at), wp);
        return;
    }
    {
        const __m512i wv = _mm512_loadu_si512((const void *)wp);
        for (l = 0; l < L; ++l)
            for (i = 0; i < MB; ++i)
                acc[l][i + a] = dpbusd_r(acc[l][i + a], quad512(row + l * lstride + (size_t)i * ldu + at), wv);
    }
}

/* All n slots of one segment (data at sd) for MB activation rows; `off` is the
 * window's byte offset in each activation row. S: a LSL_MATRIX_SHARED16 matrix. */
AINL T512VNNI void segment(const int L, const int MB, const int S, const unsigned char *sd, int32_t n,
                           const uint8_t *u, int32_t ldu, size_t lstride, size_t off, __m512i acc[3][MAXMB]) {
    __m512i t[3][MAXMB][2];
    const unsigned char *ip = sd;
    const int8_t *wp = (const int8_t *)(sd + lsl_segment_index_bytes(n));
    const int A = MB == 1 ? 1 : 0; /* one row: 4 accumulator sets (slot j -> j % 4) */
    int32_t j;
    int l, i;
    if (S) { /* lane 0's index word: the block numbers of slots j .. j + 3 in its bytes */
        const uint8_t *row = u + off;
        for (j = 0; j + 4 <= n; j += 4, ip += 64, wp += 256) {
            shared_slot(L, MB, row, ldu, lstride, (size_t)4 * ip[0], wp, acc, 0);
            shared_slot(L, MB, row, ldu, lstride, (size_t)4 * ip[1], wp + 64, acc, A);
            shared_slot(L, MB, row, ldu, lstride, (size_t)4 * ip[2], wp + 128, acc, 2 * A);
            shared_slot(L, MB, row, ldu, lstride, (size_t)4 * ip[3], wp + 192, acc, 3 * A);
        }
        switch (n - j) {
        case 3: shared_slot(L, MB, row, ldu, lstride, (size_t)4 * ip[2], wp + 128, acc, 2 * A); /* fall through */
        case 2: shared_slot(L, MB, row, ldu, lstride, (size_t)4 * ip[1], wp + 64, acc, A); /* fall through */
        case 1: shared_slot(L, MB, row, ldu, lstride, (size_t)4 * ip[0], wp, acc, 0); /* fall through */
        default: break;
        }
        return;
    }
    for (l = 0; l < L; ++l)
        for (i = 0; i < MB; ++i) {
            const uint8_t *row = u + l * lstride + (size_t)i * ldu + off;
            t[l][i][0] = _mm512_loadu_si512((const void *)row);
            t[l][i][1] = _mm512_loadu_si512((const void *)(row + 64));
        }
    for (j = 0; j + 4 <= n; j += 4, ip += 64, wp += 256) {
        const __m512i v = _mm512_loadu_si512((const void *)ip);
        slot(L, MB, v, wp, t, acc, 0);
        slot(L, MB, _mm512_srli_epi32(v, 8), wp + 64, t, acc, A);
        slot(L, MB, _mm512_srli_epi32(v, 16), wp + 128, t, acc, 2 * A);
        slot(L, MB, _mm512_srli_epi32(v, 24), wp + 192, t, acc, 3 * A);
    }
    if (j < n) {
        const __m512i v = _mm512_loadu_si512((const void *)ip);
        slot(L, MB, v, wp, t, acc, 0);
        if (j + 1 < n) slot(L, MB, _mm512_srli_epi32(v, 8), wp + 64, t, acc, A);
        if (j + 2 < n) slot(L, MB, _mm512_srli_epi32(v, 16), wp + 128, t, acc, 2 * A);
    }
}

/* y rows = (bias, or y) + the panel's results: the dense VNNI epilogue (offset
 * correction on the first limb, limbs combined, row scale times activation scale). */
AINL T512VNNI void store_rows(const int L, const int MB, const lsl_matrix *w, int32_t row0, __m512i acc[3][MAXMB],
                              const float *xs, const float *bias, float *y, int32_t ldy) {
    const int32_t valid = w->rows - row0;
    const __mmask16 mk = valid >= LSL_PANEL ? (__mmask16)0xFFFF : (__mmask16)((1u << valid) - 1u);
    const __m512i corr = _mm512_slli_epi32(_mm512_maskz_loadu_epi32(mk, w->wsum + row0), 7);
    const __m512 sc = _mm512_maskz_loadu_ps(mk, w->scale + row0);
    int l, i;
    if (MB == 1)
        for (l = 0; l < L; ++l)
            acc[l][0] = _mm512_add_epi32(_mm512_add_epi32(acc[l][0], acc[l][1]), _mm512_add_epi32(acc[l][2], acc[l][3]));
    for (i = 0; i < MB; ++i) {
        float *yr = y + (size_t)i * ldy + row0;
        __m512 v = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[0][i], corr));
        if (L == 3) {
            v = _mm512_fmadd_ps(v, _mm512_set1_ps(256.0f), _mm512_cvtepi32_ps(acc[1][i]));
            v = _mm512_fmadd_ps(v, _mm512_set1_ps(256.0f), _mm512_cvtepi32_ps(acc[2][i]));
        }
        v = _mm512_mul_ps(v, _mm512_mul_ps(sc, _mm512_set1_ps(xs[i])));
        _mm512_mask_storeu_ps(yr, mk, _mm512_add_ps(_mm512_maskz_loadu_ps(mk, bias ? bias + row0 : yr), v));
    }
}

/* Panel p for MB activation rows: every window's segment, then the epilogue. */
AINL T512VNNI void panel(const int L, const int MB, const int S, const lsl_matrix *w, int32_t p, const uint8_t *u,
                         int32_t ldu, size_t lstride, const float *xs, const float *bias, float *y, int32_t ldy) {
    const unsigned char *base = (const unsigned char *)w->data;
    const lsl_sparse_hdr *hdr = (const lsl_sparse_hdr *)base;
    const int32_t *tab = (const int32_t *)(base + hdr->seg_offset);
    __m512i acc[3][MAXMB];
    int32_t win;
    int l, i;
    for (l = 0; l < L; ++l)
        for (i = 0; i < (MB == 1 ? 4 : MB); ++i) acc[l][i] = _mm512_setzero_si512();
    for (win = 0; win < hdr->windows; ++win) {
        const int32_t seg = p * hdr->windows + win, n = tab[2 * seg + 1];
        const unsigned char *sd = base + tab[2 * seg];
        const size_t off = (size_t)win * LSL_SPARSE_WIN;
        if (n > 0) segment(L, MB, S, sd, n, u, ldu, lstride, off, acc);
    }
    store_rows(L, MB, w, p * LSL_PANEL, acc, xs, bias, y, ldy);
}

/* row1's epilogue of panel p from its (one set per limb) sums: a full panel unmasked. */
AINL T512VNNI void row1_store(const int L, const lsl_matrix *w, int32_t p, const __m512i sums[3], __m512 vxs,
                              float xs, float *y) {
    const int32_t row0 = p * LSL_PANEL;
    if (w->rows - row0 >= LSL_PANEL) {
        const __m512i corr = _mm512_slli_epi32(_mm512_loadu_si512((const void *)(w->wsum + row0)), 7);
        __m512 v = _mm512_cvtepi32_ps(_mm512_sub_epi32(sums[0], corr));
        if (L == 3) {
            v = _mm512_fmadd_ps(v, _mm512_set1_ps(256.0f), _mm512_cvtepi32_ps(sums[1]));
            v = _mm512_fmadd_ps(v, _mm512_set1_ps(256.0f), _mm512_cvtepi32_ps(sums[2]));
        }
        v = _mm512_mul_ps(v, _mm512_mul_ps(_mm512_loadu_ps(w->scale + row0), vxs));
        _mm512_storeu_ps(y + row0, _mm512_add_ps(_mm512_loadu_ps(y + row0), v));
    } else {
        __m512i acc[3][MAXMB];
        int l;
        for (l = 0; l < L; ++l) {
            acc[l][0] = sums[l];
            acc[l][1] = acc[l][2] = acc[l][3] = _mm512_setzero_si512();
        }
        store_rows(L, 1, w, row0, acc, &xs, NULL, y, 0);
    }
}

/* One activation row (the recurrent step, where per-panel overhead matters: a panel
 * has only ~10 slots): the panels in a plain loop, full panels stored unmasked, and a
 * panel's epilogue, which waits for its last products, issued after the next panel's
 * products, which do not. The permutes serve shared-block matrices too: broadcasting
 * from memory measured the same at I=40/H=128 and 5 % slower at I=128/H=256 (80 %
 * (16, 4)-sparse, Zen 4), where each window's table serves about 6 slots a panel. */
AINL T512VNNI void row1(const int L, const lsl_matrix *w, const uint8_t *u, size_t lstride, float xs, float *y,
                        int rev) {
    const unsigned char *base = (const unsigned char *)w->data;
    const lsl_sparse_hdr *hdr = (const lsl_sparse_hdr *)base;
    const int32_t *tab = (const int32_t *)(base + hdr->seg_offset);
    const int32_t panels = hdr->panels, nwin = hdr->windows;
    const __m512 vxs = _mm512_set1_ps(xs);
    __m512i prev[3];
    int32_t g, win, pp = -1;
    int l, i;
    for (l = 0; l < 3; ++l) prev[l] = _mm512_setzero_si512();
    for (g = 0; g < panels; ++g) {
        const int32_t p = rev ? panels - 1 - g : g;
        const int32_t *e = tab + 2 * (size_t)p * nwin;
        __m512i acc[3][MAXMB];
        for (l = 0; l < L; ++l)
            for (i = 0; i < 4; ++i) acc[l][i] = _mm512_setzero_si512();
        for (win = 0; win < nwin; ++win, e += 2)
            segment(L, 1, 0, base + e[0], e[1], u, 0, lstride, (size_t)win * LSL_SPARSE_WIN, acc);
        if (pp >= 0) row1_store(L, w, pp, prev, vxs, xs, y);
        for (l = 0; l < L; ++l)
            prev[l] = _mm512_add_epi32(_mm512_add_epi32(acc[l][0], acc[l][1]), _mm512_add_epi32(acc[l][2], acc[l][3]));
        pp = p;
    }
    if (pp >= 0) row1_store(L, w, pp, prev, vxs, xs, y);
}

#define PANEL_CALL(L, MB) panel(L, MB, S, w, p, u + (size_t)i * ldu, ldu, lstride, xs + i, bias, y + (size_t)i * ldy, ldy)

/* All m >= 2 activation rows in tiles of up to MAXMB (one limb) or 3 (three limbs)
 * rows, each tile through every panel, first to last (or last to first: `rev`, see
 * lsl_internal.h); y = (bias, or y where it is NULL) + product. Tiles outer: a tile's
 * epilogue then writes its rows of y from left to right, where panels outer wrote 64
 * bytes in every row of y (2 KB apart at 4H = 512) before the next 64. 80 % (16, 4)-
 * sparse dynamic int8, Zen 4, a C harness: the input projection of T = 100 rows 14.0 ->
 * 9.1 us at I=40/H=128 and 43.5 -> 33.3 us at I=128/H=256; the whole layer 47.0 -> 43.8
 * and 138.2 -> 133.0 us (fastest of 8 runs, taking turns). The weights, a fifth of a
 * dense matrix's, are read once a tile. (The AVX2 sparse and dense drivers gained the
 * same way alone, but not in the layer, whose chunks of rows stay in L2: not changed.) */
AINL T512VNNI void driver_for(const int L, const int S, const lsl_matrix *w, int32_t m, const uint8_t *u, int32_t ldu,
                              size_t lstride, const float *xs, const float *bias, float *y, int32_t ldy, int rev) {
    const int32_t panels = lsl_panels(w->rows), tile = L == 1 ? MAXMB : 3;
    int32_t g, i;
    for (i = 0; i < m; i += tile) {
        const int32_t mb = m - i < tile ? m - i : tile;
        for (g = 0; g < panels; ++g) {
            const int32_t p = rev ? panels - 1 - g : g;
            if (L == 1) {
                switch (mb) {
                case 1: PANEL_CALL(1, 1); break;
                case 2: PANEL_CALL(1, 2); break;
                case 3: PANEL_CALL(1, 3); break;
                case 4: PANEL_CALL(1, 4); break;
                case 5: PANEL_CALL(1, 5); break;
                case 6: PANEL_CALL(1, 6); break;
                case 7: PANEL_CALL(1, 7); break;
                default: PANEL_CALL(1, 8); break;
                }
            } else {
                switch (mb) {
                case 1: PANEL_CALL(3, 1); break;
                case 2: PANEL_CALL(3, 2); break;
                default: PANEL_CALL(3, 3); break;
                }
            }
        }
    }
}

/* One row: row1 (the permutes whatever the sharing). More: driver_for with the
 * matrix's sharing, broadcasts for a LSL_MATRIX_SHARED16 one. */
AINL T512VNNI void driver(const int L, const lsl_matrix *w, int32_t m, const uint8_t *u, int32_t ldu, size_t lstride,
                          const float *xs, const float *bias, float *y, int32_t ldy, int rev) {
    if (m == 1) {
        lsl_bias_rows(1, bias, w->rows, y, ldy);
        row1(L, w, u, lstride, xs[0], y, rev);
    } else if (w->reserved & LSL_MATRIX_SHARED16)
        driver_for(L, 1, w, m, u, ldu, lstride, xs, bias, y, ldy, rev);
    else
        driver_for(L, 0, w, m, u, ldu, lstride, xs, bias, y, ldy, rev);
}

T512VNNI void lsl_avx512_gemm_sparse_dyn8(const lsl_matrix *w, int32_t m, const uint8_t *u, int32_t ldu,
                                          const float *xs, const float *bias, float *y, int32_t ldy, int rev) {
    driver(1, w, m, u, ldu, 0, xs, bias, y, ldy, rev);
}

/* Float activations: three limb planes of m rows of whole windows, then the kernel. */
T512VNNI void lsl_avx512_gemm_sparse_i8(const lsl_matrix *w, int32_t m, const float *x, int32_t ldx, float *y,
                                        int32_t ldy, int rev, void *work) {
    const int32_t upad = lsl_sparse_upad(w->kpad);
    const size_t lstride = (size_t)m * upad;
    uint8_t *u = (uint8_t *)work;
    float *xs = (float *)((char *)work + lsl_round_up(3 * lstride, LSL_ALIGN));
    lsl_avx512_quantize_limbs(m, w->cols, upad, x, ldx, u, lstride, xs);
    lsl_avx2_float_rows(w, m, x, ldx, xs, y, ldy, rev);
    driver(3, w, m, u, upad, lstride, xs, NULL, y, ldy, rev);
}

/* ---- fused single-stream LSTM step ----------------------------------------------- *
 * The dense fused step (lsl_kern_avx512.c) for a sparse W_hh: hidden units 16 jb ..
 * 16 jb + 15 have their gates i, f, g, o in panels jb + q H/16 (q = 0..3) of the 4H x
 * H matrix -- four panels far apart, each with its own segments -- and the products
 * of those four panels end with the units' gate pre-activations in registers, so the
 * cell update runs there (no store and reload of the 4H gates), spread over the next
 * block's products. The float operations are row1's epilogue and lstm_pointwise's, in
 * the same order, so the results equal the unfused sparse path bit for bit (the int32
 * sums are exact in any order), and so the dense int8 form's. */

/* One slot of gate panel q: each lane's 4 activations by one permute per limb. One
 * limb: accumulator set `a` (0 or 1: slots alternate, two chains per panel); three
 * limbs: set = limb (12 chains already). */
AINL T512VNNI void gate_slot(const int L, __m512i idx, const int8_t *wp, __m512i t[3][2], __m512i acc[3][4],
                             int q, const int a) {
    if (L == 1) {
        acc[a][q] = dpbusd_m(acc[a][q], fetch(idx, t[0][0], t[0][1]), wp);
    } else {
        const __m512i wv = _mm512_loadu_si512((const void *)wp);
        int l;
        for (l = 0; l < L; ++l) acc[l][q] = dpbusd_r(acc[l][q], fetch(idx, t[l][0], t[l][1]), wv);
    }
}

/* All n slots of one segment (data at sd) of gate panel q. */
AINL T512VNNI void gate_segment(const int L, const unsigned char *sd, int32_t n, __m512i t[3][2],
                                __m512i acc[3][4], int q) {
    const unsigned char *ip = sd;
    const int8_t *wp = (const int8_t *)(sd + lsl_segment_index_bytes(n));
    int32_t j;
    for (j = 0; j + 4 <= n; j += 4, ip += 64, wp += 256) {
        const __m512i v = _mm512_loadu_si512((const void *)ip);
        gate_slot(L, v, wp, t, acc, q, 0);
        gate_slot(L, _mm512_srli_epi32(v, 8), wp + 64, t, acc, q, 1);
        gate_slot(L, _mm512_srli_epi32(v, 16), wp + 128, t, acc, q, 0);
        gate_slot(L, _mm512_srli_epi32(v, 24), wp + 192, t, acc, q, 1);
    }
    if (j < n) {
        const __m512i v = _mm512_loadu_si512((const void *)ip);
        gate_slot(L, v, wp, t, acc, q, 0);
        if (j + 1 < n) gate_slot(L, _mm512_srli_epi32(v, 8), wp + 64, t, acc, q, 1);
        if (j + 2 < n) gate_slot(L, _mm512_srli_epi32(v, 16), wp + 128, t, acc, q, 0);
    }
}

/* gate_segment for a LSL_MATRIX_SHARED16 matrix: each slot's 4 activation bytes (of
 * every limb: row + l lstride) broadcast from memory by the slot's index byte. */
AINL T512VNNI void gate_segment_shared(const int L, const unsigned char *sd, int32_t n, const uint8_t *row,
                                       size_t lstride, __m512i acc[3][4], int q) {
    const unsigned char *ip = sd;
    const int8_t *wp = (const int8_t *)(sd + lsl_segment_index_bytes(n));
    int32_t j;
    int l;
#define SHARED_GATE_SLOT(J, A)                                                                         \
    do {                                                                                               \
        const size_t at_ = (size_t)4 * ip[J];                                                          \
        if (L == 1) {                                                                                  \
            acc[A][q] = dpbusd_m(acc[A][q], quad512(row + at_), wp + 64 * (J));                        \
        } else {                                                                                       \
            const __m512i wv_ = _mm512_loadu_si512((const void *)(wp + 64 * (J)));                     \
            for (l = 0; l < L; ++l) acc[l][q] = dpbusd_r(acc[l][q], quad512(row + l * lstride + at_), wv_); \
        }                                                                                              \
    } while (0)
    for (j = 0; j + 4 <= n; j += 4, ip += 64, wp += 256) {
        SHARED_GATE_SLOT(0, 0);
        SHARED_GATE_SLOT(1, 1);
        SHARED_GATE_SLOT(2, 0);
        SHARED_GATE_SLOT(3, 1);
    }
    switch (n - j) {
    case 3: SHARED_GATE_SLOT(2, 0); /* fall through */
    case 2: SHARED_GATE_SLOT(1, 1); /* fall through */
    case 1: SHARED_GATE_SLOT(0, 0); /* fall through */
    default: break;
    }
#undef SHARED_GATE_SLOT
}

/* Products of block jb into gate[] (pre-activations), windows outer and the four gate
 * panels inner (each window's activation table is loaded once for all four); the five
 * stages of the previous block's cell update (pend, units pj .. pj + 15; pj < 0: none)
 * are spread over the 4 x windows segment visits, as the dense step spreads them over
 * its k loop. */
AINL T512VNNI void lstm_block_sparse_for(const int L, const int S, const lsl_matrix *w, int32_t hidden, int32_t jb,
                                         const uint8_t *u, size_t lstride, float xs, const float *g, __m512 *gate,
                                         __m512 *pend, int32_t pj, float *c, float *h) {
    const unsigned char *base = (const unsigned char *)w->data;
    const lsl_sparse_hdr *hdr = (const lsl_sparse_hdr *)base;
    const int32_t *tab = (const int32_t *)(base + hdr->seg_offset);
    const int32_t nwin = hdr->windows, nb = hidden / LSL_PANEL, j = jb * LSL_PANEL, visits = 4 * nwin;
    __m512i acc[3][4];
    int32_t win, it = 0, next = 0;
    int l, q, st = pj >= 0 ? 0 : 5;
    for (l = 0; l < 3; ++l)
        for (q = 0; q < 4; ++q) acc[l][q] = _mm512_setzero_si512();
    for (win = 0; win < nwin; ++win) {
        __m512i t[3][2];
        for (l = 0; l < (S ? 0 : L); ++l) { /* the permutes' tables (none for S) */
            const uint8_t *row = u + l * lstride + (size_t)win * LSL_SPARSE_WIN;
            t[l][0] = _mm512_loadu_si512((const void *)row);
            t[l][1] = _mm512_loadu_si512((const void *)(row + 64));
        }
        /* unrolled, so that acc[.][q] are registers (a runtime q puts them in memory) */
#pragma GCC unroll 4
        for (q = 0; q < 4; ++q, ++it) {
            const int32_t *e = tab + 2 * ((size_t)(q * nb + jb) * nwin + win);
            if (st < 5 && it >= next) {
                cell_stage(st, pend, pj, c, h);
                ++st;
                next = st * visits / 5;
            }
            if (S)
                gate_segment_shared(L, base + e[0], e[1], u + (size_t)win * LSL_SPARSE_WIN, lstride, acc, q);
            else
                gate_segment(L, base + e[0], e[1], t, acc, q);
        }
    }
    for (; st < 5; ++st) cell_stage(st, pend, pj, c, h);
    for (q = 0; q < 4; ++q) { /* row1's epilogue, into registers */
        if (L == 1) acc[0][q] = _mm512_add_epi32(acc[0][q], acc[1][q]); /* one limb, two sets */
        gate[q] = gate_from_sums(L, w, q * hidden + j, acc[0][q], acc[1][q], L == 3 ? acc[2][q] : acc[0][q], xs, g);
    }
}

/* lstm_block_sparse_for as the lsl_lstm_block_fn lstm_blocks takes: the permutes,
 * or (lstm_block_shared16) a LSL_MATRIX_SHARED16 matrix's broadcasts. */
AINL T512VNNI void lstm_block_sparse(const int L, const lsl_matrix *w, int32_t hidden, int32_t jb, const uint8_t *u,
                                     size_t lstride, float xs, const float *g, __m512 *gate, __m512 *pend, int32_t pj,
                                     float *c, float *h) {
    lstm_block_sparse_for(L, 0, w, hidden, jb, u, lstride, xs, g, gate, pend, pj, c, h);
}
AINL T512VNNI void lstm_block_shared16(const int L, const lsl_matrix *w, int32_t hidden, int32_t jb, const uint8_t *u,
                                       size_t lstride, float xs, const float *g, __m512 *gate, __m512 *pend,
                                       int32_t pj, float *c, float *h) {
    lstm_block_sparse_for(L, 1, w, hidden, jb, u, lstride, xs, g, gate, pend, pj, c, h);
}

/* h is quantized first, as the unfused path does (rows of whole windows, padded), so
 * the blocks may overwrite it as they finish. */
T512VNNI void lsl_avx512_lstm_step1_sparse(const lsl_matrix *w, int32_t hidden, const float *g, float *c, float *h,
                                           void *work, int rev) {
    const int32_t upad = lsl_sparse_upad(w->kpad);
    uint8_t *u = (uint8_t *)work;
    float xs;
    if (w->act == LSL_ACT_DYN8) {
        lsl_avx512_quantize_rows(1, hidden, upad, h, hidden, u, &xs, 127);
        if (w->reserved & LSL_MATRIX_SHARED16)
            lstm_blocks(lstm_block_shared16, 1, w, hidden, u, 0, xs, g, c, h, rev);
        else
            lstm_blocks(lstm_block_sparse, 1, w, hidden, u, 0, xs, g, c, h, rev);
    } else {
        lsl_avx512_quantize_limbs(1, hidden, upad, h, hidden, u, (size_t)upad, &xs);
        if (w->reserved & LSL_MATRIX_SHARED16)
            lstm_blocks(lstm_block_shared16, 3, w, hidden, u, (size_t)upad, xs, g, c, h, rev);
        else
            lstm_blocks(lstm_block_sparse, 3, w, hidden, u, (size_t)upad, xs, g, c, h, rev);
    }
}

#endif /* LSL_HAVE_X86 */
