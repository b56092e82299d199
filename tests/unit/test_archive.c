/* SPDX-License-Identifier: MIT */
/*
 * Tests of common/archive: real archives made at test time by
 * tests/lib/make_archives.py, unpacked into real directories.  The good
 * package in each format must come out whole, with its modes (less
 * set-uid, set-gid and sticky), links and empty files; each hostile one
 * must be refused with its reason and leave nothing outside its
 * destination.  Destinations sit three levels below the scratch directory
 * so that an escape by "../.." would land where the test looks for it.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "archive.h"
#include "error.h"
#include "fsutil.h"
#include "unit.h"
#include "xmalloc.h"

static char scratch[] = "/tmp/batchd-test-archive.XXXXXX";
static char corpus[1024];
static char dest[1024];
static int ndest;

/* Makes the corpus with the generator from tests/lib. */
static void
setup(void)
{
	const char *lib = getenv("BATCHD_TEST_LIB");
	char *cmd;

	if (lib == NULL)
		UNIT_FAIL("BATCHD_TEST_LIB is not set (run through meson test)");
	if (mkdtemp(scratch) == NULL)
		UNIT_FAIL("mkdtemp: %s", strerror(errno));
	snprintf(corpus, sizeof(corpus), "%s/corpus", scratch);
	cmd = xasprintf("python3 '%s/make_archives.py' '%s'", lib, corpus);
	ASSERT_INT_EQ(system(cmd), 0);
	free(cmd);
}

/* Unpacks the corpus file name into a new dest with the given limits. */
static int
extract(const char *name, uint64_t max_bytes, uint64_t max_entries,
    struct bd_archive_result *res, char **cause)
{
	struct bd_archive_limits lim = { .max_bytes = max_bytes,
	    .max_entries = max_entries };
	char *path = xasprintf("%s/%s", corpus, name);
	int rc;

	snprintf(dest, sizeof(dest), "%s/out%d/x/y/dest", scratch, ++ndest);
	ASSERT_INT_EQ(bd_mkdir_p(dest, 0755), 0);
	rc = bd_archive_extract(path, dest, &lim, res, cause);
	free(path);
	return rc;
}

/* dest/rel, for the checks below (static buffer). */
static const char *
at(const char *rel)
{
	static char buf[PATH_MAX];

	snprintf(buf, sizeof(buf), "%s/%s", dest, rel);
	return buf;
}

/* The permission bits (with set-id and sticky) of dest/rel. */
static unsigned
mode_of(const char *rel)
{
	struct stat st;

	if (lstat(at(rel), &st) < 0)
		UNIT_FAIL("lstat %s: %s", at(rel), strerror(errno));
	return st.st_mode & 07777;
}

static bool
exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* The contents of dest/rel (caller frees). */
static char *
contents(const char *rel)
{
	char *data;
	size_t len;

	ASSERT_INT_EQ(bd_read_file(at(rel), 1 << 20, &data, &len), 0);
	return data;
}

/* The target of the symlink dest/rel (static buffer). */
static const char *
link_of(const char *rel)
{
	static char buf[PATH_MAX];
	ssize_t n = readlink(at(rel), buf, sizeof(buf) - 1);

	if (n < 0)
		UNIT_FAIL("readlink %s: %s", at(rel), strerror(errno));
	buf[n] = '\0';
	return buf;
}

/* Nothing may appear outside the current dest after a refusal. */
static void
assert_nothing_escaped(void)
{
	char *p;

	ASSERT(!exists("/tmp/batchd-archive-evil"));
	for (int up = 1; up <= 4; up++) {
		char rel[64] = "";

		for (int i = 0; i < up; i++)
			strcat(rel, "../");
		strcat(rel, "evil");
		p = xasprintf("%s/%s", dest, rel);
		ASSERT(!exists(p));
		free(p);
	}
}

