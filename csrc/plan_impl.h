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

/* A batch's first input as its nonzeros by rows (ptr, idx, val) and by
 * columns (cptr, row, cval), in the scratch past the two halves of work
 * (see nc_plan_train_work). */
typedef struct NC_TAG(plan_sparse) {
    int32_t *ptr, *idx, *cptr, *row;
    real *val, *cval;
} NC_TAG(plan_sparse);

/* Whether a batch of m x k with nnz nonzeros takes the sparse products: at
 * most a quarter nonzero (the sparse products run at about half the GEMM's
 * rate per multiply-add, each nonzero streaming a row of W, so below that
 * they win, with room for the conversion), unless a test forces a side. */
static int NC_TAG(plan_sparse_wins)(size_t m, size_t k, size_t nnz)
{
    if (nc_plan_sparse_ == 1 || m * k > (size_t)INT32_MAX) return 0;
    return nnz * 4 <= m * k || nc_plan_sparse_ == 2;
}

static void NC_TAG(plan_sparse_layout)(size_t m, size_t k, real *scratch,
                                       NC_TAG(plan_sparse) *sx)
{
    sx->val = scratch;
    sx->cval = scratch + m * k;
    sx->ptr = (int32_t *)(scratch + 2 * m * k); /* m + 1 */
    sx->idx = sx->ptr + (m + 1);                 /* m * k */
    sx->cptr = sx->idx + m * k;                  /* k + 1 */
    sx->row = sx->cptr + (k + 1);                /* m * k */
}

/* The first dense step's x, when sparse enough, as its nonzeros in the
 * scratch. Returns 1 when the sparse products are to be used. */
static int NC_TAG(plan_sparse_x)(size_t m, size_t k, const real *x, real *scratch,
                                 NC_TAG(plan_sparse) *sx)
{
    if (nc_plan_sparse_ == 1 || m * k > (size_t)INT32_MAX) return 0;
    if (!NC_TAG(plan_sparse_wins)(m, k, NC_FN(count_nonzero)(m * k, x))) return 0;
    NC_TAG(plan_sparse_layout)(m, k, scratch, sx);
    NC_FN(to_csr)(m, k, x, sx->ptr, sx->idx, sx->val);
    NC_FN(csr_to_csc)(m, k, sx->ptr, sx->idx, sx->val, sx->cptr, sx->row, sx->cval);
    return 1;
}

#ifndef NC_PLAN_AHEAD
#define NC_PLAN_AHEAD 8 /* samples fetched ahead of their conversion */
#endif

/* A sample's first-layer input, as stored: k reals, or k bytes (x_u8). */
typedef struct NC_TAG(plan_x) {
    const void *x;
    int u8;
    size_t k, row_bytes;
} NC_TAG(plan_x);

static const void *NC_TAG(plan_row)(const NC_TAG(plan_x) *px, size_t i)
{
    return (const char *)px->x + i * px->row_bytes;
}

/* Asks for a sample's bytes ahead of their use (samples picked at random,
 * which the hardware prefetcher cannot foresee). */
static void NC_TAG(plan_prefetch_row)(const void *row, size_t bytes)
{
    size_t off;
    for (off = 0; off < bytes; off += 64) NC_PREFETCH((const char *)row + off);
}

/* The same, straight from the batch's samples x[o[r]] (no dense copy
 * first), or rows first .. first + m - 1 without o: the nonzeros by rows,
 * then, if the batch is sparse enough (plan_sparse_x's choice, on the same
 * count), by columns. Returns 0, the scratch then garbage, when it is not. */
static int NC_TAG(plan_sparse_rows_of)(size_t m, const NC_TAG(plan_x) *px, const int64_t *o,
                                       size_t first, real *scratch, NC_TAG(plan_sparse) *sx)
{
    size_t r, nnz = 0, k = px->k;
    int32_t row_ptr[2];
    if (nc_plan_sparse_ == 1 || m * k > (size_t)INT32_MAX) return 0;
    NC_TAG(plan_sparse_layout)(m, k, scratch, sx);
    if (!o && px->u8) /* contiguous bytes: one call */
        nnz = NC_FN(u8_to_csr)(m, k, (const uint8_t *)NC_TAG(plan_row)(px, first), sx->ptr,
                               sx->idx, sx->val);
    else
        for (r = 0; r < m; r++) { /* (to_csr's scratch writes stay inside the m * k room) */
            const void *row = NC_TAG(plan_row)(px, o ? (size_t)o[r] : first + r);
            if (o && r + NC_PLAN_AHEAD < m)
                NC_TAG(plan_prefetch_row)(NC_TAG(plan_row)(px, (size_t)o[r + NC_PLAN_AHEAD]),
                                          px->row_bytes);
            sx->ptr[r] = (int32_t)nnz;
            nnz += px->u8 ? NC_FN(u8_to_csr)(1, k, (const uint8_t *)row, row_ptr,
                                             sx->idx + nnz, sx->val + nnz)
                          : NC_FN(to_csr)(1, k, (const real *)row, row_ptr, sx->idx + nnz,
                                          sx->val + nnz);
        }
    sx->ptr[m] = (int32_t)nnz;
    if (!NC_TAG(plan_sparse_wins)(m, k, nnz)) return 0;
    NC_FN(csr_to_csc)(m, k, sx->ptr, sx->idx, sx->val, sx->cptr, sx->row, sx->cval);
    return 1;
}

