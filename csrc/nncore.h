/*
 * nncore.h -- the whole public surface of the nncore C engine.
 *
 * Conventions
 *   - Plain C99, no Python. Every public name starts with nc_ (types, functions)
 *     or NC_ (constants).
 *   - Matrices are row-major. Sizes and leading dimensions (the distance, in
 *     elements, between the starts of two consecutive rows) are passed
 *     explicitly. Unless a function takes a leading dimension, its arrays are
 *     contiguous.
 *   - Every kernel comes in two precisions: nc_s... (float) and nc_d...
 *     (double), with the same arguments.
 *   - Kernels trust their arguments: the caller (the Python boundary, or a C
 *     user) checks shapes, sizes and label ranges once. Functions return an
 *     nc_status; only those that allocate can fail at run time.
 *   - "beta" follows BLAS: beta == 0 overwrites the output (whatever it held,
 *     NaN included), beta == 1 accumulates into it.
 */
#ifndef NNCORE_H
#define NNCORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NC_VERSION_MAJOR 0
#define NC_VERSION_MINOR 1
#define NC_VERSION_PATCH 0

typedef enum nc_status {
    NC_OK = 0,
    NC_ERR_ARG = 1,       /* an argument outside what the function accepts */
    NC_ERR_NOMEM = 2,     /* an allocation failed */
    NC_ERR_UNSUPPORTED = 3 /* asked for something this build or CPU lacks */
} nc_status;

/* A short English text for a status code; never NULL. */
const char *nc_status_str(nc_status status);

/* The engine's version as "MAJOR.MINOR.PATCH". */
const char *nc_version(void);

/* The compiler that built the engine, e.g. "gcc 12.2.0". */
const char *nc_compiler(void);

/* ------------------------------------------------------------------------ */
/* Instruction sets and threads                                              */
/* ------------------------------------------------------------------------ */

/* The kernel levels. Each is compiled into the library where its
 * architecture allows, and used only when the CPU (and OS) support it. */
typedef enum nc_isa {
    NC_ISA_REF = 0,    /* portable C: the reference every other level is checked against */
    NC_ISA_AVX2 = 1,   /* x86-64 AVX2 + FMA */
    NC_ISA_AVX512 = 2, /* x86-64 AVX-512 (F, BW, DQ, VL) */
    NC_ISA_NEON = 3,   /* aarch64 Advanced SIMD */
    NC_ISA_COUNT_ = 4
} nc_isa;

/*
 * Chooses the kernels once: the best level this CPU supports, or the one the
 * environment variable NNCORE_ISA names (ref, avx2, avx512, neon). Returns
 * NC_ERR_ARG for an unknown name and NC_ERR_UNSUPPORTED for a level this CPU
 * or build lacks (the level in force is then left unchanged). Call it before
 * the first kernel; calling it again re-reads NNCORE_ISA. Not thread-safe
 * against running kernels.
 */
nc_status nc_init(void);
/* Whether a level is compiled in and supported by this CPU and OS. */
int nc_isa_available(nc_isa isa);
/* The best available level. */
nc_isa nc_isa_best(void);
/* Switches to a level (NC_ERR_UNSUPPORTED if unavailable). Not thread-safe
 * against running kernels. */
nc_status nc_set_isa(nc_isa isa);
nc_isa nc_get_isa(void);
/* "ref", "avx2", "avx512", "neon"; "?" for anything else. */
const char *nc_isa_name(nc_isa isa);

/* Threads the engine may use for one call (>= 1); the default is the number
 * of CPUs, or NNCORE_NUM_THREADS when set. Results are bit-identical at any
 * thread count. */
nc_status nc_set_num_threads(int n);
int nc_get_num_threads(void);

/* ------------------------------------------------------------------------ */
/* Matrix product                                                            */
/* ------------------------------------------------------------------------ */

/*
 * C = alpha * op(A) op(B) + beta * C, row-major, where op(X) is X or X^T.
 *   op(A) is m x k: A is m x k (lda >= k) or, transposed, k x m (lda >= m).
 *   op(B) is k x n: B is k x n (ldb >= n) or, transposed, n x k (ldb >= k).
 *   C is m x n (ldc >= n) and must not overlap A or B.
 * Transposes are read in place: no transposed copy is made.
 */
