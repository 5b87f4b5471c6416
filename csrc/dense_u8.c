/* dense_u8.c -- byte inputs (dense_u8.h): the portable kernels, the oracle
 * of the vector forms, and the dispatch to the level in force. */
#include "dense_u8.h"

/* Written once for both precisions, like the portable nc_?to_csr loop:
 * branch-free, each entry written always and kept if nonzero. */
#define NC_U8_KERNELS(T, TOCSR, TOCSR_AVX2, TOCSR_AVX512, TOREAL)                              \
    static size_t TOCSR##_ref(size_t m, size_t k, const uint8_t *x, int32_t *ptr,              \
                              int32_t *idx, T *val)                                            \
    {                                                                                          \
        size_t i, p, nnz = 0;                                                                  \
        for (i = 0; i < m; i++) {                                                              \
            const uint8_t *xi = x + i * k;                                                     \
            ptr[i] = (int32_t)nnz;                                                             \
            for (p = 0; p < k; p++) {                                                          \
                idx[nnz] = (int32_t)p;                                                         \
                val[nnz] = (T)xi[p];                                                           \
                nnz += xi[p] != 0;                                                             \
            }                                                                                  \
        }                                                                                      \
        ptr[m] = (int32_t)nnz;                                                                 \
        return nnz;                                                                            \
    }                                                                                          \
    size_t TOCSR(size_t m, size_t k, const uint8_t *x, int32_t *ptr, int32_t *idx, T *val)     \
    {                                                                                          \
        NC_U8_DISPATCH(TOCSR_AVX2, TOCSR_AVX512)                                               \
        return TOCSR##_ref(m, k, x, ptr, idx, val);                                            \
    }                                                                                          \
    void TOREAL(size_t count, const uint8_t *x, T *y)                                          \
    {                                                                                          \
        size_t i; /* (vectorised by the compiler: a widening, no data-dependent step) */       \
        for (i = 0; i < count; i++) y[i] = (T)x[i];                                            \
    }

#ifdef NC_U8_X86
#define NC_U8_DISPATCH(avx2, avx512)                                                           \
    if (nc_active_isa_ == NC_ISA_AVX512) return avx512(m, k, x, ptr, idx, val);               \
    if (nc_active_isa_ == NC_ISA_AVX2) return avx2(m, k, x, ptr, idx, val);
#else
#define NC_U8_DISPATCH(avx2, avx512)
#endif

NC_U8_KERNELS(float, nc_su8_to_csr, nc_su8_to_csr_avx2, nc_su8_to_csr_avx512, nc_su8_to_real)
NC_U8_KERNELS(double, nc_du8_to_csr, nc_du8_to_csr_avx2, nc_du8_to_csr_avx512, nc_du8_to_real)
