/* host_net.c: bridges, taps and link settings through the kernel's ioctl
 * interface (the one brctl and ip use for these), and the host's links as
 * sysfs shows them. No shell, no command line built from names: a name is
 * checked and copied into a struct ifreq. */
#include "host_net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

bool hostnet_valid_name(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n >= IFNAMSIZ || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return false;
    for (const char *c = name; *c; c++)
        if (!g_ascii_isalnum(*c) && !strchr("._-", *c))
            return false;
    return true;
}

static char *sys_path(const char *name, const char *leaf)
{
    return g_build_filename("/sys/class/net", name, leaf, NULL);
}

bool hostnet_link_exists(const char *name)
{
    if (!hostnet_valid_name(name))
        return false;
    g_autofree char *p = sys_path(name, NULL);
    return g_file_test(p, G_FILE_TEST_EXISTS);
}

bool hostnet_is_bridge(const char *name)
{
    if (!hostnet_valid_name(name))
        return false;
    g_autofree char *p = sys_path(name, "bridge");
    return g_file_test(p, G_FILE_TEST_IS_DIR);
}

bool hostnet_bridge_empty(const char *name)
{
    g_autofree char *p = sys_path(name, "brif");
    g_autoptr(GDir) dir = g_dir_open(p, 0, NULL);
    return !dir || !g_dir_read_name(dir);
}

static int check_name(const char *name, XapiError **err)
{
    if (!hostnet_valid_name(name))
        return xapi_error_set(err, "INVALID_VALUE", "device", name ? name : "", NULL);
    return 0;
}

/* Runs one ioctl on an AF_UNIX socket with ifr, naming the link. */
static int link_ioctl(unsigned long request, struct ifreq *ifr, const char *what,
                      XapiError **err)
{
    int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return xapi_error_internal(err, "socket: %s", g_strerror(errno));
    int rc = ioctl(s, request, ifr);
    int saved = errno;
    close(s);
    if (rc < 0)
        return xapi_error_internal(err, "%s %s: %s", what, ifr->ifr_name, g_strerror(saved));
    return 0;
}

static void ifr_init(struct ifreq *ifr, const char *name)
{
    memset(ifr, 0, sizeof *ifr);
    g_strlcpy(ifr->ifr_name, name, IFNAMSIZ);
}

int hostnet_set_mtu(const char *name, int mtu, XapiError **err)
{
    if (check_name(name, err) < 0)
        return -1;
    struct ifreq ifr;
    ifr_init(&ifr, name);
    ifr.ifr_mtu = mtu;
    return link_ioctl(SIOCSIFMTU, &ifr, "set MTU of", err);
}

int hostnet_set_up(const char *name, bool up, XapiError **err)
{
    if (check_name(name, err) < 0)
        return -1;
    struct ifreq ifr;
    ifr_init(&ifr, name);
    if (link_ioctl(SIOCGIFFLAGS, &ifr, "read flags of", err) < 0)
        return -1;
    if (up)
        ifr.ifr_flags |= IFF_UP;
    else
        ifr.ifr_flags &= ~IFF_UP;
    return link_ioctl(SIOCSIFFLAGS, &ifr, up ? "bring up" : "bring down", err);
}

int hostnet_bridge_add(const char *name, int mtu, XapiError **err)
{
    if (check_name(name, err) < 0)
        return -1;
    struct ifreq ifr;
    ifr_init(&ifr, name);
    /* SIOCBRADDBR takes the name itself as its argument. */
    int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return xapi_error_internal(err, "socket: %s", g_strerror(errno));
    int rc = ioctl(s, SIOCBRADDBR, ifr.ifr_name);
    int saved = errno;
    close(s);
    if (rc < 0)
        return xapi_error_internal(err, "create bridge %s: %s", name, g_strerror(saved));
    g_autoptr(XapiError) ignored = NULL;
    if ((mtu > 0 && hostnet_set_mtu(name, mtu, err) < 0) || hostnet_set_up(name, true, err) < 0) {
        hostnet_bridge_del(name, &ignored);
        return -1;
    }
    return 0;
}

