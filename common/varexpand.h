/* SPDX-License-Identifier: MIT */
#ifndef BD_VAREXPAND_H
#define BD_VAREXPAND_H

/*
 * Environment variable expansion in the sh style, for the places where
 * Azure Batch expands variables (an output file's filePattern).
 *
 * `$NAME` and `${NAME}` are replaced, where NAME is [A-Za-z_][A-Za-z0-9_]*
 * (the longest such run after a bare `$`).  A variable the lookup does not
 * know expands to "".  A `$` that is not followed by a name or by `{name}`
 * stays as it is, and so does a `${` without its `}`.  There is no
 * escaping and no other shell syntax.
 */

#include <stddef.h>

/*
 * Returns the value of the variable name, or NULL when it is not set.  The
 * value is borrowed: it must stay valid until the lookup is called again
 * or bd_varexpand() returns.  arg is passed through.
 */
typedef const char *(*bd_var_lookup_fn)(const char *name, void *arg);

/* Longest result bd_varexpand() builds, in bytes. */
#define BD_VAREXPAND_MAX (1024 * 1024)

/*
 * Expand the variables in s.  Returns a new string the caller frees, or
 * NULL when the result would be longer than BD_VAREXPAND_MAX bytes (which
 * only a hostile input and environment can reach).
 */
char *bd_varexpand(const char *s, bd_var_lookup_fn lookup, void *arg);

#endif
