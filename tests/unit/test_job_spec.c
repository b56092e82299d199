/* SPDX-License-Identifier: MIT */
/*
 * Tests for job_spec.c: the job model and the checks between a task and
 * its job.  JSON is written with single quotes, turned into double quotes.
 */
#include "error.h"
#include "job_spec.h"
#include "task_spec.h"
#include "unit.h"
#include "xmalloc.h"

static char *
dq(const char *s)
{
	char *out = xstrdup(s), *p;

	for (p = out; *p != '\0'; p++)
		if (*p == '\'')
			*p = '"';
	return out;
}

static struct bd_job_spec *
job_ok(const char *json)
{
	struct bd_job_spec *job = NULL;
	char *text = dq(json), *cause = NULL;
	int rc;

	rc = bd_job_spec_parse(text, strlen(text), &job, &cause);
	if (rc != 0)
		UNIT_FAIL("%s: rc %d: %s", text, rc, cause ? cause : "(none)");
	ASSERT_NULL(cause);
	free(text);
	return job;
}

static void
job_bad_rc(const char *json, int want_rc, const char *want)
{
	struct bd_job_spec *job = (struct bd_job_spec *)1;
	char *text = dq(json), *cause = NULL;
	int rc;

	rc = bd_job_spec_parse(text, strlen(text), &job, &cause);
	ASSERT_NULL(job);
	if (cause == NULL)
		UNIT_FAIL("rc %d without a cause; wanted \"%s\"", rc, want);
	if (strcmp(cause, want) != 0)
		UNIT_FAIL("cause \"%s\" != \"%s\"", cause, want);
	ASSERT_INT_EQ(rc, want_rc);
	free(cause);
	ASSERT_INT_EQ(bd_job_spec_parse(text, strlen(text), &job, NULL),
	    want_rc);
	free(text);
}

#define job_bad(json, want) job_bad_rc((json), BD_EINVALID, (want))

static struct bd_task_spec *
task_ok(const char *json)
{
	struct bd_task_spec *task = NULL;
	char *text = dq(json), *cause = NULL;

	if (bd_task_spec_parse(text, strlen(text), BD_TASK_KIND_TASK, &task,
	    &cause) != 0)
		UNIT_FAIL("%s: %s", text, cause);
	free(text);
	return task;
}

/* Checks that json as a task of job is refused with want. */
static void
check_bad(const struct bd_job_spec *job, const char *json, const char *want)
{
	struct bd_task_spec *task = task_ok(json);
	char *cause = NULL;

	ASSERT_INT_EQ(bd_job_spec_check_task(job, task, &cause), BD_EINVALID);
	ASSERT_STR_EQ(cause, want);
	free(cause);
	ASSERT_INT_EQ(bd_job_spec_check_task(job, task, NULL), BD_EINVALID);
	bd_task_spec_free(task);
}

static void
check_ok(const struct bd_job_spec *job, const char *json)
{
	struct bd_task_spec *task = task_ok(json);
	char *cause = NULL;

	if (bd_job_spec_check_task(job, task, &cause) != 0)
		UNIT_FAIL("%s: %s", json, cause);
	bd_task_spec_free(task);
}

TEST(minimal_defaults)
{
	struct bd_job_spec *job = job_ok("{'id':'j1'}");

	ASSERT_STR_EQ(job->id, "j1");
	ASSERT_NULL(job->display_name);
	ASSERT_INT_EQ(job->priority, 0);
	ASSERT_INT_EQ(job->max_parallel_tasks, -1);
	ASSERT(!job->allow_task_preemption);
	ASSERT_INT_EQ(job->max_wall_clock_ms, BD_DURATION_INFINITE);
	ASSERT_INT_EQ(job->max_task_retry_count, 0);
	ASSERT_NULL(job->pool_id);
	ASSERT_NULL(job->job_manager_task);
	ASSERT_NULL(job->job_preparation_task);
	ASSERT_NULL(job->job_release_task);
	ASSERT_INT_EQ(job->common_environment_settings.count, 0);
	ASSERT_INT_EQ(job->metadata.count, 0);
	ASSERT_INT_EQ(job->on_all_tasks_complete,
	    BD_ON_ALL_TASKS_COMPLETE_NO_ACTION);
	ASSERT_INT_EQ(job->on_task_failure, BD_ON_TASK_FAILURE_NO_ACTION);
	ASSERT(!job->uses_task_dependencies);
	bd_job_spec_free(job);
	bd_job_spec_free(NULL);
}

