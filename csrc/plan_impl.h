/*
 * plan_impl.h -- a stack of layers run in one call, written once for `real`.
 *
 * For inference on small networks the cost is the calls, not the arithmetic:
 * one entry into the engine per prediction instead of one per layer.
 */

nc_status NC_FN(plan_forward)(size_t n_steps, const NC_TAG(nc_plan_step) *steps, size_t m,
                              const real *x, real *work, real *y)
{
    size_t i, widest = 0;
    const real *in = x;
    nc_status st = NC_OK;
    for (i = 0; i < n_steps; i++) widest = NC_MAX(widest, steps[i].n_out);
    for (i = 0; i < n_steps && st == NC_OK; i++) {
        const NC_TAG(nc_plan_step) *s = &steps[i];
        /* ping-pong between the two halves of work; the last step writes y */
        real *out = i + 1 == n_steps ? y : work + (i % 2) * m * widest;
        if (s->op == NC_PLAN_DENSE)
            st = NC_FN(dense_forward)(m, s->n_in, s->n_out, in, s->w, s->b, s->act, s->param, out);
        else
            st = NC_FN(act_forward)(s->act, s->param, m, s->n_out, in, out);
        in = out;
    }
    return st;
}
