/*
 * lsl_kern_avx2_vnni.c -- the AVX-VNNI table (AVX2 + FMA + VEX-encoded vpdpbusd,
 * 256-bit: Alder Lake and later Intel cores without AVX-512, Zen 5 desktop).
 *
 * Dynamic int8 multiplies with vpdpbusd (4 u8 x s8 products and the add in one
 * instruction, where AVX2 needs a sign step, vpmaddubsw, vpmaddwd and vpaddd): the
 * products here (both halves of a panel per pass, below), the fused step
 * lsl_kern_avx2.h's (sums16_vnni); the int32 sums are exact and the float epilogues
 * shared, so the results equal the AVX2 table's bit for bit. Float activations become the three 8-bit limbs of the AVX-512 VNNI table
 * (LSL_LIMB_MAX: three vpdpbusd per weight vector where the AVX2 digits need thirteen
 * instructions). fp32 and the element-wise kernels are the AVX2 table's. The
 * functions carry target("avx2,fma,avxvnni") and run only after lsl_isa.c found
 * AVX-VNNI.
 */
#include "lsl_internal.h"

#if defined(LSL_HAVE_AVXVNNI) /* LSL_HAVE_X86 and a compiler that knows AVX-VNNI */
#include "lsl_kern_avx2.h"

#define TAVXVNNI __attribute__((target("avx2,fma,avxvnni")))

/* Float rows to three limb planes (hi, mid, lo; stride lstride bytes, rows of kpad
 * bytes) and scales xs = max|row| / LSL_LIMB_MAX, as lsl_avx512_quantize_limbs: q =
 * x / xs rounded, u = q + 2^23 split into bytes. A zero row becomes q = 0; a NaN, an
 * infinity or a value past 3e38 q = 0 and xs NaN (lsl_avx2_float_rows takes such a row). */
static TAVXVNNI void quantize_limbs(int32_t m, int32_t k, int32_t kpad, const float *x, int32_t ldx, uint8_t *u,
                                    size_t lstride, float *xs) {
    const __m256i qmax = _mm256_set1_epi32(8388607), offset = _mm256_set1_epi32(8388608);
    int32_t i, j;
    for (i = 0; i < m; ++i) {
        const float *row = x + (size_t)i * ldx;
        uint8_t *hi = u + (size_t)i * kpad, *mid = hi + lstride, *lo = mid + lstride;
        const float inv = float_row_scale(row, k, LSL_LIMB_MAX, xs + i);
        const __m256 vinv = _mm256_set1_ps(inv);
        memset(hi, 128, (size_t)kpad); /* q = 0 past k (and for a zero row) */
        memset(mid, 0, (size_t)kpad);
        memset(lo, 0, (size_t)kpad);
        if (inv == 0.0f) continue; /* all zero, or xs NaN */
        for (j = 0; j < k; j += 8) {
            const int32_t n = k - j < 8 ? k - j : 8;
            __m256i q = fixed_codes(row + j, n, vinv, qmax);
            uint8_t b[3][16];
            int l;
            q = _mm256_add_epi32(q, offset); /* 0 .. 2^24 - 2: three unsigned bytes */
            for (l = 0; l < 3; ++l) {
                const __m256i t = _mm256_and_si256(_mm256_srli_epi32(q, 16 - 8 * l), _mm256_set1_epi32(255));
                const __m128i w16 = _mm_packus_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
                _mm_storeu_si128((__m128i *)b[l], _mm_packus_epi16(w16, w16));
            }
            memcpy(hi + j, b[0], (size_t)n);
            memcpy(mid + j, b[1], (size_t)n);
            memcpy(lo + j, b[2], (size_t)n);
        }
    }
}

/* ---- dynamic int8 products: vpdpbusd on u = q + 128 --------------------------------- *
 * Their own loops, not gemm_q8's: both halves of a panel in one pass, which reads whole
 * 64-byte lines of weights and gives each activation broadcast two products. gemm_q8
 * takes one half at a time (its sign forms' accumulators need that many registers);
 * for vpdpbusd that read half of each line per pass, and at several rows made the
 * weight vector a memory operand of every row's vpdpbusd, a load per product, which set
 * the pace. Xeon with AVX-VNNI, the 96 x 128 by 128 x 1024 product alone: gemm_q8's
 * tile (4 rows, two accumulator sets) 107 us, both halves at 4 rows 71, at 6 rows 64.
 * The int32 sums are exact and the epilogue is scaled_sums_of (store_sums), so the
 * results equal the AVX2 table's bit for bit. y = (bias or y) + product, the bias added in the epilogue
 * (no copy of it into every row first). */

