/* typed_value.h: converts values as they arrive on the wire into the
 * canonical typed form of a datamodel type (see db_text.h), accepting the
 * spellings clients use: ints as strings, floats as ints, dashed dates. */
#pragma once

#include "datamodel.h"
#include "xapi_error.h"
#include "xv.h"

/* NULL and FIELD_TYPE_ERROR [what] (or INVALID_VALUE [what, value] for an
 * unknown enum value) when the value does not fit the type. */
Xv *typed_value_from_wire(const DmType *type, const Xv *wire, const char *what,
                          XapiError **err);
