/* SPDX-License-Identifier: MIT */
/*
 * The task runner: one task, one attempt after another, as runner.h draws
 * it.  States:
 *
 *   DOWNLOADING -> RUNNING -> (retry: DOWNLOADING) -> UPLOADING -> DONE
 *
 * Each state owns at most one piece of work in flight (a download, a
 * process or an upload); the wall-clock and grace timers belong to the
 * runner and are closed by bd_runner_free(), which frees the runner in the
 * last close callback.  Steps that finish without any I/O are deferred
 * through step_timer so that the done callback never runs inside
 * bd_runner_start().
 */
#include "runner.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app_package.h"
#include "cgroup.h"
#include "clock.h"
#include "cmdline.h"
#include "download.h"
#include "duration.h"
#include "error.h"
#include "fsutil.h"
#include "log.h"
#include "process.h"
#include "procstat.h"
#include "task_user.h"
#include "upload.h"
#include "xmalloc.h"

enum runner_state {
	RUNNER_STARTING,
	RUNNER_INSTALLING,
	RUNNER_DOWNLOADING,
	RUNNER_RUNNING,
	RUNNER_UPLOADING,
	RUNNER_DONE,
};

struct bd_runner {
	struct bd_runner_options opts;
	bd_runner_done_cb cb;
	void *arg;
	enum runner_state state;
	struct bd_run_outcome out;

	struct bd_env *env;
	struct bd_task_account *account; /* who the task runs as, or NULL */
	char *user_error;	/* why it has no account, or NULL */
	char **envp;
	char **argv;
	size_t argc;
	char *cmdline_error; /* why commandLine does not split, or NULL */
	char *stdout_path, *stderr_path;
	int max_retries; /* -1 = unlimited */

	struct bd_app_request *packages; /* held until the task is done */
	bool packages_ready;
	struct bd_download *download;
	struct bd_process *proc;
	struct bd_upload *upload;
	void (*step)(struct bd_runner *);

	/* The attempt's cgroup (cgroup.h), or NULL; reap_timer waits for it
	   to empty after the main process has exited. */
	struct bd_cgroup *cgroup;
	uv_timer_t reap_timer;
	uint64_t reap_delay_ms, reap_waited_ms;
	int64_t launch_ms;
	int exit_code, term_signal;	/* of the main process */
	int64_t oom_kills;		/* in the attempt's cgroup */

	/* The chown of the task directory on the thread pool (runner_launch()). */
	uv_work_t own_work;
	bool dir_fresh;	/* made by runner_make_dirs(), nothing written in it */
	bool freed;		/* bd_runner_free() was called */
	int own_status;
	char *launch_program;	/* the program it launches then */

	bool timed_out;
	char *end_reason; /* set by timeout or bd_runner_terminate() */
	uv_timer_t wall_timer, grace_timer, step_timer;
	int open_handles;
};

static void runner_begin_attempt(struct bd_runner *r);
static void runner_download(struct bd_runner *r);
static void runner_launch(struct bd_runner *r);
static void runner_upload(struct bd_runner *r);
static void runner_finish(struct bd_runner *r);
static void runner_on_exited(struct bd_runner *r);
static void runner_unref(struct bd_runner *r);

/* Longest wait for a killed task's processes to be gone. */
#define RUNNER_REAP_MAX_MS	30000

static void
runner_phase(struct bd_runner *r, const char *what)
{
	const struct bd_runner_observer *o = r->opts.observer;

	if (o != NULL && o->phase != NULL)
		o->phase(o->arg, r->opts.task->id, what);
}

static void
runner_transfer(void *arg, const char *name, int64_t done, int64_t total)
{
	struct bd_runner *r = arg;
	const struct bd_runner_observer *o = r->opts.observer;

	if (o != NULL && o->transfer != NULL)
		o->transfer(o->arg, name, done, total);
}

static void
runner_on_step(uv_timer_t *t)
{
	struct bd_runner *r = t->data;
	void (*step)(struct bd_runner *) = r->step;

	r->step = NULL;
	step(r);
}

/* Runs step on the next loop iteration. */
static void
runner_defer(struct bd_runner *r, void (*step)(struct bd_runner *))
{
	r->step = step;
	uv_timer_start(&r->step_timer, runner_on_step, 0, 0);
}

/* Records a failure that ends the task before or instead of its command. */
static void
runner_fail_pre(struct bd_runner *r, struct bd_failure_info *f)
{
	r->out.pre_processing_error = true;
	bd_execution_info_set_failure(&r->out.info, f);
	runner_defer(r, runner_finish);
}

/* The message for a task ended by its wall clock or by a terminate. */
static struct bd_failure_info *
runner_ended_failure(struct bd_runner *r)
{
	return bd_failure_info_new(BD_CATEGORY_SERVER_ERROR, "TaskEnded",
	    "%s", r->end_reason);
}

static void
runner_on_grace(uv_timer_t *t)
{
	struct bd_runner *r = t->data;

	if (r->proc != NULL)
		bd_process_kill_tree(r->proc, SIGKILL);
	bd_cgroup_signal(r->cgroup, SIGKILL);
}

