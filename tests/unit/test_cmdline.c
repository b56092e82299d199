/* SPDX-License-Identifier: MIT */
/* Tests for common/cmdline: splitting, errors and quoting round trips. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cmdline.h"
#include "error.h"
#include "unit.h"
#include "xmalloc.h"

#define MAXARGS 8

struct split_case {
	const char *line;
	const char *argv[MAXARGS];	/* NULL-terminated */
};

static const struct split_case split_cases[] = {
	{ "echo hello", { "echo", "hello" } },
	{ "  echo \t hello \n ", { "echo", "hello" } },
	{ "a\nb\tc", { "a", "b", "c" } },
	/* No expansion of any kind. */
	{ "echo $AZ_BATCH_POOL_ID", { "echo", "$AZ_BATCH_POOL_ID" } },
	{ "ls ~ *.txt ${X}", { "ls", "~", "*.txt", "${X}" } },
	{ "a;b | c && d > e", { "a;b", "|", "c", "&&", "d", ">", "e" } },
	{ "echo `id` $(id)", { "echo", "`id`", "$(id)" } },
	/* Single quotes. */
	{ "'a b' c", { "a b", "c" } },
	{ "'a\\b\"c$d'", { "a\\b\"c$d" } },
	{ "'a\nb'", { "a\nb" } },
	{ "'it'\\''s'", { "it's" } },
	/* Double quotes. */
	{ "/bin/sh -c \"MyApp $X\"", { "/bin/sh", "-c", "MyApp $X" } },
	{ "\"a \\\" b\"", { "a \" b" } },
	{ "\"a\\\\b\"", { "a\\b" } },
	{ "\"\\$X\"", { "$X" } },
	{ "\"\\`x\\`\"", { "`x`" } },
	{ "\"\\n\\a\\'\"", { "\\n\\a\\'" } },
	{ "\"a\\\nb\"", { "ab" } },
	{ "\"it's\"", { "it's" } },
	{ "\"a\nb\"", { "a\nb" } },
	/* Backslash outside quotes. */
	{ "a\\ b", { "a b" } },
	{ "\\\"a\\'", { "\"a'" } },
	{ "a\\\\b", { "a\\b" } },
	{ "a\\nb", { "anb" } },
	{ "a\\\nb c", { "ab", "c" } },
	{ "a \\\n b", { "a", "b" } },
	{ "a\\", { "a\\" } },
	/* Joining and empty words. */
	{ "a\"b c\"d", { "ab cd" } },
	{ "a'b'\"c\"d", { "abcd" } },
	{ "\"\"", { "" } },
	{ "''", { "" } },
	{ "a \"\" b", { "a", "", "b" } },
	{ "a ''", { "a", "" } },
	{ "\"\"''", { "" } },
	{ "x\"\"", { "x" } },
	/* Bytes beyond ASCII pass through. */
	{ "echo h\xc3\xa9llo '\xe2\x82\xac'", { "echo", "h\xc3\xa9llo", "\xe2\x82\xac" } },
};

TEST(split_table)
{
	size_t i, j, argc;
	char **argv, *cause;

	for (i = 0; i < sizeof split_cases / sizeof split_cases[0]; i++) {
		const struct split_case *c = &split_cases[i];
		size_t want = 0;

		while (c->argv[want] != NULL)
			want++;
		cause = NULL;
		if (bd_cmdline_split(c->line, &argv, &argc, &cause) != 0)
			UNIT_FAIL("case %zu <%s>: %s", i, c->line, cause);
		ASSERT_NULL(cause);
		if (argc != want)
			UNIT_FAIL("case %zu <%s>: argc %zu, want %zu", i,
			    c->line, argc, want);
		for (j = 0; j < want; j++) {
			if (strcmp(argv[j], c->argv[j]) != 0)
				UNIT_FAIL("case %zu <%s>: argv[%zu] <%s>, "
				    "want <%s>", i, c->line, j, argv[j],
				    c->argv[j]);
		}
		ASSERT_NULL(argv[argc]);
		bd_cmdline_free(argv);
	}
}

struct error_case {
	const char *line;
	int err;
	const char *cause;
};

static const struct error_case error_cases[] = {
	{ "", -EINVAL, "empty command line" },
	{ " \t\n ", -EINVAL, "empty command line" },
	{ "\\\n", -EINVAL, "empty command line" },
	{ "echo \"abc", -EINVAL, "unterminated double quote at column 6" },
	{ "echo 'abc", -EINVAL, "unterminated single quote at column 6" },
	{ "'", -EINVAL, "unterminated single quote at column 1" },
	{ "\"a\\\"", -EINVAL, "unterminated double quote at column 1" },
	{ "'a'b\"c'", -EINVAL, "unterminated double quote at column 5" },
	{ "\"'\" '\"", -EINVAL, "unterminated single quote at column 5" },
};