size_t NC_FN(plan_train_work)(size_t n_steps, const NC_TAG(nc_plan_step) *steps, size_t m)
{
    size_t i, widest = 0, k = steps[0].n_in;
    for (i = 0; i < n_steps; i++) widest = NC_MAX(widest, NC_MAX(steps[i].n_in, steps[i].n_out));
    /* (int32 entries take one real's room each: sizeof(real) >= 4) */
    return 2 * m * widest + (steps[0].op == NC_PLAN_DENSE ? 4 * m * k + m + k + 2 : 0);
}

/* A training step (nc_?plan_train_step) whose first input comes as sx's
 * nonzeros when sx is given (x then unused), else as x. */
static nc_status NC_TAG(plan_step)(size_t n_steps, const NC_TAG(nc_plan_step) *steps, size_t m,
                                   const real *x, const NC_TAG(plan_sparse) *sx, int fuse_last,
                                   nc_loss loss, nc_reduction reduction, const real *t,
                                   const int64_t *labels, real *const *outputs,
                                   real *const *grad_w, real *const *grad_b, real *work,
                                   double *total)
{
    size_t i, widest = 0, last = n_steps - 1;
    const real *in = x;
    real *dy, *spare;
    const int sparse = sx != NULL;
    nc_status st = NC_OK;
    for (i = 0; i < n_steps; i++) widest = NC_MAX(widest, NC_MAX(steps[i].n_in, steps[i].n_out));
    /* forward, keeping every step's output */
    for (i = 0; i < n_steps && st == NC_OK; i++) {
        const NC_TAG(nc_plan_step) *s = &steps[i];
        nc_act act = i == last && fuse_last ? NC_ACT_IDENTITY : s->act;
        if (i == 0 && sparse) {
            st = NC_FN(sparse_rows_bias_act)(m, s->n_out, s->n_in, sx->ptr, sx->idx, sx->val,
                                             s->w, s->n_out, outputs[0], s->n_out, s->b, act,
                                             s->param);
        } else if (s->op == NC_PLAN_DENSE)
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
        /* a sparse first layer's ReLU: its backward and db in one pass */
        const int relu_db = i == 0 && sparse && act == NC_ACT_RELU && grad_b[0] != NULL;
        if (relu_db)
            NC_FN(relu_backward_db)(m, s->n_out, outputs[0], dy, grad_b[0]);
        else if (act != NC_ACT_IDENTITY)
            st = NC_FN(act_backward)(act, s->param, m, s->n_out, outputs[i], dy, dy);
        if (st == NC_OK && i == 0 && sparse) { /* dW = X^T dZ over X's columns; db as dense */
            st = NC_FN(sparse_rows)(s->n_in, s->n_out, m, sx->cptr, sx->row, sx->cval, dy,
                                    s->n_out, grad_w[0], s->n_out);
            if (st == NC_OK && !relu_db)
                st = NC_FN(dense_backward)(m, s->n_in, s->n_out, x, s->w, dy, NULL, NULL,
                                           grad_b[0], R_C(0));
        } else if (st == NC_OK && s->op == NC_PLAN_DENSE) {
            real *dx = i > 0 ? spare : NULL, *tmp;
            st = NC_FN(dense_backward)(m, s->n_in, s->n_out, i > 0 ? outputs[i - 1] : x, s->w,
                                       dy, dx, grad_w[i], grad_b[i], R_C(0));
            tmp = dy; dy = spare; spare = tmp;
        }
    }
    return st;
}

