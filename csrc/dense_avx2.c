/* dense_avx2.c -- dense_sparse_x86.h for AVX2 (edges through maskload/maskstore),
 * and the conversion to CSR through a table of lane shuffles. */
#include "dense_sparse.h"
#include "gemm/kernels.h" /* NC_AINLINE, NC_GLUE */

#if defined(NC_SPARSE_X86) && defined(__AVX2__)
#include <immintrin.h>

/* lane masks: the first cnt lanes all ones */
static __m256i nc_sp_mask32(size_t cnt)
{
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)cnt), lanes);
}
static __m256i nc_sp_mask64(size_t cnt)
{
    const __m256i lanes = _mm256_setr_epi64x(0, 1, 2, 3);
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)cnt), lanes);
}

#define T float
#define VT __m256
#define MT __m256i
#define L 8
#define VZERO() _mm256_setzero_ps()
#define NV 12
#define VLOAD(p) _mm256_loadu_ps(p)
#define VLOADM(m, p) _mm256_maskload_ps((p), (m))
#define VSET1(x) _mm256_set1_ps(x)
#define VFMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define VADD(a, b) _mm256_add_ps((a), (b))
#define VRELU(x) _mm256_blendv_ps((x), _mm256_setzero_ps(), _mm256_cmp_ps((x), _mm256_setzero_ps(), _CMP_LT_OQ))
#define VSTORE(p, v) _mm256_storeu_ps((p), (v))
#define VSTOREM(p, m, v) _mm256_maskstore_ps((p), (m), (v))
#define MASK(cnt) nc_sp_mask32(cnt)
#define FN nc_ssparse_rows_avx2
#include "dense_sparse_x86.h"

#define T double
#define VT __m256d
#define MT __m256i
#define L 4
#define VZERO() _mm256_setzero_pd()
#define NV 12
#define VLOAD(p) _mm256_loadu_pd(p)
#define VLOADM(m, p) _mm256_maskload_pd((p), (m))
#define VSET1(x) _mm256_set1_pd(x)
#define VFMA(a, b, c) _mm256_fmadd_pd((a), (b), (c))
#define VADD(a, b) _mm256_add_pd((a), (b))
#define VRELU(x) _mm256_blendv_pd((x), _mm256_setzero_pd(), _mm256_cmp_pd((x), _mm256_setzero_pd(), _CMP_LT_OQ))
#define VSTORE(p, v) _mm256_storeu_pd((p), (v))
#define VSTOREM(p, m, v) _mm256_maskstore_pd((p), (m), (v))
#define MASK(cnt) nc_sp_mask64(cnt)
#define FN nc_dsparse_rows_avx2
#include "dense_sparse_x86.h"

/* ---- to_csr and count_nonzero (dense_sparse.h): lane masks from a compare
 * with zero that counts NaN as nonzero (unordered not-equal, as x != 0 in C);
 * the nonzero lanes moved to the front by a shuffle from a table (bytes:
 * the lanes set in the 8-bit mask, in order), then stored in full: lanes
 * past the nonzeros land where later ones go, inside the m * k entries
 * since at most p of the first p columns were nonzero. */
