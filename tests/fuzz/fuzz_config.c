/* libFuzzer target: the JSON config loader (config_parse).
 *
 * Any input either parses (then config_free releases it all) or fails
 * with IMQTT_ECONFIG / IMQTT_ENOMEM and a NUL-terminated message; the
 * failed config must be safe to free again (config.h promises that). A
 * config that parses must parse again from the same text to the same
 * result code. Leaks are LeakSanitizer's. */
#include "config.h"
#include "errors.h"
#include "fuzz.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    imqtt_config c;
    char err[256];
    err[0] = 'x';
    int rc = config_parse((const char *)data, size, &c, err, sizeof(err));
    if (rc == 0) {
        FUZZ_CHECK(c.listener_count >= 1 || c.listeners == NULL);
        config_free(&c);
        config_free(&c);
        imqtt_config again;
        FUZZ_CHECK(config_parse((const char *)data, size, &again, err,
                                sizeof(err)) == 0);
        config_free(&again);
    } else {
        FUZZ_CHECK(rc == IMQTT_ECONFIG || rc == IMQTT_ENOMEM);
        FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL);
        FUZZ_CHECK(err[0] != '\0');
        config_free(&c);
    }
    return 0;
}
