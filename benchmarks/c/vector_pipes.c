/*
 * vector_pipes.c -- how many cycles this x86-64 core takes for the 256-bit integer
 * instructions of the AVX2 int8 kernels, alone and as the kernels' inner loops combine
 * them: the measured reason why an exact 8-bit AVX2 product cannot match the
 * multiply-adds per cycle of ONNX Runtime's 7-bit one (BENCHMARKS.md, issue 11).
 *
 *   gcc -O2 -mavx2 benchmarks/c/vector_pipes.c -o vector_pipes && ./vector_pipes [iterations]
 *
 * Prints one line per measurement, "name cycles", where cycles is per loop iteration:
 *   - "<insn>": 8 independent copies of one instruction (register operands), so
 *     8 / cycles is how many of them issue per cycle;
 *   - loops of 8 weight vectors (256 int8 products) as the kernels run them, each
 *     vector's chain feeding one of 8 accumulators, weights from a 4 KB L1 buffer:
 *     "loop_sign"   vpsignb + vpmaddubsw + vpmaddwd + vpaddd, and per 8 vectors a
 *                   broadcast, vpxor and vpabsb (lstmlite's former one-row form, exact)
 *     "loop_mask"   vpxor + vpsubb + vpmaddubsw + vpmaddwd + vpaddd, and per 8 vectors
 *                   two broadcasts (LSL_K_DYNM, exact)
 *     "loop_7bit"   vpmaddubsw + vpmaddwd + vpaddd, a broadcast per 2 vectors (ONNX
 *                   Runtime's AVX2 loop, 7-bit weights)
 *     "loop_int16"  six rows x 2 vectors of vpmaddwd + vpaddd on int16-widened weights
 *                   (lstmlite's several-row tile, 192 products per iteration)
 * The loops keep everything in L1 and leave out the kernels' loop bookkeeping and
 * epilogues, so a real product runs somewhat below them (the one-row sign-mask product
 * of an H = 128 or 256 LSTM step: 23.7 products a cycle on Zen 4).
 * Cycles come from time and a calibration loop of dependent scalar register adds, taken
 * as one cycle each, and assume one clock for the scalar and the 256-bit code: true on
 * Zen 4 and on the Xeon measured; cores that lower their clock for 256-bit work would
 * need another calibration. The best of 5 runs is printed.
 */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#if !defined(__x86_64__) || !defined(__GNUC__)
int main(void) {
    fprintf(stderr, "vector_pipes: x86-64 with GCC or Clang only\n");
    return 2;
}
#else

static char buf[4096] __attribute__((aligned(64)));

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Seconds per iteration of a loop body run n times; ymm0-15 clobbered, %1 = buf. */
#define LOOP(name, body)                                                                                           \
    static double name(long n) {                                                                               \
        double t0 = now();                                                                                     \
        __asm__ volatile("vpxor %%ymm0, %%ymm0, %%ymm0\n\t"                                                    \
                         "vpcmpeqb %%ymm8, %%ymm8, %%ymm8\n\t"                                                 \
                         "vpabsb %%ymm8, %%ymm8\n\t" /* ones, so products stay small */                      \
                         "vmovdqa %%ymm8, %%ymm9\n\t"                                                          \
                         "vmovdqa %%ymm8, %%ymm10\n\t"                                                         \
                         "1:\n\t" body "dec %0\n\t"                                                            \
                         "jnz 1b\n\t"                                                                          \
                         : "+r"(n)                                                                             \
                         : "r"(buf)                                                                            \
                         : "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",  \
                           "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");                     \
        return (now() - t0);                                                                                   \
    }

/* 8 independent copies of one instruction writing ymm11..15 in turn. */
#define IND8(op)                                                                                                   \
    op(11) op(12) op(13) op(14) op(15) op(11) op(12) op(13)
