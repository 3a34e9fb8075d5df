/* The unified test format runner: finds the files of a spec folder (any JSON with a top-level
 * "schemaVersion", anywhere below the folder), registers one test per case, and runs a case:
 * requirements, entities, initial data, operations, expected events, outcome, clean-up. */
#include <ctype.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "unified.h"
#include "../spec/spec.h"
#include "../tf.h"

bool ux_set(ux_verdict_t *v, int rc, const char *fmt, ...)
{
    va_list ap;
    if (v->rc) return false;
    v->rc = rc;
    va_start(ap, fmt);
    vsnprintf(v->msg, sizeof v->msg, fmt, ap);
    va_end(ap);
    return false;
}

ux_entity_t *ux_entity(ux_run_t *run, const char *id)
{
    for (size_t i = 0; i < run->n_ents; i++)
        if (!strcmp(run->ents[i].id, id)) return &run->ents[i];
    return NULL;
}

/* ---- waiting for one command ---------------------------------------------------------------- */

typedef struct {
    bool done;
    bson_t *reply;
    mqc_error_t err;
    bool has_err;
} wait_t;

static void on_cmd(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error, void *ud)
{
    wait_t *w = ud;
    w->done = true;
    if (reply) w->reply = bson_copy(reply);
    if (error) {
        w->err = *error;
        w->has_err = true;
    }
}

bool ux_command(mqc_client_t *client, const char *db, const bson_t *cmd, bson_t *reply, mqc_error_t *err)
{
    wait_t *w = calloc(1, sizeof *w); /* heap: a command that never ends may still write into it */
    if (!w) abort();
    mqc_client_command(client, db, cmd, NULL, on_cmd, w);
    for (int i = 0; i < 300 && !w->done; i++) mqc_client_run_until_idle(client, 0.1);
    if (!w->done) {
        if (reply) bson_init(reply);
        if (err) {
            memset(err, 0, sizeof *err);
            err->domain = MQC_ERROR_TIMEOUT;
            snprintf(err->message, sizeof err->message, "no callback within 30 s");
        }
        return false; /* w is leaked on purpose */
    }
    if (reply) {
        if (w->reply) bson_copy_to(w->reply, reply);
        else bson_init(reply);
    }
    if (w->reply) bson_destroy(w->reply);
    if (err) *err = w->err;
    bool ok = !w->has_err;
    free(w);
    return ok;
}

/* ---- the server ----------------------------------------------------------------------------- */

/* Two servers: [0] the plain FerretDB, [1] the replica-set-named one (for the /unified-rs/ twins
 * of the files that need a replica set). Tests run one at a time: g_rs says which is in use. */
static char g_version[2][64], g_topology[2][32];
static mqc_client_t *g_probe[2];
static int g_rs;

const char *ux_base_uri(void) { return tf_server_uri(g_rs ? "failpoint,rs" : "failpoint"); }

static mqc_client_t *probe(void)
{
    if (!g_probe[g_rs]) {
        mqc_error_t err;
        g_probe[g_rs] = mqc_client_new_from_uri(NULL, ux_base_uri(), &err);
        if (!g_probe[g_rs]) FAIL("client for %s: %s", ux_base_uri(), err.message);
    }
    return g_probe[g_rs];
}

static void learn_server(void)
{
    if (g_version[g_rs][0]) return;
    bson_t cmd = BSON_INITIALIZER, reply;
    bson_iter_t it;
    mqc_error_t err;
    BSON_APPEND_INT32(&cmd, "buildInfo", 1);
    if (!ux_command(probe(), "admin", &cmd, &reply, &err)) FAIL("buildInfo: %s", err.message);
    snprintf(g_version[g_rs], sizeof g_version[0], "%s", spec_str(&reply, "version") ? spec_str(&reply, "version") : "0.0");
    bson_destroy(&reply);
    bson_reinit(&cmd);
    BSON_APPEND_INT32(&cmd, "hello", 1);
    if (!ux_command(probe(), "admin", &cmd, &reply, &err)) FAIL("hello: %s", err.message);
    const char *msg = spec_str(&reply, "msg");
    if (msg && !strcmp(msg, "isdbgrid")) snprintf(g_topology[g_rs], sizeof g_topology[0], "sharded");
    else if (bson_iter_init_find(&it, &reply, "setName")) snprintf(g_topology[g_rs], sizeof g_topology[0], "replicaset");
    else snprintf(g_topology[g_rs], sizeof g_topology[0], "single");
    bson_destroy(&reply);
    bson_destroy(&cmd);
}

