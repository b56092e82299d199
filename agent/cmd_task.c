/* SPDX-License-Identifier: MIT */
/*
 * `batchd task`: adding tasks to a job and looking at them.
 *
 *   batchd task add [--config FILE] [--resend] JOB_ID FILE...
 *   batchd task list [--config FILE] [--state S] JOB_ID
 *   batchd task show [--config FILE] [--json] JOB_ID TASK_ID
 *
 * `add` reads every file (a task, an array of tasks, or Azure's
 * {"value": [...]} collection) and checks every task -- its fields, the
 * job's rules for it, its message size, its id against the others and
 * against the job's rows -- before it writes anything: a bad task in a
 * batch adds nothing at all.  Then for each task it inserts the row
 * (state active) and sends the message (docs/protocol.md §2, §4), up to
 * ADD_PARALLEL tasks at once.  The row goes first so that a node that
 * receives the message finds it.
 *
 * Idempotency: a task whose row exists with the same id and the same
 * spec is skipped and counted, so running the same command again after a
 * failure adds just what is missing.  A task whose row was written but
 * whose message was not sent stays active; `add --resend` sends the
 * message again for such rows (active, never touched by a node).  A
 * second message for a task whose first did arrive is harmless: the
 * nodes record a task once (protocol §3).
 */
#include "cmd_task.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client.h"
#include "clock.h"
#include "error.h"
#include "job_spec.h"
#include "json_field.h"
#include "message.h"
#include "task_spec.h"
#include "xmalloc.h"

#define ADD_MAX_FILE (64 * 1024 * 1024)
#define ADD_MAX_TASKS 100000
#define ADD_PARALLEL 32
#define ADD_MAX_SHOWN 20	/* error lines printed before "and N more" */

enum add_action {
	ADD_NEW,	/* insert the row, then send the message */
	ADD_SKIP,	/* the job has it already */
	ADD_RESEND,	/* the job has it; send the message again */
};

enum add_result {
	ADD_PENDING,
	ADD_DONE,
	ADD_ROW_FAILED,		/* nothing written */
	ADD_SEND_FAILED,	/* the row is there, the message is not */
};

struct task_add;

struct add_item {
	struct task_add *ta;
	char *where;		/* "FILE: value[3]", for messages */
	struct bd_task_spec *spec;
	char *spec_text;	/* compact JSON, for the row */
	char *message;		/* the queue message */
	enum add_action action;
	enum add_result result;
	char *detail;		/* why it failed */
};

struct task_add {
	struct bd_client *c;
	const char *job_id;
	struct add_item *items;
	size_t n;
	size_t next;		/* the next item to start */
	int in_flight;
	bool stop;		/* a failure: start no more */
	bool done;
	char **errors;		/* found while checking */
	size_t n_errors;
};

static void
task_usage(FILE *f)
{
	fprintf(f,
	    "usage: batchd task add [--config FILE] [--resend] JOB_ID "
	    "FILE...\n"
	    "       batchd task list [--config FILE] [--state S] JOB_ID\n"
	    "       batchd task show [--config FILE] [--json] JOB_ID "
	    "TASK_ID\n");
}

/* ---- add: checking -------------------------------------------------- */

/* Records a problem found while checking; all are printed at the end. */
static void __attribute__((format(printf, 2, 3)))
add_error(struct task_add *ta, const char *fmt, ...)
{
	va_list ap;

	ta->errors = xreallocarray(ta->errors, ta->n_errors + 1,
	    sizeof(*ta->errors));
	va_start(ap, fmt);
	ta->errors[ta->n_errors++] = xvasprintf(fmt, ap);
	va_end(ap);
}

/* Prints the problems found (at most ADD_MAX_SHOWN of them). */
static void
add_print_errors(struct task_add *ta)
{
	for (size_t i = 0; i < ta->n_errors && i < ADD_MAX_SHOWN; i++)
		bd_client_error("task add", "%s", ta->errors[i]);
	if (ta->n_errors > ADD_MAX_SHOWN)
		bd_client_error("task add", "... and %zu more",
		    ta->n_errors - ADD_MAX_SHOWN);
	bd_client_error("task add", "nothing was added to job %s",
	    ta->job_id);
}

