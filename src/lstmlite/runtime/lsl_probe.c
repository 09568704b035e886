/*
 * lsl_probe.c -- measure this core's peak multiply-accumulate rate, so benchmarks can
 * report how far a kernel is from the limit.
 *
 * Twelve independent FMA (or VNNI) chains keep every FMA port busy whatever its
 * latency; CPU time (clock()) rather than wall time is used, so other processes on a
 * shared machine do not deflate the figure. Not used by the inference path.
 */
#include <time.h>

#include "lsl_internal.h"

#if defined(LSL_HAVE_X86)
#include <immintrin.h>

/* The twelve chains a0..a11 of vector type T, chain k starting at SET1(START(k)) in
 * every lane: distinct starting values, as identical chains would be merged by the
 * compiler. */
#define CHAINS12(T, SET1, START)                                                                   \
    T a0 = SET1(START(0)), a1 = SET1(START(1)), a2 = SET1(START(2)), a3 = SET1(START(3)),          \
      a4 = SET1(START(4)), a5 = SET1(START(5)), a6 = SET1(START(6)), a7 = SET1(START(7)),          \
      a8 = SET1(START(8)), a9 = SET1(START(9)), a10 = SET1(START(10)), a11 = SET1(START(11))
#define STEP12(OP)                                                                                \
    a0 = OP(a0); a1 = OP(a1); a2 = OP(a2); a3 = OP(a3); a4 = OP(a4); a5 = OP(a5);                 \
    a6 = OP(a6); a7 = OP(a7); a8 = OP(a8); a9 = OP(a9); a10 = OP(a10); a11 = OP(a11)
/* The chains' sum (so none is dead code), as a tree of ADD. */
#define SUM12(ADD)                                                                                 \
    ADD(ADD(ADD(ADD(a0, a1), ADD(a2, a3)), ADD(ADD(a4, a5), ADD(a6, a7))), ADD(ADD(a8, a9), ADD(a10, a11)))
/* Chain k's start: 0.10 + k / 100 (fp32), k + 1 (int32). */
#define START_F(k) ((float)((k) + 10) / 100.0f)
#define START_I(k) ((k) + 1)

__attribute__((target("avx512f,fma"), noinline)) static float fma512_loop(long n) {
    const __m512 m = _mm512_set1_ps(0.999f), c = _mm512_set1_ps(0.001f);
    CHAINS12(__m512, _mm512_set1_ps, START_F);
    long i;
#define F(v) _mm512_fmadd_ps(v, m, c)
    for (i = 0; i < n; ++i) {
        STEP12(F);
    }
#undef F
    return _mm512_reduce_add_ps(SUM12(_mm512_add_ps));
}

__attribute__((target("avx2,fma"), noinline)) static float fma256_loop(long n) {
    const __m256 m = _mm256_set1_ps(0.999f), c = _mm256_set1_ps(0.001f);
    CHAINS12(__m256, _mm256_set1_ps, START_F);
    float out[8];
    long i;
#define F(v) _mm256_fmadd_ps(v, m, c)
    for (i = 0; i < n; ++i) {
        STEP12(F);
    }
#undef F
    _mm256_storeu_ps(out, SUM12(_mm256_add_ps));
    return out[0] + out[7];
}

__attribute__((target("avx512f,avx512vnni"), noinline)) static int vnni_loop(long n) {
    const __m512i m = _mm512_set1_epi32(0x01010101), c = _mm512_set1_epi32(0x02020202);
    CHAINS12(__m512i, _mm512_set1_epi32, START_I);
    long i;
#define F(v) _mm512_dpbusd_epi32(v, m, c)
    for (i = 0; i < n; ++i) {
        STEP12(F);
    }
#undef F
    return _mm512_reduce_add_epi32(SUM12(_mm512_add_epi32));
}

