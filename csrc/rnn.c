/*
 * rnn.c -- recurrent layers through time: the cache and scratch layouts
 * (shared by both precisions), then rnn_impl.h for float and double.
 */
#include "internal.h"
#include <string.h>

/* Offsets, in elements, of the pieces of forward's cache and backward's
 * scratch (see rnn_impl.h for what each holds). Absent pieces have size 0. */
typedef struct nc_rnn_layout_ {
    size_t gates, h, h0, c, tc, c0, rh, rec, hd, cache_total;
    size_t dpx, dpr, hp, rt, wt, dh, dhn, dc, dcn, tmp, work_total;
} nc_rnn_layout_;

size_t nc_rnn_gates(nc_rnn_cell cell)
{
    switch (cell) {
    case NC_RNN_SIMPLE: return 1;
    case NC_RNN_LSTM: return 4;
    case NC_RNN_GRU: return 3;
    case NC_RNN_GRU_RESET_BEFORE: return 3;
    default: return 0;
    }
}

static void nc_rnn_layout(const nc_rnn_desc *d, nc_rnn_layout_ *L)
{
    size_t n = d->batch, t = d->steps, u = d->units, gu = nc_rnn_gates(d->cell) * u;
    size_t nt = n * t, o = 0;
    int lstm = d->cell == NC_RNN_LSTM, gru = d->cell == NC_RNN_GRU;
    int grb = d->cell == NC_RNN_GRU_RESET_BEFORE;
    L->gates = o; o += nt * gu;
    L->h = o; o += nt * u;
    L->h0 = o; o += n * u;
    L->c = o; o += lstm ? nt * u : 0;
    L->tc = o; o += lstm ? nt * u : 0;
    L->c0 = o; o += lstm ? n * u : 0;
    L->rh = o; o += (gru || grb) ? nt * u : 0;
    L->rec = o; o += gru ? n * gu : 0;
    L->hd = o; o += n * u;
    L->cache_total = o;
    o = 0;
    L->dpx = o; o += nt * gu;
    L->dpr = o; o += gru ? nt * gu : 0;
    L->hp = o; o += nt * u;
    L->rt = o; o += gu * u;
    L->wt = o; o += gu * d->inputs;
    L->dh = o; o += n * u;
    L->dhn = o; o += n * u;
    L->dc = o; o += n * u;
    L->dcn = o; o += n * u;
    L->tmp = o; o += n * u;
    L->work_total = o;
}

size_t nc_rnn_cache_size(const nc_rnn_desc *d)
{
    nc_rnn_layout_ L;
    nc_rnn_layout(d, &L);
    return L.cache_total;
}

size_t nc_rnn_work_size(const nc_rnn_desc *d)
{
    nc_rnn_layout_ L;
    nc_rnn_layout(d, &L);
    return L.work_total;
}

static int nc_rnn_desc_ok(const nc_rnn_desc *d)
{
    if (d == NULL || (unsigned)d->cell >= NC_RNN_COUNT_) return 0;
    if (d->batch == 0 || d->steps == 0 || d->inputs == 0 || d->units == 0) return 0;
    if (d->cell == NC_RNN_SIMPLE &&
        ((unsigned)d->act >= NC_ACT_COUNT_ || d->act == NC_ACT_SOFTMAX ||
         d->act == NC_ACT_LOG_SOFTMAX))
        return 0;
    return 1;
}

/* The per-step passes compiled for the wider levels (rnn_avx2.c, rnn_avx512.c). */
#if defined(__x86_64__) || defined(_M_X64)
#define NC_RNN_X86 1
void nc_rnn_fwd_task_avx2_f32(void *ctx, size_t task, int thread);
void nc_rnn_bwd_task_avx2_f32(void *ctx, size_t task, int thread);
void nc_rnn_fwd_task_avx2_f64(void *ctx, size_t task, int thread);
void nc_rnn_bwd_task_avx2_f64(void *ctx, size_t task, int thread);
void nc_rnn_fwd_task_avx512_f32(void *ctx, size_t task, int thread);
void nc_rnn_bwd_task_avx512_f32(void *ctx, size_t task, int thread);
void nc_rnn_fwd_task_avx512_f64(void *ctx, size_t task, int thread);
void nc_rnn_bwd_task_avx512_f64(void *ctx, size_t task, int thread);
#endif

#define NC_REAL_BITS 32
#include "real.h"
#include "rnn_impl.h"
#undef NC_REAL_BITS

#define NC_REAL_BITS 64
#include "real.h"
#include "rnn_impl.h"
#undef NC_REAL_BITS
