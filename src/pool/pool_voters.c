/* pool_voters.c: a dead voter's vote goes to a live standby (see
 * pool_voters.h). */
#include "pool_voters.h"

#include <glib.h>
#include <string.h>

#include "bootstrap.h"
#include "db.h"
#include "pool_db.h"

typedef struct {
    char *dead;      /* the dead host's address */
    GPtrArray *live; /* the live hosts' addresses, NULL ended */
} Replacement;

static GMutex one_at_a_time;

static gpointer replace(gpointer data)
{
    Replacement *r = data;
    g_autoptr(XapiError) err = NULL;
    g_mutex_lock(&one_at_a_time);
    if (pool_db_replace_voter(r->dead, (const char *const *)r->live->pdata, &err) < 0)
        g_warning("pool: the dead voter of %s was not replaced: %s %s", r->dead, err->code,
                  err->params->len ? (char *)err->params->pdata[0] : "");
    g_mutex_unlock(&one_at_a_time);
    g_free(r->dead);
    g_ptr_array_free(r->live, TRUE);
    g_free(r);
    return NULL;
}

typedef struct {
    const char *dead, *master;
    GPtrArray *live;
} LiveScan;

static bool add_live(DbRow *h, void *ctx)
{
    LiveScan *scan = ctx;
    if (strcmp(h->ref, scan->dead) == 0)
        return true;
    DbRow *m = db_lookup(dm_class_by_name("host_metrics"), xv_str(db_get(h, "metrics")));
    bool live = strcmp(h->ref, scan->master) == 0 || (m && db_get(m, "live")->b);
    const char *address = xv_str(db_get(h, "address"));
    if (live && address && *address)
        g_ptr_array_add(scan->live, g_strdup(address));
    return true;
}

void pool_voters_host_dead(const char *host_ref)
{
    if (!pool_db_running())
        return;
    Replacement *r = g_new0(Replacement, 1);
    r->live = g_ptr_array_new_with_free_func(g_free);
    db_read_begin();
    g_autofree char *master = bootstrap_this_host();
    DbRow *dead = db_lookup(dm_class_by_name("host"), host_ref);
    const char *address = dead ? xv_str(db_get(dead, "address")) : NULL;
    r->dead = g_strdup(address ? address : "");
    LiveScan scan = {host_ref, master, r->live};
    db_foreach(dm_class_by_name("host"), add_live, &scan);
    db_read_end();
    g_ptr_array_add(r->live, NULL);
    if (!*r->dead) {
        g_free(r->dead);
        g_ptr_array_free(r->live, TRUE);
        g_free(r);
        return;
    }
    g_thread_unref(g_thread_new("pool-voters", replace, r));
}
