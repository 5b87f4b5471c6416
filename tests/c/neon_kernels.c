/*
 * neon_kernels.c -- checks csrc/gemm/kernel_neon.c's micro-kernels bit for
 * bit against scalar fused multiply-add chains (the kernels' contract: one
 * chain per element in increasing k, then alpha*ab and fma(beta, c, .)).
 * On aarch64 it runs the real intrinsics; elsewhere run.sh builds the kernel
 * file against neon_shim/arm_neon.h. Returns non-zero on failure.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm/kernels.h"

extern const nc_gemm_cfg_f32 nc_gemm_neon_f32;
extern const nc_gemm_cfg_f64 nc_gemm_neon_f64;

static unsigned long long s_ = 0x9E3779B97F4A7C15ULL;
static double urand(void)
{
    s_ ^= s_ << 13; s_ ^= s_ >> 7; s_ ^= s_ << 17;
    return (double)(s_ >> 11) / 4503599627370496.0 - 1.0;
}

#define DEFINE_CHECKS(T, FMA, CFG, TAG)                                                      \
static int check_small_##TAG(size_t m, size_t n, size_t k, T alpha, T beta, int ta)         \
{                                                                                            \
    size_t lda = (ta ? m : k) + 3, ldb = n + 2, ldc = n + 5, i, j, p, bad = 0;               \
    size_t ars = ta ? 1 : lda, acs = ta ? lda : 1;                                           \
    size_t na = (ta ? k : m) * lda, nb = k * ldb, nc = m * ldc;                              \
    T *a = malloc(na * sizeof(T) + 1), *b = malloc(nb * sizeof(T) + 1);                      \
    T *c = malloc(nc * sizeof(T)), *w = malloc(nc * sizeof(T));                              \
    for (i = 0; i < na; i++) a[i] = (T)urand();                                              \
    for (i = 0; i < nb; i++) b[i] = (T)urand();                                              \
    for (i = 0; i < nc; i++) c[i] = w[i] = (T)urand();                                       \
    for (i = 0; i < m; i++)                                                                  \
        for (j = 0; j < n; j++) {                                                            \
            T s = 0;                                                                         \
            for (p = 0; p < k; p++) s = FMA(a[i * ars + p * acs], b[p * ldb + j], s);       \
            w[i * ldc + j] = beta != 0 ? FMA(beta, w[i * ldc + j], alpha * s) : alpha * s;   \
        }                                                                                    \
    CFG.small(m, n, k, alpha, a, ars, acs, b, ldb, beta, c, ldc);                            \
    if (memcmp(c, w, nc * sizeof(T)) != 0) {                                                 \
        printf("FAIL neon small " #TAG " m=%zu n=%zu k=%zu ta=%d\n", m, n, k, ta);         \
        bad = 1;                                                                             \
    }                                                                                        \
    free(a); free(b); free(c); free(w);                                                      \
    return (int)bad;                                                                         \
}                                                                                            \
static int check_ukr_##TAG(size_t mr, size_t nr, size_t k, T alpha, T beta)                 \
{                                                                                            \
    size_t MR = CFG.mr, NR = CFG.nr, ldc = NR + 3, i, j, p, bad = 0;                         \
    T *a = malloc(MR * k * sizeof(T)), *b = malloc(NR * k * sizeof(T));                      \
    T *c = malloc(MR * ldc * sizeof(T)), *w = malloc(MR * ldc * sizeof(T));                  \
    for (i = 0; i < MR * k; i++) a[i] = (T)urand();                                          \
    for (i = 0; i < NR * k; i++) b[i] = (T)urand();                                          \
    for (i = 0; i < MR * ldc; i++) c[i] = w[i] = (T)urand();                                 \
    for (i = 0; i < mr; i++)                                                                 \
        for (j = 0; j < nr; j++) {                                                           \
            T s = 0;                                                                         \
            for (p = 0; p < k; p++) s = FMA(a[p * MR + i], b[p * NR + j], s);                \
            w[i * ldc + j] = beta != 0 ? FMA(beta, w[i * ldc + j], alpha * s) : alpha * s;   \
        }                                                                                    \
    CFG.ukr(k, a, b, c, ldc, alpha, beta, mr, nr);                                           \
    if (memcmp(c, w, MR * ldc * sizeof(T)) != 0) {                                           \
        printf("FAIL neon ukr " #TAG " mr=%zu nr=%zu k=%zu\n", mr, nr, k);                 \
        bad = 1;                                                                             \
    }                                                                                        \
    free(a); free(b); free(c); free(w);                                                      \
    return (int)bad;                                                                         \
}

DEFINE_CHECKS(float, fmaf, nc_gemm_neon_f32, f32)
DEFINE_CHECKS(double, fma, nc_gemm_neon_f64, f64)

int main(void)
{
    static const size_t sizes[] = {1, 2, 3, 5, 7, 8, 9, 12, 13, 17, 25, 40};
    size_t i, j, l, ns = sizeof sizes / sizeof sizes[0];
    int fails = 0, ta, checks = 0;
    for (i = 0; i < ns; i++)
        for (j = 0; j < ns; j++)
            for (l = 0; l < 3; l++)
                for (ta = 0; ta < 2; ta++, checks += 2) {
                    fails += check_small_f32(sizes[i], sizes[j], sizes[l * 4 + 1], 0.5f, ta ? 1.5f : 0.0f, ta);
                    fails += check_small_f64(sizes[i], sizes[j], sizes[l * 4 + 1], 0.5, ta ? 1.5 : 0.0, ta);
                }
    for (i = 1; i <= nc_gemm_neon_f32.mr; i++)
        for (j = 1; j <= nc_gemm_neon_f32.nr; j++, checks++)
            fails += check_ukr_f32(i, j, 1 + (i * j) % 37, -1.25f, (i + j) % 2 ? 0.0f : 0.75f);
    for (i = 1; i <= nc_gemm_neon_f64.mr; i++)
        for (j = 1; j <= nc_gemm_neon_f64.nr; j++, checks++)
            fails += check_ukr_f64(i, j, 1 + (i * j) % 37, -1.25, (i + j) % 2 ? 0.0 : 0.75);
    printf("neon kernels: %d checks, %d failures\n", checks, fails);
    return fails != 0;
}
