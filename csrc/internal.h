/*
 * internal.h -- what the engine's own files share and users never see.
 */
#ifndef NC_INTERNAL_H
#define NC_INTERNAL_H

#include "nncore.h"

#define NC_MIN(a, b) ((a) < (b) ? (a) : (b))

/* A hint to bring the cache line at p into cache (nothing where the
 * compiler has no way to say it): for rows picked at random, which the
 * hardware prefetcher cannot foresee. */
#if defined(__GNUC__) || defined(__clang__)
#define NC_PREFETCH(p) __builtin_prefetch(p)
#elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
#include <xmmintrin.h>
#define NC_PREFETCH(p) _mm_prefetch((const char *)(p), _MM_HINT_T0)
#else
#define NC_PREFETCH(p) ((void)(p))
#endif
#define NC_MAX(a, b) ((a) > (b) ? (a) : (b))

/* The level in force (set by nc_init / nc_set_isa). Each module maps it to
 * its own table of kernels, so the levels' files stay independent. */
extern nc_isa nc_active_isa_;

/*
 * Runs fn(ctx, task, thread) for every task in [0, n_tasks) on the engine's
 * threads and returns when all are done. `thread` is the index (0 ..
 * threads-1) of the thread running it, for per-thread scratch. Tasks must
 * write disjoint outputs: work is split by output tiles, never by a shared
 * reduction, so the result does not depend on the thread count.
 */
typedef void (*nc_task_fn)(void *ctx, size_t task, int thread);
void nc_parallel_for(size_t n_tasks, nc_task_fn fn, void *ctx);
/* The same on at most max_threads threads: `thread` < max_threads (and <
 * n_tasks). Per-thread scratch sized from nc_get_num_threads() should pass
 * that value here, because another application thread may raise the limit
 * between reading it and the call. Nested calls, and calls made while
 * another application thread uses the pool, run serially (thread 0). */
void nc_parallel_for_max(size_t n_tasks, int max_threads, nc_task_fn fn, void *ctx);
/* How many threads are worth using for `work` units (flops, elements) when
 * each thread should get at least `grain` of them: 1 below 2 * grain (small
 * products stay on one thread), never more than nc_get_num_threads(). */
int nc_threads_for(double work, double grain);

/* The reference matrix product: the oracle for the fast kernels. */
nc_status nc_sgemm_ref(int trans_a, int trans_b, size_t m, size_t n, size_t k,
                       float alpha, const float *a, size_t lda, const float *b, size_t ldb,
                       float beta, float *c, size_t ldc);
nc_status nc_dgemm_ref(int trans_a, int trans_b, size_t m, size_t n, size_t k,
                       double alpha, const double *a, size_t lda, const double *b, size_t ldb,
                       double beta, double *c, size_t ldc);

/* C = f(alpha op(A) op(B) + beta C + bias), bias (n entries, or NULL)
 * broadcast over rows: nc_?gemm with bias and activation applied to each
 * block of C as it is finished (the softmaxes, row-wise, in a second pass). */
nc_status nc_sgemm_bias_act(int trans_a, int trans_b, size_t m, size_t n, size_t k,
                            float alpha, const float *a, size_t lda, const float *b, size_t ldb,
                            float beta, float *c, size_t ldc,
                            const float *bias, nc_act act, float param);
nc_status nc_dgemm_bias_act(int trans_a, int trans_b, size_t m, size_t n, size_t k,
                            double alpha, const double *a, size_t lda, const double *b, size_t ldb,
                            double beta, double *c, size_t ldc,
                            const double *bias, nc_act act, double param);

/* The GEMM block sizes of a level (bits 32 or 64) as {MR, NR, MC, KC, NC};
 * for the tests, which aim their shapes at every blocking edge. */
void nc_gemm_blocking(nc_isa isa, int bits, size_t out[5]);
/* Which GEMM path runs: 0 chooses by shape, 1 forces the packed path,
 * 2 the unpacked one wherever it applies. For tests; not thread-safe. */
extern int nc_gemm_path_;

#endif /* NC_INTERNAL_H */
