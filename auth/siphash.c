/* SipHash from the paper (see siphash.h). The state is four 64-bit words;
 * message words are read little-endian whatever the host order, so a
 * hash is the same on every machine for the same key (the unit test checks
 * the paper's vector). */
#include "siphash.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

static inline uint64_t rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

/* One unaligned 8-byte load (memcpy compiles to a mov), in little-endian
 * order: the per-byte loop this replaces was most of a short key's cost
 * (every PUBLISH hashes its topic). */
static inline uint64_t load_le64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return le64toh(v);
}

/* One SipRound: the ARX network of the paper's figure 2.1. */
#define SIPROUND(v0, v1, v2, v3) \
    do {                         \
        v0 += v1;                \
        v1 = rotl(v1, 13);       \
        v1 ^= v0;                \
        v0 = rotl(v0, 32);       \
        v2 += v3;                \
        v3 = rotl(v3, 16);       \
        v3 ^= v2;                \
        v0 += v3;                \
        v3 = rotl(v3, 21);       \
        v3 ^= v0;                \
        v2 += v1;                \
        v1 = rotl(v1, 17);       \
        v1 ^= v2;                \
        v2 = rotl(v2, 32);       \
    } while (0)

/* c compression rounds per 8-byte word, d finalization rounds. Inlined
 * into the two public functions so the round counts are constants. */
static inline uint64_t siphash_cd(const siphash_key *k, const uint8_t *in,
                                  size_t len, int c, int d)
{
    /* Initialization constants: "somepseudorandomlygeneratedbytes". */
    uint64_t v0 = k->k0 ^ 0x736f6d6570736575ull;
    uint64_t v1 = k->k1 ^ 0x646f72616e646f6dull;
    uint64_t v2 = k->k0 ^ 0x6c7967656e657261ull;
    uint64_t v3 = k->k1 ^ 0x7465646279746573ull;

    size_t full = len & ~(size_t)7;
    for (size_t off = 0; off < full; off += 8) {
        uint64_t m = load_le64(in + off);
        v3 ^= m;
        for (int i = 0; i < c; i++)
            SIPROUND(v0, v1, v2, v3);
        v0 ^= m;
    }

    /* Last word: the remaining 0..7 bytes, the length mod 256 in the top
     * byte. */
    uint8_t tail[8] = {0};
    memcpy(tail, in + full, len & 7);
    uint64_t b = load_le64(tail) | (uint64_t)(len & 0xff) << 56;
    v3 ^= b;
    for (int i = 0; i < c; i++)
        SIPROUND(v0, v1, v2, v3);
    v0 ^= b;

    v2 ^= 0xff;
    for (int i = 0; i < d; i++)
        SIPROUND(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
}

uint64_t siphash13(const siphash_key *k, const void *data, size_t len)
{
    return siphash_cd(k, data, len, 1, 3);
}

uint64_t siphash24(const siphash_key *k, const void *data, size_t len)
{
    return siphash_cd(k, data, len, 2, 4);
}

static siphash_key process_key;
static atomic_bool process_key_ready;
static pthread_once_t process_key_once = PTHREAD_ONCE_INIT;

static bool urandom_fill(uint8_t *buf, size_t len)
{
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    return got == len;
}

bool auth_random_bytes(void *out, size_t len)
{
    uint8_t *buf = out;
    size_t got = 0;
    /* Flags 0: block only until the kernel's pool is first initialized
     * (early boot), never weak bytes. */
    while (got < len) {
        ssize_t n = getrandom(buf + got, len - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return got == len || urandom_fill(buf, len);
}

static void draw_process_key(void)
{
    uint8_t buf[16];
    if (!auth_random_bytes(buf, sizeof buf)) {
        fprintf(stderr, "imqtt: no randomness for the hash key "
                        "(getrandom and /dev/urandom failed)\n");
        abort();
    }
    process_key.k0 = load_le64(buf);
    process_key.k1 = load_le64(buf + 8);
    memset(buf, 0, sizeof buf);
    atomic_store_explicit(&process_key_ready, true, memory_order_release);
}

const siphash_key *siphash_process_key(void)
{
    /* The flag keeps pthread_once's call off the per-lookup path. */
    if (!atomic_load_explicit(&process_key_ready, memory_order_acquire))
        pthread_once(&process_key_once, draw_process_key);
    return &process_key;
}

uint64_t siphash_keyed(const void *data, size_t len)
{
    return siphash13(siphash_process_key(), data, len);
}
