/* SPDX-License-Identifier: MIT */
#ifndef BD_SPAWNER_H
#define BD_SPAWNER_H

/*
 * The spawner: a small copy of batchd, forked while batchd still has one
 * thread, that forks task supervisors on request.  A supervisor forked
 * from it runs the supervisor's code (bd_cmd_supervise()) already loaded,
 * so a task's start costs one fork instead of the exec and dynamic
 * loading of batchd-supervise: that exec was a third of a short task's
 * CPU time.  What the supervisor is and does does not change.
 *
 * The fork is done ahead: a spare, the spawner's child, waits for the
 * next request, answers it itself and becomes that supervisor, while the
 * spawner forks the next spare (spawner.c).
 *
 * The supervisors are the spawner's children; it reaps them.  batchd gets
 * a pidfd for each (which cannot be fooled by a reused pid) and, being a
 * child subreaper above the spawner, inherits them should the spawner die.
 * The spawner ends when batchd closes its end (exits or restarts); the
 * supervisors it forked keep running, as after an exec'd one.
 *
 * Without a spawner (it could not start: more than one thread, no pidfds;
 * it died; a request too large for one message), bd_spawner_spawn() says
 * so and the caller execs batchd-supervise instead.
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * Forks the spawner.  Call before anything starts a thread (libuv's pool,
 * libcurl), after the cgroup set-up: the spawner's cgroup is the
 * supervisors'.  0 or a negative errno (-EBUSY: threads are running;
 * -ENOSYS: no pidfds).
 */
int bd_spawner_start(void);

/* Whether a spawner is running. */
bool bd_spawner_running(void);

/*
 * Forks a supervisor, which runs bd_cmd_supervise() on argv + skip (the
 * whole argv and envp are what ps and /proc show for it) with envp as its
 * environment, report_fd as its descriptor 3, the hold fds open after
 * it, /dev/null on 0 and 1, batchd's stderr on 2, in a session (with a
 * terminal) or process group (without) of its own, with default signal
 * dispositions and nothing blocked.  Blocks for the fork.  Returns the
 * supervisor's pid and sets *pidfd (close-on-exec), or a negative errno:
 * -ENOTCONN without a spawner (it is gone for good then), -EMSGSIZE for a
 * request that does not fit a message (this one only); after either no
 * supervisor runs, and the caller execs one instead.
 */
pid_t bd_spawner_spawn(char *const *argv, size_t skip, char *const *envp,
    int report_fd, const int *hold_fds, size_t n_hold_fds, int *pidfd);

/* Closes batchd's end: the spawner exits. */
void bd_spawner_stop(void);

#endif
