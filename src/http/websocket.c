/* websocket.c: RFC 6455 framing for the console proxy: the accept key,
 * header tokens, the client frame parser and server frame headers. */
#include "websocket.h"

#include <glib.h>
#include <string.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

char *ws_accept_key(const char *key)
{
    g_autoptr(GChecksum) sha1 = g_checksum_new(G_CHECKSUM_SHA1);
    g_checksum_update(sha1, (const guchar *)key, (gssize)strlen(key));
    g_checksum_update(sha1, (const guchar *)WS_GUID, sizeof WS_GUID - 1);
    guint8 digest[20];
    gsize n = sizeof digest;
    g_checksum_get_digest(sha1, digest, &n);
    return g_base64_encode(digest, n);
}

bool ws_key_valid(const char *key)
{
    /* 16 bytes are 24 characters of base64 ending in "=="; GLib's decoder
     * skips what is not base64, so the alphabet is checked first. */
    if (strlen(key) != 24 || strcmp(key + 22, "==") != 0)
        return false;
    for (size_t i = 0; i < 22; i++)
        if (!g_ascii_isalnum(key[i]) && key[i] != '+' && key[i] != '/')
            return false;
    gsize n = 0;
    g_autofree guchar *raw = g_base64_decode(key, &n);
    return n == 16;
}

bool ws_header_has_token(const char *value, const char *token, bool ignore_case)
{
    size_t want = strlen(token);
    for (const char *p = value; p && *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *end = p;
        while (*end && *end != ',')
            end++;
        const char *last = end;
        while (last > p && (last[-1] == ' ' || last[-1] == '\t'))
            last--;
        size_t n = (size_t)(last - p);
        if (n == want && (ignore_case ? g_ascii_strncasecmp(p, token, n) == 0
                                      : strncmp(p, token, n) == 0))
            return true;
        p = end;
    }
    return false;
}

void ws_parser_init(WsParser *p) { memset(p, 0, sizeof *p); }

static size_t fail(WsParser *p, WsEvent *ev, uint16_t code, size_t consumed)
{
    p->done = true;
    ev->kind = WS_EVENT_ERROR;
    ev->code = code;
    return consumed;
}

/* Bytes the header needs, from what it has so far. */
static size_t header_size(const WsParser *p)
{
    if (p->header_len < 2)
        return 2;
    uint8_t len7 = p->header[1] & 0x7f;
    size_t size = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0);
    return size + ((p->header[1] & 0x80) ? 4 : 0);
}

static bool is_control(uint8_t opcode) { return (opcode & 0x8) != 0; }

/* The header is whole: check it against the rules for a client's frame
 * and the message in progress. 0, or a close code. */
static uint16_t begin_frame(WsParser *p)
{
    const uint8_t *h = p->header;
    p->fin = (h[0] & 0x80) != 0;
    p->opcode = h[0] & 0x0f;
    uint8_t len7 = h[1] & 0x7f;
    size_t at = 2;
    uint64_t len = len7;
    if (len7 == 126) {
        len = ((uint64_t)h[2] << 8) | h[3];
        at = 4;
    } else if (len7 == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = (len << 8) | h[2 + i];
        at = 10;
        if (len >> 63)
            return WS_CLOSE_PROTOCOL_ERROR;
    }
    if (h[0] & 0x70) /* no extension was negotiated */
        return WS_CLOSE_PROTOCOL_ERROR;
    if (!(h[1] & 0x80)) /* clients always mask */
        return WS_CLOSE_PROTOCOL_ERROR;
    memcpy(p->mask, h + at, 4);
    switch (p->opcode) {
    case WS_OP_CLOSE:
    case WS_OP_PING:
    case WS_OP_PONG:
        if (!p->fin || len > sizeof p->control)
            return WS_CLOSE_PROTOCOL_ERROR;
        break;
    case WS_OP_CONTINUATION:
        if (!p->in_message)
            return WS_CLOSE_PROTOCOL_ERROR;
        break;
    case WS_OP_BINARY:
        if (p->in_message)
            return WS_CLOSE_PROTOCOL_ERROR;
        break;
    case WS_OP_TEXT:
        /* RFB travels in binary messages (noVNC's "binary" subprotocol);
         * text was the base64 of older noVNCs, not offered here. */
        return p->in_message ? WS_CLOSE_PROTOCOL_ERROR : WS_CLOSE_UNSUPPORTED_DATA;
    default:
        return WS_CLOSE_PROTOCOL_ERROR;
    }
    if (!is_control(p->opcode))
        p->in_message = !p->fin;
    p->remaining = len;
    p->offset = 0;
    p->control_len = 0;
    p->in_payload = true;
    return 0;
}

