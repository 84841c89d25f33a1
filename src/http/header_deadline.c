/* header_deadline.c: one watchdog thread per server shuts down the socket
 * of a connection whose headers are overdue; libmicrohttpd's thread for
 * that connection then reads end-of-file and closes it as if the peer had
 * gone. The watch is removed under the same lock before MHD closes the
 * socket, so a descriptor number reused by a newer connection is never
 * touched. */
#include "header_deadline.h"

#include <glib.h>
#include <sys/socket.h>

struct HeaderWatch {
    HeaderDeadlines *owner;
    int fd;
    gint64 due; /* monotonic µs; 0 while no request is being read */
    GList link; /* in owner->watches */
};

struct HeaderDeadlines {
    gint64 timeout; /* µs */
    GMutex lock;
    GCond changed;
    GQueue watches; /* HeaderWatch*, scanned whole: at most a few thousand */
    bool stopping;
    gint64 next_wake; /* when the watchdog wakes next (monotonic µs) */
    GThread *thread;
};

/* Lock held: wakes the watchdog only for a deadline before its next
 * wake-up (never in the usual case, the idle timeout being the longer):
 * a wake-up per request would cost every call a context switch. */
static void due_changed(HeaderDeadlines *d, gint64 due)
{
    if (due && due < d->next_wake)
        g_cond_signal(&d->changed);
}

static gpointer watchdog(gpointer data)
{
    HeaderDeadlines *d = data;
    g_mutex_lock(&d->lock);
    while (!d->stopping) {
        gint64 now = g_get_monotonic_time(), next = now + d->timeout;
        for (GList *l = d->watches.head; l; l = l->next) {
            HeaderWatch *w = l->data;
            if (!w->due)
                continue;
            if (w->due <= now) {
                shutdown(w->fd, SHUT_RDWR);
                w->due = 0;
            } else if (w->due < next) {
                next = w->due;
            }
        }
        d->next_wake = next;
        g_cond_wait_until(&d->changed, &d->lock, next);
    }
    g_mutex_unlock(&d->lock);
    return NULL;
}

HeaderDeadlines *header_deadlines_new(unsigned timeout_s)
{
    if (!timeout_s)
        return NULL;
    HeaderDeadlines *d = g_new0(HeaderDeadlines, 1);
    d->timeout = (gint64)timeout_s * G_USEC_PER_SEC;
    g_mutex_init(&d->lock);
    g_cond_init(&d->changed);
    g_queue_init(&d->watches);
    d->thread = g_thread_new("header-deadline", watchdog, d);
    return d;
}

void header_deadlines_free(HeaderDeadlines *d)
{
    if (!d)
        return;
    g_mutex_lock(&d->lock);
    d->stopping = true;
    g_cond_signal(&d->changed);
    g_mutex_unlock(&d->lock);
    g_thread_join(d->thread);
    g_assert(d->watches.length == 0);
    g_mutex_clear(&d->lock);
    g_cond_clear(&d->changed);
    g_free(d);
}

HeaderWatch *header_watch_add(HeaderDeadlines *d, int fd)
{
    if (!d)
        return NULL;
    HeaderWatch *w = g_new0(HeaderWatch, 1);
    w->owner = d;
    w->fd = fd;
    w->link.data = w;
    g_mutex_lock(&d->lock);
    w->due = g_get_monotonic_time() + d->timeout;
    g_queue_push_tail_link(&d->watches, &w->link);
    g_mutex_unlock(&d->lock);
    return w;
}

void header_watch_arm(HeaderWatch *w)
{
    if (!w)
        return;
    g_mutex_lock(&w->owner->lock);
    gint64 due = g_get_monotonic_time() + w->owner->timeout;
    if (!w->due || due < w->due)
        w->due = due;
    due_changed(w->owner, w->due);
    g_mutex_unlock(&w->owner->lock);
}

void header_watch_await_next(HeaderWatch *w, unsigned within_s)
{
    if (!w)
        return;
    g_mutex_lock(&w->owner->lock);
    w->due = within_s ? g_get_monotonic_time() + (gint64)within_s * G_USEC_PER_SEC : 0;
    due_changed(w->owner, w->due);
    g_mutex_unlock(&w->owner->lock);
}

void header_watch_disarm(HeaderWatch *w)
{
    if (!w)
        return;
    g_mutex_lock(&w->owner->lock);
    w->due = 0;
    g_mutex_unlock(&w->owner->lock);
}

void header_watch_remove(HeaderWatch *w)
{
    if (!w)
        return;
    HeaderDeadlines *d = w->owner;
    g_mutex_lock(&d->lock);
    g_queue_unlink(&d->watches, &w->link);
    g_mutex_unlock(&d->lock);
    g_free(w);
}
