/* SPDX-License-Identifier: MIT */
/*
 * The local spool's shared file plumbing (see spool.h): one place for the
 * rules that the queue and the tables both follow on disk.
 */
#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "fsutil.h"
#include "xmalloc.h"

void
bd_spool_random_hex(char *buf, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[32];
	size_t got = 0;

	if (n > sizeof(raw))
		n = sizeof(raw);
	while (got < n) {
		ssize_t r = getrandom(raw + got, n - got, 0);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0) {
			/* No entropy source: uniqueness is all we need. */
			uint64_t x = (uint64_t)bd_clock_mono_ms() ^
			    ((uint64_t)getpid() << 32) ^ (uintptr_t)buf;
			for (; got < n; got++) {
				x ^= x << 13, x ^= x >> 7, x ^= x << 17;
				raw[got] = (unsigned char)x;
			}
			break;
		}
		got += (size_t)r;
	}
	for (size_t i = 0; i < n; i++) {
		buf[2 * i] = hex[raw[i] >> 4];
		buf[2 * i + 1] = hex[raw[i] & 15];
	}
	buf[2 * n] = '\0';
}

int
bd_spool_write_temp(int dfd, const char *data, size_t len,
    enum bd_spool_sync sync, char tmp[BD_SPOOL_TMP_LEN])
{
	char tok[17];
	int fd, rc = 0;

	bd_spool_random_hex(tok, 8);
	snprintf(tmp, BD_SPOOL_TMP_LEN, ".tmp-%s", tok);
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
	    O_NOFOLLOW, BD_SPOOL_FILE_MODE);
	if (fd == -1)
		return -errno;
	/* Uncontended: it only tells a cleaner that the writer lives. */
	(void)flock(fd, LOCK_EX | LOCK_NB);
	rc = bd_write_all(fd, data, len);
	if (rc == 0 && sync == BD_SPOOL_FSYNC && fsync(fd) == -1)
		rc = -errno;
	if (rc == 0 && sync == BD_SPOOL_WRITE_OUT && sync_file_range(fd, 0, 0,
	    SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
	    SYNC_FILE_RANGE_WAIT_AFTER) == -1)
		rc = -errno;
	if (rc < 0) {
		unlinkat(dfd, tmp, 0);
		close(fd);
		return rc;
	}
	return fd;
}

bool
bd_spool_clean_temp(int dfd, const char *name, int64_t now_ms)
{
	struct stat st;
	bool removed = false;
	int fd;

	if (strncmp(name, ".tmp-", 5) != 0)
		return false;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1)
		return false;
	if (now_ms - ((int64_t)st.st_mtim.tv_sec * 1000 +
	    st.st_mtim.tv_nsec / 1000000) < BD_SPOOL_TEMP_STALE_MS)
		return false;
	if (!S_ISREG(st.st_mode))
		return unlinkat(dfd, name, S_ISDIR(st.st_mode) ?
		    AT_REMOVEDIR : 0) == 0;
	fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd == -1)
		return false;
	if (flock(fd, LOCK_EX | LOCK_NB) == 0)
		removed = unlinkat(dfd, name, 0) == 0;
	close(fd);
	return removed;
}

int
bd_spool_open_dir(const char *dir, const char *sub)
{
	char *p = sub ? xasprintf("%s/%s", dir, sub) : xstrdup(dir);
	int fd, rc;

	if ((rc = bd_mkdir_p(p, BD_SPOOL_DIR_MODE)) < 0) {
		free(p);
		return rc;
	}
	fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	rc = fd == -1 ? -errno : fd;
	free(p);
	return rc;
}

char *
bd_spool_absolute(const char *dir)
{
	char *cwd, *p;

	if (dir[0] == '/' || (cwd = getcwd(NULL, 0)) == NULL)
		return xstrdup(dir);
	p = xasprintf("%s/%s", cwd, dir);
	free(cwd);
	return p;
}

int
bd_spool_flock_wait(int fd, int64_t wait_ms)
{
	int64_t deadline = bd_clock_mono_ms() + wait_ms;
	useconds_t pause = 100;

	for (;;) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK && errno != EINTR)
			return -errno;
		if (bd_clock_mono_ms() >= deadline)
			return -ETIMEDOUT;
		usleep(pause);
		if (pause < 5000)
			pause *= 2;
	}
}
