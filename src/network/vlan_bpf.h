/* vlan_bpf.h: 802.1Q links for kernels without CONFIG_VLAN_8021Q: a veth
 * whose hidden peer tc BPF programs join to the parent, tagging on the
 * way out and untagging on the way in. */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "xapi_error.h"

/* The hidden end of the VLAN with tag on the parent of that ifindex. */
char *vlanbpf_hidden_name(int parent_ifindex, int tag);
/* Creates name (up to the caller to bring up and put on a bridge). */
int vlanbpf_add(const char *name, const char *parent, int tag, int mtu, XapiError **err);
/* Removes name and the parent's program for tag; absent is fine. err may
 * be NULL. */
int vlanbpf_del(const char *name, const char *parent, int tag, XapiError **err);
/* True if parent has such a VLAN. */
bool vlanbpf_exists(const char *parent, int tag);
