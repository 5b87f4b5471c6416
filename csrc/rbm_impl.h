/*
 * rbm_impl.h -- restricted Boltzmann machines, written once for `real`.
 *
 * W is n_visible x n_hidden (Keras' Dense layout, so a trained RBM's W is a
 * Dense kernel as it stands); bv (n_visible), bh (n_hidden) are the biases.
 *   p(h = 1 | v) = sigmoid(v W + bh)
 *   Bernoulli visibles: p(v = 1 | h) = sigmoid(h W^T + bv)
 *   Gaussian visibles (unit variance): v | h ~ N(h W^T + bv, 1)
 * The update's products whose left operand is binary -- the sampled states
 * always, the data when it is 0/1 -- are sums of selected rows (rbm_bin.h):
 * the index lists are built in one pass that also checks the operand, so
 * non-binary data (or NaN) and operands denser than the cut-off take the
 * dense nc_?gemm (transposes read in place) instead; gibbs and the free
 * energy use the GEMM. Sigmoids go through real.h's vector hook; draws
 * through Philox keyed by (seed, stream, element), so a sample never depends
 * on the thread count, and neither do the row sums (split by output rows).
 */

/* Bernoulli samples in place: p[i] <- 1 if word i < p[i] 2^32 else 0, word i
 * being 32-bit draw i of (seed, stream) (block i / 4, word i % 4). */
static void NC_TAG(rbm_bernoulli)(uint64_t seed, uint64_t stream, size_t n, real *p)
{
    size_t i0;
    uint32_t w[4][RBM_LANES];
#ifdef RBM_X86
    if (nc_active_isa_ == NC_ISA_AVX512) {
        NC_TAG(nc_rbm_bernoulli_avx512)(seed, stream, n, p);
        return;
    }
#endif
    for (i0 = 0; i0 < n; i0 += 4 * RBM_LANES) {
        size_t e, len = NC_MIN(n - i0, (size_t)(4 * RBM_LANES));
        rbm_philox_lanes(seed, stream, (uint64_t)(i0 / 4), w);
        for (e = 0; e < len; e++) {
            real *q = p + i0 + e;
            *q = (double)w[e % 4][e / 4] < (double)*q * 4294967296.0 ? R_C(1) : R_C(0);
        }
    }
}

/* Standard normal noise added in place: element i gets r cos(2 pi u2) with
 * u1 = (word 2(i%2) >> 8 + 1) 2^-24, u2 = (word 2(i%2)+1 >> 8) 2^-24 of
 * block i / 2 of (seed, stream). Computed in double, rounded once. */
static void NC_TAG(rbm_add_normal)(uint64_t seed, uint64_t stream, size_t n, real *x)
{
    size_t i, blk;
    uint32_t ctr[4], key[2], w[4];
    key[0] = (uint32_t)seed;
    key[1] = (uint32_t)(seed >> 32);
    ctr[2] = (uint32_t)stream;
    ctr[3] = (uint32_t)(stream >> 32);
    for (blk = 0, i = 0; i < n; blk++) {
        size_t j, len = NC_MIN(n - i, (size_t)2);
        ctr[0] = (uint32_t)blk;
        ctr[1] = (uint32_t)((uint64_t)blk >> 32);
        nc_philox4x32_10(ctr, key, w);
        for (j = 0; j < len; j++, i++) {
            double u1 = ((double)(w[2 * j] >> 8) + 1) * (1.0 / 16777216.0);
            double u2 = (double)(w[2 * j + 1] >> 8) * (1.0 / 16777216.0);
            x[i] = (real)((double)x[i] + sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2));
        }
    }
}

/* H = sigmoid(V W + bh): V is m x nv, H is m x nh (row stride ldh). */
static nc_status NC_TAG(rbm_hidden)(size_t m, size_t nv, size_t nh, const real *v,
                                    const real *w, const real *bh, real *h, size_t ldh)
{
    nc_status st = NC_FN(gemm)(0, 0, m, nh, nv, R_C(1), v, nv, w, nh, R_C(0), h, ldh);
    if (st != NC_OK) return st;
    return NC_FN(bias_act)(NC_ACT_SIGMOID, 0, m, nh, bh, h, ldh);
}

