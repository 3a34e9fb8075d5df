/* The unified test format runner (source/unified-test-format/unified-test-format.md upstream):
 * entities, operations and matching. One test per case, named
 * /unified/<folder>/<file>/<description>; every verdict that is not a pass says why, and a skip
 * says which of three kinds it is (see SKIP_* below). */
#ifndef MQC_UNIFIED_H
#define MQC_UNIFIED_H

#include <bson/bson.h>
#include <stdbool.h>

#include "mqc.h"

/* The three kinds of skip; the summary (scripts/spec-summary) counts by these prefixes. */
#define SKIP_SERVER "server cannot: "          /* a FerretDB gap, with evidence in tests/unified/gaps.txt */
#define SKIP_MQC "mqc does not have it yet: "  /* followed by the feature's name */
#define SKIP_NA "does not apply: "             /* topology, version, server parameters */

/* ENT_SESSION is a placeholder: mqc has no explicit sessions, so a test that uses one (as an
 * operation's object or argument, or through $$sessionLsid) is skipped when it does. */
typedef enum { ENT_CLIENT = 1, ENT_DATABASE, ENT_COLLECTION, ENT_CURSOR, ENT_VALUE, ENT_EVENTS, ENT_SESSION } ent_kind_t;

typedef struct ux_client ux_client_t;

typedef struct {
    char *id;
    ent_kind_t kind;
    ux_client_t *uc;              /* ENT_CLIENT */
    mqc_database_t *db;           /* ENT_DATABASE */
    mqc_collection_t *coll;       /* ENT_COLLECTION */
    mqc_client_t *client;         /* the client a database/collection/cursor uses */
    struct ux_cursor *cursor;     /* ENT_CURSOR */
    bson_value_t value;           /* ENT_VALUE */
    bson_t *events;               /* ENT_EVENTS: an array of stored events */
    bson_t *defaults;             /* database/collection options: opts every operation inherits */
    const char *lacks;            /* static: a feature this entity needs and mqc lacks (serverApi) */
} ux_entity_t;

/* The verdict of a test: 0 pass, 1 fail, 2 skip; the first reason stays. */
typedef struct {
    int rc;
    char msg[2048];
} ux_verdict_t;

/* A client entity: the mqc client and the events it was asked to observe. */
struct ux_client {
    char *id;
    mqc_client_t *client;
    bson_t **events;              /* {"<name>Event": {...}} in arrival order */
    size_t n_events, cap_events;
    unsigned observe;             /* bits of observed event names (runner.c) */
    bson_t ignore;                /* ignoreCommandMonitoringEvents: command names */
    bool observe_sensitive;
    int64_t checked_out;          /* connections checked out now (from pool events, always counted) */
};

#define UX_MAX_ENTITIES 64
#define UX_MAX_FAILPOINTS 16

typedef struct ux_run {
    const char *file;             /* path of the JSON file */
    const bson_t *file_doc;
    const bson_t *test;
    ux_entity_t ents[UX_MAX_ENTITIES];
    size_t n_ents;
    mqc_client_t *internal;       /* for initialData, outcome and clean-up */
    char failpoints[UX_MAX_FAILPOINTS][128];
    mqc_client_t *failpoint_clients[UX_MAX_FAILPOINTS];
    size_t n_failpoints;
    ux_verdict_t v;
    bool valid_fail;              /* a case of valid-fail: must fail */
} ux_run_t;

/* ---- runner.c ---- */
const char *ux_base_uri(void);
/* Runs cmd on db with client and waits; reply copied into *reply (NULL ok). */
bool ux_command(mqc_client_t *client, const char *db, const bson_t *cmd, bson_t *reply, mqc_error_t *err);
/* Creates the entities of an array (createEntities); false with the verdict set. */
bool ux_create_entities(ux_run_t *run, const bson_t *arr);
/* Server facts for runOnRequirements. */
const char *ux_server_version(void);
const char *ux_topology(void);

/* ---- events.c ---- */
/* The bit of an observable event name in ux_client_t.observe, or -1. */
int ux_event_bit(const char *name);
/* Monitoring hooks (ud: the ux_client_t). */
void ux_on_command_event(const mqc_command_event_t *e, void *ud);
void ux_on_pool_event(const mqc_pool_event_t *e, void *ud);
void ux_on_topology_event(const mqc_topology_event_t *e, void *ud);
/* expectEvents; false with the verdict set. */
bool ux_check_events(ux_run_t *run, const bson_t *arr);

/* ---- data.c ---- */
bool ux_load_initial_data(ux_run_t *run, const bson_t *arr);
bool ux_check_outcome(ux_run_t *run, const bson_t *arr);

/* ---- gaps.c ---- */
/* True (why set, a "server cannot" reason with its evidence) when test_path, or its failure
 * message, is a known FerretDB gap and the server is FerretDB. */
bool ux_gap_for(const char *test_path, const char *failure, char *why, size_t size);
/* True (why set, a "mqc does not have it yet" reason naming the feature) when test_path is listed
 * in tests/unified/mqc-gaps.txt. */
bool ux_mqc_gap_for(const char *test_path, char *why, size_t size);

/* ---- ops.c ---- */
struct ux_cursor;
void ux_cursor_free(struct ux_cursor *c);
/* Runs one operation document; false with the verdict set (fail or skip). */
bool ux_run_operation(ux_run_t *run, const bson_t *op);
/* Known operation names of the format (an unknown one is a failure, a known one mqc lacks a skip). */
bool ux_operation_known(const char *name);

__attribute__((format(printf, 3, 4))) bool ux_set(ux_verdict_t *v, int rc, const char *fmt, ...);

/* ---- matching (match.c) ---- */
/* Matches actual against expected with the special operators. root: extra keys allowed in
 * actual's top-level document. path names the place for the reason. */
bool ux_match(ux_run_t *run, const bson_value_t *expected, const bson_value_t *actual, bool root, const char *path,
              char *why, size_t why_size);
bool ux_match_doc(ux_run_t *run, const bson_t *expected, const bson_t *actual, bool root, char *why, size_t why_size);
/* The entity named id, or NULL. */
ux_entity_t *ux_entity(ux_run_t *run, const char *id);
/* A short JSON of a value (for messages), in buf. */
const char *ux_value_json(const bson_value_t *v, char *buf, size_t size);

#endif
