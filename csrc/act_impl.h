/*
 * act_impl.h -- activation kernels, written once for `real` (see real.h).
 *
 * Plain loops the compiler may vectorise, with the transcendental parts on
 * real.h's array hooks (R_VEXP, ...): SIMD polynomials for float at the
 * level in force (vmath.h), libm loops for double. Where a kernel needs e^v
 * of a derived array it uses a stack block of NC_VCHUNK elements, never an
 * allocation, and reads each element before writing it so that y may be x.
 * NaN propagates through every activation (never silently becomes 0 or 1).
 */

#include "scalar_impl.h"

/* f over n contiguous elements (everything but the softmaxes). y may be x. */
static void NC_TAG(act_elementwise)(nc_act act, real param, size_t n,
                                    const real *x, real *y)
{
    size_t i;
    switch (act) {
    case NC_ACT_IDENTITY:
        if (x != y)
            for (i = 0; i < n; i++) y[i] = x[i];
        break;
    case NC_ACT_STEP:
        for (i = 0; i < n; i++) y[i] = x[i] > 0 ? R_C(1) : (x[i] <= 0 ? R_C(0) : x[i]);
        break;
    case NC_ACT_SIGMOID:
        R_VSIGMOID(n, x, y);
        break;
    case NC_ACT_TANH:
        R_VTANH(n, x, y);
        break;
    case NC_ACT_RELU:
        for (i = 0; i < n; i++) y[i] = x[i] < 0 ? R_C(0) : x[i];
        break;
    case NC_ACT_LEAKY_RELU:
        for (i = 0; i < n; i++) y[i] = x[i] < 0 ? param * x[i] : x[i];
        break;
    case NC_ACT_ELU:
        /* y may be x, and x decides the branch: expm1 goes through a stack
         * block. NaN takes the second branch and stays NaN. */
        for (i = 0; i < n; i += NC_VCHUNK) {
            real e[NC_VCHUNK];
            size_t j, len = NC_MIN(n - i, (size_t)NC_VCHUNK);
            R_VEXPM1(len, x + i, e);
            for (j = 0; j < len; j++) y[i + j] = x[i + j] > 0 ? x[i + j] : param * e[j];
        }
        break;
    case NC_ACT_SOFTPLUS:
        /* log(1 + e^x) = max(x, 0) + log1p(e^-|x|): no overflow, no cancellation */
        R_VSOFTPLUS(n, x, y);
        break;
    default:
        break;
    }
}

/* Softmax or log-softmax of one row of n elements. y may be x. */
static void NC_TAG(softmax_row)(int log_form, size_t n, const real *x, real *y)
{
    size_t i;
    real m, s = 0;
    if (n == 0) return;
    m = x[0];
    for (i = 1; i < n; i++)
        if (x[i] > m || x[i] != x[i]) m = x[i]; /* NaN wins, so it propagates */
    if (log_form) {
        real log_s;
        /* y may be x, so the exponentials go through a stack block */
        for (i = 0; i < n; i += NC_VCHUNK) {
            real e[NC_VCHUNK];
            size_t j, len = NC_MIN(n - i, (size_t)NC_VCHUNK);
            for (j = 0; j < len; j++) e[j] = x[i + j] - m;
            R_VEXP(len, e, e);
            for (j = 0; j < len; j++) s += e[j];
        }
        /* (x - m) - log s, never x - (m + log s): the latter cancels against a large m */
        log_s = R_LOG(s);
        for (i = 0; i < n; i++) y[i] = (x[i] - m) - log_s;
    } else {
        real inv;
        for (i = 0; i < n; i++) y[i] = x[i] - m;
        R_VEXP(n, y, y);
        for (i = 0; i < n; i++) s += y[i];
        inv = R_C(1) / s;
        for (i = 0; i < n; i++) y[i] *= inv;
    }
}

static void NC_TAG(act_row)(nc_act act, real param, size_t n, const real *x, real *y)
{
    if (act == NC_ACT_SOFTMAX || act == NC_ACT_LOG_SOFTMAX)
        NC_TAG(softmax_row)(act == NC_ACT_LOG_SOFTMAX, n, x, y);
    else
        NC_TAG(act_elementwise)(act, param, n, x, y);
}

