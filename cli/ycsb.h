/* ycsb: the records of YCSB's core workloads (fieldcount fields named field0.. of fieldlength random
 * characters; YCSB's defaults 10 x 100 bytes) and its update, which writes one field chosen at random. */
#ifndef MQLOAD_YCSB_H
#define MQLOAD_YCSB_H

#include <bson/bson.h>
#include <stdint.h>

#define MQLOAD_YCSB_FIELDCOUNT 10
#define MQLOAD_YCSB_FIELDLENGTH 100

/* doc = {_id: {$key: {}}, field0: {$randString: L}, ...} (a template); 0 means YCSB's default. */
void mqload_ycsb_document(bson_t *doc, uint32_t fieldcount, uint32_t fieldlength);
/* update = {$set: {$choose: [{field0: {$randString: L}}, ... {field<n-1>: ...}]}}: YCSB's update with
 * writeallfields=false, one field chosen at random per operation. 0 means YCSB's default. */
void mqload_ycsb_update(bson_t *update, uint32_t fieldcount, uint32_t fieldlength);

#endif