/* Checks one task of a file and keeps it as an item. */
static void
add_check_one(struct task_add *ta, const char *file, const cJSON *obj,
    const char *path)
{
	struct add_item *it;
	struct bd_task_spec *spec = NULL;
	char *cause = NULL, *text, *msg;
	int rc;

	if (!cJSON_IsObject(obj)) {
		add_error(ta, "%s: %s: expected a task object, not %s", file,
		    path, bd_json_type_name(obj));
		return;
	}
	if ((rc = bd_task_spec_from_json(obj, BD_TASK_KIND_TASK, path,
	    &spec, &cause)) < 0) {
		add_error(ta, "%s: %s", file, cause != NULL ? cause :
		    bd_strerror(rc));
		free(cause);
		return;
	}
	text = cJSON_PrintUnformatted(obj);
	if (text == NULL)
		abort(); /* cJSON fails only when out of memory */
	if (strlen(text) > BD_CLIENT_SPEC_MAX) {
		add_error(ta, "%s: task %s: %zu bytes as compact JSON; a "
		    "task record holds at most %d", file, spec->id,
		    strlen(text), BD_CLIENT_SPEC_MAX);
		goto fail;
	}
	if ((msg = bd_task_message_encode(ta->job_id, obj, 0, 0, 0,
	    &cause)) == NULL) {
		add_error(ta, "%s: task %s: %s", file, spec->id, cause);
		free(cause);
		goto fail;
	}
	if (ta->n >= ADD_MAX_TASKS) {
		free(msg);
		goto fail;
	}
	ta->items = xreallocarray(ta->items, ta->n + 1, sizeof(*ta->items));
	it = &ta->items[ta->n++];
	memset(it, 0, sizeof(*it));
	it->ta = ta;
	it->where = *path != '\0' ? xasprintf("%s: %s", file, path) :
	    xstrdup(file);
	it->spec = spec;
	it->spec_text = text;
	it->message = msg;
	return;
fail:
	free(text);
	bd_task_spec_free(spec);
}

/*
 * Reads one file: a task, an array of tasks or {"value": [...]}.
 * Returns 0, or an exit status for a file that cannot be read at all.
 */
static int
add_read_file(struct task_add *ta, const char *file)
{
	const cJSON *list = NULL, *item;
	const char *prefix = "";
	cJSON *doc;
	char path[48];
	size_t i = 0;
	int status;

	if ((status = bd_client_read_json("task add", file, ADD_MAX_FILE,
	    &doc)) != BD_CLIENT_OK)
		return status;
	if (cJSON_IsArray(doc))
		list = doc;
	else if (cJSON_IsObject(doc) && cJSON_GetObjectItemCaseSensitive(doc,
	    "commandLine") == NULL && cJSON_IsArray(
	    cJSON_GetObjectItemCaseSensitive(doc, "value"))) {
		list = cJSON_GetObjectItemCaseSensitive(doc, "value");
		prefix = "value";
	} else if (!cJSON_IsObject(doc)) {
		bd_client_error("task add", "%s: expected a task, an array of "
		    "tasks or {\"value\": [tasks]}, not %s", file,
		    bd_json_type_name(doc));
		cJSON_Delete(doc);
		return BD_CLIENT_FAIL;
	}
	if (list == NULL)
		add_check_one(ta, file, doc, "");
	else
		cJSON_ArrayForEach(item, list) {
			snprintf(path, sizeof(path), "%s[%zu]", prefix, i++);
			add_check_one(ta, file, item, path);
			if (ta->n >= ADD_MAX_TASKS)
				break;
		}
	cJSON_Delete(doc);
	if (ta->n >= ADD_MAX_TASKS) {
		bd_client_error("task add", "more than %d tasks at once: add "
		    "them in parts", ADD_MAX_TASKS);
		return BD_CLIENT_FAIL;
	}
	return 0;
}

static int
add_cmp_id(const void *a, const void *b)
{
	const struct add_item *x = *(const struct add_item *const *)a;
	const struct add_item *y = *(const struct add_item *const *)b;

	return strcasecmp(x->spec->id, y->spec->id);
}

/* Task ids are case-insensitive (protocol §1): no two alike in the input. */
static void
add_check_duplicates(struct task_add *ta)
{
	struct add_item **by_id;

	if (ta->n < 2)
		return;
	by_id = xreallocarray(NULL, ta->n, sizeof(*by_id));
	for (size_t i = 0; i < ta->n; i++)
		by_id[i] = &ta->items[i];
	qsort(by_id, ta->n, sizeof(*by_id), add_cmp_id);
	for (size_t i = 1; i < ta->n; i++)
		if (strcasecmp(by_id[i - 1]->spec->id, by_id[i]->spec->id) ==
		    0)
			add_error(ta, "%s: task id %s is given twice (again "
			    "in %s; ids are case-insensitive)",
			    by_id[i - 1]->where, by_id[i - 1]->spec->id,
			    by_id[i]->where);
	free(by_id);
}

