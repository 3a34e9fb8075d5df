/* Database and collection handles: names plus the client. */
#include <stdlib.h>
#include <string.h>

#include "handles.h"

mqc_database_t *mqc_client_get_database(mqc_client_t *client, const char *db)
{
    mqc_database_t *d = calloc(1, sizeof *d);
    if (!d) abort();
    d->client = client;
    d->name = strdup(db ? db : "");
    return d;
}

void mqc_database_destroy(mqc_database_t *d)
{
    if (!d) return;
    free(d->name);
    free(d);
}

const char *mqc_database_get_name(const mqc_database_t *d) { return d->name; }
mqc_client_t *mqc_database_get_client(const mqc_database_t *d) { return d->client; }

mqc_op_t *mqc_database_command(mqc_database_t *d, const bson_t *command, const bson_t *opts, mqc_reply_cb cb,
                               void *ud)
{
    return mqc_client_command(d->client, d->name, command, opts, cb, ud);
}

mqc_collection_t *mqc_client_get_collection(mqc_client_t *client, const char *db, const char *coll)
{
    mqc_collection_t *c = calloc(1, sizeof *c);
    if (!c) abort();
    c->client = client;
    c->db = strdup(db ? db : "");
    c->name = strdup(coll ? coll : "");
    c->db_len = strlen(c->db);
    c->name_len = strlen(c->name);
    return c;
}

mqc_collection_t *mqc_database_get_collection(mqc_database_t *d, const char *coll)
{
    return mqc_client_get_collection(d->client, d->name, coll);
}

void mqc_collection_destroy(mqc_collection_t *c)
{
    if (!c) return;
    free(c->db);
    free(c->name);
    free(c);
}

const char *mqc_collection_get_name(const mqc_collection_t *c) { return c->name; }
mqc_client_t *mqc_collection_get_client(const mqc_collection_t *c) { return c->client; }
