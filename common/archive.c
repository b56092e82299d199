/* SPDX-License-Identifier: MIT */
/*
 * Unpacking of untrusted archives (see archive.h).  libarchive only reads
 * and decompresses; every file, directory and link is created here, with
 * *at() calls relative to directory descriptors that were opened inside
 * dest with O_NOFOLLOW, so that no entry can reach outside dest through
 * "..", an absolute name or a link an earlier entry made.
 *
 * The rules, checked for each entry before anything is created:
 * - its name is relative and has no ".." component;
 * - it is a regular file, a directory, a symlink or a hard link: devices,
 *   FIFOs and sockets are refused;
 * - a symlink's target is relative, its ".." components all come first
 *   (after a name, ".." would climb from wherever that name leads, which
 *   an in-tree link can make dest itself) and they climb no higher than
 *   dest from the link's own directory;
 * - a hard link names a regular file that an earlier entry unpacked (dest
 *   starts empty, so whatever it holds came from this archive), never a
 *   symlink, whose target would mean something else in its new place;
 *   data that the link carries (cpio) is written through it;
 * - an entry never goes through a symlink: an earlier entry of the same
 *   name that is not a directory is replaced, not followed;
 * - the entry count and the bytes written stay within the limits, checked
 *   against the declared size first and again block by block, so a bomb
 *   stops at max_bytes; directories that paths imply count as entries,
 *   or a few deep paths could make millions of them.
 * Modes lose set-uid, set-gid and sticky; owners are not restored.
 * Directories are made 0700 while unpacking and get their own modes and
 * times at the end, so that a read-only directory can still be filled.
 * Nothing is fsynced: the caller syncs before it moves the tree into
 * place, if it must survive a power cut.
 */
#include "archive.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive_api.h"
#include "error.h"
#include "json_field.h"
#include "xmalloc.h"

/* libarchive's read size: big reads, few system calls. */
#define ARCHIVE_READ_BLOCK (1024 * 1024)
/* At most this much of an entry's name in a message. */
#define ARCHIVE_NAME_SHOWN 200
/*
 * At most this many components in an entry's path: finding an entry's
 * directory costs a system call per component, so deep paths times many
 * entries would take long, and no real package nests so deep.
 */
#define ARCHIVE_MAX_DEPTH 128
/* Mode of a directory that the archive implies but does not list. */
#define ARCHIVE_IMPLIED_DIR_MODE 0755

/* A directory whose mode and time are set once everything is unpacked. */
struct archive_dirfix {
	char *path;		/* relative to dest */
	size_t depth;		/* components of path */
	size_t seq;		/* order noted: the last note of a path wins */
	mode_t mode;
	bool has_time;
	struct timespec mtime;
};

/* One extraction: the reader, dest and what was done so far. */
struct archive_extract {
	struct archive *a;
	int destfd;
	uint64_t max_bytes;	/* UINT64_MAX for none */
	uint64_t max_entries;
	bool readable_by_all;
	const atomic_bool *cancel;	/* or NULL */
	uint64_t entries;
	uint64_t implied;	/* directories made for paths, not listed */
	uint64_t bytes;
	const char *name;	/* entry being unpacked, for causes */
	char *name_copy;	/* the entry's name, which outlives it */
	char **cause;
	/* The directory of the last entry, kept open: archives list the
	 * files of one directory together. */
	char *cache_path;
	int cache_fd;
	struct archive_dirfix *dirs;
	size_t ndirs, dirs_cap;
};

/* The permission bits entry e gets (set-id and sticky bits never). */
static mode_t
archive_perm(const struct archive_extract *x, struct archive_entry *e,
    bool dir)
{
	mode_t m = archive_entry_perm(e) & 0777;

	if (x->readable_by_all)
		m |= dir ? 0755 : 0644 | ((m & 0100) != 0 ? 0111 : 0);
	return m;
}

/*
 * Sets *cause (when not set yet) to "entry NAME: " and the reason, and
 * returns err.
 */
