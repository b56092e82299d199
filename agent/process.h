/* SPDX-License-Identifier: MIT */
#ifndef BD_PROCESS_H
#define BD_PROCESS_H

/*
 * Task processes.  A task's command runs in a session of its own, with its
 * working directory, environment and stdout/stderr files, started with
 * posix_spawn (vfork-fast), or, to run as another user (opts->identity),
 * with fork, the user's groups, gid and uid, then the files opened with
 * that user's rights and exec.  batchd makes itself a child subreaper, so
 * processes that a task double-forks come back to batchd when their parent
 * exits; bd_process_kill_tree() ends the task's session, its process group,
 * every process descended from it and every such orphan.
 *
 * Exits are collected by one SIGCHLD handler on the loop that reaps every
 * child (orphans included) and calls the exit callback of tracked ones.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

struct bd_process;
struct bd_cgroup;

/* Who a task's processes run as. */
struct bd_process_identity {
	uid_t uid;
	gid_t gid;
	const gid_t *groups;	/* supplementary groups, borrowed */
	size_t ngroups;
};

typedef void (*bd_process_exit_cb)(struct bd_process *proc, int exit_code,
    int term_signal, void *arg);

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
};

/*
 * Makes this process a child subreaper and installs the SIGCHLD watcher on
 * loop.  Call once before the first spawn.  0 or a negative errno.
 */
int bd_process_init(uv_loop_t *loop);

/* Stops the SIGCHLD watcher (closing its handle) for uv_loop_close(). */
void bd_process_shutdown(void);

/*
 * Spawns a process.  On success returns 0, sets *out, and exit_cb runs
 * exactly once when the process exits (term_signal 0 and exit_code set,
 * or term_signal set).  On failure returns a negative errno from the
 * exec (-ENOENT: no such program, -EACCES, -ENOEXEC...) and exit_cb never
 * runs.  The caller frees *out with bd_process_free() after exit_cb.
 */
int bd_process_spawn(const struct bd_process_options *opts,
    bd_process_exit_cb exit_cb, void *arg, struct bd_process **out);

pid_t bd_process_pid(const struct bd_process *proc);

/*
 * Sends sig to the task's whole tree: its session and process group, its
 * descendants, and orphans reparented to batchd.  Returns the number of
 * processes signalled.  Safe after the main process has exited.
 */
int bd_process_kill_tree(struct bd_process *proc, int sig);

/* Frees a process whose exit_cb has run. */
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
