/*
 * norm_impl.h -- batch normalisation over the rows of an (n, c) row-major
 * array (a batch of feature vectors, or channels-last images flattened to
 * pixels x channels), written once for `real`.
 *
 * Per-channel sums run over channel tiles of NC_BN_TILE columns: each tile
 * adds NC_BN_ROWS rows at a time in `real` (contiguous, so the compiler
 * vectorises across channels) and folds each block into a double total, so
 * float32 keeps ~double accuracy over 50,000-row batches without a pairwise
 * tree. Tiles are the threads' unit for the sums and row blocks for the
 * elementwise passes; neither depends on the thread count, so results are
 * bit-identical at any count.
 */

typedef struct NC_TAG(bn_job) {
    size_t n, c;
    const real *x, *dy, *gamma, *beta, *xhat;
    real *mean, *inv_std, *moving_mean, *moving_var, *dgamma, *dbeta, *out_a, *out_b;
    double momentum, eps;
    int training;
} NC_TAG(bn_job);

/* sum over rows of (x - shift) (power 1) or (x - shift)^2 (power 2), or of
 * a * b (product: b given), for columns [j0, j0 + w) */
static void NC_TAG(bn_colsum)(size_t n, size_t c, size_t j0, size_t w, const real *a,
                              const real *b, const double *shift, int power, double *total)
{
    real acc[NC_BN_TILE], sh[NC_BN_TILE];
    size_t i0, i, j;
    for (j = 0; j < w; j++) {
        total[j] = 0;
        sh[j] = shift ? (real)shift[j] : R_C(0);
    }
    for (i0 = 0; i0 < n; i0 += NC_BN_ROWS) {
        size_t i1 = NC_MIN(n, i0 + NC_BN_ROWS);
        for (j = 0; j < w; j++) acc[j] = 0;
        for (i = i0; i < i1; i++) {
            const real *ar = a + i * c + j0;
            if (b) {
                const real *br = b + i * c + j0;
                for (j = 0; j < w; j++) acc[j] += ar[j] * br[j];
            } else if (power == 2) {
                for (j = 0; j < w; j++) {
                    real d = ar[j] - sh[j];
                    acc[j] += d * d;
                }
            } else {
                for (j = 0; j < w; j++) acc[j] += ar[j];
            }
        }
        for (j = 0; j < w; j++) total[j] += (double)acc[j];
    }
}

/* training: batch mean and (biased) variance of one tile, moving averages,
 * inv_std; inference: inv_std from the moving variance */
static void NC_TAG(bn_stats_task)(void *ctx, size_t task, int thread)
{
    const NC_TAG(bn_job) *J = (const NC_TAG(bn_job) *)ctx;
    size_t j0 = task * NC_BN_TILE, w = NC_MIN((size_t)NC_BN_TILE, J->c - j0), j;
    double mean[NC_BN_TILE], var[NC_BN_TILE];
    (void)thread;
    if (!J->training) {
        for (j = 0; j < w; j++) {
            J->mean[j0 + j] = J->moving_mean[j0 + j];
            J->inv_std[j0 + j] = (real)(1.0 / sqrt((double)J->moving_var[j0 + j] + J->eps));
        }
        return;
    }
    NC_TAG(bn_colsum)(J->n, J->c, j0, w, J->x, NULL, NULL, 1, mean);
    for (j = 0; j < w; j++) mean[j] /= (double)J->n;
    /* two passes: the variance of values far from 0 keeps its digits */
    NC_TAG(bn_colsum)(J->n, J->c, j0, w, J->x, NULL, mean, 2, var);
    for (j = 0; j < w; j++) {
        double m = J->momentum, v = var[j] / (double)J->n;
        J->mean[j0 + j] = (real)mean[j];
        J->inv_std[j0 + j] = (real)(1.0 / sqrt(v + J->eps));
        J->moving_mean[j0 + j] = (real)(m * J->moving_mean[j0 + j] + (1 - m) * mean[j]);
        J->moving_var[j0 + j] = (real)(m * J->moving_var[j0 + j] + (1 - m) * v);
    }
}

/* xhat = (x - mean) * inv_std; y = gamma * xhat + beta, rows of one block */
static void NC_TAG(bn_forward_task)(void *ctx, size_t task, int thread)
{
    const NC_TAG(bn_job) *J = (const NC_TAG(bn_job) *)ctx;
    size_t i0 = task * NC_BN_ROWS, i1 = NC_MIN(J->n, i0 + NC_BN_ROWS), i, j, c = J->c;
    (void)thread;
    for (i = i0; i < i1; i++) {
        const real *x = J->x + i * c;
        real *xh = J->out_a + i * c, *y = J->out_b + i * c;
        for (j = 0; j < c; j++) {
            real h = (x[j] - J->mean[j]) * J->inv_std[j];
            xh[j] = h;
            y[j] = (J->gamma ? J->gamma[j] * h : h) + (J->beta ? J->beta[j] : R_C(0));
        }
    }
}

