/* SPDX-License-Identifier: MIT */
/*
 * `batchd job`: the pool's jobs, kept in the job table (docs/protocol.md
 * §5; PartitionKey the pool id, RowKey the job id).
 *
 *   batchd job add [--config FILE] JOB.json
 *   batchd job terminate [--config FILE] [--reason TEXT] ID
 *   batchd job list [--config FILE] [--tasks]
 *   batchd job show [--config FILE] [--json] ID
 *
 * `add` validates the whole JobAddParameter before anything is written,
 * creates the pool's queues and tables when they are missing, and inserts
 * the job's row in state active.  `terminate` moves an active job to
 * completed; the nodes that ran its preparation task then run its release
 * task, and a node that receives a task of a completed job completes the
 * task without running it.  Exit statuses as client.h says.
 */
#include "cmd_job.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client.h"
#include "clock.h"
#include "error.h"
#include "job_spec.h"
#include "xmalloc.h"

#define JOB_MAX_FILE (4 * 1024 * 1024)
#define JOB_MAX_REASON 256
#define JOB_TERMINATE_TRIES 5

static void
job_usage(FILE *f)
{
	fprintf(f,
	    "usage: batchd job add [--config FILE] JOB.json\n"
	    "       batchd job terminate [--config FILE] [--reason TEXT] ID\n"
	    "       batchd job list [--config FILE] [--tasks]\n"
	    "       batchd job show [--config FILE] [--json] ID\n");
}

/* The current time in ISO 8601 into buf. */
static const char *
job_now(char *buf, size_t len)
{
	bd_clock_format_iso(bd_clock_now_ms(), buf, len);
	return buf;
}

/* ---- add ------------------------------------------------------------ */

/*
 * `job add JOB.json`: validates, creates the pool if needed, inserts the
 * row.
 */
static int
job_add(int argc, char **argv)
{
	struct bd_client_args a;
	struct bd_client c;
	struct bd_job_spec *spec = NULL;
	struct bd_entity *e = NULL, **rows = NULL;
	cJSON *doc = NULL;
	char *text = NULL, *cause = NULL, *detail = NULL, now[40];
	const char *path;
	size_t n = 0;
	int rc, status;

	if ((status = bd_client_parse(argc, argv, "job add", "",
	    job_usage, &a)) >= 0)
		return status;
	if (a.argc != 1) {
		job_usage(stderr);
		return BD_CLIENT_FAIL;
	}
	path = a.argv[0];

	/* Everything is checked before the pool is even opened. */
	if ((status = bd_client_read_json("job add", path, JOB_MAX_FILE,
	    &doc)) != BD_CLIENT_OK)
		return status;
	if (!cJSON_IsObject(doc)) {
		bd_client_error("job add", "%s: expected a JSON object (a "
		    "JobAddParameter)", path);
		cJSON_Delete(doc);
		return BD_CLIENT_FAIL;
	}
	text = cJSON_PrintUnformatted(doc);
	cJSON_Delete(doc);
	if (text == NULL)
		abort(); /* cJSON fails only when out of memory */
	if ((rc = bd_job_spec_parse(text, strlen(text), &spec, &cause)) < 0) {
		bd_client_error("job add", "%s: %s", path, cause != NULL ?
		    cause : bd_strerror(rc));
		free(cause);
		free(text);
		return BD_CLIENT_FAIL;
	}
	if (strlen(text) > BD_CLIENT_SPEC_MAX) {
		bd_client_error("job add", "%s: the job is %zu bytes as "
		    "compact JSON; a pool's job record holds at most %d",
		    path, strlen(text), BD_CLIENT_SPEC_MAX);
		status = BD_CLIENT_FAIL;
		goto out_noclient;
	}

	if ((status = bd_client_open(&c, "job add", a.config)) != BD_CLIENT_OK)
		goto out_noclient;
	if (spec->pool_id != NULL && strcmp(spec->pool_id,
	    c.cfg->pool_id) != 0)
		bd_client_error(c.cmd, "note: poolInfo.poolId is %s; the job "
		    "is added to this pool, %s", spec->pool_id,
		    c.cfg->pool_id);
	if ((rc = bd_client_create(&c, &detail)) < 0) {
		bd_client_error(c.cmd, "cannot create the pool's queues and "
		    "tables: %s", detail);
		status = bd_client_status(rc);
		goto out;
	}
	/* Azure Batch ids are case-insensitive (protocol §1). */
	if ((rc = bd_client_query(&c, BD_TABLE_JOBS, c.cfg->pool_id, &rows,
	    &n, &detail)) < 0) {
		bd_client_error(c.cmd, "cannot read the jobs: %s", detail);
		status = bd_client_status(rc);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (strcasecmp(rows[i]->row_key, spec->id) != 0)
			continue;
		if (strcmp(rows[i]->row_key, spec->id) == 0)
			bd_client_error(c.cmd, "job %s exists", spec->id);
		else
			bd_client_error(c.cmd, "job %s exists as %s (job ids "
			    "are case-insensitive)", spec->id,
			    rows[i]->row_key);
		status = BD_CLIENT_FAIL;
		goto out;
	}

	e = bd_entity_new(c.cfg->pool_id, spec->id);
	cJSON_AddStringToObject(e->props, "spec", text);
	cJSON_AddStringToObject(e->props, "state", "active");
	cJSON_AddStringToObject(e->props, "creationTime",
	    job_now(now, sizeof(now)));
	rc = bd_client_insert(&c, BD_TABLE_JOBS, e, &detail);
	if (rc == -EEXIST) {
		bd_client_error(c.cmd, "job %s exists", spec->id);
		status = BD_CLIENT_FAIL;
	} else if (rc < 0) {
		bd_client_error(c.cmd, "cannot add job %s: %s", spec->id,
		    detail);
		status = bd_client_status(rc);
	} else
		printf("added job %s to pool %s\n", spec->id, c.cfg->pool_id);
out:
	free(detail);
	bd_entity_free(e);
	bd_client_free_rows(rows, n);
	status = bd_client_close(&c, status);
out_noclient:
	bd_job_spec_free(spec);
	free(text);
	return status;
}

