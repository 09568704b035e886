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
 *             vpdpbusd; AVX2's vpsignb / vpmaddubsw / vpmaddwd read it as 8 rows x
 *             4 k per 32 bytes too (lsl_kern_avx2.h).
 * Rows past `rows` in the last panel and columns past `cols` are zero.
 *
 *   LSL_I8_SPARSE  (1, 4)-block sparse int8, ELL per (panel, window): the columns are
 *             cut in windows of 128 (32 blocks, the reach of one two-register
 *             permute), and each (panel, window) segment holds n "slots"; slot s gives
 *             each of the 16 lanes (rows) its s-th block of the window (zeros when the
 *             row has fewer: n is the panel's largest count). A segment is
 *               ceil(n/4) index groups of 64 bytes: lane r's 32-bit word holds the
 *                 window-local block numbers (0..31) of slots 4g..4g+3 in bytes 0..3,
 *                 so slot 4g+j's index vector is the word shifted right by 8j (the
 *                 permutes read only the low 5 bits);
 *               then n x 64 bytes of weights: slot s, lane r, 4 values.
 *             A kernel gathers each lane's 4 activations with one permute of the
 *             window's 128 activation bytes and multiplies like the dense layout.
 *             Buffer: lsl_sparse_hdr, the segment table (byte offset, n) per segment
 *             panel-major, the segments, then scale and wsum as for LSL_I8.
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

/* The AVX-VNNI table needs a compiler that knows target("avxvnni") and an assembler
 * that knows the {vex} prefix: GCC 11, clang 12 (Apple clang 13) and their binutils.
 * An older compiler builds every other table; lsl_isa_supported then says no. */
#if defined(LSL_HAVE_X86) &&                                                                          \
    ((defined(__clang__) && ((defined(__apple_build_version__) && __clang_major__ >= 13) ||             \
                             (!defined(__apple_build_version__) && __clang_major__ >= 12))) ||          \
     (!defined(__clang__) && __GNUC__ >= 11))
#define LSL_HAVE_AVXVNNI 1
#endif

/* NEON kernels (lsl_kern_neon.c) exist for aarch64 with GCC or Clang; the dot-product
 * table needs a compiler that takes target("+dotprod") on a function (GCC 10, clang 11)
 * so the rest of the build stays plain Armv8.0. */
#if defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(LSL_NO_SIMD)
#define LSL_HAVE_NEON 1
#if (defined(__clang__) && __clang_major__ >= 11) || (!defined(__clang__) && __GNUC__ >= 10)
#define LSL_HAVE_NEON_DOTPROD 1
#endif
#endif

#define LSL_PANEL 16

/* Float-activation int8 products of at least this many rows may convert each weight
 * panel to floats once (LSL_PANEL x kpad floats of work) instead of splitting the
 * activations into digit planes: lsl_matmul_bytes reserves the larger of the two from
 * here on, so a kernel table may switch at any row count >= this. */
#define LSL_UNPACK_MIN_ROWS 3

/* lsl_matrix.reserved bits, set by the packers. LSL_MATRIX_NO_M128: no int8 weight is
 * -128, so the AVX2 sign form may take |x| from the activations (shared by every weight
 * vector) instead of |w| (see lsl_kern_avx2.h). */
#define LSL_MATRIX_NO_M128 1
/* LSL_MATRIX_SHARED8 (LSL_I8_SPARSE only): in every slot the 8 lanes of each half panel
 * read the same block (the pattern of (8, 4)-block pruning, 8 rows by 4 columns, aligned
 * to the half panels), and every lane's index byte says so (lsl_sparse.c writes the
 * shared index into the zero-weight padding lanes too). A kernel may then broadcast one
 * quad of activations per half instead of gathering one per lane. */
#define LSL_MATRIX_SHARED8 2
/* LSL_MATRIX_SHARED16: SHARED8, and both halves of a panel read the same block in every
 * slot ((16, 4)-block pruning): one broadcast quad serves the panel's 16 rows. */