__attribute__((format(printf, 3, 4))) static int
archive_fail(struct archive_extract *x, int err, const char *fmt, ...)
{
	va_list ap;
	char *why, *quoted;

	if (x->cause == NULL || *x->cause != NULL)
		return err;
	va_start(ap, fmt);
	why = xvasprintf(fmt, ap);
	va_end(ap);
	if (x->name != NULL) {
		quoted = bd_json_quote(x->name, ARCHIVE_NAME_SHOWN);
		*x->cause = xasprintf("entry %s: %s", quoted, why);
		free(quoted);
		free(why);
	} else
		*x->cause = why;
	return err;
}

/* Fails for one entry too many. */
static int
archive_too_many(struct archive_extract *x)
{
	return archive_fail(x, BD_ETOOBIG,
	    "the package has more than %" PRIu64 " entries%s", x->max_entries,
	    x->implied > 0 ? " and directories its paths imply" : "");
}

/* Fails with -ECANCELED once the caller asked the unpack to stop. */
static int
archive_check_cancel(struct archive_extract *x)
{
	if (x->cancel == NULL ||
	    !atomic_load_explicit(x->cancel, memory_order_relaxed))
		return 0;
	x->name = NULL;
	return archive_fail(x, -ECANCELED, "the unpack was cancelled");
}

/* s quoted for a message; caller frees. */
static char *
archive_quote(const char *s)
{
	return bd_json_quote(s, ARCHIVE_NAME_SHOWN);
}

/*
 * The entry name raw as a clean relative path in *out (caller frees):
 * empty and "." components dropped, "" for dest itself.  Refuses absolute
 * names and ".." components.  what says which name it is, for the cause.
 */
static int
archive_clean_path(struct archive_extract *x, const char *raw,
    const char *what, char **out)
{
	size_t len = strlen(raw), o = 0, depth = 0;
	const char *p = raw;
	char *q, *clean;

	*out = NULL;
	if (len == 0)
		return archive_fail(x, BD_EINVALID, "%s is empty", what);
	if (len >= PATH_MAX)
		return archive_fail(x, BD_EINVALID, "%s is too long", what);
	/* The entry's own name is in the cause already; a link's is not. */
	q = strcmp(what, "path") == 0 ? xstrdup("") : archive_quote(raw);
	if (raw[0] == '/') {
		archive_fail(x, BD_EESCAPE, "%s%s%s is absolute", what,
		    q[0] != '\0' ? " " : "", q);
		free(q);
		return BD_EESCAPE;
	}
	clean = xmalloc(len + 1);
	while (*p != '\0') {
		const char *s = p;
		size_t n;

		while (*p != '/' && *p != '\0')
			p++;
		n = (size_t)(p - s);
		if (*p == '/')
			p++;
		if (n == 0 || (n == 1 && s[0] == '.'))
			continue;
		if (n == 2 && s[0] == '.' && s[1] == '.') {
			free(clean);
			archive_fail(x, BD_EESCAPE, "%s%s%s leaves the package",
			    what, q[0] != '\0' ? " " : "", q);
			free(q);
			return BD_EESCAPE;
		}
		if (++depth > ARCHIVE_MAX_DEPTH) {
			free(clean);
			free(q);
			return archive_fail(x, BD_EINVALID,
			    "%s has more than %d components", what,
			    ARCHIVE_MAX_DEPTH);
		}
		if (o > 0)
			clean[o++] = '/';
		memcpy(clean + o, s, n);
		o += n;
	}
	clean[o] = '\0';
	free(q);
	*out = clean;
	return 0;
}

/*
 * Remembers the directory path (taken over) for archive_fix_dirs(); the
 * last mode noted for a path wins.
 */
static void
archive_note_dir(struct archive_extract *x, char *path, mode_t mode,
    const struct timespec *mtime)
{
	struct archive_dirfix *d;

	if (x->ndirs == x->dirs_cap) {
		x->dirs_cap = x->dirs_cap ? x->dirs_cap * 2 : 16;
		x->dirs = xreallocarray(x->dirs, x->dirs_cap,
		    sizeof(*x->dirs));
	}
	d = &x->dirs[x->ndirs];
	d->path = path;
	d->depth = 1;
	for (const char *p = path; *p != '\0'; p++)
		if (*p == '/')
			d->depth++;
	d->seq = x->ndirs++;
	d->mode = mode;
	d->has_time = mtime != NULL;
	if (mtime != NULL)
		d->mtime = *mtime;
}

