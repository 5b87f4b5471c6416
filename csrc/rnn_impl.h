/*
 * rnn_impl.h -- SimpleRNN, LSTM and GRU forward and backward through time,
 * written once for `real` (see real.h). The formulas are in nncore.h.
 *
 * Cache (indexed by INPUT step t, so rows line up with x for the batched
 * weight gradients):
 *   gates  N x T x GU  x W + b_in, then (after the step) the activated gates
 *                      (LSTM i f g o, GRU z r hh; SIMPLE: the pre-activation)
 *   h      N x T x U   the state after step t (carried over a masked step)
 *   h0     N x U       the initial state
 *   c, tc  N x T x U   LSTM: the cell after step t and tanh of it
 *   c0     N x U       LSTM: the initial cell
 *   rh     N x T x U   GRU: (h_prev R + b_rec)_h, what r multiplied
 *   rec    N x GU      GRU: the step's recurrent product (scratch)
 *   hd     N x U       h_prev * rmask (scratch)
 * The per-row cell functions take restrict pointers: their arrays are
 * distinct pieces of the cache and scratch, and saying so lets the compiler
 * vectorise the gate loops.
 * Backward keeps dL/d(pre-activations) of every step (dpx for the input side,
 * dpr for the recurrent side; they differ only for GRU's h block), then does
 * dkernel, drecurrent and dx as three GEMMs over all steps at once.
 */

/* Row b's pointer into an N x T x w array at step t. */
#define NC_RNN_AT(base, b, t, w) ((base) + ((b) * T + (t)) * (w))

/* The input step processed at position s. */
static inline size_t NC_TAG(rnn_t)(const nc_rnn_desc *d, size_t s)
{
    return d->go_backwards ? d->steps - 1 - s : s;
}

/* Fused forward of one unmasked row: pre-activations a (GU, x W + b_in +
 * for SIMPLE/LSTM already h_prev R) become the activated gates; the new
 * state goes to h (and c, tc). */
static void NC_TAG(rnn_cell_forward)(const nc_rnn_desc *d, size_t U, real *restrict a,
                                     const real *restrict hp, const real *restrict cp,
                                     const real *restrict rec, const real *restrict brec,
                                     real *restrict rh, real *restrict h, real *restrict c,
                                     real *restrict tc)
{
    size_t j;
    switch (d->cell) {
    case NC_RNN_SIMPLE:
        /* keep a (the pre-activation); h = act(a) */
        NC_FN(act_forward)(d->act, (real)d->param, 1, U, a, h);
        break;
    case NC_RNN_LSTM: {
        real *i = a, *f = a + U, *g = a + 2 * U, *o = a + 3 * U;
        R_VSIGMOID(2 * U, a, a);
        R_VTANH(U, g, g);
        R_VSIGMOID(U, o, o);
        for (j = 0; j < U; j++) c[j] = f[j] * cp[j] + i[j] * g[j];
        R_VTANH(U, c, tc);
        for (j = 0; j < U; j++) h[j] = o[j] * tc[j];
        break;
    }
    case NC_RNN_GRU: {
        real *z = a, *r = a + U, *hh = a + 2 * U;
        if (brec)
            for (j = 0; j < 2 * U; j++) a[j] += rec[j] + brec[j];
        else
            for (j = 0; j < 2 * U; j++) a[j] += rec[j];
        R_VSIGMOID(2 * U, a, a);
        for (j = 0; j < U; j++) {
            rh[j] = rec[2 * U + j] + (brec ? brec[2 * U + j] : R_C(0));
            hh[j] += r[j] * rh[j];
        }
        R_VTANH(U, hh, hh);
        for (j = 0; j < U; j++) h[j] = z[j] * hp[j] + (R_C(1) - z[j]) * hh[j];
        break;
    }
    default:
        break;
    }
}

/* One step's fused pass, shared by the threads that split its rows. */
typedef struct NC_TAG(rnn_step) {
    const nc_rnn_desc *d;
    size_t N, T, U, GU, t, tp, rows;
    int s_first;
    /* forward */
    real *P, *H, *C, *TC, *RH;
    const real *REC, *brec, *hp, *cp;
    size_t ldhp;
    const uint8_t *mask;
    /* backward */
    const real *CP, *H0, *C0, *dy_seq;
    size_t s;
    real *DPX, *DPR, *DH, *DHN, *DC, *DCN;
} NC_TAG(rnn_step);