/* Ends whatever is in flight because of a timeout or a terminate. */
static void
runner_end_early(struct bd_runner *r, char *reason)
{
	if (r->end_reason != NULL) {
		free(reason);
		return;
	}
	r->end_reason = reason;
	uv_timer_stop(&r->wall_timer);
	switch (r->state) {
	case RUNNER_INSTALLING:
		if (r->packages != NULL)
			bd_app_request_cancel(r->packages);
		break;
	case RUNNER_DOWNLOADING:
		bd_download_cancel(r->download);
		break;
	case RUNNER_RUNNING:
		if (r->proc != NULL) {
			bd_process_kill_tree(r->proc, SIGTERM);
			bd_cgroup_signal(r->cgroup, SIGTERM);
			uv_timer_start(&r->grace_timer, runner_on_grace,
			    (uint64_t)r->opts.kill_grace_ms, 0);
		}
		break;
	default:
		break; /* uploads of a finished process run to their end */
	}
}

static void
runner_on_wall_clock(uv_timer_t *t)
{
	struct bd_runner *r = t->data;
	char limit[64];

	bd_duration_format(r->opts.task->constraints.max_wall_clock_ms, limit,
	    sizeof(limit));
	r->timed_out = true;
	runner_end_early(r, xasprintf("The task ran longer than its "
	    "maxWallClockTime (%s) and was ended; raise "
	    "constraints.maxWallClockTime if it needs more time", limit));
}

void
bd_runner_terminate(struct bd_runner *r, const char *reason)
{
	if (r->state == RUNNER_DONE)
		return;
	runner_end_early(r, xstrdup(reason));
}

static void
runner_on_downloaded(void *arg, struct bd_failure_info *failure, int cancelled)
{
	struct bd_runner *r = arg;

	bd_download_free(r->download);
	r->download = NULL;
	if (cancelled || r->end_reason != NULL) {
		r->out.ended = true;
		bd_failure_info_free(failure);
		runner_fail_pre(r, runner_ended_failure(r));
		return;
	}
	if (failure != NULL) {
		runner_fail_pre(r, failure);
		return;
	}
	runner_launch(r);
}

/*
 * The attempt's cgroup: task.PID.SEQUENCE, unique on the node, with the
 * pid of the batchd that made it (a sweep after a crash goes by it).  It
 * does not name the task, since an empty one is used again by later tasks
 * (bd_cgroup_release()); a debug line names each attempt's cgroup.  None
 * when the node has no cgroups.
 */
static int
runner_cgroup_create(struct bd_runner *r)
{
	static unsigned seq;
	char name[64];
	int rc;

	if (!bd_cgroup_available())
		return 0;
	snprintf(name, sizeof(name), "task.%ld.%u", (long)getpid(), ++seq);
	rc = bd_cgroup_create(name, bd_cgroup_node_limits(), &r->cgroup);
	if (rc < 0)
		log_warnx("task %s: cannot create its cgroup %s: %s",
		    r->opts.task->id, name, strerror(-rc));
	return rc;
}

/* The task cgroups that live supervisors hold, for a sweep. */
struct runner_sweep {
	char **names;	/* their --cgroup arguments */
	size_t n, cap;
	bool kill;	/* orphaned processes are killed */
};

/*
 * Adds the --cgroup of the supervisor pid (a process of batchd's user
 * that is a task supervisor: batchd-supervise, or batchd with argv[1]
 * "supervise") to s.  Only the options before "--" count: what follows is
 * the task's command line.
 */
static void
runner_sweep_add(struct runner_sweep *s, const char *pid)
{
	char path[64], buf[8192];
	struct stat st;
	ssize_t len = 0, r;
	int fd;

	snprintf(path, sizeof(path), "/proc/%s", pid);
	if (stat(path, &st) == -1 || st.st_uid != geteuid())
		return;
	snprintf(path, sizeof(path), "/proc/%s/cmdline", pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return;
	while (len < (ssize_t)sizeof(buf) - 1 &&
	    (r = read(fd, buf + len, sizeof(buf) - 1 - (size_t)len)) > 0)
		len += r;
	close(fd);
	buf[len] = '\0';
	const char *arg = buf, *end = buf + len, *base = strrchr(buf, '/');
	/* batchd-supervise OPTIONS, or batchd supervise OPTIONS. */
	if (strcmp(base != NULL ? base + 1 : buf, "batchd-supervise") != 0) {
		arg += strlen(arg) + 1;		/* argv[0] */
		if (arg >= end || strcmp(arg, "supervise") != 0)
			return;
	}
	for (; arg < end && strcmp(arg, "--") != 0; arg += strlen(arg) + 1) {
		const char *next = arg + strlen(arg) + 1;
		if (strcmp(arg, "--cgroup") != 0 || next >= end)
			continue;
		if (s->n == s->cap) {
			s->cap = s->cap ? s->cap * 2 : 16;
			s->names = xreallocarray(s->names, s->cap,
			    sizeof(*s->names));
		}
		s->names[s->n++] = xstrdup(next);
		return;
	}
}

/* Fills s with the cgroups of every live supervisor on the machine. */
static void
runner_sweep_scan(struct runner_sweep *s)
{
	struct dirent *de;
	DIR *d;

	if ((d = opendir("/proc")) == NULL)
		return;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] >= '1' && de->d_name[0] <= '9')
			runner_sweep_add(s, de->d_name);
	closedir(d);
}

/*
 * Whether process pid is gone: no such process, or a zombie (a killed
 * supervisor whose parent died with batchd stays one until init reaps
 * it, and runs nothing meanwhile).
 */
static bool
runner_pid_gone(pid_t pid)
{
	unsigned long long f[BD_PROC_STAT_FIELDS];
	int rc;

	if (kill(pid, 0) == -1)
		return errno == ESRCH;
	rc = bd_proc_stat(pid, f);
	return rc == -ESRCH || (rc >= 3 && f[3] == 'Z');
}