/* V = mean of v | h: f(H W^T + bv), f sigmoid or identity. */
static nc_status NC_TAG(rbm_visible)(nc_rbm_visible kind, size_t m, size_t nv, size_t nh,
                                     const real *h, const real *w, const real *bv, real *v)
{
    nc_status st = NC_FN(gemm)(0, 1, m, nv, nh, R_C(1), h, nh, w, nh, R_C(0), v, nv);
    if (st != NC_OK) return st;
    return NC_FN(bias_act)(kind == NC_RBM_GAUSSIAN ? NC_ACT_IDENTITY : NC_ACT_SIGMOID, 0,
                           m, nv, bv, v, nv);
}

/* The binary-left kernels of the level in force (rbm_bin.h). */
static size_t NC_TAG(rbm_binidx)(size_t m, size_t n, const real *x, size_t ld, uint32_t *ptr,
                                 uint32_t *idx)
{
#if NC_REAL_BITS == 32 && defined(RBM_BIN_X86)
    if (nc_active_isa_ == NC_ISA_AVX512) return nc_rbm_binidx_avx512_f32(m, n, x, ld, ptr, idx);
    if (nc_active_isa_ == NC_ISA_AVX2) return nc_rbm_binidx_avx2_f32(m, n, x, ld, ptr, idx);
#endif
    return NC_TAG(rbm_binidx_ref)(m, n, x, ld, ptr, idx);
}

static nc_rbm_binmm_fn NC_TAG(rbm_binmm_pick)(void)
{
#if NC_REAL_BITS == 32 && defined(RBM_BIN_X86)
    if (nc_active_isa_ == NC_ISA_AVX512) return nc_rbm_binmm_avx512_f32;
    if (nc_active_isa_ == NC_ISA_AVX2) return nc_rbm_binmm_avx2_f32;
#endif
    return NC_TAG(rbm_binmm_ref);
}

/* wt (k x n) = w^T, w n x k */
static void NC_TAG(rbm_transpose)(size_t n, size_t k, const real *w, real *wt)
{
    size_t i0, j0, i, j;
#if NC_REAL_BITS == 32 && defined(RBM_BIN_X86)
    if (nc_active_isa_ == NC_ISA_AVX512) {
        nc_rbm_transpose_avx512_f32(n, k, w, wt);
        return;
    }
    if (nc_active_isa_ == NC_ISA_AVX2) {
        nc_gemm_transpose_avx2_f32(w, k, n, k, n, wt);
        return;
    }
#endif
    for (i0 = 0; i0 < n; i0 += 16)
        for (j0 = 0; j0 < k; j0 += 16)
            for (i = i0; i < NC_MIN(n, i0 + 16); i++)
                for (j = j0; j < NC_MIN(k, j0 + 16); j++) wt[j * n + i] = w[i * k + j];
}

/* The products of one update whose left operand may be binary. */
typedef struct NC_TAG(rbm_ws) {
    real *wt;      /* W^T, filled on first use (W changes only at the update's end) */
    int wt_ready;
} NC_TAG(rbm_ws);

/*
 * out (m x n) = x W (trans 0, W k x n) or x W^T (trans 1, W n x k), x m x k.
 * When the binary path may run, x's CSR lists are built into (ptr, idx) and
 * *nnz gets their count ((size_t)-1: x is not binary, or the path is off);
 * the sums run when x is binary and sparse enough, else the dense GEMM.
 */
static nc_status NC_TAG(rbm_left)(NC_TAG(rbm_ws) *ws, size_t m, size_t k, size_t n,
                                  const real *x, int trans, const real *w, real *out,
                                  uint32_t *ptr, uint32_t *idx, size_t *nnz)
{
    size_t cnt = (size_t)-1;
    /* (lists index in 32 bits) */
    if (rbm_bin_enabled(NC_REAL_BITS) && (double)m * (double)k < 4e9) cnt = NC_TAG(rbm_binidx)(m, k, x, k, ptr, idx);
    if (nnz) *nnz = cnt;
    if (rbm_bin_worth(cnt, m, k)) {
        nc_rbm_binmm a;
        if (trans && !ws->wt_ready) {
            NC_TAG(rbm_transpose)(n, k, w, ws->wt);
            ws->wt_ready = 1;
        }
        memset(&a, 0, sizeof a);
        a.n = n;
        a.ptr = ptr;
        a.idx = idx;
        a.b = trans ? ws->wt : w;
        a.ldb = n;
        a.alpha = 1;
        a.beta = 0;
        a.c = out;
        a.ldc = n;
        rbm_binmm_run(&a, m, cnt, NC_TAG(rbm_binmm_pick)());
        return NC_OK;
    }
    return trans ? NC_FN(gemm)(0, 1, m, n, k, R_C(1), x, k, w, k, R_C(0), out, n)
                 : NC_FN(gemm)(0, 0, m, n, k, R_C(1), x, k, w, n, R_C(0), out, n);
}

