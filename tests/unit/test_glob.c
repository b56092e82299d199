/* SPDX-License-Identifier: MIT */
/*
 * Tests for common/glob: tables of pattern/path matches, wildcard
 * detection, and expansion over a real directory tree with dot files, dot
 * directories, symlinks (to files, to directories, dangling and looping)
 * and `..` patterns.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "glob.h"
#include "unit.h"
#include "xmalloc.h"

struct match_case {
	const char *pattern;
	const char *path;
	bool match;
};

static const struct match_case match_cases[] = {
	{ "", "", true },
	{ "a", "a", true },
	{ "a", "b", false },
	{ "a/b", "a/b", true },
	{ "a//b/", "a/b", true },
	{ "a", "a/b", false },
	{ "a/b", "a", false },
	/* * within one segment. */
	{ "*", "abc", true },
	{ "*", "", false },
	{ "*", "a/b", false },
	{ "*.txt", "a.txt", true },
	{ "*.txt", ".txt", false },
	{ "*.txt", "a/b.txt", false },
	{ "abc*", "abc", true },
	{ "abc*", "abcdef", true },
	{ "abc*", "ab", false },
	{ "*a*b*c*", "xxaxxbxxcxx", true },
	{ "*a*b*c*", "xxaxxcxxbxx", false },
	{ "*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false },
	{ "a**b", "axyzb", true },
	{ "*/*", "a/b", true },
	{ "*/*", "a", false },
	/* ? and sets. */
	{ "?", "a", true },
	{ "?", "", false },
	{ "?", "ab", false },
	{ "a?c", "abc", true },
	{ "?", "\xc3\xa9", true },
	{ "??", "\xc3\xa9", false },
	{ "?", "\xff", true },
	{ "??", "\xff\xc3", true },
	{ "[abc]", "b", true },
	{ "[abc]", "d", false },
	{ "[a-c]", "c", true },
	{ "[a-c]", "d", false },
	{ "[a-cx-z]", "y", true },
	{ "[!abc]", "d", true },
	{ "[!abc]", "a", false },
	{ "[^abc]", "d", true },
	{ "[^abc]", "c", false },
	{ "[]]", "]", true },
	{ "[]a]", "a", true },
	{ "[!]]", "a", true },
	{ "[!]]", "]", false },
	{ "[a-]", "-", true },
	{ "[-a]", "-", true },
	{ "[a-]]", "-]", true },
	{ "[[]", "[", true },
	{ "[\xc3\xa9]", "\xc3\xa9", true },
	{ "[\xc3\xa0-\xc3\xbc]", "\xc3\xa9", true },
	{ "[\xc3\xa0-\xc3\xbc]", "e", false },
	{ "[!\xc3\xa9]", "\xc3\xa9", false },
	/* Escapes and literal brackets. */
	{ "abc[*]", "abc*", true },
	{ "abc[*]", "abcd", false },
	{ "[?]", "?", true },
	{ "[?]", "a", false },
	{ "[[]*]", "[x]", true },
	{ "[", "[", true },
	{ "a[b", "a[b", true },
	{ "a[b", "ab", false },
	{ "[a/b]", "[a/b]", true },
	{ "[!a", "[!a", true },
	{ "a\\*", "a\\b", true },
	{ "a\\*", "a*", false },
	/* Leading dots. */
	{ "*", ".a", false },
	{ "?a", ".a", false },
	{ "[.]a", ".a", true },
	{ "[!a]a", ".a", false },
	{ "*.gif", ".a.gif", false },
	{ ".*.gif", ".a.gif", true },
	{ ".*", ".a", true },
	{ "a*", "a.b", true },
	{ "x/*", "x/.a", false },
	{ ".x/*", ".x/a", true },
	{ "*/a", ".x/a", false },
	/* ** as a segment. */
	{ "**", "", true },
	{ "**", "a", true },
	{ "**", "a/b/c", true },
	{ "**", ".a", false },
	{ "**", "a/.b/c", false },
	{ "**/*.txt", "a.txt", true },
	{ "**/*.txt", "a/b/c.txt", true },
	{ "**/*.txt", ".git/c.txt", false },
	{ "**/*.txt", "a/.hidden/c.txt", false },
	{ "**/*.txt", "a/.c.txt", false },
	{ "**/.c.txt", "a/.c.txt", true },
	{ "out/**/*.txt", "out/a.txt", true },
	{ "out/**/*.txt", "out/x/y/a.txt", true },
	{ "out/**/*.txt", "other/a.txt", false },
	{ "out/**/*.txt", "out/x/y/a.log", false },
	{ "a/**", "a", true },
	{ "a/**", "a/b", true },
	{ "a/**", "a/b/c", true },
	{ "a/**", "b/c", false },
	{ ".git/**", ".git/x/y", true },
	{ "**/.git/*", "a/.git/c", true },
	{ "**/.git/*", "a/.git/.c", false },
	{ "**/**/**", "a/b", true },
	{ "**/**/**", "", true },
	{ "**/a/**/b/**", "x/a/y/b", true },
	{ "**/a/**/b/**", "x/a/y/c", false },
	{ "**/a/**/b", "a/b/a/b", true },
	{ "**/.d/**/z", ".d/.d/z", false },
	{ "**/.d/**/z", "x/.d/y/z", true },
	{ "a/**/b/**/c", "a/b/c", true },
	{ "a/**/**/c", "a/c", true },
	/* Absolute and relative. */
	{ "/abs/*", "/abs/x", true },
	{ "/abs/*", "abs/x", false },
	{ "abs/*", "/abs/x", false },
	{ "/", "/", true },
	/* No special meaning for . and .. here. */
	{ "a/../b", "b", false },
	{ ".*", "..", true },
};