const char *ux_server_version(void) { learn_server(); return g_version[g_rs]; }
const char *ux_topology(void) { learn_server(); return g_topology[g_rs]; }

/* -1, 0, 1 as version a is below, equal to or above b ("4.4", "7.0.77"; missing parts are 0). */
static int version_cmp(const char *a, const char *b)
{
    for (int i = 0; i < 3; i++) {
        long x = strtol(a, (char **) &a, 10), y = strtol(b, (char **) &b, 10);
        if (x != y) return x < y ? -1 : 1;
        if (*a == '.') a++;
        if (*b == '.') b++;
    }
    return 0;
}

/* One runOnRequirement: true when met, else why (with its kind) in why. */
static bool requirement_met(ux_run_t *run, const bson_t *req, char *why, size_t size)
{
    bson_iter_t it;
    const char *s;
    if ((s = spec_str(req, "minServerVersion")) && version_cmp(ux_server_version(), s) < 0) {
        snprintf(why, size, SKIP_NA "server %s < minServerVersion %s", ux_server_version(), s);
        return false;
    }
    if ((s = spec_str(req, "maxServerVersion")) && version_cmp(ux_server_version(), s) > 0) {
        snprintf(why, size, SKIP_NA "server %s > maxServerVersion %s", ux_server_version(), s);
        return false;
    }
    bson_t arr;
    if (spec_sub(req, "topologies", &arr)) {
        bool ok = false;
        bson_iter_init(&it, &arr);
        while (bson_iter_next(&it))
            if (BSON_ITER_HOLDS_UTF8(&it) && !strcmp(bson_iter_utf8(&it, NULL), ux_topology())) ok = true;
        if (!ok) {
            snprintf(why, size, SKIP_NA "topology %s is not among those the test needs", ux_topology());
            return false;
        }
    }
    if ((s = spec_str(req, "serverless")) && !strcmp(s, "require")) {
        snprintf(why, size, SKIP_NA "needs a serverless deployment");
        return false;
    }
    if (bson_iter_init_find(&it, req, "auth") && bson_iter_as_bool(&it)) {
        snprintf(why, size, SKIP_NA "needs a server with authentication (the test server has none)");
        return false;
    }
    if (bson_iter_init_find(&it, req, "csfle") && bson_iter_as_bool(&it)) {
        snprintf(why, size, SKIP_MQC "client-side field level encryption");
        return false;
    }
    if (spec_str(req, "authMechanism")) {
        snprintf(why, size, SKIP_NA "needs authentication mechanism %s", spec_str(req, "authMechanism"));
        return false;
    }
    bson_t params;
    if (spec_sub(req, "serverParameters", &params)) {
        bson_iter_init(&it, &params);
        while (bson_iter_next(&it)) {
            bson_t cmd = BSON_INITIALIZER, reply;
            bson_iter_t got;
            mqc_error_t err;
            char m[512];
            BSON_APPEND_INT32(&cmd, "getParameter", 1);
            BSON_APPEND_INT32(&cmd, bson_iter_key(&it), 1);
            bool ok = ux_command(probe(), "admin", &cmd, &reply, &err);
            bson_destroy(&cmd);
            bool found = ok && bson_iter_init_find(&got, &reply, bson_iter_key(&it));
            bool match = found && ux_match(run, bson_iter_value(&it), bson_iter_value(&got), false, "", m, sizeof m);
            bson_destroy(&reply);
            if (!match) {
                snprintf(why, size, SKIP_NA "server parameter %s is %s", bson_iter_key(&it),
                         !ok ? "not reported (getParameter failed)" : found ? "different" : "absent");
                return false;
            }
        }
    }
    return true;
}

/* True when any requirement of arr is met (or there is none); else why says why not. */
static bool requirements_met(ux_run_t *run, const bson_t *holder, char *why, size_t size)
{
    bson_t arr;
    bson_iter_t it;
    if (!spec_sub(holder, "runOnRequirements", &arr) || bson_count_keys(&arr) == 0) return true;
    bson_iter_init(&it, &arr);
    while (bson_iter_next(&it)) {
        bson_t req;
        if (spec_sub_iter(&it, &req) && requirement_met(run, &req, why, size)) return true;
    }
    return false;
}

