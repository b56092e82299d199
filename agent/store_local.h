/* SPDX-License-Identifier: MIT */
#ifndef BD_STORE_LOCAL_H
#define BD_STORE_LOCAL_H

/*
 * The state store on a local spool directory (docs/protocol.md §7): each
 * table a directory, each partition a directory in it, each row one JSON
 * file with its ETag inside, with the semantics of Azure Tables
 * (store.h).  Conditional writes take a lock on the row's file, so two
 * processes that race with the same ETag get one success and one -ESTALE.
 */

#include <stdint.h>
#include <uv.h>

#include "store.h"

/*
 * Opens (creating what is missing) the tables under spool_dir/tables.
 * Returns 0 and *out (free with bd_store_free(); no call may be in flight
 * then), or a negative errno with *cause (caller frees).
 *
 * Keys are percent-encoded into file names; a key whose encoding passes
 * 250 bytes gives -ENAMETOOLONG, and one with a character Azure refuses
 * in keys ('/', '\\', '#', '?', control characters) -EINVAL, both from the
 * call itself.  Properties must be a flat object of strings, numbers and
 * booleans (-EINVAL), at most 1 MiB as JSON (BD_ETOOBIG).  An etag of "*"
 * matches any existing row; remove with etag NULL is unconditional.
 */
int bd_store_local_new(uv_loop_t *loop, const char *spool_dir,
    struct bd_store **out, char **cause);

/* Operation counters, for tests and metrics; read on the loop thread. */
struct bd_store_local_stats {
	uint64_t gets, inserts, replaces, merges, removes, queries;
	uint64_t rows_read;	/* rows returned by queries */
	uint64_t conflicts;	/* -ESTALE: the ETag did not match */
	uint64_t exists;	/* -EEXIST from insert */
	uint64_t not_found;	/* -ENOENT */
	uint64_t lock_retries;	/* a row replaced while we waited for it */
	uint64_t corrupt;	/* row files that could not be read */
	uint64_t temps_removed; /* stale temporary files cleaned */
	uint64_t failures;	/* calls that ended with another error */
	uint64_t dir_syncs;	/* fsyncs of a partition directory */
	uint64_t dir_syncs_shared; /* writes another write's fsync covered */
	uint64_t rows_reused;	/* writes that did not read the row again */
	/* Writes whose file was written out, not fsynced: the commit
	   of its directory makes it durable (fsutil.h). */
	uint64_t written_out;
	/* Lazy writes done on the loop thread, not in the thread pool. */
	uint64_t lazy_on_loop;
};

/* Copies s's counters into *st; 0, or -EINVAL if s is not local. */
int bd_store_local_stats(const struct bd_store *s,
    struct bd_store_local_stats *st);

/*
 * Whether writes fsync the row's directory after the rename (default on;
 * the row file itself is fsynced before it is renamed, or, on a journaled
 * ext4 (bd_fs_fsync_commits_renames()), only written out: the directory's
 * commit covers it).  A write's callback runs once its directory's fsync
 * is done; writes waiting at once share one (group commit).  Returns 0 or
 * -EINVAL as above.
 */
int bd_store_local_set_sync(struct bd_store *s, int on);

/*
 * How long the first write waiting for a commit holds it back, so that
 * the writes that follow share it (default 0: a commit starts as soon as
 * none runs).  The rows are visible at once; only the callbacks wait.
 * Returns 0 or -EINVAL as above.
 */
int bd_store_local_set_commit_delay(struct bd_store *s, unsigned ms);

/*
 * Makes every write renamed so far durable now, on the calling thread
 * (an fsync of each directory writes wait on), for a process about to
 * _exit() without running its loop again.  Their callbacks still come
 * with their commit.  0, the first fsync's negative errno, or -EINVAL as
 * above.
 */
int bd_store_local_flush(struct bd_store *s);

#endif
