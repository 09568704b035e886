/*
 * lsl_isa.c -- choose the kernel table at run time.
 *
 * The default is the best level the CPU supports; LSTMLITE_ISA=portable|avx2|avx512
 * in the environment (read once, on first use) or lsl_isa_set() forces a level, which
 * is how the tests run every kernel on one machine.
 */
#include <stdlib.h>
#include <string.h>

#include "lsl_internal.h"

static const lsl_kernels *g_active = NULL;

static int cpu_has_avx2(void) {
#if defined(LSL_HAVE_X86)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

static int cpu_has_avx512(void) {
#if defined(LSL_HAVE_X86)
    __builtin_cpu_init();
    return cpu_has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
#else
    return 0;
#endif
}

int lsl_isa_has_vnni(void) {
#if defined(LSL_HAVE_X86)
    __builtin_cpu_init();
    return cpu_has_avx512() && __builtin_cpu_supports("avx512vnni");
#else
    return 0;
#endif
}

int lsl_isa_best(void) {
    if (cpu_has_avx512()) return LSL_ISA_AVX512;
    if (cpu_has_avx2()) return LSL_ISA_AVX2;
    return LSL_ISA_PORTABLE;
}

static const lsl_kernels *table_for(int level) {
#if defined(LSL_HAVE_X86)
    if (level == LSL_ISA_AVX512) return lsl_isa_has_vnni() ? &lsl_kernels_avx512_vnni : &lsl_kernels_avx512;
    if (level == LSL_ISA_AVX2) return &lsl_kernels_avx2;
#endif
    (void)level;
    return &lsl_kernels_portable;
}

int lsl_isa_set(int level) {
    if (level == LSL_ISA_AUTO) level = lsl_isa_best();
    if (level < LSL_ISA_PORTABLE || level > LSL_ISA_AVX512) return LSL_ERR_ISA;
    if (level > lsl_isa_best()) return LSL_ERR_ISA;
    g_active = table_for(level);
    return LSL_OK;
}

static int level_from_env(void) {
    const char *v = getenv("LSTMLITE_ISA");
    int best = lsl_isa_best();
    if (!v || !*v || strcmp(v, "auto") == 0) return best;
    if (strcmp(v, "portable") == 0) return LSL_ISA_PORTABLE;
    if (strcmp(v, "avx2") == 0 && best >= LSL_ISA_AVX2) return LSL_ISA_AVX2;
    if (strcmp(v, "avx512") == 0 && best >= LSL_ISA_AVX512) return LSL_ISA_AVX512;
    return best; /* unknown or unsupported request: the binding reports it */
}

const lsl_kernels *lsl_kernels_active(void) {
    /* A benign race: two threads may both compute the same table on first use. */
    if (!g_active) g_active = table_for(level_from_env());
    return g_active;
}

int lsl_isa_current(void) { return lsl_kernels_active()->level; }

const char *lsl_isa_name(int level) {
    switch (level) {
    case LSL_ISA_PORTABLE: return "portable";
    case LSL_ISA_AVX2: return "avx2";
    case LSL_ISA_AVX512: return "avx512";
    default: return "unknown";
    }
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
    default: return "unknown error";
    }
}
