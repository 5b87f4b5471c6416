/*
 * optim_impl.h -- optimizer steps over flat buffers, written once for `real`
 * (see real.h). The formulas are PyTorch's (torch.optim, single-tensor path),
 * operation for operation, so that the two agree to rounding.
 *
 * Every loop body is branch-free so the compiler vectorises it: options are
 * either arithmetic that is exact when off (clipping with scale 1 and bound
 * +inf, weight decay 0, decay factor 1) or flags hoisted out of the loop into
 * separately inlined copies (`const int` arguments given as literals).
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

#define NC_OPT_CAT2(a, b) a##_##b
#define NC_OPT_CAT(a, b) NC_OPT_CAT2(a, b)
#undef NC_OPTIM_TASK
#define NC_OPTIM_TASK NC_OPT_CAT(NC_TAG(nc_optim_task), NC_OPTIM_ISA)

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
    real c[7]; /* the kind's coefficients, see optim_task */
} NC_TAG(optim_job);

/* The gradient as the optimizer sees it: clipped, plus L2 decay. Branch-free:
 * with gs == 1 and cv == +inf the clip is exact identity (NaN stays NaN). */
#define NC_GRAD(gi, i)                                  \
    do {                                                \
        gi = g[i] * gs;                                 \
        gi = gi > cv ? cv : gi;                         \
        gi = gi < -cv ? -cv : gi;                       \
        gi = gi + wd * p[i];                            \
    } while (0)

static inline void NC_TAG(sgd_range)(size_t n, real *restrict p, const real *restrict g,
                                     real *restrict buf, real gs, real cv, real wd,
                                     real lr, real mom, const int MOM, const int NES)
{
    size_t i;
    for (i = 0; i < n; i++) {
        real gi, d;
        NC_GRAD(gi, i);
        if (MOM) {
            real b = buf[i] * mom + gi; /* a zero buffer makes step 1 buf = g, as torch */
            buf[i] = b;
            d = NES ? gi + b * mom : b;
        } else {
            d = gi;
        }
        p[i] = p[i] + -lr * d;
    }
}

static inline void NC_TAG(adagrad_range)(size_t n, real *restrict p, const real *restrict g,
                                         real *restrict sum, real gs, real cv, real wd,
                                         real lr, real eps)
{
    size_t i;
    for (i = 0; i < n; i++) {
        real gi, s;
        NC_GRAD(gi, i);
        s = sum[i] + gi * gi;
        sum[i] = s;
        p[i] = p[i] + -lr * (gi / (R_SQRT(s) + eps));
    }
}

static inline void NC_TAG(adadelta_range)(size_t n, real *restrict p, const real *restrict g,
                                          real *restrict sq, real *restrict acc, real gs,
                                          real cv, real wd, real lr, real rho, real rho1,
                                          real eps)
{
    size_t i;
    for (i = 0; i < n; i++) {
        real gi, s, delta;
        NC_GRAD(gi, i);
        s = sq[i] * rho + rho1 * gi * gi;
        sq[i] = s;
        delta = R_SQRT(acc[i] + eps) / R_SQRT(s + eps) * gi;
        acc[i] = acc[i] * rho + rho1 * delta * delta;
        p[i] = p[i] + -lr * delta;
    }
}

static inline void NC_TAG(rmsprop_range)(size_t n, real *restrict p, const real *restrict g,
                                         real *restrict sq, real *restrict ga,
                                         real *restrict buf, real gs, real cv, real wd,
                                         real lr, real rho, real rho1, real eps, real mom,
                                         const int CEN, const int MOM)
{
    size_t i;
    for (i = 0; i < n; i++) {
        real gi, s, avg;
        NC_GRAD(gi, i);
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
    }
}

/* Adam and AdamW (dec != 1): the hot loop. */
static inline void NC_TAG(adam_range)(size_t n, real *restrict p, const real *restrict g,
                                      real *restrict m, real *restrict v,
                                      real *restrict vmax, real gs, real cv, real wd,
                                      real dec, real b1w, real b2, real b2w, real bc2s,
                                      real eps, real nstep, const int AMS)
{
    size_t i;
    for (i = 0; i < n; i++) {
        real gi, mi, vi, denom;
        NC_GRAD(gi, i);
        mi = m[i] + b1w * (gi - m[i]); /* torch's lerp(m, g, 1 - beta_1) */
        vi = v[i] * b2 + b2w * gi * gi;
        m[i] = mi;
        v[i] = vi;
        if (AMS) {
            real x = vmax[i] > vi ? vmax[i] : vi;
            vmax[i] = x;
            vi = x;
        }
        denom = R_SQRT(vi) / bc2s + eps;
        p[i] = p[i] * dec + nstep * (mi / denom);
    }
}

static inline void NC_TAG(nadam_range)(size_t n, real *restrict p, const real *restrict g,
                                       real *restrict m, real *restrict v, real gs, real cv,
                                       real wd, real b1w, real b2, real b2w, real bc2,
                                       real eps, real cg, real cm)
{
    size_t i;
    for (i = 0; i < n; i++) {
        real gi, mi, vi, denom, q;
        NC_GRAD(gi, i);
        mi = m[i] + b1w * (gi - m[i]);
        vi = v[i] * b2 + b2w * gi * gi;
        m[i] = mi;
        v[i] = vi;
        denom = R_SQRT(vi / bc2) + eps;
        q = p[i] + cg * (gi / denom); /* torch's two addcdiv_ calls, in order */
        p[i] = q + cm * (mi / denom);
    }
}

