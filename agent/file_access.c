/* SPDX-License-Identifier: MIT */
/*
 * Opening files with a task user's rights; see file_access.h.
 *
 * The switch is per thread: setfsuid(2) and setfsgid(2) change only the
 * calling thread, and the setgroups system call, made directly, does too.
 * Going from fsuid 0 to the task's uid clears CAP_DAC_OVERRIDE and the
 * other file-system capabilities from the thread's effective set, and
 * going back restores them, so between enter and leave the thread checks
 * permissions exactly as a process of the task user would.  Nothing here
 * keeps state between calls.
 */
#include "file_access.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fsutil.h"
#include "xmalloc.h"

/* setgroups for this thread only (glibc's wrapper changes all of them). */
static int
file_access_setgroups(size_t n, const gid_t *groups)
{
	return (int)syscall(SYS_setgroups, n, groups);
}

int
bd_file_access_enter(const struct bd_process_identity *id,
    struct bd_file_access_saved *saved)
{
	int n;

	memset(saved, 0, sizeof(*saved));
	if (id == NULL)
		return 0;
	if (id->ngroups > sizeof(saved->groups) / sizeof(saved->groups[0]))
		return -E2BIG;
	if ((n = getgroups((int)(sizeof(saved->groups) /
	    sizeof(saved->groups[0])), saved->groups)) == -1)
		return -errno;
	saved->ngroups = n;
	saved->fsuid = (uid_t)setfsuid((uid_t)-1);
	saved->fsgid = (gid_t)setfsgid((gid_t)-1);
	if (file_access_setgroups(id->ngroups, id->groups) == -1)
		return -errno;
	setfsgid(id->gid);
	setfsuid(id->uid);
	saved->switched = true;
	if ((gid_t)setfsgid((gid_t)-1) != id->gid ||
	    (uid_t)setfsuid((uid_t)-1) != id->uid) {
		bd_file_access_leave(saved);
		return -EPERM;
	}
	return 0;
}

void
bd_file_access_leave(struct bd_file_access_saved *saved)
{
	if (!saved->switched)
		return;
	/* fsuid first: back at 0 the thread has its capabilities again. */
	setfsuid(saved->fsuid);
	setfsgid(saved->fsgid);
	if ((uid_t)setfsuid((uid_t)-1) != saved->fsuid ||
	    file_access_setgroups((size_t)saved->ngroups, saved->groups) == -1)
		abort(); /* a thread stuck with a task's rights: never go on */
	saved->switched = false;
}

int
bd_file_access_open(const struct bd_process_identity *id, const char *path,
    int flags, mode_t mode)
{
	struct bd_file_access_saved saved;
	int fd, rc;

	if ((rc = bd_file_access_enter(id, &saved)) < 0)
		return rc;
	fd = open(path, flags, mode);
	rc = fd == -1 ? -errno : fd;
	bd_file_access_leave(&saved);
	return rc;
}

int
bd_file_access_can_read(const struct bd_process_identity *id,
    const char *path)
{
	struct bd_file_access_saved saved;
	char *inside;
	int fd, rc, yes = 0;

	if ((rc = bd_file_access_enter(id, &saved)) < 0)
		return rc;
	/* Readable, or (a directory) searchable: names inside can be opened. */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) != -1) {
		yes = 1;
		close(fd);
	}
	inside = xasprintf("%s/.", path);
	if (!yes && (fd = open(inside, O_PATH | O_CLOEXEC)) != -1) {
		yes = 1;
		close(fd);
	}
	free(inside);
	bd_file_access_leave(&saved);
	return yes;
}

/* The owner a chown walk gives. */
struct file_access_owner {
	uid_t uid;
	gid_t gid;
};

/* Chowns one entry; walks into it when it is a directory. */
static int
file_access_chown_enter(int dfd, const char *name, unsigned char d_type,
    void *arg)
{
	const struct file_access_owner *o = arg;
	struct stat st;

	if (fchownat(dfd, name, o->uid, o->gid, AT_SYMLINK_NOFOLLOW) == -1)
		return -errno;
	if (d_type == DT_UNKNOWN) {
		/* Some file systems do not say: ask, without following. */
		if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1)
			return -errno;
		return S_ISDIR(st.st_mode) ? 1 : 0;
	}
	return d_type == DT_DIR ? 1 : 0;
}

static const struct bd_walk_ops file_access_chown_ops = {
	.enter = file_access_chown_enter,
};

int
bd_file_access_chown_tree(const char *dir, uid_t uid, gid_t gid)
{
	int dfd, rc;

	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		return -errno;
	if (fchown(dfd, uid, gid) == -1) {
		rc = -errno;
		close(dfd);
		return rc;
	}
	return bd_walk_tree(dfd, &file_access_chown_ops,
	    &(struct file_access_owner){ .uid = uid, .gid = gid });
}
