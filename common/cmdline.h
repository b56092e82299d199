/* SPDX-License-Identifier: MIT */
#ifndef BD_CMDLINE_H
#define BD_CMDLINE_H

/*
 * Splitting an Azure Batch commandLine into an argument vector.
 *
 * Azure Batch does not run commandLine under a shell.  batchd splits it the
 * way a POSIX shell splits words, with quote removal and nothing else: no
 * parameter, tilde or pathname expansion, no operators.  `$X`, `~`, `*`,
 * `;` and `|` reach the program as they are written.
 *
 * - Space, tab and newline separate words.
 * - Single quotes take everything up to the next single quote literally.
 * - Double quotes group; inside them a backslash escapes only `"`, `\`,
 *   `$` and backtick (the backslash is removed) and is otherwise kept.
 * - Outside quotes a backslash makes the next character literal.
 * - A backslash followed by a newline, outside single quotes, is a line
 *   continuation: both characters are removed, as in sh.
 * - A backslash at the very end of the line is kept.
 * - Adjacent parts join into one word (`a"b c"d` is `ab cd`); `""` and
 *   `''` are empty arguments.
 */

#include <stddef.h>

/* Longest command line bd_cmdline_split() accepts, in bytes. */
#define BD_CMDLINE_MAX (1024 * 1024)

/*
 * Split line into a NULL-terminated argument vector.  Returns 0 and sets
 * *argv_out (caller frees with bd_cmdline_free()) and *argc_out (which may
 * be NULL).  Returns -EINVAL for an unterminated quote or a line with no
 * words, and BD_ETOOBIG for a line longer than BD_CMDLINE_MAX; then
 * *argv_out is NULL and *cause (if cause is not NULL) gets a message the
 * caller frees.
 */
int bd_cmdline_split(const char *line, char ***argv_out, size_t *argc_out,
    char **cause);

/* Free an argument vector from bd_cmdline_split(); NULL is allowed. */
void bd_cmdline_free(char **argv);

/*
 * Quote a NULL-terminated argument vector into one line that
 * bd_cmdline_split() turns back into the same vector, for log lines and
 * tests.  Arguments made only of safe characters are left bare; others go
 * in single quotes.  Returns a string the caller frees.
 */
char *bd_cmdline_quote(char *const *argv);

#endif
