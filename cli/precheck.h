/* precheck: what mqload verifies before the first operation, so that a mistake costs no run:
 * the URI's host list parsed strictly (libmongoc 1.23 takes "host:1:2" as port 1 and "h:12a" as
 * port 12), output files writable, and libmongoc's own log lines kept in mqload's voice. */
#ifndef MQLOAD_PRECHECK_H
#define MQLOAD_PRECHECK_H

#include <stdbool.h>
#include <stddef.h>

/* Checks the host list of a mongodb:// or mongodb+srv:// URI: every host is a name, an IPv4
 * address, a bracketed IPv6 address or a socket path, with at most one port of 1..65535. false
 * with err set (err never quotes the password). */
bool mqload_uri_check(const char *uri, char *err, size_t esz);
/* A file the run will write (path "-" is stdout): its directory exists and is writable, and so is
 * the file when it exists. Nothing is created. opt names the option in the message. */
bool mqload_output_check(const char *opt, const char *path, char *err, size_t esz);
/* Routes libmongoc's log through mqload: errors as "mqload: libmongoc: ...", the rest dropped. */
void mqload_mongoc_log_quiet(void);

#endif
