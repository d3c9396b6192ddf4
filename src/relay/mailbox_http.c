/* Owner-only HTTPS access to the voicemail store: see mailbox_http.h. */
#include "relay/mailbox_http.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay/divert.h"

#define PREFIX "/mailbox"

static void text_answer(ms_http_response *resp, int status, const char *json)
{
    resp->status = status;
    resp->content_type = "application/json";
    size_t n = strlen(json);
    resp->body = malloc(n + 1);
    if (resp->body == NULL) {
        resp->status = 500;
        resp->body_len = 0;
        return;
    }
    memcpy(resp->body, json, n + 1);
    resp->body_len = n;
}

static void logf_(const ms_vm_http *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void logf_(const ms_vm_http *h, const char *fmt, ...)
{
    if (h->log == NULL)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    h->log(h->log_ctx, line);
}

void ms_vm_http_error_body(void *ctx, const ms_http_request *req, ms_http_response *resp)
{
    (void)ctx;
    (void)req;
    const char *json = resp->status == 405   ? "{\"error\":\"method not allowed\"}\n"
                       : resp->status == 413 ? "{\"error\":\"request too large\"}\n"
                       : resp->status == 429 ? "{\"error\":\"too many requests\"}\n"
                                             : "{\"error\":\"refused\"}\n";
    int status = resp->status;
    text_answer(resp, status, json);
    resp->status = status;
}

void ms_vm_http_handle(void *ctx, const ms_http_request *req, ms_http_response *resp)
{
    ms_vm_http *h = ctx;
    const char *path = req->path;
    bool list = strcmp(path, PREFIX) == 0 || strcmp(path, PREFIX "/") == 0;
    bool one = !list && strncmp(path, PREFIX "/", sizeof PREFIX) == 0;
    if (!list && !one) {
        text_answer(resp, 404, "{\"error\":\"not found\"}\n");
        return;
    }
    /* Authentication before anything else, so nothing about a mailbox (not even
     * whether a message id exists) leaks to someone who is not its owner. */
    char detail[256] = "";
    if (ms_vm_credentials_refresh(h->creds, detail, sizeof detail) != MS_OK)
        logf_(h, "credentials not reloaded: %s", detail);
    char owner[MS_VM_URI_MAX];
    if (!ms_vm_credentials_check_basic(h->creds, req->authorization, owner, sizeof owner)) {
        text_answer(resp, 401, "{\"error\":\"unauthorised\"}\n");
        return;
    }
    bool get = strcmp(req->method, "GET") == 0;
    bool del = strcmp(req->method, "DELETE") == 0;
    if (list) {
        if (!get) {
            text_answer(resp, 405, "{\"error\":\"method not allowed\"}\n");
            return;
        }
        char *json = NULL;
        size_t len = 0;
        if (ms_mailbox_list_json(h->store, owner, &json, &len, detail, sizeof detail) != MS_OK) {
            logf_(h, "listing %s failed: %s", owner, detail);
            text_answer(resp, 500, "{\"error\":\"store failed\"}\n");
            return;
        }
        resp->status = 200;
        resp->content_type = "application/json";
        resp->body = json;
        resp->body_len = len;
        return;
    }
    const char *id = path + sizeof PREFIX;
    if (!get && !del) {
        text_answer(resp, 405, "{\"error\":\"method not allowed\"}\n");
        return;
    }
    if (!ms_mailbox_valid_message_id(id)) {
        text_answer(resp, 404, "{\"error\":\"no such message\"}\n");
        return;
    }
    ms_err e;
    if (get) {
        uint8_t *data = NULL;
        size_t len = 0;
        e = ms_mailbox_read(h->store, owner, id, &data, &len, detail, sizeof detail);
        if (e == MS_OK) {
            logf_(h, "fetched message %s of %s (%zu octets)", id, owner, len);
            resp->status = 200;
            resp->content_type = "application/vnd.tcpdump.pcap";
            resp->body = (char *)data;
            resp->body_len = len;
            return;
        }
    } else {
        e = ms_mailbox_delete(h->store, owner, id, detail, sizeof detail);
        if (e == MS_OK) {
            logf_(h, "deleted message %s of %s", id, owner);
            resp->status = 204;
            resp->content_type = "application/json";
            return;
        }
    }
    if (e == MS_ERR_ARG) {
        text_answer(resp, 404, "{\"error\":\"no such message\"}\n");
        return;
    }
    logf_(h, "message %s of %s: %s", id, owner, detail);
    text_answer(resp, 500, "{\"error\":\"store failed\"}\n");
}