/* Runs task(ctx, i) over row blocks of N rows, on as many threads as the
 * step's size is worth (rows are independent: same bits at any count). */
static void NC_TAG(rnn_run_rows)(size_t N, size_t GU, nc_task_fn task,
                                 NC_TAG(rnn_step) *S)
{
    int threads = nc_threads_for((double)N * (double)GU, 8192.0);
    if (threads > (int)N) threads = (int)N;
    if (threads <= 1) {
        S->rows = N;
        task(S, 0, 0);
        return;
    }
    S->rows = (N + (size_t)threads - 1) / (size_t)threads;
    nc_parallel_for_max((N + S->rows - 1) / S->rows, threads, task, S);
}

static void NC_TAG(rnn_fwd_task)(void *ctx, size_t task, int thread)
{
    const NC_TAG(rnn_step) *S = (const NC_TAG(rnn_step) *)ctx;
    const nc_rnn_desc *d = S->d;
    size_t T = S->T, U = S->U, GU = S->GU, t = S->t, ldhp = S->ldhp, b, j;
    size_t b0 = task * S->rows, b1 = NC_MIN(S->N, b0 + S->rows);
    int lstm = d->cell == NC_RNN_LSTM, gru = d->cell == NC_RNN_GRU;
    real *P = S->P, *H = S->H, *C = S->C, *TC = S->TC, *RH = S->RH;
    (void)thread;
    for (b = b0; b < b1; b++) {
        const real *hpb = S->hp + b * ldhp, *cpb = lstm ? S->cp + b * ldhp : NULL;
        real *hb = NC_RNN_AT(H, b, t, U);
        if (S->mask && !S->mask[b * T + t]) { /* padded: carry the state over */
            for (j = 0; j < U; j++) hb[j] = hpb[j];
            if (lstm)
                for (j = 0; j < U; j++) NC_RNN_AT(C, b, t, U)[j] = cpb[j];
            continue;
        }
        NC_TAG(rnn_cell_forward)(d, U, NC_RNN_AT(P, b, t, GU), hpb, cpb,
                                 gru ? S->REC + b * GU : NULL, S->brec,
                                 gru ? NC_RNN_AT(RH, b, t, U) : NULL, hb,
                                 lstm ? NC_RNN_AT(C, b, t, U) : NULL,
                                 lstm ? NC_RNN_AT(TC, b, t, U) : NULL);
    }
}