TEST(split_errors)
{
	size_t i, argc = 99;
	char **argv, *cause;
	int rc;

	for (i = 0; i < sizeof error_cases / sizeof error_cases[0]; i++) {
		const struct error_case *c = &error_cases[i];

		argv = (char **)1;
		cause = NULL;
		rc = bd_cmdline_split(c->line, &argv, &argc, &cause);
		if (rc != c->err)
			UNIT_FAIL("case %zu <%s>: rc %d, want %d", i, c->line,
			    rc, c->err);
		ASSERT_NULL(argv);
		ASSERT_INT_EQ(argc, 0);
		ASSERT_STR_EQ(cause, c->cause);
		free(cause);
	}
}

TEST(split_null_cause_and_argc)
{
	char **argv;

	ASSERT_INT_EQ(bd_cmdline_split("'x", &argv, NULL, NULL), -EINVAL);
	ASSERT_NULL(argv);
	ASSERT_INT_EQ(bd_cmdline_split("a b", &argv, NULL, NULL), 0);
	ASSERT_STR_EQ(argv[1], "b");
	bd_cmdline_free(argv);
	bd_cmdline_free(NULL);
}

TEST(split_too_long)
{
	char *line = xmalloc(BD_CMDLINE_MAX + 2), **argv, *cause = NULL;
	size_t argc;

	memset(line, 'a', BD_CMDLINE_MAX + 1);
	line[BD_CMDLINE_MAX + 1] = '\0';
	ASSERT_INT_EQ(bd_cmdline_split(line, &argv, &argc, &cause),
	    BD_ETOOBIG);
	ASSERT_STR_CONTAINS(cause, "longer than");
	free(cause);
	line[BD_CMDLINE_MAX] = '\0';
	ASSERT_INT_EQ(bd_cmdline_split(line, &argv, &argc, NULL), 0);
	ASSERT_INT_EQ(argc, 1);
	ASSERT_INT_EQ(strlen(argv[0]), BD_CMDLINE_MAX);
	bd_cmdline_free(argv);
	free(line);
}

TEST(split_many_words)
{
	char *line = xmalloc(20001), **argv;
	size_t i, argc;

	for (i = 0; i < 10000; i++) {
		line[2 * i] = 'a' + i % 26;
		line[2 * i + 1] = ' ';
	}
	line[20000] = '\0';
	ASSERT_INT_EQ(bd_cmdline_split(line, &argv, &argc, NULL), 0);
	ASSERT_INT_EQ(argc, 10000);
	ASSERT_STR_EQ(argv[9999], "p");	/* 9999 % 26 == 15 */
	ASSERT_NULL(argv[10000]);
	bd_cmdline_free(argv);
	free(line);
}

/* Quote argv, check the line, split it back and compare. */
static void
check_round_trip(const char *const *in, const char *want_line)
{
	char *line, **argv;
	size_t n = 0, argc, i;

	while (in[n] != NULL)
		n++;
	line = bd_cmdline_quote((char *const *)(uintptr_t)in);
	if (want_line != NULL)
		ASSERT_STR_EQ(line, want_line);
	if (bd_cmdline_split(line, &argv, &argc, NULL) != 0)
		UNIT_FAIL("quoted line <%s> does not split", line);
	ASSERT_INT_EQ(argc, n);
	for (i = 0; i < n; i++)
		ASSERT_STR_EQ(argv[i], in[i]);
	bd_cmdline_free(argv);
	free(line);
}

TEST(quote)
{
	const char *plain[] = { "/bin/echo", "a=b", "x,y:z@1%+", NULL };
	const char *spaces[] = { "sh", "-c", "echo $X; ls | wc", NULL };
	const char *empty[] = { "a", "", "b", NULL };
	const char *quotes[] = { "it's", "\"q\"", "'", "\\", NULL };
	const char *odd[] = { "a\nb", "\t", "~", "*", "`x`", "\xc3\xa9", NULL };

	check_round_trip(plain, "/bin/echo a=b x,y:z@1%+");
	check_round_trip(spaces, "sh -c 'echo $X; ls | wc'");
	check_round_trip(empty, "a '' b");
	check_round_trip(quotes, "'it'\\''s' '\"q\"' ''\\''' '\\'");
	check_round_trip(odd, NULL);
}

TEST(quote_every_byte)
{
	char arg[3], *args[2] = { arg, NULL };
	unsigned c;

	for (c = 1; c < 256; c++) {
		arg[0] = (char)c;
		arg[1] = 'x';
		arg[2] = '\0';
		check_round_trip((const char *const *)args, NULL);
		arg[1] = '\0';
		check_round_trip((const char *const *)args, NULL);
	}
}

int
main(void)
{
	RUN(split_table);
	RUN(split_errors);
	RUN(split_null_cause_and_argc);
	RUN(split_too_long);
	RUN(split_many_words);
	RUN(quote);
	RUN(quote_every_byte);
	return 0;
}
