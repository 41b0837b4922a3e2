#ifndef CMALLOC_SHIM_H
#define CMALLOC_SHIM_H
#include <stdlib.h>

// glibc's malloc_trim(3): hands whole free pages inside the heap back to the system. Elsewhere
// (musl, Darwin) there is nothing to call, and the answer is "nothing released".
#if defined(__GLIBC__)
#include <malloc.h>
static inline int cmalloc_release_free_pages(void) {
    return malloc_trim(0);
}
#else
static inline int cmalloc_release_free_pages(void) {
    return 0;
}
#endif
#endif
