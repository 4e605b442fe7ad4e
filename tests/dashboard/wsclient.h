/* wsclient.h - a tiny blocking HTTP/1.1 and WebSocket client for the dashboard tests.
 *
 * Raw sockets on loopback, so tests control every header (Origin, Host,
 * Authorization) and can also misbehave on purpose (stop reading).  Every
 * call takes a timeout: a test never hangs on a silent server. */
#ifndef KG_TEST_WSCLIENT_H
#define KG_TEST_WSCLIENT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct kg_tclient {
    int fd;
    char *buf;          /* bytes read, not consumed yet */
    size_t len, cap;
    bool closed;
} kg_tclient;

typedef struct kg_thttp_resp {
    int status;         /* -1: no response */
    char *headers;      /* malloc'd, raw header block */
    char *body;         /* malloc'd, NUL-terminated */
    size_t body_len;
} kg_thttp_resp;

/* One request on a fresh connection.  `headers` is extra "Name: value\r\n"
 * lines or NULL; Host defaults to 127.0.0.1:port unless given.  Returns the
 * status (also in r->status) or -1. */
int kg_thttp(int port, const char *method, const char *path, const char *headers,
             const char *body, size_t body_len, kg_thttp_resp *r);
void kg_thttp_resp_free(kg_thttp_resp *r);
/* Header value (case-insensitive name) copied into out; false when absent. */
bool kg_thttp_header(const kg_thttp_resp *r, const char *name, char *out, size_t outlen);

/* GET `path` and return the integer at data[key] (or data[key][subkey] when
 * subkey is not NULL) of its JSON body; -1 when the request, the JSON or the
 * value is missing. */
long long kg_thttp_json_int(int port, const char *path, const char *key, const char *subkey);

/* Upgrade to WebSocket at `path`.  Returns 101 when connected, the HTTP
 * status of a refusal, or -1 when the connection failed/closed. */
int kg_tws_connect(kg_tclient *c, int port, const char *path, const char *headers);
/* Next text message within `timeout` s: 0 with *msg (malloc'd, NUL-terminated),
 * -1 on timeout, -2 when the server closed. */
int kg_tws_recv(kg_tclient *c, double timeout, char **msg, size_t *len);
/* Next message containing `needle`, skipping others; NULL on timeout. */
char *kg_tws_wait_for(kg_tclient *c, const char *needle, double timeout);
int kg_tws_send(kg_tclient *c, const char *text, size_t len);
void kg_tws_close(kg_tclient *c);

/* ---- raw sockets, for clients that misbehave on purpose ---- */

/* A TCP connection to 127.0.0.1:port from the loopback address `from`
 * (e.g. "127.0.0.2", so that one test can be several addresses; NULL =
 * the default).  The fd, or -1. */
int kg_traw_connect(int port, const char *from);
bool kg_traw_send(int fd, const void *p, size_t n);
/* Read until the peer closes or `timeout` s pass: the bytes read (malloc'd,
 * NUL-terminated; *len), and whether the peer closed. */
char *kg_traw_read(int fd, double timeout, bool *closed, size_t *len);
/* The status of an HTTP/1.x response text, or -1. */
int kg_traw_status(const char *resp);
/* Upgrade a raw connection: the fd once "101" was read (the rest of the
 * response is consumed up to the blank line), or -status / -1. */
int kg_traw_ws(int port, const char *from, const char *headers);

/* A docs/events.md event as JSON text (malloc'd).  `extra_data` is inserted in
 * "data" (e.g. "\"next_action\":\"default\"") or NULL. */
char *kg_tevent(const char *event_id, const char *name, const char *type, const char *node,
                const char *workflow, unsigned long long seq, const char *extra_data);

#endif
