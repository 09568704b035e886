/*
 * lsl_kern_avx2_vnni.c -- the AVX-VNNI table (AVX2 + FMA + VEX-encoded vpdpbusd,
 * 256-bit: Alder Lake and later Intel cores without AVX-512, Zen 5 desktop).
 *
 * Dynamic int8 multiplies with vpdpbusd (4 u8 x s8 products and the add in one
 * instruction, where AVX2 needs a sign step, vpmaddubsw, vpmaddwd and vpaddd);
 * the loops are lsl_kern_avx2.h's, so the sums and results equal the AVX2 table's bit
 * for bit. Float activations become the three 8-bit limbs of the AVX-512 VNNI table
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

static TAVXVNNI void gemm_dyn8_vnni(const lsl_matrix *w, int32_t m, const uint8_t *u, int32_t ldu, const float *xs,
                                    const float *bias, float *y, int32_t ldy, int rev) {
    lsl_bias_rows(m, bias, w->rows, y, ldy);
    gemm_q8(LSL_K_VNNI, w, m, u, ldu, 0, xs, y, ldy, rev);
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

static TAVXVNNI void gemm_sparse_dyn8_vnni(const lsl_matrix *w, int32_t m, const uint8_t *u, int32_t ldu,
                                           const float *xs, const float *bias, float *y, int32_t ldy, int rev) {
    gemm_sparse_q8(LSL_K_VNNI, w, m, u, ldu, 0, xs, bias, y, ldy, rev);
}

static TAVXVNNI void lstm_step1_vnni(const lsl_matrix *w, int32_t hidden, const float *g, float *c, float *h,
                                     void *work, int rev) {
    uint8_t *u = (uint8_t *)work;
    float xs;
    if (lsl_act_u8(w->act)) {
        lsl_avx2_quantize_rows(1, hidden, w->kpad, h, hidden, u, &xs, lsl_act_qmax(w->act));
        lstm_step1_q8(LSL_K_VNNI, w, hidden, u, 0, xs, g, c, h, rev);
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
