/*
 * lsl_kern_avx2.c -- AVX2 + FMA kernels. A panel (16 rows) is two ymm registers.
 * The int8 products keep the weights int8 (vpmaddubsw + vpmaddwd after a sign step:
 * vpxor + vpsubb or vpsignb, exact) and live in lsl_kern_avx2.h, shared with the AVX-VNNI
 * table; fp32, the quantizers and the
 * element-wise kernels are here, and the AVX-VNNI table reuses them.
 */
#include "lsl_internal.h"

#if defined(LSL_HAVE_X86)
#include "lsl_kern_avx2.h" /* TAVX2, gemm_q8, lstm_step1_q8, cell8, sigmoid256 / tanh256 */

/* Add 8 lanes (times scale) into y; `valid` lanes exist. */
AINL TAVX2 void store8(__m256 acc, float *yrow, int32_t valid, const float *scale) {
    if (valid >= 8) {
        __m256 v = scale ? _mm256_mul_ps(acc, _mm256_loadu_ps(scale)) : acc;
        _mm256_storeu_ps(yrow, _mm256_add_ps(_mm256_loadu_ps(yrow), v));
    } else if (valid > 0) {
        float tmp[8];
        int32_t r;
        _mm256_storeu_ps(tmp, acc);
        for (r = 0; r < valid; ++r) yrow[r] += scale ? tmp[r] * scale[r] : tmp[r];
    }
}

/* fp32 products of MB rows x NP panels, each panel two ymm halves (h = 0, 1): panels
 * of [k][16] floats from `base` (stride pstride floats), output rows row0.. of a matrix
 * of `rows` rows, times scale[row - row0] when scale is not NULL. */
AINL TAVX2 void tile_f32_raw(const int MB, const int NP, const float *base, size_t pstride, int32_t K, int32_t rows,
                             int32_t row0, const float *scale, const float *x, int32_t ldx, float *y, int32_t ldy) {
    __m256 acc[4][2][2];
    int32_t k;
    int i, p, h;
    for (i = 0; i < MB; ++i)
        for (p = 0; p < NP; ++p)
            for (h = 0; h < 2; ++h) acc[i][p][h] = _mm256_setzero_ps();
    for (k = 0; k < K; ++k) {
        __m256 wv[2][2];
        for (p = 0; p < NP; ++p)
            for (h = 0; h < 2; ++h) wv[p][h] = _mm256_loadu_ps(base + p * pstride + (size_t)k * LSL_PANEL + 8 * h);
        for (i = 0; i < MB; ++i) {
            __m256 xb = _mm256_set1_ps(x[(size_t)i * ldx + k]);
            for (p = 0; p < NP; ++p)
                for (h = 0; h < 2; ++h) acc[i][p][h] = _mm256_fmadd_ps(xb, wv[p][h], acc[i][p][h]);
        }
    }
    for (i = 0; i < MB; ++i)
        for (p = 0; p < NP; ++p)
            for (h = 0; h < 2; ++h) {
                const int32_t r = row0 + p * LSL_PANEL + 8 * h;
                store8(acc[i][p][h], y + (size_t)i * ldy + r, rows - r, scale ? scale + (r - row0) : NULL);
            }
}

AINL TAVX2 void tile_f32(const int MB, const int NP, const lsl_matrix *w, int32_t p0, const float *x, int32_t ldx,
                         float *y, int32_t ldy) {
    const size_t pstride = (size_t)w->kpad * LSL_PANEL;
    tile_f32_raw(MB, NP, (const float *)w->data + (size_t)p0 * pstride, pstride, w->cols, w->rows, p0 * LSL_PANEL,
                 NULL, x, ldx, y, ldy);
}

