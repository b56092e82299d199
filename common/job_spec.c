/* SPDX-License-Identifier: MIT */
/*
 * The Azure Batch job model: JSON (JobAddParameter, or a CloudJob as the
 * service prints it) in, a validated bd_job_spec out, plus the checks the
 * service makes when a task is added to a job.
 *
 * The job's own tasks (manager, preparation, release) are parsed by
 * task_spec.c with their kind, under their field's path.  Read-only
 * CloudJob fields and networkConfiguration are accepted and ignored; an
 * auto pool is refused, since batchd is the pool.  A job owns its tasks
 * and frees them with it.
 */
#include "job_spec.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "json_field.h"
#include "xmalloc.h"

#define JOB_DISPLAY_NAME_MAX	1024
#define JOB_INT32_MAX		2147483647LL

static const char *const job_fields[] = {
	"id", "displayName", "priority", "maxParallelTasks",
	"allowTaskPreemption", "constraints", "jobManagerTask",
	"jobPreparationTask", "jobReleaseTask", "commonEnvironmentSettings",
	"poolInfo", "onAllTasksComplete", "onTaskFailure", "metadata",
	"usesTaskDependencies", "networkConfiguration", NULL,
};

/* Read-only CloudJob fields: accepted and ignored. */
static const char *const job_read_only[] = {
	"url", "eTag", "lastModified", "creationTime", "state",
	"stateTransitionTime", "previousState", "previousStateTransitionTime",
	"executionInfo", "stats", "odata.metadata", NULL,
};

static const char *const job_constraints_fields[] = {
	"maxWallClockTime", "maxTaskRetryCount", NULL,
};
static const char *const pool_info_fields[] = {
	"poolId", "autoPoolSpecification", NULL,
};

static const struct bd_json_enum on_all_tasks_complete_enum[] = {
	{ "noAction", BD_ON_ALL_TASKS_COMPLETE_NO_ACTION },
	{ "terminateJob", BD_ON_ALL_TASKS_COMPLETE_TERMINATE_JOB },
	{ NULL, 0 },
};
static const struct bd_json_enum on_task_failure_enum[] = {
	{ "noAction", BD_ON_TASK_FAILURE_NO_ACTION },
	{ "performExitOptionsJobAction",
	    BD_ON_TASK_FAILURE_PERFORM_EXIT_OPTIONS_JOB_ACTION },
	{ NULL, 0 },
};

/* Runs a getter or parser and jumps to fail on an error. */
#define TRY(expr)					\
	do {						\
		if ((rc = (expr)) < 0)			\
			goto fail;			\
	} while (0)

/* A job with every default and the given id (copied). */
static struct bd_job_spec *
job_spec_new(const char *id)
{
	struct bd_job_spec *job = xcalloc(1, sizeof *job);

	job->id = id != NULL ? xstrdup(id) : NULL;
	job->priority = 0;
	job->max_parallel_tasks = -1;
	job->allow_task_preemption = false;
	job->max_wall_clock_ms = BD_DURATION_INFINITE;
	job->max_task_retry_count = 0;
	job->on_all_tasks_complete = BD_ON_ALL_TASKS_COMPLETE_NO_ACTION;
	job->on_task_failure = BD_ON_TASK_FAILURE_NO_ACTION;
	return job;
}

struct bd_job_spec *
bd_job_spec_default(const char *id)
{
	return job_spec_new(id);
}

void
bd_job_spec_free(struct bd_job_spec *job)
{
	if (job == NULL)
		return;
	free(job->id);
	free(job->display_name);
	free(job->pool_id);
	bd_task_spec_free(job->job_manager_task);
	bd_task_spec_free(job->job_preparation_task);
	bd_task_spec_free(job->job_release_task);
	bd_name_value_list_clear(&job->common_environment_settings);
	bd_name_value_list_clear(&job->metadata);
	free(job);
}

