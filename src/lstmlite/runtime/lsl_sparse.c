/*
 * lsl_sparse.c -- packing (1, 4)-block sparse int8 matrices into the kernels' ELL
 * layout (described in lsl_internal.h) from compressed rows (rowptr, bcol, values).
 *
 * Why ELL per 16-row panel: the kernels keep one output row per SIMD lane, exactly as
 * the dense layout does, so the per-row scales, the VNNI offset correction and the
 * epilogue are shared with the dense kernels; a slot costs one permute (each lane
 * fetches its own 4 activations) and one dot-product instruction. Windows of 128
 * columns bound the permute's table to two registers.
 */
#include <string.h>

#include "lsl_internal.h"

#define WIN_BLOCKS (LSL_SPARSE_WIN / 4)

/* rowptr[r] and bcol[b] from native arrays or from little-endian file bytes. */
static int32_t rp(const lsl_csr *c, int32_t r) {
    const unsigned char *p;
    uint32_t v;
    if (!c->le) return ((const int32_t *)(const void *)c->rowptr)[r];
    p = c->rowptr + 4 * (size_t)r;
    v = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
    return v > 0x7FFFFFFFu ? -1 : (int32_t)v;
}
static int32_t bc(const lsl_csr *c, int32_t b) {
    const unsigned char *p;
    if (!c->le) return ((const uint16_t *)(const void *)c->bcol)[b];
    p = c->bcol + 2 * (size_t)b;
    return (int32_t)((uint32_t)p[0] | ((uint32_t)p[1] << 8));
}

static int32_t windows_of(int32_t kpad) { return (kpad / 4 + WIN_BLOCKS - 1) / WIN_BLOCKS; }

/* Check the compressed rows. 1 when valid. */
static int csr_ok(int32_t rows, int32_t cols, const lsl_csr *c, const int8_t *values) {
    const int32_t k4 = (cols + 3) / 4;
    int32_t r, b;
    if (rows <= 0 || cols <= 0 || !c || !c->rowptr) return 0;
    if ((int64_t)rows * (int64_t)cols > ((int64_t)1 << 30)) return 0;
    if (rp(c, 0) != 0) return 0;
    for (r = 0; r < rows; ++r)
        if (rp(c, r + 1) < rp(c, r) || rp(c, r + 1) - rp(c, r) > k4) return 0;
    if (rp(c, rows) > 0 && (!c->bcol || !values)) return 0;
    for (r = 0; r < rows; ++r)
        for (b = rp(c, r); b < rp(c, r + 1); ++b) {
            int32_t j;
            if (bc(c, b) >= k4 || (b > rp(c, r) && bc(c, b) <= bc(c, b - 1))) return 0;
            for (j = 0; j < 4; ++j) /* values past the last column must be zero */
                if (4 * bc(c, b) + j >= cols && values[4 * (size_t)b + (size_t)j] != 0) return 0;
        }
    return 1;
}

/* The blocks of row r in window w: those from *cur on (its first block past earlier
 * windows) whose column lies in w. Each row's columns increase strictly (csr_ok), so
 * they are one run; *cur moves past it. Walking the windows in order with one cursor
 * per row visits every block once: O(blocks + segments), however wide the matrix. */
static int32_t run_in_window(const lsl_csr *c, int32_t r, int32_t *cur, int32_t w) {
    const int32_t end = rp(c, r + 1);
    int32_t n = 0;
    while (*cur < end && bc(c, *cur) / WIN_BLOCKS == w) {
        ++*cur;
        ++n;
    }
    return n;
}

/* Start each row of panel p at its first block; returns the panel's row count. */
static int32_t panel_cursors(int32_t rows, const lsl_csr *c, int32_t p, int32_t cur[LSL_PANEL]) {
    int32_t i, n = rows - p * LSL_PANEL < LSL_PANEL ? rows - p * LSL_PANEL : LSL_PANEL;
    for (i = 0; i < n; ++i) cur[i] = rp(c, p * LSL_PANEL + i);
    return n;
}

/* Slots of segment (panel p, window w): the most blocks any of its rows has there. */
static int32_t segment_slots(const lsl_csr *c, int32_t p, int32_t w, int32_t n_rows, int32_t cur[LSL_PANEL]) {
    int32_t i, n = 0;
    for (i = 0; i < n_rows; ++i) {
        const int32_t k = run_in_window(c, p * LSL_PANEL + i, &cur[i], w);
        n = k > n ? k : n;
    }
    return n;
}

