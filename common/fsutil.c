/* SPDX-License-Identifier: MIT */
/*
 * Filesystem helpers shared by the agent's modules.  Removal walks with
 * openat/unlinkat relative to directory descriptors and never follows a
 * symlink, so a task that plants a link to / in its working directory
 * cannot make batchd delete anything outside it.
 */
#include "fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "error.h"
#include "xmalloc.h"

/*
 * Works back from the end: the usual path lacks only its last one or two
 * components, so it costs a mkdir() per missing directory and one failed
 * mkdir() per level looked at, not one for every component from the root.
 */
int
bd_mkdir_p(const char *path, mode_t mode)
{
	char *copy = xstrdup(path);
	size_t n = strlen(copy), end;
	struct stat st;
	bool forward = false;	/* the parent of copy[0..end) exists */
	int rc = 0;

	while (n > 1 && copy[n - 1] == '/')
		copy[--n] = '\0';
	end = n;
	for (;;) {
		copy[end] = '\0';
		if (mkdir(copy, mode) == 0 || (errno == EEXIST && end < n)) {
			/* Made (or a parent that exists): on to the next. */
			if (end == n)
				break;
			copy[end] = '/';
			forward = true;
			while (copy[end] == '/')
				end++;
			while (copy[end] != '/' && copy[end] != '\0')
				end++;
			continue;
		}
		if (errno == EEXIST) {
			rc = stat(copy, &st) == 0 && S_ISDIR(st.st_mode) ? 0 :
			    -ENOTDIR;
			break;
		}
		if (errno != ENOENT || forward) {
			/* ENOENT under a parent that exists: /proc, say. */
			rc = -errno;
			break;
		}
		/* The parent is missing: go back one level. */
		copy[end] = end < n ? '/' : '\0';
		while (end > 0 && copy[end - 1] != '/')
			end--;
		while (end > 0 && copy[end - 1] == '/')
			end--;
		if (end == 0) {
			rc = -ENOENT;
			break;
		}
	}
	free(copy);
	return rc;
}

/* Walks below dfd at depth; closes dfd.  See bd_walk_tree(). */
static int
fsutil_walk(int dfd, const struct bd_walk_ops *ops, void *arg, int depth)
{
	DIR *dir;
	struct dirent *de;
	int rc = 0, r;

	if (depth > 4096) {
		close(dfd);
		return -ELOOP;
	}
	if ((dir = fdopendir(dfd)) == NULL) {
		rc = -errno;
		close(dfd);
		return rc;
	}
	while ((de = readdir(dir)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if ((r = ops->enter(dirfd(dir), de->d_name, de->d_type,
		    arg)) <= 0) {
			if (r < 0 && r != -ENOENT && rc == 0)
				rc = r;
			continue;
		}
		int sub = openat(dirfd(dir), de->d_name,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub == -1) {
			if (errno != ENOENT && rc == 0)
				rc = -errno;
			continue;
		}
		if ((r = fsutil_walk(sub, ops, arg, depth + 1)) < 0 && rc == 0)
			rc = r;
		if (ops->leave != NULL &&
		    (r = ops->leave(dirfd(dir), de->d_name, arg)) < 0 &&
		    r != -ENOENT && rc == 0)
			rc = r;
	}
	closedir(dir);
	return rc;
}

int
bd_walk_tree(int dfd, const struct bd_walk_ops *ops, void *arg)
{
	return fsutil_walk(dfd, ops, arg, 0);
}

/* Emptying: a file goes at once, a directory after its entries. */
static int
fsutil_empty_enter(int dfd, const char *name, unsigned char d_type,
    void *arg)
{
	(void)d_type;
	(void)arg;
	if (unlinkat(dfd, name, 0) == 0)
		return 0;
	return errno == EISDIR || errno == EPERM ? 1 : -errno;
}

static int
fsutil_empty_leave(int dfd, const char *name, void *arg)
{
	(void)arg;
	return unlinkat(dfd, name, AT_REMOVEDIR) == 0 ? 0 : -errno;
}

static const struct bd_walk_ops fsutil_empty_ops = {
	.enter = fsutil_empty_enter,
	.leave = fsutil_empty_leave,
};

int
bd_empty_dir(const char *path)
{
	int dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (dfd == -1)
		return errno == ENOENT ? 0 : -errno;
	return bd_walk_tree(dfd, &fsutil_empty_ops, NULL);
}

int
bd_rm_rf(const char *path)
{
	struct stat st;
	int rc;

	if (lstat(path, &st) == -1)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlink(path) == 0 || errno == ENOENT ? 0 : -errno;
	if ((rc = bd_empty_dir(path)) < 0)
		return rc;
	return rmdir(path) == 0 || errno == ENOENT ? 0 : -errno;
}

/* Creates a unique temporary file next to path; caller frees *tmp. */
static int
fsutil_open_temp(const char *path, mode_t mode, char **tmp)
{
	char *dir = bd_path_dirname(path);
	const char *base = strrchr(path, '/');
	int fd;

	base = base ? base + 1 : path;
	*tmp = xasprintf("%s/.%.100s.XXXXXX", dir, base);
	free(dir);
	if ((fd = mkostemp(*tmp, O_CLOEXEC)) == -1) {
		int rc = -errno;
		free(*tmp);
		*tmp = NULL;
		return rc;
	}
	if (fchmod(fd, mode) == -1) {
		int rc = -errno;
		close(fd);
		unlink(*tmp);
		free(*tmp);
		*tmp = NULL;
		return rc;
	}
	return fd;
}

/* fsyncs the directory that holds path. */
static int
fsutil_sync_dir_of(const char *path)
{
	char *dir = bd_path_dirname(path);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;

	free(dir);
	if (fd == -1)
		return -errno;
	if (fsync(fd) == -1)
		rc = -errno;
	close(fd);
	return rc;
}

/* Renames the finished temp file over path, or removes it on error. */
static int
fsutil_commit_temp(int fd, char *tmp, const char *path, int rc, bool sync)
{
	if (rc == 0 && sync && fsync(fd) == -1)
		rc = -errno;
	if (close(fd) == -1 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) == -1)
		rc = -errno;
	if (rc != 0)
		unlink(tmp);
	else if (sync)
		rc = fsutil_sync_dir_of(path);
	free(tmp);
	return rc;
}