#define I_SIGN(t) "vpsignb %%ymm10, %%ymm9, %%ymm" #t "\n\t"
#define I_ABS(t) "vpabsb %%ymm9, %%ymm" #t "\n\t"
#define I_MUB(t) "vpmaddubsw %%ymm9, %%ymm8, %%ymm" #t "\n\t"
#define I_MWD(t) "vpmaddwd %%ymm9, %%ymm8, %%ymm" #t "\n\t"
#define I_XOR(t) "vpxor %%ymm10, %%ymm9, %%ymm" #t "\n\t"
#define I_SUBB(t) "vpsubb %%ymm10, %%ymm9, %%ymm" #t "\n\t"
#define I_ADDD(t) "vpaddd %%ymm10, %%ymm9, %%ymm" #t "\n\t"
#define I_SXBW(t) "vpmovsxbw %%xmm9, %%ymm" #t "\n\t"
LOOP(vpsignb, IND8(I_SIGN))
LOOP(vpabsb, IND8(I_ABS))
LOOP(vpmaddubsw, IND8(I_MUB))
LOOP(vpmaddwd, IND8(I_MWD))
LOOP(vpxor, IND8(I_XOR))
LOOP(vpsubb, IND8(I_SUBB))
LOOP(vpaddd, IND8(I_ADDD))
LOOP(vpmovsxbw, IND8(I_SXBW))

/* One weight vector (32 bytes at offset 32 v) into accumulator a through temp t; the
 * activation operands: ymm8 (|q| or u, broadcast), ymm10 (q, or the sign mask). The
 * exact forms differ in how t gets w sign(q), then share the multiply-adds (V_TAIL). */
#define V_ACC(a, t) /* the int16 pair sums into int32, added to a */                                             \
    "vpmaddwd %%ymm9, %%ymm" #t ", %%ymm" #t "\n\t"                                                               \
    "vpaddd %%ymm" #t ", %%ymm" #a ", %%ymm" #a "\n\t"
#define V_TAIL(a, t) "vpmaddubsw %%ymm" #t ", %%ymm8, %%ymm" #t "\n\t" V_ACC(a, t)
#define V_SIGN(v, a, t)                                                                                            \
    "vmovdqu " #v "*32(%1), %%ymm" #t "\n\t"                                                                      \
    "vpsignb %%ymm10, %%ymm" #t ", %%ymm" #t "\n\t" V_TAIL(a, t)
#define V_MASK(v, a, t)                                                                                            \
    "vpxor " #v "*32(%1), %%ymm10, %%ymm" #t "\n\t"                                                               \
    "vpsubb %%ymm10, %%ymm" #t ", %%ymm" #t "\n\t" V_TAIL(a, t)
#define V_7BIT(v, a, t) "vpmaddubsw " #v "*32(%1), %%ymm8, %%ymm" #t "\n\t" V_ACC(a, t)
/* Per k4 step (8 weight vectors: 4 gates x 2 halves), as the kernels load their
 * activation operands: the former one-row loop broadcast u, made q (xor 0x80) and |q|;
 * the sign-mask loop broadcasts |q| and the mask from their planes. */
#define EIGHT(V) V(0, 0, 11) V(1, 1, 12) V(2, 2, 13) V(3, 3, 14) V(4, 4, 15) V(5, 5, 11) V(6, 6, 12) V(7, 7, 13)
LOOP(loop_sign, "vbroadcastss 2048(%1), %%ymm10\n\tvpxor 2080(%1), %%ymm10, %%ymm10\n\tvpabsb %%ymm10, %%ymm8\n\t"
                    EIGHT(V_SIGN))
LOOP(loop_mask, "vbroadcastss 2048(%1), %%ymm8\n\tvbroadcastss 2052(%1), %%ymm10\n\t" EIGHT(V_MASK))
/* ONNX Runtime's AVX2 u8 x s8 loop as its library disassembles (1.32): a broadcast of 4
 * activations per 2 weight vectors (16 outputs), two accumulators. */
