/*
 * lsl.h -- lstmlite native runtime: the public C99 API.
 *
 * A model is a stack of LSTM / GRU layers with an optional embedding in front and an
 * optional linear head behind. Every tensor is described by typed structs that point
 * at caller-owned memory; nothing here allocates. The caller asks how many bytes a
 * call needs (lsl_*_bytes), hands that buffer in, and gets an int error code back.
 *
 * Weight forms (lsl_matrix.dtype / .act):
 *   LSL_F32                 fp32 weights, fp32 activations.
 *   LSL_I8, LSL_ACT_FLOAT   int8 weights with one symmetric scale per output row
 *                           (weight-only quantization); activations stay float, so the
 *                           result equals a float model whose weights are the
 *                           dequantized int8 weights (to ~1e-7: with VNNI each
 *                           activation row is carried as 24-bit fixed point, split in
 *                           three exact 8-bit products).
 *   LSL_I8, LSL_ACT_DYN8    the same int8 weights, and each activation row is
 *                           quantized on the fly to 8 bits with a symmetric per-row
 *                           scale (dynamic quantization, like ONNX Runtime's
 *                           DynamicQuantizeLSTM); products accumulate in int32, which
 *                           uses AVX-512 VNNI where present.
 *   LSL_I8, LSL_ACT_DYN16   the same int8 weights, and each activation row is
 *                           quantized on the fly to 16-bit codes (|q| <= 32767, fewer
 *                           bits only for rows longer than 512, so that the int32 sums
 *                           stay exact: lsl_dyn16_qmax). A model loaded with
 *                           LSL_ACT_DYN16 gives it to its dense int8 input projections
 *                           (w_ih) and LSL_ACT_DYN8 to every other int8 matrix: the
 *                           layer inputs keep ~5e-5 of their row's range where 8 bits
 *                           keep 4e-3, which is most of dynamic int8's error.
 *   LSL_I8, LSL_ACT_DYN7    int8 weights all within [-64, 64] (7-bit codes: weights
 *                           "int7", "int7r", "int4"), and each activation row is
 *                           quantized on the fly to 7 bits (|q| <= 63, symmetric per-row
 *                           scale). Why: a pair of such products stays within 16256,
 *                           so CPUs without VNNI add two pairs in int16 before widening
 *                           (3 multiplier instructions per 64 products, not 4). A model
 *                           loaded with LSL_LOAD_H7 gives it to its recurrent matrices
 *                           (w_hh, w_hr) that have 7-bit weights: the state h at 7 bits.
 *                           The sums are exact, so every table gives the same bits.
 *   LSL_I8_SPARSE, LSL_ACT_FLOAT or LSL_ACT_DYN8
 *                           the same int8 weights with most (1, 4) blocks zero --
 *                           four consecutive input columns 4j..4j+3 of one output row,
 *                           the block lstmlite.compress prunes with block=(1, 4) --
 *                           stored without the zero blocks; the kernels skip them. The
 *                           result is the dense int8 form's on the same weights.
 *
 * Layout conventions (PyTorch's): a weight matrix is (rows = outputs, cols = inputs),
 * row-major; LSTM gates are stacked i, f, g, o and GRU gates r, z, n. Sequences
 * handed to lsl_model_run are batch-first (B, T, F).
 *
 * Example (one LSTM layer, fp32, whole sequence):
 *
 *     lsl_layer layer = {0};  layer.cell = LSL_LSTM;  ... lsl_matrix_pack(...) ...
 *     lsl_model model = {0};  model.num_layers = 1;  model.layers = &layer;
 *     size_t need = lsl_model_run_bytes(&model, B, T);
 *     void *work = malloc(need);
 *     int rc = lsl_model_run(&model, B, T, x, NULL, NULL, out, NULL, work, need);
 *     if (rc != LSL_OK) fprintf(stderr, "%s\n", lsl_strerror(rc));
 */
#ifndef LSTMLITE_LSL_H
#define LSTMLITE_LSL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- error codes ------------------------------------------------------------------ */
#define LSL_OK 0
#define LSL_ERR_ARG (-1)         /* NULL pointer or nonsensical argument */
#define LSL_ERR_SHAPE (-2)       /* sizes that do not fit together */
#define LSL_ERR_BUFFER (-3)      /* caller's buffer is too small */
#define LSL_ERR_UNSUPPORTED (-4) /* valid request this build/model cannot do */
#define LSL_ERR_TOKEN (-5)       /* token id outside [0, vocab) */
#define LSL_ERR_FORMAT (-6)      /* malformed .lsl file */
#define LSL_ERR_VERSION (-7)     /* .lsl file of a version this build cannot read */
#define LSL_ERR_ISA (-8)         /* instruction set not available on this CPU */
#define LSL_ERR_RANGE (-9)       /* integer input outside its declared width */
#define LSL_ERR_OVERFLOW (-10)   /* an int32 accumulator would overflow (integer-only form) */
#define LSL_ERR_CHECKSUM (-11)   /* .lsl file whose CRC-32 does not match: corrupt or truncated */

