/*
 * optim_impl.h -- optimizer steps over flat buffers, written once for `real`
 * (see real.h). The formulas are PyTorch's (torch.optim, single-tensor path),
 * operation for operation, so that the two agree to rounding.
 *
 * Every loop body is branch-free so the compiler vectorises it: options are
 * flags hoisted out of the loop into separately inlined copies (`const int`
 * arguments given as literals). The gradient's clipping and weight decay
 * are one such flag, MOD: when all are off their operations are left out,
 * as torch leaves them out (they had been a fifth of Adam's arithmetic,
 * which bounds its loop beside the divider); when any is on, all run, as
 * arithmetic that is exact for the ones off (scale 1, bound +inf, decay
 * factor 1), but for a weight decay of 0, selected out (0 * inf is NaN).
 * Coefficients that depend only on the step are computed once, in double.
 *
 * The kernels (the *_range loops and the task that runs them) are compiled
 * once per ISA level: optim.c (portable, suffix _ref) and optim_avx2.c /
 * optim_avx512.c, which define NC_OPTIM_KERNELS_ONLY and their NC_OPTIM_ISA.
 * The code is the same and the ISO C build does not contract a * b + c into
 * an FMA, so every level gives the same bits (sqrt and division are exactly
 * rounded everywhere); only the vector width differs. The driver (state
 * init, coefficients, dispatch) is compiled in optim.c only.
 */

/* Elements per task: large enough that a task's overhead is nothing, small
 * enough to share a 10M-parameter step among threads. Element-wise work, so
 * the split never changes a result. */
#ifndef NC_OPTIM_CHUNK
#define NC_OPTIM_CHUNK 65536
#endif

#include "penalty_impl.h"

#define NC_OPT_CAT2(a, b) a##_##b
#define NC_OPT_CAT(a, b) NC_OPT_CAT2(a, b)
#undef NC_OPTIM_TASK
#define NC_OPTIM_TASK NC_OPT_CAT(NC_TAG(nc_optim_task), NC_OPTIM_ISA)
#undef NC_PENALTY_KERNEL
#define NC_PENALTY_KERNEL NC_OPT_CAT(NC_TAG(nc_penalty_block), NC_OPTIM_ISA)

#ifndef NC_OPTIM_PIECE_
#define NC_OPTIM_PIECE_
/* A task of a penalized step: len elements from lo, of penalty segment seg
 * (its block starting at lo), or of no segment (seg < 0). */
typedef struct nc_optim_piece {
    size_t lo, len;
    long seg;
} nc_optim_piece;
#endif

/* Everything one task needs: the buffers and the per-step coefficients. */
typedef struct NC_TAG(optim_job) {
    const nc_optim_config *cfg;
    size_t n;
    real *p;
    const real *g;
    real *s;
    real gs;   /* global-norm clip scale (1 when off) */
    real cv;   /* clipvalue bound (+inf when off) */
    real wd;   /* L2 coefficient added to the gradient (0 when off or AdamW) */
    real dec;  /* decoupled decay factor 1 - lr * wd (1 unless AdamW) */
    int mod;   /* any of the four on: the ranges' MOD */
    real c[7]; /* the kind's coefficients, see optim_task */
    /* a penalized step (else pieces is NULL and task t is chunk t): */
    const nc_optim_piece *pieces; /* one per task */
    const nc_penalty_seg *segs;
    double *partial;              /* 2 * NC_PEN_LANES per task: |w| and w^2 sums */
} NC_TAG(optim_job);

/* The gradient as the optimizer sees it: with PEN (1: L2 only, 2: L1 and
 * L2), plus a weight penalty's gradient (penalty_grad's arithmetic:
 * nc_?penalty then the step give the same bits); clipped; plus L2 decay.
 * Without MOD the gradient is the raw one (plus the penalty's); with it,
 * branch-free: gs == 1 and cv == +inf make the clip exact identity (NaN
 * stays NaN). */