/* Sum of squared differences, in double in a fixed order. */
static double NC_TAG(rbm_sq_err)(size_t n, const real *a, const real *b)
{
    size_t i;
    double s = 0;
    for (i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        s += d * d;
    }
    return s;
}

nc_status NC_FN(rbm_update)(const nc_rbm_config *cfg, uint64_t step, size_t m, size_t nv,
                            size_t nh, const real *v0, real *w, real *bv, real *bh,
                            real *vel_w, real *vel_bv, real *vel_bh, real *chain,
                            real *work, double *recon_err)
{
    /* work: V (2m x nv) = [v0; v-], H (2m x nh) = [h0; -h-], HS (m x nh) hidden
     * samples, R (m x nv) reconstruction, W^T (nh x nv); V^T H is then the
     * whole gradient of W in one product over 2m rows. Then the index lists
     * of the binary products (see nc_rbm_work_size). */
    real *V = work, *H = V + 2 * m * nv, *HS = H + 2 * m * nh, *R = HS + m * nh;
    real *Vn = V + m * nv, *Hn = H + m * nh;
    uint32_t *P0 = (uint32_t *)(R + m * nv + nv * nh), *I0 = P0 + (m + 1);
    uint32_t *PN = I0 + m * nv + 16, *IN = PN + (m + 1);
    uint32_t *PH = IN + m * nv + 16, *IH = PH + (m + 1);
    uint32_t *C0 = IH + m * nh + 16, *J0 = C0 + nv + 2, *CN = J0 + m * nv, *JN = CN + nv + 2;
    NC_TAG(rbm_ws) ws;
    size_t nnz0 = (size_t)-1, nnzn = (size_t)-1;
    const real *hs;
    const real lr = (real)cfg->learning_rate, mom = (real)cfg->momentum;
    const real wd = (real)cfg->weight_decay, scale = lr / (real)(m ? m : 1);
    const nc_act vis_act = cfg->visible == NC_RBM_GAUSSIAN ? NC_ACT_IDENTITY : NC_ACT_SIGMOID;
    uint64_t base = step << 16;
    int t, k = cfg->cd_k;
    size_t i, j;
    nc_status st;

    if (k < 1 || k > NC_RBM_MAX_K || (unsigned)cfg->visible > NC_RBM_GAUSSIAN) return NC_ERR_ARG;
    if (cfg->persistent && chain == NULL) return NC_ERR_ARG;
    if (mom != 0 && (vel_w == NULL || vel_bv == NULL || vel_bh == NULL)) return NC_ERR_ARG;
    if (recon_err) *recon_err = 0;
    if (m == 0) return NC_OK;
    ws.wt = R + m * nv;
    ws.wt_ready = 0;

    /* positive phase (v0's lists are kept for the gradient) */
    st = NC_TAG(rbm_left)(&ws, m, nv, nh, v0, 0, w, H, P0, I0, &nnz0);
    if (st == NC_OK) st = NC_FN(bias_act)(NC_ACT_SIGMOID, 0, m, nh, bh, H, nh);
    if (st != NC_OK) return st;
    if (!cfg->persistent || recon_err) {
        memcpy(HS, H, m * nh * sizeof(real));
        NC_TAG(rbm_bernoulli)(cfg->seed, base | 0, m * nh, HS);
    }
    if (cfg->persistent && recon_err) {
        /* the chain is not a reconstruction of v0: one more product for it */
        st = NC_TAG(rbm_left)(&ws, m, nh, nv, HS, 1, w, R, PH, IH, NULL);
        if (st == NC_OK) st = NC_FN(bias_act)(vis_act, 0, m, nv, bv, R, nv);
        if (st != NC_OK) return st;
        *recon_err = NC_TAG(rbm_sq_err)(m * nv, v0, R);
    }
    hs = cfg->persistent ? chain : HS;

    /* negative phase: k steps of block Gibbs sampling */
    for (t = 1; t <= k; t++) {
        st = NC_TAG(rbm_left)(&ws, m, nh, nv, hs, 1, w, Vn, PH, IH, NULL);
        if (st == NC_OK) st = NC_FN(bias_act)(vis_act, 0, m, nv, bv, Vn, nv);
        if (st != NC_OK) return st;
        if (t == 1 && !cfg->persistent && recon_err)
            *recon_err = NC_TAG(rbm_sq_err)(m * nv, v0, Vn);
        /* Bernoulli visibles are sampled (as scikit-learn does); Gaussian ones
         * keep their mean, the noise-free reconstruction Hinton's guide
         * recommends for learning */
        if (cfg->visible == NC_RBM_BERNOULLI)
            NC_TAG(rbm_bernoulli)(cfg->seed, base | (uint64_t)(2 * t - 1), m * nv, Vn);
        st = NC_TAG(rbm_left)(&ws, m, nv, nh, Vn, 0, w, Hn, PN, IN, &nnzn);
        if (st == NC_OK) st = NC_FN(bias_act)(NC_ACT_SIGMOID, 0, m, nh, bh, Hn, nh);
        if (st != NC_OK) return st;
        if (t < k) {
            memcpy(HS, Hn, m * nh * sizeof(real));
            NC_TAG(rbm_bernoulli)(cfg->seed, base | (uint64_t)(2 * t), m * nh, HS);
            hs = HS;
        }
    }
    if (cfg->persistent) {
        memcpy(chain, Hn, m * nh * sizeof(real));
        NC_TAG(rbm_bernoulli)(cfg->seed, base | (uint64_t)(2 * k), m * nh, chain);
    }

    /* update: grad W = (v0^T h0 - v-^T h-) / m */
    if (nnz0 != (size_t)-1 && nnzn != (size_t)-1 && rbm_bin_worth(nnz0 + nnzn, 2 * m, nv)) {
        /* v0 and v- binary: row r of the gradient is the sum of the rows of
         * h0 that v0's column r selects minus those of h- that v-'s selects,
         * and lands in W's (or vel's) row r */
        nc_rbm_binmm a;
        rbm_csc(m, nv, P0, I0, C0, J0);
        rbm_csc(m, nv, PN, IN, CN, JN);
        a.n = nh;
        a.ptr = C0;
        a.idx = J0;
        a.b = H;
        a.ldb = nh;
        a.ptr2 = CN;
        a.idx2 = JN;
        a.b2 = Hn;
        a.ldb2 = nh;
        a.alpha = scale;
        a.beta = mom != 0 ? mom : R_C(1) - lr * wd;
        a.c = mom != 0 ? vel_w : w;
        a.ldc = nh;
        rbm_binmm_run(&a, nv, nnz0 + nnzn, NC_TAG(rbm_binmm_pick)());
        if (mom != 0)
            for (i = 0; i < nv * nh; i++) {
                if (wd != 0) vel_w[i] -= lr * wd * w[i];
                w[i] += vel_w[i];
            }
    } else if (mom != 0) {
        /* vel = mom vel + lr (grad - wd W); W += vel, with grad = V^T H / m,
         * V = [v0; v-], H = [h0; -h-]: one product over 2m rows */
        for (i = 0; i < m * nh; i++) Hn[i] = -Hn[i];
        memcpy(V, v0, m * nv * sizeof(real));
        st = NC_FN(gemm)(1, 0, nv, nh, 2 * m, scale, V, nv, H, nh, mom, vel_w, nh);
        for (i = 0; i < m * nh; i++) Hn[i] = -Hn[i];
        if (st != NC_OK) return st;
        for (i = 0; i < nv * nh; i++) {
            if (wd != 0) vel_w[i] -= lr * wd * w[i];
            w[i] += vel_w[i];
        }
    } else {
        /* W = (1 - lr wd) W + lr grad, in the product's epilogue */
        for (i = 0; i < m * nh; i++) Hn[i] = -Hn[i];
        memcpy(V, v0, m * nv * sizeof(real));
        st = NC_FN(gemm)(1, 0, nv, nh, 2 * m, scale, V, nv, H, nh, R_C(1) - lr * wd, w, nh);
        for (i = 0; i < m * nh; i++) Hn[i] = -Hn[i];
        if (st != NC_OK) return st;
    }
    /* biases (no weight decay): column sums of the two halves, in row order */
    for (j = 0; j < nv; j++) R[j] = 0;
    for (i = 0; i < m; i++)
        for (j = 0; j < nv; j++) R[j] += v0[i * nv + j] - Vn[i * nv + j];
    for (j = 0; j < nv; j++) {
        if (mom != 0) {
            vel_bv[j] = mom * vel_bv[j] + scale * R[j];
            bv[j] += vel_bv[j];
        } else {
            bv[j] += scale * R[j];
        }
    }
    for (j = 0; j < nh; j++) HS[j] = 0;
    for (i = 0; i < m; i++)
        for (j = 0; j < nh; j++) HS[j] += H[i * nh + j] - Hn[i * nh + j];
    for (j = 0; j < nh; j++) {
        if (mom != 0) {
            vel_bh[j] = mom * vel_bh[j] + scale * HS[j];
            bh[j] += vel_bh[j];
        } else {
            bh[j] += scale * HS[j];
        }
    }
    return NC_OK;
}