/* acc + the 4 u8 x s8 products per lane of x and the weight vector wv (both registers). */
AINL TAVXVNNI __m256i vpdpbusd_reg(__m256i acc, __m256i x, __m256i wv) {
    __asm__(LSL_VPDPBUSD " %2, %1, %0" : "+x"(acc) : "x"(x), "x"(wv));
    return acc;
}

/* y (rows row0 .. row0 + 7, n of them valid) = (bias or y) + the products from the sums
 * a (scaled_sums_of, from a dense matrix's weight scales and sums or a sparse one's view). */
AINL TAVXVNNI void store_sums(const float *scale, const int32_t *wsum, __m256i a, int32_t row0, int32_t n, float xs,
                              const float *bias, float *y) {
    const __m256 base = bias ? ld(bias + row0, n) : ld(y, n);
    st(y, _mm256_add_ps(base, scaled_sums_of(LSL_K_VNNI, &a, scale, wsum, row0, n, xs)), n);
}

/* The tiles' registers and steps: MB (<= LSL_VNNI_TILE_ROWS) activation rows x both
 * halves of a panel in 12 named accumulators (row r: a<2r> for half 0, a<2r+1> for half
 * 1; as an array GCC zeroed them with a memset and kept them in memory, a store per
 * product). TILE_STEP is one k4 step of a dense panel or one slot of a sparse one: row
 * r's quads at BASE + r LDU + OFF0 (half 0) and + OFF1 (half 1; the same quad with S16)
 * times the weight vectors W0, W1 held in registers for all rows. */
#define LSL_VNNI_TILE_ROWS 6
#define TILE_ACCUMULATORS                                                                                      \
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, \
            a9 = a0, a10 = a0, a11 = a0
#define TILE_ROW(R, A, B, MB, S16, BASE, LDU, OFF0, OFF1, W0, W1)                                              \
    if ((MB) > (R)) {                                                                                          \
        const uint8_t *r_ = (BASE) + (size_t)(R) * (LDU);                                                      \
        const __m256i x0_ = quad_at(r_ + (OFF0)), x1_ = (S16) ? x0_ : quad_at(r_ + (OFF1));                    \
        A = vpdpbusd_reg(A, x0_, W0), B = vpdpbusd_reg(B, x1_, W1);                                           \
    }
#define TILE_STEP(MB, S16, BASE, LDU, OFF0, OFF1, W0, W1)                                                      \
    TILE_ROW(0, a0, a1, MB, S16, BASE, LDU, OFF0, OFF1, W0, W1)                                                \
    TILE_ROW(1, a2, a3, MB, S16, BASE, LDU, OFF0, OFF1, W0, W1)                                                \
    TILE_ROW(2, a4, a5, MB, S16, BASE, LDU, OFF0, OFF1, W0, W1)                                                \
    TILE_ROW(3, a6, a7, MB, S16, BASE, LDU, OFF0, OFF1, W0, W1)                                                \
    TILE_ROW(4, a8, a9, MB, S16, BASE, LDU, OFF0, OFF1, W0, W1)                                                \
    TILE_ROW(5, a10, a11, MB, S16, BASE, LDU, OFF0, OFF1, W0, W1)
#define TILE_SUMS a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11

/* A tile's epilogue: its MB rows of panel rows row0 .. row0 + 15 (`valid` of them exist). */
AINL TAVXVNNI void tile_store(const int MB, const float *scale, const int32_t *wsum, int32_t row0, int32_t valid,
                              const float *xs, const float *bias, float *y, int32_t ldy, __m256i a0, __m256i a1,
                              __m256i a2, __m256i a3, __m256i a4, __m256i a5, __m256i a6, __m256i a7, __m256i a8,
                              __m256i a9, __m256i a10, __m256i a11) {
    const __m256i sums[LSL_VNNI_TILE_ROWS][2] = {{a0, a1}, {a2, a3}, {a4, a5}, {a6, a7}, {a8, a9}, {a10, a11}};
    int i, h;
    for (h = 0; h < 2; ++h)
        for (i = 0; i < MB; ++i)
            if (valid > 8 * h)
                store_sums(scale, wsum, sums[i][h], row0 + 8 * h, valid - 8 * h, xs[i], bias,
                           y + (size_t)i * ldy + row0 + 8 * h);
}