#define NC_GRAD(gi, i)                                                        \
    do {                                                                      \
        gi = g[i];                                                            \
        if (PEN == 1) /* l1 == 0: the same bits, the zero term left out */    \
            gi = gi + pl2 * p[i];                                             \
        if (PEN == 2) {                                                       \
            real w_ = p[i];                                                   \
            gi = gi + (pl1 * ((real)(w_ > 0) - (real)(w_ < 0)) + pl2 * w_);   \
        }                                                                     \
        if (MOD) {                                                            \
            gi = gi * gs;                                                     \
            gi = gi > cv ? cv : gi;                                           \
            gi = gi < -cv ? -cv : gi;                                         \
            gi = wd != 0 ? gi + wd * p[i] : gi; /* not + 0 * inf */          \
        }                                                                     \
    } while (0)

/* The arguments every range takes for NC_GRAD's penalty, and for the
 * penalty's value: la and ls, the lanes of sum |w| and sum w^2 (penalty_sums'
 * lanes, NC_PEN_LANES each; PEN 1 takes only ls). */
#define NC_PEN_ARGS real pl1, real pl2, double *restrict la, double *restrict ls, const int PEN, \
                    const int MOD

/* Elements a penalized range sums, then updates, at a time: in L1 for the
 * update's second read (128 to 512 measured slower: the loops' overheads;
 * the conversions do not overlap the update's divisions at any size, which
 * is why AVX-512's float Adam takes the sums in its own loop). */
#define NC_PEN_SUB 2048

/* A range's loop: the statements given run for each element i with gi, its
 * gradient from NC_GRAD. With a penalty its weights' sums are taken in the
 * same pass, NC_PEN_SUB elements ahead of their update (penalty_sums' loops,
 * by lane from the range's start, which is on a lane boundary of its
 * penalty block). */
#define NC_RANGE(...)                                                         \
    do {                                                                      \
        size_t lo_, hi_, i;                                                   \
        for (lo_ = 0; lo_ < n; lo_ = hi_) {                                   \
            hi_ = PEN ? NC_MIN(n, lo_ + NC_PEN_SUB) : n;                      \
            if (PEN) NC_TAG(penalty_sums)(hi_ - lo_, p + lo_, PEN == 2, 1, la, ls); \
            for (i = lo_; i < hi_; i++) {                                     \
                real gi;                                                      \
                NC_GRAD(gi, i);                                               \
                __VA_ARGS__                                                   \
            }                                                                 \
        }                                                                     \
    } while (0)

static inline void NC_TAG(sgd_range)(size_t n, real *restrict p, const real *restrict g,
                                     real *restrict buf, real gs, real cv, real wd,
                                     real lr, real mom, const int MOM, const int NES, NC_PEN_ARGS)
{
    NC_RANGE(
        real d;
        if (MOM) {
            real b = buf[i] * mom + gi; /* a zero buffer makes step 1 buf = g, as torch */
            buf[i] = b;
            d = NES ? gi + b * mom : b;
        } else {
            d = gi;
        }
        p[i] = p[i] + -lr * d;
    );
}

static inline void NC_TAG(adagrad_range)(size_t n, real *restrict p, const real *restrict g,
                                         real *restrict sum, real gs, real cv, real wd,
                                         real lr, real eps, NC_PEN_ARGS)
{
    NC_RANGE(
        real s;
        s = sum[i] + gi * gi;
        sum[i] = s;
        p[i] = p[i] + -lr * (gi / (R_SQRT(s) + eps));
    );
}

static inline void NC_TAG(adadelta_range)(size_t n, real *restrict p, const real *restrict g,
                                          real *restrict sq, real *restrict acc, real gs,
                                          real cv, real wd, real lr, real rho, real rho1,
                                          real eps, NC_PEN_ARGS)
{
    NC_RANGE(
        real s, delta;
        s = sq[i] * rho + rho1 * gi * gi;
        sq[i] = s;
        delta = R_SQRT(acc[i] + eps) / R_SQRT(s + eps) * gi;
        acc[i] = acc[i] * rho + rho1 * delta * delta;
        p[i] = p[i] + -lr * delta;
    );
}