nc_status NC_FN(rnn_forward)(const nc_rnn_desc *d, const real *x, const real *kernel,
                             const real *recurrent_kernel, const real *bias,
                             const real *h0, const real *c0, const uint8_t *mask,
                             const real *rmask, real *y_seq, real *h_last, real *c_last,
                             real *cache)
{
    nc_rnn_layout_ L;
    size_t N, T, I, U, GU, b, j, s, t;
    real *P, *H, *H0, *C, *TC, *C0, *RH, *REC, *HD;
    const real *brec = NULL;
    const real *hp, *cp = NULL, *hr;
    size_t ldhp, ldhr;
    int lstm, gru;
    nc_status st;
    NC_TAG(rnn_step) S;

    if (!nc_rnn_desc_ok(d)) return NC_ERR_ARG;
    N = d->batch; T = d->steps; I = d->inputs; U = d->units;
    GU = nc_rnn_gates(d->cell) * U;
    lstm = d->cell == NC_RNN_LSTM;
    gru = d->cell == NC_RNN_GRU;
    nc_rnn_layout(d, &L);
    P = cache + L.gates; H = cache + L.h; H0 = cache + L.h0;
    C = cache + L.c; TC = cache + L.tc; C0 = cache + L.c0;
    RH = cache + L.rh; REC = cache + L.rec; HD = cache + L.hd;
    S.d = d; S.N = N; S.T = T; S.U = U; S.GU = GU;
    S.P = P; S.H = H; S.C = C; S.TC = TC; S.RH = RH; S.REC = REC; S.mask = mask;

    /* every step's input projection in one product, then the input bias */
    st = NC_FN(gemm)(0, 0, N * T, GU, I, R_C(1), x, I, kernel, GU, R_C(0), P, GU);
    if (st != NC_OK) return st;
    if (bias) {
        for (b = 0; b < N * T; b++) {
            real *row = P + b * GU;
            for (j = 0; j < GU; j++) row[j] += bias[j];
        }
        if (gru) brec = bias + GU;
    }
    S.brec = brec;
    for (j = 0; j < N * U; j++) H0[j] = h0 ? h0[j] : R_C(0);
    if (lstm)
        for (j = 0; j < N * U; j++) C0[j] = c0 ? c0[j] : R_C(0);

    hp = H0; ldhp = U;
    if (lstm) cp = C0;
    for (s = 0; s < T; s++) {
        t = NC_TAG(rnn_t)(d, s);
        hr = hp; ldhr = ldhp;
        if (rmask) {
            for (b = 0; b < N; b++)
                for (j = 0; j < U; j++) HD[b * U + j] = hp[b * ldhp + j] * rmask[b * U + j];
            hr = HD; ldhr = U;
        }
        if (gru)
            st = NC_FN(gemm)(0, 0, N, GU, U, R_C(1), hr, ldhr, recurrent_kernel, GU,
                             R_C(0), REC, GU);
        else /* straight into the step's pre-activations */
            st = NC_FN(gemm)(0, 0, N, GU, U, R_C(1), hr, ldhr, recurrent_kernel, GU,
                             R_C(1), P + t * GU, T * GU);
        if (st != NC_OK) return st;
        S.t = t; S.hp = hp; S.cp = cp; S.ldhp = ldhp;
        NC_TAG(rnn_run_rows)(N, GU, NC_TAG(rnn_fwd_task), &S);
        hp = H + t * U; ldhp = T * U;
        if (lstm) cp = C + t * U;
    }

    if (y_seq)
        for (b = 0; b < N; b++)
            for (s = 0; s < T; s++) {
                real *yb = y_seq + (b * T + s) * U;
                const real *hb;
                t = NC_TAG(rnn_t)(d, s);
                hb = NC_RNN_AT(H, b, t, U);
                if (mask && !mask[b * T + t])
                    for (j = 0; j < U; j++) yb[j] = 0;
                else
                    for (j = 0; j < U; j++) yb[j] = hb[j];
            }
    t = NC_TAG(rnn_t)(d, T - 1);
    if (h_last)
        for (b = 0; b < N; b++)
            for (j = 0; j < U; j++) h_last[b * U + j] = NC_RNN_AT(H, b, t, U)[j];
    if (c_last && lstm)
        for (b = 0; b < N; b++)
            for (j = 0; j < U; j++) c_last[b * U + j] = NC_RNN_AT(C, b, t, U)[j];
    return NC_OK;
}

/* Fused backward of one unmasked row: from dh (and dc) of the step's output
 * state, the pre-activation gradients dpx (input side) and dpr (recurrent
 * side, GRU only: it may be NULL otherwise), and the parts of dh_prev (dhn)
 * and dc_prev (dcn) that do not go through the recurrent kernel. */
static void NC_TAG(rnn_cell_backward)(const nc_rnn_desc *d, size_t U,
                                      const real *restrict a, const real *restrict h,
                                      const real *restrict hp, const real *restrict cp,
                                      const real *restrict tc, const real *restrict rh,
                                      const real *restrict dh, const real *restrict dc,
                                      real *restrict dpx, real *restrict dpr,
                                      real *restrict dhn, real *restrict dcn)
{
    size_t j;
    switch (d->cell) {
    case NC_RNN_SIMPLE:
        NC_FN(act_backward)(d->act, (real)d->param, 1, U, h, dh, dpx);
        for (j = 0; j < U; j++) dhn[j] = 0;
        break;
    case NC_RNN_LSTM: {
        const real *i = a, *f = a + U, *g = a + 2 * U, *o = a + 3 * U;
        for (j = 0; j < U; j++) {
            real dcj = dc[j] + dh[j] * o[j] * (R_C(1) - tc[j] * tc[j]);
            dpx[j] = dcj * g[j] * i[j] * (R_C(1) - i[j]);
            dpx[U + j] = dcj * cp[j] * f[j] * (R_C(1) - f[j]);
            dpx[2 * U + j] = dcj * i[j] * (R_C(1) - g[j] * g[j]);
            dpx[3 * U + j] = dh[j] * tc[j] * o[j] * (R_C(1) - o[j]);
            dcn[j] = dcj * f[j];
            dhn[j] = 0;
        }
        break;
    }
    case NC_RNN_GRU: {
        const real *z = a, *r = a + U, *hh = a + 2 * U;
        for (j = 0; j < U; j++) {
            real dah = dh[j] * (R_C(1) - z[j]) * (R_C(1) - hh[j] * hh[j]);
            real daz = dh[j] * (hp[j] - hh[j]) * z[j] * (R_C(1) - z[j]);
            real dar = dah * rh[j] * r[j] * (R_C(1) - r[j]);
            dpx[j] = dpr[j] = daz;
            dpx[U + j] = dpr[U + j] = dar;
            dpx[2 * U + j] = dah;
            dpr[2 * U + j] = dah * r[j];
            dhn[j] = dh[j] * z[j];
        }
        break;
    }
    default:
        break;
    }
}

