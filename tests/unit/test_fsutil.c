/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "error.h"
#include "fsutil.h"
#include "unit.h"
#include "xmalloc.h"
#include "ext4_support.h"

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

TEST(mkdir_p)
{
	char *d = tmpdir();
	char *deep = bd_path_join(d, "a/b//c/d/"), *c = bd_path_join(d, "a/b/c");
	char *file = bd_path_join(d, "f"), *under = bd_path_join(d, "f/x");
	char *sib = bd_path_join(d, "a/b/e"), *link = bd_path_join(d, "l");
	struct stat st;

	ASSERT_INT_EQ(bd_mkdir_p(deep, 0750), 0);
	ASSERT_INT_EQ(stat(c, &st), 0);
	ASSERT(S_ISDIR(st.st_mode));
	ASSERT_INT_EQ(stat(deep, &st), 0);
	ASSERT(S_ISDIR(st.st_mode));
	ASSERT_INT_EQ(bd_mkdir_p(deep, 0750), 0);	/* there: fine */
	ASSERT_INT_EQ(bd_mkdir_p(sib, 0750), 0);	/* beside it */
	ASSERT_INT_EQ(stat(sib, &st), 0);
	ASSERT_INT_EQ(bd_mkdir_p("/", 0755), 0);
	ASSERT_INT_EQ(bd_mkdir_p("", 0755), -ENOENT);
	ASSERT(bd_mkdir_p("/proc/nonexistent/x", 0755) < 0);
	touch(d, "f", "x");
	ASSERT_INT_EQ(bd_mkdir_p(file, 0755), -ENOTDIR);
	ASSERT_INT_EQ(bd_mkdir_p(under, 0755), -ENOTDIR);
	ASSERT_INT_EQ(symlink(c, link), 0);
	ASSERT_INT_EQ(bd_mkdir_p(link, 0755), 0);	/* a link to a dir */
	ASSERT_INT_EQ(bd_rm_rf(d), 0);
	free(d);
	free(deep);
	free(c);
	free(file);
	free(under);
	free(sib);
	free(link);
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

/* What a walk saw: "+name" on enter, "-name" on leave, in order. */
struct walk_log {
	char text[512];
	int fail_enter_on;	/* enter of "bad" returns this, 0: never */
};

static int
walk_enter(int dfd, const char *name, unsigned char d_type, void *arg)
{
	struct walk_log *w = arg;
	struct stat st;

	(void)d_type;
	snprintf(w->text + strlen(w->text), sizeof(w->text) - strlen(w->text),
	    "+%s ", name);
	if (strcmp(name, "bad") == 0 && w->fail_enter_on != 0)
		return w->fail_enter_on;
	ASSERT_INT_EQ(fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW), 0);
	/* Asked to go into everything: a symlink must still not be. */
	return 1;
}

static int
walk_leave(int dfd, const char *name, void *arg)
{
	struct walk_log *w = arg;

	(void)dfd;
	snprintf(w->text + strlen(w->text), sizeof(w->text) - strlen(w->text),
	    "-%s ", name);
	return 0;
}

static int
walk_open(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	ASSERT(fd >= 0);
	return fd;
}

