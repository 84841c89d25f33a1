/* bond_programs.c: the tc BPF programs of xapid's own bonds (see
 * bond_programs.h). */
#include "bond_programs.h"

#include <errno.h>
#include <linux/pkt_cls.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tc_bpf.h"

typedef struct {
    struct bpf_insn i[48 + 6 * BONDPROG_MAX_MEMBERS];
    unsigned n;
} Prog;

static void put(Prog *p, struct bpf_insn insn) { p->i[p->n++] = insn; }

/* A jump whose target is set by land() once it is written: its index. */
static unsigned put_jump(Prog *p, struct bpf_insn insn)
{
    put(p, insn);
    return p->n - 1;
}

static void land(Prog *p, unsigned jump) { p->i[jump].off = (short)(p->n - jump - 1); }

static void put_redirect(Prog *p, int ifindex)
{
    if (ifindex <= 0) {
        put(p, MOV_IMM(BPF_REG_0, TC_ACT_SHOT));
        put(p, EXIT());
        return;
    }
    put(p, MOV_IMM(BPF_REG_1, ifindex));
    put(p, MOV_IMM(BPF_REG_2, 0));
    put(p, CALL(BPF_FUNC_redirect));
    put(p, EXIT());
}

/* r0 = whether the destination is a group (broadcast, multicast) MAC.
 * The context is in r6 (LD_ABS wants it there). */
static void put_group_test(Prog *p)
{
    put(p, LD_ABS(BPF_B, 0));
    put(p, AND_IMM(BPF_REG_0, 1));
}

/* The source MAC into the 8 bytes at r10 - 8 (zero padded), r2 pointing
 * there; a frame too short jumps to the returned jump's target. */
static unsigned put_source_key(Prog *p)
{
    put(p, ST_DW(BPF_REG_10, -8, 0));
    put(p, MOV_REG(BPF_REG_1, BPF_REG_6));
    put(p, MOV_IMM(BPF_REG_2, 6));
    put(p, MOV_REG(BPF_REG_3, BPF_REG_10));
    put(p, ADD_IMM(BPF_REG_3, -8));
    put(p, MOV_IMM(BPF_REG_4, 6));
    put(p, CALL(BPF_FUNC_skb_load_bytes));
    unsigned short_frame = put_jump(p, JNE_IMM(BPF_REG_0, 0, 0));
    put(p, MOV_REG(BPF_REG_2, BPF_REG_10));
    put(p, ADD_IMM(BPF_REG_2, -8));
    return short_frame;
}

static void put_map(Prog *p, int map)
{
    put(p, LD_MAP_FD(BPF_REG_1, map));
    put(p, INSN(0, 0, 0, 0, 0));
}

static int load(const Prog *p) { return tcbpf_load(p->i, p->n); }

/* balance-slb: the time each source MAC last left through the bond, so
 * that a frame of ours a switch floods back through another member is
 * not taken for one from the LAN (Open vSwitch's rule): the bridge would
 * learn its own sender behind the bond. */
#define SENT_WINDOW_NS 1000000000 /* a frame from such a MAC within 1 s is ours */
#define SENT_MACS 4096

int bondprog_sent_map_new(void)
{
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.map_type = BPF_MAP_TYPE_LRU_HASH;
    attr.key_size = 8;
    attr.value_size = 8;
    attr.max_entries = SENT_MACS;
    int fd = (int)syscall(__NR_bpf, BPF_MAP_CREATE, &attr, sizeof attr);
    return fd < 0 ? -errno : fd;
}

/* On the hidden end's ingress (what the bond's link sent). active-backup:
 * out of the active member. balance-slb: the source MAC noted in the map;
 * broadcasts and multicasts out of the active member (a switch floods
 * them back only to the others, which drop them), each other frame out
 * of the member with carrier its source MAC hashes to. */