/* How far the lanes of segment (panel p, window w) share their blocks, from the
 * compressed rows: LSL_MATRIX_SHARED8 when, in every slot, the lanes of each half panel
 * that hold a block there hold the same one, plus LSL_MATRIX_SHARED16 when the two
 * halves' blocks are the same too; 0 otherwise. Lane r holds blocks start[r] ..
 * cur[r] - 1 of the window, in slots 0 .. cur[r] - start[r] - 1 (rows past n_rows hold
 * none). With idx (the packer's index groups of the segment), the shared index is also
 * written into the lanes that hold none there: their weights are zero, so the product
 * does not change whatever they read, and a kernel may read any lane's index.
 * lsl_sparse_runs_dense asks the same question without a packed segment (idx NULL). */
static int share_halves(const lsl_csr *c, unsigned char *idx, int32_t n, int32_t n_rows,
                        const int32_t start[LSL_PANEL], const int32_t cur[LSL_PANEL]) {
    int32_t s, h, lane;
    int flags = LSL_MATRIX_SHARED8 | LSL_MATRIX_SHARED16;
    for (s = 0; s < n; ++s) {
        int found[2] = {-1, -1};
        for (h = 0; h < 2; ++h)
            for (lane = 8 * h; lane < 8 * h + 8 && lane < n_rows; ++lane) {
                int v;
                if (s >= cur[lane] - start[lane]) continue; /* no block here */
                v = bc(c, start[lane] + s) % WIN_BLOCKS;   /* the window-local block */
                if (found[h] < 0)
                    found[h] = v;
                else if (v != found[h])
                    return 0;
            }
        for (h = 0; h < 2; ++h) /* a half with no block here reads the other's (or 0) */
            if (found[h] < 0) found[h] = found[1 - h] < 0 ? 0 : found[1 - h];
        if (found[0] != found[1]) flags &= ~LSL_MATRIX_SHARED16;
        if (idx)
            for (lane = 0; lane < LSL_PANEL; ++lane)
                idx[(size_t)64 * (size_t)(s / 4) + (size_t)(4 * lane) + (size_t)(s % 4)] =
                    (unsigned char)found[lane / 8];
    }
    return flags;
}

static size_t segment_bytes(int32_t n) { return lsl_segment_index_bytes(n) + (size_t)64 * (size_t)n; }

/* Byte offsets of the parts; the segment data size is the pattern's. */
static size_t layout(int32_t rows, int32_t kpad, const lsl_csr *c, size_t *seg_table,
                     size_t *seg_data, size_t *scale_off, size_t *wsum_off) {
    const int32_t panels = lsl_panels(rows), nwin = windows_of(kpad);
    size_t data = 0, padded_rows = (size_t)panels * LSL_PANEL;
    int32_t p, w, cur[LSL_PANEL];
    for (p = 0; p < panels; ++p) {
        const int32_t n_rows = panel_cursors(rows, c, p, cur);
        for (w = 0; w < nwin; ++w) data += segment_bytes(segment_slots(c, p, w, n_rows, cur));
    }
    *seg_table = lsl_round_up(sizeof(lsl_sparse_hdr), LSL_ALIGN);
    *seg_data = lsl_round_up(*seg_table + (size_t)panels * (size_t)nwin * 2 * sizeof(int32_t), LSL_ALIGN);
    *scale_off = lsl_round_up(*seg_data + data, LSL_ALIGN);
    *wsum_off = lsl_round_up(*scale_off + padded_rows * sizeof(float), LSL_ALIGN);
    return lsl_round_up(*wsum_off + padded_rows * sizeof(int32_t), LSL_ALIGN);
}

size_t lsl_sparse_bytes_csr(int32_t rows, int32_t cols, int32_t act, const lsl_csr *csr, const int8_t *values) {
    size_t a, b, c, d, total;
    if (act != LSL_ACT_FLOAT && act != LSL_ACT_DYN8) return 0;
    if (!csr_ok(rows, cols, csr, values)) return 0;
    { /* a row sums its kept blocks only, so the int32 bound (LSL_I8_MAX_COLS, see
         * lsl_internal.h) counts kept values per row here, not columns */
        int32_t r;
        for (r = 0; r < rows; ++r)
            if ((int64_t)(rp(csr, r + 1) - rp(csr, r)) * 4 > LSL_I8_MAX_COLS) return 0;
    }
    total = layout(rows, (cols + 3) / 4 * 4, csr, &a, &b, &c, &d);
    /* segment offsets are int32 */
    return total > (size_t)0x7FFFFFFF ? 0 : total;
}

