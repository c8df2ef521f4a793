/* httpc.h - the one HTTP client wrapper (libcurl), for request/response calls
 * made synchronously: the server's sync PUTs to apps, the CLI, the SDK's
 * registration. (sysbusd's dispatcher drives many calls at once through
 * curl multi, but sets up its handles with sb_httpc_setup_easy so both paths
 * share timeouts, limits and proxy rules.)
 *
 * Every call has a connect timeout and a total timeout; response bodies are
 * capped; nothing here retries (callers own their retry policy). */
#ifndef SB_HTTPC_H
#define SB_HTTPC_H

#include <curl/curl.h>
#include <stddef.h>

#include "buf.h"
#include "err.h"

struct sb_httpc_req {
    const char *method; /* "GET", "POST", "PUT", "DELETE" */
    const char *url; /* messages name it with an event key redacted (sb_redact_path) */
    const char *const *headers; /* "Name: value" strings, NULL-terminated; may be NULL */
    const char *body;           /* may be NULL */
    size_t body_len;
    long connect_timeout_ms; /* 0 = 5000 */
    long timeout_ms;         /* total; 0 = 30000 */
    size_t max_response;     /* 0 = 16 MiB */
};

#define SB_HTTPC_MAX_RESP_HEADERS 32

struct sb_httpc_resp {
    long status; /* 0 when no response */
    struct sb_buf body;
    char *hdr_name[SB_HTTPC_MAX_RESP_HEADERS];
    char *hdr_value[SB_HTTPC_MAX_RESP_HEADERS];
    int nhdr;
    double total_ms;
    CURLcode curl_code; /* CURLE_OK or the transport error */
};

/* Global init; call once at start (before threads). */
void sb_httpc_global_init(void);

/* Performs req. Returns 0 when an HTTP response arrived (any status), or
 * SB_EUNAVAIL (could not connect), SB_ETIMEOUT, SB_ETOOBIG, SB_EIO with err
 * filled. resp must be zero-initialised; free it with sb_httpc_resp_free. */
int sb_httpc_do(const struct sb_httpc_req *req, struct sb_httpc_resp *resp, struct sb_err *err);
/* Case-insensitive response header lookup; NULL when absent. */
const char *sb_httpc_resp_header(const struct sb_httpc_resp *resp, const char *name);
void sb_httpc_resp_free(struct sb_httpc_resp *resp);

/* Applies the common options (no proxy, no signals, TCP_NODELAY, keepalive,
 * timeouts) to an easy handle. */
void sb_httpc_setup_easy(CURL *h, long connect_timeout_ms, long timeout_ms);
/* Maps a curl transport error to an SB_E* code. */
int sb_httpc_map_curl_error(CURLcode c);

#endif
