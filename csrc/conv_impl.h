/*
 * conv_impl.h -- 2-D convolution (channels-last), written once for `real`.
 *
 * Two paths: the direct one further down (float, stride 1, dilation 1, on
 * AVX-512 machines: implicit GEMM from the zero-padded input) and, for the
 * rest, im2col + the engine's GEMM. Row r = (sample, oy, ox) of the column matrix
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

#if NC_REAL_BITS == 32
/* ------------------------------------------------------------------------ */
/* The direct path (float, stride 1, dilation 1): implicit GEMM.             */
/* ------------------------------------------------------------------------ */
/*
 * im2col's column matrix is kh*kw times the input: writing it and reading
 * it back twice (dW, and dX's col2im with its scattered adds) is memory
 * traffic the arithmetic then waits on. Here the input is zero-padded once
 * (a copy about the input's size) and the micro-kernels read each receptive
 * field in place (conv_kernels.h):
 *   forward  y  = rows(xpad, W)                    per sample
 *   dW          = sum over pixels xpad^T dz        tiles of dW, each one chain
 *   dx          = rows(dzpad, W flipped, c <-> f)  per sample: the transposed
 *                 convolution, so no col2im at all
 * `cols` then holds xpad (which backward reads) and the packed weights
 * after it. dx pads dz one sample at a time into a per-thread block (in
 * cache when the kernel reads it), in dcols past xpad when it fits there
 * (else on the heap), so a second backward of one forward finds xpad intact.
 */
typedef struct NC_TAG(conv_direct) {
    size_t hp, wp;          /* forward: padded input, hp rows of wp pixels */
    size_t hd, wd;          /* dx: padded dz, hd rows of wd pixels */
    size_t xs, ds;          /* elements per padded sample (input, dz) */
    size_t wk;              /* offset of the packed W (forward) / dx's scratch */
} NC_TAG(conv_direct);

#define NC_CONV_SLACK 64 /* zeroed elements after xpad / dzpad (the dw tile's over-read) */

static size_t NC_TAG(conv_round_nb)(size_t x)
{
    return (x + NC_CONV_NB - 1) / NC_CONV_NB * NC_CONV_NB;
}

/* Whether the direct path serves g, and its layout. A function of the
 * geometry and the machine only (never of the ISA level in force), so the
 * forward and the backward agree on what cols holds. */
static int NC_TAG(conv_direct_plan)(const nc_conv2d_geom *g, NC_TAG(conv_direct) *P)
{
    size_t xpad;
    if (!nc_isa_available(NC_ISA_AVX512)) return 0; /* elsewhere im2col + GEMM is faster */
    if (g->stride_h != 1 || g->stride_w != 1 || g->dil_h != 1 || g->dil_w != 1) return 0;
    if (nc_conv2d_is_pointwise(g)) return 0;
    /* dx's padding (kh - 1 - pad_top, ...) must be >= 0 and dz must fit */
    if (g->pad_top >= g->kh || g->pad_left >= g->kw) return 0;
    P->hp = g->oh + g->kh - 1;
    P->wp = g->ow + g->kw - 1;
    P->hd = g->h + g->kh - 1;
    P->wd = g->w + g->kw - 1;
    if (g->kh - 1 - g->pad_top + g->oh > P->hd || g->kw - 1 - g->pad_left + g->ow > P->wd)
        return 0;
    P->xs = P->hp * P->wp * g->c;
    P->ds = P->hd * P->wd * g->f;
    xpad = g->n * P->xs + NC_CONV_SLACK;
    P->wk = xpad;
    return xpad <= nc_conv2d_cols_size(g);
}

static real *NC_TAG(conv_align64)(real *p)
{
    return (real *)(((uintptr_t)p + 63) & ~(uintptr_t)63);
}

/* dst (hp x wp x ch) = src (sh x sw x ch) placed at (top, left), zeros around. */
static void NC_TAG(conv_pad)(const real *src, size_t sh, size_t sw, size_t ch, size_t top,
                             size_t left, size_t hp, size_t wp, real *dst)
{
    size_t y, i, row = wp * ch;
    for (y = 0; y < hp; y++, dst += row) {
        size_t lo = 0, hi = 0; /* copied part of the row, in elements */
        if (y >= top && y - top < sh) {
            const real *s = src + (y - top) * sw * ch;
            size_t n = NC_MIN(sw, wp - left) * ch;
            lo = left * ch;
            hi = lo + n;
            for (i = 0; i < n; i++) dst[lo + i] = s[i];
        }
        for (i = 0; i < lo; i++) dst[i] = 0;
        for (i = hi > lo ? hi : 0; i < row; i++) dst[i] = 0;
    }
}

