/* dense_avx512.c -- dense_sparse_x86.h for AVX-512 (masked edges), and the
 * conversion to CSR by compressing each vector's nonzero lanes. */
#include "dense_sparse.h"
#include "gemm/kernels.h" /* NC_AINLINE, NC_GLUE */

#if defined(NC_SPARSE_X86) && defined(__AVX512F__)
#include <immintrin.h>

#define NC_SP_STORE256(p, v) _mm256_storeu_si256((__m256i *)(p), (v))

#define T float
#define VT __m512
#define MT __mmask16
#define L 16
#define VZERO() _mm512_setzero_ps()
#define NV 16
#define VLOAD(p) _mm512_loadu_ps(p)
#define VLOADM(m, p) _mm512_maskz_loadu_ps((m), (p))
#define VSET1(x) _mm512_set1_ps(x)
#define VFMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define VADD(a, b) _mm512_add_ps((a), (b))
#define VRELU(x) _mm512_mask_mov_ps((x), _mm512_cmp_ps_mask((x), _mm512_setzero_ps(), _CMP_LT_OQ), _mm512_setzero_ps())
#define VSTORE(p, v) _mm512_storeu_ps((p), (v))
#define VSTOREM(p, m, v) _mm512_mask_storeu_ps((p), (m), (v))
#define MASK(cnt) ((__mmask16)((cnt) >= 16 ? 0xffffu : ((1u << (cnt)) - 1u)))
#define FN nc_ssparse_rows_avx512
#include "dense_sparse_x86.h"

#define T double
#define VT __m512d
#define MT __mmask8
#define L 8
#define VZERO() _mm512_setzero_pd()
#define NV 16
#define VLOAD(p) _mm512_loadu_pd(p)
#define VLOADM(m, p) _mm512_maskz_loadu_pd((m), (p))
#define VSET1(x) _mm512_set1_pd(x)
#define VFMA(a, b, c) _mm512_fmadd_pd((a), (b), (c))
#define VADD(a, b) _mm512_add_pd((a), (b))
#define VRELU(x) _mm512_mask_mov_pd((x), _mm512_cmp_pd_mask((x), _mm512_setzero_pd(), _CMP_LT_OQ), _mm512_setzero_pd())
#define VSTORE(p, v) _mm512_storeu_pd((p), (v))
#define VSTOREM(p, m, v) _mm512_mask_storeu_pd((p), (m), (v))
#define MASK(cnt) ((__mmask8)((cnt) >= 8 ? 0xffu : ((1u << (cnt)) - 1u)))
#define FN nc_dsparse_rows_avx512
#include "dense_sparse_x86.h"

/* ---- to_csr and count_nonzero (dense_sparse.h): lane masks from a compare
 * with zero that counts NaN as nonzero (unordered not-equal, as x != 0 in C);
 * the nonzero lanes and their column numbers compressed into place. The
 * register form of compress, then a full store (compress to memory is
 * microcoded on some cores): lanes past the nonzeros land where later ones
 * go, inside the m * k entries since at most p of the first p columns
 * were nonzero. */

#define TOCSR(T, FN, L, MT, VT, LOADU, MLOADU, CMPMASK, MCMPMASK, ZERO, COMPRESS, STORE, MSTORE, IT,  \
              ILANES, ISTEP, IADD, ICOMPRESS, ISTORE, IMSTORE)                                   \
    size_t FN(size_t m, size_t k, const T *x, int32_t *ptr, int32_t *idx, T *val)              \
    {                                                                                          \
        size_t i, p, nnz = 0;                                                                  \
        const VT zero = ZERO();                                                                \
        for (i = 0; i < m; i++) {                                                              \
            const T *xi = x + i * k;                                                           \
            IT at = ILANES;                                                                    \
            ptr[i] = (int32_t)nnz;                                                             \
            for (p = 0; p + L <= k; p += L) {                                                  \
                VT v = LOADU(xi + p);                                                          \
                MT nz = CMPMASK(v, zero, _CMP_NEQ_UQ);                                         \
                ISTORE(idx + nnz, ICOMPRESS(nz, at));                                          \
                STORE(val + nnz, COMPRESS(nz, v));                                             \
                nnz += (size_t)_mm_popcnt_u32((unsigned)nz);                                   \
                at = IADD(at, ISTEP);                                                          \
            }                                                                                  \
            if (p < k) {                                                                       \
                MT tail = (MT)((1u << (k - p)) - 1u), nz, out;                                 \
                VT v = MLOADU(tail, xi + p);                                                   \
                nz = MCMPMASK(tail, v, zero, _CMP_NEQ_UQ);                                     \
                out = (MT)((1u << _mm_popcnt_u32((unsigned)nz)) - 1u);                         \
                IMSTORE(idx + nnz, out, ICOMPRESS(nz, at));                                    \
                MSTORE(val + nnz, out, COMPRESS(nz, v));                                       \
                nnz += (size_t)_mm_popcnt_u32((unsigned)nz);                                   \
            }                                                                                  \
        }                                                                                      \
        ptr[m] = (int32_t)nnz;                                                                 \
        return nnz;                                                                            \
    }

