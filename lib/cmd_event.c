/* Command monitoring events as the command logging and monitoring specification wants them:
 * the command document includes the OP_MSG document sequences (an insert's "documents"), and
 * the bodies of security-sensitive commands are redacted. Only runs when a hook is installed. */
#include <string.h>
#include <strings.h>

#include "cmd_event.h"

static uint32_t le32(const uint8_t *p) { return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24; }

bool mqc_command_from_msg(const uint8_t *msg, size_t len, bson_t *out)
{
    const uint8_t *p = msg + 20, *end = msg + len;
    bool have_body = false;
    bson_init(out);
    if (len < 21) return false;
    while (p < end) {
        uint8_t kind = *p++;
        if (end - p < 4) return false;
        uint32_t n = le32(p);
        if (n < 5 || n > (size_t) (end - p)) return false;
        if (kind == 0) {
            bson_t body;
            if (!bson_init_static(&body, p, n)) return false;
            bson_concat(out, &body);
            have_body = true;
        } else if (kind == 1) {
            /* size, identifier (cstring), then documents up to size. */
            const uint8_t *q = p + 4, *qend = p + n;
            const uint8_t *nul = memchr(q, 0, (size_t) (qend - q));
            if (!nul) return false;
            const char *ident = (const char *) q;
            bson_t arr;
            char key[24];
            uint32_t i = 0;
            q = nul + 1;
            bson_append_array_begin(out, ident, -1, &arr);
            while (q < qend) {
                if (qend - q < 5) return false;
                uint32_t dl = le32(q);
                bson_t d;
                if (dl < 5 || dl > (size_t) (qend - q) || !bson_init_static(&d, q, dl)) return false;
                bson_snprintf(key, sizeof key, "%u", i++);
                bson_append_document(&arr, key, -1, &d);
                q += dl;
            }
            bson_append_array_end(out, &arr);
        } else {
            return false;
        }
        p += n;
    }
    return have_body;
}

static bool sensitive(const mqc_command_event_t *ev)
{
    static const char *const names[] = {"authenticate", "saslStart", "saslContinue", "getnonce", "createUser",
                                        "updateUser", "copydbgetnonce", "copydbsaslstart", "copydb", NULL};
    for (int i = 0; names[i]; i++)
        if (!strcasecmp(names[i], ev->command_name)) return true;
    /* hello carrying speculative authentication is sensitive; a plain hello is not. */
    if (!strcasecmp(ev->command_name, "hello") || !strcasecmp(ev->command_name, "isMaster")) {
        const bson_t *d = ev->type == MQC_COMMAND_STARTED ? ev->command : ev->reply;
        return d && bson_has_field(d, "speculativeAuthenticate");
    }
    return false;
}

void mqc_command_event_deliver(void (*hook)(const mqc_command_event_t *, void *), const mqc_command_event_t *ev,
                               void *ud)
{
    if (!sensitive(ev)) {
        hook(ev, ud);
        return;
    }
    mqc_command_event_t copy = *ev;
    bson_t empty = BSON_INITIALIZER;
    if (copy.command) copy.command = &empty;
    if (copy.reply) copy.reply = &empty;
    hook(&copy, ud);
}

const char *mqc_command_name(const bson_t *cmd, const char *dflt)
{
    bson_iter_t it;
    if (cmd && bson_iter_init(&it, cmd) && bson_iter_next(&it)) return bson_iter_key(&it);
    return dflt;
}
