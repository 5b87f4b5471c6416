/*
 * optim.c -- one optimizer step over a model's flat parameter buffer.
 * Instantiates optim_impl.h for float (nc_s...) and double (nc_d...); the
 * precision-free parts (defaults, state sizes) live here. The same loops are
 * compiled for AVX2 and AVX-512 in optim_avx2.c / optim_avx512.c.
 */
#include <stdlib.h>
#include "internal.h"

#define NC_OPTIM_ISA ref

/* optim_avx2.c and optim_avx512.c exist in x86 builds only (setup.py). */
#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__) || defined(_M_IX86)
#define NC_OPTIM_X86 1
#else
#define NC_OPTIM_X86 0
#endif

void nc_optim_config_default(nc_optim_config *cfg, nc_optim_kind kind)
{
    cfg->kind = kind;
    cfg->learning_rate = kind == NC_OPTIM_SGD ? 0.01 : 0.001;
    cfg->momentum = 0.0;
    cfg->rho = kind == NC_OPTIM_ADADELTA ? 0.95 : 0.9;
    cfg->beta_1 = 0.9;
    cfg->beta_2 = 0.999;
    cfg->epsilon = 1e-7;
    cfg->weight_decay = kind == NC_OPTIM_ADAMW ? 0.004 : 0.0;
    cfg->initial_accumulator_value = 0.1;
    cfg->momentum_decay = 0.004;
    cfg->clipnorm = 0.0;
    cfg->clipvalue = 0.0;
    cfg->nesterov = 0;
    cfg->amsgrad = 0;
    cfg->epsilon_hat = 0;
    cfg->centered = 0;
}

size_t nc_optim_state_slots(const nc_optim_config *cfg)
{
    switch (cfg->kind) {
    case NC_OPTIM_SGD: return cfg->momentum != 0 ? 1 : 0;
    case NC_OPTIM_ADAGRAD: return 1;
    case NC_OPTIM_ADADELTA: return 2;
    case NC_OPTIM_RMSPROP: return 1 + (cfg->centered != 0) + (cfg->momentum > 0);
    case NC_OPTIM_ADAM:
    case NC_OPTIM_ADAMW: return 2 + (cfg->amsgrad != 0);
    case NC_OPTIM_NADAM: return 2;
    default: return 0;
    }
}

size_t nc_optim_state_size(const nc_optim_config *cfg, size_t n)
{
    return nc_optim_state_slots(cfg) * n + (cfg->kind == NC_OPTIM_NADAM ? 1 : 0);
}

#define NC_REAL_BITS 32
#include "real.h"
#include "optim_impl.h"
#undef NC_REAL_BITS

#define NC_REAL_BITS 64
#include "real.h"
#include "optim_impl.h"
#undef NC_REAL_BITS
