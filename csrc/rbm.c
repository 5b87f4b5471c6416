/* rbm.c -- instantiates rbm_impl.h for float (nc_s...) and double (nc_d...). */
#include <math.h>
#include <string.h>

#include "internal.h"

#define RBM_LANES 16 /* Philox blocks computed side by side */

/*
 * Philox-4x32-10 blocks first .. first + RBM_LANES - 1 of (seed, stream):
 * w[j][l] is word j of block first + l. The same function as
 * nc_philox4x32_10, laid out across blocks (structure of arrays): the blocks'
 * rounds are independent, so they overlap in the pipeline instead of running
 * as one dependent chain per block. (GCC does not vectorise the 32x32->64
 * multiplies at the portable level: AVX-512 has its own, rbm_avx512.c.)
 */
#if defined(__x86_64__) || defined(_M_X64)
#define RBM_X86 1
void nc_rbm_philox16_avx512(uint64_t seed, uint64_t stream, uint64_t first, uint32_t w[4][16]);
void nc_rbm_bernoulli_avx512_f32(uint64_t seed, uint64_t stream, size_t n, float *p);
void nc_rbm_bernoulli_avx512_f64(uint64_t seed, uint64_t stream, size_t n, double *p);
#endif

static void rbm_philox_lanes(uint64_t seed, uint64_t stream, uint64_t first,
                             uint32_t w[4][RBM_LANES])
{
    uint32_t c0[RBM_LANES], c1[RBM_LANES], c2[RBM_LANES], c3[RBM_LANES];
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    int r, l;
#ifdef RBM_X86
    if (nc_active_isa_ == NC_ISA_AVX512) {
        nc_rbm_philox16_avx512(seed, stream, first, w);
        return;
    }
#endif
    for (l = 0; l < RBM_LANES; l++) {
        uint64_t b = first + (uint64_t)l;
        c0[l] = (uint32_t)b;
        c1[l] = (uint32_t)(b >> 32);
        c2[l] = (uint32_t)stream;
        c3[l] = (uint32_t)(stream >> 32);
    }
    for (r = 0; r < 10; r++) {
        for (l = 0; l < RBM_LANES; l++) {
            uint64_t p0 = (uint64_t)0xD2511F53u * c0[l], p1 = (uint64_t)0xCD9E8D57u * c2[l];
            uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1[l] ^ k0;
            uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3[l] ^ k1;
            c1[l] = (uint32_t)p1;
            c3[l] = (uint32_t)p0;
            c0[l] = n0;
            c2[l] = n2;
        }
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    for (l = 0; l < RBM_LANES; l++) {
        w[0][l] = c0[l];
        w[1][l] = c1[l];
        w[2][l] = c2[l];
        w[3][l] = c3[l];
    }
}

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
