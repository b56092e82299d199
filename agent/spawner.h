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
 * The fork is done ahead, and mostly not at all: a worker, the spawner's
 * child, waits for the next request, which the spawner hands it before it
 * answers batchd with the worker's pid; the worker becomes that supervisor
 * and, once its task is wholly done, waits for the next request again
 * (spawner.c).  A supervisor's pid may therefore serve several tasks one
 * after another: its report pipe's end, not its exit, ends each, and kill
 * requests carry the task's tag (supervisor.h).
 *
 * The supervisors are the spawner's children; it reaps them.  batchd gets
 * a pidfd for each (which cannot be fooled by a reused pid) and, being a
 * child subreaper above the spawner, inherits them should the spawner die.
 * The spawner ends when batchd closes its end (exits or restarts); the
 * supervisors it forked keep running, as after an exec'd one.
 *
 * A request and its reply are apart (bd_spawner_send(),
 * bd_spawner_read_reply()), so that batchd's loop goes on while the
 * spawner forks.  Without a spawner (it could not start: more than one
 * thread, no pidfds; it died; a request too large for one message), the
 * caller execs batchd-supervise instead.
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

/* Whether a spawner is running and takes requests. */
bool bd_spawner_running(void);

/*
 * Asks for a supervisor, which runs bd_cmd_supervise() on argv + skip (the
 * whole argv and envp are what ps and /proc show for it) with envp as its
 * environment, report_fd as its descriptor 3, the hold fds open after
 * it, /dev/null on 0 and 1, batchd's stderr on 2, in a session (with a
 * terminal) or process group (without) of its own, with default signal
 * dispositions and nothing blocked.  Never blocks.  The descriptors are
 * copied into the message: the caller keeps (and closes) its own.
 * Returns 0 when the request went (its reply follows, in request order:
 * bd_spawner_read_reply()), or a negative errno after which no
 * supervisor runs for it and the caller execs one instead: -ENOTCONN
 * without a spawner (gone for good; the replies already queued are still
 * to be read), -EMSGSIZE for a request that does not fit a message or,
 * now, the socket's buffer (this one only).
 */
int bd_spawner_send(char *const *argv, size_t skip, char *const *envp,
    int report_fd, const int *hold_fds, size_t n_hold_fds);

/*
 * Reads the reply to the oldest request not yet answered; wait: blocks
 * for it (a fork away).  Returns 1 with *status the supervisor's pid
 * and *pidfd its pidfd (close-on-exec, the caller's), or *status a
 * negative errno and *pidfd -1: no supervisor runs (-EMSGSIZE: the
 * spawner could not take the request; exec one instead).  Returns 0
 * when no reply is there yet (only without wait); -ENOTCONN when the
 * spawner is gone (exited, or its socket failed): the requests still
 * unanswered were never served, so no supervisor runs for them; call
 * bd_spawner_stop() once bd_spawner_fd() is no longer watched.
 */
int bd_spawner_read_reply(bool wait, int *status, int *pidfd);

/* batchd's end of the socket, to watch for replies; -1 without a spawner. */
int bd_spawner_fd(void);

/* Closes batchd's end: the spawner exits. */
void bd_spawner_stop(void);

#endif
