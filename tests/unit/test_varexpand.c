/* SPDX-License-Identifier: MIT */
/* Tests for common/varexpand: $NAME and ${NAME} against a fixed table. */
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "varexpand.h"
#include "xmalloc.h"

static const char *const vars[][2] = {
	{ "HOME", "/home/u" },
	{ "AZ_BATCH_TASK_DIR", "/mnt/batch/tasks/job/job-1/t1" },
	{ "A", "x" },
	{ "A1", "y" },
	{ "_u", "under" },
	{ "EMPTY", "" },
	{ "DOLLAR", "$A" },
};

static int lookups;

/* Look name up in vars; arg must point at the lookups counter. */
static const char *
lookup(const char *name, void *arg)
{
	size_t i;

	ASSERT(arg == &lookups);
	lookups++;
	for (i = 0; i < sizeof vars / sizeof vars[0]; i++)
		if (strcmp(vars[i][0], name) == 0)
			return vars[i][1];
	return NULL;
}

static const char *const cases[][2] = {
	{ "", "" },
	{ "plain text", "plain text" },
	{ "$HOME", "/home/u" },
	{ "${HOME}", "/home/u" },
	{ "$HOME/out", "/home/u/out" },
	{ "${HOME}x", "/home/ux" },
	{ "$HOMEx", "" },
	{ "$AZ_BATCH_TASK_DIR/../std*.txt", "/mnt/batch/tasks/job/job-1/t1/../std*.txt" },
	{ "$A$A1$_u", "xyunder" },
	{ "$A-$A1.$A1", "x-y.y" },
	{ "a$EMPTY.b", "a.b" },
	{ "$UNKNOWN", "" },
	{ "[${UNKNOWN}]", "[]" },
	/* Values are not expanded again. */
	{ "$DOLLAR", "$A" },
	/* Things that are not references stay. */
	{ "$", "$" },
	{ "a$", "a$" },
	{ "$$", "$$" },
	{ "$$A", "$x" },
	{ "$1", "$1" },
	{ "$1A", "$1A" },
	{ "$-", "$-" },
	{ "${", "${" },
	{ "${A", "${A" },
	{ "${A-b}", "${A-b}" },
	{ "${}", "${}" },
	{ "${1}", "${1}" },
	{ "${ A}", "${ A}" },
	{ "${A}}", "x}" },
	{ "${${A}}", "${x}" },
	{ "$ A", "$ A" },
	{ "\\$A", "\\x" },
	{ "'$A'", "'x'" },
	{ "h\xc3\xa9$A\xc3\xa9", "h\xc3\xa9x\xc3\xa9" },
};

TEST(table)
{
	size_t i;
	char *got;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		got = bd_varexpand(cases[i][0], lookup, &lookups);
		if (got == NULL || strcmp(got, cases[i][1]) != 0)
			UNIT_FAIL("case %zu <%s>: <%s>, want <%s>", i,
			    cases[i][0], got ? got : "(null)", cases[i][1]);
		free(got);
	}
}

TEST(lookup_calls)
{
	char *got;

	lookups = 0;
	got = bd_varexpand("no refs $ $1 ${", lookup, &lookups);
	ASSERT_STR_EQ(got, "no refs $ $1 ${");
	ASSERT_INT_EQ(lookups, 0);
	free(got);
	got = bd_varexpand("$A${A}$B", lookup, &lookups);
	ASSERT_STR_EQ(got, "xx");
	ASSERT_INT_EQ(lookups, 3);
	free(got);
}

/* A lookup that returns a value of arg's length. */
static const char *
lookup_big(const char *name, void *arg)
{
	return arg;
}

TEST(limit)
{
	size_t n = 64 * 1024;
	char *value = xmalloc(n + 1), *got, *pattern;

	memset(value, 'v', n);
	value[n] = '\0';
	/* 16 references make exactly BD_VAREXPAND_MAX bytes. */
	pattern = xstrdup("$V$V$V$V$V$V$V$V$V$V$V$V$V$V$V$V");
	got = bd_varexpand(pattern, lookup_big, value);
	ASSERT_NOT_NULL(got);
	ASSERT_INT_EQ(strlen(got), BD_VAREXPAND_MAX);
	free(got);
	free(pattern);
	/* One more byte is too much. */
	got = bd_varexpand("$V$V$V$V$V$V$V$V$V$V$V$V$V$V$V$V.", lookup_big,
	    value);
	ASSERT_NULL(got);
	got = bd_varexpand("$V$V$V$V$V$V$V$V$V$V$V$V$V$V$V$V$V", lookup_big,
	    value);
	ASSERT_NULL(got);
	free(value);
}

int
main(void)
{
	RUN(table);
	RUN(lookup_calls);
	RUN(limit);
	return 0;
}