#define LSL_MATRIX_SHARED16 4
/* LSL_MATRIX_W7 (LSL_I8 only): every int8 weight is within [-64, 64] (7-bit codes:
 * `weights="int7"` writes [-63, 63], ONNX Runtime's reduce_range [-64, 64]; int4 codes
 * too). vpmaddubsw may then multiply the unsigned dynamic activations u = q + 128 by the
 * weights as they are: a pair of products is at most 2 * 255 * 64 = 32640 < 32767, so it
 * never saturates, and the AVX2 tables need no sign step (LSL_K_U7 in lsl_kern_avx2.h). */
#define LSL_MATRIX_W7 8
/* LSL_MATRIX_FROM_SPARSE (LSL_I8 only): stored block-sparse in the .lsl file, unpacked
 * dense by lsl_load because the active table runs it faster so (lsl_sparse_runs_dense). */
#define LSL_MATRIX_FROM_SPARSE 16
#define LSL_ALIGN 64

/* Dynamic activation quantization: x ~= s * q with q in [-127, 127]; the kernels see
 * u = q + 128 (unsigned, the operand VNNI wants) padded with 128 (q = 0). */
#define LSL_Q_OFFSET 128

/* The largest dynamic 8-bit code of a matrix's activation rows: 63 for LSL_ACT_DYN7
 * (the state at 7 bits), else 127. */
static inline int32_t lsl_act_qmax(int32_t act) { return act == LSL_ACT_DYN7 ? 63 : 127; }
/* Whether a matrix's activation rows are dynamic 8-bit codes u = q + 128 (LSL_ACT_DYN8,
 * or LSL_ACT_DYN7's narrower q): the kernels take both alike. */
static inline int lsl_act_u8(int32_t act) { return act == LSL_ACT_DYN8 || act == LSL_ACT_DYN7; }

/* Float activations for int8 weights on VNNI: x / max|row| as a 24-bit fixed-point
 * number q in [-(2^23 - 1), 2^23 - 1] (about float's own precision), stored as
 * u = q + 2^23 split into three bytes (hi, mid, lo) that vpdpbusd multiplies exactly. */
#define LSL_LIMB_MAX 8388607.0f

/* Float activations for int8 weights without VNNI: x / max|row| as a fixed-point number
 * q in [-LSL_DIG_MAX, LSL_DIG_MAX] (21 bits, 5e-7 of max|row|), written in three
 * balanced base-128 digits q = d2 128^2 + d1 128 + d0 with d0, d1 in [-64, 63] and
 * |d2| <= 127 (LSL_DIG_MAX = 127 * 128^2 keeps d2 there). Each digit is a signed byte
 * the AVX2 sign form multiplies exactly, so the weights stay int8. */
#define LSL_DIG_MAX 2080768.0f

/* Float activations in up to three rows of at most LSL_D15_KMAX columns: q in
 * [-LSL_D15_MAX, LSL_D15_MAX] (22 bits, 1.2e-7 of max|row|) in two balanced digits
 * q = d1 2^15 + d0, d0 in [-2^14, 2^14) as int16, |d1| <= 127 as int8; the weights
 * sign-extended to int16 once per use (vpmovsxbw) multiply both digits by vpmaddwd:
 * 2 multiplier instructions per 16 products, where the three 7-bit digits of LSL_K_DIG
 * take 3 vpmaddubsw + 3 vpmaddwd per 32 and a sign step each. Exact int32 sums: a lane
 * adds kpad / 4 pairs of at most 2 * 2^14 * 128 = 2^22 each. The same buffer as the
 * digits: d0 in 2 kpad bytes of a row, then d1 in kpad (lsl_matmul_bytes's three
 * planes). */
#define LSL_D15_MAX 4161536.0f /* 127 * 2^15 */
#define LSL_D15_KMAX 1024

/* The int32 accumulator bound of the int8 kernels (docs/integer.md, "Accumulator
 * bounds"): a row sums K products of an int8 weight (|w| <= 128) and an unsigned byte
 * operand (u <= 255: dynamic int8 offset by 128, or one 8-bit limb of the float
 * activations on VNNI), so K * 255 * 128 <= 2^31 - 1 keeps every partial sum exact in
 * int32. Dense int8 matrices with more columns, and block-sparse ones with more kept
 * values in a row, are refused by the packers (0 bytes). */
#define LSL_I8_MAX_COLS 65793

/* Sparse layout: columns per window and the header at the start of `data`. */
#define LSL_SPARSE_WIN 128

