/* vlan_bpf.c: 802.1Q for kernels built without CONFIG_VLAN_8021Q. The
 * VLAN's link is one end of a veth pair; two tc BPF programs move frames
 * between the pair's hidden end and the parent, taking tag off on the way
 * in and putting it on on the way out, so the wire carries real 802.1Q
 * frames and a bridge sees untagged ones, as with the kernel's own VLAN
 * links. The programs are a few instructions written out here. */
#include "vlan_bpf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/veth.h>
#include <net/if.h>
#include <stddef.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "host_net.h"
#include "rtnl.h"

/* ---- the programs ------------------------------------------------------------------ */

#define INSN(c, d, s, o, i) ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})
#define MOV_REG(d, s) INSN(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define MOV_IMM(d, i) INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define AND_IMM(d, i) INSN(BPF_ALU64 | BPF_AND | BPF_K, d, 0, 0, i)
#define LDX_W(d, s, o) INSN(BPF_LDX | BPF_MEM | BPF_W, d, s, o, 0)
#define JEQ_IMM(d, i, o) INSN(BPF_JMP | BPF_JEQ | BPF_K, d, 0, o, i)
#define JNE_IMM(d, i, o) INSN(BPF_JMP | BPF_JNE | BPF_K, d, 0, o, i)
#define CALL(f) INSN(BPF_JMP | BPF_CALL, 0, 0, 0, f)
#define EXIT() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

static int prog_load(const struct bpf_insn *insns, unsigned n)
{
    static const char license[] = "GPL"; /* bpf_redirect and friends need it */
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.prog_type = BPF_PROG_TYPE_SCHED_CLS;
    attr.insns = (uint64_t)(uintptr_t)insns;
    attr.insn_cnt = n;
    attr.license = (uint64_t)(uintptr_t)license;
    int fd = (int)syscall(__NR_bpf, BPF_PROG_LOAD, &attr, sizeof attr);
    return fd < 0 ? -errno : fd;
}

/* On the parent's ingress: a frame with tag goes, untagged, out of the
 * hidden end (and so into the VLAN's link); others go on to the next
 * VLAN's program and then to the parent. */
static int load_untag(int tag, int hidden)
{
    const struct bpf_insn p[] = {
        MOV_REG(BPF_REG_6, BPF_REG_1),
        LDX_W(BPF_REG_2, BPF_REG_6, offsetof(struct __sk_buff, vlan_present)),
        JEQ_IMM(BPF_REG_2, 0, 9),
        LDX_W(BPF_REG_2, BPF_REG_6, offsetof(struct __sk_buff, vlan_tci)),
        AND_IMM(BPF_REG_2, 0x0fff),
        JNE_IMM(BPF_REG_2, tag, 6),
        MOV_REG(BPF_REG_1, BPF_REG_6),
        CALL(BPF_FUNC_skb_vlan_pop),
        MOV_IMM(BPF_REG_1, hidden),
        MOV_IMM(BPF_REG_2, 0),
        CALL(BPF_FUNC_redirect),
        EXIT(),
        MOV_IMM(BPF_REG_0, TC_ACT_UNSPEC),
        EXIT(),
    };
    return prog_load(p, G_N_ELEMENTS(p));
}

/* On the hidden end's ingress (what the bridge sent into the VLAN's
 * link): tagged, out of the parent. */
static int load_tag(int tag, int parent)
{
    const struct bpf_insn p[] = {
        /* r1, the frame, is bpf_skb_vlan_push's first argument as it is. */
        MOV_IMM(BPF_REG_2, (int)htons(ETH_P_8021Q)),
        MOV_IMM(BPF_REG_3, tag),
        CALL(BPF_FUNC_skb_vlan_push),
        MOV_IMM(BPF_REG_1, parent),
        MOV_IMM(BPF_REG_2, 0),
        CALL(BPF_FUNC_redirect),
        EXIT(),
    };
    return prog_load(p, G_N_ELEMENTS(p));
}

/* ---- tc: clsact and bpf filters ------------------------------------------------------ */

static int clsact_add(int ifindex)
{
    struct tcmsg t = {.tcm_family = AF_UNSPEC, .tcm_ifindex = ifindex,
                      .tcm_handle = TC_H_MAKE(TC_H_CLSACT, 0), .tcm_parent = TC_H_CLSACT};
    NlMsg m;
    nl_init(&m, RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL, &t, sizeof t);
    nl_str(&m, TCA_KIND, "clsact");
    int rc = nl_talk(&m);
    return rc == -EEXIST ? 0 : rc;
}

/* One filter per VLAN on a link's ingress, its priority the tag + 1. */
static struct tcmsg ingress_filter(int ifindex, int tag)
{
    return (struct tcmsg){.tcm_family = AF_UNSPEC, .tcm_ifindex = ifindex,
                          .tcm_parent = TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS),
                          .tcm_info = TC_H_MAKE((uint32_t)(tag + 1) << 16, htons(ETH_P_ALL))};
}

static int filter_add(int ifindex, int tag, int prog)
{
    int rc = clsact_add(ifindex);
    if (rc < 0)
        return rc;
    struct tcmsg t = ingress_filter(ifindex, tag);
    t.tcm_handle = 1;
    NlMsg m;
    nl_init(&m, RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_EXCL, &t, sizeof t);
    nl_str(&m, TCA_KIND, "bpf");
    struct rtattr *o = nl_nest(&m, TCA_OPTIONS);
    nl_u32(&m, TCA_BPF_FD, (uint32_t)prog);
    nl_str(&m, TCA_BPF_NAME, "xapid-vlan");
    nl_u32(&m, TCA_BPF_FLAGS, TCA_BPF_FLAG_ACT_DIRECT);
    nl_nest_end(&m, o);
    return nl_talk(&m);
}

