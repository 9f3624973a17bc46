/* What every fuzz target uses: a check that stays on in any build type
 * and names the line that failed (libFuzzer keeps the input that made it
 * abort). */
#ifndef IMQTT_FUZZ_H
#define IMQTT_FUZZ_H

#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond)                                                     \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                  \
            abort();                                                         \
        }                                                                    \
    } while (0)

#endif