static int
add_cmp_row(const void *a, const void *b)
{
	return strcasecmp((*(struct bd_entity *const *)a)->row_key,
	    (*(struct bd_entity *const *)b)->row_key);
}

/* The row whose key equals id but for case, or NULL; rows sorted so. */
static struct bd_entity *
add_find_row(struct bd_entity **rows, size_t n, const char *id)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcasecmp(rows[mid]->row_key, id);
		if (c == 0)
			return rows[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/*
 * Checks the tasks against the job's rows: an id taken by another task
 * is an error; the same task again is skipped (or, with resend, sent
 * again when no node has touched it).  *unsent_skipped counts skipped
 * tasks that look as if their message may never have gone.
 */
static void
add_check_existing(struct task_add *ta, struct bd_entity **rows, size_t n,
    bool resend, size_t *unsent_skipped)
{
	*unsent_skipped = 0;
	if (n > 1)
		qsort(rows, n, sizeof(*rows), add_cmp_row);
	for (size_t i = 0; i < ta->n; i++) {
		struct add_item *it = &ta->items[i];
		struct bd_entity *row = add_find_row(rows, n, it->spec->id);
		const char *spec, *state;
		bool untouched;

		if (row == NULL)
			continue;
		if (strcmp(row->row_key, it->spec->id) != 0) {
			add_error(ta, "%s: task %s: job %s has task %s (ids "
			    "are case-insensitive)", it->where, it->spec->id,
			    ta->job_id, row->row_key);
			continue;
		}
		spec = bd_client_prop(row, "spec");
		if (spec == NULL || strcmp(spec, it->spec_text) != 0) {
			add_error(ta, "%s: task %s exists in job %s with "
			    "another spec", it->where, it->spec->id,
			    ta->job_id);
			continue;
		}
		state = bd_client_prop(row, "state");
		untouched = state != NULL && strcmp(state, "active") == 0 &&
		    bd_client_prop(row, "nodeId") == NULL &&
		    bd_client_prop(row, "blockedBy") == NULL;
		if (resend && untouched)
			it->action = ADD_RESEND;
		else {
			it->action = ADD_SKIP;
			*unsent_skipped += untouched;
		}
	}
}

/* ---- add: writing --------------------------------------------------- */

static void add_pump(struct task_add *ta);

/* The item's calls are over: count it and start the next. */
static void
add_end(struct add_item *it, enum add_result result, int status,
    const char *detail)
{
	struct task_add *ta = it->ta;

	it->result = result;
	if (result != ADD_DONE) {
		it->detail = detail != NULL ? xstrdup(detail) :
		    xstrdup(bd_strerror(status));
		/* The store or queue is in trouble: do not pile on. */
		ta->stop = true;
	}
	ta->in_flight--;
	add_pump(ta);
}

static void
add_on_sent(void *arg, int status, const char *detail)
{
	struct add_item *it = arg;

	if (status < 0)
		add_end(it, ADD_SEND_FAILED, status, detail);
	else
		add_end(it, ADD_DONE, 0, NULL);
}

static void
add_send(struct add_item *it)
{
	int rc;

	rc = bd_source_send(it->ta->c->pool->source, BD_QUEUE_TASKS,
	    it->message, 0, add_on_sent, it);
	if (rc < 0)
		add_end(it, ADD_SEND_FAILED, rc, NULL);
}

static void
add_on_row(void *arg, int status, const char *etag, const char *detail)
{
	struct add_item *it = arg;

	if (status == -EEXIST)
		add_end(it, ADD_ROW_FAILED, status, "its row was added "
		    "meanwhile by someone else");
	else if (status < 0)
		add_end(it, ADD_ROW_FAILED, status, detail);
	else
		add_send(it);
}

/* Starts the item's row insert (or only its message). */
static void
add_start(struct add_item *it)
{
	struct bd_entity *e;
	char now[40];
	int rc;

	it->ta->in_flight++;
	if (it->action == ADD_RESEND) {
		add_send(it);
		return;
	}
	e = bd_entity_new(it->ta->job_id, it->spec->id);
	bd_clock_format_iso(bd_clock_now_ms(), now, sizeof(now));
	cJSON_AddStringToObject(e->props, "state", "active");
	cJSON_AddStringToObject(e->props, "spec", it->spec_text);
	cJSON_AddStringToObject(e->props, "creationTime", now);
	rc = bd_store_insert(it->ta->c->pool->store, BD_TABLE_TASKS, e,
	    add_on_row, it);
	bd_entity_free(e);
	if (rc < 0)
		add_end(it, ADD_ROW_FAILED, rc, NULL);
}

/*
 * Keeps ADD_PARALLEL items in flight until all have started (or a
 * failure stops new ones); sets done when the last one ends.
 */
static void
add_pump(struct task_add *ta)
{
	while (!ta->stop && ta->in_flight < ADD_PARALLEL && ta->next < ta->n) {
		struct add_item *it = &ta->items[ta->next++];
		if (it->action != ADD_SKIP)
			add_start(it);
	}
	if (ta->in_flight == 0 && (ta->stop || ta->next == ta->n))
		ta->done = true;
}

/* "1 task", "2 tasks". */
static const char *
add_tasks(size_t n)
{
	return n == 1 ? "task" : "tasks";
}

/* Prints what was written; returns the exit status. */
static int
add_report(struct task_add *ta, size_t unsent_skipped)
{
	size_t added = 0, resent = 0, skipped = 0, row_failed = 0;
	size_t send_failed = 0, not_started = 0, shown = 0;

	for (size_t i = 0; i < ta->n; i++) {
		struct add_item *it = &ta->items[i];

		if (it->action == ADD_SKIP) {
			skipped++;
			continue;
		}
		switch (it->result) {
		case ADD_DONE:
			if (it->action == ADD_NEW)
				added++;
			else
				resent++;
			break;
		case ADD_PENDING:
			not_started++;
			break;
		case ADD_ROW_FAILED:
			row_failed++;
			if (shown++ < ADD_MAX_SHOWN)
				bd_client_error("task add", "task %s: not "
				    "added: %s", it->spec->id, it->detail);
			break;
		case ADD_SEND_FAILED:
			send_failed++;
			if (shown++ < ADD_MAX_SHOWN)
				bd_client_error("task add", "task %s: its "
				    "row was %s but its message was not "
				    "sent: %s", it->spec->id,
				    it->action == ADD_NEW ? "added" :
				    "there", it->detail);
			break;
		}
	}
	if (shown > ADD_MAX_SHOWN)
		bd_client_error("task add", "... and %zu more failures",
		    shown - ADD_MAX_SHOWN);
	printf("added %zu %s to job %s\n", added, add_tasks(added),
	    ta->job_id);
	if (resent > 0)
		printf("sent the messages of %zu %s again\n", resent,
		    add_tasks(resent));
	if (skipped > 0) {
		printf("skipped %zu %s that job %s has already (same id and "
		    "spec)\n", skipped, add_tasks(skipped), ta->job_id);
		if (unsent_skipped > 0)
			printf("note: %zu of them never reached a node yet; if "
			    "an earlier task add said their messages were "
			    "not sent, run it again with --resend\n",
			    unsent_skipped);
	}
	if (row_failed + not_started > 0)
		bd_client_error("task add", "%zu %s not added: run the same "
		    "command again to add them", row_failed + not_started,
		    add_tasks(row_failed + not_started));
	if (send_failed > 0)
		bd_client_error("task add", "%zu %s recorded as active but not "
		    "queued: run the same command again with --resend to "
		    "queue them", send_failed, add_tasks(send_failed));
	return row_failed + not_started + send_failed > 0 ? BD_CLIENT_FAIL :
	    BD_CLIENT_OK;
}

static void
add_free(struct task_add *ta)
{
	for (size_t i = 0; i < ta->n; i++) {
		free(ta->items[i].where);
		bd_task_spec_free(ta->items[i].spec);
		free(ta->items[i].spec_text);
		free(ta->items[i].message);
		free(ta->items[i].detail);
	}
	free(ta->items);
	for (size_t i = 0; i < ta->n_errors; i++)
		free(ta->errors[i]);
	free(ta->errors);
}

/* Checks the tasks against their job and its rows; 0 or an exit status. */
static int
add_check_job(struct task_add *ta, bool resend, size_t *unsent_skipped)
{
	struct bd_client *c = ta->c;
	struct bd_entity *job = NULL, **rows = NULL;
	struct bd_job_spec *spec = NULL;
	const char *text, *state;
	char *cause = NULL, *detail = NULL;
	size_t n = 0;
	int rc, status;

	if ((status = bd_client_get_job(c, ta->job_id, &job)) != BD_CLIENT_OK)
		return status;
	state = bd_client_prop(job, "state");
	if (state != NULL && strcmp(state, "active") != 0) {
		bd_client_error(c->cmd, "job %s is %s: no tasks can be added",
		    ta->job_id, state);
		bd_entity_free(job);
		return BD_CLIENT_FAIL;
	}
	text = bd_client_prop(job, "spec");
	if (text == NULL || bd_job_spec_parse(text, strlen(text), &spec,
	    &cause) < 0) {
		bd_client_error(c->cmd, "job %s: its record cannot be read%s%s",
		    ta->job_id, cause ? ": " : "", cause ? cause : "");
		free(cause);
		bd_entity_free(job);
		return BD_CLIENT_INTERNAL;
	}
	bd_entity_free(job);
	for (size_t i = 0; i < ta->n; i++)
		if (bd_job_spec_check_task(spec, ta->items[i].spec,
		    &cause) < 0) {
			add_error(ta, "%s: task %s: %s", ta->items[i].where,
			    ta->items[i].spec->id, cause);
			free(cause);
			cause = NULL;
		}
	bd_job_spec_free(spec);

	if ((rc = bd_client_query(c, BD_TABLE_TASKS, ta->job_id, &rows, &n,
	    &detail)) < 0) {
		bd_client_error(c->cmd, "cannot read the tasks of job %s: %s",
		    ta->job_id, detail);
		free(detail);
		return bd_client_status(rc);
	}
	add_check_existing(ta, rows, n, resend, unsent_skipped);
	bd_client_free_rows(rows, n);
	return BD_CLIENT_OK;
}

/*
 * `task add JOB_ID FILE...`: checks everything, then writes rows and
 * messages.
 */
static int
task_add(int argc, char **argv)
{
	struct bd_client_args a;
	struct bd_client c;
	struct task_add ta;
	size_t unsent_skipped = 0;
	int status;

	if ((status = bd_client_parse(argc, argv, "task add", "R",
	    task_usage, &a)) >= 0)
		return status;
	if (a.argc < 2) {
		task_usage(stderr);
		return BD_CLIENT_FAIL;
	}
	memset(&ta, 0, sizeof(ta));
	ta.job_id = a.argv[0];
	if (!bd_json_id_valid(ta.job_id)) {
		bd_client_error("task add", "'%s' is not a job id (1 to 64 "
		    "letters, digits, '-' and '_')", ta.job_id);
		return BD_CLIENT_FAIL;
	}

	/* Every file and task is checked before the pool is opened... */
	for (int i = 1; i < a.argc; i++)
		if ((status = add_read_file(&ta, a.argv[i])) != 0)
			goto out;
	add_check_duplicates(&ta);
	if (ta.n_errors > 0) {
		add_print_errors(&ta);
		status = BD_CLIENT_FAIL;
		goto out;
	}
	if (ta.n == 0) {
		bd_client_error("task add", "no tasks in the files given");
		status = BD_CLIENT_FAIL;
		goto out;
	}

	/* ...and against the job and its rows before anything is written. */
	if ((status = bd_client_open(&c, "task add", a.config)) !=
	    BD_CLIENT_OK)
		goto out;
	ta.c = &c;
	if ((status = add_check_job(&ta, a.resend, &unsent_skipped)) !=
	    BD_CLIENT_OK)
		goto close;
	if (ta.n_errors > 0) {
		add_print_errors(&ta);
		status = BD_CLIENT_FAIL;
		goto close;
	}

	add_pump(&ta);
	if (bd_client_run_until(&c, &ta.done) < 0) {
		bd_client_error(c.cmd, "internal error: a store or queue call "
		    "never ended");
		status = BD_CLIENT_INTERNAL;
		goto close;
	}
	status = add_report(&ta, unsent_skipped);
close:
	status = bd_client_close(&c, status);
out:
	add_free(&ta);
	return status;
}

/* ---- list ----------------------------------------------------------- */

static const char *const task_states[] = { "active", "preparing", "running",
    "completed", "failed", "blocked", NULL };

/* Whether row is in state (one of task_states). */
static bool
task_in_state(const struct bd_entity *row, const char *state)
{
	const char *s = bd_client_prop(row, "state");

	if (strcmp(state, "failed") == 0)
		return bd_client_task_failed(row);
	if (strcmp(state, "blocked") == 0)
		return bd_client_task_blocked(row);
	return s != NULL ? strcmp(s, state) == 0 :
	    strcmp(state, "active") == 0;
}

/* `task list JOB_ID`: the job's tasks as a table. */
static int
task_list(int argc, char **argv)
{
	static const char *const head[] = { "ID", "STATE", "EXIT", "RESULT",
	    "NODE", "RETRIES" };
	struct bd_client_args a;
	struct bd_client c;
	struct bd_client_table *t;
	struct bd_entity *job = NULL, **rows = NULL;
	char *detail = NULL;
	size_t n = 0, shown = 0;
	bool known = false;
	int rc, status;

	if ((status = bd_client_parse(argc, argv, "task list", "s",
	    task_usage, &a)) >= 0)
		return status;
	if (a.argc != 1) {
		task_usage(stderr);
		return BD_CLIENT_FAIL;
	}
	for (int i = 0; a.state != NULL && task_states[i] != NULL; i++)
		known |= strcmp(a.state, task_states[i]) == 0;
	if (a.state != NULL && !known) {
		bd_client_error("task list", "--state: one of active, "
		    "preparing, running, completed, failed, blocked");
		return BD_CLIENT_FAIL;
	}
	if ((status = bd_client_open(&c, "task list", a.config)) !=
	    BD_CLIENT_OK)
		return status;
	if ((status = bd_client_get_job(&c, a.argv[0], &job)) != BD_CLIENT_OK)
		return bd_client_close(&c, status);
	if ((rc = bd_client_query(&c, BD_TABLE_TASKS, job->row_key, &rows, &n,
	    &detail)) < 0) {
		bd_client_error(c.cmd, "cannot read the tasks of job %s: %s",
		    job->row_key, detail);
		free(detail);
		bd_entity_free(job);
		return bd_client_close(&c, bd_client_status(rc));
	}
	t = bd_client_table_new(6, head);
	for (size_t i = 0; i < n; i++) {
		char exit_code[24], retries[24];
		const char *result = bd_client_prop(rows[i], "result");
		int64_t v;

		if (a.state != NULL && !task_in_state(rows[i], a.state))
			continue;
		shown++;
		if (bd_client_task_blocked(rows[i]))
			result = "blocked";
		snprintf(exit_code, sizeof(exit_code), "%lld",
		    bd_client_prop_int(rows[i], "exitCode", &v) ?
		    (long long)v : 0LL);
		snprintf(retries, sizeof(retries), "%lld",
		    bd_client_prop_int(rows[i], "retryCount", &v) ?
		    (long long)v : 0LL);
		bd_client_table_add(t, (const char *const[]){
		    rows[i]->row_key, bd_client_prop(rows[i], "state"),
		    bd_client_prop_int(rows[i], "exitCode", &v) ? exit_code :
		    NULL, result, bd_client_prop(rows[i], "nodeId"),
		    retries });
	}
	bd_client_table_print(t, stdout);
	if (shown == 0)
		fprintf(stderr, "job %s has no tasks%s%s\n", job->row_key,
		    a.state != NULL ? " in state " : "",
		    a.state != NULL ? a.state : "");
	bd_client_table_free(t);
	bd_client_free_rows(rows, n);
	bd_entity_free(job);
	return bd_client_close(&c, BD_CLIENT_OK);
}

/* ---- show ----------------------------------------------------------- */

/*
 * The task's TaskExecutionInformation: the row's executionInfo text, or
 * what its properties say when it has none yet.  Caller frees.
 */
static cJSON *
task_execution_info(const struct bd_entity *row)
{
	const char *text = bd_client_prop(row, "executionInfo");
	static const char *const times[] = { "startTime", "endTime",
	    "lastRetryTime", "lastRequeueTime" };
	cJSON *info = text != NULL ? cJSON_Parse(text) : NULL;
	int64_t v;

	if (cJSON_IsObject(info))
		return info;
	cJSON_Delete(info);
	info = cJSON_CreateObject();
	for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++)
		if (bd_client_prop(row, times[i]) != NULL)
			cJSON_AddStringToObject(info, times[i],
			    bd_client_prop(row, times[i]));
	if (bd_client_prop_int(row, "exitCode", &v))
		cJSON_AddNumberToObject(info, "exitCode", (double)v);
	cJSON_AddNumberToObject(info, "retryCount",
	    bd_client_prop_int(row, "retryCount", &v) ? (double)v : 0);
	cJSON_AddNumberToObject(info, "requeueCount",
	    bd_client_prop_int(row, "requeueCount", &v) ? (double)v : 0);
	if (bd_client_prop(row, "result") != NULL)
		cJSON_AddStringToObject(info, "result",
		    bd_client_prop(row, "result"));
	if (bd_client_prop(row, "failureCode") != NULL) {
		cJSON *f = cJSON_AddObjectToObject(info, "failureInfo");
		const char *cat = bd_client_prop(row, "failureCategory");
		const char *msg = bd_client_prop(row, "failureMessage");
		if (cat != NULL)
			cJSON_AddStringToObject(f, "category", cat);
		cJSON_AddStringToObject(f, "code",
		    bd_client_prop(row, "failureCode"));
		if (msg != NULL)
			cJSON_AddStringToObject(f, "message", msg);
	}
	return info;
}