enum bd_cgroup_sweep_action
bd_runner_cgroup_stale(const char *name, void *arg)
{
	const struct runner_sweep *s = arg;
	const char *seq = strrchr(name, '.'), *p;
	char *end;
	long pid;

	if (seq == NULL || seq == name)
		return BD_CGROUP_KEEP;
	for (p = seq - 1; p > name && *p != '.'; p--)
		;
	if (*p != '.')
		return BD_CGROUP_KEEP;
	pid = strtol(p + 1, &end, 10);
	if (end != seq || pid <= 0 || pid == (long)getpid())
		return BD_CGROUP_KEEP;
	/* A pid reused since only keeps the cgroup a while longer. */
	if (!runner_pid_gone((pid_t)pid))
		return BD_CGROUP_KEEP;
	if (s == NULL || !s->kill)
		return BD_CGROUP_REMOVE;
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->names[i], name) == 0)
			return BD_CGROUP_KEEP;	/* an adopted task's */
	/* Its supervisor is gone: nothing will ever stop or report what
	 * runs there, and the task runs again elsewhere. */
	return BD_CGROUP_KILL;
}

int
bd_runner_sweep_cgroups(bool kill_orphans, int *killed)
{
	struct runner_sweep s = { .kill = kill_orphans };
	int n;

	if (!bd_cgroup_available()) {
		if (killed != NULL)
			*killed = 0;
		return 0;
	}
	if (kill_orphans)
		runner_sweep_scan(&s);
	n = bd_cgroup_sweep(bd_runner_cgroup_stale, &s, killed);
	for (size_t i = 0; i < s.n; i++)
		free(s.names[i]);
	free(s.names);
	return n;
}

/* Reads the attempt's statistics, removes its cgroup, goes on. */
static void
runner_cgroup_end(struct bd_runner *r)
{
	struct bd_cgroup_stats st;

	/* An adopted task's cgroup was made by the batchd that died.  No
	 * kills here: they would wait on the loop. */
	if (r->opts.adopt)
		(void)bd_runner_sweep_cgroups(false, NULL);

	bd_cgroup_stats(r->cgroup, &st);
	r->oom_kills = st.oom_kills;
	bd_task_stats_add(&r->out.info.stats, bd_clock_now_ms() - r->launch_ms,
	    st.cpu_user_usec, st.cpu_system_usec, st.memory_peak);
	if (bd_cgroup_empty(r->cgroup))
		bd_cgroup_release(r->cgroup);
	else {
		/* D state on a hung file system: Slurm's "unkillable step". */
		log_warnx("task %s: processes of its cgroup %s are still there "
		    "%d s after SIGKILL; leaving it", r->opts.task->id,
		    bd_cgroup_path(r->cgroup), RUNNER_REAP_MAX_MS / 1000);
		bd_cgroup_free(r->cgroup);
	}
	r->cgroup = NULL;
	runner_on_exited(r);
}

static void runner_cgroup_reap(struct bd_runner *r);

static void
runner_on_reap(uv_timer_t *t)
{
	runner_cgroup_reap(t->data);
}

/*
 * After the main process exits: SIGKILL to what is left in the cgroup,
 * then wait (1 ms, doubling to 100 ms) until the kernel has taken it all
 * out, so that outputs are uploaded, and the next attempt starts, with
 * nothing of this one running.
 */
static void
runner_cgroup_reap(struct bd_runner *r)
{
	if (r->cgroup == NULL || bd_cgroup_empty(r->cgroup) ||
	    r->reap_waited_ms >= RUNNER_REAP_MAX_MS) {
		r->reap_delay_ms = r->reap_waited_ms = 0;
		runner_cgroup_end(r);
		return;
	}
	if (r->reap_delay_ms == 0) {
		bd_cgroup_signal(r->cgroup, SIGKILL);
		r->reap_delay_ms = 1;
	} else if (r->reap_delay_ms < 100)
		r->reap_delay_ms *= 2;
	r->reap_waited_ms += r->reap_delay_ms;
	uv_timer_start(&r->reap_timer, runner_on_reap, r->reap_delay_ms, 0);
}

/* The failure of an attempt that the OOM killer ended. */
static void
runner_set_oom_failure(struct bd_runner *r, int code)
{
	int64_t max = bd_cgroup_node_limits()->memory_max;
	struct bd_failure_info *f;
	char limit[32];

	if (max > 0)
		f = bd_failure_info_new(BD_CATEGORY_USER_ERROR,
		    "FailureExitCode", "The task ran out of memory: it reached "
		    "its memory limit of %lld bytes (%.1f MiB, the node's "
		    "tasks.limits.memoryMaxBytes) and the kernel's OOM killer "
		    "ended it (exit code %d)", (long long)max,
		    (double)max / (1024.0 * 1024.0), code);
	else
		f = bd_failure_info_new(BD_CATEGORY_USER_ERROR,
		    "FailureExitCode", "The task ran out of memory: the "
		    "kernel's OOM killer ended it (exit code %d)", code);
	snprintf(limit, sizeof(limit), "%lld", (long long)max);
	bd_failure_info_set_detail(f, "memoryMaxBytes", max > 0 ? limit :
	    "none");
	bd_execution_info_set_failure(&r->out.info, f);
}