int
bd_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Writes data to path through a temporary file, with or without fsync. */
static int
fsutil_write_replace(const char *path, const void *data, size_t len,
    mode_t mode, bool sync)
{
	char *tmp;
	int fd;

	if ((fd = fsutil_open_temp(path, mode, &tmp)) < 0)
		return fd;
	return fsutil_commit_temp(fd, tmp, path, bd_write_all(fd, data, len),
	    sync);
}

int
bd_write_file_atomic(const char *path, const void *data, size_t len,
    mode_t mode)
{
	return fsutil_write_replace(path, data, len, mode, true);
}

int
bd_write_file_replace(const char *path, const void *data, size_t len,
    mode_t mode)
{
	return fsutil_write_replace(path, data, len, mode, false);
}

int
bd_read_file(const char *path, size_t max, char **data, size_t *len)
{
	struct stat st;
	size_t cap, used = 0;
	char *buf;
	int fd, rc = 0;

	*data = NULL;
	*len = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -errno;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		rc = S_ISDIR(st.st_mode) ? -EISDIR : -errno;
		close(fd);
		return rc ? rc : -EINVAL;
	}
	if ((uint64_t)st.st_size > max) {
		close(fd);
		return BD_ETOOBIG;
	}
	cap = (size_t)st.st_size + 1;
	buf = xmalloc(cap);
	for (;;) {
		if (used + 1 >= cap) {
			if (cap > max + 1) {
				rc = BD_ETOOBIG;
				break;
			}
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
		ssize_t n = read(fd, buf + used, cap - used - 1);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			rc = -errno;
			break;
		}
		if (n == 0)
			break;
		used += (size_t)n;
		if (used > max) {
			rc = BD_ETOOBIG;
			break;
		}
	}
	close(fd);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	buf[used] = '\0';
	*data = buf;
	*len = used;
	return 0;
}

int
bd_copy_file(const char *src, const char *dst, mode_t mode, int64_t *copied)
{
	int in, rc;

	if ((in = open(src, O_RDONLY | O_CLOEXEC)) == -1)
		return -errno;
	rc = bd_copy_fd(in, dst, mode, copied);
	close(in);
	return rc;
}

int
bd_copy_fd(int in, const char *dst, mode_t mode, int64_t *copied)
{
	struct stat st;
	int64_t total = 0;
	char *tmp;
	int out, rc = 0;

	if (fstat(in, &st) == -1)
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if ((out = fsutil_open_temp(dst, mode, &tmp)) < 0)
		return out;
	for (;;) {
		ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
		if (n == -1 && (errno == EXDEV || errno == ENOSYS ||
		    errno == EINVAL || errno == EOPNOTSUPP))
			n = sendfile(out, in, NULL, 1 << 30);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			rc = -errno;
			break;
		}
		if (n == 0)
			break;
		total += n;
	}
	if (copied != NULL)
		*copied = total;
	return fsutil_commit_temp(out, tmp, dst, rc, false);
}

char *
bd_path_join(const char *a, const char *b)
{
	size_t la = strlen(a);

	if (b[0] == '/' || la == 0)
		return xstrdup(b);
	if (a[la - 1] == '/')
		return xasprintf("%s%s", a, b);
	return xasprintf("%s/%s", a, b);
}

