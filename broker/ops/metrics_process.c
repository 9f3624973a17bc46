/* process_* and imqtt_build_info for /metrics (metrics_process.h). Read at
 * scrape time: /proc files are produced by the kernel from memory, so
 * reading them does not wait for a disk. */
#include "metrics_process.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <mbedtls/version.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#ifndef IMQTT_VERSION
#error \
    "IMQTT_VERSION is defined by the build (project VERSION in CMakeLists.txt)"
#endif
#ifndef IMQTT_BUILD_TYPE
#define IMQTT_BUILD_TYPE "unknown"
#endif

typedef struct out {
    char *p;
    size_t len, cap;
    bool full;
} out;

__attribute__((format(printf, 2, 3))) static void put(out *o, const char *fmt,
                                                      ...)
{
    if (o->full)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->cap - o->len)
        o->full = true;
    else
        o->len += (size_t)n;
}

static void family(out *o, const char *name, const char *type, const char *help)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Fields 14 (utime), 15 (stime), 22 (starttime, ticks after boot), 23
 * (vsize, bytes) and 24 (rss, pages) of /proc/self/stat. The command name
 * (field 2) may hold spaces and parentheses: count from its last ')'. */
struct self_stat {
    unsigned long long utime, stime, start, vsize, rss;
};

static bool read_self_stat(struct self_stat *st)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p)
        return false;
    /* After ") ": field 3 (state) is token 0, so field k is token k - 3. */
    unsigned long long v[22] = {0};
    int tok = 0;
    char *save = NULL;
    for (char *s = strtok_r(p + 1, " ", &save); s && tok < 22;
         s = strtok_r(NULL, " ", &save))
        v[tok++] = strtoull(s, NULL, 10);
    if (tok < 22)
        return false;
    *st = (struct self_stat){v[11], v[12], v[19], v[20], v[21]};
    return true;
}

/* Seconds since the epoch at boot (/proc/stat "btime"), 0 if unknown. */
static unsigned long long boot_time(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return 0;
    char line[256];
    unsigned long long bt = 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "btime %llu", &bt) == 1)
            break;
    fclose(f);
    return bt;
}

/* Open descriptors: the entries of /proc/self/fd, less the one the
 * listing itself holds open. -1 if it cannot be read. */
static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n > 0 ? n - 1 : 0;
}

static void process_families(out *o)
{
    long tick = sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    struct self_stat st;
    if (tick > 0 && page > 0 && read_self_stat(&st)) {
        family(o, "process_cpu_seconds_total", "counter",
               "User and system CPU time of the broker process, seconds");
        put(o, "process_cpu_seconds_total %.2f\n",
            (double)(st.utime + st.stime) / (double)tick);
        family(o, "process_resident_memory_bytes", "gauge",
               "Resident memory of the broker process, bytes");
        put(o, "process_resident_memory_bytes %llu\n",
            st.rss * (unsigned long long)page);
        family(o, "process_virtual_memory_bytes", "gauge",
               "Virtual memory of the broker process, bytes");
        put(o, "process_virtual_memory_bytes %llu\n", st.vsize);
        /* Constant for the process: boot time read once. */
        static unsigned long long btime;
        if (!btime)
            btime = boot_time();
        if (btime) {
            family(o, "process_start_time_seconds", "gauge",
                   "Start time of the broker process, seconds since the "
                   "Unix epoch");
            put(o, "process_start_time_seconds %.2f\n",
                (double)btime + (double)st.start / (double)tick);
        }
    }
    long fds = open_fds();
    if (fds >= 0) {
        family(o, "process_open_fds", "gauge",
               "File descriptors the broker process has open");
        put(o, "process_open_fds %ld\n", fds);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        family(o, "process_max_fds", "gauge",
               "Most file descriptors the broker process may open "
               "(RLIMIT_NOFILE)");
        put(o, "process_max_fds %llu\n",
            rl.rlim_cur == RLIM_INFINITY ? 18446744073709551615ull
                                         : (unsigned long long)rl.rlim_cur);
    }
}

static void build_info(out *o)
{
    /* The value is always 1; the labels are the information (the
     * Prometheus convention for *_build_info). */
    family(o, "imqtt_build_info", "gauge",
           "The broker's version and build, in labels; always 1");
    put(o,
        "imqtt_build_info{version=\"%s\",build_type=\"%s\",libuv=\"%s\","
        "mbedtls=\"%s\",cjson=\"%s\"} 1\n",
        IMQTT_VERSION, IMQTT_BUILD_TYPE, uv_version_string(),
        MBEDTLS_VERSION_STRING, cJSON_Version());
}

size_t metrics_process_text(char *buf, size_t cap)
{
    out o = {buf, 0, cap, false};
    if (cap == 0)
        return 0;
    buf[0] = '\0';
    process_families(&o);
    build_info(&o);
    return o.full ? 0 : o.len;
}
