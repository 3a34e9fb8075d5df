/* parse: the number forms of mqload's options. */
#ifndef MQLOAD_PARSE_H
#define MQLOAD_PARSE_H

#include <stdbool.h>

/* "10", "10s", "500ms", "2m", "1h", "250us": seconds. false when malformed or negative. */
bool mqload_parse_duration(const char *s, double *out);
/* "5000", "5k", "1.5M": a count or rate. */
bool mqload_parse_number(const char *s, double *out);

#endif
