/* dm_lookup.c: name lookups over the generated datamodel tables. */
#include <string.h>

#include "datamodel.h"

static GHashTable *classes_by_name;    /* exact name -> DmClass */
static GHashTable *classes_by_lower;   /* lower-case name -> DmClass */
static GHashTable *messages_by_wire;   /* "VM.start" and "VM_start" -> DmMessage */
static GHashTable *fields_by_class;    /* DmClass -> (name -> DmField) */
static GOnce lookup_once = G_ONCE_INIT;

static gpointer build_indexes(gpointer unused)
{
    classes_by_name = g_hash_table_new(g_str_hash, g_str_equal);
    classes_by_lower = g_hash_table_new(g_str_hash, g_str_equal);
    messages_by_wire = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    fields_by_class = g_hash_table_new(g_direct_hash, g_direct_equal);
    for (unsigned c = 0; c < dm_n_classes; c++) {
        const DmClass *cls = &dm_classes[c];
        g_hash_table_insert(classes_by_name, (gpointer)cls->name, (gpointer)cls);
        g_hash_table_insert(classes_by_lower, (gpointer)cls->lower, (gpointer)cls);
        GHashTable *fields = g_hash_table_new(g_str_hash, g_str_equal);
        for (unsigned f = 0; f < cls->n_fields; f++)
            g_hash_table_insert(fields, (gpointer)cls->fields[f].name,
                                (gpointer)&cls->fields[f]);
        g_hash_table_insert(fields_by_class, (gpointer)cls, fields);
        for (unsigned m = 0; m < cls->n_messages; m++) {
            const DmMessage *msg = &cls->messages[m];
            g_hash_table_insert(messages_by_wire, g_strdup(msg->wire_name), (gpointer)msg);
            g_hash_table_insert(messages_by_wire,
                                g_strdup_printf("%s_%s", cls->name, msg->name),
                                (gpointer)msg);
        }
    }
    return NULL;
}

static void ensure_indexes(void)
{
    g_once(&lookup_once, build_indexes, NULL);
}

const DmClass *dm_class_by_name(const char *name)
{
    ensure_indexes();
    return name ? g_hash_table_lookup(classes_by_name, name) : NULL;
}

const DmClass *dm_class_by_name_ci(const char *name)
{
    ensure_indexes();
    g_autofree char *lower = g_ascii_strdown(name, -1);
    return g_hash_table_lookup(classes_by_lower, lower);
}

const DmField *dm_field_by_name(const DmClass *cls, const char *name)
{
    ensure_indexes();
    GHashTable *fields = g_hash_table_lookup(fields_by_class, cls);
    return fields ? g_hash_table_lookup(fields, name) : NULL;
}

const DmMessage *dm_message_by_wire_name(const char *wire_name)
{
    ensure_indexes();
    return g_hash_table_lookup(messages_by_wire, wire_name);
}

bool dm_message_implemented(const DmMessage *m)
{
    if (m->state == DM_REMOVED)
        return false;
    if (m->impl)
        return true;
    return m->implicit_kind != DM_EXPLICIT;
}

const char *dm_enum_value(const DmEnum *e, const char *value)
{
    for (unsigned i = 0; i < e->n_values; i++)
        if (strcmp(e->values[i], value) == 0)
            return e->values[i];
    return NULL;
}

/* XAPI's generated decoders lower-case the wire string and compare it with
 * the lower-cased constructor name (rpclib's ppx_deriving_rpc); its
 * hand-written decoders of bond_mode and event_operation compare exactly. */
static bool enum_matched_exactly(const DmEnum *e)
{
    return strcmp(e->name, "bond_mode") == 0 || strcmp(e->name, "event_operation") == 0;
}

const char *dm_enum_value_from_wire(const DmEnum *e, const char *value)
{
    if (enum_matched_exactly(e))
        return dm_enum_value(e, value);
    for (unsigned i = 0; i < e->n_values; i++)
        if (g_ascii_strcasecmp(e->values[i], value) == 0)
            return e->values[i];
    return NULL;
}

bool dm_enum_has(const DmEnum *e, const char *value)
{
    return dm_enum_value(e, value) != NULL;
}

static int compare_code(const void *key, const void *item)
{
    return strcmp(key, *(const char *const *)item);
}

const char *const *dm_error_param_names(const char *code)
{
    const char *const *hit = bsearch(code, dm_error_codes, dm_n_errors,
                                     sizeof dm_error_codes[0], compare_code);
    return hit ? dm_error_params[hit - dm_error_codes] : NULL;
}