typedef struct lsl_sparse_hdr {
    int32_t panels, windows; /* segments = panels * windows, panel-major */
    int32_t blocks;          /* kept blocks (before padding) */
    int32_t slots;           /* slots of all segments (after padding) */
    int32_t seg_offset;      /* byte offset of the segment table: (offset, n) int32 pairs */
    int32_t reserved[11];
} lsl_sparse_hdr;

/* Compressed rows of a sparse matrix (lsl_matrix_pack_sparse's rowptr / bcol), either
 * native arrays or little-endian bytes at any alignment (straight from a .lsl file). */
typedef struct lsl_csr {
    const unsigned char *rowptr; /* (rows + 1) int32 */
    const unsigned char *bcol;   /* (blocks) uint16 */
    int le;                      /* 1: little-endian bytes; 0: native arrays */
} lsl_csr;
size_t lsl_sparse_bytes_csr(int32_t rows, int32_t cols, int32_t act, const lsl_csr *csr, const int8_t *values);
int lsl_sparse_pack_csr(lsl_matrix *m, int32_t rows, int32_t cols, int32_t act, const lsl_csr *csr,
                        const int8_t *values, const float *scale, void *buf, size_t buf_bytes);

/* Whether kernel table `level` (LSL_ISA_*) runs the sparse matrix of these compressed
 * rows (valid: lsl_sparse_bytes_csr > 0) with activations `act` (LSL_ACT_FLOAT or
 * LSL_ACT_DYN8) slower than its codes in the dense int8 layout. */
int lsl_sparse_runs_dense(int level, int32_t act, int32_t rows, int32_t cols, const lsl_csr *csr);
/* The compressed rows' int8 codes as a dense row-major rows x cols matrix (zeros elsewhere). */
void lsl_sparse_expand_csr(int32_t rows, int32_t cols, const lsl_csr *csr, const int8_t *values, int8_t *codes);

/* Activation bytes per row the sparse kernels read: kpad rounded up to whole windows
 * (the permutes load a window's 128 bytes at once). */
static inline int32_t lsl_sparse_upad(int32_t kpad) {
    return (kpad + LSL_SPARSE_WIN - 1) / LSL_SPARSE_WIN * LSL_SPARSE_WIN;
}

/* Bytes of a sparse segment's n slots' index groups (ceil(n / 4) groups of 64): its
 * weights start that far past its index bytes (the layout above). n >= 0; unsigned, so
 * the division is a shift. */
static inline size_t lsl_segment_index_bytes(int32_t n) { return (size_t)64 * (((uint32_t)n + 3) / 4); }

/* A fused single-stream LSTM step (the kernel table's lstm_step1 fields). */
typedef void (*lsl_lstm_step1_fn)(const lsl_matrix *w_hh, int32_t hidden, const float *g, float *c, float *h,
                                  void *work, int rev);

