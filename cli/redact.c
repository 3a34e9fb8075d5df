/* redact: scrubbing a URI's password out of messages (redact.h). */
#include "redact.h"

#include <stdio.h>
#include <string.h>

void mqload_scrub_secret(const char *uri, char *text)
{
    const char *s = uri ? strstr(uri, "://") : NULL;
    if (!s || !text) return;
    s += 3;
    /* userinfo ends at the last '@' before the path: passwords may contain '@' when escaped only,
     * but be lenient with raw ones too. */
    const char *slash = strchr(s, '/'), *at = NULL;
    for (const char *p = s; *p && (!slash || p < slash); p++)
        if (*p == '@') at = p;
    const char *colon = strchr(s, ':');
    if (!at || !colon || colon > at) return;
    size_t pl = (size_t) (at - colon - 1);
    if (pl == 0) return;
    char pw[512];
    if (pl >= sizeof pw) pl = sizeof pw - 1;
    memcpy(pw, colon + 1, pl);
    pw[pl] = 0;
    size_t rl = pl < 3 ? pl : 3;
    for (char *p = strstr(text, pw); p; p = strstr(p + rl, pw)) {
        memmove(p + rl, p + pl, strlen(p + pl) + 1);
        memset(p, '*', rl);
    }
}
