/*
 * gemm/frame_impl.h -- the GEMM framework, written once for `real` (included
 * per precision by gemm_impl.h): level dispatch, packing, the BLIS loops, the
 * small-product path and the thread split. The arithmetic lives in the
 * micro-kernels (kernels.h states their contract).
 *
 * Determinism: every element of C is one multiply-add chain per KC block in
 * increasing k, the KC split depends on k and the level only, and every
 * element is written by exactly one task. So neither the thread count nor
 * the split changes a single bit of the result.
 */

#define CFG NC_TAG(nc_gemm_cfg)

/* Up to this many multiply-adds the unpacked path runs (no packing, no heap)
 * for an untransposed B. On the Zen 4 this was tuned on it matches or beats
 * packing up to 2048^3, thanks to strong prefetchers; packing is kept for
 * the large products, where it is the robust choice on other cores. */
#ifndef NC_GEMM_SMALL_MNK
#define NC_GEMM_SMALL_MNK ((size_t)1 << 25)
#endif
/* The small path packs a transposed B on the stack up to this many bytes. */
#define NC_GEMM_SMALL_BT_BYTES 32768
/* Below this many multiply-adds the product stays on one thread. */
#define NC_GEMM_PAR_MNK ((size_t)1 << 21)

static const CFG *NC_TAG(gemm_cfg_for)(nc_isa isa)
{
    switch (isa) {
#ifdef NC_GEMM_X86
    case NC_ISA_AVX512: return &NC_TAG(nc_gemm_avx512);
    case NC_ISA_AVX2: return &NC_TAG(nc_gemm_avx2);
#endif
#ifdef NC_GEMM_ARM64
    case NC_ISA_NEON: return &NC_TAG(nc_gemm_neon);
#endif
    default: return &NC_TAG(nc_gemm_ref);
    }
}

/* C = beta C over m x n (beta == 0 overwrites, NaN included). */
static void NC_TAG(gemm_scale)(size_t m, size_t n, real beta, real *c, size_t ldc)
{
    size_t i, j;
    if (beta == R_C(1)) return;
    for (i = 0; i < m; i++) {
        real *ci = c + i * ldc;
        if (beta == 0)
            for (j = 0; j < n; j++) ci[j] = 0;
        else
            for (j = 0; j < n; j++) ci[j] *= beta;
    }
}

/* dst[p*w + r] = src[r*ld + p] for r < rows, 0 for rows <= r < w, p < kc:
 * one micro-panel from `rows` source rows read along p. Done in chunks of
 * p so that the chunk of the panel being written stays in L1 (a whole
 * panel does not, and a column at a time would evict it w times). */
static void NC_TAG(pack_transpose)(const real *src, size_t ld, size_t rows, size_t kc,
                                   size_t w, real *dst)
{
    size_t p0, p, r, pe;
    for (p0 = 0; p0 < kc; p0 += 32) {
        pe = NC_MIN(kc, p0 + 32);
        for (r = 0; r < rows; r++) {
            const real *s = src + r * ld;
            for (p = p0; p < pe; p++) dst[p * w + r] = s[p];
        }
        for (; r < w; r++)
            for (p = p0; p < pe; p++) dst[p * w + r] = 0;
    }
}

/* Packs op(A)[i0:i0+mc, p0:p0+kc] as MR-row micro-panels, zero-padded.
 * The source is always read along its rows (walking down a column would
 * touch a new page per element and defeat the prefetchers). */