/* The good package as every format unpacks it. */
static void
check_good(const char *name, bool tar)
{
	struct bd_archive_result res;
	char *cause = NULL, *s;
	struct stat st, st2;

	ASSERT_INT_EQ(extract(name, 0, 0, &res, &cause), 0);
	ASSERT_NULL(cause);
	ASSERT_INT_EQ(res.entries, tar ? 20 : 19);
	ASSERT_INT_EQ(res.bytes, 21 + 1 + 1 + 4000 + 14 + 5 + 300 * 1024 + 6 +
	    7);

	ASSERT_INT_EQ(mode_of("app"), 0750);
	ASSERT_INT_EQ(mode_of("app/bin"), 0755);
	ASSERT_INT_EQ(mode_of("app/bin/run"), 0755);
	s = contents("app/bin/run");
	ASSERT_STR_EQ(s, "#!/bin/sh\necho hello\n");
	free(s);
	/* Set-uid, set-gid and sticky are gone. */
	ASSERT_INT_EQ(mode_of("app/bin/setuid"), 0755);
	ASSERT_INT_EQ(mode_of("app/bin/setgid"), 0711);
	ASSERT_INT_EQ(mode_of("app/tmp"), 0777);
	/* Empty files, read-only directories that still got their file. */
	ASSERT_INT_EQ(lstat(at("app/empty"), &st), 0);
	ASSERT(S_ISREG(st.st_mode));
	ASSERT_INT_EQ(st.st_size, 0);
	ASSERT_INT_EQ(mode_of("app/empty"), 0600);
	ASSERT_INT_EQ(mode_of("app/ro"), 0555);
	ASSERT_INT_EQ(mode_of("app/ro/file"), 0444);
	ASSERT_INT_EQ(mode_of("app/shut"), 0600);
	ASSERT_INT_EQ(mode_of("app/shut/sub"), 0755);
	/* In-tree symlinks, followed here by the kernel to check them. */
	ASSERT_STR_EQ(link_of("app/lib/libx.so"), "libx.so.1");
	ASSERT_STR_EQ(link_of("app/bin/lib"), "../lib");
	ASSERT_STR_EQ(link_of("app/top"), "../app/./bin");
	ASSERT_INT_EQ(stat(at("app/bin/lib/libx.so"), &st), 0);
	ASSERT_INT_EQ(st.st_size, 4000);
	ASSERT_INT_EQ(stat(at("app/top/run"), &st), 0);
	/* Nested directories that no entry lists. */
	s = contents("app/a/b/c/d/deep.txt");
	ASSERT_STR_EQ(s, "deep\n");
	free(s);
	ASSERT_INT_EQ(mode_of("app/a/b/c"), 0755);
	ASSERT_INT_EQ(lstat(at("app/big"), &st), 0);
	ASSERT_INT_EQ(st.st_size, 300 * 1024);
	/* A later entry of the same name wins. */
	s = contents("app/dup");
	ASSERT_STR_EQ(s, "second\n");
	free(s);
	if (tar) {
		ASSERT_INT_EQ(lstat(at("app/hard"), &st), 0);
		ASSERT_INT_EQ(lstat(at("app/bin/run"), &st2), 0);
		ASSERT_INT_EQ(st.st_ino, st2.st_ino);
		ASSERT_INT_EQ(st.st_nlink, 2);
		ASSERT_INT_EQ(st.st_mtime, 1700000000);
	}
}

TEST(good_zip) { check_good("good.zip", false); }
TEST(good_tar_gz) { check_good("good.tar.gz", true); }
TEST(good_tar_xz) { check_good("good.tar.xz", true); }
TEST(good_tar_bz2) { check_good("good.tar.bz2", true); }

TEST(good_tar_zst)
{
	char *p = xasprintf("%s/good.tar.zst", corpus);

	/* make_archives.py needs the zstd program for this one. */
	if (!exists(p))
		fprintf(stderr, "skipped: no zstd program to make %s\n", p);
	else
		check_good("good.tar.zst", true);
	free(p);
}

/* Unpacks name and expects err with because in the cause. */
static void
check_refused(const char *name, int err, const char *because)
{
	struct bd_archive_result res;
	char *cause = NULL;
	int rc;

	fprintf(stderr, "   %s\n", name);
	rc = extract(name, 10 << 20, 1000, &res, &cause);
	if (rc != err)
		UNIT_FAIL("%s: %d (%s) != %d (%s)", name, rc, cause ? cause : "",
		    err, because);
	ASSERT_STR_CONTAINS(cause, because);
	free(cause);
	assert_nothing_escaped();
}

