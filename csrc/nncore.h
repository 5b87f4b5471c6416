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
 * y may be x (in place). From 64K elements the work is shared over the
 * engine's threads (element-wise chunks, or blocks of rows), with the same
 * bits as on one thread; likewise nc_?act_backward.
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
/* Plans: a stack of layers in one call (inference and training)          */
/* ------------------------------------------------------------------------ */

typedef enum nc_plan_op {
    NC_PLAN_DENSE = 0,     /* y = f(x W + b) */
    NC_PLAN_ACTIVATION = 1 /* y = f(x); n_in == n_out */
} nc_plan_op;

/* One step of a plan. w is n_in x n_out (Keras' layout), b has n_out entries
 * or is NULL; both unused by NC_PLAN_ACTIVATION. */
typedef struct nc_plan_step_f32 {
    nc_plan_op op;
    size_t n_in, n_out;
    const float *w, *b;
    nc_act act;
    float param;
} nc_plan_step_f32;
typedef struct nc_plan_step_f64 {
    nc_plan_op op;
    size_t n_in, n_out;
    const double *w, *b;
    nc_act act;
    double param;
} nc_plan_step_f64;

/*
 * Runs the steps in order on m samples: x (m x steps[0].n_in) to
 * y (m x steps[n_steps-1].n_out). work holds 2 * m * (the widest n_out)
 * elements; it, x and y must not overlap. n_steps >= 1.
 */
nc_status nc_splan_forward(size_t n_steps, const nc_plan_step_f32 *steps, size_t m,
                           const float *x, float *work, float *y);
nc_status nc_dplan_forward(size_t n_steps, const nc_plan_step_f64 *steps, size_t m,
                           const double *x, double *work, double *y);

/*
 * One training step of a plan, without the optimizer: forward through every
 * step, the loss against targets t (m x n_out of the last step) or integer
 * labels (when labels is not NULL), and back again, writing each dense
 * step's weight and bias gradients (overwriting them).
 *   outputs[i]   (out) m x steps[i].n_out: each step's output, kept for the
 *                backward pass; the last one is the model's output
 *   fuse_last    the last step's activation is left out of the forward pass
 *                and the loss takes logits (softmax or sigmoid fused with
 *                its cross-entropy); loss must then be a *_LOGITS loss
 *   grad_w[i], grad_b[i]  per dense step (NULL for activation steps, and
 *                grad_b[i] NULL for a step without bias)
 *   work         nc_?plan_train_work(n_steps, steps, m) elements
 * A first dense step whose input is at most a quarter nonzero (one-hot,
 * bag-of-words, binary images) runs its two products over the nonzeros
 * only: the same chains as the GEMM's without the zero terms, so the same
 * values wherever the weights and gradients are finite.
 *   total        (out) the reduced loss
 */
nc_status nc_splan_train_step(size_t n_steps, const nc_plan_step_f32 *steps, size_t m,
                              const float *x, int fuse_last, nc_loss loss,
                              nc_reduction reduction, const float *t, const int64_t *labels,
                              float *const *outputs, float *const *grad_w,
                              float *const *grad_b, float *work, double *total);
nc_status nc_dplan_train_step(size_t n_steps, const nc_plan_step_f64 *steps, size_t m,
                              const double *x, int fuse_last, nc_loss loss,
                              nc_reduction reduction, const double *t, const int64_t *labels,
                              double *const *outputs, double *const *grad_w,
                              double *const *grad_b, double *work, double *total);

/* ------------------------------------------------------------------------ */
/* Weight penalties                                                          */
/* ------------------------------------------------------------------------ */

/*
 * L1/L2 penalty of n weights, in one pass: *penalty = l1 sum|w| + l2 sum w^2
 * (accumulated in double, in a fixed order: the same at every ISA level and
 * the same as nc_?optim_step_penalized's) and, when g is not NULL,
 * g += l1 sign(w) + 2 l2 w.
 */
nc_status nc_spenalty(size_t n, const float *w, float *g, double l1, double l2,
                      double *penalty);
nc_status nc_dpenalty(size_t n, const double *w, double *g, double l1, double l2,
                      double *penalty);

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

/* ------------------------------------------------------------------------ */
/* Optimizers (csrc/optim.c)                                                 */
/* ------------------------------------------------------------------------ */