/* Panel groups in order, or last to first with `rev`; rows in blocks of 4. */
#define GEMM_DRIVER(NAME, TILE)                                                                    \
    static TAVX2 void NAME(const lsl_matrix *w, int32_t m, const float *x, int32_t ldx, float *y,  \
                           int32_t ldy, int rev) {                                                 \
        int32_t panels = lsl_panels(w->rows), g, i;                                                \
        if (m == 1) {                                                                              \
            int32_t groups = (panels + 1) / 2;                                                     \
            for (g = 0; g < groups; ++g) {                                                         \
                int32_t p = 2 * (rev ? groups - 1 - g : g);                                        \
                if (p + 2 <= panels)                                                               \
                    TILE(1, 2, w, p, x, ldx, y, ldy);                                              \
                else                                                                               \
                    TILE(1, 1, w, p, x, ldx, y, ldy);                                              \
            }                                                                                      \
            return;                                                                                \
        }                                                                                          \
        for (g = 0; g < panels; ++g) {                                                             \
            int32_t p = rev ? panels - 1 - g : g;                                                  \
            for (i = 0; i < m; i += 4) {                                                           \
                const float *xi = x + (size_t)i * ldx;                                             \
                float *yi = y + (size_t)i * ldy;                                                   \
                switch (m - i < 4 ? m - i : 4) {                                                   \
                case 4: TILE(4, 1, w, p, xi, ldx, yi, ldy); break;                                 \
                case 3: TILE(3, 1, w, p, xi, ldx, yi, ldy); break;                                 \
                case 2: TILE(2, 1, w, p, xi, ldx, yi, ldy); break;                                 \
                default: TILE(1, 1, w, p, xi, ldx, yi, ldy); break;                                \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

GEMM_DRIVER(gemm_f32_drv, tile_f32)

TAVX2 void lsl_avx2_gemm_f32(const lsl_matrix *w, int32_t m, const float *x, int32_t ldx, float *y, int32_t ldy,
                             int rev) {
    gemm_f32_drv(w, m, x, ldx, y, ldy, rev);
}

/* ---- int8 weights (LSL_I8) ---------------------------------------------------------- */

/* ---- dynamic int8 for several rows: int16 products ---------------------------------- *
 * Why: the sign form (lsl_kern_avx2.h) spends three multiplier-port instructions per 32
 * products (vpsignb, vpmaddubsw, vpmaddwd), and those ports (two on Zen 4 and on Intel
 * cores since Haswell) bound it. With the weights sign-extended to int16 (vpmovsxbw,
 * which also runs there, but once for all the rows of a block) and the activations u
 * (0..255) as int16, one vpmaddwd makes 16 exact products: 2 + 2/MB such instructions
 * per 32 products. u rather than q = u - 128: |u w| <= 255 * 128, so a pair never
 * reaches vpmaddwd's one overflow (-32768 * -32768), and the offset comes off as
 * 128 sum(w) per row at the end, as the VNNI kernels do; the sums are exact, so the
 * bits equal every other table's.
 * Layout: vpmovsxbw of 16 packed bytes gives rows r..r+3 x k 0..3 of a k4 step as
 * int16, so a 32-bit lane is (row, k pair) and the activation operand is one row's 4
 * values broadcast to every 64-bit lane; the two k pairs of a row meet in vphaddd. */

/* Rows per block (6 rows x 2 vectors = 12 accumulators, 2 weight vectors, 1 broadcast:
 * 15 of the 16 ymm registers), and the longest rows that take this path (the block's
 * int16 activations live on the stack: 6 x 1024 x 2 bytes). */
#ifndef W16_MB
#define W16_MB 6
#endif
#define W16_KMAX 1024

/* The block's nb rows of u (kpad bytes each) zero-extended to int16 and interleaved by
 * k4 step, [k4][nb][4], so a tile walks one pointer (separate row pointers cost
 * general registers, and GCC then spilled the accumulators). */
AINL TAVX2 void widen_rows(int32_t nb, int32_t kpad, const uint8_t *u, int32_t ldu, int16_t *a) {
    int32_t i, k;
    for (i = 0; i < nb; ++i) {
        const uint8_t *src = u + (size_t)i * ldu;
        for (k = 0; k + 16 <= kpad; k += 16) {
            /* 16 bytes = 4 quads: quad j goes to a[(k/4 + j) nb + i] */
            const __m256i v = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(src + k)));
            const int32_t base = (k / 4) * nb + i;
            _mm_storel_epi64((__m128i *)(a + 4 * (size_t)base), _mm256_castsi256_si128(v));
            _mm_storeh_pd((double *)(void *)(a + 4 * (size_t)(base + nb)), _mm_castsi128_pd(_mm256_castsi256_si128(v)));
            _mm_storel_epi64((__m128i *)(a + 4 * (size_t)(base + 2 * nb)), _mm256_extracti128_si256(v, 1));
            _mm_storeh_pd((double *)(void *)(a + 4 * (size_t)(base + 3 * nb)), _mm_castsi128_pd(_mm256_extracti128_si256(v, 1)));
        }
        for (; k < kpad; ++k) a[4 * ((size_t)(k / 4) * nb + i) + k % 4] = src[k];
    }
}

/* a0 += x * w0, a1 += x * w1 (vpmaddwd, then vpaddd). In asm because GCC, given the
 * intrinsics, kept one of a tile's accumulators in memory: a store-to-load chain
 * through every k4 step that tripled the tile's time. "+x" ties each accumulator to one
 * register for the whole loop. */
AINL TAVX2 void madd2(__m256i *a0, __m256i *a1, __m256i x, __m256i w0, __m256i w1) {
    __m256i s0 = *a0, s1 = *a1, t0, t1;
    __asm__("vpmaddwd %[w0], %[x], %[t0]\n\t"
            "vpmaddwd %[w1], %[x], %[t1]\n\t"
            "vpaddd %[t0], %[s0], %[s0]\n\t"
            "vpaddd %[t1], %[s1], %[s1]"
            : [s0] "+x"(s0), [s1] "+x"(s1), [t0] "=&x"(t0), [t1] "=&x"(t1)
            : [x] "x"(x), [w0] "x"(w0), [w1] "x"(w1));
    *a0 = s0;
    *a1 = s1;
}

/* One k4 step of six rows, all in asm: 12 accumulators, the two weight vectors, the
 * broadcast and one product fill the 16 ymm registers, which GCC does not manage from
 * intrinsics. wp: the half panel's 2 x 16 weight bytes; ap: the six rows' quads. */
#define W16_ROW6(I, A0, A1)                                                                                    \
    "vpbroadcastq " #I "*8(%[ap]), %[x]\n\t"                                                                  \
    "vpmaddwd %[w0], %[x], %[t]\n\t"                                                                          \
    "vpaddd %[t], %[" #A0 "], %[" #A0 "]\n\t"                                                                 \
    "vpmaddwd %[w1], %[x], %[x]\n\t"                                                                          \
    "vpaddd %[x], %[" #A1 "], %[" #A1 "]\n\t"
AINL TAVX2 void step6_w16(__m256i acc[][2], const int8_t *wp, const int16_t *ap) {
    __m256i w0, w1, x, t;
    __asm__("vpmovsxbw (%[wp]), %[w0]\n\t"
            "vpmovsxbw 16(%[wp]), %[w1]\n\t"
            W16_ROW6(0, a00, a01) W16_ROW6(1, a10, a11) W16_ROW6(2, a20, a21) W16_ROW6(3, a30, a31)
            W16_ROW6(4, a40, a41) W16_ROW6(5, a50, a51)
            : [a00] "+x"(acc[0][0]), [a01] "+x"(acc[0][1]), [a10] "+x"(acc[1][0]), [a11] "+x"(acc[1][1]),
              [a20] "+x"(acc[2][0]), [a21] "+x"(acc[2][1]), [a30] "+x"(acc[3][0]), [a31] "+x"(acc[3][1]),
              [a40] "+x"(acc[4][0]), [a41] "+x"(acc[4][1]), [a50] "+x"(acc[5][0]), [a51] "+x"(acc[5][1]),
              [w0] "=&x"(w0), [w1] "=&x"(w1), [x] "=&x"(x), [t] "=&x"(t)
            : [wp] "r"(wp), [ap] "r"(ap)
            : "memory"); /* it only reads memory; "m" operands would pass asm's 30-operand limit */
}
#undef W16_ROW6

/* MB rows x half h of panel p: y += (sums - 128 sum(w)) * scale * xs, as scaled_sums.
 * Each row's two accumulators meet in vphaddd (a lane is (row, k pair): rows 0, 1, 4, 5 |
 * 2, 3, 6, 7, put in order by vpermq) and go straight into the epilogue, without a
 * store and reload of the sums. */
AINL TAVX2 void tile_w16(const int MB, const int offset, const lsl_matrix *w, int32_t p, int h, const int16_t *a,
                         const float *xs, const float *bias, float *y, int32_t ldy) {
    const int32_t row0 = p * LSL_PANEL + 8 * h, valid = w->rows - row0, K4 = w->kpad / 4;
    const int8_t *wp = (const int8_t *)w->data + (size_t)p * w->kpad * LSL_PANEL + 32 * h;
    __m256i acc[W16_MB][2], ws;
    __m256 sc, bv;
    int32_t k4;
    int i;
    if (valid <= 0) return;
    for (i = 0; i < MB; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_si256();
    if (MB == 6)
        for (k4 = 0; k4 < K4; ++k4) step6_w16(acc, wp + (size_t)k4 * 64, a + 24 * (size_t)k4);
    else
        for (k4 = 0; k4 < K4; ++k4) {
            const __m256i w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(wp + (size_t)k4 * 64)));
            const __m256i w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(wp + (size_t)k4 * 64 + 16)));
            for (i = 0; i < MB; ++i) {
                int64_t q4;
                __m256i x;
                memcpy(&q4, a + 4 * ((size_t)k4 * MB + i), sizeof q4);
                x = _mm256_set1_epi64x(q4);
                madd2(&acc[i][0], &acc[i][1], x, w0, w1);
            }
        }
    ws = valid >= 8 ? _mm256_loadu_si256((const __m256i *)(w->wsum + row0))
                    : _mm256_maskload_epi32((const int *)(w->wsum + row0), tail_mask(valid));
    ws = offset ? _mm256_slli_epi32(ws, 7) : _mm256_setzero_si256(); /* u = q + 128, or q itself */
    sc = ld(w->scale + row0, valid);
    bv = bias ? ld(bias + row0, valid) : _mm256_setzero_ps();
    for (i = 0; i < MB; ++i) {
        const __m256i sums = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc[i][0], acc[i][1]), 0xD8);
        const __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(sums, ws)),
                                       _mm256_mul_ps(sc, _mm256_set1_ps(xs[i])));
        float *yr = y + (size_t)i * ldy + row0;
        st(yr, _mm256_add_ps(bias ? bv : ld(yr, valid), v), valid);
    }
}

