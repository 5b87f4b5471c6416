/*
 * test_threads.c -- the engine's thread pool (csrc/threads.c) on its own.
 *
 * Standalone (POSIX): from the repository root,
 * links: threads.c   (tests/c/run.sh links only these engine files)
 *   cc -std=c99 -O2 -Wall -pthread -Icsrc tests/c/test_threads.c csrc/threads.c \
 *      -o /tmp/test_threads && /tmp/test_threads
 * and, to cover the split of big jobs into chunks, once more with
 *   -DNC_JOB_CHUNK=7 added (then run it with --no-timing), with
 *   -DNC_FIRST_SEQ=2147483000LL (job numbers crossing 2^31), and under
 *   ThreadSanitizer: -O1 -g -fsanitize=thread, run with --no-timing --no-fork.
 * Exits non-zero on a failure; prints the cost of an empty nc_parallel_for
 * (informational, never a pass/fail criterion).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* threads.c declares it extern via internal.h; the test links no cpu.c. */
nc_isa nc_active_isa_ = NC_ISA_REF;

static int failures = 0;
#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);           \
            fprintf(stderr, __VA_ARGS__);                                   \
            fprintf(stderr, "\n");                                          \
            failures++;                                                     \
        }                                                                   \
    } while (0)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- every task exactly once, on a thread index below the limit ---- */

typedef struct {
    int *count;     /* per task: how many times it ran */
    int *thread_of; /* per task: the thread index it ran on */
    size_t work;    /* busy-work per task, so tasks overlap */
} once_ctx;

static void once_task(void *p, size_t task, int thread)
{
    once_ctx *c = (once_ctx *)p;
    volatile size_t i, x = 0;
    for (i = 0; i < c->work; i++) x += i;
    __atomic_fetch_add(&c->count[task], 1, __ATOMIC_RELAXED);
    c->thread_of[task] = thread;
}

/* Runs n tasks on at most max_threads threads (0: nc_parallel_for) and
 * checks each ran once, on a thread index below min(threads, n). */
static int check_once_max(size_t n, int threads, size_t work, int max_threads)
{
    once_ctx c;
    size_t t;
    int bad = 0, bound = (int)NC_MIN((size_t)threads, n);
    c.count = (int *)calloc(n + 1, sizeof(int));
    c.thread_of = (int *)calloc(n + 1, sizeof(int));
    c.work = work;
    if (max_threads > 0) {
        nc_parallel_for_max(n, max_threads, once_task, &c);
        bound = NC_MIN(bound, max_threads);
    } else {
        nc_parallel_for(n, once_task, &c);
    }
    for (t = 0; t < n; t++) {
        if (c.count[t] != 1 || c.thread_of[t] < 0 || c.thread_of[t] >= bound) bad = 1;
    }
    free(c.count);
    free(c.thread_of);
    return !bad;
}

static int check_once(size_t n, int threads, size_t work)
{
    return check_once_max(n, threads, work, 0);
}

static void test_each_task_once(void)
{
    static const size_t sizes[] = {0, 1, 2, 3, 7, 64, 1000, 20000};
    static const int threads[] = {1, 2, 3, 4, 8, 3, 1, 2};
    size_t i, j;
    for (i = 0; i < sizeof(threads) / sizeof(threads[0]); i++) {
        CHECK(nc_set_num_threads(threads[i]) == NC_OK, "set %d", threads[i]);
        for (j = 0; j < sizeof(sizes) / sizeof(sizes[0]); j++) {
            CHECK(check_once(sizes[j], threads[i], 0), "n=%zu threads=%d", sizes[j], threads[i]);
            CHECK(check_once(sizes[j], threads[i], 2000), "n=%zu threads=%d (work)", sizes[j],
                  threads[i]);
        }
    }
}

/* ---- two tasks really run at the same time ---- */

typedef struct {
    int arrived;
    int overlapped;
    double patience; /* seconds */
} meet_ctx;

/* The first of two tasks to start waits for the second: it can only see it
 * arrive if two threads run them at once. */
static void meet_task(void *p, size_t task, int thread)
{
    meet_ctx *c = (meet_ctx *)p;
    double end = now_s() + c->patience;
    (void)task;
    (void)thread;
    if (__atomic_fetch_add(&c->arrived, 1, __ATOMIC_SEQ_CST) != 0) return;
    while (now_s() < end) {
        if (__atomic_load_n(&c->arrived, __ATOMIC_SEQ_CST) >= 2) {
            __atomic_store_n(&c->overlapped, 1, __ATOMIC_SEQ_CST);
            return;
        }
    }
}