static const uint64_t nc_sp_lanes[256] = {
    0x0u, 0x0u, 0x1u, 0x100u, 0x2u, 0x200u, 0x201u, 0x20100u, 0x3u, 0x300u, 0x301u, 0x30100u,
    0x302u, 0x30200u, 0x30201u, 0x3020100u, 0x4u, 0x400u, 0x401u, 0x40100u, 0x402u, 0x40200u,
    0x40201u, 0x4020100u, 0x403u, 0x40300u, 0x40301u, 0x4030100u, 0x40302u, 0x4030200u, 0x4030201u,
    0x403020100ull, 0x5u, 0x500u, 0x501u, 0x50100u, 0x502u, 0x50200u, 0x50201u, 0x5020100u, 0x503u,
    0x50300u, 0x50301u, 0x5030100u, 0x50302u, 0x5030200u, 0x5030201u, 0x503020100ull, 0x504u,
    0x50400u, 0x50401u, 0x5040100u, 0x50402u, 0x5040200u, 0x5040201u, 0x504020100ull, 0x50403u,
    0x5040300u, 0x5040301u, 0x504030100ull, 0x5040302u, 0x504030200ull, 0x504030201ull,
    0x50403020100ull, 0x6u, 0x600u, 0x601u, 0x60100u, 0x602u, 0x60200u, 0x60201u, 0x6020100u,
    0x603u, 0x60300u, 0x60301u, 0x6030100u, 0x60302u, 0x6030200u, 0x6030201u, 0x603020100ull,
    0x604u, 0x60400u, 0x60401u, 0x6040100u, 0x60402u, 0x6040200u, 0x6040201u, 0x604020100ull,
    0x60403u, 0x6040300u, 0x6040301u, 0x604030100ull, 0x6040302u, 0x604030200ull, 0x604030201ull,
    0x60403020100ull, 0x605u, 0x60500u, 0x60501u, 0x6050100u, 0x60502u, 0x6050200u, 0x6050201u,
    0x605020100ull, 0x60503u, 0x6050300u, 0x6050301u, 0x605030100ull, 0x6050302u, 0x605030200ull,
    0x605030201ull, 0x60503020100ull, 0x60504u, 0x6050400u, 0x6050401u, 0x605040100ull, 0x6050402u,
    0x605040200ull, 0x605040201ull, 0x60504020100ull, 0x6050403u, 0x605040300ull, 0x605040301ull,
    0x60504030100ull, 0x605040302ull, 0x60504030200ull, 0x60504030201ull, 0x6050403020100ull, 0x7u,
    0x700u, 0x701u, 0x70100u, 0x702u, 0x70200u, 0x70201u, 0x7020100u, 0x703u, 0x70300u, 0x70301u,
    0x7030100u, 0x70302u, 0x7030200u, 0x7030201u, 0x703020100ull, 0x704u, 0x70400u, 0x70401u,
    0x7040100u, 0x70402u, 0x7040200u, 0x7040201u, 0x704020100ull, 0x70403u, 0x7040300u, 0x7040301u,
    0x704030100ull, 0x7040302u, 0x704030200ull, 0x704030201ull, 0x70403020100ull, 0x705u, 0x70500u,
    0x70501u, 0x7050100u, 0x70502u, 0x7050200u, 0x7050201u, 0x705020100ull, 0x70503u, 0x7050300u,
    0x7050301u, 0x705030100ull, 0x7050302u, 0x705030200ull, 0x705030201ull, 0x70503020100ull,
    0x70504u, 0x7050400u, 0x7050401u, 0x705040100ull, 0x7050402u, 0x705040200ull, 0x705040201ull,
    0x70504020100ull, 0x7050403u, 0x705040300ull, 0x705040301ull, 0x70504030100ull, 0x705040302ull,
    0x70504030200ull, 0x70504030201ull, 0x7050403020100ull, 0x706u, 0x70600u, 0x70601u, 0x7060100u,
    0x70602u, 0x7060200u, 0x7060201u, 0x706020100ull, 0x70603u, 0x7060300u, 0x7060301u,
    0x706030100ull, 0x7060302u, 0x706030200ull, 0x706030201ull, 0x70603020100ull, 0x70604u,
    0x7060400u, 0x7060401u, 0x706040100ull, 0x7060402u, 0x706040200ull, 0x706040201ull,
    0x70604020100ull, 0x7060403u, 0x706040300ull, 0x706040301ull, 0x70604030100ull, 0x706040302ull,
    0x70604030200ull, 0x70604030201ull, 0x7060403020100ull, 0x70605u, 0x7060500u, 0x7060501u,
    0x706050100ull, 0x7060502u, 0x706050200ull, 0x706050201ull, 0x70605020100ull, 0x7060503u,
    0x706050300ull, 0x706050301ull, 0x70605030100ull, 0x706050302ull, 0x70605030200ull,
    0x70605030201ull, 0x7060503020100ull, 0x7060504u, 0x706050400ull, 0x706050401ull,
    0x70605040100ull, 0x706050402ull, 0x70605040200ull, 0x70605040201ull, 0x7060504020100ull,
    0x706050403ull, 0x70605040300ull, 0x70605040301ull, 0x7060504030100ull, 0x70605040302ull,
    0x7060504030200ull, 0x7060504030201ull, 0x706050403020100ull

};

/* the lanes of mask as 32-bit indices (the first popcount of them meaningful) */
static __m256i nc_sp_lanes32(unsigned mask)
{
    return _mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)nc_sp_lanes[mask]));
}

size_t nc_sto_csr_avx2(size_t m, size_t k, const float *x, int32_t *ptr, int32_t *idx, float *val)
{
    size_t i, p, nnz = 0;
    const __m256 zero = _mm256_setzero_ps();
    for (i = 0; i < m; i++) {
        const float *xi = x + i * k;
        ptr[i] = (int32_t)nnz;
        for (p = 0; p + 8 <= k; p += 8) {
            __m256 v = _mm256_loadu_ps(xi + p);
            unsigned nz = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(v, zero, _CMP_NEQ_UQ));
            __m256i lanes = nc_sp_lanes32(nz);
            _mm256_storeu_si256((__m256i *)(idx + nnz),
                                _mm256_add_epi32(lanes, _mm256_set1_epi32((int)p)));
            _mm256_storeu_ps(val + nnz, _mm256_permutevar8x32_ps(v, lanes));
            nnz += (size_t)_mm_popcnt_u32(nz);
        }
        for (; p < k; p++) { /* the portable loop's edge */
            idx[nnz] = (int32_t)p;
            val[nnz] = xi[p];
            nnz += xi[p] != 0;
        }
    }
    ptr[m] = (int32_t)nnz;
    return nnz;
}

