/*
 * conv_impl.h -- 2-D convolution (channels-last), written once for `real`.
 *
 * im2col + the engine's GEMM. Row r = (sample, oy, ox) of the column matrix
 * holds the receptive field of that output pixel in Keras' kernel order
 * (ky, kx, c), so the kernel (kh, kw, c, f) is already the K x F matrix of
 * the product: Y (rows x F) = cols (rows x K) W (K x F).
 *
 * Threads: the forward and dx are split over fixed chunks of samples (the
 * chunking does not depend on the thread count), each chunk writing its own
 * rows; dW is one GEMM over the whole batch's columns (k = every row), so no
 * task ever accumulates into memory another task writes: results are
 * bit-identical at any thread count.
 */

/* Receptive field of one output pixel, K = kh*kw*c entries, zeros where the
 * window leaves the (padded) image. */
static void NC_TAG(conv_im2col_pixel)(const nc_conv2d_geom *g, const real *xs,
                                      size_t oy, size_t ox, real *row)
{
    size_t ky, kx, i, c = g->c, span = g->kw * c;
    ptrdiff_t ix0 = (ptrdiff_t)(ox * g->stride_w) - (ptrdiff_t)g->pad_left;
    /* with dilation 1 and the window inside the row, a kernel row is kw * c
     * contiguous inputs: one copy instead of kw */
    int whole = g->dil_w == 1 && ix0 >= 0 && ix0 + (ptrdiff_t)g->kw <= (ptrdiff_t)g->w;
    for (ky = 0; ky < g->kh; ky++, row += span) {
        /* iy = oy*sh + ky*dh - pad_top, in signed arithmetic */
        ptrdiff_t iy = (ptrdiff_t)(oy * g->stride_h + ky * g->dil_h) - (ptrdiff_t)g->pad_top;
        const real *src;
        if (iy < 0 || iy >= (ptrdiff_t)g->h) {
            for (i = 0; i < span; i++) row[i] = 0;
            continue;
        }
        if (whole) {
            src = xs + ((size_t)iy * g->w + (size_t)ix0) * c;
            for (i = 0; i < span; i++) row[i] = src[i];
            continue;
        }
        for (kx = 0; kx < g->kw; kx++) {
            ptrdiff_t ix = ix0 + (ptrdiff_t)(kx * g->dil_w);
            real *dst = row + kx * c;
            if (ix < 0 || ix >= (ptrdiff_t)g->w) {
                for (i = 0; i < c; i++) dst[i] = 0;
            } else {
                src = xs + ((size_t)iy * g->w + (size_t)ix) * c;
                for (i = 0; i < c; i++) dst[i] = src[i];
            }
        }
    }
}

/* The opposite: adds one output pixel's column gradient into the sample's dx. */
static void NC_TAG(conv_col2im_pixel)(const nc_conv2d_geom *g, const real *row,
                                      size_t oy, size_t ox, real *dxs)
{
    size_t ky, kx, i, c = g->c, span = g->kw * c;
    ptrdiff_t ix0 = (ptrdiff_t)(ox * g->stride_w) - (ptrdiff_t)g->pad_left;
    int whole = g->dil_w == 1 && ix0 >= 0 && ix0 + (ptrdiff_t)g->kw <= (ptrdiff_t)g->w;
    for (ky = 0; ky < g->kh; ky++, row += span) {
        ptrdiff_t iy = (ptrdiff_t)(oy * g->stride_h + ky * g->dil_h) - (ptrdiff_t)g->pad_top;
        real *dst;
        if (iy < 0 || iy >= (ptrdiff_t)g->h) continue;
        if (whole) {
            dst = dxs + ((size_t)iy * g->w + (size_t)ix0) * c;
            for (i = 0; i < span; i++) dst[i] += row[i];
            continue;
        }
        for (kx = 0; kx < g->kw; kx++) {
            ptrdiff_t ix = ix0 + (ptrdiff_t)(kx * g->dil_w);
            if (ix < 0 || ix >= (ptrdiff_t)g->w) continue;
            dst = dxs + ((size_t)iy * g->w + (size_t)ix) * c;
            for (i = 0; i < c; i++) dst[i] += row[kx * c + i];
        }
    }
}

typedef struct NC_TAG(conv_job) {
    const nc_conv2d_geom *g;
    const real *x, *w, *b, *dz;
    real *y, *cols, *dx;
    nc_act act;
    real param;
    size_t chunk; /* samples per task */
} NC_TAG(conv_job);

static void NC_TAG(conv_forward_task)(void *ctx, size_t task, int thread)
{
    const NC_TAG(conv_job) *J = (const NC_TAG(conv_job) *)ctx;
    const nc_conv2d_geom *g = J->g;
    size_t s0 = task * J->chunk, s1 = NC_MIN(g->n, s0 + J->chunk), s;
    size_t hw_out = g->oh * g->ow, kk = nc_conv2d_k(g);
    size_t r0 = s0 * hw_out, rows = (s1 - s0) * hw_out;
    const real *cols;
    (void)thread;
    if (nc_conv2d_is_pointwise(g)) {
        cols = J->x + r0 * kk; /* a 1x1, stride-1, unpadded kernel reads x as it is */
    } else {
        real *c = J->cols + r0 * kk;
        for (s = s0; s < s1; s++) {
            const real *xs = J->x + s * g->h * g->w * g->c;
            size_t oy, ox;
            for (oy = 0; oy < g->oh; oy++)
                for (ox = 0; ox < g->ow; ox++, c += kk)
                    NC_TAG(conv_im2col_pixel)(g, xs, oy, ox, c);
        }
        cols = J->cols + r0 * kk;
    }
    NC_FN(gemm)(0, 0, rows, g->f, kk, R_C(1), cols, kk, J->w, g->f, R_C(0),
                J->y + r0 * g->f, g->f);
    {
        /* bias row by row, then the (element-wise) activation over the whole
         * block at once: rows are as narrow as f, which may be a handful */
        real *y = J->y + r0 * g->f;
        size_t i, j;
        if (J->b)
            for (i = 0; i < rows; i++)
                for (j = 0; j < g->f; j++) y[i * g->f + j] += J->b[j];
        if (J->act != NC_ACT_IDENTITY)
            NC_FN(act_forward)(J->act, J->param, 1, rows * g->f, y, y);
    }
}

