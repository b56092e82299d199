/* SPDX-License-Identifier: MIT */
/*
 * Jobs as this node sees them (see jobs.h).
 *
 * Each job this node has met has an entry: the spec from the store, the
 * state of its preparation task here (none, running, done), the callers
 * waiting for that run, and whether its release task ran.  Entries live
 * until the daemon ends; a pool's job count is small next to its tasks.
 *
 * Durable records, one small JSON file per job in <stateDir>/jobs/:
 *   <id>.prep      {"v":1,"mayRun":true,"bootId":"..."}  preparation ran
 *   <id>.released  {"v":1}                               release ran
 * A preparation record from an earlier boot counts only when the task does
 * not ask to rerun after a reboot (rerunOnNodeRebootAfterSuccess); for the
 * release task any preparation record counts (spec §4.3: it runs on every
 * node where the preparation ran).  At start the directory is read, and
 * every job prepared but not released gets an entry without a spec, so
 * the periodic job check watches it even if none of its tasks come again;
 * the spec comes with the first read of the job table.
 */
#include "jobs.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include "clock.h"
#include "error.h"
#include "fsutil.h"
#include "log.h"
#include "runner.h"
#include "xmalloc.h"

enum prep_state { PREP_UNKNOWN, PREP_RUNNING, PREP_DONE };

struct prep_waiter {
	bd_jobs_prepare_cb cb;
	void *arg;
	SLIST_ENTRY(prep_waiter) next;
};

struct job_entry {
	struct bd_job pub;
	enum prep_state prep;
	bool may_run;		/* after PREP_DONE */
	bool prepared;		/* the preparation ran here, this boot or not */
	bool seen;		/* in the last read of the job table */
	bool released;
	bool releasing;
	struct bd_runner *runner;	/* preparation or release */
	SLIST_HEAD(, prep_waiter) waiters;
	struct bd_jobs *jobs;
	LIST_ENTRY(job_entry) link;
};

struct get_req {
	struct bd_jobs *jobs;
	char *id;
	bd_jobs_get_cb cb;
	void *arg;
};

struct bd_jobs {
	struct bd_jobs_env env;
	char *dir;		/* <stateDir>/jobs */
	char boot_id[64];
	LIST_HEAD(, job_entry) entries;
	int running;		/* runners of preparation or release */
	bool checking;
};

static void jobs_load_prepared(struct bd_jobs *jobs);

int
bd_jobs_new(const struct bd_jobs_env *env, struct bd_jobs **out, char **cause)
{
	struct bd_jobs *jobs = xcalloc(1, sizeof(*jobs));
	int rc;

	jobs->env = *env;
	jobs->dir = bd_path_join(env->state_dir, "jobs");
	if ((rc = bd_mkdir_p(jobs->dir, 0700)) < 0) {
		*cause = xasprintf("%s: %s", jobs->dir, strerror(-rc));
		free(jobs->dir);
		free(jobs);
		return rc;
	}
	bd_clock_boot_id(jobs->boot_id, sizeof(jobs->boot_id));
	LIST_INIT(&jobs->entries);
	jobs_load_prepared(jobs);
	*out = jobs;
	return 0;
}

static void
jobs_entry_free(struct job_entry *e)
{
	struct prep_waiter *w;

	while ((w = SLIST_FIRST(&e->waiters)) != NULL) {
		SLIST_REMOVE_HEAD(&e->waiters, next);
		free(w);
	}
	free(e->pub.id);
	bd_job_spec_free(e->pub.spec);
	free(e);
}

void
bd_jobs_free(struct bd_jobs *jobs)
{
	struct job_entry *e;

	if (jobs == NULL)
		return;
	while ((e = LIST_FIRST(&jobs->entries)) != NULL) {
		LIST_REMOVE(e, link);
		jobs_entry_free(e);
	}
	free(jobs->dir);
	free(jobs);
}

int
bd_jobs_running(const struct bd_jobs *jobs)
{
	return jobs->running;
}

bool
bd_jobs_busy(const struct bd_jobs *jobs)
{
	return jobs->running > 0 || jobs->checking;
}

/* Tells the daemon that something it may be waiting for has ended. */
static void
jobs_idle(struct bd_jobs *jobs)
{
	if (jobs->env.idle_cb != NULL)
		jobs->env.idle_cb(jobs->env.idle_arg);
}

static struct job_entry *
jobs_find(struct bd_jobs *jobs, const char *id)
{
	struct job_entry *e;

	LIST_FOREACH(e, &jobs->entries, link)
		if (strcmp(e->pub.id, id) == 0)
			return e;
	return NULL;
}

