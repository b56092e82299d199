/* SPDX-License-Identifier: MIT */
#ifndef BD_SPOOL_H
#define BD_SPOOL_H

/*
 * What the local spool's queue (source_local.c) and tables (store_local.c)
 * share on disk (docs/protocol.md §7, "Common rules"): random tokens,
 * temporary files written under a lock and renamed into place, the
 * removal of a crash's temporary files, directories opened (and made) by
 * path, and waiting for another writer's lock.  These block: callers run
 * them in uv_queue_work, apart from opening at start-up.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BD_SPOOL_DIR_MODE 0750
#define BD_SPOOL_FILE_MODE 0640
#define BD_SPOOL_TEMP_STALE_MS 10000	/* a temporary file this old is a leftover */
#define BD_SPOOL_TMP_LEN 24		/* ".tmp-" + 16 hex + NUL, rounded up */

/* Fills buf (2 * n + 1 bytes) with n random bytes in hex; n <= 32. */
void bd_spool_random_hex(char *buf, size_t n);

/* How far a temporary file's content is pushed before it is renamed. */
enum bd_spool_sync {
	BD_SPOOL_NO_SYNC,	/* left in the page cache */
	BD_SPOOL_FSYNC,		/* fsync()ed: data and inode committed */
	/* Data written to the device and waited for, nothing committed
	   (sync_file_range): for a caller whose fsync of the directory
	   after the rename commits both (bd_fs_fsync_commits_renames()). */
	BD_SPOOL_WRITE_OUT,
};

/*
 * Writes data to a new ".tmp-<16 hex>" in dfd, flock()ed (which tells a
 * cleaner that its writer lives) and synced as sync says.  Its name goes
 * to tmp.  Returns the open fd (caller closes, and renames or unlinks
 * tmp), or a negative errno with nothing left behind.
 */
int bd_spool_write_temp(int dfd, const char *data, size_t len,
    enum bd_spool_sync sync, char tmp[BD_SPOOL_TMP_LEN]);

/*
 * Removes dfd/name if it is a temporary file left by a crash: named
 * ".tmp-*", older than BD_SPOOL_TEMP_STALE_MS and not locked by a live
 * writer (a stale non-file of that name goes too).  True if removed.
 */
bool bd_spool_clean_temp(int dfd, const char *name, int64_t now_ms);

/* Opens dir/sub (sub may be NULL) as a directory, making it; fd or -errno. */
int bd_spool_open_dir(const char *dir, const char *sub);

/* dir made absolute, so that a later chdir() does not move it; caller frees. */
char *bd_spool_absolute(const char *dir);

/*
 * Takes the exclusive lock on fd, waiting at most wait_ms: a writer holds
 * it for a write and an fsync, and a process stopped while it holds one
 * must not take the thread pool with it.  Returns 0 or -ETIMEDOUT.
 */
int bd_spool_flock_wait(int fd, int64_t wait_ms);

#endif
