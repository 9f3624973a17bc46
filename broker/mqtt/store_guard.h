/* Verifying a store before the broker maps it.
 *
 * LMDB keeps no checksums: a page whose bytes were overwritten can make it
 * read out of bounds or loop, in whatever process reads the page. So at
 * start-up a forked child walks the whole store first (the checks of
 * --check-store); if the child finds a bad record, dies of a signal or
 * does not finish in time, the broker refuses to start with a clear error
 * instead of crashing later on the bad page (issue 4: corrupt and
 * truncated files give a clear error and a non-zero exit, no crash).
 */
#ifndef IMQTT_STORE_GUARD_H
#define IMQTT_STORE_GUARD_H

/* Returns 0 when the store in dir is absent or consistent, IMQTT_ECORRUPT
 * (with a log line saying how it failed) otherwise. Call before any
 * thread is started: it forks. */
int store_guard_verify(const char *dir, unsigned timeout_ms);

#endif
