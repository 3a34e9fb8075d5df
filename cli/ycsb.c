/* ycsb: YCSB's record and update templates (ycsb.h). Built as BSON directly: a fieldcount of 1000
 * would make a long JSON string for nothing. */
#include "ycsb.h"

#include <stdio.h>

static void rand_string(bson_t *parent, const char *key, uint32_t len)
{
    bson_t t;
    BSON_APPEND_DOCUMENT_BEGIN(parent, key, &t);
    BSON_APPEND_INT32(&t, "$randString", (int32_t) len);
    bson_append_document_end(parent, &t);
}

void mqload_ycsb_document(bson_t *doc, uint32_t fieldcount, uint32_t fieldlength)
{
    if (!fieldcount) fieldcount = MQLOAD_YCSB_FIELDCOUNT;
    if (!fieldlength) fieldlength = MQLOAD_YCSB_FIELDLENGTH;
    bson_reinit(doc);
    bson_t id, empty;
    BSON_APPEND_DOCUMENT_BEGIN(doc, "_id", &id);
    BSON_APPEND_DOCUMENT_BEGIN(&id, "$key", &empty);
    bson_append_document_end(&id, &empty);
    bson_append_document_end(doc, &id);
    for (uint32_t i = 0; i < fieldcount; i++) {
        char key[24];
        snprintf(key, sizeof key, "field%u", i);
        rand_string(doc, key, fieldlength);
    }
}

void mqload_ycsb_update(bson_t *update, uint32_t fieldcount, uint32_t fieldlength)
{
    if (!fieldcount) fieldcount = MQLOAD_YCSB_FIELDCOUNT;
    if (!fieldlength) fieldlength = MQLOAD_YCSB_FIELDLENGTH;
    bson_reinit(update);
    bson_t set, alts;
    BSON_APPEND_DOCUMENT_BEGIN(update, "$set", &set);
    BSON_APPEND_ARRAY_BEGIN(&set, "$choose", &alts);
    for (uint32_t i = 0; i < fieldcount; i++) {
        char idx[16], key[24];
        snprintf(idx, sizeof idx, "%u", i);
        snprintf(key, sizeof key, "field%u", i);
        bson_t alt;
        BSON_APPEND_DOCUMENT_BEGIN(&alts, idx, &alt);
        rand_string(&alt, key, fieldlength);
        bson_append_document_end(&alts, &alt);
    }
    bson_append_array_end(&set, &alts);
    bson_append_document_end(update, &set);
}