static int filter_del(int ifindex, int tag)
{
    struct tcmsg t = ingress_filter(ifindex, tag);
    NlMsg m;
    nl_init(&m, RTM_DELTFILTER, 0, &t, sizeof t);
    int rc = nl_talk(&m);
    return rc == -ENOENT || rc == -EINVAL ? 0 : rc;
}

/* ---- the VLAN's link ------------------------------------------------------------------- */

char *vlanbpf_hidden_name(int parent_ifindex, int tag)
{
    return g_strdup_printf("vq%d.%d", parent_ifindex, tag);
}

static int veth_add(const char *name, const char *peer, int mtu)
{
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
    NlMsg m;
    nl_init(&m, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof ifi);
    nl_str(&m, IFLA_IFNAME, name);
    nl_u32(&m, IFLA_MTU, (uint32_t)mtu);
    struct rtattr *info = nl_nest(&m, IFLA_LINKINFO);
    nl_str(&m, IFLA_INFO_KIND, "veth");
    struct rtattr *data = nl_nest(&m, IFLA_INFO_DATA);
    struct rtattr *p = nl_nest(&m, VETH_INFO_PEER);
    struct ifinfomsg peer_ifi = {.ifi_family = AF_UNSPEC};
    memcpy(nl_tail(&m), &peer_ifi, sizeof peer_ifi);
    m.h.nlmsg_len += NLMSG_ALIGN(sizeof peer_ifi);
    nl_str(&m, IFLA_IFNAME, peer);
    nl_u32(&m, IFLA_MTU, (uint32_t)mtu);
    nl_nest_end(&m, p);
    nl_nest_end(&m, data);
    nl_nest_end(&m, info);
    return nl_talk(&m);
}

/* A real NIC drops frames for the guests' MACs unless promiscuous (the
 * kernel's VLAN links pass a bridge's promiscuity down to their parent). */
static int set_promisc(int ifindex, bool on)
{
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = ifindex,
                            .ifi_flags = on ? IFF_PROMISC : 0, .ifi_change = IFF_PROMISC};
    NlMsg m;
    nl_init(&m, RTM_NEWLINK, 0, &ifi, sizeof ifi);
    return nl_talk(&m);
}

/* Whether any VLAN of ours is left on the parent of that ifindex. */
static bool parent_has_vlans(int parent_ifindex)
{
    g_autofree char *prefix = g_strdup_printf("vq%d.", parent_ifindex);
    g_autoptr(GDir) dir = g_dir_open("/sys/class/net", 0, NULL);
    for (const char *n = dir ? g_dir_read_name(dir) : NULL; n; n = g_dir_read_name(dir))
        if (g_str_has_prefix(n, prefix))
            return true;
    return false;
}

static int fail(int rc, const char *what, const char *name, XapiError **err)
{
    return xapi_error_internal(err, "%s %s: %s", what, name, g_strerror(-rc));
}

int vlanbpf_add(const char *name, const char *parent, int tag, int mtu, XapiError **err)
{
    int parent_index = (int)if_nametoindex(parent);
    if (!parent_index)
        return xapi_error_internal(err, "no link %s", parent);
    g_autofree char *hidden = vlanbpf_hidden_name(parent_index, tag);
    int rc = veth_add(name, hidden, mtu > 0 ? mtu : 1500);
    if (rc < 0)
        return fail(rc, "create", name, err);
    int hidden_index = (int)if_nametoindex(hidden);
    int untag = hidden_index ? load_untag(tag, hidden_index) : -ENODEV;
    int retag = untag >= 0 ? load_tag(tag, parent_index) : untag;
    if (retag >= 0 && (rc = filter_add(hidden_index, 0, retag)) == 0 &&
        (rc = filter_add(parent_index, tag, untag)) == 0 &&
        (rc = set_promisc(parent_index, true)) == 0) {
        g_autoptr(XapiError) ignored = NULL;
        rc = hostnet_set_up(hidden, true, &ignored) < 0 ? -EIO : 0;
    } else if (retag < 0) {
        rc = retag;
    }
    if (untag >= 0)
        close(untag);
    if (retag >= 0)
        close(retag);
    if (rc < 0) {
        vlanbpf_del(name, parent, tag, NULL);
        return fail(rc, "set up the 802.1Q programs of", name, err);
    }
    return 0;
}

int vlanbpf_del(const char *name, const char *parent, int tag, XapiError **err)
{
    int parent_index = (int)if_nametoindex(parent);
    int rc = parent_index ? filter_del(parent_index, tag) : 0;
    if (rc < 0)
        return err ? fail(rc, "remove the 802.1Q program of", name, err) : -1;
    unsigned index = if_nametoindex(name);
    if (!index)
        return 0;
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = (int)index};
    NlMsg m;
    nl_init(&m, RTM_DELLINK, 0, &ifi, sizeof ifi);
    rc = nl_talk(&m); /* the hidden end goes with it */
    if (rc < 0 && rc != -ENODEV)
        return err ? fail(rc, "remove", name, err) : -1;
    if (parent_index && !parent_has_vlans(parent_index))
        set_promisc(parent_index, false);
    return 0;
}

bool vlanbpf_exists(const char *parent, int tag)
{
    int parent_index = (int)if_nametoindex(parent);
    if (!parent_index)
        return false;
    g_autofree char *hidden = vlanbpf_hidden_name(parent_index, tag);
    return hostnet_link_exists(hidden);
}
