/*
 * lsl_kern_portable.c -- the portable C99 kernels: every ISA's reference, and the
 * only code a microcontroller build compiles. Plain loops over the packed layout.
 */
#include <math.h> /* FP_FAST_FMAF */

#include "lsl_fastmath.h"
#include "lsl_internal.h"

/* GCC: keep the loop after it a loop, so that the vectorizer sees it as the innermost
 * loop. Else GCC 12 -O3 unrolls the 16-lane loop first and vectorizes the k loop around
 * it as 16 in-order (fold-left) float reductions: shuffles and scalar adds, 40x
 * slower than 4 vector multiply-adds per k. */
#if defined(__GNUC__) && !defined(__clang__)
#define LSL_LANE_LOOP _Pragma("GCC unroll 1")
#else
#define LSL_LANE_LOOP
#endif

/* acc[r] += xv * w[r] for the 16 rows of a panel: a straight loop over lanes, which
 * compilers turn into vector multiplies and adds; each row's sum runs in k order. */
static inline void axpy16(float *restrict acc, const float *restrict w, float xv) {
    int32_t r;
    LSL_LANE_LOOP
    for (r = 0; r < LSL_PANEL; ++r) acc[r] += xv * w[r];
}

static void gemm_f32(const lsl_matrix *w, int32_t m, const float *x, int32_t ldx, float *y, int32_t ldy, int rev) {
    const float *data = (const float *)w->data;
    int32_t panels = lsl_panels(w->rows), p, i, k, r;
    (void)rev; /* the order of panels does not matter to a cache-less target */
    for (p = 0; p < panels; ++p) {
        const float *pw = data + (size_t)p * (size_t)w->kpad * LSL_PANEL;
        int32_t nr = w->rows - p * LSL_PANEL < LSL_PANEL ? w->rows - p * LSL_PANEL : LSL_PANEL;
        for (i = 0; i < m; ++i) {
            float acc[LSL_PANEL] = {0};
            const float *xr = x + (size_t)i * (size_t)ldx;
            for (k = 0; k < w->cols; ++k) axpy16(acc, pw + (size_t)k * LSL_PANEL, xr[k]);
            for (r = 0; r < nr; ++r) y[(size_t)i * (size_t)ldy + (size_t)(p * LSL_PANEL) + (size_t)r] += acc[r];
        }
    }
}

/* A build for a microcontroller: Arm's M profile, or any build for size (-Os, the
 * exported C projects' default). Its steps multiply one row and it has no vector unit
 * for floats, so two forms below that are faster where compilers vectorize are left out
 * there, where they would be larger or slower: WORD_WEIGHTS and UNPACK_ROWS. Either way,
 * the same bits. */
#if (defined(__ARM_ARCH_PROFILE) && __ARM_ARCH_PROFILE == 'M') || defined(__OPTIMIZE_SIZE__)
#define MCU_BUILD 1
#else
#define MCU_BUILD 0
#endif

/* Whether block_i8 reads a row's 4 weights as one 32-bit word, taken apart by shifts,
 * or as 4 bytes. Words where compilers vectorize: the loop then has 32-bit lanes only,
 * which GCC 12 (-O3 -march=native, Zen 4) runs 16 at a time with no shuffle; from bytes
 * it widened them in two steps and built each block's activation pattern with inserts
 * (bench_isa's I=40/H=128 int8 layer 620 -> 553 us; the same sums in the same order, so
 * the same bits). Bytes in a microcontroller build: there a sign-extending byte load and
 * a conversion take fewer instructions than the shifts (30 against 36 a row of a block,
 * arm-none-eabi-gcc 12 -O2, Cortex-M4). (Dynamic int8 takes the word form only where
 * DYN_EXACT_FLOATS says, below.) */
#define WORD_WEIGHTS (!MCU_BUILD)

