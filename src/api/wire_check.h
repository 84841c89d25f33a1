/* wire_check.h: the first step of dispatch, for both codecs: every string,
 * struct member name and array element of a call's parameters is wire
 * text (wire_text.h), else INVALID_VALUE ["Invalid UTF-8 string in
 * parameter"; the string, repaired], XAPI's error for this check (XAPI
 * before XSA-474 applied it to C0 controls too; after, they failed later
 * at the database write). */
#pragma once

#include "xapi_error.h"
#include "xv.h"

int wire_check_params(const Xv *params, XapiError **err);
