#ifndef CZLIB_SHIM_H
#define CZLIB_SHIM_H
#include <zlib.h>

// deflateInit/inflateInit (and their *2 variants) are function-like macros, which Swift cannot import.
static inline int czlib_deflateInit(z_streamp strm, int level) {
    return deflateInit(strm, level);
}
static inline int czlib_inflateInit(z_streamp strm) {
    return inflateInit(strm);
}
static inline int czlib_deflateInit2(z_streamp strm, int level, int method, int windowBits, int memLevel,
                                     int strategy) {
    return deflateInit2(strm, level, method, windowBits, memLevel, strategy);
}
static inline int czlib_inflateInit2(z_streamp strm, int windowBits) {
    return inflateInit2(strm, windowBits);
}
#endif
