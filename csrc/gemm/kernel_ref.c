/*
 * gemm/kernel_ref.c -- the portable micro-kernels and the ref level's block
 * sizes. The blocks are small on purpose: the tests then cross every
 * blocking edge of the framework with small matrices.
 */
#include "../internal.h"
#include "kernels.h"

#define NC_REAL_BITS 32
#include "../real.h"
#define REF_MR 4
#define REF_NR 8
#include "kernel_ref_impl.h"
#undef REF_MR
#undef REF_NR
#undef NC_REAL_BITS

#define NC_REAL_BITS 64
#include "../real.h"
#define REF_MR 4
#define REF_NR 4
#include "kernel_ref_impl.h"
#undef REF_MR
#undef REF_NR
#undef NC_REAL_BITS

/*                                     ukr          small          MR NR MC  KC   NC */
const nc_gemm_cfg_f32 nc_gemm_ref_f32 = {ref_ukr_f32, ref_small_f32, 4, 8, 32, 64, 128, NULL};
const nc_gemm_cfg_f64 nc_gemm_ref_f64 = {ref_ukr_f64, ref_small_f64, 4, 4, 32, 48, 96, NULL};