char *
bd_path_normalize(const char *path)
{
	size_t len = strlen(path), nseg = 0, ups = 0, o = 0;
	const char **seg = xcalloc(len / 2 + 2, sizeof(*seg));
	size_t *seglen = xcalloc(len / 2 + 2, sizeof(*seglen));
	bool abs = path[0] == '/';
	char *out = xmalloc(len + 2);
	const char *p = path;

	/* Segments that survive; leading ".." of a relative path are counted
	 * in ups because nothing before them can absorb them. */
	while (*p != '\0') {
		while (*p == '/')
			p++;
		const char *s = p;
		while (*p != '/' && *p != '\0')
			p++;
		size_t n = (size_t)(p - s);
		if (n == 0 || (n == 1 && s[0] == '.'))
			continue;
		if (n == 2 && s[0] == '.' && s[1] == '.') {
			if (nseg > 0)
				nseg--;
			else if (!abs)
				ups++;
			continue;
		}
		seg[nseg] = s;
		seglen[nseg++] = n;
	}
	if (abs)
		out[o++] = '/';
	for (size_t i = 0; i < ups; i++) {
		if (o > 0 && out[o - 1] != '/')
			out[o++] = '/';
		memcpy(out + o, "..", 2);
		o += 2;
	}
	for (size_t i = 0; i < nseg; i++) {
		if (o > 0 && out[o - 1] != '/')
			out[o++] = '/';
		memcpy(out + o, seg[i], seglen[i]);
		o += seglen[i];
	}
	if (o == 0)
		out[o++] = '.';
	out[o] = '\0';
	free(seg);
	free(seglen);
	return out;
}

bool
bd_path_stays_inside(const char *rel)
{
	char *n;
	bool ok;

	if (rel[0] == '/')
		return false;
	n = bd_path_normalize(rel);
	ok = !(strcmp(n, "..") == 0 || strncmp(n, "../", 3) == 0);
	free(n);
	return ok;
}

char *
bd_path_dirname(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return xstrdup(".");
	if (slash == path)
		return xstrdup("/");
	return xstrndup(path, (size_t)(slash - path));
}

/* The value of "KEY=" in a uevent file's text, into out (cap bytes). */
static bool
fs_uevent_value(const char *text, const char *key, char *out, size_t cap)
{
	size_t kl = strlen(key);

	for (const char *l = text; l != NULL && *l != '\0';
	    l = strchr(l, '\n') != NULL ? strchr(l, '\n') + 1 : NULL) {
		size_t n;

		if (strncmp(l, key, kl) != 0)
			continue;
		n = strcspn(l + kl, "\n");
		if (n > 0 && n < cap && memchr(l + kl, '/', n) == NULL) {
			memcpy(out, l + kl, n);
			out[n] = '\0';
			return true;
		}
	}
	return false;
}

/* Whether the comma or newline separated list opts holds word. */
static bool
fs_has_option(const char *opts, const char *word)
{
	size_t wl = strlen(word);

	for (const char *p = opts; (p = strstr(p, word)) != NULL; p += wl)
		if ((p == opts || p[-1] == ',' || p[-1] == '\n') &&
		    (p[wl] == ',' || p[wl] == '\n' || p[wl] == '\0'))
			return true;
	return false;
}

/*
 * The options of dfd's ext2/3/4 file system, one per line, as
 * /proc/fs/ext4/<device>/options lists them (defaults included), into
 * *text (caller frees), and the device's name into dev; false if dfd is
 * elsewhere or they cannot be read.
 */
static bool
fs_ext4_options(int dfd, char **text, char dev[NAME_MAX + 1])
{
	char path[PATH_MAX], *uevent = NULL;
	struct statfs sf;
	struct stat st;
	size_t len;
	bool ok;

	*text = NULL;
	if (fstatfs(dfd, &sf) == -1 || sf.f_type != 0xEF53 /* ext2/3/4 */ ||
	    fstat(dfd, &st) == -1)
		return false;
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/uevent",
	    major(st.st_dev), minor(st.st_dev));
	if (bd_read_file(path, 4096, &uevent, &len) < 0)
		return false;
	ok = fs_uevent_value(uevent, "DEVNAME=", dev, NAME_MAX + 1);
	free(uevent);
	if (!ok)
		return false;
	snprintf(path, sizeof(path), "/proc/fs/ext4/%s/options", dev);
	return bd_read_file(path, 16384, text, &len) == 0;
}

bool
bd_fs_fsync_commits_renames(int dfd)
{
	char *opts, dev[NAME_MAX + 1], path[PATH_MAX];
	struct stat st;
	bool ok;

	if (!fs_ext4_options(dfd, &opts, dev))
		return false;
	/*
	 * No data= line: the file system has no journal.  Without barriers
	 * the commit does not flush the disk's cache first.  The option
	 * fc_debug_force is how the kernel lists fast commits, which before
	 * Linux 6.5 committed a directory's fsync without the rest.
	 */
	ok = (fs_has_option(opts, "data=ordered") ||
	    fs_has_option(opts, "data=journal")) &&
	    fs_has_option(opts, "barrier") &&
	    !fs_has_option(opts, "fc_debug_force");
	free(opts);
	/* A journal on a device of its own (jbd2 names an internal one
	   <device>-<inode 8>) flushes the data's device only when it
	   knows of data to wait for. */
	snprintf(path, sizeof(path), "/proc/fs/jbd2/%s-8", dev);
	return ok && stat(path, &st) == 0;
}

bool
bd_fs_ext4_without_journal(int dfd)
{
	char *opts, dev[NAME_MAX + 1];
	bool none;

	if (!fs_ext4_options(dfd, &opts, dev))
		return false;
	none = strncmp(opts, "data=", 5) != 0 && strstr(opts, "\ndata=") ==
	    NULL;
	free(opts);
	return none;
}
