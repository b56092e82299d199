/* SPDX-License-Identifier: MIT */
/*
 * One task message through the node (see assignment.h for the steps).
 *
 * Every step is one asynchronous call whose callback starts the next, so
 * at most one store or source request is in flight per assignment, plus a
 * lease renewal while the task runs.  An assignment ends through
 * assignment_finish(), which waits for a renewal in flight, gives back its
 * slots and calls the done hook.  The renewal timer is the only libuv
 * handle; bd_assignment_free() closes it and frees in its close callback.
 *
 * Who writes what (docs/protocol.md §4): the running state is written
 * with If-Match on the ETag read when the message arrived, and the
 * completion with If-Match on the running write's ETag, so of two nodes
 * holding the same task (a lease that expired under a slow node) only one
 * completes it.
 */
#include "assignment.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "adopt.h"
#include "clock.h"
#include "error.h"
#include "layout.h"
#include "log.h"
#include "message.h"
#include "metrics.h"
#include "runner.h"
#include "supervisor.h"
#include "task_info.h"
#include "xmalloc.h"

/* Range dependencies wider than this are refused rather than enumerated. */
#define ASSIGNMENT_MAX_RANGE 100000

struct bd_assignment {
	struct bd_assignment_env env;
	struct bd_assignment_hooks hooks;
	struct bd_message *msg;
	struct bd_task_message *tm;
	char *job_id, *task_id; /* what could be read, for reports */
	struct bd_job *job;	/* borrowed from the job cache */
	char *etag;		/* of the task row, for conditional writes */
	bool row_exists;
	int claims_lost;	/* claims that found the row changed */
	int slots;
	bool ahead;		/* started ahead of a free slot */
	bool parked;		/* ahead, ready, waiting for slots */
	struct bd_runner *runner;
	bool started;		/* a task process was started here */
	uv_timer_t renew_timer;
	bool renewing;		/* an update is in flight */
	bool lease_lost;
	bool stopping;
	enum bd_assignment_stop stop;
	bool finishing;
	bool done;
	/* The failure a poisoned message completes its task with. */
	struct bd_failure_info *pending_failure;
	/* The row a retry or requeue writes once its new message is sent,
	   and (until it is sent) that message and its counts. */
	struct bd_entity *pending_row;
	char *pending_text;
	int pending_retry, pending_requeue;
	/*
	 * A delete or hide that waits for the renewal in flight: the pop
	 * receipt changes when that renewal lands, and a request made with
	 * the old one would fail.
	 */
	void (*after_renewal)(struct bd_assignment *a);
	int64_t later_ms;
	/*
	 * Adoption (adopt.h): recorded while the task's record is on disk;
	 * adopting for a task a previous batchd started.
	 */
	bool recorded;
	bool adopting;
	bool settled;		/* the adopted lease's first renewal is back */
	/* An adopted run that ended before that renewal was back: reported
	 * after it, when it is known whether the lease is still ours. */
	struct bd_runner *held_runner;
	const struct bd_run_outcome *held_outcome;
	char *state_path;	/* the supervisor's state file, or NULL */
	int record_version;	/* of the record on disk (adopt.h) */
	int64_t started_ms;
	/* What the completed row's write goes on with when it succeeds. */
	bd_store_write_cb on_completed;
};

/* Lost claims read the row again and retry, up to this many. */
#define ASSIGNMENT_MAX_CLAIMS_LOST 3

static void assignment_finish(struct bd_assignment *a);
static void assignment_settle(struct bd_assignment *a);
static void assignment_claim(struct bd_assignment *a);
static bool assignment_message_is_stale(const struct bd_assignment *a,
    const struct bd_entity *row);

/* "job J: task T" for log lines, whatever could be read. */
#define A_JOB(a) ((a)->job_id != NULL ? (a)->job_id : "?")
#define A_TASK(a) ((a)->task_id != NULL ? (a)->task_id : "?")

static void
assignment_on_deleted(void *arg, int status, const char *detail)
{
	struct bd_assignment *a = arg;

	if (status < 0 && status != -ENOENT)
		log_warnx("job %s: task %s: cannot delete its message: %s",
		    A_JOB(a), A_TASK(a), detail ? detail : bd_strerror(status));
	assignment_finish(a);
}

/* Deletes the message (the task is done with it), then finishes. */
static void
assignment_delete(struct bd_assignment *a)
{
	uv_timer_stop(&a->renew_timer);
	if (a->renewing) {
		a->after_renewal = assignment_delete;
		return;
	}
	if (bd_source_remove(a->env.source, a->msg, assignment_on_deleted,
	    a) < 0)
		assignment_finish(a);
}

static void
assignment_on_hidden(void *arg, int status, const char *detail)
{
	struct bd_assignment *a = arg;

	if (status < 0 && status != -ENOENT)
		log_debug("job %s: task %s: cannot hide its message: %s",
		    A_JOB(a), A_TASK(a), detail ? detail : bd_strerror(status));
	assignment_finish(a);
}

/*
 * Leaves the message for later: visible again after delay_ms (to this or
 * another node).  For transient failures of the store and for a node that
 * may not run the job.
 */
static void
assignment_hide(struct bd_assignment *a)
{
	if (a->renewing) {
		a->after_renewal = assignment_hide;
		return;
	}
	if (bd_source_update(a->env.source, a->msg, a->later_ms, NULL,
	    assignment_on_hidden, a) < 0)
		assignment_finish(a);
}

static void
assignment_later(struct bd_assignment *a, int64_t delay_ms)
{
	uv_timer_stop(&a->renew_timer);
	a->later_ms = delay_ms;
	assignment_hide(a);
}

static void
assignment_on_resent(void *arg, int status, const char *detail)
{
	struct bd_assignment *a = arg;

	if (status < 0) {
		/* The old message stays; it comes back after its lease. */
		log_warnx("job %s: task %s: cannot put the task back in the "
		    "queue: %s", A_JOB(a), A_TASK(a),
		    detail ? detail : bd_strerror(status));
		assignment_finish(a);
		return;
	}
	assignment_delete(a);
}

/*
 * Puts the task back in the queue as a new message with the given counts,
 * visible after delay_ms, then deletes the received one.  A new message
 * starts a new dequeue count, so waiting for dependencies or being
 * requeued never makes a task look poisoned.
 */
static void
assignment_resend(struct bd_assignment *a, int retry, int requeue, int waits,
    int64_t delay_ms)
{
	char *cause = NULL;
	char *text = bd_task_message_encode(a->tm->job_id, a->tm->task_json,
	    retry, requeue, waits, &cause);

	if (text == NULL) {
		log_warnx("job %s: task %s: %s", A_JOB(a), A_TASK(a), cause);
		free(cause);
		assignment_finish(a);
		return;
	}
	if (bd_source_send(a->env.source, BD_QUEUE_TASKS, text, delay_ms,
	    assignment_on_resent, a) < 0)
		assignment_finish(a);
	free(text);
}

/* A task row's properties for a completion. */
static struct bd_entity *
assignment_row(struct bd_assignment *a, const char *state)
{
	struct bd_entity *e = bd_entity_new(a->job_id, a->task_id);

	cJSON_AddStringToObject(e->props, "state", state);
	cJSON_AddStringToObject(e->props, "nodeId", a->env.settings->node_id);
	if (!a->row_exists && a->tm != NULL) {
		char *spec = cJSON_PrintUnformatted(a->tm->task_json);
		cJSON_AddStringToObject(e->props, "spec", spec);
		free(spec);
	}
	return e;
}

