/*
 * hide_avx512.c -- make a process see an x86-64 CPU without AVX-512, so every engine in
 * it (ONNX Runtime, PyTorch, LiteRT, lstmlite) picks the kernels it would pick on an
 * AVX2-only CPU. Loaded with LD_PRELOAD (benchmarks/avx2_view.py builds and loads it);
 * x86-64 Linux only.
 *
 * How: libraries choose kernels by the cpuid instruction. Linux's CPUID faulting
 * (arch_prctl(ARCH_SET_CPUID, 0); /proc/cpuinfo flag `cpuid_fault`) makes cpuid trap in
 * this thread and every thread or process it forks. The SIGSEGV handler below runs the
 * real cpuid with faulting briefly off, clears the AVX-512 feature bits (leaf 7: F, DQ,
 * IFMA, PF, ER, CD, BW, VL, VBMI, VBMI2, VNNI, BITALG, VPOPCNTDQ, 4VNNIW, 4FMAPS,
 * VP2INTERSECT, FP16, BF16, AVX10) and AMX's (an AVX2-only CPU has none), then the
 * 256-bit extensions that came after AVX2 (leaf 7 subleaf 1: AVX-VNNI, AVX-IFMA,
 * AVX-VNNI-INT8, AVX-NE-CONVERT, AVX-VNNI-INT16), and resumes after the instruction: an
 * Intel CPU with AVX-VNNI then looks like an AVX2-only one (Haswell to Comet Lake, AMD's
 * Zen 1 to 4) as well. With LSTMLITE_AVX2_VIEW_KEEP_AVX_VNNI=1 in the environment those
 * stay visible: the CPU looks like an AVX2 + AVX-VNNI one without AVX-512 (Alder Lake
 * and later client cores). AVX2 and FMA always stay. Speed is that of this core's
 * units; only the choice of kernels changes.
 *
 * A library that installs its own SIGSEGV handler later (Python's faulthandler, which
 * pytest enables; GCC's cc1) would take the trap and turn the next cpuid into a crash,
 * so this library provides sigaction(), signal() and bsd_signal(): a SIGSEGV handler
 * installed through them is kept and called, with its flags and mask, for every
 * SIGSEGV that is not a trapped cpuid, and reported back as the current one.
 *
 * Limits, said plainly -- these see the real CPU: a program started without this
 * preload (a statically linked one, or one whose environment drops LD_PRELOAD: the
 * kernel turns CPUID faulting off at execve); constructors of libraries a program links
 * directly, which run before this one (Python dlopens its extensions, so not there); a
 * library that asks the OS (xgetbv) without asking cpuid first (none of the peers
 * does). A handler installed with sigset(), sysv_signal() or the raw rt_sigaction
 * system call replaces the trap. Without CPUID faulting the process stops at start-up
 * with a message, never a silent full view.
 *
 *   cc -O2 -shared -fPIC -o hide_avx512.so benchmarks/c/hide_avx512.c -ldl
 *   LD_PRELOAD=$PWD/hide_avx512.so python -c "import torch; print(torch.backends.cpu.get_cpu_capability())"
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <dlfcn.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#ifndef ARCH_SET_CPUID
#define ARCH_SET_CPUID 0x1012 /* <asm/prctl.h>, Linux 4.12 */
#endif

static void say(const char *msg) {
    if (write(2, msg, strlen(msg)) < 0) { /* nothing more to say */
    }
}

/* on = 1: cpuid traps (SIGSEGV); on = 0: it runs. */
static long cpuid_faulting(int on) { return syscall(SYS_arch_prctl, ARCH_SET_CPUID, on ? 0 : 1); }

/* 1 unless LSTMLITE_AVX2_VIEW_KEEP_AVX_VNNI=1: the post-AVX2 256-bit extensions are hidden
 * too (set once, in the constructor, before cpuid traps) */
static int hide_avx_vnni = 1;

static void clear_avx512(unsigned leaf, unsigned sub, unsigned *a, unsigned *b, unsigned *c, unsigned *d) {
    if (leaf == 7 && sub == 0) {
        /* EBX: AVX512F 16, DQ 17, IFMA 21, PF 26, ER 27, CD 28, BW 30, VL 31 */
        *b &= ~((1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) | (1u << 30) |
                (1u << 31));
        /* ECX: VBMI 1, VBMI2 6, VNNI 11, BITALG 12, VPOPCNTDQ 14 */
        *c &= ~((1u << 1) | (1u << 6) | (1u << 11) | (1u << 12) | (1u << 14));
        /* EDX: 4VNNIW 2, 4FMAPS 3, VP2INTERSECT 8, AMX-BF16 22, FP16 23, AMX-TILE 24, AMX-INT8 25 */
        *d &= ~((1u << 2) | (1u << 3) | (1u << 8) | (1u << 22) | (1u << 23) | (1u << 24) | (1u << 25));
    } else if (leaf == 7 && sub == 1) {
        *a &= ~(1u << 5);  /* AVX512_BF16 */
        *d &= ~(1u << 19); /* AVX10 (its leaf 0x24 is then not asked) */
        if (hide_avx_vnni) {
            *a &= ~((1u << 4) | (1u << 23));                /* AVX-VNNI, AVX-IFMA */
            *d &= ~((1u << 4) | (1u << 5) | (1u << 10));    /* AVX-VNNI-INT8, AVX-NE-CONVERT, AVX-VNNI-INT16 */
        }
    }
}

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);
typedef sighandler_t (*signal_fn)(int, sighandler_t);
static sigaction_fn real_sigaction;
/* The process's own SIGSEGV disposition (what it installed before or after this
 * library; SIG_DFL when nothing), and whether it was set through the interposers. */
