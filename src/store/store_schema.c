/* store_schema.c: the stored schema's SQL, built once from the datamodel. */
#include "store_schema.h"

static StoreClassSql *class_sql; /* [class index] */

static void build_class(const DmClass *cls, StoreClassSql *out)
{
    GString *create = g_string_new(NULL), *cols = g_string_new("\"_ref\""), *marks = g_string_new("?");
    g_string_printf(create, "CREATE TABLE IF NOT EXISTS \"%s\" (\"_ref\" TEXT PRIMARY KEY", cls->name);
    for (unsigned i = 0; i < cls->n_fields; i++) {
        if (cls->fields[i].derived)
            continue;
        g_string_append_printf(create, ", \"%s\" TEXT", cls->fields[i].name);
        g_string_append_printf(cols, ", \"%s\"", cls->fields[i].name);
        g_string_append(marks, ", ?");
        out->n_columns++;
    }
    g_string_append(create, ")");
    out->create = g_string_free(create, FALSE);
    out->put = g_strdup_printf("INSERT OR REPLACE INTO \"%s\" (%s) VALUES (%s)", cls->name, cols->str,
                               marks->str);
    out->del = g_strdup_printf("DELETE FROM \"%s\" WHERE \"_ref\" = ?", cls->name);
    out->select = g_strdup_printf("SELECT %s FROM \"%s\"", cols->str, cls->name);
    g_string_free(cols, TRUE);
    g_string_free(marks, TRUE);
}

const StoreClassSql *store_schema_class(const DmClass *cls)
{
    static gsize done;
    if (g_once_init_enter(&done)) {
        StoreClassSql *all = g_new0(StoreClassSql, dm_n_classes);
        for (unsigned c = 0; c < dm_n_classes; c++)
            if (dm_classes[c].persist)
                build_class(&dm_classes[c], &all[c]);
        class_sql = all;
        g_once_init_leave(&done, 1);
    }
    return cls->persist ? &class_sql[cls->index] : NULL;
}

char *store_schema_update_sql(const DmClass *cls, const DmField *field)
{
    return g_strdup_printf("UPDATE \"%s\" SET \"%s\" = ? WHERE \"_ref\" = ?", cls->name, field->name);
}

GPtrArray *store_schema_missing_columns(const DmClass *cls, GHashTable *existing_columns)
{
    GPtrArray *alters = g_ptr_array_new_with_free_func(g_free);
    for (unsigned i = 0; i < cls->n_fields; i++) {
        const DmField *f = &cls->fields[i];
        if (f->derived || g_hash_table_contains(existing_columns, f->name))
            continue;
        g_ptr_array_add(alters, g_strdup_printf("ALTER TABLE \"%s\" ADD COLUMN \"%s\" TEXT",
                                                cls->name, f->name));
    }
    return alters;
}

char *store_schema_table_info_sql(const DmClass *cls)
{
    return g_strdup_printf("PRAGMA table_info(\"%s\")", cls->name);
}
