/* plan.c -- instantiates plan_impl.h for float (nc_s...) and double (nc_d...). */
#include <string.h>

#include "dense_sparse.h"
#include "dense_u8.h"

int nc_plan_sparse_ = 0;

#define NC_REAL_BITS 32
#include "real.h"
#include "plan_impl.h"
#undef NC_REAL_BITS

#define NC_REAL_BITS 64
#include "real.h"
#include "plan_impl.h"
#undef NC_REAL_BITS