nc_status NC_FN(plan_train_step)(size_t n_steps, const NC_TAG(nc_plan_step) *steps, size_t m,
                                 const real *x, int fuse_last, nc_loss loss,
                                 nc_reduction reduction, const real *t, const int64_t *labels,
                                 real *const *outputs, real *const *grad_w,
                                 real *const *grad_b, real *work, double *total)
{
    size_t i, widest = 0;
    NC_TAG(plan_sparse) sx;
    int sparse = 0;
    for (i = 0; i < n_steps; i++) widest = NC_MAX(widest, NC_MAX(steps[i].n_in, steps[i].n_out));
    /* a sparse input (one-hot, bag of words, binary images): the first
     * layer's two products run over its nonzeros only */
    if (steps[0].op == NC_PLAN_DENSE)
        sparse = NC_TAG(plan_sparse_x)(m, steps[0].n_in, x, work + 2 * m * widest, &sx);
    return NC_TAG(plan_step)(n_steps, steps, m, x, sparse ? &sx : NULL, fuse_last, loss,
                             reduction, t, labels, outputs, grad_w, grad_b, work, total);
}

/* ---- whole epochs: nc_?plan_fit ---- */

#ifndef NC_PLAN_MAX_PEN
#define NC_PLAN_MAX_PEN 64 /* penalties fused into the step; more take their own pass */
#endif

