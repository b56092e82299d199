/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "fsutil.h"
#include "unit.h"
#include "xmalloc.h"

static char *
tmpdir(void)
{
	char *d = xstrdup("/tmp/bd-fsutil-XXXXXX");

	ASSERT_NOT_NULL(mkdtemp(d));
	return d;
}

static void
touch(const char *dir, const char *name, const char *data)
{
	char *p = bd_path_join(dir, name);

	ASSERT_INT_EQ(bd_write_file_atomic(p, data, strlen(data), 0644), 0);
	free(p);
}

TEST(normalize)
{
	static const char *const cases[][2] = {
		{ "a/b/../c", "a/c" }, { "./a//b/", "a/b" }, { "a/../..", ".." },
		{ "a/../../x", "../x" }, { "/../x", "/x" }, { "", "." },
		{ ".", "." }, { "/", "/" }, { "../../a/./b", "../../a/b" },
		{ "/a/b/../../..", "/" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *n = bd_path_normalize(cases[i][0]);
		ASSERT_STR_EQ(n, cases[i][1]);
		free(n);
	}
}

TEST(stays_inside)
{
	ASSERT(bd_path_stays_inside("a/b"));
	ASSERT(bd_path_stays_inside("a/../b"));
	ASSERT(bd_path_stays_inside("."));
	ASSERT(!bd_path_stays_inside(".."));
	ASSERT(!bd_path_stays_inside("a/../../b"));
	ASSERT(!bd_path_stays_inside("/etc/passwd"));
	ASSERT(!bd_path_stays_inside("../x"));
}

TEST(rm_rf_keeps_symlink_targets)
{
	char *d = tmpdir(), *outside = tmpdir();
	char *sub = bd_path_join(d, "x/y/z"), *link = bd_path_join(d, "x/link");

	ASSERT_INT_EQ(bd_mkdir_p(sub, 0755), 0);
	touch(sub, "f", "data");
	touch(outside, "precious", "keep me");
	ASSERT_INT_EQ(symlink(outside, link), 0);
	ASSERT_INT_EQ(bd_rm_rf(d), 0);
	ASSERT(access(d, F_OK) == -1 && errno == ENOENT);
	char *p = bd_path_join(outside, "precious");
	ASSERT_INT_EQ(access(p, F_OK), 0);
	ASSERT_INT_EQ(bd_rm_rf(outside), 0);
	ASSERT_INT_EQ(bd_rm_rf(outside), 0); /* missing is fine */
	free(p);
	free(sub);
	free(link);
	free(d);
	free(outside);
}

TEST(empty_dir)
{
	char *d = tmpdir(), *sub = bd_path_join(d, "a/b");

	ASSERT_INT_EQ(bd_mkdir_p(sub, 0755), 0);
	touch(d, "f", "1");
	touch(sub, ".hidden", "2");
	ASSERT_INT_EQ(bd_empty_dir(d), 0);
	ASSERT_INT_EQ(access(d, F_OK), 0);
	char *f = bd_path_join(d, "a");
	ASSERT(access(f, F_OK) == -1);
	free(f);
	ASSERT_INT_EQ(bd_rm_rf(d), 0);
	free(sub);
	free(d);
}

TEST(read_and_copy)
{
	char *d = tmpdir(), *src = bd_path_join(d, "src"),
	    *dst = bd_path_join(d, "sub/dst");
	char *data;
	size_t len;
	int64_t copied;
	struct stat st;

	touch(d, "src", "hello world");
	ASSERT_INT_EQ(bd_read_file(src, 100, &data, &len), 0);
	ASSERT_INT_EQ(len, 11);
	ASSERT_STR_EQ(data, "hello world");
	free(data);
	ASSERT_INT_EQ(bd_read_file(src, 5, &data, &len), BD_ETOOBIG);
	ASSERT_NULL(data);
	ASSERT_INT_EQ(bd_read_file(d, 5, &data, &len), -EISDIR);
	/* The destination directory must exist: copy reports it. */
	ASSERT_INT_EQ(bd_copy_file(src, dst, 0600, &copied), -ENOENT);
	char *sub = bd_path_join(d, "sub");
	ASSERT_INT_EQ(bd_mkdir_p(sub, 0755), 0);
	ASSERT_INT_EQ(bd_copy_file(src, dst, 0600, &copied), 0);
	ASSERT_INT_EQ(copied, 11);
	ASSERT_INT_EQ(stat(dst, &st), 0);
	ASSERT_INT_EQ(st.st_mode & 07777, 0600);
	ASSERT_INT_EQ(bd_read_file(dst, 100, &data, &len), 0);
	ASSERT_STR_EQ(data, "hello world");
	free(data);
	ASSERT_INT_EQ(bd_copy_file(d, dst, 0600, NULL), -EISDIR);
	ASSERT_INT_EQ(bd_rm_rf(d), 0);
	free(sub);
	free(src);
	free(dst);
	free(d);
}

TEST(write_replace)
{
	char *d = tmpdir(), *p = bd_path_join(d, "f"), *data;
	size_t len;
	DIR *dir;
	struct dirent *de;
	int n = 0;

	ASSERT_INT_EQ(bd_write_file_replace(p, "one", 3, 0600), 0);
	ASSERT_INT_EQ(bd_write_file_replace(p, "two!", 4, 0600), 0);
	ASSERT_INT_EQ(bd_read_file(p, 100, &data, &len), 0);
	ASSERT_STR_EQ(data, "two!");
	free(data);
	/* No temporary file is left behind. */
	ASSERT_NOT_NULL(dir = opendir(d));
	while ((de = readdir(dir)) != NULL)
		n += de->d_name[0] != '.';
	closedir(dir);
	ASSERT_INT_EQ(n, 1);
	ASSERT_INT_EQ(bd_rm_rf(d), 0);
	free(p);
	free(d);
}

TEST(join_and_dirname)
{
	char *p;

	p = bd_path_join("/a/", "b");
	ASSERT_STR_EQ(p, "/a/b");
	free(p);
	p = bd_path_join("/a", "/abs");
	ASSERT_STR_EQ(p, "/abs");
	free(p);
	p = bd_path_dirname("/a/b/c");
	ASSERT_STR_EQ(p, "/a/b");
	free(p);
	p = bd_path_dirname("c");
	ASSERT_STR_EQ(p, ".");
	free(p);
	p = bd_path_dirname("/c");
	ASSERT_STR_EQ(p, "/");
	free(p);
}

int
main(void)
{
	RUN(normalize);
	RUN(stays_inside);
	RUN(rm_rf_keeps_symlink_targets);
	RUN(empty_dir);
	RUN(read_and_copy);
	RUN(write_replace);
	RUN(join_and_dirname);
	return 0;
}