/* One block of nb rows (ap: their int16 values interleaved by k4 step, as widen_rows
 * writes them) against every panel (last to first with `rev`); offset: the rows are
 * u = q + 128 (take 128 sum(w) off) or q itself. */
AINL TAVX2 void w16_block(const int offset, const lsl_matrix *w, int32_t nb, const int16_t *ap, const float *xs,
                          const float *bias, float *y, int32_t ldy, int rev) {
    const int32_t panels = lsl_panels(w->rows);
    int32_t g;
    for (g = 0; g < panels; ++g) {
        const int32_t p = rev ? panels - 1 - g : g;
        int h;
        for (h = 0; h < 2; ++h) {
            switch (nb) {
            case 6: tile_w16(6, offset, w, p, h, ap, xs, bias, y, ldy); break;
            case 4: tile_w16(4, offset, w, p, h, ap, xs, bias, y, ldy); break;
            case 3: tile_w16(3, offset, w, p, h, ap, xs, bias, y, ldy); break;
            case 2: tile_w16(2, offset, w, p, h, ap, xs, bias, y, ldy); break;
            default: tile_w16(1, offset, w, p, h, ap, xs, bias, y, ldy); break;
            }
        }
    }
}

/* Rows per block: 6 while 6 are left, then 4, 3 + 2 (for 5), 2 or 1 (the asm step is the
 * 6-row one; the intrinsic tiles stay in registers up to 4 rows). */
static inline int32_t w16_rows(int32_t left) { return left >= 6 ? 6 : (left == 5 ? 3 : left); }

static TAVX2 void gemm_dyn8_w16(const lsl_matrix *w, int32_t m, const uint8_t *u, int32_t ldu, const float *xs,
                                const float *bias, float *y, int32_t ldy, int rev) {
    int16_t a[W16_MB * W16_KMAX] __attribute__((aligned(32)));
    int32_t i = 0;
    while (i < m) {
        const int32_t nb = w16_rows(m - i);
        widen_rows(nb, w->kpad, u + (size_t)i * ldu, ldu, a);
        w16_block(1, w, nb, a, xs + i, bias, y + (size_t)i * ldy, ldy, rev);
        i += nb;
    }
}

/* The block's nb int16 rows (LSL_ACT_DYN16 codes, ldq values apart) interleaved by k4
 * step as widen_rows does. */
AINL TAVX2 void interleave_rows16(int32_t nb, int32_t kpad, const int16_t *q, int32_t ldq, int16_t *a) {
    int32_t i, k4;
    for (k4 = 0; k4 < kpad / 4; ++k4)
        for (i = 0; i < nb; ++i) memcpy(a + 4 * ((size_t)k4 * nb + i), q + (size_t)i * ldq + 4 * k4, 8);
}

/* 16-bit activation codes (LSL_ACT_DYN16): the int16 tiles above on q itself, so no
 * offset to take off. Rows longer than W16_KMAX run one at a time from the row in place
 * (one row's interleaved layout is the row). Exact sums and gemm_dyn16's epilogue: the
 * same bits as the portable table. */
TAVX2 void lsl_avx2_gemm_dyn16(const lsl_matrix *w, int32_t m, const int16_t *q, int32_t ldq, const float *xs,
                               const float *bias, float *y, int32_t ldy, int rev) {
    int16_t a[W16_MB * W16_KMAX] __attribute__((aligned(32)));
    int32_t i = 0;
    while (i < m) {
        const int32_t nb = w->kpad > W16_KMAX ? 1 : w16_rows(m - i);
        const int16_t *ap = a;
        if (nb == 1)
            ap = q + (size_t)i * ldq;
        else
            interleave_rows16(nb, w->kpad, q + (size_t)i * ldq, ldq, a);
        w16_block(0, w, nb, ap, xs + i, bias, y + (size_t)i * ldy, ldy, rev);
        i += nb;
    }
}

/* ---- 7-bit activations times 7-bit weights (LSL_ACT_DYN7) ------------------------- *
 * With q in [-63, 63] the rows are re-based to v = q + 64 (1..127, one vpsubb per 32
 * codes, once per block of rows); with |w| <= 64 a vpmaddubsw pair is at most
 * 2 * 127 * 64 = 16256, so the pairs of two k4 steps add in int16 (vpaddw, at most
 * 32512) before one vpmaddwd widens them: 3 multiplier instructions per 64 products
 * instead of LSL_K_U7's 4 (the multiplier pipes bound that tile). The epilogue takes
 * 64 sum(w) off (LSL_K_H7). Sums exact: the same bits as every other table, which
 * multiply u = q + 128 as for LSL_ACT_DYN8. */

/* The longest rows gemm_h7 re-bases (a block's 4 rows of v live on the stack: 4 x 2048
 * bytes); longer rows, and the last m % 4, take LSL_K_U7 on u as it is (the same sums). */
#define H7_KMAX 2048

/* Two k4 steps of one row (v at A and B) for both halves into A0, A1; ymm12-15 are
 * scratch, the ones come from memory (16 registers: 8 accumulators, 4 weight vectors). */
#define H7_ROW(A, B, A0, A1)                                                                                   \
    "vpbroadcastd " A ", %%ymm12\n\t"                                                                          \
    "vpbroadcastd " B ", %%ymm13\n\t"                                                                          \
    "vpmaddubsw %[w0], %%ymm12, %%ymm14\n\t"                                                                  \
    "vpmaddubsw %[w2], %%ymm13, %%ymm15\n\t"                                                                  \
    "vpaddw %%ymm15, %%ymm14, %%ymm14\n\t"                                                                    \
    "vpmaddwd (%[one]), %%ymm14, %%ymm14\n\t"                                                                 \
    "vpaddd %%ymm14, %[" #A0 "], %[" #A0 "]\n\t"                                                              \
    "vpmaddubsw %[w1], %%ymm12, %%ymm12\n\t"                                                                  \
    "vpmaddubsw %[w3], %%ymm13, %%ymm13\n\t"                                                                  \
    "vpaddw %%ymm13, %%ymm12, %%ymm12\n\t"                                                                    \
    "vpmaddwd (%[one]), %%ymm12, %%ymm12\n\t"                                                                 \
    "vpaddd %%ymm12, %[" #A1 "], %[" #A1 "]\n\t"

