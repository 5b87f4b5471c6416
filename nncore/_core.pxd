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

# ---- vmath (private hook for tests and benchmarks; csrc/vmath.h) ----
cdef extern from "vmath.h" nogil:
    void nc_vexp_f32(size_t n, const float *x, float *y)
    void nc_vexpm1_f32(size_t n, const float *x, float *y)
    void nc_vlog_f32(size_t n, const float *x, float *y)
    void nc_vtanh_f32(size_t n, const float *x, float *y)
    void nc_vsigmoid_f32(size_t n, const float *x, float *y)
    void nc_vsoftplus_f32(size_t n, const float *x, float *y)
# ---- end vmath ----