static inline void NC_TAG(rmsprop_range)(size_t n, real *restrict p, const real *restrict g,
                                         real *restrict sq, real *restrict ga,
                                         real *restrict buf, real gs, real cv, real wd,
                                         real lr, real rho, real rho1, real eps, real mom,
                                         const int CEN, const int MOM, NC_PEN_ARGS)
{
    NC_RANGE(
        real s, avg;
        s = sq[i] * rho + rho1 * gi * gi;
        sq[i] = s;
        if (CEN) {
            real a = ga[i] + rho1 * (gi - ga[i]); /* torch's lerp(ga, g, 1 - rho) */
            ga[i] = a;
            avg = R_SQRT(s + -a * a) + eps;
        } else {
            avg = R_SQRT(s) + eps;
        }
        if (MOM) {
            real b = buf[i] * mom + gi / avg;
            buf[i] = b;
            p[i] = p[i] + -lr * b;
        } else {
            p[i] = p[i] + -lr * (gi / avg);
        }
    );
}

/* Adam and AdamW (dec != 1): the hot loop. */
static inline void NC_TAG(adam_range)(size_t n, real *restrict p, const real *restrict g,
                                      real *restrict m, real *restrict v,
                                      real *restrict vmax, real gs, real cv, real wd,
                                      real dec, real b1w, real b2, real b2w, real bc2s,
                                      real eps, real nstep, const int AMS, const int HAT,
                                      NC_PEN_ARGS)
{
    NC_RANGE(
        real mi, vi, denom;
        mi = m[i] + b1w * (gi - m[i]); /* torch's lerp(m, g, 1 - beta_1) */
        vi = v[i] * b2 + b2w * gi * gi;
        m[i] = mi;
        v[i] = vi;
        if (AMS) {
            real x = vmax[i] > vi ? vmax[i] : vi;
            vmax[i] = x;
            vi = x;
        }
        /* HAT: the bias correction is in nstep (bc2s is 1) */
        denom = HAT ? R_SQRT(vi) + eps : R_SQRT(vi) / bc2s + eps;
        p[i] = (MOD ? p[i] * dec : p[i]) + nstep * (mi / denom);
    );
}

static inline void NC_TAG(nadam_range)(size_t n, real *restrict p, const real *restrict g,
                                       real *restrict m, real *restrict v, real gs, real cv,
                                       real wd, real b1w, real b2, real b2w, real bc2,
                                       real eps, real cg, real cm, NC_PEN_ARGS)
{
    NC_RANGE(
        real mi, vi, denom, q;
        mi = m[i] + b1w * (gi - m[i]);
        vi = v[i] * b2 + b2w * gi * gi;
        m[i] = mi;
        v[i] = vi;
        denom = R_SQRT(vi / bc2) + eps;
        q = p[i] + cg * (gi / denom); /* torch's two addcdiv_ calls, in order */
        p[i] = q + cm * (mi / denom);
    );
}

#undef NC_GRAD
#undef NC_RANGE

/* The step over elements [lo, lo + len); pen 1 or 2 (NC_GRAD's PEN): their
 * gradient gets the penalty of coefficients pl1 (l1) and pl2 (2 l2) added.
 * Every range is called with literal flags, pen's included, so that each
 * combination is its own loop (this function is too big to be inlined into
 * its callers, so a flag passed in would stay a run-time test). */
static void NC_TAG(optim_range)(const NC_TAG(optim_job) *J, size_t lo, size_t len, int pen,
                                real pl1, real pl2, double *la, double *ls)
{
    const real *g = J->g + lo;
    const nc_optim_config *cfg = J->cfg;
    size_t n = J->n;
    real *p = J->p + lo, *s = J->s + lo;
    const real *c = J->c;
/* CALL(a, b, c, PEN, MOD) with PEN the literal pen is and MOD J->mod's
 * (every range macro takes three flags, unused ones included: fixed arity,
 * which every preprocessor forwards alike) */
#define NC_PEN3M(CALL, a, b, c, MOD)                                                          \
    do {                                                                                      \
        if (pen == 0) CALL(a, b, c, 0, MOD);                                                  \
        else if (pen == 1) CALL(a, b, c, 1, MOD);                                             \
        else CALL(a, b, c, 2, MOD);                                                           \
    } while (0)
#define NC_PEN3(CALL, a, b, c)                                                                \
    do {                                                                                      \
        if (J->mod) NC_PEN3M(CALL, a, b, c, 1);                                               \
        else NC_PEN3M(CALL, a, b, c, 0);                                                      \
    } while (0)
#define NC_SGD(B, MOM, NES, PEN, MOD) NC_TAG(sgd_range)(len, p, g, B, J->gs, J->cv, J->wd, c[0], c[1], \
                                                   MOM, NES, pl1, pl2, la, ls, PEN, MOD)
