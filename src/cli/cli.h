/* cli.h: what xe's commands share (ocaml/xapi-cli-server): the caller's
 * parameters, the session the command runs with, XenAPI calls through the
 * dispatcher, output through the printer, and the two kinds of failure
 * (a XenAPI error, or xe's own "Error: ..." text). */
#pragma once

#include <stdbool.h>

#include "cli_classes.h"
#include "cli_wire.h"
#include "dispatch.h"
#include "xapi_error.h"
#include "xv.h"

typedef struct CliParam {
    char *key;
    char *value;
} CliParam;

typedef struct CliCommand CliCommand;

typedef struct CliCtx {
    const CliCommand *cmd; /* the command being run */
    CliWire *wire;
    GPtrArray *params;     /* CliParam*, in the order given */
    char *session;         /* the ref the command runs with */
    DispatchOrigin origin;
    const char *http_base; /* "https://HOST" (or http://) for HttpGet/HttpPut URLs */
    bool minimal;
    GPtrArray *minimal_out; /* char*: what --minimal prints at the end, comma-joined */
    XapiError *error;      /* a XenAPI error, printed as xe prints it */
    char *failure;         /* xe's own failure: "Error: <failure>" */
    bool silent;           /* the failure is printed already: only Exit 1 follows */
} CliCtx;

typedef int (*CliFn)(CliCtx *ctx);

enum {
    CLI_STANDARD = 1 << 0,     /* in `xe help`'s common list */
    CLI_VM_SELECTORS = 1 << 1, /* vm=, uuid=, any VM field, --multiple */
    CLI_HOST_SELECTORS = 1 << 2,
    CLI_HIDDEN = 1 << 3,
};

struct CliCommand {
    char *name;
    const char *const *reqd; /* NULL-terminated */
    const char *const *optn;
    char *help;
    unsigned flags;
    CliFn fn;
    const CliClass *cls;     /* the generic commands: their class */
};

/* The whole table: hand-written commands and the generic ones per class. */
const CliCommand *cli_command_find(const char *name);
GPtrArray *cli_commands_sorted(void); /* const CliCommand*, by name; caller frees the array */

/* ---- parameters (cli_args.c) ---- */
const char *cli_param(const CliCtx *ctx, const char *key); /* NULL if absent */
bool cli_param_bool(const CliCtx *ctx, const char *key);   /* "true" (any case) */
/* Parameters "prefix:key=value" as a new struct {key: value}. */
Xv *cli_param_map(const CliCtx *ctx, const char *prefix);
/* The parameters every command takes (server, username, minimal, ...). */
bool cli_param_is_standard(const char *key);
/* text as a decimal integer in *out; false unless all of it is one. */
bool cli_parse_int(const char *text, gint64 *out);
/* The bytes in a size unit ("", KiB, MiB, GiB, TiB in any case), 0 for others. */
double cli_size_unit(const char *suffix);
/* key= as a size ("10GiB"); *ok false with the failure set if it is none. */
gint64 cli_param_size(CliCtx *ctx, const char *key, bool *ok);

