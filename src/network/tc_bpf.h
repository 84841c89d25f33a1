/* tc_bpf.h: what xapid's own 802.1Q (vlan_bpf.c) and bonds (bond_bpf.c)
 * share: tc BPF programs written out instruction by instruction, loaded
 * and attached as direct-action filters on a link's clsact ingress, and
 * the veth pairs whose hidden ends they serve. */
#pragma once

#include <linux/bpf.h>
#include <stdbool.h>

#define INSN(c, d, s, o, i) ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})
#define MOV_REG(d, s) INSN(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define MOV_IMM(d, i) INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define AND_IMM(d, i) INSN(BPF_ALU64 | BPF_AND | BPF_K, d, 0, 0, i)
#define XOR_REG(d, s) INSN(BPF_ALU64 | BPF_XOR | BPF_X, d, s, 0, 0)
#define RSH_IMM(d, i) INSN(BPF_ALU64 | BPF_RSH | BPF_K, d, 0, 0, i)
#define MOD32_IMM(d, i) INSN(BPF_ALU | BPF_MOD | BPF_K, d, 0, 0, i)
#define ADD_IMM(d, i) INSN(BPF_ALU64 | BPF_ADD | BPF_K, d, 0, 0, i)
#define SUB_REG(d, s) INSN(BPF_ALU64 | BPF_SUB | BPF_X, d, s, 0, 0)
#define LDX_W(d, s, o) INSN(BPF_LDX | BPF_MEM | BPF_W, d, s, o, 0)
#define LDX_DW(d, s, o) INSN(BPF_LDX | BPF_MEM | BPF_DW, d, s, o, 0)
#define STX_DW(d, s, o) INSN(BPF_STX | BPF_MEM | BPF_DW, d, s, o, 0)
#define ST_DW(d, o, i) INSN(BPF_ST | BPF_MEM | BPF_DW, d, 0, o, i)
/* The first of two instructions loading a map's fd (the second is 0). */
#define LD_MAP_FD(d, fd) INSN(BPF_LD | BPF_DW | BPF_IMM, d, BPF_PSEUDO_MAP_FD, 0, fd)
/* Packet bytes at a fixed offset into r0 (host order); the context must
 * be in r6. A frame too short ends the program (TC_ACT_OK). */
#define LD_ABS(size, o) INSN(BPF_LD | BPF_ABS | (size), 0, 0, 0, o)
#define JEQ_IMM(d, i, o) INSN(BPF_JMP | BPF_JEQ | BPF_K, d, 0, o, i)
#define JNE_IMM(d, i, o) INSN(BPF_JMP | BPF_JNE | BPF_K, d, 0, o, i)
#define JGT_IMM(d, i, o) INSN(BPF_JMP | BPF_JGT | BPF_K, d, 0, o, i)
#define CALL(f) INSN(BPF_JMP | BPF_CALL, 0, 0, 0, f)
#define EXIT() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

/* Loads a BPF_PROG_TYPE_SCHED_CLS program: its fd or -errno. */
int tcbpf_load(const struct bpf_insn *insns, unsigned n);
/* Attaches prog (an fd) as the ingress filter of priority prio on the
 * link of ifindex, adding its clsact qdisc if needed; an existing filter
 * of that priority is replaced at once. name names it in tc's listing.
 * 0 or -errno. */
int tcbpf_attach(int ifindex, int prio, int prog, const char *name);
/* Removes that filter; absent is fine. 0 or -errno. */
int tcbpf_detach(int ifindex, int prio);
/* Removes the link's clsact qdisc and every filter on it; absent is fine. */
int tcbpf_clsact_del(int ifindex);
/* Creates a veth pair name/peer with mtu, name with mac (6 bytes) unless
 * NULL. 0 or -errno. */
int tcbpf_veth_add(const char *name, const char *peer, int mtu, const unsigned char *mac);
/* Removes a link by ifindex (a veth's peer goes with it). 0 or -errno;
 * absent is fine. */
int tcbpf_link_del(int ifindex);
/* A real NIC drops frames for other MACs (the guests') unless
 * promiscuous. 0 or -errno. */
int tcbpf_set_promisc(int ifindex, bool on);
