/* wire_text.h: which strings the XenAPI wire carries, and their repair.
 *
 * A wire string is valid UTF-8 made of characters an XML 1.0 document can
 * hold: no C0 control other than tab, LF and CR, no U+FFFE or U+FFFF
 * (surrogates and overlong forms are not valid UTF-8 in the first place).
 * Requests carrying anything else are refused (XAPI's XSA-474 rule);
 * whatever is stored anyway (file names, guest data) is repaired on the
 * way out: each byte that is not part of an allowed character becomes
 * U+FFFD, as g_utf8_make_valid does with invalid UTF-8. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define WIRE_TEXT_REPLACEMENT "\xEF\xBF\xBD" /* U+FFFD, 3 bytes */

/* The length (1 to 4) of the allowed character that starts the n > 0
 * bytes at s, or 0 when s[0] starts none. */
size_t wire_text_char_len(const unsigned char *s, size_t n);

/* Whether the whole C string is wire text. */
bool wire_text_is_valid(const char *s);

/* A g_malloc'd copy of s with each byte that is not part of an allowed
 * character replaced by U+FFFD. */
char *wire_text_repair(const char *s);
