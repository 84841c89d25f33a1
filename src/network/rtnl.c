/* rtnl.c: rtnetlink requests built in a fixed buffer and sent one at a
 * time, each answered by the kernel's acknowledgement. */
#include "rtnl.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void *nl_tail(NlMsg *m) { return m->buf + NLMSG_ALIGN(m->h.nlmsg_len); }

void nl_init(NlMsg *m, int type, int flags, const void *body, size_t len)
{
    memset(m, 0, sizeof *m);
    m->h.nlmsg_type = (unsigned short)type;
    m->h.nlmsg_flags = (unsigned short)(NLM_F_REQUEST | NLM_F_ACK | flags);
    m->h.nlmsg_len = NLMSG_LENGTH(len);
    memcpy(NLMSG_DATA(&m->h), body, len);
}

void nl_attr(NlMsg *m, int type, const void *data, size_t len)
{
    struct rtattr *a = nl_tail(m);
    a->rta_type = (unsigned short)type;
    a->rta_len = (unsigned short)RTA_LENGTH(len);
    if (len)
        memcpy(RTA_DATA(a), data, len);
    m->h.nlmsg_len = NLMSG_ALIGN(m->h.nlmsg_len) + RTA_ALIGN(a->rta_len);
}

void nl_u8(NlMsg *m, int type, uint8_t v) { nl_attr(m, type, &v, 1); }
void nl_u16(NlMsg *m, int type, uint16_t v) { nl_attr(m, type, &v, 2); }
void nl_u32(NlMsg *m, int type, uint32_t v) { nl_attr(m, type, &v, 4); }
void nl_str(NlMsg *m, int type, const char *s) { nl_attr(m, type, s, strlen(s) + 1); }

struct rtattr *nl_nest(NlMsg *m, int type)
{
    struct rtattr *a = nl_tail(m);
    nl_attr(m, type, NULL, 0);
    return a;
}

void nl_nest_end(NlMsg *m, struct rtattr *a)
{
    a->rta_len = (unsigned short)((char *)nl_tail(m) - (char *)a);
}

/* Sends m and reads the kernel's answer: 0 or -errno. */
int nl_talk(NlMsg *m)
{
    int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (s < 0)
        return -errno;
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    m->h.nlmsg_seq = 1;
    int rc = 0;
    if (sendto(s, m, m->h.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) {
        rc = -errno;
    } else {
        char reply[8192];
        ssize_t n = recv(s, reply, sizeof reply, 0);
        if (n < 0) {
            rc = -errno;
        } else {
            struct nlmsghdr *h = (struct nlmsghdr *)reply;
            rc = -EPROTO;
            for (; NLMSG_OK(h, (unsigned)n); h = NLMSG_NEXT(h, n)) {
                if (h->nlmsg_type == NLMSG_ERROR) {
                    rc = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
                    break;
                }
            }
        }
    }
    close(s);
    return rc;
}

