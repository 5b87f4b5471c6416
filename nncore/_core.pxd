# The C engine's public header, as Cython sees it. Mirrors csrc/nncore.h.
from libc.stdint cimport int64_t

cdef extern from "nncore.h" nogil:
    ctypedef enum nc_status:
        NC_OK
        NC_ERR_ARG
        NC_ERR_NOMEM
        NC_ERR_UNSUPPORTED

    ctypedef enum nc_act:
        NC_ACT_IDENTITY
        NC_ACT_STEP
        NC_ACT_SIGMOID
        NC_ACT_TANH
        NC_ACT_RELU
        NC_ACT_LEAKY_RELU
        NC_ACT_ELU
        NC_ACT_SOFTPLUS
        NC_ACT_SOFTMAX
        NC_ACT_LOG_SOFTMAX
        NC_ACT_COUNT_

    ctypedef enum nc_loss:
        NC_LOSS_MSE
        NC_LOSS_MAE
        NC_LOSS_BCE
        NC_LOSS_BCE_LOGITS
        NC_LOSS_CCE
        NC_LOSS_CCE_LOGITS
        NC_LOSS_COUNT_

    ctypedef enum nc_reduction:
        NC_REDUCE_MEAN
        NC_REDUCE_SUM
        NC_REDUCE_NONE

    ctypedef enum nc_isa:
        NC_ISA_REF
        NC_ISA_AVX2
        NC_ISA_AVX512
        NC_ISA_NEON
        NC_ISA_COUNT_

    nc_status nc_init()
    int nc_isa_available(nc_isa isa)
    nc_isa nc_isa_best()
    nc_status nc_set_isa(nc_isa isa)
    nc_isa nc_get_isa()
    const char *nc_isa_name(nc_isa isa)
    nc_status nc_set_num_threads(int n)
    int nc_get_num_threads()

    const char *nc_status_str(nc_status status)
    const char *nc_version()
    const char *nc_compiler()

    nc_status nc_sgemm(int trans_a, int trans_b, size_t m, size_t n, size_t k,
                       float alpha, const float *a, size_t lda, const float *b, size_t ldb,
                       float beta, float *c, size_t ldc)
    nc_status nc_dgemm(int trans_a, int trans_b, size_t m, size_t n, size_t k,
                       double alpha, const double *a, size_t lda, const double *b, size_t ldb,
                       double beta, double *c, size_t ldc)

    nc_status nc_sact_forward(nc_act act, float param, size_t rows, size_t cols,
                              const float *x, float *y)
    nc_status nc_dact_forward(nc_act act, double param, size_t rows, size_t cols,
                              const double *x, double *y)
    nc_status nc_sact_backward(nc_act act, float param, size_t rows, size_t cols,
                               const float *y, const float *dy, float *dx)
    nc_status nc_dact_backward(nc_act act, double param, size_t rows, size_t cols,
                               const double *y, const double *dy, double *dx)

    nc_status nc_sdense_forward(size_t m, size_t k, size_t n, const float *x, const float *w,
                                const float *b, nc_act act, float param, float *y)
    nc_status nc_ddense_forward(size_t m, size_t k, size_t n, const double *x, const double *w,
                                const double *b, nc_act act, double param, double *y)
    nc_status nc_sdense_backward(size_t m, size_t k, size_t n, const float *x, const float *w,
                                 const float *dz, float *dx, float *dw, float *db, float beta)
    nc_status nc_ddense_backward(size_t m, size_t k, size_t n, const double *x, const double *w,
                                 const double *dz, double *dx, double *dw, double *db, double beta)

    nc_status nc_sloss(nc_loss loss, nc_reduction reduction, size_t n, size_t k,
                       const float *t, const float *p, double *total, float *per_sample,
                       float *grad)
    nc_status nc_dloss(nc_loss loss, nc_reduction reduction, size_t n, size_t k,
                       const double *t, const double *p, double *total, double *per_sample,
                       double *grad)
    nc_status nc_sloss_sparse(nc_loss loss, nc_reduction reduction, size_t n, size_t k,
                              const int64_t *labels, const float *p, double *total,
                              float *per_sample, float *grad)
    nc_status nc_dloss_sparse(nc_loss loss, nc_reduction reduction, size_t n, size_t k,
                              const int64_t *labels, const double *p, double *total,
                              double *per_sample, double *grad)

    nc_status nc_saccuracy_argmax(size_t n, size_t k, const float *t, const float *p,
                                  size_t *correct)
    nc_status nc_daccuracy_argmax(size_t n, size_t k, const double *t, const double *p,
                                  size_t *correct)
    nc_status nc_saccuracy_sparse(size_t n, size_t k, const int64_t *labels, const float *p,
                                  size_t *correct)
    nc_status nc_daccuracy_sparse(size_t n, size_t k, const int64_t *labels, const double *p,
                                  size_t *correct)
    nc_status nc_saccuracy_threshold(size_t count, const float *t, const float *p,
                                     float threshold, size_t *correct)
    nc_status nc_daccuracy_threshold(size_t count, const double *t, const double *p,
                                     double threshold, size_t *correct)

