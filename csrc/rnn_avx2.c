/*
 * rnn_avx2.c -- the recurrent layers' fused per-step passes
 * (rnn_cell_impl.h) compiled with AVX2: the same loops as the portable
 * build, 8 floats a vector instead of SSE2's 4. rnn_impl.h picks these
 * when the AVX2 level is active.
 */
#include "internal.h"

#if defined(__x86_64__) || defined(_M_X64)

void nc_rnn_fwd_task_avx2_f32(void *ctx, size_t task, int thread);
void nc_rnn_bwd_task_avx2_f32(void *ctx, size_t task, int thread);
void nc_rnn_fwd_task_avx2_f64(void *ctx, size_t task, int thread);
void nc_rnn_bwd_task_avx2_f64(void *ctx, size_t task, int thread);

#define NC_REAL_BITS 32
#include "real.h"
#include "rnn_cell_impl.h"
#undef NC_REAL_BITS

void nc_rnn_fwd_task_avx2_f32(void *ctx, size_t task, int thread)
{
    rnn_fwd_task_f32(ctx, task, thread);
}

void nc_rnn_bwd_task_avx2_f32(void *ctx, size_t task, int thread)
{
    rnn_bwd_task_f32(ctx, task, thread);
}

#define NC_REAL_BITS 64
#include "real.h"
#include "rnn_cell_impl.h"
#undef NC_REAL_BITS

void nc_rnn_fwd_task_avx2_f64(void *ctx, size_t task, int thread)
{
    rnn_fwd_task_f64(ctx, task, thread);
}

void nc_rnn_bwd_task_avx2_f64(void *ctx, size_t task, int thread)
{
    rnn_bwd_task_f64(ctx, task, thread);
}

#endif