/* Whether u8 codes (dynamic int8) multiply the weights as exact floats, through
 * block_i8's word form, instead of as integers (block_dyn8). A code (-128 .. 127)
 * times a weight is at most 2^14 in size, so a float sum of up to 2^10 such products
 * is an integer of at most 2^24, which floats hold exactly: up to EXACT_COLS columns,
 * each of block_i8's four sums per row adds at most 2^10 of them, and moved to int32
 * they are block_dyn8's sums, bit for bit. Where GCC 12 -O3 targets AVX2 (-march=native
 * on Zen 3), 8 float lanes with no widening beat 16-bit multiplies whose products must
 * be widened to 32 bits: bench_isa's I=40/H=128 dynamic layer took 1207 us, 945 with
 * exact floats and 755 with each row's codes made floats once (gemm_dyn8_exact) rather
 * than 4 at a time in every panel, 598 with fused multiply-adds (MADD_EXACT). Not where
 * it targets SSE2 (no -march: 1425 -> 1850 us, 4 float lanes against 8 16-bit ones) or
 * AVX-512BW (Zen 4, 32 16-bit lanes: the integer form measured faster there than exact
 * floats made 4 codes at a time in every panel; gemm_dyn8_exact was not measured
 * there), nor in a microcontroller build (MCU_BUILD: Arm's M profile, or -Os), whose
 * float unit (if any) is no faster than its integer multiply-accumulate. */
#if !MCU_BUILD && defined(__AVX2__) && !defined(__AVX512BW__)
#define DYN_EXACT_FLOATS 1
#else
#define DYN_EXACT_FLOATS 0
#endif

/* acc + x * w where every product and sum is an integer of at most 2^24
 * (gemm_dyn8_exact's): fused where the target has a fast fmaf, which gives the same
 * bits there (there is no rounding for it to skip) in one instruction instead of two
 * (bench_isa's I=40/H=128 dynamic layer 737 -> 598 us, Zen 3); else the multiply and
 * the add. The runtime's -ffp-contract=off keeps every other sum unfused. */
#if DYN_EXACT_FLOATS && defined(FP_FAST_FMAF)
#define MADD_EXACT(acc, x, w) fmaf((x), (w), (acc))
#else
#define MADD_EXACT(acc, x, w) ((acc) + (x) * (w))
#endif

/* Whether this target keeps a word's low byte first, which says where each of the 4
 * weights packed in a word lies (s390x, big-endian, runs the suite's C tests under
 * QEMU). Compilers fold it to a constant. */
static inline int little_endian(void) {
    const uint32_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    return first == 1;
}

/* The int8 weight in bits s .. s + 7 of v as a float, exactly: shifted to the top of the
 * word, then arithmetically back down, which sign-extends it; three vector instructions
 * (two for the top byte), where masking it into a float's mantissa took four (GCC 12
 * -O3 -march=native, Zen 3: bench_isa's I=40/H=128 int8 layer 6 % faster). Relies on
 * what every compiler this code meets does, though C99 leaves it to the
 * implementation: a uint32_t past INT32_MAX converts to int32_t modulo 2^32, and >> of
 * a negative int32_t shifts in its sign. */
static inline float weight_at(uint32_t v, int s) { return (float)((int32_t)(v << (24 - s)) >> 24); }

/* One panel's 16 rows x 4 columns block of the int8 layout (64 bytes: row r's 4
 * weights at 4r .. 4r + 3) times the 4 activations xq: a[j][r] += xq[j] * w[r][j], one
 * product per lane, a straight loop over the 16 rows that compilers turn into vector
 * multiplies and adds (a row's 4 partial sums are added once, at the end). `exact`
 * (a constant where it is inlined): the products and sums are exact integers
 * (gemm_dyn8_exact), which MADD_EXACT may fuse. */
