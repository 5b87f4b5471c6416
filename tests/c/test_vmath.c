/*
 * test_vmath.c -- every kernel level's float32 vector math against libm in
 * double, in ulps, over a sweep of each function's range plus its edges.
 * Plain C (no Python), so it also runs cross-compiled under qemu, where it is
 * the only check the NEON forms get. Exits non-zero on any failure.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "nncore.h"
#include "vmath.h"

#define MAX_ULP 4.0

typedef void (*vfn)(size_t, const float *, float *);
typedef double (*dfn)(double);

static double d_sigmoid(double x) { return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)); }
static double d_softplus(double x) { return (x > 0 ? x : 0) + log1p(exp(-fabs(x))); }

/* The distance from got to the correctly rounded value of want, in ulps of it. */
static double ulps(float got, double want)
{
    float r = (float)want;
    double ulp;
    if (isnan(want)) return isnan(got) ? 0 : 1e9;
    if (got == r) return 0;
    if (isinf(r) || isinf(got)) return 1e9;
    ulp = nextafterf(fabsf(r), INFINITY) - fabsf(r);
    if (ulp == 0 || !isfinite(ulp)) ulp = 1.4e-45;
    return fabs((double)got - (double)r) / ulp;
}

struct fn { const char *name; vfn f; dfn ref; float lo, hi; };

int main(void)
{
    static float x[200000], y[200000];
    const struct fn fns[] = {
        {"exp", nc_vexp_f32, exp, -103.0f, 88.7f},
        {"expm1", nc_vexpm1_f32, expm1, -20.0f, 88.7f},
        {"log", nc_vlog_f32, log, 1e-38f, 3e38f},
        {"tanh", nc_vtanh_f32, tanh, -12.0f, 12.0f},
        {"sigmoid", nc_vsigmoid_f32, d_sigmoid, -100.0f, 30.0f},
        {"softplus", nc_vsoftplus_f32, d_softplus, -80.0f, 80.0f},
    };
    const size_t n = sizeof x / sizeof x[0];
    int isa, failures = 0;
    size_t f, i;
    for (isa = 0; isa < NC_ISA_COUNT_; isa++) {
        if (!nc_isa_available((nc_isa)isa)) continue;
        nc_set_isa((nc_isa)isa);
        for (f = 0; f < sizeof fns / sizeof fns[0]; f++) {
            double worst = 0;
            size_t at = 0;
            int log_scale = fns[f].lo > 0;
            for (i = 0; i < n; i++) {
                double t = (double)i / (double)(n - 1);
                x[i] = log_scale ? (float)exp(log(fns[f].lo) + t * (log(fns[f].hi) - log(fns[f].lo)))
                                 : (float)(fns[f].lo + t * (fns[f].hi - fns[f].lo));
            }
            /* odd lengths and offsets reach every tail path */
            fns[f].f(n - 3, x + 3, y + 3);
            fns[f].f(3, x, y);
            for (i = 0; i < n; i++) {
                double e = ulps(y[i], fns[f].ref((double)x[i]));
                if (e > worst) { worst = e; at = i; }
            }
            printf("%-7s %-8s max %.2f ulp (at x = %.9g)\n", nc_isa_name((nc_isa)isa),
                   fns[f].name, worst, x[at]);
            if (worst > MAX_ULP) failures++;
        }
        {   /* special values */
            const float sp[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN};
            float out[5];
            nc_vexp_f32(5, sp, out);
            if (out[0] != 1 || out[2] != INFINITY || out[3] != 0 || !isnan(out[4])) {
                printf("%s exp special values wrong\n", nc_isa_name((nc_isa)isa));
                failures++;
            }
            nc_vtanh_f32(5, sp, out);
            if (out[2] != 1 || out[3] != -1 || !isnan(out[4]) || !signbit(out[1])) {
                printf("%s tanh special values wrong\n", nc_isa_name((nc_isa)isa));
                failures++;
            }
            nc_vlog_f32(5, sp, out);
            if (out[0] != -INFINITY || out[2] != INFINITY || !isnan(out[4])) {
                printf("%s log special values wrong\n", nc_isa_name((nc_isa)isa));
                failures++;
            }
        }
    }
    printf(failures ? "test_vmath: %d FAILED\n" : "test_vmath: all passed\n", failures);
    return failures != 0;
}