/* Parses the job's task obj.name of the given kind into *out. */
static int
job_parse_task(const cJSON *obj, const char *name, enum bd_task_kind kind,
    struct bd_task_spec **out, char **cause)
{
	const cJSON *tobj;
	int rc;

	rc = bd_json_get_object(obj, NULL, name, 0, &tobj, cause);
	if (rc <= 0)
		return rc;
	rc = bd_task_spec_from_json(tobj, kind, name, out, cause);
	return rc < 0 ? rc : 1;
}

/* Parses the job's constraints object. */
static int
job_parse_constraints(const cJSON *obj, struct bd_job_spec *job,
    char **cause)
{
	const cJSON *cons;
	int64_t n;
	int rc;

	rc = bd_json_get_object(obj, NULL, "constraints", 0, &cons, cause);
	if (rc <= 0)
		return rc;
	TRY(bd_json_check_fields(cons, "constraints", job_constraints_fields,
	    NULL, NULL, NULL, cause));
	TRY(bd_json_get_duration(cons, "constraints", "maxWallClockTime", 0,
	    &job->max_wall_clock_ms, cause));
	TRY(bd_json_get_int(cons, "constraints", "maxTaskRetryCount", 0, -1,
	    JOB_INT32_MAX, &n, cause));
	if (rc == 1)
		job->max_task_retry_count = (int)n;
	rc = 1;

fail:
	return rc;
}

/* Parses poolInfo: a poolId, never an auto pool. */
static int
job_parse_pool_info(const cJSON *obj, struct bd_job_spec *job, char **cause)
{
	const cJSON *pool;
	int rc;

	rc = bd_json_get_object(obj, NULL, "poolInfo", 0, &pool, cause);
	if (rc <= 0)
		return rc;
	TRY(bd_json_check_fields(pool, "poolInfo", pool_info_fields, NULL,
	    NULL, NULL, cause));
	if (bd_json_field(pool, "autoPoolSpecification") != NULL) {
		rc = bd_json_fail(cause, BD_EUNSUPPORTED, "poolInfo",
		    "autoPoolSpecification", "not supported by batchd");
		goto fail;
	}
	TRY(bd_json_get_id(pool, "poolInfo", "poolId", 0, &job->pool_id,
	    cause));
	rc = 1;

fail:
	return rc;
}

/* The job-level checks between its manager, preparation and release. */
static int
job_check_tasks(const struct bd_job_spec *job, char **cause)
{
	const struct bd_task_spec *prep = job->job_preparation_task;
	const struct bd_task_spec *rel = job->job_release_task;
	const struct bd_task_spec *mgr = job->job_manager_task;

	if (rel != NULL && prep == NULL)
		return bd_json_fail(cause, BD_EINVALID, "jobReleaseTask", NULL,
		    "requires a jobPreparationTask");
	if (rel != NULL && strcasecmp(rel->id, prep->id) == 0)
		return bd_json_fail(cause, BD_EINVALID, "jobReleaseTask", "id",
		    "must differ from the jobPreparationTask's id \"%s\"",
		    prep->id);
	if (mgr != NULL && prep != NULL && strcasecmp(mgr->id, prep->id) == 0)
		return bd_json_fail(cause, BD_EINVALID, "jobManagerTask", "id",
		    "\"%s\" is the id of the job preparation task "
		    "(TaskIdSameAsJobPreparationTask)", mgr->id);
	if (mgr != NULL && rel != NULL && strcasecmp(mgr->id, rel->id) == 0)
		return bd_json_fail(cause, BD_EINVALID, "jobManagerTask", "id",
		    "\"%s\" is the id of the job release task "
		    "(TaskIdSameAsJobReleaseTask)", mgr->id);
	return 0;
}