/* wp[(s*kk + p)*NB + j] = W(p, s*NB + j) for the kk x n matrix W(p, j) =
 * w[p*n + j] (flip == 0), or for dx the flipped, transposed kernel
 * W'((t*kw + u)*f + fi, ci) = w[((kh-1-t)*kw + kw-1-u)*c*f + ci*f + fi]. */
static void NC_TAG(conv_pack_w)(const nc_conv2d_geom *g, const real *w, int flip, real *wp)
{
    size_t kk = g->kh * g->kw * (flip ? g->f : g->c), n = flip ? g->c : g->f;
    size_t s, p, j, ns = NC_TAG(conv_round_nb)(n) / NC_CONV_NB;
    for (s = 0; s < ns; s++)
        for (p = 0; p < kk; p++) {
            real *d = wp + (s * kk + p) * NC_CONV_NB;
            for (j = 0; j < NC_CONV_NB; j++) {
                size_t col = s * NC_CONV_NB + j;
                real v = 0;
                if (col < n) {
                    if (!flip) {
                        v = w[p * n + col];
                    } else {
                        size_t tu = p / g->f, fi = p % g->f, t = tu / g->kw, u = tu % g->kw;
                        size_t src = ((g->kh - 1 - t) * g->kw + (g->kw - 1 - u)) * g->c * g->f;
                        v = w[src + col * g->f + fi];
                    }
                }
                d[j] = v;
            }
        }
}

/* Portable forms of the micro-kernels (contract in conv_kernels.h). */
static void NC_TAG(conv_rows_ref)(size_t nrows, size_t m, size_t n, size_t kh, size_t span,
                                  size_t cin, size_t in_rs, const real *in, const real *wp,
                                  real *out)
{
    size_t kk = kh * span, r, i, t, q, j, s;
    for (r = 0; r < nrows; r++)
        for (i = 0; i < m; i++) {
            real *o = out + (r * m + i) * n;
            for (j = 0; j < n; j++) o[j] = 0;
            for (t = 0; t < kh; t++) {
                const real *a = in + (r + t) * in_rs + i * cin;
                for (q = 0; q < span; q++) {
                    real av = a[q];
                    for (s = 0; s * NC_CONV_NB < n; s++) {
                        const real *b = wp + (s * kk + t * span + q) * NC_CONV_NB;
                        size_t j0 = s * NC_CONV_NB, nn = NC_MIN((size_t)NC_CONV_NB, n - j0);
                        for (j = 0; j < nn; j++) o[j0 + j] += av * b[j];
                    }
                }
            }
        }
}

static void NC_TAG(conv_dw_ref)(size_t rows, size_t cols, size_t nrows, size_t ow, size_t cin,
                                size_t in_rs, const real *in, const real *dz, size_t ldz,
                                real *dw, size_t ldd, int first)
{
    size_t i, j, r, o;
    if (first)
        for (i = 0; i < rows; i++)
            for (j = 0; j < cols; j++) dw[i * ldd + j] = 0;
    for (r = 0; r < nrows; r++)
        for (o = 0; o < ow; o++) {
            const real *a = in + r * in_rs + o * cin, *b = dz + (r * ow + o) * ldz;
            for (i = 0; i < rows; i++) {
                real av = a[i], *d = dw + i * ldd;
                for (j = 0; j < cols; j++) d[j] += av * b[j];
            }
        }
}

static void NC_TAG(conv_rows)(size_t nrows, size_t m, size_t n, size_t kh, size_t span,
                              size_t cin, size_t in_rs, const real *in, const real *wp,
                              real *out)
{
#ifdef NC_CONV_X86
    if (nc_active_isa_ == NC_ISA_AVX512) {
        nc_conv_rows_avx512_f32(nrows, m, n, kh, span, cin, in_rs, in, wp, out);
        return;
    }
#endif
    NC_TAG(conv_rows_ref)(nrows, m, n, kh, span, cin, in_rs, in, wp, out);
}

