/* SPDX-License-Identifier: MIT */
#ifndef BD_HOUSEKEEPING_H
#define BD_HOUSEKEEPING_H

/*
 * The node's housekeeping (reference §4.4): task directories removed once
 * their task's retentionTime has passed since it completed, and a
 * free-space reserve under the node root below which the node takes no
 * new task.  Both run on a timer and once at start.
 *
 * What is retained is kept in <stateDir>/retention, a journal of
 * "<expiry ms> <directory>" lines appended as tasks end and rewritten
 * when directories go, so a restarted daemon still removes them.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct bd_housekeeping;

struct bd_housekeeping_env {
	uv_loop_t *loop;
	const char *node_root;	/* borrowed; checked for free space */
	const char *state_dir;	/* borrowed */
	int64_t interval_ms;	/* between sweeps and space checks */
	uint64_t reserve_bytes;	/* 0: no reserve */
	/* Whether a task runs in dir now (its directory must stay). */
	bool (*in_use)(void *arg, const char *dir);
	/* The space state changed, or a sweep removed directories. */
	void (*changed)(void *arg);
	void *arg;
};

/*
 * Reads the journal and makes the housekeeper; nothing runs until
 * bd_housekeeping_start().  Returns 0 and *out, or a negative errno with
 * *cause (caller frees).
 */
int bd_housekeeping_new(const struct bd_housekeeping_env *env,
    struct bd_housekeeping **out, char **cause);

/* Checks the space and sweeps now, then every interval. */
void bd_housekeeping_start(struct bd_housekeeping *hk);

/*
 * Records that the task directory dir (copied) ended now and may go after
 * retention_ms (BD_DURATION_INFINITE: never).  An earlier record of the
 * same directory is replaced.
 */
void bd_housekeeping_retain(struct bd_housekeeping *hk, const char *dir,
    int64_t retention_ms);

/* Sweeps expired directories now (if no sweep is under way). */
void bd_housekeeping_sweep(struct bd_housekeeping *hk);

/* Checks the free space now; true when it is below the reserve. */
bool bd_housekeeping_check_space(struct bd_housekeeping *hk);

/*
 * Why the node may not take tasks (free space below the reserve), or NULL;
 * borrowed until the next check.
 */
const char *bd_housekeeping_problem(const struct bd_housekeeping *hk);

/* Free bytes under the node root at the last check (-1: unknown). */
int64_t bd_housekeeping_free_bytes(const struct bd_housekeeping *hk);

/* Task directories kept and not yet removed. */
size_t bd_housekeeping_retained(const struct bd_housekeeping *hk);

/* Changes the reserve (configuration reload); checks the space again. */
void bd_housekeeping_set_reserve(struct bd_housekeeping *hk,
    uint64_t reserve_bytes);

/* Changes the interval of the checks (configuration reload). */
void bd_housekeeping_set_interval(struct bd_housekeeping *hk,
    int64_t interval_ms);

/* Whether a removal is under way (in a worker thread). */
bool bd_housekeeping_busy(const struct bd_housekeeping *hk);

/*
 * Stops the timer and frees the housekeeper once its last removal and
 * handle are done.
 */
void bd_housekeeping_free(struct bd_housekeeping *hk);

#endif
