/*
 * threads.c -- the engine's threads: a small persistent pool.
 *
 * nc_parallel_for hands tasks out dynamically (one shared counter) to the
 * calling thread and up to nc_get_num_threads()-1 helper threads. The
 * caller waits for tasks, not helpers: a helper that wakes too late for a
 * job finds nothing to claim, and nobody waits for it. Which
 * thread runs a task never changes a result, because tasks write disjoint
 * outputs (the contract in internal.h).
 *
 *   - Helpers start on the first parallel call, not at import, and are
 *     resized there (never while a job runs) after nc_set_num_threads.
 *   - One job at a time: the pool is taken with a try-lock. A call that finds
 *     it taken (a task calling nc_parallel_for, or a second application
 *     thread) runs its tasks serially on its own thread, so the engine never
 *     runs more threads than the limit, however many callers there are.
 *   - Waking is cheap when calls come close together: an idle helper spins
 *     (with a pause instruction) for NC_SPIN_NS before it sleeps on a
 *     condition variable; the caller waits for stragglers the same way.
 *   - fork(): the child has none of the helpers, so pthread_atfork forgets
 *     them there (and re-creates the locks); the child's first parallel call
 *     starts a fresh pool.
 *
 * Portable C99 plus the platform's threads (pthreads, or Win32 behind
 * _WIN32) and its atomics (GCC/Clang __atomic builtins, MSVC Interlocked*,
 * or C11 <stdatomic.h> where neither exists).
 */
#if !defined(_WIN32) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT, clock_gettime under -std=c99 */
#endif

#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include "internal.h"

#ifdef _WIN32
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef _WIN32_WINNT
#define _WIN32_WINNT 0x0601 /* Windows 7: GetActiveProcessorCount */
#endif
#include <windows.h>
#include <process.h>
#else
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <sched.h>
#endif

/* How long an idle thread spins before it sleeps: long enough to bridge the
 * gap between two engine calls from Python, short enough not to burn a core
 * for long after the last one. */
#define NC_SPIN_NS 100000LL

/* The generation word carries the number of helpers a job may use in its
 * low bits, its sequence number above them. */
#define NC_GEN_BITS 16
#define NC_MAX_HELPERS ((1 << NC_GEN_BITS) - 1)
/* The most helpers the pool starts, whatever the limit says: far more than
 * any CPU count, and a typo like set_num_threads(100000) costs no more. */
#define NC_POOL_CAP 1023
/* The task word: the low 31 bits of the job's sequence number (so the word
 * stays positive) above the count of tasks not yet handed out. A job has at
 * most NC_MAX_JOB tasks (nc_parallel_for splits bigger ones). The join word:
 * the same 31 bits above the count of helpers that joined the job. */
#define NC_TASK_BITS 32
#define NC_MAX_JOB ((1LL << NC_TASK_BITS) - 1)
#define NC_TASK_SEQ ((1LL << 31) - 1)
#ifndef NC_JOB_CHUNK /* the tests build with a small one, to cover the split */
#define NC_JOB_CHUNK NC_MAX_JOB
#endif
#ifndef NC_FIRST_SEQ /* and with a big one, to cover the sequence's wrap */
#define NC_FIRST_SEQ 0
#endif

/* ------------------------------------------------------------------------ */
/* Atomics                                                                   */
/* ------------------------------------------------------------------------ */
/* at_load/at_store/at_add/at_cas are sequentially consistent (the sleep and
 * wake-up hand-shakes below rely on store-then-load order); at_peek is a
 * cheap read for spin loops, always confirmed by an at_load. */
