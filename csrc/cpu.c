/*
 * cpu.c -- which instruction sets this CPU has, and which level is in force.
 *
 * Detection asks cpuid and, for the wide registers, whether the OS saves them
 * (xgetbv), so a level is never chosen that would fault. NNCORE_ISA forces a
 * level (the tests use it to run every level the machine has).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__) || defined(_M_IX86)
#define NC_X86 1
#if defined(_MSC_VER)
#include <intrin.h>
static void nc_cpuid(int leaf, int sub, int r[4]) { __cpuidex(r, leaf, sub); }
static unsigned long long nc_xgetbv0(void) { return _xgetbv(0); }
#else
#include <cpuid.h>
static void nc_cpuid(int leaf, int sub, int r[4])
{
    unsigned a, b, c, d;
    __cpuid_count(leaf, sub, a, b, c, d);
    r[0] = (int)a; r[1] = (int)b; r[2] = (int)c; r[3] = (int)d;
}
static unsigned long long nc_xgetbv0(void)
{
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}
#endif
#endif

#if defined(__aarch64__) || defined(_M_ARM64)
#define NC_ARM64 1
#endif

nc_isa nc_active_isa_ = NC_ISA_REF;

static int cpu_has(nc_isa isa)
{
#ifdef NC_X86
    int r[4], max_leaf;
    unsigned long long xcr0;
    int osxsave, avx, fma, avx2, f, bw, dq, vl;
    nc_cpuid(0, 0, r);
    max_leaf = r[0];
    if (max_leaf < 7) return isa == NC_ISA_REF;
    nc_cpuid(1, 0, r);
    osxsave = (r[2] >> 27) & 1;
    avx = (r[2] >> 28) & 1;
    fma = (r[2] >> 12) & 1;
    nc_cpuid(7, 0, r);
    avx2 = (r[1] >> 5) & 1;
    f = (r[1] >> 16) & 1;
    dq = (r[1] >> 17) & 1;
    bw = (r[1] >> 30) & 1;
    vl = (r[1] >> 31) & 1;
    xcr0 = osxsave ? nc_xgetbv0() : 0;
    switch (isa) {
    case NC_ISA_REF: return 1;
    case NC_ISA_AVX2: /* XMM and YMM state saved by the OS */
        return osxsave && avx && fma && avx2 && (xcr0 & 0x6) == 0x6;
    case NC_ISA_AVX512: /* and opmask, ZMM_Hi256, Hi16_ZMM state */
        return osxsave && avx && fma && avx2 && f && dq && bw && vl && (xcr0 & 0xe6) == 0xe6;
    default: return 0;
    }
#elif defined(NC_ARM64)
    return isa == NC_ISA_REF || isa == NC_ISA_NEON; /* Advanced SIMD is mandatory on AArch64 */
#else
    return isa == NC_ISA_REF;
#endif
}

/* Whether this build compiled the level's kernels in (setup.py builds the
 * *_avx2 / *_avx512 files on x86-64 only, *_neon on aarch64 only). */
static int compiled_in(nc_isa isa)
{
    switch (isa) {
    case NC_ISA_REF: return 1;
#ifdef NC_X86
    case NC_ISA_AVX2: return 1;
    case NC_ISA_AVX512: return 1;
#endif
#ifdef NC_ARM64
    case NC_ISA_NEON: return 1;
#endif
    default: return 0;
    }
}

int nc_isa_available(nc_isa isa)
{
    return (unsigned)isa < NC_ISA_COUNT_ && compiled_in(isa) && cpu_has(isa);
}

nc_isa nc_isa_best(void)
{
    int isa;
    for (isa = NC_ISA_COUNT_ - 1; isa > 0; isa--)
        if (nc_isa_available((nc_isa)isa)) return (nc_isa)isa;
    return NC_ISA_REF;
}

const char *nc_isa_name(nc_isa isa)
{
    static const char *names[NC_ISA_COUNT_] = {"ref", "avx2", "avx512", "neon"};
    return (unsigned)isa < NC_ISA_COUNT_ ? names[isa] : "?";
}

nc_status nc_set_isa(nc_isa isa)
{
    if (!nc_isa_available(isa)) return NC_ERR_UNSUPPORTED;
    nc_active_isa_ = isa;
    return NC_OK;
}

nc_isa nc_get_isa(void) { return nc_active_isa_; }

nc_status nc_init(void)
{
    const char *want = getenv("NNCORE_ISA");
    int isa;
    if (want == NULL || want[0] == '\0') return nc_set_isa(nc_isa_best());
    for (isa = 0; isa < NC_ISA_COUNT_; isa++)
        if (strcmp(want, nc_isa_name((nc_isa)isa)) == 0) return nc_set_isa((nc_isa)isa);
    return NC_ERR_ARG;
}
