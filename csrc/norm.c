/* norm.c -- instantiates norm_impl.h for float (nc_s...) and double (nc_d...). */
#include "internal.h"

/* channels per reduction tile (a thread's unit) and rows per block (the
 * unit of the elementwise passes, and of the float partial sums) */
#define NC_BN_TILE 64
#define NC_BN_ROWS 256

#define NC_REAL_BITS 32
#include "real.h"
#include "norm_impl.h"
#undef NC_REAL_BITS

#define NC_REAL_BITS 64
#include "real.h"
#include "norm_impl.h"
#undef NC_REAL_BITS