static enum bd_job_state
jobs_parse_state(const cJSON *props)
{
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(props, "state");

	if (!cJSON_IsString(s) || strcmp(s->valuestring, "active") == 0)
		return BD_JOB_ACTIVE;
	if (strcmp(s->valuestring, "terminating") == 0)
		return BD_JOB_TERMINATING;
	return BD_JOB_COMPLETED;
}

/* The path of a record file for job id. */
static char *
jobs_record_path(struct bd_jobs *jobs, const char *id, const char *kind)
{
	return xasprintf("%s/%s.%s", jobs->dir, id, kind);
}

/* Loads what this node recorded about e in an earlier run. */
static void
jobs_load_records(struct bd_jobs *jobs, struct job_entry *e)
{
	char *path = jobs_record_path(jobs, e->pub.id, "prep"), *data;
	size_t len;
	const struct bd_task_spec *prep = e->pub.spec != NULL ?
	    e->pub.spec->job_preparation_task : NULL;

	e->prepared = access(path, F_OK) == 0;
	if (prep != NULL && bd_read_file(path, 4096, &data, &len) == 0) {
		cJSON *rec = cJSON_Parse(data);
		const cJSON *may = cJSON_GetObjectItemCaseSensitive(rec, "mayRun");
		const cJSON *boot = cJSON_GetObjectItemCaseSensitive(rec, "bootId");
		bool same_boot = cJSON_IsString(boot) &&
		    strcmp(boot->valuestring, jobs->boot_id) == 0;
		/* After a reboot the task runs again if it asks to, or if it
		 * never succeeded. */
		if (cJSON_IsBool(may) && (same_boot ||
		    (!prep->rerun_on_node_reboot_after_success &&
		    cJSON_IsTrue(may)))) {
			e->prep = PREP_DONE;
			e->may_run = cJSON_IsTrue(may);
		}
		cJSON_Delete(rec);
		free(data);
	}
	free(path);
	path = jobs_record_path(jobs, e->pub.id, "released");
	e->released = access(path, F_OK) == 0;
	free(path);
}

/* Parses the spec of e's job from its row, then reads e's records. */
static void
jobs_set_spec(struct job_entry *e, const struct bd_entity *row)
{
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(row->props,
	    "spec");
	char *cause = NULL;

	if (cJSON_IsString(spec) && bd_job_spec_parse(spec->valuestring,
	    strlen(spec->valuestring), &e->pub.spec, &cause) < 0) {
		log_warnx("job %s: the job's spec in the store is not valid: "
		    "%s", e->pub.id, cause);
		free(cause);
	}
	jobs_load_records(e->jobs, e);
}

/* Makes the entry for a job row (or a missing job). */
static struct job_entry *
jobs_add(struct bd_jobs *jobs, const char *id, struct bd_entity *row)
{
	struct job_entry *e = xcalloc(1, sizeof(*e));

	e->pub.id = xstrdup(id);
	e->jobs = jobs;
	SLIST_INIT(&e->waiters);
	if (row != NULL) {
		e->pub.state = jobs_parse_state(row->props);
		jobs_set_spec(e, row);
	} else
		jobs_load_records(jobs, e);
	LIST_INSERT_HEAD(&jobs->entries, e, link);
	return e;
}

/* Whether name is a job id as Azure allows it (so a safe file name). */
static bool
jobs_valid_id(const char *id, size_t len)
{
	if (len == 0 || len > 64)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)id[i]) && id[i] != '-' &&
		    id[i] != '_')
			return false;
	return true;
}

/*
 * Makes an entry for every job whose preparation ran here and whose
 * release did not, as recorded by an earlier run of the daemon.
 */
static void
jobs_load_prepared(struct bd_jobs *jobs)
{
	DIR *dir = opendir(jobs->dir);
	struct dirent *de;

	if (dir == NULL) {
		log_warn("jobs: %s", jobs->dir);
		return;
	}
	while ((de = readdir(dir)) != NULL) {
		const char *dot = strrchr(de->d_name, '.');
		char *id, *path;
		bool released;

		if (dot == NULL || strcmp(dot, ".prep") != 0 ||
		    !jobs_valid_id(de->d_name, (size_t)(dot - de->d_name)))
			continue;
		id = xstrndup(de->d_name, (size_t)(dot - de->d_name));
		path = jobs_record_path(jobs, id, "released");
		released = access(path, F_OK) == 0;
		free(path);
		if (!released && jobs_find(jobs, id) == NULL) {
			log_debug("job %s: prepared here before: watching it "
			    "for its release", id);
			jobs_add(jobs, id, NULL);
		}
		free(id);
	}
	closedir(dir);
}

