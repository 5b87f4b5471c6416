/*
 * test_gemm.c -- the GEMM engine alone, without Python: every level this CPU
 * has, every transpose case, leading dimensions larger than minimal (with
 * canaries in the gaps), alpha/beta, beta == 0 over NaN, block edges, and
 * bit-identical results between thread counts. Returns non-zero on failure.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int failures = 0;
static unsigned long long rng_state = 88172645463325252ULL;

static double urand(void) /* xorshift64, uniform in [-1, 1) */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 4503599627370496.0 - 1.0;
}

#define CANARY 12345.0

/* One product in both precisions at the level in force, checked against the
 * double reference on the same (float-representable) inputs. */
static void check_one(int ta, int tb, size_t m, size_t n, size_t k, double alpha, double beta,
                      size_t pad, int nan_c, int threads_check)
{
    size_t ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
    size_t lda = ac + pad, ldb = bc + pad, ldc = n + pad, i, j;
    size_t na = ar * lda + 1, nb = br * ldb + 1, ncc = m * ldc + 1;
    double *ad = malloc(na * sizeof(double)), *bd = malloc(nb * sizeof(double));
    double *cd = malloc(ncc * sizeof(double)), *want = malloc(ncc * sizeof(double));
    float *as = malloc(na * sizeof(float)), *bs = malloc(nb * sizeof(float));
    float *cs = malloc(ncc * sizeof(float)), *cs2 = malloc(ncc * sizeof(float));
    double *cd2 = malloc(ncc * sizeof(double));
    double amax = 0, err_s = 0, err_d = 0, scale;
    for (i = 0; i < na; i++) { as[i] = (float)urand(); ad[i] = as[i]; }
    for (i = 0; i < nb; i++) { bs[i] = (float)urand(); bd[i] = bs[i]; }
    for (i = 0; i < ncc; i++) {
        int gap = (i % ldc) >= n || i == ncc - 1;
        double v = gap ? CANARY : (nan_c ? NAN : (double)(float)urand());
        cs[i] = (float)v; cd[i] = v; want[i] = v;
    }
    nc_dgemm_ref(ta, tb, m, n, k, alpha, ad, lda, bd, ldb, beta, want, ldc);
    memcpy(cs2, cs, ncc * sizeof(float));
    memcpy(cd2, cd, ncc * sizeof(double));
    if (nc_sgemm(ta, tb, m, n, k, (float)alpha, as, lda, bs, ldb, (float)beta, cs, ldc) != NC_OK
        || nc_dgemm(ta, tb, m, n, k, alpha, ad, lda, bd, ldb, beta, cd, ldc) != NC_OK) {
        printf("FAIL status %s ta=%d tb=%d m=%zu n=%zu k=%zu\n", nc_isa_name(nc_get_isa()), ta, tb, m, n, k);
        failures++;
        goto done;
    }
    for (i = 0; i < ncc; i++) amax = fmax(amax, fabs(want[i]) > 1e300 ? 0 : fabs(want[i]));
    scale = fabs(alpha) * sqrt((double)k + 1) + fabs(beta) + 1e-300;
    for (i = 0; i < m; i++)
        for (j = 0; j < ldc; j++) {
            size_t at = i * ldc + j;
            if (j >= n) { /* the gap between rows is never written */
                if (cs[at] != (float)CANARY || cd[at] != CANARY) err_s = err_d = INFINITY;
                continue;
            }
            err_s = fmax(err_s, fabs(cs[at] - want[at]) / scale);
            err_d = fmax(err_d, fabs(cd[at] - want[at]) / scale);
            if (isnan(cs[at]) || isnan(cd[at])) err_s = err_d = INFINITY;
        }
    if (cs[ncc - 1] != (float)CANARY || cd[ncc - 1] != CANARY) err_s = err_d = INFINITY;
    if (!(err_s <= 1e-5) || !(err_d <= 1e-13)) {
        printf("FAIL %s ta=%d tb=%d m=%zu n=%zu k=%zu alpha=%g beta=%g pad=%zu: err f32 %g f64 %g\n",
               nc_isa_name(nc_get_isa()), ta, tb, m, n, k, alpha, beta, pad, err_s, err_d);
        failures++;
    }
    if (threads_check) { /* the same product split over 3 threads: the same bits */
        int old = nc_get_num_threads();
        nc_set_num_threads(3);
        nc_sgemm(ta, tb, m, n, k, (float)alpha, as, lda, bs, ldb, (float)beta, cs2, ldc);
        nc_dgemm(ta, tb, m, n, k, alpha, ad, lda, bd, ldb, beta, cd2, ldc);
        nc_set_num_threads(old);
        if (memcmp(cs2, cs, ncc * sizeof(float)) != 0 || memcmp(cd2, cd, ncc * sizeof(double)) != 0) {
            printf("FAIL %s threads differ ta=%d tb=%d m=%zu n=%zu k=%zu\n",
                   nc_isa_name(nc_get_isa()), ta, tb, m, n, k);
            failures++;
        }
    }
done:
    free(ad); free(bd); free(cd); free(want); free(as); free(bs); free(cs); free(cs2); free(cd2);
}

/* Several threads calling nc_sgemm at once (as Python threads do with the
 * GIL released) must each get the result a lone call gets. */