static void NC_TAG(conv_dw)(size_t rows, size_t cols, size_t nrows, size_t ow, size_t cin,
                            size_t in_rs, const real *in, const real *dz, size_t ldz,
                            real *dw, size_t ldd, int first)
{
#ifdef NC_CONV_X86
    if (nc_active_isa_ == NC_ISA_AVX512) {
        nc_conv_dw_avx512_f32(rows, cols, nrows, ow, cin, in_rs, in, dz, ldz, dw, ldd, first);
        return;
    }
#endif
    NC_TAG(conv_dw_ref)(rows, cols, nrows, ow, cin, in_rs, in, dz, ldz, dw, ldd, first);
}

typedef struct NC_TAG(direct_job) {
    const nc_conv2d_geom *g;
    const NC_TAG(conv_direct) *P;
    const real *x, *b, *dz, *wpk;
    real *y, *pad, *dx, *dw, *part;
    nc_act act;
    real param;
    size_t chunk, tiles;
} NC_TAG(direct_job);

static void NC_TAG(direct_forward_task)(void *ctx, size_t task, int thread)
{
    const NC_TAG(direct_job) *J = (const NC_TAG(direct_job) *)ctx;
    const nc_conv2d_geom *g = J->g;
    const NC_TAG(conv_direct) *P = J->P;
    size_t s0 = task * J->chunk, s1 = NC_MIN(g->n, s0 + J->chunk), s;
    (void)thread;
    for (s = s0; s < s1; s++) {
        real *xp = J->pad + s * P->xs, *y = J->y + s * g->oh * g->ow * g->f;
        NC_TAG(conv_pad)(J->x + s * g->h * g->w * g->c, g->h, g->w, g->c, g->pad_top,
                         g->pad_left, P->hp, P->wp, xp);
        NC_TAG(conv_rows)(g->oh, g->ow, g->f, g->kh, g->kw * g->c, g->c, P->wp * g->c, xp,
                          J->wpk, y);
        if (J->b || J->act != NC_ACT_IDENTITY)
            NC_FN(bias_act)(J->act, J->param, g->oh * g->ow, g->f, J->b, y, g->f);
    }
}

static void NC_TAG(direct_dx_task)(void *ctx, size_t task, int thread)
{
    const NC_TAG(direct_job) *J = (const NC_TAG(direct_job) *)ctx;
    const nc_conv2d_geom *g = J->g;
    const NC_TAG(conv_direct) *P = J->P;
    size_t s0 = task * J->chunk, s1 = NC_MIN(g->n, s0 + J->chunk), s;
    real *dp = J->pad + (size_t)thread * (P->ds + NC_CONV_SLACK);
    for (s = s0; s < s1; s++) {
        NC_TAG(conv_pad)(J->dz + s * g->oh * g->ow * g->f, g->oh, g->ow, g->f,
                         g->kh - 1 - g->pad_top, g->kw - 1 - g->pad_left, P->hd, P->wd, dp);
        NC_TAG(conv_rows)(g->h, g->w, g->c, g->kh, g->kw * g->f, g->f, P->wd * g->f, dp,
                          J->wpk, J->dx + s * g->h * g->w * g->c);
    }
}

/* Output rows per dw block: the block's dz and xpad rows stay in L1/L2
 * while every tile of the task passes over them. */
#define NC_CONV_DW_BLOCK 4
/* dW's sample chunks (partial sums added in order): a constant, for bits */
#define NC_CONV_DW_CHUNKS 8

/* dW's tiles: kernel row t x rows q0.. of the span x columns j0... One
 * height for every strip (the widest's), which any narrower strip's
 * kernel tile also holds. */
static size_t NC_TAG(dw_height)(const nc_conv2d_geom *g)
{
    return nc_conv_dw_rows(NC_MIN(g->f, (size_t)NC_CONV_DW_COLS));
}

static size_t NC_TAG(dw_tiles)(const nc_conv2d_geom *g)
{
    size_t ht = NC_TAG(dw_height)(g), nj = (g->f + NC_CONV_DW_COLS - 1) / NC_CONV_DW_COLS;
    return g->kh * ((g->kw * g->c + ht - 1) / ht) * nj;
}