static void
jobs_on_row(void *arg, int status, struct bd_entity *row, const char *detail)
{
	struct get_req *req = arg;
	struct job_entry *e = jobs_find(req->jobs, req->id);

	if (status == 0 || status == -ENOENT) {
		if (e != NULL && e->pub.spec == NULL && row != NULL) {
			/* Missing (or unreadable) before: read it again. */
			LIST_REMOVE(e, link);
			jobs_entry_free(e);
			e = NULL;
		}
		if (e == NULL)
			e = jobs_add(req->jobs, req->id, row);
		else if (row != NULL)
			e->pub.state = jobs_parse_state(row->props);
		if (e->pub.spec == NULL)
			req->cb(req->arg, -ENOENT, &e->pub, detail);
		else
			req->cb(req->arg, 0, &e->pub, NULL);
	} else
		req->cb(req->arg, status, NULL, detail);
	bd_entity_free(row);
	free(req->id);
	free(req);
}

int
bd_jobs_get(struct bd_jobs *jobs, const char *id, bd_jobs_get_cb cb, void *arg)
{
	struct get_req *req = xcalloc(1, sizeof(*req));
	int rc;

	/* The row is read every time: its state says whether the job was
	 * terminated, and the cached spec saves parsing it again. */
	req->jobs = jobs;
	req->id = xstrdup(id);
	req->cb = cb;
	req->arg = arg;
	rc = bd_store_get(jobs->env.store, BD_TABLE_JOBS, jobs->env.pool_id, id,
	    jobs_on_row, req);
	if (rc < 0) {
		free(req->id);
		free(req);
	}
	return rc;
}

/* Writes a small record file for job id. */
static void
jobs_write_record(struct bd_jobs *jobs, const char *id, const char *kind,
    cJSON *rec)
{
	char *path = jobs_record_path(jobs, id, kind);
	char *text = cJSON_PrintUnformatted(rec);
	int rc;

	if ((rc = bd_write_file_atomic(path, text, strlen(text), 0600)) < 0)
		log_warnx("job %s: cannot record its %s task: %s", id,
		    strcmp(kind, "prep") == 0 ? "preparation" : "release",
		    strerror(-rc));
	free(text);
	free(path);
	cJSON_Delete(rec);
}

static void
jobs_on_prepared(struct bd_runner *r, const struct bd_run_outcome *o, void *arg)
{
	struct job_entry *e = arg;
	struct bd_jobs *jobs = e->jobs;
	const struct bd_task_spec *prep = e->pub.spec->job_preparation_task;
	struct prep_waiter *w;
	cJSON *rec;

	e->prep = PREP_DONE;
	e->prepared = true;
	e->may_run = o->info.result == BD_RESULT_SUCCESS ||
	    !prep->wait_for_success;
	if (o->info.failure != NULL)
		log_warnx("job %s: task %s: failed: %s: %s", e->pub.id,
		    prep->id, o->info.failure->code, o->info.failure->message);
	log_info("job %s: task %s: %s; the job's tasks %s on this node",
	    e->pub.id, prep->id, bd_task_result_name(o->info.result),
	    e->may_run ? "run" : "do not run");
	rec = cJSON_CreateObject();
	cJSON_AddNumberToObject(rec, "v", 1);
	cJSON_AddBoolToObject(rec, "mayRun", e->may_run);
	cJSON_AddStringToObject(rec, "bootId", jobs->boot_id);
	cJSON_AddItemToObject(rec, "executionInfo",
	    bd_execution_info_to_json(&o->info));
	jobs_write_record(jobs, e->pub.id, "prep", rec);
	bd_runner_free(r);
	e->runner = NULL;
	jobs->running--;
	while ((w = SLIST_FIRST(&e->waiters)) != NULL) {
		SLIST_REMOVE_HEAD(&e->waiters, next);
		w->cb(w->arg, e->may_run);
		free(w);
	}
	jobs_idle(jobs);
}

/* Starts a runner for the job's preparation or release task. */
static int
jobs_run(struct job_entry *e, const struct bd_task_spec *t, bd_runner_done_cb cb)
{
	struct bd_jobs *jobs = e->jobs;
	struct bd_runner_options ro = {
		.loop = jobs->env.loop,
		.http = jobs->env.http != NULL ? *jobs->env.http : NULL,
		.node = jobs->env.node,
		.job = e->pub.spec,
		.task = t,
		.users = jobs->env.users,
		.kill_grace_ms = jobs->env.kill_grace_ms,
		.storage = jobs->env.storage,
	};
	int rc;

	log_info("job %s: task %s: starting", e->pub.id, t->id);
	if ((rc = bd_runner_start(&ro, cb, e, &e->runner)) < 0)
		return rc;
	jobs->running++;
	return 0;
}