static inline void block_i8(float *restrict a0, float *restrict a1, float *restrict a2, float *restrict a3,
                            const int8_t *restrict b, const float *restrict xq, const int exact) {
    const float x0 = xq[0], x1 = xq[1], x2 = xq[2], x3 = xq[3];
    const int le = little_endian();
    int32_t r;
    LSL_LANE_LOOP
    for (r = 0; r < LSL_PANEL; ++r) {
        float w0, w1, w2, w3;
        if (WORD_WEIGHTS) {
            uint32_t v;
            memcpy(&v, b + 4 * r, sizeof v);
            w0 = weight_at(v, le ? 0 : 24);
            w1 = weight_at(v, le ? 8 : 16);
            w2 = weight_at(v, le ? 16 : 8);
            w3 = weight_at(v, le ? 24 : 0);
        } else {
            w0 = (float)b[4 * r], w1 = (float)b[4 * r + 1], w2 = (float)b[4 * r + 2], w3 = (float)b[4 * r + 3];
        }
        /* two branches that are one where MADD_EXACT does not fuse: written as one
         * expression (exact ? MADD_EXACT : +) GCC 12 allocated registers differently in
         * gemm_dyn8_exact, and these loops are timed and measured (bench_portable.py,
         * the memory tables), so they stay as they were measured */
        if (exact) {
            a0[r] = MADD_EXACT(a0[r], x0, w0);
            a1[r] = MADD_EXACT(a1[r], x1, w1);
            a2[r] = MADD_EXACT(a2[r], x2, w2);
            a3[r] = MADD_EXACT(a3[r], x3, w3);
        } else {
            a0[r] += x0 * w0;
            a1[r] += x1 * w1;
            a2[r] += x2 * w2;
            a3[r] += x3 * w3;
        }
    }
}

/* One panel's product with one float row x (cols values; columns past cols read as 0:
 * their weights are 0, but 0 * NaN is not), added into the panel's nr outputs y with
 * their scales. A function of its own, as panel_sums (and why): inside gemm_i8's loops
 * GCC 12 made 2.1 products a ns of the byte form of this (-O3 -march=native, Zen 4,
 * 1024 x 128, 100 rows), alone 13. The whole blocks of columns read x as it is, which
 * takes four compares out of each step; and the outputs are added here, over the 16
 * lanes of a whole panel, where GCC vectorizes them: from a sums array that gemm_i8
 * added up, they were scalar shuffles, 17 % of the product's time (Zen 3). */
static void panel_sums_f32(const int8_t *pw, const float *xr, int32_t cols, int32_t kpad,
                           const float *restrict scale, int32_t nr, float *restrict y) {
    float acc[4][LSL_PANEL] = {{0}};
    int32_t k4, j, r;
    for (k4 = 0; k4 < cols / 4; ++k4)
        block_i8(acc[0], acc[1], acc[2], acc[3], pw + (size_t)k4 * 4 * LSL_PANEL, xr + 4 * k4, 0);
    for (; k4 < kpad / 4; ++k4) {
        float xq[4];
        for (j = 0; j < 4; ++j) xq[j] = 4 * k4 + j < cols ? xr[4 * k4 + j] : 0.0f;
        block_i8(acc[0], acc[1], acc[2], acc[3], pw + (size_t)k4 * 4 * LSL_PANEL, xq, 0);
    }
    if (!MCU_BUILD && nr == LSL_PANEL) /* a loop of 16, which compilers vectorize */
        for (r = 0; r < LSL_PANEL; ++r) y[r] += ((acc[0][r] + acc[1][r]) + (acc[2][r] + acc[3][r])) * scale[r];
    else
        for (r = 0; r < nr; ++r) y[r] += ((acc[0][r] + acc[1][r]) + (acc[2][r] + acc[3][r])) * scale[r];
}

/* Whether gemm_i8 unpacks panels for products of several rows. Not in a
 * microcontroller build, whose steps multiply one row: 350 bytes of Cortex-M code
 * (-O2) that would never run there. */
#define UNPACK_ROWS (!MCU_BUILD)

/* One panel of the int8 layout as floats in the float layout's k order (f[16 k + r] =
 * w[r][k]): done once per product of LSL_UNPACK_MIN_ROWS rows or more, in the work
 * lsl_matmul_bytes reserves for it, after which every row runs axpy16 as gemm_f32 does. */