/* 4 rows of v (kpad bytes each, contiguous) x panel p, both halves: y += products. */
static inline __attribute__((always_inline)) TAVX2 void tile4_h7(const lsl_matrix *w, int32_t p, const uint8_t *v,
                                                                 const float *xs, float *y, int32_t ldy) {
    static const int16_t ones[16] __attribute__((aligned(32))) = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    const int8_t *wp = (const int8_t *)w->data + (size_t)p * w->kpad * LSL_PANEL;
    const int32_t K4 = w->kpad / 4, row0 = p * LSL_PANEL;
    const size_t stride = (size_t)w->kpad;
    const uint8_t *b0 = v, *b2 = v + 2 * stride; /* rows 0, 1 at b0 (+ ld); 2, 3 at b2 */
    const int16_t *one = ones;
    __m256i a00 = _mm256_setzero_si256(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
    __m256i w0, w1, w2, w3, acc[4][2];
    size_t n = (size_t)(K4 / 2);
    int i;
    if (n)
        __asm__("1:\n\t"
                "vmovdqu (%[wp]), %[w0]\n\t"
                "vmovdqu 32(%[wp]), %[w1]\n\t"
                "vmovdqu 64(%[wp]), %[w2]\n\t"
                "vmovdqu 96(%[wp]), %[w3]\n\t"
                H7_ROW("(%[b0])", "4(%[b0])", a00, a01) H7_ROW("(%[b0],%[ld])", "4(%[b0],%[ld])", a10, a11)
                H7_ROW("(%[b2])", "4(%[b2])", a20, a21) H7_ROW("(%[b2],%[ld])", "4(%[b2],%[ld])", a30, a31)
                "add $128, %[wp]\n\t"
                "add $8, %[b0]\n\t"
                "add $8, %[b2]\n\t"
                "dec %[n]\n\t"
                "jnz 1b"
                : [a00] "+x"(a00), [a01] "+x"(a01), [a10] "+x"(a10), [a11] "+x"(a11), [a20] "+x"(a20),
                  [a21] "+x"(a21), [a30] "+x"(a30), [a31] "+x"(a31), [w0] "=&x"(w0), [w1] "=&x"(w1),
                  [w2] "=&x"(w2), [w3] "=&x"(w3), [wp] "+r"(wp), [b0] "+r"(b0), [b2] "+r"(b2), [n] "+r"(n)
                : [ld] "r"(stride), [one] "r"(one)
                : "memory", "cc", "xmm12", "xmm13", "xmm14", "xmm15");
    acc[0][0] = a00, acc[0][1] = a01, acc[1][0] = a10, acc[1][1] = a11;
    acc[2][0] = a20, acc[2][1] = a21, acc[3][0] = a30, acc[3][1] = a31;
    if (K4 & 1) { /* the last k4 step alone (wp, b0, b2 point at it) */
        const __m256i one16 = _mm256_set1_epi16(1);
        w0 = _mm256_loadu_si256((const __m256i *)wp);
        w1 = _mm256_loadu_si256((const __m256i *)(wp + 32));
        for (i = 0; i < 4; ++i) {
            const __m256i x = quad_at((i < 2 ? b0 : b2) + (i & 1) * stride);
            acc[i][0] = _mm256_add_epi32(acc[i][0], _mm256_madd_epi16(_mm256_maddubs_epi16(x, w0), one16));
            acc[i][1] = _mm256_add_epi32(acc[i][1], _mm256_madd_epi16(_mm256_maddubs_epi16(x, w1), one16));
        }
    }
    tile4_epilogue(LSL_K_H7, acc, w, row0, xs, y, ldy);
}
#undef H7_ROW

/* LSL_ACT_DYN7 rows (u = q + 128, |q| <= 63) times a 7-bit matrix: blocks of 4 rows
 * re-based to v = u - 64 once, then every panel (last to first with rev); the rows left
 * over (and rows past H7_KMAX) through LSL_K_U7 on u itself. One row (the fused step,
 * lstm_step1_dyn) keeps LSL_K_U7 too: there the recurrent matrix streams from L2 each
 * step, and a one-row form of this (the k4-pair loop in asm over the step's 8 weight
 * vectors) measured -1 % at I=128 H=256 and 0 % at I=40 H=128 (Zen 4, B = 1). */
static TAVX2 void gemm_h7(const lsl_matrix *w, int32_t m, const uint8_t *u, int32_t ldu, const float *xs, float *y,
                          int32_t ldy, int rev) {
    uint8_t v[4 * H7_KMAX] __attribute__((aligned(32)));
    const int32_t panels = lsl_panels(w->rows), kpad = w->kpad;
    int32_t i = 0, r, k, g;
    if (kpad <= H7_KMAX)
        for (; i + 4 <= m; i += 4) {
            for (r = 0; r < 4; ++r) {
                const uint8_t *src = u + (size_t)(i + r) * ldu;
                uint8_t *dst = v + (size_t)r * kpad;
                for (k = 0; k + 32 <= kpad; k += 32)
                    _mm256_storeu_si256((__m256i *)(dst + k), _mm256_sub_epi8(_mm256_loadu_si256((const __m256i *)(src + k)),
                                                                            _mm256_set1_epi8(64)));
                for (; k < kpad; ++k) dst[k] = (uint8_t)(src[k] - 64);
            }
            for (g = 0; g < panels; ++g) tile4_h7(w, rev ? panels - 1 - g : g, v, xs + i, y + (size_t)i * ldy, ldy);
        }
    if (i < m) gemm_q8(LSL_K_U7, w, m - i, u + (size_t)i * ldu, ldu, 0, xs + i, y + (size_t)i * ldy, ldy, rev);
}

/* Dynamic int8: exact int32 sums, so the same bits as every other table (the AVX-512
 * table without VNNI uses it too). 7-bit activation codes (LSL_ACT_DYN7): gemm_h7. 7-bit
 * weights (LSL_MATRIX_W7): LSL_K_U7 for any number of rows (tile4_u7 for blocks of four),
 * no sign step. Otherwise one row: the sign forms of lsl_kern_avx2.h (no weight
 * reuse to pay for widening them; the sign-mask form where the weights and the row length
 * allow); more: the int16 products above, where the rows fit their buffer. */
TAVX2 void lsl_avx2_gemm_dyn8(const lsl_matrix *w, int32_t m, const uint8_t *u, int32_t ldu, const float *xs,
                              const float *bias, float *y, int32_t ldy, int rev) {
    const int w16 = w->act != LSL_ACT_DYN7 && !(w->reserved & LSL_MATRIX_W7) && m >= 2 && w->kpad <= W16_KMAX;
    if (w16) { /* the int16 tile takes the bias into its epilogue; the others add into y */
        gemm_dyn8_w16(w, m, u, ldu, xs, bias, y, ldy, rev);
        return;
    }
    lsl_bias_rows(m, bias, w->rows, y, ldy);
    if (w->act == LSL_ACT_DYN7) /* 7-bit weights too (lsl_matrix_pack checks) */
        gemm_h7(w, m, u, ldu, xs, y, ldy, rev);
    else if (w->reserved & LSL_MATRIX_W7)
        gemm_q8(LSL_K_U7, w, m, u, ldu, 0, xs, y, ldy, rev);
    else
        gemm_q8(LSL_K_DYN, w, m, u, ldu, 0, xs, y, ldy, rev);
}

/* Many rows of float activations (LSL_UNPACK_ROWS or more): each panel's int8 weights
 * are converted to floats once, into work (16 x kpad floats, which lsl_matmul_bytes
 * reserves from LSL_UNPACK_MIN_ROWS rows on), and every row runs the fp32 tile on them. Why: the
 * digits cost three integer products per weight, the fp32 tile one FMA, and the
 * conversion is shared by all the rows (the input projection of a whole sequence). */
/* Byte kk of each 32-bit lane (row r's weight at k = 4 k4 + kk) as a float: sign-extended
 * by a left then an arithmetic right shift, then converted. */
AINL TAVX2 __m256 i8_lane(__m256i v, const int kk) {
    switch (kk) {
    case 0: return _mm256_cvtepi32_ps(_mm256_srai_epi32(_mm256_slli_epi32(v, 24), 24));
    case 1: return _mm256_cvtepi32_ps(_mm256_srai_epi32(_mm256_slli_epi32(v, 16), 24));
    case 2: return _mm256_cvtepi32_ps(_mm256_srai_epi32(_mm256_slli_epi32(v, 8), 24));
    default: return _mm256_cvtepi32_ps(_mm256_srai_epi32(v, 24));
    }
}

/* Panel p's weights as fp32 [k][16] (the LSL_F32 panel layout), unscaled. */
static TAVX2 void unpack_panel(const lsl_matrix *w, int32_t p, float *dst) {
    const int8_t *src = (const int8_t *)w->data + (size_t)p * w->kpad * LSL_PANEL;
    const int32_t K4 = w->kpad / 4;
    int32_t k4;
    int h, kk;
    for (k4 = 0; k4 < K4; ++k4)
        for (h = 0; h < 2; ++h) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(src + (size_t)k4 * 64 + 32 * h));
            for (kk = 0; kk < 4; ++kk) _mm256_storeu_ps(dst + (size_t)(4 * k4 + kk) * LSL_PANEL + 8 * h, i8_lane(v, kk));
        }
}