int
bd_jobs_prepare(struct bd_jobs *jobs, struct bd_job *job, bd_jobs_prepare_cb cb,
    void *arg)
{
	struct job_entry *e = (struct job_entry *)job;
	struct prep_waiter *w;
	int rc;

	if (e->prep == PREP_UNKNOWN && job->spec->job_preparation_task == NULL) {
		e->prep = PREP_DONE;
		e->may_run = true;
	}
	w = xcalloc(1, sizeof(*w));
	w->cb = cb;
	w->arg = arg;
	SLIST_INSERT_HEAD(&e->waiters, w, next);
	if (e->prep == PREP_DONE) {
		SLIST_REMOVE_HEAD(&e->waiters, next);
		free(w);
		return 1;
	}
	if (e->prep == PREP_RUNNING)
		return 0;
	e->prep = PREP_RUNNING;
	if ((rc = jobs_run(e, job->spec->job_preparation_task,
	    jobs_on_prepared)) < 0) {
		e->prep = PREP_UNKNOWN;
		SLIST_REMOVE_HEAD(&e->waiters, next);
		free(w);
		return rc;
	}
	return 0;
}

bool
bd_jobs_may_run(const struct bd_job *job)
{
	return ((const struct job_entry *)job)->may_run;
}

static void
jobs_on_released(struct bd_runner *r, const struct bd_run_outcome *o, void *arg)
{
	struct job_entry *e = arg;
	cJSON *rec = cJSON_CreateObject();

	if (o->info.failure != NULL)
		log_warnx("job %s: task %s: failed: %s: %s", e->pub.id,
		    e->pub.spec->job_release_task->id, o->info.failure->code,
		    o->info.failure->message);
	else
		log_info("job %s: task %s: done", e->pub.id,
		    e->pub.spec->job_release_task->id);
	cJSON_AddNumberToObject(rec, "v", 1);
	cJSON_AddItemToObject(rec, "executionInfo",
	    bd_execution_info_to_json(&o->info));
	jobs_write_record(e->jobs, e->pub.id, "released", rec);
	e->released = true;
	e->releasing = false;
	bd_runner_free(r);
	e->runner = NULL;
	e->jobs->running--;
	jobs_idle(e->jobs);
}

static void
jobs_on_job_rows(void *arg, int status, struct bd_entity **rows, size_t n,
    const char *detail)
{
	struct bd_jobs *jobs = arg;

	jobs->checking = false;
	if (status < 0) {
		log_debug("jobs: cannot read the job table: %s",
		    detail ? detail : bd_strerror(status));
		jobs_idle(jobs);
		return;
	}
	struct job_entry *e;
	LIST_FOREACH(e, &jobs->entries, link)
		e->seen = false;
	for (size_t i = 0; i < n; i++) {
		e = jobs_find(jobs, rows[i]->row_key);
		if (e != NULL) {
			e->seen = true;
			e->pub.state = jobs_parse_state(rows[i]->props);
			if (e->pub.spec == NULL)
				jobs_set_spec(e, rows[i]);
		}
		bd_entity_free(rows[i]);
	}
	free(rows);
	LIST_FOREACH(e, &jobs->entries, link) {
		if (!e->seen && e->pub.spec == NULL)
			e->prepared = false; /* the job is gone: stop watching */
		if (e->pub.state == BD_JOB_ACTIVE || e->released ||
		    e->releasing || e->runner != NULL || !e->prepared ||
		    e->pub.spec == NULL || e->pub.spec->job_release_task == NULL)
			continue;
		e->releasing = true;
		if (jobs_run(e, e->pub.spec->job_release_task,
		    jobs_on_released) < 0)
			e->releasing = false;
	}
	jobs_idle(jobs);
}

bool
bd_jobs_watching(const struct bd_jobs *jobs)
{
	const struct job_entry *e;

	/* Only nodes that prepared a job need to watch it. */
	LIST_FOREACH(e, &jobs->entries, link)
		if (e->prepared && !e->released && (e->pub.spec == NULL ||
		    e->pub.spec->job_release_task != NULL))
			return true;
	return false;
}

void
bd_jobs_check(struct bd_jobs *jobs)
{
	if (!bd_jobs_watching(jobs) || jobs->checking)
		return;
	if (bd_store_query(jobs->env.store, BD_TABLE_JOBS, jobs->env.pool_id,
	    jobs_on_job_rows, jobs) == 0)
		jobs->checking = true;
}