int bondprog_send(BondProgMode mode, int map, int active, const int *up, int n_up)
{
    Prog p = {.n = 0};
    if (mode == BONDPROG_ACTIVE_BACKUP) {
        put_redirect(&p, active);
        return load(&p);
    }
    put(&p, MOV_REG(BPF_REG_6, BPF_REG_1));
    unsigned short_frame = put_source_key(&p);
    put(&p, MOV_REG(BPF_REG_7, BPF_REG_2));
    put(&p, CALL(BPF_FUNC_ktime_get_ns));
    put(&p, STX_DW(BPF_REG_10, BPF_REG_0, -16));
    put_map(&p, map);
    put(&p, MOV_REG(BPF_REG_2, BPF_REG_7));
    put(&p, MOV_REG(BPF_REG_3, BPF_REG_10));
    put(&p, ADD_IMM(BPF_REG_3, -16));
    put(&p, MOV_IMM(BPF_REG_4, BPF_ANY));
    put(&p, CALL(BPF_FUNC_map_update_elem));
    land(&p, short_frame);
    if (n_up <= 1) {
        put_redirect(&p, active);
        return load(&p);
    }
    put_group_test(&p);
    unsigned group = put_jump(&p, JNE_IMM(BPF_REG_0, 0, 0));
    put(&p, LD_ABS(BPF_H, 6));
    put(&p, MOV_REG(BPF_REG_7, BPF_REG_0));
    put(&p, LD_ABS(BPF_W, 8));
    put(&p, XOR_REG(BPF_REG_0, BPF_REG_7));
    put(&p, MOV_REG(BPF_REG_7, BPF_REG_0));
    put(&p, RSH_IMM(BPF_REG_7, 16));
    put(&p, XOR_REG(BPF_REG_0, BPF_REG_7));
    put(&p, MOV_REG(BPF_REG_7, BPF_REG_0));
    put(&p, RSH_IMM(BPF_REG_7, 8));
    put(&p, XOR_REG(BPF_REG_0, BPF_REG_7));
    put(&p, AND_IMM(BPF_REG_0, 0xff));
    put(&p, MOD32_IMM(BPF_REG_0, n_up));
    unsigned to[BONDPROG_MAX_MEMBERS];
    for (int k = 1; k < n_up; k++)
        to[k] = put_jump(&p, JEQ_IMM(BPF_REG_0, k, 0));
    for (int k = 0; k < n_up; k++) {
        if (k > 0)
            land(&p, to[k]);
        put_redirect(&p, up[k]);
    }
    land(&p, group);
    put_redirect(&p, active);
    return load(&p);
}

/* On a member's ingress: into the bond's link, or dropped. The active
 * member passes all; active-backup drops all on the others, as Linux
 * bonding does; balance-slb drops broadcasts and multicasts there, and on
 * every member frames from a MAC the bond sent from within the window. */
int bondprog_receive(BondProgMode mode, int map, bool active, int hidden)
{
    Prog p = {.n = 0};
    if (mode == BONDPROG_ACTIVE_BACKUP) {
        put_redirect(&p, active ? hidden : 0);
        return load(&p);
    }
    put(&p, MOV_REG(BPF_REG_6, BPF_REG_1));
    if (!active) {
        put_group_test(&p);
        unsigned unicast = put_jump(&p, JEQ_IMM(BPF_REG_0, 0, 0));
        put_redirect(&p, 0);
        land(&p, unicast);
    }
    unsigned short_frame = put_source_key(&p);
    put(&p, MOV_REG(BPF_REG_7, BPF_REG_2));
    put_map(&p, map);
    put(&p, MOV_REG(BPF_REG_2, BPF_REG_7));
    put(&p, CALL(BPF_FUNC_map_lookup_elem));
    unsigned unknown = put_jump(&p, JEQ_IMM(BPF_REG_0, 0, 0));
    put(&p, LDX_DW(BPF_REG_7, BPF_REG_0, 0));
    put(&p, CALL(BPF_FUNC_ktime_get_ns));
    put(&p, SUB_REG(BPF_REG_0, BPF_REG_7));
    unsigned old = put_jump(&p, JGT_IMM(BPF_REG_0, SENT_WINDOW_NS, 0));
    put_redirect(&p, 0);
    land(&p, short_frame);
    land(&p, unknown);
    land(&p, old);
    put_redirect(&p, hidden);
    return load(&p);
}

