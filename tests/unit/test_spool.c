/* SPDX-License-Identifier: MIT */
/*
 * The local spool's shared file plumbing on real files: random tokens,
 * temporary files (written, locked, fsynced or not), the cleaning of a
 * crash's leftovers (old and unlocked only), directories made and opened,
 * paths made absolute, and a lock wait that gives up.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>

#include "clock.h"
#include "fsutil.h"
#include "spool.h"
#include "unit.h"
#include "spool_support.h"

TEST(random_hex)
{
	char a[65], b[65];

	bd_spool_random_hex(a, 8);
	bd_spool_random_hex(b, 8);
	ASSERT_INT_EQ((int)strlen(a), 16);
	ASSERT(strspn(a, "0123456789abcdef") == 16);
	ASSERT(strcmp(a, b) != 0);
	bd_spool_random_hex(a, 100);	/* capped at 32 bytes */
	ASSERT_INT_EQ((int)strlen(a), 64);
}

TEST(write_temp_and_clean)
{
	char *dir = spool_tmpdir("bd-spool"), tmp[BD_SPOOL_TMP_LEN], *path;
	char *data;
	size_t len;
	int dfd = bd_spool_open_dir(dir, "sub/deeper"), fd;

	ASSERT(dfd >= 0);
	ASSERT(exists(dir, "sub/deeper"));
	fd = bd_spool_write_temp(dfd, "hello", 5, BD_SPOOL_FSYNC, tmp);
	ASSERT(fd >= 0);
	ASSERT_INT_EQ((int)strlen(tmp), 21);
	ASSERT(strncmp(tmp, ".tmp-", 5) == 0);
	path = xasprintf("%s/sub/deeper/%s", dir, tmp);
	ASSERT_INT_EQ(bd_read_file(path, 100, &data, &len), 0);
	ASSERT_STR_EQ(data, "hello");
	free(data);
	/* Locked by its live writer: never cleaned, however old. */
	ASSERT(!bd_spool_clean_temp(dfd, tmp, bd_clock_now_ms() + 3600000));
	close(fd);
	/* Unlocked but young: kept. */
	ASSERT(!bd_spool_clean_temp(dfd, tmp, bd_clock_now_ms()));
	/* Unlocked and old: a crash's leftover, removed. */
	ASSERT(bd_spool_clean_temp(dfd, tmp,
	    bd_clock_now_ms() + BD_SPOOL_TEMP_STALE_MS + 1000));
	ASSERT(access(path, F_OK) == -1);
	/* Only ".tmp-" names are ever cleaned. */
	plant(dir, "sub/deeper/row.json", "{}", 3600);
	ASSERT(!bd_spool_clean_temp(dfd, "row.json", bd_clock_now_ms()));
	ASSERT(exists(dir, "sub/deeper/row.json"));
	/* An unsynced temporary file has its data all the same. */
	fd = bd_spool_write_temp(dfd, "x", 1, BD_SPOOL_NO_SYNC, tmp);
	ASSERT(fd >= 0);
	close(fd);
	/* Nor does one written out without a commit lose any. */
	fd = bd_spool_write_temp(dfd, "written out", 11, BD_SPOOL_WRITE_OUT,
	    tmp);
	ASSERT(fd >= 0);
	close(fd);
	free(path);
	path = xasprintf("%s/sub/deeper/%s", dir, tmp);
	ASSERT_INT_EQ(bd_read_file(path, 100, &data, &len), 0);
	ASSERT_STR_EQ(data, "written out");
	free(data);
	free(path);
	close(dfd);
	bd_rm_rf(dir);
	free(dir);
}

TEST(absolute)
{
	char *cwd = getcwd(NULL, 0), *a = bd_spool_absolute("rel/dir");
	char *want = xasprintf("%s/rel/dir", cwd);

	ASSERT_STR_EQ(a, want);
	free(a);
	a = bd_spool_absolute("/abs");
	ASSERT_STR_EQ(a, "/abs");
	free(a);
	free(want);
	free(cwd);
}

TEST(flock_wait_gives_up)
{
	char *dir = spool_tmpdir("bd-spool"), *path = xasprintf("%s/f", dir);
	int fd, fd2, go[2];
	pid_t pid;
	char c;

	plant(dir, "f", "", 0);
	ASSERT_INT_EQ(pipe(go), 0);
	if ((pid = fork()) == 0) {
		int cfd = open(path, O_RDONLY);
		flock(cfd, LOCK_EX);
		(void)write(go[1], "x", 1);
		pause();
		_exit(0);
	}
	ASSERT_INT_EQ(read(go[0], &c, 1), 1);
	fd = open(path, O_RDONLY);
	ASSERT(fd >= 0);
	ASSERT_INT_EQ(bd_spool_flock_wait(fd, 50), -ETIMEDOUT);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	ASSERT_INT_EQ(bd_spool_flock_wait(fd, 5000), 0);
	fd2 = open(path, O_RDONLY);
	ASSERT_INT_EQ(bd_spool_flock_wait(fd2, 10), -ETIMEDOUT);
	close(fd2);
	close(fd);
	close(go[0]);
	close(go[1]);
	bd_rm_rf(dir);
	free(path);
	free(dir);
}

int
main(void)
{
	RUN(random_hex);
	RUN(write_temp_and_clean);
	RUN(absolute);
	RUN(flock_wait_gives_up);
	printf("spool: all passed\n");
	return 0;
}