#define NC_ADAGRAD(X, Y, Z, PEN, MOD) NC_TAG(adagrad_range)(len, p, g, s, J->gs, J->cv, J->wd, c[0], c[1], \
                                                 pl1, pl2, la, ls, PEN, MOD)
#define NC_ADADELTA(X, Y, Z, PEN, MOD) NC_TAG(adadelta_range)(len, p, g, s, s + n, J->gs, J->cv, J->wd,    \
                                                   c[0], c[1], c[2], c[3], pl1, pl2, la, ls, PEN, MOD)
#define NC_RMS(C, M, Z, PEN, MOD) NC_TAG(rmsprop_range)(len, p, g, s, ga, buf, J->gs, J->cv, J->wd,     \
                                                c[0], c[1], c[2], c[3], c[4], C, M, pl1, pl2, la, ls, PEN, MOD)
#define NC_ADAM(VMAX, AMS, HAT, PEN, MOD) NC_TAG(adam_range)(len, p, g, s, s + n, VMAX, J->gs, J->cv, \
                                                        J->wd, J->dec, c[0], c[1], c[2], c[3],  \
                                                        c[4], c[5], AMS, HAT, pl1, pl2, la, ls, PEN, MOD)
#define NC_NADAM(X, Y, Z, PEN, MOD) NC_TAG(nadam_range)(len, p, g, s, s + n, J->gs, J->cv, J->wd, c[0],    \
                                             c[1], c[2], c[3], c[4], c[5], c[6], pl1, pl2, la, ls, PEN, MOD)
    switch (cfg->kind) {
    case NC_OPTIM_SGD: /* c: lr, momentum */
        if (cfg->momentum == 0) NC_PEN3(NC_SGD, NULL, 0, 0);
        else if (cfg->nesterov) NC_PEN3(NC_SGD, s, 1, 1);
        else NC_PEN3(NC_SGD, s, 1, 0);
        break;
    case NC_OPTIM_ADAGRAD: /* c: lr, eps */
        NC_PEN3(NC_ADAGRAD, 0, 0, 0);
        break;
    case NC_OPTIM_ADADELTA: /* c: lr, rho, 1 - rho, eps */
        NC_PEN3(NC_ADADELTA, 0, 0, 0);
        break;
    case NC_OPTIM_RMSPROP: { /* c: lr, rho, 1 - rho, eps, momentum */
        int cen = cfg->centered != 0, mom = cfg->momentum > 0;
        real *ga = s + n, *buf = s + (cen ? 2 : 1) * n;
        if (cen && mom) NC_PEN3(NC_RMS, 1, 1, 0);
        else if (cen) NC_PEN3(NC_RMS, 1, 0, 0);
        else if (mom) NC_PEN3(NC_RMS, 0, 1, 0);
        else NC_PEN3(NC_RMS, 0, 0, 0);
        break;
    }
    case NC_OPTIM_ADAM:
    case NC_OPTIM_ADAMW: /* c: 1 - beta_1, beta_2, 1 - beta_2, sqrt(bc2), eps, -lr / bc1 */
#ifdef NC_ADAM_PEN_FAST
        if (pen != 0 && !cfg->amsgrad) { /* the whole vectors by hand, the rest below */
            size_t done = NC_ADAM_PEN_FAST(len, p, g, s, s + n, J->gs, J->cv, J->wd, J->dec, c[0],
                                           c[1], c[2], c[3], c[4], c[5], cfg->epsilon_hat != 0,
                                           pl1, pl2, la, ls, pen, J->mod);
            p += done;
            g += done;
            s += done;
            len -= done;
        }
#endif
        if (cfg->amsgrad && cfg->epsilon_hat) NC_PEN3(NC_ADAM, s + 2 * n, 1, 1);
        else if (cfg->amsgrad) NC_PEN3(NC_ADAM, s + 2 * n, 1, 0);
        else if (cfg->epsilon_hat) NC_PEN3(NC_ADAM, NULL, 0, 1);
        else NC_PEN3(NC_ADAM, NULL, 0, 0);
        break;
    case NC_OPTIM_NADAM: /* c: 1 - beta_1, beta_2, 1 - beta_2, bc2, eps, cg, cm */
        NC_PEN3(NC_NADAM, 0, 0, 0);
        break;
    default:
        break;
    }