TEST(match_table)
{
	size_t i;

	for (i = 0; i < sizeof match_cases / sizeof match_cases[0]; i++) {
		const struct match_case *c = &match_cases[i];

		if (bd_glob_match(c->pattern, c->path) != c->match)
			UNIT_FAIL("case %zu: match(<%s>, <%s>) is %s", i,
			    c->pattern, c->path, c->match ? "false" : "true");
	}
}

/* A string of n copies of unit followed by tail; caller frees. */
static char *
repeat(const char *unit, size_t n, const char *tail)
{
	size_t ul = strlen(unit), tl = strlen(tail), i;
	char *s = xmalloc(ul * n + tl + 1);

	for (i = 0; i < n; i++)
		memcpy(s + i * ul, unit, ul);
	memcpy(s + n * ul, tail, tl + 1);
	return s;
}

/* Seconds of CPU time used so far. */
static double
cpu_seconds(void)
{
	return (double)clock() / CLOCKS_PER_SEC;
}

TEST(match_no_blowup)
{
	double start = cpu_seconds();
	char *p, *s;

	/* Many stars against a long near-miss. */
	p = repeat("*a", 200, "*b");
	s = repeat("a", 4000, "");
	ASSERT(!bd_glob_match(p, s));
	free(p);
	free(s);

	/* Nested ** against a deep near-miss. */
	p = repeat("**/", 200, "x");
	s = repeat("a/", 2000, "y");
	ASSERT(!bd_glob_match(p, s));
	free(p);
	free(s);
	p = repeat("**/a/", 100, "**/x");
	s = repeat("a/", 2000, "x");
	ASSERT(bd_glob_match(p, s));
	free(p);
	free(s);

	/* Big sets tried at every position. */
	p = repeat("*[abcdefghijklmnopqrstuvwxyz]", 100, "!");
	s = repeat("z", 3000, "");
	ASSERT(!bd_glob_match(p, s));
	free(p);
	free(s);

	if (cpu_seconds() - start > 10)
		UNIT_FAIL("pathological patterns took %.1f s",
		    cpu_seconds() - start);
}

struct wild_case {
	const char *pattern;
	bool wild;
};

static const struct wild_case wild_cases[] = {
	{ "", false },
	{ "a/b.txt", false },
	{ "../stdout.txt", false },
	{ "/abs/path", false },
	{ "*.txt", true },
	{ "a?", true },
	{ "**", true },
	{ "out/**/x", true },
	{ "[abc]", true },
	{ "[a-b]", true },
	{ "[!a]", true },
	{ "[^a]", true },
	{ "abc[*]", false },
	{ "[?][[]", false },
	{ "[\xc3\xa9]", false },
	{ "a[", false },
	{ "[a/b]", false },
	{ "\\*", true },
};

