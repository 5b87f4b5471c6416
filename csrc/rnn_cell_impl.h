/*
 * rnn_cell_impl.h -- the fused per-step passes of rnn_impl.h (gates,
 * activations, cell update, and their gradients), one row of the batch at a
 * time, written once for `real`. rnn.c includes it for every level;
 * rnn_avx512.c compiles the same loops with AVX-512 enabled (the portable
 * build only gets SSE2 out of them). Elementwise IEEE operations only and
 * -ffp-contract=off, so both give the same bits.
 *
 * See rnn_impl.h for the cache layout. The row functions take restrict
 * pointers: their arrays are distinct pieces of the cache and scratch, and
 * saying so lets the compiler vectorise the gate loops.
 */

/* Row b's pointer into an N x T x w array at step t. */
#ifndef NC_RNN_AT
#define NC_RNN_AT(base, b, t, w) ((base) + ((b) * T + (t)) * (w))
#endif

/* One step's fused pass, shared by the threads that split its rows. */
typedef struct NC_TAG(rnn_step) {
    const nc_rnn_desc *d;
    size_t N, T, U, GU, t, tp, rows;
    size_t b_lo, b_hi; /* the batch rows this pass covers */
    int phase; /* GRU_RESET_BEFORE runs two passes a step, around a GEMM */
    /* forward */
    real *P, *H, *C, *TC, *RH;
    const real *REC, *brec, *hp, *cp, *hr;
    size_t ldhp, ldhr;
    const uint8_t *mask;
    const real *rmask;
    /* backward */
    const real *CP, *H0, *C0, *dy_seq, *TMP;
    size_t s;
    real *DPX, *DPR, *DH, *DHN, *DC, *DCN;
} NC_TAG(rnn_step);

/* Fused forward of one unmasked row: pre-activations a (GU, x W + b_in +
 * for SIMPLE/LSTM already h_prev R) become the activated gates; the new
 * state goes to h (and c, tc). GRU_RESET_BEFORE: phase 0 activates z and r
 * and forms rh = r * hr (what R_h multiplies), phase 1 (after a[2U:] got
 * rh R_h) finishes. */
static void NC_TAG(rnn_cell_forward)(const nc_rnn_desc *d, int phase, size_t U,
                                     real *restrict a, const real *restrict hp,
                                     const real *restrict cp, const real *restrict rec,
                                     const real *restrict brec, const real *restrict hr,
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
        if (brec)
            for (j = 0; j < U; j++) rh[j] = rec[2 * U + j] + brec[2 * U + j];
        else
            for (j = 0; j < U; j++) rh[j] = rec[2 * U + j];
        for (j = 0; j < U; j++) hh[j] += r[j] * rh[j];
        R_VTANH(U, hh, hh);
        for (j = 0; j < U; j++) h[j] = z[j] * hp[j] + (R_C(1) - z[j]) * hh[j];
        break;
    }
    case NC_RNN_GRU_RESET_BEFORE: {
        real *z = a, *r = a + U, *hh = a + 2 * U;
        if (phase == 0) {
            R_VSIGMOID(2 * U, a, a);
            for (j = 0; j < U; j++) rh[j] = r[j] * hr[j];
        } else {
            R_VTANH(U, hh, hh);
            for (j = 0; j < U; j++) h[j] = z[j] * hp[j] + (R_C(1) - z[j]) * hh[j];
        }
        break;
    }
    default:
        break;
    }
}

static void NC_TAG(rnn_fwd_task)(void *ctx, size_t task, int thread)
{
    const NC_TAG(rnn_step) *S = (const NC_TAG(rnn_step) *)ctx;
    const nc_rnn_desc *d = S->d;
    size_t T = S->T, U = S->U, GU = S->GU, t = S->t, ldhp = S->ldhp, b, j;
    size_t b0 = S->b_lo + task * S->rows, b1 = NC_MIN(S->b_hi, b0 + S->rows);
    int lstm = d->cell == NC_RNN_LSTM, gru = d->cell == NC_RNN_GRU;
    int grb = d->cell == NC_RNN_GRU_RESET_BEFORE;
    real *P = S->P, *H = S->H, *C = S->C, *TC = S->TC, *RH = S->RH;
    (void)thread;
    for (b = b0; b < b1; b++) {
        const real *hpb = S->hp + b * ldhp, *cpb = lstm ? S->cp + b * ldhp : NULL;
        real *hb = NC_RNN_AT(H, b, t, U);
        if (S->mask && !S->mask[b * T + t]) { /* padded: carry the state over */
            if (grb && S->phase == 0) { /* rh feeds drecurrent's product: keep it finite */
                for (j = 0; j < U; j++) NC_RNN_AT(RH, b, t, U)[j] = 0;
                continue;
            }
            for (j = 0; j < U; j++) hb[j] = hpb[j];
            if (lstm)
                for (j = 0; j < U; j++) NC_RNN_AT(C, b, t, U)[j] = cpb[j];
            continue;
        }
        NC_TAG(rnn_cell_forward)(d, S->phase, U, NC_RNN_AT(P, b, t, GU), hpb, cpb,
                                 gru ? S->REC + b * GU : NULL, S->brec,
                                 grb ? S->hr + b * S->ldhr : NULL,
                                 (gru || grb) ? NC_RNN_AT(RH, b, t, U) : NULL, hb,
                                 lstm ? NC_RNN_AT(C, b, t, U) : NULL,
                                 lstm ? NC_RNN_AT(TC, b, t, U) : NULL);
    }
}

