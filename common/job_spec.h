/* SPDX-License-Identifier: MIT */
#ifndef BD_JOB_SPEC_H
#define BD_JOB_SPEC_H

/*
 * The Azure Batch job model (JobAddParameter), validated into a typed
 * struct, and the checks that tie a task to its job.  The job's tasks
 * (manager, preparation, release) are bd_task_specs of their kind.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "task_spec.h"

enum bd_on_all_tasks_complete {
	BD_ON_ALL_TASKS_COMPLETE_NO_ACTION, /* default */
	BD_ON_ALL_TASKS_COMPLETE_TERMINATE_JOB,
};

enum bd_on_task_failure {
	BD_ON_TASK_FAILURE_NO_ACTION, /* default */
	BD_ON_TASK_FAILURE_PERFORM_EXIT_OPTIONS_JOB_ACTION,
};

struct bd_job_spec {
	char *id;
	char *display_name; /* or NULL */
	int priority;	     /* -1000..1000, default 0 */
	int max_parallel_tasks; /* -1 = unlimited (default) */
	bool allow_task_preemption;
	int64_t max_wall_clock_ms; /* constraints.maxWallClockTime */
	int max_task_retry_count;  /* constraints.maxTaskRetryCount, default 0 */
	char *pool_id;		   /* poolInfo.poolId or NULL */
	struct bd_task_spec *job_manager_task;	   /* or NULL */
	struct bd_task_spec *job_preparation_task; /* or NULL */
	struct bd_task_spec *job_release_task;	   /* or NULL */
	struct bd_name_value_list common_environment_settings;
	struct bd_name_value_list metadata;
	enum bd_on_all_tasks_complete on_all_tasks_complete;
	enum bd_on_task_failure on_task_failure;
	bool uses_task_dependencies;
};

/*
 * Parses a job from JSON text.  Returns 0 and sets *out (caller frees with
 * bd_job_spec_free()), or BD_ETOOBIG/BD_EJSON/BD_EINVALID with *cause as
 * "path: reason" (caller frees); BD_EUNSUPPORTED for a valid job batchd
 * cannot run ("poolInfo.autoPoolSpecification: not supported by batchd").
 * Read-only CloudJob fields and networkConfiguration are ignored.
 */
int bd_job_spec_parse(const char *json, size_t len, struct bd_job_spec **out,
    char **cause);

/* Frees a job and everything it owns; NULL is allowed. */
void bd_job_spec_free(struct bd_job_spec *job);

/*
 * A job that batchd makes up when a task is run without one (`batchd run
 * TASK.json` alone): the given id, no special tasks, defaults elsewhere.
 */
struct bd_job_spec *bd_job_spec_default(const char *id);

/*
 * Checks what Azure Batch checks when a task is added to a job: the task id
 * is not the preparation or release task's id, dependsOn needs
 * usesTaskDependencies, a jobAction needs onTaskFailure
 * performExitOptionsJobAction, a dependencyAction needs dependencies.
 * Returns 0, or BD_EINVALID with *cause (caller frees).
 */
int bd_job_spec_check_task(const struct bd_job_spec *job,
    const struct bd_task_spec *task, char **cause);

/* The task's effective retry count: its own, or the job's if it has none. */
int bd_job_spec_task_retry_count(const struct bd_job_spec *job,
    const struct bd_task_spec *task);

#endif