/* MB (<= 6) activation rows x both halves of panel p: the panel's two weight vectors
 * are loaded into registers once per k4 step for all rows, and each row's broadcast
 * quad serves both: 2 + MB loads for 2 MB vpdpbusd, and 2 MB chains (12 at 6 rows:
 * enough to cover vpdpbusd's latency of 5). */
AINL TAVXVNNI void tile_body(const int MB, const lsl_matrix *w, int32_t p, const uint8_t *u, int32_t ldu,
                             const float *xs, const float *bias, float *y, int32_t ldy) {
    const int8_t *wp = (const int8_t *)w->data + (size_t)p * w->kpad * LSL_PANEL;
    const int32_t K4 = w->kpad / 4;
    int32_t k4;
    TILE_ACCUMULATORS;
    for (k4 = 0; k4 < K4; ++k4, wp += 64) {
        const __m256i w0 = _mm256_loadu_si256((const __m256i *)wp), w1 = _mm256_loadu_si256((const __m256i *)(wp + 32));
        TILE_STEP(MB, 1, u, ldu, 4 * k4, 4 * k4, w0, w1)
    }
    tile_store(MB, w->scale, w->wsum, p * LSL_PANEL, w->rows - p * LSL_PANEL, xs, bias, y, ldy, TILE_SUMS);
}

/* One function per row count, not inlined (a small function of its own keeps its
 * registers: see sums16_masked in lsl_kern_avx2.h). */
typedef void (*tile_fn)(const lsl_matrix *w, int32_t p, const uint8_t *u, int32_t ldu, const float *xs,
                        const float *bias, float *y, int32_t ldy);
#define TILE(MB)                                                                                               \
    static __attribute__((noinline)) TAVXVNNI void tile_##MB(const lsl_matrix *w, int32_t p, const uint8_t *u,  \
                                                             int32_t ldu, const float *xs, const float *bias,  \
                                                             float *y, int32_t ldy) {                          \
        tile_body(MB, w, p, u, ldu, xs, bias, y, ldy);                                                          \
    }
TILE(1)
TILE(2)
TILE(3)
TILE(4)
TILE(5)
TILE(6)
#undef TILE
static const tile_fn tiles[LSL_VNNI_TILE_ROWS + 1] = {NULL, tile_1, tile_2, tile_3, tile_4, tile_5, tile_6};

/* One activation row x NP (<= 4) panels from p0, both halves of each: 2 NP chains, the
 * weight vectors memory operands (each is used once), whole lines per k4 step. */
AINL TAVXVNNI void row_panels(const int NP, const lsl_matrix *w, int32_t p0, const uint8_t *u, float xs,
                              const float *bias, float *y) {
    const size_t pstride = (size_t)w->kpad * LSL_PANEL;
    const int8_t *base = (const int8_t *)w->data + (size_t)p0 * pstride;
    const int32_t K4 = w->kpad / 4;
    __m256i acc[4][2];
    int32_t k4;
    int p, h;
    for (p = 0; p < NP; ++p) acc[p][0] = acc[p][1] = _mm256_setzero_si256();
    for (k4 = 0; k4 < K4; ++k4) {
        const __m256i x = quad_at(u + 4 * k4);
        for (p = 0; p < NP; ++p)
            for (h = 0; h < 2; ++h) acc[p][h] = dot4_vnni(acc[p][h], x, base + p * pstride + (size_t)k4 * 64 + 32 * h);
    }
    for (p = 0; p < NP; ++p)
        for (h = 0; h < 2; ++h) {
            const int32_t row0 = (p0 + p) * LSL_PANEL + 8 * h, valid = w->rows - row0;
            if (valid > 0) store_sums(w->scale, w->wsum, acc[p][h], row0, valid, xs, bias, y + row0);
        }
}