TEST(has_wildcard)
{
	size_t i;

	for (i = 0; i < sizeof wild_cases / sizeof wild_cases[0]; i++) {
		const struct wild_case *c = &wild_cases[i];

		if (bd_glob_has_wildcard(c->pattern) != c->wild)
			UNIT_FAIL("case %zu: has_wildcard(<%s>) is %s", i,
			    c->pattern, c->wild ? "false" : "true");
	}
}

/* The test tree, made once by make_tree(). */
static char *root;	/* mkdtemp; plays the task directory */
static char *wd;	/* root/wd */

/* Create a file at root/rel (formatted). */
static void
mkfile(const char *fmt, ...)
{
	va_list ap;
	char *rel, *path;
	int fd;

	va_start(ap, fmt);
	rel = xvasprintf(fmt, ap);
	va_end(ap);
	path = xasprintf("%s/%s", root, rel);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd == -1)
		UNIT_FAIL("create %s: %s", path, strerror(errno));
	close(fd);
	free(path);
	free(rel);
}

/* Create the directory root/rel. */
static void
mkdir_rel(const char *rel)
{
	char *path = xasprintf("%s/%s", root, rel);

	if (mkdir(path, 0755) == -1)
		UNIT_FAIL("mkdir %s: %s", path, strerror(errno));
	free(path);
}

/* Create the symlink root/rel pointing at target. */
static void
mklink(const char *target, const char *rel)
{
	char *path = xasprintf("%s/%s", root, rel);

	if (symlink(target, path) == -1)
		UNIT_FAIL("symlink %s: %s", path, strerror(errno));
	free(path);
}

static void
make_tree(void)
{
	char tmpl[] = "/tmp/test_glob.XXXXXX";
	char *d;
	int i;

	if (mkdtemp(tmpl) == NULL)
		UNIT_FAIL("mkdtemp: %s", strerror(errno));
	root = xstrdup(tmpl);
	wd = xasprintf("%s/wd", root);

	mkfile("stdout.txt");
	mkfile("stderr.txt");
	mkfile("fileuploadout.txt");
	mkdir_rel("wd");
	mkfile("wd/a.txt");
	mkfile("wd/b.log");
	mkfile("wd/.hidden.txt");
	mkfile("wd/x.gif");
	mkfile("wd/.a.gif");
	mkfile("wd/abc*");
	mkfile("wd/abcd");
	mkfile("wd/\xc3\xa9.txt");
	mkdir_rel("wd/sub");
	mkfile("wd/sub/c.txt");
	mkdir_rel("wd/sub/deep");
	mkfile("wd/sub/deep/d.txt");
	mkfile("wd/sub/deep/e.log");
	mkdir_rel("wd/sub/.dotdir2");
	mkfile("wd/sub/.dotdir2/g.txt");
	mkdir_rel("wd/.dotdir");
	mkfile("wd/.dotdir/f.txt");
	mkdir_rel("wd/dir.txt");
	mkdir_rel("wd/out");
	mkdir_rel("wd/out/x");
	mkdir_rel("wd/out/x/y");
	mkfile("wd/out/x/y/z.txt");
	mklink("sub", "wd/dirlink");
	mklink("a.txt", "wd/filelink.txt");
	mklink("nowhere", "wd/dangling.txt");
	mklink("loopb.txt", "wd/loopa.txt");
	mklink("loopa.txt", "wd/loopb.txt");
	mkdir_rel("wd/loop");
	mklink("..", "wd/loop/up");
	mklink(".", "wd/loop/self");
	mklink("/", "wd/loop/root");

	/* A tree deeper than the default depth limit, outside wd. */
	mkdir_rel("deep");
	d = xstrdup("deep");
	for (i = 0; i < BD_GLOB_MAX_DEPTH + 2; i++) {
		char *next = xasprintf("%s/d", d);

		free(d);
		d = next;
		mkdir_rel(d);
	}
	mkfile("%s/bottom.txt", d);
	free(d);
}

static void
remove_tree(void)
{
	char *cmd = xasprintf("rm -rf '%s'", root);

	ASSERT_INT_EQ(system(cmd), 0);
	free(cmd);
	free(root);
	free(wd);
}

/*
 * Expand pattern from wd and check the base (relative to root, "" for
 * root itself) and the relative names, given as one space-separated
 * string in order.
 */