/* A property of the output object replaced by value (owned). */
static void
task_set(cJSON *obj, const char *name, cJSON *value)
{
	cJSON_DeleteItemFromObjectCaseSensitive(obj, name);
	cJSON_AddItemToObject(obj, name, value);
}

/*
 * The task as Azure's CloudTask: the TaskAddParameter it was added with,
 * state, creationTime, executionInfo and nodeInfo.  Caller frees.
 */
static cJSON *
task_to_json(const struct bd_client *c, const struct bd_entity *row)
{
	const char *spec = bd_client_prop(row, "spec");
	const char *state = bd_client_prop(row, "state");
	const char *node = bd_client_prop(row, "nodeId");
	const char *created = bd_client_prop(row, "creationTime");
	const char *blocked = bd_client_prop(row, "blockedBy");
	cJSON *out = spec != NULL ? cJSON_Parse(spec) : NULL, *ni;

	if (!cJSON_IsObject(out)) {
		cJSON_Delete(out);
		out = cJSON_CreateObject();
		cJSON_AddStringToObject(out, "id", row->row_key);
	}
	task_set(out, "state", cJSON_CreateString(state != NULL ? state :
	    "active"));
	if (created != NULL)
		task_set(out, "creationTime", cJSON_CreateString(created));
	task_set(out, "executionInfo", task_execution_info(row));
	if (bd_client_prop(row, "stats") != NULL) {
		cJSON *stats = cJSON_Parse(bd_client_prop(row, "stats"));
		if (cJSON_IsObject(stats))
			task_set(out, "stats", stats);
		else
			cJSON_Delete(stats);
	}
	if (node != NULL) {
		ni = cJSON_CreateObject();
		cJSON_AddStringToObject(ni, "poolId", c->cfg->pool_id);
		cJSON_AddStringToObject(ni, "nodeId", node);
		task_set(out, "nodeInfo", ni);
	}
	if (blocked != NULL)
		task_set(out, "blockedBy", cJSON_CreateString(blocked));
	return out;
}