TEST(walk_tree)
{
	static const struct bd_walk_ops ops = {
		.enter = walk_enter, .leave = walk_leave,
	};
	static const struct bd_walk_ops enter_only = { .enter = walk_enter };
	char *d = tmpdir(), *outside = tmpdir();
	char *sub = bd_path_join(d, "a/b"), *link = bd_path_join(d, "a/link");
	char *bad = bd_path_join(d, "bad");
	struct walk_log w = { "", 0 };

	ASSERT_INT_EQ(bd_mkdir_p(sub, 0755), 0);
	touch(sub, "f", "1");
	touch(outside, "secret", "2");
	ASSERT_INT_EQ(symlink(outside, link), 0);
	/* Depth first, leave after the entries; the symlink to a directory
	 * and the file are entered but never walked into (no "-link", no
	 * "+secret"), and a file that cannot be walked into is an error. */
	int rc = bd_walk_tree(walk_open(d), &ops, &w);
	ASSERT(rc == -ENOTDIR || rc == -ELOOP);
	ASSERT(strstr(w.text, "+a ") != NULL);
	ASSERT(strstr(w.text, "+b +f -b ") != NULL);
	ASSERT(strstr(w.text, "+link ") != NULL);
	ASSERT(strstr(w.text, "-link") == NULL);
	ASSERT(strstr(w.text, "secret") == NULL);
	ASSERT(strstr(w.text, "-a ") > strstr(w.text, "-b "));

	/* An error from enter is returned; the walk still goes on. */
	ASSERT_INT_EQ(bd_rm_rf(link), 0);
	char *f = bd_path_join(sub, "f");
	ASSERT_INT_EQ(unlink(f), 0);
	free(f);
	ASSERT_INT_EQ(bd_mkdir_p(bad, 0755), 0);
	memset(&w, 0, sizeof(w));
	w.fail_enter_on = -EACCES;
	ASSERT_INT_EQ(bd_walk_tree(walk_open(d), &enter_only, &w), -EACCES);
	ASSERT(strstr(w.text, "+bad ") != NULL && strstr(w.text, "+b ") != NULL);
	/* ENOENT (gone meanwhile) is no error. */
	memset(&w, 0, sizeof(w));
	w.fail_enter_on = -ENOENT;
	ASSERT_INT_EQ(bd_walk_tree(walk_open(d), &enter_only, &w), 0);

	ASSERT_INT_EQ(bd_rm_rf(d), 0);
	ASSERT_INT_EQ(bd_rm_rf(outside), 0);
	free(bad);
	free(link);
	free(sub);
	free(d);
	free(outside);
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

/* All of a buffer, through short writes; errors as -errno. */
TEST(write_all)
{
	static char big[256 * 1024];
	char buf[64];
	int p[2];
	pid_t child;

	ASSERT_INT_EQ(pipe(p), 0);
	/* More than a pipe holds: the writes come back short while the
	 * reader drains it. */
	if ((child = fork()) == 0) {
		size_t got = 0;
		ssize_t n;

		close(p[1]);
		while ((n = read(p[0], big, sizeof(big))) > 0)
			got += (size_t)n;
		_exit(got == sizeof(big) ? 0 : 1);
	}
	close(p[0]);
	memset(big, 'x', sizeof(big));
	ASSERT_INT_EQ(bd_write_all(p[1], big, sizeof(big)), 0);
	close(p[1]);
	{
		int status;

		ASSERT_INT_EQ(waitpid(child, &status, 0), child);
		ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	/* No reader: EPIPE (SIGPIPE ignored, as in the supervisor). */
	ASSERT_INT_EQ(pipe(p), 0);
	close(p[0]);
	signal(SIGPIPE, SIG_IGN);
	ASSERT_INT_EQ(bd_write_all(p[1], "x", 1), -EPIPE);
	signal(SIGPIPE, SIG_DFL);
	close(p[1]);
	ASSERT_INT_EQ(bd_write_all(-1, "x", 1), -EBADF);
	ASSERT_INT_EQ(bd_write_all(-1, buf, 0), 0);
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

/* What dir's file system is: an fsync there commits earlier renames (1),
 * an ext4 without a journal (2), neither (0). */
static int
fs_kind(const char *dir)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	int r;

	ASSERT(dfd >= 0);
	r = bd_fs_fsync_commits_renames(dfd) ? 1 : 0;
	if (bd_fs_ext4_without_journal(dfd))
		r |= 2;
	close(dfd);
	return r;
}

/*
 * Only ext4 with a journal in data=ordered or data=journal mode, with
 * barriers, commits earlier renames with an fsync and flushes the disk's
 * cache first; tmpfs, /proc and every other ext4 set-up say no.  Only the
 * ext4 made without a journal says it has none.
 */
TEST(ext4_journal_modes)
{
	static const struct {
		const char *mkfs, *mount;
		int kind;
	} cases[] = {
		{ "", "", 1 },
		{ "", "data=journal", 1 },
		{ "", "data=writeback", 0 },
		{ "", "noauto_da_alloc", 1 },
		{ "", "nobarrier", 0 },
		{ "-O ^has_journal", "", 2 },
		/* Before Linux 6.5 a fast commit left other changes out. */
		{ "-O fast_commit", "", 0 },
	};
	char *dir = tmpdir(), *mnt;

	ASSERT_INT_EQ(fs_kind("/proc"), 0);
	if (geteuid() == 0) {
		char *t = xasprintf("%s/tmpfs", dir);

		ASSERT_INT_EQ(mkdir(t, 0700), 0);
		ASSERT_INT_EQ(mount("tmpfs", t, "tmpfs", 0, "size=1m"), 0);
		ASSERT_INT_EQ(fs_kind(t), 0);
		ext4_unmount(t);
		free(t);
	}
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if ((mnt = ext4_mount(dir, cases[i].mkfs, cases[i].mount)) ==
		    NULL)
			continue;
		if (fs_kind(mnt) != cases[i].kind)
			UNIT_FAIL("ext4 %s, mounted %s: %d, expected %d",
			    cases[i].mkfs, cases[i].mount, fs_kind(mnt),
			    cases[i].kind);
		ext4_unmount(mnt);
		free(mnt);
	}
	bd_rm_rf(dir);
	free(dir);
}

int
main(void)
{
	RUN(normalize);
	RUN(stays_inside);
	RUN(mkdir_p);
	RUN(rm_rf_keeps_symlink_targets);
	RUN(empty_dir);
	RUN(walk_tree);
	RUN(read_and_copy);
	RUN(write_all);
	RUN(write_replace);
	RUN(join_and_dirname);
	RUN(ext4_journal_modes);
	return 0;
}
