/* dashboard/wsproto.c - the WebSocket protocol (RFC 6455), server side, without sockets.
 *
 * The server speaks WebSocket itself once a connection has upgraded
 * (server_ws.c): libwebsockets 4.1 accepts unmasked client frames, which
 * RFC 6455 section 5.1 says a server must refuse, and offers no way to see
 * the mask bit.  This is the receive half: a byte-at-a-time-safe frame
 * parser that checks every rule a server must check (mask, reserved bits,
 * opcodes, control frame sizes, fragmentation order), unmasks payloads in
 * place and reports one thing at a time, so the caller can stop between
 * messages (flow control) and keep the rest of its buffer.  Plus UTF-8
 * validation and server frame building.  Fuzzed (fuzz_ws_message). */
#include <string.h>

#include "wsproto.h"

enum { KG__OP_CONT = 0, KG__OP_TEXT = 1, KG__OP_BINARY = 2, KG__OP_CLOSE = 8, KG__OP_PING = 9,
       KG__OP_PONG = 10 };

bool kg__utf8_valid(const void *data, size_t n)
{
    const unsigned char *s = data;
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0)
            len = 2, cp = c & 0x1f, min = 0x80;
        else if ((c & 0xf0) == 0xe0)
            len = 3, cp = c & 0x0f, min = 0x800;
        else if ((c & 0xf8) == 0xf0)
            len = 4, cp = c & 0x07, min = 0x10000;
        else
            return false;
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        /* Overlong forms, UTF-16 surrogates and code points past U+10FFFF. */
        if (cp < min || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
            return false;
        i += len;
    }
    return true;
}

size_t kg__ws_control_frame(uint8_t out[KG__WS_CONTROL_MAX], int opcode, const void *payload,
                            size_t n)
{
    if (n > 125)
        n = 125;
    out[0] = (uint8_t)(0x80 | (opcode & 0x0f));
    out[1] = (uint8_t)n;
    if (n)
        memcpy(out + 2, payload, n);
    return 2 + n;
}

size_t kg__ws_close_frame(uint8_t out[KG__WS_CONTROL_MAX], uint16_t code, const char *why)
{
    uint8_t p[125];
    p[0] = (uint8_t)(code >> 8);
    p[1] = (uint8_t)code;
    size_t n = why ? strlen(why) : 0;
    if (n > sizeof p - 2)
        n = sizeof p - 2;
    if (n)
        memcpy(p + 2, why, n);
    return kg__ws_control_frame(out, KG__OP_CLOSE, p, n + 2);
}

static size_t kg__wsrx_fail(kg__wsev *ev, size_t used, uint16_t code, const char *why)
{
    ev->type = KG__WSEV_ERROR;
    ev->code = code;
    ev->why = why;
    return used;
}

/* Bytes the header needs in all, given what has arrived; 0 when unknown yet. */
static unsigned kg__hdr_need(const kg__wsrx *rx)
{
    if (rx->hdr_len < 2)
        return 2;
    unsigned len7 = rx->hdr[1] & 0x7f;
    unsigned ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
    return 2 + ext + ((rx->hdr[1] & 0x80) ? 4 : 0);
}