static void NC_TAG(bn_grad_task)(void *ctx, size_t task, int thread)
{
    const NC_TAG(bn_job) *J = (const NC_TAG(bn_job) *)ctx;
    size_t j0 = task * NC_BN_TILE, w = NC_MIN((size_t)NC_BN_TILE, J->c - j0), j;
    double sum_dy[NC_BN_TILE], sum_dy_xhat[NC_BN_TILE];
    (void)thread;
    NC_TAG(bn_colsum)(J->n, J->c, j0, w, J->dy, NULL, NULL, 1, sum_dy);
    NC_TAG(bn_colsum)(J->n, J->c, j0, w, J->dy, J->xhat, NULL, 1, sum_dy_xhat);
    for (j = 0; j < w; j++) {
        J->dbeta[j0 + j] = (real)sum_dy[j];
        J->dgamma[j0 + j] = (real)sum_dy_xhat[j];
    }
}

/* dx = gamma inv_std (dy - dbeta / n - xhat dgamma / n) in training (the batch
 * statistics depend on x), gamma inv_std dy in inference */
static void NC_TAG(bn_dx_task)(void *ctx, size_t task, int thread)
{
    const NC_TAG(bn_job) *J = (const NC_TAG(bn_job) *)ctx;
    size_t i0 = task * NC_BN_ROWS, i1 = NC_MIN(J->n, i0 + NC_BN_ROWS), i, j, c = J->c;
    const real inv_n = (real)(1.0 / (double)J->n);
    (void)thread;
    for (i = i0; i < i1; i++) {
        const real *dy = J->dy + i * c, *xh = J->xhat + i * c;
        real *dx = J->out_a + i * c;
        for (j = 0; j < c; j++) {
            real s = (J->gamma ? J->gamma[j] : R_C(1)) * J->inv_std[j];
            dx[j] = J->training
                ? s * (dy[j] - J->dbeta[j] * inv_n - xh[j] * (J->dgamma[j] * inv_n))
                : s * dy[j];
        }
    }
}

nc_status NC_FN(batchnorm_forward)(size_t n, size_t c, const real *x, const real *gamma,
                                   const real *beta, real *moving_mean, real *moving_var,
                                   double momentum, double eps, int training, real *mean,
                                   real *inv_std, real *xhat, real *y)
{
    NC_TAG(bn_job) J = {0};
    size_t tiles = (c + NC_BN_TILE - 1) / NC_BN_TILE, blocks = (n + NC_BN_ROWS - 1) / NC_BN_ROWS;
    double work = (double)n * (double)c;
    J.n = n; J.c = c; J.x = x; J.gamma = gamma; J.beta = beta;
    J.moving_mean = moving_mean; J.moving_var = moving_var; J.momentum = momentum; J.eps = eps;
    J.training = training; J.mean = mean; J.inv_std = inv_std; J.out_a = xhat; J.out_b = y;
    if (c == 0) return NC_OK;
    nc_parallel_for_max(tiles, nc_threads_for(2 * work, 65536), NC_TAG(bn_stats_task), &J);
    if (n) nc_parallel_for_max(blocks, nc_threads_for(work, 65536), NC_TAG(bn_forward_task), &J);
    return NC_OK;
}

nc_status NC_FN(batchnorm_backward)(size_t n, size_t c, const real *dy, const real *xhat,
                                    const real *inv_std, const real *gamma, int training,
                                    real *dgamma, real *dbeta, real *dx)
{
    NC_TAG(bn_job) J = {0};
    size_t tiles = (c + NC_BN_TILE - 1) / NC_BN_TILE, blocks = (n + NC_BN_ROWS - 1) / NC_BN_ROWS;
    double work = (double)n * (double)c;
    J.n = n; J.c = c; J.dy = dy; J.xhat = xhat; J.inv_std = (real *)inv_std; J.gamma = gamma;
    J.training = training; J.dgamma = dgamma; J.dbeta = dbeta; J.out_a = dx;
    if (c == 0) return NC_OK;
    nc_parallel_for_max(tiles, nc_threads_for(2 * work, 65536), NC_TAG(bn_grad_task), &J);
    if (n) nc_parallel_for_max(blocks, nc_threads_for(work, 65536), NC_TAG(bn_dx_task), &J);
    return NC_OK;
}