static void
runner_on_exit(struct bd_process *proc, int exit_code, int term_signal,
    void *arg)
{
	struct bd_runner *r = arg;
	const struct bd_runner_observer *o = r->opts.observer;

	/* Whatever the task left behind ends with it. */
	bd_process_kill_tree(proc, SIGKILL);
	bd_process_free(proc);
	r->proc = NULL;
	uv_timer_stop(&r->grace_timer);
	if (o != NULL && o->exited != NULL)
		o->exited(o->arg);
	r->exit_code = exit_code;
	r->term_signal = term_signal;
	runner_cgroup_reap(r);
}

/* The rest of an exit, once nothing of the attempt is left running. */
static void
runner_on_exited(struct bd_runner *r)
{
	int exit_code = r->exit_code, term_signal = r->term_signal;
	int code = term_signal ? -term_signal : exit_code;

	r->out.info.has_exit_code = true;
	r->out.info.exit_code = code;
	if (r->end_reason != NULL) {
		r->out.ended = true;
		bd_execution_info_set_failure(&r->out.info,
		    runner_ended_failure(r));
		runner_upload(r);
		return;
	}
	if (code != 0 && !r->opts.single_attempt && (r->max_retries < 0 ||
	    r->out.info.retry_count < r->max_retries)) {
		r->out.info.retry_count++;
		r->out.info.last_retry_ms = bd_clock_now_ms();
		runner_phase(r, "retrying after a nonzero exit code");
		runner_begin_attempt(r);
		return;
	}
	if (code != 0 && r->oom_kills > 0)
		runner_set_oom_failure(r, code);
	else if (term_signal != 0)
		bd_execution_info_set_failure(&r->out.info,
		    bd_failure_info_new(BD_CATEGORY_USER_ERROR,
		    "FailureExitCode", "The task process was killed by "
		    "signal %d (%s)", term_signal, strsignal(term_signal)));
	else if (code != 0)
		bd_execution_info_set_failure(&r->out.info,
		    bd_failure_info_new(BD_CATEGORY_USER_ERROR,
		    "FailureExitCode", "The task process exited with an "
		    "unexpected exit code %d", code));
	runner_upload(r);
}

/* Gives the task directory to the task's user, on a pool thread. */
static void
runner_own_work(uv_work_t *w)
{
	struct bd_runner *r = w->data;

	r->own_status = bd_task_users_own_dir(r->account,
	    r->out.dirs.task_dir, r->opts.task->kind, true);
}

static void runner_spawn(struct bd_runner *r);

static void
runner_on_owned(uv_work_t *w, int status)
{
	struct bd_runner *r = w->data;
	bool freed = r->freed;

	runner_unref(r);	/* unless freed meanwhile, its timers hold it */
	if (freed)
		return;
	if (status == 0)
		status = r->own_status;
	if (r->end_reason != NULL) {
		free(r->launch_program);
		r->launch_program = NULL;
		r->out.ended = true;
		runner_fail_pre(r, runner_ended_failure(r));
		return;
	}
	if (status < 0) {
		runner_fail_pre(r, bd_failure_info_new(BD_CATEGORY_SERVER_ERROR,
		    "CommandLaunchFailed", "cannot give the task directory %s "
		    "to user %s: %s", r->out.dirs.task_dir, r->account->name,
		    strerror(-status)));
		free(r->launch_program);
		r->launch_program = NULL;
		return;
	}
	runner_spawn(r);
}

/*
 * Starts the command line in wd: finds the program, then gives the task
 * directory (with what was downloaded into it) to the task's user on the
 * thread pool, since the walk of a big tree must not hold up the loop,
 * then runner_spawn().
 */
static void
runner_launch(struct bd_runner *r)
{
	char *program;

	r->state = RUNNER_RUNNING;
	if (r->end_reason != NULL) {
		/* Ended before there was anything to stop (no download). */
		r->out.ended = true;
		runner_fail_pre(r, runner_ended_failure(r));
		return;
	}
	if (r->cmdline_error != NULL) {
		runner_fail_pre(r, bd_failure_info_new(BD_CATEGORY_USER_ERROR,
		    "CommandLaunchFailed", "commandLine: %s",
		    r->cmdline_error));
		return;
	}
	program = bd_process_find_program(r->argv[0], r->out.dirs.wd,
	    bd_env_get(r->env, "PATH"));
	if (program == NULL) {
		if (errno == EACCES)
			runner_fail_pre(r, bd_failure_info_new(
			    BD_CATEGORY_USER_ERROR, "CommandLaunchFailed",
			    "commandLine: the program '%s' is not executable "
			    "(no execute permission)", r->argv[0]));
		else
			runner_fail_pre(r, bd_failure_info_new(
			    BD_CATEGORY_USER_ERROR, "CommandProgramNotFound",
			    "commandLine: the program '%s' was not found %s",
			    r->argv[0], strchr(r->argv[0], '/') != NULL ?
			    "relative to the task working directory" :
			    "in PATH (the command line is not run by a shell; "
			    "use /bin/sh -c \"...\" for shell syntax)"));
		return;
	}
	r->launch_program = program;
	if (r->account == NULL || r->account->process == NULL) {
		runner_spawn(r);	/* nothing to give away */
		return;
	}
	r->own_work.data = r;
	r->open_handles++;	/* the work holds the runner, as a handle */
	if (r->dir_fresh) {
		/* Three directories batchd has just made, empty: a few
		   fchown()s, as cheap as their mkdir()s, and no walk. */
		r->dir_fresh = false;
		r->own_status = bd_task_users_own_dir(r->account,
		    r->out.dirs.task_dir, r->opts.task->kind, false);
		runner_on_owned(&r->own_work, 0);
		return;
	}
	if (uv_queue_work(r->opts.loop, &r->own_work, runner_own_work,
	    runner_on_owned) < 0) {
		runner_own_work(&r->own_work);
		runner_on_owned(&r->own_work, 0);
	}
}

