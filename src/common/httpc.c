/* httpc.c - synchronous libcurl wrapper (see httpc.h). Each call uses its own
 * easy handle; keep-alive across calls is not needed on these paths. */
#include "httpc.h"
#include "log.h"
#include "clock.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void sb_httpc_global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void sb_httpc_setup_easy(CURL *h, long connect_timeout_ms, long timeout_ms)
{
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     connect_timeout_ms > 0 ? connect_timeout_ms : 5000L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 30000L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
}

int sb_httpc_map_curl_error(CURLcode c)
{
    switch (c) {
    case CURLE_OK: return 0;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return SB_EUNAVAIL;
    case CURLE_OPERATION_TIMEDOUT: return SB_ETIMEOUT;
    case CURLE_WRITE_ERROR:
    case CURLE_FILESIZE_EXCEEDED: return SB_ETOOBIG;
    default: return SB_EIO;
    }
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    struct sb_httpc_resp *resp = ud;
    if (sb_buf_append(&resp->body, p, sz * n) != 0)
        return 0; /* over the cap: curl aborts with CURLE_WRITE_ERROR */
    return sz * n;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    struct sb_httpc_resp *resp = ud;
    size_t len = sz * n;
    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        /* a new response (after 100-continue or a redirect): reset headers */
        for (int i = 0; i < resp->nhdr; i++) {
            free(resp->hdr_name[i]);
            free(resp->hdr_value[i]);
        }
        resp->nhdr = 0;
        return len;
    }
    const char *colon = memchr(p, ':', len);
    if (!colon || resp->nhdr >= SB_HTTPC_MAX_RESP_HEADERS)
        return len;
    const char *v = colon + 1, *end = p + len;
    while (v < end && isspace((unsigned char)*v))
        v++;
    while (end > v && isspace((unsigned char)end[-1]))
        end--;
    resp->hdr_name[resp->nhdr] = strndup(p, (size_t)(colon - p));
    resp->hdr_value[resp->nhdr] = strndup(v, (size_t)(end - v));
    resp->nhdr++;
    return len;
}

const char *sb_httpc_resp_header(const struct sb_httpc_resp *resp, const char *name)
{
    for (int i = 0; i < resp->nhdr; i++)
        if (resp->hdr_name[i] && strcasecmp(resp->hdr_name[i], name) == 0)
            return resp->hdr_value[i];
    return NULL;
}

void sb_httpc_resp_free(struct sb_httpc_resp *resp)
{
    sb_buf_free(&resp->body);
    for (int i = 0; i < resp->nhdr; i++) {
        free(resp->hdr_name[i]);
        free(resp->hdr_value[i]);
    }
    resp->nhdr = 0;
}

int sb_httpc_do(const struct sb_httpc_req *req, struct sb_httpc_resp *resp, struct sb_err *err)
{
    CURL *h = curl_easy_init();
    if (!h)
        return sb_err_set(err, SB_ENOMEM, "curl_easy_init failed");
    resp->body.max = req->max_response ? req->max_response : 16u << 20;
    sb_httpc_setup_easy(h, req->connect_timeout_ms, req->timeout_ms);
    curl_easy_setopt(h, CURLOPT_URL, req->url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
    if (strcmp(req->method, "GET") == 0)
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    else if (strcmp(req->method, "HEAD") == 0)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    if (req->body || strcmp(req->method, "POST") == 0 || strcmp(req->method, "PUT") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(req->body ? req->body_len : 0));
    }
    struct curl_slist *hl = NULL;
    for (const char *const *p = req->headers; p && *p; p++)
        hl = curl_slist_append(hl, *p);
    hl = curl_slist_append(hl, "Expect:"); /* no 100-continue round trip */
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, resp);
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);

    int64_t t0 = sb_mono_us();
    CURLcode c = curl_easy_perform(h);
    resp->total_ms = (double)(sb_mono_us() - t0) / 1000.0;
    resp->curl_code = c;
    int rc = 0;
    if (c == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
    } else {
        rc = sb_httpc_map_curl_error(c);
        char shown[1024]; /* /e/<key> never reaches a message */
        sb_redact_path(req->url, shown, sizeof shown);
        if (c == CURLE_WRITE_ERROR)
            sb_err_set(err, rc, "%s %s: response larger than %zu bytes", req->method, shown,
                       resp->body.max);
        else
            sb_err_set(err, rc, "%s %s: %s", req->method, shown,
                       errbuf[0] ? errbuf : curl_easy_strerror(c));
    }
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    return rc;
}
