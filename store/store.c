#include "store.h"

#include <stdlib.h>
#include <string.h>

#include "errors.h"

struct store {
    enum store_durability durability;
    uint64_t commits;
};

int store_durability_parse(const char *s, enum store_durability *out)
{
    static const char *const names[] = {"none", "process", "full"};
    for (int i = 0; i < 3; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum store_durability)i;
            return 0;
        }
    }
    return IMQTT_EINVAL;
}

const char *store_durability_name(enum store_durability d)
{
    switch (d) {
    case STORE_NONE:
        return "none";
    case STORE_PROCESS:
        return "process";
    case STORE_FULL:
        return "full";
    }
    return "?";
}

int store_open(const store_options *opts, store **out)
{
    if (opts->durability != STORE_NONE)
        return IMQTT_EINVAL;
    store *s = calloc(1, sizeof(*s));
    if (!s)
        return IMQTT_ENOMEM;
    s->durability = opts->durability;
    *out = s;
    return 0;
}

void store_close(store *s)
{
    free(s);
}

enum store_durability store_level(const store *s)
{
    return s->durability;
}

int store_commit(store *s, store_done_cb cb, void *arg)
{
    /* With no durable copy to wait for, the broker's memory already holds
     * everything the batch would: the commit is complete now. */
    s->commits++;
    cb(arg, 0);
    return 0;
}

uint64_t store_commit_count(const store *s)
{
    return s->commits;
}
