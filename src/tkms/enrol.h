/*
 * Device enrolment at one threshold server (src/tkms/enrol.c).
 *
 * A device of threshold mode has two keys of its own (`user threshold-init`): an X25519
 * key, the only key its shares are ever sealed to, and an Ed25519 key that signs its
 * requests. Its public keys travel in a device file, which each server's operator
 * enrols separately (`kms threshold enrol`): a device gets shares only from the servers
 * that enrolled it, so t+1 operators enrolling it are the design's t+1 approvals. A
 * request never carries a key the server seals to.
 *
 * The device file (written by the device, read by the operator), "\n" line ends:
 *   mikeysakke-tkms-device 1
 *   user <URI>
 *   device <ID>
 *   hpke <64 hex>        X25519 public key
 *   sign <64 hex>        Ed25519 public key
 *
 * The server's table, devices.txt in its directory (replaced atomically: temporary file,
 * fsync, rename, fsync of the directory; writers hold devices.lock):
 *   mikeysakke-tkms-devices 1
 *   device <ID> hpke=<64 hex> sign=<64 hex> <URI>
 * A (user, device) pair is enrolled once; a key is never enrolled twice. Every
 * enrolment is logged (event "enrol") in the server's audit.log (src/tkms/log.h) before
 * the table is replaced.
 */
#ifndef MS_TKMS_ENROL_H
#define MS_TKMS_ENROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kms/audit.h"
#include "mikeysakke/errors.h"
#include "net/hpke.h"
#include "net/peer_msg.h"

#define MS_TKMS_DEVICE_ID_MAX 64
#define MS_TKMS_URI_MAX 255
#define MS_TKMS_DEVICES_FILE "devices.txt"

typedef struct ms_tkms_device {
    char user[MS_TKMS_URI_MAX + 1];
    char device_id[MS_TKMS_DEVICE_ID_MAX + 1];
    uint8_t hpke_pub[MS_HPKE_PK_BYTES];
    uint8_t sign_pub[MS_PEER_KEY_BYTES];
} ms_tkms_device;

/* Whether a device id (1..64 of A-Z a-z 0-9 . _ - : @) and a user URI (1..255 printable
 * ASCII, no space) are acceptable. */
bool ms_tkms_device_id_ok(const char *id);
bool ms_tkms_uri_ok(const char *uri);

/* The device file: written as a new file (MS_ERR_EXISTS), read (MS_ERR_IO, MS_ERR_CONFIG
 * naming the line). */
ms_err ms_tkms_device_file_write(const char *path, const ms_tkms_device *d, char *detail,
                                 size_t detail_cap);
ms_err ms_tkms_device_file_read(const char *path, ms_tkms_device *d, char *detail,
                                size_t detail_cap);

/* Enrols d at the server of directory dir: MS_ERR_USER_UNKNOWN if d->user has no slot in any
 * batch of dir (an unknown user), MS_ERR_EXISTS if (user, device) is enrolled already or
 * either key is enrolled for another device, MS_ERR_AUDIT_LOG if the entry cannot be
 * logged (nothing is enrolled then), MS_ERR_IO. log: the server's open log. */
ms_err ms_tkms_enrol(const char *dir, ms_audit *log, const ms_tkms_device *d, char *detail,
                     size_t detail_cap);

/* The enrolled devices of a server, as read from its table; reloaded when the file
 * changes (ms_tkms_devices_find checks at each call). Thread-safe. */
typedef struct ms_tkms_devices ms_tkms_devices;
ms_err ms_tkms_devices_open(ms_tkms_devices **out, const char *dir, char *detail,
                            size_t detail_cap);
void ms_tkms_devices_close(ms_tkms_devices *t);
/* MS_OK and *out filled, or MS_ERR_DEVICE_UNKNOWN: (user, device_id) is not enrolled here. */
ms_err ms_tkms_devices_find(ms_tkms_devices *t, const char *user, const char *device_id,
                            ms_tkms_device *out);
size_t ms_tkms_devices_count(ms_tkms_devices *t);

#endif