static void NC_TAG(pack_a)(const CFG *cfg, int trans_a, const real *a, size_t lda,
                           size_t i0, size_t p0, size_t mc, size_t kc, size_t mr_, real *dst)
{
    size_t ir, i, p;
    if (trans_a) { /* op(A)(i, p) = a[p*lda + i]: row p of a holds column p of op(A) */
        for (p = 0; p < kc; p++) {
            const real *src = a + (p0 + p) * lda + i0;
            for (ir = 0; ir < mc; ir += mr_) {
                size_t mr = NC_MIN(mr_, mc - ir);
                real *d = dst + ir * kc + p * mr_;
                for (i = 0; i < mr; i++) d[i] = src[ir + i];
                for (; i < mr_; i++) d[i] = 0;
            }
        }
        return;
    }
    for (ir = 0; ir < mc; ir += mr_, dst += mr_ * kc) { /* op(A)(i, p) = a[i*lda + p] */
        size_t mr = NC_MIN(mr_, mc - ir);
        (cfg->transpose ? cfg->transpose : NC_TAG(pack_transpose))(
            a + (i0 + ir) * lda + p0, lda, mr, kc, mr_, dst);
    }
}

/* Packs op(B)[p0:p0+kc, j0:j0+nc] as NR-column micro-panels, zero-padded,
 * reading the source along its rows as pack_a does. */
static void NC_TAG(pack_b)(const CFG *cfg, int trans_b, const real *b, size_t ldb,
                           size_t p0, size_t j0, size_t kc, size_t nc, size_t nr_, real *dst)
{
    size_t jr, j, p;
    if (!trans_b) { /* op(B)(p, j) = b[p*ldb + j]: row p of b is row p of op(B) */
        for (p = 0; p < kc; p++) {
            const real *src = b + (p0 + p) * ldb + j0;
            for (jr = 0; jr < nc; jr += nr_) {
                size_t nr = NC_MIN(nr_, nc - jr);
                real *d = dst + jr * kc + p * nr_;
                for (j = 0; j < nr; j++) d[j] = src[jr + j];
                for (; j < nr_; j++) d[j] = 0;
            }
        }
        return;
    }
    for (jr = 0; jr < nc; jr += nr_, dst += nr_ * kc) { /* op(B)(p, j) = b[j*ldb + p] */
        size_t nr = NC_MIN(nr_, nc - jr);
        (cfg->transpose ? cfg->transpose : NC_TAG(pack_transpose))(
            b + (j0 + jr) * ldb + p0, ldb, nr, kc, nr_, dst);
    }
}

/* ceil(x / block) equal parts of at most `block`, rounded up to `unit`:
 * the same total work in fewer ragged blocks (a k = KC + 1 would otherwise
 * end in a block of 1). Depends only on x, block and unit. */
static size_t NC_TAG(gemm_even)(size_t x, size_t block, size_t unit)
{
    size_t parts = (x + block - 1) / block, size;
    if (parts <= 1) return x < block ? x : block;
    size = (x + parts - 1) / parts;
    size = (size + unit - 1) / unit * unit;
    return NC_MIN(size, block);
}

/* The optional epilogue C = f(C + bias) (bias broadcast over rows, may be
 * NULL), applied to each block of C as soon as its last k block is done,
 * while it is still in cache. Elementwise activations only: the frame
 * splits rows, so the row-wise softmaxes stay a separate pass. */
typedef struct NC_TAG(gemm_epi) {
    const real *bias;
    nc_act act;
    real param;
} NC_TAG(gemm_epi);

static void NC_TAG(epilogue)(const NC_TAG(gemm_epi) *e, size_t rows, size_t cols, size_t j0,
                             real *c, size_t ldc)
{
    if (e) NC_FN(bias_act)(e->act, e->param, rows, cols, e->bias ? e->bias + j0 : NULL, c, ldc);
}

typedef struct NC_TAG(gemm_job) {
    const CFG *cfg;
    int trans_a, trans_b;
    size_t m, n, k;
    real alpha, beta;
    const real *a, *b;
    size_t lda, ldb, ldc;
    real *c;
    size_t mc, kc, nc;      /* block sizes for this product */
    size_t tm, tn;          /* task grid: tm row bands x tn column bands */
    size_t m_units, n_units;
    real *work;             /* per task: buf_a then buf_b, 64-byte aligned */
    size_t per_task;        /* elements of work per task */
    const NC_TAG(gemm_epi) *epi; /* bias + activation on finished blocks, or NULL */
} NC_TAG(gemm_job);

