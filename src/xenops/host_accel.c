/* host_accel.c: KVM where the host can run stock guests with it, TCG
 * elsewhere. */
#include "host_accel.h"

#include <fcntl.h>
#include <glib.h>
#include <string.h>
#include <unistd.h>

static bool flags_have_virtualization(const char *flags)
{
    g_auto(GStrv) words = g_strsplit_set(flags, " \t", -1);
    for (char **w = words; *w; w++)
        if (strcmp(*w, "vmx") == 0 || strcmp(*w, "svm") == 0)
            return true;
    return false;
}

bool cpuinfo_has_virtualization(const char *cpuinfo)
{
    g_auto(GStrv) lines = g_strsplit(cpuinfo, "\n", -1);
    for (char **line = lines; *line; line++) {
        const char *colon = strchr(*line, ':');
        if (!colon || !g_str_has_prefix(*line, "flags"))
            continue;
        g_autofree char *key = g_strstrip(g_strndup(*line, (gsize)(colon - *line)));
        if (strcmp(key, "flags") == 0 && flags_have_virtualization(colon + 1))
            return true;
    }
    return false;
}

const char *host_accel(void)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return "tcg";
    close(fd);
    g_autofree char *cpuinfo = NULL;
    if (!g_file_get_contents("/proc/cpuinfo", &cpuinfo, NULL, NULL))
        return "tcg";
    return cpuinfo_has_virtualization(cpuinfo) ? "kvm" : "tcg";
}