/* Adds "key  value" to t when value is not NULL. */
static void
task_kv(struct bd_client_table *t, const char *key, const char *value)
{
	if (value != NULL)
		bd_client_table_add(t, (const char *const[]){ key, value });
}

/* Prints the task for people. */
static void
task_print(const struct bd_entity *row)
{
	struct bd_client_table *t;
	const char *spec = bd_client_prop(row, "spec");
	const char *code = bd_client_prop(row, "failureCode");
	const char *msg = bd_client_prop(row, "failureMessage");
	cJSON *js = spec != NULL ? cJSON_Parse(spec) : NULL;
	const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(js, "commandLine");
	char buf[3][64], num[3][24], *failure = NULL, *blocked = NULL;
	int64_t v;

	t = bd_client_table_new(2, (const char *const[]){ "id:",
	    row->row_key });
	task_kv(t, "job:", row->partition_key);
	task_kv(t, "state:", bd_client_prop(row, "state"));
	if (bd_client_prop(row, "blockedBy") != NULL) {
		blocked = xasprintf("dependency %s failed with "
		    "dependencyAction block: this task will not run",
		    bd_client_prop(row, "blockedBy"));
		task_kv(t, "blocked:", blocked);
	}
	task_kv(t, "command line:", cJSON_IsString(cmd) ? cmd->valuestring :
	    NULL);
	task_kv(t, "node:", bd_client_prop(row, "nodeId"));
	if (bd_client_prop(row, "creationTime") != NULL)
		task_kv(t, "created:", bd_client_time(bd_client_prop(row,
		    "creationTime"), buf[0], sizeof(buf[0])));
	if (bd_client_prop(row, "startTime") != NULL)
		task_kv(t, "started:", bd_client_time(bd_client_prop(row,
		    "startTime"), buf[1], sizeof(buf[1])));
	if (bd_client_prop(row, "endTime") != NULL)
		task_kv(t, "ended:", bd_client_time(bd_client_prop(row,
		    "endTime"), buf[2], sizeof(buf[2])));
	if (bd_client_prop_int(row, "exitCode", &v)) {
		snprintf(num[0], sizeof(num[0]), "%lld", (long long)v);
		task_kv(t, "exit code:", num[0]);
	}
	task_kv(t, "result:", bd_client_prop(row, "result"));
	if (code != NULL) {
		failure = xasprintf("%s%s%s", code, msg ? ": " : "",
		    msg ? msg : "");
		task_kv(t, "failure:", failure);
	}
	snprintf(num[1], sizeof(num[1]), "%lld",
	    bd_client_prop_int(row, "retryCount", &v) ? (long long)v : 0LL);
	task_kv(t, "retries:", num[1]);
	snprintf(num[2], sizeof(num[2]), "%lld",
	    bd_client_prop_int(row, "requeueCount", &v) ? (long long)v : 0LL);
	task_kv(t, "requeues:", num[2]);
	bd_client_table_print(t, stdout);
	bd_client_table_free(t);
	free(failure);
	free(blocked);
	cJSON_Delete(js);
}