/* The five loops over one task's band of C: [i0, i1) x [j0, j1). */
static void NC_TAG(gemm_task)(void *ctx, size_t task, int thread)
{
    const NC_TAG(gemm_job) *J = (const NC_TAG(gemm_job) *)ctx;
    const CFG *cfg = J->cfg;
    const size_t MR = cfg->mr, NR = cfg->nr;
    size_t ti = task / J->tn, tj = task % J->tn;
    size_t i0 = (ti * J->m_units / J->tm) * MR, i1 = NC_MIN(J->m, ((ti + 1) * J->m_units / J->tm) * MR);
    size_t j0 = (tj * J->n_units / J->tn) * NR, j1 = NC_MIN(J->n, ((tj + 1) * J->n_units / J->tn) * NR);
    real *buf_a = J->work + task * J->per_task;
    real *buf_b = buf_a + (J->mc * J->kc + 15) / 16 * 16;
    size_t jc, pc, ic, jr, ir;
    (void)thread;
    for (jc = j0; jc < j1; jc += J->nc) {
        size_t nc = NC_MIN(J->nc, j1 - jc);
        for (pc = 0; pc < J->k; pc += J->kc) {
            size_t kc = NC_MIN(J->kc, J->k - pc);
            real beta = pc == 0 ? J->beta : R_C(1);
            NC_TAG(pack_b)(cfg, J->trans_b, J->b, J->ldb, pc, jc, kc, nc, NR, buf_b);
            for (ic = i0; ic < i1; ic += J->mc) {
                size_t mc = NC_MIN(J->mc, i1 - ic);
                NC_TAG(pack_a)(cfg, J->trans_a, J->a, J->lda, ic, pc, mc, kc, MR, buf_a);
                for (jr = 0; jr < nc; jr += NR) {
                    size_t nr = NC_MIN(NR, nc - jr);
                    const real *bp = buf_b + jr * kc;
                    for (ir = 0; ir < mc; ir += MR)
                        cfg->ukr(kc, buf_a + ir * kc, bp, J->c + (ic + ir) * J->ldc + jc + jr,
                                 J->ldc, J->alpha, beta, NC_MIN(MR, mc - ir), nr);
                }
                if (pc + kc >= J->k)
                    NC_TAG(epilogue)(J->epi, mc, nc, jc, J->c + ic * J->ldc + jc, J->ldc);
            }
        }
    }
}

/* Picks tm x tn <= threads bands, squarest first (least packing repeated). */
static void NC_TAG(gemm_grid)(size_t threads, size_t m_units, size_t n_units,
                              size_t rows_per_unit, size_t cols_per_unit,
                              size_t *tm_out, size_t *tn_out)
{
    size_t tm, tn, best_tm = 1, best_tn = 1;
    double best = -1;
    for (tm = 1; tm <= threads && tm <= m_units; tm++) {
        double cost, used;
        tn = NC_MIN(threads / tm, n_units);
        used = (double)(tm * tn);
        /* prefer more tasks in use, then the smaller band perimeter */
        cost = used * 1e12 - ((double)m_units * rows_per_unit / tm
                              + (double)n_units * cols_per_unit / tn);
        if (cost > best) { best = cost; best_tm = tm; best_tn = tn; }
    }
    *tm_out = best_tm;
    *tn_out = best_tn;
}

