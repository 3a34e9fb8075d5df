#include "tf.h"
#include "common.h"

TEST("/error/set_and_name", error_set_and_name)
{
    mqc_error_t e;
    mqc_error_set(&e, MQC_ERROR_NETWORK, 111, "connect to %s failed\nbadly", "127.0.0.1:1");
    ASSERT(mqc_error_is_set(&e));
    ASSERT_STR_EQ(mqc_error_domain_name(e.domain), "network");
    ASSERT_STR_EQ(e.message, "connect to 127.0.0.1:1 failed badly");
    ASSERT_EQ(e.code, 111);
}
