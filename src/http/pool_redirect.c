/* pool_redirect.c: 302 to the host that holds the work (see
 * pool_redirect.h). */
#include "pool_redirect.h"

#include <string.h>

#include "bootstrap.h"
#include "db.h"
#include "pool_forward.h"
#include "pool_role.h"

static enum MHD_Result append_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    GString *url = cls;
    g_autofree char *k = g_uri_escape_string(key, NULL, FALSE);
    g_string_append_printf(url, "%c%s", strchr(url->str, '?') ? '&' : '?', k);
    if (value) {
        g_autofree char *v = g_uri_escape_string(value, ":/", FALSE);
        g_string_append_printf(url, "=%s", v);
    }
    return MHD_YES;
}

char *pool_redirect_request_to(struct MHD_Connection *conn, const char *address,
                               const char *url)
{
    g_autofree char *endpoint = pool_endpoint_of(address);
    GString *to = g_string_new(NULL);
    g_string_printf(to, "http://%s%s", endpoint, url);
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, append_arg, to);
    return g_string_free(to, FALSE);
}

char *pool_redirect_request_at(struct MHD_Connection *conn, const char *host_ref,
                               const char *url)
{
    const DbRow *host = db_lookup(dm_class_by_name("host"), host_ref);
    const char *address = host ? xv_str(db_get(host, "address")) : NULL;
    return address && *address ? pool_redirect_request_to(conn, address, url) : NULL;
}

/* host, when it is not this one, as a Location (read lock held). */
static char *elsewhere(struct MHD_Connection *conn, const char *url, const char *host,
                       const char *here)
{
    return host && strcmp(host, here) != 0 ? pool_redirect_request_at(conn, host, url) : NULL;
}

char *pool_redirect_for_sr(struct MHD_Connection *conn, const char *url, const char *sr_ref)
{
    if (!sr_ref)
        return NULL;
    db_read_begin();
    g_autofree char *here = bootstrap_this_host();
    char *to = elsewhere(conn, url, pool_forward_sr_host(sr_ref, here), here);
    db_read_end();
    return to;
}

char *pool_redirect_for_vdi(struct MHD_Connection *conn, const char *url, const char *vdi_ref)
{
    if (!vdi_ref)
        return NULL;
    db_read_begin();
    const DbRow *vdi = db_lookup(dm_class_by_name("VDI"), vdi_ref);
    g_autofree char *sr = vdi ? g_strdup(xv_str(db_get(vdi, "SR"))) : NULL;
    db_read_end();
    return pool_redirect_for_sr(conn, url, sr);
}

char *pool_redirect_for_vm(struct MHD_Connection *conn, const char *url, const char *vm_ref)
{
    if (!vm_ref)
        return NULL;
    db_read_begin();
    g_autofree char *here = bootstrap_this_host();
    const DbRow *vm = db_lookup(dm_class_by_name("VM"), vm_ref);
    char *to = vm ? elsewhere(conn, url, pool_forward_vm_host(vm, here), here) : NULL;
    db_read_end();
    return to;
}

enum MHD_Result pool_redirect_reply(struct MHD_Connection *conn, const char *location)
{
    static const char found[] = "Found\n";
    struct MHD_Response *r =
        MHD_create_response_from_buffer(sizeof found - 1, (void *)found, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, location);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    g_message("http: 302 to %s", location);
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_FOUND, r);
    MHD_destroy_response(r);
    return ret;
}
