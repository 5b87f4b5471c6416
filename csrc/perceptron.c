/* perceptron.c -- instantiates perceptron_impl.h for float (nc_s...) and double (nc_d...). */
#include "internal.h"
#include "dense_u8.h"

#define NC_REAL_BITS 32
#include "real.h"
#include "perceptron_impl.h"
#undef NC_REAL_BITS

#define NC_REAL_BITS 64
#include "real.h"
#include "perceptron_impl.h"
#undef NC_REAL_BITS