#undef NC_GRAD

/* Runs one chunk of NC_OPTIM_CHUNK elements of the step. */
void NC_OPTIM_TASK(void *ctx, size_t task, int thread)
{
    const NC_TAG(optim_job) *J = (const NC_TAG(optim_job) *)ctx;
    const nc_optim_config *cfg = J->cfg;
    size_t n = J->n, lo = task * NC_OPTIM_CHUNK, len;
    real *p = J->p + lo, *s = J->s + lo;
    const real *g = J->g + lo;
    const real *c = J->c;
    (void)thread;
    len = NC_MIN(n - lo, (size_t)NC_OPTIM_CHUNK);
    switch (cfg->kind) {
    case NC_OPTIM_SGD: /* c: lr, momentum */
        if (cfg->momentum == 0)
            NC_TAG(sgd_range)(len, p, g, NULL, J->gs, J->cv, J->wd, c[0], c[1], 0, 0);
        else if (cfg->nesterov)
            NC_TAG(sgd_range)(len, p, g, s, J->gs, J->cv, J->wd, c[0], c[1], 1, 1);
        else
            NC_TAG(sgd_range)(len, p, g, s, J->gs, J->cv, J->wd, c[0], c[1], 1, 0);
        break;
    case NC_OPTIM_ADAGRAD: /* c: lr, eps */
        NC_TAG(adagrad_range)(len, p, g, s, J->gs, J->cv, J->wd, c[0], c[1]);
        break;
    case NC_OPTIM_ADADELTA: /* c: lr, rho, 1 - rho, eps */
        NC_TAG(adadelta_range)(len, p, g, s, s + n, J->gs, J->cv, J->wd, c[0], c[1], c[2], c[3]);
        break;
    case NC_OPTIM_RMSPROP: { /* c: lr, rho, 1 - rho, eps, momentum */
        int cen = cfg->centered != 0, mom = cfg->momentum > 0;
        real *ga = s + n, *buf = s + (cen ? 2 : 1) * n;
#define NC_RMS(C, M) NC_TAG(rmsprop_range)(len, p, g, s, ga, buf, J->gs, J->cv, J->wd, \
                                           c[0], c[1], c[2], c[3], c[4], C, M)
        if (cen && mom) NC_RMS(1, 1);
        else if (cen) NC_RMS(1, 0);
        else if (mom) NC_RMS(0, 1);
        else NC_RMS(0, 0);
#undef NC_RMS
        break;
    }
    case NC_OPTIM_ADAM:
    case NC_OPTIM_ADAMW: /* c: 1 - beta_1, beta_2, 1 - beta_2, sqrt(bc2), eps, -lr / bc1 */
        if (cfg->amsgrad)
            NC_TAG(adam_range)(len, p, g, s, s + n, s + 2 * n, J->gs, J->cv, J->wd, J->dec,
                               c[0], c[1], c[2], c[3], c[4], c[5], 1);
        else
            NC_TAG(adam_range)(len, p, g, s, s + n, NULL, J->gs, J->cv, J->wd, J->dec,
                               c[0], c[1], c[2], c[3], c[4], c[5], 0);
        break;
    case NC_OPTIM_NADAM: /* c: 1 - beta_1, beta_2, 1 - beta_2, bc2, eps, cg, cm */
        NC_TAG(nadam_range)(len, p, g, s, s + n, J->gs, J->cv, J->wd, c[0], c[1], c[2], c[3],
                            c[4], c[5], c[6]);
        break;
    default:
        break;
    }
}

#ifndef NC_OPTIM_KERNELS_ONLY

#if NC_OPTIM_X86
void NC_OPT_CAT(NC_TAG(nc_optim_task), avx2)(void *ctx, size_t task, int thread);
void NC_OPT_CAT(NC_TAG(nc_optim_task), avx512)(void *ctx, size_t task, int thread);
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

nc_status NC_FN(optim_step)(const nc_optim_config *cfg, size_t n, real *params,
                            const real *grads, real *state, int64_t step)
{
    NC_TAG(optim_job) J;
    double lr = cfg->learning_rate, t = (double)step;
    int i;
    if (cfg->kind < 0 || cfg->kind >= NC_OPTIM_COUNT_ || step < 1) return NC_ERR_ARG;
    J.cfg = cfg;
    J.n = n;
    J.p = params;
    J.g = grads;
    J.s = state;
    J.gs = 1;
    J.cv = (real)HUGE_VAL;
    J.wd = cfg->kind == NC_OPTIM_ADAMW ? 0 : (real)cfg->weight_decay;
    J.dec = cfg->kind == NC_OPTIM_ADAMW ? (real)(1.0 - lr * cfg->weight_decay) : 1;
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
        J.c[3] = (real)sqrt(bc2);
        J.c[4] = (real)cfg->epsilon;
        J.c[5] = (real)(-(lr / bc1));
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
    if (n > 0) nc_parallel_for((n + NC_OPTIM_CHUNK - 1) / NC_OPTIM_CHUNK, NC_TAG(optim_pick)(), &J);
    return NC_OK;
}

#endif /* NC_OPTIM_KERNELS_ONLY */