typedef struct lsl_kernels {
    int level;
    /* y[m*ldy + n] += sum_k x[m*ldx + k] * W[n, k]             (LSL_F32) */
    void (*gemm_f32)(const lsl_matrix *w, int32_t m, const float *x, int32_t ldx, float *y, int32_t ldy, int rev);
    /* y[m*ldy + n] += scale[n] * sum_k x[m*ldx + k] * W[n, k]  (LSL_I8, ACT_FLOAT);
     * `work` holds lsl_matmul_bytes(w, m) bytes. */
    void (*gemm_i8)(const lsl_matrix *w, int32_t m, const float *x, int32_t ldx, float *y, int32_t ldy, int rev,
                    void *work);
    /* y[m*ldy + n] = (bias[n] or y[m*ldy + n]) + xs[m] * scale[n] * sum_k (u[m, k] - 128) *
     * W[n, k]   (ACT_DYN8; bias NULL: accumulate into y). One float add per output
     * either way, so the same bits as copying the bias into y first (lsl_bias_rows),
     * which kernels without the bias in their epilogue do. */
    void (*gemm_dyn8)(const lsl_matrix *w, int32_t m, const uint8_t *u, int32_t ldu, const float *xs,
                      const float *bias, float *y, int32_t ldy, int rev);
    /* Quantize m rows of x (k floats each) to u8 rows of length kpad (q + 128, padded
     * with 128) and per-row scales xs = max|row| / qmax, |q| <= qmax (127, or 63 for
     * LSL_ACT_DYN7: lsl_act_qmax). Bit-identical on every ISA: round to nearest even
     * of x * (qmax / max|row|), as lrintf does. */
    void (*quantize_rows)(int32_t m, int32_t k, int32_t kpad, const float *x, int32_t ldx, uint8_t *u, float *xs,
                          int32_t qmax);
    /* The sparse forms (LSL_I8_SPARSE), same contracts as gemm_i8 and gemm_dyn8; the
     * dyn8 rows u have ldu >= lsl_sparse_upad(kpad) bytes, padded with LSL_Q_OFFSET. */
    void (*gemm_sparse_i8)(const lsl_matrix *w, int32_t m, const float *x, int32_t ldx, float *y, int32_t ldy,
                           int rev, void *work);
    void (*gemm_sparse_dyn8)(const lsl_matrix *w, int32_t m, const uint8_t *u, int32_t ldu, const float *xs,
                             const float *bias, float *y, int32_t ldy, int rev);
    /* LSTM cell update for one row: gates (4H) pre-activations i,f,g,o -> c (H) in
     * place, h (H) written. */
    void (*lstm_pointwise)(int32_t hidden, const float *gates, float *c, float *h);
    /* GRU update for one row: gi (3H) = W_ih x + b_ih, gh (3H) = W_hh h + b_hh; h in place. */
    void (*gru_pointwise)(int32_t hidden, const float *gi, const float *gh, float *h);
    /* One LSTM step of a single stream (B = 1), the matrix-vector product and the cell
     * update fused: gates = g + W_hh h (g: 4H floats, bias + W_ih x, read only), then c
     * (H) and h (H) in place. For w_hh of `hidden` columns, hidden % 16 == 0, LSL_I8;
     * `work` holds lsl_matmul_bytes(w_hh, 1) bytes. Results equal gemm + lstm_pointwise
     * of the same table bit for bit. NULL where a table has none (the caller then runs
     * those two). */
    lsl_lstm_step1_fn lstm_step1;
    /* The same for w_hh LSL_I8_SPARSE: equals gemm_sparse_i8 / quantize_rows +
     * gemm_sparse_dyn8 followed by lstm_pointwise bit for bit. NULL where none. */
    lsl_lstm_step1_fn lstm_step1_sparse;
    /* Which w_hh the fused steps above take (1) and which they leave to the caller's
     * products and lstm_pointwise (0); NULL: every one they are set for. */
    int (*step1_takes)(const lsl_matrix *w_hh);
    /* y[m*ldy + n] = b[n] + (float)(sum_k q[m, k] * W[n, k]) * (xs[m] * scale[n])   (LSL_I8,
     * ACT_DYN16), b = bias (w->rows floats), or y's own row where bias is NULL: q int16
     * rows of kpad values (stride ldq), |q| <= lsl_dyn16_qmax(kpad), from
     * lsl_quantize_rows16; exact int32 sums, so the same bits on every table. */
    void (*gemm_dyn16)(const lsl_matrix *w, int32_t m, const int16_t *q, int32_t ldq, const float *xs,
                       const float *bias, float *y, int32_t ldy, int rev);
    /* lsl_quantize_rows16, the same codes and scales (a vectorized copy or itself) */
    void (*quantize_rows16)(int32_t m, int32_t k, int32_t kpad, const float *x, int32_t ldx, int16_t *q, float *xs);
} lsl_kernels;

extern const lsl_kernels lsl_kernels_portable;
#if defined(LSL_HAVE_X86)
extern const lsl_kernels lsl_kernels_avx2;
#if defined(LSL_HAVE_AVXVNNI)
extern const lsl_kernels lsl_kernels_avx2_vnni;
#endif
extern const lsl_kernels lsl_kernels_avx512;
extern const lsl_kernels lsl_kernels_avx512_vnni;
/* The AVX2 table's kernels (lsl_kern_avx2.c) that the AVX-VNNI and AVX-512 tables reuse. */
void lsl_avx2_gemm_f32(const lsl_matrix *w, int32_t m, const float *x, int32_t ldx, float *y, int32_t ldy, int rev);
void lsl_avx2_gemm_i8(const lsl_matrix *w, int32_t m, const float *x, int32_t ldx, float *y, int32_t ldy, int rev,
                      void *work);