static TAVX2 void gemm_i8_unpacked(const lsl_matrix *w, int32_t m, const float *x, int32_t ldx, float *y,
                                   int32_t ldy, int rev, float *panel) {
    const int32_t panels = lsl_panels(w->rows);
    int32_t g, i;
    for (g = 0; g < panels; ++g) {
        const int32_t p = rev ? panels - 1 - g : g, row0 = p * LSL_PANEL;
        unpack_panel(w, p, panel);
        for (i = 0; i < m; i += 4) {
            const float *xi = x + (size_t)i * ldx;
            float *yi = y + (size_t)i * ldy;
            switch (m - i < 4 ? m - i : 4) {
            case 4: tile_f32_raw(4, 1, panel, 0, w->cols, w->rows, row0, w->scale + row0, xi, ldx, yi, ldy); break;
            case 3: tile_f32_raw(3, 1, panel, 0, w->cols, w->rows, row0, w->scale + row0, xi, ldx, yi, ldy); break;
            case 2: tile_f32_raw(2, 1, panel, 0, w->cols, w->rows, row0, w->scale + row0, xi, ldx, yi, ldy); break;
            default: tile_f32_raw(1, 1, panel, 0, w->cols, w->rows, row0, w->scale + row0, xi, ldx, yi, ldy); break;
            }
        }
    }
}

/* m rows (fewer than LSL_UNPACK_ROWS) of two-digit float activations (LSL_D15_MAX; d0
 * at lo, d1 at hi, rows of kpad) against every panel (last to first with rev), a row at a
 * time, both halves of a panel in one loop (a half past the rows has zero weights, its
 * sums are not stored): y += products. */
static TAVX2 void gemm_d15(const lsl_matrix *w, int32_t m, const int16_t *lo, const int8_t *hi, const float *xs,
                           float *y, int32_t ldy, int rev) {
    const int32_t panels = lsl_panels(w->rows), K4 = w->kpad / 4;
    int32_t g, i;
    int half;
    for (g = 0; g < panels; ++g) {
        const int32_t p = rev ? panels - 1 - g : g;
        const int8_t *wp = (const int8_t *)w->data + (size_t)p * w->kpad * LSL_PANEL;
        for (i = 0; i < m; ++i) {
            __m256i s[2][2];
            d15_halves(wp, 32, K4, lo + (size_t)i * w->kpad, hi + (size_t)i * w->kpad, s);
            for (half = 0; half < 2; ++half) {
                const int32_t row0 = p * LSL_PANEL + 8 * half, valid = w->rows - row0;
                float *yr = y + (size_t)i * ldy + row0;
                if (valid > 0) st(yr, _mm256_add_ps(ld(yr, valid), d15_scaled(s[half], w, row0, valid, xs[i])), valid);
            }
        }
    }
}

/* A row of float activations with a NaN, an infinity or a value past 3e38 has no
 * fixed-point form (its codes are relative to max|row|, and the digits' product scales
 * back by max|row| / qmax): its quantizer marks it (zero codes, xs NaN) and its product
 * is the float one, as PyTorch computes it with the dequantized weights: +-inf where an
 * infinity meets a weight (the gates saturate it), NaN where it meets a zero weight or
 * an infinity of the other sign, a finite sum in the units whose weights leave a huge
 * value out. Such rows are rare; the check is one compare per row, outside the kernels. */
void lsl_avx2_float_rows(const lsl_matrix *w, int32_t m, const float *x, int32_t ldx, float *xs, float *y,
                         int32_t ldy, int rev) {
    int32_t i;
    for (i = 0; i < m; ++i) {
        if (xs[i] == xs[i]) continue;
        /* one row: the portable products need no work */
        (w->dtype == LSL_I8_SPARSE ? lsl_portable_gemm_sparse_i8 : lsl_kernels_portable.gemm_i8)(
            w, 1, x + (size_t)i * ldx, ldx, y + (size_t)i * ldy, ldy, rev, NULL);
        xs[i] = 0.0f;
    }
}

/* Float activations: for fewer than LSL_UNPACK_ROWS rows, their two digits (d0 planes,
 * then d1 planes, in work) and gemm_d15, or past LSL_D15_KMAX columns three digit planes
 * and the digit products; for more rows, the unpacked panels. */
