/* vif_policy.h: what the host enforces on a guest NIC's tap -- its
 * locking mode with the MAC and addresses it may send from, and its QoS
 * rate -- parsed and checked from the VIF record before anything reaches
 * the host (the rules are rendered from these numbers, never from text). */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "db.h"
#include "xapi_error.h"

typedef enum {
    VIF_LOCK_UNLOCKED, /* on the bridge, nothing filtered */
    VIF_LOCK_LOCKED,   /* only its MAC, DHCP and its allowed addresses */
    VIF_LOCK_DISABLED, /* off the bridge, and nothing passes */
} VifLockMode;

typedef struct {
    int family;       /* AF_INET or AF_INET6 */
    guint8 addr[16];  /* network order, host bits below prefix cleared */
    int prefix;       /* 32 / 128 for one address */
} VifAddr;

typedef struct {
    VifLockMode mode;
    guint8 mac[6];
    GArray *ipv4, *ipv6;  /* VifAddr */
    int64_t rate;         /* ratelimit, bytes per second; 0: none */
    int64_t burst;        /* bytes the guest may send at once */
} VifPolicy;

VifPolicy *vif_policy_new(void);
void vif_policy_free(VifPolicy *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VifPolicy, vif_policy_free)

/* Six ':'-separated pairs of hex digits (XAPI's is_valid_MAC). */
bool vif_parse_mac(const char *text, guint8 mac[6]);
/* An address of family, or a prefix "addr/len" of it (XAPI's
 * assert_is_valid_ip_addr takes either). */
bool vif_parse_addr(int family, const char *text, VifAddr *out);
/* "a.b.c.d", "a.b.c.d/len", "2001:db8::/64": the canonical text. */
char *vif_addr_text(const VifAddr *a);

/* XAPI's gen_mac: the MAC of VIF device from the VM's other_config
 * mac_seed (caller frees). */
char *vif_generated_mac(const char *seed, guint64 device);

/* The effective locking mode: network_default is the network's
 * default_locking_mode. FALSE for a name that is none of them. */
bool vif_lock_mode_parse(const char *vif_mode, const char *network_default, VifLockMode *out);

/* ipv4_allowed / ipv6_allowed (a set of strings) appended to out (VifAddr):
 * INVALID_IP_ADDRESS_SPECIFIED [field] for one that is neither an address
 * nor a prefix of that family. */
int vif_parse_allowed(int family, const char *field, const Xv *set, GArray *out,
                      XapiError **err);

/* qos_algorithm_type and qos_algorithm_params as XAPI's xenopsd reads
 * them: "" is none; "ratelimit" needs kbps (KiB/s, a positive integer)
 * and takes timeslice_us (the interval the guest's credit is counted
 * over, 50 ms by default). rate/burst in bytes; both 0 for none. Anything
 * else: VALUE_NOT_SUPPORTED for the type, INVALID_VALUE for a parameter. */
int vif_qos_parse(const char *type, const Xv *params, int64_t *rate, int64_t *burst,
                  XapiError **err);

/* The whole policy of a VIF on its network (lock held). */
VifPolicy *vif_policy_from_record(const DbRow *vif, const DbRow *net, XapiError **err);
