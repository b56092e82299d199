/* SPDX-License-Identifier: MIT */
#ifndef BD_RUNNER_H
#define BD_RUNNER_H

/*
 * The runner takes one task of any kind from start to completion as an
 * Azure Batch node does (reference §1, §2):
 *
 *   prepare dirs -> download resource files -> launch -> wait
 *     -> (nonzero exit and retries left: clean wd, again from download)
 *     -> upload output files -> evaluate exitConditions -> done
 *
 * maxWallClockTime runs from the start of each attempt (downloads count);
 * when it passes, or on bd_runner_terminate(), the whole process tree gets
 * SIGTERM and, after the grace period, SIGKILL.  The outcome carries the
 * executionInfo in Azure's shape and the job and dependency actions that
 * the exit conditions chose.
 */

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "cgroup.h"
#include "environment.h"
#include "http.h"
#include "job_spec.h"
#include "layout.h"
#include "storage_auth.h"
#include "task_info.h"
#include "task_spec.h"

struct bd_runner;
struct bd_task_users;

struct bd_run_outcome {
	struct bd_execution_info info;
	struct bd_task_dirs dirs;
	bool launched;		/* the command line started at least once */
	bool pre_processing_error;
	bool upload_error;
	bool ended;		/* by its wall clock or a terminate */
	enum bd_job_action job_action;		   /* effective for the job */
	enum bd_dependency_action dependency_action;
};

typedef void (*bd_runner_done_cb)(struct bd_runner *r,
    const struct bd_run_outcome *outcome, void *arg);

/* Reports phases to a terminal or log (optional). */
struct bd_runner_observer {
	void (*phase)(void *arg, const char *task_id, const char *what);
	void (*transfer)(void *arg, const char *name, int64_t done,
	    int64_t total);
	void (*launched)(void *arg, const char *stdout_path,
	    const char *stderr_path);
	void (*exited)(void *arg);
	void *arg;
};

struct bd_runner_options {
	uv_loop_t *loop;
	struct bd_http *http;		   /* borrowed */
	/* The node's storage account, for autoStorageContainerName; NULL
	   when none is configured.  Borrowed until done. */
	const struct bd_storage_account *storage;
	const struct bd_node_info *node;   /* borrowed until done */
	const struct bd_job_spec *job;	   /* borrowed; NULL for a start task */
	const struct bd_task_spec *task;   /* borrowed until done */
	/* The accounts tasks run as (task_user.h); NULL: as batchd itself.
	   Borrowed until done. */
	struct bd_task_users *users;
	int64_t kill_grace_ms;		   /* SIGTERM to SIGKILL; default 5000 */
	/*
	 * The pool retries through its queue, so another node may take a
	 * retry: with single_attempt the runner makes one attempt and reports
	 * its exit (retry_count seeds executionInfo.retryCount).  The caller
	 * then decides with bd_runner_should_retry().
	 */
	bool single_attempt;
	int retry_count;
	const struct bd_runner_observer *observer; /* or NULL */
	/* Caps of stdout.txt and stderr.txt in bytes; 0: no cap. */
	int64_t stdout_max_bytes, stderr_max_bytes;
	/* Where the task's supervisor records its state (adopt.h), so the
	   task can be adopted after a restart; NULL: nowhere.  Borrowed. */
	const char *supervisor_state;
	/*
	 * Adopt the task that a previous batchd started, whose supervisor
	 * writes supervisor_state, instead of starting it: the runner picks
	 * up at "wait" (or at the uploads when it ended meanwhile), keeping
	 * the task directory.  adopt_started_ms: when that attempt started.
	 */
	bool adopt;
	int64_t adopt_started_ms;
};

/* Starts; 0 or a negative errno (then cb never runs). */
int bd_runner_start(const struct bd_runner_options *opts, bd_runner_done_cb cb,
    void *arg, struct bd_runner **out);

/*
 * Ends the task early (job terminated, node stopping, ^C): it completes
 * with failureInfo TaskEnded and reason.  The callback still runs once.
 */
void bd_runner_terminate(struct bd_runner *r, const char *reason);

/*
 * For bd_cgroup_sweep(): what to do with the task cgroup called name.
 * Task cgroup names end in ".PID.SEQ" (the pid of the batchd that made
 * it): one whose batchd still runs is kept; else it is removed when
 * empty, and, with arg from bd_runner_sweep_cgroups(true, ...), what
 * runs in it is killed first unless a live supervisor holds it.
 */
enum bd_cgroup_sweep_action bd_runner_cgroup_stale(const char *name,
    void *arg);

/*
 * Sweeps the task cgroups that an earlier batchd left: removes the empty
 * ones and, with kill_orphans (at start-up: it waits up to a second per
 * cgroup), kills the processes of those whose supervisor is gone (the
 * task goes back to the queue, so they would run it twice).  Returns how
 * many were removed; *killed (may be NULL): how many had processes killed.
 */
int bd_runner_sweep_cgroups(bool kill_orphans, int *killed);

/*
 * Whether a completed attempt should be retried: a nonzero exit of a
 * process that ran, not ended by a timeout or terminate, with retries left
 * (the task's maxTaskRetryCount, else the job's; -1 = no limit).
 */
bool bd_runner_should_retry(const struct bd_job_spec *job,
    const struct bd_task_spec *task, const struct bd_run_outcome *o);

/* Frees after the callback has run (the outcome is freed with it). */
void bd_runner_free(struct bd_runner *r);

/*
 * Exit conditions (reference §1.6) for a completed task: fills the
 * outcome's job_action and dependency_action from its failure kind and exit
 * code.  Exposed for tests.
 */
void bd_runner_eval_exit_conditions(const struct bd_job_spec *job,
    const struct bd_task_spec *task, struct bd_run_outcome *o);

#endif