static nc_status NC_TAG(gemm_packed)(const CFG *cfg, int trans_a, int trans_b,
                                     size_t m, size_t n, size_t k, real alpha,
                                     const real *a, size_t lda, const real *b, size_t ldb,
                                     real beta, real *c, size_t ldc,
                                     const NC_TAG(gemm_epi) *epi)
{
    NC_TAG(gemm_job) J;
    void *raw;
    size_t threads = (size_t)NC_MAX(1, nc_get_num_threads()), tasks, band_m, band_n;
    J.cfg = cfg;
    J.epi = epi;
    J.trans_a = trans_a; J.trans_b = trans_b;
    J.m = m; J.n = n; J.k = k;
    J.alpha = alpha; J.beta = beta;
    J.a = a; J.b = b; J.c = c;
    J.lda = lda; J.ldb = ldb; J.ldc = ldc;
    J.m_units = (m + cfg->mr - 1) / cfg->mr;
    J.n_units = (n + cfg->nr - 1) / cfg->nr;
    if (m * n * k < NC_GEMM_PAR_MNK) threads = 1;
    NC_TAG(gemm_grid)(threads, J.m_units, J.n_units, cfg->mr, cfg->nr, &J.tm, &J.tn);
    tasks = J.tm * J.tn;
    /* Block sizes for the widest band: KC evened over k (the same for every
     * task, as determinism needs), MC and NC at most what a band can use. */
    band_m = (J.m_units + J.tm - 1) / J.tm * cfg->mr;
    band_n = (J.n_units + J.tn - 1) / J.tn * cfg->nr;
    J.kc = NC_TAG(gemm_even)(k, cfg->kc, 1);
    J.mc = NC_TAG(gemm_even)(band_m, cfg->mc, cfg->mr);
    J.nc = NC_TAG(gemm_even)(band_n, cfg->nc, cfg->nr);
    J.per_task = (J.mc * J.kc + 15) / 16 * 16 + (J.kc * J.nc + 15) / 16 * 16;
    raw = malloc(tasks * J.per_task * sizeof(real) + 64);
    if (raw == NULL) return NC_ERR_NOMEM;
    J.work = (real *)(((uintptr_t)raw + 63) & ~(uintptr_t)63);
    if (tasks == 1)
        NC_TAG(gemm_task)(&J, 0, 0);
    else
        nc_parallel_for(tasks, NC_TAG(gemm_task), &J);
    free(raw);
    return NC_OK;
}

/* The unpacked path: op(A) and op(B) read in place (a transposed B is first
 * copied to the stack). Split over threads into bands of rows and columns
 * when large enough; every element is still one chain, so bits do not move. */
typedef struct NC_TAG(small_job) {
    const CFG *cfg;
    size_t m, n, k, ars, acs, ldb, ldc, tm, tn, m_units, n_units;
    real alpha, beta;
    const real *a, *b;
    real *c;
    const NC_TAG(gemm_epi) *epi;
} NC_TAG(small_job);

/* Rows at a time when an epilogue follows, so it finds them in cache. */
#define NC_EPI_ROWS 32

/* The unpacked kernel over rows [i0, i1) x columns [j0, j1), then the epilogue. */
static void NC_TAG(small_band)(const NC_TAG(small_job) *J, size_t i0, size_t i1,
                               size_t j0, size_t j1)
{
    size_t r0, r1;
    if (i1 <= i0 || j1 <= j0) return;
    if (J->epi == NULL) {
        J->cfg->small(i1 - i0, j1 - j0, J->k, J->alpha, J->a + i0 * J->ars, J->ars, J->acs,
                      J->b + j0, J->ldb, J->beta, J->c + i0 * J->ldc + j0, J->ldc);
        return;
    }
    for (r0 = i0; r0 < i1; r0 = r1) {
        r1 = NC_MIN(i1, r0 + NC_EPI_ROWS);
        J->cfg->small(r1 - r0, j1 - j0, J->k, J->alpha, J->a + r0 * J->ars, J->ars, J->acs,
                      J->b + j0, J->ldb, J->beta, J->c + r0 * J->ldc + j0, J->ldc);
        NC_TAG(epilogue)(J->epi, r1 - r0, j1 - j0, j0, J->c + r0 * J->ldc + j0, J->ldc);
    }
}

#define NC_SMALL_ROWS 16 /* band granularity of the split (any value is exact) */
#define NC_SMALL_COLS 64

