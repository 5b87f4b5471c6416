/*
 * rng.c -- counter-based random numbers: Philox-4x32-10 (Salmon, Moraes,
 * Dror, Shaw, SC'11; the constants of Random123's philox.h).
 *
 * A counter-based generator has no sequential state: element i of stream s
 * under seed k is philox(counter(i, s), key(k)), computed on its own. So a
 * fill gives the same bits however it is chunked or threaded, and a layer,
 * a step or a shuffle can each have a stream without coordination.
 *
 * Each fill walks Philox blocks; a block yields 4 (32-bit draws) or 2 (64-bit
 * draws) elements, which are computed in double and rounded once to the
 * output's precision (except float32 uniforms, computed in float so they are
 * exactly the 24-bit grid).
 */
#include <math.h>
#include <string.h>

#include "internal.h"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u /* golden ratio */
#define PHILOX_W1 0xBB67AE85u /* sqrt(3) - 1 */

void nc_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    int r;
    for (r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0, p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = n0;
        c2 = n2;
        k0 += PHILOX_W0; /* the last bump is unused, which is harmless */
        k1 += PHILOX_W1;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

/* The four words of block `block` of (seed, stream). */
static inline void rng_block(uint64_t seed, uint64_t stream, uint64_t block, uint32_t w[4])
{
    uint32_t ctr[4], key[2];
    ctr[0] = (uint32_t)block;
    ctr[1] = (uint32_t)(block >> 32);
    ctr[2] = (uint32_t)stream;
    ctr[3] = (uint32_t)(stream >> 32);
    key[0] = (uint32_t)seed;
    key[1] = (uint32_t)(seed >> 32);
    nc_philox4x32_10(ctr, key, w);
}

#define TWO_M24 (1.0 / 16777216.0)          /* 2^-24 */
#define TWO_M53 (1.0 / 9007199254740992.0)  /* 2^-53 */
#define NC_TWO_PI 6.283185307179586476925286766559

static inline double u53(uint32_t lo, uint32_t hi)
{
    return (double)((((uint64_t)hi << 32) | lo) >> 11) * TWO_M53; /* [0, 1) */
}

/* Phi^-1(p) for p in (0, 1): Acklam's rational approximation (relative error
 * 1.15e-9), polished by one Halley step on erfc to full double precision. */
static double norm_ppf(double p)
{
    static const double a[6] = {-3.969683028665376e+01, 2.209460984245205e+02,
                                -2.759285104469687e+02, 1.383577518672690e+02,
                                -3.066479806614716e+01, 2.506628277459239e+00};
    static const double b[5] = {-5.447609879822406e+01, 1.615858368580409e+02,
                                -1.556989798598866e+02, 6.680131188771972e+01,
                                -1.328068155288572e+01};
    static const double c[6] = {-7.784894002430293e-03, -3.223964580411365e-01,
                                -2.400758277161838e+00, -2.549732539343734e+00,
                                4.374664141464968e+00, 2.938163982698783e+00};
    static const double d[4] = {7.784695709041462e-03, 3.224671290700398e-01,
                                2.445134137142996e+00, 3.754408661907416e+00};
    double q, r, x, e, u;
    if (p < 0.02425) {
        q = sqrt(-2 * log(p));
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    } else if (p > 1 - 0.02425) {
        q = sqrt(-2 * log(1 - p));
        x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    } else {
        q = p - 0.5;
        r = q * q;
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
            (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
    }
    e = 0.5 * erfc(-x / sqrt(2.0)) - p;
    u = e * sqrt(NC_TWO_PI) * exp(x * x / 2);
    return x - u / (1 + x * u / 2);
}

typedef enum rng_kind { RNG_UNIFORM, RNG_NORMAL, RNG_TRUNC, RNG_MASK } rng_kind;

typedef struct rng_job {
    rng_kind kind;
    int f32;          /* output is float (else double) */
    uint64_t seed, stream, offset;
    size_t n;
    double a, b;      /* uniform: low, high; normals: mean, std; mask: keep, 1/keep */
    float af, bf;     /* the same, in float, for float32 uniforms */
    double tlo, tspan; /* truncated normal: Phi(-2), Phi(2) - Phi(-2) */
    void *out;
} rng_job;

/* Elements per block for a fill. */
static int rng_per_block(const rng_job *J)
{
    if (J->kind == RNG_TRUNC) return 2;
    if (J->kind == RNG_MASK) return 4;
    return J->f32 ? 4 : 2;
}

/* The values of block `blk`: v[0 .. per_block-1]. */
static void rng_values(const rng_job *J, uint64_t blk, double v[4])
{
    uint32_t w[4];
    int j;
    rng_block(J->seed, J->stream, blk, w);
    switch (J->kind) {
    case RNG_UNIFORM:
        if (J->f32) {
            for (j = 0; j < 4; j++) {
                float u = (float)((double)(w[j] >> 8) * TWO_M24);
                float r = J->af + (J->bf - J->af) * u;
                /* rounding can land on high; keep the interval half-open */
                if (r >= J->bf && J->bf > J->af) r = nextafterf(J->bf, J->af);
                v[j] = r;
            }
        } else {
            for (j = 0; j < 2; j++) {
                double r = J->a + (J->b - J->a) * u53(w[2 * j], w[2 * j + 1]);
                if (r >= J->b && J->b > J->a) r = nextafter(J->b, J->a);
                v[j] = r;
            }
        }
        break;
    case RNG_NORMAL: {
        double u1[2], u2[2];
        int pairs = J->f32 ? 2 : 1;
        if (J->f32) {
            u1[0] = ((double)(w[0] >> 8) + 1) * TWO_M24; /* (0, 1]: log never sees 0 */
            u2[0] = (double)(w[1] >> 8) * TWO_M24;
            u1[1] = ((double)(w[2] >> 8) + 1) * TWO_M24;
            u2[1] = (double)(w[3] >> 8) * TWO_M24;
        } else {
            u1[0] = u53(w[0], w[1]) + TWO_M53;
            u2[0] = u53(w[2], w[3]);
        }
        for (j = 0; j < pairs; j++) {
            double r = sqrt(-2 * log(u1[j])), th = NC_TWO_PI * u2[j];
            v[2 * j] = J->a + J->b * (r * cos(th));
            v[2 * j + 1] = J->a + J->b * (r * sin(th));
        }
        break;
    }
    case RNG_TRUNC:
        for (j = 0; j < 2; j++) {
            /* u in (0, 1): the midpoints of the 2^53 grid */
            double u = u53(w[2 * j], w[2 * j + 1]) + 0.5 * TWO_M53;
            double z = norm_ppf(J->tlo + u * J->tspan);
            z = z > 2 ? 2 : (z < -2 ? -2 : z);
            v[j] = J->a + J->b * z;
        }
        break;
    case RNG_MASK: {
        double thr = J->a * 4294967296.0;
        for (j = 0; j < 4; j++) v[j] = (double)w[j] < thr ? J->b : 0.0;
        break;
    }
    }
}

#define RNG_CHUNK 16384 /* elements per task; any split gives the same bits */

static void rng_task(void *ctx, size_t task, int thread)
{
    const rng_job *J = (const rng_job *)ctx;
    size_t lo = task * RNG_CHUNK, hi = NC_MIN(J->n, lo + RNG_CHUNK);
    uint64_t e = J->offset + lo, end = J->offset + hi;
    int per = rng_per_block(J);
    double v[4];
    (void)thread;
    while (e < end) {
        uint64_t blk = e / (uint64_t)per;
        uint64_t first = blk * (uint64_t)per, stop = NC_MIN(first + (uint64_t)per, end);
        rng_values(J, blk, v);
        for (; e < stop; e++) {
            size_t i = (size_t)(e - J->offset);
            if (J->f32)
                ((float *)J->out)[i] = (float)v[e - first];
            else
                ((double *)J->out)[i] = v[e - first];
        }
    }
}

static nc_status rng_fill(rng_job *J)
{
    if (J->n == 0) return NC_OK;
    if (J->offset + J->n < J->offset) return NC_ERR_ARG; /* the index would wrap */
    nc_parallel_for((J->n + RNG_CHUNK - 1) / RNG_CHUNK, rng_task, J);
    return NC_OK;
}

static void rng_job_init(rng_job *J, rng_kind kind, int f32, uint64_t seed, uint64_t stream,
                         uint64_t offset, size_t n, double a, double b, void *out)
{
    memset(J, 0, sizeof *J);
    J->kind = kind;
    J->f32 = f32;
    J->seed = seed;
    J->stream = stream;
    J->offset = offset;
    J->n = n;
    J->a = a;
    J->b = b;
    J->af = (float)a;
    J->bf = (float)b;
    J->out = out;
    if (kind == RNG_TRUNC) {
        J->tlo = 0.5 * erfc(2 / sqrt(2.0));
        J->tspan = 1 - 2 * J->tlo;
    }
}

nc_status nc_srand_uniform(uint64_t seed, uint64_t stream, uint64_t offset, size_t n,
                           float low, float high, float *out)
{
    rng_job J;
    rng_job_init(&J, RNG_UNIFORM, 1, seed, stream, offset, n, low, high, out);
    return rng_fill(&J);
}

nc_status nc_drand_uniform(uint64_t seed, uint64_t stream, uint64_t offset, size_t n,
                           double low, double high, double *out)
{
    rng_job J;
    rng_job_init(&J, RNG_UNIFORM, 0, seed, stream, offset, n, low, high, out);
    return rng_fill(&J);
}

nc_status nc_srand_normal(uint64_t seed, uint64_t stream, uint64_t offset, size_t n,
                          float mean, float std, float *out)
{
    rng_job J;
    rng_job_init(&J, RNG_NORMAL, 1, seed, stream, offset, n, mean, std, out);
    return rng_fill(&J);
}

nc_status nc_drand_normal(uint64_t seed, uint64_t stream, uint64_t offset, size_t n,
                          double mean, double std, double *out)
{
    rng_job J;
    rng_job_init(&J, RNG_NORMAL, 0, seed, stream, offset, n, mean, std, out);
    return rng_fill(&J);
}

nc_status nc_srand_truncated_normal(uint64_t seed, uint64_t stream, uint64_t offset,
                                    size_t n, float mean, float std, float *out)
{
    rng_job J;
    rng_job_init(&J, RNG_TRUNC, 1, seed, stream, offset, n, mean, std, out);
    return rng_fill(&J);
}

nc_status nc_drand_truncated_normal(uint64_t seed, uint64_t stream, uint64_t offset,
                                    size_t n, double mean, double std, double *out)
{
    rng_job J;
    rng_job_init(&J, RNG_TRUNC, 0, seed, stream, offset, n, mean, std, out);
    return rng_fill(&J);
}

nc_status nc_sdropout_mask(uint64_t seed, uint64_t stream, uint64_t offset, size_t n,
                           float keep, float *mask)
{
    rng_job J;
    if (!(keep > 0 && keep <= 1)) return NC_ERR_ARG;
    rng_job_init(&J, RNG_MASK, 1, seed, stream, offset, n, keep, (double)(1.0f / keep), mask);
    return rng_fill(&J);
}

nc_status nc_ddropout_mask(uint64_t seed, uint64_t stream, uint64_t offset, size_t n,
                           double keep, double *mask)
{
    rng_job J;
    if (!(keep > 0 && keep <= 1)) return NC_ERR_ARG;
    rng_job_init(&J, RNG_MASK, 0, seed, stream, offset, n, keep, 1.0 / keep, mask);
    return rng_fill(&J);
}

nc_status nc_rand_permutation(uint64_t seed, uint64_t stream, size_t n, int64_t *out)
{
    size_t i, t;
    uint32_t w[4];
    for (i = 0; i < n; i++) out[i] = (int64_t)i;
    for (t = 0; t + 1 < n; t++) {
        size_t k = n - 1 - t, j;
        int64_t tmp;
        if (t % 2 == 0) rng_block(seed, stream, t / 2, w);
        /* floor(u (k + 1)): bias below (k + 1) / 2^53, nothing at any real n */
        j = (size_t)(u53(w[2 * (t % 2)], w[2 * (t % 2) + 1]) * (double)(k + 1));
        if (j > k) j = k;
        tmp = out[k];
        out[k] = out[j];
        out[j] = tmp;
    }
    return NC_OK;
}