nc_status nc_sgemm(int trans_a, int trans_b, size_t m, size_t n, size_t k,
                   float alpha, const float *a, size_t lda,
                   const float *b, size_t ldb,
                   float beta, float *c, size_t ldc);
nc_status nc_dgemm(int trans_a, int trans_b, size_t m, size_t n, size_t k,
                   double alpha, const double *a, size_t lda,
                   const double *b, size_t ldb,
                   double beta, double *c, size_t ldc);

/* ------------------------------------------------------------------------ */
/* Activations                                                               */
/* ------------------------------------------------------------------------ */

typedef enum nc_act {
    NC_ACT_IDENTITY = 0,
    NC_ACT_STEP = 1,        /* Heaviside: 1 if x > 0 else 0; derivative 0 */
    NC_ACT_SIGMOID = 2,
    NC_ACT_TANH = 3,
    NC_ACT_RELU = 4,
    NC_ACT_LEAKY_RELU = 5,  /* param: slope for x < 0, >= 0 */
    NC_ACT_ELU = 6,         /* param: alpha, >= 0 */
    NC_ACT_SOFTPLUS = 7,
    NC_ACT_SOFTMAX = 8,     /* row-wise over cols, max-subtracted */
    NC_ACT_LOG_SOFTMAX = 9, /* row-wise over cols, max-subtracted */
    NC_ACT_COUNT_ = 10
} nc_act;

/*
 * y = f(x) over a rows x cols block (row-wise for the softmaxes).
 * y may be x (in place).
 */
nc_status nc_sact_forward(nc_act act, float param, size_t rows, size_t cols,
                          const float *x, float *y);
nc_status nc_dact_forward(nc_act act, double param, size_t rows, size_t cols,
                          const double *x, double *y);

/*
 * dx = dy * f'(x), computed from the forward OUTPUT y = f(x), which is all a
 * layer needs to keep (every activation here has a derivative that y
 * determines, given the parameter constraints above). dx may be dy.
 */
nc_status nc_sact_backward(nc_act act, float param, size_t rows, size_t cols,
                           const float *y, const float *dy, float *dx);
nc_status nc_dact_backward(nc_act act, double param, size_t rows, size_t cols,
                           const double *y, const double *dy, double *dx);

/* y = f(y + bias) in place, bias broadcast over rows (NULL: no bias). One pass. */
nc_status nc_sbias_act(nc_act act, float param, size_t rows, size_t cols,
                       const float *bias, float *y, size_t ldy);
nc_status nc_dbias_act(nc_act act, double param, size_t rows, size_t cols,
                       const double *bias, double *y, size_t ldy);

/* ------------------------------------------------------------------------ */
/* Dense layer                                                               */
/* ------------------------------------------------------------------------ */

/*
 * Forward: Y = f(X W + b). X is m x k, W is k x n, b has n entries (or NULL),
 * Y is m x n. All contiguous; Y must not overlap X or W.
 */
nc_status nc_sdense_forward(size_t m, size_t k, size_t n,
                            const float *x, const float *w, const float *b,
                            nc_act act, float param, float *y);
nc_status nc_ddense_forward(size_t m, size_t k, size_t n,
                            const double *x, const double *w, const double *b,
                            nc_act act, double param, double *y);

/*
 * Backward, given dZ = dL/d(X W + b) (m x n; apply nc_?act_backward first):
 *   dX = dZ W^T                      (m x k; skipped when dx is NULL)
 *   dW = X^T dZ + beta * dW          (k x n; skipped when dw is NULL)
 *   db = column sums of dZ + beta*db (n;     skipped when db is NULL)
 * beta = 1 accumulates gradients over micro-batches.
 */
nc_status nc_sdense_backward(size_t m, size_t k, size_t n,
                             const float *x, const float *w, const float *dz,
                             float *dx, float *dw, float *db, float beta);
