/* tests/c/neon_shim/arm_neon.h -- a lane-by-lane C emulation of the NEON
 * intrinsics csrc/gemm/kernel_neon.c uses, so that its logic (tiling, edges,
 * rounding) is tested on any machine; run.sh builds it where NEON is absent.
 * vfmaq lanes use fma()/fmaf(): the same single rounding as the hardware. */
#include <math.h>
typedef struct { float v[4]; } float32x4_t;
typedef struct { double v[2]; } float64x2_t;
static inline float32x4_t vdupq_n_f32(float x){float32x4_t r;for(int i=0;i<4;i++)r.v[i]=x;return r;}
static inline float32x4_t vld1q_f32(const float*p){float32x4_t r;for(int i=0;i<4;i++)r.v[i]=p[i];return r;}
static inline void vst1q_f32(float*p,float32x4_t a){for(int i=0;i<4;i++)p[i]=a.v[i];}
static inline float32x4_t vfmaq_f32(float32x4_t a,float32x4_t b,float32x4_t c){for(int i=0;i<4;i++)a.v[i]=fmaf(b.v[i],c.v[i],a.v[i]);return a;}
static inline float32x4_t vfmaq_n_f32(float32x4_t a,float32x4_t b,float n){for(int i=0;i<4;i++)a.v[i]=fmaf(b.v[i],n,a.v[i]);return a;}
static inline float32x4_t vmulq_n_f32(float32x4_t a,float n){for(int i=0;i<4;i++)a.v[i]=a.v[i]*n;return a;}
static inline float64x2_t vdupq_n_f64(double x){float64x2_t r;for(int i=0;i<2;i++)r.v[i]=x;return r;}
static inline float64x2_t vld1q_f64(const double*p){float64x2_t r;for(int i=0;i<2;i++)r.v[i]=p[i];return r;}
static inline void vst1q_f64(double*p,float64x2_t a){for(int i=0;i<2;i++)p[i]=a.v[i];}
static inline float64x2_t vfmaq_f64(float64x2_t a,float64x2_t b,float64x2_t c){for(int i=0;i<2;i++)a.v[i]=fma(b.v[i],c.v[i],a.v[i]);return a;}
static inline float64x2_t vfmaq_n_f64(float64x2_t a,float64x2_t b,double n){for(int i=0;i<2;i++)a.v[i]=fma(b.v[i],n,a.v[i]);return a;}
static inline float64x2_t vmulq_n_f64(float64x2_t a,double n){for(int i=0;i<2;i++)a.v[i]=a.v[i]*n;return a;}
