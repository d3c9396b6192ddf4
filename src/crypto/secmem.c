#include "secmem.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "mikeysakke/crypto.h"

void ms_wipe(void *p, size_t len)
{
    if (p == NULL || len == 0)
        return;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 25))
    explicit_bzero(p, len);
#else
    volatile unsigned char *v = p;
    while (len--)
        *v++ = 0;
#endif
}

void *ms_secure_alloc(size_t len)
{
    if (len == 0)
        len = 1;
    void *p = calloc(1, len);
    if (p == NULL)
        return NULL;
    (void)mlock(p, len);
#ifdef MADV_DONTDUMP
    /* madvise wants page alignment; calloc blocks of table size usually are not, so
     * this only takes effect for page-aligned blocks. Core dumps are also disabled
     * process-wide by the tools that hold master secrets. */
    (void)madvise(p, len, MADV_DONTDUMP);
#endif
    return p;
}

void ms_secure_free(void *p, size_t len)
{
    if (p == NULL)
        return;
    ms_wipe(p, len);
    (void)munlock(p, len);
    free(p);
}