nc_status nc_ddense_backward(size_t m, size_t k, size_t n,
                             const double *x, const double *w, const double *dz,
                             double *dx, double *dw, double *db, double beta);

/* ------------------------------------------------------------------------ */
/* Losses                                                                    */
/* ------------------------------------------------------------------------ */

typedef enum nc_loss {
    NC_LOSS_MSE = 0,        /* mean over the k outputs of (p - t)^2 */
    NC_LOSS_MAE = 1,        /* mean over the k outputs of |p - t| */
    NC_LOSS_BCE = 2,        /* binary cross-entropy, p probabilities (clipped) */
    NC_LOSS_BCE_LOGITS = 3, /* binary cross-entropy, p logits (stable) */
    NC_LOSS_CCE = 4,        /* categorical cross-entropy, p probabilities (clipped) */
    NC_LOSS_CCE_LOGITS = 5, /* softmax + categorical cross-entropy, p logits */
    NC_LOSS_COUNT_ = 6
} nc_loss;

typedef enum nc_reduction {
    NC_REDUCE_MEAN = 0, /* mean of the per-sample losses */
    NC_REDUCE_SUM = 1,  /* sum of the per-sample losses */
    NC_REDUCE_NONE = 2  /* as SUM for *total; per_sample holds each */
} nc_reduction;

/* The probability clip used by NC_LOSS_BCE and NC_LOSS_CCE (Keras' epsilon). */
#define NC_PROB_EPS 1e-7

/*
 * Loss of predictions p (n x k) against targets t (n x k).
 *   total      (out) the reduced loss, accumulated in double
 *   per_sample (out, may be NULL) the n per-sample losses
 *   grad       (out, may be NULL) dTotal/dp, n x k; for NC_REDUCE_NONE the
 *              gradient of each sample's own loss
 * For the BCE and MSE/MAE families a sample's loss is the mean over its k
 * outputs (Keras' convention); for the CCE family it is the sum over classes.
 */
nc_status nc_sloss(nc_loss loss, nc_reduction reduction, size_t n, size_t k,
                   const float *t, const float *p,
                   double *total, float *per_sample, float *grad);
nc_status nc_dloss(nc_loss loss, nc_reduction reduction, size_t n, size_t k,
                   const double *t, const double *p,
                   double *total, double *per_sample, double *grad);

/*
 * Sparse categorical cross-entropy: integer labels (n, each in [0, k)) in
 * place of one-hot targets. loss is NC_LOSS_CCE or NC_LOSS_CCE_LOGITS.
 */
nc_status nc_sloss_sparse(nc_loss loss, nc_reduction reduction, size_t n, size_t k,
                          const int64_t *labels, const float *p,
                          double *total, float *per_sample, float *grad);
nc_status nc_dloss_sparse(nc_loss loss, nc_reduction reduction, size_t n, size_t k,
                          const int64_t *labels, const double *p,
                          double *total, double *per_sample, double *grad);

/* ------------------------------------------------------------------------ */
/* Metrics                                                                   */
/* ------------------------------------------------------------------------ */

/* Rows whose argmax of p equals the argmax of t (one-hot or scores), n x k. */
nc_status nc_saccuracy_argmax(size_t n, size_t k, const float *t, const float *p,
                              size_t *correct);
nc_status nc_daccuracy_argmax(size_t n, size_t k, const double *t, const double *p,
                              size_t *correct);
/* Rows whose argmax of p equals the integer label. */
nc_status nc_saccuracy_sparse(size_t n, size_t k, const int64_t *labels,
                              const float *p, size_t *correct);
nc_status nc_daccuracy_sparse(size_t n, size_t k, const int64_t *labels,
                              const double *p, size_t *correct);
/* Elements where (p > threshold) equals (t > 0.5), over count elements. */
nc_status nc_saccuracy_threshold(size_t count, const float *t, const float *p,
                                 float threshold, size_t *correct);
nc_status nc_daccuracy_threshold(size_t count, const double *t, const double *p,
                                 double threshold, size_t *correct);

#ifdef __cplusplus
}
#endif
#endif /* NNCORE_H */