static int tasks_overlap_max(double patience, int max_threads)
{
    meet_ctx c = {0, 0, 0};
    c.patience = patience;
    nc_parallel_for_max(2, max_threads, meet_task, &c);
    return c.overlapped;
}

static int tasks_overlap(double patience) { return tasks_overlap_max(patience, INT_MAX); }

/* ---- nc_parallel_for_max caps the threads of one call ---- */

static void test_max_threads(void)
{
    static const size_t sizes[] = {2, 3, 10, 500};
    size_t j;
    int mx;
    nc_set_num_threads(4);
    for (mx = 1; mx <= 5; mx++)
        for (j = 0; j < sizeof(sizes) / sizeof(sizes[0]); j++)
            CHECK(check_once_max(sizes[j], 4, 1000, mx), "n=%zu max=%d", sizes[j], mx);
    CHECK(!tasks_overlap_max(0.1, 1), "max_threads=1 ran two tasks at once");
    CHECK(tasks_overlap_max(2.0, 2), "max_threads=2 did not run two tasks at once");
}

static void test_parallel(void)
{
    nc_set_num_threads(2);
    CHECK(tasks_overlap(2.0), "two tasks did not run at once with 2 threads");
    nc_set_num_threads(1);
    CHECK(!tasks_overlap(0.1), "two tasks ran at once with 1 thread");
    nc_set_num_threads(4);
    CHECK(tasks_overlap(2.0), "two tasks did not run at once with 4 threads");
}

/* ---- a task's own nc_parallel_for runs serially on its thread ---- */

typedef struct {
    pthread_t outer;
    int bad;
} inner_ctx;

static void inner_task(void *p, size_t task, int thread)
{
    inner_ctx *c = (inner_ctx *)p;
    (void)task;
    if (thread != 0 || !pthread_equal(c->outer, pthread_self()))
        __atomic_store_n(&c->bad, 1, __ATOMIC_SEQ_CST);
}

static int nested_bad = 0;

static void outer_task(void *p, size_t task, int thread)
{
    inner_ctx c;
    (void)p;
    (void)task;
    (void)thread;
    c.outer = pthread_self();
    c.bad = 0;
    nc_parallel_for(16, inner_task, &c);
    if (c.bad) __atomic_store_n(&nested_bad, 1, __ATOMIC_SEQ_CST);
}

static void test_nested(void)
{
    nc_set_num_threads(4);
    nested_bad = 0;
    nc_parallel_for(8, outer_task, NULL);
    CHECK(!nested_bad, "a nested call left its thread");
}

/* ---- several application threads at once ---- */

static void *caller_main(void *arg)
{
    int i, *bad = (int *)arg;
    for (i = 0; i < 300; i++) {
        if (!check_once((size_t)(1 + i % 37), nc_get_num_threads(), (size_t)(i % 3) * 500))
            *bad = 1;
    }
    return NULL;
}

static void test_concurrent_callers(void)
{
    enum { CALLERS = 6 };
    pthread_t th[CALLERS];
    int bad[CALLERS] = {0};
    int i, threads;
    for (threads = 1; threads <= 4; threads *= 2) {
        nc_set_num_threads(threads);
        for (i = 0; i < CALLERS; i++) pthread_create(&th[i], NULL, caller_main, &bad[i]);
        for (i = 0; i < CALLERS; i++) {
            pthread_join(th[i], NULL);
            CHECK(!bad[i], "caller %d at %d threads", i, threads);
        }
    }
}

/* ---- fork after the pool is warm ---- */

static void test_fork(void)
{
    pid_t pid;
    int status = 0;
    nc_set_num_threads(2);
    CHECK(check_once(100, 2, 100), "before fork");
    pid = fork();
    if (pid == 0) {
        alarm(20); /* a deadlock kills the child rather than the test run */
        if (!check_once(1000, 2, 100) || !tasks_overlap(2.0)) _exit(3);
        nc_set_num_threads(3);
        if (!check_once(1000, 3, 100)) _exit(4);
        _exit(0);
    }
    CHECK(pid > 0, "fork failed");
    if (pid <= 0) return;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child after fork: status %d", status);
    CHECK(check_once(100, 2, 100), "parent after fork");
}

/* ---- the limit ---- */