/* Fused backward of one unmasked row: from dh (and dc) of the step's output
 * state, the pre-activation gradients dpx (input side) and dpr (recurrent
 * side, GRU only: it may be NULL otherwise), and the parts of dh_prev (dhn)
 * and dc_prev (dcn) that do not go through the recurrent kernel.
 * GRU_RESET_BEFORE: phase 0 gives dz and dhh; phase 1, with drh = dhh R_h^T
 * (the gradient of rh), gives dr and adds rh's share to dhn. */
static void NC_TAG(rnn_cell_backward)(const nc_rnn_desc *d, int phase, size_t U,
                                      const real *restrict a, const real *restrict h,
                                      const real *restrict hp, const real *restrict cp,
                                      const real *restrict tc, const real *restrict rh,
                                      const real *restrict dh, const real *restrict dc,
                                      const real *restrict drh, const real *restrict rm,
                                      real *restrict dpx, real *restrict dpr,
                                      real *restrict dhn, real *restrict dcn)
{
    size_t j;
    switch (d->cell) {
    case NC_RNN_SIMPLE:
        if (d->act == NC_ACT_TANH) /* the default: inline, so it vectorises here */
            for (j = 0; j < U; j++) dpx[j] = dh[j] * (R_C(1) - h[j] * h[j]);
        else
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
    case NC_RNN_GRU_RESET_BEFORE: {
        const real *z = a, *r = a + U, *hh = a + 2 * U;
        if (phase == 0) {
            for (j = 0; j < U; j++) {
                dpx[j] = dh[j] * (hp[j] - hh[j]) * z[j] * (R_C(1) - z[j]);
                dpx[2 * U + j] = dh[j] * (R_C(1) - z[j]) * (R_C(1) - hh[j] * hh[j]);
                dhn[j] = dh[j] * z[j];
            }
        } else if (rm) { /* rh = r * (h_prev * rmask) */
            for (j = 0; j < U; j++) {
                dpx[U + j] = drh[j] * (hp[j] * rm[j]) * r[j] * (R_C(1) - r[j]);
                dhn[j] += drh[j] * r[j] * rm[j];
            }
        } else {
            for (j = 0; j < U; j++) {
                dpx[U + j] = drh[j] * hp[j] * r[j] * (R_C(1) - r[j]);
                dhn[j] += drh[j] * r[j];
            }
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
    size_t b0 = S->b_lo + task * S->rows, b1 = NC_MIN(S->b_hi, b0 + S->rows);
    int lstm = d->cell == NC_RNN_LSTM, gru = d->cell == NC_RNN_GRU;
    int grb = d->cell == NC_RNN_GRU_RESET_BEFORE;
    const real *P = S->P, *H = S->H, *C = S->CP, *TC = S->TC, *RH = S->RH;
    real *DPX = S->DPX, *DPR = S->DPR, *DH = S->DH, *DHN = S->DHN, *DC = S->DC,
         *DCN = S->DCN;
    (void)thread;
    for (b = b0; b < b1; b++) {
        real *dhb = DH + b * U;
        const real *hpb = s > 0 ? NC_RNN_AT(H, b, tp, U) : S->H0 + b * U;
        int masked = S->mask && !S->mask[b * T + t];
        if (S->phase == 1) { /* GRU_RESET_BEFORE's second pass */
            if (!masked)
                NC_TAG(rnn_cell_backward)(d, 1, U, NC_RNN_AT(P, b, t, GU), NULL, hpb, NULL,
                                          NULL, NULL, NULL, NULL, S->TMP + b * U,
                                          S->rmask ? S->rmask + b * U : NULL,
                                          NC_RNN_AT(DPX, b, t, GU), NULL, DHN + b * U, NULL);
            continue;
        }
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
            d, 0, U, NC_RNN_AT(P, b, t, GU), NC_RNN_AT(H, b, t, U), hpb,
            lstm ? (s > 0 ? NC_RNN_AT(C, b, tp, U) : S->C0 + b * U) : NULL,
            lstm ? NC_RNN_AT(TC, b, t, U) : NULL, gru ? NC_RNN_AT(RH, b, t, U) : NULL,
            dhb, DC + b * U, NULL, NULL, NC_RNN_AT(DPX, b, t, GU),
            gru ? NC_RNN_AT(DPR, b, t, GU) : NULL, DHN + b * U, DCN + b * U);
        (void)grb;
    }
}