# ---- optimizers and random numbers (csrc/optim.c, csrc/rng.c) ----
from libc.stdint cimport uint32_t, uint64_t

cdef extern from "nncore.h" nogil:
    ctypedef enum nc_optim_kind:
        NC_OPTIM_SGD
        NC_OPTIM_ADAGRAD
        NC_OPTIM_ADADELTA
        NC_OPTIM_RMSPROP
        NC_OPTIM_ADAM
        NC_OPTIM_ADAMW
        NC_OPTIM_NADAM
        NC_OPTIM_COUNT_

    ctypedef struct nc_optim_config:
        nc_optim_kind kind
        double learning_rate
        double momentum
        double rho
        double beta_1
        double beta_2
        double epsilon
        double weight_decay
        double initial_accumulator_value
        double momentum_decay
        double clipnorm
        double clipvalue
        int nesterov
        int amsgrad
        int epsilon_hat
        int centered

    void nc_optim_config_default(nc_optim_config *cfg, nc_optim_kind kind)
    size_t nc_optim_state_slots(const nc_optim_config *cfg)
    size_t nc_optim_state_size(const nc_optim_config *cfg, size_t n)
    nc_status nc_soptim_state_init(const nc_optim_config *cfg, size_t n, float *state)
    nc_status nc_doptim_state_init(const nc_optim_config *cfg, size_t n, double *state)
    nc_status nc_soptim_step(const nc_optim_config *cfg, size_t n, float *params,
                             const float *grads, float *state, int64_t step)
    nc_status nc_doptim_step(const nc_optim_config *cfg, size_t n, double *params,
                             const double *grads, double *state, int64_t step)
    double nc_ssum_squares(size_t n, const float *x)
    double nc_dsum_squares(size_t n, const double *x)
    ctypedef struct nc_penalty_seg:
        size_t offset
        size_t n
        double l1
        double l2
    nc_status nc_soptim_step_penalized(const nc_optim_config *cfg, size_t n, float *params,
                                       const float *grads, float *state, int64_t step,
                                       size_t n_seg, const nc_penalty_seg *seg, double *penalty)
    nc_status nc_doptim_step_penalized(const nc_optim_config *cfg, size_t n, double *params,
                                       const double *grads, double *state, int64_t step,
                                       size_t n_seg, const nc_penalty_seg *seg, double *penalty)

    void nc_philox4x32_10(const uint32_t *ctr, const uint32_t *key, uint32_t *out)
    nc_status nc_srand_uniform(uint64_t seed, uint64_t stream, uint64_t offset, size_t n,
                               float low, float high, float *out)
    nc_status nc_drand_uniform(uint64_t seed, uint64_t stream, uint64_t offset, size_t n,
                               double low, double high, double *out)
    nc_status nc_srand_normal(uint64_t seed, uint64_t stream, uint64_t offset, size_t n,
                              float mean, float std, float *out)
    nc_status nc_drand_normal(uint64_t seed, uint64_t stream, uint64_t offset, size_t n,
                              double mean, double std, double *out)
    nc_status nc_srand_truncated_normal(uint64_t seed, uint64_t stream, uint64_t offset,
                                        size_t n, float mean, float std, float *out)
    nc_status nc_drand_truncated_normal(uint64_t seed, uint64_t stream, uint64_t offset,
                                        size_t n, double mean, double std, double *out)
    nc_status nc_sdropout_mask(uint64_t seed, uint64_t stream, uint64_t offset, size_t n,
                               float keep, float *mask)
    nc_status nc_ddropout_mask(uint64_t seed, uint64_t stream, uint64_t offset, size_t n,
                               double keep, double *mask)
    nc_status nc_rand_permutation(uint64_t seed, uint64_t stream, size_t n, int64_t *out)