TEST(full_job)
{
	struct bd_job_spec *job = job_ok("{"
	    "'id':'job-1','displayName':'Job','priority':-1000,"
	    "'maxParallelTasks':4,'allowTaskPreemption':true,"
	    "'constraints':{'maxWallClockTime':'P1D','maxTaskRetryCount':-1},"
	    "'jobManagerTask':{'id':'mgr','commandLine':'m',"
	    "  'killJobOnCompletion':false},"
	    "'jobPreparationTask':{'commandLine':'p','waitForSuccess':false},"
	    "'jobReleaseTask':{'id':'rel','commandLine':'r',"
	    "  'maxWallClockTime':'PT5M'},"
	    "'commonEnvironmentSettings':[{'name':'X','value':'1'}],"
	    "'poolInfo':{'poolId':'pool_1'},"
	    "'onAllTasksComplete':'TerminateJob',"
	    "'onTaskFailure':'PerformExitOptionsJobAction',"
	    "'metadata':[{'name':'a','value':'1'},{'name':'a','value':'2'},"
	    "  {'name':'b','value':''}],"
	    "'usesTaskDependencies':true,"
	    "'networkConfiguration':{'subnetId':'/x','skipWithdrawFromVNet':true}"
	    "}");

	ASSERT_STR_EQ(job->id, "job-1");
	ASSERT_STR_EQ(job->display_name, "Job");
	ASSERT_INT_EQ(job->priority, -1000);
	ASSERT_INT_EQ(job->max_parallel_tasks, 4);
	ASSERT(job->allow_task_preemption);
	ASSERT_INT_EQ(job->max_wall_clock_ms, 86400000);
	ASSERT_INT_EQ(job->max_task_retry_count, -1);
	ASSERT_INT_EQ(job->job_manager_task->kind, BD_TASK_KIND_JOB_MANAGER);
	ASSERT_STR_EQ(job->job_manager_task->id, "mgr");
	ASSERT(!job->job_manager_task->kill_job_on_completion);
	ASSERT_INT_EQ(job->job_preparation_task->kind,
	    BD_TASK_KIND_JOB_PREPARATION);
	ASSERT_STR_EQ(job->job_preparation_task->id, "jobpreparation");
	ASSERT(!job->job_preparation_task->wait_for_success);
	ASSERT_STR_EQ(job->job_release_task->id, "rel");
	ASSERT_INT_EQ(job->job_release_task->constraints.max_wall_clock_ms,
	    300000);
	ASSERT_STR_EQ(bd_name_value_list_get(&job->common_environment_settings,
	    "X"), "1");
	ASSERT_STR_EQ(job->pool_id, "pool_1");
	ASSERT_INT_EQ(job->on_all_tasks_complete,
	    BD_ON_ALL_TASKS_COMPLETE_TERMINATE_JOB);
	ASSERT_INT_EQ(job->on_task_failure,
	    BD_ON_TASK_FAILURE_PERFORM_EXIT_OPTIONS_JOB_ACTION);
	ASSERT_INT_EQ(job->metadata.count, 2);
	ASSERT_STR_EQ(bd_name_value_list_get(&job->metadata, "a"), "2");
	ASSERT_STR_EQ(bd_name_value_list_get(&job->metadata, "b"), "");
	ASSERT(job->uses_task_dependencies);
	bd_job_spec_free(job);
}

TEST(read_back_dump)
{
	struct bd_job_spec *job = job_ok("{"
	    "'odata.metadata':'https://a/$metadata#jobs/@Element',"
	    "'id':'j','url':'https://a/jobs/j','eTag':'0x1',"
	    "'lastModified':'t','creationTime':'t','state':'active',"
	    "'stateTransitionTime':'t','previousState':null,"
	    "'previousStateTransitionTime':null,'executionInfo':"
	    "{'startTime':'t','poolId':'p'},'stats':null,"
	    "'constraints':{'maxWallClockTime':'P10675199DT2H48M5.4775807S',"
	    "  'maxTaskRetryCount':0},'displayName':null,"
	    "'poolInfo':{'poolId':'p','autoPoolSpecification':null},"
	    "'onAllTasksComplete':'noaction','onTaskFailure':'noaction',"
	    "'additionalProperties':{}"
	    "}");

	ASSERT_INT_EQ(job->max_wall_clock_ms, BD_DURATION_INFINITE);
	ASSERT_STR_EQ(job->pool_id, "p");
	bd_job_spec_free(job);
}