/*
 * Threads. An element-wise call of NC_ACT_PAR_MIN elements or more is cut
 * into chunks and the chunks are shared out over the engine's pool; the
 * softmaxes are cut into blocks of whole rows. Where the cuts fall depends
 * on the sizes (and, for the element-wise chunks, on where y lies in memory,
 * see act_chunking), never on the thread count; and no element's value
 * depends on the cuts anyway (each is computed alone, the SIMD tails lane by
 * lane with the same code), so results are bit-identical at any thread
 * count.
 */
#ifndef NC_ACT_PAR_DEFINED
#define NC_ACT_PAR_DEFINED
#include <stdint.h>
/* Below this many elements a call stays on its thread. */
#define NC_ACT_PAR_MIN 65536
/* Elements (softmax: row elements) a thread must get to be worth waking. */
#define NC_ACT_GRAIN 32768.0
/* Chunk sizes in bytes, powers of two. Big arrays use 2 MiB chunks aligned
 * to 2 MiB of address space: a fresh result array is backed by transparent
 * huge pages (NumPy madvises arrays >= 4 MiB), and the first write to each
 * 2 MiB page makes the kernel zero all of it; with one chunk per huge page
 * each thread faults and zeroes its own pages, in parallel, instead of two
 * threads queueing on one page. Mid-sized arrays use small chunks so that
 * 64K elements still split. */
#define NC_ACT_CHUNK_BIG ((size_t)2 << 20)
#define NC_ACT_CHUNK_SMALL ((size_t)64 << 10)

typedef struct {
    size_t chunk; /* elements per chunk (a power of two) */
    size_t head;  /* elements in the first chunk (1 .. chunk) */
    size_t tasks;
} nc_act_chunking;

/* Cut n elements of size `size` at y into chunks whose ends (but the last)
 * fall on multiples of the chunk size in address space. */
static nc_act_chunking act_chunking(const void *y, size_t n, size_t size)
{
    nc_act_chunking c;
    size_t bytes = n * size >= 4 * NC_ACT_CHUNK_BIG ? NC_ACT_CHUNK_BIG : NC_ACT_CHUNK_SMALL;
    size_t off = (size_t)((uintptr_t)y & (bytes - 1));
    c.chunk = bytes / size;
    /* y is aligned to its element size, so off is a whole number of elements */
    c.head = off % size == 0 ? (bytes - off) / size : c.chunk;
    if (c.head > n) c.head = n;
    c.tasks = 1 + (n - c.head + c.chunk - 1) / c.chunk;
    return c;
}

/* [*i0, *i0 + *len) of chunk t */
static void act_chunk(const nc_act_chunking *c, size_t n, size_t t, size_t *i0, size_t *len)
{
    if (t == 0) {
        *i0 = 0;
        *len = c->head;
    } else {
        *i0 = c->head + (t - 1) * c->chunk;
        *len = NC_MIN(c->chunk, n - *i0);
    }
}

/* Rows per softmax block: about NC_ACT_PAR_MIN / 4 elements, at least one row. */
static size_t act_rows_per_task(size_t cols)
{
    size_t r = cols ? (NC_ACT_PAR_MIN / 4) / cols : 1;
    return r ? r : 1;
}
#endif

typedef struct {
    nc_act act;
    real param;
    size_t rows, cols, n, rows_per_task;
    nc_act_chunking c;
    const real *x, *dy;
    real *y;
} NC_TAG(act_job);

static void NC_TAG(act_forward_serial)(nc_act act, real param, size_t rows, size_t cols,
                                       const real *x, real *y)
{
    size_t r;
    if (act == NC_ACT_SOFTMAX || act == NC_ACT_LOG_SOFTMAX) {
        for (r = 0; r < rows; r++)
            NC_TAG(softmax_row)(act == NC_ACT_LOG_SOFTMAX, cols, x + r * cols, y + r * cols);
    } else {
        NC_TAG(act_elementwise)(act, param, rows * cols, x, y);
    }
}