# ---- inference plans (csrc/plan_impl.h)
cdef extern from "nncore.h" nogil:
    ctypedef enum nc_plan_op:
        NC_PLAN_DENSE
        NC_PLAN_ACTIVATION

    ctypedef struct nc_plan_step_f32:
        nc_plan_op op
        size_t n_in
        size_t n_out
        float *w  # const in C; Cython cannot assign const struct members cleanly
        float *b
        nc_act act
        float param

    ctypedef struct nc_plan_step_f64:
        nc_plan_op op
        size_t n_in
        size_t n_out
        double *w
        double *b
        nc_act act
        double param

    nc_status nc_splan_forward(size_t n_steps, const nc_plan_step_f32 *steps, size_t m,
                               const float *x, float *work, float *y)
    nc_status nc_dplan_forward(size_t n_steps, const nc_plan_step_f64 *steps, size_t m,
                               const double *x, double *work, double *y)
    nc_status nc_splan_train_step(size_t n_steps, const nc_plan_step_f32 *steps, size_t m,
                                  const float *x, int fuse_last, nc_loss loss,
                                  nc_reduction reduction, const float *t, const int64_t *labels,
                                  float **outputs, float **grad_w, float **grad_b,
                                  float *work, double *total)
    nc_status nc_dplan_train_step(size_t n_steps, const nc_plan_step_f64 *steps, size_t m,
                                  const double *x, int fuse_last, nc_loss loss,
                                  nc_reduction reduction, const double *t, const int64_t *labels,
                                  double **outputs, double **grad_w, double **grad_b,
                                  double *work, double *total)


# ---- vmath (private hook for tests and benchmarks; csrc/vmath.h) ----
cdef extern from "vmath.h" nogil:
    void nc_vexp_f32(size_t n, const float *x, float *y)
    void nc_vexpm1_f32(size_t n, const float *x, float *y)
    void nc_vlog_f32(size_t n, const float *x, float *y)
    void nc_vtanh_f32(size_t n, const float *x, float *y)
    void nc_vsigmoid_f32(size_t n, const float *x, float *y)
    void nc_vsoftplus_f32(size_t n, const float *x, float *y)
# ---- end vmath ----

# ---- perceptron (csrc/perceptron_impl.h) ----
from libc.stdint cimport uint8_t
cdef extern from "nncore.h" nogil:
    nc_status nc_sperceptron_epoch(size_t n, size_t d, size_t k, const float *x,
                                   const float *y, const int64_t *order, float lr,
                                   float *w, float *b, size_t *mistakes)
    nc_status nc_dperceptron_epoch(size_t n, size_t d, size_t k, const double *x,
                                   const double *y, const int64_t *order, double lr,
                                   double *w, double *b, size_t *mistakes)
    nc_status nc_sperceptron_epoch_u8(size_t n, size_t d, size_t k, const uint8_t *x,
                                      const float *y, const int64_t *order, float lr, float *w,
                                      float *b, float *xrow, size_t *mistakes)
    nc_status nc_dperceptron_epoch_u8(size_t n, size_t d, size_t k, const uint8_t *x,
                                      const double *y, const int64_t *order, double lr,
                                      double *w, double *b, double *xrow, size_t *mistakes)
# ---- end perceptron ----

# ---- weight penalties (csrc/penalty_impl.h, compiled with csrc/optim*.c)
cdef extern from "nncore.h" nogil:
    nc_status nc_spenalty(size_t n, const float *w, float *g, double l1, double l2,
                          double *penalty)
    nc_status nc_dpenalty(size_t n, const double *w, double *g, double l1, double l2,
                          double *penalty)


# ---- convolution and pooling (csrc/conv_impl.h, csrc/pool_impl.h) ----
from libc.stdint cimport int32_t

