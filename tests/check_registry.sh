#!/bin/sh
# Proves the message registry's build-time checks: a handler named for no
# message of its class fails the generation, a well-named one is registered
# with a strong reference, a message without one stays unregistered, and a
# handler name dm_handlers.h does not declare fails -Werror=missing-prototypes.
# Usage: check_registry.sh SOURCE_ROOT BUILD_ROOT CC
set -eu
src="$1" build="$2" cc="$3"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
gen() { python3 "$src/gen/gen_datamodel.py" "$src/idl/datamodel.json" "$src/idl/param_defaults.json" "$@"; }

printf 'int xapi_VM_clnoe(Call *call, const char *vm, const char *new_name, Xv **result)\n{ return 0; }\n' > "$work/misspelt.c"
if gen "$work/tables.c" - "$work/misspelt.c" 2>"$work/err"; then
    echo "FAIL: a misspelt handler was accepted" >&2; exit 1
fi
grep -q "misspelt.c:1: xapi_VM_clnoe is the handler of no XenAPI message" "$work/err" || {
    echo "FAIL: the misspelt handler's error does not name it:" >&2; cat "$work/err" >&2; exit 1; }

printf 'int xapi_VM_clone(Call *call, const char *vm, const char *new_name, Xv **result)\n{ return 0; }\n' > "$work/good.c"
gen "$work/tables.c" - "$work/good.c"
grep -q "return xapi_VM_clone(" "$work/tables.c" || { echo "FAIL: VM.clone's handler is not registered" >&2; exit 1; }
if grep -q "xapi_VM_copy\|weak" "$work/tables.c"; then
    echo "FAIL: a message without a handler is referenced" >&2; exit 1
fi

printf '#include "call.h"\n#include "dm_handlers.h"\nint xapi_VMx_clone(Call *call) { return 0; }\n' > "$work/undeclared.c"
if "$cc" -std=c17 -Werror=missing-prototypes -I"$build" -I"$src/src/core" -I"$src/src/api" \
        $(pkg-config --cflags glib-2.0) -c "$work/undeclared.c" -o "$work/undeclared.o" 2>"$work/err"; then
    echo "FAIL: a handler dm_handlers.h does not declare compiled" >&2; exit 1
fi
grep -q "missing-prototypes" "$work/err" || { echo "FAIL: not refused for its prototype:" >&2; cat "$work/err" >&2; exit 1; }
echo "registry checks passed"