/* A task row's state, or NULL (no row, no state). */
static const char *
assignment_row_state(const struct bd_entity *row)
{
	const cJSON *st = row != NULL ?
	    cJSON_GetObjectItemCaseSensitive(row->props, "state") : NULL;

	return cJSON_IsString(st) ? st->valuestring : NULL;
}

/* Whether a task row is there with the given state. */
static bool
assignment_row_is(const struct bd_entity *row, const char *state)
{
	const char *st = assignment_row_state(row);

	return st != NULL && strcmp(st, state) == 0;
}

/* Adds what an execution info says to a row. */
static void
assignment_row_info(struct bd_entity *e, const struct bd_execution_info *i)
{
	char buf[40];
	char *text;
	cJSON *info = bd_execution_info_to_json(i);

	if (i->has_exit_code)
		cJSON_AddNumberToObject(e->props, "exitCode", i->exit_code);
	if (bd_task_result_name(i->result) != NULL)
		cJSON_AddStringToObject(e->props, "result",
		    bd_task_result_name(i->result));
	if (i->failure != NULL) {
		cJSON_AddStringToObject(e->props, "failureCategory",
		    bd_error_category_name(i->failure->category));
		cJSON_AddStringToObject(e->props, "failureCode",
		    i->failure->code);
		cJSON_AddStringToObject(e->props, "failureMessage",
		    i->failure->message);
	}
	cJSON_AddNumberToObject(e->props, "retryCount", i->retry_count);
	cJSON_AddNumberToObject(e->props, "requeueCount", i->requeue_count);
	if (i->start_ms != 0) {
		bd_clock_format_iso(i->start_ms, buf, sizeof(buf));
		cJSON_AddStringToObject(e->props, "startTime", buf);
	}
	if (i->end_ms != 0) {
		bd_clock_format_iso(i->end_ms, buf, sizeof(buf));
		cJSON_AddStringToObject(e->props, "endTime", buf);
	}
	text = cJSON_PrintUnformatted(info);
	cJSON_AddStringToObject(e->props, "executionInfo", text);
	free(text);
	cJSON_Delete(info);
	/* The task's TaskStatistics, beside executionInfo as on Azure. */
	if ((info = bd_task_stats_to_json(i)) != NULL) {
		text = cJSON_PrintUnformatted(info);
		cJSON_AddStringToObject(e->props, "stats", text);
		free(text);
		cJSON_Delete(info);
	}
}

static void
assignment_on_failed_row(void *arg, int status, const char *etag,
    const char *detail)
{
	struct bd_assignment *a = arg;

	if (status == -ESTALE || status == -EEXIST || status == -ENOENT) {
		/* Someone recorded the task meanwhile: theirs stands. */
		assignment_delete(a);
		return;
	}
	if (status < 0) {
		log_warnx("job %s: task %s: cannot record its failure: %s",
		    A_JOB(a), A_TASK(a), detail ? detail : bd_strerror(status));
		assignment_finish(a); /* the message comes back; try again */
		return;
	}
	assignment_delete(a);
}

static void
assignment_on_failed_read(void *arg, int status, struct bd_entity *row,
    const char *detail)
{
	struct bd_assignment *a = arg;
	struct bd_failure_info *f = a->pending_failure;
	struct bd_execution_info info = { 0 };
	struct bd_entity *e;
	int rc;

	a->pending_failure = NULL;
	if (status < 0 && status != -ENOENT) {
		log_warnx("job %s: task %s: cannot read its record: %s",
		    A_JOB(a), A_TASK(a), detail ? detail : bd_strerror(status));
		bd_failure_info_free(f);
		bd_entity_free(row);
		assignment_finish(a);
		return;
	}
	if (assignment_row_is(row, "completed") ||
	    (row != NULL && a->tm != NULL && assignment_message_is_stale(a, row))) {
		/* Completed already: exactly once (protocol §3); or this
		 * message was replaced by a newer attempt's, whose row it must
		 * not end. */
		bd_failure_info_free(f);
		bd_entity_free(row);
		assignment_delete(a);
		return;
	}
	log_warnx("job %s: task %s: completed without running: %s: %s",
	    A_JOB(a), A_TASK(a), f->code, f->message);
	a->row_exists = row != NULL;
	info.end_ms = bd_clock_now_ms();
	info.result = BD_RESULT_FAILURE;
	if (a->tm != NULL) {
		info.retry_count = a->tm->retry_count;
		info.requeue_count = a->tm->requeue_count;
	}
	info.failure = f;
	e = assignment_row(a, "completed");
	assignment_row_info(e, &info);
	cJSON_AddStringToObject(e->props, "dependencyAction", "block");
	bd_execution_info_clear(&info);
	if (row != NULL)
		rc = bd_store_merge(a->env.store, BD_TABLE_TASKS, e, row->etag,
		    assignment_on_failed_row, a);
	else
		rc = bd_store_insert(a->env.store, BD_TABLE_TASKS, e,
		    assignment_on_failed_row, a);
	bd_entity_free(e);
	bd_entity_free(row);
	if (rc < 0)
		assignment_finish(a);
}

/*
 * Completes the task, which never ran here, with f (taken over), then
 * deletes its message.  The row is read first and written with If-Match
 * (or inserted), so a task some node completed is never recorded twice.
 * Without ids there is no row to write: only the delete.
 */
static void
assignment_complete_failed(struct bd_assignment *a, struct bd_failure_info *f)
{
	if (a->job_id == NULL || a->task_id == NULL) {
		log_warnx("job %s: task %s: dropped: %s: %s", A_JOB(a),
		    A_TASK(a), f->code, f->message);
		bd_failure_info_free(f);
		assignment_delete(a);
		return;
	}
	bd_failure_info_free(a->pending_failure);
	a->pending_failure = f;
	if (bd_store_get(a->env.store, BD_TABLE_TASKS, a->job_id, a->task_id,
	    assignment_on_failed_read, a) < 0) {
		bd_failure_info_free(a->pending_failure);
		a->pending_failure = NULL;
		assignment_finish(a);
	}
}

static void
assignment_on_poisoned(void *arg, int status, const char *detail)
{
	struct bd_assignment *a = arg;
	struct bd_failure_info *f = a->pending_failure;

	a->pending_failure = NULL;
	if (status < 0) {
		log_warnx("job %s: task %s: cannot move its message to the "
		    "poison queue: %s", A_JOB(a), A_TASK(a),
		    detail ? detail : bd_strerror(status));
		bd_failure_info_free(f);
		assignment_finish(a);
		return;
	}
	a->env.stats->poisoned++;
	assignment_complete_failed(a, f);
}

/*
 * Moves the message to the poison queue, then completes its task (when
 * its ids could be read) with f (taken over).
 */
static void
assignment_poison(struct bd_assignment *a, struct bd_failure_info *f)
{
	a->pending_failure = f;
	if (bd_source_send(a->env.source, BD_QUEUE_POISON, a->msg->text, 0,
	    assignment_on_poisoned, a) < 0) {
		bd_failure_info_free(a->pending_failure);
		a->pending_failure = NULL;
		assignment_finish(a);
	}
}

/*
 * A task row read that failed (not for want of the row): says so, frees
 * row and tries the message again later.  Whether it failed.
 */
static bool
assignment_row_unread(struct bd_assignment *a, int status,
    struct bd_entity *row, const char *detail)
{
	if (status >= 0 || status == -ENOENT)
		return false;
	log_warnx("job %s: task %s: cannot read its record: %s", A_JOB(a),
	    A_TASK(a), detail ? detail : bd_strerror(status));
	bd_entity_free(row);
	assignment_later(a, a->env.settings->poll_max_ms);
	return true;
}

