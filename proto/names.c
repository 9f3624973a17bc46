#include "mqtt_types.h"

const char *mqtt_type_name(int type)
{
    static const char *const names[] = {
        "RESERVED",  "CONNECT",  "CONNACK",     "PUBLISH",
        "PUBACK",    "PUBREC",   "PUBREL",      "PUBCOMP",
        "SUBSCRIBE", "SUBACK",   "UNSUBSCRIBE", "UNSUBACK",
        "PINGREQ",   "PINGRESP", "DISCONNECT",  "AUTH",
    };
    if (type < 0 || type > 15)
        return "?";
    return names[type];
}
