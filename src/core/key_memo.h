/* key_memo.h: rendered forms of static keys, computed once.
 *
 * Reply writers put the same few thousand datamodel field names around
 * millions of values ("<member><name>uuid</name><value>", "\"uuid\":").
 * A KeyMemo maps a key's address (static storage that never moves or
 * changes: the datamodel's names) to its rendered text, so a writer copies
 * one prepared string instead of measuring and escaping the key each time.
 * Lookups take no lock; the first rendering of a key takes one. Entries
 * live as long as the process. */
#pragma once

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

#define KEY_MEMO_SLOTS 8192 /* the datamodel has about 3,000 field names */

typedef struct {
    const char *key;  /* published last: a reader that sees it sees the rest */
    const char *text;
    size_t len;
} KeyMemoEntry;

typedef struct {
    /* Renders key into a new string (the memo keeps it). */
    char *(*render)(const char *key, size_t *len);
    GMutex lock;
    guint used;
    KeyMemoEntry slots[KEY_MEMO_SLOTS];
} KeyMemo;

#define KEY_MEMO_INIT(render_fn) {.render = (render_fn)}

/* The rendered text of the static key, or NULL when the memo is full
 * (the caller renders the key itself then). */
const char *key_memo_get(KeyMemo *memo, const char *key, size_t *len);

static inline unsigned key_memo_slot(const char *key)
{
    uintptr_t a = (uintptr_t)key;
    a ^= a >> 17;
    a *= UINT64_C(0x9E3779B97F4A7C15);
    return (unsigned)(a >> 40) & (KEY_MEMO_SLOTS - 1);
}

/* key_memo_get with its common case inline: the key in its first slot. */
static inline const char *key_memo_lookup(KeyMemo *memo, const char *key, size_t *len)
{
    const KeyMemoEntry *e = &memo->slots[key_memo_slot(key)];
    if (G_LIKELY(__atomic_load_n(&e->key, __ATOMIC_ACQUIRE) == key)) {
        *len = e->len;
        return e->text;
    }
    return key_memo_get(memo, key, len);
}
