/*
 * hide_avx512.c -- make a process see an x86-64 CPU without AVX-512, so every engine in
 * it (ONNX Runtime, PyTorch, LiteRT, lstmlite) picks the kernels it would pick on an
 * AVX2-only CPU. Loaded with LD_PRELOAD (benchmarks/avx2_view.py builds and loads it);
 * x86-64 Linux only.
 *
 * How: libraries choose kernels by the cpuid instruction. Linux's CPUID faulting
 * (arch_prctl(ARCH_SET_CPUID, 0); /proc/cpuinfo flag `cpuid_fault`) makes cpuid trap
 * in this thread and every thread or child it starts (until execve, after which the
 * preload sets it again). The SIGSEGV handler below runs the real cpuid with
 * faulting briefly off, clears the AVX-512 feature bits (leaf 7: F, DQ, IFMA, PF, ER,
 * CD, BW, VL, VBMI, VBMI2, VNNI, BITALG, VPOPCNTDQ, 4VNNIW, 4FMAPS, VP2INTERSECT, FP16,
 * BF16), and resumes after the instruction. AVX2, FMA and AVX-VNNI are left as they
 * are. Speed is that of this core's AVX2 units; only the choice of kernels changes.
 *
 * A library that installs its own SIGSEGV handler later (Python's faulthandler, which
 * pytest enables) would take the trap and turn the next cpuid into a crash, so this
 * library also provides sigaction(): a SIGSEGV handler installed through it is kept
 * and called for every fault that is not a trapped cpuid, and reported back as the
 * current one; signal() too (GCC's cc1 installs its handler with it). Limits, said plainly: a library that asks the OS
 * (xgetbv) without asking cpuid first would still see AVX-512 state enabled (none of
 * the peers does). Without CPUID faulting the process stops at start-up with a
 * message: never a silent full view.
 *
 *   cc -O2 -shared -fPIC -o hide_avx512.so benchmarks/c/hide_avx512.c -ldl
 *   LD_PRELOAD=$PWD/hide_avx512.so python -c "import torch; print(torch.backends.cpu.get_cpu_capability())"
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <dlfcn.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#ifndef ARCH_SET_CPUID
#define ARCH_SET_CPUID 0x1012 /* <asm/prctl.h>, Linux 4.12 */
#endif

/* on = 1: cpuid traps (SIGSEGV); on = 0: it runs. */
static long cpuid_faulting(int on) { return syscall(SYS_arch_prctl, ARCH_SET_CPUID, on ? 0 : 1); }

static void clear_avx512(unsigned leaf, unsigned sub, unsigned *a, unsigned *b, unsigned *c, unsigned *d) {
    if (leaf == 7 && sub == 0) {
        *b &= ~((1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) | (1u << 30) |
                (1u << 31));
        *c &= ~((1u << 1) | (1u << 6) | (1u << 11) | (1u << 12) | (1u << 14));
        *d &= ~((1u << 2) | (1u << 3) | (1u << 8) | (1u << 23));
    } else if (leaf == 7 && sub == 1) {
        *a &= ~(1u << 5); /* AVX512_BF16 (bit 4, AVX-VNNI, stays) */
    }
}

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);
static sigaction_fn real_sigaction;
/* The SIGSEGV handler the process installed after this library (SIG_DFL until then). */
static struct sigaction chained;

static void on_sigsegv(int sig, siginfo_t *info, void *context) {
    ucontext_t *uc = (ucontext_t *)context;
    greg_t *r = uc->uc_mcontext.gregs;
    const unsigned char *ip = (const unsigned char *)r[REG_RIP];
    unsigned a, b, c, d, leaf, sub;
    /* A trapped cpuid is a general-protection fault (SI_KERNEL) at the 0F A2 opcode;
     * anything else is a real fault: the process's own handler, or the default action
     * (the instruction faults again and the process dies as it would have). */
    if (info->si_code != SI_KERNEL || ip[0] != 0x0f || ip[1] != 0xa2) {
        if (chained.sa_flags & SA_SIGINFO) {
            chained.sa_sigaction(sig, info, context);
        } else if (chained.sa_handler != SIG_DFL && chained.sa_handler != SIG_IGN) {
            chained.sa_handler(sig);
        } else {
            struct sigaction dfl;
            memset(&dfl, 0, sizeof dfl);
            dfl.sa_handler = SIG_DFL;
            real_sigaction(SIGSEGV, &dfl, NULL);
        }
        return;
    }
    leaf = (unsigned)r[REG_RAX];
    sub = (unsigned)r[REG_RCX];
    cpuid_faulting(0);
    __cpuid_count(leaf, sub, a, b, c, d);
    cpuid_faulting(1);
    clear_avx512(leaf, sub, &a, &b, &c, &d);
    r[REG_RAX] = a;
    r[REG_RBX] = b;
    r[REG_RCX] = c;
    r[REG_RDX] = d;
    r[REG_RIP] += 2;
}

/* The process's sigaction and signal: SIGSEGV handlers are kept for on_sigsegv to
 * call, the rest pass through. (GCC's cc1 installs its SIGSEGV handler with signal().) */
int sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
    if (!real_sigaction) real_sigaction = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
    if (sig != SIGSEGV) return real_sigaction(sig, act, old);
    if (old) *old = chained;
    if (act) chained = *act;
    return 0;
}

sighandler_t signal(int sig, sighandler_t handler) {
    struct sigaction act, old;
    memset(&act, 0, sizeof act);
    act.sa_handler = handler;
    act.sa_flags = SA_RESTART; /* glibc's signal() gives BSD semantics */
    sigemptyset(&act.sa_mask);
    if (sigaction(sig, &act, &old) != 0) return SIG_ERR;
    return (old.sa_flags & SA_SIGINFO) ? (sighandler_t)old.sa_sigaction : old.sa_handler;
}

__attribute__((constructor)) static void hide_avx512(void) {
    static const char msg[] =
        "hide_avx512: this kernel or CPU has no CPUID faulting (arch_prctl ARCH_SET_CPUID failed; "
        "/proc/cpuinfo lacks cpuid_fault), so AVX-512 cannot be hidden\n";
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    memset(&chained, 0, sizeof chained);
    chained.sa_handler = SIG_DFL;
    sa.sa_sigaction = on_sigsegv;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER; /* NODEFER: a chained handler may fault again */
    sigemptyset(&sa.sa_mask);
    real_sigaction = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
    if (!real_sigaction || real_sigaction(SIGSEGV, &sa, NULL) != 0 || cpuid_faulting(1) != 0) {
        if (write(2, msg, sizeof msg - 1) < 0) { /* nothing more to say */
        }
        _exit(111);
    }
}