#undef NC_PEN3
#undef NC_PEN3M
#undef NC_SGD
#undef NC_ADAGRAD
#undef NC_ADADELTA
#undef NC_RMS
#undef NC_ADAM
#undef NC_NADAM
}

/* Runs one task of the step: chunk `task` of NC_OPTIM_CHUNK elements, or,
 * for a penalized step, piece `task`, whose gradient gets its segment's
 * penalty added on the fly (the gradient array is left as it is) and whose
 * weights' sums are taken. */
void NC_OPTIM_TASK(void *ctx, size_t task, int thread)
{
    const NC_TAG(optim_job) *J = (const NC_TAG(optim_job) *)ctx;
    size_t lo, len;
    (void)thread;
    if (!J->pieces) {
        lo = task * NC_OPTIM_CHUNK;
        NC_TAG(optim_range)(J, lo, NC_MIN(J->n - lo, (size_t)NC_OPTIM_CHUNK), 0, 0, 0, NULL,
                            NULL);
        return;
    }
    lo = J->pieces[task].lo;
    len = J->pieces[task].len;
    if (J->pieces[task].seg < 0) {
        NC_TAG(optim_range)(J, lo, len, 0, 0, 0, NULL, NULL);
    } else {
        const nc_penalty_seg *sg = &J->segs[J->pieces[task].seg];
        const real rl1 = (real)sg->l1, rl2 = (real)(2 * sg->l2);
        double *a = J->partial + 2 * NC_PEN_LANES * task, *sq = a + NC_PEN_LANES;
        size_t j;
        for (j = 0; j < NC_PEN_LANES; j++) a[j] = sq[j] = 0;
        NC_TAG(optim_range)(J, lo, len, rl1 == 0 ? 1 : 2, rl1, rl2, a, sq);
    }
}

/* A block of a penalty on its own (nc_?penalty): its sums into a and s
 * (NC_PEN_LANES each, from zero) and, g given, g += its gradient. */
void NC_PENALTY_KERNEL(size_t n, const real *w, real *g, double l1, double l2, double *a,
                       double *s)
{
    size_t j;
    for (j = 0; j < NC_PEN_LANES; j++) a[j] = s[j] = 0;
    NC_TAG(penalty_sums)(n, w, l1 != 0, l2 != 0, a, s);
    if (g) NC_TAG(penalty_grad)(n, w, g, g, (real)l1, (real)(2 * l2));
}

#ifndef NC_OPTIM_KERNELS_ONLY

#if NC_OPTIM_X86
void NC_OPT_CAT(NC_TAG(nc_optim_task), avx2)(void *ctx, size_t task, int thread);
void NC_OPT_CAT(NC_TAG(nc_optim_task), avx512)(void *ctx, size_t task, int thread);
void NC_OPT_CAT(NC_TAG(nc_penalty_block), avx2)(size_t n, const real *w, real *g, double l1,
                                                 double l2, double *a, double *s);
void NC_OPT_CAT(NC_TAG(nc_penalty_block), avx512)(size_t n, const real *w, real *g, double l1,
                                                   double l2, double *a, double *s);
#endif

/* The task compiled for the level in force. */
static nc_task_fn NC_TAG(optim_pick)(void)
{
#if NC_OPTIM_X86
    if (nc_active_isa_ == NC_ISA_AVX512) return NC_OPT_CAT(NC_TAG(nc_optim_task), avx512);
    if (nc_active_isa_ == NC_ISA_AVX2) return NC_OPT_CAT(NC_TAG(nc_optim_task), avx2);
#endif
    return NC_OPTIM_TASK;
}

