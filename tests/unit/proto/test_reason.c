/* Reason code names and the mappings to 3.1.1 codes and from decode
 * errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "errors.h"
#include "reason.h"

#include <string.h>

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(mqtt_reason_name(0x00), "Success");
    assert_string_equal(mqtt_reason_name(0x87), "Not authorized");
    assert_string_equal(mqtt_reason_name(0x95), "Packet too large");
    assert_string_equal(mqtt_reason_name(0xA2),
                        "Wildcard Subscriptions not supported");
    assert_string_equal(mqtt_reason_name(0x03), "?");
    assert_string_equal(mqtt_reason_name(0xFF), "?");
    /* every code has a name, every non-code is "?" */
    unsigned named = 0;
    for (unsigned rc = 0; rc < 256; rc++) {
        if (strcmp(mqtt_reason_name((uint8_t)rc), "?") != 0)
            named++;
    }
#define COUNT_(name, value, text) +1
    assert_int_equal(named, 0 MQTT_REASON_MAP(COUNT_));
#undef COUNT_
}

static void test_v3_connack(void **state)
{
    (void)state;
    assert_int_equal(mqtt_reason_to_v3_connack(MQTT_RC_SUCCESS),
                     MQTT_V3_ACCEPTED);
    assert_int_equal(
        mqtt_reason_to_v3_connack(MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION),
        MQTT_V3_BAD_VERSION);
    assert_int_equal(mqtt_reason_to_v3_connack(MQTT_RC_CLIENT_ID_NOT_VALID),
                     MQTT_V3_ID_REJECTED);
    assert_int_equal(
        mqtt_reason_to_v3_connack(MQTT_RC_BAD_USERNAME_OR_PASSWORD),
        MQTT_V3_BAD_CREDENTIALS);
    assert_int_equal(mqtt_reason_to_v3_connack(MQTT_RC_NOT_AUTHORIZED),
                     MQTT_V3_NOT_AUTHORIZED);
    assert_int_equal(mqtt_reason_to_v3_connack(MQTT_RC_BANNED),
                     MQTT_V3_NOT_AUTHORIZED);
    assert_int_equal(mqtt_reason_to_v3_connack(MQTT_RC_BAD_AUTH_METHOD),
                     MQTT_V3_NOT_AUTHORIZED);
    assert_int_equal(mqtt_reason_to_v3_connack(MQTT_RC_SERVER_UNAVAILABLE),
                     MQTT_V3_UNAVAILABLE);
    assert_int_equal(mqtt_reason_to_v3_connack(MQTT_RC_SERVER_BUSY),
                     MQTT_V3_UNAVAILABLE);
    assert_int_equal(mqtt_reason_to_v3_connack(MQTT_RC_SERVER_SHUTTING_DOWN),
                     MQTT_V3_UNAVAILABLE);
    assert_int_equal(mqtt_reason_to_v3_connack(MQTT_RC_UNSPECIFIED_ERROR),
                     MQTT_V3_UNAVAILABLE);
    assert_int_equal(mqtt_reason_to_v3_connack(MQTT_RC_QUOTA_EXCEEDED),
                     MQTT_V3_UNAVAILABLE);
    /* only Success accepts: everything else refuses */
    for (unsigned rc = 1; rc < 256; rc++) {
        uint8_t v3 = mqtt_reason_to_v3_connack((uint8_t)rc);
        assert_in_range(v3, MQTT_V3_BAD_VERSION, MQTT_V3_NOT_AUTHORIZED);
    }
}

static void test_v3_suback(void **state)
{
    (void)state;
    assert_int_equal(mqtt_reason_to_v3_suback(0x00), 0x00);
    assert_int_equal(mqtt_reason_to_v3_suback(0x01), 0x01);
    assert_int_equal(mqtt_reason_to_v3_suback(0x02), 0x02);
    for (unsigned rc = 3; rc < 256; rc++)
        assert_int_equal(mqtt_reason_to_v3_suback((uint8_t)rc),
                         MQTT_V3_SUBACK_FAILURE);
}

static void test_for_error(void **state)
{
    (void)state;
    assert_int_equal(mqtt_reason_for_error(0), MQTT_RC_SUCCESS);
    assert_int_equal(mqtt_reason_for_error(IMQTT_ETOOLARGE),
                     MQTT_RC_PACKET_TOO_LARGE);
    assert_int_equal(mqtt_reason_for_error(IMQTT_EVERSION),
                     MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION);
    assert_int_equal(mqtt_reason_for_error(IMQTT_EPROTONAME),
                     MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION);

    static const int proto_err[] = {
        IMQTT_EPROPDUP, IMQTT_EPROPVAL,  IMQTT_EEMPTY,  IMQTT_ETOPIC,
        IMQTT_EFILTER,  IMQTT_EPACKETID, IMQTT_EREASON, IMQTT_ETYPE,
    };
    for (size_t i = 0; i < sizeof proto_err / sizeof proto_err[0]; i++)
        assert_int_equal(mqtt_reason_for_error(proto_err[i]),
                         MQTT_RC_PROTOCOL_ERROR);

    static const int malformed[] = {
        IMQTT_EVARINT,   IMQTT_EFLAGS,   IMQTT_EMALFORMED, IMQTT_ETRAILING,
        IMQTT_ERESERVED, IMQTT_EQOS,     IMQTT_EUTF8,      IMQTT_EWILL,
        IMQTT_EPROPID,   IMQTT_EPROPPKT,
    };
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++)
        assert_int_equal(mqtt_reason_for_error(malformed[i]),
                         MQTT_RC_MALFORMED_PACKET);

    assert_int_equal(mqtt_reason_for_error(IMQTT_EPROTOCOL),
                     MQTT_RC_PROTOCOL_ERROR);
    assert_int_equal(mqtt_reason_for_error(IMQTT_ESERVERONLY),
                     MQTT_RC_PROTOCOL_ERROR);
    assert_int_equal(mqtt_reason_for_error(IMQTT_EALIAS),
                     MQTT_RC_TOPIC_ALIAS_INVALID);
    assert_int_equal(mqtt_reason_for_error(IMQTT_ERECVMAX),
                     MQTT_RC_RECEIVE_MAXIMUM_EXCEEDED);
    assert_int_equal(mqtt_reason_for_error(IMQTT_ERETAINNS),
                     MQTT_RC_RETAIN_NOT_SUPPORTED);
    assert_int_equal(mqtt_reason_for_error(IMQTT_EDENIED),
                     MQTT_RC_NOT_AUTHORIZED);
    assert_int_equal(mqtt_reason_for_error(IMQTT_EQUOTA),
                     MQTT_RC_QUOTA_EXCEEDED);

    assert_int_equal(mqtt_reason_for_error(IMQTT_ENOMEM),
                     MQTT_RC_UNSPECIFIED_ERROR);
    assert_int_equal(mqtt_reason_for_error(-5 /* -EIO */),
                     MQTT_RC_UNSPECIFIED_ERROR);

    /* every codec error maps to a failure code */
    for (int e = IMQTT_ERR_BASE_ + 1; e < IMQTT_ERR_END_; e++)
        assert_true(mqtt_reason_for_error(e) >= 0x80);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_v3_connack),
        cmocka_unit_test(test_v3_suback),
        cmocka_unit_test(test_for_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