/*
 * One call updates every parameter of a model: params, grads and the state
 * are flat arrays (a model keeps all its parameters in one buffer). The
 * update formulas are PyTorch's (torch.optim, default single-tensor path);
 * the argument names are Keras'. Gradients are read, never written: clipping
 * is applied on the fly.
 *
 * Gradient preprocessing, in this order, before any optimizer sees g:
 *   clipnorm  > 0: g *= min(1, clipnorm / (||g||_2 + 1e-6)), the norm taken
 *                  over the WHOLE buffer, in double, in a fixed order
 *                  (torch.nn.utils.clip_grad_norm_'s formula);
 *   clipvalue > 0: g = clamp(g, -clipvalue, clipvalue).
 * weight_decay is L2 added to the gradient (g += weight_decay * p, torch's
 * SGD/Adam/... weight_decay) for every kind except NC_OPTIM_ADAMW, where it
 * is decoupled (p *= 1 - learning_rate * weight_decay before the step).
 *
 * State layout: nc_optim_state_size(cfg, n) elements = S slots of n elements
 * (slot j is state[j*n .. j*n+n-1]) followed by T trailing scalars. Start it
 * with nc_?optim_state_init. Slots, in order:
 *   SGD       momentum buffer (only when momentum != 0)          T = 0
 *   ADAGRAD   sum of squares (starts at initial_accumulator_value) T = 0
 *   ADADELTA  square_avg, acc_delta                              T = 0
 *   RMSPROP   square_avg, grad_avg (only if centered),
 *             momentum buffer (only if momentum > 0)             T = 0
 *   ADAM(W)   exp_avg, exp_avg_sq, max_exp_avg_sq (only if amsgrad) T = 0
 *   NADAM     exp_avg, exp_avg_sq                                T = 1: mu_product
 */
typedef enum nc_optim_kind {
    NC_OPTIM_SGD = 0,
    NC_OPTIM_ADAGRAD = 1,
    NC_OPTIM_ADADELTA = 2,
    NC_OPTIM_RMSPROP = 3,
    NC_OPTIM_ADAM = 4,
    NC_OPTIM_ADAMW = 5,
    NC_OPTIM_NADAM = 6,
    NC_OPTIM_COUNT_ = 7
} nc_optim_kind;

typedef struct nc_optim_config {
    nc_optim_kind kind;
    double learning_rate;             /* > 0 */
    double momentum;                  /* SGD, RMSPROP: in [0, 1) */
    double rho;                       /* ADADELTA, RMSPROP (torch's alpha): in [0, 1) */
    double beta_1, beta_2;            /* ADAM(W), NADAM: in [0, 1) */
    double epsilon;                   /* >= 0 (> 0 for ADADELTA) */
    double weight_decay;              /* >= 0 */
    double initial_accumulator_value; /* ADAGRAD: >= 0 */
    double momentum_decay;            /* NADAM: torch's psi (0.004) */
    double clipnorm;                  /* > 0 clips the global norm; 0: off */
    double clipvalue;                 /* > 0 clamps each element; 0: off */
    int nesterov;                     /* SGD */
    int amsgrad;                      /* ADAM(W) */
    int epsilon_hat;                  /* ADAM(W): epsilon added to sqrt(v) before the
                                       * bias correction, which goes into the step size
                                       * (Keras' and scikit-learn's form; one division
                                       * a weight instead of two) */
    int centered;                     /* RMSPROP */
} nc_optim_config;

/* Fills cfg with Keras' defaults for its kind (learning rate 0.001, ...). */
void nc_optim_config_default(nc_optim_config *cfg, nc_optim_kind kind);
/* Number of n-sized state slots (S above); 0 for an unknown kind. */
size_t nc_optim_state_slots(const nc_optim_config *cfg);
/* Total state elements: S * n + T. */
size_t nc_optim_state_size(const nc_optim_config *cfg, size_t n);

/* Sets the state of a fresh optimizer (zeros, Adagrad's initial value, ...). */
nc_status nc_soptim_state_init(const nc_optim_config *cfg, size_t n, float *state);
nc_status nc_doptim_state_init(const nc_optim_config *cfg, size_t n, double *state);

/*
 * One step over n parameters. step is this step's 1-based number (1 on the
 * first call; Adam's bias corrections use it). params, grads and state must
 * not overlap. No allocation. Returns NC_ERR_ARG for an unknown kind or
 * step < 1; the hyper-parameters' ranges are the caller's to check (see
 * nc_optim_config). Every ISA level gives the same bits.
 */
nc_status nc_soptim_step(const nc_optim_config *cfg, size_t n, float *params,
                         const float *grads, float *state, int64_t step);
nc_status nc_doptim_step(const nc_optim_config *cfg, size_t n, double *params,
                         const double *grads, double *state, int64_t step);

/* A penalized run of a flat parameter buffer: elements [offset, offset + n)
 * get nc_?penalty(l1, l2). */
typedef struct nc_penalty_seg {
    size_t offset, n;
    double l1, l2;
} nc_penalty_seg;

