/* datamodel.h: the shapes of the XenAPI datamodel tables. The tables
 * themselves (dm_classes, ...) are generated at build time from
 * idl/datamodel.json by gen/gen_datamodel.py; nothing here is edited per
 * class. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "xv.h"

typedef struct Call Call;

typedef enum {
    DM_VOID,
    DM_STRING,
    DM_INT,
    DM_FLOAT,
    DM_BOOL,
    DM_DATETIME,
    DM_REF,    /* class_name */
    DM_ENUM,   /* enumeration */
    DM_SET,    /* elem */
    DM_MAP,    /* key -> elem */
    DM_RECORD, /* class_name */
    DM_OPTION, /* elem */
} DmKind;

typedef struct DmEnum {
    const char *name;
    const char *const *values;
    unsigned n_values;
} DmEnum;

typedef struct DmType {
    DmKind kind;
    const char *text;                /* datamodel spelling: "VM ref set" */
    const char *class_name;          /* DM_REF, DM_RECORD */
    const DmEnum *enumeration;       /* DM_ENUM */
    const struct DmType *key;        /* DM_MAP */
    const struct DmType *elem;       /* DM_SET, DM_MAP (value), DM_OPTION */
} DmType;

typedef enum { DM_RO_RUNTIME, DM_RO_CONSTRUCTOR, DM_RW } DmQualifier;
typedef enum { DM_PUBLISHED, DM_PROTOTYPED, DM_DEPRECATED, DM_REMOVED } DmLifecycle;

/* Roles, most privileged first; a message's `roles` is a mask of these. */
typedef enum {
    DM_ROLE_POOL_ADMIN = 1u << 0,
    DM_ROLE_POOL_OPERATOR = 1u << 1,
    DM_ROLE_VM_POWER_ADMIN = 1u << 2,
    DM_ROLE_VM_ADMIN = 1u << 3,
    DM_ROLE_VM_OPERATOR = 1u << 4,
    DM_ROLE_CLIENT_CERT = 1u << 5,
    DM_ROLE_READ_ONLY = 1u << 6,
} DmRole;
#define DM_N_ROLES 7
extern const char *const dm_role_names[DM_N_ROLES]; /* "pool-admin", ... */

typedef struct DmClass DmClass;

typedef struct DmField {
    const char *name;         /* "name_label" */
    const DmType *type;
    DmQualifier qualifier;
    DmLifecycle state;
    const char *default_db;   /* default in DB text form; NULL if none given */
    unsigned index;           /* slot in the class's rows */
    const DmClass *cls;
    /* Relations: `reverse` is the field on the other side. The first side
     * of each relation is stored; the other (`derived`) is computed from
     * it, never persisted and read-only through the API. */
    const struct DmField *reverse;
    bool derived;
    /* Kept in memory only, rebuilt at start-up (operation locks). */
    bool runtime_only;
} DmField;

typedef enum {
    DM_EXPLICIT = 0,
    DM_IMPLICIT_GET_FIELD,
    DM_IMPLICIT_SET_FIELD,
    DM_IMPLICIT_ADD_TO_MAP,      /* add_to_<map>(key, value) */
    DM_IMPLICIT_REMOVE_FROM_MAP, /* remove_from_<map>(key) */
    DM_IMPLICIT_ADD_TO_SET,      /* add_<set>(value) */
    DM_IMPLICIT_REMOVE_FROM_SET, /* remove_<set>(value) */
    DM_IMPLICIT_GET_RECORD,
    DM_IMPLICIT_GET_BY_UUID,
    DM_IMPLICIT_GET_BY_NAME_LABEL,
    DM_IMPLICIT_GET_ALL,
    DM_IMPLICIT_GET_ALL_RECORDS,
    DM_IMPLICIT_GET_ALL_WHERE,
    DM_IMPLICIT_GET_ALL_RECORDS_WHERE,
    DM_IMPLICIT_CREATE,
    DM_IMPLICIT_DESTROY,
} DmImplicitKind;

typedef struct DmParam {
    const char *name;
    const DmType *type;
    const char *default_db;   /* from idl/param_defaults.json; NULL if required */
} DmParam;

/* Glue generated per message: unpacks call->args into the typed handler. */
typedef int (*DmHandlerGlue)(Call *call, Xv **result);

typedef struct DmMessage {
    const char *name;          /* "start" */
    const char *wire_name;     /* "VM.start" */
    const DmClass *cls;
    const DmParam *params;     /* excluding the session */
    unsigned n_params;
    unsigned n_required;       /* params without a default */
    bool takes_session;
    const DmType *result;
    const char *const *errors;
    unsigned n_errors;
    unsigned roles;            /* DmRole mask */
    DmLifecycle state;
    DmImplicitKind implicit_kind;
    bool has_async;
    bool hidden;               /* callable but not in the datamodel's list */
    const DmField *field;      /* field accessors */
    DmHandlerGlue glue;        /* calls the hand-written handler */
    void (*impl)(void);        /* the handler; NULL (and glue NULL) if none is defined */
} DmMessage;

struct DmClass {
    const char *name;          /* "VM" */
    const char *lower;         /* "vm": event class names, permissions */
    unsigned index;
    const DmField *fields;
    unsigned n_fields;
    const DmMessage *messages;
    unsigned n_messages;
    int uuid_field;            /* field index or -1 */
    int name_label_field;      /* field index or -1 */
    bool stored;               /* has rows (get_record exists) */
    bool persist;              /* rows are written to SQLite */
    bool gen_events;           /* changes appear in event.from */
};

extern const DmClass dm_classes[];
extern const unsigned dm_n_classes;
extern const DmEnum *const dm_enums[];
extern const unsigned dm_n_enums;
extern const char *const dm_error_codes[];      /* sorted */
extern const char *const *const dm_error_params[]; /* NULL-terminated lists */
extern const unsigned dm_n_errors;

/* Lookups (dm_lookup.c); names are exact unless said otherwise. */
const DmClass *dm_class_by_name(const char *name);
const DmClass *dm_class_by_name_ci(const char *name); /* case-insensitive */
const DmField *dm_field_by_name(const DmClass *cls, const char *name);
/* "VM.start", "VM_start" (XAPI accepts both). Async./InternalAsync. are
 * stripped by the caller. */
const DmMessage *dm_message_by_wire_name(const char *wire_name);
bool dm_message_implemented(const DmMessage *m);
bool dm_enum_has(const DmEnum *e, const char *value);
/* The table's own copy of value (static storage), or NULL if not a member. */
const char *dm_enum_value(const DmEnum *e, const char *value);
/* The same for a value as a client sends it: case-insensitive, as XAPI
 * matches enums on input, except bond_mode and event_operation (exact). */
const char *dm_enum_value_from_wire(const DmEnum *e, const char *value);
const char *const *dm_error_param_names(const char *code);
/* Iterate over every message of every class, for listMethods and docs. */
#define DM_FOREACH_MESSAGE(cls, msg)                                          \
    for (const DmClass *cls = dm_classes; cls < dm_classes + dm_n_classes; cls++) \
        for (const DmMessage *msg = cls->messages; msg < cls->messages + cls->n_messages; msg++)