static void test_limit(void)
{
    CHECK(nc_get_num_threads() >= 1, "default limit");
    CHECK(nc_set_num_threads(0) == NC_ERR_ARG, "0 accepted");
    CHECK(nc_set_num_threads(-3) == NC_ERR_ARG, "-3 accepted");
    CHECK(nc_set_num_threads(5) == NC_OK && nc_get_num_threads() == 5, "set 5");
    CHECK(nc_threads_for(0, 100) == 1, "threads_for 0");
    CHECK(nc_threads_for(199, 100) == 1, "threads_for 199/100");
    CHECK(nc_threads_for(200, 100) == 2, "threads_for 200/100");
    CHECK(nc_threads_for(399, 100) == 3, "threads_for 399/100");
    CHECK(nc_threads_for(1e12, 100) == 5, "threads_for capped by the limit");
    CHECK(nc_threads_for(1e12, 0) == 5, "threads_for grain 0");
}

/* ---- cost of an empty call (informational) ---- */

static void empty_task(void *p, size_t task, int thread)
{
    (void)p;
    (void)task;
    (void)thread;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median_call_us(size_t n_tasks, int reps)
{
    double med[21];
    int r, i;
    for (r = 0; r < 21; r++) {
        double t0 = now_s();
        for (i = 0; i < reps; i++) nc_parallel_for(n_tasks, empty_task, NULL);
        med[r] = (now_s() - t0) / reps * 1e6;
    }
    qsort(med, 21, sizeof(double), cmp_double);
    return med[10];
}

static void report_overhead(void)
{
    nc_set_num_threads(2);
    nc_parallel_for(2, empty_task, NULL); /* start the helper */
    printf("empty nc_parallel_for, 2 tasks, 2 threads, back to back: %.2f us (median of 21)\n",
           median_call_us(2, 2000));
    nc_set_num_threads(1);
    printf("empty nc_parallel_for, 2 tasks, 1 thread (serial):       %.3f us\n",
           median_call_us(2, 2000));
    nc_set_num_threads(2);
    {
        /* Calls 20 us apart: the helper is still spinning, as between GEMMs. */
        double t[21];
        int r, i;
        for (r = 0; r < 21; r++) {
            double sum = 0;
            for (i = 0; i < 200; i++) {
                double t0, s = now_s() + 20e-6;
                while (now_s() < s) {}
                t0 = now_s();
                nc_parallel_for(2, empty_task, NULL);
                sum += now_s() - t0;
            }
            t[r] = sum / 200 * 1e6;
        }
        qsort(t, 21, sizeof(double), cmp_double);
        printf("empty nc_parallel_for, 2 tasks, 2 threads, 20 us apart:   %.2f us\n", t[10]);
        /* Calls 5 ms apart: the helper has gone to sleep. */
        for (r = 0; r < 21; r++) {
            double t0;
            struct timespec ts = {0, 5000000};
            nanosleep(&ts, NULL);
            t0 = now_s();
            nc_parallel_for(2, empty_task, NULL);
            t[r] = (now_s() - t0) * 1e6;
        }
        qsort(t, 21, sizeof(double), cmp_double);
        printf("empty nc_parallel_for, 2 tasks, 2 threads, helper asleep: %.2f us\n", t[10]);
        /* Two tasks that must meet on two threads: the round trip of
         * handing one task to a spinning helper. */
        for (r = 0; r < 21; r++) {
            double t0 = now_s();
            for (i = 0; i < 200; i++) tasks_overlap(1.0);
            t[r] = (now_s() - t0) / 200 * 1e6;
        }
        qsort(t, 21, sizeof(double), cmp_double);
        printf("2 tasks that must run on 2 threads, back to back:         %.2f us\n", t[10]);
    }
}

int main(int argc, char **argv)
{
    /* NC_TEST_NO_FORK / NC_TEST_NO_TIMING: the same switches from the
     * environment, for runners such as qemu-user (which cannot fork a
     * threaded process) started by tests/c/run.sh */
    int i, timing = 1, forking = 1;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--no-timing") == 0) timing = 0;
        if (strcmp(argv[i], "--no-fork") == 0) forking = 0; /* ThreadSanitizer cannot fork */
    }
    if (getenv("NC_TEST_NO_TIMING")) timing = 0;
    if (getenv("NC_TEST_NO_FORK")) forking = 0;
    test_limit();
    test_each_task_once();
    test_parallel();
    test_max_threads();
    test_nested();
    test_concurrent_callers();
    if (forking) test_fork();
    if (failures == 0 && timing) report_overhead();
    if (failures) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("test_threads: all passed\n");
    return 0;
}
