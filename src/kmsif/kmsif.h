/*
 * TS 33.180 Annex D formats shared by the KMS and the client (src/kmsif/): the
 * KmsCertificate, the KmsResponse carrying KmsInit or KmsKeyProv, the device enrolment
 * file, and their protection: key material as XML-Encryption EncryptedKey under the
 * device's transport key (TrK) with AES key wrap with padding (RFC 5649; RFC 3394 does
 * not fit a 257-octet RSK), the whole response signed with HMAC-SHA256 under the
 * integrity key (InK) as an XML signature.
 *
 * Parsing uses libxml2 with network access, DTDs and entity expansion off, a size limit
 * (MS_KMSIF_MAX_XML) and checks the document against the schema's structure; any failure
 * is MS_ERR_XML with a detail naming the element.
 *
 * Conventions of every function below:
 * - Writers produce a NUL-terminated UTF-8 document; *out_len is its length without the
 *   NUL. When cap < *out_len + 1 (or out is NULL) they return MS_ERR_BUFFER_TOO_SMALL
 *   with *out_len set to the length needed, so a NULL/0 call is a size query. Strings that
 *   are empty where required, not UTF-8, or contain control characters, times past the
 *   year 9999, are MS_ERR_ARG.
 * - Readers zero (wipe) their outputs on any failure and write a one-line reason into
 *   detail ("line N: <Element>: why"; detail may be NULL).
 * - Times are NTP seconds (since 1900-01-01 UTC), written as xs:dateTime "...Z"; read
 *   with Z, a +hh:mm/-hh:mm offset or no zone (taken as UTC); fractions are dropped.
 * - Identifiers (TrK-ID, InK-ID) are written as 8 uppercase hex digits.
 * The package profile (extension elements, algorithm URIs, check order) is documented at
 * the top of package.c.
 */
#ifndef MS_KMSIF_H
#define MS_KMSIF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/crypto.h"
#include "mikeysakke/mikey.h"

#define MS_KMSIF_MAX_XML (256 * 1024)
#define MS_KMSIF_URI_MAX 255
#define MS_KMSIF_NS "urn:3gpp:ns:mcsecKMSInterface:1.0"
/* Our extension namespace: the package's DeviceId and Certificate, the enrolment file. */
#define MS_KMSIF_NS_EXT "urn:mikeysakke:kms:1"

/* KmsCertificate (D.3.2). Times are NTP seconds; 0 = absent. */
typedef struct ms_kms_certificate {
    char kms_uri[MS_KMSIF_URI_MAX + 1];
    char cert_uri[MS_KMSIF_URI_MAX + 1];
    char issuer[MS_KMSIF_URI_MAX + 1];
    uint64_t valid_from, valid_to;
    bool revoked;
    uint8_t user_id_format; /* our reading: the SAKKE ID scheme (1 tel monthly, 2 UID) */
    uint64_t period_len, period_offset;
    uint8_t Z[MS_SAKKE_POINT_BYTES];     /* PubEncKey */
    uint8_t kpak[MS_ECCSI_POINT_BYTES];  /* PubAuthKey */
    uint8_t parameter_set;               /* 1 */
    bool root;                           /* Role "Root" (else "External") */
} ms_kms_certificate;

/* One key set (KmsKeySet). rsk and ssk are secret. */
typedef struct ms_kmsif_keyset {
    char kms_uri[MS_KMSIF_URI_MAX + 1];
    char user_uri[MS_KMSIF_URI_MAX + 1];
    uint8_t user_id[MS_SAKKE_ID_MAX_BYTES];
    size_t user_id_len;
    uint64_t period_no;
    uint64_t valid_from, valid_to;
    bool revoked;
    uint8_t rsk[MS_SAKKE_POINT_BYTES];
    uint8_t ssk[MS_ECCSI_SCALAR_BYTES];
    uint8_t pvt[MS_ECCSI_POINT_BYTES];
} ms_kmsif_keyset;

/* The device's keys shared with the KMS (from the enrolment file). Secret. */
typedef struct ms_device_keys {
    char user_uri[MS_KMSIF_URI_MAX + 1];
    char device_id[65];
    uint8_t trk[32];
    uint32_t trk_id;
    uint8_t ink[32];
    uint32_t ink_id;
} ms_device_keys;

#define MS_KMSIF_MAX_KEYSETS 4

/* A key package: KmsResponse with KmsKeyProv (or KmsInit when n_keysets = 0) and the
 * KMS certificate, for one device. */
#define MS_KMSIF_USER_DEVICES_MAX 1536

typedef struct ms_key_package {
    char user_uri[MS_KMSIF_URI_MAX + 1];
    char kms_uri[MS_KMSIF_URI_MAX + 1];
    char device_id[65];              /* our extension element, checked by the client */
    /* our extension: the ids of every device of the user, space separated, inside the
     * signed KmsResponse, so a device learns of one added beside it ("" = none sent) */
    char user_devices[MS_KMSIF_USER_DEVICES_MAX];
    uint64_t time;                   /* NTP seconds of the response (Time) */
    char client_req_url[512];
    ms_kms_certificate cert;
    size_t n_keysets;
    ms_kmsif_keyset keysets[MS_KMSIF_MAX_KEYSETS];
} ms_key_package;

/* KmsCertificate as a standalone XML document (for `kms init` and the cert cache). */
ms_err ms_kmsif_certificate_write(char *out, size_t cap, size_t *out_len,
                                  const ms_kms_certificate *cert);
ms_err ms_kmsif_certificate_parse(ms_kms_certificate *cert, const char *xml, size_t len,
                                  char *detail, size_t detail_cap);

