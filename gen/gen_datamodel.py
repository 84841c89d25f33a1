#!/usr/bin/env python3
"""Generates the C datamodel tables and handler glue from idl/datamodel.json.

Usage: gen_datamodel.py DATAMODEL PARAM_DEFAULTS OUT_TABLES_C OUT_HANDLERS_H [SOURCE.c...]

OUT_TABLES_C holds types, enums, fields, messages, classes, error codes and
one glue function per hand-written handler `xapi_<Class>_<message>` that
unpacks the typed arguments and calls it. The handlers are the functions of
that name defined in the SOURCE files, referenced strongly: a message with no
handler is not implemented (unless the generic engine serves it), and a
function named `xapi_<Class>_<name>` that is no message of Class fails the
generation (a misspelt handler is a build error, not "not implemented").
OUT_HANDLERS_H declares every message's handler for the files that implement
them, so that the compiler checks their signatures (and, with
-Werror=missing-prototypes, rejects a handler whose name it does not declare).
Either output may be "-" to skip writing it (the header does not depend on
the sources, so that editing a handler does not rebuild every file).
"""
import json
import os
import re
import sys

ROLES = ["pool-admin", "pool-operator", "vm-power-admin", "vm-admin",
         "vm-operator", "client-cert", "read-only"]
STATES = {"Published": "DM_PUBLISHED", "Prototyped": "DM_PROTOTYPED",
          "Deprecated": "DM_DEPRECATED", "Removed": "DM_REMOVED"}
QUALIFIERS = {"RO/runtime": "DM_RO_RUNTIME",
              "RO/constructor": "DM_RO_CONSTRUCTOR", "RW": "DM_RW"}
NOT_PERSISTED = {"session", "task", "role", "event"}
NO_EVENTS = {"session", "user", "data_source", "sr_stat", "probe_result",
             "vdi_nbd_server_info", "auth", "secret", "event"}
# Classes whose reads XAPI writes by hand (it keeps them outside its
# database) that keep a table in ours: message, whose rows live in
# messages.db (docs/messages.md), keeps its (empty) table so that the rows
# an older xapid wrote there are found and moved at start.
STORED_BY_HAND = {"message"}
NO_ASYNC_CLASSES = {"session", "event", "task", "data_source", "blob"}
C_KEYWORDS = {"default", "type", "int", "float", "double", "char", "long",
              "short", "const", "struct", "union", "enum", "switch", "case",
              "for", "while", "do", "if", "else", "return", "static", "auto",
              "register", "signed", "unsigned", "void", "volatile", "sizeof",
              "break", "continue", "goto", "extern", "typedef", "bool",
              "inline", "restrict", "true", "false", "call", "result"}


# Operation locks are rebuilt at every start (operations_reset_all), so
# they are kept in memory only: taking or releasing a lock never fails on
# a full or failing disk, and a released lock can never stay held.
RUNTIME_ONLY_FIELDS = {"current_operations", "allowed_operations"}


def c_string(s):
    if s is None:
        return "NULL"
    return json.dumps(s)


class TypeTable:
    """Interns type descriptors; each distinct type text gets one C object."""

    def __init__(self, enums):
        self.enums = enums
        self.order = []
        self.ids = {}

    def parse(self, text):
        text = text.strip()
        if text in self.ids:
            return self.ids[text]
        m = re.fullmatch(r"\((.+?) -> (.+)\) map", text)
        if m:
            desc = ("DM_MAP", None, None, self.parse(m.group(1)),
                    self.parse(m.group(2)))
        elif text.endswith(" set"):
            desc = ("DM_SET", None, None, None, self.parse(text[:-4]))
        elif text.endswith(" option"):
            desc = ("DM_OPTION", None, None, None, self.parse(text[:-7]))
        elif text.endswith(" ref"):
            desc = ("DM_REF", text[:-4], None, None, None)
        elif text.endswith(" record"):
            desc = ("DM_RECORD", text[:-7], None, None, None)
        elif text == "an event batch":  # event.from's struct of events and token
            desc = ("DM_RECORD", "event_batch", None, None, None)
        elif text.startswith("enum "):
            name = text[5:]
            if name not in self.enums:
                raise SystemExit(f"unknown enum {name}")
            desc = ("DM_ENUM", None, name, None, None)
        else:
            simple = {"string": "DM_STRING", "int": "DM_INT",
                      "float": "DM_FLOAT", "bool": "DM_BOOL",
                      "datetime": "DM_DATETIME", "void": "DM_VOID"}
            if text not in simple:
                raise SystemExit(f"unknown type {text!r}")
            desc = (simple[text], None, None, None, None)
        ident = f"dm_type_{len(self.order)}"
        self.ids[text] = ident
        self.order.append((ident, text, desc))
        return ident

    def kind(self, text):
        return dict((t, d) for _, t, d in self.order)[text.strip()][0]

    def emit(self, out):
        for ident, _, _ in self.order:
            out.append(f"static const DmType {ident};")
        for ident, text, (kind, cls, enum, key, elem) in self.order:
            out.append(
                f"static const DmType {ident} = {{ {kind}, {c_string(text)}, "
                f"{c_string(cls)}, {('&dm_enum_' + enum) if enum else 'NULL'}, "
                f"{('&' + key) if key else 'NULL'}, "
                f"{('&' + elem) if elem else 'NULL'} }};")


