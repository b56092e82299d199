/* SPDX-License-Identifier: MIT */
#ifndef BD_PROCESS_H
#define BD_PROCESS_H

/*
 * Task processes.  A task's command runs under a supervisor of its own
 * (supervisor.h; forked by the spawner, spawner.h, else the exec'd
 * batchd-supervise program), which puts it in a process group, cgroup
 * and user of its own, copies its output into stdout.txt
 * and stderr.txt up to a cap, ends its whole tree when it exits or when
 * asked, and records the outcome in a state file.  The supervisor does not
 * depend on batchd: a restart of batchd leaves the task running, and the
 * next batchd adopts the supervisor again (bd_process_adopt()).
 *
 * batchd watches each supervisor through a pidfd on the loop, which works
 * for its children and for adopted processes alike and cannot be fooled by
 * a reused pid.  batchd also stays a child subreaper and reaps every child
 * it is given, so nothing it inherits becomes a zombie.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

struct bd_process;
struct bd_cgroup;
struct bd_supervisor_record;

/* Who a task's processes run as. */
struct bd_process_identity {
	uid_t uid;
	gid_t gid;
	const gid_t *groups;	/* supplementary groups, borrowed */
	size_t ngroups;
};

typedef void (*bd_process_exit_cb)(struct bd_process *proc, int exit_code,
    int term_signal, void *arg);

/* The command runs (status 0) or could not start (a negative errno). */
typedef void (*bd_process_start_cb)(struct bd_process *proc, int status,
    void *arg);

struct bd_process_options {
	const char *file;     /* program path, absolute or relative to cwd */
	char *const *argv;
	char *const *envp;
	const char *cwd;
	const char *stdout_path; /* created/truncated, appended to */
	const char *stderr_path;
	/* Run as this user (batchd must be root); NULL: as batchd itself. */
	const struct bd_process_identity *identity;
	/* The task's cgroup (cgroup.h), joined before the command starts;
	   NULL: none (process groups and a sweep of descendants instead). */
	const struct bd_cgroup *cgroup;
	/* Most bytes kept in each of stdout_path and stderr_path, with a
	   note at the cap; 0: no cap. */
	int64_t output_cap;
	/* stderr_path's own cap when nonzero (else output_cap holds). */
	int64_t stderr_cap;
	/* The supervisor's state file (its first BD_SUPERVISOR_STATE_MAX
	   bytes; supervisor.h), for adoption after a restart (in a
	   directory only batchd can write); NULL: none. */
	const char *state_path;
	/* From SIGTERM to SIGKILL when the supervisor itself is told to end
	   the task (not through bd_process_kill_tree()); 0: 5 s. */
	int64_t grace_ms;
	/* NULL: bd_process_spawn() waits until the command has been
	   executed.  Else it returns once the supervisor is asked for,
	   without blocking the loop for the spawner's fork (its reply is
	   read on the loop) nor the supervisor's start-up, and started runs
	   once from the loop: with 0, after which exit_cb runs as usual;
	   or with a negative errno (see bd_process_spawn()), after which
	   exit_cb never runs and the caller frees the process. */
	bd_process_start_cb started;
	/* Descriptors the supervisor keeps open, and out of the task, until
	   the task ends: the locks of the application packages the task
	   uses (app_package.h).  Borrowed for the call. */
	const int *hold_fds;
	size_t n_hold_fds;
};

/*
 * Makes this process a child subreaper, installs the SIGCHLD watcher on
 * loop and finds this program's path (for the supervisor).  Call once
 * before the first spawn.  0 or a negative errno.
 */
int bd_process_init(uv_loop_t *loop);

/*
 * Stops the SIGCHLD watcher (closing its handle) for uv_loop_close(), and
 * removes the empty task cgroups kept for reuse (bd_cgroup_release()).
 */
void bd_process_shutdown(void);

/*
 * Whether bd_process_init() starts the spawner (spawner.h), which forks
 * supervisors instead of exec'ing them; default true.  Tests use false to
 * run the exec path.
 */
void bd_process_use_spawner(bool use);

/*
 * Spawns the command under its supervisor.  On success returns 0, sets
 * *out, and exit_cb runs exactly once when the command has exited and its
 * tree is gone (term_signal 0 and exit_code set, or term_signal set).  On
 * failure returns a negative errno from the exec or the set-up before it
 * (-ENOENT: no such program, -EACCES, -ENOEXEC...) and exit_cb never runs.
 * Without opts->started, blocks until the command has been executed, as
 * posix_spawn does; with it, those errors come to opts->started instead
 * (arg is given to both callbacks).  A signal sent with
 * bd_process_kill_tree() before the command runs is sent once it does.
 * The caller frees *out with bd_process_free() after exit_cb (or after a
 * failed start).
 */
int bd_process_spawn(const struct bd_process_options *opts,
    bd_process_exit_cb exit_cb, void *arg, struct bd_process **out);

/*
 * Watches again the supervisor that writes state_path, after a restart of
 * batchd.  Returns 0 and sets *out, after which exit_cb runs exactly once
 * (later, from the loop; at once if the task ended while batchd was away).
 * Returns -ENOENT when there is no state (no file, or a blank state slot:
 * the supervisor never got as far as starting the command), -ESRCH when the supervisor is gone
 * without an outcome (killed, or the machine rebooted: the pid and start
 * time recorded no longer name a live process), or BD_EJSON/BD_EINVALID
 * for a damaged file.
 */
int bd_process_adopt(const char *state_path, bd_process_exit_cb exit_cb,
    void *arg, struct bd_process **out);

/* The command's pid (for logs); 0 until the command runs. */
pid_t bd_process_pid(const struct bd_process *proc);

/*
 * The supervisor's outcome record (CPU times, peak memory, capped
 * streams), valid in and after exit_cb; state is BD_SUPERVISOR_NONE when
 * the supervisor died without one.  Borrowed from proc.
 */
const struct bd_supervisor_record *bd_process_record(
    const struct bd_process *proc);

/*
 * Sends sig to the task's whole tree (its cgroup, or its process group and
 * every process below its supervisor), through the supervisor.  Returns 1
 * when the request was delivered, 0 when the task is gone already.
 */
int bd_process_kill_tree(struct bd_process *proc, int sig);

/*
 * Frees a process whose exit_cb has run (or whose start failed).  One
 * freed earlier is no longer watched, and its supervisor runs on (its
 * state file lets a later batchd adopt it); bd_process_kill_tree() first
 * ends it.
 */
void bd_process_free(struct bd_process *proc);

/*
 * Finds the program of argv0 as execvp would, but with the task's PATH and
 * relative to cwd: a name with a slash is taken relative to cwd, a bare
 * name is searched in path.  Returns a malloc'd path or NULL (with errno
 * ENOENT or EACCES).
 */
char *bd_process_find_program(const char *argv0, const char *cwd,
    const char *path);

#endif
