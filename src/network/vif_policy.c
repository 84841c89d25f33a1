/* vif_policy.c: a VIF's locking mode, addresses and QoS parsed from its
 * record (XAPI's xapi_vif.ml, xapi_xenops.ml and xenopsd's device.ml
 * rules), so that what reaches the host is numbers that were checked. */
#include "vif_policy.h"

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

VifPolicy *vif_policy_new(void)
{
    VifPolicy *p = g_new0(VifPolicy, 1);
    p->ipv4 = g_array_new(FALSE, TRUE, sizeof(VifAddr));
    p->ipv6 = g_array_new(FALSE, TRUE, sizeof(VifAddr));
    return p;
}

void vif_policy_free(VifPolicy *p)
{
    if (!p)
        return;
    g_array_unref(p->ipv4);
    g_array_unref(p->ipv6);
    g_free(p);
}

bool vif_parse_mac(const char *text, guint8 mac[6])
{
    if (!text || strlen(text) != 17)
        return false;
    for (int i = 0; i < 17; i++)
        if (i % 3 == 2 ? text[i] != ':' : !g_ascii_isxdigit(text[i]))
            return false;
    for (int i = 0; i < 6; i++)
        mac[i] = (guint8)(g_ascii_xdigit_value(text[3 * i]) << 4 |
                          g_ascii_xdigit_value(text[3 * i + 1]));
    return true;
}

bool vif_parse_addr(int family, const char *text, VifAddr *out)
{
    int bits = family == AF_INET ? 32 : 128;
    memset(out, 0, sizeof *out);
    out->family = family;
    out->prefix = bits;
    g_autofree char *addr = g_strdup(text ? text : "");
    char *slash = strchr(addr, '/');
    if (slash) {
        *slash = '\0';
        guint64 len;
        if (!g_ascii_string_to_unsigned(slash + 1, 10, 0, (guint64)bits, &len, NULL))
            return false;
        out->prefix = (int)len;
    }
    if (inet_pton(family, addr, out->addr) != 1)
        return false;
    /* A prefix is its network: the host bits are not part of the match. */
    for (int bit = out->prefix; bit < bits; bit++)
        out->addr[bit / 8] &= (guint8) ~(0x80 >> (bit % 8));
    return true;
}

char *vif_addr_text(const VifAddr *a)
{
    char buf[INET6_ADDRSTRLEN];
    if (!inet_ntop(a->family, a->addr, buf, sizeof buf))
        return g_strdup("");
    int bits = a->family == AF_INET ? 32 : 128;
    return a->prefix == bits ? g_strdup(buf) : g_strdup_printf("%s/%d", buf, a->prefix);
}

bool vif_lock_mode_parse(const char *vif_mode, const char *network_default, VifLockMode *out)
{
    const char *mode = vif_mode;
    if (strcmp(mode, "network_default") == 0)
        mode = network_default && *network_default ? network_default : "unlocked";
    if (strcmp(mode, "unlocked") == 0)
        *out = VIF_LOCK_UNLOCKED;
    else if (strcmp(mode, "locked") == 0)
        *out = VIF_LOCK_LOCKED;
    else if (strcmp(mode, "disabled") == 0)
        *out = VIF_LOCK_DISABLED;
    else
        return false;
    return true;
}

int vif_parse_allowed(int family, const char *field, const Xv *set, GArray *out,
                      XapiError **err)
{
    for (guint i = 0; i < xv_len(set); i++) {
        VifAddr a;
        if (!vif_parse_addr(family, xv_str(xv_at(set, i)), &a))
            return xapi_error_set(err, "INVALID_IP_ADDRESS_SPECIFIED", field, NULL);
        g_array_append_val(out, a);
    }
    return 0;
}

#define QOS_DEFAULT_TIMESLICE_US 50000 /* xenopsd's default */
/* A guest NIC hands the host segments of up to 64 KiB at once (GSO):
 * a burst smaller than that would drop every large segment. */
#define QOS_MIN_BURST (128 * 1024)

static int qos_param(const Xv *params, const char *key, bool required, int64_t *out,
                     XapiError **err)
{
    const Xv *v = xv_struct_get(params, key);
    g_autofree char *field = g_strdup_printf("qos_algorithm_params:%s", key);
    guint64 n;
    if (!v)
        return required ? xapi_error_set(err, "INVALID_VALUE", field, "", NULL) : 0;
    if (!g_ascii_string_to_unsigned(xv_str(v), 10, 1, G_MAXINT32, &n, NULL))
        return xapi_error_set(err, "INVALID_VALUE", field, xv_str(v), NULL);
    *out = (int64_t)n;
    return 0;
}

