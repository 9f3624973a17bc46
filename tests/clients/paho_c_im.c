/* paho_c_im: an IM device on the Eclipse Paho C client (MQTTClient), used
 * by tests/integration/test_im_paho_c.py.
 *
 *   paho_c_im -h HOST -p PORT -i USER@DEVICE -P TOKEN [-V 3|5]
 *             [-t TOPIC -n COUNT] [-w SECONDS]
 *
 * Connects with the client id and the token as password (persistent
 * session), publishes COUNT messages "pahoc-<i>" at QoS 1 to TOPIC if
 * given, then prints every message that arrives during SECONDS as
 *
 *   msg<TAB>topic<TAB>payload<TAB>from
 *
 * (`from` is the MQTT 5 user property, "-" when absent), and a last line
 * "done received=N". Exit status 0 when the connection was accepted, 2 on a
 * usage error, 1 otherwise. Every wait is bounded.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <MQTTClient.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void print_from(const MQTTClient_message *m)
{
    for (int i = 0; i < m->properties.count; i++) {
        const MQTTProperty *p = &m->properties.array[i];
        if (p->identifier == MQTTPROPERTY_CODE_USER_PROPERTY &&
            p->value.data.len == 4 &&
            memcmp(p->value.data.data, "from", 4) == 0) {
            printf("%.*s", p->value.value.len, p->value.value.data);
            return;
        }
    }
    printf("-");
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *port = "1883", *id = NULL, *token = NULL;
    const char *topic = NULL;
    int version = 5, count = 0;
    double wait = 2.0;
    int opt;
    while ((opt = getopt(argc, argv, "h:p:i:P:V:t:n:w:")) != -1) {
        switch (opt) {
        case 'h':
            host = optarg;
            break;
        case 'p':
            port = optarg;
            break;
        case 'i':
            id = optarg;
            break;
        case 'P':
            token = optarg;
            break;
        case 'V':
            version = atoi(optarg);
            break;
        case 't':
            topic = optarg;
            break;
        case 'n':
            count = atoi(optarg);
            break;
        case 'w':
            wait = atof(optarg);
            break;
        default:
            fprintf(stderr,
                    "usage: %s -h HOST -p PORT -i USER@DEVICE -P TOKEN "
                    "[-V 3|5] [-t TOPIC -n COUNT] [-w SECONDS]\n",
                    argv[0]);
            return 2;
        }
    }
    if (!id || !token || (version != 3 && version != 5))
        return 2;
    char uri[256];
    snprintf(uri, sizeof(uri), "tcp://%s:%s", host, port);

    MQTTClient c;
    MQTTClient_createOptions co = MQTTClient_createOptions_initializer;
    co.MQTTVersion = version == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
    if (MQTTClient_createWithOptions(&c, uri, id, MQTTCLIENT_PERSISTENCE_NONE,
                                     NULL, &co) != MQTTCLIENT_SUCCESS)
        return 1;
    MQTTClient_connectOptions opts =
        version == 5
            ? (MQTTClient_connectOptions)MQTTClient_connectOptions_initializer5
            : (MQTTClient_connectOptions)MQTTClient_connectOptions_initializer;
    opts.keepAliveInterval = 30;
    opts.connectTimeout = 5;
    /* 3.1.1 allows no password without a user name: send the user, which
     * the broker accepts when it equals the client id's user part. */
    char user[80];
    snprintf(user, sizeof(user), "%.*s", (int)strcspn(id, "@"), id);
    opts.username = user;
    opts.password = token;
    if (version == 5)
        opts.cleanstart = 0;
    else
        opts.cleansession = 0;
    int rc;
    MQTTProperties conn_props = MQTTProperties_initializer;
    if (version == 5) {
        /* A session that outlives the connection, as a phone's would. */
        MQTTProperty expiry = {.identifier =
                                   MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL};
        expiry.value.integer4 = 3600;
        MQTTProperties_add(&conn_props, &expiry);
        MQTTResponse r = MQTTClient_connect5(c, &opts, &conn_props, NULL);
        rc = r.reasonCode;
        MQTTResponse_free(r);
    } else {
        rc = MQTTClient_connect(c, &opts);
    }
    MQTTProperties_free(&conn_props);
    if (rc != MQTTCLIENT_SUCCESS) {
        printf("connect failed rc=%d\n", rc);
        MQTTClient_destroy(&c);
        return 1;
    }

    for (int i = 0; topic && i < count; i++) {
        char payload[32];
        int len = snprintf(payload, sizeof(payload), "pahoc-%d", i);
        MQTTClient_message m = MQTTClient_message_initializer;
        m.payload = payload;
        m.payloadlen = len;
        m.qos = 1;
        MQTTClient_deliveryToken dt;
        if (version == 5) {
            MQTTResponse r = MQTTClient_publishMessage5(c, topic, &m, &dt);
            MQTTResponse_free(r);
        } else {
            MQTTClient_publishMessage(c, topic, &m, &dt);
        }
        MQTTClient_waitForCompletion(c, dt, 5000);
    }

    int received = 0;
    double end = now_s() + wait;
    while (now_s() < end) {
        char *name = NULL;
        int name_len = 0;
        MQTTClient_message *m = NULL;
        rc = MQTTClient_receive(c, &name, &name_len, &m, 100);
        if (rc != MQTTCLIENT_SUCCESS && rc != MQTTCLIENT_TOPICNAME_TRUNCATED)
            break;
        if (!m)
            continue;
        printf("msg\t%s\t%.*s\t", name, m->payloadlen, (char *)m->payload);
        print_from(m);
        printf("\n");
        received++;
        MQTTClient_freeMessage(&m);
        MQTTClient_free(name);
    }
    printf("done received=%d\n", received);
    fflush(stdout);
    if (version == 5)
        MQTTClient_disconnect5(c, 1000, MQTTREASONCODE_SUCCESS, NULL);
    else
        MQTTClient_disconnect(c, 1000);
    MQTTClient_destroy(&c);
    return 0;
}
