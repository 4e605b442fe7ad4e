/* dashboard/auth.h - token, Origin and Host rules, socket-free (auth.c). */
#ifndef KG_DASH_AUTH_H
#define KG_DASH_AUTH_H

#include <stdbool.h>
#include <stddef.h>

bool kg__token_equal(const char *expected, const char *given, size_t given_len);
/* `authorization` header value ("Bearer T") or NULL. */
bool kg__auth_bearer_ok(const char *token, const char *authorization);
/* Cookie header, looking for kg_token=T. */
bool kg__auth_cookie_ok(const char *token, const char *cookie);
/* Origin absent (non-browser) is allowed; otherwise it must name the same
 * host:port as `host` or be in the comma list `allowed`. */
bool kg__origin_ok(const char *origin, const char *host, const char *allowed);
/* On a loopback bind, the Host header must be a loopback name. */
bool kg__host_ok(const char *host, bool loopback_bind);
bool kg__is_loopback_bind(const char *bind);

#endif