static void
check_expand(const char *pattern, const char *want_base, const char *want)
{
	struct bd_glob_result res;
	char *cause = NULL, *base, *got, *joined, *path;
	size_t i;
	int rc;

	rc = bd_glob_expand(pattern, wd, NULL, &res, &cause);
	if (rc != 0)
		UNIT_FAIL("expand <%s>: %s: %s", pattern, bd_strerror(rc),
		    cause);
	ASSERT_NULL(cause);
	base = want_base[0] == '\0' ? xstrdup(root) :
	    xasprintf("%s/%s", root, want_base);
	if (strcmp(res.base, base) != 0)
		UNIT_FAIL("expand <%s>: base <%s>, want <%s>", pattern,
		    res.base, base);
	got = xstrdup("");
	for (i = 0; i < res.count; i++) {
		joined = xasprintf("%s%s%s", got, i ? " " : "",
		    res.items[i].relative);
		free(got);
		got = joined;
		path = xasprintf("%s/%s", base, res.items[i].relative);
		ASSERT_STR_EQ(res.items[i].path, path);
		free(path);
	}
	if (strcmp(got, want) != 0)
		UNIT_FAIL("expand <%s>: <%s>, want <%s>", pattern, got, want);
	free(got);
	free(base);
	bd_glob_result_free(&res);
	ASSERT_INT_EQ(res.count, 0);
	ASSERT_NULL(res.items);
	ASSERT_NULL(res.base);
}

TEST(expand_wildcards)
{
	check_expand("*.txt", "wd", "a.txt filelink.txt \xc3\xa9.txt");
	check_expand("?.txt", "wd", "a.txt \xc3\xa9.txt");
	check_expand("*.gif", "wd", "x.gif");
	check_expand(".*.gif", "wd", ".a.gif");
	check_expand(".*", "wd", ".a.gif .hidden.txt");
	check_expand("abc*", "wd", "abc* abcd");
	check_expand("[ab]*.???", "wd", "a.txt b.log");
	check_expand("[!a]*.txt", "wd", "filelink.txt \xc3\xa9.txt");
	check_expand("*/*.txt", "wd", "sub/c.txt");
	check_expand("sub/*", "wd/sub", "c.txt");
	check_expand(".dotdir/*", "wd/.dotdir", "f.txt");
	check_expand("nothing*", "wd", "");
	check_expand("*.none", "wd", "");
}

TEST(expand_globstar)
{
	/* ** at the start. */
	check_expand("**/*.txt", "wd", "a.txt filelink.txt "
	    "out/x/y/z.txt sub/c.txt sub/deep/d.txt \xc3\xa9.txt");
	check_expand("**/d.txt", "wd", "sub/deep/d.txt");
	check_expand("**/.dotdir2/*", "wd", "sub/.dotdir2/g.txt");
	check_expand("**/.*", "wd", ".a.gif .hidden.txt");
	/* In the middle. */
	check_expand("out/**/*.txt", "wd/out", "x/y/z.txt");
	check_expand("sub/**/*.log", "wd/sub", "deep/e.log");
	check_expand("**/deep/**/*.log", "wd", "sub/deep/e.log");
	check_expand("out/**/y/*", "wd/out", "x/y/z.txt");
	/* At the end. */
	check_expand("sub/**", "wd/sub", "c.txt deep/d.txt deep/e.log");
	check_expand("out/**", "wd/out", "x/y/z.txt");
	/* Nested. */
	check_expand("**/**/**/z.txt", "wd", "out/x/y/z.txt");
	check_expand("sub/**/**", "wd/sub", "c.txt deep/d.txt deep/e.log");
	/* Into a dot directory only when asked. */
	check_expand(".dotdir/**", "wd/.dotdir", "f.txt");
}

TEST(expand_escapes_and_literals)
{
	check_expand("abc[*]", "wd", "abc*");
	check_expand("a.txt", "wd", "a.txt");
	check_expand("filelink.txt", "wd", "filelink.txt");
	check_expand("sub/deep/d.txt", "wd/sub/deep", "d.txt");
	check_expand(".hidden.txt", "wd", ".hidden.txt");
	check_expand("\xc3\xa9.txt", "wd", "\xc3\xa9.txt");
	check_expand("[a].txt", "wd", "a.txt");
	/* Not regular files, or not there. */
	check_expand("sub", "wd", "");
	check_expand("missing.txt", "wd", "");
	check_expand("dangling.txt", "wd", "");
	check_expand("loopa.txt", "wd", "");
	check_expand("a.txt/x", "wd/a.txt", "");
}

