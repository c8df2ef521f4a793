/* httpd_framing.h - request-smuggling hygiene for the HTTP server, internal
 * to httpd.c: a request whose body length another HTTP hop (a proxy, a load
 * balancer) could read differently is refused before its body is read
 * (RFC 9112 6.1, 6.3). libmicrohttpd 0.9.75 reads only the first of each
 * header and prefers Transfer-Encoding over Content-Length; it answers a
 * Content-Length that is not a number (400) or too large for 64 bits (413)
 * itself, before our handler, so those are not checked here. */
#ifndef SB_HTTPD_FRAMING_H
#define SB_HTTPD_FRAMING_H

#include <microhttpd.h>
#include <stddef.h>

/* From the first access call of a request (its headers are in). Returns 0
 * when its framing is sound, else 400 with the reason (a sentence for the
 * JSON error) in why. Refused: Content-Length together with
 * Transfer-Encoding; either of them twice (even with the same value); a
 * Transfer-Encoding other than "chunked"; a header name that is not an
 * HTTP token ("Content-Length : 5" would be no Content-Length here but one
 * to a lenient proxy). */
int sb_httpd_check_framing(struct MHD_Connection *conn, char *why, size_t whylen);

#endif