nc_status NC_FN(plan_fit)(size_t n_steps, const NC_TAG(nc_plan_step) *steps, nc_plan_fit *f)
{
    const size_t k = steps[0].n_in, n_out = steps[n_steps - 1].n_out, n = f->n;
    const real *x = (const real *)f->x, *t = (const real *)f->t;
    const NC_TAG(plan_x) px = {f->x, f->x_u8, k, f->x_u8 ? k : k * sizeof(real)};
    real *xb = (real *)f->xb, *probs = (real *)f->probs;
    int64_t *lb = (int64_t *)f->yb;
    real *tb = (real *)f->yb;
    nc_optim_config cfg = *f->opt;
    size_t b, r, j, widest = 0;
    nc_status st = NC_OK;
    /* the penalties as runs of the parameter buffer, added on the fly by the
     * optimizer step (one pass, not two), when each w and its g sit at the
     * same offset of params and grads, in order: else their own pass */
    nc_penalty_seg segs[NC_PLAN_MAX_PEN];
    double pens[NC_PLAN_MAX_PEN];
    int fused = f->n_pen > 0 && f->n_pen <= NC_PLAN_MAX_PEN && cfg.clipnorm <= 0;
    for (j = 0; j < f->n_pen && fused; j++) {
        const real *w = (const real *)f->pen_w[j], *g = (const real *)f->pen_g[j];
        const real *p0 = (const real *)f->params, *g0 = (const real *)f->grads;
        size_t off = (size_t)(w - p0);
        fused = w >= p0 && off <= f->n_params && f->pen_n[j] <= f->n_params - off
                && g - g0 == w - p0 && (j == 0 || off >= segs[j - 1].offset + segs[j - 1].n);
        if (fused) {
            segs[j].offset = off;
            segs[j].n = f->pen_n[j];
            segs[j].l1 = f->pen_l1[j];
            segs[j].l2 = f->pen_l2[j];
        }
    }
    int sparse_so_far = 1;
    for (j = 0; j < n_steps; j++) widest = NC_MAX(widest, NC_MAX(steps[j].n_in, steps[j].n_out));
    f->done = 0;
    for (b = 0; b < f->count; b++) {
        size_t start = (f->first + b) * f->batch, rows = NC_MIN(f->batch, n - start);
        const real *xin = f->x_u8 ? xb : x + start * k, *tin = t ? t + start * n_out : NULL;
        const int64_t *lin = f->labels ? f->labels + start : NULL;
        const real *out = (const real *)f->outputs[n_steps - 1], *seen;
        double loss = 0, layer_pen = 0;
        NC_TAG(plan_sparse) sx;
        real *scratch = (real *)f->work + 2 * rows * widest;
        int sparse = 0, tried = 0;
        /* a sparse first input is converted straight from the samples; after
         * a batch that was not sparse enough, they are copied and counted
         * first (the choice, and so every bit, is the same either way). Bytes
         * are converted to reals on the way (the first input's only copy). */
        if ((f->order || f->x_u8) && steps[0].op == NC_PLAN_DENSE && sparse_so_far) {
            sparse = NC_TAG(plan_sparse_rows_of)(rows, &px, f->order ? f->order + start : NULL,
                                                 start, scratch, &sx);
            sparse_so_far = sparse;
            tried = 1; /* (the count is known: not again on the copy) */
        }
        if (!f->order && f->x_u8 && !sparse)
            NC_FN(u8_to_real)(rows * k, (const uint8_t *)NC_TAG(plan_row)(&px, start), xb);
        if (f->order) { /* gather the batch's samples into the scratch rows */
            const int64_t *o = f->order + start;
            for (r = 0; r < rows; r++) {
                const void *row = NC_TAG(plan_row)(&px, (size_t)o[r]);
                if (!sparse && f->x_u8)
                    NC_FN(u8_to_real)(k, (const uint8_t *)row, xb + r * k);
                else if (!sparse)
                    memcpy(xb + r * k, row, k * sizeof(real));
                if (f->labels)
                    lb[r] = f->labels[o[r]];
                else
                    for (j = 0; j < n_out; j++) tb[r * n_out + j] = t[(size_t)o[r] * n_out + j];
            }
            xin = xb;
            lin = f->labels ? lb : NULL;
            tin = f->labels ? NULL : tb;
        }
        if (!sparse && !tried && steps[0].op == NC_PLAN_DENSE) {
            sparse = NC_TAG(plan_sparse_x)(rows, k, xin, scratch, &sx);
            sparse_so_far = sparse_so_far || sparse;
        }
        st = NC_TAG(plan_step)(n_steps, steps, rows, xin, sparse ? &sx : NULL, f->fuse_last,
                               f->loss, f->reduction, tin, lin, (real *const *)f->outputs,
                               (real *const *)f->grad_w, (real *const *)f->grad_b,
                               (real *)f->work, &loss);
        if (st != NC_OK) break;
        /* penalties as the layers add them: each layer's sum, then onto the loss */
        cfg.learning_rate = f->lr[b];
        /* the next batch's scattered samples fetched while the optimizer
         * step, bound by its divider, leaves memory idle */
        if (sparse && f->order && b + 1 < f->count) {
            size_t next = start + f->batch, nrows = next < n ? NC_MIN(f->batch, n - next) : 0;
            for (r = 0; r < nrows; r++)
                NC_TAG(plan_prefetch_row)(NC_TAG(plan_row)(&px, (size_t)f->order[next + r]),
                                          px.row_bytes);
        }
        if (fused) {
            st = NC_FN(optim_step_penalized)(&cfg, f->n_params, (real *)f->params,
                                             (const real *)f->grads, (real *)f->state,
                                             f->step + (int64_t)b + 1, f->n_pen, segs, pens);
            for (j = 0; j < f->n_pen && st == NC_OK; j++) {
                layer_pen += pens[j];
                if (f->pen_end[j]) { loss += layer_pen; layer_pen = 0; }
            }
        } else {
            for (j = 0; j < f->n_pen && st == NC_OK; j++) {
                double pen = 0;
                st = NC_FN(penalty)(f->pen_n[j], (const real *)f->pen_w[j],
                                    (real *)f->pen_g[j], f->pen_l1[j], f->pen_l2[j], &pen);
                layer_pen += pen;
                if (f->pen_end[j]) { loss += layer_pen; layer_pen = 0; }
            }
            if (st == NC_OK)
                st = NC_FN(optim_step)(&cfg, f->n_params, (real *)f->params,
                                       (const real *)f->grads, (real *)f->state,
                                       f->step + (int64_t)b + 1);
        }
        if (st != NC_OK) break;
        /* the batch's logs, summed as the per-batch loop sums them */
        if (f->batch_loss) f->batch_loss[b] = loss;
        f->loss_sum += loss * (double)rows;
        seen = out;
        if (f->n_metrics && f->fuse_last) {
            st = NC_FN(act_forward)(f->out_act, (real)f->out_param, rows, n_out, out, probs);
            seen = probs;
        }
        for (j = 0; j < f->n_metrics && st == NC_OK; j++) {
            size_t correct = 0, scored = rows;
            if (f->metric[j] == NC_METRIC_ACC_SPARSE)
                st = NC_FN(accuracy_sparse)(rows, n_out, lin, seen, &correct);
            else if (f->metric[j] == NC_METRIC_ACC_ARGMAX)
                st = NC_FN(accuracy_argmax)(rows, n_out, tin, seen, &correct);
            else {
                scored = rows * n_out;
                st = NC_FN(accuracy_threshold)(scored, tin, seen, (real)f->threshold[j],
                                               &correct);
            }
            f->metric_sum[j] += (double)correct / (double)scored * (double)rows;
        }
        f->done = b + 1;
        if (st != NC_OK) break;
    }
    return st;
}
