/* SPDX-License-Identifier: MIT */
/*
 * Resource files from the local filesystem: a file:// storageContainerUrl
 * is a directory whose regular files are its blobs, named by their paths
 * relative to it, and a file:// httpUrl is a file that must be regular
 * and readable.  download.c runs these in the thread pool and turns their
 * errnos into Azure's failure codes; nothing here keeps state.
 *
 * A listing walks the tree with openat/fdopendir from one directory
 * descriptor, never following symlinks, and is bounded in names and
 * depth, since the tree may be anybody's.
 */
#include "download_local.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "file_access.h"
#include "xmalloc.h"

/* A listing in progress. */
struct local_list {
	const char *prefix;
	size_t max;
	char **names;
	size_t n;
};

/* Appends name (taken) to the listing, failing past the limit. */
static int
local_list_add(struct local_list *l, char *name)
{
	if (l->n >= l->max) {
		free(name);
		return BD_ETOOBIG;
	}
	l->names = xreallocarray(l->names, l->n + 1, sizeof(*l->names));
	l->names[l->n++] = name;
	return 0;
}

/*
 * Whether the subtree dir (with a trailing '/') can hold a name that
 * starts with prefix: one of the two must start with the other.
 */
static bool
local_prefix_reaches(const char *dir, const char *prefix)
{
	size_t a = strlen(dir), b = strlen(prefix);

	return strncmp(dir, prefix, a < b ? a : b) == 0;
}

/* Lists the regular files below the open directory dfd (closed here). */
static int
local_list_dir(struct local_list *l, int dfd, const char *rel, int depth)
{
	struct dirent *de;
	struct stat st;
	DIR *dir;
	int rc = 0;

	if (depth > BD_DOWNLOAD_LOCAL_MAX_DEPTH) {
		close(dfd);
		return BD_ETOOBIG;
	}
	if ((dir = fdopendir(dfd)) == NULL) {
		rc = -errno;
		close(dfd);
		return rc;
	}
	while (rc == 0 && (errno = 0, de = readdir(dir)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(dir), de->d_name, &st,
		    AT_SYMLINK_NOFOLLOW) == -1) {
			if (errno != ENOENT)
				rc = -errno;
			continue;
		}
		char *name = xasprintf("%s%s", rel, de->d_name);
		if (S_ISREG(st.st_mode)) {
			if (strncmp(name, l->prefix, strlen(l->prefix)) == 0)
				rc = local_list_add(l, name);
			else
				free(name);
			continue;
		}
		/* Symlinks and special files are not blobs. */
		char *sub = xasprintf("%s/", name);
		free(name);
		if (S_ISDIR(st.st_mode) && local_prefix_reaches(sub,
		    l->prefix)) {
			int fd = openat(dirfd(dir), de->d_name, O_RDONLY |
			    O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			rc = fd == -1 ? -errno : local_list_dir(l, fd, sub,
			    depth + 1);
		}
		free(sub);
	}
	if (rc == 0 && errno != 0)
		rc = -errno;
	closedir(dir);
	return rc;
}

/* Orders names bytewise, as a blob listing is. */
static int
local_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
bd_download_local_list(const struct bd_process_identity *id, const char *dir,
    const char *prefix, size_t max, char ***names, size_t *n)
{
	struct local_list l = { prefix != NULL ? prefix : "", max, NULL, 0 };
	struct bd_file_access_saved saved;
	int fd, rc;

	*names = NULL;
	*n = 0;
	if ((rc = bd_file_access_enter(id, &saved)) < 0)
		return rc;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	rc = fd == -1 ? -errno : local_list_dir(&l, fd, "", 0);
	bd_file_access_leave(&saved);
	if (rc != 0) {
		for (size_t i = 0; i < l.n; i++)
			free(l.names[i]);
		free(l.names);
		return rc;
	}
	if (l.n > 1)
		qsort(l.names, l.n, sizeof(*l.names), local_cmp);
	*names = l.names;
	*n = l.n;
	return 0;
}

int
bd_download_local_open(const struct bd_process_identity *id, const char *path)
{
	struct stat st;
	int fd, rc = 0;

	/* O_NONBLOCK: a FIFO must not hang the opening thread. */
	if ((fd = bd_file_access_open(id, path, O_RDONLY | O_CLOEXEC |
	    O_NONBLOCK, 0)) < 0)
		return fd;
	if (fstat(fd, &st) == -1)
		rc = -errno;
	else if (!S_ISREG(st.st_mode))
		rc = -EINVAL;
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return fd;
}