TEST(errors)
{
	job_bad("{}", "id: required");
	job_bad("{'id':'a b'}", "id: may contain only letters, digits, '-' and "
	    "'_'");
	job_bad("{'id':'j','priority':1001}",
	    "priority: must be an integer between -1000 and 1000");
	job_bad("{'id':'j','priority':'high'}",
	    "priority: expected an integer, not a string");
	job_bad("{'id':'j','maxParallelTasks':0}",
	    "maxParallelTasks: must be -1 (unlimited) or at least 1");
	job_bad("{'id':'j','maxParallelTasks':-2}",
	    "maxParallelTasks: must be an integer between -1 and 2147483647");
	job_bad("{'id':'j','allowTaskPreemption':'no'}",
	    "allowTaskPreemption: expected true or false, not a string");
	job_bad("{'id':'j','constraints':{'maxTaskRetryCount':-5}}",
	    "constraints.maxTaskRetryCount: must be an integer between -1 and "
	    "2147483647");
	job_bad("{'id':'j','constraints':{'maxWallClockTime':'P1M'}}",
	    "constraints.maxWallClockTime: invalid duration \"P1M\": years and "
	    "months have no fixed length; use days (P30D) or weeks (P4W)");
	job_bad("{'id':'j','constraints':{'retentionTime':'P1D'}}",
	    "constraints.retentionTime: unknown field");
	job_bad("{'id':'j','usesTaskDependncies':true}",
	    "usesTaskDependncies: unknown field "
	    "(did you mean usesTaskDependencies?)");
	job_bad("{'id':'j','onAllTasksComplete':'terminate'}",
	    "onAllTasksComplete: unknown value \"terminate\" (expected one of: "
	    "noAction, terminateJob)");
	job_bad("{'id':'j','onTaskFailure':'retry'}",
	    "onTaskFailure: unknown value \"retry\" (expected one of: "
	    "noAction, performExitOptionsJobAction)");
	job_bad("{'id':'j','metadata':[{'name':'a'}]}",
	    "metadata[0].value: required");
	job_bad("{'id':'j','metadata':[{'value':'a'}]}",
	    "metadata[0].name: required");
	job_bad("{'id':'j','commonEnvironmentSettings':[{'name':'a=b'}]}",
	    "commonEnvironmentSettings[0].name: must not contain '='");
	job_bad("{'id':'j','poolInfo':{'poolId':'a/b'}}",
	    "poolInfo.poolId: may contain only letters, digits, '-' and '_'");
	job_bad("{'id':'j','poolInfo':{'pool':'a'}}",
	    "poolInfo.pool: unknown field");
	job_bad_rc("{'id':'j','poolInfo':{'autoPoolSpecification':"
	    "{'poolLifetimeOption':'job'}}}", BD_EUNSUPPORTED,
	    "poolInfo.autoPoolSpecification: not supported by batchd");
	job_bad("{'id':'j','networkConfiguration':[]}",
	    "networkConfiguration: expected an object, not an array");
	job_bad("{'id':'j','jobManagerTask':'run'}",
	    "jobManagerTask: expected an object, not a string");
	job_bad_rc("[]", BD_EJSON, "expected a JSON object, not an array");
	job_bad_rc("{'id':'j'", BD_EJSON, "not valid JSON at line 1, column 9");
}