size_t nc_dto_csr_avx2(size_t m, size_t k, const double *x, int32_t *ptr, int32_t *idx,
                       double *val)
{
    size_t i, p, nnz = 0;
    const __m256d zero = _mm256_setzero_pd();
    const __m256i one = _mm256_set1_epi64x(1);
    for (i = 0; i < m; i++) {
        const double *xi = x + i * k;
        ptr[i] = (int32_t)nnz;
        for (p = 0; p + 4 <= k; p += 4) {
            __m256d v = _mm256_loadu_pd(xi + p);
            unsigned nz = (unsigned)_mm256_movemask_pd(_mm256_cmp_pd(v, zero, _CMP_NEQ_UQ));
            __m128i lanes = _mm_cvtepu8_epi32(_mm_cvtsi32_si128((int)nc_sp_lanes[nz]));
            /* lane t of the doubles is 32-bit lanes 2t, 2t + 1 */
            __m256i t2 = _mm256_slli_epi64(_mm256_cvtepu32_epi64(lanes), 1);
            __m256i perm = _mm256_or_si256(t2, _mm256_slli_epi64(_mm256_add_epi64(t2, one), 32));
            _mm_storeu_si128((__m128i *)(idx + nnz), _mm_add_epi32(lanes, _mm_set1_epi32((int)p)));
            _mm256_storeu_pd(val + nnz, _mm256_castps_pd(
                                            _mm256_permutevar8x32_ps(_mm256_castpd_ps(v), perm)));
            nnz += (size_t)_mm_popcnt_u32(nz);
        }
        for (; p < k; p++) {
            idx[nnz] = (int32_t)p;
            val[nnz] = xi[p];
            nnz += xi[p] != 0;
        }
    }
    ptr[m] = (int32_t)nnz;
    return nnz;
}

/* compares give -1 per nonzero lane: subtracted into 32-bit (float) or
 * 64-bit (double) lane counts, emptied into the total before they can wrap */
size_t nc_scount_nonzero_avx2(size_t count, const float *x)
{
    size_t i = 0, nnz = 0;
    const __m256 zero = _mm256_setzero_ps();
    while (count - i >= 32) {
        __m256i c0 = _mm256_setzero_si256(), c1 = _mm256_setzero_si256();
        size_t stop = i + NC_MIN(count - i, (size_t)1 << 30) / 32 * 32;
        uint32_t lanes[8];
        int l;
        for (; i < stop; i += 32) {
            __m256 a = _mm256_cmp_ps(_mm256_loadu_ps(x + i), zero, _CMP_NEQ_UQ);
            __m256 b = _mm256_cmp_ps(_mm256_loadu_ps(x + i + 8), zero, _CMP_NEQ_UQ);
            __m256 c = _mm256_cmp_ps(_mm256_loadu_ps(x + i + 16), zero, _CMP_NEQ_UQ);
            __m256 d = _mm256_cmp_ps(_mm256_loadu_ps(x + i + 24), zero, _CMP_NEQ_UQ);
            c0 = _mm256_sub_epi32(c0, _mm256_add_epi32(_mm256_castps_si256(a),
                                                       _mm256_castps_si256(b)));
            c1 = _mm256_sub_epi32(c1, _mm256_add_epi32(_mm256_castps_si256(c),
                                                       _mm256_castps_si256(d)));
        }
        _mm256_storeu_si256((__m256i *)lanes, _mm256_add_epi32(c0, c1));
        for (l = 0; l < 8; l++) nnz += lanes[l];
    }
    for (; i < count; i++) nnz += x[i] != 0;
    return nnz;
}

size_t nc_dcount_nonzero_avx2(size_t count, const double *x)
{
    size_t i = 0, nnz = 0;
    const __m256d zero = _mm256_setzero_pd();
    __m256i c0 = _mm256_setzero_si256(), c1 = _mm256_setzero_si256();
    uint64_t lanes[4];
    int l;
    for (; count - i >= 16; i += 16) {
        __m256d a = _mm256_cmp_pd(_mm256_loadu_pd(x + i), zero, _CMP_NEQ_UQ);
        __m256d b = _mm256_cmp_pd(_mm256_loadu_pd(x + i + 4), zero, _CMP_NEQ_UQ);
        __m256d c = _mm256_cmp_pd(_mm256_loadu_pd(x + i + 8), zero, _CMP_NEQ_UQ);
        __m256d d = _mm256_cmp_pd(_mm256_loadu_pd(x + i + 12), zero, _CMP_NEQ_UQ);
        c0 = _mm256_sub_epi64(c0, _mm256_add_epi64(_mm256_castpd_si256(a), _mm256_castpd_si256(b)));
        c1 = _mm256_sub_epi64(c1, _mm256_add_epi64(_mm256_castpd_si256(c), _mm256_castpd_si256(d)));
    }
    _mm256_storeu_si256((__m256i *)lanes, _mm256_add_epi64(c0, c1));
    for (l = 0; l < 4; l++) nnz += (size_t)lanes[l];
    for (; i < count; i++) nnz += x[i] != 0;
    return nnz;
}

