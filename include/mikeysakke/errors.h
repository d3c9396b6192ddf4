/*
 * mikeysakke error codes.
 *
 * One enum for the whole library. The numbers are stable: a code is never renumbered
 * or reused, new codes are only appended (before MS_ERR__LAST). The `mikeysakke`
 * command uses the code as its exit status, so scripts can rely on them too
 * (docs/cli.md lists them).
 */
#ifndef MIKEYSAKKE_ERRORS_H
#define MIKEYSAKKE_ERRORS_H

#ifdef __cplusplus
extern "C" {
#endif

#ifndef MS_API
#if defined(__GNUC__) || defined(__clang__)
#define MS_API __attribute__((visibility("default")))
#else
#define MS_API
#endif
#endif

typedef enum ms_err {
    MS_OK = 0,
    /* 1 is kept for "verification said no" so the CLI's exit 1 means "invalid". */
    MS_ERR_INVALID = 1,            /* generic: the checked value is not valid */
    MS_ERR_ARG = 2,                /* bad argument (NULL, wrong length, bad usage) */
    MS_ERR_NOMEM = 3,              /* out of memory (or locked memory) */
    MS_ERR_RNG = 4,                /* the random number generator failed */
    MS_ERR_INTERNAL = 5,           /* a library we use failed unexpectedly */
    MS_ERR_BAD_LENGTH = 6,         /* an encoded value has the wrong length */
    MS_ERR_BAD_ENCODING = 7,       /* malformed encoding (point prefix, hex digit) */
    MS_ERR_POINT_NOT_ON_CURVE = 8, /* a point does not satisfy the curve equation */
    MS_ERR_POINT_ORDER = 9,        /* a point is infinity or not of order q */
    MS_ERR_SCALAR_RANGE = 10,      /* a scalar is zero or not below the group order */
    MS_ERR_ID_RANGE = 11,          /* SAKKE identifier not an integer in [2, q-1] */
    MS_ERR_SSV_SIZE = 12,          /* SSV is not n/8 = 16 octets */
    MS_ERR_RSK_INVALID = 13,       /* RSK fails <[a]P + Z, K> == g (RFC 6508 6.1.2) */
    MS_ERR_SSK_INVALID = 14,       /* SSK fails KPAK == [SSK]G - [HS]PVT (RFC 6507 5.1.2) */
    MS_ERR_SIGNATURE = 15,         /* ECCSI signature does not verify */
    MS_ERR_DECAP_TEST = 16,        /* SAKKE TEST check failed: R != [r]([b]P + Z) */
    MS_ERR_KPAK_INVALID = 17,      /* KPAK not a valid P-256 point */
    MS_ERR_KMS_PUBLIC_INVALID = 18,/* SAKKE Z not a valid point of order q */
    MS_ERR_IO = 19,                /* reading or writing a file failed */
    MS_ERR_KEYFILE_MODE = 20,      /* a secret key file is readable by other users */
    MS_ERR_USAGE = 21,             /* command-line usage error */
    /* MIKEY layer (include/mikeysakke/mikey.h); an ms_mikey_diag says where. */
    MS_ERR_BUFFER_TOO_SMALL = 22,  /* the caller's output buffer is too small */
    MS_ERR_MIKEY_MALFORMED = 23,   /* MIKEY message malformed (payload and offset in diag) */
    MS_ERR_MIKEY_UNSUPPORTED = 24, /* payload, algorithm, parameter set or scheme unsupported */
    MS_ERR_MIKEY_VERSION = 25,     /* HDR version is not 1 */
    MS_ERR_MIKEY_DATA_TYPE = 26,   /* HDR data type is not 26 (SAKKE msg) */
    MS_ERR_MIKEY_V_BIT = 27,       /* HDR V bit set in a SAKKE message */
    MS_ERR_MIKEY_TIMESTAMP = 28,   /* T outside the allowed clock skew window */
    MS_ERR_MIKEY_REPLAY = 29,      /* message already seen (replay cache) */
    MS_ERR_MIKEY_INITIATOR = 30,   /* initiator identity differs from what was expected */
    MS_ERR_MIKEY_RESPONDER = 31,   /* message not addressed to this user */
    MS_ERR_MIKEY_UNKNOWN_KMS = 32, /* KMS not known or not trusted */
    MS_ERR_MIKEY_KEY_PERIOD = 33,  /* no keys held for the key period of T */
    MS_ERR_MIKEY_MISSING_PAYLOAD = 34, /* a payload the profile requires is absent */
    MS_ERR_MIKEY_KEY_PARAMS = 35,  /* key parameters extension fails or forbids use */
    MS_ERR_MIKEY_KEY_ID = 36,      /* CSB-ID / GUK-ID / purpose tag inconsistent */
    MS_ERR_SDP = 37,               /* malformed SDP a=key-mgmt attribute */
    MS_ERR_IDENTITY = 38,          /* malformed identity (URI, tel URI) or identifier */
    MS_ERR__LAST                   /* never use: one past the last code */
} ms_err;

/* A short English sentence for `err`; never NULL, "unknown error" for unknown codes. */
MS_API const char *ms_strerror(ms_err err);

/* The symbolic name of `err` ("MS_ERR_SIGNATURE"); "MS_ERR_UNKNOWN" for unknown codes. */
MS_API const char *ms_errname(ms_err err);

#ifdef __cplusplus
}
#endif
#endif