/*
 * A message received too many times: its row is read first, so that a
 * duplicate of a completed task, or a message a newer attempt replaced,
 * is dropped instead of poisoned (and its task's row is left alone).
 */
static void
assignment_on_poison_row(void *arg, int status, struct bd_entity *row,
    const char *detail)
{
	struct bd_assignment *a = arg;
	bool completed = assignment_row_is(row, "completed");

	if (assignment_row_unread(a, status, row, detail))
		return;
	if (row != NULL && (completed || assignment_message_is_stale(a, row))) {
		log_info("job %s: task %s: a message received %d times is "
		    "dropped: the task %s", A_JOB(a), A_TASK(a),
		    a->msg->dequeue_count, completed ? "is completed already" :
		    "was sent again since (the row's counts are ahead)");
		bd_entity_free(row);
		assignment_delete(a);
		return;
	}
	bd_entity_free(row);
	assignment_poison(a, bd_failure_info_new(BD_CATEGORY_SERVER_ERROR,
	    "TaskPoisoned", "the task's message was received %d times without "
	    "completing (limit %d); it was moved to the poison queue",
	    a->msg->dequeue_count, a->env.settings->max_dequeue_count));
}

static void
assignment_finish(struct bd_assignment *a)
{
	a->finishing = true;
	if (a->renewing || a->done)
		return; /* the renewal's callback comes back here */
	uv_timer_stop(&a->renew_timer);
	a->done = true;
	assignment_settle(a);
	/* The message is done with (or left to the queue): so is the record. */
	if (a->recorded)
		bd_adopt_remove(a->env.adopt_dir, a->msg->id,
		    a->record_version);
	a->recorded = false;
	if (a->slots > 0)
		a->hooks.release(a->hooks.arg, a->slots);
	a->slots = 0;
	a->hooks.done(a->hooks.arg, a);
}

/* ---- after the run ---------------------------------------------------- */

/* A count of row ("retryCount", "requeueCount"), or -1 without one. */
static double
assignment_row_count(const struct bd_entity *row, const char *name)
{
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(row->props, name);

	return cJSON_IsNumber(c) ? c->valuedouble : -1;
}

/* Whether row was written since the ETag this assignment holds. */
static bool
assignment_row_changed(const struct bd_assignment *a,
    const struct bd_entity *row)
{
	return row != NULL && row->etag != NULL &&
	    (a->etag == NULL || strcmp(row->etag, a->etag) != 0);
}

/*
 * Whether row is what this node wrote for this attempt before a restart:
 * state with the given counts.  batchd can stop between such a row and
 * the delete of its message (the delete waits for the row's commit,
 * protocol.md §7); the adopted run then finds the row changed since the
 * ETag in its record.  Only this node writes its id into the row, and
 * another attempt here would have other counts.
 */
static bool
assignment_row_written_here(const struct bd_assignment *a,
    const struct bd_entity *row, const char *state, int retry, int requeue)
{
	const cJSON *node;

	if (!assignment_row_changed(a, row))
		return false;
	node = cJSON_GetObjectItemCaseSensitive(row->props, "nodeId");
	return assignment_row_is(row, state) && cJSON_IsString(node) &&
	    strcmp(node->valuestring, a->env.settings->node_id) == 0 &&
	    assignment_row_count(row, "retryCount") == retry &&
	    assignment_row_count(row, "requeueCount") == requeue;
}

static void
assignment_on_row_after_restart(void *arg, int status, struct bd_entity *e,
    const char *detail)
{
	struct bd_assignment *a = arg;
	bool ours = status == 0 && assignment_row_written_here(a, e,
	    "completed", a->tm->retry_count, a->tm->requeue_count);

	bd_entity_free(e);
	if (ours) {
		log_info("job %s: task %s: its completion was recorded before "
		    "the restart", A_JOB(a), A_TASK(a));
		a->on_completed(a, 0, NULL, NULL);
		return;
	}
	if (status < 0 && status != -ENOENT)
		log_warnx("job %s: task %s: cannot read its row: %s; its "
		    "message comes back when the lease ends", A_JOB(a),
		    A_TASK(a), detail ? detail : bd_strerror(status));
	else
		log_warnx("job %s: task %s: another node holds the task now; "
		    "this node's result is dropped", A_JOB(a), A_TASK(a));
	assignment_finish(a);
}

static void
assignment_on_completed_row(void *arg, int status, const char *etag,
    const char *detail)
{
	struct bd_assignment *a = arg;

	if (status == -ESTALE && a->adopting &&
	    bd_store_get(a->env.store, BD_TABLE_TASKS, a->job_id, a->task_id,
	    assignment_on_row_after_restart, a) == 0)
		return;
	if (status == -ESTALE || status == -ENOENT) {
		/* Another node took the task over: its report stands. */
		log_warnx("job %s: task %s: another node holds the task now; "
		    "this node's result is dropped", A_JOB(a), A_TASK(a));
		assignment_finish(a);
		return;
	}
	if (status < 0) {
		log_warnx("job %s: task %s: cannot record its completion: %s",
		    A_JOB(a), A_TASK(a), detail ? detail : bd_strerror(status));
		assignment_finish(a); /* the lease ends; the task runs again */
		return;
	}
	a->env.stats->tasks_completed++;
	assignment_delete(a);
}

static void
assignment_on_job_terminated(void *arg, int status, const char *etag,
    const char *detail)
{
	struct bd_assignment *a = arg;

	if (status < 0)
		log_warnx("job %s: cannot terminate the job: %s", A_JOB(a),
		    detail ? detail : bd_strerror(status));
	assignment_delete(a);
}

static void
assignment_on_completed_row_then_job(void *arg, int status, const char *etag,
    const char *detail)
{
	struct bd_assignment *a = arg;
	struct bd_entity *e;
	char buf[40];

	if (status < 0) {
		assignment_on_completed_row(arg, status, etag, detail);
		return;
	}
	a->env.stats->tasks_completed++;
	/* exitConditions chose jobAction terminate (spec §1.6). */
	log_info("job %s: terminated by task %s (jobAction terminate)",
	    A_JOB(a), A_TASK(a));
	e = bd_entity_new(a->env.settings->pool_id, a->job_id);
	cJSON_AddStringToObject(e->props, "state", "completed");
	cJSON_AddStringToObject(e->props, "terminateReason", "TaskFailed");
	bd_clock_format_iso(bd_clock_now_ms(), buf, sizeof(buf));
	cJSON_AddStringToObject(e->props, "endTime", buf);
	if (bd_store_merge(a->env.store, BD_TABLE_JOBS, e, NULL,
	    assignment_on_job_terminated, a) < 0)
		assignment_delete(a);
	bd_entity_free(e);
}

static void
assignment_on_requeued_row(void *arg, int status, const char *etag,
    const char *detail)
{
	struct bd_assignment *a = arg;

	if (status < 0 && status != -ESTALE && status != -ENOENT)
		log_warnx("job %s: task %s: cannot record the requeue: %s",
		    A_JOB(a), A_TASK(a), detail ? detail : bd_strerror(status));
	/* The new message carries the task on; the old one goes. */
	assignment_delete(a);
}