/* ---- entities ------------------------------------------------------------------------------- */

static void append_uri_option(char *uri, size_t size, const char *key, const bson_iter_t *it)
{
    size_t n = strlen(uri);
    char val[256];
    if (BSON_ITER_HOLDS_BOOL(it)) snprintf(val, sizeof val, "%s", bson_iter_bool(it) ? "true" : "false");
    else if (BSON_ITER_HOLDS_NUMBER(it)) snprintf(val, sizeof val, "%" PRId64, bson_iter_as_int64(it));
    else if (BSON_ITER_HOLDS_UTF8(it)) {
        /* Percent-encoded: an appname may hold spaces, a tag set ':' and ','. */
        const unsigned char *v = (const unsigned char *) bson_iter_utf8(it, NULL);
        size_t o = 0;
        for (; *v && o + 4 < sizeof val; v++) {
            if (isalnum(*v) || strchr("-._~", *v)) val[o++] = (char) *v;
            else o += (size_t) snprintf(val + o, sizeof val - o, "%%%02X", *v);
        }
        val[o] = 0;
    } else return;
    snprintf(uri + n, size - n, "%s%s=%s", strchr(uri, '?') ? "&" : (uri[n - 1] == '/' ? "?" : "/?"), key, val);
}

static ux_entity_t *add_entity(ux_run_t *run, const char *id, ent_kind_t kind)
{
    if (run->n_ents == UX_MAX_ENTITIES || ux_entity(run, id)) {
        ux_set(&run->v, 1, "entity %s: %s", id, ux_entity(run, id) ? "defined twice" : "too many entities");
        return NULL;
    }
    ux_entity_t *e = &run->ents[run->n_ents++];
    memset(e, 0, sizeof *e);
    e->id = strdup(id);
    e->kind = kind;
    return e;
}

static bool create_client(ux_run_t *run, const bson_t *d)
{
    const char *id = spec_str(d, "id");
    bson_t sub;
    bson_iter_t it;
    if (!id) return ux_set(&run->v, 1, "client entity without id");
    const char *lacking = NULL;
    if (spec_sub(d, "serverApi", &sub)) {
        const char *ver = spec_str(&sub, "version");
        if (!ver || strcmp(ver, "1")) return ux_set(&run->v, 1, "client %s: server API version %s is not supported", id, ver ? ver : "(none)");
        /* The client exists, but a test that uses it (or its databases, collections) is skipped. */
        lacking = "declaring a server API version (serverApi)";
    }
    if (spec_has(d, "storeEventsAsEntities")) return ux_set(&run->v, 2, SKIP_MQC "storeEventsAsEntities in the runner");
    if (spec_has(d, "observeLogMessages")) return ux_set(&run->v, 2, SKIP_MQC "log messages (observeLogMessages)");
    char uri[4096];
    snprintf(uri, sizeof uri, "%s", ux_base_uri());
    if (spec_sub(d, "uriOptions", &sub)) {
        bson_iter_init(&it, &sub);
        while (bson_iter_next(&it)) append_uri_option(uri, sizeof uri, bson_iter_key(&it), &it);
    }
    ux_entity_t *e = add_entity(run, id, ENT_CLIENT);
    if (!e) return false;
    e->lacks = lacking;
    ux_client_t *uc = calloc(1, sizeof *uc);
    if (!uc) abort();
    uc->id = strdup(id);
    bson_init(&uc->ignore);
    e->uc = uc;
    mqc_error_t err;
    uc->client = mqc_client_new_from_uri(NULL, uri, &err);
    if (!uc->client) return ux_set(&run->v, 1, "client %s (%s): %s", id, uri, err.message);
    e->client = uc->client;
    if (spec_sub(d, "observeEvents", &sub)) {
        bson_iter_init(&it, &sub);
        while (bson_iter_next(&it)) {
            int b = BSON_ITER_HOLDS_UTF8(&it) ? ux_event_bit(bson_iter_utf8(&it, NULL)) : -1;
            if (b < 0) return ux_set(&run->v, 2, SKIP_MQC "observing %s", BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) : "?");
            uc->observe |= 1u << b;
        }
    }
    if (spec_sub(d, "ignoreCommandMonitoringEvents", &sub)) bson_concat(&uc->ignore, &sub);
    uc->observe_sensitive = spec_bool(d, "observeSensitiveCommands", false);
    mqc_monitor_t mon = {.command = ux_on_command_event, .pool = ux_on_pool_event, .topology = ux_on_topology_event};
    mqc_client_set_monitor(uc->client, &mon, uc);
    return true;
}