static void unpack_panel_f32(const int8_t *pw, int32_t kpad, float *f) {
    int32_t k4, j, r;
    for (k4 = 0; k4 < kpad / 4; ++k4)
        for (j = 0; j < 4; ++j)
            for (r = 0; r < LSL_PANEL; ++r)
                f[(4 * k4 + j) * LSL_PANEL + r] = (float)pw[(size_t)k4 * 4 * LSL_PANEL + (size_t)(4 * r) + (size_t)j];
}

/* The product of m rows with one panel, through its unpacked floats f: one 16-lane
 * accumulator per column of a block, so each row's four partial sums and their order
 * are panel_sums_f32's (the same bits). 2.5x panel_sums_f32's speed (GCC 12 -O3
 * -march=native, Zen 4, 512 x 40, 100 rows), in a function of its own as panel_sums. */
static void panel_rows_unpacked(const float *f, int32_t m, const float *x, int32_t ldx, int32_t cols, int32_t kpad,
                                const float *scale, int32_t nr, float *y, int32_t ldy) {
    int32_t i, k4, j, r;
    for (i = 0; i < m; ++i) {
        float acc[4][LSL_PANEL] = {{0}};
        const float *xr = x + (size_t)i * (size_t)ldx;
        for (k4 = 0; k4 < kpad / 4; ++k4)
            for (j = 0; j < 4; ++j)
                axpy16(acc[j], f + (size_t)(4 * k4 + j) * LSL_PANEL, 4 * k4 + j < cols ? xr[4 * k4 + j] : 0.0f);
        for (r = 0; r < nr; ++r)
            y[(size_t)i * (size_t)ldy + (size_t)r] += ((acc[0][r] + acc[1][r]) + (acc[2][r] + acc[3][r])) * scale[r];
    }
}

static void gemm_i8(const lsl_matrix *w, int32_t m, const float *x, int32_t ldx, float *y, int32_t ldy, int rev,
                    void *work) {
    const int8_t *data = (const int8_t *)w->data;
    int32_t panels = lsl_panels(w->rows), p, i;
    (void)rev;
    for (p = 0; p < panels; ++p) {
        const int8_t *pw = data + (size_t)p * (size_t)w->kpad * LSL_PANEL;
        int32_t nr = w->rows - p * LSL_PANEL < LSL_PANEL ? w->rows - p * LSL_PANEL : LSL_PANEL;
        if (UNPACK_ROWS && m >= LSL_UNPACK_MIN_ROWS) {
            unpack_panel_f32(pw, w->kpad, (float *)work);
            panel_rows_unpacked((const float *)work, m, x, ldx, w->cols, w->kpad, w->scale + p * LSL_PANEL, nr,
                                y + p * LSL_PANEL, ldy);
            continue;
        }
        for (i = 0; i < m; ++i)
            panel_sums_f32(pw, x + (size_t)i * (size_t)ldx, w->cols, w->kpad, w->scale + p * LSL_PANEL, nr,
                           y + (size_t)i * (size_t)ldy + (size_t)(p * LSL_PANEL));
    }
}

/* The integer form of block_i8: exact int32 sums, so any order gives the same. */
static inline void block_dyn8(int32_t *restrict acc4, const int8_t *restrict b, const int32_t *restrict q) {
    const int32_t q0 = q[0], q1 = q[1], q2 = q[2], q3 = q[3];
    int32_t r;
    for (r = 0; r < LSL_PANEL; ++r) {
        acc4[4 * r] += q0 * b[4 * r];
        acc4[4 * r + 1] += q1 * b[4 * r + 1];
        acc4[4 * r + 2] += q2 * b[4 * r + 2];
        acc4[4 * r + 3] += q3 * b[4 * r + 3];
    }
}

/* One panel's 16 exact int32 row sums against one row of codes: u8 (u = q + 128, wide
 * = 0) or int16 (LSL_ACT_DYN16, wide = 1). A function of its own: written inside
 * gemm_dyn's loops, GCC 12 (-O3 -march=native, Zen 4) vectorized it with 128-bit
 * shuffles at 6.0 int8 products a ns (1024 x 128, 100 rows), here at 15.4.
 * benchmarks/bench_portable.py times the whole layer against the SIMD tables. */
