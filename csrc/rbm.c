/* rbm.c -- instantiates rbm_impl.h for float (nc_s...) and double (nc_d...). */
#include <math.h>
#include <string.h>

#include "internal.h"

#define NC_REAL_BITS 32
#include "real.h"
#include "rbm_impl.h"
#undef NC_REAL_BITS

#define NC_REAL_BITS 64
#include "real.h"
#include "rbm_impl.h"
#undef NC_REAL_BITS

size_t nc_rbm_work_size(size_t m, size_t n_visible, size_t n_hidden)
{
    /* [v0; v-] and [h0; -h-], hidden samples, a reconstruction */
    return 3 * m * n_visible + 3 * m * n_hidden;
}