/*
 * nc_?penalty on each of n_seg segments (sorted by offset, disjoint, inside
 * the n parameters), then nc_?optim_step, in one pass: the same parameters,
 * state and penalty[j] values, bit for bit, as those calls, without the
 * penalty's own pass over the weights and gradients. grads is left as given
 * (each penalty's gradient is added on the fly). NC_ERR_ARG as
 * nc_?optim_step, for misplaced segments, and with clipnorm (whose norm is
 * of the penalized gradient); NC_ERR_NOMEM is possible past 4M parameters.
 */
nc_status nc_soptim_step_penalized(const nc_optim_config *cfg, size_t n, float *params,
                                   const float *grads, float *state, int64_t step,
                                   size_t n_seg, const nc_penalty_seg *seg, double *penalty);
nc_status nc_doptim_step_penalized(const nc_optim_config *cfg, size_t n, double *params,
                                   const double *grads, double *state, int64_t step,
                                   size_t n_seg, const nc_penalty_seg *seg, double *penalty);

/* The sum of squares of n elements, accumulated in double in a fixed order
 * (the same at every ISA level and thread count). */
double nc_ssum_squares(size_t n, const float *x);
double nc_dsum_squares(size_t n, const double *x);

/* ------------------------------------------------------------------------ */
/* Counter-based random numbers (csrc/rng.c)                                 */
/* ------------------------------------------------------------------------ */

/*
 * Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2,
 * 3", SC'11). Key = (seed & 0xffffffff, seed >> 32); counter =
 * (block & 0xffffffff, block >> 32, stream & 0xffffffff, stream >> 32).
 * Element i of a fill is a pure function of (seed, stream, i): fills of
 * [offset, offset + n) in any chunking, at any thread count, give the same
 * bits. Which block serves element i:
 *   32-bit draws (float32 uniform/normal, masks):  block i / 4, word i % 4
 *   64-bit draws (float64 uniform/normal):         block i / 2, words
 *                                                  2(i%2), 2(i%2)+1 (lo, hi)
 */

/* One Philox-4x32-10 block: out = philox(ctr, key). */
void nc_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* Uniform in [low, high): 24 random bits for float32, 53 for float64. */
nc_status nc_srand_uniform(uint64_t seed, uint64_t stream, uint64_t offset, size_t n,
                           float low, float high, float *out);
nc_status nc_drand_uniform(uint64_t seed, uint64_t stream, uint64_t offset, size_t n,
                           double low, double high, double *out);

/* Normal(mean, std) by Box-Muller on pairs of uniforms (u1 in (0, 1],
 * u2 in [0, 1)): element 2j is r cos(2 pi u2), 2j+1 is r sin(2 pi u2),
 * r = sqrt(-2 log u1), the pair's uniforms being draws 2j and 2j+1 (words as
 * above). Computed in double, rounded once. */
nc_status nc_srand_normal(uint64_t seed, uint64_t stream, uint64_t offset, size_t n,
                          float mean, float std, float *out);
nc_status nc_drand_normal(uint64_t seed, uint64_t stream, uint64_t offset, size_t n,
                          double mean, double std, double *out);

/* Normal(mean, std) truncated to [mean - 2 std, mean + 2 std] (Keras'
 * TruncatedNormal), by inversion: z = Phi^-1(Phi(-2) + u (Phi(2) - Phi(-2)))
 * with one 53-bit uniform per element (64-bit draws, as above). */
nc_status nc_srand_truncated_normal(uint64_t seed, uint64_t stream, uint64_t offset,
                                    size_t n, float mean, float std, float *out);
nc_status nc_drand_truncated_normal(uint64_t seed, uint64_t stream, uint64_t offset,
                                    size_t n, double mean, double std, double *out);

/* Inverted-dropout keep mask: mask[i] = 1/keep if draw i < keep * 2^32 else 0
 * (one 32-bit draw per element). keep in (0, 1]. */
nc_status nc_sdropout_mask(uint64_t seed, uint64_t stream, uint64_t offset, size_t n,
                           float keep, float *mask);
nc_status nc_ddropout_mask(uint64_t seed, uint64_t stream, uint64_t offset, size_t n,
                           double keep, double *mask);

/* A uniformly random permutation of 0 .. n-1 (Fisher-Yates from the top:
 * step t = 0, 1, ... swaps slot n-1-t with slot floor(u_t (n - t)), u_t the
 * 53-bit uniform of 64-bit draw t). */
nc_status nc_rand_permutation(uint64_t seed, uint64_t stream, size_t n, int64_t *out);


/* ------------------------------------------------------------------------ */
/* Perceptron (csrc/perceptron.c)                                            */
/* ------------------------------------------------------------------------ */