/* ---- failures: set one, return -1 ---- */
int cli_fail(CliCtx *ctx, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

/* ---- XenAPI calls with the command's session ---- */
/* method("Class.message"), then the arguments after the session (the
 * array's items are taken). NULL with ctx->error set on failure. */
Xv *cli_call(CliCtx *ctx, const char *method, Xv *args);
/* The same with string arguments, NULL-terminated. */
Xv *cli_call_s(CliCtx *ctx, const char *method, ...) G_GNUC_NULL_TERMINATED;
/* Waits for an Async task to end; its result (a string, "" if none) or
 * NULL with ctx->error set to the task's error. */
char *cli_task_wait(CliCtx *ctx, const char *task);
/* Destroys task whatever came before: ctx's error or failure is kept. */
void cli_task_destroy(CliCtx *ctx, const char *task);
/* The command's object: method(ref) on the ref of the dm_class object
 * whose uuid key= gives. 0, or -1 with ctx's error set. */
int cli_call_on(CliCtx *ctx, const char *dm_class, const char *key, const char *method);
/* A command that is method on the object uuid= names (vif-plug, sr-scan). */
#define CLI_UUID_COMMAND(fname, dm_class, method) \
    static int fname(CliCtx *ctx) { return cli_call_on(ctx, dm_class, "uuid", method); }
/* method (a Class.create) with the record rec (taken): the new ref, or NULL. */
Xv *cli_call_create(CliCtx *ctx, const char *method, Xv *rec);
/* track_http_operation's end: the client GETs (put false) or PUTs the
 * file filename= names at url; then task's result ("" if none), or NULL
 * with a failure ("<what> failed: ...") or the task's error set. The
 * caller destroys the task. */
char *cli_http_transfer(CliCtx *ctx, bool put, const char *url, const char *task,
                        const char *what);

/* ---- lookups in the object tables ---- */
/* The ref of the object of class dm_class with this uuid, or NULL with
 * UUID_INVALID set. Caller frees. */
char *cli_ref_of_uuid(CliCtx *ctx, const char *dm_class, const char *uuid);
/* The uuid of ref (any class), or "<not in database>" as xe prints it. */
char *cli_uuid_of_ref(const char *ref);

/* ---- output ---- */
void cli_out(CliCtx *ctx, const char *text);            /* Print (one line) */
void cli_out_msg(CliCtx *ctx, const char *text);        /* PMsg: the same, left out by --minimal */
void cli_out_records(CliCtx *ctx, GPtrArray *records);  /* GPtrArray of GPtrArray of CliPair* */
void cli_out_list(CliCtx *ctx, const char *const *items, unsigned n); /* PList */
/* The uuid of ref as a one-item PList (what create commands print); 0. */
int cli_out_uuid(CliCtx *ctx, const char *ref);

typedef struct CliPair {
    char *key;   /* "uuid ( RO)" */
    char *value;
} CliPair;
CliPair *cli_pair_new(const char *key, const char *value);
void cli_pair_free(gpointer p);
/* A one-record table from alternating key, value strings, NULL-terminated. */
void cli_out_record(CliCtx *ctx, ...) G_GNUC_NULL_TERMINATED;

/* `help` and `help <command>`, from the table (cli_table.c). */
int cli_help(CliCtx *ctx);

/* ---- the generic record commands (cli_records.c) ---- */
void cli_records_register(GPtrArray *table);
/* Objects of cls matching the filters among ctx's parameters (those
 * naming fields, except skip), with default filters first ("k=v" ...,
 * NULL-terminated). Refs, caller frees. -1 when a filter names no field. */
GPtrArray *cli_select(CliCtx *ctx, const CliClass *cls, const char *const *defaults,
                      const char *const *skip);
const CliClass *cli_class_by_dm(const char *dm_class);
/* Prints records of cls (refs) with the fields params= names or def. */
int cli_print_objects(CliCtx *ctx, const CliClass *cls, GPtrArray *refs,
                      const char *const *def);
/* One object (ref) under a title ("Disk 0 VBD:", left out by --minimal),
 * printed as cli_print_objects prints it. */
void cli_print_object(CliCtx *ctx, const char *title, const CliClass *cls, const char *ref,
                      const char *const *def);

/* ---- the hand-written commands ---- */
void cli_vm_register(GPtrArray *table);
void cli_misc_register(GPtrArray *table);
void cli_storage_register(GPtrArray *table);
void cli_devices_register(GPtrArray *table);
void cli_xva_register(GPtrArray *table);

/* Run op on each VM the selectors choose (vm=, uuid=, fields; --multiple
 * for more than one), as XAPI's do_vm_op. */
typedef int (*CliVmOp)(CliCtx *ctx, const char *vm_ref, void *data);
int cli_do_vm_op(CliCtx *ctx, CliVmOp op, void *data, bool include_templates,
                 const char *const *ignore);

/* The VBD that vbd-create, vm-cd-add and vm-disk-add make (cli_vbd.c):
 * VBD.create with userdevice= from device=, no QoS; other_config is taken.
 * The new ref, or NULL. */
typedef struct CliVbdSpec {
    const char *vm, *vdi, *mode, *type;
    bool bootable, unpluggable, empty;
    Xv *other_config;
} CliVbdSpec;
Xv *cli_vbd_create(CliCtx *ctx, const CliVbdSpec *spec);

/* Adds a command to the table being built. */
void cli_table_add(GPtrArray *table, const char *name, const char *const *reqd,
                   const char *const *optn, const char *help, unsigned flags, CliFn fn);
#define CLI_ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define CLI_NONE ((const char *const[]){NULL})