static void NC_TAG(dw_tile_at)(const nc_conv2d_geom *g, size_t i, size_t *t, size_t *q0,
                               size_t *rows, size_t *j0, size_t *cols)
{
    size_t span = g->kw * g->c, ht = NC_TAG(dw_height)(g), qt = (span + ht - 1) / ht;
    size_t nj = (g->f + NC_CONV_DW_COLS - 1) / NC_CONV_DW_COLS;
    *j0 = (i % nj) * NC_CONV_DW_COLS;
    *cols = NC_MIN((size_t)NC_CONV_DW_COLS, g->f - *j0);
    i /= nj;
    *q0 = (i % qt) * ht;
    *rows = NC_MIN(ht, span - *q0);
    *t = i / qt;
}

static void NC_TAG(direct_dw_task)(void *ctx, size_t task, int thread)
{
    const NC_TAG(direct_job) *J = (const NC_TAG(direct_job) *)ctx;
    const nc_conv2d_geom *g = J->g;
    const NC_TAG(conv_direct) *P = J->P;
    size_t s0 = task * J->chunk, s1 = NC_MIN(g->n, s0 + J->chunk);
    size_t s, r0, i, in_rs = P->wp * g->c, span = g->kw * g->c;
    real *dw = task == 0 ? J->dw : J->part + (task - 1) * g->kh * span * g->f;
    (void)thread;
    for (s = s0; s < s1; s++) {
        const real *xp = J->pad + s * P->xs, *dz = J->dz + s * g->oh * g->ow * g->f;
        for (r0 = 0; r0 < g->oh; r0 += NC_CONV_DW_BLOCK) {
            size_t nr = NC_MIN((size_t)NC_CONV_DW_BLOCK, g->oh - r0);
            for (i = 0; i < J->tiles; i++) {
                size_t t, q0, rows, j0, cols;
                NC_TAG(dw_tile_at)(g, i, &t, &q0, &rows, &j0, &cols);
                NC_TAG(conv_dw)(rows, cols, nr, g->ow, g->c, in_rs,
                                xp + (r0 + t) * in_rs + q0, dz + r0 * g->ow * g->f + j0, g->f,
                                dw + (t * span + q0) * g->f + j0, g->f, s == s0 && r0 == 0);
            }
        }
    }
}

static nc_status NC_TAG(direct_forward)(const nc_conv2d_geom *g, const NC_TAG(conv_direct) *P,
                                        const real *x, const real *w, const real *b, nc_act act,
                                        real param, real *y, real *cols)
{
    NC_TAG(direct_job) J;
    size_t i, need = NC_TAG(conv_round_nb)(g->f) * g->kh * g->kw * g->c + 16;
    void *heap = NULL;
    real *wpk = cols + P->wk; /* the packed kernel: past xpad if it fits, else the heap */
    if (P->wk + need > nc_conv2d_cols_size(g)) {
        heap = malloc(need * sizeof(real));
        if (heap == NULL) return NC_ERR_NOMEM;
        wpk = (real *)heap;
    }
    memset(&J, 0, sizeof J);
    J.g = g; J.P = P; J.x = x; J.b = b; J.y = y; J.pad = cols; J.act = act; J.param = param;
    J.wpk = NC_TAG(conv_align64)(wpk);
    NC_TAG(conv_pack_w)(g, w, 0, (real *)J.wpk);
    for (i = 0; i < NC_CONV_SLACK; i++) cols[g->n * P->xs + i] = 0;
    J.chunk = NC_TAG(conv_chunk)(g);
    nc_parallel_for_max((g->n + J.chunk - 1) / J.chunk, NC_TAG(conv_threads)(g),
                        NC_TAG(direct_forward_task), &J);
    free(heap);
    return NC_OK;
}

