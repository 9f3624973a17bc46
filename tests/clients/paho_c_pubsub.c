/* paho_c_pubsub: tiny Eclipse Paho C (MQTTClient, synchronous) client used
 * by tests/integration/test_clients.py.
 *
 *   paho_c_pubsub -h HOST -p PORT [-V 3|5] [-q QOS] [-n COUNT] [-t TOPIC]
 *
 * Connects (MQTT 3.1.1 or 5), subscribes to TOPIC at QOS, publishes COUNT
 * messages "msg-<i>" at QOS to TOPIC, receives them back and prints
 *
 *   paho_c_pubsub: version=5 qos=1 sent=10 received=10 in_order=1 max_qos=1
 *
 * Exit status 0 when every message came back in order at QoS min(QOS, QOS),
 * 1 otherwise. Every wait is bounded (10 s in total for the receive loop).
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <MQTTClient.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int received_count(MQTTClient c, const char *topic, int count, int qos,
                          int *in_order, int *max_qos)
{
    int got = 0;
    int tries = 100; /* 100 x 100 ms */
    *in_order = 1;
    *max_qos = 0;
    while (got < count && tries > 0) {
        char *name = NULL;
        int len = 0;
        MQTTClient_message *msg = NULL;
        int rc = MQTTClient_receive(c, &name, &len, &msg, 100);
        if (rc != MQTTCLIENT_SUCCESS && rc != MQTTCLIENT_TOPICNAME_TRUNCATED) {
            fprintf(stderr, "paho_c_pubsub: receive failed rc=%d\n", rc);
            return got;
        }
        if (msg == NULL) {
            tries--;
            continue;
        }
        char want[32];
        snprintf(want, sizeof want, "msg-%d", got);
        if (strcmp(name, topic) != 0 || msg->payloadlen != (int)strlen(want) ||
            memcmp(msg->payload, want, (size_t)msg->payloadlen) != 0)
            *in_order = 0;
        if (msg->qos > *max_qos)
            *max_qos = msg->qos;
        if (msg->qos != qos)
            *in_order = 0;
        got++;
        MQTTClient_freeMessage(&msg);
        MQTTClient_free(name);
    }
    return got;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    const char *topic = "paho/c/test";
    int port = 1883, version = 3, qos = 1, count = 10, opt;

    while ((opt = getopt(argc, argv, "h:p:V:q:n:t:")) != -1) {
        switch (opt) {
        case 'h':
            host = optarg;
            break;
        case 'p':
            port = atoi(optarg);
            break;
        case 'V':
            version = atoi(optarg);
            break;
        case 'q':
            qos = atoi(optarg);
            break;
        case 'n':
            count = atoi(optarg);
            break;
        case 't':
            topic = optarg;
            break;
        default:
            fprintf(stderr,
                    "usage: %s -h HOST -p PORT [-V 3|5] [-q QOS] [-n COUNT] "
                    "[-t TOPIC]\n",
                    argv[0]);
            return 2;
        }
    }
    if (qos < 0 || qos > 2 || count < 0 || (version != 3 && version != 5)) {
        fprintf(stderr, "paho_c_pubsub: bad arguments\n");
        return 2;
    }

    char uri[256];
    char id[64];
    snprintf(uri, sizeof uri, "tcp://%s:%d", host, port);
    snprintf(id, sizeof id, "paho-c-%d", (int)getpid());

    MQTTClient c;
    MQTTClient_createOptions copts = MQTTClient_createOptions_initializer;
    copts.MQTTVersion = version == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
    int rc = MQTTClient_createWithOptions(
        &c, uri, id, MQTTCLIENT_PERSISTENCE_NONE, NULL, &copts);
    if (rc != MQTTCLIENT_SUCCESS) {
        fprintf(stderr, "paho_c_pubsub: create failed rc=%d\n", rc);
        return 1;
    }

    int ok = 0, sent = 0, got = 0, in_order = 0, max_qos = 0;
    if (version == 5) {
        MQTTClient_connectOptions conn = MQTTClient_connectOptions_initializer5;
        conn.keepAliveInterval = 20;
        conn.cleanstart = 1;
        conn.connectTimeout = 5;
        MQTTResponse r = MQTTClient_connect5(c, &conn, NULL, NULL);
        if (r.reasonCode != MQTTREASONCODE_SUCCESS) {
            fprintf(stderr, "paho_c_pubsub: connect5 failed reason=%d\n",
                    r.reasonCode);
            MQTTResponse_free(r);
            goto out;
        }
        MQTTResponse_free(r);
        MQTTSubscribe_options so = MQTTSubscribe_options_initializer;
        r = MQTTClient_subscribe5(c, topic, qos, &so, NULL);
        if ((int)r.reasonCode != qos) {
            fprintf(stderr, "paho_c_pubsub: subscribe5 reason=%d\n",
                    r.reasonCode);
            MQTTResponse_free(r);
            goto out;
        }
        MQTTResponse_free(r);
    } else {
        MQTTClient_connectOptions conn = MQTTClient_connectOptions_initializer;
        conn.keepAliveInterval = 20;
        conn.cleansession = 1;
        conn.connectTimeout = 5;
        conn.MQTTVersion = MQTTVERSION_3_1_1;
        rc = MQTTClient_connect(c, &conn);
        if (rc != MQTTCLIENT_SUCCESS) {
            fprintf(stderr, "paho_c_pubsub: connect failed rc=%d\n", rc);
            goto out;
        }
        rc = MQTTClient_subscribe(c, topic, qos);
        if (rc != MQTTCLIENT_SUCCESS) {
            fprintf(stderr, "paho_c_pubsub: subscribe failed rc=%d\n", rc);
            goto out;
        }
    }

    for (int i = 0; i < count; i++) {
        char payload[32];
        int n = snprintf(payload, sizeof payload, "msg-%d", i);
        MQTTClient_deliveryToken tok = 0;
        if (version == 5) {
            MQTTResponse r =
                MQTTClient_publish5(c, topic, n, payload, qos, 0, NULL, &tok);
            rc = r.reasonCode >= 0x80 ? -1 : MQTTCLIENT_SUCCESS;
            MQTTResponse_free(r);
        } else {
            rc = MQTTClient_publish(c, topic, n, payload, qos, 0, &tok);
        }
        if (rc == MQTTCLIENT_SUCCESS && qos > 0)
            rc = MQTTClient_waitForCompletion(c, tok, 5000);
        if (rc != MQTTCLIENT_SUCCESS) {
            fprintf(stderr, "paho_c_pubsub: publish %d failed rc=%d\n", i, rc);
            break;
        }
        sent++;
    }

    got = received_count(c, topic, sent, qos, &in_order, &max_qos);
    ok = sent == count && got == count && in_order;
    if (version == 5)
        MQTTClient_disconnect5(c, 1000, MQTTREASONCODE_SUCCESS, NULL);
    else
        MQTTClient_disconnect(c, 1000);
out:
    printf("paho_c_pubsub: version=%d qos=%d sent=%d received=%d in_order=%d "
           "max_qos=%d\n",
           version, qos, sent, got, in_order, max_qos);
    fflush(stdout);
    MQTTClient_destroy(&c);
    return ok ? 0 : 1;
}