int lsl_sparse_pack_csr(lsl_matrix *m, int32_t rows, int32_t cols, int32_t act, const lsl_csr *csr,
                        const int8_t *values, const float *scale, void *buf, size_t buf_bytes) {
    const int32_t kpad = (cols + 3) / 4 * 4, panels = lsl_panels(rows), nwin = windows_of(kpad);
    size_t seg_table, seg_data, scale_off, wsum_off, total, need, pos;
    lsl_sparse_hdr *hdr;
    int32_t *table, *ws, p, w, r;
    int m128 = 0, shared = LSL_MATRIX_SHARED8 | LSL_MATRIX_SHARED16;
    float *sc;
    unsigned char *base = (unsigned char *)buf;
    if (!m || !csr || !scale || !buf) return LSL_ERR_ARG;
    if (((uintptr_t)buf) % LSL_ALIGN) return LSL_ERR_ARG;
    need = lsl_sparse_bytes_csr(rows, cols, act, csr, values);
    if (need == 0) return rows > 0 && cols > 0 ? LSL_ERR_ARG : LSL_ERR_SHAPE;
    if (buf_bytes < need) return LSL_ERR_BUFFER;
    for (r = 0; r < rows; ++r)
        if (!(scale[r] == scale[r]) || scale[r] > 3.0e38f || scale[r] < -3.0e38f) return LSL_ERR_ARG;
    total = layout(rows, kpad, csr, &seg_table, &seg_data, &scale_off, &wsum_off);
    memset(buf, 0, total);

    hdr = (lsl_sparse_hdr *)buf;
    hdr->panels = panels;
    hdr->windows = nwin;
    hdr->blocks = rp(csr, rows);
    hdr->seg_offset = (int32_t)seg_table;
    table = (int32_t *)(base + seg_table);
    pos = seg_data;
    for (p = 0; p < panels; ++p) {
        int32_t cur[LSL_PANEL], start[LSL_PANEL];
        const int32_t n_rows = panel_cursors(rows, csr, p, cur);
        for (w = 0; w < nwin; ++w) {
            int32_t n, lane;
            unsigned char *idx, *wts;
            memcpy(start, cur, sizeof(start));
            n = segment_slots(csr, p, w, n_rows, cur); /* moves cur past window w */
            idx = base + pos;
            wts = idx + lsl_segment_index_bytes(n);
            table[2 * (p * nwin + w)] = (int32_t)pos;
            table[2 * (p * nwin + w) + 1] = n;
            hdr->slots += n;
            for (lane = 0; lane < n_rows; ++lane) {
                int32_t b, s = 0;
                for (b = start[lane]; b < cur[lane]; ++b, ++s) {
                    const int32_t col = bc(csr, b);
                    /* lane's word of group s/4, byte s%4: the window-local block */
                    idx[(size_t)64 * (size_t)(s / 4) + (size_t)(4 * lane) + (size_t)(s % 4)] =
                        (unsigned char)(col % WIN_BLOCKS);
                    memcpy(wts + (size_t)64 * (size_t)s + 4 * lane, values + 4 * (size_t)b, 4);
                }
            }
            shared &= share_halves(csr, idx, n, n_rows, start, cur);
            pos += segment_bytes(n);
        }
    }

    sc = (float *)(base + scale_off);
    ws = (int32_t *)(base + wsum_off);
    for (r = 0; r < rows; ++r) {
        int32_t b, j, s = 0;
        sc[r] = scale[r];
        for (b = rp(csr, r); b < rp(csr, r + 1); ++b)
            for (j = 0; j < 4; ++j) {
                s += values[4 * (size_t)b + (size_t)j];
                m128 |= values[4 * (size_t)b + (size_t)j] == -128;
            }
        ws[r] = s;
    }
    m->rows = rows;
    m->cols = cols;
    m->dtype = LSL_I8_SPARSE;
    m->act = act;
    m->kpad = kpad;
    m->reserved = (m128 ? 0 : LSL_MATRIX_NO_M128) | shared;
    m->data = buf;
    m->scale = sc;
    m->wsum = ws;
    return LSL_OK;
}

/* ---- sparse or dense: which form a kernel table runs faster ------------------------ */

/* The slot fill above which table `level` runs a sparse matrix slower than the same codes
 * dense, for float (act_float) or dynamic activations and by how far its lanes share
 * their blocks ([0]: not at all, [1]: LSL_MATRIX_SHARED8, [2]: LSL_MATRIX_SHARED16). The
 * fill is slots / (panels x column blocks): the share of the dense products that the
 * sparse layout still does, padding included (a panel is as long as its longest row).
 * A slot costs more than a dense column block -- unshared slots gather each lane's
 * activations, on AVX2 with four permutes and three blends -- so dense wins before the
 * fill reaches 1. Measured where sparse and dense take the same time, on two CPUs (I=40
 * H=128 T=100 B=1 whole sequences, the sparsity swept: benchmarks/bench_sparse_crossover.py,
 * docs/runtime.md "Sparse or dense, chosen at load"; Zen 4, 2026-12-05, after that day's
 * shared-block kernels, and a Xeon with AVX-VNNI, 2026-12-07): each limit is the mean of
 * the two CPUs' crossings (they differ by 0.02 to 0.06: near a crossing the forms take
 * the same time, so either side costs little); where a sweep never crossed, extrapolated
 * from its last two points. avx2-vnni (the Xeon alone: Zen 4 has no AVX-VNNI): its
 * unshared sparse kernels are the AVX2 table's gathers, no faster, while its dense
 * vpdpbusd products are a third faster, so (1, 4) blocks lost at every sparsity swept
 * (1.18 x dense at 95 %, 2.0 x at 80 %) and the limit is extrapolated below the sweep.
 * Its dynamic limits were measured again after its dense products got faster (whole
 * weight lines, registers: lsl_kern_avx2_vnni.c, 2026-12-07): (8, 4) 0.44 -> 0.38,
 * (16, 4) 0.54 -> 0.52, (1, 4) 0.08 -> 0.05 (1.41 x dense at 95 % now).
 * 1.0: every sparse matrix stays sparse (the portable C and NEON tables, not measured). */