typedef struct concurrent_job {
    size_t m, n, k;
    float *a, *b, *c, *want;
    int ok;
} concurrent_job;

static void *concurrent_worker(void *arg)
{
    concurrent_job *J = (concurrent_job *)arg;
    int rep;
    J->ok = 1;
    for (rep = 0; rep < 20; rep++) {
        nc_sgemm(rep & 1, 0, J->m, J->n, J->k, 1.0f, J->a, (rep & 1) ? J->m : J->k,
                 J->b, J->n, 0.0f, J->c, J->n);
        if (memcmp(J->c, J->want + (rep & 1) * J->m * J->n, J->m * J->n * sizeof(float)) != 0)
            J->ok = 0;
    }
    return NULL;
}

static void check_concurrent(void)
{
    enum { NT = 4 };
    static const size_t shapes[NT][3] = {{300, 200, 100}, {37, 1000, 64}, {5, 7, 9}, {128, 256, 400}};
    concurrent_job jobs[NT];
    pthread_t th[NT];
    int t;
    for (t = 0; t < NT; t++) {
        concurrent_job *J = &jobs[t];
        size_t i;
        J->m = shapes[t][0]; J->n = shapes[t][1]; J->k = shapes[t][2];
        J->a = malloc(J->m * J->k * sizeof(float));
        J->b = malloc(J->k * J->n * sizeof(float));
        J->c = malloc(J->m * J->n * sizeof(float));
        J->want = malloc(2 * J->m * J->n * sizeof(float));
        for (i = 0; i < J->m * J->k; i++) J->a[i] = (float)urand();
        for (i = 0; i < J->k * J->n; i++) J->b[i] = (float)urand();
        nc_sgemm(0, 0, J->m, J->n, J->k, 1.0f, J->a, J->k, J->b, J->n, 0.0f, J->want, J->n);
        nc_sgemm(1, 0, J->m, J->n, J->k, 1.0f, J->a, J->m, J->b, J->n, 0.0f,
                 J->want + J->m * J->n, J->n);
    }
    for (t = 0; t < NT; t++) pthread_create(&th[t], NULL, concurrent_worker, &jobs[t]);
    for (t = 0; t < NT; t++) pthread_join(th[t], NULL);
    for (t = 0; t < NT; t++) {
        if (!jobs[t].ok) {
            printf("FAIL %s concurrent calls differ from a lone call (job %d)\n",
                   nc_isa_name(nc_get_isa()), t);
            failures++;
        }
        free(jobs[t].a); free(jobs[t].b); free(jobs[t].c); free(jobs[t].want);
    }
}

int main(void)
{
    int isa, ta, tb, checks = 0, path;
    for (path = 1; path <= 2; path++) /* the packed path, then the unpacked one */
    for (isa = 0; isa < NC_ISA_COUNT_; isa++) {
        size_t bl[5], sizes[16], ns = 0, i, j, l;
        if (!nc_isa_available((nc_isa)isa)) continue;
        if (nc_set_isa((nc_isa)isa) != NC_OK) { printf("FAIL set_isa\n"); return 1; }
        nc_gemm_path_ = path;
        nc_gemm_blocking((nc_isa)isa, 32, bl); /* MR, NR, MC, KC, NC */
        sizes[ns++] = 1; sizes[ns++] = bl[0] - 1 ? bl[0] - 1 : 2; sizes[ns++] = bl[0] + 1;
        sizes[ns++] = bl[1] + 1; sizes[ns++] = bl[3] + 1; sizes[ns++] = 37;
        for (ta = 0; ta < 2; ta++)
            for (tb = 0; tb < 2; tb++) {
                for (i = 0; i < ns; i++)
                    for (j = 0; j < ns; j++)
                        for (l = 0; l < ns; l++, checks++)
                            check_one(ta, tb, sizes[i], sizes[j], sizes[l], 1.0, 0.0, 3, 0, 0);
                check_one(ta, tb, 40, 50, 60, 0.5, 2.0, 5, 0, 0);
                check_one(ta, tb, 40, 50, 60, -1.0, 0.0, 1, 1, 0); /* NaN in C, beta 0 */
                check_one(ta, tb, 17, 9, 0, 1.0, 0.5, 2, 0, 0);     /* k == 0 */
                check_one(ta, tb, 9, 17, 5, 0.0, 1.5, 2, 0, 0);     /* alpha == 0 */
                check_one(ta, tb, 300, 310, 290, 0.75, 0.5, 7, 0, 1);
                check_one(ta, tb, 2, 700, 400, 1.0, 1.0, 4, 0, 1);
                check_one(ta, tb, 1000, 30, 150, 1.0, 0.0, 1, 0, 1);
                checks += 7;
            }
        printf("gemm %-6s %-8s path: %d products checked so far, %d failures\n",
               nc_isa_name((nc_isa)isa), path == 1 ? "packed" : "unpacked", checks, failures);
    }
    nc_gemm_path_ = 0;
    for (isa = 0; isa < NC_ISA_COUNT_; isa++)
        if (nc_set_isa((nc_isa)isa) == NC_OK) check_concurrent();
    printf("gemm concurrent callers: %d failures in all\n", failures);
    if (failures) printf("%d FAILURES\n", failures);
    return failures != 0;
}