/* Parses a job from a cJSON object. */
static int
job_from_json(const cJSON *obj, struct bd_job_spec **out, char **cause)
{
	const cJSON *net;
	struct bd_job_spec *job;
	int64_t n;
	int rc, v;

	job = job_spec_new(NULL);
	TRY(bd_json_check_fields(obj, NULL, job_fields, job_read_only, NULL,
	    NULL, cause));
	TRY(bd_json_get_id(obj, NULL, "id", BD_JSON_REQUIRED, &job->id,
	    cause));
	TRY(bd_json_get_string(obj, NULL, "displayName", 0,
	    JOB_DISPLAY_NAME_MAX, &job->display_name, cause));
	TRY(bd_json_get_int(obj, NULL, "priority", 0, -1000, 1000, &n, cause));
	if (rc == 1)
		job->priority = (int)n;
	TRY(bd_json_get_int(obj, NULL, "maxParallelTasks", 0, -1,
	    JOB_INT32_MAX, &n, cause));
	if (rc == 1) {
		if (n == 0) {
			rc = bd_json_fail(cause, BD_EINVALID, NULL,
			    "maxParallelTasks",
			    "must be -1 (unlimited) or at least 1");
			goto fail;
		}
		job->max_parallel_tasks = (int)n;
	}
	TRY(bd_json_get_bool(obj, NULL, "allowTaskPreemption", 0,
	    &job->allow_task_preemption, cause));
	TRY(job_parse_constraints(obj, job, cause));
	TRY(job_parse_task(obj, "jobManagerTask", BD_TASK_KIND_JOB_MANAGER,
	    &job->job_manager_task, cause));
	TRY(job_parse_task(obj, "jobPreparationTask",
	    BD_TASK_KIND_JOB_PREPARATION, &job->job_preparation_task, cause));
	TRY(job_parse_task(obj, "jobReleaseTask", BD_TASK_KIND_JOB_RELEASE,
	    &job->job_release_task, cause));
	TRY(bd_name_value_list_from_json(obj, NULL,
	    "commonEnvironmentSettings", BD_NAME_VALUE_ENVIRONMENT,
	    &job->common_environment_settings, cause));
	TRY(job_parse_pool_info(obj, job, cause));
	v = BD_ON_ALL_TASKS_COMPLETE_NO_ACTION;
	TRY(bd_json_get_enum(obj, NULL, "onAllTasksComplete", 0,
	    on_all_tasks_complete_enum, &v, cause));
	job->on_all_tasks_complete = (enum bd_on_all_tasks_complete)v;
	v = BD_ON_TASK_FAILURE_NO_ACTION;
	TRY(bd_json_get_enum(obj, NULL, "onTaskFailure", 0,
	    on_task_failure_enum, &v, cause));
	job->on_task_failure = (enum bd_on_task_failure)v;
	TRY(bd_name_value_list_from_json(obj, NULL, "metadata",
	    BD_NAME_VALUE_METADATA, &job->metadata, cause));
	TRY(bd_json_get_bool(obj, NULL, "usesTaskDependencies", 0,
	    &job->uses_task_dependencies, cause));
	/* Virtual network settings mean nothing on one node: ignored. */
	TRY(bd_json_get_object(obj, NULL, "networkConfiguration", 0, &net,
	    cause));
	TRY(job_check_tasks(job, cause));
	*out = job;
	return 0;

fail:
	bd_job_spec_free(job);
	return rc;
}

int
bd_job_spec_parse(const char *json, size_t len, struct bd_job_spec **out,
    char **cause)
{
	cJSON *root;
	int rc;

	*out = NULL;
	if ((rc = bd_json_parse(json, len, &root, cause)) != 0)
		return rc;
	rc = job_from_json(root, out, cause);
	cJSON_Delete(root);
	return rc;
}

/*
 * Checks one set of exit options of a task against its job; path names
 * them ("exitConditions.exitCodes[0].exitOptions").
 */
