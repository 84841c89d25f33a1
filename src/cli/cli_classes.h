/* cli_classes.h: the shapes of xe's record tables, generated from the
 * datamodel by gen/gen_cli.py (the tables: cli_classes.c in the build). */
#pragma once

#include <stddef.h>

typedef struct CliField {
    const char *name;  /* xe's name: "name-label" */
    const char *field; /* the datamodel field: "name_label" (of the via object) */
    const char *via;   /* NULL, or the ref field whose object holds it ("VM") */
    const char *call;  /* or NULL: a message of the class whose result it is
                        * ("compute_free_memory"; field and via are NULL) */
} CliField;

typedef struct CliClass {
    const char *name;       /* "vm" */
    const char *dm_class;   /* "VM" */
    const char *plural;     /* "vms", for help texts */
    const CliField *fields; /* uuid first */
    unsigned n_fields;
    const char *const *list_default; /* what <class>-list prints; NULL-terminated */
    const char *const *filters;      /* "field=value" every -list applies (XAPI's def_filters) */
} CliClass;

typedef struct CliErrorDoc {
    const char *code;
    const char *doc;
} CliErrorDoc;

extern const CliClass cli_classes[];
extern const unsigned cli_n_classes;
extern const CliErrorDoc cli_error_docs[]; /* sorted by code */
extern const unsigned cli_n_error_docs;