/** One line describing an error code (static storage). */
const char *lsl_strerror(int code);

/* ---- enums ------------------------------------------------------------------------ */
#define LSL_LSTM 1
#define LSL_GRU 2
#define LSL_FASTGRNN 3 /* FastGRNN (Kusupati et al. 2018), see lsl_layer */

/* FastGRNN nonlinearities (lsl_layer.gate_fn / update_fn) */
#define LSL_FN_SIGMOID 1
#define LSL_FN_TANH 2

#define LSL_F32 1
#define LSL_I8 2
#define LSL_I8_SPARSE 3 /* int8 weights, (1, 4)-block sparse (see lsl_matrix_pack_sparse) */
#define LSL_LOWRANK 6   /* W = U V, two matrices of the other forms (see lsl_matrix_lowrank) */

#define LSL_ACT_FLOAT 0
#define LSL_ACT_DYN8 1
#define LSL_ACT_DYN16 2
#define LSL_ACT_DYN7 3 /* LSL_I8 with weights within [-64, 64] only */

#define LSL_HEAD_NONE 0 /* run: the top layer's output sequence (B, T, D*Hout) */
#define LSL_HEAD_LAST 1 /* run: head(pooled features) -> (B, n_out)  (classifier, forecaster) */
#define LSL_HEAD_EACH 2 /* run: head at every step -> (B, T, n_out)   (language model) */

#define LSL_POOL_LAST 0 /* last valid step forward, first step backward */
#define LSL_POOL_MEAN 1 /* mean over valid steps */
#define LSL_POOL_MAX 2  /* max over valid steps */

/* Instruction-set levels of the kernels (lsl_isa_set), one kernel table each. They are
 * not a ladder: a CPU may have AVX-VNNI without AVX-512 (Alder Lake) or AVX-512 VNNI
 * without AVX-VNNI (Ice Lake, Zen 4); lsl_isa_supported says which ones run here. */
#define LSL_ISA_AUTO (-1)
#define LSL_ISA_PORTABLE 0    /* "portable": C99 only */
#define LSL_ISA_AVX2 1        /* "avx2": AVX2 + FMA */
#define LSL_ISA_AVX512 2      /* "avx512": AVX-512 F/BW/VL/DQ, no VNNI */
#define LSL_ISA_AVX2_VNNI 3   /* "avx2-vnni": AVX2 + FMA + AVX-VNNI (VEX vpdpbusd, 256-bit) */
#define LSL_ISA_AVX512_VNNI 4 /* "avx512-vnni": AVX-512 F/BW/VL/DQ + AVX512_VNNI */
#define LSL_ISA_NEON 5        /* "neon": aarch64 Advanced SIMD (fp32 FMLA, int8 SMLAL/SADALP) */
#define LSL_ISA_NEON_DOTPROD 6 /* "neon-dotprod": NEON + the Armv8.2 dot product (SDOT) */
#define LSL_ISA_COUNT 7       /* levels are 0 .. LSL_ISA_COUNT - 1 */

/* ---- tensors ---------------------------------------------------------------------- */

/**
 * A weight matrix (rows x cols) packed for the kernels by lsl_matrix_pack.
 * Do not fill by hand: the packed layout is internal (panels of 16 rows).
 */
typedef struct lsl_matrix {
    int32_t rows;         /* outputs, N */
    int32_t cols;         /* inputs, K */
    int32_t dtype;        /* LSL_F32, LSL_I8 or LSL_I8_SPARSE */
    int32_t act;          /* LSL_ACT_FLOAT, LSL_ACT_DYN8, or LSL_ACT_DYN16 / LSL_ACT_DYN7 (LSL_I8 only) */
    int32_t kpad;         /* cols rounded up as the layout needs */
    int32_t reserved;     /* internal flags, set by the packers */
    const void *data;     /* packed panels */
    const float *scale;   /* (rows) per-row scales; int8 forms only */
    const int32_t *wsum;  /* (rows) sums of each int8 row; int8 forms only */
} lsl_matrix;

/** Bytes lsl_matrix_pack needs for this matrix (0 if the arguments are invalid). */
size_t lsl_matrix_packed_bytes(int32_t rows, int32_t cols, int32_t dtype, int32_t act);

