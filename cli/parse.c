/* parse: the number forms of mqload's options, shared by args.c and xopts.c (parse.h). */
#include "parse.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

bool mqload_parse_duration(const char *s, double *out)
{
    char *end;
    errno = 0;
    if (!s || !*s) return false;
    double v = strtod(s, &end);
    if (errno || end == s || !isfinite(v) || v < 0) return false;
    double mul;
    if (!*end || !strcmp(end, "s")) mul = 1;
    else if (!strcmp(end, "ms")) mul = 1e-3;
    else if (!strcmp(end, "us") || !strcmp(end, "\xc2\xb5s")) mul = 1e-6;
    else if (!strcmp(end, "m") || !strcmp(end, "min")) mul = 60;
    else if (!strcmp(end, "h")) mul = 3600;
    else return false;
    *out = v * mul;
    return true;
}

bool mqload_parse_number(const char *s, double *out)
{
    char *end;
    errno = 0;
    if (!s || !*s) return false;
    double v = strtod(s, &end);
    if (errno || end == s || !isfinite(v) || v < 0) return false;
    if (!strcmp(end, "k") || !strcmp(end, "K")) v *= 1e3;
    else if (!strcmp(end, "M")) v *= 1e6;
    else if (*end) return false;
    *out = v;
    return true;
}
