/*
 * rnn_isa.h -- the recurrent layers' fused per-step passes (rnn_cell_impl.h)
 * as entry points for one ISA level: rnn_<isa>.c defines NC_RNN_ISA (avx2,
 * avx512) and includes this, compiled with that level's flags, which gives
 * nc_rnn_{fwd,bwd}_task_<isa>_{f32,f64}. rnn_impl.h picks them when the
 * level is active; the loops are the portable build's, so the bits are too.
 */
#define NC_RNN_CAT3_(a, b, c) a##b##c
#define NC_RNN_CAT3(a, b, c) NC_RNN_CAT3_(a, b, c)
#define NC_RNN_ENTRY(pass, prec) NC_RNN_CAT3(nc_rnn_##pass##_task_, NC_RNN_ISA, prec)

void NC_RNN_ENTRY(fwd, _f32)(void *ctx, size_t task, int thread);
void NC_RNN_ENTRY(bwd, _f32)(void *ctx, size_t task, int thread);
void NC_RNN_ENTRY(fwd, _f64)(void *ctx, size_t task, int thread);
void NC_RNN_ENTRY(bwd, _f64)(void *ctx, size_t task, int thread);

#define NC_REAL_BITS 32
#include "real.h"
#include "rnn_cell_impl.h"
#undef NC_REAL_BITS

void NC_RNN_ENTRY(fwd, _f32)(void *ctx, size_t task, int thread)
{
    rnn_fwd_task_f32(ctx, task, thread);
}

void NC_RNN_ENTRY(bwd, _f32)(void *ctx, size_t task, int thread)
{
    rnn_bwd_task_f32(ctx, task, thread);
}

#define NC_REAL_BITS 64
#include "real.h"
#include "rnn_cell_impl.h"
#undef NC_REAL_BITS

void NC_RNN_ENTRY(fwd, _f64)(void *ctx, size_t task, int thread)
{
    rnn_fwd_task_f64(ctx, task, thread);
}

void NC_RNN_ENTRY(bwd, _f64)(void *ctx, size_t task, int thread)
{
    rnn_bwd_task_f64(ctx, task, thread);
}
