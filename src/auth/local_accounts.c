/* local_accounts.c: NSS lookups (getpwnam_r, getgrnam_r, getgrouplist)
 * for subjects that are Linux users and groups. */
#include "local_accounts.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NSS_BUF 16384

char *local_accounts_identifier(const char *name)
{
    g_autofree char *buf = g_malloc(NSS_BUF);
    struct passwd pw, *pwp = NULL;
    if (getpwnam_r(name, &pw, buf, NSS_BUF, &pwp) == 0 && pwp)
        return g_strdup_printf("u%u", (unsigned)pw.pw_uid);
    struct group gr, *grp = NULL;
    if (getgrnam_r(name, &gr, buf, NSS_BUF, &grp) == 0 && grp)
        return g_strdup_printf("g%u", (unsigned)gr.gr_gid);
    return NULL;
}

/* The number after the u or g of an identifier; false if not one. */
static bool parse_id(const char *identifier, char kind, unsigned *id)
{
    if (!identifier || identifier[0] != kind || !g_ascii_isdigit(identifier[1]))
        return false;
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(identifier + 1, &end, 10);
    if (errno || *end || v > G_MAXUINT32)
        return false;
    *id = (unsigned)v;
    return true;
}

static bool user_of(const char *identifier, struct passwd *pw, char *buf)
{
    unsigned uid;
    struct passwd *pwp = NULL;
    return parse_id(identifier, 'u', &uid) &&
           getpwuid_r((uid_t)uid, pw, buf, NSS_BUF, &pwp) == 0 && pwp;
}

static bool group_of(const char *identifier, struct group *gr, char *buf)
{
    unsigned gid;
    struct group *grp = NULL;
    return parse_id(identifier, 'g', &gid) &&
           getgrgid_r((gid_t)gid, gr, buf, NSS_BUF, &grp) == 0 && grp;
}

static void put(Xv *info, const char *key, const char *value)
{
    xv_struct_set_string(info, key, value);
}

Xv *local_accounts_information(const char *identifier)
{
    g_autofree char *buf = g_malloc(NSS_BUF);
    struct passwd pw;
    struct group gr;
    Xv *info = xv_new_struct();
    if (user_of(identifier, &pw, buf)) {
        g_autofree char *uid = g_strdup_printf("u%u", (unsigned)pw.pw_uid);
        g_autofree char *gid = g_strdup_printf("g%u", (unsigned)pw.pw_gid);
        const char *gecos = pw.pw_gecos ? pw.pw_gecos : "";
        /* authx.ml: no password, or one starting '*' or '!', is disabled */
        const char *pwd = pw.pw_passwd ? pw.pw_passwd : "";
        bool disabled = !*pwd || *pwd == '*' || *pwd == '!';
        put(info, "subject-name", pw.pw_name);
        put(info, "subject-uid", uid);
        put(info, "subject-gid", gid);
        put(info, "subject-gecos", gecos);
        put(info, "subject-displayname", *gecos ? gecos : pw.pw_name);
        put(info, "subject-is-group", "false");
        put(info, "subject-account-disabled", disabled ? "true" : "false");
        put(info, "subject-account-expired", "false");
        put(info, "subject-account-locked", "false");
        put(info, "subject-password-expired", "false");
        return info;
    }
    if (group_of(identifier, &gr, buf)) {
        g_autofree char *gid = g_strdup_printf("g%u", (unsigned)gr.gr_gid);
        put(info, "subject-name", gr.gr_name);
        put(info, "subject-uid", gid);
        put(info, "subject-gid", gid);
        put(info, "subject-is-group", "true");
        return info;
    }
    xv_free(info);
    return NULL;
}

Xv *local_accounts_group_membership(const char *identifier)
{
    g_autofree char *buf = g_malloc(NSS_BUF);
    struct passwd pw;
    struct group gr;
    if (group_of(identifier, &gr, buf)) {
        Xv *out = xv_new_array();
        xv_array_append_string(out, identifier);
        return out;
    }
    if (!user_of(identifier, &pw, buf))
        return NULL;
    int n = 64;
    g_autofree gid_t *groups = NULL;
    for (;;) {
        groups = g_renew(gid_t, groups, n);
        int want = n;
        if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &want) >= 0) {
            n = want;
            break;
        }
        if (want <= n) { /* no growth asked for: nothing to trust */
            n = 0;
            break;
        }
        n = want;
    }
    Xv *out = xv_new_array();
    for (int i = 0; i < n; i++) {
        g_autofree char *g = g_strdup_printf("g%u", (unsigned)groups[i]);
        xv_array_append_string(out, g);
    }
    return out;
}
