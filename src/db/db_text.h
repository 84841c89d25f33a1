/* db_text.h: the "DB text" form of typed values, as stored in SQLite,
 * compared by the filter language and used for datamodel defaults.
 *
 *   string, ref, enum    the text itself
 *   int                  decimal
 *   float                %.17g
 *   bool                 true | false
 *   datetime             YYYYMMDDTHH:MM:SSZ
 *   set                  JSON array of the elements' DB texts
 *   map                  JSON object: key DB text -> value DB text
 *   record, option       JSON object / the element's text ("" for none)
 *
 * Typed values in memory ("canonical" form) are: XV_STRING for string, ref
 * and enum; XV_INT, XV_FLOAT, XV_BOOL, XV_DATETIME; XV_ARRAY for sets;
 * XV_STRUCT with DB-text keys for maps. */
#pragma once

#include "datamodel.h"
#include "xapi_error.h"
#include "xv.h"

char *db_text_from_value(const DmType *type, const Xv *value);
/* NULL and INTERNAL_ERROR when text does not parse as the type. */
Xv *db_text_to_value(const DmType *type, const char *text, XapiError **err);
/* The zero value of a type: "", 0, false, epoch, OpaqueRef:NULL, the
 * first enum value, empty set/map. */
Xv *db_type_zero(const DmType *type);
/* A field's default (its datamodel default, else the type's zero). */
Xv *db_field_default(const DmField *field);