/**
 * Pack a row-major (rows x cols) matrix into `buf` and describe it in `m`.
 *
 * @param src   float (LSL_F32) or int8 (LSL_I8) values, row-major.
 * @param scale (rows) per-row scales for LSL_I8 (copied); NULL for LSL_F32.
 * @param buf   at least lsl_matrix_packed_bytes(...) bytes, 64-byte aligned;
 *              `m` points into it afterwards, so keep it alive as long as `m`.
 * @return LSL_OK, LSL_ERR_ARG, LSL_ERR_SHAPE or LSL_ERR_BUFFER.
 */
int lsl_matrix_pack(lsl_matrix *m, int32_t rows, int32_t cols, int32_t dtype, int32_t act,
                    const void *src, const float *scale, void *buf, size_t buf_bytes);

/**
 * A (1, 4)-block sparse int8 matrix (rows x cols) from its compressed rows:
 * block b of row r covers columns 4 bcol[b] .. 4 bcol[b] + 3 and holds values[4b..4b+3];
 * row r's blocks are b in [rowptr[r], rowptr[r+1]), bcol strictly increasing. Columns past
 * `cols` in the last block must hold 0.
 *
 * lsl_matrix_sparse_bytes returns the bytes lsl_matrix_pack_sparse needs (it depends on
 * the pattern), or 0 when the arguments are invalid (bad pointers or sizes, rowptr not
 * non-decreasing from 0, bcol out of range or unsorted, non-zero padding values).
 * The packed form is an ELL layout per 16-row panel and 128-column window (see
 * lsl_internal.h). `act` as for LSL_I8.
 */
size_t lsl_matrix_sparse_bytes(int32_t rows, int32_t cols, int32_t act, const int32_t *rowptr, const uint16_t *bcol,
                               const int8_t *values);
int lsl_matrix_pack_sparse(lsl_matrix *m, int32_t rows, int32_t cols, int32_t act, const int32_t *rowptr,
                           const uint16_t *bcol, const int8_t *values, const float *scale, void *buf,
                           size_t buf_bytes);

/** 1 when m is LSL_I8 but was stored block-sparse: lsl_load unpacked it dense because
 * the active kernel table runs it faster so (see lsl_load); else 0. */
int lsl_matrix_from_sparse(const lsl_matrix *m);

/**
 * A low-rank matrix W (rows x cols) = U (rows x r) V (r x cols) from its two packed
 * factors, factors[0] = V and factors[1] = U (each LSL_F32, LSL_I8 or LSL_I8_SPARSE;
 * the array must outlive m). A product x W^T is computed as (x V^T) U^T: r (rows +
 * cols) multiply-adds per row of x instead of rows * cols. m->kpad holds r.
 */
int lsl_matrix_lowrank(lsl_matrix *m, const lsl_matrix *factors);

/**
 * y (M x rows, leading dim ldy) += x (M x cols, leading dim ldx) @ W^T, with W's
 * per-row scales applied. `work` needs lsl_matmul_bytes(W, M) bytes (0 for LSL_F32).
 * x, y, work and W's data must not overlap (the kernels read x while they write y).
 */
size_t lsl_matmul_bytes(const lsl_matrix *w, int32_t m);
int lsl_matmul(const lsl_matrix *w, int32_t m, const float *x, int32_t ldx, float *y, int32_t ldy,
               void *work, size_t work_bytes);

/** One direction of one layer. Biases may be NULL (a layer without bias). */
typedef struct lsl_direction {
    lsl_matrix w_ih;    /* (G*H, I) */
    lsl_matrix w_hh;    /* (G*H, P or H) */
    lsl_matrix w_hr;    /* (P, H) LSTM projection; rows == 0 when absent */
    const float *b_ih;  /* (G*H) or NULL */
    const float *b_hh;  /* (G*H) or NULL */
    float zeta, nu;     /* FastGRNN only: ζ and ν (after their sigmoid) */
} lsl_direction;

/**
 * A recurrent layer: G = 4 (LSTM), 3 (GRU) or 1 (FastGRNN) gate blocks of H rows;
 * output per direction P or H.
 *
 * FastGRNN (one direction, biases required, no projection): with W = w_ih (H, I),
 * U = w_hh (H, H) (either may be low-rank, sparse or int8 like any matrix),
 * b_z = b_ih and b_h = b_hh,
 *     pre = W x + U h;  z = gate_fn(pre + b_z);  h~ = update_fn(pre + b_h)
 *     h'  = (zeta (1 - z) + nu) h~ + z h
 */
