/* key_memo.c: rendered forms of static keys (key_memo.h). Open addressing
 * by the key's address; slots are filled once, under the lock, and never
 * change afterwards. */
#include "key_memo.h"


/* The slot holding key, or the empty slot where it would go. */
static KeyMemoEntry *probe(KeyMemo *memo, const char *key)
{
    for (guint i = key_memo_slot(key);; i = (i + 1) & (KEY_MEMO_SLOTS - 1)) {
        KeyMemoEntry *e = &memo->slots[i];
        const char *k = __atomic_load_n(&e->key, __ATOMIC_ACQUIRE);
        if (k == key || k == NULL)
            return e;
    }
}

const char *key_memo_get(KeyMemo *memo, const char *key, size_t *len)
{
    KeyMemoEntry *e = probe(memo, key);
    if (G_LIKELY(__atomic_load_n(&e->key, __ATOMIC_ACQUIRE) == key)) {
        *len = e->len;
        return e->text;
    }
    g_mutex_lock(&memo->lock);
    e = probe(memo, key); /* another thread may have filled it meanwhile */
    if (e->key != key) {
        if (memo->used >= KEY_MEMO_SLOTS / 2) { /* keep probes short */
            g_mutex_unlock(&memo->lock);
            return NULL;
        }
        e->text = memo->render(key, &e->len);
        memo->used++;
        __atomic_store_n(&e->key, key, __ATOMIC_RELEASE);
    }
    g_mutex_unlock(&memo->lock);
    *len = e->len;
    return e->text;
}
