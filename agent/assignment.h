/* SPDX-License-Identifier: MIT */
#ifndef BD_ASSIGNMENT_H
#define BD_ASSIGNMENT_H

/*
 * An assignment is one received task message on its way through the node
 * (docs/protocol.md §3, §4, §6):
 *
 *   decode -> job -> task row -> dependencies -> preparation -> claim
 *     -> run (lease renewed) -> report -> delete message
 *
 * Any step may end it early: a bad message goes to the poison queue, a
 * task whose dependencies are not met goes back to the queue for later
 * without holding a slot, a task another node completed is dropped.  A
 * lost lease ends the task's process here and reports nothing.
 */

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "daemon.h"
#include "jobs.h"
#include "source.h"
#include "store.h"

struct bd_assignment;

/* What an assignment borrows from its daemon. */
struct bd_assignment_env {
	uv_loop_t *loop;
	struct bd_http **http;
	struct bd_source *source;
	struct bd_store *store;
	struct bd_jobs *jobs;
	const struct bd_node_info *node;
	struct bd_task_users *users;	/* or NULL: tasks run as batchd */
	const struct bd_daemon_settings *settings;
	struct bd_daemon_stats *stats;
};

struct bd_assignment_hooks {
	/* Takes n more slots if free; false if not. */
	bool (*reserve)(void *arg, int n);
	/* Gives back n slots. */
	void (*release)(void *arg, int n);
	/* The assignment is over; free it now or later. */
	void (*done)(void *arg, struct bd_assignment *a);
	void *arg;
};

/*
 * Starts work on msg (taken over).  The assignment holds one slot from the
 * start (the caller reserved it); it takes or gives back slots through the
 * hooks.  hooks->done runs exactly once.
 */
void bd_assignment_start(const struct bd_assignment_env *env,
    struct bd_message *msg, const struct bd_assignment_hooks *hooks,
    struct bd_assignment **out);

enum bd_assignment_stop {
	BD_STOP_REQUEUE,   /* end the task, give it back to the queue */
	BD_STOP_TERMINATE, /* end the task, complete it as terminated */
};

/* Ends a running task early; the assignment then finishes as asked. */
void bd_assignment_stop(struct bd_assignment *a, enum bd_assignment_stop how);

/* Frees an assignment after its done hook ran. */
void bd_assignment_free(struct bd_assignment *a);

#endif