typedef struct lsl_layer {
    int32_t cell;            /* LSL_LSTM, LSL_GRU or LSL_FASTGRNN */
    int32_t input_size;      /* I */
    int32_t hidden_size;     /* H */
    int32_t proj_size;       /* P (LSTM only), 0 = none */
    int32_t num_directions;  /* 1, or 2 (bidirectional; whole-sequence mode only) */
    int32_t reserved;
    lsl_direction dir[2];
    int32_t gate_fn, update_fn; /* FastGRNN only: LSL_FN_SIGMOID or LSL_FN_TANH */
} lsl_layer;

/** Token embedding: fp32 rows, or int8 rows with one scale per row. */
typedef struct lsl_embedding {
    int32_t num;          /* vocabulary size; 0 = no embedding (float features in) */
    int32_t dim;
    int32_t dtype;        /* LSL_F32 or LSL_I8 */
    int32_t reserved;
    const void *table;    /* (num, dim) row-major */
    const float *scale;   /* (num) LSL_I8 only */
} lsl_embedding;

/** The whole model. */
typedef struct lsl_model {
    int32_t num_layers;
    int32_t head_mode;        /* LSL_HEAD_* */
    int32_t pooling;          /* LSL_POOL_* (LSL_HEAD_LAST only) */
    int32_t reserved;
    const lsl_layer *layers;  /* (num_layers) */
    lsl_embedding embedding;
    lsl_matrix head;          /* (n_out, D*Hout of the top layer) */
    const float *head_bias;   /* (n_out) or NULL */
} lsl_model;

/* ---- model queries ---------------------------------------------------------------- */

/** Check sizes, pointers and the layer chain; LSL_OK when the model can run. */
int lsl_model_check(const lsl_model *model);
/** Features per step the first layer wants (the embedding's dim for token models). */
int32_t lsl_model_input_size(const lsl_model *model);
/** Features per step of the top layer's output: D * (P or H). */
int32_t lsl_model_feature_size(const lsl_model *model);
/** Output floats per sequence (run) for B = 1 and T steps. */
size_t lsl_model_run_out_floats(const lsl_model *model, int32_t t);
/** Output floats per stream of one step (head outputs, or the top layer's h). */
size_t lsl_model_step_out_floats(const lsl_model *model);
/**
 * Floats of the recurrent state of `batch` streams: per layer, per direction,
 * h (batch x (P or H)) then, for LSTM, c (batch x H).
 */
size_t lsl_model_state_floats(const lsl_model *model, int32_t batch);

/* ---- whole sequences -------------------------------------------------------------- */

/** Workspace bytes lsl_model_run needs for `batch` sequences of `t` steps. */
size_t lsl_model_run_bytes(const lsl_model *model, int32_t batch, int32_t t);

/**
 * Run `batch` sequences of `t` steps.
 *
 * @param x       (batch, t, I) floats for feature models, else NULL.
 * @param tokens  (batch, t) token ids for embedding models, else NULL.
 * @param lengths (batch) valid steps per sequence in [1, t], or NULL (all t). Steps
 *                past a sequence's length give zero outputs and leave its state alone,
 *                as PyTorch's packed sequences do.
 * @param out     lsl_model_run_out_floats(model, t) * batch floats:
 *                HEAD_NONE (batch, t, F); HEAD_LAST (batch, n_out); HEAD_EACH (batch, t, n_out).
 * @param state   NULL (start from zeros), or lsl_model_state_floats(model, batch) floats
 *                read as the initial state and overwritten with the final one.
 * @param work    lsl_model_run_bytes(model, batch, t) bytes, 64-byte aligned.
 */
int lsl_model_run(const lsl_model *model, int32_t batch, int32_t t, const float *x, const int32_t *tokens,
                  const int32_t *lengths, float *out, float *state, void *work, size_t work_bytes);

/** Most threads lsl_model_run_parallel uses (more are capped to this). */
#define LSL_MAX_THREADS 64

/** Workspace bytes lsl_model_run_parallel needs (one run workspace and state per chunk). */
size_t lsl_model_run_parallel_bytes(const lsl_model *model, int32_t batch, int32_t t, int32_t threads);

/**
 * lsl_model_run with the batch cut into min(threads, batch) contiguous chunks run on
 * their own threads (POSIX threads; serially where the build has none). Same arguments
 * and the same result as lsl_model_run (bit for bit with dynamic int8 activations; float
 * kernels may tile a smaller batch differently, a last-bit difference); `work` needs
 * lsl_model_run_parallel_bytes(model, batch, t, threads) bytes, 64-byte aligned. With
 * one chunk it is lsl_model_run itself (and needs only lsl_model_run_bytes).
 */