def default_to_db(type_text, kind, text):
    """Datamodel default spelling -> DB text form (see src/db/db_text.h)."""
    if text is None:
        return None
    if kind == "DM_STRING":
        return json.loads(text) if text.startswith('"') else text
    if kind == "DM_REF":
        return "OpaqueRef:NULL" if text in ("Null", "OpaqueRef:NULL") else text
    if kind == "DM_FLOAT":
        return repr(float(text.rstrip(".") or "0"))
    if kind == "DM_SET":
        inner = text.strip()[1:-1].strip()
        items = [x.strip().strip('"') for x in inner.split(",")] if inner else []
        return json.dumps(items)
    if kind == "DM_MAP":
        inner = text.strip()[1:-1].strip()
        pairs = {}
        if inner:
            for part in re.findall(r'"([^"]*)"\s*->\s*"([^"]*)"', inner):
                pairs[part[0]] = part[1]
        return json.dumps(pairs)
    return text


def implicit_kind(msg_name, fields_by_name, types):
    fixed = {"get_record": "DM_IMPLICIT_GET_RECORD",
             "get_by_uuid": "DM_IMPLICIT_GET_BY_UUID",
             "get_by_name_label": "DM_IMPLICIT_GET_BY_NAME_LABEL",
             "get_all": "DM_IMPLICIT_GET_ALL",
             "get_all_records": "DM_IMPLICIT_GET_ALL_RECORDS",
             "get_all_where": "DM_IMPLICIT_GET_ALL_WHERE",
             "get_all_records_where": "DM_IMPLICIT_GET_ALL_RECORDS_WHERE",
             "create": "DM_IMPLICIT_CREATE",
             "destroy": "DM_IMPLICIT_DESTROY"}
    if msg_name in fixed:
        return fixed[msg_name], None
    for prefix, kind, want in (("add_to_", "DM_IMPLICIT_ADD_TO_MAP", "DM_MAP"),
                               ("remove_from_", "DM_IMPLICIT_REMOVE_FROM_MAP", "DM_MAP"),
                               ("get_", "DM_IMPLICIT_GET_FIELD", None),
                               ("set_", "DM_IMPLICIT_SET_FIELD", None),
                               ("add_", "DM_IMPLICIT_ADD_TO_SET", "DM_SET"),
                               ("remove_", "DM_IMPLICIT_REMOVE_FROM_SET", "DM_SET")):
        if msg_name.startswith(prefix):
            f = fields_by_name.get(msg_name[len(prefix):])
            if f and (want is None or types.kind(f["type"]) == want):
                return kind, f["name"]
    return None, None


def c_param_type(kind):
    return {"DM_STRING": "const char *", "DM_REF": "const char *",
            "DM_ENUM": "const char *", "DM_INT": "int64_t",
            "DM_DATETIME": "int64_t", "DM_FLOAT": "double",
            "DM_BOOL": "bool"}.get(kind, "const Xv *")