static void
assignment_on_requeue_sent(void *arg, int status, const char *detail)
{
	struct bd_assignment *a = arg;
	struct bd_entity *e = a->pending_row;

	a->pending_row = NULL;
	if (status < 0) {
		/* The old message comes back when its lease ends. */
		log_warnx("job %s: task %s: cannot put the task back in the "
		    "queue: %s", A_JOB(a), A_TASK(a),
		    detail ? detail : bd_strerror(status));
		bd_entity_free(e);
		assignment_finish(a);
		return;
	}
	if (bd_store_merge(a->env.store, BD_TABLE_TASKS, e, a->etag,
	    assignment_on_requeued_row, a) < 0)
		assignment_delete(a);
	bd_entity_free(e);
}

/*
 * Sends the task again with the given counts, then writes row (taken
 * over), then deletes the received message.  In that order a crash at any
 * point leaves the task in the queue at least once.
 */
static void
assignment_send_requeue(struct bd_assignment *a)
{
	char *text = a->pending_text;

	a->pending_text = NULL;
	if (bd_source_send(a->env.source, BD_QUEUE_TASKS, text, 0,
	    assignment_on_requeue_sent, a) < 0) {
		bd_entity_free(a->pending_row);
		a->pending_row = NULL;
		assignment_finish(a);
	}
	free(text);
}

/*
 * Whether row shows the requeue sent already: changed since the ETag in
 * the record, with the new counts or more.  While this node holds the
 * old message's lease the counts grow only from its new message, so
 * whoever wrote the row (this node before the restart, or another that
 * took the new message since), the send was done.
 */
static bool
assignment_requeue_was_sent(const struct bd_assignment *a,
    const struct bd_entity *row)
{
	return assignment_row_changed(a, row) &&
	    assignment_row_count(row, "retryCount") >= a->pending_retry &&
	    assignment_row_count(row, "requeueCount") >= a->pending_requeue;
}

/* An adopted run's requeue: done already before the restart? */
static void
assignment_on_row_before_requeue(void *arg, int status, struct bd_entity *e,
    const char *detail)
{
	struct bd_assignment *a = arg;
	bool sent = status == 0 && assignment_requeue_was_sent(a, e);

	bd_entity_free(e);
	if (status < 0 && status != -ENOENT) {
		/* Unknown: sending could run the task twice, so the old
		 * message comes back when its lease ends instead. */
		log_warnx("job %s: task %s: cannot read its row: %s; its "
		    "message comes back when the lease ends", A_JOB(a),
		    A_TASK(a), detail ? detail : bd_strerror(status));
		assignment_finish(a);
		return;
	}
	if (!sent) {
		assignment_send_requeue(a);
		return;
	}
	/* Its new message was sent before the row: one more would run the
	 * task twice. */
	log_info("job %s: task %s: it was put back in the queue before the "
	    "restart", A_JOB(a), A_TASK(a));
	free(a->pending_text);
	a->pending_text = NULL;
	bd_entity_free(a->pending_row);
	a->pending_row = NULL;
	assignment_delete(a);
}

/*
 * Sends the task again with the given counts, then writes row (taken
 * over), then deletes the received message.  An adopted run first reads
 * the row: its requeue may have been done before the restart.
 */
static void
assignment_requeue(struct bd_assignment *a, int retry, int requeue,
    struct bd_entity *row)
{
	char *cause = NULL;
	char *text = bd_task_message_encode(a->tm->job_id, a->tm->task_json,
	    retry, requeue, 0, &cause);

	if (text == NULL) {
		log_warnx("job %s: task %s: %s", A_JOB(a), A_TASK(a), cause);
		free(cause);
		bd_entity_free(row);
		assignment_finish(a);
		return;
	}
	a->pending_row = row;
	a->pending_text = text;
	a->pending_retry = retry;
	a->pending_requeue = requeue;
	if (!a->adopting) {
		assignment_send_requeue(a);
		return;
	}
	if (bd_store_get(a->env.store, BD_TABLE_TASKS, a->job_id, a->task_id,
	    assignment_on_row_before_requeue, a) < 0) {
		/* As a failed read: the old message comes back instead. */
		log_warnx("job %s: task %s: cannot read its row; its message "
		    "comes back when the lease ends", A_JOB(a), A_TASK(a));
		assignment_finish(a);
	}
}

/*
 * Gives the task back on a drain: requeueCount + 1, not retryCount, in the
 * new message and in the row (so that the old message, if it is left
 * behind, is seen to be stale).
 */
static void
assignment_requeue_on_drain(struct bd_assignment *a)
{
	struct bd_entity *e = assignment_row(a, "active");
	char buf[40];

	a->env.stats->requeues++;
	cJSON_AddNumberToObject(e->props, "requeueCount",
	    a->tm->requeue_count + 1);
	bd_clock_format_iso(bd_clock_now_ms(), buf, sizeof(buf));
	cJSON_AddStringToObject(e->props, "lastRequeueTime", buf);
	assignment_requeue(a, a->tm->retry_count, a->tm->requeue_count + 1, e);
}

static void
assignment_on_run(struct bd_runner *r, const struct bd_run_outcome *o,
    void *arg)
{
	struct bd_assignment *a = arg;
	const struct bd_task_spec *t = a->tm->task;
	/* The runner knows retries, not requeues: the message carries those
	 * (a shallow copy, for the row only). */
	struct bd_execution_info info = o->info;
	const struct bd_execution_info *i = &info;
	struct bd_entity *e;
	char buf[40];
	int rc;

	if (a->adopting && !a->settled) {
		/* Another node may have run the task while batchd was away:
		 * report nothing before the lease is known to be ours. */
		a->held_runner = r;
		a->held_outcome = o;
		return;
	}
	info.requeue_count = a->tm->requeue_count;
	uv_timer_stop(&a->renew_timer);
	bd_metrics_task_ran(i);
	if (a->lease_lost) {
		log_warnx("job %s: task %s: ended here: the node lost its "
		    "lease, so another node may run it", A_JOB(a), A_TASK(a));
		bd_runner_free(r);
		a->runner = NULL;
		assignment_finish(a);
		return;
	}
	if (i->failure != NULL)
		log_warnx("job %s: task %s: failed: %s: %s", A_JOB(a),
		    A_TASK(a), i->failure->code, i->failure->message);
	if (a->stopping && a->stop == BD_STOP_REQUEUE && o->ended) {
		/* Given back on drain: requeueCount, not retryCount. */
		log_info("job %s: task %s: requeued", A_JOB(a), A_TASK(a));
		bd_runner_free(r);
		a->runner = NULL;
		assignment_requeue_on_drain(a);
		return;
	}
	if (!a->stopping && bd_runner_should_retry(a->job->spec, t, o)) {
		/* The retry goes through the queue: any node may take it. */
		a->env.stats->retries++;
		log_info("job %s: task %s: exit code %d, retry %d", A_JOB(a),
		    A_TASK(a), i->exit_code, i->retry_count + 1);
		e = assignment_row(a, "active");
		assignment_row_info(e, i);
		cJSON_ReplaceItemInObjectCaseSensitive(e->props, "retryCount",
		    cJSON_CreateNumber(i->retry_count + 1));
		bd_clock_format_iso(bd_clock_now_ms(), buf, sizeof(buf));
		cJSON_AddStringToObject(e->props, "lastRetryTime", buf);
		bd_runner_free(r);
		a->runner = NULL;
		assignment_requeue(a, i->retry_count + 1, a->tm->requeue_count,
		    e);
		return;
	}
	log_info("job %s: task %s: completed with exit code %d (%s)",
	    A_JOB(a), A_TASK(a), i->has_exit_code ? i->exit_code : -1,
	    bd_task_result_name(i->result));
	/*
	 * The task's processes are gone, so its slots are free now: the
	 * record and the delete of the message (an fsync or a round trip
	 * each) go on while the next task runs, and writes of several tasks
	 * in flight at once share the disk's commits.
	 */
	if (a->slots > 0) {
		a->hooks.release(a->hooks.arg, a->slots);
		a->slots = 0;
	}
	e = assignment_row(a, "completed");
	assignment_row_info(e, i);
	cJSON_AddStringToObject(e->props, "dependencyAction",
	    bd_dependency_action_name(o->dependency_action));
	a->on_completed = o->job_action == BD_JOB_ACTION_TERMINATE ?
	    assignment_on_completed_row_then_job : assignment_on_completed_row;
	rc = bd_store_merge(a->env.store, BD_TABLE_TASKS, e, a->etag,
	    a->on_completed, a);
	bd_entity_free(e);
	bd_runner_free(r);
	a->runner = NULL;
	if (rc < 0)
		assignment_finish(a);
}

