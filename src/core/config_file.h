/* config_file.h: xapid's configuration file (/etc/xapid/xapid.conf when
 * installed): every command-line flag may be set there; a flag given on the
 * command line wins over the file's value. */
#pragma once

#include <glib.h>

/* The path of "--config FILE" or "--config=FILE" in argv, or NULL (not
 * owned: it points into argv). */
const char *config_file_path(int argc, char **argv);

/* A GKeyFile's [xapid] group turned into flags: each key is a long option
 * of entries ("listen-tls = 0.0.0.0:443"); a list value ("a;b") gives the
 * flag once per item, a boolean flag is given when the value is true. The
 * result is argv[0], the file's flags that the command line does not give,
 * then argv[1..]: GOption parses it as if typed. A key no entry has, a bad
 * boolean, or another group is an error naming the file and the key
 * (nothing is ignored). */
char **config_file_merge(const char *path, const GOptionEntry *entries, int argc, char **argv,
                         GError **error);