/* Creates the attempt's cgroup and spawns the command (runner_launch()). */
/* The command could not start (rc from bd_process_spawn()). */
static void
runner_start_failed(struct bd_runner *r, const char *program, int rc)
{
	/* A supervisor that died after it forked may leave the command. */
	(void)bd_cgroup_signal(r->cgroup, SIGKILL);
	bd_cgroup_release(r->cgroup);
	r->cgroup = NULL;
	if (r->end_reason != NULL) {
		/* Ended (timeout, terminate) while it started. */
		r->out.ended = true;
		runner_fail_pre(r, runner_ended_failure(r));
		return;
	}
	if (rc == -ENOENT)
		runner_fail_pre(r, bd_failure_info_new(BD_CATEGORY_USER_ERROR,
		    "CommandProgramNotFound", "commandLine: cannot run '%s': %s",
		    program, strerror(-rc)));
	else if (rc == -ENOEXEC)
		runner_fail_pre(r, bd_failure_info_new(BD_CATEGORY_USER_ERROR,
		    "CommandLaunchFailed", "commandLine: '%s' is neither a "
		    "binary nor a script with a #! line", program));
	else
		runner_fail_pre(r, bd_failure_info_new(BD_CATEGORY_USER_ERROR,
		    "CommandLaunchFailed", "commandLine: cannot run '%s'%s%s: "
		    "%s", program, r->account->process != NULL ? " as user " :
		    "", r->account->process != NULL ? r->account->name : "",
		    strerror(-rc)));
}

/* The supervisor says whether the command runs (process.h). */
static void
runner_on_started(struct bd_process *proc, int status, void *arg)
{
	struct bd_runner *r = arg;
	const struct bd_runner_observer *o = r->opts.observer;
	char *program = r->launch_program;

	r->launch_program = NULL;
	if (status < 0) {
		bd_process_free(r->proc);
		r->proc = NULL;
		runner_start_failed(r, program, status);
		free(program);
		return;
	}
	free(program);
	if (r->cgroup != NULL)
		log_debug("task %s: pid %d in cgroup %s", r->opts.task->id,
		    (int)bd_process_pid(r->proc), bd_cgroup_path(r->cgroup));
	r->out.launched = true;
	if (o != NULL && o->launched != NULL)
		o->launched(o->arg, r->stdout_path, r->stderr_path);
}

static void
runner_spawn(struct bd_runner *r)
{
	struct bd_process_options po;
	char *program = r->launch_program;
	int *hold, rc;

	r->launch_program = NULL;
	if ((rc = runner_cgroup_create(r)) < 0) {
		runner_fail_pre(r, bd_failure_info_new(BD_CATEGORY_SERVER_ERROR,
		    "CommandLaunchFailed", "cannot create the task's cgroup: %s",
		    strerror(-rc)));
		free(program);
		return;
	}
	memset(&po, 0, sizeof(po));
	po.identity = r->account->process;
	po.file = program;
	po.argv = r->argv;
	po.envp = r->envp;
	po.cwd = r->out.dirs.wd;
	po.stdout_path = r->stdout_path;
	po.stderr_path = r->stderr_path;
	po.output_cap = r->opts.stdout_max_bytes;
	po.stderr_cap = r->opts.stderr_max_bytes;
	po.state_path = r->opts.supervisor_state;
	po.grace_ms = r->opts.kill_grace_ms;
	po.cgroup = r->cgroup;
	po.started = runner_on_started;
	/* The supervisor holds the task's packages for as long as it runs. */
	po.n_hold_fds = bd_app_packages_hold_fds(r->opts.node->packages,
	    r->packages, NULL, 0);
	hold = po.n_hold_fds > 0 ? xcalloc(po.n_hold_fds, sizeof(int)) : NULL;
	(void)bd_app_packages_hold_fds(r->opts.node->packages, r->packages,
	    hold, po.n_hold_fds);
	po.hold_fds = hold;
	r->launch_ms = bd_clock_now_ms();
	rc = bd_process_spawn(&po, runner_on_exit, r, &r->proc);
	free(hold);
	if (rc < 0) {
		runner_start_failed(r, program, rc);
		free(program);
		return;
	}
	r->launch_program = program;	/* for a start that fails later */
}

/* Adds the variables of the task's packages and the pool's. */
static void
runner_package_env(struct bd_runner *r)
{
	bd_app_packages_add_env(r->opts.node->packages, r->packages, r->env);
	bd_env_envp_free(r->envp);
	r->envp = bd_env_envp(r->env);
}

static void
runner_on_installed(struct bd_app_request *req, int status,
    const char *message, void *arg)
{
	struct bd_runner *r = arg;

	if (r->end_reason != NULL) {
		r->out.ended = true;
		runner_fail_pre(r, runner_ended_failure(r));
		return;
	}
	if (status < 0) {
		runner_fail_pre(r, bd_failure_info_new(
		    bd_app_packages_user_error(status) ?
		    BD_CATEGORY_USER_ERROR : BD_CATEGORY_SERVER_ERROR,
		    "ApplicationPackageError", "%s", message));
		return;
	}
	runner_package_env(r);
	runner_download(r);
}