cdef extern from "nncore.h" nogil:
    ctypedef struct nc_conv2d_geom:
        size_t n, h, w, c
        size_t kh, kw, f
        size_t oh, ow
        size_t stride_h, stride_w
        size_t dil_h, dil_w
        size_t pad_top, pad_left

    size_t nc_conv2d_cols_size(const nc_conv2d_geom *g)
    nc_status nc_sconv2d_forward(const nc_conv2d_geom *g, const float *x, const float *w,
                                 const float *b, nc_act act, float param, float *y, float *cols)
    nc_status nc_dconv2d_forward(const nc_conv2d_geom *g, const double *x, const double *w,
                                 const double *b, nc_act act, double param, double *y,
                                 double *cols)
    nc_status nc_sconv2d_backward(const nc_conv2d_geom *g, const float *cols, const float *w,
                                  const float *dz, float *dx, float *dw, float *db, float *dcols)
    nc_status nc_dconv2d_backward(const nc_conv2d_geom *g, const double *cols, const double *w,
                                  const double *dz, double *dx, double *dw, double *db,
                                  double *dcols)

    ctypedef struct nc_pool2d_geom:
        size_t n, h, w, c
        size_t ph, pw, sh, sw
        size_t pad_top, pad_left
        size_t oh, ow

    nc_status nc_smaxpool2d_forward(const nc_pool2d_geom *g, const float *x, float *y,
                                    int32_t *argmax)
    nc_status nc_dmaxpool2d_forward(const nc_pool2d_geom *g, const double *x, double *y,
                                    int32_t *argmax)
    nc_status nc_smaxpool2d_backward(const nc_pool2d_geom *g, const int32_t *argmax,
                                     const float *dy, float *dx)
    nc_status nc_dmaxpool2d_backward(const nc_pool2d_geom *g, const int32_t *argmax,
                                     const double *dy, double *dx)
    nc_status nc_savgpool2d_forward(const nc_pool2d_geom *g, const float *x, float *y)
    nc_status nc_davgpool2d_forward(const nc_pool2d_geom *g, const double *x, double *y)
    nc_status nc_savgpool2d_backward(const nc_pool2d_geom *g, const float *dy, float *dx)
    nc_status nc_davgpool2d_backward(const nc_pool2d_geom *g, const double *dy, double *dx)
# ---- end convolution and pooling ----


# ---- recurrent layers (csrc/rnn.c) ----
from libc.stdint cimport uint8_t

cdef extern from "nncore.h" nogil:
    ctypedef enum nc_rnn_cell:
        NC_RNN_SIMPLE
        NC_RNN_LSTM
        NC_RNN_GRU
        NC_RNN_GRU_RESET_BEFORE
        NC_RNN_COUNT_

    ctypedef struct nc_rnn_desc:
        nc_rnn_cell cell
        size_t batch
        size_t steps
        size_t inputs
        size_t units
        nc_act act
        double param
        int go_backwards

    size_t nc_rnn_gates(nc_rnn_cell cell)
    size_t nc_rnn_cache_size(const nc_rnn_desc *d)
    size_t nc_rnn_work_size(const nc_rnn_desc *d)
    nc_status nc_srnn_forward(const nc_rnn_desc *d, const float *x, const float *kernel,
                              const float *recurrent_kernel, const float *bias,
                              const float *h0, const float *c0, const uint8_t *mask,
                              const float *rmask, float *y_seq, float *h_last, float *c_last,
                              float *cache)
    nc_status nc_drnn_forward(const nc_rnn_desc *d, const double *x, const double *kernel,
                              const double *recurrent_kernel, const double *bias,
                              const double *h0, const double *c0, const uint8_t *mask,
                              const double *rmask, double *y_seq, double *h_last,
                              double *c_last, double *cache)
    nc_status nc_srnn_backward(const nc_rnn_desc *d, const float *x, const float *kernel,
                               const float *recurrent_kernel, const uint8_t *mask,
                               const float *rmask, const float *cache, const float *dy_seq,
                               const float *dh_last, const float *dc_last, float *dx,
                               float *dkernel, float *drecurrent, float *dbias, float *dh0,
                               float *dc0, float *work)
    nc_status nc_drnn_backward(const nc_rnn_desc *d, const double *x, const double *kernel,
                               const double *recurrent_kernel, const uint8_t *mask,
                               const double *rmask, const double *cache, const double *dy_seq,
                               const double *dh_last, const double *dc_last, double *dx,
                               double *dkernel, double *drecurrent, double *dbias,
                               double *dh0, double *dc0, double *work)
# ---- end recurrent layers ----


