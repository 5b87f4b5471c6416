/*
 * real.h -- one kernel source, two precisions.
 *
 * A *_impl.h file is written once against `real` and `NC_FN(name)`, and its
 * .c file includes it twice: once with NC_REAL_BITS 32 (float, nc_s...) and
 * once with 64 (double, nc_d...). This header is deliberately re-includable
 * (no include guard): each inclusion redefines the macros for the precision
 * in force.
 */
#include <math.h>

#include "vmath.h"

#undef real
#undef NC_FN
#undef NC_TAG
#undef R_EXP
#undef R_LOG
#undef R_LOG1P
#undef R_EXPM1
#undef R_TANH
#undef R_FABS
#undef R_SQRT
#undef R_C
#undef R_VEXP
#undef R_VEXPM1
#undef R_VLOG
#undef R_VTANH
#undef R_VSIGMOID
#undef R_VSOFTPLUS

#if NC_REAL_BITS == 32
#define real float
#define NC_FN(name) nc_s##name
#define NC_TAG(name) name##_f32
#define R_EXP expf
#define R_LOG logf
#define R_LOG1P log1pf
#define R_EXPM1 expm1f
#define R_TANH tanhf
#define R_FABS fabsf
#define R_SQRT sqrtf
#define R_C(x) ((float)(x))
/* array hooks (n, x, y), y may be x: SIMD at the level in force (vmath.h) */
#define R_VEXP nc_vexp_f32
#define R_VEXPM1 nc_vexpm1_f32
#define R_VLOG nc_vlog_f32
#define R_VTANH nc_vtanh_f32
#define R_VSIGMOID nc_vsigmoid_f32
#define R_VSOFTPLUS nc_vsoftplus_f32
#elif NC_REAL_BITS == 64
#define real double
#define NC_FN(name) nc_d##name
#define NC_TAG(name) name##_f64
#define R_EXP exp
#define R_LOG log
#define R_LOG1P log1p
#define R_EXPM1 expm1
#define R_TANH tanh
#define R_FABS fabs
#define R_SQRT sqrt
#define R_C(x) ((double)(x))
/* array hooks (n, x, y), y may be x: loops over libm (vmath_ref.c) */
#define R_VEXP nc_vexp_f64
#define R_VEXPM1 nc_vexpm1_f64
#define R_VLOG nc_vlog_f64
#define R_VTANH nc_vtanh_f64
#define R_VSIGMOID nc_vsigmoid_f64
#define R_VSOFTPLUS nc_vsoftplus_f64
#else
#error "define NC_REAL_BITS as 32 or 64 before including real.h"
#endif