/*
 * One epoch of Rosenblatt's perceptron rule over n samples, k perceptrons
 * side by side (one-vs-rest). For each sample i = order[t], t = 0 .. n-1
 * (order NULL: 0 .. n-1), and each output c:
 *   y_hat = 1 if w[c] . x[i] + b[c] > 0 else 0
 *   w[c] += lr * (y[i,c] - y_hat) * x[i];  b[c] += lr * (y[i,c] - y_hat)
 * x is n x d, y is n x k (targets 0 or 1), w is k x d, b has k entries (NULL:
 * no bias). order holds a permutation of 0 .. n-1. mistakes (may be NULL)
 * receives the number of updates made (0: every sample was right).
 */
nc_status nc_sperceptron_epoch(size_t n, size_t d, size_t k, const float *x,
                               const float *y, const int64_t *order, float lr,
                               float *w, float *b, size_t *mistakes);
nc_status nc_dperceptron_epoch(size_t n, size_t d, size_t k, const double *x,
                               const double *y, const int64_t *order, double lr,
                               double *w, double *b, size_t *mistakes);
/* The same with x as uint8 (n x d bytes, e.g. images as loaded), each
 * sample converted into xrow (d reals of scratch) first: the bits of the
 * epoch on x converted, without a float copy of x. */
nc_status nc_sperceptron_epoch_u8(size_t n, size_t d, size_t k, const uint8_t *x,
                                  const float *y, const int64_t *order, float lr, float *w,
                                  float *b, float *xrow, size_t *mistakes);
nc_status nc_dperceptron_epoch_u8(size_t n, size_t d, size_t k, const uint8_t *x,
                                  const double *y, const int64_t *order, double lr, double *w,
                                  double *b, double *xrow, size_t *mistakes);


/* ------------------------------------------------------------------------ */
/* Convolution and pooling (csrc/conv.c, csrc/pool.c)                        */
/* ------------------------------------------------------------------------ */

/*
 * Images are channels-last, (n, h, w, c), contiguous; a conv kernel has
 * Keras' layout (kh, kw, c, f), so Keras weights load unchanged. The caller
 * computes the output size and the padding before the top row and left
 * column (whatever padding the output size implies on the bottom/right is
 * zeros for a convolution and ignored by pooling). Keras' "same": oh =
 * ceil(h / stride), total = max((oh - 1) * stride + (k - 1) * dil + 1 - h, 0),
 * pad_top = total / 2 (rounded down: the odd pixel goes to the bottom/right,
 * unlike PyTorch's symmetric padding). The caller checks that every window
 * holds at least one real pixel (pad_top < effective kernel, ...).
 */
typedef struct nc_conv2d_geom {
    size_t n, h, w, c;          /* input (n, h, w, c) */
    size_t kh, kw, f;           /* kernel (kh, kw, c, f) */
    size_t oh, ow;              /* output (n, oh, ow, f), both >= 1 */
    size_t stride_h, stride_w;  /* >= 1 */
    size_t dil_h, dil_w;        /* >= 1 */
    size_t pad_top, pad_left;
} nc_conv2d_geom;

/*
 * Elements of the column matrix (n * oh * ow rows of kh * kw * c): the work
 * buffer `cols` of the forward; 0 for a 1x1, stride-1, unpadded kernel,
 * which reads x in place (cols may then be NULL).
 */
size_t nc_conv2d_cols_size(const nc_conv2d_geom *g);

/*
 * y = f(conv(x, w) + b). b has f entries or is NULL; act is an element-wise
 * activation (not a softmax: NC_ERR_ARG). cols (nc_conv2d_cols_size
 * elements) receives the work backward reads: the column matrix, or (float,
 * stride 1, dilation 1, AVX-512 machine: the direct path, conv_impl.h) the
 * zero-padded input; pass it to backward unchanged. y must not overlap x,
 * w or cols. May return NC_ERR_NOMEM (the direct path's small scratch).
 */
nc_status nc_sconv2d_forward(const nc_conv2d_geom *g, const float *x, const float *w,
                             const float *b, nc_act act, float param, float *y, float *cols);
nc_status nc_dconv2d_forward(const nc_conv2d_geom *g, const double *x, const double *w,
                             const double *b, nc_act act, double param, double *y,
                             double *cols);

/*
 * Backward, given dz = dL/d(conv + b) (n, oh, ow, f; apply nc_?act_backward
 * first) and the forward's cols (x itself for a pointwise kernel):
 *   dw (kh, kw, c, f) = one product over the whole batch   (skipped if NULL)
 *   db (f)            = sums of dz over n, oh, ow          (skipped if NULL)
 *   dx (n, h, w, c)                                        (skipped if NULL)
 * Gradients are overwritten, not accumulated. dcols (nc_conv2d_cols_size
 * elements) is dx's work; it may be cols itself, which dx then overwrites
 * after dw has read it (so a second backward needs a new forward).
 */