TOCSR(float, nc_sto_csr_avx512, 16, __mmask16, __m512, _mm512_loadu_ps, _mm512_maskz_loadu_ps,
      _mm512_cmp_ps_mask, _mm512_mask_cmp_ps_mask, _mm512_setzero_ps, _mm512_maskz_compress_ps,
      _mm512_storeu_ps, _mm512_mask_storeu_ps, __m512i,
      _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
      _mm512_set1_epi32(16), _mm512_add_epi32, _mm512_maskz_compress_epi32,
      _mm512_storeu_si512, _mm512_mask_storeu_epi32)
TOCSR(double, nc_dto_csr_avx512, 8, __mmask8, __m512d, _mm512_loadu_pd, _mm512_maskz_loadu_pd,
      _mm512_cmp_pd_mask, _mm512_mask_cmp_pd_mask, _mm512_setzero_pd, _mm512_maskz_compress_pd,
      _mm512_storeu_pd, _mm512_mask_storeu_pd, __m256i,
      _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(8), _mm256_add_epi32,
      _mm256_maskz_compress_epi32, NC_SP_STORE256, _mm256_mask_storeu_epi32)
#undef TOCSR

/* four independent counts so that the adds do not wait on each other */
#define COUNTNZ(T, FN, L, VT, LOADU, MLOADU, CMPMASK, MCMPMASK, ZERO)                              \
    size_t FN(size_t count, const T *x)                                                        \
    {                                                                                          \
        size_t i = 0, n0 = 0, n1 = 0, n2 = 0, n3 = 0;                                          \
        const VT zero = ZERO();                                                                \
        for (; i + 4 * L <= count; i += 4 * L) {                                               \
            n0 += (size_t)_mm_popcnt_u32((unsigned)CMPMASK(LOADU(x + i), zero, _CMP_NEQ_UQ));  \
            n1 += (size_t)_mm_popcnt_u32((unsigned)CMPMASK(LOADU(x + i + L), zero, _CMP_NEQ_UQ)); \
            n2 += (size_t)_mm_popcnt_u32(                                                      \
                (unsigned)CMPMASK(LOADU(x + i + 2 * L), zero, _CMP_NEQ_UQ));                   \
            n3 += (size_t)_mm_popcnt_u32(                                                      \
                (unsigned)CMPMASK(LOADU(x + i + 3 * L), zero, _CMP_NEQ_UQ));                   \
        }                                                                                      \
        for (; i < count; i += L) {                                                            \
            size_t left = count - i;                                                           \
            unsigned tail = left >= L ? (1u << L) - 1u : (1u << left) - 1u;                    \
            n0 += (size_t)_mm_popcnt_u32(                                                      \
                (unsigned)MCMPMASK(tail, MLOADU(tail, x + i), zero, _CMP_NEQ_UQ));             \
        }                                                                                      \
        return n0 + n1 + n2 + n3;                                                              \
    }
COUNTNZ(float, nc_scount_nonzero_avx512, 16, __m512, _mm512_loadu_ps, _mm512_maskz_loadu_ps,
        _mm512_cmp_ps_mask, _mm512_mask_cmp_ps_mask, _mm512_setzero_ps)
COUNTNZ(double, nc_dcount_nonzero_avx512, 8, __m512d, _mm512_loadu_pd, _mm512_maskz_loadu_pd,
        _mm512_cmp_pd_mask, _mm512_mask_cmp_pd_mask, _mm512_setzero_pd)
#undef COUNTNZ

#else
typedef int nc_dense_avx512_empty_; /* ISO C forbids an empty translation unit */
#endif

/* ---- uint8 rows to CSR (dense_u8.h): the nonzero mask of 64 bytes by a
 * byte test (AVX512BW); each 16 of them with a nonzero (images have blank
 * rows: skipping them is worth its mispredictions) widened to 32-bit
 * integers, converted (exactly) to reals and compressed as the float
 * kernel does, full stores; the edge by masked loads and stores. */
