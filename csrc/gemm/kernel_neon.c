/*
 * gemm/kernel_neon.c -- aarch64 Advanced SIMD micro-kernels (compiled on
 * aarch64 only).
 *
 * float: 8 x 12 tile (24 q accumulators, 3 for the B row, 1 broadcast);
 * double: 6 x 8 tile (24 accumulators of 2 lanes, 4 for the B row).
 * NEON has no masked loads, so the unpacked kernel handles the last
 * columns that do not fill a vector with scalar fused multiply-adds, which
 * round exactly as the vector lanes do (one fma per term, then
 * alpha*ab and fma(beta, c, .)): an element's bits never depend on where its
 * tile lies.
 */
#include <math.h>

#include "../internal.h"
#include "kernels.h"

#if defined(NC_GEMM_ARM64)
#include <arm_neon.h>

/* ---------------------------------------------------------------- float */

#define F32_MR 8
#define F32_NV 3 /* NR = 12 */

/* R x (4V) tile, R <= 8, V <= 3; a[i*ars + p*acs], b[p*ldb + j]; all 4V
 * columns are read, the first `cols` written (cols < 4V only when packed). */
NC_AINLINE void tile_f32(const int R, const int V, size_t k, const float *a, size_t ars,
                         size_t acs, const float *b, size_t ldb, float alpha, float beta,
                         float *c, size_t ldc, size_t rows, size_t cols)
{
    float32x4_t acc[F32_MR][F32_NV], bv[F32_NV];
    int i, v;
    size_t p, j;
#pragma GCC unroll 8
    for (i = 0; i < R; i++)
#pragma GCC unroll 4
        for (v = 0; v < V; v++) acc[i][v] = vdupq_n_f32(0.0f);
    for (p = 0; p < k; p++) {
        const float *bp = b + p * ldb, *ap = a + p * acs;
#pragma GCC unroll 4
        for (v = 0; v < V; v++) bv[v] = vld1q_f32(bp + 4 * v);
#pragma GCC unroll 8
        for (i = 0; i < R; i++) {
            float32x4_t ai = vdupq_n_f32(ap[i * ars]);
#pragma GCC unroll 4
            for (v = 0; v < V; v++) acc[i][v] = vfmaq_f32(acc[i][v], bv[v], ai);
        }
    }
    for (i = 0; i < R; i++) {
        float *ci = c + i * ldc;
        if ((size_t)i >= rows) break;
        if (cols == (size_t)(4 * V)) {
            for (v = 0; v < V; v++) {
                float32x4_t r = vmulq_n_f32(acc[i][v], alpha);
                if (beta != 0) r = vfmaq_n_f32(r, vld1q_f32(ci + 4 * v), beta);
                vst1q_f32(ci + 4 * v, r);
            }
        } else {
            float t[4 * F32_NV];
            for (v = 0; v < V; v++) vst1q_f32(t + 4 * v, acc[i][v]);
            for (j = 0; j < cols; j++)
                ci[j] = beta != 0 ? fmaf(beta, ci[j], alpha * t[j]) : alpha * t[j];
        }
    }
}

static void ukr_f32(size_t k, const float *a, const float *b, float *c, size_t ldc,
                    float alpha, float beta, size_t mr, size_t nr)
{
    tile_f32(F32_MR, F32_NV, k, a, 1, F32_MR, b, 4 * F32_NV, alpha, beta, c, ldc, mr, nr);
}

/* The last n < 4 columns of the unpacked product, one scalar chain each. */
static void tail_f32(size_t m, size_t n, size_t k, float alpha, const float *a, size_t ars,
                     size_t acs, const float *b, size_t ldb, float beta, float *c, size_t ldc)
{
    size_t i, j, p;
    for (i = 0; i < m; i++)
        for (j = 0; j < n; j++) {
            float s = 0.0f;
            for (p = 0; p < k; p++) s = fmaf(a[i * ars + p * acs], b[p * ldb + j], s);
            c[i * ldc + j] = beta != 0 ? fmaf(beta, c[i * ldc + j], alpha * s) : alpha * s;
        }
}

NC_AINLINE void strip_f32(const int V, size_t m, size_t k, float alpha, const float *a,
                          size_t ars, size_t acs, const float *b, size_t ldb, float beta,
                          float *c, size_t ldc)
{
    size_t i0;
    for (i0 = 0; i0 < m; i0 += F32_MR) {
        size_t r = NC_MIN((size_t)F32_MR, m - i0);
        const float *ai = a + i0 * ars;
        float *ci = c + i0 * ldc;
#define NC_CASE(n) case n: tile_f32(n, V, k, ai, ars, acs, b, ldb, alpha, beta, ci, ldc, n, 4 * V); break;
        switch (r) {
        NC_CASE(1) NC_CASE(2) NC_CASE(3) NC_CASE(4) NC_CASE(5) NC_CASE(6) NC_CASE(7) NC_CASE(8)
        default: break;
        }
#undef NC_CASE
    }
}

static void small_f32(size_t m, size_t n, size_t k, float alpha, const float *a, size_t ars,
                      size_t acs, const float *b, size_t ldb, float beta, float *c, size_t ldc)
{
    size_t j0 = 0;
    for (; j0 + 4 * F32_NV <= n; j0 += 4 * F32_NV)
        strip_f32(F32_NV, m, k, alpha, a, ars, acs, b + j0, ldb, beta, c + j0, ldc);
    for (; j0 + 4 <= n; j0 += 4)
        strip_f32(1, m, k, alpha, a, ars, acs, b + j0, ldb, beta, c + j0, ldc);
    if (j0 < n) tail_f32(m, n - j0, k, alpha, a, ars, acs, b + j0, ldb, beta, c + j0, ldc);
}

