#ifndef CFILEIO_SHIM_H
#define CFILEIO_SHIM_H
// O_DIRECT is a GNU extension of <fcntl.h>, which Swift's Glibc module does not define.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>

// The open(2) flag for direct I/O, or 0 where the platform has none.
static inline int cfileio_direct_flag(void) {
#ifdef O_DIRECT
    return O_DIRECT;
#else
    return 0;
#endif
}
#endif
