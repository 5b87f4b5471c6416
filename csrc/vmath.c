/*
 * vmath.c -- dispatch of the float32 array functions of vmath.h to the level
 * in force. A switch per call: the calls are over arrays (or row-sized
 * blocks), so its cost is noise, and a level's kernels never run on a CPU
 * without it (nc_set_isa checks availability).
 */
#include "vmath.h"

#if defined(NC_VMATH_X86)
#define NC_VMATH_DISPATCH(fn)                                          \
    void nc_v##fn##_f32(size_t n, const float *x, float *y)            \
    {                                                                  \
        switch (nc_active_isa_) {                                      \
        case NC_ISA_AVX512: nc_v##fn##_f32_avx512(n, x, y); break;     \
        case NC_ISA_AVX2: nc_v##fn##_f32_avx2(n, x, y); break;         \
        default: nc_v##fn##_f32_ref(n, x, y); break;                   \
        }                                                              \
    }
#elif defined(NC_VMATH_NEON)
#define NC_VMATH_DISPATCH(fn)                                          \
    void nc_v##fn##_f32(size_t n, const float *x, float *y)            \
    {                                                                  \
        if (nc_active_isa_ == NC_ISA_NEON) nc_v##fn##_f32_neon(n, x, y); \
        else nc_v##fn##_f32_ref(n, x, y);                              \
    }
#else
#define NC_VMATH_DISPATCH(fn)                                          \
    void nc_v##fn##_f32(size_t n, const float *x, float *y) { nc_v##fn##_f32_ref(n, x, y); }
#endif

NC_VMATH_DISPATCH(exp)
NC_VMATH_DISPATCH(expm1)
NC_VMATH_DISPATCH(log)
NC_VMATH_DISPATCH(tanh)
NC_VMATH_DISPATCH(sigmoid)
NC_VMATH_DISPATCH(softplus)