nc_status nc_sconv2d_backward(const nc_conv2d_geom *g, const float *cols, const float *w,
                              const float *dz, float *dx, float *dw, float *db, float *dcols);
nc_status nc_dconv2d_backward(const nc_conv2d_geom *g, const double *cols, const double *w,
                              const double *dz, double *dx, double *dw, double *db,
                              double *dcols);

/* Pooling windows of ph x pw with strides (sh, sw); output (n, oh, ow, c).
 * A global pooling is the window (h, w) with oh = ow = 1. */
typedef struct nc_pool2d_geom {
    size_t n, h, w, c;
    size_t ph, pw, sh, sw;
    size_t pad_top, pad_left;
    size_t oh, ow;
} nc_pool2d_geom;

/* Max pooling; argmax (n, oh, ow, c) receives, per output element, the
 * winning pixel iy * w + ix of its sample (the first maximum; NaN wins).
 * Needs h * w < 2^31. */
nc_status nc_smaxpool2d_forward(const nc_pool2d_geom *g, const float *x, float *y,
                                int32_t *argmax);
nc_status nc_dmaxpool2d_forward(const nc_pool2d_geom *g, const double *x, double *y,
                                int32_t *argmax);
/* dx = dy routed to the winners (overwritten; overlapping windows add up). */
nc_status nc_smaxpool2d_backward(const nc_pool2d_geom *g, const int32_t *argmax,
                                 const float *dy, float *dx);
nc_status nc_dmaxpool2d_backward(const nc_pool2d_geom *g, const int32_t *argmax,
                                 const double *dy, double *dx);
/* Average over the real pixels of each window (padding not counted). */
nc_status nc_savgpool2d_forward(const nc_pool2d_geom *g, const float *x, float *y);
nc_status nc_davgpool2d_forward(const nc_pool2d_geom *g, const double *x, double *y);
nc_status nc_savgpool2d_backward(const nc_pool2d_geom *g, const float *dy, float *dx);
nc_status nc_davgpool2d_backward(const nc_pool2d_geom *g, const double *dy, double *dx);


/* ------------------------------------------------------------------------ */
/* Recurrent layers (csrc/rnn.c)                                             */
/* ------------------------------------------------------------------------ */

/*
 * SimpleRNN, LSTM and GRU over a whole sequence, forward and backward through
 * time, in Keras' weight layouts (so weights move between nncore and Keras
 * unchanged). With G gates (1, 4, 3) and U units:
 *   kernel           inputs x G*U
 *   recurrent_kernel U x G*U
 *   bias             G*U (SIMPLE, LSTM, GRU_RESET_BEFORE) or 2 x G*U (GRU: row 0 the input
 *                    bias, row 1 the recurrent bias, Keras' reset_after=True);
 *                    NULL for no bias
 * Gate blocks, in column order:
 *   SIMPLE  h = act(x W + h_prev R + b)
 *   LSTM    i, f, c, o:  i,f,o = sigmoid, g = tanh; c = f c_prev + i g;
 *           h = o tanh(c)
 *   GRU     z, r, h:     z,r = sigmoid(x W + b_in + h_prev R + b_rec);
 *           hh = tanh((x W + b_in)_h + r * (h_prev R + b_rec)_h);
 *           h = z h_prev + (1 - z) hh
 *   GRU_RESET_BEFORE  z, r, h (Keras' reset_after=False, one bias b):
 *           z,r = sigmoid((x W + b + h_prev R)_{z,r});
 *           hh = tanh((x W + b)_h + (r * h_prev) R_h); h = z h_prev + (1 - z) hh
 *           (R_h the last U columns of R; two recurrent products a step)
 * Sequences are batch-major: x is batch x steps x inputs, contiguous.
 *
 * The input projection of every step is one GEMM; the time loop is here, one
 * recurrent GEMM and one fused pass (gates, activations, cell update) per
 * step. go_backwards reads the input from the last step to the first; the
 * output sequence is then in processing order (Keras' convention).
 * mask (batch x steps, 0 = padded, indexed by INPUT step; NULL = none): a
 * masked step leaves the state as it was and outputs zeros in y_seq.
 * rmask (batch x U, NULL = none): recurrent dropout, multiplies h_prev before
 * the recurrent product at every step (one mask for the whole sequence).
 * cache (nc_rnn_cache_size elements) keeps what backward needs; work
 * (nc_rnn_work_size elements) is backward's scratch. No allocation.
 */
typedef enum nc_rnn_cell {
    NC_RNN_SIMPLE = 0,
    NC_RNN_LSTM = 1,
    NC_RNN_GRU = 2,
    NC_RNN_GRU_RESET_BEFORE = 3,
    NC_RNN_COUNT_ = 4
} nc_rnn_cell;