static void NC_TAG(small_task)(void *ctx, size_t task, int thread)
{
    const NC_TAG(small_job) *J = (const NC_TAG(small_job) *)ctx;
    size_t ti = task / J->tn, tj = task % J->tn;
    size_t i0 = (ti * J->m_units / J->tm) * NC_SMALL_ROWS;
    size_t i1 = NC_MIN(J->m, ((ti + 1) * J->m_units / J->tm) * NC_SMALL_ROWS);
    size_t j0 = (tj * J->n_units / J->tn) * NC_SMALL_COLS;
    size_t j1 = NC_MIN(J->n, ((tj + 1) * J->n_units / J->tn) * NC_SMALL_COLS);
    (void)thread;
    NC_TAG(small_band)(J, i0, i1, j0, j1);
}

static void NC_TAG(gemm_small)(const CFG *cfg, int trans_a, int trans_b,
                               size_t m, size_t n, size_t k, real alpha,
                               const real *a, size_t lda, const real *b, size_t ldb,
                               real beta, real *c, size_t ldc, const NC_TAG(gemm_epi) *epi)
{
    real bt[NC_GEMM_SMALL_BT_BYTES / sizeof(real)];
    size_t threads = (size_t)NC_MAX(1, nc_get_num_threads());
    NC_TAG(small_job) J;
    J.cfg = cfg;
    J.epi = epi;
    J.m = m; J.n = n; J.k = k;
    J.ars = trans_a ? 1 : lda; J.acs = trans_a ? lda : 1;
    J.alpha = alpha; J.beta = beta;
    J.a = a; J.b = b; J.ldb = ldb; J.c = c; J.ldc = ldc;
    if (trans_b) {
        size_t j, p;
        for (j = 0; j < n; j++)
            for (p = 0; p < k; p++) bt[p * n + j] = b[j * ldb + p];
        J.b = bt; J.ldb = n;
    }
    if (m * n * k < NC_GEMM_PAR_MNK) threads = 1;
    J.m_units = (m + NC_SMALL_ROWS - 1) / NC_SMALL_ROWS;
    J.n_units = (n + NC_SMALL_COLS - 1) / NC_SMALL_COLS;
    NC_TAG(gemm_grid)(threads, J.m_units, J.n_units, NC_SMALL_ROWS, NC_SMALL_COLS, &J.tm, &J.tn);
    if (J.tm * J.tn == 1)
        NC_TAG(small_band)(&J, 0, m, 0, n);
    else
        nc_parallel_for(J.tm * J.tn, NC_TAG(small_task), &J);
}

static nc_status NC_TAG(gemm_fast)(int trans_a, int trans_b, size_t m, size_t n, size_t k,
                                   real alpha, const real *a, size_t lda,
                                   const real *b, size_t ldb,
                                   real beta, real *c, size_t ldc,
                                   const NC_TAG(gemm_epi) *epi)
{
    const CFG *cfg = NC_TAG(gemm_cfg_for)(nc_active_isa_);
    if (m == 0 || n == 0) return NC_OK;
    if (k == 0 || alpha == 0) {
        NC_TAG(gemm_scale)(m, n, beta, c, ldc);
        NC_TAG(epilogue)(epi, m, n, 0, c, ldc);
        return NC_OK;
    }
    /* small products, and a few rows against an untransposed B (the batch-
     * of-one layer): packing would cost more than it saves */
    if (nc_gemm_path_ == 1) goto packed; /* tests force each path in turn */
    if ((!trans_b && (m * n * k <= NC_GEMM_SMALL_MNK || m <= 2 || nc_gemm_path_ == 2))
        || (trans_b && k * n * sizeof(real) <= NC_GEMM_SMALL_BT_BYTES)) {
        NC_TAG(gemm_small)(cfg, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
                           epi);
        return NC_OK;
    }
packed:
    return NC_TAG(gemm_packed)(cfg, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb,
                               beta, c, ldc, epi);
}

#undef CFG