/* Twelve chains of one 256-bit int8 instruction, in asm (from the intrinsics GCC 12
 * stored nine of the chains to the stack every iteration, a third below the
 * instruction's rate): vnni = 1: AVX-VNNI's VEX vpdpbusd, 32 u8 x s8 products into
 * int32, the int8 peak of CPUs with AVX-VNNI and no AVX-512; vnni = 0: AVX2's
 * vpmaddubsw, 32 u8 x s8 products added in pairs into int16 -- the most int8
 * multiply-adds AVX2 issues per cycle (an exact int32 sum needs more instructions per
 * product: lsl_kern_avx2.h). `vnni` is a constant in each caller. */
__attribute__((target("avx2"), always_inline)) static inline int int8_chains256(long n, const int vnni) {
    const __m256i m = _mm256_set1_epi32(0x01010101), c = _mm256_set1_epi32(0x02020202);
    CHAINS12(__m256i, _mm256_set1_epi32, START_I);
    int out[8];
    long i;
#if defined(LSL_HAVE_AVXVNNI)
#define VNNI_OP(t_) __asm__("%{vex%} vpdpbusd %2, %1, %0" : "+x"(t_) : "x"(m), "x"(c))
#else
#define VNNI_OP(t_) (void)0
#endif
#define F(v)                                                                                       \
    __extension__({                                                                                \
        __m256i t_ = (v);                                                                          \
        if (vnni)                                                                                  \
            VNNI_OP(t_);                                                                           \
        else                                                                                       \
            __asm__("vpmaddubsw %1, %0, %0" : "+x"(t_) : "x"(m));                                  \
        t_;                                                                                        \
    })
    for (i = 0; i < n; ++i) {
        STEP12(F);
    }
#undef F
#undef VNNI_OP
    _mm256_storeu_si256((__m256i *)out, SUM12(_mm256_add_epi32));
    return out[0] + out[7];
}

#if defined(LSL_HAVE_AVXVNNI)
__attribute__((target("avx2,avxvnni"), noinline)) static int vnni256_loop(long n) { return int8_chains256(n, 1); }
#endif
__attribute__((target("avx2"), noinline)) static int maddubs_loop(long n) { return int8_chains256(n, 0); }
#endif

volatile float lsl_probe_sink_f;
volatile int lsl_probe_sink_i;

/* MACs per second of one kind of arithmetic on this core with the widest instructions
 * it has: 0: fp32 FMA; 1: int8 (AVX-512 VNNI vpdpbusd, else AVX-VNNI's, else AVX2's
 * vpmaddubsw); 0 when the CPU has none of them (the portable build). Best of `trials`. */
double lsl_probe_peak_macs(int kind, int trials) {
    double best = 0.0;
    int t;
    for (t = 0; t < trials; ++t) {
        long n = 2000000;
        double macs = 0.0, secs;
        clock_t start = clock();
#if defined(LSL_HAVE_X86)
        if (kind == 0 && lsl_isa_supported(LSL_ISA_AVX512)) {
            lsl_probe_sink_f = fma512_loop(n);
            macs = 12.0 * 16.0 * (double)n;
        } else if (kind == 0 && lsl_isa_supported(LSL_ISA_AVX2)) {
            lsl_probe_sink_f = fma256_loop(n);
            macs = 12.0 * 8.0 * (double)n;
        } else if (kind == 1 && lsl_isa_has_vnni()) {
            lsl_probe_sink_i = vnni_loop(n);
            macs = 12.0 * 64.0 * (double)n;
#if defined(LSL_HAVE_AVXVNNI)
        } else if (kind == 1 && lsl_isa_supported(LSL_ISA_AVX2_VNNI)) {
            lsl_probe_sink_i = vnni256_loop(n);
            macs = 12.0 * 32.0 * (double)n;
#endif
        } else if (kind == 1 && lsl_isa_supported(LSL_ISA_AVX2)) {
            lsl_probe_sink_i = maddubs_loop(n);
            macs = 12.0 * 32.0 * (double)n;
        }
#else
        (void)kind;
        (void)n;
#endif
        secs = (double)(clock() - start) / CLOCKS_PER_SEC;
        if (macs > 0 && secs > 0 && macs / secs > best) best = macs / secs;
    }
    return best;
}
