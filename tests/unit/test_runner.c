/* SPDX-License-Identifier: MIT */
/* Exit conditions (spec §1.6); the runner's processes are covered by the
 * integration tests, which drive the real binary. */
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd_supervise.h"
#include "runner.h"
#include "unit.h"

static struct bd_job_spec job = {
	.on_task_failure = BD_ON_TASK_FAILURE_PERFORM_EXIT_OPTIONS_JOB_ACTION,
};

static void
eval(const struct bd_task_spec *t, bool pre, bool upload, bool has_code,
    int code, enum bd_job_action ja, enum bd_dependency_action da)
{
	struct bd_run_outcome o = { 0 };

	o.pre_processing_error = pre;
	o.upload_error = upload;
	o.info.has_exit_code = has_code;
	o.info.exit_code = code;
	bd_runner_eval_exit_conditions(&job, t, &o);
	ASSERT_INT_EQ(o.job_action, ja);
	ASSERT_INT_EQ(o.dependency_action, da);
}

TEST(implicit_defaults)
{
	struct bd_task_spec t = { 0 };

	eval(&t, false, false, true, 0, BD_JOB_ACTION_NONE,
	    BD_DEPENDENCY_ACTION_SATISFY);
	eval(&t, false, false, true, 2, BD_JOB_ACTION_TERMINATE,
	    BD_DEPENDENCY_ACTION_BLOCK);
	eval(&t, true, false, false, 0, BD_JOB_ACTION_TERMINATE,
	    BD_DEPENDENCY_ACTION_BLOCK);
	eval(&t, false, true, true, 0, BD_JOB_ACTION_TERMINATE,
	    BD_DEPENDENCY_ACTION_BLOCK);
}

TEST(mappings_and_precedence)
{
	struct bd_exit_code_mapping codes[] = {
		{ 3, { true, BD_JOB_ACTION_NONE, true,
		    BD_DEPENDENCY_ACTION_SATISFY } },
		{ 0, { true, BD_JOB_ACTION_DISABLE, false, 0 } },
	};
	struct bd_exit_code_range ranges[] = {
		{ 1, 10, { true, BD_JOB_ACTION_DISABLE, false, 0 } },
	};
	struct bd_task_spec t = { 0 };

	t.exit_conditions.exit_codes = codes;
	t.exit_conditions.n_exit_codes = 2;
	t.exit_conditions.exit_code_ranges = ranges;
	t.exit_conditions.n_exit_code_ranges = 1;
	t.exit_conditions.has_default = true;
	t.exit_conditions.default_options.has_dependency_action = true;
	t.exit_conditions.default_options.dependency_action =
	    BD_DEPENDENCY_ACTION_SATISFY;
	t.exit_conditions.has_file_upload_error = true;
	t.exit_conditions.file_upload_error.has_job_action = true;
	t.exit_conditions.file_upload_error.job_action = BD_JOB_ACTION_NONE;

	/* exitCodes before exitCodeRanges. */
	eval(&t, false, false, true, 3, BD_JOB_ACTION_NONE,
	    BD_DEPENDENCY_ACTION_SATISFY);
	/* A range; fields it leaves out take the failure defaults. */
	eval(&t, false, false, true, 5, BD_JOB_ACTION_DISABLE,
	    BD_DEPENDENCY_ACTION_BLOCK);
	/* Exit code 0 is mapped only when listed; here it is. */
	eval(&t, false, false, true, 0, BD_JOB_ACTION_DISABLE,
	    BD_DEPENDENCY_ACTION_SATISFY);
	/* Unlisted nonzero code: default. */
	eval(&t, false, false, true, 42, BD_JOB_ACTION_TERMINATE,
	    BD_DEPENDENCY_ACTION_SATISFY);
	/* Upload error: an explicit exit-code match wins over fileUploadError. */
	eval(&t, false, true, true, 3, BD_JOB_ACTION_NONE,
	    BD_DEPENDENCY_ACTION_SATISFY);
	eval(&t, false, true, true, 42, BD_JOB_ACTION_NONE,
	    BD_DEPENDENCY_ACTION_BLOCK);
	/* Pre-processing error without its own entry: default. */
	eval(&t, true, false, false, 0, BD_JOB_ACTION_TERMINATE,
	    BD_DEPENDENCY_ACTION_SATISFY);
	t.exit_conditions.has_pre_processing_error = true;
	t.exit_conditions.pre_processing_error.has_job_action = true;
	t.exit_conditions.pre_processing_error.job_action = BD_JOB_ACTION_NONE;
	eval(&t, true, false, false, 0, BD_JOB_ACTION_NONE,
	    BD_DEPENDENCY_ACTION_BLOCK);
}

