/* dense.c -- instantiates dense_impl.h for float (nc_s...) and double (nc_d...). */
#include "dense_sparse.h"

#define NC_REAL_BITS 32
#include "real.h"
#include "dense_impl.h"
#undef NC_REAL_BITS

#define NC_REAL_BITS 64
#include "real.h"
#include "dense_impl.h"
#undef NC_REAL_BITS
