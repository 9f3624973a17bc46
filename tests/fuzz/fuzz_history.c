/* libFuzzer target: history requests (im_history_parse, docs/im.md
 * History) and the log record decoder (store_imlog_decode).
 *
 * The whole input is a request as a device publishes it to $im/history.
 * On acceptance: exactly the fields the broker relies on are sane — the
 * name is a valid user/group name of its length and NUL-terminated, the
 * limit is 1..page_max, an id is below 2^53, the echoed "req" parses
 * back as JSON and fits its bound; on refusal a reason is given. The
 * same bytes are then decoded as a log record: on success every view
 * lies inside the input. */
#include "errors.h"
#include "fuzz.h"
#include "im_history_req.h"
#include "store_imlog.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <string.h>

#define PAGE_MAX 500

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    im_history_req r;
    const char *why = NULL;
    int rc = im_history_parse(data, size, PAGE_MAX, &r, &why);
    if (rc == 0) {
        FUZZ_CHECK(why == NULL);
        FUZZ_CHECK(r.name_len >= 1 && r.name_len <= IM_ID_PART_MAX);
        FUZZ_CHECK(r.name[r.name_len] == '\0');
        FUZZ_CHECK(strlen(r.name) == r.name_len);
        FUZZ_CHECK(im_id_part_valid(mqtt_str_from(r.name, r.name_len)));
        FUZZ_CHECK(r.limit >= 1 && r.limit <= PAGE_MAX);
        FUZZ_CHECK(r.from <= 9007199254740991ull);
        FUZZ_CHECK(r.forward || r.from == 0 || r.from > 0);
        size_t rl = strlen(r.req);
        FUZZ_CHECK(rl <= IM_HISTORY_REQ_ID_MAX);
        if (rl) {
            cJSON *v = cJSON_Parse(r.req);
            FUZZ_CHECK(v != NULL);
            cJSON_Delete(v);
        }
        FUZZ_CHECK(size <= IM_HISTORY_REQ_MAX);
    } else {
        FUZZ_CHECK(rc == IMQTT_EINVAL);
        FUZZ_CHECK(why != NULL && why[0] != '\0');
    }

    store_imlog_rec rec;
    if (store_imlog_decode(data, size, 1, &rec) == 0) {
        const uint8_t *end = data + size;
        FUZZ_CHECK(rec.from.ptr >= data && rec.from.ptr + rec.from.len <= end);
        FUZZ_CHECK(rec.topic.ptr >= data &&
                   rec.topic.ptr + rec.topic.len <= end);
        FUZZ_CHECK(rec.payload.ptr + rec.payload.len == end);
        FUZZ_CHECK(rec.id == 1);
    }
    return 0;
}