int hostnet_bridge_del(const char *name, XapiError **err)
{
    if (check_name(name, err) < 0)
        return -1;
    if (!hostnet_link_exists(name))
        return 0;
    g_autoptr(XapiError) ignored = NULL;
    hostnet_set_up(name, false, &ignored);
    char buf[IFNAMSIZ];
    g_strlcpy(buf, name, sizeof buf);
    int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return xapi_error_internal(err, "socket: %s", g_strerror(errno));
    int rc = ioctl(s, SIOCBRDELBR, buf);
    int saved = errno;
    close(s);
    if (rc < 0 && saved != ENXIO)
        return xapi_error_internal(err, "remove bridge %s: %s", name, g_strerror(saved));
    return 0;
}

int hostnet_enslave(const char *bridge, const char *dev, XapiError **err)
{
    if (check_name(bridge, err) < 0 || check_name(dev, err) < 0)
        return -1;
    unsigned index = if_nametoindex(dev);
    if (!index)
        return xapi_error_internal(err, "no link %s", dev);
    struct ifreq ifr;
    ifr_init(&ifr, bridge);
    ifr.ifr_ifindex = (int)index;
    return link_ioctl(SIOCBRADDIF, &ifr, "add a port to", err);
}

int hostnet_tap_open(const char *name, XapiError **err)
{
    if (check_name(name, err) < 0)
        return -1;
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return xapi_error_internal(err, "open /dev/net/tun: %s", g_strerror(errno));
    struct ifreq ifr;
    ifr_init(&ifr, name);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        int saved = errno;
        close(fd);
        return xapi_error_internal(err, "create tap %s: %s", name, g_strerror(saved));
    }
    return fd;
}

/* ---- reading the host's links ------------------------------------------------ */

static char *sys_read(const char *name, const char *leaf)
{
    g_autofree char *p = sys_path(name, leaf);
    char *text = NULL;
    if (!g_file_get_contents(p, &text, NULL, NULL))
        return g_strdup("");
    return g_strstrip(text);
}

static int64_t sys_int(const char *name, const char *leaf)
{
    g_autofree char *text = sys_read(name, leaf);
    return *text ? g_ascii_strtoll(text, NULL, 10) : 0;
}

int64_t hostnet_sys_int(const char *name, const char *leaf)
{
    return hostnet_valid_name(name) ? sys_int(name, leaf) : 0;
}

void hostnet_link_free(HostLink *link)
{
    if (!link)
        return;
    g_free(link->name);
    g_free(link->mac);
    g_free(link->master);
    g_free(link->vendor_id);
    g_free(link->device_id);
    g_free(link->pci_bus_path);
    g_free(link);
}