#define ORT_PAIR(i)                                                                                                \
    "vpbroadcastd 2048+4*" #i "(%1), %%ymm8\n\t" V_7BIT(2 * i, 0, 11) V_7BIT(2 * i + 1, 1, 12)
LOOP(loop_7bit, ORT_PAIR(0) ORT_PAIR(1) ORT_PAIR(2) ORT_PAIR(3))

/* lsl_kern_avx2.c's step6_w16: weights widened once, six rows broadcast, 12 accumulators. */
#define W16_ROW(i, a0, a1)                                                                                         \
    "vpbroadcastq 2048+" #i "*8(%1), %%ymm14\n\t"                                                                 \
    "vpmaddwd %%ymm12, %%ymm14, %%ymm15\n\t"                                                                      \
    "vpaddd %%ymm15, %%ymm" #a0 ", %%ymm" #a0 "\n\t"                                                              \
    "vpmaddwd %%ymm13, %%ymm14, %%ymm14\n\t"                                                                      \
    "vpaddd %%ymm14, %%ymm" #a1 ", %%ymm" #a1 "\n\t"
LOOP(loop_int16, "vpmovsxbw (%1), %%ymm12\n\tvpmovsxbw 16(%1), %%ymm13\n\t" W16_ROW(0, 0, 1) W16_ROW(1, 2, 3)
                     W16_ROW(2, 4, 5) W16_ROW(3, 6, 7) W16_ROW(4, 10, 11) W16_ROW(5, 8, 9))

/* Seconds per cycle: a chain of dependent scalar adds of a register, one cycle each
 * (not of an immediate: Intel's cores since Golden Cove fold chains of immediate adds
 * when renaming, which made a cycle look several times shorter there). */
static double calibrate(long n) {
    long x = 0, k = n, one = 1;
    double t0 = now();
    __asm__ volatile("1:\n\t"
                     "add %2, %0\n\tadd %2, %0\n\tadd %2, %0\n\tadd %2, %0\n\t"
                     "add %2, %0\n\tadd %2, %0\n\tadd %2, %0\n\tadd %2, %0\n\t"
                     "dec %1\n\tjnz 1b\n\t"
                     : "+r"(x), "+r"(k)
                     : "r"(one));
    return (now() - t0) / (8.0 * (double)n);
}

typedef double (*loop_fn)(long);

static double best_of(loop_fn f, long n) {
    double best = 1e30;
    int r;
    for (r = 0; r < 5; ++r) {
        const double t = f(n);
        if (t < best) best = t;
    }
    return best / (double)n;
}

int main(int argc, char **argv) {
    static const struct {
        const char *name;
        loop_fn f;
    } cases[] = {{"vpsignb", vpsignb},     {"vpabsb", vpabsb},       {"vpmaddubsw", vpmaddubsw},
                 {"vpmaddwd", vpmaddwd},   {"vpmovsxbw", vpmovsxbw}, {"vpxor", vpxor},
                 {"vpsubb", vpsubb},       {"vpaddd", vpaddd},       {"loop_sign", loop_sign},
                 {"loop_mask", loop_mask}, {"loop_7bit", loop_7bit}, {"loop_int16", loop_int16}};
    const long n = argc > 1 ? atol(argv[1]) : 20000000L;
    double cycle = 1e30;
    size_t i;
    int r;
    if (n <= 0) {
        fprintf(stderr, "usage: vector_pipes [iterations > 0]\n");
        return 2;
    }
    for (i = 0; i < sizeof buf; ++i) buf[i] = (char)(i * 37 % 127); /* int8 weights, never -128 */
    for (r = 0; r < 5; ++r) {
        const double c = calibrate(n);
        if (c < cycle) cycle = c;
    }
    printf("ghz %.3f\n", 1e-9 / cycle);
    for (i = 0; i < sizeof cases / sizeof cases[0]; ++i) printf("%s %.3f\n", cases[i].name, best_of(cases[i].f, n) / cycle);
    return 0;
}
#endif
