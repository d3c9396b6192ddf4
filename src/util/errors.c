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
    [MS_ERR_BUFFER_TOO_SMALL] = {"MS_ERR_BUFFER_TOO_SMALL", "output buffer too small"},
    [MS_ERR_MIKEY_MALFORMED] = {"MS_ERR_MIKEY_MALFORMED", "malformed MIKEY message"},
    [MS_ERR_MIKEY_UNSUPPORTED] = {"MS_ERR_MIKEY_UNSUPPORTED",
                                  "unsupported MIKEY payload, algorithm, parameter set or "
                                  "identifier scheme"},
    [MS_ERR_MIKEY_VERSION] = {"MS_ERR_MIKEY_VERSION", "MIKEY version is not 1"},
    [MS_ERR_MIKEY_DATA_TYPE] = {"MS_ERR_MIKEY_DATA_TYPE",
                                "MIKEY data type is not 26 (SAKKE msg)"},
    [MS_ERR_MIKEY_V_BIT] = {"MS_ERR_MIKEY_V_BIT", "V bit must be 0 in a MIKEY-SAKKE message"},
    [MS_ERR_MIKEY_TIMESTAMP] = {"MS_ERR_MIKEY_TIMESTAMP",
                                "timestamp outside the allowed clock skew"},
    [MS_ERR_MIKEY_REPLAY] = {"MS_ERR_MIKEY_REPLAY", "message is a replay"},
    [MS_ERR_MIKEY_INITIATOR] = {"MS_ERR_MIKEY_INITIATOR",
                                "initiator identity does not match the expected identity"},
    [MS_ERR_MIKEY_RESPONDER] = {"MS_ERR_MIKEY_RESPONDER", "message is not addressed to this user"},
    [MS_ERR_MIKEY_UNKNOWN_KMS] = {"MS_ERR_MIKEY_UNKNOWN_KMS", "KMS is not known or not trusted"},
    [MS_ERR_MIKEY_KEY_PERIOD] = {"MS_ERR_MIKEY_KEY_PERIOD",
                                 "no keys are held for the key period of the message"},
    [MS_ERR_MIKEY_MISSING_PAYLOAD] = {"MS_ERR_MIKEY_MISSING_PAYLOAD",
                                      "a required MIKEY payload is missing"},
    [MS_ERR_MIKEY_KEY_PARAMS] = {"MS_ERR_MIKEY_KEY_PARAMS",
                                 "key parameters do not authenticate or forbid using the key"},
    [MS_ERR_MIKEY_KEY_ID] = {"MS_ERR_MIKEY_KEY_ID",
                             "key identifier (CSB-ID, GUK-ID, purpose tag) is inconsistent"},
    [MS_ERR_SDP] = {"MS_ERR_SDP", "malformed SDP key-mgmt attribute"},
    [MS_ERR_IDENTITY] = {"MS_ERR_IDENTITY", "malformed identity or identifier"},
    [MS_ERR_SEALED] = {"MS_ERR_SEALED", "the KMS is sealed: unseal it first"},
    [MS_ERR_PASSPHRASE] = {"MS_ERR_PASSPHRASE", "wrong passphrase"},
    [MS_ERR_SHARE] = {"MS_ERR_SHARE", "custodian share is corrupted, duplicated or from another KMS"},
    [MS_ERR_PKCS11] = {"MS_ERR_PKCS11", "the PKCS#11 token failed or refused (module, token, PIN or key)"},
    [MS_ERR_SEALED_FILE] = {"MS_ERR_SEALED_FILE", "sealed master secrets file is corrupted or cannot be opened"},
    [MS_ERR_STORE] = {"MS_ERR_STORE", "the KMS database failed"},
    [MS_ERR_EXISTS] = {"MS_ERR_EXISTS", "already exists"},
    [MS_ERR_USER_UNKNOWN] = {"MS_ERR_USER_UNKNOWN", "unknown user"},
    [MS_ERR_USER_SUSPENDED] = {"MS_ERR_USER_SUSPENDED", "user is suspended"},
    [MS_ERR_DEVICE_UNKNOWN] = {"MS_ERR_DEVICE_UNKNOWN", "unknown device"},
    [MS_ERR_PERIOD] = {"MS_ERR_PERIOD", "key period is expired, not yet open, or not at a boundary"},
    [MS_ERR_XML] = {"MS_ERR_XML", "malformed, oversized or invalid XML"},
    [MS_ERR_PACKAGE_SIGNATURE] = {"MS_ERR_PACKAGE_SIGNATURE", "key package signature (HMAC-SHA256 under the InK) does not verify"},
    [MS_ERR_PACKAGE_DECRYPT] = {"MS_ERR_PACKAGE_DECRYPT", "key package cannot be decrypted with this device's transport key"},
    [MS_ERR_PACKAGE_DEVICE] = {"MS_ERR_PACKAGE_DEVICE", "key package is for another user or device"},
    [MS_ERR_PACKAGE_REPLAY] = {"MS_ERR_PACKAGE_REPLAY", "key package is older than or the same as one already imported"},
    [MS_ERR_AUDITOR] = {"MS_ERR_AUDITOR", "auditor approval missing, wrong, or too few approvals"},
    [MS_ERR_AUDIT_SCOPE] = {"MS_ERR_AUDIT_SCOPE", "an extraction must name exactly one user and one key period"},
    [MS_ERR_AUDIT_LOG] = {"MS_ERR_AUDIT_LOG", "the audit log cannot be written: request refused"},
    [MS_ERR_AUDIT_CHAIN] = {"MS_ERR_AUDIT_CHAIN", "the audit log was altered, truncated or reordered"},
    [MS_ERR_KEYSTORE] = {"MS_ERR_KEYSTORE", "client keystore is corrupted, locked or cannot be written"},
    [MS_ERR_NO_KEYS] = {"MS_ERR_NO_KEYS", "no keys are held for this identity and key period"},
    [MS_ERR_UNREACHABLE] = {"MS_ERR_UNREACHABLE", "the server cannot be reached"},
    [MS_ERR_TLS] = {"MS_ERR_TLS", "TLS failed: certificate not trusted, wrong name or handshake error"},
    [MS_ERR_UNAUTHORISED] = {"MS_ERR_UNAUTHORISED", "the server refused our credentials, or the client presented none"},
    [MS_ERR_RATE_LIMITED] = {"MS_ERR_RATE_LIMITED", "too many requests: rate-limited"},
    [MS_ERR_HTTP] = {"MS_ERR_HTTP", "the server answered with an unexpected HTTP status or error element"},
    [MS_ERR_CONFIG] = {"MS_ERR_CONFIG", "the configuration file is malformed or names a missing setting"},
    [MS_ERR_SRTP_AUTH] = {"MS_ERR_SRTP_AUTH", "SRTP or SRTCP packet failed authentication (tampered, or another key)"},
    [MS_ERR_SRTP_REPLAY] = {"MS_ERR_SRTP_REPLAY", "SRTP or SRTCP packet is a replay or too old"},
    [MS_ERR_SIP] = {"MS_ERR_SIP", "SIP signalling failed: transport, registration or an unexpected response"},
    [MS_ERR_CALL_REFUSED] = {"MS_ERR_CALL_REFUSED", "the other side refused the call (SIP status and Warning say why)"},
    [MS_ERR_MEDIA] = {"MS_ERR_MEDIA", "audio file, codec or sound card failed"},
    [MS_ERR_CAPTURE] = {"MS_ERR_CAPTURE", "capture file unreadable or malformed"},
    [MS_ERR_NOT_SECURE] = {"MS_ERR_NOT_SECURE", "offer without MIKEY-SAKKE key management or with unencrypted media: refused"},
    [MS_ERR_QUOTA] = {"MS_ERR_QUOTA", "mailbox full, or a message over its duration or size limit"},
    [MS_ERR_SETTINGS_CHANGED] = {"MS_ERR_SETTINGS_CHANGED", "the KMS settings in kms.db were changed outside the KMS"},
    [MS_ERR_GROUP] = {"MS_ERR_GROUP", "unknown group or member, or a group message that does not fit its roster"},
    [MS_ERR_ROLE] = {"MS_ERR_ROLE", "request not signed by a key of a role allowed to do this"},
    [MS_ERR_REQUEST_STALE] = {"MS_ERR_REQUEST_STALE", "signed request expired, out of time, or its nonce was already used"},
    [MS_ERR_APPROVAL] = {"MS_ERR_APPROVAL", "a second device needs the approval of enrolment officers or the user's device"},
    [MS_ERR_DECRYPT] = {"MS_ERR_DECRYPT", "an encrypted envelope does not open: another key, altered, truncated or for another purpose"},
    [MS_ERR_PEER_MESSAGE] = {"MS_ERR_PEER_MESSAGE", "a server message is not signed by the pinned server it names, or is for another session or recipient"},
    [MS_ERR_PEER_REPLAY] = {"MS_ERR_PEER_REPLAY", "a server message was already received, or belongs to an earlier round"},
    [MS_ERR_THRESHOLD_SHARE] = {"MS_ERR_THRESHOLD_SHARE", "a threshold share or commitment failed its check"},
    [MS_ERR_THRESHOLD_ROUND] = {"MS_ERR_THRESHOLD_ROUND", "a threshold KMS round did not complete"},
    [MS_ERR_WARRANT_UNLOGGED] = {"MS_ERR_WARRANT_UNLOGGED", "the warrant is not in checkpoints of t+1 threshold servers"},
    [MS_ERR_THRESHOLD_INACTIVE] = {"MS_ERR_THRESHOLD_INACTIVE", "the threshold batch of the key period is not active at this server"},
    [MS_ERR_REPORT_FALSE] = {"MS_ERR_REPORT_FALSE", "the cheater report is false: the accused server's share is correct"},
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
