/* SPDX-License-Identifier: MIT */
#ifndef BD_FILE_ACCESS_H
#define BD_FILE_ACCESS_H

/*
 * Files touched on a task's behalf, with the task user's rights.  batchd
 * runs as root, so every path a task can influence (its output patterns,
 * symlinks it leaves behind, file:// resource files and containers) is
 * opened with the file-system credentials of the task's user: the calling
 * thread's fsuid, fsgid and supplementary groups are switched for the
 * duration of the call (all three are per-thread on Linux; the raw
 * setgroups system call is used, since glibc's wrapper changes every
 * thread).  A task that points a symlink at /etc/shadow or at the agent's
 * configuration gets EACCES, never the content.
 *
 * A NULL identity means batchd's own rights (batchd is not root, so tasks
 * run as batchd itself): every function then acts directly.
 */

#include <stdbool.h>
#include <sys/types.h>

#include "process.h"

/* The credentials a thread had before bd_file_access_enter(). */
struct bd_file_access_saved {
	bool switched;
	uid_t fsuid;
	gid_t fsgid;
	int ngroups;
	gid_t groups[64];
};

/*
 * Switches the calling thread's file-system credentials to id's (NULL:
 * nothing changes).  Returns 0, or a negative errno when the switch is
 * not possible (then nothing changed).  Every successful enter must be
 * followed by bd_file_access_leave() on the same thread before it does
 * anything else for batchd; in between it must not start a thread (a new
 * thread inherits the credentials) nor queue work.
 */
int bd_file_access_enter(const struct bd_process_identity *id,
    struct bd_file_access_saved *saved);

/* Restores what bd_file_access_enter() saved; aborts if it cannot. */
void bd_file_access_leave(struct bd_file_access_saved *saved);

/*
 * open(2) of path with id's rights: a file descriptor, or a negative
 * errno (-EACCES when the task's user may not open it).
 */
int bd_file_access_open(const struct bd_process_identity *id,
    const char *path, int flags, mode_t mode);

/*
 * Gives dir and everything below it to uid:gid without following
 * symlinks (lchown semantics, by descriptors from one open directory, so
 * a symlink in the tree never leads out of it).  0 or the first negative
 * errno met; the walk goes on past errors.
 */
int bd_file_access_chown_tree(const char *dir, uid_t uid, gid_t gid);

/*
 * Whether id could open path for reading (a file) or search it (a
 * directory): 1 yes, 0 no, a negative errno when it cannot be told.
 */
int bd_file_access_can_read(const struct bd_process_identity *id,
    const char *path);

#endif
