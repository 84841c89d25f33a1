/* xv.h: the one in-memory value type for XenAPI values, shared by the
 * wire codecs, the dispatcher, the object store and the handlers. */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum {
    XV_NIL = 0,   /* absent / <nil/> / JSON null */
    XV_STRING,    /* UTF-8 text; also refs and enum values */
    XV_INT,       /* 64-bit signed */
    XV_FLOAT,     /* double */
    XV_BOOL,
    XV_DATETIME,  /* seconds since the epoch, UTC */
    XV_ARRAY,     /* ordered list of values */
    XV_STRUCT,    /* ordered list of (string key, value) members */
    XV_LAZY,      /* a struct whose members are produced on demand (XvLazy) */
} XvKind;

typedef struct Xv Xv;
typedef struct XvMember XvMember;
typedef struct XvLazy XvLazy;

/* 16 bytes: rows of the object store hold fields inline as Xv. An empty
 * string, array or struct may have a NULL pointer (no allocation). */
struct Xv {
    uint8_t kind;  /* XvKind */
    uint8_t flags; /* XV_FLAG_* */
    union {
        char *s;           /* XV_STRING (NULL = "") */
        int64_t i;         /* XV_INT, XV_DATETIME */
        double f;          /* XV_FLOAT */
        bool b;            /* XV_BOOL */
        GArray *items;     /* XV_ARRAY: Xv; XV_STRUCT: XvMember (inline; NULL = empty) */
        XvLazy *lazy;      /* XV_LAZY */
    };
};

/* Members and items are stored inline, so a record of N fields costs one
 * array, not N separate nodes. Pointers returned by xv_at/xv_member_at are
 * valid until the container changes. */
struct XvMember {
    char *key;
    bool static_key; /* key points to static storage (datamodel names) */
    Xv value;
};

#define XV_FLAG_SHARED 1 /* XV_STRING: s is static storage, never freed */
#define XV_FLAG_I4 2     /* XV_INT: XML-RPC writes <i4> (XAPI does, in valid_ref_counts) */
#define XV_FLAG_NO_ZONE 4 /* XV_DATETIME: a local wall time, written without "Z" */

/* Heap values: each xv_new_* result has one owner, freed by xv_free. */
Xv *xv_new_nil(void);
Xv *xv_new_string(const char *s);
Xv *xv_new_string_take(char *s);        /* takes ownership of s */
Xv *xv_new_string_len(const char *s, size_t len);
Xv *xv_new_int(int64_t i);
Xv *xv_new_i4(int32_t i);
Xv *xv_new_float(double f);
Xv *xv_new_bool(bool b);
/* A string of static storage, never copied or freed (enum values). */
Xv *xv_new_static_string(const char *s);
Xv *xv_new_datetime(int64_t epoch_seconds);
/* A wall-clock time with no zone (host.get_server_localtime): the local
 * time's fields given as if they were UTC, written without the "Z". */
Xv *xv_new_local_datetime(int64_t wall_seconds);
Xv *xv_new_array(void);
/* An array sharing src's items (reference counted): neither may be
 * modified in place afterwards. For values repeated across many rows. */
Xv *xv_new_array_sharing(const Xv *src);
Xv *xv_new_struct(void);
void xv_free(Xv *v);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Xv, xv_free)

/* Inline values (a field inside a row): release / deep-copy contents. */
void xv_clear(Xv *v);                    /* frees contents, leaves XV_NIL */
void xv_copy_into(Xv *dst, const Xv *src); /* dst must be clear */
void xv_move_into(Xv *dst, Xv *src_heap); /* takes src's contents, frees the node */
Xv *xv_dup(const Xv *v);          /* a lazy struct is materialised */

/* Accessors. */
const char *xv_str(const Xv *v);         /* "" for NULL/empty, NULL if not a string */
guint xv_len(const Xv *v);               /* array items or struct members */
Xv *xv_at(const Xv *v, guint i);         /* array item i */
const XvMember *xv_member_at(const Xv *v, guint i);

/* Arrays: append takes ownership of item. */
void xv_array_append(Xv *arr, Xv *item);
void xv_array_append_string(Xv *arr, const char *s);
void xv_array_remove_at(Xv *arr, guint i);
/* Moves item i out into *out (which must be clear) and closes the gap. */
void xv_array_take_at(Xv *arr, guint i, Xv *out);
/* Moves *item (an inline value, left clear) into position i. */
void xv_array_insert_at(Xv *arr, guint i, Xv *item);

/* Structs: set takes ownership of value and replaces an existing key. */
void xv_struct_set(Xv *st, const char *key, Xv *value);
void xv_struct_set_string(Xv *st, const char *key, const char *s);
/* Appends without looking for an existing key: for builders whose keys are
 * known to be distinct (records, ref-keyed maps), in O(1). */
void xv_struct_append(Xv *st, const char *key, Xv *value);
/* The same with a key of static storage (not copied, not freed). */
void xv_struct_append_static(Xv *st, const char *key, Xv *value);
/* Appends a deep copy of value under a static key, with no node allocated:
 * the fast path for building records from rows. */
void xv_struct_append_static_copy(Xv *st, const char *key, const Xv *value);
Xv *xv_struct_get(const Xv *st, const char *key);
bool xv_struct_remove(Xv *st, const char *key);

/* Large replies (get_all_records) are lazy structs: the members are made
 * one at a time while the reply is written, so neither the whole tree nor
 * the whole document is ever in memory. visit() hands member i to emit()
 * (it may hold a lock meanwhile, so emit must not block on the database)
 * and returns false when the member no longer exists (it is left out).
 * One lazy value is visited by one thread at a time. */
typedef void (*XvEmit)(const char *key, const Xv *value, void *emit_ctx);
typedef bool (*XvLazyVisit)(void *ctx, guint i, XvEmit emit, void *emit_ctx);
Xv *xv_new_lazy(guint n, void *ctx, XvLazyVisit visit, GDestroyNotify destroy);
guint xv_lazy_len(const Xv *v);
bool xv_lazy_visit(const Xv *v, guint i, XvEmit emit, void *emit_ctx);

/* A struct that borrows its members' values (shallow copies): freeing it
 * frees only its own array. For short-lived views of rows under a lock. */
Xv *xv_new_struct_view(guint n);
void xv_struct_view_append(Xv *view, const char *static_key, const Xv *borrowed);
void xv_struct_view_clear(Xv *view); /* no members, the array kept for reuse */
/* The view's members become n uninitialised slots, returned for the
 * caller to fill with static keys and borrowed values: a whole record in
 * one step, the array kept for reuse. */
XvMember *xv_struct_view_reset(Xv *view, guint n);

/* Deep equality (same kind and contents; struct order matters not). */
bool xv_equal(const Xv *a, const Xv *b);

/* Datetime text: XAPI's wire form "YYYYMMDDTHH:MM:SSZ". Parsing accepts
 * dashed and undashed dates, an optional Z or +-HH:MM zone (no zone = UTC). */
char *xv_datetime_format(int64_t epoch_seconds);
/* The same into buf without allocating; returns the text's length. */
#define XV_DATETIME_BUF 32
size_t xv_datetime_write(int64_t epoch_seconds, char buf[XV_DATETIME_BUF]);
bool xv_datetime_parse(const char *text, int64_t *epoch_seconds);

/* A readable, deterministic JSON-like rendering for tests and logs. */
char *xv_to_debug_string(const Xv *v);
