/* redact: keeping the URI's password out of every output. Reports only ever get the redacted URI
 * (mqc_uri_redact); messages from libraries, which might quote a connection string, are scrubbed
 * of the password before they are printed. */
#ifndef MQLOAD_REDACT_H
#define MQLOAD_REDACT_H

/* Replaces every occurrence of uri's password inside text with "***" (in place; text only shrinks
 * or keeps its length for passwords of 3 characters or more, and a shorter one is replaced by as
 * many '*'). */
void mqload_scrub_secret(const char *uri, char *text);

#endif