TAVX2 void lsl_avx2_gemm_i8(const lsl_matrix *w, int32_t m, const float *x, int32_t ldx, float *y, int32_t ldy,
                            int rev, void *work) {
    const size_t lstride = (size_t)m * w->kpad;
    if (m >= LSL_UNPACK_ROWS) {
        gemm_i8_unpacked(w, m, x, ldx, y, ldy, rev, (float *)work);
        return;
    }
    uint8_t *u = (uint8_t *)work;
    float *xs = (float *)((char *)work + lsl_round_up(3 * lstride, LSL_ALIGN));
    if (w->kpad <= LSL_D15_KMAX) {
        int16_t *lo = (int16_t *)work;
        int8_t *hi = (int8_t *)work + 2 * lstride;
        lsl_avx2_quantize_d15(m, w->cols, w->kpad, x, ldx, lo, hi, xs);
        lsl_avx2_float_rows(w, m, x, ldx, xs, y, ldy, rev);
        gemm_d15(w, m, lo, hi, xs, y, ldy, rev);
        return;
    }
    lsl_avx2_quantize_digits(m, w->cols, w->kpad, x, ldx, u, lstride, xs);
    lsl_avx2_float_rows(w, m, x, ldx, xs, y, ldy, rev);
    gemm_q8(LSL_K_DIG, w, m, u, w->kpad, lstride, xs, y, ldy, rev);
}

/* ---- (1, 4)-block sparse int8 (LSL_I8_SPARSE) --------------------------------------- */

TAVX2 void lsl_avx2_gemm_sparse_dyn8(const lsl_matrix *w, int32_t m, const uint8_t *u, int32_t ldu, const float *xs,
                                     const float *bias, float *y, int32_t ldy, int rev) {
    /* one row (the recurrent product), where no weight is -128: as gemm_q8, the
     * sign-mask form from |q| and sign planes where the blocks are shared (one quad per
     * slot), else |q| once per quad instead of |w| per weight vector */
    const int32_t upad = lsl_sparse_upad(w->kpad);
    if (m == 1 && (w->reserved & LSL_MATRIX_NO_M128) && (w->reserved & LSL_MATRIX_SHARED8) && upad <= LSL_DYNM_KMAX) {
        uint8_t planes[2 * LSL_DYNM_KMAX] __attribute__((aligned(32)));
        sign_planes(upad, u, planes, planes + upad);
        gemm_sparse_q8(LSL_K_DYNM, w, m, planes, upad, (size_t)upad, xs, bias, y, ldy, rev);
    } else if (m == 1 && (w->reserved & LSL_MATRIX_NO_M128))
        gemm_sparse_q8(LSL_K_DYNX, w, m, u, ldu, 0, xs, bias, y, ldy, rev);
    else
        gemm_sparse_q8(LSL_K_DYN, w, m, u, ldu, 0, xs, bias, y, ldy, rev);
}

/* Float activations: rows of whole windows in two digits where the halves of every panel
 * share their blocks (LSL_MATRIX_SHARED8) and the rows fit LSL_D15_KMAX (sparse_panel_d15,
 * as the dense one-row products), else three digit planes and the digit products. */
TAVX2 void lsl_avx2_gemm_sparse_i8(const lsl_matrix *w, int32_t m, const float *x, int32_t ldx, float *y,
                                   int32_t ldy, int rev, void *work) {
    const int32_t upad = lsl_sparse_upad(w->kpad);
    const size_t lstride = (size_t)m * upad;
    uint8_t *u = (uint8_t *)work;
    float *xs = (float *)((char *)work + lsl_round_up(3 * lstride, LSL_ALIGN));
    if ((w->reserved & LSL_MATRIX_SHARED8) && upad <= LSL_D15_KMAX) {
        const lsl_sparse_view view = sparse_view_of(w);
        const int32_t panels = lsl_panels(w->rows);
        int16_t *lo = (int16_t *)work;
        int8_t *hi = (int8_t *)work + 2 * lstride;
        int32_t g, i;
        lsl_avx2_quantize_d15(m, w->cols, upad, x, ldx, lo, hi, xs);
        lsl_avx2_float_rows(w, m, x, ldx, xs, y, ldy, rev);
        for (g = 0; g < panels; ++g)
            for (i = 0; i < m; ++i)
                sparse_panel_d15(&view, rev ? panels - 1 - g : g, lo + (size_t)i * upad, hi + (size_t)i * upad, xs[i],
                                 w, y + (size_t)i * ldy);
        return;
    }
    lsl_avx2_quantize_digits(m, w->cols, upad, x, ldx, u, lstride, xs);
    lsl_avx2_float_rows(w, m, x, ldx, xs, y, ldy, rev);
    gemm_sparse_q8(LSL_K_DIG, w, m, u, upad, lstride, xs, NULL, y, ldy, rev);
}

/* ---- dynamic activation quantization (same results as lsl_quantize_rows) ---------- */

/* max |row[j]| over k values, or NaN where the row holds a NaN, an infinity or a value
 * past 3e38, as the C quantizers take it (lsl_matrix.c: row_amax). */
AINL TAVX2 float row_amax_avx2(const float *row, int32_t k) {
    const __m256 sign = _mm256_set1_ps(-0.0f), big = _mm256_set1_ps(3.0e38f);
    __m256 vmax = _mm256_setzero_ps(), m1 = vmax, m2 = vmax, m3 = vmax, bad = vmax;
    __m128 h;
    float amax;
    int32_t j;
    int nonfinite = 0;
    /* four chains of vmaxps: a recurrent step waits for this maximum (the quantized h
     * feeds the next product), and one chain is 2 cycles a vector of latency; the
     * maximum does not depend on the order */
    for (j = 0; j + 32 <= k; j += 32) {
        const __m256 a0 = _mm256_andnot_ps(sign, _mm256_loadu_ps(row + j));
        const __m256 a1 = _mm256_andnot_ps(sign, _mm256_loadu_ps(row + j + 8));
        const __m256 a2 = _mm256_andnot_ps(sign, _mm256_loadu_ps(row + j + 16));
        const __m256 a3 = _mm256_andnot_ps(sign, _mm256_loadu_ps(row + j + 24));
        vmax = _mm256_max_ps(a0, vmax);
        m1 = _mm256_max_ps(a1, m1);
        m2 = _mm256_max_ps(a2, m2);
        m3 = _mm256_max_ps(a3, m3);
        /* !(a <= 3e38): a NaN (unordered) or past 3e38, off the maximum's chains */
        bad = _mm256_or_ps(bad, _mm256_or_ps(_mm256_or_ps(_mm256_cmp_ps(a0, big, _CMP_NLE_UQ),
                                                          _mm256_cmp_ps(a1, big, _CMP_NLE_UQ)),
                                             _mm256_or_ps(_mm256_cmp_ps(a2, big, _CMP_NLE_UQ),
                                                          _mm256_cmp_ps(a3, big, _CMP_NLE_UQ))));
    }
    for (; j + 8 <= k; j += 8) {
        const __m256 a0 = _mm256_andnot_ps(sign, _mm256_loadu_ps(row + j));
        vmax = _mm256_max_ps(a0, vmax);
        bad = _mm256_or_ps(bad, _mm256_cmp_ps(a0, big, _CMP_NLE_UQ));
    }
    nonfinite = _mm256_movemask_ps(bad) != 0;
    vmax = _mm256_max_ps(_mm256_max_ps(vmax, m1), _mm256_max_ps(m2, m3));
    h = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
    amax = _mm_cvtss_f32(h);
    for (; j < k; ++j) {
        float a = row[j] < 0 ? -row[j] : row[j];
        nonfinite |= !(a <= 3.0e38f);
        amax = a > amax ? a : amax;
    }
    return nonfinite ? __builtin_nanf("") : amax;
}

