/*
 * Cheater reports of the threshold KMS (src/tkms/report.c).
 *
 * When a device's combine names a server whose share does not match the slot's public
 * commitments, the device can show it to anyone holding the peers table and the public
 * result: the report carries the accused server's own signed share message as received
 * and the AEAD key and nonce of its one HPKE envelope, which open that envelope and no
 * other (the device's private key is not in it). It carries nothing of any other
 * server's share: the design note's attack 2 (a report holding an honest server's share
 * would give the t corrupt servers a (t+1)-th share of the victim's slot, hence the
 * victim's RSK) has nothing to work with. A false report, made against a server whose
 * share is right, is recognised as false.
 *
 * File form: "mikeysakke-tkms-report 1\n", then
 *   u16 period length | period | u16 URI length | URI | key (16) | nonce (12) |
 *   u32 message length | the accused server's share file (ms_tkms_node_share's output)
 */
#ifndef MS_TKMS_REPORT_H
#define MS_TKMS_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "mikeysakke/errors.h"

#define MS_TKMS_REPORT_HEADER "mikeysakke-tkms-report 1\n"

/* The report against server `accused` (the cheater ms_tkms_device_combine named), from
 * its share file among `files`: the file must be signed by it for this identity's slot
 * and open with device_sk (MS_ERR_PEER_MESSAGE, MS_ERR_DECRYPT otherwise: a file that is
 * not its signed share shows nothing against it). Written to out_path (created, not
 * replaced: MS_ERR_EXISTS). Only that file is read into the report. */
ms_err ms_tkms_report_write(const char *peers_file, const char *public_file,
                            const uint8_t device_sk[32], const char *period, const char *uri,
                            const char *const *files, size_t count, unsigned accused,
                            const char *out_path, char *detail, size_t detail_cap);

/* Checks a report: MS_ERR_THRESHOLD_SHARE when the accused server's signed share is wrong
 * (it does not match its record's commitments at its index, or its record is not the
 * slot's: another slot, commitments outside E[q], or not the record in records_file,
 * the batch's records file, when given); MS_ERR_REPORT_FALSE when the share is correct.
 * Either way *server is the accused server and sid its slot. A report that cannot be
 * judged fails otherwise: MS_ERR_BAD_ENCODING (malformed), MS_ERR_PEER_MESSAGE (the share
 * is not signed by a server of the table for this identity's slot), MS_ERR_DECRYPT (the
 * key in the report does not open the share: the report is not evidence). */
ms_err ms_tkms_report_check(const char *peers_file, const char *public_file,
                            const char *records_file, const char *report_path,
                            unsigned *server, uint8_t sid[32], char *detail,
                            size_t detail_cap);
/* The same at a server: peers.txt, public.txt and batch-P.records (P the report's period)
 * of its directory. */
ms_err ms_tkms_report_check_dir(const char *dir, const char *report_path, unsigned *server,
                                uint8_t sid[32], char *detail, size_t detail_cap);

#endif