#else
typedef int nc_dense_avx2_empty_; /* ISO C forbids an empty translation unit */
#endif

/* ---- uint8 rows to CSR (dense_u8.h): the lane masks from a byte compare
 * with zero over 32 columns at once, then per 8 of them (all-zero ones
 * skipped; double by 4 within) the float kernel's shuffle from the table,
 * on the bytes widened to 32-bit integers, converted (exactly) to reals
 * after the shuffle. Full stores, as there: lanes past the nonzeros
 * stay inside the m * k room. */
#if defined(NC_SPARSE_X86) && defined(__AVX2__)
#include "dense_u8.h"

/* 8 columns at xi[p..] with nonzero mask nz8 */
NC_AINLINE size_t nc_u8_csr8_f32(const uint8_t *xi, unsigned nz8, size_t p, size_t nnz,
                                 int32_t *idx, float *val)
{
    __m256i w = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(xi + p)));
    __m256i lanes = nc_sp_lanes32(nz8);
    _mm256_storeu_si256((__m256i *)(idx + nnz), _mm256_add_epi32(lanes, _mm256_set1_epi32((int)p)));
    _mm256_storeu_ps(val + nnz, _mm256_cvtepi32_ps(_mm256_permutevar8x32_epi32(w, lanes)));
    return (size_t)_mm_popcnt_u32(nz8);
}

/* by 4: the (table) lanes 0..3 of the upper 4 index the widened bytes with 4
 * added (branch-free: skipping an all-zero 4 mispredicts more than it saves) */
NC_AINLINE size_t nc_u8_csr8_f64(const uint8_t *xi, unsigned nz8, size_t p, size_t nnz,
                                 int32_t *idx, double *val)
{
    __m256i w = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(xi + p)));
    size_t start = nnz;
    int h;
    for (h = 0; h < 2; h++) {
        unsigned nz4 = (nz8 >> (4 * h)) & 0xfu;
        __m256i lanes = _mm256_add_epi32(nc_sp_lanes32(nz4), _mm256_set1_epi32(4 * h));
        __m128i sel = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(w, lanes));
        _mm_storeu_si128((__m128i *)(idx + nnz),
                         _mm_add_epi32(_mm256_castsi256_si128(lanes), _mm_set1_epi32((int)p)));
        _mm256_storeu_pd(val + nnz, _mm256_cvtepi32_pd(sel));
        nnz += (size_t)_mm_popcnt_u32(nz4);
    }
    return nnz - start;
}

/* all-zero 8-column groups skipped (blank image rows: worth the mispredictions) */
#define U8TOCSR(T, FN, CSR8)                                                                    \
    size_t FN(size_t m, size_t k, const uint8_t *x, int32_t *ptr, int32_t *idx, T *val)         \
    {                                                                                           \
        size_t i, p, nnz = 0;                                                                   \
        const __m256i zero = _mm256_setzero_si256();                                            \
        for (i = 0; i < m; i++) {                                                               \
            const uint8_t *xi = x + i * k;                                                      \
            ptr[i] = (int32_t)nnz;                                                              \
            for (p = 0; p + 32 <= k; p += 32) {                                                 \
                __m256i bytes = _mm256_loadu_si256((const __m256i *)(xi + p));                  \
                uint32_t nz = ~(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(bytes, zero));  \
                int g;                                                                          \
                for (g = 0; g < 4; g++) {                                                       \
                    unsigned nz8 = (nz >> (8 * g)) & 0xffu;                                     \
                    if (!nz8) continue;                                                         \
                    nnz += CSR8(xi, nz8, p + 8 * g, nnz, idx, val);                             \
                }                                                                               \
            }                                                                                   \
            for (; p < k; p++) { /* the portable loop's edge */                                 \
                idx[nnz] = (int32_t)p;                                                          \
                val[nnz] = (T)xi[p];                                                            \
                nnz += xi[p] != 0;                                                              \
            }                                                                                   \
        }                                                                                       \
        ptr[m] = (int32_t)nnz;                                                                  \
        return nnz;                                                                             \
    }
U8TOCSR(float, nc_su8_to_csr_avx2, nc_u8_csr8_f32)
U8TOCSR(double, nc_du8_to_csr_avx2, nc_u8_csr8_f64)
#undef U8TOCSR

#endif
