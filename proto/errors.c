#include "errors.h"

#include <string.h>

const char *imqtt_strerror(int err)
{
    switch (err) {
    case IMQTT_OK:
        return "success";
#define IMQTT_ERR_CASE_(name, text) \
    case IMQTT_E##name:             \
        return text;
        IMQTT_ERRNO_MAP(IMQTT_ERR_CASE_)
#undef IMQTT_ERR_CASE_
    default:
        break;
    }
    /* libuv and the system report negative errno values. strerror is not
     * reentrant in theory, but glibc returns static strings for known
     * values and we only log from the loop thread. */
    if (err < 0 && err > -4096)
        return strerror(-err);
    return "unknown error";
}