static bool create_one(ux_run_t *run, const char *kind, const bson_t *d)
{
    const char *id = spec_str(d, "id");
    if (!strcmp(kind, "client")) return create_client(run, d);
    if (!id) return ux_set(&run->v, 1, "%s entity without id", kind);
    if (!strcmp(kind, "database")) {
        const char *cid = spec_str(d, "client"), *name = spec_str(d, "databaseName");
        ux_entity_t *c = cid ? ux_entity(run, cid) : NULL;
        if (!c || c->kind != ENT_CLIENT) return ux_set(&run->v, 1, "database %s: no client entity %s", id, cid ? cid : "(none)");
        if (!name) return ux_set(&run->v, 1, "database %s: no databaseName", id);
        ux_entity_t *e = add_entity(run, id, ENT_DATABASE);
        if (!e) return false;
        bson_t o;
        /* mqc takes read/write concern and read preference per operation: the handle's options
         * become every operation's defaults. */
        e->defaults = bson_new();
        if (spec_sub(d, "databaseOptions", &o)) bson_concat(e->defaults, &o);
        e->client = c->client;
        e->lacks = c->lacks;
        e->db = mqc_client_get_database(c->client, name);
        return true;
    }
    if (!strcmp(kind, "collection")) {
        const char *did = spec_str(d, "database"), *name = spec_str(d, "collectionName");
        ux_entity_t *db = did ? ux_entity(run, did) : NULL;
        if (!db || db->kind != ENT_DATABASE) return ux_set(&run->v, 1, "collection %s: no database entity %s", id, did ? did : "(none)");
        if (!name) return ux_set(&run->v, 1, "collection %s: no collectionName", id);
        ux_entity_t *e = add_entity(run, id, ENT_COLLECTION);
        if (!e) return false;
        bson_t o;
        bson_iter_t di;
        e->defaults = bson_new();
        if (spec_sub(d, "collectionOptions", &o)) bson_concat(e->defaults, &o);
        if (bson_iter_init(&di, db->defaults))
            while (bson_iter_next(&di))
                if (!bson_has_field(e->defaults, bson_iter_key(&di))) bson_append_iter(e->defaults, bson_iter_key(&di), -1, &di);
        e->client = db->client;
        e->lacks = db->lacks;
        e->coll = mqc_database_get_collection(db->db, name);
        return true;
    }
    if (!strcmp(kind, "session") || !strcmp(kind, "bucket")) {
        const char *ref = spec_str(d, !strcmp(kind, "session") ? "client" : "database");
        ux_entity_t *r = ref ? ux_entity(run, ref) : NULL;
        if (!r || r->kind != (!strcmp(kind, "session") ? ENT_CLIENT : ENT_DATABASE))
            return ux_set(&run->v, 1, "%s %s: no entity %s", kind, id, ref ? ref : "(none)");
        if (!strcmp(kind, "bucket")) return ux_set(&run->v, 2, SKIP_MQC "GridFS");
        return add_entity(run, id, ENT_SESSION) != NULL;
    }
    if (!strcmp(kind, "clientEncryption")) {
        bson_t o, kms;
        if (!spec_sub(d, "clientEncryptionOpts", &o) || !spec_sub(&o, "kmsProviders", &kms) || bson_empty(&kms))
            return ux_set(&run->v, 1, "clientEncryption %s: no kmsProviders", id);
        return ux_set(&run->v, 2, SKIP_MQC "client-side field level encryption");
    }
    if (!strcmp(kind, "thread")) return ux_set(&run->v, 2, SKIP_MQC "threads in the runner (runOnThread)");
    return ux_set(&run->v, 1, "unknown entity type %s", kind);
}