static double sparse_fill_limit(int level, int act_float, int shared) {
    static const double avx2[2][3] = {{0.19, 0.60, 0.71}, {0.14, 0.70, 0.74}};
    static const double avx2_vnni[2][3] = {{0.05, 0.38, 0.52}, {0.09, 0.44, 0.58}};
    static const double avx512_vnni[2][3] = {{0.52, 0.54, 0.73}, {0.41, 0.44, 0.79}};
    switch (level) {
    case LSL_ISA_AVX2:
    case LSL_ISA_AVX512: /* the AVX2 table's sparse kernels */
        return avx2[act_float][shared];
    case LSL_ISA_AVX2_VNNI:
        return avx2_vnni[act_float][shared];
    case LSL_ISA_AVX512_VNNI:
        return avx512_vnni[act_float][shared];
    default:
        return 1.0;
    }
}

int lsl_sparse_runs_dense(int level, int32_t act, int32_t rows, int32_t cols, const lsl_csr *csr) {
    const int32_t kpad = (cols + 3) / 4 * 4, panels = lsl_panels(rows), nwin = windows_of(kpad);
    int64_t slots = 0;
    int32_t p, w, cur[LSL_PANEL], start[LSL_PANEL];
    int flags = LSL_MATRIX_SHARED8 | LSL_MATRIX_SHARED16;
    double fill;
    for (p = 0; p < panels; ++p) {
        const int32_t n_rows = panel_cursors(rows, csr, p, cur);
        for (w = 0; w < nwin; ++w) {
            int32_t n;
            memcpy(start, cur, sizeof(start));
            n = segment_slots(csr, p, w, n_rows, cur); /* moves cur past window w */
            slots += n;
            if (flags) flags &= share_halves(csr, NULL, n, n_rows, start, cur);
        }
    }
    fill = (double)slots / ((double)panels * (double)(kpad / 4));
    return fill > sparse_fill_limit(level, act == LSL_ACT_FLOAT, (flags & LSL_MATRIX_SHARED16) ? 2 : (flags ? 1 : 0));
}

int lsl_matrix_from_sparse(const lsl_matrix *m) {
    return m && m->dtype == LSL_I8 && (m->reserved & LSL_MATRIX_FROM_SPARSE) ? 1 : 0;
}

void lsl_sparse_expand_csr(int32_t rows, int32_t cols, const lsl_csr *csr, const int8_t *values, int8_t *codes) {
    int32_t r, b, j;
    memset(codes, 0, (size_t)rows * (size_t)cols);
    for (r = 0; r < rows; ++r)
        for (b = rp(csr, r); b < rp(csr, r + 1); ++b)
            for (j = 0; j < 4 && 4 * bc(csr, b) + j < cols; ++j)
                codes[(size_t)r * (size_t)cols + 4 * (size_t)bc(csr, b) + (size_t)j] =
                    values[4 * (size_t)b + (size_t)j];
}

size_t lsl_matrix_sparse_bytes(int32_t rows, int32_t cols, int32_t act, const int32_t *rowptr, const uint16_t *bcol,
                               const int8_t *values) {
    lsl_csr c;
    c.rowptr = (const unsigned char *)rowptr;
    c.bcol = (const unsigned char *)bcol;
    c.le = 0;
    return lsl_sparse_bytes_csr(rows, cols, act, &c, values);
}

int lsl_matrix_pack_sparse(lsl_matrix *m, int32_t rows, int32_t cols, int32_t act, const int32_t *rowptr,
                           const uint16_t *bcol, const int8_t *values, const float *scale, void *buf,
                           size_t buf_bytes) {
    lsl_csr c;
    c.rowptr = (const unsigned char *)rowptr;
    c.bcol = (const unsigned char *)bcol;
    c.le = 0;
    return lsl_sparse_pack_csr(m, rows, cols, act, &c, values, scale, buf, buf_bytes);
}
