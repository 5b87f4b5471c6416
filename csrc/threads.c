/*
 * threads.c -- the engine's threads.
 *
 * For now every task runs on the calling thread, in order; the persistent
 * pool replaces this body without changing the contract in internal.h.
 */
#include "internal.h"

static int nc_num_threads_ = 1;

nc_status nc_set_num_threads(int n)
{
    if (n < 1) return NC_ERR_ARG;
    nc_num_threads_ = n;
    return NC_OK;
}

int nc_get_num_threads(void) { return nc_num_threads_; }

void nc_parallel_for(size_t n_tasks, nc_task_fn fn, void *ctx)
{
    size_t t;
    for (t = 0; t < n_tasks; t++) fn(ctx, t, 0);
}
