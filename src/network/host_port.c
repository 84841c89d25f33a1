/* host_port.c: taking a port off a bridge (the kernel's bridge ioctl, as
 * host_net.c adds one). */
#include "host_port.h"

#include <errno.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "host_net.h"

int hostport_release(const char *bridge, const char *dev, XapiError **err)
{
    if (!hostnet_valid_name(bridge) || !hostnet_valid_name(dev))
        return xapi_error_set(err, "INVALID_VALUE", "device", dev ? dev : "", NULL);
    unsigned index = if_nametoindex(dev);
    if (!index)
        return xapi_error_internal(err, "no link %s", dev);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    g_strlcpy(ifr.ifr_name, bridge, IFNAMSIZ);
    ifr.ifr_ifindex = (int)index;
    int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return xapi_error_internal(err, "socket: %s", g_strerror(errno));
    int rc = ioctl(s, SIOCBRDELIF, &ifr);
    int saved = errno;
    close(s);
    if (rc < 0 && saved != EINVAL && saved != ENODEV)
        return xapi_error_internal(err, "take %s off %s: %s", dev, bridge, g_strerror(saved));
    return 0;
}