static int
job_check_exit_options(const struct bd_job_spec *job,
    const struct bd_exit_options *eo, const char *path, char **cause)
{
	if (eo->has_job_action && eo->job_action != BD_JOB_ACTION_NONE &&
	    job->on_task_failure == BD_ON_TASK_FAILURE_NO_ACTION)
		return bd_json_fail(cause, BD_EINVALID, path, "jobAction",
		    "%s needs the job's onTaskFailure to be "
		    "performExitOptionsJobAction (it is noAction)",
		    bd_job_action_name(eo->job_action));
	if (eo->has_dependency_action && !job->uses_task_dependencies)
		return bd_json_fail(cause, BD_EINVALID, path,
		    "dependencyAction", "the job does not use task "
		    "dependencies (usesTaskDependencies is false)");
	return 0;
}

/* Checks every set of exit options a task has. */
static int
job_check_exit_conditions(const struct bd_job_spec *job,
    const struct bd_exit_conditions *ec, char **cause)
{
	char path[96];
	size_t i;
	int rc;

	for (i = 0; i < ec->n_exit_codes; i++) {
		snprintf(path, sizeof path,
		    "exitConditions.exitCodes[%zu].exitOptions", i);
		if ((rc = job_check_exit_options(job,
		    &ec->exit_codes[i].options, path, cause)) != 0)
			return rc;
	}
	for (i = 0; i < ec->n_exit_code_ranges; i++) {
		snprintf(path, sizeof path,
		    "exitConditions.exitCodeRanges[%zu].exitOptions", i);
		if ((rc = job_check_exit_options(job,
		    &ec->exit_code_ranges[i].options, path, cause)) != 0)
			return rc;
	}
	if (ec->has_pre_processing_error && (rc = job_check_exit_options(job,
	    &ec->pre_processing_error, "exitConditions.preProcessingError",
	    cause)) != 0)
		return rc;
	if (ec->has_file_upload_error && (rc = job_check_exit_options(job,
	    &ec->file_upload_error, "exitConditions.fileUploadError",
	    cause)) != 0)
		return rc;
	if (ec->has_default && (rc = job_check_exit_options(job,
	    &ec->default_options, "exitConditions.default", cause)) != 0)
		return rc;
	return 0;
}

int
bd_job_spec_check_task(const struct bd_job_spec *job,
    const struct bd_task_spec *task, char **cause)
{
	const struct bd_task_spec *prep = job->job_preparation_task;
	const struct bd_task_spec *rel = job->job_release_task;

	if (task->kind == BD_TASK_KIND_TASK ||
	    task->kind == BD_TASK_KIND_JOB_MANAGER) {
		if (prep != NULL && strcasecmp(task->id, prep->id) == 0)
			return bd_json_fail(cause, BD_EINVALID, "id", NULL,
			    "\"%s\" is the id of the job preparation task "
			    "(TaskIdSameAsJobPreparationTask)", task->id);
		if (rel != NULL && strcasecmp(task->id, rel->id) == 0)
			return bd_json_fail(cause, BD_EINVALID, "id", NULL,
			    "\"%s\" is the id of the job release task "
			    "(TaskIdSameAsJobReleaseTask)", task->id);
	}
	if (task->has_depends_on && !job->uses_task_dependencies)
		return bd_json_fail(cause, BD_EINVALID, "dependsOn", NULL,
		    "the job does not use task dependencies "
		    "(usesTaskDependencies is false)");
	if (task->has_exit_conditions)
		return job_check_exit_conditions(job, &task->exit_conditions,
		    cause);
	return 0;
}

int
bd_job_spec_task_retry_count(const struct bd_job_spec *job,
    const struct bd_task_spec *task)
{
	if (task->constraints.has_max_task_retry_count)
		return task->constraints.max_task_retry_count;
	if (task->kind == BD_TASK_KIND_TASK ||
	    task->kind == BD_TASK_KIND_JOB_MANAGER)
		return job->max_task_retry_count;
	return 0;
}
