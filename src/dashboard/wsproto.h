/* dashboard/wsproto.h - the WebSocket protocol's receive side: frame parser, control
 * frames, UTF-8 check (wsproto.c). */
#ifndef KG_DASH_WSPROTO_H
#define KG_DASH_WSPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

bool kg__utf8_valid(const void *data, size_t n);

#define KG__WS_CONTROL_MAX 127
/* A server control frame (close 8, ping 9, pong 10), payload cut at 125. */
size_t kg__ws_control_frame(uint8_t out[KG__WS_CONTROL_MAX], int opcode, const void *payload,
                            size_t n);
size_t kg__ws_close_frame(uint8_t out[KG__WS_CONTROL_MAX], uint16_t code, const char *why);

typedef enum kg__wsev_type {
    KG__WSEV_NONE,    /* more bytes needed */
    KG__WSEV_DATA,    /* a chunk of a text message: data/len, `final` on its last */
    KG__WSEV_PING,    /* data/len: the payload to echo */
    KG__WSEV_PONG,
    KG__WSEV_CLOSE,   /* code (1005 when none) */
    KG__WSEV_ERROR    /* close with `code`, `why` says why */
} kg__wsev_type;

typedef struct kg__wsev {
    kg__wsev_type type;
    const uint8_t *data;
    size_t len;
    bool final;
    uint16_t code;
    const char *why;
} kg__wsev;

/* Receive state of one connection. */
typedef struct kg__wsrx {
    uint8_t hdr[14];
    unsigned hdr_len;
    bool in_payload, in_message, fin;
    int opcode;
    uint64_t left;
    uint8_t mask[4];
    unsigned mask_pos;
    uint8_t ctl[125];
    size_t ctl_len;
} kg__wsrx;

/* Parse client bytes from p (payloads are unmasked in place).  Returns the
 * bytes consumed and stops after each event in *ev, so the caller can stop
 * between messages and keep the rest; ev->type NONE means "give me more". */
size_t kg__wsrx_parse(kg__wsrx *rx, uint8_t *p, size_t n, kg__wsev *ev);

#endif