nc_status NC_FN(optim_state_init)(const nc_optim_config *cfg, size_t n, real *state)
{
    size_t i, total = nc_optim_state_size(cfg, n);
    for (i = 0; i < total; i++) state[i] = 0;
    if (cfg->kind == NC_OPTIM_ADAGRAD)
        for (i = 0; i < n; i++) state[i] = (real)cfg->initial_accumulator_value;
    if (cfg->kind == NC_OPTIM_NADAM) state[2 * n] = 1; /* mu_product */
    return NC_OK;
}

double NC_FN(sum_squares)(size_t n, const real *x)
{
    /* Eight partial sums by i % 8, combined pairwise: a fixed order, so the
     * result never depends on the ISA or on how the caller split the work. */
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i, j, n8 = n - n % 8;
    for (i = 0; i < n8; i += 8)
        for (j = 0; j < 8; j++) acc[j] += (double)x[i + j] * (double)x[i + j];
    for (; i < n; i++) acc[i % 8] += (double)x[i] * (double)x[i];
    return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}

/* The job of one step: buffers, gradient preprocessing and the kind's
 * coefficients (pieces NULL: a plain step). */
static nc_status NC_TAG(optim_setup)(const nc_optim_config *cfg, size_t n, real *params,
                                     const real *grads, real *state, int64_t step,
                                     NC_TAG(optim_job) *out)
{
    NC_TAG(optim_job) J;
    double lr = cfg->learning_rate, t = (double)step;
    int i;
    if (cfg->kind < 0 || cfg->kind >= NC_OPTIM_COUNT_ || step < 1) return NC_ERR_ARG;
    J.pieces = NULL;
    J.segs = NULL;
    J.partial = NULL;
    J.cfg = cfg;
    J.n = n;
    J.p = params;
    J.g = grads;
    J.s = state;
    J.gs = 1;
    J.cv = (real)HUGE_VAL;
    J.wd = cfg->kind == NC_OPTIM_ADAMW ? 0 : (real)cfg->weight_decay;
    J.dec = cfg->kind == NC_OPTIM_ADAMW ? (real)(1.0 - lr * cfg->weight_decay) : 1;
    J.mod = cfg->clipnorm > 0 || cfg->clipvalue > 0 || J.wd != 0 || J.dec != 1;
    for (i = 0; i < 7; i++) J.c[i] = 0;
    if (cfg->clipnorm > 0) {
        double norm = sqrt(NC_FN(sum_squares)(n, grads));
        double coef = cfg->clipnorm / (norm + 1e-6);
        /* as torch's clamp(max=1): a NaN norm gives a NaN scale, NaN gradients */
        J.gs = (real)(coef > 1 ? 1 : coef);
    }
    if (cfg->clipvalue > 0) J.cv = (real)cfg->clipvalue;
    switch (cfg->kind) {
    case NC_OPTIM_SGD:
        J.c[0] = (real)lr;
        J.c[1] = (real)cfg->momentum;
        break;
    case NC_OPTIM_ADAGRAD:
        J.c[0] = (real)lr; /* torch's lr_decay is 0: clr = lr */
        J.c[1] = (real)cfg->epsilon;
        break;
    case NC_OPTIM_ADADELTA:
    case NC_OPTIM_RMSPROP:
        J.c[0] = (real)lr;
        J.c[1] = (real)cfg->rho;
        J.c[2] = (real)(1.0 - cfg->rho);
        J.c[3] = (real)cfg->epsilon;
        J.c[4] = (real)cfg->momentum;
        break;
    case NC_OPTIM_ADAM:
    case NC_OPTIM_ADAMW: {
        double bc1 = 1.0 - pow(cfg->beta_1, t), bc2 = 1.0 - pow(cfg->beta_2, t);
        J.c[0] = (real)(1.0 - cfg->beta_1);
        J.c[1] = (real)cfg->beta_2;
        J.c[2] = (real)(1.0 - cfg->beta_2);
        J.c[3] = cfg->epsilon_hat ? 1 : (real)sqrt(bc2);
        J.c[4] = (real)cfg->epsilon;
        /* epsilon hat: Keras' alpha = lr sqrt(1 - beta_2^t) / (1 - beta_1^t) */
        J.c[5] = (real)(cfg->epsilon_hat ? -(lr * sqrt(bc2) / bc1) : -(lr / bc1));
        break;
    }
    case NC_OPTIM_NADAM: {
        double psi = cfg->momentum_decay, b1 = cfg->beta_1;
        double mu = b1 * (1.0 - 0.5 * pow(0.96, t * psi));
        double mu_next = b1 * (1.0 - 0.5 * pow(0.96, (t + 1) * psi));
        real *mp = state + 2 * n;
        double prod, prod_next;
        *mp = (real)(*mp * (real)mu); /* torch keeps mu_product as a tensor of this dtype */
        prod = (double)*mp;
        prod_next = prod * mu_next;
        J.c[0] = (real)(1.0 - b1);
        J.c[1] = (real)cfg->beta_2;
        J.c[2] = (real)(1.0 - cfg->beta_2);
        J.c[3] = (real)(1.0 - pow(cfg->beta_2, t));
        J.c[4] = (real)cfg->epsilon;
        J.c[5] = (real)(-lr * (1.0 - mu) / (1.0 - prod));
        J.c[6] = (real)((-lr * mu_next) / (1.0 - prod_next));
        break;
    }
    default:
        break;
    }
    *out = J;
    return NC_OK;
}

