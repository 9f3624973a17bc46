/* The process_* metrics every Prometheus client library exports (CPU,
 * memory, descriptors, start time; read from /proc/self, Linux) and
 * imqtt_build_info, as Prometheus text appended to /metrics. */
#ifndef IMQTT_METRICS_PROCESS_H
#define IMQTT_METRICS_PROCESS_H

#include <stddef.h>

/* Write the families into out[0..cap) (NUL-terminated); returns the
 * length, or 0 when cap is too small. A value /proc cannot give (another
 * OS, a restricted /proc) is left out rather than reported as 0. */
size_t metrics_process_text(char *out, size_t cap);

#endif