static void panel_sums(const int wide, const int8_t *pw, const void *u, int32_t kpad, int32_t *sums) {
    int32_t acc4[4 * LSL_PANEL] = {0};
    int32_t k4, j, r;
    for (k4 = 0; k4 < kpad / 4; ++k4) {
        int32_t q[4];
        for (j = 0; j < 4; ++j)
            q[j] = wide ? (int32_t)((const int16_t *)u)[4 * k4 + j] : (int32_t)((const uint8_t *)u)[4 * k4 + j] - LSL_Q_OFFSET;
        block_dyn8(acc4, pw + (size_t)k4 * 4 * LSL_PANEL, q);
    }
    for (r = 0; r < LSL_PANEL; ++r) sums[r] = acc4[4 * r] + acc4[4 * r + 1] + acc4[4 * r + 2] + acc4[4 * r + 3];
}

/* A dynamic product's epilogue for panel p of row i, from its exact sums:
 * y = (bias or y) + sum * (xs * scale), every table's, so the same bits. */
static inline void dyn_epilogue(const lsl_matrix *w, int32_t p, const int32_t *sums, float xs, const float *bias,
                                float *y) {
    const int32_t nr = w->rows - p * LSL_PANEL < LSL_PANEL ? w->rows - p * LSL_PANEL : LSL_PANEL;
    int32_t r;
    for (r = 0; r < nr; ++r) {
        float *yr = y + p * LSL_PANEL + r;
        *yr = (bias ? bias[p * LSL_PANEL + r] : *yr) + (float)sums[r] * (xs * w->scale[p * LSL_PANEL + r]);
    }
}

/* The dynamic products: u8 rows (u = q + 128, wide = 0) or int16 codes (LSL_ACT_DYN16,
 * wide = 1), exact int32 sums, then dyn_epilogue. `wide` is a constant where it is
 * inlined. */
static inline void gemm_dyn(const int wide, const lsl_matrix *w, int32_t m, const void *u, int32_t ldu,
                            const float *xs, const float *bias, float *y, int32_t ldy) {
    const int8_t *data = (const int8_t *)w->data;
    int32_t panels = lsl_panels(w->rows), p, i;
    for (p = 0; p < panels; ++p) {
        const int8_t *pw = data + (size_t)p * (size_t)w->kpad * LSL_PANEL;
        for (i = 0; i < m; ++i) {
            int32_t sums[LSL_PANEL];
            panel_sums(wide, pw, wide ? (const void *)((const int16_t *)u + (size_t)i * (size_t)ldu)
                                      : (const void *)((const uint8_t *)u + (size_t)i * (size_t)ldu),
                       w->kpad, sums);
            dyn_epilogue(w, p, sums, xs[i], bias, y + (size_t)i * (size_t)ldy);
        }
    }
}

/* The most columns whose products gemm_dyn8_exact sums exactly: 4 x 2^10, as above
 * (its codes as floats take 16 KB of stack). Wider matrices take the integer form. */
#define EXACT_COLS 4096

/* gemm_dyn for u8 codes as exact floats (DYN_EXACT_FLOATS; kpad <= EXACT_COLS): row by
 * row, its codes made floats once, then every panel's block_i8 sums, each exact. */