typedef struct nc_rnn_desc {
    nc_rnn_cell cell;
    size_t batch, steps, inputs, units; /* all >= 1 */
    nc_act act;       /* SIMPLE's activation (element-wise ones only) */
    double param;     /* its parameter (leaky_relu slope, elu alpha) */
    int go_backwards;
} nc_rnn_desc;

/* Gates per cell (1, 4, 3); 0 for an unknown cell. */
size_t nc_rnn_gates(nc_rnn_cell cell);
/* Elements of forward's cache and of backward's scratch. */
size_t nc_rnn_cache_size(const nc_rnn_desc *d);
size_t nc_rnn_work_size(const nc_rnn_desc *d);

/*
 * Forward. h0, c0 (batch x U) are the initial state (NULL: zeros; c0 only for
 * LSTM). Outputs, each NULL when unwanted: y_seq (batch x steps x U), h_last
 * and c_last (batch x U, the final state). Outputs must not overlap inputs.
 */
nc_status nc_srnn_forward(const nc_rnn_desc *d, const float *x, const float *kernel,
                          const float *recurrent_kernel, const float *bias,
                          const float *h0, const float *c0, const uint8_t *mask,
                          const float *rmask, float *y_seq, float *h_last, float *c_last,
                          float *cache);
nc_status nc_drnn_forward(const nc_rnn_desc *d, const double *x, const double *kernel,
                          const double *recurrent_kernel, const double *bias,
                          const double *h0, const double *c0, const uint8_t *mask,
                          const double *rmask, double *y_seq, double *h_last, double *c_last,
                          double *cache);

/*
 * Backward through time after a forward with the same d, x, weights, mask,
 * rmask and cache. Incoming gradients (NULL = zero): dy_seq (batch x steps x
 * U), dh_last, dc_last (batch x U). Outputs (NULL = not wanted; overwritten,
 * never accumulated): dx (like x), dkernel, drecurrent, dbias (like the
 * weights; dbias only with a bias), dh0, dc0 (batch x U).
 */
nc_status nc_srnn_backward(const nc_rnn_desc *d, const float *x, const float *kernel,
                           const float *recurrent_kernel, const uint8_t *mask,
                           const float *rmask, const float *cache, const float *dy_seq,
                           const float *dh_last, const float *dc_last, float *dx,
                           float *dkernel, float *drecurrent, float *dbias, float *dh0,
                           float *dc0, float *work);
nc_status nc_drnn_backward(const nc_rnn_desc *d, const double *x, const double *kernel,
                           const double *recurrent_kernel, const uint8_t *mask,
                           const double *rmask, const double *cache, const double *dy_seq,
                           const double *dh_last, const double *dc_last, double *dx,
                           double *dkernel, double *drecurrent, double *dbias, double *dh0,
                           double *dc0, double *work);


/* Restricted Boltzmann machines (csrc/rbm.c)                                */
/* ------------------------------------------------------------------------ */

/*
 * W is n_visible x n_hidden (a Dense kernel's layout), bv has n_visible
 * entries, bh n_hidden. p(h_j = 1 | v) = sigmoid(v W + bh)_j; visibles are
 * Bernoulli (p(v_i = 1 | h) = sigmoid(h W^T + bv)_i) or Gaussian with unit
 * variance (v | h ~ N(h W^T + bv, 1)).
 *
 * Draws come from Philox (see the random numbers above) keyed by the seed:
 * a Bernoulli sample of probability p at element i of (seed, stream) is
 * 1 when 32-bit draw i < p 2^32; Gaussian noise at element i is
 * sqrt(-2 log u1) cos(2 pi u2) from the words of block i / 2 (as
 * nc_srand_normal's float32 pairs, cosine half only). Results do not depend
 * on the thread count.
 */
typedef enum nc_rbm_visible {
    NC_RBM_BERNOULLI = 0,
    NC_RBM_GAUSSIAN = 1
} nc_rbm_visible;

#define NC_RBM_MAX_K 16383 /* Gibbs steps per call: the draws of a step fit 16 bits */

typedef struct nc_rbm_config {
    nc_rbm_visible visible;
    int cd_k;            /* Gibbs steps of the negative phase, 1 .. NC_RBM_MAX_K */
    int persistent;      /* 1: persistent CD (the chain continues across updates) */
    double learning_rate;
    double momentum;     /* 0: plain SGD, no velocity buffers needed */
    double weight_decay; /* L2 on W (not the biases) */
    uint64_t seed;
} nc_rbm_config;

/* Elements of work nc_?rbm_update needs for a batch of m. */
size_t nc_rbm_work_size(size_t m, size_t n_visible, size_t n_hidden);

