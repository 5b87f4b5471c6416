/*
 * pool_impl.h -- 2-D max and average pooling (channels-last), written once
 * for `real`.
 *
 * Windows are clipped to the image: padding never takes part (Keras'
 * convention: "same" max pooling ignores the padded border, "same" average
 * pooling divides by the number of real pixels in the window). Max pooling
 * records, per output element, which input pixel won (the first maximum in
 * row-major window order; NaN wins and stays), and its backward routes dy
 * there. Work is split over fixed chunks of samples, each task writing only
 * its own samples: bit-identical at any thread count.
 */

typedef struct NC_TAG(pool_job) {
    const nc_pool2d_geom *g;
    const real *x, *dy;
    real *y, *dx;
    int32_t *argmax;
    size_t chunk;
} NC_TAG(pool_job);

static void NC_TAG(pool_max_fwd_task)(void *ctx, size_t task, int thread)
{
    const NC_TAG(pool_job) *J = (const NC_TAG(pool_job) *)ctx;
    const nc_pool2d_geom *g = J->g;
    size_t s0 = task * J->chunk, s1 = NC_MIN(g->n, s0 + J->chunk), s, c = g->c;
    (void)thread;
    for (s = s0; s < s1; s++) {
        const real *xs = J->x + s * g->h * g->w * c;
        real *ys = J->y + s * g->oh * g->ow * c;
        int32_t *as = J->argmax + s * g->oh * g->ow * c;
        size_t oy, ox, iy, ix, y0, y1, x0, x1, i;
        for (oy = 0; oy < g->oh; oy++) {
            nc_pool_span(oy, g->sh, g->pad_top, g->ph, g->h, &y0, &y1);
            for (ox = 0; ox < g->ow; ox++, ys += c, as += c) {
                nc_pool_span(ox, g->sw, g->pad_left, g->pw, g->w, &x0, &x1);
                /* the first pixel of the window seeds every channel */
                {
                    const real *src = xs + (y0 * g->w + x0) * c;
                    int32_t at = (int32_t)(y0 * g->w + x0);
                    for (i = 0; i < c; i++) { ys[i] = src[i]; as[i] = at; }
                }
                for (iy = y0; iy < y1; iy++)
                    for (ix = (iy == y0 ? x0 + 1 : x0); ix < x1; ix++) {
                        const real *src = xs + (iy * g->w + ix) * c;
                        int32_t at = (int32_t)(iy * g->w + ix);
                        /* selects, not a branch: which pixel wins is data,
                         * and a mispredicted branch per element cost more
                         * than the whole comparison */
                        for (i = 0; i < c; i++) {
                            real v = src[i], m = ys[i];
                            int take = (v > m) | ((v != v) & (m == m));
                            ys[i] = take ? v : m;
                            as[i] = take ? at : as[i];
                        }
                    }
            }
        }
    }
}

static void NC_TAG(pool_max_bwd_task)(void *ctx, size_t task, int thread)
{
    const NC_TAG(pool_job) *J = (const NC_TAG(pool_job) *)ctx;
    const nc_pool2d_geom *g = J->g;
    size_t s0 = task * J->chunk, s1 = NC_MIN(g->n, s0 + J->chunk), s, c = g->c, i, p;
    size_t in_size = g->h * g->w * c, out_px = g->oh * g->ow;
    (void)thread;
    for (s = s0; s < s1; s++) {
        real *dxs = J->dx + s * in_size;
        const real *dys = J->dy + s * out_px * c;
        const int32_t *as = J->argmax + s * out_px * c;
        for (i = 0; i < in_size; i++) dxs[i] = 0;
        for (p = 0; p < out_px; p++, dys += c, as += c)
            for (i = 0; i < c; i++) dxs[(size_t)as[i] * c + i] += dys[i];
    }
}

