/* gemm.c -- instantiates gemm_impl.h for float (nc_s...) and double (nc_d...). */
#include <stdint.h>
#include <stdlib.h>

#include "internal.h"
#include "gemm/kernels.h"

int nc_gemm_path_ = 0;

#define NC_REAL_BITS 32
#include "real.h"
#include "gemm_impl.h"
#undef NC_REAL_BITS

#define NC_REAL_BITS 64
#include "real.h"
#include "gemm_impl.h"
#undef NC_REAL_BITS

/* The block sizes a level uses (MR, NR, MC, KC, NC), for tests and benchmarks. */
void nc_gemm_blocking(nc_isa isa, int bits, size_t out[5])
{
    if (bits == 32) {
        const nc_gemm_cfg_f32 *g = gemm_cfg_for_f32(isa);
        out[0] = g->mr; out[1] = g->nr; out[2] = g->mc; out[3] = g->kc; out[4] = g->nc;
    } else {
        const nc_gemm_cfg_f64 *g = gemm_cfg_for_f64(isa);
        out[0] = g->mr; out[1] = g->nr; out[2] = g->mc; out[3] = g->kc; out[4] = g->nc;
    }
}