TEST(job_tasks)
{
	struct bd_job_spec *job;

	job_bad("{'id':'j','jobPreparationTask':{}}",
	    "jobPreparationTask.commandLine: required");
	job_bad("{'id':'j','jobPreparationTask':{'commandLine':'c',"
	    "'maxWallClockTime':'PT1M'}}",
	    "jobPreparationTask.maxWallClockTime: unknown field (not a field "
	    "of a job preparation task)");
	job_bad("{'id':'j','jobPreparationTask':{'commandLine':'c',"
	    "'resourceFiles':[{'httpUrl':'http://x','filePath':'../x'}]}}",
	    "jobPreparationTask.resourceFiles[0].filePath: must stay inside "
	    "the working directory");
	job_bad("{'id':'j','jobManagerTask':{'commandLine':'c'}}",
	    "jobManagerTask.id: required");
	job_bad("{'id':'j','jobManagerTask':{'id':'m','commandLine':'c',"
	    "'dependsOn':{}}}",
	    "jobManagerTask.dependsOn: unknown field (not a field of a job "
	    "manager task)");
	job_bad("{'id':'j','jobReleaseTask':{'commandLine':'c'}}",
	    "jobReleaseTask: requires a jobPreparationTask");
	job_bad("{'id':'j','jobPreparationTask':{'commandLine':'c'},"
	    "'jobReleaseTask':{'commandLine':'c','maxWallClockTime':'PT1H'}}",
	    "jobReleaseTask.maxWallClockTime: must be at most 15 minutes "
	    "(PT15M) for a job release task");
	job_bad("{'id':'j','jobPreparationTask':{'id':'Same','commandLine':'c'},"
	    "'jobReleaseTask':{'id':'same','commandLine':'c'}}",
	    "jobReleaseTask.id: must differ from the jobPreparationTask's id "
	    "\"Same\"");
	job_bad("{'id':'j','jobPreparationTask':{'commandLine':'c'},"
	    "'jobManagerTask':{'id':'JobPreparation','commandLine':'c'}}",
	    "jobManagerTask.id: \"JobPreparation\" is the id of the job "
	    "preparation task (TaskIdSameAsJobPreparationTask)");
	job_bad("{'id':'j','jobPreparationTask':{'commandLine':'c'},"
	    "'jobReleaseTask':{'commandLine':'c'},"
	    "'jobManagerTask':{'id':'jobrelease','commandLine':'c'}}",
	    "jobManagerTask.id: \"jobrelease\" is the id of the job "
	    "release task (TaskIdSameAsJobReleaseTask)");

	job = job_ok("{'id':'j','jobPreparationTask':{'commandLine':'c'},"
	    "'jobReleaseTask':{'commandLine':'c'}}");
	ASSERT_STR_EQ(job->job_release_task->id, "jobrelease");
	ASSERT_INT_EQ(job->job_release_task->constraints.max_wall_clock_ms,
	    900000);
	bd_job_spec_free(job);
}