def c_arg_expr(kind, i):
    a = f"call_arg(call, {i})"
    return {"DM_STRING": f"xv_str({a})", "DM_REF": f"xv_str({a})",
            "DM_ENUM": f"xv_str({a})", "DM_INT": f"{a}->i",
            "DM_DATETIME": f"{a}->i", "DM_FLOAT": f"{a}->f",
            "DM_BOOL": f"{a}->b"}.get(kind, a)


def c_ident(name):
    return name + "_" if name in C_KEYWORDS else name


HANDLER_DEF = re.compile(r"^int\s+(xapi_[A-Za-z0-9_]+)\s*\(", re.MULTILINE)


def defined_handlers(sources, classes):
    """The xapi_<Class>_<message> functions the sources define; a definition
    named for a class but for none of its messages is an error."""
    messages = {f"xapi_{c['name']}_{m['name']}" for c in classes for m in c["messages"]}
    prefixes = tuple(f"xapi_{c['name']}_" for c in classes)
    found, bad = set(), []
    for path in sources:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        for m in HANDLER_DEF.finditer(text):
            name = m.group(1)
            if name in messages:
                found.add(name)
            elif name.startswith(prefixes):
                line = text.count("\n", 0, m.start()) + 1
                bad.append(f"{path}:{line}: {name} is the handler of no XenAPI message")
    if bad:
        raise SystemExit("\n".join(bad))
    return found