bool ux_create_entities(ux_run_t *run, const bson_t *arr)
{
    bson_iter_t it;
    bson_iter_init(&it, arr);
    while (bson_iter_next(&it)) {
        bson_t d, inner;
        bson_iter_t k;
        if (!spec_sub_iter(&it, &d) || !bson_iter_init(&k, &d) || !bson_iter_next(&k) || !spec_sub_iter(&k, &inner))
            return ux_set(&run->v, 1, "malformed entity");
        if (!create_one(run, bson_iter_key(&k), &inner)) return false;
    }
    return true;
}

static void destroy_entities(ux_run_t *run)
{
    /* Cursors and handles before their clients. */
    for (size_t i = run->n_ents; i-- > 0;) {
        ux_entity_t *e = &run->ents[i];
        if (e->kind == ENT_CURSOR) ux_cursor_free(e->cursor);
        if (e->kind == ENT_DATABASE) mqc_database_destroy(e->db);
        if (e->kind == ENT_COLLECTION) mqc_collection_destroy(e->coll);
        if (e->kind == ENT_VALUE) bson_value_destroy(&e->value);
        if (e->defaults) bson_destroy(e->defaults);
    }
    for (size_t i = 0; i < run->n_ents; i++) {
        ux_entity_t *e = &run->ents[i];
        if (e->kind == ENT_CLIENT && e->uc) {
            mqc_client_destroy(e->uc->client);
            for (size_t j = 0; j < e->uc->n_events; j++) bson_destroy(e->uc->events[j]);
            free(e->uc->events);
            bson_destroy(&e->uc->ignore);
            free(e->uc->id);
            free(e->uc);
        }
        free(e->id);
    }
    run->n_ents = 0;
}

/* ---- one test --------------------------------------------------------------------------------- */

typedef struct {
    char *file;
    bson_t *doc;       /* the whole file */
    int refs;
} ux_file_t;

typedef struct {
    ux_file_t *f;
    uint32_t index;    /* in "tests" */
    bool valid_fail;
    bool rs;           /* a /unified-rs/ twin: against the replica-set-named server */
} ux_case_t;

static void case_free(void *p)
{
    ux_case_t *c = p;
    if (--c->f->refs == 0) {
        free(c->f->file);
        bson_destroy(c->f->doc);
        free(c->f);
    }
    free(c);
}

/* Schema versions: 1.x is read; a minor beyond what this runner was written for (1.25) may use
 * fields it does not know, so such a file is skipped rather than half run; another major fails. */
#define UX_SCHEMA_MINOR 25
static int schema_check(const char *v)
{
    int major = 0, minor = 0;
    if (!v || sscanf(v, "%d.%d", &major, &minor) < 1 || major != 1) return 1;
    return minor > UX_SCHEMA_MINOR ? 2 : 0;
}

static void disable_failpoints(ux_run_t *run)
{
    for (size_t i = 0; i < run->n_failpoints; i++) {
        bson_t cmd = BSON_INITIALIZER;
        BSON_APPEND_UTF8(&cmd, "configureFailPoint", run->failpoints[i]);
        BSON_APPEND_UTF8(&cmd, "mode", "off");
        ux_command(run->internal, "admin", &cmd, NULL, NULL);
        bson_destroy(&cmd);
    }
    run->n_failpoints = 0;
}

