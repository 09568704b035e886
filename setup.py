"""Build the native runtime extension (``lstmlite.runtime._lsl``) at install time.

Everything else about the package lives in pyproject.toml; this file only declares
the C extension, so ``pip install -e .`` compiles it once and no compiler is needed
at run time.

The flags stay portable (no ``-march=native``): the AVX2 and AVX-512 kernels carry
``__attribute__((target(...)))`` and are chosen at run time by CPU detection, so one
build runs on every x86-64 CPU; on aarch64 the NEON kernels are plain Armv8.0 and the
dot-product ones carry ``target("arch=armv8.2-a+dotprod")``, chosen from HWCAP. Every
file is listed everywhere: an x86 kernel file compiles to nothing on aarch64 and the
NEON file to nothing on x86 (their bodies sit under LSL_HAVE_X86 / LSL_HAVE_NEON); other
CPUs get the portable kernels only.
"""

from __future__ import annotations

import sys

from setuptools import Extension, setup

RUNTIME = "src/lstmlite/runtime"
SOURCES = [
    f"{RUNTIME}/_lslmodule.c",
    f"{RUNTIME}/lsl_model.c",
    f"{RUNTIME}/lsl_matrix.c",
    f"{RUNTIME}/lsl_file.c",
    f"{RUNTIME}/lsl_isa.c",
    f"{RUNTIME}/lsl_kern_portable.c",
    f"{RUNTIME}/lsl_kern_avx2.c",
    f"{RUNTIME}/lsl_kern_avx2_vnni.c",
    f"{RUNTIME}/lsl_kern_avx512.c",
    f"{RUNTIME}/lsl_kern_avx512_sparse.c",
    f"{RUNTIME}/lsl_kern_neon.c",
    f"{RUNTIME}/lsl_sparse.c",
    f"{RUNTIME}/lsl_probe.c",
    f"{RUNTIME}/lsl_int.c",
    f"{RUNTIME}/lsl_parallel.c",
    f"{RUNTIME}/lsl_tflite.c",
]

if sys.platform == "win32":  # MSVC: no target attributes, portable kernels only
    compile_args = ["/O2", "/DLSL_NO_SIMD"]
else:
    # -ffp-contract=off: the portable kernels must not have FMAs fused in by the
    # compiler on some targets and not others; the SIMD kernels use FMA explicitly.
    compile_args = ["-O3", "-std=c99", "-fno-strict-aliasing", "-ffp-contract=off", "-fno-math-errno", "-pthread"]

setup(
    ext_modules=[
        Extension(
            "lstmlite.runtime._lsl",
            sources=SOURCES,
            include_dirs=[RUNTIME],
            depends=[f"{RUNTIME}/lsl.h", f"{RUNTIME}/lsl_internal.h", f"{RUNTIME}/lsl_kern_avx512.h",
                     f"{RUNTIME}/lsl_kern_avx2.h", f"{RUNTIME}/lsl_fastmath.h", f"{RUNTIME}/lsl_tflite.h"],
            extra_compile_args=compile_args,
            extra_link_args=[] if sys.platform == "win32" else ["-pthread"],
        )
    ]
)