/*
 * Application packages, before the resource files of the first attempt
 * (reference §5).  True when the runner goes on from a callback.
 */
static bool
runner_install_packages(struct bd_runner *r)
{
	const struct bd_task_spec *t = r->opts.task;
	struct bd_app_packages *m = r->opts.node->packages;
	int rc;

	if (r->packages_ready)
		return false;
	r->packages_ready = true;
	if (t->n_application_packages == 0) {
		if (m != NULL)
			runner_package_env(r);
		return false;
	}
	if (m == NULL) {
		runner_fail_pre(r, bd_failure_info_new(BD_CATEGORY_SERVER_ERROR,
		    "ApplicationPackageError", "applicationPackageReferences: "
		    "this node has no application package store"));
		return true;
	}
	r->state = RUNNER_INSTALLING;
	runner_phase(r, "installing application packages");
	if ((rc = bd_app_packages_acquire(m, t->application_packages,
	    t->n_application_packages, runner_on_installed, r,
	    &r->packages)) < 0) {
		r->packages = NULL;
		runner_fail_pre(r, bd_failure_info_new(BD_CATEGORY_SERVER_ERROR,
		    "ApplicationPackageError", "cannot install application "
		    "packages: %s", bd_strerror(rc)));
	}
	return true;
}

/*
 * Watches again the process of a task a previous batchd started (adopt):
 * its exit, now or later, goes through runner_on_exit as if this runner
 * had launched it.
 */
static void
runner_adopt(struct bd_runner *r)
{
	const struct bd_runner_observer *o = r->opts.observer;
	int64_t max = r->opts.task->constraints.max_wall_clock_ms, left;
	int rc;

	r->state = RUNNER_RUNNING;
	r->out.info.start_ms = r->opts.adopt_started_ms;
	rc = bd_process_adopt(r->opts.supervisor_state, runner_on_exit, r,
	    &r->proc);
	if (rc < 0) {
		r->out.ended = true;
		runner_fail_pre(r, bd_failure_info_new(BD_CATEGORY_SERVER_ERROR,
		    "TaskEnded", "the task's supervisor was lost while batchd "
		    "restarted (%s)", bd_strerror(rc)));
		return;
	}
	r->out.launched = true;
	if (r->end_reason != NULL) {
		/* Ended before it was picked up (the node lost its lease while
		 * batchd was away): end the process now. */
		char *reason = r->end_reason;
		r->end_reason = NULL;
		runner_end_early(r, reason);
	} else if (max != BD_DURATION_INFINITE) {
		left = max - (bd_clock_now_ms() - r->opts.adopt_started_ms);
		uv_timer_start(&r->wall_timer, runner_on_wall_clock,
		    left > 0 ? (uint64_t)left : 0, 0);
	}
	if (o != NULL && o->launched != NULL)
		o->launched(o->arg, r->stdout_path, r->stderr_path);
}

/* One attempt: clean wd (after the first), downloads, launch. */
static void
runner_begin_attempt(struct bd_runner *r)
{
	const struct bd_task_spec *t = r->opts.task;
	int rc;

	r->out.info.start_ms = bd_clock_now_ms();
	/* The task's user may not touch wd while batchd fills it again. */
	if (r->out.info.retry_count > 0 &&
	    ((rc = bd_task_users_reclaim_dir(r->account, r->out.dirs.wd)) < 0 ||
	    (rc = bd_empty_dir(r->out.dirs.wd)) < 0)) {
		runner_fail_pre(r, bd_failure_info_new(BD_CATEGORY_SERVER_ERROR,
		    "ResourceDirectoryCreateFailed", "cannot clean the working "
		    "directory %s before a retry: %s", r->out.dirs.wd,
		    strerror(-rc)));
		return;
	}
	if (t->constraints.max_wall_clock_ms != BD_DURATION_INFINITE)
		uv_timer_start(&r->wall_timer, runner_on_wall_clock,
		    (uint64_t)t->constraints.max_wall_clock_ms, 0);
	if (runner_install_packages(r))
		return; /* runner_on_installed() goes on */
	runner_download(r);
}

/* Resource files, then the launch. */
static void
runner_download(struct bd_runner *r)
{
	const struct bd_task_spec *t = r->opts.task;
	int rc;

	if (t->n_resource_files == 0) {
		runner_launch(r);
		return;
	}
	r->dir_fresh = false;	/* the walk gives away what comes in */
	struct bd_download_options d = {
		.loop = r->opts.loop,
		.http = r->opts.http,
		.storage = r->opts.storage,
		.files = t->resource_files,
		.n_files = t->n_resource_files,
		.wd = r->out.dirs.wd,
		.identity = r->account->process,
		.max_parallel = 8,
		.progress_cb = runner_transfer,
		.progress_arg = r,
	};
	r->state = RUNNER_DOWNLOADING;
	runner_phase(r, "downloading resource files");
	rc = bd_download_start(&d, runner_on_downloaded, r, &r->download);
	if (rc < 0)
		runner_fail_pre(r, bd_failure_info_new(BD_CATEGORY_SERVER_ERROR,
		    "BlobDownloadMiscError", "cannot start downloads: %s",
		    bd_strerror(rc)));
}

static void
runner_on_uploaded(void *arg, struct bd_failure_info *failure, int cancelled)
{
	struct bd_runner *r = arg;

	bd_upload_free(r->upload);
	r->upload = NULL;
	if (failure != NULL) {
		r->out.upload_error = true;
		if (r->out.info.failure == NULL)
			bd_execution_info_set_failure(&r->out.info, failure);
		else
			bd_failure_info_free(failure);
	}
	runner_finish(r);
}

