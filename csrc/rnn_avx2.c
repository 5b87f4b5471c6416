/*
 * rnn_avx2.c -- the recurrent layers' fused per-step passes compiled with
 * AVX2: the same loops as the portable build, 8 floats a vector instead of
 * SSE2's 4 (rnn_isa.h).
 */
#include "internal.h"

#if defined(__x86_64__) || defined(_M_X64)
#define NC_RNN_ISA avx2
#include "rnn_isa.h"
#else
typedef int nc_rnn_avx2_empty_; /* ISO C forbids an empty translation unit */
#endif