/* ---- running ---------------------------------------------------------- */

/*
 * Tells the daemon, once, that an adopted task's lease is settled: until
 * then it must not receive, or it could take the very message back (the
 * local spool hands out a dead daemon's leases at once).
 */
static void
assignment_settle(struct bd_assignment *a)
{
	if (!a->adopting || a->settled)
		return;
	a->settled = true;
	if (a->hooks.settled != NULL)
		a->hooks.settled(a->hooks.arg);
}

/*
 * Writes the task's adoption record with the message's newest pop
 * receipt.  On failure the task still runs, but would not survive a
 * restart; that is said in the log.
 */
static int
assignment_record(struct bd_assignment *a, bool renewal)
{
	struct bd_adopt_record r = {
		.message_id = a->msg->id,
		.pop_receipt = a->msg->pop_receipt,
		.message_text = a->msg->text,
		.dequeue_count = a->msg->dequeue_count,
		.inserted_ms = a->msg->inserted_ms,
		.job_id = a->job_id,
		.task_id = a->task_id,
		.etag = a->etag,
		.retry_count = a->tm->retry_count,
		.requeue_count = a->tm->requeue_count,
		.started_ms = a->started_ms,
		.version = a->record_version,
	};
	int rc = renewal ? bd_adopt_save_lease(a->env.adopt_dir, &r) :
	    bd_adopt_save(a->env.adopt_dir, &r);

	if (rc < 0)
		log_warnx("job %s: task %s: cannot record it for a restart "
		    "of batchd: %s", A_JOB(a), A_TASK(a), strerror(-rc));
	return rc;
}

/* Starts the runner: the task, or (adopt) the task already running. */
static void
assignment_run(struct bd_assignment *a, bool adopt)
{
	struct bd_runner_options ro;

	memset(&ro, 0, sizeof(ro));
	ro.loop = a->env.loop;
	ro.http = *a->env.http;
	ro.node = a->env.node;
	ro.job = a->job->spec;
	ro.task = a->tm->task;
	ro.users = a->env.users;
	ro.kill_grace_ms = a->env.settings->kill_grace_ms;
	ro.single_attempt = true;
	ro.retry_count = a->tm->retry_count;
	ro.storage = a->env.settings->storage;
	ro.stdout_max_bytes = a->env.settings->stdout_max_bytes;
	ro.stderr_max_bytes = a->env.settings->stderr_max_bytes;
	ro.supervisor_state = a->state_path;
	ro.adopt = adopt;
	ro.adopt_started_ms = a->started_ms;
	if (bd_runner_start(&ro, assignment_on_run, a, &a->runner) < 0) {
		assignment_later(a, a->env.settings->poll_max_ms);
		return;
	}
	a->started = true;
	if (adopt) {
		log_info("job %s: task %s: adopted from before the restart",
		    A_JOB(a), A_TASK(a));
		return;
	}
	a->env.stats->tasks_started++;
	log_info("job %s: task %s: running", A_JOB(a), A_TASK(a));
}

/*
 * Picks up the task of an adopted record once its job is known: watched
 * again, or finished, through the runner; or given back to the queue when
 * it never started or its supervisor is lost (it runs again, which is its
 * first complete run).
 */
static void
assignment_adopt_run(struct bd_assignment *a)
{
	struct bd_supervisor_record rec;
	char *cause = NULL;
	int need = a->tm->task->required_slots - a->slots;

	if (bd_supervisor_read_state(a->state_path, &rec, &cause) < 0) {
		log_warnx("job %s: task %s: %s", A_JOB(a), A_TASK(a), cause);
		free(cause);
		rec.state = BD_SUPERVISOR_NONE;
	}
	if (rec.state == BD_SUPERVISOR_NONE ||
	    (rec.state == BD_SUPERVISOR_RUNNING && !bd_supervisor_alive(&rec))) {
		log_warnx("job %s: task %s: %s; giving it back to the queue",
		    A_JOB(a), A_TASK(a), rec.state == BD_SUPERVISOR_NONE ?
		    "it had not started when batchd stopped" :
		    "its supervisor is gone without an outcome");
		assignment_later(a, 0);
		return;
	}
	if (need > 0 && a->hooks.reserve(a->hooks.arg, need))
		a->slots += need;
	assignment_run(a, true);
	/* A drain or a lost lease that came before the runner did. */
	if (a->runner != NULL && (a->lease_lost || a->stopping))
		bd_runner_terminate(a->runner, a->lease_lost ? "the node lost "
		    "its lease on the task message" : a->stop ==
		    BD_STOP_REQUEUE ? "the node is leaving the pool; the task "
		    "goes back to the queue" : "the node is leaving the pool "
		    "(deallocation option terminate)");
}

static void assignment_on_run(struct bd_runner *r,
    const struct bd_run_outcome *o, void *arg);

/* Reports an adopted run held until its lease was settled. */
static void
assignment_release_run(struct bd_assignment *a)
{
	struct bd_runner *r = a->held_runner;

	if (r == NULL || !a->settled)
		return;
	a->held_runner = NULL;
	assignment_on_run(r, a->held_outcome, a);
}

static void
assignment_on_renewed(void *arg, int status, const char *detail)
{
	struct bd_assignment *a = arg;

	a->renewing = false;
	assignment_settle(a);
	if (status == 0) {
		a->env.stats->lease_renewals++;
		if (a->recorded)
			assignment_record(a, true);
	}
	else if (status == -ENOENT && !a->lease_lost) {
		/* Someone else may run the task now: stop ours (protocol §3). */
		a->lease_lost = true;
		a->env.stats->leases_lost++;
		if (a->runner != NULL)
			bd_runner_terminate(a->runner, "the node lost its "
			    "lease on the task message");
	} else if (status < 0)
		log_warnx("job %s: task %s: cannot renew its lease: %s",
		    A_JOB(a), A_TASK(a), detail ? detail : bd_strerror(status));
	/* A held report (or, the lease lost, its end) goes on now. */
	assignment_release_run(a);
	if (a->after_renewal != NULL) {
		void (*next)(struct bd_assignment *) = a->after_renewal;
		a->after_renewal = NULL;
		next(a);
	} else if (a->finishing)
		assignment_finish(a);
}

static void
assignment_on_renew_timer(uv_timer_t *t)
{
	struct bd_assignment *a = t->data;

	if (a->renewing || a->lease_lost)
		return;
	if (bd_source_update(a->env.source, a->msg,
	    a->env.settings->lease_ms, NULL, assignment_on_renewed, a) == 0)
		a->renewing = true;
	else {
		assignment_settle(a); /* the next tick tries again */
		/* Unknown: the row's ETag still keeps a second report out. */
		assignment_release_run(a);
	}
}