TEST(check_task)
{
	struct bd_job_spec *job;

	job = job_ok("{'id':'j','jobPreparationTask':{'commandLine':'c'},"
	    "'jobReleaseTask':{'id':'cleanup','commandLine':'c'}}");
	check_bad(job, "{'id':'JOBPREPARATION','commandLine':'c'}",
	    "id: \"JOBPREPARATION\" is the id of the job preparation task "
	    "(TaskIdSameAsJobPreparationTask)");
	check_bad(job, "{'id':'cleanup','commandLine':'c'}",
	    "id: \"cleanup\" is the id of the job release task "
	    "(TaskIdSameAsJobReleaseTask)");
	check_ok(job, "{'id':'jobrelease','commandLine':'c'}");
	check_bad(job, "{'id':'t','commandLine':'c','dependsOn':"
	    "{'taskIds':['a']}}",
	    "dependsOn: the job does not use task dependencies "
	    "(usesTaskDependencies is false)");
	check_bad(job, "{'id':'t','commandLine':'c','exitConditions':"
	    "{'exitCodes':[{'code':1,'exitOptions':{'jobAction':'none'}},"
	    "{'code':2,'exitOptions':{'jobAction':'terminate'}}]}}",
	    "exitConditions.exitCodes[1].exitOptions.jobAction: terminate needs "
	    "the job's onTaskFailure to be performExitOptionsJobAction (it is "
	    "noAction)");
	check_bad(job, "{'id':'t','commandLine':'c','exitConditions':"
	    "{'exitCodeRanges':[{'start':1,'end':2,'exitOptions':"
	    "{'jobAction':'disable'}}]}}",
	    "exitConditions.exitCodeRanges[0].exitOptions.jobAction: disable "
	    "needs the job's onTaskFailure to be performExitOptionsJobAction "
	    "(it is noAction)");
	check_bad(job, "{'id':'t','commandLine':'c','exitConditions':"
	    "{'default':{'jobAction':'terminate'}}}",
	    "exitConditions.default.jobAction: terminate needs the job's "
	    "onTaskFailure to be performExitOptionsJobAction (it is noAction)");
	check_bad(job, "{'id':'t','commandLine':'c','exitConditions':"
	    "{'preProcessingError':{'dependencyAction':'satisfy'}}}",
	    "exitConditions.preProcessingError.dependencyAction: the job does "
	    "not use task dependencies (usesTaskDependencies is false)");
	check_bad(job, "{'id':'t','commandLine':'c','exitConditions':"
	    "{'fileUploadError':{'jobAction':'terminate'}}}",
	    "exitConditions.fileUploadError.jobAction: terminate needs the "
	    "job's onTaskFailure to be performExitOptionsJobAction (it is "
	    "noAction)");
	check_ok(job, "{'id':'t','commandLine':'c','exitConditions':"
	    "{'default':{'jobAction':'none'}}}");
	check_ok(job, "{'id':'t','commandLine':'c'}");
	bd_job_spec_free(job);

	job = job_ok("{'id':'j','usesTaskDependencies':true,"
	    "'onTaskFailure':'performexitoptionsjobaction'}");
	check_ok(job, "{'id':'jobpreparation','commandLine':'c'}");
	check_ok(job, "{'id':'t','commandLine':'c','dependsOn':"
	    "{'taskIdRanges':[{'start':1,'end':3}]},'exitConditions':"
	    "{'exitCodes':[{'code':1,'exitOptions':{'jobAction':'terminate',"
	    "'dependencyAction':'block'}}]}}");
	bd_job_spec_free(job);
}

TEST(retry_count_and_default)
{
	struct bd_job_spec *job = bd_job_spec_default("adhoc");
	struct bd_task_spec *task;
	char *cause = NULL;

	ASSERT_STR_EQ(job->id, "adhoc");
	ASSERT_INT_EQ(job->max_parallel_tasks, -1);
	ASSERT_INT_EQ(job->max_wall_clock_ms, BD_DURATION_INFINITE);
	ASSERT_NULL(job->job_preparation_task);
	job->max_task_retry_count = 5;

	task = task_ok("{'id':'t','commandLine':'c'}");
	ASSERT_INT_EQ(bd_job_spec_task_retry_count(job, task), 5);
	ASSERT_INT_EQ(bd_job_spec_check_task(job, task, &cause), 0);
	ASSERT_NULL(cause);
	bd_task_spec_free(task);
	task = task_ok("{'id':'t','commandLine':'c','constraints':{}}");
	ASSERT_INT_EQ(bd_job_spec_task_retry_count(job, task), 5);
	bd_task_spec_free(task);
	task = task_ok("{'id':'t','commandLine':'c','constraints':"
	    "{'maxTaskRetryCount':1}}");
	ASSERT_INT_EQ(bd_job_spec_task_retry_count(job, task), 1);
	bd_task_spec_free(task);
	bd_job_spec_free(job);

	job = job_ok("{'id':'j','constraints':{'maxTaskRetryCount':2},"
	    "'jobPreparationTask':{'commandLine':'c'},"
	    "'jobReleaseTask':{'commandLine':'c'},"
	    "'jobManagerTask':{'id':'m','commandLine':'c'}}");
	ASSERT_INT_EQ(bd_job_spec_task_retry_count(job,
	    job->job_manager_task), 2);
	ASSERT_INT_EQ(bd_job_spec_task_retry_count(job,
	    job->job_preparation_task), 0);
	ASSERT_INT_EQ(bd_job_spec_task_retry_count(job,
	    job->job_release_task), 0);
	bd_job_spec_free(job);
}

int
main(void)
{
	RUN(minimal_defaults);
	RUN(full_job);
	RUN(read_back_dump);
	RUN(errors);
	RUN(job_tasks);
	RUN(check_task);
	RUN(retry_count_and_default);
	return 0;
}