static bool close_code_valid(uint16_t code)
{
    if (code >= 3000 && code <= 4999)
        return true;
    return code >= 1000 && code <= 1011 && code != 1004 && code != 1005 && code != 1006;
}

/* A control frame is whole: what it means. */
static void end_control(WsParser *p, WsEvent *ev)
{
    ev->data = p->control;
    ev->len = p->control_len;
    if (p->opcode == WS_OP_PING) {
        ev->kind = WS_EVENT_PING;
        return;
    }
    if (p->opcode == WS_OP_PONG) {
        ev->kind = WS_EVENT_PONG;
        return;
    }
    p->done = true;
    if (p->control_len == 0) {
        ev->kind = WS_EVENT_CLOSE;
        ev->code = WS_CLOSE_NO_STATUS;
        return;
    }
    uint16_t code = (uint16_t)((p->control[0] << 8) | p->control[1]);
    if (p->control_len == 1 || !close_code_valid(code)) {
        ev->kind = WS_EVENT_ERROR;
        ev->code = WS_CLOSE_PROTOCOL_ERROR;
    } else if (!g_utf8_validate((const char *)p->control + 2, (gssize)p->control_len - 2, NULL)) {
        ev->kind = WS_EVENT_ERROR;
        ev->code = WS_CLOSE_INVALID_PAYLOAD;
    } else {
        ev->kind = WS_EVENT_CLOSE;
        ev->code = code;
    }
}

size_t ws_parse(WsParser *p, uint8_t *buf, size_t len, WsEvent *ev)
{
    memset(ev, 0, sizeof *ev);
    if (p->done)
        return len;
    size_t used = 0;
    if (!p->in_payload) {
        while (used < len && p->header_len < header_size(p))
            p->header[p->header_len++] = buf[used++];
        if (p->header_len < header_size(p))
            return used;
        uint16_t bad = begin_frame(p);
        p->header_len = 0;
        if (bad)
            return fail(p, ev, bad, used);
        if (p->remaining == 0) {
            p->in_payload = false;
            if (is_control(p->opcode))
                end_control(p, ev);
            return used;
        }
    }
    size_t n = (size_t)MIN((uint64_t)(len - used), p->remaining);
    uint8_t *data = buf + used;
    for (size_t i = 0; i < n; i++)
        data[i] ^= p->mask[(p->offset + i) & 3];
    p->offset += n;
    p->remaining -= n;
    used += n;
    if (is_control(p->opcode)) {
        memcpy(p->control + p->control_len, data, n);
        p->control_len += n;
    } else if (n) {
        ev->kind = WS_EVENT_DATA;
        ev->data = data;
        ev->len = n;
    }
    if (p->remaining == 0) {
        p->in_payload = false;
        if (is_control(p->opcode))
            end_control(p, ev);
    }
    return used;
}

size_t ws_frame_header(uint8_t out[WS_HEADER_MAX], WsOpcode op, uint64_t len)
{
    out[0] = 0x80 | (uint8_t)op;
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xffff) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}

size_t ws_close_frame(uint8_t out[WS_CLOSE_FRAME_SIZE], uint16_t code)
{
    out[0] = 0x80 | WS_OP_CLOSE;
    out[1] = 2;
    out[2] = (uint8_t)(code >> 8);
    out[3] = (uint8_t)code;
    return WS_CLOSE_FRAME_SIZE;
}
