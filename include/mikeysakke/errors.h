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
    /* KMS and client layers (kms.h, client.h). */
    MS_ERR_SEALED = 39,                  /* the KMS is sealed: unseal it first */
    MS_ERR_PASSPHRASE = 40,              /* wrong passphrase */
    MS_ERR_SHARE = 41,                   /* custodian share is corrupted, duplicated or from another KMS */
    MS_ERR_PKCS11 = 42,                  /* the PKCS#11 token failed or refused (module, token, PIN or key) */
    MS_ERR_SEALED_FILE = 43,             /* sealed master secrets file is corrupted or cannot be opened */
    MS_ERR_STORE = 44,                   /* the KMS database failed */
    MS_ERR_EXISTS = 45,                  /* already exists */
    MS_ERR_USER_UNKNOWN = 46,            /* unknown user */
    MS_ERR_USER_SUSPENDED = 47,          /* user is suspended */
    MS_ERR_DEVICE_UNKNOWN = 48,          /* unknown device */
    MS_ERR_PERIOD = 49,                  /* key period is expired, not yet open, or not at a boundary */
    MS_ERR_XML = 50,                     /* malformed, oversized or invalid XML */
    MS_ERR_PACKAGE_SIGNATURE = 51,       /* key package signature (HMAC-SHA256 under the InK) does not verify */
    MS_ERR_PACKAGE_DECRYPT = 52,         /* key package cannot be decrypted with this device's transport key */
    MS_ERR_PACKAGE_DEVICE = 53,          /* key package is for another user or device */
    MS_ERR_PACKAGE_REPLAY = 54,          /* key package is older than or the same as one already imported */
    MS_ERR_AUDITOR = 55,                 /* auditor approval missing, wrong, or too few approvals */
    MS_ERR_AUDIT_SCOPE = 56,             /* an extraction must name exactly one user and one key period */
    MS_ERR_AUDIT_LOG = 57,               /* the audit log cannot be written: request refused */
    MS_ERR_AUDIT_CHAIN = 58,             /* the audit log was altered, truncated or reordered */
    MS_ERR_KEYSTORE = 59,                /* client keystore is corrupted, locked or cannot be written */
    MS_ERR_NO_KEYS = 60,                 /* no keys are held for this identity and key period */
    /* Network (kms serve, dist serve, user fetch). */
    MS_ERR_UNREACHABLE = 61,             /* the server cannot be reached */
    MS_ERR_TLS = 62,                     /* TLS failed: certificate not trusted, wrong name or handshake error */
    MS_ERR_UNAUTHORISED = 63,            /* the server refused our credentials, or the client presented none */
    MS_ERR_RATE_LIMITED = 64,            /* too many requests: rate-limited */
    MS_ERR_HTTP = 65,                    /* the server answered with an unexpected HTTP status or error element */
    MS_ERR_CONFIG = 66,                  /* the configuration file is malformed or names a missing setting */
    /* Calls (SIP signalling, SRTP media, captures). */
    MS_ERR_SRTP_AUTH = 67,   /* SRTP or SRTCP packet failed authentication (tampered, or another key) */
    MS_ERR_SRTP_REPLAY = 68, /* SRTP or SRTCP packet is a replay or too old */
    MS_ERR_SIP = 69,         /* SIP signalling failed: transport, registration or an unexpected response */
    MS_ERR_CALL_REFUSED = 70, /* the other side refused the call (SIP status and Warning say why) */
    MS_ERR_MEDIA = 71,       /* audio file, codec or sound card failed */
    MS_ERR_CAPTURE = 72,     /* capture file unreadable or malformed */
    MS_ERR_NOT_SECURE = 73,  /* offer without MIKEY-SAKKE key management or with unencrypted media: refused */
    /* Voicemail store. */
    MS_ERR_QUOTA = 74,       /* mailbox full, or a message over its duration or size limit */
    /* KMS. */
    MS_ERR_SETTINGS_CHANGED = 75, /* the KMS settings in kms.db were changed outside the KMS */
    /* Groups. */
    MS_ERR_GROUP = 76,       /* unknown group or member, or a group message that does not fit its roster */
    MS_ERR_ROLE = 77,        /* request not signed by a key of a role allowed to do this */
    MS_ERR_REQUEST_STALE = 78, /* signed request expired, out of time, or its nonce was already used */
    MS_ERR_APPROVAL = 79,    /* a second device needs the approval of enrolment officers or the user's device */
    /* Threshold KMS transport (messages between the servers). */
    MS_ERR_DECRYPT = 80,     /* an encrypted envelope does not open: another key, altered, truncated or for another purpose */
    MS_ERR_PEER_MESSAGE = 81, /* a server message is not signed by the pinned server it names, or is for another session or recipient */
    MS_ERR_PEER_REPLAY = 82, /* a server message was already received, or belongs to an earlier round */
    /* Threshold KMS. */
    MS_ERR_THRESHOLD_SHARE = 83, /* a threshold share or commitment failed its check (the server or dealer is named) */
    MS_ERR_THRESHOLD_ROUND = 84, /* a threshold KMS round did not complete: a server is missing or disagrees (named) */
    MS_ERR_WARRANT_UNLOGGED = 85, /* an extraction warrant is not in checkpoints of t+1 threshold servers */
    MS_ERR_THRESHOLD_INACTIVE = 86, /* a threshold batch is not active here: this server did not take part, or its signed root is missing, short of signatures or does not hold the record */
    MS_ERR_REPORT_FALSE = 87, /* a cheater report is false: the accused server's share is correct */
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