nc_status NC_FN(rbm_gibbs)(nc_rbm_visible kind, uint64_t seed, uint64_t stream, size_t n_steps,
                           size_t m, size_t nv, size_t nh, const real *v, const real *w,
                           const real *bv, const real *bh, real *work, real *v_out)
{
    /* stream's low 16 bits number the draws: 2s for step s's hidden sample,
     * 2s + 1 for its visible one (n_steps < 2^15, checked) */
    size_t s;
    const real *in = v;
    nc_status st;
    if ((unsigned)kind > NC_RBM_GAUSSIAN || n_steps > NC_RBM_MAX_K) return NC_ERR_ARG;
    if (n_steps == 0) {
        if (v_out != v) memcpy(v_out, v, m * nv * sizeof(real));
        return NC_OK;
    }
    for (s = 0; s < n_steps; s++) {
        st = NC_TAG(rbm_hidden)(m, nv, nh, in, w, bh, work, nh);
        if (st != NC_OK) return st;
        NC_TAG(rbm_bernoulli)(seed, stream + 2 * s, m * nh, work);
        st = NC_TAG(rbm_visible)(kind, m, nv, nh, work, w, bv, v_out);
        if (st != NC_OK) return st;
        if (kind == NC_RBM_BERNOULLI)
            NC_TAG(rbm_bernoulli)(seed, stream + 2 * s + 1, m * nv, v_out);
        else
            NC_TAG(rbm_add_normal)(seed, stream + 2 * s + 1, m * nv, v_out);
        in = v_out;
    }
    return NC_OK;
}

