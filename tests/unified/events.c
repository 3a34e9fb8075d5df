/* The unified runner's events: capturing a client's command and CMAP events as the format
 * names them, and checking expectEvents against them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "unified.h"
#include "../spec/spec.h"

/* ---- events --------------------------------------------------------------------------------- */

static const char *const k_event_names[] = {
    "commandStartedEvent", "commandSucceededEvent", "commandFailedEvent", "poolCreatedEvent", "poolReadyEvent",
    "poolClearedEvent", "poolClosedEvent", "connectionCreatedEvent", "connectionReadyEvent",
    "connectionClosedEvent", "connectionCheckOutStartedEvent", "connectionCheckOutFailedEvent",
    "connectionCheckedOutEvent", "connectionCheckedInEvent", "serverDescriptionChangedEvent",
    "topologyDescriptionChangedEvent", NULL};

int ux_event_bit(const char *name)
{
    for (int i = 0; k_event_names[i]; i++)
        if (!strcmp(k_event_names[i], name)) return i;
    return -1;
}

static void push_event(ux_client_t *uc, bson_t *ev)
{
    if (uc->n_events == uc->cap_events) {
        uc->cap_events = uc->cap_events ? uc->cap_events * 2 : 64;
        uc->events = realloc(uc->events, uc->cap_events * sizeof *uc->events);
        if (!uc->events) abort();
    }
    uc->events[uc->n_events++] = ev;
}

/* Sensitive commands (the library hands them redacted): auth commands, and hello/isMaster that
 * carried speculative authentication, which the library shows with an empty body. */
static bool is_sensitive(const mqc_command_event_t *e)
{
    static const char *const s[] = {"saslStart", "saslContinue", "getnonce", "authenticate", "createUser",
                                    "updateUser", "copydbgetnonce", "copydbsaslstart", "copydb", NULL};
    for (int i = 0; s[i]; i++)
        if (!strcasecmp(s[i], e->command_name)) return true;
    if (!strcasecmp(e->command_name, "hello") || !strcasecmp(e->command_name, "isMaster")) {
        const bson_t *d = e->type == MQC_COMMAND_STARTED ? e->command : e->reply;
        return d && bson_empty(d);
    }
    return false;
}

void ux_on_command_event(const mqc_command_event_t *e, void *ud)
{
    ux_client_t *uc = ud;
    static const char *const names[] = {NULL, "commandStartedEvent", "commandSucceededEvent", "commandFailedEvent"};
    const char *name = names[e->type];
    if (!(uc->observe & (1u << ux_event_bit(name)))) return;
    /* The runner's own fail point commands are not the test's. */
    if (!strcmp(e->command_name, "configureFailPoint")) return;
    if (!uc->observe_sensitive && is_sensitive(e)) return;
    bson_iter_t it;
    if (bson_iter_init(&it, &uc->ignore))
        while (bson_iter_next(&it))
            if (BSON_ITER_HOLDS_UTF8(&it) && !strcmp(bson_iter_utf8(&it, NULL), e->command_name)) return;
    bson_t *ev = bson_new(), body;
    BSON_APPEND_DOCUMENT_BEGIN(ev, name, &body);
    BSON_APPEND_UTF8(&body, "commandName", e->command_name);
    if (e->database) BSON_APPEND_UTF8(&body, "databaseName", e->database);
    if (e->command) BSON_APPEND_DOCUMENT(&body, "command", e->command);
    if (e->reply && e->type == MQC_COMMAND_SUCCEEDED) BSON_APPEND_DOCUMENT(&body, "reply", e->reply);
    BSON_APPEND_BOOL(&body, "hasServiceId", false);
    BSON_APPEND_BOOL(&body, "hasServerConnectionId", e->connection_id != 0);
    bson_append_document_end(ev, &body);
    push_event(uc, ev);
}

