/* fake_peer.h - a TCP peer on loopback that pretends to be a Redis server and
 * misbehaves, for the tests of what the Redis read side does with peers that
 * are not (or no longer) Redis: protocol garbage, an HTTP server on the port,
 * a bulk string that never ends.
 *
 * One accept thread and one thread per connection.  Each connection plays
 * one script (chosen by its number: the first connection can behave and the
 * later ones not).  The peer reads the client's commands as RESP arrays of
 * bulk strings, as hiredis writes them.  Counters tell the test how many
 * connections were made and how many bytes were sent, so a test can bound
 * both. */
#ifndef KG_TEST_FAKE_PEER_H
#define KG_TEST_FAKE_PEER_H

#include <stddef.h>
#include <stdint.h>

typedef enum kg_fake_script {
    /* Answer the first command with bytes that are not RESP ("!garbage"),
     * then wait for the client to hang up. */
    KG_FAKE_GARBAGE,
    /* Answer whatever arrives as a web server would ("HTTP/1.1 400 Bad
     * Request") and close. */
    KG_FAKE_HTTP,
    /* Answer the first command with "$999999999999\r\n" and then stream
     * bytes of the promised string until the client hangs up (or 256 MiB,
     * then close). */
    KG_FAKE_HUGE_BULK,
    /* Confirm SUBSCRIBE as Redis does, then publish a message whose payload
     * is declared 999999999999 bytes long and stream it as above. */
    KG_FAKE_SUB_HUGE_MESSAGE,
    /* Confirm SUBSCRIBE, publish the peer's `message` once, then close. */
    KG_FAKE_SUB_MESSAGE_CLOSE,
    /* Confirm SUBSCRIBE, then send garbage. */
    KG_FAKE_SUB_THEN_GARBAGE,
} kg_fake_script;

typedef struct kg_fake_peer kg_fake_peer;

/* Listen on a free 127.0.0.1 port: connection 1 plays `first`, the others
 * `rest`.  `message` (copied; may be NULL) is what KG_FAKE_SUB_MESSAGE_CLOSE
 * publishes.  NULL on failure. */
kg_fake_peer *kg_fake_peer_start(kg_fake_script first, kg_fake_script rest, const char *message);

/* Close everything and join the threads.  NULL is a no-op. */
void kg_fake_peer_stop(kg_fake_peer *p);

int kg_fake_peer_port(const kg_fake_peer *p);
/* TCP connections accepted so far. */
unsigned kg_fake_peer_connections(kg_fake_peer *p);
/* Bytes written to clients so far (all connections). */
uint64_t kg_fake_peer_bytes_sent(kg_fake_peer *p);
/* Connections whose client has hung up (or that the peer closed). */
unsigned kg_fake_peer_closed(kg_fake_peer *p);

#endif
