/* http_receiver.h - a small real HTTP/1.1 server for tests: a webhook sink.
 *
 * Listens on a free 127.0.0.1 port (loopback only), accepts POSTs (any
 * path), keeps connections alive, records what it received, and can be told
 * to misbehave: answer 500, stall past the client's timeout, answer 200 only
 * after a delay, close the connection without answering, or answer the next
 * requests with any status and headers (429 + Retry-After, a 3xx with a
 * Location).  Optionally it logs every request, whatever it answered, with
 * the time it arrived.  Plain sockets; one accept thread plus one
 * thread per connection, so a stalled connection does not hold up others.
 *
 * Counting: a request answered 200 is "accepted"; its events are counted as
 * the length of the body's "events" array, or 1 for a body that is a bare
 * JSON object.  Requests answered otherwise are "rejected" and not recorded.
 *
 * TLS: kg_http_receiver_start_tls() serves https:// instead, with a
 * self-signed certificate (EC P-256, CN and subjectAltName "localhost" and
 * 127.0.0.1) generated in memory at start, so no key material is checked in
 * and nothing expires in the repository.  Built only when OpenSSL was found
 * (KG_TEST_HAVE_OPENSSL); otherwise start_tls returns NULL.
 *
 * Every function may be called from any thread while the receiver runs. */
#ifndef KG_TEST_HTTP_RECEIVER_H
#define KG_TEST_HTTP_RECEIVER_H

#include <stdbool.h>
#include <stddef.h>

typedef struct kg_http_receiver kg_http_receiver_t;

typedef enum kg_http_receiver_mode {
    KG_HTTP_RECEIVER_OK = 0,   /* 200 {"ok":true}, keep-alive */
    KG_HTTP_RECEIVER_FAIL,     /* 500, keep-alive */
    KG_HTTP_RECEIVER_STALL,    /* read the request, answer nothing until the stall
                                * time passed or the client hung up, then close */
    KG_HTTP_RECEIVER_CLOSE,    /* read the request, close without an answer */
    KG_HTTP_RECEIVER_SLOW,     /* accept (store) the request, then answer 200 only
                                * after the stall time: a receiver that does the
                                * work but acknowledges late */
} kg_http_receiver_mode;

/* One accepted request.  Borrowed from the receiver: valid until
 * kg_http_receiver_clear() or kg_http_receiver_stop(). */
typedef struct kg_http_request {
    char method[16];
    char path[256];
    char *headers;         /* raw header lines, "Name: value\r\n"..., NUL-terminated */
    char *body;            /* NUL-terminated */
    size_t body_len;
    size_t events;         /* as counted above; 0 when the body is not JSON */
    unsigned connection;   /* 1-based number of the connection it came on */
    double at;             /* CLOCK_MONOTONIC seconds when it had been read whole */
    int status;            /* the status it was answered (0: none, e.g. stalled) */
} kg_http_request;

/* Start listening.  NULL on failure. */
kg_http_receiver_t *kg_http_receiver_start(void);

/* Start listening with TLS (see above).  NULL on failure or without OpenSSL. */
kg_http_receiver_t *kg_http_receiver_start_tls(void);
/* The PEM text of the TLS receiver's certificate (borrowed), or NULL. */
const char *kg_http_receiver_cert_pem(const kg_http_receiver_t *r);
/* TLS handshakes that failed (e.g. the client refused the certificate). */
size_t kg_http_receiver_tls_failures(kg_http_receiver_t *r);

/* Close every connection, join the threads, free everything.  NULL ok. */
void kg_http_receiver_stop(kg_http_receiver_t *r);

int kg_http_receiver_port(const kg_http_receiver_t *r);
/* "http://127.0.0.1:<port>/ingest" (https:// with TLS); borrowed. */
const char *kg_http_receiver_url(const kg_http_receiver_t *r);

/* Behaviour for the following requests. */
void kg_http_receiver_set_mode(kg_http_receiver_t *r, kg_http_receiver_mode mode);
/* Behave as `mode` for the next `n` requests, then as set_mode said. */
void kg_http_receiver_misbehave(kg_http_receiver_t *r, kg_http_receiver_mode mode, unsigned n);
/* Answer the next `n` requests (0: stop doing so) with `status` and the
 * header lines `headers` ("Retry-After: 2\r\n", may be NULL) and an empty
 * body, whatever the mode says.  A 2xx is accepted (stored), others are
 * rejected. */
void kg_http_receiver_respond(kg_http_receiver_t *r, int status, const char *headers, unsigned n);
/* Log every request from now on, whatever it was answered, up to `max`
 * (0: stop logging).  The log is separate from the accepted requests. */
void kg_http_receiver_set_log(kg_http_receiver_t *r, size_t max);
size_t kg_http_receiver_logged(kg_http_receiver_t *r);
const kg_http_request *kg_http_receiver_log(kg_http_receiver_t *r, size_t i);
/* How long STALL and SLOW hold a request (default 30 s; stop() ends it at once). */
void kg_http_receiver_set_stall(kg_http_receiver_t *r, double seconds);
/* Keep at most `n` accepted requests for inspection (default 100000);
 * later ones are only counted.  Bodies are parsed with jansson to count
 * events unless `parse` is false, in which case "batch_size" is read. */
void kg_http_receiver_set_keep(kg_http_receiver_t *r, size_t n, bool parse);
/* Called on the connection thread for every accepted request, before the
 * answer is sent.  `req` is borrowed for the call. */
void kg_http_receiver_set_callback(kg_http_receiver_t *r,
                                   void (*cb)(void *ud, const kg_http_request *req),
                                   void *ud);

size_t kg_http_receiver_accepted(kg_http_receiver_t *r);    /* requests answered 200 */
size_t kg_http_receiver_events(kg_http_receiver_t *r);      /* events in those */
size_t kg_http_receiver_rejected(kg_http_receiver_t *r);    /* 500 / stalled / closed */
size_t kg_http_receiver_connections(kg_http_receiver_t *r); /* TCP connections accepted */
size_t kg_http_receiver_kept(kg_http_receiver_t *r);        /* requests kept */
const kg_http_request *kg_http_receiver_request(kg_http_receiver_t *r, size_t i);
/* Value of header `name` (case-insensitive) in `req`, copied into buf;
 * false when absent. */
bool kg_http_request_header(const kg_http_request *req, const char *name, char *buf,
                            size_t size);
/* Forget kept requests and zero the counters. */
void kg_http_receiver_clear(kg_http_receiver_t *r);

#endif