/* Panels last to first with `rev` (see lsl_internal.h). */
static TAVXVNNI void gemm_dyn8_vnni(const lsl_matrix *w, int32_t m, const uint8_t *u, int32_t ldu, const float *xs,
                                    const float *bias, float *y, int32_t ldy, int rev) {
    const int32_t panels = lsl_panels(w->rows);
    int32_t g, i;
    if (m == 1) { /* groups of 4 panels: 8 chains */
        const int32_t groups = (panels + 3) / 4;
        for (g = 0; g < groups; ++g) {
            const int32_t p = 4 * (rev ? groups - 1 - g : g), np = panels - p < 4 ? panels - p : 4;
            switch (np) {
            case 4: row_panels(4, w, p, u, xs[0], bias, y); break;
            case 3: row_panels(3, w, p, u, xs[0], bias, y); break;
            case 2: row_panels(2, w, p, u, xs[0], bias, y); break;
            default: row_panels(1, w, p, u, xs[0], bias, y); break;
            }
        }
        return;
    }
    for (g = 0; g < panels; ++g) {
        const int32_t p = rev ? panels - 1 - g : g;
        for (i = 0; i < m; i += LSL_VNNI_TILE_ROWS) {
            const int32_t rows = m - i < LSL_VNNI_TILE_ROWS ? m - i : LSL_VNNI_TILE_ROWS;
            tiles[rows](w, p, u + (size_t)i * ldu, ldu, xs + i, bias, y + (size_t)i * ldy, ldy);
        }
    }
}

/* The fused single-stream step: vpdpbusd on u (dynamic int8) or on the limbs. */
/* Float activations: limb planes of m rows (work), then three vpdpbusd per weight
 * vector; from LSL_UNPACK_ROWS rows the AVX2 table's unpacked panels (one FMA per
 * weight and row, the conversion shared: measured faster from 4 rows on). The sparse
 * form reads rows of whole windows. */
static TAVXVNNI void gemm_i8_vnni(const lsl_matrix *w, int32_t m, const float *x, int32_t ldx, float *y, int32_t ldy,
                                 int rev, void *work) {
    const size_t lstride = (size_t)m * w->kpad;
    if (m >= LSL_UNPACK_ROWS) {
        lsl_avx2_gemm_i8(w, m, x, ldx, y, ldy, rev, work);
        return;
    }
    uint8_t *u = (uint8_t *)work;
    float *xs = (float *)((char *)work + lsl_round_up(3 * lstride, LSL_ALIGN));
    quantize_limbs(m, w->cols, w->kpad, x, ldx, u, lstride, xs);
    lsl_avx2_float_rows(w, m, x, ldx, xs, y, ldy, rev);
    gemm_q8(LSL_K_VNNI3, w, m, u, w->kpad, lstride, xs, y, ldy, rev);
}

static TAVXVNNI void gemm_sparse_i8_vnni(const lsl_matrix *w, int32_t m, const float *x, int32_t ldx, float *y,
                                        int32_t ldy, int rev, void *work) {
    const int32_t upad = lsl_sparse_upad(w->kpad);
    const size_t lstride = (size_t)m * upad;
    uint8_t *u = (uint8_t *)work;
    float *xs = (float *)((char *)work + lsl_round_up(3 * lstride, LSL_ALIGN));
    quantize_limbs(m, w->cols, upad, x, ldx, u, lstride, xs);
    lsl_avx2_float_rows(w, m, x, ldx, xs, y, ldy, rev);
    gemm_sparse_q8(LSL_K_VNNI3, w, m, u, upad, lstride, xs, NULL, y, ldy, rev);
}

/* One slot (4 columns of a (8 or 16, 4) block per half panel) of one activation row of
 * a LSL_MATRIX_SHARED8 matrix into the accumulators a (half 0) and b (half 1): the
 * block's quad broadcast against the half's 8 x 4 weights (with LSL_MATRIX_SHARED16
 * half 0's quad serves half 1). `is` points at the slot's half-0 index byte (half 1's is
 * 32 bytes on), ws at its 64 weight bytes. */
AINL TAVXVNNI void shared_slot(const int S16, const uint8_t *row, const unsigned char *is, const int8_t *ws,
                               __m256i *a, __m256i *b) {
    /* size_t: the index scales in the load's address (movzbl, then base + 4 index) */
    const __m256i x0 = quad_at(row + (size_t)4 * is[0]), x1 = S16 ? x0 : quad_at(row + (size_t)4 * is[32]);
    *a = dot4_vnni(*a, x0, ws);
    *b = dot4_vnni(*b, x1, ws + 32);
}

/* Every panel of a LSL_MATRIX_SHARED8 matrix for one activation row (whole windows of
 * u): y = (bias or y) + product. Slot j of each index group of 4 goes to its own pair of
 * accumulators (four pairs: 8 chains of vpdpbusd, added at the panel's end, exact). Why:
 * the several-row loop (sparse_rows_shared) at one row has one pair, a chain of dependent
 * vpdpbusd of 5 cycles a slot: Xeon with AVX-VNNI, I=40/H=128 80 % (16, 4)-sparse
 * dynamic int8, T = 100 (the recurrent products one row a step). */
