/* httpd_framing.c - refuses requests with ambiguous framing (see
 * httpd_framing.h). Runs on MHD's thread of the connection. */
#include "httpd_framing.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The framing headers of a request, counted. */
struct framing {
    int ncl, nte;
    const char *te;
    bool bad_name;
};

/* RFC 9110 5.6.2 tchar */
static bool token_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    (void)kind;
    struct framing *f = cls;
    if (!*key)
        f->bad_name = true;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        if (!token_char(*p))
            f->bad_name = true;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
        f->ncl++;
    if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        f->nte++;
        f->te = value ? value : "";
    }
    return MHD_YES;
}

int sb_httpd_check_framing(struct MHD_Connection *conn, char *why, size_t whylen)
{
    struct framing f = { 0 };
    MHD_get_connection_values(conn, MHD_HEADER_KIND, count_framing, &f);
    if (f.bad_name)
        snprintf(why, whylen, "a header name is not an HTTP token (a space before the colon?)");
    else if (f.ncl && f.nte)
        snprintf(why, whylen,
                 "both Content-Length and Transfer-Encoding were sent: send one of them");
    else if (f.ncl > 1)
        snprintf(why, whylen, "Content-Length was sent more than once");
    else if (f.nte > 1)
        snprintf(why, whylen, "Transfer-Encoding was sent more than once");
    else if (f.nte && strcasecmp(f.te, "chunked") != 0)
        snprintf(why, whylen,
                 "Transfer-Encoding '%.40s' is not supported: send 'chunked' or a Content-Length",
                 f.te);
    else
        return 0;
    return 400;
}
