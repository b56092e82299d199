/* SPDX-License-Identifier: MIT */
/*
 * The local spool's shared file plumbing (see spool.h): one place for the
 * rules that the queue and the tables both follow on disk.
 */
#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
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
bd_spool_write_temp(int dfd, const char *data, size_t len, bool sync,
    char tmp[BD_SPOOL_TMP_LEN])
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
	while (len > 0 && rc == 0) {
		ssize_t n = write(fd, data, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			rc = -errno;
		else {
			data += n;
			len -= (size_t)n;
		}
	}
	if (rc == 0 && sync && fsync(fd) == -1)
		rc = -errno;
	if (rc < 0) {
		unlinkat(dfd, tmp, 0);
		close(fd);
		return rc;
	}
	return fd;
}

/* The value of "KEY=" in a uevent file's text, into out (cap bytes). */
static bool
spool_uevent_value(const char *text, const char *key, char *out, size_t cap)
{
	size_t kl = strlen(key);

	for (const char *l = text; l != NULL && *l != '\0';
	    l = strchr(l, '\n') != NULL ? strchr(l, '\n') + 1 : NULL) {
		size_t n = strcspn(l + kl, "\n");

		if (strncmp(l, key, kl) == 0 && n > 0 && n < cap &&
		    memchr(l + kl, '/', n) == NULL) {
			memcpy(out, l + kl, n);
			out[n] = '\0';
			return true;
		}
	}
	return false;
}

/* Whether the comma or newline separated list opts holds word. */
static bool
spool_has_option(const char *opts, const char *word)
{
	size_t wl = strlen(word);

	for (const char *p = opts; (p = strstr(p, word)) != NULL; p += wl)
		if ((p == opts || p[-1] == ',' || p[-1] == '\n') &&
		    (p[wl] == ',' || p[wl] == '\n' || p[wl] == '\0'))
			return true;
	return false;
}

bool
bd_spool_rename_keeps_data(int dfd)
{
	char path[PATH_MAX], dev[NAME_MAX + 1], *text = NULL;
	struct statfs sf;
	struct stat st;
	size_t len;
	bool ok;

	if (fstatfs(dfd, &sf) == -1 || sf.f_type != 0xEF53 /* ext2/3/4 */ ||
	    fstat(dfd, &st) == -1)
		return false;
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/uevent",
	    major(st.st_dev), minor(st.st_dev));
	if (bd_read_file(path, 4096, &text, &len) < 0)
		return false;
	ok = spool_uevent_value(text, "DEVNAME=", dev, sizeof(dev));
	free(text);
	text = NULL;
	/* The options file lists every option, defaults included; it has
	   no data= line when the file system has no journal. */
	snprintf(path, sizeof(path), "/proc/fs/ext4/%s/options", dev);
	if (!ok || bd_read_file(path, 16384, &text, &len) < 0)
		return false;
	ok = (spool_has_option(text, "data=ordered") ||
	    spool_has_option(text, "data=journal")) &&
	    spool_has_option(text, "auto_da_alloc");
	free(text);
	return ok;
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