int vif_qos_parse(const char *type, const Xv *params, int64_t *rate, int64_t *burst,
                  XapiError **err)
{
    *rate = *burst = 0;
    if (!*type)
        return 0;
    if (strcmp(type, "ratelimit") != 0)
        return xapi_error_set(err, "VALUE_NOT_SUPPORTED", "qos_algorithm_type", type,
                              "the only VIF QoS algorithm is ratelimit", NULL);
    for (guint i = 0; i < xv_len(params); i++) {
        const char *key = xv_member_at(params, i)->key;
        if (strcmp(key, "kbps") != 0 && strcmp(key, "timeslice_us") != 0) {
            g_autofree char *field = g_strdup_printf("qos_algorithm_params:%s", key);
            return xapi_error_set(err, "VALUE_NOT_SUPPORTED", field,
                                  xv_str(&xv_member_at(params, i)->value),
                                  "ratelimit takes kbps and timeslice_us", NULL);
        }
    }
    int64_t kbps = 0, timeslice = QOS_DEFAULT_TIMESLICE_US;
    if (qos_param(params, "kbps", true, &kbps, err) < 0 ||
        qos_param(params, "timeslice_us", false, &timeslice, err) < 0)
        return -1;
    /* xenopsd: kbps is KiB/s; the credit per interval must fit 32 bits. */
    int64_t per_interval = kbps * 1024 * timeslice / 1000000;
    if (per_interval <= 0 || per_interval >= 0xffffffffLL) {
        g_autofree char *text = g_strdup_printf("%" G_GINT64_FORMAT, timeslice);
        return xapi_error_set(err, "INVALID_VALUE", "qos_algorithm_params:timeslice_us",
                              text, NULL);
    }
    *rate = kbps * 1024;
    *burst = MAX(per_interval, QOS_MIN_BURST);
    return 0;
}

VifPolicy *vif_policy_from_record(const DbRow *vif, const DbRow *net, XapiError **err)
{
    g_autoptr(VifPolicy) p = vif_policy_new();
    const char *mode = xv_str(db_get(vif, "locking_mode"));
    if (!vif_lock_mode_parse(mode, xv_str(db_get(net, "default_locking_mode")), &p->mode)) {
        xapi_error_set(err, "INVALID_VALUE", "locking_mode", mode, NULL);
        return NULL;
    }
    const char *mac = xv_str(db_get(vif, "MAC"));
    if (!vif_parse_mac(mac, p->mac)) {
        xapi_error_set(err, "MAC_INVALID", mac, NULL);
        return NULL;
    }
    if (vif_parse_allowed(AF_INET, "ipv4_allowed", db_get(vif, "ipv4_allowed"), p->ipv4,
                          err) < 0 ||
        vif_parse_allowed(AF_INET6, "ipv6_allowed", db_get(vif, "ipv6_allowed"), p->ipv6,
                          err) < 0 ||
        vif_qos_parse(xv_str(db_get(vif, "qos_algorithm_type")),
                      db_get(vif, "qos_algorithm_params"), &p->rate, &p->burst, err) < 0)
        return NULL;
    return g_steal_pointer(&p);
}

/* XAPI's gen_mac: MD5 of the VM's mac_seed 2*device+1 times, then once
 * more; a locally administered unicast address. */
char *vif_generated_mac(const char *seed, guint64 device)
{
    guint8 h[16], h2[16];
    gsize len = sizeof h;
    g_autoptr(GChecksum) c = g_checksum_new(G_CHECKSUM_MD5);
    g_checksum_update(c, (const guchar *)seed, (gssize)strlen(seed));
    g_checksum_get_digest(c, h, &len);
    for (guint64 round = 1; round < 2 * device + 1; round++) {
        g_checksum_reset(c);
        g_checksum_update(c, h, sizeof h);
        len = sizeof h;
        g_checksum_get_digest(c, h, &len);
    }
    g_checksum_reset(c);
    g_checksum_update(c, h, sizeof h);
    len = sizeof h2;
    g_checksum_get_digest(c, h2, &len);
    guint8 b0 = (guint8)((h[0] | 0x02) & ~0x01);
    return g_strdup_printf("%02x:%02x:%02x:%02x:%02x:%02x", b0, h[1], h[2], h[3], h2[1], h2[2]);
}