int lsl_model_run_parallel(const lsl_model *model, int32_t threads, int32_t batch, int32_t t, const float *x,
                           const int32_t *tokens, const int32_t *lengths, float *out, float *state, void *work,
                           size_t work_bytes);

/* ---- streaming -------------------------------------------------------------------- */

/** Workspace bytes lsl_model_step needs for `batch` streams. */
size_t lsl_model_step_bytes(const lsl_model *model, int32_t batch);

/**
 * Advance `batch` independent streams by one step. No allocation; unidirectional
 * models with HEAD_NONE, HEAD_EACH, or HEAD_LAST with POOL_LAST only.
 *
 * @param x      (batch, I) floats, or NULL with tokens (batch) ids.
 * @param state  lsl_model_state_floats(model, batch) floats, updated in place.
 * @param out    batch * lsl_model_step_out_floats(model) floats.
 * @param work   lsl_model_step_bytes(model, batch) bytes, 64-byte aligned. Keep one
 *               buffer per stream: its first bytes carry a cache hint from call to
 *               call (any content is valid, so it can start uninitialised).
 */
int lsl_model_step(const lsl_model *model, int32_t batch, const float *x, const int32_t *tokens, float *state,
                   float *out, void *work, size_t work_bytes);

/* ---- integer-only models -------------------------------------------------------------
 *
 * DESIGN decision 5b: int8 weights, int16 hidden and cell state, int32 accumulators,
 * table-interpolated sigmoid/tanh. The arithmetic is lstmlite.reference.integer (LSTM)
 * and lstmlite.reference.integer_gru (GRU), reproduced bit for bit: every rounding is
 * half away from zero, every saturation point (SAT A..G there) is the same.
 *
 * Two weight layouts (lsl_int_model.layout):
 *   LSL_INT_ROWS     w_ih (G*H, I) and w_hh (G*H, H) row-major (the host runtime).
 *   LSL_INT_PACKED4  what the generated microcontroller C holds: w_ih points at one
 *                    array with both products of every group of four gate rows, and
 *                    w_hh is unused (may be NULL). Rows are padded to R4 = 4 ceil(G*H/4)
 *                    and columns to I4 = 4 ceil(I/4), H4 = 4 ceil(H/4) with zeros. Group
 *                    g (rows 4g..4g+3) takes 4 (I4 + H4) bytes: I4/4 column quads of
 *                    w_ih, then H4/4 quads of w_hh; a quad is 16 bytes, four per row
 *                    (row 4g+k at byte 4k) holding columns 4q, 4q+2, 4q+1, 4q+3 in
 *                    that order, which is the order SXTB16 unpacks them in, so the
 *                    DSP loop pairs them with the activations without a shuffle. The
 *                    array is 4-byte aligned, and every row's accumulator is proven
 *                    unable to leave int32 (|b| + sum |w| * 2^(bits-1) <= INT32_MAX:
 *                    lsl_int_model_check verifies both), so the kernels add in int32.
 */
#define LSL_INT_ROWS 0
#define LSL_INT_PACKED4 1

/** One layer and direction: G = 4 (LSTM) or 3 (GRU) gates of H units. */
typedef struct lsl_int_direction {
    int32_t input_size;   /* I */
    int32_t hidden_size;  /* H */
    int32_t cell_frac;    /* F: fraction bits of the LSTM cell state (5..15); unused by GRU */
    int32_t input_bits;   /* 8 or 16: the range input values must lie in */
    const int8_t *w_ih;   /* (G*H, I) row-major, in [-127, 127]; LSL_INT_PACKED4: both products */
    const int8_t *w_hh;   /* (G*H, H); unused by LSL_INT_PACKED4 */
    const int32_t *b_ih, *b_hh;          /* (G*H) in their accumulators' scale */
    const int32_t *m_ih, *shift_ih;      /* (G*H) requantization of acc_x to Q3.12 */
    const int32_t *m_hh, *shift_hh;      /* (G*H) the same for acc_h */
} lsl_int_direction;

typedef struct lsl_int_model {
    int32_t cell;            /* LSL_LSTM or LSL_GRU */
    int32_t num_layers;
    int32_t num_directions;  /* 1 or 2 */
    int32_t layout;          /* LSL_INT_ROWS or LSL_INT_PACKED4 */
    const lsl_int_direction *dirs; /* (num_layers * num_directions), layer-major */
} lsl_int_model;

/** LSL_OK when sizes chain (layer k > 0 reads the int16 h of layer k - 1, D*H wide). */
int lsl_int_model_check(const lsl_int_model *model);
/** int16 values of the state of `batch` streams: per layer, per direction, h (B, H)
 * then for LSTM c (B, H). */
