/*
 * optim_avx512.c -- optim_impl.h's step loops compiled for AVX-512.
 * The same source as the portable loops in optim.c, so the same bits, wider.
 */
#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__) || defined(_M_IX86)
#include "internal.h"

#define NC_OPTIM_ISA avx512
#define NC_OPTIM_KERNELS_ONLY 1

#define NC_REAL_BITS 32
#include "real.h"
#include "optim_adam_avx512.h"
#define NC_ADAM_PEN_FAST nc_adam_pen_f32_avx512
#include "optim_impl.h"
#undef NC_ADAM_PEN_FAST
#undef NC_REAL_BITS

#define NC_REAL_BITS 64
#include "real.h"
#include "optim_impl.h"
#undef NC_REAL_BITS

#else
typedef int nc_optim_avx512_empty_; /* ISO C forbids an empty translation unit */
#endif