static void gemm_dyn8_exact(const lsl_matrix *w, int32_t m, const uint8_t *u, int32_t ldu, const float *xs,
                            const float *bias, float *y, int32_t ldy) {
    float q[EXACT_COLS];
    int32_t panels = lsl_panels(w->rows), p, i, k4, k, r;
    for (i = 0; i < m; ++i) {
        const uint8_t *ur = u + (size_t)i * (size_t)ldu;
        for (k = 0; k < w->kpad; ++k) q[k] = (float)((int32_t)ur[k] - LSL_Q_OFFSET);
        for (p = 0; p < panels; ++p) {
            const int8_t *pw = (const int8_t *)w->data + (size_t)p * (size_t)w->kpad * LSL_PANEL;
            float acc[4][LSL_PANEL] = {{0}};
            int32_t sums[LSL_PANEL];
            for (k4 = 0; k4 < w->kpad / 4; ++k4)
                block_i8(acc[0], acc[1], acc[2], acc[3], pw + (size_t)k4 * 4 * LSL_PANEL, q + 4 * k4, 1);
            for (r = 0; r < LSL_PANEL; ++r)
                sums[r] = ((int32_t)acc[0][r] + (int32_t)acc[1][r]) + ((int32_t)acc[2][r] + (int32_t)acc[3][r]);
            dyn_epilogue(w, p, sums, xs[i], bias, y + (size_t)i * (size_t)ldy);
        }
    }
}

static void gemm_dyn8(const lsl_matrix *w, int32_t m, const uint8_t *u, int32_t ldu, const float *xs,
                      const float *bias, float *y, int32_t ldy, int rev) {
    (void)rev;
    if (DYN_EXACT_FLOATS && w->kpad <= EXACT_COLS)
        gemm_dyn8_exact(w, m, u, ldu, xs, bias, y, ldy);
    else
        gemm_dyn(0, w, m, u, ldu, xs, bias, y, ldy);
}

/* 16-bit activation codes (LSL_ACT_DYN16): no offset to take off. */
void lsl_portable_gemm_dyn16(const lsl_matrix *w, int32_t m, const int16_t *q, int32_t ldq, const float *xs,
                             const float *bias, float *y, int32_t ldy, int rev) {
    (void)rev;
    gemm_dyn(1, w, m, q, ldq, xs, bias, y, ldy);
}

/* ---- (1, 4)-block sparse: walk the ELL segments (layout in lsl_internal.h) -------- */

/* Calls body(lane, k, wq) for every stored block of panel p: k = first column, wq = the
 * block's 4 weights; padding slots (all-zero weights) are skipped. */
#define SPARSE_FOR_BLOCKS(w, p, BODY)                                                              \
    do {                                                                                           \
        const unsigned char *base_ = (const unsigned char *)(w)->data;                             \
        const lsl_sparse_hdr *hdr_ = (const lsl_sparse_hdr *)base_;                                \
        const int32_t *tab_ = (const int32_t *)(base_ + hdr_->seg_offset);                         \
        int32_t win_, s_, lane;                                                                    \
        for (win_ = 0; win_ < hdr_->windows; ++win_) {                                             \
            const int32_t seg_ = (p) * hdr_->windows + win_, n_ = tab_[2 * seg_ + 1];              \
            const unsigned char *idx_ = base_ + tab_[2 * seg_];                                    \
            const int8_t *wts_ = (const int8_t *)(idx_ + lsl_segment_index_bytes(n_));             \
            for (s_ = 0; s_ < n_; ++s_)                                                            \
                for (lane = 0; lane < LSL_PANEL; ++lane) {                                         \
                    const int8_t *wq = wts_ + (size_t)64 * (size_t)s_ + 4 * lane;                  \
                    const int32_t k = 4 * (win_ * (LSL_SPARSE_WIN / 4) +                           \
                                           idx_[(size_t)64 * (size_t)(s_ / 4) +                    \
                                                (size_t)(4 * lane) + (size_t)(s_ % 4)]);           \
                    if ((wq[0] | wq[1] | wq[2] | wq[3]) == 0) continue;                            \
                    BODY                                                                           \
                }                                                                                  \
        }                                                                                          \
    } while (0)

