/* qemu_dump.c: dump-guest-memory into a descriptor xapid opened (see
 * qemu_dump.h). QEMU writes the guest's RAM with the vCPUs' registers as
 * ELF notes; paging off (the physical memory as it is, no guest page
 * tables walked), synchronous (detach off: the reply comes when the file
 * is complete). A running domain is stopped meanwhile by QEMU itself. */
#include "qemu_dump.h"

#define DUMP_FD_NAME "xapid-dump"

int qemu_dump_guest_memory(QmpMonitor *mon, int fd, XapiError **err)
{
    json_object *args = json_object_new_object();
    json_object_object_add(args, "fdname", json_object_new_string(DUMP_FD_NAME));
    json_object *ret = qmp_monitor_command(mon, "getfd", args, fd, err);
    if (!ret)
        return -1;
    json_object_put(ret);
    args = json_object_new_object();
    json_object_object_add(args, "paging", json_object_new_boolean(false));
    json_object_object_add(args, "protocol", json_object_new_string("fd:" DUMP_FD_NAME));
    json_object_object_add(args, "detach", json_object_new_boolean(false));
    json_object_object_add(args, "format", json_object_new_string("elf"));
    ret = qmp_monitor_command(mon, "dump-guest-memory", args, -1, err);
    if (!ret) { /* the descriptor stays QEMU's until a dump takes it */
        g_autoptr(XapiError) ignored = NULL;
        args = json_object_new_object();
        json_object_object_add(args, "fdname", json_object_new_string(DUMP_FD_NAME));
        json_object_put(qmp_monitor_command(mon, "closefd", args, -1, &ignored));
        return -1;
    }
    json_object_put(ret);
    return 0;
}