nc_status NC_FN(rbm_free_energy)(nc_rbm_visible kind, size_t m, size_t nv, size_t nh,
                                 const real *v, const real *w, const real *bv, const real *bh,
                                 real *work, real *out)
{
    /* F(v) = visible term - sum_j softplus((v W + bh)_j); the visible term is
     * -v.bv (Bernoulli) or |v - bv|^2 / 2 (Gaussian) */
    size_t i, j;
    nc_status st;
    if ((unsigned)kind > NC_RBM_GAUSSIAN) return NC_ERR_ARG;
    if (m == 0) return NC_OK;
    st = NC_FN(gemm)(0, 0, m, nh, nv, R_C(1), v, nv, w, nh, R_C(0), work, nh);
    if (st != NC_OK) return st;
    st = NC_FN(bias_act)(NC_ACT_SOFTPLUS, 0, m, nh, bh, work, nh);
    if (st != NC_OK) return st;
    for (i = 0; i < m; i++) {
        const real *vi = v + i * nv, *si = work + i * nh;
        double f = 0;
        for (j = 0; j < nv; j++) {
            if (kind == NC_RBM_GAUSSIAN) {
                double d = (double)vi[j] - (double)bv[j];
                f += 0.5 * d * d;
            } else {
                f -= (double)vi[j] * (double)bv[j];
            }
        }
        for (j = 0; j < nh; j++) f -= (double)si[j];
        out[i] = (real)f;
    }
    return NC_OK;
}
