/* migrate_link.h: a live migration's connection between two hosts'
 * drivers, and the handshake both sides follow on it.
 *
 * QEMU never gets the connection (it may be TLS later, and QEMU must never
 * listen on a port): each side gives its QEMU one end of a socket pair and
 * a relay thread moves the bytes between that pair and the connection,
 * framed, so that the same connection carries the short handshake that
 * decides which host runs the domain. A frame is a 4-byte big-endian
 * header, type in the top byte and payload length (at most 16 MiB - 1) in
 * the other three, then the payload:
 *   'D' bytes of QEMU's stream, in the direction the frame travels
 *   'E' the end of QEMU's stream in that direction (no payload)
 *   'C' a handshake message (text: a word, a space, details)
 * The handshake, source S, destination D (each message a 'C' frame):
 *   D -> S  "ready"          the destination's QEMU waits for the state
 *           "failed WHY"     it could not be started (S sends nothing)
 *   S       starts QEMU's migration into its pair
 *   D -> S  "loaded"         the destination holds the whole state, paused,
 *                            its images not yet taken (late-block-activate)
 *           "failed WHY"     loading failed; D has discarded its domain
 *   S -> D  "abort WHY"      the source's QEMU failed to send (it runs on)
 *   S -> D  "go running"     the source is stopped and has let its images
 *           "go paused"      go: D takes them, and runs the guest if it ran
 *   D -> S  "running"        D runs (or holds) the domain: S stops its QEMU
 *           "failed WHY"     D could not take over: S runs the guest again
 * A side that hears nothing for idle_timeout_ms gives up as on "failed";
 * the one case left open is a source that sent "go" and never heard back:
 * it cannot know whether the destination runs the guest, so it keeps its
 * domain paused and says so (never two running copies). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "xapi_error.h"

#define MIGRATE_FRAME_DATA 'D'
#define MIGRATE_FRAME_END 'E'
#define MIGRATE_FRAME_CONTROL 'C'
#define MIGRATE_FRAME_MAX ((1u << 24) - 1)
/* The default of idle_timeout_ms. */
#define MIGRATE_IDLE_TIMEOUT_MS 30000

/* A frame's header. */
void migrate_frame_header(uint8_t out[4], char type, uint32_t length);

/* The frames of the bytes a link reads, cut anywhere. */
typedef struct {
    uint8_t header[4];
    size_t header_have;
    char type;     /* of the frame whose payload comes */
    uint32_t left; /* of its payload */
} MigrateFrameParser;

typedef enum {
    MIGRATE_EVENT_NONE,    /* header bytes taken */
    MIGRATE_EVENT_DATA,    /* data, len: a piece of a 'D' payload */
    MIGRATE_EVENT_END,     /* an 'E' frame */
    MIGRATE_EVENT_CONTROL, /* data, len: a piece of a 'C' payload; last: its end */
    MIGRATE_EVENT_ERROR,   /* not a frame: the link must fail */
} MigrateEventKind;

typedef struct {
    MigrateEventKind kind;
    const uint8_t *data;
    size_t len;
    bool last;
} MigrateFrameEvent;

/* Takes what it can of buf (n > 0) up to one event: the bytes consumed,
 * between 1 and n (all of them after an error). */
size_t migrate_frame_parse(MigrateFrameParser *p, const uint8_t *buf, size_t n,
                           MigrateFrameEvent *ev);

typedef struct MigrateLink MigrateLink;

/* Starts relaying between conn (a stream socket, the caller's: shut down
 * when the link fails, never closed) and a new socket pair, whose other
 * end goes to QEMU in the ops' start. The link fails when nothing moves
 * on conn, either way, for idle_timeout_ms (0: MIGRATE_IDLE_TIMEOUT_MS). */
MigrateLink *migrate_link_new(int conn, int64_t idle_timeout_ms, XapiError **err);
/* Sends a handshake message (queued; the relay writes it). */
void migrate_link_say(MigrateLink *link, const char *message);
/* The next handshake message from the peer (caller frees), or NULL with
 * err when the peer closed, the link failed or the deadline (monotonic)
 * passed. */
char *migrate_link_hear(MigrateLink *link, int64_t deadline, XapiError **err);
/* Breaks the link at once (another thread may call it): QEMU's end is
 * shut, so that its migration fails; every wait returns. */
void migrate_link_abort(MigrateLink *link, const char *why);
/* Bytes of QEMU's stream sent and received over the connection. */
void migrate_link_counts(MigrateLink *link, int64_t *sent, int64_t *received);
/* Writes what is queued (until the deadline), stops the relay and closes
 * QEMU's pair. */
void migrate_link_free(MigrateLink *link, int64_t flush_deadline);

/* What a side does with its domain, for migrate_link_send and _receive.
 * Each call blocks; -1 sets err. */
typedef struct {
    /* Starts QEMU's migration into fd (QEMU's end of the pair, closed
     * after the call: QEMU must hold a copy). */
    int (*start)(void *ctx, int fd, XapiError **err);
    /* Until QEMU sent it all (0; the domain is stopped, its images let
     * go) or failed (-1; QEMU runs the guest on as it did). The link's
     * failure makes QEMU's migration fail. */
    int (*wait_sent)(void *ctx, XapiError **err);
    /* The destination failed after everything was sent: the domain runs
     * here again (as it did) and takes its images back. */
    int (*resume)(void *ctx, XapiError **err);
    /* The destination runs the domain: this one goes. */
    void (*finish)(void *ctx);
    /* Whether the domain ran when the migration started. */
    bool (*was_running)(void *ctx);
} MigrateSourceOps;

typedef struct {
    /* Starts QEMU's incoming migration from fd. */
    int (*start)(void *ctx, int fd, XapiError **err);
    /* Until the whole state is loaded (0), or loading failed (-1). */
    int (*wait_loaded)(void *ctx, XapiError **err);
    /* Takes the images and, with run, runs the guest. */
    int (*run)(void *ctx, bool run, XapiError **err);
    /* Discards the domain (the migration failed). */
    void (*discard)(void *ctx);
} MigrateDestOps;

/* The source's side of the handshake over an open link. 0: the peer runs
 * the domain and finish was called; -1: the domain is here (running as it
 * did, or left paused when the outcome is unknown), err says why. */
int migrate_link_send(MigrateLink *link, const MigrateSourceOps *ops, void *ctx, XapiError **err);
/* The destination's side, once its domain waits for the state (it says
 * "ready" first): 0 when it runs here (or holds the paused guest); -1
 * after discard. */
int migrate_link_receive(MigrateLink *link, const MigrateDestOps *ops, void *ctx,
                         XapiError **err);
/* The destination could not start its domain: tells the source why
 * ("failed WHY"; the link is then freed). */
void migrate_link_refuse(MigrateLink *link, const XapiError *why);
/* A handshake's WHY: an error as one line (caller frees). */
char *migrate_error_text(const XapiError *err);

/* The migrations under way, by domain uuid (a driver's migrate_cancel):
 * register while a link serves uuid; cancel aborts its link; unregister
 * gives back rc, the migration's outcome, its error replaced by "the
 * migration was cancelled" when that is why it failed. */
void migrate_link_register(const char *uuid, MigrateLink *link);
int migrate_link_unregister(const char *uuid, int rc, XapiError **err);
void migrate_link_cancel(const char *uuid);