HostLink *hostnet_link(const char *name)
{
    if (!hostnet_link_exists(name))
        return NULL;
    HostLink *l = g_new0(HostLink, 1);
    l->name = g_strdup(name);
    g_autofree char *mac = sys_read(name, "address");
    l->mac = g_ascii_strdown(mac, -1);
    l->mtu = (int)sys_int(name, "mtu");
    l->ifindex = (int)sys_int(name, "ifindex");
    g_autofree char *master = sys_path(name, "master");
    g_autofree char *target = g_file_read_link(master, NULL);
    l->master = g_strdup(target ? strrchr(target, '/') ? strrchr(target, '/') + 1 : target : "");
    l->carrier = sys_int(name, "carrier") == 1;
    int64_t speed = sys_int(name, "speed");
    l->speed = speed > 0 ? speed : 0;
    g_autofree char *device = sys_path(name, "device");
    l->physical = g_file_test(device, G_FILE_TEST_EXISTS);
    l->bridge = hostnet_is_bridge(name);
    g_autofree char *tun = sys_path(name, "tun_flags");
    l->tap = g_file_test(tun, G_FILE_TEST_EXISTS);
    /* A veth's iflink is its peer's index (a VLAN's too, which is as
     * virtual); a real NIC's is its own. */
    l->veth = !l->physical && !l->bridge && !l->tap &&
              sys_int(name, "iflink") != sys_int(name, "ifindex");
    l->loopback = sys_int(name, "type") == 772; /* ARPHRD_LOOPBACK */
    /* A virtio NIC's device is the virtio device on its PCI function,
     * whose vendor and device files hold virtio's ids (1af4:0001): the PCI
     * ids and address are its parent's. */
    g_autofree char *subsystem = sys_path(name, "device/subsystem");
    g_autofree char *bus = g_file_read_link(subsystem, NULL);
    const char *pci = bus && g_str_has_suffix(bus, "/virtio") ? "device/.." : "device";
    g_autofree char *vendor = g_strconcat(pci, "/vendor", NULL);
    g_autofree char *device_file = g_strconcat(pci, "/device", NULL);
    l->vendor_id = sys_read(name, vendor);
    l->device_id = sys_read(name, device_file);
    g_autofree char *pci_dir = sys_path(name, pci);
    g_autofree char *real = realpath(pci_dir, NULL);
    l->pci_bus_path = g_strdup(l->physical && real && strrchr(real, '/') ? strrchr(real, '/') + 1
                                                                         : "");
    return l;
}

static gint by_name(gconstpointer a, gconstpointer b)
{
    return strcmp((*(HostLink *const *)a)->name, (*(HostLink *const *)b)->name);
}

GPtrArray *hostnet_links(void)
{
    GPtrArray *links = g_ptr_array_new_with_free_func((GDestroyNotify)hostnet_link_free);
    g_autoptr(GDir) dir = g_dir_open("/sys/class/net", 0, NULL);
    for (const char *n = dir ? g_dir_read_name(dir) : NULL; n; n = g_dir_read_name(dir)) {
        HostLink *l = hostnet_link(n);
        if (l)
            g_ptr_array_add(links, l);
    }
    g_ptr_array_sort(links, by_name);
    return links;
}

char *hostnet_default_route_dev(void)
{
    g_autofree char *text = NULL;
    if (!g_file_get_contents("/proc/net/route", &text, NULL, NULL))
        return NULL;
    return hostnet_default_route_in(text);
}

char *hostnet_default_route_in(const char *text)
{
    /* Columns: Iface Destination Gateway Flags RefCnt Use Metric Mask ...;
     * addresses in hex. The default route: destination and mask 0, up. */
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l; l++) {
        g_auto(GStrv) col = g_strsplit_set(*l, " \t", -1);
        char *c[8] = {0};
        int n = 0;
        for (char **f = col; *f && n < 8; f++)
            if (**f)
                c[n++] = *f;
        if (n < 8 || strcmp(c[1], "00000000") != 0 || strcmp(c[7], "00000000") != 0)
            continue;
        unsigned flags = (unsigned)g_ascii_strtoull(c[3], NULL, 16);
        if (flags & 0x1 /* RTF_UP */)
            return g_strdup(c[0]);
    }
    return NULL;
}

bool hostnet_ipv4(const char *dev, char **address, char **netmask)
{
    struct ifaddrs *ifs = NULL;
    if (getifaddrs(&ifs) < 0)
        return false;
    bool found = false;
    for (struct ifaddrs *i = ifs; i && !found; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || strcmp(i->ifa_name, dev) != 0)
            continue;
        char a[INET_ADDRSTRLEN], m[INET_ADDRSTRLEN] = "";
        inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, a, sizeof a);
        if (i->ifa_netmask)
            inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_netmask)->sin_addr, m, sizeof m);
        *address = g_strdup(a);
        *netmask = g_strdup(m);
        found = true;
    }
    freeifaddrs(ifs);
    return found;
}
