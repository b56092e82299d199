/* SPDX-License-Identifier: MIT */
#include <stdlib.h>

#include "environment.h"
#include "unit.h"
#include "xmalloc.h"

TEST(env_set_get_order)
{
	struct bd_env *e = bd_env_new();
	char **envp;

	bd_env_set(e, "A", "1");
	bd_env_set(e, "B", "2");
	bd_env_set(e, "A", "3");
	ASSERT_STR_EQ(bd_env_get(e, "A"), "3");
	ASSERT_NULL(bd_env_get(e, "C"));
	envp = bd_env_envp(e);
	ASSERT_STR_EQ(envp[0], "A=3");
	ASSERT_STR_EQ(envp[1], "B=2");
	ASSERT_NULL(envp[2]);
	bd_env_envp_free(envp);
	bd_env_unset(e, "A");
	ASSERT_NULL(bd_env_get(e, "A"));
	ASSERT_STR_EQ(bd_env_get(e, "B"), "2");
	bd_env_free(e);
}

TEST(task_env_layers)
{
	struct bd_node_info node = { .root = "/r", .pool_id = "P",
	    .node_id = "N", .is_dedicated = false, .reserved_disk_bytes = 42 };
	struct bd_task_user user = { .name = "_azbatch",
	    .identity = "PoolNonAdmin" };
	struct bd_job_spec job = { 0 };
	struct bd_task_spec prep = { 0 }, task = { 0 };
	struct bd_name_value common[] = { { (char[]){"X"}, (char[]){"job"} },
	    { (char[]){"PATH"}, (char[]){"/job/path"} } };
	struct bd_name_value own[] = { { (char[]){"X"}, (char[]){"task"} } };
	struct bd_task_dirs dirs;
	struct bd_env *e;

	job.id = (char[]){"J"};
	job.common_environment_settings.items = common;
	job.common_environment_settings.count = 2;
	prep.kind = BD_TASK_KIND_JOB_PREPARATION;
	prep.id = (char[]){"jobpreparation"};
	job.job_preparation_task = &prep;
	task.kind = BD_TASK_KIND_TASK;
	task.id = (char[]){"T"};
	task.environment_settings.items = own;
	task.environment_settings.count = 1;
	bd_layout_task_dirs(node.root, job.id, &task, &dirs);
	ASSERT_STR_EQ(dirs.task_dir, "/r/workitems/J/job-1/T");
	e = bd_env_for_task(&node, &job, &task, &dirs, &user);
	ASSERT_STR_EQ(bd_env_get(e, "X"), "task");
	ASSERT_STR_EQ(bd_env_get(e, "PATH"), "/job/path");
	ASSERT_STR_EQ(bd_env_get(e, "AZ_BATCH_NODE_IS_DEDICATED"), "false");
	ASSERT_STR_EQ(bd_env_get(e, "AZ_BATCH_JOB_PREP_DIR"),
	    "/r/workitems/J/job-1/jobpreparation");
	ASSERT_STR_EQ(bd_env_get(e, "AZ_BATCH_RESERVED_DISK_SPACE_BYTES"), "42");
	ASSERT_STR_EQ(bd_env_get(e, "HOME"), "/r/workitems/J/job-1/T/wd");
	ASSERT_STR_EQ(bd_env_get(e, "USER"), "_azbatch");
	bd_env_free(e);
	bd_layout_dirs_free(&dirs);

	/* The start task: no job or task id, startup dirs. */
	struct bd_task_spec start = { .kind = BD_TASK_KIND_START, .id = (char[]){""} };
	bd_layout_task_dirs(node.root, NULL, &start, &dirs);
	e = bd_env_for_task(&node, NULL, &start, &dirs, &user);
	ASSERT_STR_EQ(bd_env_get(e, "AZ_BATCH_TASK_DIR"), "/r/startup");
	ASSERT_STR_EQ(bd_env_get(e, "AZ_BATCH_TASK_WORKING_DIR"), "/r/startup/wd");
	ASSERT_NULL(bd_env_get(e, "AZ_BATCH_TASK_ID"));
	ASSERT_NULL(bd_env_get(e, "AZ_BATCH_JOB_ID"));
	ASSERT_STR_EQ(bd_env_get(e, "PATH"),
	    BD_ENV_DEFAULT_PATH ":/r/shared:/r/startup/wd");
	bd_env_free(e);
	bd_layout_dirs_free(&dirs);
}

int
main(void)
{
	RUN(env_set_get_order);
	RUN(task_env_layers);
	return 0;
}