#if defined(NC_SPARSE_X86) && defined(__AVX512F__)
#include "dense_u8.h"

/* 8 columns from p whose bytes are the low 8 of b, nz their mask; at the
 * edge the stores stop at the nonzeros (past the row's last: nobody's room) */
NC_AINLINE size_t nc_u8_csr8_f64(__m128i b, __mmask8 nz, size_t p, size_t nnz, int32_t *idx,
                                 double *val, int edge)
{
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __mmask8 keep = (__mmask8)(edge ? (1u << _mm_popcnt_u32(nz)) - 1u : 0xffu);
    __m256i at = _mm256_add_epi32(lanes, _mm256_set1_epi32((int)p));
    __m512d v = _mm512_cvtepi32_pd(_mm256_cvtepu8_epi32(b));
    _mm256_mask_storeu_epi32(idx + nnz, keep, _mm256_maskz_compress_epi32(nz, at));
    _mm512_mask_storeu_pd(val + nnz, keep, _mm512_maskz_compress_pd(nz, v));
    return (size_t)_mm_popcnt_u32(nz);
}

/* 16 columns from p whose bytes are b, nz their mask (double: two halves) */
NC_AINLINE size_t nc_u8_csr16_f32(__m128i b, __mmask16 nz, size_t p, size_t nnz, int32_t *idx,
                                  float *val, int edge)
{
    const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    __mmask16 keep = (__mmask16)(edge ? (1u << _mm_popcnt_u32(nz)) - 1u : 0xffffu);
    __m512i at = _mm512_add_epi32(lanes, _mm512_set1_epi32((int)p));
    __m512 v = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(b));
    _mm512_mask_storeu_epi32(idx + nnz, keep, _mm512_maskz_compress_epi32(nz, at));
    _mm512_mask_storeu_ps(val + nnz, keep, _mm512_maskz_compress_ps(nz, v));
    return (size_t)_mm_popcnt_u32(nz);
}

NC_AINLINE size_t nc_u8_csr16_f64(__m128i b, __mmask16 nz, size_t p, size_t nnz, int32_t *idx,
                                  double *val, int edge)
{
    size_t lo = nc_u8_csr8_f64(b, (__mmask8)nz, p, nnz, idx, val, edge);
    return lo + nc_u8_csr8_f64(_mm_srli_si128(b, 8), (__mmask8)(nz >> 8), p + 8, nnz + lo, idx,
                               val, edge);
}

/* all-zero 16-column groups skipped (by 8 mispredicts more than it saves) */
#define U8TOCSR(T, FN, CSR16)                                                                   \
    size_t FN(size_t m, size_t k, const uint8_t *x, int32_t *ptr, int32_t *idx, T *val)         \
    {                                                                                           \
        size_t i, p, nnz = 0;                                                                   \
        for (i = 0; i < m; i++) {                                                               \
            const uint8_t *xi = x + i * k;                                                      \
            ptr[i] = (int32_t)nnz;                                                              \
            for (p = 0; p + 64 <= k; p += 64) {                                                 \
                __m512i bytes = _mm512_loadu_si512(xi + p);                                     \
                uint64_t nz = (uint64_t)_mm512_test_epi8_mask(bytes, bytes);                    \
                int g;                                                                          \
                for (g = 0; g < 4; g++) {                                                       \
                    __mmask16 n16 = (__mmask16)(nz >> (16 * g));                                \
                    if (!n16) continue;                                                         \
                    nnz += CSR16(_mm_loadu_si128((const __m128i *)(xi + p + 16 * g)), n16,      \
                                 p + 16 * g, nnz, idx, val, 0);                                 \
                }                                                                               \
            }                                                                                   \
            for (; p < k; p += 16) {                                                            \
                __mmask16 tail = (__mmask16)(k - p >= 16 ? 0xffffu : (1u << (k - p)) - 1u);    \
                __m128i b = _mm_maskz_loadu_epi8(tail, xi + p);                                 \
                nnz += CSR16(b, _mm_test_epi8_mask(b, b), p, nnz, idx, val, 1);                 \
            }                                                                                   \
        }                                                                                       \
        ptr[m] = (int32_t)nnz;                                                                  \
        return nnz;                                                                             \
    }
U8TOCSR(float, nc_su8_to_csr_avx512, nc_u8_csr16_f32)
U8TOCSR(double, nc_du8_to_csr_avx512, nc_u8_csr16_f64)
#undef U8TOCSR
#endif