void lsl_avx2_gemm_dyn8(const lsl_matrix *w, int32_t m, const uint8_t *u, int32_t ldu, const float *xs,
                        const float *bias, float *y, int32_t ldy, int rev);
void lsl_avx2_quantize_rows(int32_t m, int32_t k, int32_t kpad, const float *x, int32_t ldx, uint8_t *u, float *xs,
                            int32_t qmax);
void lsl_avx2_gemm_dyn16(const lsl_matrix *w, int32_t m, const int16_t *q, int32_t ldq, const float *xs,
                         const float *bias, float *y, int32_t ldy, int rev);
void lsl_avx2_quantize_rows16(int32_t m, int32_t k, int32_t kpad, const float *x, int32_t ldx, int16_t *q,
                              float *xs);
/* Float rows to two digits, int16 and int8 (lsl_kern_avx2.h, LSL_D15_MAX). */
void lsl_avx2_quantize_d15(int32_t m, int32_t k, int32_t kpad, const float *x, int32_t ldx, int16_t *lo,
                           int8_t *hi, float *xs);
/* Float rows to three planes of signed 7-bit digits (lsl_kern_avx2.h, LSL_K_DIG). */
void lsl_avx2_quantize_digits(int32_t m, int32_t k, int32_t kpad, const float *x, int32_t ldx, uint8_t *u,
                              size_t lstride, float *xs);
void lsl_avx2_lstm_pointwise(int32_t hidden, const float *gates, float *c, float *h);
void lsl_avx2_gru_pointwise(int32_t hidden, const float *gi, const float *gh, float *h);
void lsl_avx2_gemm_sparse_i8(const lsl_matrix *w, int32_t m, const float *x, int32_t ldx, float *y, int32_t ldy,
                             int rev, void *work);
void lsl_avx2_gemm_sparse_dyn8(const lsl_matrix *w, int32_t m, const uint8_t *u, int32_t ldu, const float *xs,
                               const float *bias, float *y, int32_t ldy, int rev);
/* The rows of float activations that the fixed-point codes above cannot carry (a NaN,
 * an infinity or a value past 3e38; their quantizers left zero codes and xs NaN): y +=
 * their float product (the portable table's, dense or sparse as w is), and xs = 0, so
 * the fixed-point product that follows adds nothing to them. Before every product of
 * codes from float rows (lsl_kern_avx2.c). */
void lsl_avx2_float_rows(const lsl_matrix *w, int32_t m, const float *x, int32_t ldx, float *xs, float *y,
                         int32_t ldy, int rev);
/* Float rows to three 8-bit limb planes (hi, mid, lo; stride lstride bytes, rows of
 * kpad bytes) and scales xs: the VNNI float-activation operand (LSL_LIMB_MAX). */
void lsl_avx512_quantize_limbs(int32_t m, int32_t k, int32_t kpad, const float *x, int32_t ldx, uint8_t *u,
                               size_t lstride, float *xs);
/* Dynamic quantization of rows (the AVX-512 tables' quantize_rows). */
void lsl_avx512_quantize_rows(int32_t m, int32_t k, int32_t kpad, const float *x, int32_t ldx, uint8_t *u,
                              float *xs, int32_t qmax);
void lsl_avx512_gemm_sparse_i8(const lsl_matrix *w, int32_t m, const float *x, int32_t ldx, float *y, int32_t ldy,
                               int rev, void *work);
void lsl_avx512_gemm_sparse_dyn8(const lsl_matrix *w, int32_t m, const uint8_t *u, int32_t ldu, const float *xs,
                                 const float *bias, float *y, int32_t ldy, int rev);
/* The fused single-stream LSTM step for a sparse w_hh (lsl_kernels.lstm_step1_sparse). */
void lsl_avx512_lstm_step1_sparse(const lsl_matrix *w_hh, int32_t hidden, const float *g, float *c, float *h,
                                  void *work, int rev);
#endif