static void NC_TAG(conv_dx_task)(void *ctx, size_t task, int thread)
{
    const NC_TAG(conv_job) *J = (const NC_TAG(conv_job) *)ctx;
    const nc_conv2d_geom *g = J->g;
    size_t s0 = task * J->chunk, s1 = NC_MIN(g->n, s0 + J->chunk), s, i;
    size_t hw_out = g->oh * g->ow, kk = nc_conv2d_k(g), in_size = g->h * g->w * g->c;
    size_t r0 = s0 * hw_out, rows = (s1 - s0) * hw_out;
    real *dcols = J->cols + r0 * kk;
    const real *row = dcols;
    (void)thread;
    /* dcols (rows x K) = dZ (rows x F) W^T (F x K) */
    NC_FN(gemm)(0, 1, rows, kk, g->f, R_C(1), J->dz + r0 * g->f, g->f, J->w, g->f,
                R_C(0), dcols, kk);
    for (s = s0; s < s1; s++) {
        real *dxs = J->dx + s * in_size;
        size_t oy, ox;
        for (i = 0; i < in_size; i++) dxs[i] = 0;
        for (oy = 0; oy < g->oh; oy++)
            for (ox = 0; ox < g->ow; ox++, row += kk)
                NC_TAG(conv_col2im_pixel)(g, row, oy, ox, dxs);
    }
}

/* Samples per task: enough rows (about 256) that a task's GEMM is worth
 * its packing, a function of the geometry only. */
static size_t NC_TAG(conv_chunk)(const nc_conv2d_geom *g)
{
    size_t hw = g->oh * g->ow;
    size_t chunk = hw >= 256 ? 1 : (256 + hw - 1) / (hw ? hw : 1);
    return NC_MAX((size_t)1, NC_MIN(chunk, g->n));
}

static int NC_TAG(conv_threads)(const nc_conv2d_geom *g)
{
    double flops = 2.0 * (double)g->n * (double)(g->oh * g->ow) * (double)nc_conv2d_k(g)
                   * (double)g->f;
    return nc_threads_for(flops, 2e5);
}

nc_status NC_FN(conv2d_forward)(const nc_conv2d_geom *g, const real *x, const real *w,
                                const real *b, nc_act act, real param, real *y, real *cols)
{
    NC_TAG(conv_job) J;
    size_t n_tasks;
    if ((unsigned)act >= NC_ACT_COUNT_ || act == NC_ACT_SOFTMAX || act == NC_ACT_LOG_SOFTMAX)
        return NC_ERR_ARG;
    if (g->n == 0 || g->oh == 0 || g->ow == 0 || g->f == 0) return NC_OK;
    J.g = g; J.x = x; J.w = w; J.b = b; J.dz = NULL;
    J.y = y; J.cols = cols; J.dx = NULL; J.act = act; J.param = param;
    J.chunk = NC_TAG(conv_chunk)(g);
    n_tasks = (g->n + J.chunk - 1) / J.chunk;
    nc_parallel_for_max(n_tasks, NC_TAG(conv_threads)(g), NC_TAG(conv_forward_task), &J);
    return NC_OK;
}

nc_status NC_FN(conv2d_backward)(const nc_conv2d_geom *g, const real *cols, const real *w,
                                 const real *dz, real *dx, real *dw, real *db, real *dcols)
{
    size_t rows = g->n * g->oh * g->ow, kk = nc_conv2d_k(g), i, j;
    if (dw) {
        /* dW (K x F) = cols^T (K x rows) dZ (rows x F): one product, k = every row */
        if (rows == 0)
            for (i = 0; i < kk * g->f; i++) dw[i] = 0;
        else
            NC_FN(gemm)(1, 0, kk, g->f, rows, R_C(1), cols, kk, dz, g->f, R_C(0), dw, g->f);
    }
    if (db) {
        for (j = 0; j < g->f; j++) db[j] = 0;
        for (i = 0; i < rows; i++) {
            const real *dzi = dz + i * g->f;
            for (j = 0; j < g->f; j++) db[j] += dzi[j];
        }
    }
    if (dx) {
        if (nc_conv2d_is_pointwise(g)) {
            /* dX (rows x C) = dZ W^T directly */
            NC_FN(gemm)(0, 1, rows, kk, g->f, R_C(1), dz, g->f, w, g->f, R_C(0), dx, kk);
        } else if (rows == 0) {
            size_t total = g->n * g->h * g->w * g->c;
            for (i = 0; i < total; i++) dx[i] = 0;
        } else {
            NC_TAG(conv_job) J;
            J.g = g; J.x = NULL; J.w = w; J.b = NULL; J.dz = dz;
            J.y = NULL; J.cols = dcols; J.dx = dx; J.act = NC_ACT_IDENTITY; J.param = 0;
            J.chunk = NC_TAG(conv_chunk)(g);
            nc_parallel_for_max((g->n + J.chunk - 1) / J.chunk, NC_TAG(conv_threads)(g),
                                NC_TAG(conv_dx_task), &J);
        }
    }
    return NC_OK;
}
