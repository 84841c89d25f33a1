/* host_evacuate.c: host.evacuate and its checks (host_evacuate.h). */
#include "host_evacuate.h"

#include <string.h>

#include "dm_handlers.h"
#include "operations.h"
#include "vm_migrate.h"
#include "vm_operations.h"
#include "xenops.h"

static const DmClass *cls(const char *name) { return dm_class_by_name(name); }

static int host_check(const DbRow *host, const char *op, XapiError **err)
{
    const Xv *current = db_get(host, "current_operations");
    for (guint i = 0; current && i < xv_len(current); i++)
        if (strcmp(xv_str(&xv_member_at(current, i)->value), "evacuate") == 0)
            return xapi_error_set(err, "HOST_EVACUATE_IN_PROGRESS", host->ref, NULL);
    (void)op;
    return 0;
}

static const char *const host_offered[] = {"evacuate", NULL};
const ObjectOperations host_operations = {"host", host_check, host_offered};

/* ---- the plan ------------------------------------------------------------------ */

typedef struct {
    const char *host;
    GPtrArray *steps;        /* EvacuationStep */
    GHashTable *planned;     /* target host -> bytes planned there (gint64 *) */
} Planning;

static void step_free(gpointer p)
{
    EvacuationStep *s = p;
    g_free(s->vm);
    g_free(s->target);
    if (s->why)
        xapi_error_free(s->why);
    g_free(s);
}

typedef struct {
    Planning *p;
    const DbRow *vm;
    int64_t need;
    const char *found;
    XapiError *first_why;
} TargetScan;

static bool try_target(DbRow *host, void *ctx)
{
    TargetScan *t = ctx;
    if (strcmp(host->ref, t->p->host) == 0)
        return true;
    XapiError *why = NULL;
    if (vm_host_can_run(t->vm, host->ref, &why) == 0) {
        gint64 *planned = g_hash_table_lookup(t->p->planned, host->ref);
        int64_t already = planned ? *planned : 0;
        int64_t free_bytes = xenops_host_free_memory_of(host->ref);
        if (already + t->need <= free_bytes) {
            t->found = host->ref;
            return false;
        }
        char needed[32], available[32];
        g_snprintf(needed, sizeof needed, "%" G_GINT64_FORMAT, t->need);
        g_snprintf(available, sizeof available, "%" G_GINT64_FORMAT, free_bytes - already);
        xapi_error_set(&why, "HOST_NOT_ENOUGH_FREE_MEMORY", needed, available, NULL);
    }
    if (!t->first_why)
        t->first_why = why;
    else
        xapi_error_free(why);
    return true;
}

static bool plan_vm(DbRow *vm, void *ctx)
{
    Planning *p = ctx;
    if (db_get(vm, "is_control_domain")->b ||
        strcmp(xv_str(db_get(vm, "resident_on")), p->host) != 0)
        return true;
    EvacuationStep *s = g_new0(EvacuationStep, 1);
    s->vm = g_strdup(vm->ref);
    g_ptr_array_add(p->steps, s);
    if (vm_operations.check(vm, "pool_migrate", &s->why) < 0)
        return true;
    TargetScan t = {p, vm, xenops_vm_memory_need(vm), NULL, NULL};
    db_foreach(cls("host"), try_target, &t);
    if (t.found) {
        s->target = g_strdup(t.found);
        gint64 *planned = g_hash_table_lookup(p->planned, t.found);
        if (!planned) {
            planned = g_new0(gint64, 1);
            g_hash_table_insert(p->planned, g_strdup(t.found), planned);
        }
        *planned += t.need;
        if (t.first_why)
            xapi_error_free(t.first_why);
    } else {
        s->why = t.first_why; /* the first host's refusal, as XAPI reports it */
        if (!s->why)          /* no other host at all */
            xapi_error_set(&s->why, "NO_HOSTS_AVAILABLE", vm->ref, NULL);
    }
    return true;
}

GPtrArray *host_evacuation_plan(const char *host_ref)
{
    Planning p = {host_ref, g_ptr_array_new_with_free_func(step_free),
                  g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free)};
    db_read_begin();
    db_foreach(cls("VM"), plan_vm, &p);
    db_read_end();
    g_hash_table_destroy(p.planned);
    return p.steps;
}

/* ---- evacuate ------------------------------------------------------------------ */

int host_evacuate(Call *call, const char *host_ref)
{
    g_autofree char *op_task = call->task_ref ? g_strdup(call->task_ref) : db_new_ref();
    if (operations_begin(&host_operations, host_ref, "evacuate", op_task, &call->error) < 0)
        return -1;
    g_autoptr(GPtrArray) plan = host_evacuation_plan(host_ref);
    int rc = 0;
    for (guint i = 0; i < plan->len && rc == 0; i++) {
        EvacuationStep *s = plan->pdata[i];
        if (s->why) {
            call->error = g_steal_pointer(&s->why);
            rc = -1;
        } else if (vm_migrate_check(s->vm, s->target, &call->error) < 0 ||
                   vm_pool_migrate(call, s->vm, s->target, true) < 0) {
            rc = -1;
        }
    }
    operations_end(&host_operations, host_ref, op_task);
    return rc;
}
