/* Must not compile: a NULL where crypto.h's MS_NONNULL forbids one (build/nonnull_annotations
 * compiles it with and without MS_NO_NONNULL, and only the latter may succeed). */
#include "mikeysakke/crypto.h"

int nonnull_misuse(void);
int nonnull_misuse(void)
{
    return (int)ms_sakke_kms_new(NULL, NULL);
}
