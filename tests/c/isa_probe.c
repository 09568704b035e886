/*
 * isa_probe.c -- lsl_isa.c on its own, with the kernel tables stubbed (each knows only
 * its level), so that the CPU detection and LSTMLITE_ISA parsing can be run on an
 * emulated CPU in milliseconds (tests/c/test_c_runtime.py, tests/c/test_aarch64.py).
 *
 * Prints one line: "supported: NAME... | best: NAME | env: CODE current: NAME", where
 * CODE is lsl_isa_from_env()'s return value (0: LSL_OK) and current the level in use.
 */
#include <stdio.h>

#include "lsl_internal.h"

const lsl_kernels lsl_kernels_portable = {.level = LSL_ISA_PORTABLE};
#if defined(LSL_HAVE_X86)
const lsl_kernels lsl_kernels_avx2 = {.level = LSL_ISA_AVX2};
#if defined(LSL_HAVE_AVXVNNI)
const lsl_kernels lsl_kernels_avx2_vnni = {.level = LSL_ISA_AVX2_VNNI};
#endif
const lsl_kernels lsl_kernels_avx512 = {.level = LSL_ISA_AVX512};
const lsl_kernels lsl_kernels_avx512_vnni = {.level = LSL_ISA_AVX512_VNNI};
#endif
#if defined(LSL_HAVE_NEON)
const lsl_kernels lsl_kernels_neon = {.level = LSL_ISA_NEON};
#if defined(LSL_HAVE_NEON_DOTPROD)
const lsl_kernels lsl_kernels_neon_dotprod = {.level = LSL_ISA_NEON_DOTPROD};
#endif
#endif

int main(void) {
    int level, env;
    printf("supported:");
    for (level = 0; level < LSL_ISA_COUNT; ++level)
        if (lsl_isa_supported(level)) printf(" %s", lsl_isa_name(level));
    printf(" | best: %s", lsl_isa_name(lsl_isa_best()));
    env = lsl_isa_from_env();
    printf(" | env: %d current: %s\n", env, lsl_isa_name(lsl_isa_current()));
    return 0;
}