void lsl_portable_gemm_sparse_i8(const lsl_matrix *w, int32_t m, const float *x, int32_t ldx, float *y,
                                 int32_t ldy, int rev, void *work) {
    int32_t panels = lsl_panels(w->rows), p, i, r, j;
    (void)rev;
    (void)work;
    for (p = 0; p < panels; ++p) {
        int32_t nr = w->rows - p * LSL_PANEL < LSL_PANEL ? w->rows - p * LSL_PANEL : LSL_PANEL;
        for (i = 0; i < m; ++i) {
            float acc[LSL_PANEL] = {0}, poison = 0.0f;
            const float *xr = x + (size_t)i * (size_t)ldx;
            /* A NaN or inf anywhere in the row poisons every output, as the dense
             * product with its zero weights would (0 * inf = NaN). */
            for (j = 0; j < w->cols; ++j) poison += xr[j] * 0.0f;
            for (r = 0; r < LSL_PANEL; ++r) acc[r] = poison;
            SPARSE_FOR_BLOCKS(w, p, {
                for (j = 0; j < 4 && k + j < w->cols; ++j) acc[lane] += xr[k + j] * (float)wq[j];
            });
            for (r = 0; r < nr; ++r)
                y[(size_t)i * (size_t)ldy + (size_t)(p * LSL_PANEL) + (size_t)r] +=
                    acc[r] * w->scale[p * LSL_PANEL + r];
        }
    }
}

void lsl_portable_gemm_sparse_dyn8(const lsl_matrix *w, int32_t m, const uint8_t *u, int32_t ldu, const float *xs,
                                   const float *bias, float *y, int32_t ldy, int rev) {
    int32_t panels = lsl_panels(w->rows), p, i, r, j;
    (void)rev;
    for (p = 0; p < panels; ++p) {
        int32_t nr = w->rows - p * LSL_PANEL < LSL_PANEL ? w->rows - p * LSL_PANEL : LSL_PANEL;
        for (i = 0; i < m; ++i) {
            int32_t acc[LSL_PANEL] = {0};
            const uint8_t *ur = u + (size_t)i * (size_t)ldu;
            SPARSE_FOR_BLOCKS(w, p, {
                for (j = 0; j < 4; ++j) acc[lane] += ((int32_t)ur[k + j] - LSL_Q_OFFSET) * wq[j];
            });
            for (r = 0; r < nr; ++r) {
                float *yr = y + (size_t)i * (size_t)ldy + p * LSL_PANEL + r;
                *yr = (bias ? bias[p * LSL_PANEL + r] : *yr) + (float)acc[r] * (xs[i] * w->scale[p * LSL_PANEL + r]);
            }
        }
    }
}

/* The element-wise updates: straight loops over lsl_fastmath.h's inline functions,
 * which compilers vectorize (and which the NEON table shares). */
void lsl_portable_lstm_pointwise(int32_t hidden, const float *gates, float *c, float *h) {
    int32_t j;
    for (j = 0; j < hidden; ++j) {
        float ig = lsl_fast_sigmoidf(gates[j]);
        float fg = lsl_fast_sigmoidf(gates[hidden + j]);
        float gg = lsl_fast_tanhf(gates[2 * hidden + j]);
        float og = lsl_fast_sigmoidf(gates[3 * hidden + j]);
        float cn = fg * c[j] + ig * gg;
        c[j] = cn;
        h[j] = og * lsl_fast_tanhf(cn);
    }
}

void lsl_portable_gru_pointwise(int32_t hidden, const float *gi, const float *gh, float *h) {
    int32_t j;
    for (j = 0; j < hidden; ++j) {
        float r = lsl_fast_sigmoidf(gi[j] + gh[j]);
        float z = lsl_fast_sigmoidf(gi[hidden + j] + gh[hidden + j]);
        float n = lsl_fast_tanhf(gi[2 * hidden + j] + r * gh[2 * hidden + j]);
        h[j] = n + z * (h[j] - n); /* = (1 - z) n + z h, PyTorch's form */
    }
}

const lsl_kernels lsl_kernels_portable = {
    LSL_ISA_PORTABLE, gemm_f32, gemm_i8, gemm_dyn8, lsl_quantize_rows, lsl_portable_gemm_sparse_i8,
    lsl_portable_gemm_sparse_dyn8, lsl_portable_lstm_pointwise, lsl_portable_gru_pointwise,
    NULL, NULL, NULL, /* no fused single-stream steps: the generic path */
    lsl_portable_gemm_dyn16, lsl_quantize_rows16,
};