/* Output files, for the kinds that have them. */
static void
runner_upload(struct bd_runner *r)
{
	const struct bd_task_spec *t = r->opts.task;
	int rc;

	uv_timer_stop(&r->wall_timer);
	if (t->n_output_files == 0) {
		runner_finish(r);
		return;
	}
	struct bd_upload_options u = {
		.loop = r->opts.loop,
		.http = r->opts.http,
		.files = t->output_files,
		.n_files = t->n_output_files,
		.wd = r->out.dirs.wd,
		.task_dir = r->out.dirs.task_dir,
		.env = r->env,
		.identity = r->account->process,
		.task_succeeded = r->out.info.failure == NULL,
		.max_parallel = 8,
		.progress_cb = runner_transfer,
		.progress_arg = r,
	};
	r->state = RUNNER_UPLOADING;
	runner_phase(r, "uploading output files");
	rc = bd_upload_start(&u, runner_on_uploaded, r, &r->upload);
	if (rc < 0) {
		r->out.upload_error = true;
		if (r->out.info.failure == NULL)
			bd_execution_info_set_failure(&r->out.info,
			    bd_failure_info_new(BD_CATEGORY_SERVER_ERROR,
			    "FileUploadMiscError", "cannot start uploads: %s",
			    bd_strerror(rc)));
		runner_finish(r);
	}
}

static void
runner_finish(struct bd_runner *r)
{
	/* The task is done with its packages. */
	bd_app_request_free(r->packages);
	r->packages = NULL;
	uv_timer_stop(&r->wall_timer);
	uv_timer_stop(&r->grace_timer);
	r->state = RUNNER_DONE;
	r->out.info.end_ms = bd_clock_now_ms();
	r->out.info.result = r->out.info.failure != NULL ?
	    BD_RESULT_FAILURE : BD_RESULT_SUCCESS;
	bd_task_users_release(r->opts.users, r->account,
	    r->out.dirs.task_dir);
	r->account = NULL;
	bd_runner_eval_exit_conditions(r->opts.job, r->opts.task, &r->out);
	r->cb(r, &r->out, r->arg);
}

bool
bd_runner_should_retry(const struct bd_job_spec *job,
    const struct bd_task_spec *task, const struct bd_run_outcome *o)
{
	int max;

	if (!o->launched || o->ended || o->pre_processing_error ||
	    !o->info.has_exit_code || o->info.exit_code == 0)
		return false;
	if (task->kind == BD_TASK_KIND_JOB_RELEASE)
		return false;
	max = job != NULL ? bd_job_spec_task_retry_count(job, task) :
	    task->constraints.max_task_retry_count;
	return max < 0 || o->info.retry_count < max;
}

/* Applies the fields an ExitOptions sets. */
static void
runner_apply_options(const struct bd_exit_options *eo, struct bd_run_outcome *o)
{
	if (eo->has_job_action)
		o->job_action = eo->job_action;
	if (eo->has_dependency_action)
		o->dependency_action = eo->dependency_action;
}

/* The implicit actions: none/satisfy for success, terminate/block else. */
static void
runner_implicit(struct bd_run_outcome *o, bool failed)
{
	o->job_action = failed ? BD_JOB_ACTION_TERMINATE : BD_JOB_ACTION_NONE;
	o->dependency_action = failed ? BD_DEPENDENCY_ACTION_BLOCK :
	    BD_DEPENDENCY_ACTION_SATISFY;
}

void
bd_runner_eval_exit_conditions(const struct bd_job_spec *job,
    const struct bd_task_spec *task, struct bd_run_outcome *o)
{
	const struct bd_exit_conditions *ec = &task->exit_conditions;
	bool matched = false;

	if (o->pre_processing_error) {
		runner_implicit(o, true);
		if (ec->has_pre_processing_error)
			runner_apply_options(&ec->pre_processing_error, o);
		else if (ec->has_default)
			runner_apply_options(&ec->default_options, o);
		goto out;
	}
	int code = o->info.has_exit_code ? o->info.exit_code : -1;
	for (size_t i = 0; i < ec->n_exit_codes && !matched; i++) {
		if (ec->exit_codes[i].code == code) {
			runner_implicit(o, code != 0);
			runner_apply_options(&ec->exit_codes[i].options, o);
			matched = true;
		}
	}
	for (size_t i = 0; i < ec->n_exit_code_ranges && !matched; i++) {
		const struct bd_exit_code_range *rg = &ec->exit_code_ranges[i];
		if (code >= rg->start && code <= rg->end) {
			runner_implicit(o, code != 0);
			runner_apply_options(&rg->options, o);
			matched = true;
		}
	}
	if (!matched) {
		runner_implicit(o, code != 0);
		if (code != 0 && ec->has_default)
			runner_apply_options(&ec->default_options, o);
	}
	if (o->upload_error && !matched) {
		runner_implicit(o, true);
		if (ec->has_file_upload_error)
			runner_apply_options(&ec->file_upload_error, o);
		else if (ec->has_default)
			runner_apply_options(&ec->default_options, o);
	}
out:
	/* A jobAction acts only when the job asks for it. */
	if (job == NULL ||
	    job->on_task_failure != BD_ON_TASK_FAILURE_PERFORM_EXIT_OPTIONS_JOB_ACTION)
		o->job_action = BD_JOB_ACTION_NONE;
}