static void NC_TAG(rnn_bwd_task)(void *ctx, size_t task, int thread)
{
    const NC_TAG(rnn_step) *S = (const NC_TAG(rnn_step) *)ctx;
    const nc_rnn_desc *d = S->d;
    size_t T = S->T, U = S->U, GU = S->GU, t = S->t, tp = S->tp, s = S->s, b, j;
    size_t b0 = task * S->rows, b1 = NC_MIN(S->N, b0 + S->rows);
    int lstm = d->cell == NC_RNN_LSTM, gru = d->cell == NC_RNN_GRU;
    const real *P = S->P, *H = S->H, *C = S->CP, *TC = S->TC, *RH = S->RH;
    real *DPX = S->DPX, *DPR = S->DPR, *DH = S->DH, *DHN = S->DHN, *DC = S->DC,
         *DCN = S->DCN;
    (void)thread;
    for (b = b0; b < b1; b++) {
        real *dhb = DH + b * U;
        const real *hpb = s > 0 ? NC_RNN_AT(H, b, tp, U) : S->H0 + b * U;
        int masked = S->mask && !S->mask[b * T + t];
        if (S->dy_seq && !masked) {
            const real *dyb = S->dy_seq + (b * T + s) * U;
            for (j = 0; j < U; j++) dhb[j] += dyb[j];
        }
        if (masked) { /* the state passed through untouched */
            real *px = NC_RNN_AT(DPX, b, t, GU), *pr = NC_RNN_AT(DPR, b, t, GU);
            for (j = 0; j < GU; j++) px[j] = pr[j] = 0;
            for (j = 0; j < U; j++) DHN[b * U + j] = dhb[j];
            for (j = 0; j < U; j++) DCN[b * U + j] = DC[b * U + j];
            continue;
        }
        NC_TAG(rnn_cell_backward)(
            d, U, NC_RNN_AT(P, b, t, GU), NC_RNN_AT(H, b, t, U), hpb,
            lstm ? (s > 0 ? NC_RNN_AT(C, b, tp, U) : S->C0 + b * U) : NULL,
            lstm ? NC_RNN_AT(TC, b, t, U) : NULL, gru ? NC_RNN_AT(RH, b, t, U) : NULL,
            dhb, DC + b * U, NC_RNN_AT(DPX, b, t, GU),
            gru ? NC_RNN_AT(DPR, b, t, GU) : NULL, DHN + b * U, DCN + b * U);
    }
}