static void assignment_on_claimed(void *arg, int status, const char *etag,
    const char *detail);

/*
 * The row read again after a lost claim.  Done with (completed, or counts
 * ahead: a newer attempt's message was sent): the message goes.  Claimed
 * by a node for this attempt (running or preparing): theirs, as before;
 * the message stays hidden for its lease (a duplicate message of the
 * attempt may exist: a resend whose delete did not happen).  Else (the
 * sender's row, active): claimed again with the new ETag, at once.
 */
static void
assignment_on_claim_lost(void *arg, int status, struct bd_entity *row,
    const char *detail)
{
	struct bd_assignment *a = arg;
	const char *state;

	if (assignment_row_unread(a, status, row, detail))
		return;
	if ((state = assignment_row_state(row)) == NULL) {
		bd_entity_free(row);
		a->claims_lost = ASSIGNMENT_MAX_CLAIMS_LOST;
		assignment_on_claimed(a, -ESTALE, NULL, NULL);
		return;
	}
	if (strcmp(state, "completed") == 0 ||
	    assignment_message_is_stale(a, row)) {
		log_info("job %s: task %s: done with since the message was "
		    "received (the row is %s); dropping it", A_JOB(a),
		    A_TASK(a), strcmp(state, "completed") == 0 ? "completed" :
		    "ahead of it");
		bd_entity_free(row);
		assignment_delete(a);
		return;
	}
	/* Blocked meanwhile (a dependency failed): the message's next
	 * receive goes the whole way, dependencies first. */
	if (strcmp(state, "running") == 0 || strcmp(state, "preparing") == 0 ||
	    cJSON_GetObjectItemCaseSensitive(row->props, "blockedBy") != NULL) {
		bd_entity_free(row);
		a->claims_lost = ASSIGNMENT_MAX_CLAIMS_LOST;
		assignment_on_claimed(a, -ESTALE, NULL, NULL);
		return;
	}
	log_info("job %s: task %s: its row changed before the claim (%s); "
	    "claiming again", A_JOB(a), A_TASK(a), state);
	free(a->etag);
	a->etag = xstrdup(row->etag);
	a->row_exists = true;
	bd_entity_free(row);
	assignment_claim(a);
}

static void
assignment_on_claimed(void *arg, int status, const char *etag,
    const char *detail)
{
	struct bd_assignment *a = arg;

	if ((status == -ESTALE || status == -EEXIST) &&
	    a->claims_lost++ < ASSIGNMENT_MAX_CLAIMS_LOST) {
		/* The row changed since it was read: read it again (most
		 * often the sender's own retry or requeue row, written after
		 * its send, which this message is the attempt of). */
		if (bd_store_get(a->env.store, BD_TABLE_TASKS, a->job_id,
		    a->task_id, assignment_on_claim_lost, a) < 0)
			assignment_later(a, a->env.settings->poll_max_ms);
		return;
	}
	if (status == -ESTALE || status == -EEXIST || status == -ENOENT) {
		log_info("job %s: task %s: another node has it", A_JOB(a),
		    A_TASK(a));
		assignment_finish(a);
		return;
	}
	if (status < 0) {
		log_warnx("job %s: task %s: cannot mark it running: %s",
		    A_JOB(a), A_TASK(a), detail ? detail : bd_strerror(status));
		assignment_later(a, a->env.settings->poll_max_ms);
		return;
	}
	free(a->etag);
	a->etag = xstrdup(etag);
	a->row_exists = true;
	if (a->stopping) {
		/* The drain came while the claim was on its way. */
		if (a->stop == BD_STOP_REQUEUE)
			assignment_requeue_on_drain(a);
		else
			assignment_complete_failed(a, bd_failure_info_new(
			    BD_CATEGORY_SERVER_ERROR, "TaskEnded", "the node "
			    "left the pool before the task started"));
		return;
	}
	if (a->env.adopt_dir != NULL) {
		/* The record carries the supervisor's state, blank: a stale
		 * state from an earlier receive goes with the file it
		 * replaces, and cannot pass for this run's. */
		a->record_version = BD_ADOPT_VERSION;
		a->recorded = true;
		if (assignment_record(a, false) == 0)
			a->state_path = bd_adopt_state_path(a->env.adopt_dir,
			    a->msg->id, a->record_version);
		else {
			/* Nor an earlier record, with its state. */
			bd_adopt_remove(a->env.adopt_dir, a->msg->id, 1);
			a->recorded = false;
		}
	}
	assignment_run(a, false);
}

/* Marks the task running here, guarded by the row's ETag. */
static void
assignment_claim(struct bd_assignment *a)
{
	struct bd_entity *e;
	char buf[40];
	int rc;

	if (a->stopping) {
		/* Draining before the task started: give the message back. */
		assignment_later(a, 0);
		return;
	}
	if (a->lease_lost) {
		assignment_finish(a);
		return;
	}
	e = assignment_row(a, "running");
	/* A power failure that undoes this write is recovered by the lease
	 * (protocol §7): the message comes back and the task runs again. */
	e->lazy = true;
	/* The row's start is the one an adopted run reports at its end. */
	a->started_ms = bd_clock_now_ms();
	bd_clock_format_iso(a->started_ms, buf, sizeof(buf));
	cJSON_AddStringToObject(e->props, "startTime", buf);
	cJSON_AddNumberToObject(e->props, "retryCount", a->tm->retry_count);
	cJSON_AddNumberToObject(e->props, "requeueCount", a->tm->requeue_count);
	if (a->row_exists)
		rc = bd_store_merge(a->env.store, BD_TABLE_TASKS, e, a->etag,
		    assignment_on_claimed, a);
	else
		rc = bd_store_insert(a->env.store, BD_TABLE_TASKS, e,
		    assignment_on_claimed, a);
	bd_entity_free(e);
	if (rc < 0)
		assignment_later(a, a->env.settings->poll_max_ms);
}

static void
assignment_on_prepared(void *arg, bool may_run)
{
	struct bd_assignment *a = arg;

	if (!may_run) {
		/* This node failed the job's preparation: leave the task to
		 * the others (spec §4.2). */
		assignment_later(a, 0);
		return;
	}
	assignment_claim(a);
}

/* Slots, then the job's preparation task, then the claim. */
static void
assignment_prepare(struct bd_assignment *a)
{
	int need = a->tm->task->required_slots - a->slots;
	int rc;

	if (a->tm->task->required_slots > a->env.settings->task_slots) {
		assignment_complete_failed(a, bd_failure_info_new(
		    BD_CATEGORY_USER_ERROR, "InvalidTask", "requiredSlots: the "
		    "task needs %d slots and the pool's nodes have %d",
		    a->tm->task->required_slots, a->env.settings->task_slots));
		return;
	}
	if (a->ahead && (a->stopping || a->lease_lost)) {
		/* Stopped before it took a slot: back, or over, at once. */
		assignment_claim(a);
		return;
	}
	if (need > 0) {
		if (!a->hooks.reserve(a->hooks.arg, need)) {
			/* Only a one-slot task waits: one that needs more
			 * would wait behind every one-slot task that frees
			 * a slot. */
			if (a->ahead && a->hooks.park != NULL &&
			    a->tm->task->required_slots == 1) {
				/* Ready: wait for the slot a running task
				 * frees (daemon.c gives it back if none does
				 * soon). */
				a->parked = true;
				a->hooks.park(a->hooks.arg, a);
				return;
			}
			/* Not enough free slots now: back to the queue. */
			assignment_resend(a, a->tm->retry_count,
			    a->tm->requeue_count, a->tm->dependency_waits,
			    a->env.settings->poll_min_ms);
			return;
		}
		a->slots += need;
	}
	a->ahead = false;
	rc = bd_jobs_prepare(a->env.jobs, a->job, assignment_on_prepared, a);
	if (rc == 1)
		assignment_on_prepared(a, bd_jobs_may_run(a->job));
	else if (rc < 0)
		assignment_later(a, a->env.settings->poll_max_ms);
}

