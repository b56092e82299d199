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
	/* Where running tasks are recorded for adoption (adopt.h); NULL:
	   nowhere, tasks end with batchd. */
	const char *adopt_dir;
};

struct bd_assignment_hooks {
	/* Takes n more slots if free; false if not. */
	bool (*reserve)(void *arg, int n);
	/* Gives back n slots. */
	void (*release)(void *arg, int n);
	/* The assignment is over; free it now or later. */
	void (*done)(void *arg, struct bd_assignment *a);
	/* An adopted assignment holds its lease again, or knows it lost it
	   (runs once, before done; optional). */
	void (*settled)(void *arg);
	/* An assignment started ahead (bd_assignment_start_ahead()) is
	   ready to run and waits for slots: the daemon calls
	   bd_assignment_resume() when some are free, or
	   bd_assignment_give_back().  Optional: without it, such an
	   assignment goes back to the queue as one that finds no slot. */
	void (*park)(void *arg, struct bd_assignment *a);
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

/*
 * The same for a message received ahead of a free slot, while short tasks
 * flow (daemon.c): the assignment holds no slot and does what needs none
 * (decode, job, task row, dependencies); then it takes its slots or, when
 * none is free, waits through hooks->park.
 */
void bd_assignment_start_ahead(const struct bd_assignment_env *env,
    struct bd_message *msg, const struct bd_assignment_hooks *hooks,
    struct bd_assignment **out);

/* Whether a was started ahead and holds no slot yet. */
bool bd_assignment_ahead(const struct bd_assignment *a);

/* How long its task ran here until now (ms), or -1 when none started. */
int64_t bd_assignment_run_ms(const struct bd_assignment *a);

/* A parked assignment tries again to take its slots (parks again if not). */
void bd_assignment_resume(struct bd_assignment *a);

/* A parked assignment gives its message back to the queue, visible now. */
void bd_assignment_give_back(struct bd_assignment *a);

/*
 * Takes over the task a previous batchd ran for the message in rec (taken
 * over), after a restart: its lease is renewed at once, and the task is
 * watched again if its supervisor still runs, finished (outputs, exit
 * conditions, report, message deleted) if it ended meanwhile, or given
 * back to the queue if it never started or its supervisor was lost.  The
 * caller reserved one slot, as for bd_assignment_start().
 */
struct bd_adopt_record;
void bd_assignment_adopt(const struct bd_assignment_env *env,
    struct bd_adopt_record *rec, const struct bd_assignment_hooks *hooks,
    struct bd_assignment **out);

enum bd_assignment_stop {
	BD_STOP_REQUEUE,   /* end the task, give it back to the queue */
	BD_STOP_TERMINATE, /* end the task, complete it as terminated */
};

/* Ends a running task early; the assignment then finishes as asked. */
void bd_assignment_stop(struct bd_assignment *a, enum bd_assignment_stop how);

/*
 * The directory of the task a started here (caller frees) and the task's
 * retentionTime, or NULL when no task process started.
 */
char *bd_assignment_task_dir(const struct bd_assignment *a,
    int64_t *retention_ms);

/* Frees an assignment after its done hook ran. */
void bd_assignment_free(struct bd_assignment *a);

#endif