/* --------------------------------------------------------------- double */

#define F64_MR 6
#define F64_NV 4 /* NR = 8 */

NC_AINLINE void tile_f64(const int R, const int V, size_t k, const double *a, size_t ars,
                         size_t acs, const double *b, size_t ldb, double alpha, double beta,
                         double *c, size_t ldc, size_t rows, size_t cols)
{
    float64x2_t acc[F64_MR][F64_NV], bv[F64_NV];
    int i, v;
    size_t p, j;
#pragma GCC unroll 8
    for (i = 0; i < R; i++)
#pragma GCC unroll 4
        for (v = 0; v < V; v++) acc[i][v] = vdupq_n_f64(0.0);
    for (p = 0; p < k; p++) {
        const double *bp = b + p * ldb, *ap = a + p * acs;
#pragma GCC unroll 4
        for (v = 0; v < V; v++) bv[v] = vld1q_f64(bp + 2 * v);
#pragma GCC unroll 8
        for (i = 0; i < R; i++) {
            float64x2_t ai = vdupq_n_f64(ap[i * ars]);
#pragma GCC unroll 4
            for (v = 0; v < V; v++) acc[i][v] = vfmaq_f64(acc[i][v], bv[v], ai);
        }
    }
    for (i = 0; i < R; i++) {
        double *ci = c + i * ldc;
        if ((size_t)i >= rows) break;
        if (cols == (size_t)(2 * V)) {
            for (v = 0; v < V; v++) {
                float64x2_t r = vmulq_n_f64(acc[i][v], alpha);
                if (beta != 0) r = vfmaq_n_f64(r, vld1q_f64(ci + 2 * v), beta);
                vst1q_f64(ci + 2 * v, r);
            }
        } else {
            double t[2 * F64_NV];
            for (v = 0; v < V; v++) vst1q_f64(t + 2 * v, acc[i][v]);
            for (j = 0; j < cols; j++)
                ci[j] = beta != 0 ? fma(beta, ci[j], alpha * t[j]) : alpha * t[j];
        }
    }
}

static void ukr_f64(size_t k, const double *a, const double *b, double *c, size_t ldc,
                    double alpha, double beta, size_t mr, size_t nr)
{
    tile_f64(F64_MR, F64_NV, k, a, 1, F64_MR, b, 2 * F64_NV, alpha, beta, c, ldc, mr, nr);
}

static void tail_f64(size_t m, size_t n, size_t k, double alpha, const double *a, size_t ars,
                     size_t acs, const double *b, size_t ldb, double beta, double *c, size_t ldc)
{
    size_t i, j, p;
    for (i = 0; i < m; i++)
        for (j = 0; j < n; j++) {
            double s = 0.0;
            for (p = 0; p < k; p++) s = fma(a[i * ars + p * acs], b[p * ldb + j], s);
            c[i * ldc + j] = beta != 0 ? fma(beta, c[i * ldc + j], alpha * s) : alpha * s;
        }
}

NC_AINLINE void strip_f64(const int V, size_t m, size_t k, double alpha, const double *a,
                          size_t ars, size_t acs, const double *b, size_t ldb, double beta,
                          double *c, size_t ldc)
{
    size_t i0;
    for (i0 = 0; i0 < m; i0 += F64_MR) {
        size_t r = NC_MIN((size_t)F64_MR, m - i0);
        const double *ai = a + i0 * ars;
        double *ci = c + i0 * ldc;
#define NC_CASE(n) case n: tile_f64(n, V, k, ai, ars, acs, b, ldb, alpha, beta, ci, ldc, n, 2 * V); break;
        switch (r) {
        NC_CASE(1) NC_CASE(2) NC_CASE(3) NC_CASE(4) NC_CASE(5) NC_CASE(6)
        default: break;
        }
#undef NC_CASE
    }
}

static void small_f64(size_t m, size_t n, size_t k, double alpha, const double *a, size_t ars,
                      size_t acs, const double *b, size_t ldb, double beta, double *c, size_t ldc)
{
    size_t j0 = 0;
    for (; j0 + 2 * F64_NV <= n; j0 += 2 * F64_NV)
        strip_f64(F64_NV, m, k, alpha, a, ars, acs, b + j0, ldb, beta, c + j0, ldc);
    for (; j0 + 2 <= n; j0 += 2)
        strip_f64(1, m, k, alpha, a, ars, acs, b + j0, ldb, beta, c + j0, ldc);
    if (j0 < n) tail_f64(m, n - j0, k, alpha, a, ars, acs, b + j0, ldb, beta, c + j0, ldc);
}

/* Block sizes for a typical aarch64 core (64 KiB L1d, 1 MiB L2); untuned. */
/*                                    ukr      small      MR  NR  MC   KC   NC */
const nc_gemm_cfg_f32 nc_gemm_neon_f32 = {ukr_f32, small_f32, 8, 12, 128, 256, 2040, NULL};
const nc_gemm_cfg_f64 nc_gemm_neon_f64 = {ukr_f64, small_f64, 6, 8, 96, 256, 1024, NULL};

#endif