/*
 * One contrastive-divergence update on a batch v0 (m x n_visible):
 *   h0 = p(h | v0); negative chain from a sample of h0 (CD-k) or from chain
 *   (m x n_hidden binary states, PCD; replaced by the chain's new sample);
 *   k Gibbs steps (Bernoulli visibles sampled, Gaussian ones kept at their
 *   mean), ending at v-, h- = p(h | v-);
 *   grad W = (v0^T h0 - v-^T h-) / m, grad bv = mean(v0 - v-), grad bh = mean(h0 - h-);
 *   momentum 0:  W = (1 - lr wd) W + lr grad W, b += lr grad b;
 *   momentum mu: vel = mu vel + lr (grad - wd W) (biases: no wd), param += vel.
 * Draws use streams (step << 16) | d: d = 0 the sample of h0, 2t - 1 the
 * visible sample of Gibbs step t, 2t its hidden sample (t < k), 2k the new
 * persistent chain. recon_err (may be NULL) receives the summed squared error
 * between v0 and the mean reconstruction p(v | sample of h0) (for PCD this
 * costs one more product). vel_* may be NULL when momentum is 0, chain when
 * not persistent. work holds nc_rbm_work_size(m, ...) elements; no buffer may
 * overlap another.
 */
nc_status nc_srbm_update(const nc_rbm_config *cfg, uint64_t step, size_t m, size_t n_visible,
                         size_t n_hidden, const float *v0, float *w, float *bv, float *bh,
                         float *vel_w, float *vel_bv, float *vel_bh, float *chain,
                         float *work, double *recon_err);
nc_status nc_drbm_update(const nc_rbm_config *cfg, uint64_t step, size_t m, size_t n_visible,
                         size_t n_hidden, const double *v0, double *w, double *bv, double *bh,
                         double *vel_w, double *vel_bv, double *vel_bh, double *chain,
                         double *work, double *recon_err);

/*
 * n_steps of block Gibbs sampling from v (m x n_visible) to v_out: step s
 * samples h from p(h | v) with stream + 2s, then v from p(v | h) with
 * stream + 2s + 1 (Gaussian: mean plus unit noise). work holds m x n_hidden;
 * v_out may be v.
 */
nc_status nc_srbm_gibbs(nc_rbm_visible visible, uint64_t seed, uint64_t stream, size_t n_steps,
                        size_t m, size_t n_visible, size_t n_hidden, const float *v,
                        const float *w, const float *bv, const float *bh, float *work,
                        float *v_out);
nc_status nc_drbm_gibbs(nc_rbm_visible visible, uint64_t seed, uint64_t stream, size_t n_steps,
                        size_t m, size_t n_visible, size_t n_hidden, const double *v,
                        const double *w, const double *bv, const double *bh, double *work,
                        double *v_out);

/*
 * Free energy of each of m samples: F(v) = -v.bv - sum_j softplus(v W + bh)_j
 * (Bernoulli) or |v - bv|^2 / 2 - sum_j softplus(v W + bh)_j (Gaussian),
 * summed in double. work holds m x n_hidden.
 */
nc_status nc_srbm_free_energy(nc_rbm_visible visible, size_t m, size_t n_visible,
                              size_t n_hidden, const float *v, const float *w, const float *bv,
                              const float *bh, float *work, float *out);
nc_status nc_drbm_free_energy(nc_rbm_visible visible, size_t m, size_t n_visible,
                              size_t n_hidden, const double *v, const double *w,
                              const double *bv, const double *bh, double *work, double *out);

/* ------------------------------------------------------------------------ */
/* Batch normalisation (csrc/norm.c)                                        */
/* ------------------------------------------------------------------------ */

/*
 * Normalise each of the c columns of the (n, c) row-major x:
 * xhat = (x - mean) * inv_std, y = gamma * xhat + beta (gamma, beta may be
 * NULL: 1 and 0). training: mean and inv_std = 1 / sqrt(var + eps) come from
 * the batch (biased variance, sums in double) and the moving averages
 * follow moving = momentum * moving + (1 - momentum) * batch statistic;
 * otherwise the moving statistics are used and left as they are. mean and
 * inv_std (c) receive the statistics used; xhat is what the backward needs.
 */
nc_status nc_sbatchnorm_forward(size_t n, size_t c, const float *x, const float *gamma,
                                const float *beta, float *moving_mean, float *moving_var,
                                double momentum, double eps, int training, float *mean,
                                float *inv_std, float *xhat, float *y);
nc_status nc_dbatchnorm_forward(size_t n, size_t c, const double *x, const double *gamma,
                                const double *beta, double *moving_mean, double *moving_var,
                                double momentum, double eps, int training, double *mean,
                                double *inv_std, double *xhat, double *y);