def main():
    dm_path, defaults_path, out_c, out_h = sys.argv[1:5]
    sources = [p for p in sys.argv[5:] if p.endswith(".c")]
    dm = json.load(open(dm_path))
    param_defaults = json.load(open(defaults_path))
    field_defaults = param_defaults.pop("field_defaults", {})
    param_defaults = {k: v for k, v in param_defaults.items()
                      if not k.startswith("_")}
    classes = dm["classes"]
    class_names = {c["name"] for c in classes}
    # XAPI's hidden host-to-host messages (idl/internal_messages.json).
    internal_path = os.path.join(os.path.dirname(dm_path), "internal_messages.json")
    if os.path.exists(internal_path):
        internal = json.load(open(internal_path))
        for c in classes:
            c["messages"].extend(internal.get(c["name"], []))

    enums = {}
    for c in classes:
        for e in c["enums"]:
            enums[e["name"]] = e["values"]
    types = TypeTable(enums)

    # Relations whose both ends exist; the first end is stored.
    reverse = {}
    for (ca, fa), (cb, fb) in dm["relations"]:
        if ca not in class_names or cb not in class_names or (ca, fa) == (cb, fb):
            continue
        reverse[(ca, fa)] = ((cb, fb), False)
        reverse[(cb, fb)] = ((ca, fa), True)

    out = ['/* Generated by gen/gen_datamodel.py from idl/datamodel.json. Do not edit. */',
           '#include "datamodel.h"', '#include "call.h"', '#include "dm_handlers.h"', '',
           'const char *const dm_role_names[DM_N_ROLES] = {' +
           ", ".join(c_string(r) for r in ROLES) + '};', '']
    header = ['/* Generated by gen/gen_datamodel.py from idl/datamodel.json. Do not edit.',
              ' * One prototype per XenAPI message: define the function to implement it. */',
              '#pragma once', '#include <stdbool.h>', '#include <stdint.h>',
              '#include "datamodel.h"', '']

    for name, values in sorted(enums.items()):
        out.append(f"static const char *const dm_enum_values_{name}[] = {{" +
                   ", ".join(c_string(v) for v in values) + "};")
        out.append(f"static const DmEnum dm_enum_{name} = {{ {c_string(name)}, "
                   f"dm_enum_values_{name}, {len(values)} }};")
    out.append("const DmEnum *const dm_enums[] = {" +
               ", ".join(f"&dm_enum_{n}" for n in sorted(enums)) + "};")
    out.append(f"const unsigned dm_n_enums = {len(enums)};")

    # XAPI serves hidden get_all_where/get_all_records_where beside get_all_records.
    for c in classes:
        names = {m["name"] for m in c["messages"]}
        base = next((m for m in c["messages"] if m["name"] == "get_all_records"), None)
        if not base:
            continue
        for extra, result in (("get_all_records_where", base["result"]),
                              ("get_all_where", f"{c['name']} ref set")):
            if extra not in names:
                c["messages"].append({"name": extra, "params": base["params"] + [
                    {"name": "expr", "type": "string"}], "result": result,
                    "errors": [], "roles": base["roles"], "implicit": True,
                    "state": "Published", "hidden": True})

    # Parse every type first so the type table can be emitted before use.
    for c in classes:
        for f in c["fields"]:
            types.parse(f["type"])
        for m in c["messages"]:
            types.parse(m["result"])
            for p in m["params"]:
                types.parse(p["type"])
    types.emit(out)
    out.append("")

    # Forward declarations of classes and fields (relations point across).
    for ci, c in enumerate(classes):
        out.append(f"static const DmField dm_fields_{c['name']}[];")
    out.append("")

    glue = []
    class_blocks = []
    handler_names = set()
    implemented = defined_handlers(sources, classes)
    for ci, c in enumerate(classes):
        cname = c["name"]
        fields = [f for f in c["fields"] if f["state"] != "Removed"]
        findex = {f["name"]: i for i, f in enumerate(fields)}
        fields_by_name = {f["name"]: f for f in fields}
        rows = []
        for i, f in enumerate(fields):
            kind = types.kind(f["type"])
            rev = reverse.get((cname, f["name"]))
            rev_expr, derived = "NULL", "false"
            if rev:
                (rc, rf), is_derived = rev
                rcls = next(x for x in classes if x["name"] == rc)
                rfields = [x for x in rcls["fields"] if x["state"] != "Removed"]
                ri = next((k for k, x in enumerate(rfields) if x["name"] == rf), None)
                if ri is not None:
                    rev_expr = f"&dm_fields_{rc}[{ri}]"
                    derived = "true" if is_derived else "false"
            rows.append(
                f"    {{ {c_string(f['name'])}, &{types.ids[f['type'].strip()]}, "
                f"{QUALIFIERS[f['qualifier']]}, {STATES[f['state']]}, "
                f"{c_string(default_to_db(f['type'], kind, field_defaults.get(cname + '.' + f['name'], f.get('default'))))}, {i}, "
                f"&dm_classes[{ci}], {rev_expr}, {derived}, "
                f"{'true' if f['name'] in RUNTIME_ONLY_FIELDS else 'false'} }},")
        out.append(f"static const DmField dm_fields_{cname}[] = {{")
        out.extend(rows or ["    { 0 }"])
        out.append("};")

        messages = c["messages"]
        msg_rows = []
        for m in messages:
            params = m["params"]
            takes_session = bool(params) and params[0]["name"] == "session_id" \
                and params[0]["type"] == "session ref"
            if takes_session:
                params = params[1:]
            wire = f"{cname}.{m['name']}"
            defaults = param_defaults.get(wire, {})
            prow = []
            n_required = 0
            for p in params:
                if p["name"] in defaults:
                    d = defaults[p["name"]]
                    kind = types.kind(p["type"])
                    d = json.dumps(d) if kind in ("DM_SET", "DM_MAP") else str(d)
                    if kind == "DM_BOOL":
                        d = d.lower()
                    prow.append(f"{{ {c_string(p['name'])}, &{types.ids[p['type'].strip()]}, {c_string(d)} }}")
                else:
                    n_required += 1
                    prow.append(f"{{ {c_string(p['name'])}, &{types.ids[p['type'].strip()]}, NULL }}")
            pname = f"dm_params_{cname}_{m['name']}"
            if prow:
                out.append(f"static const DmParam {pname}[] = {{ " + ", ".join(prow) + " };")
            ename = f"dm_errors_{cname}_{m['name']}"
            if m["errors"]:
                out.append(f"static const char *const {ename}[] = {{ " +
                           ", ".join(c_string(e) for e in m["errors"]) + " };")
            ikind, ifield = ("DM_EXPLICIT", None)
            if m["implicit"]:
                ikind, ifield = implicit_kind(m["name"], fields_by_name, types)
                if ikind is None:
                    ikind = "DM_EXPLICIT"  # implicit in XAPI, but not a shape we know
            has_async = (cname not in NO_ASYNC_CLASSES and
                         (ikind == "DM_EXPLICIT" or
                          ikind in ("DM_IMPLICIT_CREATE", "DM_IMPLICIT_DESTROY")))
            roles = " | ".join(f"DM_ROLE_{r.upper().replace('-', '_')}" for r in m["roles"]) or "0"

            # Handler prototype and glue.
            hname = f"xapi_{cname}_{m['name']}"
            if hname in handler_names:
                raise SystemExit(f"handler name collision: {hname}")
            handler_names.add(hname)
            result_kind = types.kind(m["result"])
            cparams = ["Call *call"]
            cargs = ["call"]
            for i, p in enumerate(params):
                kind = types.kind(p["type"])
                cparams.append(f"{c_param_type(kind)}{'' if c_param_type(kind).endswith('*') else ' '}{c_ident(p['name'])}")
                cargs.append(c_arg_expr(kind, i))
            if result_kind != "DM_VOID":
                cparams.append("Xv **result")
                cargs.append("result")
            proto = f"int {hname}({', '.join(cparams)})"
            header.append(proto + ";")
            if hname in implemented:
                glue.append(f"static int glue_{cname}_{m['name']}(Call *call, Xv **result)")
                glue.append("{")
                if result_kind == "DM_VOID":
                    glue.append("    (void)result;")
                glue.append(f"    return {hname}({', '.join(cargs)});")
                glue.append("}")
                glue_ref, impl_ref = f"glue_{cname}_{m['name']}", f"(void (*)(void)){hname}"
            else:
                glue_ref, impl_ref = "NULL", "NULL"
            msg_rows.append(
                f"    {{ {c_string(m['name'])}, {c_string(wire)}, &dm_classes[{ci}], "
                f"{pname if prow else 'NULL'}, {len(params)}, {n_required}, "
                f"{'true' if takes_session else 'false'}, &{types.ids[m['result'].strip()]}, "
                f"{ename if m['errors'] else 'NULL'}, {len(m['errors'])}, {roles}, "
                f"{STATES[m['state']]}, {ikind}, {'true' if has_async else 'false'}, "
                f"{'true' if m.get('hidden') else 'false'}, "
                f"{('&dm_fields_' + cname + '[' + str(findex[ifield]) + ']') if ifield else 'NULL'}, "
                f"{glue_ref}, {impl_ref} }},")
        class_blocks.append((ci, c, fields, findex, msg_rows))

    out.extend(glue)
    out.append("")
    for ci, c, fields, findex, msg_rows in class_blocks:
        out.append(f"static const DmMessage dm_messages_{c['name']}[] = {{")
        out.extend(msg_rows or ["    { 0 }"])
        out.append("};")
    out.append("const DmClass dm_classes[] = {")
    for ci, c, fields, findex, msg_rows in class_blocks:
        name = c["name"]
        stored = name in STORED_BY_HAND or any(
            m["name"] == "get_record" and m["implicit"] for m in c["messages"])
        out.append(
            f"    {{ {c_string(name)}, {c_string(name.lower())}, {ci}, dm_fields_{name}, "
            f"{len(fields)}, dm_messages_{name}, {len(msg_rows)}, "
            f"{findex.get('uuid', -1)}, {findex.get('name_label', -1)}, "
            f"{'true' if stored else 'false'}, "
            f"{'true' if stored and name not in NOT_PERSISTED else 'false'}, "
            f"{'true' if stored and name not in NO_EVENTS else 'false'} }},")
    out.append("};")
    out.append(f"const unsigned dm_n_classes = {len(classes)};")

    errors = sorted(dm["errors"].items())
    out.append("const char *const dm_error_codes[] = {" +
               ", ".join(c_string(e[0]) for e in errors) + "};")
    for i, (code, params) in enumerate(errors):
        out.append(f"static const char *const dm_error_params_{i}[] = {{ " +
                   "".join(c_string(p) + ", " for p in params) + "NULL };")
    out.append("const char *const *const dm_error_params[] = {" +
               ", ".join(f"dm_error_params_{i}" for i in range(len(errors))) + "};")
    out.append(f"const unsigned dm_n_errors = {len(errors)};")

    if out_c != "-":
        with open(out_c, "w") as fh:
            fh.write("\n".join(out) + "\n")
    if out_h != "-":
        with open(out_h, "w") as fh:
            fh.write("\n".join(header) + "\n")


if __name__ == "__main__":
    main()
