/* rbm.c -- instantiates rbm_impl.h for float (nc_s...) and double (nc_d...). */
#include <math.h>
#include <string.h>

#include "internal.h"
#include "rbm_bin.h"
#include "gemm/kernels.h"

#define RBM_LANES 16 /* Philox blocks computed side by side */

/*
 * Philox-4x32-10 blocks first .. first + RBM_LANES - 1 of (seed, stream):
 * w[j][l] is word j of block first + l. The same function as
 * nc_philox4x32_10, laid out across blocks (structure of arrays): the blocks'
 * rounds are independent, so they overlap in the pipeline instead of running
 * as one dependent chain per block. (GCC does not vectorise the 32x32->64
 * multiplies at the portable level: AVX-512 has its own, rbm_avx512.c.)
 */
#if defined(__x86_64__) || defined(_M_X64)
#define RBM_X86 1
void nc_rbm_philox16_avx512(uint64_t seed, uint64_t stream, uint64_t first, uint32_t w[4][16]);
void nc_rbm_bernoulli_avx512_f32(uint64_t seed, uint64_t stream, size_t n, float *p);
void nc_rbm_bernoulli_avx512_f64(uint64_t seed, uint64_t stream, size_t n, double *p);
#endif

static void rbm_philox_lanes(uint64_t seed, uint64_t stream, uint64_t first,
                             uint32_t w[4][RBM_LANES])
{
    uint32_t c0[RBM_LANES], c1[RBM_LANES], c2[RBM_LANES], c3[RBM_LANES];
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    int r, l;
#ifdef RBM_X86
    if (nc_active_isa_ == NC_ISA_AVX512) {
        nc_rbm_philox16_avx512(seed, stream, first, w);
        return;
    }
#endif
    for (l = 0; l < RBM_LANES; l++) {
        uint64_t b = first + (uint64_t)l;
        c0[l] = (uint32_t)b;
        c1[l] = (uint32_t)(b >> 32);
        c2[l] = (uint32_t)stream;
        c3[l] = (uint32_t)(stream >> 32);
    }
    for (r = 0; r < 10; r++) {
        for (l = 0; l < RBM_LANES; l++) {
            uint64_t p0 = (uint64_t)0xD2511F53u * c0[l], p1 = (uint64_t)0xCD9E8D57u * c2[l];
            uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1[l] ^ k0;
            uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3[l] ^ k1;
            c1[l] = (uint32_t)p1;
            c3[l] = (uint32_t)p0;
            c0[l] = n0;
            c2[l] = n2;
        }
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    for (l = 0; l < RBM_LANES; l++) {
        w[0][l] = c0[l];
        w[1][l] = c1[l];
        w[2][l] = c2[l];
        w[3][l] = c3[l];
    }
}

/* ---- binary-left products (rbm_bin.h): what both precisions share ---- */

int nc_rbm_bin_mode_ = 0;

size_t nc_rbm_bin_count_ = 0;

size_t nc_rbm_bin_count(void)
{
    return nc_rbm_bin_count_;
}

int nc_rbm_set_bin_mode(int mode)
{
    int old = nc_rbm_bin_mode_;
    if (mode >= 0 && mode <= 2) nc_rbm_bin_mode_ = mode;
    return old;
}

/* Threads get at least this many added elements each (a few microseconds). */
#define RBM_BIN_GRAIN 2e5

/* Whether the binary path may run for this precision: float at every level;
 * double only at the portable level (the SIMD kernels are float's, and the
 * dense double GEMM beats scalar sums). */
static int rbm_bin_enabled(int bits)
{
    if (nc_rbm_bin_mode_ == 1) return 0;
    return bits == 32 || nc_active_isa_ == NC_ISA_REF;
}

/* Whether sums of nnz selected rows beat the dense product of m x k: a
 * selected row costs one load and one add per element, a dense GEMM does two
 * FMAs per loaded element at its peak, so below ~40% density (at the
 * portable level, always: its GEMM is no faster per element). */
static int rbm_bin_worth(size_t nnz, size_t m, size_t k)
{
    if (nnz == (size_t)-1) return 0;
    if (nc_rbm_bin_mode_ == 2 || nc_active_isa_ == NC_ISA_REF) return 1;
    return (double)nnz * 5 <= (double)m * (double)k * 2;
}

/* X^T's lists from X's (m x n): cptr (n + 2 entries; the first n + 1 are the
 * result), cidx; rows come out ascending within each column. */
static void rbm_csc(size_t m, size_t n, const uint32_t *ptr, const uint32_t *idx,
                    uint32_t *cptr, uint32_t *cidx)
{
    size_t i, j;
    uint32_t p;
    for (j = 0; j < n + 2; j++) cptr[j] = 0;
    for (p = 0; p < ptr[m]; p++) cptr[idx[p] + 2]++;
    for (j = 2; j < n + 2; j++) cptr[j] += cptr[j - 1];
    /* cptr[j + 1] is column j's start: a cursor that ends at column j + 1's */
    for (i = 0; i < m; i++)
        for (p = ptr[i]; p < ptr[i + 1]; p++) cidx[cptr[idx[p] + 1]++] = (uint32_t)i;
}

typedef struct rbm_binmm_job {
    const nc_rbm_binmm *a;
    nc_rbm_binmm_fn fn;
    size_t m, rows;
} rbm_binmm_job;

static void rbm_binmm_task(void *ctx, size_t task, int thread)
{
    const rbm_binmm_job *J = (const rbm_binmm_job *)ctx;
    size_t r0 = task * J->rows, r1 = NC_MIN(J->m, r0 + J->rows);
    (void)thread;
    J->fn(J->a, r0, r1);
}

/* a's rows 0 .. m-1, nnz selected rows in all, split by rows between threads */
static void rbm_binmm_run(const nc_rbm_binmm *a, size_t m, size_t nnz, nc_rbm_binmm_fn fn)
{
    int threads = nc_threads_for((double)nnz * (double)a->n, RBM_BIN_GRAIN);
    rbm_binmm_job J;
    nc_rbm_bin_count_++;
    if (threads <= 1 || m < 2) {
        fn(a, 0, m);
        return;
    }
    J.a = a;
    J.fn = fn;
    J.m = m;
    J.rows = (m + 4 * (size_t)threads - 1) / (4 * (size_t)threads); /* 4 tasks a thread */
    nc_parallel_for_max((m + J.rows - 1) / J.rows, threads, rbm_binmm_task, &J);
}

#define NC_REAL_BITS 32
#include "real.h"
#include "rbm_bin_impl.h"
#include "rbm_impl.h"
#undef NC_REAL_BITS

#define NC_REAL_BITS 64
#include "real.h"
#include "rbm_bin_impl.h"
#include "rbm_impl.h"
#undef NC_REAL_BITS

size_t nc_rbm_work_size(size_t m, size_t n_visible, size_t n_hidden)
{
    /* [v0; v-] and [h0; -h-], hidden samples, a reconstruction, W^T; then
     * the binary products' index lists (counted as 4-byte elements, which
     * over-provides for double): CSR of v0, v-, a hidden sample (each with
     * 16 spare entries), CSC of v0 and v- */
    size_t lists = 3 * (m + 1) + 2 * (m * n_visible + 16) + m * n_hidden + 16 +
                   2 * (n_visible + 2) + 2 * m * n_visible;
    return 3 * m * n_visible + 3 * m * n_hidden + n_visible * n_hidden + lists;
}
