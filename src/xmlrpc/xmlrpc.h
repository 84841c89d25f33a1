/* xmlrpc.h: the XML-RPC codec. Requests are parsed leniently (typed or
 * untyped strings, i4/i8/int, pretty or compact); replies are written
 * exactly as XAPI writes them: compact, untyped strings, ints as decimal
 * strings, dateTime.iso8601 as YYYYMMDDTHH:MM:SSZ, never <nil/>. A reply
 * is well-formed XML 1.0 whatever the values hold: each byte that is not
 * part of a character XML allows (invalid UTF-8, C0 controls but tab, LF
 * and CR, U+FFFE/U+FFFF) is written as U+FFFD (wire_text.h). */
#pragma once

#include <glib.h>

#include "xv.h"

/* 0 with *method and *params (XV_ARRAY), or -1 with *error_text; all
 * g_malloc'd and owned by the caller. */
int xmlrpc_parse_call(const char *body, size_t len, char **method, Xv **params,
                      char **error_text);
/* The reply document for one value; g_malloc'd, *len set. */
char *xmlrpc_format_response(const Xv *value, size_t *len);
/* Appends "<value>...</value>" (used for task results too). */
void xmlrpc_append_value(GString *out, const Xv *v);
/* Appends "<member><name>key</name><value>...</value></member>". */
void xmlrpc_append_member(GString *out, const char *key, const Xv *value);
/* Parses a <methodResponse> (tests, and hosts calling each other). */
int xmlrpc_parse_response(const char *body, size_t len, Xv **value, char **error_text);

/* Any <methodResponse>, as a peer that is not xapid may write it (a
 * plugin's output): PARAMS sets *value to the array of its params, FAULT
 * to the fault's value; NOT_XML (not well-formed, or over the caps of a
 * request) and MALFORMED (XML, but not a response) set *error_text. */
typedef enum {
    XMLRPC_RESPONSE_PARAMS,
    XMLRPC_RESPONSE_FAULT,
    XMLRPC_RESPONSE_MALFORMED,
    XMLRPC_RESPONSE_NOT_XML,
} XmlrpcResponseKind;
XmlrpcResponseKind xmlrpc_parse_any_response(const char *body, size_t len, Xv **value,
                                             char **error_text);
/* A <methodCall> of method with params (an XV_ARRAY), compact, strings
 * untyped, as XAPI writes the calls it makes; g_malloc'd, *len set. */
char *xmlrpc_format_call(const char *method, const Xv *params, size_t *len);