/* ---- dependencies ----------------------------------------------------- */

enum dep_state { DEP_MET, DEP_WAIT, DEP_BLOCKED };

/* The state of one dependency given its row (NULL: not added yet). */
static enum dep_state
assignment_dep_state(const struct bd_entity *row)
{
	const cJSON *action;

	if (!assignment_row_is(row, "completed"))
		return DEP_WAIT;
	action = cJSON_GetObjectItemCaseSensitive(row->props,
	    "dependencyAction");
	if (cJSON_IsString(action) && strcmp(action->valuestring, "block") == 0)
		return DEP_BLOCKED;
	return DEP_MET;
}

/* An id as an integer for taskIdRanges ("004" is 4), or -1. */
static int64_t
assignment_id_number(const char *id)
{
	int64_t v = 0;

	if (*id == '\0')
		return -1;
	for (; *id != '\0'; id++) {
		if (*id < '0' || *id > '9' || v > INT64_MAX / 10 - 10)
			return -1;
		v = v * 10 + (*id - '0');
	}
	return v;
}

static const struct bd_entity *
assignment_find_row(struct bd_entity **rows, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(rows[i]->row_key, id) == 0)
			return rows[i];
	return NULL;
}

/* The worst state over the task's dependencies; *which names one. */
static enum dep_state
assignment_deps(const struct bd_task_dependencies *d, struct bd_entity **rows,
    size_t n, const char **which)
{
	enum dep_state worst = DEP_MET, s;

	for (size_t i = 0; i < d->n_task_ids; i++) {
		s = assignment_dep_state(assignment_find_row(rows, n,
		    d->task_ids[i]));
		if (s > worst) {
			worst = s;
			*which = d->task_ids[i];
		}
	}
	for (size_t r = 0; r < d->n_task_id_ranges; r++) {
		const struct bd_task_id_range *rg = &d->task_id_ranges[r];
		int64_t found = 0;
		for (size_t i = 0; i < n; i++) {
			int64_t v = assignment_id_number(rows[i]->row_key);
			if (v < rg->start || v > rg->end)
				continue;
			found++;
			s = assignment_dep_state(rows[i]);
			if (s > worst) {
				worst = s;
				*which = rows[i]->row_key;
			}
		}
		/* Every id of the range must exist (as a task) and be done. */
		if (found < rg->end - rg->start + 1 && worst < DEP_WAIT) {
			worst = DEP_WAIT;
			*which = "a task of a taskIdRanges range";
		}
	}
	return worst;
}

static void
assignment_on_blocked_row(void *arg, int status, const char *etag,
    const char *detail)
{
	assignment_delete(arg);
}

static void
assignment_on_dep_rows(void *arg, int status, struct bd_entity **rows,
    size_t n, const char *detail)
{
	struct bd_assignment *a = arg;
	const char *which = NULL;
	enum dep_state st;
	int64_t delay;

	if (status < 0) {
		log_warnx("job %s: task %s: cannot read its dependencies: %s",
		    A_JOB(a), A_TASK(a), detail ? detail : bd_strerror(status));
		assignment_later(a, a->env.settings->poll_max_ms);
		return;
	}
	st = assignment_deps(&a->tm->task->depends_on, rows, n, &which);
	/* which may point into rows, which go now. */
	char *dep = xstrdup(which != NULL ? which : "?");
	for (size_t i = 0; i < n; i++)
		bd_entity_free(rows[i]);
	free(rows);
	which = dep;
	if (st == DEP_MET) {
		free(dep);
		assignment_prepare(a);
		return;
	}
	if (st == DEP_BLOCKED) {
		/* As on Azure Batch the task stays active and never runs. */
		struct bd_entity *e = assignment_row(a, "active");
		log_info("job %s: task %s: blocked: dependency %s failed with "
		    "dependencyAction block", A_JOB(a), A_TASK(a), which);
		cJSON_AddStringToObject(e->props, "blockedBy", which);
		free(dep);
		if (bd_store_merge(a->env.store, BD_TABLE_TASKS, e, NULL,
		    assignment_on_blocked_row, a) < 0)
			assignment_delete(a);
		bd_entity_free(e);
		return;
	}
	/* Not yet: back to the queue with a growing delay, holding no slot. */
	delay = 500;
	for (int i = 0; i < a->tm->dependency_waits && delay <
	    a->env.settings->poll_max_ms; i++)
		delay *= 2;
	if (delay > a->env.settings->poll_max_ms)
		delay = a->env.settings->poll_max_ms;
	log_debug("job %s: task %s: waiting for %s", A_JOB(a), A_TASK(a),
	    which);
	free(dep);
	assignment_resend(a, a->tm->retry_count, a->tm->requeue_count,
	    a->tm->dependency_waits + 1, delay);
}

/* ---- arrival ---------------------------------------------------------- */

/*
 * Whether the row's counts are ahead of the message's: a retry or requeue
 * writes its counts into the row only after its new message is sent, so
 * this message was left behind (its node stopped before deleting it) and
 * running it would run an attempt that was replaced.
 */
static bool
assignment_message_is_stale(const struct bd_assignment *a,
    const struct bd_entity *row)
{
	return assignment_row_count(row, "retryCount") > a->tm->retry_count ||
	    assignment_row_count(row, "requeueCount") > a->tm->requeue_count;
}

static void
assignment_on_row(void *arg, int status, struct bd_entity *row,
    const char *detail)
{
	struct bd_assignment *a = arg;

	if (assignment_row_unread(a, status, row, detail))
		return;
	if (row != NULL) {
		if (assignment_row_is(row, "completed")) {
			/* Recorded already (protocol §3: exactly once). */
			log_info("job %s: task %s: already completed; dropping "
			    "a duplicate message", A_JOB(a), A_TASK(a));
			bd_entity_free(row);
			assignment_delete(a);
			return;
		}
		if (assignment_message_is_stale(a, row)) {
			log_info("job %s: task %s: a newer message of the task "
			    "was sent (the row's counts are ahead); dropping "
			    "this one", A_JOB(a), A_TASK(a));
			bd_entity_free(row);
			assignment_delete(a);
			return;
		}
		a->row_exists = true;
		a->etag = xstrdup(row->etag);
		bd_entity_free(row);
	}
	if (a->tm->task->has_depends_on) {
		if (bd_store_query(a->env.store, BD_TABLE_TASKS, a->job_id,
		    assignment_on_dep_rows, a) < 0)
			assignment_later(a, a->env.settings->poll_max_ms);
		return;
	}
	assignment_prepare(a);
}

