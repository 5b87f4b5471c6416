/* pool.c -- instantiates pool_impl.h for float (nc_s...) and double (nc_d...). */
#include "internal.h"

/* Samples per task: a function of the geometry only, so the split (and the
 * result) does not depend on the thread count. */
static size_t nc_pool_chunk(const nc_pool2d_geom *g)
{
    size_t per = g->oh * g->ow * g->c * g->ph * g->pw;
    size_t chunk = per >= 16384 ? 1 : 16384 / (per ? per : 1);
    return NC_MAX((size_t)1, NC_MIN(chunk, g->n));
}

static int nc_pool_threads(const nc_pool2d_geom *g)
{
    return nc_threads_for((double)g->n * (double)(g->oh * g->ow * g->c * g->ph * g->pw), 32768);
}

/* The valid part of the window of output row oy: [y0, y1). */
static void nc_pool_span(size_t o, size_t stride, size_t pad, size_t pool, size_t size,
                         size_t *lo, size_t *hi)
{
    ptrdiff_t a = (ptrdiff_t)(o * stride) - (ptrdiff_t)pad, b = a + (ptrdiff_t)pool;
    if (a < 0) a = 0;
    if (b > (ptrdiff_t)size) b = (ptrdiff_t)size;
    if (b < a) b = a;
    *lo = (size_t)a;
    *hi = (size_t)b;
}

#define NC_REAL_BITS 32
#include "real.h"
#include "pool_impl.h"
#undef NC_REAL_BITS

#define NC_REAL_BITS 64
#include "real.h"
#include "pool_impl.h"
#undef NC_REAL_BITS
