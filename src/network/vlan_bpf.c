/* vlan_bpf.c: 802.1Q for kernels built without CONFIG_VLAN_8021Q. The
 * VLAN's link is one end of a veth pair; two tc BPF programs move frames
 * between the pair's hidden end and the parent, taking tag off on the way
 * in and putting it on on the way out, so the wire carries real 802.1Q
 * frames and a bridge sees untagged ones, as with the kernel's own VLAN
 * links. The programs are a few instructions written out here. */
#include "vlan_bpf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <net/if.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "host_net.h"
#include "rtnl.h"
#include "tc_bpf.h"

/* ---- the programs ------------------------------------------------------------------ */

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
    return tcbpf_load(p, G_N_ELEMENTS(p));
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
    return tcbpf_load(p, G_N_ELEMENTS(p));
}

/* ---- the VLAN's link ------------------------------------------------------------------- */

char *vlanbpf_hidden_name(int parent_ifindex, int tag)
{
    return g_strdup_printf("vq%d.%d", parent_ifindex, tag);
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
    int rc = tcbpf_veth_add(name, hidden, mtu > 0 ? mtu : 1500, NULL);
    if (rc < 0)
        return fail(rc, "create", name, err);
    int hidden_index = (int)if_nametoindex(hidden);
    int untag = hidden_index ? load_untag(tag, hidden_index) : -ENODEV;
    int retag = untag >= 0 ? load_tag(tag, parent_index) : untag;
    if (retag >= 0 && (rc = tcbpf_attach(hidden_index, 1, retag, "xapid-vlan")) == 0 &&
        (rc = tcbpf_attach(parent_index, tag + 1, untag, "xapid-vlan")) == 0 &&
        (rc = tcbpf_set_promisc(parent_index, true)) == 0) {
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
    int rc = parent_index ? tcbpf_detach(parent_index, tag + 1) : 0;
    if (rc < 0)
        return err ? fail(rc, "remove the 802.1Q program of", name, err) : -1;
    unsigned index = if_nametoindex(name);
    if (!index)
        return 0;
    rc = tcbpf_link_del((int)index); /* the hidden end goes with it */
    if (rc < 0)
        return err ? fail(rc, "remove", name, err) : -1;
    if (parent_index && !parent_has_vlans(parent_index))
        tcbpf_set_promisc(parent_index, false);
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