TEST(expand_dotdot)
{
	check_expand("../std*.txt", "", "stderr.txt stdout.txt");
	check_expand("../stdout.txt", "", "stdout.txt");
	check_expand("../*", "", "fileuploadout.txt stderr.txt stdout.txt");
	check_expand("./sub/../a.txt", "wd", "a.txt");
	check_expand("*/../a.txt", "wd", "a.txt");
	check_expand("sub/deep/../../../std*", "", "stderr.txt stdout.txt");
}

TEST(expand_symlinks)
{
	struct bd_glob_result res;
	size_t i;

	/* A link to a directory is never entered during the walk... */
	check_expand("dirlink/../a.txt", "wd", "a.txt");
	check_expand("*/c.txt", "wd", "sub/c.txt");
	check_expand("loop/*", "wd/loop", "");
	check_expand("loop/**", "wd/loop", "");
	/* ...but the literal base may go through one. */
	check_expand("dirlink/*.txt", "wd/dirlink", "c.txt");

	/* The loops and a link to / do not make the walk endless. */
	ASSERT_INT_EQ(bd_glob_expand("**", wd, NULL, &res, NULL), 0);
	for (i = 0; i < res.count; i++)
		ASSERT(strncmp(res.items[i].relative, "loop/", 5) != 0);
	bd_glob_result_free(&res);
}

TEST(expand_absolute)
{
	struct bd_glob_result res;
	char *pattern = xasprintf("%s/wd/sub/*.txt", root), *want;

	ASSERT_INT_EQ(bd_glob_expand(pattern, NULL, NULL, &res, NULL), 0);
	ASSERT_INT_EQ(res.count, 1);
	want = xasprintf("%s/wd/sub/c.txt", root);
	ASSERT_STR_EQ(res.items[0].path, want);
	ASSERT_STR_EQ(res.items[0].relative, "c.txt");
	free(want);
	want = xasprintf("%s/wd/sub", root);
	ASSERT_STR_EQ(res.base, want);
	free(want);
	bd_glob_result_free(&res);
	free(pattern);

	/* An absolute pattern ignores base_dir. */
	pattern = xasprintf("%s/std*.txt", root);
	ASSERT_INT_EQ(bd_glob_expand(pattern, "/nonexistent", NULL, &res,
	    NULL), 0);
	ASSERT_INT_EQ(res.count, 2);
	ASSERT_STR_EQ(res.items[0].relative, "stderr.txt");
	bd_glob_result_free(&res);
	free(pattern);

	/* A trailing slash on base_dir does not double up. */
	want = xasprintf("%s/", wd);
	ASSERT_INT_EQ(bd_glob_expand("sub/c.txt", want, NULL, &res, NULL), 0);
	ASSERT_INT_EQ(res.count, 1);
	free(want);
	want = xasprintf("%s/sub/c.txt", wd);
	ASSERT_STR_EQ(res.items[0].path, want);
	free(want);
	bd_glob_result_free(&res);

	/* `..` stops at the root. */
	ASSERT_INT_EQ(bd_glob_expand("../../../../../../../../../..//tmp/../tmp",
	    wd, NULL, &res, NULL), 0);
	ASSERT_STR_EQ(res.base, "/");
	ASSERT_INT_EQ(res.count, 0);
	bd_glob_result_free(&res);

	/* The root as a base. */
	ASSERT_INT_EQ(bd_glob_expand("/", NULL, NULL, &res, NULL), 0);
	ASSERT_STR_EQ(res.base, "/");
	ASSERT_INT_EQ(res.count, 0);
	bd_glob_result_free(&res);
}

TEST(expand_missing_base)
{
	check_expand("nodir/*.txt", "wd/nodir", "");
	check_expand("nodir/**/x", "wd/nodir", "");
	check_expand("a.txt/*", "wd/a.txt", "");
}

