/*
 * lsl_isa.c -- choose the kernel table at run time.
 *
 * The default is the best level this CPU supports; LSTMLITE_ISA=portable|avx2|
 * avx2-vnni|avx512|avx512-vnni|neon|neon-dotprod|auto in the environment (read once, on first use, or
 * by lsl_isa_from_env) or lsl_isa_set() forces a level, which is how the tests run
 * every kernel on one machine. The CPU features are found once (detect_features);
 * each architecture's detection is its own block below.
 */
#include <stdlib.h>
#include <string.h>

#include "lsl_internal.h"

#if defined(LSL_HAVE_X86)
#include <cpuid.h>
#endif
#if defined(LSL_HAVE_NEON) && defined(__linux__)
#include <sys/auxv.h>
#endif
#if defined(LSL_HAVE_NEON) && defined(__APPLE__)
#include <sys/sysctl.h>
#endif

static const lsl_kernels *g_active = NULL;

/* Which levels this machine runs: bit `level` set for each; 0 until detected. One int,
 * written once with the whole answer, so a thread racing the first detection sees
 * either 0 (and detects too) or the complete mask. */
static volatile int g_supported = 0;

#if defined(LSL_HAVE_X86)
/* XCR0, the register state the OS saves on a context switch. Why check it: cpuid says
 * what the CPU can do, but an OS that does not save YMM (or ZMM) state would corrupt
 * those registers; AVX code is only safe when XCR0 has the bits. The instruction is
 * emitted directly so this file needs no -mxsave. */
static uint64_t xcr0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

#define BIT(v, n) (((v) >> (n)) & 1u)

/* The decision from the CPU's answers (lsl_internal.h: a function of its own so that
 * tests/c/test_core.c can give it CPUs and OS states this machine does not have). */
void lsl_isa_x86_decide(const lsl_x86_cpu *cpu, int sup[LSL_ISA_COUNT]) {
    int avx2, avx512;
    /* OSXSAVE (xgetbv usable), AVX and FMA */
    if (!BIT(cpu->leaf1_ecx, 27) || !BIT(cpu->leaf1_ecx, 28) || !BIT(cpu->leaf1_ecx, 12)) return;
    if ((cpu->xcr0 & 0x6) != 0x6) return; /* XMM and YMM state */
    if (cpu->max_leaf < 7) return;
    avx2 = (int)BIT(cpu->leaf7_ebx, 5);
    /* F (16), DQ (17), BW (30), VL (31); and the opmask, ZMM_Hi256, Hi16_ZMM state */
    avx512 = avx2 && BIT(cpu->leaf7_ebx, 16) && BIT(cpu->leaf7_ebx, 17) && BIT(cpu->leaf7_ebx, 30) &&
             BIT(cpu->leaf7_ebx, 31) && (cpu->xcr0 & 0xE0) == 0xE0;
    sup[LSL_ISA_AVX2] = avx2;
    sup[LSL_ISA_AVX512] = avx512;
    sup[LSL_ISA_AVX512_VNNI] = avx512 && BIT(cpu->leaf7_ecx, 11);
#if defined(LSL_HAVE_AVXVNNI) /* the build has the table */
    sup[LSL_ISA_AVX2_VNNI] = avx2 && cpu->max_sub7 >= 1 && BIT(cpu->leaf7_1_eax, 4); /* VEX vpdpbusd */
#if defined(LSL_TEST_AVX2_VNNI_AS_EVEX) /* tests only: see lsl_kern_avx2.h */
    sup[LSL_ISA_AVX2_VNNI] |= sup[LSL_ISA_AVX512_VNNI];
#endif
#endif
}

/* This CPU's answers: cpuid leaves 1, 7.0 and 7.1, and XCR0 where OSXSAVE says xgetbv
 * may run (else 0). */
static void read_x86(lsl_x86_cpu *cpu) {
    unsigned a, b, c, d;
    memset(cpu, 0, sizeof(*cpu));
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    cpu->leaf1_ecx = c;
    if (BIT(c, 27)) cpu->xcr0 = xcr0();
    cpu->max_leaf = __get_cpuid_max(0, NULL);
    if (cpu->max_leaf < 7) return;
    __cpuid_count(7, 0, a, b, c, d);
    cpu->max_sub7 = a;
    cpu->leaf7_ebx = b;
    cpu->leaf7_ecx = c;
    if (cpu->max_sub7 >= 1) {
        __cpuid_count(7, 1, a, b, c, d);
        cpu->leaf7_1_eax = a;
    }
}

static void detect_x86(int sup[LSL_ISA_COUNT]) {
    lsl_x86_cpu cpu;
    read_x86(&cpu);
    lsl_isa_x86_decide(&cpu, sup);
}
#endif

#if defined(LSL_HAVE_NEON)
/* Linux reports the CPU's features in the auxiliary vector (the kernel reads the ID
 * registers, which user code may not); the bit values are the kernel's ABI
 * (arch/arm64/include/uapi/asm/hwcap.h), spelled out for older C libraries' headers. */
#define LSL_HWCAP_ASIMD (1ul << 1)
#define LSL_HWCAP_ASIMDDP (1ul << 20)

static void detect_arm64(int sup[LSL_ISA_COUNT]) {
#if defined(__linux__)
    const unsigned long hw = getauxval(AT_HWCAP);
    sup[LSL_ISA_NEON] = (hw & LSL_HWCAP_ASIMD) != 0;
#if defined(LSL_HAVE_NEON_DOTPROD)
    sup[LSL_ISA_NEON_DOTPROD] = sup[LSL_ISA_NEON] && (hw & LSL_HWCAP_ASIMDDP) != 0;
#endif
#else
    /* Advanced SIMD is part of every aarch64 ABI (Apple, Windows, the BSDs) */
    sup[LSL_ISA_NEON] = 1;
#if defined(LSL_HAVE_NEON_DOTPROD) && defined(__APPLE__)
    {
        int v = 0;
        size_t n = sizeof v;
        sup[LSL_ISA_NEON_DOTPROD] = sysctlbyname("hw.optional.arm.FEAT_DotProd", &v, &n, NULL, 0) == 0 && v;
    }
#endif
#endif
}
#endif

