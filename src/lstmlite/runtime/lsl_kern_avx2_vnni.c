/*
 * lsl_kern_avx2_vnni.c -- the AVX-VNNI table (AVX2 + FMA + VEX-encoded vpdpbusd,
 * 256-bit: Alder Lake and later Intel cores without AVX-512, Zen 5 desktop).
 *
 * Dynamic int8 multiplies with vpdpbusd (4 u8 x s8 products and the add in one
 * instruction, where AVX2 needs vpsignb, vpabsb, vpmaddubsw, vpmaddwd and vpaddd);
 * the loops are lsl_kern_avx2.h's, so the sums and results equal the AVX2 table's bit
 * for bit. Everything else is the AVX2 table's. The functions carry
 * target("avx2,fma,avxvnni") and run only after lsl_isa.c found AVX-VNNI.
 */
#include "lsl_internal.h"

#if defined(LSL_HAVE_X86)
#include "lsl_kern_avx2.h"

#define TAVXVNNI __attribute__((target("avx2,fma,avxvnni")))

static TAVXVNNI void gemm_dyn8_vnni(const lsl_matrix *w, int32_t m, const uint8_t *u, int32_t ldu, const float *xs,
                                    float *y, int32_t ldy, int rev) {
    gemm_q8(LSL_K_VNNI, w, m, u, ldu, 0, xs, y, ldy, rev);
}

/* The fused single-stream step: vpdpbusd for dynamic int8, the AVX2 digits otherwise. */
static TAVXVNNI void gemm_sparse_dyn8_vnni(const lsl_matrix *w, int32_t m, const uint8_t *u, int32_t ldu,
                                           const float *xs, float *y, int32_t ldy, int rev) {
    gemm_sparse_q8(LSL_K_VNNI, w, m, u, ldu, 0, xs, y, ldy, rev);
}

static TAVXVNNI void lstm_step1_vnni(const lsl_matrix *w, int32_t hidden, const float *g, float *c, float *h,
                                     void *work, int rev) {
    uint8_t *u = (uint8_t *)work;
    float xs;
    if (w->act == LSL_ACT_DYN8) {
        lsl_avx2_quantize_rows(1, hidden, w->kpad, h, hidden, u, &xs);
        lstm_step1_q8(LSL_K_VNNI, w, hidden, u, 0, xs, g, c, h, rev);
    } else {
        lsl_avx2_quantize_digits(1, hidden, w->kpad, h, hidden, u, (size_t)w->kpad, &xs);
        lstm_step1_q8(LSL_K_DIG, w, hidden, u, (size_t)w->kpad, xs, g, c, h, rev);
    }
}

const lsl_kernels lsl_kernels_avx2_vnni = {
    LSL_ISA_AVX2_VNNI, lsl_avx2_gemm_f32, lsl_avx2_gemm_i8, gemm_dyn8_vnni, lsl_avx2_quantize_rows,
    lsl_avx2_gemm_sparse_i8, gemm_sparse_dyn8_vnni, lsl_avx2_lstm_pointwise, lsl_avx2_gru_pointwise,
    lstm_step1_vnni, NULL,
};

#endif /* LSL_HAVE_X86 */
