/*
 * lsl_internal.h -- what the runtime's C files share and users do not see: the packed
 * weight layout, the kernel table and the per-ISA kernel tables.
 *
 * Packed layout (why: a SIMD register holds one weight per output row, so a matrix-
 * vector product is a stream of broadcast(x) * load(16 rows) operations with no
 * horizontal sums, and one layout serves every ISA):
 *   LSL_F32   float [panel][k][16]               panel = 16 consecutive rows
 *   LSL_I8    int8  [panel][k/4][16][4]          kpad = cols rounded up to 4:
 *             4 consecutive k of one row sit together, the operand shape of VNNI's
 *             vpdpbusd (the float-activation kernels without VNNI unpack them).
 * Rows past `rows` in the last panel and columns past `cols` are zero.
 *
 * `rev` asks a kernel to walk the panels last to first. The recurrence alternates it
 * step by step: a matrix somewhat larger than L1 then finds the panels it used last
 * still in L1 (LRU keeps the most recent ones), instead of missing on every panel.
  */
#ifndef LSTMLITE_LSL_INTERNAL_H
#define LSTMLITE_LSL_INTERNAL_H

#include "lsl.h"

/* SIMD kernels exist for x86-64 with GCC or Clang (target attributes and
 * __builtin_cpu_supports); elsewhere, or with -DLSL_NO_SIMD, only the portable core. */
#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__)) && !defined(LSL_NO_SIMD)
#define LSL_HAVE_X86 1
#endif

#define LSL_PANEL 16
#define LSL_ALIGN 64

/* Dynamic activation quantization: x ~= s * q with q in [-127, 127]; the kernels see
 * u = q + 128 (unsigned, the operand VNNI wants) padded with 128 (q = 0). */
#define LSL_Q_OFFSET 128

/* Float activations for int8 weights on VNNI: x / max|row| as a 24-bit fixed-point
 * number q in [-(2^23 - 1), 2^23 - 1] (about float's own precision), stored as
 * u = q + 2^23 split into three bytes (hi, mid, lo) that vpdpbusd multiplies exactly. */
#define LSL_LIMB_MAX 8388607.0f

typedef struct lsl_kernels {
    int level;
    /* y[m*ldy + n] += sum_k x[m*ldx + k] * W[n, k]             (LSL_F32) */
    void (*gemm_f32)(const lsl_matrix *w, int32_t m, const float *x, int32_t ldx, float *y, int32_t ldy, int rev);
    /* y[m*ldy + n] += scale[n] * sum_k x[m*ldx + k] * W[n, k]  (LSL_I8, ACT_FLOAT);
     * `work` holds lsl_matmul_bytes(w, m) bytes. */
    void (*gemm_i8)(const lsl_matrix *w, int32_t m, const float *x, int32_t ldx, float *y, int32_t ldy, int rev,
                    void *work);
    /* y[m*ldy + n] += xs[m] * scale[n] * sum_k (u[m, k] - 128) * W[n, k]   (ACT_DYN8) */
    void (*gemm_dyn8)(const lsl_matrix *w, int32_t m, const uint8_t *u, int32_t ldu, const float *xs, float *y,
                      int32_t ldy, int rev);
    /* Quantize m rows of x (k floats each) to u8 rows of length kpad (q + 128, padded
     * with 128) and per-row scales xs = max|row| / 127. Bit-identical on every ISA:
     * round to nearest even of x * (127 / max|row|), as lrintf does. */
    void (*quantize_rows)(int32_t m, int32_t k, int32_t kpad, const float *x, int32_t ldx, uint8_t *u, float *xs);
    /* LSTM cell update for one row: gates (4H) pre-activations i,f,g,o -> c (H) in
     * place, h (H) written. */
    void (*lstm_pointwise)(int32_t hidden, const float *gates, float *c, float *h);
    /* GRU update for one row: gi (3H) = W_ih x + b_ih, gh (3H) = W_hh h + b_hh; h in place. */
    void (*gru_pointwise)(int32_t hidden, const float *gi, const float *gh, float *h);
} lsl_kernels;

extern const lsl_kernels lsl_kernels_portable;
#if defined(LSL_HAVE_X86)
extern const lsl_kernels lsl_kernels_avx2;
extern const lsl_kernels lsl_kernels_avx512;
extern const lsl_kernels lsl_kernels_avx512_vnni;
#endif

/** The kernel table in use (set by lsl_isa_set; best available by default). */
const lsl_kernels *lsl_kernels_active(void);

/** Quantize m rows of x (k floats each) to u8 rows of length kpad and per-row scales. */
void lsl_quantize_rows(int32_t m, int32_t k, int32_t kpad, const float *x, int32_t ldx, uint8_t *u, float *xs);

/** lsl_matmul without argument checks; `work` as lsl_matmul_bytes says. */
int lsl_matmul_unchecked(const lsl_kernels *kern, const lsl_matrix *w, int32_t m, const float *x, int32_t ldx,
                         float *y, int32_t ldy, void *work, int rev);

static inline int32_t lsl_panels(int32_t rows) { return (rows + LSL_PANEL - 1) / LSL_PANEL; }
static inline size_t lsl_round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

/* Bump allocator over a caller's buffer. With base == NULL it only counts bytes, so
 * one code path both sizes and fills a workspace. */
typedef struct lsl_arena {
    char *base;
    size_t used, cap;
} lsl_arena;

static inline void *lsl_take(lsl_arena *a, size_t bytes) {
    void *p;
    bytes = lsl_round_up(bytes, LSL_ALIGN);
    if (bytes > a->cap || a->used > a->cap - bytes) return NULL;
    p = a->base ? a->base + a->used : NULL;
    a->used += bytes;
    return p;
}

static inline size_t lsl_fl(size_t n) { return lsl_round_up(n * sizeof(float), LSL_ALIGN); }

#endif /* LSTMLITE_LSL_INTERNAL_H */
