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
 *   rh     N x T x U   GRU: (h_prev R + b_rec)_h, what r multiplied;
 *                      GRU_RESET_BEFORE: r * h_prev (times rmask), what R_h
 *                      multiplied (0 at a masked step)
 *   rec    N x GU      GRU: the step's recurrent product (scratch)
 *   hd     N x U       h_prev * rmask (scratch)
 * The fused per-step passes over rows are in rnn_cell_impl.h.
 * Backward keeps dL/d(pre-activations) of every step (dpx for the input side,
 * dpr for the recurrent side; they differ only for GRU's h block), then does
 * dkernel, drecurrent and dx as GEMMs over all steps at once.
 *
 * A zero initial state (h0 NULL) makes the first step's recurrent product
 * zero: it is skipped, and so is backward's last dh_prev product when dh0 is
 * not wanted.
 */

/* The input step processed at position s. */
static inline size_t NC_TAG(rnn_t)(const nc_rnn_desc *d, size_t s)
{
    return d->go_backwards ? d->steps - 1 - s : s;
}

#include "rnn_cell_impl.h"

/* The level's per-step passes: the same loops built with wider vectors
 * where the machine has them (same bits). */
static nc_task_fn NC_TAG(rnn_task)(int backward)
{
#ifdef NC_RNN_X86
    if (nc_active_isa_ == NC_ISA_AVX512)
        return backward ? NC_TAG(nc_rnn_bwd_task_avx512) : NC_TAG(nc_rnn_fwd_task_avx512);
    if (nc_active_isa_ == NC_ISA_AVX2)
        return backward ? NC_TAG(nc_rnn_bwd_task_avx2) : NC_TAG(nc_rnn_fwd_task_avx2);
#endif
    return backward ? NC_TAG(rnn_bwd_task) : NC_TAG(rnn_fwd_task);
}

/* dst (cols x rows) = src^T, src rows x cols with leading dimension ld: in
 * 16 x 16 blocks, so neither side is walked a whole column at a time. */
static void NC_TAG(rnn_transpose)(size_t rows, size_t cols, const real *src, size_t ld,
                                  real *dst)
{
    size_t i0, j0, i, j;
    for (i0 = 0; i0 < rows; i0 += 16)
        for (j0 = 0; j0 < cols; j0 += 16) {
            size_t i1 = NC_MIN(rows, i0 + 16), j1 = NC_MIN(cols, j0 + 16);
            for (j = j0; j < j1; j++)
                for (i = i0; i < i1; i++) dst[j * rows + i] = src[i * ld + j];
        }
}

/* Runs task(ctx, i) over row blocks of N rows, on as many threads as the
 * step's size is worth (rows are independent: same bits at any count). */
static void NC_TAG(rnn_run_rows)(size_t N, size_t GU, nc_task_fn task,
                                 NC_TAG(rnn_step) *S)
{
    int threads;
    if (S->b_lo != 0 || S->b_hi != N) { /* a thread's own rows: run them here */
        S->rows = S->b_hi - S->b_lo;
        task(S, 0, 0);
        return;
    }
    threads = nc_threads_for((double)N * (double)GU, 8192.0);
    if (threads > (int)N) threads = (int)N;
    if (threads <= 1) {
        S->rows = N;
        task(S, 0, 0);
        return;
    }
    S->rows = (N + (size_t)threads - 1) / (size_t)threads;
    nc_parallel_for_max((N + S->rows - 1) / S->rows, threads, task, S);
}


/* The time loops, over a range of batch rows. Rows never meet inside the
 * loops (each row's state depends on its own past only), so with threads
 * each one runs the whole loop over its own rows, with one fork and join
 * per pass instead of several per step; every product and pass gives each
 * row the bits it gets unsplit (each element of the unpacked GEMM path is
 * one chain in increasing k whatever m is: NC_RNN_SPLIT_MNK keeps the
 * per-step product on that path). Larger steps split each step instead. */
#ifndef NC_RNN_SPLIT_MNK
#define NC_RNN_SPLIT_MNK ((size_t)1 << 22)
#endif
#define NC_RNN_MAX_PARTS 16

typedef struct NC_TAG(rnn_seq) {
    NC_TAG(rnn_step) S;       /* the shared fields; each part copies it */
    nc_task_fn task;
    const real *R, *RT, *rmask, *dh_last, *dc_last;
    real *HD, *C0w, *dh0, *dc0;
    real *DH, *DHN, *DC, *DCN;
    int zero_h0;
    size_t parts;
    nc_status st[NC_RNN_MAX_PARTS];
} NC_TAG(rnn_seq);

static nc_status NC_TAG(rnn_fwd_rows)(const NC_TAG(rnn_seq) *Q, size_t b0, size_t b1)
{
    NC_TAG(rnn_step) S = Q->S;
    const nc_rnn_desc *d = S.d;
    size_t T = S.T, U = S.U, GU = S.GU, nb = b1 - b0, b, j, s, t, ldhp, ldhr;
    int lstm = d->cell == NC_RNN_LSTM, gru = d->cell == NC_RNN_GRU;
    int grb = d->cell == NC_RNN_GRU_RESET_BEFORE, zero;
    const real *hp, *cp, *hr, *R = Q->R, *rmask = Q->rmask;
    nc_status st;
    S.b_lo = b0; S.b_hi = b1;
    hp = S.H0; ldhp = U;
    cp = lstm ? S.C0 : NULL;
    for (s = 0; s < T; s++) {
        t = NC_TAG(rnn_t)(d, s);
        zero = s == 0 && Q->zero_h0; /* h_prev R is exactly zero */
        hr = hp; ldhr = ldhp;
        if (rmask) {
            for (b = b0; b < b1; b++)
                for (j = 0; j < U; j++) Q->HD[b * U + j] = hp[b * ldhp + j] * rmask[b * U + j];
            hr = Q->HD; ldhr = U;
        }
        S.t = t; S.hp = hp; S.cp = cp; S.ldhp = ldhp; S.hr = hr; S.ldhr = ldhr;
        if (gru) {
            real *rec = (real *)S.REC + b0 * GU;
            if (zero)
                for (j = 0; j < nb * GU; j++) rec[j] = 0;
            else if ((st = NC_FN(gemm)(0, 0, nb, GU, U, R_C(1), hr + b0 * ldhr, ldhr, R, GU,
                                       R_C(0), rec, GU)) != NC_OK)
                return st;
        } else if (!zero) { /* straight into the step's pre-activations (z, r only for grb) */
            st = NC_FN(gemm)(0, 0, nb, grb ? 2 * U : GU, U, R_C(1), hr + b0 * ldhr, ldhr, R, GU,
                             R_C(1), S.P + (b0 * T + t) * GU, T * GU);
            if (st != NC_OK) return st;
        }
        S.phase = 0;
        if (grb) { /* z, r and rh = r * h_prev; then rh R_h into the h block */
            NC_TAG(rnn_run_rows)(S.N, GU, Q->task, &S);
            if (!zero) {
                st = NC_FN(gemm)(0, 0, nb, U, U, R_C(1), S.RH + b0 * T * U + t * U, T * U,
                                 R + 2 * U, GU, R_C(1), S.P + (b0 * T + t) * GU + 2 * U, T * GU);
                if (st != NC_OK) return st;
            }
            S.phase = 1;
        }
        NC_TAG(rnn_run_rows)(S.N, GU, Q->task, &S);
        hp = S.H + t * U; ldhp = T * U;
        if (lstm) cp = S.C + t * U;
    }
    return NC_OK;
}

static nc_status NC_TAG(rnn_bwd_rows)(const NC_TAG(rnn_seq) *Q, size_t b0, size_t b1)
{
    NC_TAG(rnn_step) S = Q->S;
    const nc_rnn_desc *d = S.d;
    size_t T = S.T, U = S.U, GU = S.GU, nb = b1 - b0, j, s, t, tp = 0;
    size_t kk = d->cell == NC_RNN_GRU_RESET_BEFORE ? 2 * U : GU;
    int lstm = d->cell == NC_RNN_LSTM, grb = d->cell == NC_RNN_GRU_RESET_BEFORE;
    const real *RT = Q->RT, *rmask = Q->rmask;
    real *DH = Q->DH, *DHN = Q->DHN, *DC = Q->DC, *DCN = Q->DCN, *TMP = (real *)S.TMP, *sw;
    nc_status st;
    S.b_lo = b0; S.b_hi = b1;
    for (j = b0 * U; j < b1 * U; j++) DH[j] = Q->dh_last ? Q->dh_last[j] : R_C(0);
    for (j = b0 * U; j < b1 * U; j++) DC[j] = (lstm && Q->dc_last) ? Q->dc_last[j] : R_C(0);
    for (s = T; s-- > 0;) {
        /* after step 0, dh_prev is dh0: not wanted, its product is skipped */
        int need_dhp = s > 0 || Q->dh0 != NULL;
        t = NC_TAG(rnn_t)(d, s);
        if (s > 0) tp = NC_TAG(rnn_t)(d, s - 1);
        S.s = s; S.t = t; S.tp = tp; S.phase = 0;
        S.DH = DH; S.DHN = DHN; S.DC = DC; S.DCN = DCN;
        NC_TAG(rnn_run_rows)(S.N, GU, Q->task, &S);
        if (grb) { /* drh = dhh R_h^T, then dr and rh's share of dh_prev */
            st = NC_FN(gemm)(0, 0, nb, U, U, R_C(1), S.DPX + (b0 * T + t) * GU + 2 * U, T * GU,
                             RT + 2 * U * U, U, R_C(0), TMP + b0 * U, U);
            if (st != NC_OK) return st;
            S.phase = 1;
            NC_TAG(rnn_run_rows)(S.N, GU, Q->task, &S);
        }
        /* dh_prev += dpr R^T (times the recurrent dropout mask); z and r only for grb */
        if (need_dhp) {
            if (rmask) {
                st = NC_FN(gemm)(0, 0, nb, U, kk, R_C(1), S.DPR + (b0 * T + t) * GU, T * GU, RT,
                                 U, R_C(0), TMP + b0 * U, U);
                if (st != NC_OK) return st;
                for (j = b0 * U; j < b1 * U; j++) DHN[j] += TMP[j] * rmask[j];
            } else {
                st = NC_FN(gemm)(0, 0, nb, U, kk, R_C(1), S.DPR + (b0 * T + t) * GU, T * GU, RT,
                                 U, R_C(1), DHN + b0 * U, U);
                if (st != NC_OK) return st;
            }
        }
        sw = DH; DH = DHN; DHN = sw;
        sw = DC; DC = DCN; DCN = sw;
    }
    if (Q->dh0)
        for (j = b0 * U; j < b1 * U; j++) Q->dh0[j] = DH[j];
    if (Q->dc0 && lstm)
        for (j = b0 * U; j < b1 * U; j++) Q->dc0[j] = DC[j];
    return NC_OK;
}

static void NC_TAG(rnn_fwd_part)(void *ctx, size_t task, int thread)
{
    NC_TAG(rnn_seq) *Q = (NC_TAG(rnn_seq) *)ctx;
    size_t N = Q->S.N;
    (void)thread;
    Q->st[task] = NC_TAG(rnn_fwd_rows)(Q, task * N / Q->parts, (task + 1) * N / Q->parts);
}

static void NC_TAG(rnn_bwd_part)(void *ctx, size_t task, int thread)
{
    NC_TAG(rnn_seq) *Q = (NC_TAG(rnn_seq) *)ctx;
    size_t N = Q->S.N;
    (void)thread;
    Q->st[task] = NC_TAG(rnn_bwd_rows)(Q, task * N / Q->parts, (task + 1) * N / Q->parts);
}

/* Runs a time loop over all rows: in parts on threads, or whole with each
 * step split. */
static nc_status NC_TAG(rnn_time_loop)(NC_TAG(rnn_seq) *Q, nc_task_fn part)
{
    size_t N = Q->S.N, GU = Q->S.GU, U = Q->S.U, T = Q->S.T, i;
    Q->parts = 1;
    if (N >= 2 && N * GU * U <= NC_RNN_SPLIT_MNK) {
        int threads = nc_threads_for((double)N * (double)GU * (double)U * (double)T,
                                     (double)(1 << 18));
        Q->parts = NC_MIN(NC_MIN((size_t)threads, N), (size_t)NC_RNN_MAX_PARTS);
    }
    if (Q->parts <= 1) {
        Q->parts = 1;
        part(Q, 0, 0);
    } else {
        nc_parallel_for_max(Q->parts, (int)Q->parts, part, Q);
    }
    for (i = 0; i < Q->parts; i++)
        if (Q->st[i] != NC_OK) return Q->st[i];
    return NC_OK;
}

nc_status NC_FN(rnn_forward)(const nc_rnn_desc *d, const real *x, const real *kernel,
                             const real *recurrent_kernel, const real *bias,
                             const real *h0, const real *c0, const uint8_t *mask,
                             const real *rmask, real *y_seq, real *h_last, real *c_last,
                             real *cache)
{
    nc_rnn_layout_ L;
    size_t N, T, I, U, GU, b, j, s, t;
    real *P, *H, *H0, *C, *TC, *C0;
    int lstm;
    nc_status st;
    NC_TAG(rnn_seq) Q;
    NC_TAG(rnn_step) *S = &Q.S;

    if (!nc_rnn_desc_ok(d)) return NC_ERR_ARG;
    N = d->batch; T = d->steps; I = d->inputs; U = d->units;
    GU = nc_rnn_gates(d->cell) * U;
    lstm = d->cell == NC_RNN_LSTM;
    nc_rnn_layout(d, &L);
    P = cache + L.gates; H = cache + L.h; H0 = cache + L.h0;
    C = cache + L.c; TC = cache + L.tc; C0 = cache + L.c0;
    memset(&Q, 0, sizeof Q);
    S->d = d; S->N = N; S->T = T; S->U = U; S->GU = GU; S->b_lo = 0; S->b_hi = N;
    S->P = P; S->H = H; S->C = C; S->TC = TC; S->RH = cache + L.rh; S->REC = cache + L.rec;
    S->mask = mask; S->rmask = rmask; S->H0 = H0; S->C0 = C0;
    Q.task = NC_TAG(rnn_task)(0);
    Q.R = recurrent_kernel; Q.rmask = rmask; Q.HD = cache + L.hd; Q.zero_h0 = h0 == NULL;

    /* every step's input projection in one product, then the input bias */
    st = NC_FN(gemm)(0, 0, N * T, GU, I, R_C(1), x, I, kernel, GU, R_C(0), P, GU);
    if (st != NC_OK) return st;
    if (bias) {
        for (b = 0; b < N * T; b++) {
            real *row = P + b * GU;
            for (j = 0; j < GU; j++) row[j] += bias[j];
        }
        if (d->cell == NC_RNN_GRU) S->brec = bias + GU;
    }
    for (j = 0; j < N * U; j++) H0[j] = h0 ? h0[j] : R_C(0);
    if (lstm)
        for (j = 0; j < N * U; j++) C0[j] = c0 ? c0[j] : R_C(0);

    st = NC_TAG(rnn_time_loop)(&Q, NC_TAG(rnn_fwd_part));
    if (st != NC_OK) return st;

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

nc_status NC_FN(rnn_backward)(const nc_rnn_desc *d, const real *x, const real *kernel,
                              const real *recurrent_kernel, const uint8_t *mask,
                              const real *rmask, const real *cache, const real *dy_seq,
                              const real *dh_last, const real *dc_last, real *dx,
                              real *dkernel, real *drecurrent, real *dbias, real *dh0,
                              real *dc0, real *work)
{
    nc_rnn_layout_ L;
    size_t N, T, I, U, GU, b, j, s, t;
    const real *H, *H0, *RH;
    real *DPX, *DPR, *HP, *RT, *WT;
    int gru, grb;
    nc_status st;
    NC_TAG(rnn_seq) Q;
    NC_TAG(rnn_step) *S = &Q.S;

    if (!nc_rnn_desc_ok(d)) return NC_ERR_ARG;
    N = d->batch; T = d->steps; I = d->inputs; U = d->units;
    GU = nc_rnn_gates(d->cell) * U;
    gru = d->cell == NC_RNN_GRU;
    grb = d->cell == NC_RNN_GRU_RESET_BEFORE;
    nc_rnn_layout(d, &L);
    H = cache + L.h; H0 = cache + L.h0; RH = cache + L.rh;
    DPX = work + L.dpx; DPR = gru ? work + L.dpr : DPX; HP = work + L.hp;
    RT = work + L.rt; WT = work + L.wt;
    memset(&Q, 0, sizeof Q);
    /* the row tasks only read the cache: the casts drop const for the shared struct */
    S->d = d; S->N = N; S->T = T; S->U = U; S->GU = GU; S->b_lo = 0; S->b_hi = N;
    S->mask = mask; S->dy_seq = dy_seq;
    S->P = (real *)(cache + L.gates); S->H = (real *)H; S->CP = cache + L.c;
    S->TC = (real *)(cache + L.tc); S->RH = (real *)RH;
    S->H0 = H0; S->C0 = cache + L.c0; S->DPX = DPX; S->DPR = DPR; S->rmask = rmask;
    S->TMP = work + L.tmp;
    Q.task = NC_TAG(rnn_task)(1);
    Q.RT = RT; Q.rmask = rmask; Q.dh_last = dh_last; Q.dc_last = dc_last;
    Q.dh0 = dh0; Q.dc0 = dc0;
    Q.DH = work + L.dh; Q.DHN = work + L.dhn; Q.DC = work + L.dc; Q.DCN = work + L.dcn;

    /* R^T once, so the T products below read it untransposed (no per-step
     * repacking of a transposed operand) */
    NC_TAG(rnn_transpose)(U, GU, recurrent_kernel, GU, RT);

    st = NC_TAG(rnn_time_loop)(&Q, NC_TAG(rnn_bwd_part));
    if (st != NC_OK) return st;

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
        if (grb) { /* z, r from Hprev; h from rh = r * Hprev */
            st = NC_FN(gemm)(1, 0, U, 2 * U, N * T, R_C(1), HP, U, DPR, GU, R_C(0), drecurrent,
                             GU);
            if (st == NC_OK)
                st = NC_FN(gemm)(1, 0, U, U, N * T, R_C(1), RH, U, DPR + 2 * U, GU, R_C(0),
                                 drecurrent + 2 * U, GU);
        } else {
            st = NC_FN(gemm)(1, 0, U, GU, N * T, R_C(1), HP, U, DPR, GU, R_C(0), drecurrent,
                             GU);
        }
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
    if (dx) { /* dpx W^T over every step, W^T formed once: the unpacked path reads it in place */
        NC_TAG(rnn_transpose)(I, GU, kernel, GU, WT);
        st = NC_FN(gemm)(0, 0, N * T, I, GU, R_C(1), DPX, GU, WT, I, R_C(0), dx, I);
        if (st != NC_OK) return st;
    }
    return NC_OK;
}

#undef NC_RNN_AT