/* Write a package: key fields encrypted under dev->trk, signed under dev->ink. The
 * KmsResponse Id takes 8 octets from rng (NULL: the OS generator). Key sets carry
 * user_id as hex (UserID), 1..MS_SAKKE_ID_MAX_BYTES octets. */
ms_err ms_kmsif_package_write(char *out, size_t cap, size_t *out_len,
                              const ms_key_package *pkg, const ms_device_keys *dev,
                              const ms_rng *rng);
/* Read a package: checks structure, then the signature (MS_ERR_PACKAGE_SIGNATURE),
 * the addressee (MS_ERR_PACKAGE_DEVICE), then decrypts (MS_ERR_PACKAGE_DECRYPT). It does
 * not validate the keys cryptographically: the client does (RSK and SSK validation). */
ms_err ms_kmsif_package_parse(ms_key_package *pkg, const char *xml, size_t len,
                              const ms_device_keys *dev, char *detail, size_t detail_cap);

/* The enrolment file: device keys + the KMS certificate, for out-of-band delivery. */
ms_err ms_kmsif_enrolment_write(char *out, size_t cap, size_t *out_len,
                                const ms_device_keys *dev, const ms_kms_certificate *cert);
ms_err ms_kmsif_enrolment_parse(ms_device_keys *dev, ms_kms_certificate *cert,
                                const char *xml, size_t len, char *detail,
                                size_t detail_cap);

#define MS_KMSIF_TOKEN_HEX 64
#define MS_KMSIF_DEVICE_ID_MAX 64

/* A device's bearer token for the KMS interface: lowercase hex of
 * HMAC-SHA256(InK, "mikeysakke-device-token:" || device ID). Secret (it is derived from
 * the InK); the distribution server's index holds only its SHA-256. */
ms_err ms_kmsif_device_token(char token[MS_KMSIF_TOKEN_HEX + 1], const uint8_t ink[32],
                             const char *device_id);

/* A device's approval of a KMS request text (a second device of its user):
 * HMAC-SHA256(InK, "mikeysakke kms device approval" || 0x00 || request). */
ms_err ms_kmsif_device_approval(uint8_t mac[32], const uint8_t ink[32], const char *request,
                                size_t len);

/* AES key wrap with padding (RFC 5649), for tests and reuse. kek_len is 16, 24 or 32;
 * in_len 1..4096. The output is in_len rounded up to 8, plus 8. The unwrap returns
 * MS_ERR_INVALID when the integrity check fails (wrong KEK, altered data) and
 * MS_ERR_BAD_LENGTH when in_len is not a multiple of 8 of at least 16. */
ms_err ms_aes_kwp_wrap(uint8_t *out, size_t cap, size_t *out_len, const uint8_t *kek,
                       size_t kek_len, const uint8_t *in, size_t in_len);
ms_err ms_aes_kwp_unwrap(uint8_t *out, size_t cap, size_t *out_len, const uint8_t *kek,
                         size_t kek_len, const uint8_t *in, size_t in_len);


/* ---- the network interface (src/kmsif/request.c) ------------------------------------ */

/* KmsRequest (D.2.2, digest 6.5.2): what a device POSTs to /keymanagement/identity/v1/...
 * Written as <KmsRequest Version="1.1.0"> in MS_KMSIF_NS; read from KmsRequest or
 * SignedKmsRequest (whose ds:Signature is not checked: the device authenticates with its
 * bearer token). KrrList (redirect) is refused; ClientError and ##other are skipped.
 * time_us: the microseconds of Time (written as ".uuuuuu" when non-zero, read from any
 * fraction): with the device it keys the server's replay cache, so a client makes each
 * request's Time unique. */
typedef struct ms_kms_request {
    char user_uri[MS_KMSIF_URI_MAX + 1];
    char kms_uri[MS_KMSIF_URI_MAX + 1];
    uint64_t time;                 /* NTP seconds */
    uint32_t time_us;              /* 0..999999 */
    char client_id[MS_KMSIF_URI_MAX + 1]; /* "" = absent */
    char device_id[65];            /* "" = absent */
    char client_req_url[512];
} ms_kms_request;

ms_err ms_kmsif_request_write(char *out, size_t cap, size_t *out_len,
                              const ms_kms_request *req);
ms_err ms_kmsif_request_parse(ms_kms_request *req, const char *xml, size_t len, char *detail,
                              size_t detail_cap);

#define MS_KMSIF_MAX_CERTS 8

/* An unsigned KmsResponse that carries no key: KmsCertCache (certificates, n_certs >= 0)
 * or, when error_code != 0, KmsError (ErrorCode = error_code, ErrorMsg = error_msg). Our
 * servers put the ms_err code into ErrorCode; the HTTP status says the class. */
typedef struct ms_kms_reply {
    char user_uri[MS_KMSIF_URI_MAX + 1]; /* may be empty (an unauthenticated request) */
    char kms_uri[MS_KMSIF_URI_MAX + 1];
    uint64_t time;
    char client_req_url[512];
    int error_code;
    char error_msg[256];
    uint64_t cache_num;
    size_t n_certs;
    ms_kms_certificate certs[MS_KMSIF_MAX_CERTS];
} ms_kms_reply;

ms_err ms_kmsif_reply_write(char *out, size_t cap, size_t *out_len, const ms_kms_reply *r);
/* Reads a KmsResponse holding KmsCertCache or KmsError (not a key package). */
ms_err ms_kmsif_reply_parse(ms_kms_reply *r, const char *xml, size_t len, char *detail,
                            size_t detail_cap);

#endif
