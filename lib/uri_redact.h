/* Hiding secrets of connection strings (the public entry is mqc_uri_redact in mqc.h). */
#ifndef MQC_URI_REDACT_H
#define MQC_URI_REDACT_H

#include <stdbool.h>
#include <stddef.h>

#include "mqc.h"

/* Finds the password of uri's userinfo as written (percent-encoded): offset and length. False
 * when there is none. Tolerates invalid URIs (an unescaped '/' or '@' in the password). */
bool mqc_uri_find_password(const char *uri, size_t *start, size_t *len);
/* Whether the option named key[0..len) holds a secret (tlsCertificateKeyFilePassword, its ssl
 * alias, proxyPassword), compared case-insensitively. */
bool mqc_uri_is_secret_option(const char *key, size_t len);
/* mqc_uri_redact into a new malloc'd string (free it). */
char *mqc_uri_redact_dup(const char *uri);
/* Replaces occurrences of secret in text (NUL-terminated, edited in place, never longer). */
void mqc_uri_scrub_secret(char *text, const char *secret);

#endif
