/* status.c -- status texts and the engine version. */
#include "internal.h"

#define NC_STR2(x) #x
#define NC_STR(x) NC_STR2(x)

const char *nc_status_str(nc_status status)
{
    switch (status) {
    case NC_OK: return "ok";
    case NC_ERR_ARG: return "invalid argument";
    case NC_ERR_NOMEM: return "out of memory";
    case NC_ERR_UNSUPPORTED: return "not supported by this build or CPU";
    }
    return "unknown status";
}

const char *nc_version(void)
{
    return NC_STR(NC_VERSION_MAJOR) "." NC_STR(NC_VERSION_MINOR) "." NC_STR(NC_VERSION_PATCH);
}

const char *nc_compiler(void)
{
#if defined(__clang__)
    return "clang " __clang_version__;
#elif defined(__GNUC__)
    return "gcc " __VERSION__;
#elif defined(_MSC_VER)
    return "msvc " NC_STR(_MSC_FULL_VER);
#else
    return "unknown C compiler";
#endif
}