#if defined(LSL_HAVE_NEON)
extern const lsl_kernels lsl_kernels_neon;
#if defined(LSL_HAVE_NEON_DOTPROD)
extern const lsl_kernels lsl_kernels_neon_dotprod;
#endif
#endif

/* The portable sparse kernels (every ISA's reference). */
void lsl_portable_gemm_sparse_i8(const lsl_matrix *w, int32_t m, const float *x, int32_t ldx, float *y,
                                 int32_t ldy, int rev, void *work);
void lsl_portable_gemm_sparse_dyn8(const lsl_matrix *w, int32_t m, const uint8_t *u, int32_t ldu, const float *xs,
                                   const float *bias, float *y, int32_t ldy, int rev);
/* Rows y[i*ldy .. + n) = bias for i < m (nothing when bias is NULL): the dynamic products'
 * bias for kernels that do not take it into their epilogue. */
void lsl_bias_rows(int32_t m, const float *bias, int32_t n, float *y, int32_t ldy);
/* The portable element-wise updates (also the NEON tables'). */
void lsl_portable_lstm_pointwise(int32_t hidden, const float *gates, float *c, float *h);
void lsl_portable_gru_pointwise(int32_t hidden, const float *gi, const float *gh, float *h);

/** The kernel table in use (set by lsl_isa_set; best available by default). */
const lsl_kernels *lsl_kernels_active(void);

#if defined(LSL_HAVE_X86)
/* What x86 detection reads (lsl_isa.c): cpuid leaf 1's ECX, the largest leaf, leaf 7.0's
 * EAX (its largest subleaf), EBX and ECX, leaf 7.1's EAX, and XCR0 (0 without OSXSAVE). */
typedef struct lsl_x86_cpu {
    uint32_t leaf1_ecx, max_leaf, max_sub7, leaf7_ebx, leaf7_ecx, leaf7_1_eax;
    uint64_t xcr0;
} lsl_x86_cpu;

/* Sets sup[level] for each x86 table that CPU and its OS's register state run (the rest
 * are left as they are): AVX2 needs AVX, FMA, OSXSAVE and XMM + YMM state; AVX-512 also
 * F, DQ, BW, VL and the opmask and ZMM state. */
void lsl_isa_x86_decide(const lsl_x86_cpu *cpu, int sup[LSL_ISA_COUNT]);
#endif

/** Quantize m rows of x (k floats each) to u8 rows of length kpad and per-row scales. */
void lsl_quantize_rows(int32_t m, int32_t k, int32_t kpad, const float *x, int32_t ldx, uint8_t *u, float *xs,
                       int32_t qmax);

/* The largest 16-bit activation code of LSL_ACT_DYN16 for rows of kpad values: 32767,
 * or less where kpad * qmax * 128 (an int8 weight is at least -128) could pass the int32
 * sums' 2^31 - 1 (kpad > 512). */
static inline int32_t lsl_dyn16_qmax(int32_t kpad) {
    const int32_t fit = kpad > 0 ? (int32_t)(2147483647 / (128 * (int64_t)kpad)) : 32767;
    return fit < 32767 ? fit : 32767;
}

/** Quantize m rows of x (k floats each) to int16 rows of length kpad (zero padded), q =
 * round-to-nearest-even(x * (qmax / max|row|)) with qmax = lsl_dyn16_qmax(kpad), and
 * scales xs = max|row| / qmax: every table's (it is a small share of the work). */
void lsl_quantize_rows16(int32_t m, int32_t k, int32_t kpad, const float *x, int32_t ldx, int16_t *q, float *xs);
/* The portable ACT_DYN16 product (also the NEON tables'). */
void lsl_portable_gemm_dyn16(const lsl_matrix *w, int32_t m, const int16_t *q, int32_t ldq, const float *xs,
                             const float *bias, float *y, int32_t ldy, int rev);

/** y rows (m, stride ldy) = bias (w->rows floats) + x W^T: the DYN16 product adds the
 * bias in its epilogue (no pass that copies it to every row first); every other form
 * copies it, then lsl_matmul_unchecked. The same bits either way. */
int lsl_matmul_bias_unchecked(const lsl_kernels *kern, const lsl_matrix *w, int32_t m, const float *x, int32_t ldx,
                              const float *bias, float *y, int32_t ldy, void *work, int rev);

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
