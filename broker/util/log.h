/* Logging to stderr: one line per event, with a timestamp and a level.
 * Called from the loop thread only (the store thread reports through the
 * loop). */
#ifndef IMQTT_LOG_H
#define IMQTT_LOG_H

#include <stdbool.h>

enum log_level {
    LOG_ERROR = 0,
    LOG_WARN = 1,
    LOG_INFO = 2,
    LOG_DEBUG = 3,
};

void log_set_level(enum log_level level);
/* `imqtt -v`: a DEBUG line per packet received and sent (conn_log.h), and
 * the level held at debug whatever a config (or its reload) says. The
 * packet paths test log_packets, one load and branch, before building
 * anything. */
void log_set_packets(bool on);
extern bool log_packets;
/* JSON lines instead of text (config log.format): one object per line,
 * {"ts","level","msg"} plus "client_id" for connection events (messages
 * that start with "client <id>") and "peer" when the line names one in a
 * form of conn_log.h. */
void log_set_json(bool on);
/* Parse "error", "warn", "info", "debug". Returns 0 or -1. */
int log_level_parse(const char *s, enum log_level *out);

void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

extern enum log_level log_current_level;

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)                       \
    do {                                    \
        if (log_current_level >= LOG_INFO)  \
            log_msg(LOG_INFO, __VA_ARGS__); \
    } while (0)
#define log_debug(...)                       \
    do {                                     \
        if (log_current_level >= LOG_DEBUG)  \
            log_msg(LOG_DEBUG, __VA_ARGS__); \
    } while (0)

#endif