void ux_on_pool_event(const mqc_pool_event_t *e, void *ud)
{
    ux_client_t *uc = ud;
    static const char *const names[] = {NULL, "poolCreatedEvent", "poolReadyEvent", "poolClearedEvent",
                                        "poolClosedEvent", "connectionCreatedEvent", "connectionReadyEvent",
                                        "connectionClosedEvent", "connectionCheckOutStartedEvent",
                                        "connectionCheckOutFailedEvent", "connectionCheckedOutEvent",
                                        "connectionCheckedInEvent"};
    if ((int) e->type < 1 || e->type > MQC_CONN_CHECKED_IN) return;
    const char *name = names[e->type];
    if (e->type == MQC_CONN_CHECKED_OUT) uc->checked_out++;
    if (e->type == MQC_CONN_CHECKED_IN) uc->checked_out--;
    if (!(uc->observe & (1u << ux_event_bit(name)))) return;
    bson_t *ev = bson_new(), body;
    BSON_APPEND_DOCUMENT_BEGIN(ev, name, &body);
    if (e->reason) BSON_APPEND_UTF8(&body, "reason", e->reason);
    BSON_APPEND_BOOL(&body, "hasServiceId", false);
    bson_append_document_end(ev, &body);
    push_event(uc, ev);
}

/* SDAM: mqc's topology hook gives a server's old and new type, and the topology's. */
void ux_on_topology_event(const mqc_topology_event_t *e, void *ud)
{
    ux_client_t *uc = ud;
    const char *name = e->type == MQC_TOPOLOGY_SERVER_CHANGED ? "serverDescriptionChangedEvent"
                       : e->type == MQC_TOPOLOGY_CHANGED      ? "topologyDescriptionChangedEvent"
                                                               : NULL;
    if (!name || !(uc->observe & (1u << ux_event_bit(name)))) return;
    bson_t *ev = bson_new(), body, d;
    BSON_APPEND_DOCUMENT_BEGIN(ev, name, &body);
    BSON_APPEND_DOCUMENT_BEGIN(&body, "previousDescription", &d);
    BSON_APPEND_UTF8(&d, "type", e->previous ? e->previous : "");
    bson_append_document_end(&body, &d);
    BSON_APPEND_DOCUMENT_BEGIN(&body, "newDescription", &d);
    BSON_APPEND_UTF8(&d, "type", e->current ? e->current : "");
    bson_append_document_end(&body, &d);
    bson_append_document_end(ev, &body);
    push_event(uc, ev);
}

/* ---- expected events -------------------------------------------------------------------------- */

static bool event_matches(ux_run_t *run, const bson_t *expected, const bson_t *actual, char *why, size_t size)
{
    bson_iter_t ei, ai, f;
    bson_t eb, ab;
    if (!bson_iter_init(&ei, expected) || !bson_iter_next(&ei)) return snprintf(why, size, "malformed expected event") < 0;
    if (!bson_iter_init(&ai, actual) || !bson_iter_next(&ai) || strcmp(bson_iter_key(&ei), bson_iter_key(&ai))) {
        snprintf(why, size, "expected %s, got %s", bson_iter_key(&ei), bson_iter_key(&ai));
        return false;
    }
    if (!spec_sub_iter(&ei, &eb) || !spec_sub_iter(&ai, &ab)) return true;
    bson_iter_init(&f, &eb);
    while (bson_iter_next(&f)) {
        const char *k = bson_iter_key(&f);
        bson_iter_t got;
        bool present = bson_iter_init_find(&got, &ab, k);
        /* Commands and replies are root-level documents: extra fields are allowed there. */
        bool root = !strcmp(k, "command") || !strcmp(k, "reply");
        if (!strcmp(k, "interruptInUseConnections") || !strcmp(k, "serviceId")) {
            snprintf(why, size, SKIP_MQC "%s in pool events", k);
            return false;
        }
        if (!ux_match(run, bson_iter_value(&f), present ? bson_iter_value(&got) : NULL, root, k, why, size)) {
            bson_iter_t lsid;
            /* mqc sends lsid with retryable writes only: implicit sessions are being built. */
            if (!strcmp(k, "command") && !strncmp(why, "command.lsid:", 13) && present &&
                !bson_iter_init_find(&lsid, &ab, "command.lsid") && bson_iter_recurse(&got, &lsid) &&
                !bson_iter_find(&lsid, "lsid"))
                snprintf(why, size, SKIP_MQC "implicit sessions (lsid on every command)");
            return false;
        }
    }
    return true;
}

