/* Messages for ms_err: see include/mikeysakke/errors.h. */
#include "mikeysakke/errors.h"

#include <stddef.h>

struct err_entry {
    const char *name;
    const char *text;
};

/* Indexed by code, so a missing entry is a compile-time gap the tests catch. */
static const struct err_entry err_table[MS_ERR__LAST] = {
    [MS_OK] = {"MS_OK", "success"},
    [MS_ERR_INVALID] = {"MS_ERR_INVALID", "value is not valid"},
    [MS_ERR_ARG] = {"MS_ERR_ARG", "invalid argument"},
    [MS_ERR_NOMEM] = {"MS_ERR_NOMEM", "out of memory"},
    [MS_ERR_RNG] = {"MS_ERR_RNG", "random number generator failed"},
    [MS_ERR_INTERNAL] = {"MS_ERR_INTERNAL", "internal error in a cryptographic library"},
    [MS_ERR_BAD_LENGTH] = {"MS_ERR_BAD_LENGTH", "encoded value has the wrong length"},
    [MS_ERR_BAD_ENCODING] = {"MS_ERR_BAD_ENCODING", "malformed encoding"},
    [MS_ERR_POINT_NOT_ON_CURVE] = {"MS_ERR_POINT_NOT_ON_CURVE", "point is not on the curve"},
    [MS_ERR_POINT_ORDER] = {"MS_ERR_POINT_ORDER", "point is infinity or not of order q"},
    [MS_ERR_SCALAR_RANGE] = {"MS_ERR_SCALAR_RANGE", "scalar is zero or out of range"},
    [MS_ERR_ID_RANGE] = {"MS_ERR_ID_RANGE", "SAKKE identifier is not an integer in [2, q-1]"},
    [MS_ERR_SSV_SIZE] = {"MS_ERR_SSV_SIZE", "SSV must be 16 octets"},
    [MS_ERR_RSK_INVALID] = {"MS_ERR_RSK_INVALID",
                            "RSK failed validation (RFC 6508 section 6.1.2)"},
    [MS_ERR_SSK_INVALID] = {"MS_ERR_SSK_INVALID",
                            "SSK/PVT failed validation (RFC 6507 section 5.1.2)"},
    [MS_ERR_SIGNATURE] = {"MS_ERR_SIGNATURE", "ECCSI signature does not verify"},
    [MS_ERR_DECAP_TEST] = {"MS_ERR_DECAP_TEST",
                           "SAKKE TEST check failed: encapsulated data not made for this "
                           "identifier and KMS"},
    [MS_ERR_KPAK_INVALID] = {"MS_ERR_KPAK_INVALID", "KPAK is not a valid P-256 point"},
    [MS_ERR_KMS_PUBLIC_INVALID] = {"MS_ERR_KMS_PUBLIC_INVALID",
                                   "SAKKE KMS public key Z is not a valid point of order q"},
    [MS_ERR_IO] = {"MS_ERR_IO", "file input/output failed"},
    [MS_ERR_KEYFILE_MODE] = {"MS_ERR_KEYFILE_MODE",
                             "secret key file is accessible to other users (chmod 600 it)"},
    [MS_ERR_USAGE] = {"MS_ERR_USAGE", "command-line usage error"},
};

const char *ms_strerror(ms_err err)
{
    if ((unsigned)err >= MS_ERR__LAST || err_table[err].text == NULL)
        return "unknown error";
    return err_table[err].text;
}

const char *ms_errname(ms_err err)
{
    if ((unsigned)err >= MS_ERR__LAST || err_table[err].name == NULL)
        return "MS_ERR_UNKNOWN";
    return err_table[err].name;
}