size_t lsl_int_state_values(const lsl_int_model *model, int32_t batch);
/** Workspace bytes lsl_int_run / lsl_int_step need. */
size_t lsl_int_run_bytes(const lsl_int_model *model, int32_t batch, int32_t t);
size_t lsl_int_step_bytes(const lsl_int_model *model, int32_t batch);

/**
 * Whole sequences: x (batch, t, I) int16 holding input_bits-wide values, lengths as
 * lsl_model_run, out (batch, t, D*H) int16 Q0.15 of the last layer, state (optional,
 * lsl_int_state_values) read and overwritten.
 * @return LSL_OK, LSL_ERR_RANGE (an input outside its width), LSL_ERR_OVERFLOW, ...
 */
int lsl_int_run(const lsl_int_model *model, int32_t batch, int32_t t, const int16_t *x, const int32_t *lengths,
                int16_t *out, int16_t *state, void *work, size_t work_bytes);

/** One step of `batch` streams (unidirectional): x (batch, I), state in place, out (batch, H). */
int lsl_int_step(const lsl_int_model *model, int32_t batch, const int16_t *x, int16_t *state, int16_t *out,
                 void *work, size_t work_bytes);
/**
 * lsl_int_step for a model that already passed lsl_int_model_check and has not changed
 * since: the same result, without re-checking every row's multiplier each step (the
 * generated microcontroller C checks once, in lstmlite_model_init).
 */
int lsl_int_step_prechecked(const lsl_int_model *model, int32_t batch, const int16_t *x, int16_t *state,
                            int16_t *out, void *work, size_t work_bytes);

/**
 * An integer dense layer (the integer-only form's head): out[r] = b[r] + sum_j w[r, j] x[j]
 * exactly in int32 (lstmlite.reference.integer_head). w (rows, cols) int8 row-major, b
 * (rows) int32, x (cols) int16.
 * @return LSL_OK, LSL_ERR_ARG, LSL_ERR_SHAPE or LSL_ERR_OVERFLOW (a sum outside int32).
 */
int lsl_int_dense(const int8_t *w, const int32_t *b, int32_t rows, int32_t cols, const int16_t *x, int32_t *out);

/* ---- model files (.lsl) ----------------------------------------------------------- */

