/* SPDX-License-Identifier: MIT */
#ifndef BD_JOBS_H
#define BD_JOBS_H

/*
 * The node's view of the pool's jobs: a cache of job specs read from the
 * store, the job preparation task run once per job on this node (later
 * arrivals wait for the one run), and the job release task run when a job
 * this node prepared is terminated (docs/protocol.md §6).  What this node
 * prepared and released is kept in <stateDir>/jobs/ so that a restarted
 * daemon still releases the jobs it prepared.
 */

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "environment.h"
#include "http.h"
#include "job_spec.h"
#include "store.h"

struct bd_jobs;
struct bd_task_users;
struct bd_storage_account;

struct bd_jobs_env {
	uv_loop_t *loop;
	struct bd_store *store;
	struct bd_http **http;		   /* the daemon's, may be created later */
	const struct bd_node_info *node;   /* borrowed */
	struct bd_task_users *users;	   /* borrowed; NULL: as batchd */
	const char *pool_id;
	const char *state_dir;
	int64_t kill_grace_ms;
	const struct bd_storage_account *storage;
	/* Called when a job check or a release task ends (may be NULL). */
	void (*idle_cb)(void *arg);
	void *idle_arg;
};

enum bd_job_state {
	BD_JOB_ACTIVE,
	BD_JOB_TERMINATING,
	BD_JOB_COMPLETED,
};

/*
 * A cached job: valid until bd_jobs_free().  spec is NULL only for a job
 * the store does not have.
 */
struct bd_job {
	char *id;
	struct bd_job_spec *spec;
	enum bd_job_state state;
};

int bd_jobs_new(const struct bd_jobs_env *env, struct bd_jobs **out,
    char **cause);
void bd_jobs_free(struct bd_jobs *jobs);

/*
 * Gets job id from the cache or the store.  cb gets 0 and the job,
 * -ENOENT when the store has no such job, or another error (transient:
 * try later) with detail.
 */
typedef void (*bd_jobs_get_cb)(void *arg, int status, struct bd_job *job,
    const char *detail);
int bd_jobs_get(struct bd_jobs *jobs, const char *id, bd_jobs_get_cb cb,
    void *arg);

/*
 * Makes sure the job's preparation task has run on this node, running it
 * if needed (concurrent callers wait for the one run).  Returns 1 when
 * the answer is already known (bd_jobs_may_run() gives it; cb will not
 * run), 0 when cb will run once the preparation task ends, or a negative
 * errno.  may_run is true when the job's tasks may run here: no
 * preparation task, it succeeded, or it failed without waitForSuccess.
 */
typedef void (*bd_jobs_prepare_cb)(void *arg, bool may_run);
int bd_jobs_prepare(struct bd_jobs *jobs, struct bd_job *job,
    bd_jobs_prepare_cb cb, void *arg);

/* The preparation's answer for job, once bd_jobs_prepare() gave it. */
bool bd_jobs_may_run(const struct bd_job *job);

/*
 * Reads the pool's jobs and runs the release task of every job that is no
 * longer active and that this node prepared (once).  Called periodically.
 */
void bd_jobs_check(struct bd_jobs *jobs);

/* Whether a job this node prepared waits for its release. */
bool bd_jobs_watching(const struct bd_jobs *jobs);

/* Preparation or release tasks running now (they use no slot). */
int bd_jobs_running(const struct bd_jobs *jobs);

/* Whether anything is in flight: a task running or a job check. */
bool bd_jobs_busy(const struct bd_jobs *jobs);

#endif