static void run_case(ux_run_t *run)
{
    bson_t tests, test, arr;
    bson_iter_t it;
    char why[1024];
    const ux_case_t *c = tf_data();
    const char *sv = spec_str(run->file_doc, "schemaVersion");
    int sc = schema_check(sv);
    if (sc == 1) {
        ux_set(&run->v, 1, "schemaVersion %s is not supported", sv ? sv : "(none)");
        return;
    }
    if (sc == 2) {
        ux_set(&run->v, 2, SKIP_MQC "the runner reads schema versions up to 1.%d, not %s", UX_SCHEMA_MINOR, sv);
        return;
    }
    if (!spec_sub(run->file_doc, "tests", &tests) || !bson_iter_init(&it, &tests)) return;
    for (uint32_t i = 0; i <= c->index; i++) bson_iter_next(&it);
    spec_sub_iter(&it, &test);
    run->test = &test;
    if (!requirements_met(run, run->file_doc, why, sizeof why) || !requirements_met(run, &test, why, sizeof why)) {
        ux_set(&run->v, 2, "%s", why);
        return;
    }
    if (spec_str(&test, "skipReason")) {
        ux_set(&run->v, 2, SKIP_NA "the test says: %s", spec_str(&test, "skipReason"));
        return;
    }
    mqc_error_t err;
    run->internal = mqc_client_new_from_uri(NULL, ux_base_uri(), &err);
    if (!run->internal) {
        ux_set(&run->v, 1, "internal client: %s", err.message);
        return;
    }
    if (spec_sub(run->file_doc, "createEntities", &arr) && !ux_create_entities(run, &arr)) return;
    if (spec_sub(run->file_doc, "initialData", &arr) && !ux_load_initial_data(run, &arr)) return;
    if (!spec_sub(&test, "operations", &arr)) {
        ux_set(&run->v, 1, "test without operations");
        return;
    }
    bson_iter_init(&it, &arr);
    while (bson_iter_next(&it)) {
        bson_t op;
        if (!spec_sub_iter(&it, &op)) {
            ux_set(&run->v, 1, "malformed operation");
            return;
        }
        if (!ux_run_operation(run, &op)) return;
    }
    if (spec_sub(&test, "expectEvents", &arr) && !ux_check_events(run, &arr)) return;
    if (spec_sub(&test, "outcome", &arr) && !ux_check_outcome(run, &arr)) return;
}

static void unified_test(void)
{
    const ux_case_t *c = tf_data();
    g_rs = c->rs;
    /* Whatever may end the test early (no server: FAIL; no replica-set server beside an external
     * one: SKIP) happens before anything is allocated. */
    if (c->rs && tf_server_is_external() && !(getenv("MQC_TEST_RS_URI") && *getenv("MQC_TEST_RS_URI")))
        SKIP(SKIP_NA "MQC_TEST_URI names the server and MQC_TEST_RS_URI no replica set");
    ux_base_uri();
    ux_topology();
    ux_run_t *run = calloc(1, sizeof *run);
    if (!run) abort();
    run->file = c->f->file;
    run->file_doc = c->f->doc;
    run->valid_fail = c->valid_fail;
    run_case(run);
    if (run->internal) disable_failpoints(run);
    destroy_entities(run);
    mqc_client_destroy(run->internal);
    ux_verdict_t v = run->v;
    free(run);
    char gap[1024];
    /* A failure (or a valid-fail case that could not fail) caused by the server, with evidence. */
    if ((v.rc == 1 || (c->valid_fail && v.rc == 0)) && ux_gap_for(tf_current(), v.rc ? v.msg : NULL, gap, sizeof gap)) {
        tf_note("failure: %s", v.rc ? v.msg : "the case passed");
        SKIP("%s", gap);
    }
    if (v.rc == 1 && !c->valid_fail && ux_mqc_gap_for(tf_current(), gap, sizeof gap)) {
        tf_note("failure: %s", v.msg);
        SKIP("%s", gap);
    }
    if (c->valid_fail) {
        /* The meta-test: the runner must reject this case. */
        if (v.rc == 1) {
            tf_note("failed as it must: %s", v.msg);
            return;
        }
        if (v.rc == 2) SKIP("%s", v.msg);
        FAIL("a valid-fail case passed");
    }
    if (v.rc == 1) FAIL("%s", v.msg);
    if (v.rc == 2) SKIP("%s", v.msg);
}

/* ---- registration ----------------------------------------------------------------------------- */

static void collect(const char *dir, char ***files, size_t *n, size_t *cap)
{
    struct dirent **ents;
    int k = scandir(dir, &ents, NULL, alphasort);
    if (k < 0) return;
    for (int i = 0; i < k; i++) {
        char path[4096];
        struct stat st;
        const char *name = ents[i]->d_name;
        snprintf(path, sizeof path, "%s/%s", dir, name);
        if (name[0] != '.' && stat(path, &st) == 0) {
            size_t len = strlen(name);
            if (S_ISDIR(st.st_mode)) collect(path, files, n, cap);
            else if (len > 5 && !strcmp(name + len - 5, ".json")) {
                if (*n == *cap) {
                    *cap = *cap ? *cap * 2 : 256;
                    if (!(*files = realloc(*files, *cap * sizeof **files))) abort();
                }
                (*files)[(*n)++] = strdup(path);
            }
        }
        free(ents[i]);
    }
    free(ents);
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t) sz + 1);
    if (!buf || fread(buf, 1, (size_t) sz, f) != (size_t) sz) {
        free(buf);
        fclose(f);
        return NULL;
    }
    buf[sz] = 0;
    *len = (size_t) sz;
    fclose(f);
    return buf;
}