/*
 * A .lsl file is little-endian. Versions 1 to 3 (fixed records; version 4, the compact
 * table, is described after them):
 *   header (96 bytes)  "LSTMLITE", u32 version, u32 header_bytes (96), u32 num_layers,
 *                      u32 num_tensors, i32 head_mode, i32 pooling,
 *                      u64 layer_table_offset, u64 tensor_table_offset,
 *                      u64 data_offset, u64 file_bytes, u64 meta_offset,
 *                      u64 meta_bytes, 16 zero bytes
 *   meta               UTF-8 JSON for the Python side (model kind, output shape);
 *                      the C loader only checks that it lies inside the file
 *   layer table        num_layers records of 8 x i32: cell, input_size, hidden_size,
 *                      proj_size, num_directions, has_bias, and two more: 0, 0 for
 *                      LSTM / GRU; gate_fn, update_fn (LSL_FN_*) for FastGRNN
 *   tensor table       num_tensors records of 64 bytes: char name[32] (NUL-padded),
 *                      u32 dtype, u32 ndim (1 | 2), u32 dims[2],
 *                      u64 offset (from data_offset), u64 nbytes
 *   data               tensors, row-major, each at an 8-byte aligned offset (64 before
 *                      version 3; readers copy values out and assume no alignment)
 * Tensor names: "l{k}.{d}.w_ih", "l{k}.{d}.w_hh", "l{k}.{d}.w_hr", "l{k}.{d}.b_ih",
 * "l{k}.{d}.b_hh", "emb", "head.w", "head.b"; a FastGRNN layer (cell 3, version 3 on)
 * also has "l{k}.0.zn" (f32, 2: zeta, nu); an int8 tensor NAME has its per-row
 * scales in "NAME.scale" (f32, 1-D). lstmlite/runtime/lsl.py writes these files.
 *
 * A low-rank matrix NAME = U V is stored as "NAME.u" (rows x r) and "NAME.v" (r x cols)
 * instead of NAME, each in any of the forms below (version 1 suffices when both are
 * dense).
 * Tensor dtypes: LSL_F32 (1), LSL_I8 (2), and from version 2 on the block-sparse int8
 * form of a weight matrix (lsl_matrix_pack_sparse's arguments, as three tensors):
 *   NAME         LSL_I8_SPARSE (3), dims (rows, cols) -- the logical shape; the data
 *                are the kept blocks' values, 4 bytes per block (nbytes = 4 * blocks)
 *   NAME.rowptr  LSL_FILE_I32 (4), 1-D (rows + 1): row r's blocks are
 *                [rowptr[r], rowptr[r+1]), rowptr[rows] = blocks
 *   NAME.bcol    LSL_FILE_U16 (5), 1-D (max(blocks, 1)): each block's column / 4
 *   NAME.scale   as for LSL_I8.
 * From version 3 on, two more ways to store a weight matrix NAME (rows x cols), each
 * expanded by the loader into the packed forms above (so every kernel runs them; the
 * file is what they make small):
 *   NAME         LSL_FILE_I4 (7), dims (rows, cols): int4 codes in [-8, 7], two per
 *                byte (even column in the low nibble, two's complement), each row padded
 *                to a whole byte: nbytes = rows * ceil(cols / 2); NAME.scale as for
 *                LSL_I8. In memory they become LSL_I8 codes.
 *   NAME         LSL_FILE_F32_MASKED (9) / LSL_FILE_I8_MASKED (10) / LSL_FILE_I4_MASKED
 *                (11), dims (rows, cols): only the non-zero values, row-major (int4
 *                two per byte as above, the last byte padded with a zero nibble), and
 *   NAME.mask    LSL_FILE_U8 (8), 1-D (ceil(rows * cols / 8)): element i is stored iff
 *                bit i % 8 of byte i / 8 is set; bits past rows * cols are zero.
 *                Codes keep NAME.scale. The embedding "emb" may be stored these ways too.
 * and any 1-D float tensor (scales, biases) as LSL_FILE_F16 (12): IEEE half, used only
 * when every value is exactly representable, so the loader's float32 is the same; and
 * NAME.scale may hold one value for every row (a matrix quantized per tensor).
 * A version 1 to 3 writer used the oldest version its tensors allowed (1: fp32 / int8
 * dense; 2: block sparse; 3: int4 or bitmask).
 *
 * Version 4, the compact table (what lstmlite writes now; a tiny model's 64-byte
 * records were a quarter of its file). Same dtypes and tensor names; no offsets and no
 * alignment (the loader copies every value out before a kernel reads it):
 *   "LSTMLITE", u32 version (4)   -- the same 12 bytes, so older readers refuse by version
 *   u8 head_mode, u8 pooling, u8 num_layers, varint num_records, varint meta_bytes
 *   layer records      u8 cell, u8 num_directions | has_bias << 2,
 *                      u8 gate_fn | update_fn << 4 (0 for LSTM / GRU),
 *                      varint input_size, hidden_size, proj_size
 *   meta               meta_bytes of UTF-8 JSON (0 when the model has none)
 *   tensor records     each followed by its data: u8 name_len (1..31), name (no NUL),
 *                      u8 dtype, u8 flags, varint dims[1 or 2], varint nbytes (of
 *                      the values), and for LSL_I8_SPARSE varint bcol_count; then the
 *                      values, and the record's companions in this order:
 *                        NAME.scale  when flags & 2 (required for codes, only for them):
 *                                    IEEE half if flags & 4 else f32; one value if
 *                                    flags & 8 else one per row
 *                        NAME.mask   for the bitmask dtypes: ceil(rows * cols / 8) bytes
 *                        NAME.rowptr, NAME.bcol  for LSL_I8_SPARSE: i32 (rows + 1),
 *                                    u16 (bcol_count)
 *                      flags: 1 two dims (else one); bits 4..7 zero. The companion
 *                      dtypes (LSL_FILE_I32 / U16 / U8) are never records of their own.
 *   The file ends where the last record's data end (trailing bytes are refused).
 * Varints are unsigned LEB128, at most 9 bytes; sizes at most 2^30.
 * Version 5 (what lstmlite writes now) is version 4 followed by a u32 CRC-32 (IEEE
 * 802.3: reflected polynomial 0xEDB88320, initial value and final xor 0xFFFFFFFF, as
 * zlib's crc32) of every byte before it. The loader checks it before parsing anything
 * else and refuses a mismatch with LSL_ERR_CHECKSUM.
 * This reader takes versions 1 to 5.
 */
#define LSL_FILE_VERSION 5
#define LSL_FILE_I32 4
#define LSL_FILE_U16 5
#define LSL_FILE_I4 7
#define LSL_FILE_U8 8
#define LSL_FILE_F32_MASKED 9
#define LSL_FILE_I8_MASKED 10
#define LSL_FILE_I4_MASKED 11
#define LSL_FILE_F16 12 /* a 1-D float vector (scales, biases) whose values are all exact in IEEE half */
#define LSL_FILE_HEADER_BYTES 96