AINL TAVXVNNI void sparse_row_shared(const int S16, const lsl_matrix *w, const uint8_t *u, float xs, const float *bias,
                                     float *y, int rev) {
    const lsl_sparse_view v = sparse_view_of(w);
    const int32_t panels = lsl_panels(w->rows);
    int32_t g, win;
    for (g = 0; g < panels; ++g) {
        const int32_t p = rev ? panels - 1 - g : g;
        const int32_t *e = v.seg + 2 * (size_t)p * v.windows;
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        int h;
        for (win = 0; win < v.windows; ++win, e += 2) {
            const int32_t n = e[1];
            const unsigned char *ip = v.base + e[0];
            const int8_t *ws = (const int8_t *)(ip + lsl_segment_index_bytes(n));
            const uint8_t *row = u + (size_t)win * LSL_SPARSE_WIN;
            int32_t s = 0;
            for (; s + 4 <= n; s += 4, ip += 64, ws += 256) {
                shared_slot(S16, row, ip, ws, &a0, &b0);
                shared_slot(S16, row, ip + 1, ws + 64, &a1, &b1);
                shared_slot(S16, row, ip + 2, ws + 128, &a2, &b2);
                shared_slot(S16, row, ip + 3, ws + 192, &a3, &b3);
            }
            switch (n - s) { /* the last 0 to 3 slots */
            case 3: shared_slot(S16, row, ip + 2, ws + 128, &a2, &b2); /* fall through */
            case 2: shared_slot(S16, row, ip + 1, ws + 64, &a1, &b1); /* fall through */
            case 1: shared_slot(S16, row, ip, ws, &a0, &b0); /* fall through */
            default: break;
            }
        }
        a0 = _mm256_add_epi32(_mm256_add_epi32(a0, a1), _mm256_add_epi32(a2, a3));
        b0 = _mm256_add_epi32(_mm256_add_epi32(b0, b1), _mm256_add_epi32(b2, b3));
        for (h = 0; h < 2; ++h) {
            const int32_t row0 = p * LSL_PANEL + 8 * h, valid = w->rows - row0;
            if (valid > 0) store_sums(w->scale, w->wsum, h ? b0 : a0, row0, valid, xs, bias, y + row0);
        }
    }
}

/* Panel p of a LSL_MATRIX_SHARED8 matrix for MB (<= 6) activation rows (whole windows,
 * row stride ldu): y = (bias or y) + product. Per slot the half panels' two weight
 * vectors are loaded into registers once for all rows (the several-row loop of
 * lsl_kern_avx2.h, sparse_rows_shared, makes them a memory operand of every row's
 * vpdpbusd, a load per product), 12 named accumulators as tile_body's. */
AINL TAVXVNNI void sparse_tile_body(const int MB, const int S16, const lsl_sparse_view *v, int32_t p,
                                    const uint8_t *u, int32_t ldu, const float *xs, const float *bias, float *y,
                                    int32_t ldy) {
    const int32_t *e = v->seg + 2 * (size_t)p * v->windows;
    int32_t win, s;
    TILE_ACCUMULATORS;
    for (win = 0; win < v->windows; ++win, e += 2) {
        const int32_t n = e[1];
        const unsigned char *ip = v->base + e[0];
        const int8_t *ws = (const int8_t *)(ip + lsl_segment_index_bytes(n));
        const uint8_t *row = u + (size_t)win * LSL_SPARSE_WIN;
        for (s = 0; s < n; ++s, ws += 64) {
            const unsigned char *is = ip + (size_t)64 * (s / 4) + s % 4; /* half h's block: is[32 h] */
            const size_t at0 = (size_t)4 * is[0], at1 = S16 ? at0 : (size_t)4 * is[32];
            const __m256i w0 = _mm256_loadu_si256((const __m256i *)ws), w1 = _mm256_loadu_si256((const __m256i *)(ws + 32));
            TILE_STEP(MB, S16, row, ldu, at0, at1, w0, w1)
        }
    }
    tile_store(MB, v->scale, v->wsum, p * LSL_PANEL, v->rows - p * LSL_PANEL, xs, bias, y, ldy, TILE_SUMS);
}

typedef void (*sparse_tile_fn)(const lsl_sparse_view *v, int32_t p, const uint8_t *u, int32_t ldu, const float *xs,
                               const float *bias, float *y, int32_t ldy);