static void NC_TAG(act_forward_task)(void *ctx, size_t t, int thread)
{
    const NC_TAG(act_job) *J = (const NC_TAG(act_job) *)ctx;
    size_t i0, len;
    (void)thread;
    if (J->act == NC_ACT_SOFTMAX || J->act == NC_ACT_LOG_SOFTMAX) {
        size_t r0 = t * J->rows_per_task, nr = NC_MIN(J->rows_per_task, J->rows - r0);
        NC_TAG(act_forward_serial)(J->act, J->param, nr, J->cols, J->x + r0 * J->cols,
                                   J->y + r0 * J->cols);
    } else {
        act_chunk(&J->c, J->n, t, &i0, &len);
        NC_TAG(act_elementwise)(J->act, J->param, len, J->x + i0, J->y + i0);
    }
}

/* The job's tasks and the threads worth using for them (1: run serially). */
static int NC_TAG(act_plan)(NC_TAG(act_job) *J, size_t *tasks)
{
    int threads;
    if (J->n < NC_ACT_PAR_MIN) return 1;
    threads = nc_threads_for((double)J->n, NC_ACT_GRAIN);
    if (threads <= 1) return 1;
    if (J->act == NC_ACT_SOFTMAX || J->act == NC_ACT_LOG_SOFTMAX) {
        J->rows_per_task = act_rows_per_task(J->cols);
        *tasks = (J->rows + J->rows_per_task - 1) / J->rows_per_task;
    } else {
        J->c = act_chunking(J->y, J->n, sizeof(real));
        *tasks = J->c.tasks;
    }
    return *tasks > 1 ? threads : 1;
}

nc_status NC_FN(act_forward)(nc_act act, real param, size_t rows, size_t cols,
                             const real *x, real *y)
{
    NC_TAG(act_job) J;
    size_t tasks = 0;
    int threads;
    if ((unsigned)act >= NC_ACT_COUNT_) return NC_ERR_ARG;
    J.act = act;
    J.param = param;
    J.rows = rows;
    J.cols = cols;
    J.n = rows * cols;
    J.x = x;
    J.dy = NULL;
    J.y = y;
    threads = NC_TAG(act_plan)(&J, &tasks);
    if (threads <= 1)
        NC_TAG(act_forward_serial)(act, param, rows, cols, x, y);
    else
        nc_parallel_for_max(tasks, threads, NC_TAG(act_forward_task), &J);
    return NC_OK;
}

static nc_status NC_TAG(act_backward_serial)(nc_act act, real param, size_t rows,
                                             size_t cols, const real *y, const real *dy,
                                             real *dx)
{
    size_t i, r, n = rows * cols;
    switch (act) {
    case NC_ACT_IDENTITY:
        if (dx != dy)
            for (i = 0; i < n; i++) dx[i] = dy[i];
        break;
    case NC_ACT_STEP:
        for (i = 0; i < n; i++) dx[i] = 0;
        break;
    case NC_ACT_SIGMOID:
        for (i = 0; i < n; i++) dx[i] = dy[i] * y[i] * (R_C(1) - y[i]);
        break;
    case NC_ACT_TANH:
        for (i = 0; i < n; i++) dx[i] = dy[i] * (R_C(1) - y[i] * y[i]);
        break;
    /* dy[i] is read unconditionally so these compile to selects, not branches
     * (a ReLU's sign pattern is random: a branch mispredicts half the time) */
    case NC_ACT_RELU:
        for (i = 0; i < n; i++) {
            real d = dy[i];
            dx[i] = y[i] > 0 ? d : R_C(0);
        }
        break;
    case NC_ACT_LEAKY_RELU:
        /* slope >= 0, so y > 0 exactly where x > 0 */
        for (i = 0; i < n; i++) {
            real d = dy[i];
            dx[i] = y[i] > 0 ? d : param * d;
        }
        break;
    case NC_ACT_ELU:
        /* for x <= 0, d/dx alpha (e^x - 1) = alpha e^x = y + alpha */
        for (i = 0; i < n; i++) {
            real d = dy[i], yi = y[i];
            dx[i] = yi > 0 ? d : d * (yi + param);
        }
        break;
    case NC_ACT_SOFTPLUS:
        /* softplus' = sigmoid(x) = 1 - e^-y, via expm1 for small y; dx may
         * be y or dy, so expm1(-y) goes through a stack block */
        for (i = 0; i < n; i += NC_VCHUNK) {
            real e[NC_VCHUNK];
            size_t j, len = NC_MIN(n - i, (size_t)NC_VCHUNK);
            for (j = 0; j < len; j++) e[j] = -y[i + j];
            R_VEXPM1(len, e, e);
            for (j = 0; j < len; j++) dx[i + j] = -dy[i + j] * e[j];
        }
        break;
    case NC_ACT_SOFTMAX:
        for (r = 0; r < rows; r++) {
            const real *yr = y + r * cols, *dyr = dy + r * cols;
            real *dxr = dx + r * cols, dot = 0;
            for (i = 0; i < cols; i++) dot += dyr[i] * yr[i];
            for (i = 0; i < cols; i++) dxr[i] = yr[i] * (dyr[i] - dot);
        }
        break;
    case NC_ACT_LOG_SOFTMAX:
        for (r = 0; r < rows; r++) {
            const real *yr = y + r * cols, *dyr = dy + r * cols;
            real *dxr = dx + r * cols, sum = 0;
            for (i = 0; i < cols; i++) sum += dyr[i];
            /* dx may be y or dy: e^y goes through a stack block */
            for (i = 0; i < cols; i += NC_VCHUNK) {
                real e[NC_VCHUNK];
                size_t j, len = NC_MIN(cols - i, (size_t)NC_VCHUNK);
                R_VEXP(len, yr + i, e);
                for (j = 0; j < len; j++) dxr[i + j] = dyr[i + j] - e[j] * sum;
            }
        }
        break;
    default:
        return NC_ERR_ARG;
    }
    return NC_OK;
}