TEST(refuses_escapes)
{
	check_refused("slip.zip", BD_EESCAPE,
	    "entry \"../../evil\": path leaves the package");
	check_refused("slip-backslash.zip", BD_EESCAPE,
	    "entry \"../../evil\": path leaves the package");
	check_refused("slip.tar.gz", BD_EESCAPE,
	    "entry \"a/../../../evil\": path leaves the package");
	check_refused("absolute.zip", BD_EESCAPE,
	    "entry \"/tmp/batchd-archive-evil\": path is absolute");
	check_refused("absolute.tar.gz", BD_EESCAPE, "path is absolute");
	check_refused("symlink-abs.tar.gz", BD_EESCAPE,
	    "entry \"etc\": symlink to \"/etc\" is absolute");
	check_refused("symlink-up.tar.gz", BD_EESCAPE,
	    "entry \"a/up\": symlink to \"../../evil\" leaves the package");
	check_refused("symlink-up.zip", BD_EESCAPE,
	    "symlink to \"../evil\" leaves the package");
	/* "here" -> "." makes "here/.." the parent of dest. */
	check_refused("symlink-via-link.tar.gz", BD_EESCAPE,
	    "entry \"sneak\": symlink to \"here/../evil\" has \"..\" after a "
	    "name");
	check_refused("write-through-link.tar.gz", BD_EESCAPE,
	    "entry \"link/file\": path goes through a symlink");
	ASSERT(!exists(at("real/file")));
	check_refused("hardlink-out.tar.gz", BD_EESCAPE,
	    "entry \"h\": hard link target \"../../../etc/passwd\" leaves the "
	    "package");
	check_refused("hardlink-abs.tar.gz", BD_EESCAPE,
	    "hard link target \"/etc/passwd\" is absolute");
	check_refused("hardlink-later.tar.gz", BD_EESCAPE,
	    "entry \"h\": hard link to \"later\", which is not an earlier");
	/* A symlink moved by a hard link would point elsewhere. */
	check_refused("hardlink-symlink.tar.gz", BD_EESCAPE,
	    "entry \"top\": hard link to \"a/b/l\", which is not an earlier "
	    "regular file");
}

TEST(refuses_special_files)
{
	check_refused("device.tar.gz", BD_EESCAPE,
	    "entry \"null\": is a device node");
	check_refused("block.tar.gz", BD_EESCAPE,
	    "entry \"sda\": is a device node");
	check_refused("fifo.tar.gz", BD_EESCAPE, "entry \"pipe\": is a FIFO");
}

TEST(zip_fifo_is_not_made)
{
	struct bd_archive_result res;
	char *cause = NULL;
	struct stat st;
	int rc;

	/* libarchive reads a zip's FIFO mode as a regular file. */
	rc = extract("fifo.zip", 0, 0, &res, &cause);
	if (rc == 0) {
		ASSERT_INT_EQ(lstat(at("pipe"), &st), 0);
		ASSERT(S_ISREG(st.st_mode));
	} else
		ASSERT_INT_EQ(rc, BD_EESCAPE);
	free(cause);
}

/* A bomb stops at max_bytes, with no more than that on disk. */
static void
check_bomb(const char *name)
{
	struct bd_archive_result res;
	char *cause = NULL;
	struct stat st;

	fprintf(stderr, "   %s\n", name);
	ASSERT_INT_EQ(extract(name, 10 << 20, 0, &res, &cause), BD_ETOOBIG);
	ASSERT_STR_CONTAINS(cause, "entry \"zeros\": the package unpacks to "
	    "more than 10485760 bytes");
	ASSERT(res.bytes <= 10 << 20);
	ASSERT_INT_EQ(res.entries, 0);
	if (lstat(at("zeros"), &st) == 0)
		ASSERT(st.st_size <= 10 << 20);
	free(cause);
}

TEST(bombs)
{
	check_bomb("bomb.zip");
	check_bomb("bomb.tar.gz");
	/* Headers that say 1 KiB: only the count while writing stops it. */
	check_bomb("bomb-lies.zip");
}

TEST(entry_limit)
{
	struct bd_archive_result res;
	char *cause = NULL;

	ASSERT_INT_EQ(extract("many.tar.gz", 0, 1000, &res, &cause),
	    BD_ETOOBIG);
	ASSERT_STR_CONTAINS(cause,
	    "entry \"f001000\": the package has more than 1000 entries");
	ASSERT_INT_EQ(res.entries, 1000);
	ASSERT(!exists(at("f001000")));
	free(cause);
	/* Exactly at the limit is fine: implied_directories_count. */
}

TEST(implied_directories_count)
{
	struct bd_archive_result res;
	char *cause = NULL;

	/* good.zip: 19 entries, and app/lib, app/a, app/a/b, app/a/b/c and
	 * app/a/b/c/d that no entry lists. */
	ASSERT_INT_EQ(extract("good.zip", 0, 24, &res, &cause), 0);
	ASSERT_NULL(cause);
	ASSERT_INT_EQ(res.entries, 19);
	ASSERT_INT_EQ(extract("good.zip", 0, 23, &res, &cause), BD_ETOOBIG);
	ASSERT_STR_CONTAINS(cause, "the package has more than 23 entries and "
	    "directories its paths imply");
	free(cause);
}

