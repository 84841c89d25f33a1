/* tc_bpf.c: loading tc BPF programs, attaching them to a link's clsact
 * ingress, and the veth pairs xapid's own 802.1Q and bonds are made of
 * (see tc_bpf.h). */
#include "tc_bpf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/veth.h>
#include <net/if.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rtnl.h"

int tcbpf_load(const struct bpf_insn *insns, unsigned n)
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

static struct tcmsg clsact(int ifindex)
{
    return (struct tcmsg){.tcm_family = AF_UNSPEC, .tcm_ifindex = ifindex,
                          .tcm_handle = TC_H_MAKE(TC_H_CLSACT, 0), .tcm_parent = TC_H_CLSACT};
}

static int clsact_add(int ifindex)
{
    struct tcmsg t = clsact(ifindex);
    NlMsg m;
    nl_init(&m, RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL, &t, sizeof t);
    nl_str(&m, TCA_KIND, "clsact");
    int rc = nl_talk(&m);
    return rc == -EEXIST ? 0 : rc;
}

int tcbpf_clsact_del(int ifindex)
{
    struct tcmsg t = clsact(ifindex);
    NlMsg m;
    nl_init(&m, RTM_DELQDISC, 0, &t, sizeof t);
    int rc = nl_talk(&m);
    return rc == -ENOENT || rc == -EINVAL || rc == -ENODEV ? 0 : rc;
}

static struct tcmsg ingress_filter(int ifindex, int prio)
{
    return (struct tcmsg){.tcm_family = AF_UNSPEC, .tcm_ifindex = ifindex,
                          .tcm_parent = TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS),
                          .tcm_info = TC_H_MAKE((uint32_t)prio << 16, htons(ETH_P_ALL))};
}

int tcbpf_attach(int ifindex, int prio, int prog, const char *name)
{
    int rc = clsact_add(ifindex);
    if (rc < 0)
        return rc;
    struct tcmsg t = ingress_filter(ifindex, prio);
    t.tcm_handle = 1;
    NlMsg m;
    nl_init(&m, RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_REPLACE, &t, sizeof t);
    nl_str(&m, TCA_KIND, "bpf");
    struct rtattr *o = nl_nest(&m, TCA_OPTIONS);
    nl_u32(&m, TCA_BPF_FD, (uint32_t)prog);
    nl_str(&m, TCA_BPF_NAME, name);
    nl_u32(&m, TCA_BPF_FLAGS, TCA_BPF_FLAG_ACT_DIRECT);
    nl_nest_end(&m, o);
    return nl_talk(&m);
}

int tcbpf_detach(int ifindex, int prio)
{
    struct tcmsg t = ingress_filter(ifindex, prio);
    NlMsg m;
    nl_init(&m, RTM_DELTFILTER, 0, &t, sizeof t);
    int rc = nl_talk(&m);
    return rc == -ENOENT || rc == -EINVAL ? 0 : rc;
}

int tcbpf_veth_add(const char *name, const char *peer, int mtu, const unsigned char *mac)
{
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
    NlMsg m;
    nl_init(&m, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof ifi);
    nl_str(&m, IFLA_IFNAME, name);
    nl_u32(&m, IFLA_MTU, (uint32_t)mtu);
    if (mac)
        nl_attr(&m, IFLA_ADDRESS, mac, 6);
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

int tcbpf_link_del(int ifindex)
{
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = ifindex};
    NlMsg m;
    nl_init(&m, RTM_DELLINK, 0, &ifi, sizeof ifi);
    int rc = nl_talk(&m);
    return rc == -ENODEV ? 0 : rc;
}

int tcbpf_set_promisc(int ifindex, bool on)
{
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = ifindex,
                            .ifi_flags = on ? IFF_PROMISC : 0, .ifi_change = IFF_PROMISC};
    NlMsg m;
    nl_init(&m, RTM_NEWLINK, 0, &ifi, sizeof ifi);
    return nl_talk(&m);
}