/* `task show JOB_ID TASK_ID`: one task for people, or as CloudTask JSON. */
static int
task_show(int argc, char **argv)
{
	struct bd_client_args a;
	struct bd_client c;
	struct bd_entity *job = NULL, *row = NULL;
	const char *task_id;
	char *detail = NULL;
	int rc, status;

	if ((status = bd_client_parse(argc, argv, "task show", "j",
	    task_usage, &a)) >= 0)
		return status;
	if (a.argc != 2) {
		task_usage(stderr);
		return BD_CLIENT_FAIL;
	}
	task_id = a.argv[1];
	if (!bd_json_id_valid(task_id)) {
		bd_client_error("task show", "'%s' is not a task id (1 to 64 "
		    "letters, digits, '-' and '_')", task_id);
		return BD_CLIENT_FAIL;
	}
	if ((status = bd_client_open(&c, "task show", a.config)) !=
	    BD_CLIENT_OK)
		return status;
	if ((status = bd_client_get_job(&c, a.argv[0], &job)) != BD_CLIENT_OK)
		return bd_client_close(&c, status);
	rc = bd_client_get(&c, BD_TABLE_TASKS, job->row_key, task_id, &row,
	    &detail);
	if (rc == -ENOENT || rc == BD_ENOTFOUND) {
		bd_client_error(c.cmd, "task %s not found in job %s", task_id,
		    job->row_key);
		status = BD_CLIENT_FAIL;
	} else if (rc < 0) {
		bd_client_error(c.cmd, "cannot read task %s: %s", task_id,
		    detail);
		status = bd_client_status(rc);
	} else if (a.json) {
		cJSON *j = task_to_json(&c, row);
		bd_client_print_json(j);
		cJSON_Delete(j);
	} else
		task_print(row);
	free(detail);
	bd_entity_free(row);
	bd_entity_free(job);
	return bd_client_close(&c, status);
}

/* Picks the subcommand; see the header. */
int
bd_cmd_task(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = {
		{ "add", task_add },
		{ "list", task_list },
		{ "show", task_show },
	};

	if (argc < 2) {
		task_usage(stderr);
		return BD_CLIENT_FAIL;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		task_usage(stdout);
		return BD_CLIENT_OK;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(argv[1], cmds[i].name) == 0)
			return cmds[i].fn(argc - 1, argv + 1);
	bd_client_error("task", "unknown command '%s'", argv[1]);
	task_usage(stderr);
	return BD_CLIENT_FAIL;
}
