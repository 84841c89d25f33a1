/* filter.h: XAPI's filter language for get_all_records_where:
 *   expr  := value "=" value | expr "and" expr | expr "or" expr
 *          | "not" expr | "true" | "false" | "(" expr ")"
 *   value := "\"literal\"" | "field" "\"name\""
 * Precedence: not > and > or. Comparison is equality of DB text forms. */
#pragma once
#include <stdbool.h>
#include "xapi_error.h"
typedef struct FilterExpr FilterExpr;
/* NULL and INVALID_VALUE ["expr", text] on a syntax error. */
FilterExpr *filter_parse(const char *text, XapiError **err);
void filter_free(FilterExpr *e);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FilterExpr, filter_free)
/* Returns the g_malloc'd DB text of a field of the row under test, or
 * NULL when there is no such field (unequal to everything). */
typedef char *(*FilterFieldLookup)(void *ctx, const char *field_name);
bool filter_eval(const FilterExpr *e, FilterFieldLookup lookup, void *ctx);
