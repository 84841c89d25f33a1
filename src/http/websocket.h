/* websocket.h: RFC 6455 on the server's side, without I/O: the
 * handshake's accept key and header tokens, a streaming parser of the
 * client's frames, and the server's frame headers. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    WS_OP_CONTINUATION = 0x0,
    WS_OP_TEXT = 0x1,
    WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8,
    WS_OP_PING = 0x9,
    WS_OP_PONG = 0xA,
} WsOpcode;

/* Close codes (RFC 6455 7.4.1). */
#define WS_CLOSE_NORMAL 1000
#define WS_CLOSE_GOING_AWAY 1001
#define WS_CLOSE_PROTOCOL_ERROR 1002
#define WS_CLOSE_UNSUPPORTED_DATA 1003
#define WS_CLOSE_NO_STATUS 1005 /* never sent: a close frame without a code */
#define WS_CLOSE_INVALID_PAYLOAD 1007

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key +
 * the RFC's GUID)); caller frees. */
char *ws_accept_key(const char *key);
/* A Sec-WebSocket-Key must be the base64 of 16 bytes. */
bool ws_key_valid(const char *key);
/* Whether a comma-separated header value (Connection, Upgrade,
 * Sec-WebSocket-Protocol) lists token; header names' tokens compare
 * without case, subprotocols with it. */
bool ws_header_has_token(const char *value, const char *token, bool ignore_case);

typedef enum {
    WS_EVENT_NONE,  /* nothing complete yet: feed more */
    WS_EVENT_DATA,  /* bytes of a binary message (of any frame of it) */
    WS_EVENT_PING,  /* a whole ping: answer with a pong of the same payload */
    WS_EVENT_PONG,
    WS_EVENT_CLOSE, /* the peer closes: code (WS_CLOSE_NO_STATUS if none given) */
    WS_EVENT_ERROR, /* the peer broke the protocol: close with code */
} WsEventKind;

typedef struct {
    WsEventKind kind;
    const uint8_t *data; /* DATA: inside the caller's buffer; PING/PONG/CLOSE: the parser's */
    size_t len;
    uint16_t code;       /* CLOSE, ERROR */
} WsEvent;

/* Client-to-server frames as they arrive, in pieces of any size. Data is
 * unmasked in place and handed on as it comes, never buffered: a message
 * may be of any length. Control frames (at most 125 bytes) are kept
 * whole. After CLOSE or ERROR the rest of the input is ignored. */
typedef struct {
    uint8_t header[14];
    size_t header_len;
    uint8_t opcode;
    bool fin;
    uint8_t mask[4];
    uint64_t remaining;  /* payload bytes of the current frame still to come */
    uint64_t offset;     /* payload bytes of it seen: the mask's phase */
    bool in_payload;
    bool in_message;     /* a fragmented binary message is open */
    bool done;           /* CLOSE or ERROR was reported */
    uint8_t control[125];
    size_t control_len;
} WsParser;

void ws_parser_init(WsParser *p);
/* Consumes bytes from buf (len > 0: at least one) and returns how many;
 * *ev tells what they completed, if anything. Call again on the rest. */
size_t ws_parse(WsParser *p, uint8_t *buf, size_t len, WsEvent *ev);

/* A server frame's header (final, unmasked) for a payload of len bytes;
 * returns its size. */
#define WS_HEADER_MAX 10
size_t ws_frame_header(uint8_t out[WS_HEADER_MAX], WsOpcode op, uint64_t len);
/* A whole close frame with code; returns its size. */
#define WS_CLOSE_FRAME_SIZE 4
size_t ws_close_frame(uint8_t out[WS_CLOSE_FRAME_SIZE], uint16_t code);