/* lsl_load flag, OR'ed into `act`: keep every block-sparse matrix sparse in memory (see
 * lsl_load). */
#define LSL_LOAD_KEEP_SPARSE 0x100
/* lsl_load flag, OR'ed into LSL_ACT_DYN8 or LSL_ACT_DYN16: the recurrent matrices (w_hh,
 * w_hr) whose int8 weights are all within [-64, 64] take LSL_ACT_DYN7 (the state h
 * quantized to 7 bits); the others keep 8 bits. */
#define LSL_LOAD_H7 0x200

/**
 * Parse, check and unpack a .lsl image into `arena` (everything is copied, so the
 * file buffer may be freed afterwards). int8 matrices use activation mode `act`
 * (LSL_ACT_FLOAT, LSL_ACT_DYN8, or LSL_ACT_DYN16: 16-bit activations for the dense int8
 * input projections, 8-bit for every other int8 matrix), optionally OR'ed with
 * LSL_LOAD_KEEP_SPARSE and (dynamic modes) LSL_LOAD_H7.
 *
 * A block-sparse matrix (LSL_I8_SPARSE in the file) runs in whichever form the kernel
 * table active at load time runs faster: sparse, or its codes unpacked into the dense
 * int8 layout, where its kept blocks fill too many of the sparse layout's slots for
 * that table (lsl_sparse_runs_dense: e.g. 80 % sparse in (1, 4) blocks on AVX2). The
 * sparse kernels' sums are exact, so with dynamic activations the results are the same
 * bits either way (float activations: within float rounding). LSL_LOAD_KEEP_SPARSE
 * keeps the sparse form (less memory, the sparse kernels' speed).
 *
 * Call with arena == NULL first: *need receives the bytes required. Then call with a
 * 64-byte aligned arena of that size; *model points into it.
 * @return LSL_OK, LSL_ERR_FORMAT (any inconsistency), LSL_ERR_VERSION, LSL_ERR_BUFFER.
 */
int lsl_load(const void *file, size_t file_bytes, int32_t act, void *arena, size_t arena_bytes,
             const lsl_model **model, size_t *need);

/* ---- instruction sets ------------------------------------------------------------- */

/** Best level this CPU, its OS (XSAVE state) and this build support (LSL_ISA_*). */
int lsl_isa_best(void);
/** 1 when `level` can run here: the CPU has the instructions (cpuid), the OS saves the
 * registers they use (xgetbv: YMM, and opmask + ZMM for AVX-512; on aarch64 Linux the
 * kernel's HWCAP bits) and the build has the kernels; else 0. */
int lsl_isa_supported(int level);
/** Level the kernels use now: LSTMLITE_ISA's (read on first use) or lsl_isa_set's. */
int lsl_isa_current(void);
/** Whether this CPU has AVX-512 VNNI (lsl_isa_supported(LSL_ISA_AVX512_VNNI)). */
int lsl_isa_has_vnni(void);
/**
 * Force a level (LSL_ISA_AUTO = best). Process-wide; call it while no model runs.
 * @return LSL_OK, or LSL_ERR_ISA when the CPU or build lacks that level.
 */
int lsl_isa_set(int level);
/**
 * Apply the environment variable LSTMLITE_ISA (portable, avx2, avx2-vnni, avx512,
 * avx512-vnni, neon, neon-dotprod or auto; unset or empty = auto) now.
 * @return LSL_OK, or LSL_ERR_ISA for an unknown or unsupported value (the best level
 * is used then, so a program that ignores the code still runs).
 */
int lsl_isa_from_env(void);
/** The fused single-stream (B = 1) int8 LSTM steps of the kernels in use (diagnostics):
 * bit 0 set for a dense int8 W_hh, bit 1 for a sparse one; elsewhere the step is a
 * matrix product and then the cell update. */
int lsl_isa_fused_steps(void);
/** Name of a level, as LSTMLITE_ISA spells it: "portable", "avx2", "avx2-vnni",
 * "avx512", "avx512-vnni", "neon", "neon-dotprod"; "unknown" otherwise. */
const char *lsl_isa_name(int level);
/** The level of a name ("auto" -> LSL_ISA_AUTO), or LSL_ERR_ISA for an unknown name. */
int lsl_isa_parse(const char *name);

/**
 * Measured peak multiply-accumulates per second of this core (benchmarks only):
 * kind 0 = fp32 FMA with the widest vectors, 1 = int8 AVX-512 VNNI; 0.0 when absent.
 */
double lsl_probe_peak_macs(int kind, int trials);

#ifdef __cplusplus
}
#endif

#endif /* LSTMLITE_LSL_H */
