/* Database and collection handles: a name and the client (lib/handles.c). */
#ifndef MQC_HANDLES_H
#define MQC_HANDLES_H

#include "mqc.h"

struct mqc_collection {
    mqc_client_t *client;
    char *db;
    char *name;
    size_t db_len, name_len;     /* strlen of each: a find_one would measure both every time */
};

struct mqc_database {
    mqc_client_t *client;
    char *name;
};

/* lib/write.c: empties the client's free-list of bulks (client destroy). */
void mqc_bulk_free_list_drain(mqc_client_t *client);

#endif