static int detect_features(void) {
    int sup[LSL_ISA_COUNT] = {0}, mask = 0, level;
    sup[LSL_ISA_PORTABLE] = 1;
#if defined(LSL_HAVE_X86)
    detect_x86(sup);
#endif
#if defined(LSL_HAVE_NEON)
    detect_arm64(sup);
#endif
    for (level = 0; level < LSL_ISA_COUNT; ++level) mask |= sup[level] ? 1 << level : 0;
    return mask;
}

int lsl_isa_supported(int level) {
    int mask = g_supported;
    if (level < 0 || level >= LSL_ISA_COUNT) return 0;
    if (!mask) g_supported = mask = detect_features();
    return (mask >> level) & 1;
}

int lsl_isa_has_vnni(void) { return lsl_isa_supported(LSL_ISA_AVX512_VNNI); }

int lsl_isa_best(void) {
    /* Most capable first. No CPU has AVX-512 and AVX-VNNI without AVX-512 VNNI, so the
     * order between avx512 and avx2-vnni never decides anything. */
    static const int order[] = {LSL_ISA_AVX512_VNNI, LSL_ISA_AVX512, LSL_ISA_AVX2_VNNI, LSL_ISA_AVX2,
                                LSL_ISA_NEON_DOTPROD, LSL_ISA_NEON};
    size_t i;
    for (i = 0; i < sizeof(order) / sizeof(order[0]); ++i)
        if (lsl_isa_supported(order[i])) return order[i];
    return LSL_ISA_PORTABLE;
}

static const lsl_kernels *table_for(int level) {
    switch (level) {
#if defined(LSL_HAVE_X86)
    case LSL_ISA_AVX2: return &lsl_kernels_avx2;
#if defined(LSL_HAVE_AVXVNNI)
    case LSL_ISA_AVX2_VNNI: return &lsl_kernels_avx2_vnni;
#endif
    case LSL_ISA_AVX512: return &lsl_kernels_avx512;
    case LSL_ISA_AVX512_VNNI: return &lsl_kernels_avx512_vnni;
#endif
#if defined(LSL_HAVE_NEON)
    case LSL_ISA_NEON: return &lsl_kernels_neon;
#if defined(LSL_HAVE_NEON_DOTPROD)
    case LSL_ISA_NEON_DOTPROD: return &lsl_kernels_neon_dotprod;
#endif
#endif
    default: return &lsl_kernels_portable;
    }
}

int lsl_isa_set(int level) {
    if (level == LSL_ISA_AUTO) level = lsl_isa_best();
    if (!lsl_isa_supported(level)) return LSL_ERR_ISA;
    g_active = table_for(level);
    return LSL_OK;
}

static const char *const g_names[LSL_ISA_COUNT] = {"portable", "avx2", "avx512", "avx2-vnni", "avx512-vnni",
                                                          "neon", "neon-dotprod"};

const char *lsl_isa_name(int level) { return level >= 0 && level < LSL_ISA_COUNT ? g_names[level] : "unknown"; }

int lsl_isa_parse(const char *name) {
    int level;
    if (!name) return LSL_ERR_ISA;
    if (strcmp(name, "auto") == 0) return LSL_ISA_AUTO;
    for (level = 0; level < LSL_ISA_COUNT; ++level)
        if (strcmp(name, g_names[level]) == 0) return level;
    return LSL_ERR_ISA;
}

int lsl_isa_from_env(void) {
    const char *v = getenv("LSTMLITE_ISA");
    int level = (!v || !*v) ? LSL_ISA_AUTO : lsl_isa_parse(v);
    if (level == LSL_ERR_ISA || lsl_isa_set(level) != LSL_OK) {
        lsl_isa_set(LSL_ISA_AUTO); /* still run, on the best kernels; the caller reports */
        return LSL_ERR_ISA;
    }
    return LSL_OK;
}

const lsl_kernels *lsl_kernels_active(void) {
    /* A benign race: two threads may both compute the same table on first use. */
    if (!g_active) lsl_isa_from_env();
    return g_active;
}

int lsl_isa_current(void) { return lsl_kernels_active()->level; }

int lsl_isa_fused_steps(void) {
    const lsl_kernels *k = lsl_kernels_active();
    return (k->lstm_step1 ? 1 : 0) | (k->lstm_step1_sparse ? 2 : 0);
}

const char *lsl_strerror(int code) {
    switch (code) {
    case LSL_OK: return "ok";
    case LSL_ERR_ARG: return "invalid argument (NULL pointer or bad value)";
    case LSL_ERR_SHAPE: return "sizes do not fit together";
    case LSL_ERR_BUFFER: return "buffer too small";
    case LSL_ERR_UNSUPPORTED: return "not supported for this model";
    case LSL_ERR_TOKEN: return "token id out of range";
    case LSL_ERR_FORMAT: return "malformed .lsl model file";
    case LSL_ERR_VERSION: return "unsupported .lsl file version";
    case LSL_ERR_ISA: return "instruction set not available on this CPU or build";
    case LSL_ERR_RANGE: return "integer input outside its declared width";
    case LSL_ERR_OVERFLOW: return "int32 accumulator overflow (parameters break the no-overflow bound)";
    case LSL_ERR_CHECKSUM: return ".lsl file checksum mismatch: the file is corrupt or truncated";
    default: return "unknown error";
    }
}