/* The quantizers' per-row scale: *xs = max|row| / fq, and the multiplier fq / max|row|
 * the codes are rounded from; 0 where the row has no fixed-point form, whose codes are
 * then zero: *xs = 0 for all zeros, NaN for a NaN, an infinity or a value past 3e38
 * (its outputs NaN, as lsl_quantize_rows makes them). */
AINL TAVX2 float row_inv_avx2(const float *row, int32_t k, float fq, float *xs) {
    const float amax = row_amax_avx2(row, k);
    if (!(amax > 0.0f)) {
        *xs = amax == amax ? 0.0f : __builtin_nanf("");
        return 0.0f;
    }
    *xs = amax / fq;
    return fq / amax;
}

/* The codes of 8 values at p: round to nearest even of p[j] * inv (vcvtps2dq, as lrintf),
 * clamped to [lo, hi] (-qmax, qmax); the scalar form for the row's tail. */
AINL TAVX2 __m256i codes8_avx2(const float *p, __m256 vinv, __m256i lo, __m256i hi) {
    return _mm256_min_epi32(_mm256_max_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(p), vinv)), lo), hi);
}
AINL TAVX2 int32_t code1_avx2(float v, int32_t qmax) {
    const int32_t c = _mm_cvtss_si32(_mm_set_ss(v)); /* round to nearest even */
    return c > qmax ? qmax : (c < -qmax ? -qmax : c);
}

TAVX2 void lsl_avx2_quantize_rows(int32_t m, int32_t k, int32_t kpad, const float *x, int32_t ldx, uint8_t *u,
                                  float *xs, int32_t qmax) {
    const __m256i hi = _mm256_set1_epi32(qmax), lo = _mm256_set1_epi32(-qmax);
    int32_t i, j;
    for (i = 0; i < m; ++i) {
        const float *row = x + (size_t)i * ldx;
        uint8_t *q = u + (size_t)i * kpad;
        const float inv = row_inv_avx2(row, k, (float)qmax, &xs[i]);
        const __m256 vinv = _mm256_set1_ps(inv);
        if (inv == 0.0f) {
            memset(q, LSL_Q_OFFSET, (size_t)kpad);
            continue;
        }
        for (j = 0; j + 8 <= k; j += 8) {
            const __m256i v = _mm256_add_epi32(codes8_avx2(row + j, vinv, lo, hi), _mm256_set1_epi32(LSL_Q_OFFSET));
            const __m128i w16 = _mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
            _mm_storel_epi64((__m128i *)(q + j), _mm_packus_epi16(w16, w16));
        }
        for (; j < k; ++j) q[j] = (uint8_t)(code1_avx2(row[j] * inv, qmax) + LSL_Q_OFFSET);
        for (; j < kpad; ++j) q[j] = LSL_Q_OFFSET;
    }
}

/* 16-bit codes (LSL_ACT_DYN16): lsl_quantize_rows16's operations, 8 values a vector
 * (vcvtps2dq rounds to nearest even, as lrintf does), so the same codes. */
TAVX2 void lsl_avx2_quantize_rows16(int32_t m, int32_t k, int32_t kpad, const float *x, int32_t ldx, int16_t *q,
                                    float *xs) {
    const int32_t qmax = lsl_dyn16_qmax(kpad);
    const __m256i hi = _mm256_set1_epi32(qmax), lo = _mm256_set1_epi32(-qmax);
    int32_t i, j;
    for (i = 0; i < m; ++i) {
        const float *row = x + (size_t)i * ldx;
        int16_t *qr = q + (size_t)i * kpad;
        const float inv = row_inv_avx2(row, k, (float)qmax, &xs[i]);
        const __m256 vinv = _mm256_set1_ps(inv);
        if (inv == 0.0f) {
            memset(qr, 0, (size_t)kpad * sizeof(int16_t));
            continue;
        }
        for (j = 0; j + 8 <= k; j += 8) {
            const __m256i v = codes8_avx2(row + j, vinv, lo, hi);
            _mm_storeu_si128((__m128i *)(qr + j), _mm_packs_epi32(_mm256_castsi256_si128(v),
                                                                  _mm256_extracti128_si256(v, 1)));
        }
        for (; j < k; ++j) qr[j] = (int16_t)code1_avx2(row[j] * inv, qmax);
        for (; j < kpad; ++j) qr[j] = 0;
    }
}

/* Float rows to three planes of signed digits (d0, d1, d2; stride lstride bytes, rows
 * of kpad bytes, zero past k) and scales xs = max|row| / LSL_DIG_MAX: see
 * lsl_kern_avx2.h. An all-zero row becomes 0; a NaN, an infinity or a value past 3e38
 * zero codes and xs NaN (float_row_scale; lsl_avx2_float_rows takes such a row). */
TAVX2 void lsl_avx2_quantize_digits(int32_t m, int32_t k, int32_t kpad, const float *x, int32_t ldx, uint8_t *u,
                                    size_t lstride, float *xs) {
    const __m256i half = _mm256_set1_epi32(64), low7 = _mm256_set1_epi32(127);
    const __m256i qmax = _mm256_set1_epi32((int32_t)LSL_DIG_MAX);
    int32_t i, j;
    for (i = 0; i < m; ++i) {
        const float *row = x + (size_t)i * ldx;
        int8_t *d0 = (int8_t *)u + (size_t)i * kpad, *d1 = d0 + lstride, *d2 = d1 + lstride;
        const float inv = float_row_scale(row, k, LSL_DIG_MAX, xs + i);
        const __m256 vinv = _mm256_set1_ps(inv);
        memset(d0, 0, (size_t)kpad);
        memset(d1, 0, (size_t)kpad);
        memset(d2, 0, (size_t)kpad);
        if (inv == 0.0f) continue; /* all zero, or xs NaN */
        for (j = 0; j < k; j += 8) {
            const int32_t n = k - j < 8 ? k - j : 8;
            __m256i q = fixed_codes(row + j, n, vinv, qmax), t0, t1, t2;
            int8_t b[3][16];
            /* balanced digits: d = ((q + 64) & 127) - 64, then q = (q - d) / 128 exactly */
            t0 = _mm256_sub_epi32(_mm256_and_si256(_mm256_add_epi32(q, half), low7), half);
            q = _mm256_srai_epi32(_mm256_sub_epi32(q, t0), 7);
            t1 = _mm256_sub_epi32(_mm256_and_si256(_mm256_add_epi32(q, half), low7), half);
            t2 = _mm256_srai_epi32(_mm256_sub_epi32(q, t1), 7);
            {
                const __m256i t[3] = {t0, t1, t2};
                int l;
                for (l = 0; l < 3; ++l) {
                    __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(t[l]), _mm256_extracti128_si256(t[l], 1));
                    _mm_storeu_si128((__m128i *)b[l], _mm_packs_epi16(w16, w16));
                }
            }
            memcpy(d0 + j, b[0], (size_t)n);
            memcpy(d1 + j, b[1], (size_t)n);
            memcpy(d2 + j, b[2], (size_t)n);
        }
    }
}