#define SPARSE_TILE(MB, S16)                                                                                   \
    static __attribute__((noinline)) TAVXVNNI void sparse_tile_##MB##_##S16(                                   \
        const lsl_sparse_view *v, int32_t p, const uint8_t *u, int32_t ldu, const float *xs, const float *bias, \
        float *y, int32_t ldy) {                                                                               \
        sparse_tile_body(MB, S16, v, p, u, ldu, xs, bias, y, ldy);                                              \
    }
SPARSE_TILE(1, 0)
SPARSE_TILE(2, 0)
SPARSE_TILE(3, 0)
SPARSE_TILE(4, 0)
SPARSE_TILE(5, 0)
SPARSE_TILE(6, 0)
SPARSE_TILE(1, 1)
SPARSE_TILE(2, 1)
SPARSE_TILE(3, 1)
SPARSE_TILE(4, 1)
SPARSE_TILE(5, 1)
SPARSE_TILE(6, 1)
#undef SPARSE_TILE
#undef TILE_SUMS
#undef TILE_STEP
#undef TILE_ROW
#undef TILE_ACCUMULATORS
static const sparse_tile_fn sparse_tiles[2][LSL_VNNI_TILE_ROWS + 1] = {
    {NULL, sparse_tile_1_0, sparse_tile_2_0, sparse_tile_3_0, sparse_tile_4_0, sparse_tile_5_0, sparse_tile_6_0},
    {NULL, sparse_tile_1_1, sparse_tile_2_1, sparse_tile_3_1, sparse_tile_4_1, sparse_tile_5_1, sparse_tile_6_1}};

static TAVXVNNI void gemm_sparse_dyn8_vnni(const lsl_matrix *w, int32_t m, const uint8_t *u, int32_t ldu,
                                           const float *xs, const float *bias, float *y, int32_t ldy, int rev) {
    const int s16 = (w->reserved & LSL_MATRIX_SHARED16) != 0;
    if (!(w->reserved & LSL_MATRIX_SHARED8)) {
        gemm_sparse_q8(LSL_K_VNNI, w, m, u, ldu, 0, xs, bias, y, ldy, rev);
    } else if (m == 1) {
        if (s16)
            sparse_row_shared(1, w, u, xs[0], bias, y, rev);
        else
            sparse_row_shared(0, w, u, xs[0], bias, y, rev);
    } else {
        const lsl_sparse_view v = sparse_view_of(w);
        const int32_t panels = lsl_panels(w->rows);
        int32_t g, i;
        for (g = 0; g < panels; ++g) {
            const int32_t p = rev ? panels - 1 - g : g;
            for (i = 0; i < m; i += LSL_VNNI_TILE_ROWS) {
                const int32_t rows = m - i < LSL_VNNI_TILE_ROWS ? m - i : LSL_VNNI_TILE_ROWS;
                sparse_tiles[s16][rows](&v, p, u + (size_t)i * ldu, ldu, xs + i, bias, y + (size_t)i * ldy, ldy);
            }
        }
    }
}

static TAVXVNNI void lstm_step1_vnni(const lsl_matrix *w, int32_t hidden, const float *g, float *c, float *h,
                                     void *work, int rev) {
    uint8_t *u = (uint8_t *)work;
    float xs;
    if (lsl_act_u8(w->act)) {
        lsl_avx2_quantize_rows(1, hidden, w->kpad, h, hidden, u, &xs, lsl_act_qmax(w->act));
        lstm_step1_sign16(LSL_K_VNNI, cells_avx2, w, hidden, u, 0, xs, g, c, h, rev);
    } else {
        quantize_limbs(1, hidden, w->kpad, h, hidden, u, (size_t)w->kpad, &xs);
        lstm_step1_q8(LSL_K_VNNI3, w, hidden, u, (size_t)w->kpad, xs, g, c, h, rev);
    }
}

const lsl_kernels lsl_kernels_avx2_vnni = {
    LSL_ISA_AVX2_VNNI, lsl_avx2_gemm_f32, gemm_i8_vnni, gemm_dyn8_vnni, lsl_avx2_quantize_rows,
    gemm_sparse_i8_vnni, gemm_sparse_dyn8_vnni, lsl_avx2_lstm_pointwise, lsl_avx2_gru_pointwise,
    lstm_step1_vnni, NULL, NULL, lsl_avx2_gemm_dyn16, /* vpmaddwd: VNNI's byte products take no int16 */
    lsl_avx2_quantize_rows16,
};

#endif /* LSL_HAVE_AVXVNNI */