nc_status NC_FN(rnn_backward)(const nc_rnn_desc *d, const real *x, const real *kernel,
                              const real *recurrent_kernel, const uint8_t *mask,
                              const real *rmask, const real *cache, const real *dy_seq,
                              const real *dh_last, const real *dc_last, real *dx,
                              real *dkernel, real *drecurrent, real *dbias, real *dh0,
                              real *dc0, real *work)
{
    nc_rnn_layout_ L;
    size_t N, T, I, U, GU, b, j, s, t, tp = 0;
    const real *P, *H, *H0, *C, *TC, *C0, *RH;
    real *DPX, *DPR, *HP, *RT, *DH, *DHN, *DC, *DCN, *TMP, *sw;
    int lstm, gru;
    nc_status st;
    NC_TAG(rnn_step) S;

    if (!nc_rnn_desc_ok(d)) return NC_ERR_ARG;
    N = d->batch; T = d->steps; I = d->inputs; U = d->units;
    GU = nc_rnn_gates(d->cell) * U;
    lstm = d->cell == NC_RNN_LSTM;
    gru = d->cell == NC_RNN_GRU;
    nc_rnn_layout(d, &L);
    P = cache + L.gates; H = cache + L.h; H0 = cache + L.h0;
    C = cache + L.c; TC = cache + L.tc; C0 = cache + L.c0; RH = cache + L.rh;
    DPX = work + L.dpx; DPR = gru ? work + L.dpr : DPX; HP = work + L.hp;
    DH = work + L.dh; DHN = work + L.dhn; DC = work + L.dc; DCN = work + L.dcn;
    TMP = work + L.tmp; RT = work + L.rt;
    /* the row tasks only read the cache: the casts drop const for the shared struct */
    S.d = d; S.N = N; S.T = T; S.U = U; S.GU = GU; S.mask = mask; S.dy_seq = dy_seq;
    S.P = (real *)P; S.H = (real *)H; S.CP = C; S.TC = (real *)TC; S.RH = (real *)RH;
    S.H0 = H0; S.C0 = C0; S.DPX = DPX; S.DPR = DPR;

    /* R^T once, so the T products below read it untransposed (no per-step
     * repacking of a transposed operand) */
    for (j = 0; j < U; j++)
        for (b = 0; b < GU; b++) RT[b * U + j] = recurrent_kernel[j * GU + b];

    for (j = 0; j < N * U; j++) DH[j] = dh_last ? dh_last[j] : R_C(0);
    for (j = 0; j < N * U; j++) DC[j] = (lstm && dc_last) ? dc_last[j] : R_C(0);

    for (s = T; s-- > 0;) {
        t = NC_TAG(rnn_t)(d, s);
        if (s > 0) tp = NC_TAG(rnn_t)(d, s - 1);
        S.s = s; S.t = t; S.tp = tp;
        S.DH = DH; S.DHN = DHN; S.DC = DC; S.DCN = DCN;
        NC_TAG(rnn_run_rows)(N, GU, NC_TAG(rnn_bwd_task), &S);
        /* dh_prev += dpr R^T (times the recurrent dropout mask) */
        if (rmask) {
            st = NC_FN(gemm)(0, 0, N, U, GU, R_C(1), DPR + t * GU, T * GU, RT, U, R_C(0),
                             TMP, U);
            if (st != NC_OK) return st;
            for (j = 0; j < N * U; j++) DHN[j] += TMP[j] * rmask[j];
        } else {
            st = NC_FN(gemm)(0, 0, N, U, GU, R_C(1), DPR + t * GU, T * GU, RT, U, R_C(1),
                             DHN, U);
            if (st != NC_OK) return st;
        }
        sw = DH; DH = DHN; DHN = sw;
        sw = DC; DC = DCN; DCN = sw;
    }
    if (dh0)
        for (j = 0; j < N * U; j++) dh0[j] = DH[j];
    if (dc0 && lstm)
        for (j = 0; j < N * U; j++) dc0[j] = DC[j];

    if (dkernel) { /* X^T dpx over every step */
        st = NC_FN(gemm)(1, 0, I, GU, N * T, R_C(1), x, I, DPX, GU, R_C(0), dkernel, GU);
        if (st != NC_OK) return st;
    }
    if (drecurrent) { /* Hprev^T dpr, Hprev the (masked) state each step started from */
        for (b = 0; b < N; b++)
            for (s = 0; s < T; s++) {
                const real *src;
                real *dst;
                t = NC_TAG(rnn_t)(d, s);
                src = s > 0 ? NC_RNN_AT(H, b, NC_TAG(rnn_t)(d, s - 1), U) : H0 + b * U;
                dst = NC_RNN_AT(HP, b, t, U);
                if (rmask)
                    for (j = 0; j < U; j++) dst[j] = src[j] * rmask[b * U + j];
                else
                    for (j = 0; j < U; j++) dst[j] = src[j];
            }
        st = NC_FN(gemm)(1, 0, U, GU, N * T, R_C(1), HP, U, DPR, GU, R_C(0), drecurrent, GU);
        if (st != NC_OK) return st;
    }
    if (dbias) {
        for (j = 0; j < GU; j++) dbias[j] = 0;
        for (b = 0; b < N * T; b++)
            for (j = 0; j < GU; j++) dbias[j] += DPX[b * GU + j];
        if (gru) {
            real *dbr = dbias + GU;
            for (j = 0; j < GU; j++) dbr[j] = 0;
            for (b = 0; b < N * T; b++)
                for (j = 0; j < GU; j++) dbr[j] += DPR[b * GU + j];
        }
    }
    if (dx) { /* dpx W^T over every step */
        st = NC_FN(gemm)(0, 1, N * T, I, GU, R_C(1), DPX, GU, kernel, GU, R_C(0), dx, I);
        if (st != NC_OK) return st;
    }
    return NC_OK;
}

#undef NC_RNN_AT