static void
assignment_on_job(void *arg, int status, struct bd_job *job,
    const char *detail)
{
	struct bd_assignment *a = arg;
	char *cause = NULL;

	if (status == -ENOENT) {
		assignment_poison(a, bd_failure_info_new(BD_CATEGORY_USER_ERROR,
		    "JobNotFound", "the job %s does not exist in pool %s: add "
		    "the job (batchd job add) before its tasks", a->job_id,
		    a->env.settings->pool_id));
		return;
	}
	if (status < 0) {
		log_warnx("job %s: task %s: cannot read the job: %s", A_JOB(a),
		    A_TASK(a), detail ? detail : bd_strerror(status));
		assignment_later(a, a->env.settings->poll_max_ms);
		return;
	}
	a->job = job;
	if (a->adopting) {
		/* Claimed and started before the restart. */
		assignment_adopt_run(a);
		return;
	}
	if (job->state != BD_JOB_ACTIVE) {
		assignment_complete_failed(a, bd_failure_info_new(
		    BD_CATEGORY_USER_ERROR, "TaskEnded", "the job %s was "
		    "terminated before the task could run", a->job_id));
		return;
	}
	if (bd_job_spec_check_task(job->spec, a->tm->task, &cause) < 0) {
		assignment_complete_failed(a, bd_failure_info_new(
		    BD_CATEGORY_USER_ERROR, "InvalidTask", "%s", cause));
		free(cause);
		return;
	}
	if (bd_store_get(a->env.store, BD_TABLE_TASKS, a->job_id, a->task_id,
	    assignment_on_row, a) < 0)
		assignment_later(a, a->env.settings->poll_max_ms);
}

/* Decodes the message and starts on the job; runs from a zero timer. */
static void
assignment_begin(uv_timer_t *t)
{
	struct bd_assignment *a = t->data;
	uint64_t every = (uint64_t)(a->env.settings->lease_ms / 2);
	char *cause = NULL;
	int rc;

	/* The lease is renewed at about half its length from now on, also
	 * while the job's preparation task runs (protocol §3). */
	uv_timer_start(&a->renew_timer, assignment_on_renew_timer,
	    a->adopting ? 0 : every, every);
	rc = bd_task_message_decode(a->msg->text, strlen(a->msg->text), &a->tm,
	    &a->job_id, &a->task_id, &cause);
	if (rc < 0) {
		assignment_poison(a, bd_failure_info_new(BD_CATEGORY_USER_ERROR,
		    "InvalidTaskMessage", "the task's queue message is not "
		    "valid: %s", cause));
		free(cause);
		return;
	}
	if (!a->adopting && a->env.settings->max_dequeue_count > 0 &&
	    a->msg->dequeue_count > a->env.settings->max_dequeue_count) {
		if (bd_store_get(a->env.store, BD_TABLE_TASKS, a->job_id,
		    a->task_id, assignment_on_poison_row, a) < 0)
			assignment_later(a, a->env.settings->poll_max_ms);
		return;
	}
	if (bd_jobs_get(a->env.jobs, a->job_id, assignment_on_job, a) < 0)
		assignment_later(a, a->env.settings->poll_max_ms);
}

void
bd_assignment_start(const struct bd_assignment_env *env,
    struct bd_message *msg, const struct bd_assignment_hooks *hooks,
    struct bd_assignment **out)
{
	struct bd_assignment *a = xcalloc(1, sizeof(*a));

	a->env = *env;
	a->hooks = *hooks;
	a->msg = msg;
	a->slots = 1;
	env->stats->messages++;
	uv_timer_init(env->loop, &a->renew_timer);
	a->renew_timer.data = a;
	/* The renewal timer also starts the work, so the done hook never
	 * runs inside this call. */
	uv_timer_start(&a->renew_timer, assignment_begin, 0, 0);
	*out = a;
}

void
bd_assignment_start_ahead(const struct bd_assignment_env *env,
    struct bd_message *msg, const struct bd_assignment_hooks *hooks,
    struct bd_assignment **out)
{
	bd_assignment_start(env, msg, hooks, out);
	(*out)->slots = 0;
	(*out)->ahead = true;
}

bool
bd_assignment_ahead(const struct bd_assignment *a)
{
	return a->ahead;
}

int64_t
bd_assignment_run_ms(const struct bd_assignment *a)
{
	return a->started && !a->adopting ? bd_clock_now_ms() - a->started_ms :
	    -1;
}

void
bd_assignment_resume(struct bd_assignment *a)
{
	if (!a->parked)
		return;
	a->parked = false;
	if (a->stopping || a->lease_lost) {
		assignment_claim(a);	/* gives the message back or ends */
		return;
	}
	assignment_prepare(a);
}

void
bd_assignment_give_back(struct bd_assignment *a)
{
	if (!a->parked)
		return;
	a->parked = false;
	log_info("job %s: task %s: received ahead, but no slot freed here "
	    "soon; back to the queue for other nodes", A_JOB(a), A_TASK(a));
	/* As a new message with the same counts: a receive that ran
	 * nothing must not count towards maxDequeueCount. */
	assignment_resend(a, a->tm->retry_count, a->tm->requeue_count,
	    a->tm->dependency_waits, 0);
}

void
bd_assignment_adopt(const struct bd_assignment_env *env,
    struct bd_adopt_record *rec, const struct bd_assignment_hooks *hooks,
    struct bd_assignment **out)
{
	struct bd_message *m = xcalloc(1, sizeof(*m));
	struct bd_assignment *a;

	m->id = rec->message_id;
	m->pop_receipt = rec->pop_receipt;
	m->text = rec->message_text;
	m->dequeue_count = rec->dequeue_count;
	m->inserted_ms = rec->inserted_ms;
	rec->message_id = rec->pop_receipt = rec->message_text = NULL;
	bd_assignment_start(env, m, hooks, &a);
	a->adopting = true;
	a->recorded = env->adopt_dir != NULL;
	a->etag = rec->etag;
	rec->etag = NULL;
	a->row_exists = true;
	a->started_ms = rec->started_ms;
	a->record_version = rec->version;
	if (env->adopt_dir != NULL)
		a->state_path = bd_adopt_state_path(env->adopt_dir, m->id,
		    rec->version);
	bd_adopt_record_free(rec);
	*out = a;
}

void
bd_assignment_stop(struct bd_assignment *a, enum bd_assignment_stop how)
{
	if (a->stopping || a->done)
		return;
	a->stopping = true;
	a->stop = how;
	if (a->runner != NULL)
		bd_runner_terminate(a->runner, how == BD_STOP_REQUEUE ?
		    "the node is leaving the pool; the task goes back to the "
		    "queue" : "the node is leaving the pool (deallocation "
		    "option terminate)");
}

static void
assignment_on_close(uv_handle_t *h)
{
	struct bd_assignment *a = h->data;

	bd_message_free(a->msg);
	bd_task_message_free(a->tm);
	bd_failure_info_free(a->pending_failure);
	bd_entity_free(a->pending_row);
	free(a->pending_text);
	free(a->job_id);
	free(a->task_id);
	free(a->etag);
	free(a->state_path);
	free(a);
}

char *
bd_assignment_task_dir(const struct bd_assignment *a, int64_t *retention_ms)
{
	struct bd_task_dirs dirs;
	char *dir;

	if (!a->started)
		return NULL;
	bd_layout_task_dirs(a->env.node->root, a->tm->job_id, a->tm->task,
	    &dirs);
	dir = dirs.task_dir;
	dirs.task_dir = NULL;
	bd_layout_dirs_free(&dirs);
	*retention_ms = a->tm->task->constraints.retention_ms;
	return dir;
}

void
bd_assignment_free(struct bd_assignment *a)
{
	uv_close((uv_handle_t *)&a->renew_timer, assignment_on_close);
}