/*
 * Opens the directory path (relative, clean) below the directory fd
 * start, one component at a time with O_NOFOLLOW, making missing ones when
 * create is set (0700, fixed at the end).  base is path's offset in full,
 * the path from dest, for the directories recorded.  Returns an fd (caller
 * closes) or a negative error with the cause set.
 */
static int
archive_walk(struct archive_extract *x, int start, const char *full,
    size_t base, bool create)
{
	char comp[NAME_MAX + 1];
	const char *p = full + base;
	int fd = start, next;

	for (;;) {
		const char *s = p;
		size_t n;

		while (*p != '/' && *p != '\0')
			p++;
		n = (size_t)(p - s);
		if (n == 0)
			break;
		if (n > NAME_MAX) {
			if (fd != start)
				close(fd);
			return archive_fail(x, -ENAMETOOLONG,
			    "a name in the path is too long");
		}
		memcpy(comp, s, n);
		comp[n] = '\0';
		if (create) {
			if (mkdirat(fd, comp, 0700) == 0) {
				x->implied++;
				archive_note_dir(x, xstrndup(full,
				    (size_t)(p - full)), ARCHIVE_IMPLIED_DIR_MODE,
				    NULL);
				/* Room for the entry that implies it? */
				if (x->entries + x->implied >= x->max_entries) {
					if (fd != start)
						close(fd);
					return archive_too_many(x);
				}
			} else if (errno != EEXIST) {
				int err = -errno;

				if (fd != start)
					close(fd);
				return archive_fail(x, err,
				    "cannot make directory: %s",
				    strerror(-err));
			}
		}
		next = openat(fd, comp,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0) {
			int err = errno;
			struct stat st;
			bool link = (err == ELOOP || err == ENOTDIR) &&
			    fstatat(fd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISLNK(st.st_mode);

			if (fd != start)
				close(fd);
			if (link)
				return archive_fail(x, BD_EESCAPE,
				    "path goes through a symlink");
			if (err == ENOTDIR)
				return archive_fail(x, BD_EINVALID,
				    "path goes through a file");
			return archive_fail(x, -err, "cannot open directory: %s",
			    strerror(err));
		}
		if (fd != start)
			close(fd);
		fd = next;
		if (*p == '/')
			p++;
	}
	if (fd == start && (fd = dup(start)) < 0) {
		int err = errno;

		return archive_fail(x, -err, "cannot open directory: %s",
		    strerror(err));
	}
	return fd;
}

/*
 * The directory holding the entry at path (clean, not empty), made if
 * missing; *leaf gets path's last component.  Returns an fd borrowed
 * until the next call, or a negative error.
 */
static int
archive_parent(struct archive_extract *x, const char *path, const char **leaf)
{
	const char *slash = strrchr(path, '/');
	size_t plen = slash != NULL ? (size_t)(slash - path) : 0, clen;
	char *dir;
	int fd;

	*leaf = slash != NULL ? slash + 1 : path;
	if (x->cache_path != NULL && strlen(x->cache_path) == plen &&
	    memcmp(x->cache_path, path, plen) == 0)
		return x->cache_fd;
	dir = xstrndup(path, plen);
	/* A deeper directory of the cached one is walked from it. */
	if (x->cache_path != NULL && (clen = strlen(x->cache_path)) > 0 &&
	    clen < plen && memcmp(x->cache_path, dir, clen) == 0 &&
	    dir[clen] == '/')
		fd = archive_walk(x, x->cache_fd, dir, clen + 1, true);
	else
		fd = archive_walk(x, x->destfd, dir, 0, true);
	if (fd < 0) {
		free(dir);
		return fd;
	}
	if (x->cache_path != NULL)
		close(x->cache_fd);
	free(x->cache_path);
	x->cache_path = dir;
	x->cache_fd = fd;
	return fd;
}

/*
 * Makes room for a new entry called leaf in dirfd, after EEXIST: an
 * earlier entry of the same name that is not a directory is removed (tar
 * lets later entries replace earlier ones).  Returns 0 or a negative
 * error.
 */
static int
archive_replace(struct archive_extract *x, int dirfd, const char *leaf)
{
	struct stat st;

	if (fstatat(dirfd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 :
		    archive_fail(x, -errno, "cannot stat: %s", strerror(errno));
	if (S_ISDIR(st.st_mode))
		return archive_fail(x, BD_EINVALID,
		    "a directory of that name is already unpacked");
	if (unlinkat(dirfd, leaf, 0) < 0)
		return archive_fail(x, -errno, "cannot replace: %s",
		    strerror(errno));
	return 0;
}

/* Counts n more bytes against the limit. */
static int
archive_charge(struct archive_extract *x, uint64_t n)
{
	if (n > x->max_bytes || x->bytes > x->max_bytes - n)
		return archive_fail(x, BD_ETOOBIG,
		    "the package unpacks to more than %" PRIu64 " bytes",
		    x->max_bytes);
	x->bytes += n;
	return 0;
}

/* The entry's modification time in *ts, if it has one. */
static bool
archive_mtime(struct archive_entry *e, struct timespec *ts)
{
	if (!archive_entry_mtime_is_set(e))
		return false;
	ts->tv_sec = archive_entry_mtime(e);
	ts->tv_nsec = archive_entry_mtime_nsec(e);
	if (ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000)
		ts->tv_nsec = 0;
	return true;
}

/* Whether the entry's declared size still fits under max_bytes. */
static int
archive_check_size(struct archive_extract *x, struct archive_entry *e)
{
	if (archive_entry_size_is_set(e) && archive_entry_size(e) > 0 &&
	    ((uint64_t)archive_entry_size(e) > x->max_bytes ||
	    x->bytes > x->max_bytes - (uint64_t)archive_entry_size(e)))
		return archive_fail(x, BD_ETOOBIG,
		    "the package unpacks to more than %" PRIu64 " bytes",
		    x->max_bytes);
	return 0;
}

/*
 * The data of the current entry into fd, a new or emptied file, counted
 * against max_bytes as it goes: declared sizes can lie.
 */
static int
archive_copy_data(struct archive_extract *x, struct archive_entry *e, int fd)
{
	const void *buf;
	size_t len;
	la_int64_t off;
	uint64_t extent = 0;
	int r, rc;

	if ((rc = archive_check_size(x, e)) < 0)
		return rc;
	for (;;) {
		if ((rc = archive_check_cancel(x)) < 0)
			return rc;
		r = archive_read_data_block(x->a, &buf, &len, &off);
		if (r == ARCHIVE_EOF)
			break;
		if (r != ARCHIVE_OK)
			return archive_fail(x, BD_EINVALID, "%s",
			    archive_error_string(x->a) != NULL ?
			    archive_error_string(x->a) : "cannot read data");
		if (off < 0)
			return archive_fail(x, BD_EINVALID,
			    "data at a negative offset");
		/* A hole before the block counts as written. */
		if ((rc = archive_charge(x, len + ((uint64_t)off > extent ?
		    (uint64_t)off - extent : 0))) < 0)
			return rc;
		for (size_t done = 0; done < len;) {
			ssize_t n = pwrite(fd, (const char *)buf + done,
			    len - done, off + (off_t)done);

			if (n < 0) {
				if (errno == EINTR)
					continue;
				return archive_fail(x, -errno,
				    "cannot write: %s", strerror(errno));
			}
			done += (size_t)n;
		}
		if ((uint64_t)off + len > extent)
			extent = (uint64_t)off + len;
	}
	/* A sparse file may end with a hole. */
	if (archive_entry_size_is_set(e) && archive_entry_size(e) > 0 &&
	    (uint64_t)archive_entry_size(e) > extent) {
		if ((rc = archive_charge(x,
		    (uint64_t)archive_entry_size(e) - extent)) < 0)
			return rc;
		if (ftruncate(fd, archive_entry_size(e)) < 0)
			return archive_fail(x, -errno, "cannot write: %s",
			    strerror(errno));
	}
	return 0;
}

/* A regular file at path. */
static int
archive_file(struct archive_extract *x, struct archive_entry *e,
    const char *path)
{
	const char *leaf;
	struct timespec times[2];
	int dirfd, fd, rc;

	if (path[0] == '\0')
		return archive_fail(x, BD_EINVALID,
		    "a file in place of the package");
	/* Fail before making anything when the size alone is too much. */
	if ((rc = archive_check_size(x, e)) < 0)
		return rc;
	if ((dirfd = archive_parent(x, path, &leaf)) < 0)
		return dirfd;
	while ((fd = openat(dirfd, leaf,
	    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0) {
		if (errno != EEXIST)
			return archive_fail(x, -errno, "cannot create: %s",
			    strerror(errno));
		if ((rc = archive_replace(x, dirfd, leaf)) < 0)
			return rc;
	}
	rc = archive_copy_data(x, e, fd);
	if (rc == 0 && fchmod(fd, archive_perm(x, e, false)) < 0)
		rc = archive_fail(x, -errno, "cannot set mode: %s",
		    strerror(errno));
	if (rc == 0 && archive_mtime(e, &times[1])) {
		times[0] = times[1];
		(void)futimens(fd, times);
	}
	if (close(fd) < 0 && rc == 0)
		rc = archive_fail(x, -errno, "cannot write: %s",
		    strerror(errno));
	return rc;
}

/* A directory at path; its mode and time wait for the end. */
static int
archive_dir(struct archive_extract *x, struct archive_entry *e,
    const char *path)
{
	struct timespec mtime;
	const char *leaf;
	struct stat st;
	int dirfd;

	if (path[0] == '\0')
		return 0; /* "./": dest itself keeps its mode */
	if ((dirfd = archive_parent(x, path, &leaf)) < 0)
		return dirfd;
	if (mkdirat(dirfd, leaf, 0700) < 0) {
		if (errno != EEXIST)
			return archive_fail(x, -errno,
			    "cannot make directory: %s", strerror(errno));
		if (fstatat(dirfd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return archive_fail(x, -errno, "cannot stat: %s",
			    strerror(errno));
		if (S_ISLNK(st.st_mode))
			return archive_fail(x, BD_EESCAPE,
			    "a symlink of that name is already unpacked");
		if (!S_ISDIR(st.st_mode))
			return archive_fail(x, BD_EINVALID,
			    "a file of that name is already unpacked");
	}
	archive_note_dir(x, xstrdup(path), archive_perm(x, e, true),
	    archive_mtime(e, &mtime) ? &mtime : NULL);
	return 0;
}

/*
 * Whether target, a symlink at path, stays inside dest: relative, with
 * its ".." components all first and no more of them than path's depth
 * below dest.
 */
static int
archive_check_link(struct archive_extract *x, const char *path,
    const char *target)
{
	size_t depth = 0, ups = 0;
	bool named = false;
	const char *p, *why = NULL;
	char *q;

	for (p = path; *p != '\0'; p++)
		if (*p == '/')
			depth++;
	if (target[0] == '/')
		why = "is absolute";
	for (p = target; why == NULL && *p != '\0';) {
		const char *s = p;
		size_t n;

		while (*p != '/' && *p != '\0')
			p++;
		n = (size_t)(p - s);
		if (*p == '/')
			p++;
		if (n == 0 || (n == 1 && s[0] == '.'))
			continue;
		if (n == 2 && s[0] == '.' && s[1] == '.') {
			if (named)
				why = "has \"..\" after a name";
			else if (++ups > depth)
				why = "leaves the package";
		} else
			named = true;
	}
	if (why == NULL)
		return 0;
	q = archive_quote(target);
	archive_fail(x, BD_EESCAPE, "symlink to %s %s", q, why);
	free(q);
	return BD_EESCAPE;
}

/* A symlink at path. */
static int
archive_symlink(struct archive_extract *x, const char *path,
    const char *target)
{
	const char *leaf;
	int dirfd, rc;

	if (target == NULL || target[0] == '\0')
		return archive_fail(x, BD_EINVALID, "symlink without target");
	if (strlen(target) >= PATH_MAX)
		return archive_fail(x, BD_EINVALID, "symlink target too long");
	if (path[0] == '\0')
		return archive_fail(x, BD_EINVALID,
		    "symlink in place of the package");
	if ((rc = archive_check_link(x, path, target)) < 0)
		return rc;
	if ((dirfd = archive_parent(x, path, &leaf)) < 0)
		return dirfd;
	while (symlinkat(target, dirfd, leaf) < 0) {
		if (errno != EEXIST)
			return archive_fail(x, -errno,
			    "cannot make symlink: %s", strerror(errno));
		if ((rc = archive_replace(x, dirfd, leaf)) < 0)
			return rc;
	}
	return 0;
}

/*
 * A hard link at path to the earlier entry raw_target.  A link may carry
 * the file's data (cpio puts it on the last link, pax may too): then it
 * is written through the new link.
 */
static int
archive_hardlink(struct archive_extract *x, struct archive_entry *e,
    const char *path, const char *raw_target)
{
	const char *leaf, *tleaf, *slash;
	char *target = NULL, *tdir = NULL, *q = NULL;
	struct stat st;
	int tdirfd = -1, dirfd, rc;

	if ((rc = archive_clean_path(x, raw_target, "hard link target",
	    &target)) < 0)
		return rc;
	q = archive_quote(raw_target);
	if (target[0] == '\0' || path[0] == '\0' ||
	    strcmp(target, path) == 0) {
		rc = archive_fail(x, BD_EINVALID, "hard link to %s", q);
		goto out;
	}
	slash = strrchr(target, '/');
	tleaf = slash != NULL ? slash + 1 : target;
	tdir = xstrndup(target, slash != NULL ? (size_t)(slash - target) : 0);
	/* Only looked up: a missing directory is a missing target. */
	if ((tdirfd = archive_walk(x, x->destfd, tdir, 0, false)) < 0) {
		rc = tdirfd;
		if (x->cause != NULL) {
			free(*x->cause);
			*x->cause = NULL;
		}
		rc = archive_fail(x, rc == -ENOENT ? BD_EESCAPE : rc,
		    "hard link to %s, which is not an earlier entry", q);
		goto out;
	}
	if (fstatat(tdirfd, tleaf, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISREG(st.st_mode)) {
		rc = archive_fail(x, BD_EESCAPE, "hard link to %s, which is "
		    "not an earlier regular file", q);
		goto out;
	}
	if ((dirfd = archive_parent(x, path, &leaf)) < 0) {
		rc = dirfd;
		goto out;
	}
	while (linkat(tdirfd, tleaf, dirfd, leaf, 0) < 0) {
		if (errno != EEXIST) {
			rc = archive_fail(x, -errno,
			    "cannot make hard link: %s", strerror(errno));
			break;
		}
		if ((rc = archive_replace(x, dirfd, leaf)) < 0)
			break;
	}
	if (rc == 0 && archive_entry_size_is_set(e) &&
	    archive_entry_size(e) > 0) {
		int fd = openat(dirfd, leaf,
		    O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC);

		if (fd < 0)
			rc = archive_fail(x, -errno, "cannot write: %s",
			    strerror(errno));
		else {
			rc = archive_copy_data(x, e, fd);
			if (close(fd) < 0 && rc == 0)
				rc = archive_fail(x, -errno,
				    "cannot write: %s", strerror(errno));
		}
	}
out:
	if (tdirfd >= 0)
		close(tdirfd);
	free(target);
	free(tdir);
	free(q);
	return rc;
}

/* Unpacks the entry e just read. */
static int
archive_entry(struct archive_extract *x, struct archive_entry *e)
{
	const char *raw = archive_entry_pathname(e);
	char *path;
	int rc;

	/* libarchive frees the name with the next header; causes may name
	 * it after that. */
	free(x->name_copy);
	x->name_copy = xstrdup(raw != NULL ? raw : "?");
	x->name = x->name_copy;
	if (raw == NULL)
		return archive_fail(x, BD_EINVALID, "name cannot be read");
	if (x->entries + x->implied >= x->max_entries)
		return archive_too_many(x);
	if ((rc = archive_clean_path(x, raw, "path", &path)) < 0)
		return rc;
	if (archive_entry_hardlink(e) != NULL)
		rc = archive_hardlink(x, e, path, archive_entry_hardlink(e));
	else {
		switch (archive_entry_filetype(e)) {
		case AE_IFREG:
			rc = archive_file(x, e, path);
			break;
		case AE_IFDIR:
			rc = archive_dir(x, e, path);
			break;
		case AE_IFLNK:
			rc = archive_symlink(x, path, archive_entry_symlink(e));
			break;
		case AE_IFCHR:
		case AE_IFBLK:
			rc = archive_fail(x, BD_EESCAPE, "is a device node");
			break;
		case AE_IFIFO:
			rc = archive_fail(x, BD_EESCAPE, "is a FIFO");
			break;
		case AE_IFSOCK:
			rc = archive_fail(x, BD_EESCAPE, "is a socket");
			break;
		default:
			rc = archive_fail(x, BD_EINVALID,
			    "has an unknown type");
			break;
		}
	}
	free(path);
	if (rc == 0)
		x->entries++;
	return rc;
}

/* Deepest first; one path's notes together, the last of them first. */
static int
archive_dirfix_order(const void *a, const void *b)
{
	const struct archive_dirfix *da = a, *db = b;
	int c;

	if (da->depth != db->depth)
		return da->depth > db->depth ? -1 : 1;
	if ((c = strcmp(da->path, db->path)) != 0)
		return c;
	return da->seq > db->seq ? -1 : da->seq < db->seq;
}

/*
 * Gives the directories their modes and times, now that all is unpacked:
 * children before their parents, so that a parent's mode (0500, say) never
 * keeps a process that is not root from reaching them.
 */
static int
archive_fix_dirs(struct archive_extract *x)
{
	if (x->ndirs > 1) /* dirs is NULL when there are none */
		qsort(x->dirs, x->ndirs, sizeof(*x->dirs),
		    archive_dirfix_order);
	for (size_t i = 0; i < x->ndirs; i++) {
		struct archive_dirfix *d = &x->dirs[i];
		int fd;

		if (i > 0 && strcmp(d->path, x->dirs[i - 1].path) == 0)
			continue; /* an earlier note of the same path */
		x->name = d->path;
		if ((fd = archive_walk(x, x->destfd, d->path, 0, false)) < 0)
			return fd;
		if (fchmod(fd, d->mode) < 0) {
			int err = errno;

			close(fd);
			return archive_fail(x, -err, "cannot set mode: %s",
			    strerror(err));
		}
		if (d->has_time) {
			struct timespec times[2] = { d->mtime, d->mtime };

			(void)futimens(fd, times);
		}
		close(fd);
	}
	return 0;
}

/* Whether the directory fd holds nothing. */
static int
archive_dest_empty(int fd)
{
	struct dirent *de;
	DIR *d;
	int dfd, rc = 0;

	if ((dfd = dup(fd)) < 0)
		return -errno;
	if ((d = fdopendir(dfd)) == NULL) {
		rc = -errno;
		close(dfd);
		return rc;
	}
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0) {
			rc = -ENOTEMPTY;
			break;
		}
	closedir(d);
	return rc;
}

/* The formats and compressions read; see archive.h. */
static void
archive_support(struct archive *a)
{
	/*
	 * Not mtree: its "archives" are lists of local files whose contents
	 * libarchive reads from this machine's disk.  Not the filters that
	 * only run an external program (lrzip, lzop, grzip), nor uuencode
	 * and rpm, which no package uses.
	 */
	static const int formats[] = {
		ARCHIVE_FORMAT_ZIP, ARCHIVE_FORMAT_TAR, ARCHIVE_FORMAT_CPIO,
		ARCHIVE_FORMAT_7ZIP, ARCHIVE_FORMAT_RAR, ARCHIVE_FORMAT_RAR_V5,
		ARCHIVE_FORMAT_ISO9660, ARCHIVE_FORMAT_CAB, ARCHIVE_FORMAT_LHA,
		ARCHIVE_FORMAT_XAR, ARCHIVE_FORMAT_AR,
	};
	static const int filters[] = {
		ARCHIVE_FILTER_GZIP, ARCHIVE_FILTER_BZIP2, ARCHIVE_FILTER_XZ,
		ARCHIVE_FILTER_LZMA, ARCHIVE_FILTER_LZIP, ARCHIVE_FILTER_ZSTD,
		ARCHIVE_FILTER_LZ4, ARCHIVE_FILTER_COMPRESS,
	};

	/* A format or filter this libarchive lacks just goes unread. */
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
		(void)archive_read_support_format_by_code(a, formats[i]);
	for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++)
		(void)archive_read_support_filter_by_code(a, filters[i]);
}

/* Reads every entry of x->a and unpacks it. */
static int
archive_run(struct archive_extract *x)
{
	struct archive_entry *e;
	int r, rc;

	for (;;) {
		if ((rc = archive_check_cancel(x)) < 0)
			return rc;
		r = archive_read_next_header(x->a, &e);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN) {
			const char *msg = archive_error_string(x->a);
			char *last = x->name != NULL ?
			    archive_quote(x->name) : NULL;

			x->name = NULL;
			archive_fail(x, BD_EINVALID,
			    "cannot read the archive%s%s: %s",
			    last != NULL ? " after entry " : "",
			    last != NULL ? last : "",
			    msg != NULL ? msg : "unknown error");
			free(last);
			return BD_EINVALID;
		}
		if ((rc = archive_entry(x, e)) < 0)
			return rc;
	}
	return archive_fix_dirs(x);
}

int
bd_archive_extract(const char *path, const char *dest,
    const struct bd_archive_limits *lim, struct bd_archive_result *result,
    char **cause)
{
	struct archive_extract x = { .destfd = -1, .cause = cause };
	const char *why;
	int fd = -1, rc;

	if (cause != NULL)
		*cause = NULL;
	x.max_bytes = lim != NULL && lim->max_bytes != 0 ? lim->max_bytes :
	    UINT64_MAX;
	x.max_entries = lim != NULL && lim->max_entries != 0 ?
	    lim->max_entries : UINT64_MAX;
	x.readable_by_all = lim != NULL && lim->readable_by_all;
	x.cancel = lim != NULL ? lim->cancel : NULL;
	if ((rc = bd_archive_api_load(&why)) < 0) {
		if (cause != NULL)
			*cause = xstrdup(why);
		return rc;
	}
	if ((x.destfd = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		rc = -errno;
		archive_fail(&x, rc, "cannot open %s: %s", dest,
		    strerror(-rc));
		goto out;
	}
	if ((rc = archive_dest_empty(x.destfd)) < 0) {
		archive_fail(&x, rc, "%s: %s", dest, strerror(-rc));
		goto out;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		rc = -errno;
		archive_fail(&x, rc, "cannot open %s: %s", path,
		    strerror(-rc));
		goto out;
	}
	if ((x.a = archive_read_new()) == NULL) {
		rc = archive_fail(&x, -ENOMEM, "out of memory");
		goto out;
	}
	archive_support(x.a);
	if (archive_read_open_fd(x.a, fd, ARCHIVE_READ_BLOCK) != ARCHIVE_OK) {
		const char *msg = archive_error_string(x.a);

		rc = archive_fail(&x, BD_EINVALID,
		    "cannot read the archive: %s",
		    msg != NULL ? msg : "unknown error");
		goto out;
	}
	rc = archive_run(&x);
out:
	if (x.a != NULL)
		archive_read_free(x.a);
	if (fd >= 0)
		close(fd);
	if (x.cache_path != NULL)
		close(x.cache_fd);
	free(x.cache_path);
	free(x.name_copy);
	for (size_t i = 0; i < x.ndirs; i++)
		free(x.dirs[i].path);
	free(x.dirs);
	if (x.destfd >= 0)
		close(x.destfd);
	if (result != NULL) {
		result->entries = x.entries;
		result->bytes = x.bytes;
	}
	return rc;
}
