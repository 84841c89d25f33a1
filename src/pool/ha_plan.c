/* ha_plan.c: XAPI's HA binpacker over plain data (see ha_plan.h). */
#include "ha_plan.h"

#include <string.h>

/* A VM's place in the simulation: a host index, or one of these. */
#define NOWHERE (-1) /* offline */
#define PINNED (-2)  /* not agile: its host's overhead, never moved */

/* The planner's working state: hosts and VMs by index. */
typedef struct {
    guint n_hosts, n_vms;
    guint n_agile;  /* the VMs the binpacker knows (XAPI's config.vms) */
    int64_t *free;  /* per host */
    bool *alive;    /* per host: not failed in this simulation */
    int64_t *memory;/* per VM */
    int *placed;    /* per VM: host index, NOWHERE or PINNED */
} Sim;

static void host_free_fn(gpointer p)
{
    HaPlanHost *h = p;
    g_free(h->ref);
    g_free(h);
}

static void vm_free_fn(gpointer p)
{
    HaPlanVm *v = p;
    g_free(v->ref);
    g_free(v->host);
    g_free(v->pinned);
    g_free(v);
}

static void move_free_fn(gpointer p)
{
    HaPlanMove *m = p;
    g_free(m->vm);
    g_free(m->host);
    g_free(m);
}

HaPlanPool *ha_plan_pool_new(int total_hosts)
{
    HaPlanPool *p = g_new0(HaPlanPool, 1);
    p->hosts = g_ptr_array_new_with_free_func(host_free_fn);
    p->vms = g_ptr_array_new_with_free_func(vm_free_fn);
    p->total_hosts = total_hosts;
    return p;
}

void ha_plan_pool_free(HaPlanPool *p)
{
    if (!p)
        return;
    g_ptr_array_unref(p->hosts);
    g_ptr_array_unref(p->vms);
    g_free(p);
}

void ha_plan_add_host(HaPlanPool *p, const char *ref, int64_t free)
{
    HaPlanHost *h = g_new0(HaPlanHost, 1);
    h->ref = g_strdup(ref);
    h->free = free;
    g_ptr_array_add(p->hosts, h);
}

void ha_plan_add_vm(HaPlanPool *p, const char *ref, int64_t memory, const char *host)
{
    HaPlanVm *v = g_new0(HaPlanVm, 1);
    v->ref = g_strdup(ref);
    v->memory = memory;
    v->host = g_strdup(host);
    v->agile = true;
    g_ptr_array_add(p->vms, v);
}

void ha_plan_add_non_agile_vm(HaPlanPool *p, const char *ref, int64_t memory, const char *host,
                              const char *pinned)
{
    ha_plan_add_vm(p, ref, memory, host);
    HaPlanVm *v = p->vms->pdata[p->vms->len - 1];
    v->agile = false;
    v->pinned = g_strdup(pinned);
}

static int host_index(const HaPlanPool *p, const char *ref)
{
    for (guint i = 0; ref && i < p->hosts->len; i++)
        if (strcmp(((HaPlanHost *)p->hosts->pdata[i])->ref, ref) == 0)
            return (int)i;
    return -1;
}

bool ha_plan_has_host(const HaPlanPool *p, const char *ref) { return host_index(p, ref) >= 0; }

static int vm_index(const HaPlanPool *p, const char *ref)
{
    for (guint i = 0; i < p->vms->len; i++)
        if (strcmp(((HaPlanVm *)p->vms->pdata[i])->ref, ref) == 0)
            return (int)i;
    return -1;
}

static void sim_init(Sim *s, const HaPlanPool *p)
{
    s->n_hosts = p->hosts->len;
    s->n_vms = p->vms->len;
    s->n_agile = 0;
    s->free = g_new0(int64_t, s->n_hosts + 1);
    s->alive = g_new0(bool, s->n_hosts + 1);
    s->memory = g_new0(int64_t, s->n_vms + 1);
    s->placed = g_new0(int, s->n_vms + 1);
    for (guint i = 0; i < s->n_hosts; i++) {
        s->free[i] = ((HaPlanHost *)p->hosts->pdata[i])->free;
        s->alive[i] = true;
    }
    for (guint i = 0; i < s->n_vms; i++) {
        const HaPlanVm *v = p->vms->pdata[i];
        s->memory[i] = v->memory;
        s->placed[i] = v->agile ? host_index(p, v->host) : PINNED;
        s->n_agile += v->agile;
        /* Binpack.account: an offline one is its pinned host's overhead */
        int pinned = v->agile || host_index(p, v->host) >= 0 ? -1 : host_index(p, v->pinned);
        if (pinned >= 0)
            s->free[pinned] -= v->memory;
    }
}