static struct sigaction chained;
static int chained_set;

static void resolve(void) {
    if (!real_sigaction) real_sigaction = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
}

static void die_by_default(int sig, int fault) {
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    real_sigaction(sig, &dfl, NULL);
    /* a fault re-executes its instruction on return and dies there; a sent signal is
     * sent again */
    if (!fault) raise(sig);
}

/* A SIGSEGV that is not a trapped cpuid, handled as the process asked. */
static void pass_on(int sig, siginfo_t *info, void *context) {
    const int fault = info->si_code > 0; /* raised by the kernel (not kill / raise) */
    struct sigaction h = chained;
    sigset_t mask;
    if (h.sa_handler == SIG_IGN && !fault) return;
    if (h.sa_handler == SIG_DFL || h.sa_handler == SIG_IGN) { /* a fault cannot be ignored */
        die_by_default(sig, fault);
        return;
    }
    if (h.sa_flags & SA_RESETHAND) {
        memset(&chained, 0, sizeof chained);
        chained.sa_handler = SIG_DFL;
    }
    /* the mask the kernel would have set for that handler (restored when we return) */
    mask = h.sa_mask;
    if (!(h.sa_flags & SA_NODEFER)) sigaddset(&mask, sig);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    if (h.sa_flags & SA_SIGINFO)
        h.sa_sigaction(sig, info, context);
    else
        h.sa_handler(sig);
}

static void on_sigsegv(int sig, siginfo_t *info, void *context) {
    ucontext_t *uc = (ucontext_t *)context;
    greg_t *r = uc->uc_mcontext.gregs;
    const unsigned char *ip = (const unsigned char *)r[REG_RIP];
    unsigned a, b, c, d, leaf, sub;
    /* A trapped cpuid is a general-protection fault (SI_KERNEL) at the 0F A2 opcode
     * (compilers emit it without prefixes); the si_code test comes first, so a wild
     * jump (SEGV_MAPERR) never reads its address. */
    if (info->si_code != SI_KERNEL || ip[0] != 0x0f || ip[1] != 0xa2) {
        pass_on(sig, info, context);
        return;
    }
    leaf = (unsigned)r[REG_RAX];
    sub = (unsigned)r[REG_RCX];
    if (cpuid_faulting(0) != 0) { /* e.g. a seccomp filter: the cpuid below would trap again */
        say("hide_avx512: arch_prctl(ARCH_SET_CPUID) refused inside the process; cannot answer cpuid\n");
        abort();
    }
    __cpuid_count(leaf, sub, a, b, c, d);
    cpuid_faulting(1);
    clear_avx512(leaf, sub, &a, &b, &c, &d);
    r[REG_RAX] = a; /* unsigned to greg_t: the upper halves zeroed, as cpuid does */
    r[REG_RBX] = b;
    r[REG_RCX] = c;
    r[REG_RDX] = d;
    r[REG_RIP] += 2;
}

/* The process's sigaction, signal and bsd_signal: SIGSEGV dispositions are kept for
 * on_sigsegv, everything else passes through. */
int sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
    resolve();
    if (sig != SIGSEGV) return real_sigaction(sig, act, old);
    if (old) *old = chained;
    if (act) {
        chained = *act;
        chained_set = 1;
    }
    return 0;
}

sighandler_t signal(int sig, sighandler_t handler) {
    struct sigaction act, old;
    if (sig != SIGSEGV) {
        static signal_fn real_signal;
        if (!real_signal) real_signal = (signal_fn)dlsym(RTLD_NEXT, "signal");
        return real_signal(sig, handler);
    }
    memset(&act, 0, sizeof act);
    act.sa_handler = handler;
    act.sa_flags = SA_RESTART; /* glibc's signal(): BSD semantics */
    sigemptyset(&act.sa_mask);
    sigaction(sig, &act, &old);
    return (old.sa_flags & SA_SIGINFO) ? (sighandler_t)old.sa_sigaction : old.sa_handler;
}

sighandler_t bsd_signal(int sig, sighandler_t handler) { return signal(sig, handler); }

__attribute__((constructor)) static void hide_avx512(void) {
    struct sigaction sa, before;
    const char *keep = getenv("LSTMLITE_AVX2_VIEW_KEEP_AVX_VNNI");
    hide_avx_vnni = !(keep && strcmp(keep, "1") == 0);
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigsegv;
    /* ONSTACK: a stack-overflow handler the process set up (sigaltstack) still gets its
     * stack; NODEFER: a chained handler may run cpuid or fault again */
    sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    resolve();
    if (!real_sigaction || real_sigaction(SIGSEGV, &sa, &before) != 0 || cpuid_faulting(1) != 0) {
        say("hide_avx512: this kernel or CPU has no CPUID faulting (arch_prctl ARCH_SET_CPUID failed; "
            "/proc/cpuinfo lacks cpuid_fault), so AVX-512 cannot be hidden\n");
        _exit(111);
    }
    if (!chained_set) chained = before; /* a handler installed before the preload ran */
}
