/*
 * gemm/kernels.h -- the contract between the GEMM framework (frame_impl.h)
 * and the per-ISA micro-kernels (kernel_<isa>.c).
 *
 * Row-major throughout. A level supplies, per precision, two kernels and its
 * block sizes:
 *
 *   ukr   the packed micro-kernel. a is an MR-row micro-panel of op(A),
 *         packed column after column (a[p*MR + i] = op(A)(i, p)); b is an
 *         NR-column micro-panel of op(B), packed row after row (b[p*NR + j]).
 *         b is 64-byte aligned (aligned vector loads are fine), a only to
 *         its element; both are zero-padded past the matrix edge.
 *         Computes AB = sum over p = 0..k-1, in that order, of a(:,p) b(p,:)
 *         and writes the top-left mr x nr corner (1 <= mr <= MR,
 *         1 <= nr <= NR, k >= 1) of
 *             C = alpha AB + beta C      (beta == 0: C = alpha AB, C not read).
 *         Every element is summed by its own chain in increasing p: the value
 *         of an element never depends on mr, nr or where the tile lies, which
 *         is what makes results independent of the thread split.
 *
 *   small the unpacked kernel for small and skinny products: the whole
 *         m x n x k product (m, n, k >= 1), C = alpha op(A) op(B) + beta C,
 *         where op(A)(i, p) = a[i*ars + p*acs] and op(B)(p, j) = b[p*ldb + j]
 *         (the framework packs a transposed B first). Each element again is
 *         one chain in increasing p.
 *
 * Block sizes (BLIS names): MC x KC panels of A (in L2), KC x NC panels of B
 * (in L3), MC a multiple of MR and NC of NR.
 */
#ifndef NC_GEMM_KERNELS_H
#define NC_GEMM_KERNELS_H

#include <stddef.h>

typedef void (*nc_sukr_fn)(size_t k, const float *a, const float *b, float *c, size_t ldc,
                           float alpha, float beta, size_t mr, size_t nr);
typedef void (*nc_dukr_fn)(size_t k, const double *a, const double *b, double *c, size_t ldc,
                           double alpha, double beta, size_t mr, size_t nr);
typedef void (*nc_ssmall_fn)(size_t m, size_t n, size_t k, float alpha,
                             const float *a, size_t ars, size_t acs,
                             const float *b, size_t ldb, float beta, float *c, size_t ldc);
typedef void (*nc_dsmall_fn)(size_t m, size_t n, size_t k, double alpha,
                             const double *a, size_t ars, size_t acs,
                             const double *b, size_t ldb, double beta, double *c, size_t ldc);

/*
 * transpose (optional; NULL: the framework's portable loop) packs one
 * micro-panel from rows read along their length:
 *   dst[p*w + r] = src[r*ld + p]  for r < rows, p < kc;  0 for rows <= r < w.
 * It serves op(A) untransposed and op(B) transposed; it only moves data.
 */
typedef void (*nc_stranspose_fn)(const float *src, size_t ld, size_t rows, size_t kc,
                                  size_t w, float *dst);
typedef void (*nc_dtranspose_fn)(const double *src, size_t ld, size_t rows, size_t kc,
                                  size_t w, double *dst);

typedef struct nc_gemm_cfg_f32 {
    nc_sukr_fn ukr;
    nc_ssmall_fn small;
    size_t mr, nr, mc, kc, nc;
    nc_stranspose_fn transpose;
} nc_gemm_cfg_f32;

typedef struct nc_gemm_cfg_f64 {
    nc_dukr_fn ukr;
    nc_dsmall_fn small;
    size_t mr, nr, mc, kc, nc;
    nc_dtranspose_fn transpose;
} nc_gemm_cfg_f64;

/* Forced inlining: the register tiles rely on it to become straight-line code. */
#if defined(_MSC_VER) && !defined(__clang__)
#define NC_AINLINE static __forceinline
#else
#define NC_AINLINE static inline __attribute__((always_inline))
#endif

#define NC_GLUE_(a, b) a##b
#define NC_GLUE(a, b) NC_GLUE_(a, b)

/* Largest MR and NR of any level: the framework's stack tiles are sized by them. */
#define NC_GEMM_MAX_MR 16
#define NC_GEMM_MAX_NR 32

#if defined(__x86_64__) || defined(_M_X64)
#define NC_GEMM_X86 1
#endif
#if defined(__aarch64__) || defined(_M_ARM64)
#define NC_GEMM_ARM64 1
#endif

extern const nc_gemm_cfg_f32 nc_gemm_ref_f32;
extern const nc_gemm_cfg_f64 nc_gemm_ref_f64;
#ifdef NC_GEMM_X86
/* AVX2 panel transposes (kernel_avx2.c), shared by the AVX-512 level. */
void nc_gemm_transpose_avx2_f32(const float *src, size_t ld, size_t rows, size_t kc,
                                size_t w, float *dst);
void nc_gemm_transpose_avx2_f64(const double *src, size_t ld, size_t rows, size_t kc,
                                size_t w, double *dst);
extern const nc_gemm_cfg_f32 nc_gemm_avx2_f32;
extern const nc_gemm_cfg_f64 nc_gemm_avx2_f64;
extern const nc_gemm_cfg_f32 nc_gemm_avx512_f32;
extern const nc_gemm_cfg_f64 nc_gemm_avx512_f64;
#endif
#ifdef NC_GEMM_ARM64
extern const nc_gemm_cfg_f32 nc_gemm_neon_f32;
extern const nc_gemm_cfg_f64 nc_gemm_neon_f64;
#endif

#endif /* NC_GEMM_KERNELS_H */
