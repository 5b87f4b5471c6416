/*
 * rnn_avx512.c -- the recurrent layers' fused per-step passes
 * (rnn_cell_impl.h) compiled with AVX-512: the same loops as the portable
 * build, 16 floats a vector instead of SSE2's 4. rnn_impl.h picks these
 * when the AVX-512 level is active.
 */
#include "internal.h"

#if defined(__x86_64__) || defined(_M_X64)

void nc_rnn_fwd_task_avx512_f32(void *ctx, size_t task, int thread);
void nc_rnn_bwd_task_avx512_f32(void *ctx, size_t task, int thread);
void nc_rnn_fwd_task_avx512_f64(void *ctx, size_t task, int thread);
void nc_rnn_bwd_task_avx512_f64(void *ctx, size_t task, int thread);

#define NC_REAL_BITS 32
#include "real.h"
#include "rnn_cell_impl.h"
#undef NC_REAL_BITS

void nc_rnn_fwd_task_avx512_f32(void *ctx, size_t task, int thread)
{
    rnn_fwd_task_f32(ctx, task, thread);
}

void nc_rnn_bwd_task_avx512_f32(void *ctx, size_t task, int thread)
{
    rnn_bwd_task_f32(ctx, task, thread);
}

#define NC_REAL_BITS 64
#include "real.h"
#include "rnn_cell_impl.h"
#undef NC_REAL_BITS

void nc_rnn_fwd_task_avx512_f64(void *ctx, size_t task, int thread)
{
    rnn_fwd_task_f64(ctx, task, thread);
}

void nc_rnn_bwd_task_avx512_f64(void *ctx, size_t task, int thread)
{
    rnn_bwd_task_f64(ctx, task, thread);
}

#endif