/* The header is complete: check it, set up the payload. */
static bool kg__hdr_done(kg__wsrx *rx, kg__wsev *ev)
{
    const uint8_t *h = rx->hdr;
    rx->fin = (h[0] & 0x80) != 0;
    rx->opcode = h[0] & 0x0f;
    if (h[0] & 0x70)
        return kg__wsrx_fail(ev, 0, 1002, "reserved bits set (no extension was agreed)"), false;
    if (!(h[1] & 0x80))
        return kg__wsrx_fail(ev, 0, 1002, "client frames must be masked (RFC 6455 5.1)"), false;
    unsigned len7 = h[1] & 0x7f;
    uint64_t len = len7;
    size_t at = 2;
    if (len7 == 126) {
        len = ((uint64_t)h[2] << 8) | h[3];
        at = 4;
    } else if (len7 == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = (len << 8) | h[2 + i];
        at = 10;
        if (len >> 63)
            return kg__wsrx_fail(ev, 0, 1002, "frame length out of range"), false;
    }
    memcpy(rx->mask, h + at, 4);
    rx->mask_pos = 0;
    rx->left = len;
    bool control = rx->opcode >= 8;
    if (control) {
        if (rx->opcode != KG__OP_CLOSE && rx->opcode != KG__OP_PING &&
            rx->opcode != KG__OP_PONG)
            return kg__wsrx_fail(ev, 0, 1002, "unknown opcode"), false;
        if (!rx->fin || len > 125)
            return kg__wsrx_fail(ev, 0, 1002, "control frames must be whole and short"), false;
        rx->ctl_len = 0;
        return true;
    }
    if (rx->opcode == KG__OP_CONT) {
        if (!rx->in_message)
            return kg__wsrx_fail(ev, 0, 1002, "continuation without a message"), false;
    } else if (rx->opcode == KG__OP_TEXT || rx->opcode == KG__OP_BINARY) {
        if (rx->in_message)
            return kg__wsrx_fail(ev, 0, 1002, "new message inside a fragmented one"), false;
        if (rx->opcode == KG__OP_BINARY)
            return kg__wsrx_fail(ev, 0, 1003, "binary messages are not supported"), false;
        rx->in_message = true;
    } else {
        return kg__wsrx_fail(ev, 0, 1002, "unknown opcode"), false;
    }
    return true;
}

static void kg__unmask(kg__wsrx *rx, uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] ^= rx->mask[(rx->mask_pos + i) & 3];
    rx->mask_pos = (unsigned)((rx->mask_pos + n) & 3);
}

/* The control frame's payload is complete. */
static void kg__control_done(kg__wsrx *rx, kg__wsev *ev)
{
    ev->data = rx->ctl;
    ev->len = rx->ctl_len;
    if (rx->opcode == KG__OP_PING) {
        ev->type = KG__WSEV_PING;
    } else if (rx->opcode == KG__OP_PONG) {
        ev->type = KG__WSEV_PONG;
    } else if (rx->ctl_len == 1) {
        kg__wsrx_fail(ev, 0, 1002, "close frame with a 1-byte payload");
    } else {
        ev->type = KG__WSEV_CLOSE;
        ev->code = rx->ctl_len >= 2 ? (uint16_t)((rx->ctl[0] << 8) | rx->ctl[1]) : 1005;
        if (rx->ctl_len > 2 && !kg__utf8_valid(rx->ctl + 2, rx->ctl_len - 2))
            kg__wsrx_fail(ev, 0, 1007, "close reason is not UTF-8");
    }
}

size_t kg__wsrx_parse(kg__wsrx *rx, uint8_t *p, size_t n, kg__wsev *ev)
{
    memset(ev, 0, sizeof *ev);
    size_t used = 0;
    if (!rx->in_payload) {
        /* Header bytes, at most what it needs. */
        while (used < n) {
            unsigned need = kg__hdr_need(rx);
            if (rx->hdr_len == need)
                break;
            rx->hdr[rx->hdr_len++] = p[used++];
        }
        if (rx->hdr_len < 2 || rx->hdr_len < kg__hdr_need(rx))
            return used;   /* more bytes needed */
        rx->hdr_len = 0;
        if (!kg__hdr_done(rx, ev))
            return used;
        rx->in_payload = true;
    }
    size_t take = n - used;
    if (take > rx->left)
        take = (size_t)rx->left;
    kg__unmask(rx, p + used, take);
    rx->left -= take;
    if (rx->opcode >= 8) {
        memcpy(rx->ctl + rx->ctl_len, p + used, take);
        rx->ctl_len += take;
        used += take;
        if (rx->left == 0) {
            rx->in_payload = false;
            kg__control_done(rx, ev);
        }
        return used;
    }
    /* Data: report the chunk (also an empty one that ends a message). */
    ev->type = KG__WSEV_DATA;
    ev->data = p + used;
    ev->len = take;
    used += take;
    if (rx->left == 0) {
        rx->in_payload = false;
        ev->final = rx->fin;
        if (rx->fin)
            rx->in_message = false;
    } else if (take == 0) {
        ev->type = KG__WSEV_NONE;   /* nothing new */
    }
    return used;
}