static void sim_copy(Sim *to, const Sim *from)
{
    to->n_hosts = from->n_hosts;
    to->n_vms = from->n_vms;
    to->n_agile = from->n_agile;
    to->free = g_memdup2(from->free, sizeof(int64_t) * (from->n_hosts + 1));
    to->alive = g_memdup2(from->alive, sizeof(bool) * (from->n_hosts + 1));
    to->memory = g_memdup2(from->memory, sizeof(int64_t) * (from->n_vms + 1));
    to->placed = g_memdup2(from->placed, sizeof(int) * (from->n_vms + 1));
}

static void sim_clear(Sim *s)
{
    g_free(s->free);
    g_free(s->alive);
    g_free(s->memory);
    g_free(s->placed);
}

/* Biggest fit decreasing (binpack.ml): things sorted biggest first, bins
 * kept sorted biggest first (a stable sort: ties keep their order, as
 * OCaml's List.sort); each thing goes to the first bin if it fits there,
 * else nowhere; the bin goes back before the first bin no bigger than
 * it. Places into s (free memory and placement); returns how many of the
 * n things found a bin. */
static guint pack(Sim *s, const int *things, guint n)
{
    g_autofree int *order = g_memdup2(things, sizeof(int) * (n + 1));
    for (guint i = 1; i < n; i++) /* insertion sort: stable */
        for (guint j = i; j > 0 && s->memory[order[j]] > s->memory[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    g_autofree int *bins = g_new0(int, s->n_hosts + 1);
    guint n_bins = 0;
    for (guint h = 0; h < s->n_hosts; h++) {
        if (!s->alive[h])
            continue;
        guint j = n_bins++;
        for (; j > 0 && s->free[h] > s->free[bins[j - 1]]; j--)
            bins[j] = bins[j - 1];
        bins[j] = (int)h;
    }
    guint placed = 0;
    for (guint i = 0; i < n && n_bins; i++) {
        int vm = order[i], first = bins[0];
        int64_t remaining = s->free[first] - s->memory[vm];
        if (remaining < 0)
            continue;
        s->free[first] = remaining;
        s->placed[vm] = first;
        placed++;
        /* reinsert: before the first of the rest with free <= remaining */
        guint k = 1;
        while (k < n_bins && s->free[bins[k]] > remaining)
            k++;
        memmove(bins, bins + 1, sizeof(int) * (k - 1));
        bins[k - 1] = first;
    }
    return placed;
}

/* One host fails: its VMs are packed onto the others; false when some
 * fit nowhere (binpack.ml simulate_failure's Stop). */
static bool simulate_failure(Sim *s, int dead)
{
    g_autofree int *failed = g_new0(int, s->n_vms + 1);
    guint n = 0;
    for (guint v = 0; v < s->n_vms; v++)
        if (s->placed[v] == dead)
            failed[n++] = (int)v;
    s->alive[dead] = false;
    for (guint i = 0; i < n; i++)
        s->placed[failed[i]] = -1;
    return pack(s, failed, n) == n;
}

static guint alive_hosts(const Sim *s)
{
    guint n = 0;
    for (guint h = 0; h < s->n_hosts; h++)
        n += s->alive[h];
    return n;
}

static bool trivially_never_possible(const Sim *s, int r)
{
    guint hosts = alive_hosts(s);
    return hosts < (guint)r || (hosts == (guint)r && s->n_agile > 0);
}

/* Every order of the hosts in combo[0..r): the failures in that order
 * each leave a plan. */
static bool every_order(const Sim *s, int *combo, int r, int k)
{
    if (k == r) {
        Sim t;
        sim_copy(&t, s);
        bool ok = true;
        for (int i = 0; i < r && ok; i++)
            ok = simulate_failure(&t, combo[i]);
        sim_clear(&t);
        return ok;
    }
    for (int i = k; i < r; i++) {
        int tmp = combo[k];
        combo[k] = combo[i];
        combo[i] = tmp;
        bool ok = every_order(s, combo, r, k + 1);
        combo[i] = combo[k];
        combo[k] = tmp;
        if (!ok)
            return false;
    }
    return true;
}

/* Every r-subset of the live hosts (from index start). */
static bool every_combination(const Sim *s, int *combo, int r, int k, guint start)
{
    if (k == r) {
        g_autofree int *order = g_memdup2(combo, sizeof(int) * (r + 1));
        return every_order(s, order, r, 0);
    }
    for (guint h = start; h < s->n_hosts; h++) {
        combo[k] = (int)h;
        if (!every_combination(s, combo, r, k + 1, h + 1))
            return false;
    }
    return true;
}

static bool exhaustive_always_possible(const Sim *s, int r)
{
    if (trivially_never_possible(s, r))
        return false;
    g_autofree int *combo = g_new0(int, r + 1);
    return every_combination(s, combo, r, 0, 0);
}

static gint int_descending(gconstpointer a, gconstpointer b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* binpack.ml approximate_bin_pack: every failed VM as big as the
 * biggest, the hosts holding most VMs fail, the biggest hosts fail. */
static bool approximate_always_possible(const Sim *s, int r)
{
    if (trivially_never_possible(s, r))
        return false;
    if (s->n_agile == 0)
        return true;
    int64_t biggest = 0;
    for (guint v = 0; v < s->n_vms; v++)
        if (s->placed[v] != PINNED)
            biggest = MAX(biggest, s->memory[v]);
    g_autofree int64_t *capacity = g_new0(int64_t, s->n_hosts + 1);
    g_autofree int64_t *count = g_new0(int64_t, s->n_hosts + 1);
    guint n = 0;
    for (guint h = 0; h < s->n_hosts; h++) {
        if (!s->alive[h])
            continue;
        capacity[n] = biggest > 0 ? s->free[h] / biggest : G_MAXINT32;
        for (guint v = 0; v < s->n_vms; v++)
            count[n] += s->placed[v] == (int)h;
        n++;
    }
    qsort(capacity, n, sizeof(int64_t), int_descending);
    qsort(count, n, sizeof(int64_t), int_descending);
    int64_t left = 0, to_move = 0;
    for (guint i = 0; i < n; i++) {
        if (i >= (guint)r)
            left += capacity[i];
        else
            to_move += count[i];
    }
    return to_move <= left;
}

/* binpack.ml choose_heuristic: exhaustive while C(n, r) * r! < 3500. */
static bool use_exhaustive(int n, int r)
{
    if (n > 32)
        return false;
    double cases = 1;
    for (int i = 0; i < r; i++)
        cases *= (double)(n - i); /* C(n, r) * r! = n! / (n - r)! */
    return cases < 3500;
}

static GPtrArray *moves_of(const HaPlanPool *p, const Sim *s, const int *vms, guint n)
{
    GPtrArray *moves = g_ptr_array_new_with_free_func(move_free_fn);
    for (guint i = 0; i < n; i++) {
        if (s->placed[vms[i]] < 0)
            continue;
        HaPlanMove *m = g_new0(HaPlanMove, 1);
        m->vm = g_strdup(((HaPlanVm *)p->vms->pdata[vms[i]])->ref);
        m->host = g_strdup(((HaPlanHost *)p->hosts->pdata[s->placed[vms[i]]])->ref);
        g_ptr_array_add(moves, m);
    }
    return moves;
}

GPtrArray *ha_plan_pack(const HaPlanPool *p, const GPtrArray *hosts, const GPtrArray *vms)
{
    g_autoptr(HaPlanPool) q = ha_plan_pool_new(p->total_hosts);
    for (guint i = 0; i < hosts->len; i++) {
        const HaPlanHost *h = hosts->pdata[i];
        ha_plan_add_host(q, h->ref, h->free);
    }
    g_autofree int *things = g_new0(int, vms->len + 1);
    guint n = 0;
    for (guint i = 0; i < vms->len; i++) {
        int v = vm_index(p, vms->pdata[i]);
        if (v < 0)
            continue;
        ha_plan_add_vm(q, vms->pdata[i], ((HaPlanVm *)p->vms->pdata[v])->memory, NULL);
        things[n++] = (int)q->vms->len - 1;
    }
    Sim s;
    sim_init(&s, q);
    pack(&s, things, n);
    GPtrArray *moves = moves_of(q, &s, things, n);
    sim_clear(&s);
    return moves;
}

/* The offline agile VMs placed: s is the pool after the restart plan. */
static guint place_offline(Sim *s, int **offline_out)
{
    int *offline = g_new0(int, s->n_vms + 1);
    guint n = 0;
    for (guint v = 0; v < s->n_vms; v++)
        if (s->placed[v] == NOWHERE)
            offline[n++] = (int)v;
    pack(s, offline, n);
    *offline_out = offline;
    return n;
}

static bool offline_non_agile(const HaPlanPool *p, const HaPlanVm *v)
{
    return !v->agile && host_index(p, v->host) < 0;
}

/* non_agile_restart_plan: each offline non-agile VM to its pinned host. */
static void add_pinned_moves(const HaPlanPool *p, GPtrArray *moves)
{
    for (guint i = 0; i < p->vms->len; i++) {
        const HaPlanVm *v = p->vms->pdata[i];
        if (!offline_non_agile(p, v) || !v->pinned)
            continue;
        HaPlanMove *m = g_new0(HaPlanMove, 1);
        m->vm = g_strdup(v->ref);
        m->host = g_strdup(v->pinned);
        g_ptr_array_add(moves, m);
    }
}

GPtrArray *ha_plan_restart(const HaPlanPool *p, GPtrArray **not_restarted)
{
    Sim s;
    sim_init(&s, p);
    g_autofree int *offline = NULL;
    guint n = place_offline(&s, &offline);
    GPtrArray *moves = g_ptr_array_new_with_free_func(move_free_fn);
    add_pinned_moves(p, moves);
    g_autoptr(GPtrArray) agile = moves_of(p, &s, offline, n);
    g_ptr_array_extend_and_steal(moves, g_steal_pointer(&agile));
    if (not_restarted) {
        *not_restarted = g_ptr_array_new_with_free_func(g_free);
        for (guint v = 0; v < s.n_vms; v++)
            if (s.placed[v] == NOWHERE || offline_non_agile(p, p->vms->pdata[v]))
                g_ptr_array_add(*not_restarted, g_strdup(((HaPlanVm *)p->vms->pdata[v])->ref));
    }
    sim_clear(&s);
    return moves;
}

HaPlanStatus ha_plan_for_n_failures(const HaPlanPool *p, int n)
{
    if (n < 0 || n > p->total_hosts) /* binpack.ml check_configuration fails */
        return HA_PLAN_NONE;
    Sim s;
    sim_init(&s, p);
    g_autofree int *offline = NULL;
    guint n_offline = place_offline(&s, &offline);
    bool all_placed = true;
    for (guint i = 0; i < n_offline; i++)
        all_placed = all_placed && s.placed[offline[i]] >= 0;
    bool non_agile = false;
    for (guint v = 0; v < p->vms->len; v++) {
        const HaPlanVm *vm = p->vms->pdata[v];
        non_agile = non_agile || !vm->agile;
        all_placed = all_placed && !offline_non_agile(p, vm); /* XAPI's vms_not_restarted */
    }
    bool ok = all_placed && (use_exhaustive(p->total_hosts, n) ? exhaustive_always_possible(&s, n)
                                                               : approximate_always_possible(&s, n));
    sim_clear(&s);
    return !ok ? HA_PLAN_NONE : non_agile ? HA_PLAN_EXCLUDING_NON_AGILE : HA_PLAN_EXISTS;
}

/* helpers.ml bisect: the largest n in [lower, upper] with a plan,
 * assuming none above the first without; lower when none. */
static int bisect(const HaPlanPool *p, int lower, int upper)
{
    while (upper - lower >= 2) {
        int mid = (upper + lower) / 2;
        if (ha_plan_for_n_failures(p, mid) == HA_PLAN_EXISTS)
            lower = mid;
        else
            upper = mid;
    }
    return ha_plan_for_n_failures(p, upper) == HA_PLAN_EXISTS ? upper : lower;
}

int ha_plan_max_failures(const HaPlanPool *p, int cap)
{
    return bisect(p, 0, MAX(cap, 0));
}

int ha_plan_quorum_cap(int voters)
{
    return voters > 0 ? (voters - 1) / 2 : 0;
}
