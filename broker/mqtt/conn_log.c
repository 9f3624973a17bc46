/* Log text for connections and, with -v, the per-packet trace. */
#include "conn_log.h"

#include <stdio.h>
#include <string.h>

#include "session.h"

const char *conn_who(const conn *c)
{
    static char text[160];
    if (!c->sess)
        return conn_peer(c);
    snprintf(text, sizeof(text), "client %s (%s)", c->sess->client_id,
             conn_peer(c));
    return text;
}

const char *log_hostport(const char *host, unsigned port)
{
    static char text[80];
    snprintf(text, sizeof(text), strchr(host, ':') ? "[%s]:%u" : "%s:%u", host,
             port);
    return text;
}