static void NC_TAG(pool_avg_fwd_task)(void *ctx, size_t task, int thread)
{
    const NC_TAG(pool_job) *J = (const NC_TAG(pool_job) *)ctx;
    const nc_pool2d_geom *g = J->g;
    size_t s0 = task * J->chunk, s1 = NC_MIN(g->n, s0 + J->chunk), s, c = g->c;
    (void)thread;
    for (s = s0; s < s1; s++) {
        const real *xs = J->x + s * g->h * g->w * c;
        real *ys = J->y + s * g->oh * g->ow * c;
        size_t oy, ox, iy, ix, y0, y1, x0, x1, i;
        for (oy = 0; oy < g->oh; oy++) {
            nc_pool_span(oy, g->sh, g->pad_top, g->ph, g->h, &y0, &y1);
            for (ox = 0; ox < g->ow; ox++, ys += c) {
                real inv;
                nc_pool_span(ox, g->sw, g->pad_left, g->pw, g->w, &x0, &x1);
                inv = R_C(1) / (real)((y1 - y0) * (x1 - x0));
                for (i = 0; i < c; i++) ys[i] = 0;
                for (iy = y0; iy < y1; iy++)
                    for (ix = x0; ix < x1; ix++) {
                        const real *src = xs + (iy * g->w + ix) * c;
                        for (i = 0; i < c; i++) ys[i] += src[i];
                    }
                for (i = 0; i < c; i++) ys[i] *= inv;
            }
        }
    }
}

static void NC_TAG(pool_avg_bwd_task)(void *ctx, size_t task, int thread)
{
    const NC_TAG(pool_job) *J = (const NC_TAG(pool_job) *)ctx;
    const nc_pool2d_geom *g = J->g;
    size_t s0 = task * J->chunk, s1 = NC_MIN(g->n, s0 + J->chunk), s, c = g->c;
    size_t in_size = g->h * g->w * c;
    (void)thread;
    for (s = s0; s < s1; s++) {
        real *dxs = J->dx + s * in_size;
        const real *dys = J->dy + s * g->oh * g->ow * c;
        size_t oy, ox, iy, ix, y0, y1, x0, x1, i;
        for (i = 0; i < in_size; i++) dxs[i] = 0;
        for (oy = 0; oy < g->oh; oy++) {
            nc_pool_span(oy, g->sh, g->pad_top, g->ph, g->h, &y0, &y1);
            for (ox = 0; ox < g->ow; ox++, dys += c) {
                real inv;
                nc_pool_span(ox, g->sw, g->pad_left, g->pw, g->w, &x0, &x1);
                inv = R_C(1) / (real)((y1 - y0) * (x1 - x0));
                for (iy = y0; iy < y1; iy++)
                    for (ix = x0; ix < x1; ix++) {
                        real *dst = dxs + (iy * g->w + ix) * c;
                        for (i = 0; i < c; i++) dst[i] += dys[i] * inv;
                    }
            }
        }
    }
}

static void NC_TAG(pool_run)(const nc_pool2d_geom *g, nc_task_fn fn, const real *x,
                             const real *dy, real *y, real *dx, int32_t *argmax)
{
    NC_TAG(pool_job) J;
    if (g->n == 0) return;
    J.g = g; J.x = x; J.dy = dy; J.y = y; J.dx = dx; J.argmax = argmax;
    J.chunk = nc_pool_chunk(g);
    nc_parallel_for_max((g->n + J.chunk - 1) / J.chunk, nc_pool_threads(g), fn, &J);
}

nc_status NC_FN(maxpool2d_forward)(const nc_pool2d_geom *g, const real *x, real *y,
                                   int32_t *argmax)
{
    NC_TAG(pool_run)(g, NC_TAG(pool_max_fwd_task), x, NULL, y, NULL, argmax);
    return NC_OK;
}

nc_status NC_FN(maxpool2d_backward)(const nc_pool2d_geom *g, const int32_t *argmax,
                                    const real *dy, real *dx)
{
    NC_TAG(pool_run)(g, NC_TAG(pool_max_bwd_task), NULL, dy, NULL, dx, (int32_t *)argmax);
    return NC_OK;
}

nc_status NC_FN(avgpool2d_forward)(const nc_pool2d_geom *g, const real *x, real *y)
{
    NC_TAG(pool_run)(g, NC_TAG(pool_avg_fwd_task), x, NULL, y, NULL, NULL);
    return NC_OK;
}

nc_status NC_FN(avgpool2d_backward)(const nc_pool2d_geom *g, const real *dy, real *dx)
{
    NC_TAG(pool_run)(g, NC_TAG(pool_avg_bwd_task), NULL, dy, NULL, dx, NULL);
    return NC_OK;
}