# ---- restricted Boltzmann machines (csrc/rbm_impl.h) ----
cdef extern from "nncore.h" nogil:
    ctypedef enum nc_rbm_visible:
        NC_RBM_BERNOULLI
        NC_RBM_GAUSSIAN

    int NC_RBM_MAX_K

    ctypedef struct nc_rbm_config:
        nc_rbm_visible visible
        int cd_k
        int persistent
        double learning_rate
        double momentum
        double weight_decay
        uint64_t seed

    size_t nc_rbm_work_size(size_t m, size_t n_visible, size_t n_hidden)
    nc_status nc_srbm_update(const nc_rbm_config *cfg, uint64_t step, size_t m, size_t n_visible,
                             size_t n_hidden, const float *v0, float *w, float *bv, float *bh,
                             float *vel_w, float *vel_bv, float *vel_bh, float *chain,
                             float *work, double *recon_err)
    nc_status nc_drbm_update(const nc_rbm_config *cfg, uint64_t step, size_t m, size_t n_visible,
                             size_t n_hidden, const double *v0, double *w, double *bv, double *bh,
                             double *vel_w, double *vel_bv, double *vel_bh, double *chain,
                             double *work, double *recon_err)
    nc_status nc_srbm_gibbs(nc_rbm_visible visible, uint64_t seed, uint64_t stream, size_t n_steps,
                            size_t m, size_t n_visible, size_t n_hidden, const float *v,
                            const float *w, const float *bv, const float *bh, float *work,
                            float *v_out)
    nc_status nc_drbm_gibbs(nc_rbm_visible visible, uint64_t seed, uint64_t stream, size_t n_steps,
                            size_t m, size_t n_visible, size_t n_hidden, const double *v,
                            const double *w, const double *bv, const double *bh, double *work,
                            double *v_out)
    nc_status nc_srbm_free_energy(nc_rbm_visible visible, size_t m, size_t n_visible,
                                  size_t n_hidden, const float *v, const float *w, const float *bv,
                                  const float *bh, float *work, float *out)
    nc_status nc_drbm_free_energy(nc_rbm_visible visible, size_t m, size_t n_visible,
                                  size_t n_hidden, const double *v, const double *w,
                                  const double *bv, const double *bh, double *work, double *out)
# ---- end rbm ----


# ---- batch normalisation (csrc/norm_impl.h) ----
cdef extern from "nncore.h" nogil:
    nc_status nc_sbatchnorm_forward(size_t n, size_t c, const float *x, const float *gamma,
                                    const float *beta, float *moving_mean, float *moving_var,
                                    double momentum, double eps, int training, float *mean,
                                    float *inv_std, float *xhat, float *y)
    nc_status nc_dbatchnorm_forward(size_t n, size_t c, const double *x, const double *gamma,
                                    const double *beta, double *moving_mean, double *moving_var,
                                    double momentum, double eps, int training, double *mean,
                                    double *inv_std, double *xhat, double *y)
    nc_status nc_sbatchnorm_backward(size_t n, size_t c, const float *dy, const float *xhat,
                                     const float *inv_std, const float *gamma, int training,
                                     float *dgamma, float *dbeta, float *dx)
    nc_status nc_dbatchnorm_backward(size_t n, size_t c, const double *dy, const double *xhat,
                                     const double *inv_std, const double *gamma, int training,
                                     double *dgamma, double *dbeta, double *dx)


# ---- training plans: work size and whole epochs (branch s2-train) ----
cdef extern from "nncore.h" nogil:
    size_t nc_splan_train_work(size_t n_steps, const nc_plan_step_f32 *steps, size_t m)
    size_t nc_dplan_train_work(size_t n_steps, const nc_plan_step_f64 *steps, size_t m)
    ctypedef enum nc_plan_metric:
        NC_METRIC_ACC_SPARSE
        NC_METRIC_ACC_ARGMAX
        NC_METRIC_ACC_THRESHOLD
    ctypedef struct nc_plan_fit:
        size_t n, batch
        const void *x
        int x_u8
        const int64_t *labels
        const void *t
        const int64_t *order
        size_t first, count
        int fuse_last
        nc_loss loss
        nc_reduction reduction
        nc_act out_act
        double out_param
        const nc_optim_config *opt
        const double *lr
        size_t n_params
        void *params
        const void *grads
        void *state
        int64_t step
        size_t n_pen
        void **pen_w
        void **pen_g
        const size_t *pen_n
        const double *pen_l1
        const double *pen_l2
        const int *pen_end
        size_t n_metrics
        const int *metric
        const double *threshold
        void **outputs
        void **grad_w
        void **grad_b
        void *work
        void *xb
        void *yb
        void *probs
        double loss_sum
        double *metric_sum
        double *batch_loss
        size_t done
    nc_status nc_splan_fit(size_t n_steps, const nc_plan_step_f32 *steps, nc_plan_fit *fit)
    nc_status nc_dplan_fit(size_t n_steps, const nc_plan_step_f64 *steps, nc_plan_fit *fit)


# ---- rbm binary-left products (csrc/rbm_bin.h) ----
cdef extern from "rbm_bin.h" nogil:
    int nc_rbm_set_bin_mode(int mode)
    size_t nc_rbm_bin_count()
# ---- end rbm binary ----