TEST(expand_limits)
{
	struct bd_glob_result res;
	struct bd_glob_limits lim = { 0, 0 };
	char *cause = NULL, *deep;
	int rc;

	lim.max_matches = 2;
	rc = bd_glob_expand("**/*.txt", wd, &lim, &res, &cause);
	ASSERT_INT_EQ(rc, BD_ETOOBIG);
	ASSERT_STR_EQ(cause, "more than 2 files match");
	ASSERT_INT_EQ(res.count, 0);
	ASSERT_NULL(res.items);
	ASSERT_NULL(res.base);
	free(cause);
	cause = NULL;
	lim.max_matches = 6;
	ASSERT_INT_EQ(bd_glob_expand("**/*.txt", wd, &lim, &res, &cause), 0);
	ASSERT_INT_EQ(res.count, 6);
	bd_glob_result_free(&res);

	/* out/x/y is three levels below wd. */
	lim.max_matches = 0;
	lim.max_depth = 2;
	rc = bd_glob_expand("**/*.txt", wd, &lim, &res, &cause);
	ASSERT_INT_EQ(rc, BD_ETOOBIG);
	ASSERT_STR_CONTAINS(cause, "more than 2 levels below");
	free(cause);
	cause = NULL;
	lim.max_depth = 3;
	ASSERT_INT_EQ(bd_glob_expand("**/*.txt", wd, &lim, &res, &cause), 0);
	ASSERT_INT_EQ(res.count, 6);
	bd_glob_result_free(&res);
	/* A pattern that does not need to go deep does not hit the limit. */
	lim.max_depth = 1;
	ASSERT_INT_EQ(bd_glob_expand("*/*.txt", wd, &lim, &res, &cause), 0);
	ASSERT_INT_EQ(res.count, 1);
	bd_glob_result_free(&res);

	/* The default depth limit. */
	deep = xasprintf("%s/deep", root);
	rc = bd_glob_expand("**/bottom.txt", deep, NULL, &res, &cause);
	ASSERT_INT_EQ(rc, BD_ETOOBIG);
	ASSERT_STR_CONTAINS(cause, "levels below");
	free(cause);
	cause = NULL;
	lim.max_depth = BD_GLOB_MAX_DEPTH + 2;
	ASSERT_INT_EQ(bd_glob_expand("**/bottom.txt", deep, &lim, &res,
	    &cause), 0);
	ASSERT_INT_EQ(res.count, 1);
	bd_glob_result_free(&res);
	free(deep);
}

TEST(expand_errors)
{
	struct bd_glob_result res;
	char *cause = NULL, *big;

	ASSERT_INT_EQ(bd_glob_expand("", wd, NULL, &res, &cause), -EINVAL);
	ASSERT_STR_EQ(cause, "empty file pattern");
	free(cause);
	cause = NULL;
	ASSERT_INT_EQ(bd_glob_expand("*.txt", "relative/dir", NULL, &res,
	    &cause), -EINVAL);
	ASSERT_STR_CONTAINS(cause, "absolute base directory");
	free(cause);
	cause = NULL;
	ASSERT_INT_EQ(bd_glob_expand("*.txt", NULL, NULL, &res, NULL),
	    -EINVAL);
	ASSERT_NULL(res.base);

	big = repeat("a", BD_GLOB_PATTERN_MAX + 1, "");
	ASSERT_INT_EQ(bd_glob_expand(big, wd, NULL, &res, &cause),
	    BD_ETOOBIG);
	ASSERT_STR_CONTAINS(cause, "longer than");
	free(cause);
	free(big);
}

TEST(expand_unreadable)
{
	struct bd_glob_result res;
	char *dir, *cause = NULL;
	int rc;

	if (geteuid() == 0) {
		fprintf(stderr, "skipped: root reads everything\n");
		return;
	}
	dir = xasprintf("%s/locked", root);
	ASSERT_INT_EQ(mkdir(dir, 0), 0);
	rc = bd_glob_expand("locked/*", root, NULL, &res, &cause);
	ASSERT_INT_EQ(rc, -EACCES);
	ASSERT_STR_CONTAINS(cause, "cannot open directory");
	free(cause);
	ASSERT_INT_EQ(rmdir(dir), 0);
	free(dir);
}

int
main(void)
{
	RUN(match_table);
	RUN(match_no_blowup);
	RUN(has_wildcard);
	make_tree();
	RUN(expand_wildcards);
	RUN(expand_globstar);
	RUN(expand_escapes_and_literals);
	RUN(expand_dotdot);
	RUN(expand_symlinks);
	RUN(expand_absolute);
	RUN(expand_missing_base);
	RUN(expand_limits);
	RUN(expand_errors);
	RUN(expand_unreadable);
	remove_tree();
	return 0;
}
