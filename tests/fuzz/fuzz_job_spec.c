/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for job_spec.c: any bytes give a job or an error with
 * a cause; a parsed job is checked against a few tasks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "job_spec.h"
#include "task_spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const tasks[] = {
	"{\"id\":\"jobpreparation\",\"commandLine\":\"c\"}",
	"{\"id\":\"t\",\"commandLine\":\"c\",\"dependsOn\":{\"taskIds\":[\"a\"]}}",
	("{\"id\":\"t\",\"commandLine\":\"c\",\"exitConditions\":{\"default\":"
	    "{\"jobAction\":\"terminate\",\"dependencyAction\":\"block\"}}}"),
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bd_task_spec *task;
	struct bd_job_spec *job = NULL;
	char *cause = NULL;
	size_t i;
	int rc;

	rc = bd_job_spec_parse((const char *)data, size, &job, &cause);
	if (rc != 0) {
		if (job != NULL || cause == NULL || rc >= 0)
			abort();
		free(cause);
		return 0;
	}
	if (job == NULL || cause != NULL || job->id == NULL)
		abort();
	if (job->job_release_task != NULL && job->job_preparation_task == NULL)
		abort();
	for (i = 0; i < sizeof tasks / sizeof tasks[0]; i++) {
		task = NULL;
		if (bd_task_spec_parse(tasks[i], strlen(tasks[i]),
		    BD_TASK_KIND_TASK, &task, NULL) != 0)
			abort();
		rc = bd_job_spec_check_task(job, task, &cause);
		if ((rc == 0) != (cause == NULL))
			abort();
		free(cause);
		cause = NULL;
		(void)bd_job_spec_task_retry_count(job, task);
		bd_task_spec_free(task);
	}
	bd_job_spec_free(job);
	return 0;
}