/*
 * From dy and the forward's xhat and inv_std: dgamma = sum dy * xhat and
 * dbeta = sum dy over rows (always written: the training dx needs them),
 * and dx = gamma inv_std (dy - dbeta / n - xhat dgamma / n) in training,
 * gamma inv_std dy otherwise.
 */
nc_status nc_sbatchnorm_backward(size_t n, size_t c, const float *dy, const float *xhat,
                                 const float *inv_std, const float *gamma, int training,
                                 float *dgamma, float *dbeta, float *dx);
nc_status nc_dbatchnorm_backward(size_t n, size_t c, const double *dy, const double *xhat,
                                 const double *inv_std, const double *gamma, int training,
                                 double *dgamma, double *dbeta, double *dx);



/* ------------------------------------------------------------------------ */
/* Training plans: work size and whole epochs                               */
/* ------------------------------------------------------------------------ */

/*
 * Elements of work nc_?plan_train_step needs for m samples: 2 * m * (the
 * widest n_in or n_out), plus room for the first dense step's input as
 * nonzeros (a sparse input runs that step's products over its nonzeros).
 */
size_t nc_splan_train_work(size_t n_steps, const nc_plan_step_f32 *steps, size_t m);
size_t nc_dplan_train_work(size_t n_steps, const nc_plan_step_f64 *steps, size_t m);

/* Metrics nc_?plan_fit counts (nncore.metrics' accuracies). */
typedef enum nc_plan_metric {
    NC_METRIC_ACC_SPARSE = 0,   /* argmax of the output == integer label */
    NC_METRIC_ACC_ARGMAX = 1,   /* argmax of the output == argmax of the target */
    NC_METRIC_ACC_THRESHOLD = 2 /* (output > threshold) == (target > 0.5), per element */
} nc_plan_metric;

/*
 * Batches [first, first + count) of an epoch, each one step of the plan
 * (nc_?plan_train_step), the weight penalties and the optimizer, exactly
 * as a loop of those calls would run them. Pointers to reals are of the
 * plan's precision.
 */
typedef struct nc_plan_fit {
    size_t n, batch;           /* samples; batch size (the last batch may be short) */
    const void *x;             /* n x steps[0].n_in reals, or with x_u8 bytes: */
    int x_u8;                  /* 1: x is uint8 (images as loaded), read as reals batch by
                                  batch (exact: the bits of training on x converted) */
    const int64_t *labels;     /* n integer labels (sparse losses), or NULL and t: */
    const void *t;             /* n x n_out targets */
    const int64_t *order;      /* the epoch's order of the samples, or NULL: as stored */
    size_t first, count;
    int fuse_last;             /* as nc_?plan_train_step */
    nc_loss loss;
    nc_reduction reduction;
    nc_act out_act;            /* with fuse_last: the output's activation, which */
    double out_param;          /* the metrics see applied */
    const nc_optim_config *opt; /* its learning_rate is replaced by lr[b] for batch b */
    const double *lr;          /* count rates */
    size_t n_params;
    void *params;
    const void *grads;
    void *state;
    int64_t step;              /* optimizer steps done before the first batch */
    size_t n_pen;              /* penalties, in the model's order: pen_w[j] (pen_n[j] */
    void *const *pen_w;        /* values) adds its gradient to pen_g[j]; the loss */
    void *const *pen_g;        /* gets each layer's sum, pen_end[j] marking a layer's last */
    const size_t *pen_n;
    const double *pen_l1, *pen_l2;
    const int *pen_end;
    size_t n_metrics;
    const int *metric;         /* nc_plan_metric each */
    const double *threshold;   /* per metric (NC_METRIC_ACC_THRESHOLD) */
    void *const *outputs;      /* as nc_?plan_train_step, for batch rows */
    void *const *grad_w;
    void *const *grad_b;
    void *work;                /* nc_?plan_train_work(batch) elements */
    void *xb;                  /* batch x n_in (with order) */
    void *yb;                  /* batch labels (int64) or batch x n_out (with order) */
    void *probs;               /* batch x n_out (metrics with fuse_last) */
    double loss_sum;           /* (in/out) += each batch's loss * its rows */
    double *metric_sum;        /* (in/out) [j] += each batch's metric value * its rows */
    double *batch_loss;        /* (out, may be NULL) count losses */
    size_t done;               /* (out) batches completed */
} nc_plan_fit;

nc_status nc_splan_fit(size_t n_steps, const nc_plan_step_f32 *steps, nc_plan_fit *fit);
nc_status nc_dplan_fit(size_t n_steps, const nc_plan_step_f64 *steps, nc_plan_fit *fit);

#ifdef __cplusplus
}
#endif
#endif /* NNCORE_H */