/* Float rows to two digits (LSL_D15_MAX: d0 rows of kpad int16 at lo, d1 rows of kpad
 * int8 at hi, zero past k) and scales xs = max|row| / LSL_D15_MAX; zero and non-finite
 * rows as lsl_avx2_quantize_digits. */
TAVX2 void lsl_avx2_quantize_d15(int32_t m, int32_t k, int32_t kpad, const float *x, int32_t ldx, int16_t *lo,
                                 int8_t *hi, float *xs) {
    const __m256i half = _mm256_set1_epi32(1 << 14), low15 = _mm256_set1_epi32((1 << 15) - 1);
    const __m256i qmax = _mm256_set1_epi32((int32_t)LSL_D15_MAX);
    int32_t i, j;
    for (i = 0; i < m; ++i) {
        const float *row = x + (size_t)i * ldx;
        int16_t *d0 = lo + (size_t)i * kpad;
        int8_t *d1 = hi + (size_t)i * kpad;
        const float inv = float_row_scale(row, k, LSL_D15_MAX, xs + i);
        const __m256 vinv = _mm256_set1_ps(inv);
        memset(d0, 0, (size_t)kpad * sizeof *d0);
        memset(d1, 0, (size_t)kpad);
        if (inv == 0.0f) continue; /* all zero, or xs NaN */
        for (j = 0; j < k; j += 8) {
            const int32_t n = k - j < 8 ? k - j : 8;
            const __m256i q = fixed_codes(row + j, n, vinv, qmax);
            __m256i t0, t1;
            __m128i p0, p1;
            int16_t b0[8];
            int8_t b1[16];
            /* balanced: d0 = ((q + 2^14) & (2^15 - 1)) - 2^14, then d1 = (q - d0) / 2^15 exactly */
            t0 = _mm256_sub_epi32(_mm256_and_si256(_mm256_add_epi32(q, half), low15), half);
            t1 = _mm256_srai_epi32(_mm256_sub_epi32(q, t0), 15);
            p0 = _mm_packs_epi32(_mm256_castsi256_si128(t0), _mm256_extracti128_si256(t0, 1));
            p1 = _mm_packs_epi32(_mm256_castsi256_si128(t1), _mm256_extracti128_si256(t1, 1));
            _mm_storeu_si128((__m128i *)b0, p0);
            _mm_storeu_si128((__m128i *)b1, _mm_packs_epi16(p1, p1));
            memcpy(d0 + j, b0, (size_t)n * sizeof *d0);
            memcpy(d1 + j, b1, (size_t)n);
        }
    }
}

/* ---- element-wise ------------------------------------------------------------------ */

TAVX2 void lsl_avx2_lstm_pointwise(int32_t hidden, const float *gates, float *c, float *h) {
    int32_t j = 0, n;
    for (; (n = (hidden - j) / 16 * 16) > 0; j += n) { /* whole blocks of 16, up to LSL_CELLS_MAX units a call */
        n = n < LSL_CELLS_MAX ? n : LSL_CELLS_MAX;
        cells_avx2(gates + j, gates + hidden + j, gates + 2 * hidden + j, gates + 3 * hidden + j, n, c + j, h + j);
    }
    for (; j < hidden; j += 8) {
        const int32_t n = hidden - j;
        cell8(ld(gates + j, n), ld(gates + hidden + j, n), ld(gates + 2 * hidden + j, n), ld(gates + 3 * hidden + j, n),
              c + j, h + j, n);
    }
}

TAVX2 void lsl_avx2_gru_pointwise(int32_t hidden, const float *gi, const float *gh, float *h) {
    int32_t j;
    for (j = 0; j < hidden; j += 8) {
        int32_t n = hidden - j;
        __m256 r = sigmoid256(_mm256_add_ps(ld(gi + j, n), ld(gh + j, n)));
        __m256 z = sigmoid256(_mm256_add_ps(ld(gi + hidden + j, n), ld(gh + hidden + j, n)));
        __m256 nn = tanh256(_mm256_fmadd_ps(r, ld(gh + 2 * hidden + j, n), ld(gi + 2 * hidden + j, n)));
        __m256 hp = ld(h + j, n);
        st(h + j, _mm256_fmadd_ps(z, _mm256_sub_ps(hp, nn), nn), n);
    }
}

/* ---- fused single-stream LSTM step (lsl_kern_avx2.h) ------------------------------- */

static TAVX2 void lstm_step1(const lsl_matrix *w, int32_t hidden, const float *g, float *c, float *h, void *work,
                             int rev) {
    uint8_t *u = (uint8_t *)work;
    float xs;
    if (lsl_act_u8(w->act)) {
        lsl_avx2_quantize_rows(1, hidden, w->kpad, h, hidden, u, &xs, lsl_act_qmax(w->act));
        lstm_step1_dyn(cells_avx2, w, hidden, u, xs, g, c, h, rev);
    } else if (w->kpad <= LSL_D15_KMAX) {
        lstm_step1_d15(cells_avx2, w, hidden, work, g, c, h, rev);
    } else {
        lsl_avx2_quantize_digits(1, hidden, w->kpad, h, hidden, u, (size_t)w->kpad, &xs);
        lstm_step1_q8(LSL_K_DIG, w, hidden, u, (size_t)w->kpad, xs, g, c, h, rev);
    }
}

const lsl_kernels lsl_kernels_avx2 = {
    LSL_ISA_AVX2, lsl_avx2_gemm_f32, lsl_avx2_gemm_i8, lsl_avx2_gemm_dyn8, lsl_avx2_quantize_rows,
    lsl_avx2_gemm_sparse_i8, lsl_avx2_gemm_sparse_dyn8, lsl_avx2_lstm_pointwise, lsl_avx2_gru_pointwise,
    lstm_step1, NULL, /* the sparse step: lsl_avx2_gemm_sparse_* and lstm_pointwise (a fused one,
                          * 8 units a block, measured slower on Xeon; 16 units a block with the
                          * dense step's grouped cell updates, no faster on Zen 4) */
    NULL, lsl_avx2_gemm_dyn16, lsl_avx2_quantize_rows16,
};

#endif /* LSL_HAVE_X86 */
