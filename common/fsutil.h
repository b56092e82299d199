/* SPDX-License-Identifier: MIT */
#ifndef BD_FSUTIL_H
#define BD_FSUTIL_H

/*
 * Filesystem helpers: directories, removal, atomic writes, copies and
 * lexical path checks.  All return 0 or a negative errno.  These block, so
 * the agent calls the slow ones (big copies, removal of big trees) from
 * uv_queue_work.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Creates path and its missing parents with mode; an existing dir is fine. */
int bd_mkdir_p(const char *path, mode_t mode);

/*
 * Removes path and everything below it without following symlinks.  A
 * missing path is success.
 */
int bd_rm_rf(const char *path);

/* Removes everything inside the directory path, keeping the directory. */
int bd_empty_dir(const char *path);

/*
 * A walk of a directory tree by descriptors, never following a symlink:
 * for each entry of a directory, enter(dfd, name, d_type, arg) is called
 * with the open directory that holds it.  It returns 1 to walk into the
 * entry (opened with O_NOFOLLOW, so a symlink is never walked into), 0
 * to go on with the next, or a negative errno (recorded; the walk goes
 * on).  After the entries of a directory walked into, leave(dfd, name,
 * arg) is called for it (NULL: nothing), and what it returns is recorded
 * the same way.
 */
struct bd_walk_ops {
	int (*enter)(int dfd, const char *name, unsigned char d_type,
	    void *arg);
	int (*leave)(int dfd, const char *name, void *arg);
};

/*
 * Walks the entries below the open directory dfd, which it closes.
 * Returns 0 or the first negative errno met (-ELOOP past 4096 levels);
 * an entry gone meanwhile (ENOENT) is no error.
 */
int bd_walk_tree(int dfd, const struct bd_walk_ops *ops, void *arg);

/*
 * Writes all len bytes of data to fd, again after EINTR and short writes.
 * 0 or a negative errno (-EIO for a write that wrote nothing).
 */
int bd_write_all(int fd, const void *data, size_t len);

/*
 * Writes data to path atomically: a temporary file in the same directory,
 * write, fsync, rename, fsync of the directory.
 */
int bd_write_file_atomic(const char *path, const void *data, size_t len,
    mode_t mode);

/*
 * The same without the fsyncs: readers see the old or the new content
 * whole, and a crash of the writing process loses nothing, but a power
 * loss may.  For state that only has to outlive a process.
 */
int bd_write_file_replace(const char *path, const void *data, size_t len,
    mode_t mode);

/*
 * Reads a whole file of at most max bytes into *data (NUL-terminated; caller
 * frees) and its length into *len.  A bigger file gives BD_ETOOBIG.
 */
int bd_read_file(const char *path, size_t max, char **data, size_t *len);

/*
 * Copies the regular file src to dst (created with mode, replaced if it
 * exists) through a temporary name in dst's directory, so dst is never seen
 * half written.  *copied gets the byte count if not NULL.
 */
int bd_copy_file(const char *src, const char *dst, mode_t mode,
    int64_t *copied);

/*
 * The same from the open file descriptor in (left open, read from its
 * current offset), so that the file read is the one that was opened.
 */
int bd_copy_fd(int in, const char *dst, mode_t mode, int64_t *copied);

/* a + "/" + b, or b alone when b is absolute; caller frees. */
char *bd_path_join(const char *a, const char *b);

/*
 * Normalises a path lexically: collapses "//" and ".", resolves ".." against
 * earlier segments.  A relative path that climbs above its start keeps its
 * leading "..".  Caller frees.
 */
char *bd_path_normalize(const char *path);

/*
 * True when the relative path rel, normalised, stays inside its base
 * directory (it is not absolute and does not climb out with "..").
 */
bool bd_path_stays_inside(const char *rel);

/* The directory part of path ("." if none); caller frees. */
char *bd_path_dirname(const char *path);

/*
 * Whether an fsync() of dfd commits, after a flush of the disk's cache,
 * the journal up to dfd's last change, and so every metadata change made
 * before that, renames and block allocations included: ext4 with an internal journal in data=ordered or
 * data=journal mode, with barriers and without fast commits (all
 * defaults), read from /proc/fs.  A journal commits in order, so a write
 * whose data is already on the device (sync_file_range()) can rename and
 * then fsync the directory once: one journal commit instead of two, and
 * one for all the writes in that directory before it.  False wherever
 * that cannot be told.
 */
bool bd_fs_fsync_commits_renames(int dfd);

/*
 * Whether dfd is on an ext4 made without a journal, where every new file
 * walks past each inode of its group freed in the last minute or more
 * (the kernel's recently_deleted()): a place where a busy node slows.
 */
bool bd_fs_ext4_without_journal(int dfd);

#endif