nc_status NC_FN(optim_step)(const nc_optim_config *cfg, size_t n, real *params,
                            const real *grads, real *state, int64_t step)
{
    NC_TAG(optim_job) J;
    nc_status st = NC_TAG(optim_setup)(cfg, n, params, grads, state, step, &J);
    if (st == NC_OK && n > 0)
        nc_parallel_for((n + NC_OPTIM_CHUNK - 1) / NC_OPTIM_CHUNK, NC_TAG(optim_pick)(), &J);
    return st;
}

/* Pieces of a penalized step: the gaps between segments and each segment,
 * cut into NC_OPTIM_CHUNK blocks from its start. Returns their count, or 0
 * when there are more than cap (pieces not written past cap). */
static size_t NC_TAG(optim_pieces)(size_t n, size_t n_seg, const nc_penalty_seg *seg,
                                   nc_optim_piece *pieces, size_t cap)
{
    size_t at = 0, count = 0, j;
    for (j = 0; j <= n_seg; j++) {
        size_t end = j < n_seg ? seg[j].offset : n, lo;
        int pass;
        /* pass 0: the gap before segment j; pass 1: segment j */
        for (pass = 0; pass < 2; pass++) {
            if (pass == 1) {
                if (j == n_seg) break;
                end = seg[j].offset + seg[j].n;
            }
            for (lo = at; lo < end; lo += NC_OPTIM_CHUNK) {
                if (count == cap) return 0;
                pieces[count].lo = lo;
                pieces[count].len = NC_MIN(end - lo, (size_t)NC_OPTIM_CHUNK);
                pieces[count].seg = pass == 1 ? (long)j : -1;
                count++;
            }
            at = end;
        }
    }
    return count;
}

/* Adds a block's lane sums (|w| sums, then w^2 sums) into a and s. Blocks
 * are added in order, from zero: nc_?penalty and a penalized step both do
 * so, which is what makes their values the same bits. */
static void NC_TAG(penalty_add_block)(double *a, double *s, const double *block)
{
    size_t l;
    for (l = 0; l < NC_PEN_LANES; l++) {
        a[l] += block[l];
        s[l] += block[NC_PEN_LANES + l];
    }
}

/* l1 sum|w| + l2 sum w^2 from the summed lanes, combined pairwise; a term
 * with coefficient 0 is left out, not 0 * sum (an inf weight would make
 * that NaN). */
static double NC_TAG(penalty_of_lanes)(double l1, double l2, double *a, double *s)
{
    return (l1 != 0 ? l1 * nc_pen_lanes_total(a) : 0) + (l2 != 0 ? l2 * nc_pen_lanes_total(s) : 0);
}

