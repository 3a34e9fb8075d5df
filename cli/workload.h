/* workload: what operations run, how often, on which documents.
 *
 * A workload comes from --op, --mix, --preset or --workload FILE (Extended JSON, see
 * docs/mqload/mqload.md). It is parsed once into a read-only description shared by all threads; each
 * thread then makes its own instance (compiled templates, random generator, key distribution,
 * insert sequence) and draws operations from it without sharing anything. */
#ifndef MQLOAD_WORKLOAD_H
#define MQLOAD_WORKLOAD_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>

#include "args.h"
#include "keydist.h"
#include "rng.h"
#include "template.h"

typedef enum {
    MQLOAD_OP_FIND = 0,   /* find_one(filter) */
    MQLOAD_OP_INSERT,     /* insert_one(document) with a fresh key */
    MQLOAD_OP_UPDATE,     /* update_one(filter, update) */
    MQLOAD_OP_DELETE,     /* delete_one(filter) */
    MQLOAD_OP_AGGREGATE,  /* aggregate(pipeline), every batch */
    MQLOAD_OP_COUNT,      /* count_documents(filter) */
    MQLOAD_OP_COMMAND,    /* command on a database */
    MQLOAD_OP_SCAN,       /* find(filter, options: limit, batchSize, sort), every batch (ycsb-e) */
    MQLOAD_OP_RMW,        /* find_one then update_one of the same key (ycsb-f), timed together */
    MQLOAD_OP__COUNT
} mqload_op_type_t;

#define MQLOAD_MAX_OPS 32

typedef struct {
    mqload_op_type_t type;
    char name[32];            /* label in reports (the type's name unless the workload names it) */
    double weight;
    bson_t filter, document, update, pipeline, command, options; /* template sources (empty = default) */
    bool pipeline_set;
    char cmd_db[64];          /* command: the database (default "admin") */
} mqload_opdef_t;

typedef struct {
    char name[64];            /* preset, "mix", "op:<name>" or the file's "name" */
    mqload_opdef_t ops[MQLOAD_MAX_OPS];
    size_t n_ops;
    bson_t document;          /* the default document template: inserts and seeding */
    int key_dist;             /* mqload_keydist_kind_t */
    uint64_t keys;            /* key space [0, keys) */
    char db[64], collection[128];
    char id[17];              /* workload_id: hash of the normalized description (hex) */
} mqload_workload_t;

const char *mqload_op_type_name(mqload_op_type_t t);
int mqload_op_type_parse(const char *name);

/* Builds the workload from cfg (reads --workload FILE). false with err set: unreadable file,
 * invalid Extended JSON, unknown op, bad weights, malformed templates. cfg's --db/--collection/
 * --keys/--key-dist override the file's. */
bool mqload_workload_load(mqload_workload_t *wl, const mqload_config_t *cfg, char *err, size_t errsize);
void mqload_workload_free(mqload_workload_t *wl);
/* The normalized description (what workload_id hashes), for the JSON report. */
void mqload_workload_to_bson(const mqload_workload_t *wl, bson_t *out);

/* One drawn operation. Its documents are valid until the next draw: each is a template's own
 * document (mqload_template_render), one of the instance's buffers, or an empty document. */
typedef struct {
    size_t op;                /* index into the workload's ops */
    mqload_op_type_t type;
    int64_t key;
    union {
        struct {
            const bson_t *filter, *document, *update, *pipeline, *command, *options;
        };
        const bson_t *docs[6];
    };
    bson_t buf[6];            /* where the templates that are walked render, in the order above */
    size_t docs_op;           /* the op whose draw docs hold (the others empty); SIZE_MAX: unknown */
} mqload_opinst_t;

void mqload_opinst_init(mqload_opinst_t *oi);
void mqload_opinst_free(mqload_opinst_t *oi);

typedef struct {
    union {
        struct {
            mqload_template_t *filter, *document, *update, *pipeline, *command, *options;
        };
        mqload_template_t *tpl[6]; /* in the order of mqload_opinst_t's docs */
    };
    /* What a draw renders: the index (in mqload_opinst_t's docs) of each document the operation
     * sends when submitted; the others stay empty. */
    uint8_t drawn[6];
    size_t n_drawn;
} mqload_compiled_op_t;

/* A thread's instance of a workload. */
typedef struct {
    const mqload_workload_t *wl;
    mqload_compiled_op_t ops[MQLOAD_MAX_OPS];
    double cum[MQLOAD_MAX_OPS];   /* cumulative weights */
    mqload_rng_t rng;
    mqload_keydist_t keys;
    mqload_tctx_t tctx;
    uint64_t lane, lanes;
    uint64_t inserts;             /* fresh keys handed out by this lane */
    uint64_t latest;              /* newest key known to exist (for the "latest" distribution) */
} mqload_wl_thread_t;

/* lane/lanes: this thread's place among all threads of all workers (fresh insert keys are
 * keys + lane + lanes * i, so no two threads insert the same _id). */
bool mqload_wl_thread_init(mqload_wl_thread_t *t, const mqload_workload_t *wl, uint64_t rng_seed, uint64_t lane,
                           uint64_t lanes, char *err, size_t errsize);
void mqload_wl_thread_free(mqload_wl_thread_t *t);
/* Draws the next operation into oi. */
void mqload_wl_next(mqload_wl_thread_t *t, mqload_opinst_t *oi);
/* The seeding document of key (the workload's document template with $key = key). */
void mqload_wl_seed_doc(mqload_wl_thread_t *t, int64_t key, bson_t *out);
/* Fills oi->update for an RMW after its read (the same key). */
void mqload_wl_rmw_update(mqload_wl_thread_t *t, mqload_opinst_t *oi);

#endif
