#include "report.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

double proc_cpu_s(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: fields are
     * counted from the last ')'. utime and stime are fields 14 and 15. */
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    unsigned long long ut = 0, st = 0;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
               &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

long proc_rss_kb(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kb = -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

static double us(uint64_t ns)
{
    return (double)ns / 1000.0;
}

static void print_text(const bench_result *r, FILE *out)
{
    const bench_hist *h = &r->lat;
    fprintf(out, "scenario     %s\n", r->scenario);
    fprintf(
        out,
        "connections  %llu connected, %llu failed, %llu subscribed, "
        "%llu not subscribed, %llu dropped (set-up %.2f s)\n",
        (unsigned long long)r->connected, (unsigned long long)r->conn_failed,
        (unsigned long long)r->subscribed, (unsigned long long)r->sub_failed,
        (unsigned long long)r->disconnects, r->setup_s);
    fprintf(out, "messages     sent %llu, acked %llu, delivered %llu",
            (unsigned long long)r->sent, (unsigned long long)r->acked,
            (unsigned long long)r->delivered);
    if (r->track_loss)
        fprintf(out, " of %llu expected", (unsigned long long)r->expected);
    fprintf(out, " in %.2f s\n", r->measure_s);
    fprintf(out, "throughput   %.0f msgs/s delivered\n", r->msgs_per_s);
    fprintf(out,
            "errors       lost %llu%s, duplicates %llu, out-of-order %llu"
            ", foreign %llu\n",
            (unsigned long long)r->lost, r->track_loss ? "" : " (untracked)",
            (unsigned long long)r->dup, (unsigned long long)r->ooo,
            (unsigned long long)r->unexpected);
    if (h->count)
        fprintf(out,
                "latency us   p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max "
                "%.1f  mean %.1f\n",
                us(hist_quantile(h, 0.5)), us(hist_quantile(h, 0.9)),
                us(hist_quantile(h, 0.99)), us(hist_quantile(h, 0.999)),
                us(h->max), hist_mean(h) / 1000.0);
    fprintf(out,
            "bench cpu    %.2f s (%.0f%% of one core, %d thread%s, "
            "busiest thread %.0f%%)\n",
            r->self_cpu_s, r->self_cpu_pct, r->threads,
            r->threads == 1 ? "" : "s", r->max_thread_pct);
    if (r->broker_pid > 0) {
        fprintf(out,
                "broker       pid %d, cpu %.3f s, %.4f cpu-s per 1000 "
                "delivered, rss %ld KiB (start %ld KiB, after set-up "
                "%ld KiB, %.0f bytes per connection)\n",
                r->broker_pid, r->broker_cpu_s, r->broker_cpu_per_1k,
                r->broker_rss_kb, r->broker_rss0_kb, r->broker_rss_ready_kb,
                r->broker_bytes_per_conn);
    }
}

static void print_json(const bench_result *r, FILE *out)
{
    const bench_hist *h = &r->lat;
    fprintf(
        out,
        "{\"scenario\":\"%s\",\"setup_s\":%.3f,\"run_s\":%.3f,"
        "\"measure_s\":%.3f,\"connections\":%llu,\"connected\":%llu,"
        "\"conn_failed\":%llu,\"subscribed\":%llu,\"sub_failed\":%llu,"
        "\"disconnects\":%llu,\"sent\":%llu,\"acked\":%llu,"
        "\"delivered\":%llu,\"expected\":%llu,\"lost\":%llu,"
        "\"loss_tracked\":%s,\"duplicates\":%llu,\"out_of_order\":%llu,"
        "\"foreign\":%llu,\"msgs_per_s\":%.1f,",
        r->scenario, r->setup_s, r->run_s, r->measure_s,
        (unsigned long long)r->conns, (unsigned long long)r->connected,
        (unsigned long long)r->conn_failed, (unsigned long long)r->subscribed,
        (unsigned long long)r->sub_failed, (unsigned long long)r->disconnects,
        (unsigned long long)r->sent, (unsigned long long)r->acked,
        (unsigned long long)r->delivered, (unsigned long long)r->expected,
        (unsigned long long)r->lost, r->track_loss ? "true" : "false",
        (unsigned long long)r->dup, (unsigned long long)r->ooo,
        (unsigned long long)r->unexpected, r->msgs_per_s);
    fprintf(out,
            "\"latency_us\":{\"count\":%llu,\"p50\":%.1f,\"p90\":%.1f,"
            "\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f,\"mean\":%.1f},",
            (unsigned long long)h->count, us(hist_quantile(h, 0.5)),
            us(hist_quantile(h, 0.9)), us(hist_quantile(h, 0.99)),
            us(hist_quantile(h, 0.999)), us(h->max), hist_mean(h) / 1000.0);
    fprintf(out,
            "\"bench_cpu_s\":%.3f,\"bench_cpu_pct\":%.1f,\"threads\":%d,"
            "\"busiest_thread_pct\":%.1f",
            r->self_cpu_s, r->self_cpu_pct, r->threads, r->max_thread_pct);
    if (r->broker_pid > 0)
        fprintf(out,
                ",\"broker\":{\"pid\":%d,\"cpu_s\":%.4f,"
                "\"cpu_s_per_1k\":%.6f,\"rss_kb\":%ld,\"rss_start_kb\":%ld,"
                "\"rss_ready_kb\":%ld,\"bytes_per_conn\":%.1f}",
                r->broker_pid, r->broker_cpu_s, r->broker_cpu_per_1k,
                r->broker_rss_kb, r->broker_rss0_kb, r->broker_rss_ready_kb,
                r->broker_bytes_per_conn);
}

/* JSON is left open (no closing brace) so that a scenario can append its
 * own fields; the caller closes it. */
void report_print(const bench_result *r, FILE *out, bool json)
{
    if (json)
        print_json(r, out);
    else
        print_text(r, out);
}