TEST(job_action_needs_perform)
{
	struct bd_task_spec t = { 0 };

	job.on_task_failure = BD_ON_TASK_FAILURE_NO_ACTION;
	eval(&t, false, false, true, 2, BD_JOB_ACTION_NONE,
	    BD_DEPENDENCY_ACTION_BLOCK);
	job.on_task_failure = BD_ON_TASK_FAILURE_PERFORM_EXIT_OPTIONS_JOB_ACTION;
}

/* Task cgroup names end in ".PID.SEQ": stale when that batchd is gone. */
TEST(cgroup_stale)
{
	char name[128];
	pid_t dead;

	if ((dead = fork()) == 0)
		_exit(0);
	ASSERT_INT_EQ(waitpid(dead, NULL, 0), dead);
	snprintf(name, sizeof(name), "job.task.0.%ld.7", (long)dead);
	ASSERT_INT_EQ(bd_runner_cgroup_stale(name, NULL), BD_CGROUP_REMOVE);
	/* A zombie (killed, not reaped yet) is gone too. */
	if ((dead = fork()) == 0)
		_exit(0);
	ASSERT_INT_EQ(waitid(P_PID, (id_t)dead, &(siginfo_t){ 0 },
	    WEXITED | WNOWAIT), 0);
	snprintf(name, sizeof(name), "job.task.0.%ld.7", (long)dead);
	ASSERT_INT_EQ(bd_runner_cgroup_stale(name, NULL), BD_CGROUP_REMOVE);
	ASSERT_INT_EQ(waitpid(dead, NULL, 0), dead);
	snprintf(name, sizeof(name), "_node.start.2.%ld.1", (long)getpid());
	ASSERT_INT_EQ(bd_runner_cgroup_stale(name, NULL), BD_CGROUP_KEEP);
	snprintf(name, sizeof(name), "job.task.0.%ld.7", (long)getppid());
	ASSERT_INT_EQ(bd_runner_cgroup_stale(name, NULL), BD_CGROUP_KEEP);
	ASSERT_INT_EQ(bd_runner_cgroup_stale("job.task.0.x.7", NULL),
	    BD_CGROUP_KEEP);
	ASSERT_INT_EQ(bd_runner_cgroup_stale("nodots", NULL), BD_CGROUP_KEEP);
	ASSERT_INT_EQ(bd_runner_cgroup_stale("7", NULL), BD_CGROUP_KEEP);
	ASSERT_INT_EQ(bd_runner_cgroup_stale(".1", NULL), BD_CGROUP_KEEP);
	ASSERT_INT_EQ(bd_runner_cgroup_stale("a.0.1", NULL), BD_CGROUP_KEEP);
	ASSERT_INT_EQ(bd_runner_cgroup_stale("a.-5.1", NULL), BD_CGROUP_KEEP);
}

int
main(int argc, char **argv)
{
	/* Task supervisors are this program re-executed (process.c). */
	if (argc > 1 && strcmp(argv[1], "supervise") == 0)
		return bd_cmd_supervise(argc - 1, argv + 1);
	RUN(implicit_defaults);
	RUN(mappings_and_precedence);
	RUN(job_action_needs_perform);
	RUN(cgroup_stale);
	return 0;
}