/* Fresh task directory: Azure task ids are unique within a job. */
static int
runner_make_dirs(struct bd_runner *r, char **cause)
{
	const struct bd_task_dirs *d = &r->out.dirs;
	int rc;

	if (r->opts.task->kind == BD_TASK_KIND_START) {
		/* The start task's directory is the node's; keep it, clean wd
		 * (taken back from the last start task's user first). */
		rc = bd_mkdir_p(d->wd, 0775);
		if (rc == 0 && r->account != NULL &&
		    (rc = bd_task_users_reclaim_dir(r->account,
		    d->task_dir)) == 0)
			rc = bd_task_users_reclaim_dir(r->account, d->wd);
		if (rc == 0)
			rc = bd_empty_dir(d->wd);
	} else if ((rc = bd_rm_rf(d->task_dir)) == 0) {
		rc = bd_mkdir_p(d->wd, 0775);
		r->dir_fresh = rc == 0;
	}
	if (rc == 0)
		rc = bd_mkdir_p(d->certs, 0775);
	if (rc < 0)
		*cause = xasprintf("cannot create the task directory %s: %s",
		    d->task_dir, strerror(-rc));
	return rc;
}

int
bd_runner_start(const struct bd_runner_options *opts, bd_runner_done_cb cb,
    void *arg, struct bd_runner **out)
{
	struct bd_runner *r = xcalloc(1, sizeof(*r));
	const struct bd_task_spec *t = opts->task;
	char *cause = NULL;

	r->opts = *opts;
	if (r->opts.kill_grace_ms <= 0)
		r->opts.kill_grace_ms = 5000;
	r->cb = cb;
	r->arg = arg;
	r->out.info.retry_count = opts->retry_count;
	uv_timer_init(opts->loop, &r->wall_timer);
	uv_timer_init(opts->loop, &r->grace_timer);
	uv_timer_init(opts->loop, &r->step_timer);
	uv_timer_init(opts->loop, &r->reap_timer);
	r->wall_timer.data = r->grace_timer.data = r->step_timer.data = r;
	r->reap_timer.data = r;
	r->open_handles = 4;

	bd_layout_task_dirs(opts->node->root, opts->job ? opts->job->id : "",
	    t, &r->out.dirs);
	r->stdout_path = bd_path_join(r->out.dirs.task_dir, "stdout.txt");
	r->stderr_path = bd_path_join(r->out.dirs.task_dir, "stderr.txt");
	if (bd_task_users_acquire(opts->users, t, &r->account, &cause) < 0) {
		r->user_error = cause;
		cause = NULL;
	}
	struct bd_task_user tu = {
		.name = r->account != NULL ? r->account->name : "",
		.identity = bd_task_user_identity_label(&t->user_identity),
	};
	r->env = bd_env_for_task(opts->node, opts->job, t, &r->out.dirs, &tu);
	r->envp = bd_env_envp(r->env);
	if (t->kind == BD_TASK_KIND_JOB_RELEASE)
		r->max_retries = 0;
	else if (opts->job != NULL)
		r->max_retries = bd_job_spec_task_retry_count(opts->job, t);
	else
		r->max_retries = t->constraints.max_task_retry_count;
	if (bd_cmdline_split(t->command_line, &r->argv, &r->argc, &cause) < 0) {
		r->cmdline_error = cause;
		cause = NULL;
	}
	if (opts->adopt) {
		/* The task directory is the adopted task's: keep it. */
		runner_defer(r, runner_adopt);
	} else if (r->user_error != NULL) {
		r->state = RUNNER_STARTING;
		runner_fail_pre(r, bd_failure_info_new(BD_CATEGORY_USER_ERROR,
		    "CommandLaunchFailed", "%s", r->user_error));
	} else if (runner_make_dirs(r, &cause) < 0) {
		r->state = RUNNER_STARTING;
		runner_fail_pre(r, bd_failure_info_new(BD_CATEGORY_SERVER_ERROR,
		    "ResourceDirectoryCreateFailed", "%s", cause));
		free(cause);
	} else {
		/* Start on the next iteration so cb never runs in here. */
		runner_defer(r, runner_begin_attempt);
	}
	*out = r;
	return 0;
}

/* Drops one of the runner's holds (handles, work); frees it at the last. */
static void
runner_unref(struct bd_runner *r)
{
	if (--r->open_handles > 0)
		return;
	bd_cgroup_free(r->cgroup);
	bd_execution_info_clear(&r->out.info);
	bd_layout_dirs_free(&r->out.dirs);
	bd_app_request_free(r->packages);
	bd_env_free(r->env);
	bd_task_users_release(r->opts.users, r->account, NULL);
	free(r->user_error);
	bd_env_envp_free(r->envp);
	if (r->argv != NULL)
		bd_cmdline_free(r->argv);
	free(r->cmdline_error);
	free(r->stdout_path);
	free(r->stderr_path);
	free(r->end_reason);
	free(r->launch_program);
	free(r);
}

static void
runner_on_close(uv_handle_t *h)
{
	runner_unref(h->data);
}

void
bd_runner_free(struct bd_runner *r)
{
	if (r == NULL)
		return;
	r->freed = true;
	uv_close((uv_handle_t *)&r->wall_timer, runner_on_close);
	uv_close((uv_handle_t *)&r->grace_timer, runner_on_close);
	uv_close((uv_handle_t *)&r->step_timer, runner_on_close);
	uv_close((uv_handle_t *)&r->reap_timer, runner_on_close);
}