nc_status NC_FN(penalty)(size_t n, const real *w, real *g, double l1, double l2,
                         double *penalty)
{
    void (*block)(size_t, const real *, real *, double, double, double *, double *) =
        NC_PENALTY_KERNEL;
    double a[NC_PEN_LANES], s[NC_PEN_LANES], pa[2 * NC_PEN_LANES];
    size_t lo, l;
#if NC_OPTIM_X86
    if (nc_active_isa_ == NC_ISA_AVX512) block = NC_OPT_CAT(NC_TAG(nc_penalty_block), avx512);
    if (nc_active_isa_ == NC_ISA_AVX2) block = NC_OPT_CAT(NC_TAG(nc_penalty_block), avx2);
#endif
    for (l = 0; l < NC_PEN_LANES; l++) a[l] = s[l] = 0;
    for (lo = 0; lo < n; lo += NC_PENALTY_BLOCK) {
        block(NC_MIN(n - lo, (size_t)NC_PENALTY_BLOCK), w + lo, g ? g + lo : NULL, l1, l2, pa,
              pa + NC_PEN_LANES);
        NC_TAG(penalty_add_block)(a, s, pa);
    }
    *penalty = NC_TAG(penalty_of_lanes)(l1, l2, a, s);
    return NC_OK;
}

/* Pieces held on the stack; beyond, one allocation per call (a model of
 * more than about 4M parameters, whose step dwarfs it). */
#define NC_OPTIM_STACK_PIECES 64

nc_status NC_FN(optim_step_penalized)(const nc_optim_config *cfg, size_t n, real *params,
                                      const real *grads, real *state, int64_t step,
                                      size_t n_seg, const nc_penalty_seg *seg,
                                      double *penalty)
{
    NC_TAG(optim_job) J;
    nc_optim_piece stack_pieces[NC_OPTIM_STACK_PIECES], *pieces = stack_pieces;
    double stack_partial[NC_OPTIM_STACK_PIECES * 2 * NC_PEN_LANES], *partial = stack_partial;
    void *heap = NULL;
    size_t count, j, t;
    nc_status st;
    for (j = 0; j < n_seg; j++) /* sorted, disjoint, inside the buffer */
        if (seg[j].offset > n || seg[j].n > n - seg[j].offset
            || (j > 0 && seg[j].offset < seg[j - 1].offset + seg[j - 1].n))
            return NC_ERR_ARG;
    if (cfg->clipnorm > 0) /* the norm is of the penalized gradient: not on the fly */
        return NC_ERR_ARG;
    st = NC_TAG(optim_setup)(cfg, n, params, grads, state, step, &J);
    if (st != NC_OK) return st;
    count = NC_TAG(optim_pieces)(n, n_seg, seg, pieces, NC_OPTIM_STACK_PIECES);
    if (count == 0 && n > 0) {
        size_t cap = n / NC_OPTIM_CHUNK + 2 * n_seg + 1;
        heap = malloc(cap * (sizeof(nc_optim_piece) + 2 * NC_PEN_LANES * sizeof(double)));
        if (!heap) return NC_ERR_NOMEM;
        partial = (double *)heap;
        pieces = (nc_optim_piece *)(partial + cap * 2 * NC_PEN_LANES);
        count = NC_TAG(optim_pieces)(n, n_seg, seg, pieces, cap);
    }
    J.pieces = pieces;
    J.segs = seg;
    J.partial = partial;
    if (count > 0) nc_parallel_for(count, NC_TAG(optim_pick)(), &J);
    /* each segment's blocks are consecutive pieces */
    for (j = 0, t = 0; j < n_seg; j++) {
        double a[NC_PEN_LANES], s[NC_PEN_LANES];
        size_t l;
        for (l = 0; l < NC_PEN_LANES; l++) a[l] = s[l] = 0;
        while (t < count && pieces[t].seg != (long)j) t++;
        for (; t < count && pieces[t].seg == (long)j; t++)
            NC_TAG(penalty_add_block)(a, s, partial + t * 2 * NC_PEN_LANES);
        penalty[j] = NC_TAG(penalty_of_lanes)(seg[j].l1, seg[j].l2, a, s);
    }
    free(heap);
    return NC_OK;
}

#endif /* NC_OPTIM_KERNELS_ONLY */