/* ---- terminate ------------------------------------------------------ */

/* Whether reason is printable text of a sensible length. */
static bool
job_reason_ok(const char *reason)
{
	size_t n = strlen(reason);

	if (n == 0 || n > JOB_MAX_REASON)
		return false;
	for (const unsigned char *p = (const unsigned char *)reason; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

/* `job terminate ID`: moves an active job to completed, conditionally. */
static int
job_terminate(int argc, char **argv)
{
	struct bd_client_args a;
	struct bd_client c;
	struct bd_entity *row = NULL, *e = NULL;
	const char *id, *state;
	char *detail = NULL, now[40];
	int rc = 0, status, tries;

	if ((status = bd_client_parse(argc, argv, "job terminate", "r",
	    job_usage, &a)) >= 0)
		return status;
	if (a.argc != 1) {
		job_usage(stderr);
		return BD_CLIENT_FAIL;
	}
	id = a.argv[0];
	if (a.reason != NULL && !job_reason_ok(a.reason)) {
		bd_client_error("job terminate", "--reason: give 1 to %d "
		    "printable characters", JOB_MAX_REASON);
		return BD_CLIENT_FAIL;
	}
	if ((status = bd_client_open(&c, "job terminate", a.config)) !=
	    BD_CLIENT_OK)
		return status;
	/* The merge is conditional, so that two terminates agree. */
	for (tries = 0; tries < JOB_TERMINATE_TRIES; tries++) {
		bd_entity_free(row);
		if ((status = bd_client_get_job(&c, id, &row)) != BD_CLIENT_OK)
			goto out;
		state = bd_client_prop(row, "state");
		if (state != NULL && strcmp(state, "completed") == 0) {
			bd_client_error(c.cmd, "job %s is already completed",
			    id);
			status = BD_CLIENT_FAIL;
			goto out;
		}
		e = bd_entity_new(c.cfg->pool_id, row->row_key);
		cJSON_AddStringToObject(e->props, "state", "completed");
		cJSON_AddStringToObject(e->props, "terminateReason",
		    a.reason != NULL ? a.reason : "UserTerminate");
		cJSON_AddStringToObject(e->props, "endTime",
		    job_now(now, sizeof(now)));
		rc = bd_client_merge(&c, BD_TABLE_JOBS, e, row->etag, &detail);
		bd_entity_free(e);
		e = NULL;
		if (rc != -ESTALE)
			break;
		free(detail);
		detail = NULL;
	}
	if (rc == -ENOENT) {
		bd_client_error(c.cmd, "job %s not found in pool %s", id,
		    c.cfg->pool_id);
		status = BD_CLIENT_FAIL;
	} else if (rc < 0) {
		bd_client_error(c.cmd, "cannot terminate job %s: %s", id,
		    detail);
		status = bd_client_status(rc);
	} else
		printf("terminated job %s\n", id);
out:
	free(detail);
	bd_entity_free(row);
	return bd_client_close(&c, status);
}

/* ---- list and show -------------------------------------------------- */

/* Counts of the tasks of job id: 0, or an exit status after a message. */
static int
job_counts(struct bd_client *c, const char *id, struct bd_client_counts *out)
{
	struct bd_entity **rows = NULL;
	char *detail = NULL;
	size_t n = 0;
	int rc;

	if ((rc = bd_client_query(c, BD_TABLE_TASKS, id, &rows, &n,
	    &detail)) < 0) {
		bd_client_error(c->cmd, "cannot read the tasks of job %s: %s",
		    id, detail);
		free(detail);
		return bd_client_status(rc);
	}
	bd_client_count_tasks(rows, n, out);
	bd_client_free_rows(rows, n);
	return 0;
}

/* `job list`: the jobs as a table, with task counts on request. */
static int
job_list(int argc, char **argv)
{
	static const char *const head[] = { "ID", "STATE", "CREATED",
	    "TASKS", "ACTIVE", "RUNNING", "SUCCEEDED", "FAILED" };
	struct bd_client_args a;
	struct bd_client c;
	struct bd_client_table *t;
	struct bd_entity **rows = NULL;
	struct bd_client_counts k;
	char *detail = NULL, created[64], num[5][24];
	size_t n = 0, ncols;
	int rc, status;

	if ((status = bd_client_parse(argc, argv, "job list", "t",
	    job_usage, &a)) >= 0)
		return status;
	if (a.argc != 0) {
		job_usage(stderr);
		return BD_CLIENT_FAIL;
	}
	if ((status = bd_client_open(&c, "job list", a.config)) !=
	    BD_CLIENT_OK)
		return status;
	if ((rc = bd_client_query(&c, BD_TABLE_JOBS, c.cfg->pool_id, &rows,
	    &n, &detail)) < 0) {
		bd_client_error(c.cmd, "cannot read the jobs: %s", detail);
		free(detail);
		return bd_client_close(&c, bd_client_status(rc));
	}
	ncols = a.tasks ? 8 : 3;
	t = bd_client_table_new(ncols, head);
	for (size_t i = 0; i < n && status == BD_CLIENT_OK; i++) {
		const char *cells[8] = { rows[i]->row_key,
		    bd_client_prop(rows[i], "state"),
		    bd_client_time(bd_client_prop(rows[i], "creationTime"),
		    created, sizeof(created)) };
		if (a.tasks) {
			if ((status = job_counts(&c, rows[i]->row_key, &k)) !=
			    BD_CLIENT_OK)
				break;
			snprintf(num[0], sizeof(num[0]), "%zu", k.total);
			snprintf(num[1], sizeof(num[1]), "%zu", k.active +
			    k.blocked);
			snprintf(num[2], sizeof(num[2]), "%zu", k.running +
			    k.preparing);
			snprintf(num[3], sizeof(num[3]), "%zu", k.succeeded);
			snprintf(num[4], sizeof(num[4]), "%zu", k.failed);
			for (int j = 0; j < 5; j++)
				cells[3 + j] = num[j];
		}
		bd_client_table_add(t, cells);
	}
	if (status == BD_CLIENT_OK) {
		bd_client_table_print(t, stdout);
		if (n == 0)
			fprintf(stderr, "pool %s has no jobs\n",
			    c.cfg->pool_id);
	}
	bd_client_table_free(t);
	bd_client_free_rows(rows, n);
	return bd_client_close(&c, status);
}

/*
 * The job as Azure's CloudJob: the JobAddParameter it was added with,
 * state, creationTime and executionInfo.  Caller frees.
 */
static cJSON *
job_to_json(const struct bd_client *c, const struct bd_entity *row)
{
	const char *spec = bd_client_prop(row, "spec");
	const char *created = bd_client_prop(row, "creationTime");
	const char *ended = bd_client_prop(row, "endTime");
	const char *reason = bd_client_prop(row, "terminateReason");
	const char *state = bd_client_prop(row, "state");
	cJSON *out = spec != NULL ? cJSON_Parse(spec) : NULL, *info;

	if (!cJSON_IsObject(out)) {
		cJSON_Delete(out);
		out = cJSON_CreateObject();
		cJSON_AddStringToObject(out, "id", row->row_key);
	}
	/* The record's words win over anything the spec had. */
	cJSON_DeleteItemFromObjectCaseSensitive(out, "state");
	cJSON_AddStringToObject(out, "state", state != NULL ? state :
	    "active");
	if (created != NULL) {
		cJSON_DeleteItemFromObjectCaseSensitive(out, "creationTime");
		cJSON_AddStringToObject(out, "creationTime", created);
	}
	if (cJSON_GetObjectItemCaseSensitive(out, "poolInfo") == NULL) {
		cJSON *pi = cJSON_AddObjectToObject(out, "poolInfo");
		cJSON_AddStringToObject(pi, "poolId", c->cfg->pool_id);
	}
	cJSON_DeleteItemFromObjectCaseSensitive(out, "executionInfo");
	info = cJSON_AddObjectToObject(out, "executionInfo");
	if (created != NULL)
		cJSON_AddStringToObject(info, "startTime", created);
	if (ended != NULL)
		cJSON_AddStringToObject(info, "endTime", ended);
	cJSON_AddStringToObject(info, "poolId", c->cfg->pool_id);
	if (reason != NULL)
		cJSON_AddStringToObject(info, "terminateReason", reason);
	return out;
}

/* `job show ID`: one job for people, or as CloudJob JSON. */
static int
job_show(int argc, char **argv)
{
	struct bd_client_args a;
	struct bd_client c;
	struct bd_client_table *t;
	struct bd_entity *row = NULL;
	struct bd_client_counts k;
	struct bd_job_spec *spec = NULL;
	const char *text;
	char *cause = NULL, created[64], ended[64], tasks[256];
	int status;

	if ((status = bd_client_parse(argc, argv, "job show", "j",
	    job_usage, &a)) >= 0)
		return status;
	if (a.argc != 1) {
		job_usage(stderr);
		return BD_CLIENT_FAIL;
	}
	if ((status = bd_client_open(&c, "job show", a.config)) !=
	    BD_CLIENT_OK)
		return status;
	if ((status = bd_client_get_job(&c, a.argv[0], &row)) != BD_CLIENT_OK)
		return bd_client_close(&c, status);
	if (a.json) {
		cJSON *j = job_to_json(&c, row);
		bd_client_print_json(j);
		cJSON_Delete(j);
		bd_entity_free(row);
		return bd_client_close(&c, BD_CLIENT_OK);
	}
	if ((status = job_counts(&c, row->row_key, &k)) != BD_CLIENT_OK) {
		bd_entity_free(row);
		return bd_client_close(&c, status);
	}
	text = bd_client_prop(row, "spec");
	if (text == NULL || bd_job_spec_parse(text, strlen(text), &spec,
	    &cause) < 0) {
		/* Shown anyway: the rest of the record may still help. */
		fprintf(stderr, "batchd job show: job %s: its spec cannot be "
		    "read\n", row->row_key);
		free(cause);
	}
	snprintf(tasks, sizeof(tasks), "%zu: %zu active, %zu running, "
	    "%zu succeeded, %zu failed, %zu blocked", k.total, k.active,
	    k.running + k.preparing, k.succeeded, k.failed, k.blocked);
	/* A two-column table with no header reads as "key  value". */
	t = bd_client_table_new(2, (const char *const[]){ "id:",
	    row->row_key });
	bd_client_table_add(t, (const char *const[]){ "state:",
	    bd_client_prop(row, "state") });
	bd_client_table_add(t, (const char *const[]){ "pool:",
	    c.cfg->pool_id });
	if (spec != NULL && spec->display_name != NULL)
		bd_client_table_add(t, (const char *const[]){ "display name:",
		    spec->display_name });
	bd_client_table_add(t, (const char *const[]){ "created:",
	    bd_client_time(bd_client_prop(row, "creationTime"), created,
	    sizeof(created)) });
	if (bd_client_prop(row, "endTime") != NULL)
		bd_client_table_add(t, (const char *const[]){ "ended:",
		    bd_client_time(bd_client_prop(row, "endTime"), ended,
		    sizeof(ended)) });
	if (bd_client_prop(row, "terminateReason") != NULL)
		bd_client_table_add(t, (const char *const[]){
		    "terminate reason:",
		    bd_client_prop(row, "terminateReason") });
	if (spec != NULL) {
		if (spec->job_preparation_task != NULL)
			bd_client_table_add(t, (const char *const[]){
			    "preparation task:",
			    spec->job_preparation_task->command_line });
		if (spec->job_release_task != NULL)
			bd_client_table_add(t, (const char *const[]){
			    "release task:",
			    spec->job_release_task->command_line });
	}
	bd_client_table_add(t, (const char *const[]){ "tasks:", tasks });
	bd_client_table_print(t, stdout);
	bd_client_table_free(t);
	bd_job_spec_free(spec);
	bd_entity_free(row);
	return bd_client_close(&c, BD_CLIENT_OK);
}

/* Picks the subcommand; see the header. */
int
bd_cmd_job(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = {
		{ "add", job_add },
		{ "terminate", job_terminate },
		{ "list", job_list },
		{ "show", job_show },
	};

	if (argc < 2) {
		job_usage(stderr);
		return BD_CLIENT_FAIL;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		job_usage(stdout);
		return BD_CLIENT_OK;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(argv[1], cmds[i].name) == 0)
			return cmds[i].fn(argc - 1, argv + 1);
	bd_client_error("job", "unknown command '%s'", argv[1]);
	job_usage(stderr);
	return BD_CLIENT_FAIL;
}