static nc_status NC_TAG(direct_backward)(const nc_conv2d_geom *g, const NC_TAG(conv_direct) *P,
                                         const real *cols, const real *w, const real *dz,
                                         real *dx, real *dw, real *dcols)
{
    NC_TAG(direct_job) J;
    memset(&J, 0, sizeof J);
    J.g = g; J.P = P; J.dz = dz;
    if (dw) {
        /* A fixed number of sample chunks (never the thread count), each
         * summing its pixels in order into its own partial dW, added up in
         * chunk order afterwards: the same bits on any number of threads,
         * and each task streams only its own samples. */
        size_t chunks = NC_MIN(g->n, (size_t)NC_CONV_DW_CHUNKS), i, t;
        size_t size = g->kh * g->kw * g->c * g->f;
        void *heap = NULL;
        J.chunk = (g->n + chunks - 1) / chunks;
        chunks = (g->n + J.chunk - 1) / J.chunk;
        if (chunks > 1) {
            heap = malloc((chunks - 1) * size * sizeof(real));
            if (heap == NULL) return NC_ERR_NOMEM;
        }
        J.pad = (real *)cols;
        J.dw = dw;
        J.part = (real *)heap;
        J.tiles = NC_TAG(dw_tiles)(g);
        nc_parallel_for_max(chunks, NC_TAG(conv_threads)(g), NC_TAG(direct_dw_task), &J);
        for (t = 1; t < chunks; t++) {
            const real *p = J.part + (t - 1) * size;
            for (i = 0; i < size; i++) dw[i] += p[i];
        }
        free(heap);
    }
    if (dx) {
        int threads = NC_TAG(conv_threads)(g);
        size_t wtk = NC_TAG(conv_round_nb)(g->c) * g->kh * g->kw * g->f;
        size_t need = (size_t)threads * (P->ds + NC_CONV_SLACK) + wtk + 16;
        void *heap = NULL;
        real *pad = dcols + P->wk;
        if (P->wk + need > nc_conv2d_cols_size(g)) {
            heap = malloc(need * sizeof(real));
            if (heap == NULL) return NC_ERR_NOMEM;
            pad = (real *)heap;
        }
        J.pad = pad;
        J.dx = dx;
        J.wpk = NC_TAG(conv_align64)(pad + (size_t)threads * (P->ds + NC_CONV_SLACK));
        NC_TAG(conv_pack_w)(g, w, 1, (real *)J.wpk);
        J.chunk = NC_TAG(conv_chunk)(g);
        nc_parallel_for_max((g->n + J.chunk - 1) / J.chunk, threads,
                            NC_TAG(direct_dx_task), &J);
        free(heap);
    }
    return NC_OK;
}
#endif /* NC_REAL_BITS == 32 */


nc_status NC_FN(conv2d_forward)(const nc_conv2d_geom *g, const real *x, const real *w,
                                const real *b, nc_act act, real param, real *y, real *cols)
{
    NC_TAG(conv_job) J;
    size_t n_tasks;
    if ((unsigned)act >= NC_ACT_COUNT_ || act == NC_ACT_SOFTMAX || act == NC_ACT_LOG_SOFTMAX)
        return NC_ERR_ARG;
    if (g->n == 0 || g->oh == 0 || g->ow == 0 || g->f == 0) return NC_OK;
#if NC_REAL_BITS == 32
    {
        NC_TAG(conv_direct) P;
        if (cols && NC_TAG(conv_direct_plan)(g, &P)) {
            return NC_TAG(direct_forward)(g, &P, x, w, b, act, param, y, cols);
        }
    }
#endif
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
#if NC_REAL_BITS == 32
    NC_TAG(conv_direct) P;
    int direct = rows > 0 && cols && NC_TAG(conv_direct_plan)(g, &P);
#endif
    if (db) {
        for (j = 0; j < g->f; j++) db[j] = 0;
        for (i = 0; i < rows; i++) {
            const real *dzi = dz + i * g->f;
            for (j = 0; j < g->f; j++) db[j] += dzi[j];
        }
    }
#if NC_REAL_BITS == 32
    if (direct) {
        return NC_TAG(direct_backward)(g, &P, cols, w, dz, dx, dw, dcols);
    }
#endif
    if (dw) {
        /* dW (K x F) = cols^T (K x rows) dZ (rows x F): one product, k = every row */
        if (rows == 0)
            for (i = 0; i < kk * g->f; i++) dw[i] = 0;
        else
            NC_FN(gemm)(1, 0, kk, g->f, rows, R_C(1), cols, kk, dz, g->f, R_C(0), dw, g->f);
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