bool ux_check_events(ux_run_t *run, const bson_t *arr)
{
    bson_iter_t it;
    /* Let what the operations left in flight (a killCursors after close) finish first. */
    for (size_t i = 0; i < run->n_ents; i++)
        if (run->ents[i].kind == ENT_CLIENT) mqc_client_run_until_idle(run->ents[i].client, 5);
    bson_iter_init(&it, arr);
    while (bson_iter_next(&it)) {
        bson_t d, evs;
        if (!spec_sub_iter(&it, &d) || !spec_sub(&d, "events", &evs)) return ux_set(&run->v, 1, "malformed expectEvents");
        const char *cid = spec_str(&d, "client"), *type = spec_str(&d, "eventType");
        ux_entity_t *c = cid ? ux_entity(run, cid) : NULL;
        if (!c || c->kind != ENT_CLIENT) return ux_set(&run->v, 1, "expectEvents: no client %s", cid ? cid : "(none)");
        if (c->lacks) return ux_set(&run->v, 2, SKIP_MQC "%s", c->lacks);
        if (!type) type = "command";
        if (strcmp(type, "command") && strcmp(type, "cmap") && strcmp(type, "sdam"))
            return ux_set(&run->v, 2, SKIP_MQC "%s events in the runner", type);
        bool ignore_extra = spec_bool(&d, "ignoreExtraEvents", false);
        int want_kind = !strcmp(type, "command") ? 0 : !strcmp(type, "cmap") ? 1 : 2;
        /* The client's events of this type, in order. */
        bson_t **got = calloc(c->uc->n_events + 1, sizeof *got);
        size_t n = 0;
        for (size_t i = 0; i < c->uc->n_events; i++) {
            bson_iter_t k;
            bson_iter_init(&k, c->uc->events[i]);
            bson_iter_next(&k);
            const char *en = bson_iter_key(&k);
            int kind = !strncmp(en, "command", 7) ? 0 : strstr(en, "Description") ? 2 : 1;
            if (kind == want_kind) got[n++] = c->uc->events[i];
        }
        uint32_t want = bson_count_keys(&evs);
        bool ok = true;
        if (ignore_extra ? n < want : n != want) {
            char list[1024] = "";
            size_t off = 0;
            for (size_t i = 0; i < n && off < sizeof list - 64; i++) {
                bson_iter_t k, b, nm;
                bson_iter_init(&k, got[i]);
                bson_iter_next(&k);
                const char *cn = bson_iter_recurse(&k, &b) && bson_iter_find(&b, "commandName") ? bson_iter_utf8(&b, NULL) : "";
                (void) nm;
                off += (size_t) snprintf(list + off, sizeof list - off, "%s%s%s%s", i ? ", " : "", bson_iter_key(&k), *cn ? ":" : "", cn);
            }
            ok = ux_set(&run->v, 1, "expectEvents for %s: %zu %s events, expected %u: [%s]", cid, n, type, want, list);
        }
        bson_iter_t e;
        size_t i = 0;
        bson_iter_init(&e, &evs);
        while (ok && bson_iter_next(&e) && i < n) {
            bson_t ed;
            char why[1024];
            spec_sub_iter(&e, &ed);
            if (!event_matches(run, &ed, got[i], why, sizeof why)) {
                char *k = strstr(why, SKIP_MQC);
                if (k) memmove(why, k, strlen(k) + 1);
                if (!strncmp(why, SKIP_MQC, strlen(SKIP_MQC))) ok = ux_set(&run->v, 2, "%s", why);
                else ok = ux_set(&run->v, 1, "expectEvents for %s, event %zu: %s", cid, i, why);
            }
            i++;
        }
        free(got);
        if (!ok) return false;
    }
    return true;
}