static void NC_TAG(act_backward_task)(void *ctx, size_t t, int thread)
{
    const NC_TAG(act_job) *J = (const NC_TAG(act_job) *)ctx;
    size_t i0, len;
    (void)thread;
    if (J->act == NC_ACT_SOFTMAX || J->act == NC_ACT_LOG_SOFTMAX) {
        size_t r0 = t * J->rows_per_task, nr = NC_MIN(J->rows_per_task, J->rows - r0);
        i0 = r0 * J->cols;
        NC_TAG(act_backward_serial)(J->act, J->param, nr, J->cols, J->x + i0, J->dy + i0,
                                    J->y + i0);
    } else {
        act_chunk(&J->c, J->n, t, &i0, &len);
        NC_TAG(act_backward_serial)(J->act, J->param, 1, len, J->x + i0, J->dy + i0,
                                    J->y + i0);
    }
}

nc_status NC_FN(act_backward)(nc_act act, real param, size_t rows, size_t cols,
                              const real *y, const real *dy, real *dx)
{
    NC_TAG(act_job) J;
    size_t tasks = 0;
    int threads;
    if ((unsigned)act >= NC_ACT_COUNT_) return NC_ERR_ARG;
    /* the job's x is the forward output y, its y the result dx */
    J.act = act;
    J.param = param;
    J.rows = rows;
    J.cols = cols;
    J.n = rows * cols;
    J.x = y;
    J.dy = dy;
    J.y = dx;
    threads = NC_TAG(act_plan)(&J, &tasks);
    if (threads <= 1) return NC_TAG(act_backward_serial)(act, param, rows, cols, y, dy, dx);
    nc_parallel_for_max(tasks, threads, NC_TAG(act_backward_task), &J);
    return NC_OK;
}

nc_status NC_FN(bias_act)(nc_act act, real param, size_t rows, size_t cols,
                          const real *bias, real *y, size_t ldy)
{
    size_t r, j;
    if ((unsigned)act >= NC_ACT_COUNT_) return NC_ERR_ARG;
    if (bias == NULL && act == NC_ACT_IDENTITY) return NC_OK;
    for (r = 0; r < rows; r++) {
        real *yr = y + r * ldy;
        if (bias)
            for (j = 0; j < cols; j++) yr[j] += bias[j];
        NC_TAG(act_row)(act, param, cols, yr, yr);
    }
    return NC_OK;
}