#if defined(_MSC_VER) && !defined(__clang__)
typedef volatile __int64 nc_atom;
typedef __int64 nc_i64;
static nc_i64 at_load(nc_atom *p) { return InterlockedCompareExchange64(p, 0, 0); }
static nc_i64 at_peek(nc_atom *p) { return *p; }
static void at_store(nc_atom *p, nc_i64 v) { InterlockedExchange64(p, v); }
static nc_i64 at_add(nc_atom *p, nc_i64 v) { return InterlockedExchangeAdd64(p, v); }
static int at_cas(nc_atom *p, nc_i64 expect, nc_i64 want)
{
    return InterlockedCompareExchange64(p, want, expect) == expect;
}
static void cpu_relax(void) { YieldProcessor(); }
#elif defined(__GNUC__) || defined(__clang__)
typedef long long nc_atom;
typedef long long nc_i64;
static nc_i64 at_load(nc_atom *p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
static nc_i64 at_peek(nc_atom *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static void at_store(nc_atom *p, nc_i64 v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }
static nc_i64 at_add(nc_atom *p, nc_i64 v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
static int at_cas(nc_atom *p, nc_i64 expect, nc_i64 want)
{
    return __atomic_compare_exchange_n(p, &expect, want, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}
static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
    __asm__ __volatile__("yield");
#endif
}
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L && !defined(__STDC_NO_ATOMICS__)
#include <stdatomic.h>
typedef _Atomic long long nc_atom;
typedef long long nc_i64;
static nc_i64 at_load(nc_atom *p) { return atomic_load(p); }
static nc_i64 at_peek(nc_atom *p) { return atomic_load_explicit(p, memory_order_relaxed); }
static void at_store(nc_atom *p, nc_i64 v) { atomic_store(p, v); }
static nc_i64 at_add(nc_atom *p, nc_i64 v) { return atomic_fetch_add(p, v); }
static int at_cas(nc_atom *p, nc_i64 expect, nc_i64 want)
{
    return atomic_compare_exchange_strong(p, &expect, want);
}
static void cpu_relax(void) {}
#else
#error "threads.c needs GCC/Clang __atomic builtins, MSVC Interlocked functions or C11 atomics"
#endif

/* ------------------------------------------------------------------------ */
/* Locks, condition variables, threads, clock                                */
/* ------------------------------------------------------------------------ */
#ifdef _WIN32
typedef SRWLOCK nc_mutex;
typedef CONDITION_VARIABLE nc_cond;
typedef HANDLE nc_thread;
#define NC_MUTEX_INIT SRWLOCK_INIT
#define NC_COND_INIT CONDITION_VARIABLE_INIT
static void thread_yield(void) { SwitchToThread(); }
static void mu_lock(nc_mutex *m) { AcquireSRWLockExclusive(m); }
static void mu_unlock(nc_mutex *m) { ReleaseSRWLockExclusive(m); }
static void cv_wait(nc_cond *c, nc_mutex *m) { SleepConditionVariableSRW(c, m, INFINITE, 0); }
static void cv_signal(nc_cond *c) { WakeConditionVariable(c); }
static void cv_broadcast(nc_cond *c) { WakeAllConditionVariable(c); }
static nc_i64 now_ns(void)
{
    static LARGE_INTEGER freq; /* benign race: every thread stores the same value */
    LARGE_INTEGER t;
    if (freq.QuadPart == 0) QueryPerformanceFrequency(&freq);
    QueryPerformanceCounter(&t);
    return (nc_i64)((double)t.QuadPart * (1e9 / (double)freq.QuadPart));
}
#else
typedef pthread_mutex_t nc_mutex;
typedef pthread_cond_t nc_cond;
typedef pthread_t nc_thread;
#define NC_MUTEX_INIT PTHREAD_MUTEX_INITIALIZER
#define NC_COND_INIT PTHREAD_COND_INITIALIZER
static void thread_yield(void) { sched_yield(); }
static void mu_lock(nc_mutex *m) { pthread_mutex_lock(m); }
static void mu_unlock(nc_mutex *m) { pthread_mutex_unlock(m); }
static void cv_wait(nc_cond *c, nc_mutex *m) { pthread_cond_wait(c, m); }
static void cv_signal(nc_cond *c) { pthread_cond_signal(c); }
static void cv_broadcast(nc_cond *c) { pthread_cond_broadcast(c); }
static nc_i64 now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (nc_i64)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}
#endif

/* ------------------------------------------------------------------------ */
/* The pool                                                                  */
/* ------------------------------------------------------------------------ */

/* Each hot word on its own cache line, so spinning helpers reading `gen`
 * do not slow the task word down. */
typedef struct { nc_atom v; char pad[64 - sizeof(nc_atom)]; } nc_line;

typedef struct nc_helper {
    nc_i64 seen; /* the generation in force when it was started */
    nc_thread handle;
} nc_helper;

static struct {
    nc_line busy;          /* 1 while one nc_parallel_for owns the pool */
    nc_line gen;           /* (sequence << NC_GEN_BITS) | helpers the job may use */
    nc_line join;          /* (sequence << NC_TASK_BITS) | helpers that joined */
    nc_line tasks;         /* (sequence << NC_TASK_BITS) | tasks not yet handed out */
    nc_line done;          /* tasks of the job finished */
    nc_line sleepers;      /* helpers asleep (or going to sleep) on `wake` */
    nc_line caller_asleep; /* 1 while the caller sleeps on `finished` */
    nc_line stop;          /* helpers exit when they see the next generation */
    /* The job: written by the owner before it publishes `tasks` and `gen`;
     * read only by a thread holding one of its tasks, so unchanged while
     * read (the owner waits for every task before the next job). */
    nc_task_fn fn;
    void *ctx;
    size_t first; /* the task number of the job's first task */
    nc_i64 n;     /* its tasks */
    /* Owned by the pool's owner (the holder of `busy`). */
    nc_helper *helpers;
    int n_helpers;
    nc_mutex lock;
    nc_cond wake;     /* helpers wait here for a job */
    nc_cond finished; /* the caller waits here for the last task */
} P = {{0}, {(nc_i64)NC_FIRST_SEQ << NC_GEN_BITS}, {0}, {0}, {0}, {0}, {0}, {0}, NULL, NULL, 0, 0, NULL, 0,
       NC_MUTEX_INIT, NC_COND_INIT, NC_COND_INIT};

static nc_line nc_threads_; /* the limit; 0 until first asked for */

/* Spins while `w` equals `v` (until_equal = 0) or until it does
 * (until_equal = 1), for at most NC_SPIN_NS; returns its last value. */
static nc_i64 spin_wait(nc_atom *w, nc_i64 v, int until_equal)
{
    nc_i64 start = 0;
    unsigned i;
    for (i = 1;; i++) {
        if ((at_peek(w) == v) == until_equal) return at_load(w);
        cpu_relax();
        if ((i & 63) == 0) { /* the clock costs more than a pause */
            nc_i64 t = now_ns();
            if (start == 0) start = t;
            else if (t - start > NC_SPIN_NS) return at_load(w);
            /* Let a thread waiting for this CPU run: on a busy machine the
             * thread we wait for may be queued behind our spinning. */
            else thread_yield();
        }
    }
}

/* Runs tasks of job `seq` as thread `index` until none is left. A task is
 * claimed by counting the task word down, and only while the word still
 * names this job: a helper that wakes late, after the job (or several) is
 * over, claims nothing and touches nothing else, so nobody waits for it.
 * Returns the number of tasks run. */
static nc_i64 run_tasks(nc_i64 seq, int index)
{
    nc_i64 ran = 0;
    seq &= NC_TASK_SEQ;
    for (;;) {
        nc_i64 w = at_load(&P.tasks.v), left = w & NC_MAX_JOB;
        if ((w >> NC_TASK_BITS) != seq || left == 0) return ran;
        if (at_cas(&P.tasks.v, w, w - 1)) {
            /* Holding an unfinished task of this job: its fields are stable. */
            P.fn(P.ctx, P.first + (size_t)(P.n - left), index);
            ran++;
            if (index != 0) {
                at_add(&P.done.v, 1);
                /* Wake the caller if it went to sleep; it sets
                 * caller_asleep before its last look at `done`. */
                if (at_load(&P.caller_asleep.v)) {
                    mu_lock(&P.lock);
                    cv_signal(&P.finished);
                    mu_unlock(&P.lock);
                }
            }
        }
    }
}

/* A helper that saw generation g joins its job, unless the job is over (the
 * join word names a later one) or has all the helpers it may use. Returns
 * its thread index for the job (1, 2, ... in order of joining, so indices
 * stay below the job's thread count), or 0. */
static int join_job(nc_i64 g)
{
    nc_i64 seq = (g >> NC_GEN_BITS) & NC_TASK_SEQ, most = g & NC_MAX_HELPERS;
    for (;;) {
        nc_i64 j = at_load(&P.join.v);
        if ((j >> NC_TASK_BITS) != seq || (j & NC_MAX_JOB) >= most) return 0;
        if (at_cas(&P.join.v, j, j + 1)) return (int)(j & NC_MAX_JOB) + 1;
    }
}

static void helper_loop(nc_helper *h)
{
    int index;
    nc_i64 seen = h->seen;
    for (;;) {
        nc_i64 g = spin_wait(&P.gen.v, seen, 0);
        if (g == seen) {
            /* Announce the sleep before the last look at `gen`: the owner
             * publishes `gen` before it looks at `sleepers`, so one of the
             * two sees the other and no wake-up is lost. */
            mu_lock(&P.lock);
            at_add(&P.sleepers.v, 1);
            while ((g = at_load(&P.gen.v)) == seen) cv_wait(&P.wake, &P.lock);
            at_add(&P.sleepers.v, -1);
            mu_unlock(&P.lock);
        }
        seen = g;
        if (at_load(&P.stop.v)) return;
        if ((index = join_job(g)) != 0) run_tasks(g >> NC_GEN_BITS, index);
    }
}

#ifdef _WIN32
static unsigned __stdcall helper_main(void *arg)
{
    helper_loop((nc_helper *)arg);
    return 0;
}
static int thread_start(nc_helper *h)
{
    uintptr_t t = _beginthreadex(NULL, 0, helper_main, h, 0, NULL);
    h->handle = (HANDLE)t;
    return t != 0;
}
static void thread_join(nc_helper *h)
{
    WaitForSingleObject(h->handle, INFINITE);
    CloseHandle(h->handle);
}
#else
static void *helper_main(void *arg)
{
    helper_loop((nc_helper *)arg);
    return NULL;
}
static int thread_start(nc_helper *h) { return pthread_create(&h->handle, NULL, helper_main, h) == 0; }
static void thread_join(nc_helper *h) { pthread_join(h->handle, NULL); }

/* In a forked child the helpers are gone (only the forking thread is
 * copied) and the locks may have been copied held: forget the helpers
 * (their memory is leaked, once per fork) and start over. */
static void pool_after_fork_child(void)
{
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t c = PTHREAD_COND_INITIALIZER, d = PTHREAD_COND_INITIALIZER;
    P.lock = m;
    P.wake = c;
    P.finished = d;
    P.helpers = NULL;
    P.n_helpers = 0;
    at_store(&P.sleepers.v, 0);
    at_store(&P.caller_asleep.v, 0);
    at_store(&P.stop.v, 0);
    at_store(&P.busy.v, 0);
}
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static void register_atfork(void) { pthread_atfork(NULL, NULL, pool_after_fork_child); }
#endif

/* Publishes a new generation that up to taking_part helpers join, and
 * wakes as many sleeping helpers as the spinning ones cannot cover (all of
 * them when wake_all). Returns its sequence number. */
static nc_i64 publish(int taking_part, nc_i64 n_tasks, int wake_all)
{
    nc_i64 seq = (at_load(&P.gen.v) >> NC_GEN_BITS) + 1, asleep, wake;
    at_store(&P.join.v, (seq & NC_TASK_SEQ) << NC_TASK_BITS);
    at_store(&P.tasks.v, ((seq & NC_TASK_SEQ) << NC_TASK_BITS) | n_tasks);
    at_store(&P.gen.v, (seq << NC_GEN_BITS) | taking_part);
    asleep = at_load(&P.sleepers.v);
    wake = wake_all ? asleep : taking_part - (P.n_helpers - asleep);
    if (wake > 0) {
        mu_lock(&P.lock);
        if (wake_all || wake >= asleep) {
            cv_broadcast(&P.wake);
        } else {
            while (wake-- > 0) cv_signal(&P.wake);
        }
        mu_unlock(&P.lock);
    }
    return seq;
}

static void pool_stop(void)
{
    int i;
    if (P.n_helpers == 0) return;
    at_store(&P.stop.v, 1);
    publish(0, 0, 1);
    for (i = 0; i < P.n_helpers; i++) thread_join(&P.helpers[i]);
    free(P.helpers);
    P.helpers = NULL;
    P.n_helpers = 0;
    at_store(&P.stop.v, 0);
}

/* Makes the pool have `want` helpers (fewer if threads cannot be made).
 * Only the owner calls it, so no job is running. */
static void pool_resize(int want)
{
    int i;
    nc_i64 g;
#ifndef _WIN32
    sigset_t all, old;
#endif
    if (want > NC_POOL_CAP) want = NC_POOL_CAP;
    if (want == P.n_helpers) return;
    pool_stop();
    if (want <= 0) return;
    P.helpers = (nc_helper *)calloc((size_t)want, sizeof(nc_helper));
    if (P.helpers == NULL) return;
#ifndef _WIN32
    pthread_once(&atfork_once, register_atfork);
    /* Helpers block the asynchronous signals, so those go to the
     * application's own threads (Python handles them on its main thread);
     * a fault in a helper still reaches its handler (faulthandler). */
    sigfillset(&all);
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGBUS);
    sigdelset(&all, SIGFPE);
    sigdelset(&all, SIGILL);
    sigdelset(&all, SIGABRT);
    sigdelset(&all, SIGTRAP);
    pthread_sigmask(SIG_SETMASK, &all, &old);
#endif
    g = at_load(&P.gen.v);
    for (i = 0; i < want; i++) {
        P.helpers[i].seen = g;
        if (!thread_start(&P.helpers[i])) break;
    }
    P.n_helpers = i;
#ifndef _WIN32
    pthread_sigmask(SIG_SETMASK, &old, NULL);
#endif
    if (P.n_helpers == 0) {
        free(P.helpers);
        P.helpers = NULL;
    }
}

static void run_serial(size_t n_tasks, nc_task_fn fn, void *ctx)
{
    size_t t;
    for (t = 0; t < n_tasks; t++) fn(ctx, t, 0);
}

void nc_parallel_for(size_t n_tasks, nc_task_fn fn, void *ctx)
{
    nc_parallel_for_max(n_tasks, INT_MAX, fn, ctx);
}

void nc_parallel_for_max(size_t n_tasks, int max_threads, nc_task_fn fn, void *ctx)
{
    int threads, taking_part;
    size_t first;
    threads = n_tasks <= 1 ? 1 : NC_MIN(nc_get_num_threads(), max_threads);
    if (threads <= 1 || !at_cas(&P.busy.v, 0, 1)) {
        run_serial(n_tasks, fn, ctx);
        return;
    }
    /* The pool keeps nc_get_num_threads()-1 helpers; a job smaller than
     * that, or capped by max_threads, lets only taking_part of them join,
     * so thread indices stay below min(threads, n_tasks). */
    pool_resize(nc_get_num_threads() - 1);
    taking_part = (int)NC_MIN((size_t)NC_MIN(P.n_helpers, threads - 1), n_tasks - 1);
    if (taking_part == 0) {
        run_serial(n_tasks, fn, ctx);
        at_store(&P.busy.v, 0);
        return;
    }
    for (first = 0; first < n_tasks; first += (size_t)P.n) {
        nc_i64 n = (nc_i64)NC_MIN(n_tasks - first, (size_t)NC_JOB_CHUNK), mine;
        P.fn = fn;
        P.ctx = ctx;
        P.first = first;
        P.n = n;
        at_store(&P.done.v, 0);
        mine = run_tasks(publish(taking_part, n, 0), 0);
        /* Every task is handed out; wait for those still running. */
        n -= mine;
        if (spin_wait(&P.done.v, n, 1) != n) {
            mu_lock(&P.lock);
            at_store(&P.caller_asleep.v, 1);
            while (at_load(&P.done.v) != n) cv_wait(&P.finished, &P.lock);
            at_store(&P.caller_asleep.v, 0);
            mu_unlock(&P.lock);
        }
    }
    at_store(&P.busy.v, 0);
}

/* ------------------------------------------------------------------------ */
/* The thread limit                                                          */
/* ------------------------------------------------------------------------ */

int nc_threads_for(double work, double grain)
{
    int limit = nc_get_num_threads();
    double fit = grain > 0 ? work / grain : (double)limit;
    if (!(fit >= 2)) return 1; /* also NaN */
    return fit >= (double)limit ? limit : (int)fit;
}

static int cpu_count(void)
{
#ifdef _WIN32
    DWORD_PTR mine, sys;
    DWORD n;
#if _WIN32_WINNT >= 0x0601
    n = GetActiveProcessorCount(ALL_PROCESSOR_GROUPS);
#else
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    n = si.dwNumberOfProcessors;
#endif
    /* Within one processor group (<= 64 CPUs) the affinity mask says which
     * of them this process may use (start /affinity, job objects). */
    if (n <= 64 && GetProcessAffinityMask(GetCurrentProcess(), &mine, &sys) && mine != 0) {
        DWORD c = 0;
        for (; mine != 0; mine &= mine - 1) c++;
        n = c;
    }
    return n > 0 && n < INT_MAX ? (int)n : 1;
#else
    long n;
#if defined(__linux__) && defined(CPU_COUNT)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) { /* honours taskset / cpusets */
        int c = CPU_COUNT(&set);
        if (c > 0) return c;
    }
#endif
    n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 && n < INT_MAX ? (int)n : 1;
#endif
}

/* NNCORE_NUM_THREADS when it is a whole number >= 1, else the CPU count. */
static int default_threads(void)
{
    const char *s = getenv("NNCORE_NUM_THREADS");
    if (s != NULL && *s != '\0') {
        char *end;
        long v;
        errno = 0;
        v = strtol(s, &end, 10);
        while (*end == ' ' || *end == '\t' || *end == '\n') end++;
        if (errno == 0 && *end == '\0' && v >= 1 && v <= INT_MAX) return (int)v;
    }
    return cpu_count();
}

nc_status nc_set_num_threads(int n)
{
    if (n < 1) return NC_ERR_ARG;
    at_store(&nc_threads_.v, n); /* the pool follows at its next job */
    return NC_OK;
}

int nc_get_num_threads(void)
{
    nc_i64 n = at_load(&nc_threads_.v);
    if (n == 0) {
        at_cas(&nc_threads_.v, 0, default_threads()); /* a set_num_threads in between wins */
        n = at_load(&nc_threads_.v);
    }
    return (int)n;
}
