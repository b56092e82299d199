/* SPDX-License-Identifier: MIT */
/*
 * Command line splitting.  Azure Batch runs a task's commandLine without a
 * shell, so batchd turns it into an argument vector itself: POSIX word
 * splitting with quote removal and no expansion of any kind (the rules are
 * listed in cmdline.h).  The splitter is a single pass over the line with
 * three states (unquoted, in single quotes, in double quotes) that appends
 * bytes to the current word; a word exists as soon as any part of it has
 * been seen, which is how `""` becomes an empty argument.
 *
 * bd_cmdline_quote() is the inverse, used for log lines and tests.  The
 * vectors and strings returned here belong to the caller.
 */
#include "cmdline.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "xmalloc.h"

/* A growable byte buffer for the word being built. */
struct cmdline_buf {
	char	*data;
	size_t	 len;
	size_t	 size;
};

/* Append one byte to buf, growing it as needed. */
static void
cmdline_buf_add(struct cmdline_buf *buf, char c)
{
	if (buf->len + 1 >= buf->size) {
		buf->size = buf->size == 0 ? 64 : buf->size * 2;
		buf->data = xrealloc(buf->data, buf->size);
	}
	buf->data[buf->len++] = c;
}

/* Append the NUL-terminated string s to buf. */
static void
cmdline_buf_addstr(struct cmdline_buf *buf, const char *s)
{
	while (*s != '\0')
		cmdline_buf_add(buf, *s++);
}

/* Take the finished word out of buf as a string and reset buf. */
static char *
cmdline_buf_take(struct cmdline_buf *buf)
{
	char *s;

	cmdline_buf_add(buf, '\0');
	s = xstrdup(buf->data);
	buf->len = 0;
	return s;
}

/* Whether c separates words. */
static bool
cmdline_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n';
}

/* Whether a backslash inside double quotes escapes c. */
static bool
cmdline_dquote_escapes(char c)
{
	return c == '"' || c == '\\' || c == '$' || c == '`';
}

/* Set *cause (when wanted) to a formatted message. */
static int
cmdline_fail(char **cause, int err, const char *what, size_t column)
{
	if (cause != NULL) {
		if (column != 0)
			*cause = xasprintf("%s at column %zu", what, column);
		else
			*cause = xstrdup(what);
	}
	return err;
}

int
bd_cmdline_split(const char *line, char ***argv_out, size_t *argc_out,
    char **cause)
{
	struct cmdline_buf word = { NULL, 0, 0 };
	char **argv = NULL;
	size_t argc = 0, argv_size = 0, i, quote_column = 0;
	size_t len;
	enum { UNQUOTED, SINGLE, DOUBLE } state = UNQUOTED;
	bool in_word = false;
	int err;

	*argv_out = NULL;
	if (argc_out != NULL)
		*argc_out = 0;
	if (cause != NULL)
		*cause = NULL;
	len = strnlen(line, BD_CMDLINE_MAX + 1);
	if (len > BD_CMDLINE_MAX) {
		if (cause != NULL)
			*cause = xasprintf("command line longer than %d bytes",
			    BD_CMDLINE_MAX);
		return BD_ETOOBIG;
	}

	for (i = 0; i < len; i++) {
		char c = line[i];

		switch (state) {
		case SINGLE:
			if (c == '\'')
				state = UNQUOTED;
			else
				cmdline_buf_add(&word, c);
			continue;
		case DOUBLE:
			if (c == '"') {
				state = UNQUOTED;
			} else if (c == '\\' && i + 1 < len &&
			    line[i + 1] == '\n') {
				i++;	/* line continuation */
			} else if (c == '\\' && i + 1 < len &&
			    cmdline_dquote_escapes(line[i + 1])) {
				cmdline_buf_add(&word, line[++i]);
			} else
				cmdline_buf_add(&word, c);
			continue;
		case UNQUOTED:
			break;
		}

		if (cmdline_is_space(c)) {
			if (in_word) {
				if (argc + 2 > argv_size) {
					argv_size = argv_size == 0 ? 8 :
					    argv_size * 2;
					argv = xreallocarray(argv, argv_size,
					    sizeof *argv);
				}
				argv[argc++] = cmdline_buf_take(&word);
				in_word = false;
			}
			continue;
		}
		if (c == '\\' && i + 1 < len && line[i + 1] == '\n') {
			/* A continuation joins the words on either side. */
			i++;
			continue;
		}
		in_word = true;
		if (c == '\'') {
			state = SINGLE;
			quote_column = i + 1;
		} else if (c == '"') {
			state = DOUBLE;
			quote_column = i + 1;
		} else if (c == '\\' && i + 1 < len)
			cmdline_buf_add(&word, line[++i]);
		else
			cmdline_buf_add(&word, c);
	}

	if (state != UNQUOTED) {
		err = cmdline_fail(cause, -EINVAL, state == SINGLE ?
		    "unterminated single quote" : "unterminated double quote",
		    quote_column);
		goto fail;
	}
	if (in_word) {
		if (argc + 2 > argv_size) {
			argv_size = argc + 2;
			argv = xreallocarray(argv, argv_size, sizeof *argv);
		}
		argv[argc++] = cmdline_buf_take(&word);
	}
	if (argc == 0) {
		err = cmdline_fail(cause, -EINVAL, "empty command line", 0);
		goto fail;
	}
	argv[argc] = NULL;
	free(word.data);
	*argv_out = argv;
	if (argc_out != NULL)
		*argc_out = argc;
	return 0;

fail:
	free(word.data);
	while (argc > 0)
		free(argv[--argc]);
	free(argv);
	return err;
}

void
bd_cmdline_free(char **argv)
{
	char **p;

	if (argv == NULL)
		return;
	for (p = argv; *p != NULL; p++)
		free(*p);
	free(argv);
}

/* Whether c can appear in an argument that is written without quotes. */
static bool
cmdline_is_safe(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return strchr("@%+=:,./_-", c) != NULL;
}

char *
bd_cmdline_quote(char *const *argv)
{
	struct cmdline_buf out = { NULL, 0, 0 };
	char *const *arg;
	const char *p;
	char *s;

	for (arg = argv; *arg != NULL; arg++) {
		bool bare = **arg != '\0';

		for (p = *arg; *p != '\0' && bare; p++)
			bare = cmdline_is_safe((unsigned char)*p);
		if (arg != argv)
			cmdline_buf_add(&out, ' ');
		if (bare) {
			cmdline_buf_addstr(&out, *arg);
			continue;
		}
		/* Single quotes, with each ' written as '\''. */
		cmdline_buf_add(&out, '\'');
		for (p = *arg; *p != '\0'; p++) {
			if (*p == '\'')
				cmdline_buf_addstr(&out, "'\\''");
			else
				cmdline_buf_add(&out, *p);
		}
		cmdline_buf_add(&out, '\'');
	}
	cmdline_buf_add(&out, '\0');
	s = out.data;
	return s;
}
