/* SIGHUP: read the config file again and apply what can change while
 * clients are connected (docs/config.md, column "reload"). The file is
 * parsed into a new imqtt_config; only when it loads and validates in full
 * are its reloadable parts swapped in, so a broken file never leaves the
 * broker with a reset or half-applied security config (BAD_INPUTS row
 * 19). */
#ifndef IMQTT_RELOAD_H
#define IMQTT_RELOAD_H

#include "server.h"

/* Reload from path. Returns 0, or a negative error (logged; nothing
 * changed). */
int reload_apply(server *srv, const char *path);

/* Free what earlier reloads retired (at shutdown, after the loop). */
void reload_free_retired(server *srv);

#endif