/* Whether libarchive is mapped into this process. */
static bool
libarchive_mapped(void)
{
	char *maps;
	size_t len;
	bool mapped;

	ASSERT_INT_EQ(bd_read_file("/proc/self/maps", 16 << 20, &maps, &len),
	    0);
	mapped = strstr(maps, "libarchive.so") != NULL;
	free(maps);
	return mapped;
}

/* One extraction of good.tar.xz on a thread of its own. */
static void *
extract_thread(void *arg)
{
	const char *into = arg;
	char *path = xasprintf("%s/good.tar.xz", corpus), *cause = NULL;
	struct bd_archive_result res;
	intptr_t rc;

	rc = bd_archive_extract(path, into, NULL, &res, &cause);
	if (rc == 0 && res.entries != 20)
		rc = -1;
	free(cause);
	free(path);
	return (void *)rc;
}

TEST(threads)
{
	pthread_t t[4];
	char *into[4];
	void *rc;

	/* Not linked: loaded by the first extraction, below. */
	ASSERT(!libarchive_mapped());
	/* Extraction runs on the thread pool; the first use loads
	 * libarchive from whichever thread comes first. */
	for (int i = 0; i < 4; i++) {
		into[i] = xasprintf("%s/thread%d", scratch, i);
		ASSERT_INT_EQ(bd_mkdir_p(into[i], 0755), 0);
		ASSERT_INT_EQ(pthread_create(&t[i], NULL, extract_thread,
		    into[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		ASSERT_INT_EQ(pthread_join(t[i], &rc), 0);
		ASSERT_INT_EQ((intptr_t)rc, 0);
		free(into[i]);
	}
	ASSERT(libarchive_mapped());
}

TEST(truncated_and_corrupt)
{
	check_refused("truncated.tar.gz", BD_EINVALID,
	    "entry \"app/big\": truncated gzip input");
	check_refused("truncated.tar.xz", BD_EINVALID, "entry \"app/big\": ");
	check_refused("truncated.zip", BD_EINVALID, "entry \"app/big\": ");
	check_refused("deep.tar.gz", BD_EINVALID,
	    "path has more than 128 components");
	check_refused("garbage.bin", BD_EINVALID,
	    "cannot read the archive: Unrecognized archive format");
	check_refused("empty.bin", BD_EINVALID, "cannot read the archive: ");
}

TEST(replaced_link_is_not_followed)
{
	struct bd_archive_result res;
	char *cause = NULL, *s;
	struct stat st;

	ASSERT_INT_EQ(extract("replace-link.tar.gz", 0, 0, &res, &cause), 0);
	ASSERT_INT_EQ(lstat(at("l"), &st), 0);
	ASSERT(S_ISREG(st.st_mode));
	s = contents("l");
	ASSERT_STR_EQ(s, "replaced\n");
	free(s);
	s = contents("target");
	ASSERT_STR_EQ(s, "keep\n");
	free(s);
}

TEST(hardlink_with_data)
{
	struct bd_archive_result res;
	char *cause = NULL, *s;
	struct stat st, st2;

	/* cpio puts a file's data on its last link. */
	ASSERT_INT_EQ(extract("hardlink-data.cpio", 0, 0, &res, &cause), 0);
	ASSERT_NULL(cause);
	s = contents("first");
	ASSERT_STR_EQ(s, "shared data\n");
	free(s);
	ASSERT_INT_EQ(lstat(at("first"), &st), 0);
	ASSERT_INT_EQ(lstat(at("dir/second"), &st2), 0);
	ASSERT_INT_EQ(st.st_ino, st2.st_ino);
	ASSERT_INT_EQ(st.st_mode & 07777, 0640);
	ASSERT_INT_EQ(res.bytes, 12);

	/* And that data counts against the limit. */
	ASSERT_INT_EQ(extract("hardlink-data.cpio", 5, 0, &res, &cause),
	    BD_ETOOBIG);
	ASSERT_STR_CONTAINS(cause, "entry \"dir/second\": the package unpacks "
	    "to more than 5 bytes");
	free(cause);
}

TEST(unprivileged)
{
	struct bd_archive_result res;
	int status;
	pid_t pid;

	/* Not root, a directory that shuts its owner out (app/shut, 0600)
	 * must get its mode after its subdirectory got its own. */
	ASSERT_INT_EQ(chmod(scratch, 0755), 0);
	snprintf(dest, sizeof(dest), "%s/nobody", scratch);
	ASSERT_INT_EQ(bd_mkdir_p(dest, 0755), 0);
	ASSERT_INT_EQ(chown(dest, 65534, 65534), 0);
	if ((pid = fork()) == 0) {
		char *path = xasprintf("%s/good.tar.gz", corpus), *cause = NULL;

		if (setgid(65534) < 0 || setuid(65534) < 0)
			_exit(2);
		if (bd_archive_extract(path, dest, NULL, &res, &cause) < 0) {
			fprintf(stderr, "as nobody: %s\n", cause);
			_exit(1);
		}
		_exit(0);
	}
	ASSERT(pid > 0);
	ASSERT_INT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT(WIFEXITED(status));
	ASSERT_INT_EQ(WEXITSTATUS(status), 0);
	ASSERT_INT_EQ(mode_of("app/shut"), 0600);
	ASSERT_INT_EQ(mode_of("app/shut/sub"), 0755);
	ASSERT_INT_EQ(mode_of("app/ro"), 0555);
	ASSERT_INT_EQ(mode_of("app/bin/setuid"), 0755);
}

TEST(bad_arguments)
{
	struct bd_archive_limits lim = { .max_bytes = 0 };
	char *cause = NULL, *path = xasprintf("%s/good.zip", corpus);

	/* dest must be empty. */
	snprintf(dest, sizeof(dest), "%s/full", scratch);
	ASSERT_INT_EQ(bd_mkdir_p(dest, 0755), 0);
	ASSERT_INT_EQ(bd_mkdir_p(at("something"), 0755), 0);
	ASSERT_INT_EQ(bd_archive_extract(path, dest, &lim, NULL, &cause),
	    -ENOTEMPTY);
	ASSERT_NOT_NULL(cause);
	free(cause);
	cause = NULL;
	ASSERT(!exists(at("app")));

	snprintf(dest, sizeof(dest), "%s/missing-archive", scratch);
	ASSERT_INT_EQ(bd_mkdir_p(dest, 0755), 0);
	ASSERT_INT_EQ(bd_archive_extract("/nonexistent.zip", dest, NULL, NULL,
	    &cause), -ENOENT);
	ASSERT_STR_CONTAINS(cause, "/nonexistent.zip");
	free(cause);
	cause = NULL;

	ASSERT_INT_EQ(bd_archive_extract(path, "/nonexistent-dir", NULL, NULL,
	    &cause), -ENOENT);
	free(cause);
	/* A NULL cause is allowed. */
	ASSERT_INT_EQ(bd_archive_extract(path, "/nonexistent-dir", NULL, NULL,
	    NULL), -ENOENT);
	free(path);
}

TEST(cancelled)
{
	atomic_bool stop = true;
	struct bd_archive_limits lim = { .cancel = &stop };
	struct bd_archive_result res;
	char *cause = NULL, *path = xasprintf("%s/good.tar.gz", corpus);

	/* Set before the first entry: nothing is unpacked. */
	snprintf(dest, sizeof(dest), "%s/cancelled", scratch);
	ASSERT_INT_EQ(bd_mkdir_p(dest, 0755), 0);
	ASSERT_INT_EQ(bd_archive_extract(path, dest, &lim, &res, &cause),
	    -ECANCELED);
	ASSERT_STR_EQ(cause, "the unpack was cancelled");
	ASSERT_INT_EQ(res.entries, 0);
	ASSERT(!exists(at("app")));
	free(cause);
	cause = NULL;
	/* Clear, the same limits unpack it all. */
	stop = false;
	snprintf(dest, sizeof(dest), "%s/not-cancelled", scratch);
	ASSERT_INT_EQ(bd_mkdir_p(dest, 0755), 0);
	ASSERT_INT_EQ(bd_archive_extract(path, dest, &lim, &res, &cause), 0);
	ASSERT(res.entries > 0);
	free(path);
}

int
main(void)
{
	setup();
	/* First, so that libarchive is loaded by racing threads. */
	RUN(threads);
	RUN(good_zip);
	RUN(cancelled);
	RUN(good_tar_gz);
	RUN(good_tar_xz);
	RUN(good_tar_bz2);
	RUN(good_tar_zst);
	RUN(refuses_escapes);
	RUN(refuses_special_files);
	RUN(zip_fifo_is_not_made);
	RUN(bombs);
	RUN(entry_limit);
	RUN(implied_directories_count);
	RUN(truncated_and_corrupt);
	RUN(replaced_link_is_not_followed);
	RUN(hardlink_with_data);
	if (geteuid() == 0)
		RUN(unprivileged);
	RUN(bad_arguments);
	ASSERT_INT_EQ(bd_rm_rf(scratch), 0);
	return 0;
}
