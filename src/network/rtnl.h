/* rtnl.h: one rtnetlink request at a time (links, addresses, routes, tc):
 * a message, its attributes, the kernel's answer. */
#pragma once

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    union {
        struct nlmsghdr h;
        char buf[4096];
    };
} NlMsg;

/* A request of type with NLM_F_REQUEST|NLM_F_ACK|flags and its fixed
 * header body (ifinfomsg, ifaddrmsg, rtmsg, tcmsg). */
void nl_init(NlMsg *m, int type, int flags, const void *body, size_t len);
void *nl_tail(NlMsg *m);
void nl_attr(NlMsg *m, int type, const void *data, size_t len);
void nl_u8(NlMsg *m, int type, uint8_t v);
void nl_u16(NlMsg *m, int type, uint16_t v);
void nl_u32(NlMsg *m, int type, uint32_t v);
void nl_str(NlMsg *m, int type, const char *s);
/* A nested attribute: nl_nest, its members, then nl_nest_end. */
struct rtattr *nl_nest(NlMsg *m, int type);
void nl_nest_end(NlMsg *m, struct rtattr *a);
/* Sends m and reads the kernel's answer: 0 or -errno. */
int nl_talk(NlMsg *m);
