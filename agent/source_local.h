/* SPDX-License-Identifier: MIT */
#ifndef BD_SOURCE_LOCAL_H
#define BD_SOURCE_LOCAL_H

/*
 * The task source on a local spool directory (docs/protocol.md §7): the
 * queue is a directory of message files that several batchd processes on
 * one machine share, with the semantics of an Azure Storage queue
 * (source.h).  A receive claims a message by renaming it into the leased
 * set; the lease belongs to this source's owner lock, so a process that
 * dies gives its messages back at once, and a lease whose visibility time
 * passes is received again even while its holder lives.
 */

#include <stdint.h>
#include <uv.h>

#include "source.h"

/*
 * Opens (creating what is missing) the queue queue_name and its poison
 * queue under spool_dir, and takes an owner lock in spool_dir/owners for
 * node_id.  queue_name: 3 to 63 of [a-z0-9-].  Returns 0 and *out (free
 * with bd_source_free(); no call may be in flight then), or a negative
 * errno with *cause (caller frees).  Blocks briefly on the disk: call it
 * at start-up.
 */
int bd_source_local_new(uv_loop_t *loop, const char *spool_dir,
    const char *queue_name, const char *node_id, struct bd_source **out,
    char **cause);

/* Operation counters, for tests and metrics; read on the loop thread. */
struct bd_source_local_stats {
	uint64_t receives;	/* receive calls completed */
	uint64_t received;	/* messages handed out */
	uint64_t updates;	/* update calls that succeeded */
	uint64_t removes;	/* remove calls that succeeded */
	uint64_t sends;		/* send calls that succeeded */
	uint64_t leases_lost;	/* update/remove that found the lease gone */
	uint64_t claims_lost;	/* claims another receiver won first */
	uint64_t taken_expired;	/* leases received after their timeout */
	uint64_t taken_dead;	/* leases received from a dead owner */
	uint64_t visible_scans; /* readdirs of the visible set */
	uint64_t lease_scans;	/* readdirs of the leased set */
	uint64_t quarantined;	/* unreadable message files moved to bad/ */
	uint64_t temps_removed; /* stale temporary files cleaned */
	uint64_t failures;	/* calls that ended with another error */
};

/*
 * Copies s's counters into *st.  Returns 0, or -EINVAL when s is not a
 * local source.
 */
int bd_source_local_stats(const struct bd_source *s,
    struct bd_source_local_stats *st);

/*
 * Whether renames and removals of leases are followed by an fsync of
 * their directory (default on).  A message's content is always written
 * with fsync; off, a power loss may roll a receive, renewal or delete
 * back (never a send).  Returns 0 or -EINVAL as above.
 */
int bd_source_local_set_sync(struct bd_source *s, int on);

#endif
