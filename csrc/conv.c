/* conv.c -- instantiates conv_impl.h for float (nc_s...) and double (nc_d...). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "conv_kernels.h"

/* K, the length of one receptive field: kh * kw * c. */
static size_t nc_conv2d_k(const nc_conv2d_geom *g)
{
    return g->kh * g->kw * g->c;
}

/* A 1x1, stride-1, unpadded kernel: x is its own column matrix. */
static int nc_conv2d_is_pointwise(const nc_conv2d_geom *g)
{
    return g->kh == 1 && g->kw == 1 && g->stride_h == 1 && g->stride_w == 1
           && g->pad_top == 0 && g->pad_left == 0 && g->oh == g->h && g->ow == g->w;
}

size_t nc_conv2d_cols_size(const nc_conv2d_geom *g)
{
    return nc_conv2d_is_pointwise(g) ? 0 : g->n * g->oh * g->ow * nc_conv2d_k(g);
}

#define NC_REAL_BITS 32
#include "real.h"
#include "conv_impl.h"
#undef NC_REAL_BITS

#define NC_REAL_BITS 64
#include "real.h"
#include "conv_impl.h"
#undef NC_REAL_BITS
