#ifndef CZLIB_SHIM_H
#define CZLIB_SHIM_H
#include <zlib.h>

// deflateInit/inflateInit are function-like macros, which Swift cannot import.
static inline int czlib_deflateInit(z_streamp strm, int level) {
    return deflateInit(strm, level);
}
static inline int czlib_inflateInit(z_streamp strm) {
    return inflateInit(strm);
}
#endif