/* "crud/tests/unified/find.json" -> folder "crud/unified", stem "find". */
static void name_parts(const char *rel, char *folder, size_t fsize, char *stem, size_t ssize)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", rel);
    char *slash = strrchr(tmp, '/');
    const char *base = slash ? slash + 1 : tmp;
    snprintf(stem, ssize, "%.*s", (int) (strlen(base) - 5), base);
    folder[0] = 0;
    if (!slash) return;
    *slash = 0;
    size_t off = 0;
    for (char *save, *seg = strtok_r(tmp, "/", &save); seg; seg = strtok_r(NULL, "/", &save))
        if (strcmp(seg, "tests")) off += (size_t) snprintf(folder + off, fsize - off, "%s%s", off ? "/" : "", seg);
}

/* The folders whose files also run against the replica-set-named FerretDB (as /unified-rs/...):
 * those whose tests need a replica set and whose failures are triaged (the gap lists). */
static bool rs_twin(const char *folder)
{
    static const char *const k[] = {"retryable-writes/", "retryable-writes", "sessions", "retryable-reads/", NULL};
    for (int i = 0; k[i]; i++)
        if (!strncmp(folder, k[i], strlen(k[i])) && (folder[strlen(k[i])] == 0 || folder[strlen(k[i]) - 1] == '/'))
            return true;
    return false;
}

TF_SUITE_INIT(unified_register)
{
    const char *root = tf_spec_dir();
    if (!root) {
        spec_register_skip("/unified/missing", "spec tests folder not found (../shared/spec-tests or --spec-dir)");
        return;
    }
    char **files = NULL;
    size_t n = 0, cap = 0;
    collect(root, &files, &n, &cap);
    size_t rootlen = strlen(root);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        char *text = read_all(files[i], &len);
        /* Only unified files declare a schema version: the rest are other runners' formats. */
        if (!text || !strstr(text, "\"schemaVersion\"")) {
            free(text);
            free(files[i]);
            continue;
        }
        char folder[1024], stem[512], path[4096];
        name_parts(files[i] + rootlen + 1, folder, sizeof folder, stem, sizeof stem);
        bson_error_t berr;
        bson_t *doc = bson_new_from_json((const uint8_t *) text, (ssize_t) len, &berr);
        free(text);
        bson_t tests;
        bson_iter_t it;
        if (!doc || !spec_sub(doc, "tests", &tests)) {
            snprintf(path, sizeof path, "/unified/%s/%s", folder, stem);
            char reason[1024];
            snprintf(reason, sizeof reason, "%s: %s", files[i], doc ? "no tests array" : berr.message);
            spec_register_skip(path, reason);
            if (doc) bson_destroy(doc);
            free(files[i]);
            continue;
        }
        ux_file_t *f = calloc(1, sizeof *f);
        if (!f) abort();
        f->file = files[i];
        f->doc = doc;
        bool vf = strstr(folder, "valid-fail") != NULL;
        bson_iter_init(&it, &tests);
        uint32_t idx = 0;
        while (bson_iter_next(&it)) {
            bson_t t;
            const char *desc = spec_sub_iter(&it, &t) ? spec_str(&t, "description") : NULL;
            ux_case_t *c = calloc(1, sizeof *c);
            if (!c) abort();
            c->f = f;
            c->index = idx++;
            c->valid_fail = vf;
            f->refs++;
            snprintf(path, sizeof path, "/unified/%s/%s/%s", folder, stem, desc && *desc ? desc : "(no description)");
            tf_register(path, unified_test, c, case_free);
            if (rs_twin(folder)) {
                ux_case_t *t2 = calloc(1, sizeof *t2);
                if (!t2) abort();
                *t2 = *c;
                t2->rs = true;
                f->refs++;
                snprintf(path, sizeof path, "/unified-rs/%s/%s/%s", folder, stem, desc && *desc ? desc : "(no description)");
                tf_register(path, unified_test, t2, case_free);
            }
        }
        if (f->refs == 0) {
            free(f->file);
            bson_destroy(f->doc);
            free(f);
        }
    }
    free(files);
}
