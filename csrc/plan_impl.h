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

nc_status NC_FN(plan_train_step)(size_t n_steps, const NC_TAG(nc_plan_step) *steps, size_t m,
                                 const real *x, int fuse_last, nc_loss loss,
                                 nc_reduction reduction, const real *t, const int64_t *labels,
                                 real *const *outputs, real *const *grad_w,
                                 real *const *grad_b, real *work, double *total)
{
    size_t i, widest = 0, last = n_steps - 1;
    const real *in = x;
    real *dy, *spare;
    nc_status st = NC_OK;
    for (i = 0; i < n_steps; i++) widest = NC_MAX(widest, NC_MAX(steps[i].n_in, steps[i].n_out));
    /* forward, keeping every step's output */
    for (i = 0; i < n_steps && st == NC_OK; i++) {
        const NC_TAG(nc_plan_step) *s = &steps[i];
        nc_act act = i == last && fuse_last ? NC_ACT_IDENTITY : s->act;
        if (s->op == NC_PLAN_DENSE)
            st = NC_FN(dense_forward)(m, s->n_in, s->n_out, in, s->w, s->b, act, s->param,
                                      outputs[i]);
        else
            st = NC_FN(act_forward)(act, s->param, m, s->n_out, in, outputs[i]);
        in = outputs[i];
    }
    if (st != NC_OK) return st;
    /* the loss and its gradient with respect to the last output */
    dy = work;
    spare = work + m * widest;
    if (labels)
        st = NC_FN(loss_sparse)(loss, reduction, m, steps[last].n_out, labels, outputs[last],
                                total, NULL, dy);
    else
        st = NC_FN(loss)(loss, reduction, m, steps[last].n_out, t, outputs[last], total, NULL, dy);
    /* backward: dy becomes each step's dz in place, then dx in the spare half */
    for (i = n_steps; i-- > 0 && st == NC_OK;) {
        const NC_TAG(nc_plan_step) *s = &steps[i];
        nc_act act = i == last && fuse_last ? NC_ACT_IDENTITY : s->act;
        if (act != NC_ACT_IDENTITY)
            st = NC_FN(act_backward)(act, s->param, m, s->n_out, outputs[i], dy, dy);
        if (st == NC_OK && s->op == NC_PLAN_DENSE) {
            real *dx = i > 0 ? spare : NULL, *tmp;
            st = NC_FN(dense_backward)(m, s->n_in, s->n_out, i > 0 ? outputs[i - 1] : x, s->w,
                                       dy, dx, grad_w[i], grad_b[i], R_C(0));
            tmp = dy; dy = spare; spare = tmp;
        }
    }
    return st;
}
