/* SPDX-License-Identifier: MIT */
#ifndef BD_DAEMON_H
#define BD_DAEMON_H

/*
 * The node daemon: takes task messages from the pool's source, runs them
 * with the runner, and reports to the pool's store, as docs/protocol.md
 * describes.  States of the node follow Azure's ComputeNodeState:
 *
 *   starting -> waitingforstarttask -> idle <-> running
 *      |              \-> starttaskfailed        \-> leavingpool (drain)
 *      \-> unusable (the pool's application packages failed)
 *
 * The daemon owns the loop's long-lived parts: the poll and heartbeat
 * timers, the list of assignments (one per message being worked on), the
 * job cache.  Policy lives here and in assignment.c; the backends only
 * move bytes.
 */

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "environment.h"
#include "http.h"
#include "job_spec.h"
#include "source.h"
#include "store.h"
#include "task_spec.h"

struct bd_task_users;

struct bd_daemon;
struct bd_storage_account;

enum bd_deallocation {
	BD_DEALLOCATE_REQUEUE,	     /* default */
	BD_DEALLOCATE_TERMINATE,
	BD_DEALLOCATE_TASK_COMPLETION,
	BD_DEALLOCATE_RETAINED_DATA,
};

/* What the daemon needs from the configuration; strings are borrowed. */
struct bd_daemon_settings {
	const char *pool_id;
	const char *node_id;
	const char *node_root;
	const char *state_dir;
	const char *spool_dir;	/* the local spool's, or NULL */
	int task_slots;
	bool is_dedicated;
	int64_t poll_min_ms;
	int64_t poll_max_ms;
	int64_t lease_ms;
	int max_dequeue_count;
	int64_t heartbeat_ms;
	int64_t job_check_ms;	/* how often jobs are checked for termination */
	int64_t kill_grace_ms;
	int64_t stdout_max_bytes, stderr_max_bytes; /* 0: no cap */
	enum bd_deallocation deallocation;
	int64_t default_retention_ms;	/* tasks that set no retentionTime */
	uint64_t free_space_reserve_bytes; /* under node_root; 0: none */
	const struct bd_task_spec *start_task; /* or NULL */
	const struct bd_storage_account *storage; /* for autoStorageContainer */
	/* Application packages (NULL: none) and the pool's, installed
	   before the start task; a failure makes the node unusable. */
	struct bd_app_packages *packages;
	const struct bd_application_package_reference *pool_packages;
	size_t n_pool_packages;
	/*
	 * Makes the HTTP client when the daemon was created without one: at
	 * the first task, start task or watched job, so an idle node on the
	 * local spool does not load libcurl.  NULL: http is all there is.
	 */
	struct bd_http *(*get_http)(void *arg);
	void *http_arg;
	struct bd_task_users *users; /* borrowed; NULL: tasks run as batchd */
};

/*
 * Creates a daemon on loop with its backends (both taken over: the daemon
 * frees them) and http (borrowed; may be NULL until a task needs it).
 * Returns 0 and *out.
 */
int bd_daemon_new(uv_loop_t *loop, const struct bd_daemon_settings *s,
    struct bd_source *source, struct bd_store *store, struct bd_http *http,
    struct bd_daemon **out, char **cause);

/* Registers the node, runs the start task, starts polling. */
void bd_daemon_start(struct bd_daemon *d);

/*
 * Stops taking tasks and drains running ones by the deallocation option;
 * done_cb runs once nothing is left, after which the daemon can be freed.
 * Called again during a drain, it requeues what still runs at once (and
 * stops waiting for retention times); done_cb replaces the earlier one.
 */
void bd_daemon_drain(struct bd_daemon *d, void (*done_cb)(void *arg),
    void *arg);

/*
 * Applies the settings that can change while tasks run (SIGHUP): polling
 * bounds, more task slots (fewer wait for a restart), maxDequeueCount,
 * kill grace period, deallocation option, default retention, free-space
 * reserve, heartbeat and job check intervals.  The rest of s is ignored
 * (docs/configuration.md lists which options need a restart); its strings
 * are not kept.
 */
void bd_daemon_reload(struct bd_daemon *d, const struct bd_daemon_settings *s);

/* Frees a drained daemon; its handles close, then it is gone. */
void bd_daemon_free(struct bd_daemon *d);

/* Counters, for tests, status lines and metrics. */
struct bd_daemon_stats {
	uint64_t polls, messages, tasks_started, tasks_completed, retries,
	    requeues, poisoned, lease_renewals, leases_lost;
	int running, free_slots;
	const char *state;	/* ComputeNodeState; static */
};
void bd_daemon_stats(const struct bd_daemon *d, struct bd_daemon_stats *out);

#endif
