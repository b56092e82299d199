/* SPDX-License-Identifier: MIT */
#ifndef BD_CGROUP_H
#define BD_CGROUP_H

/*
 * Task cgroups.  Each task attempt runs in a cgroup of its own under
 * batchd's delegated subtree, with memory, pids and CPU weight limits;
 * the cgroup is how batchd finds, kills and measures the task's whole
 * tree, whatever its processes did to their session or parent.
 *
 * bd_cgroup_setup() decides once per process where task cgroups live: a
 * delegated cgroup v2 subtree; on a hybrid host, the v2 hierarchy for
 * membership and kill plus the v1 controllers for the limits; or none, when
 * neither can be used, in which case every function below accepts a NULL
 * cgroup and does nothing, and callers fall back to process groups and a
 * sweep of descendants.
 *
 * A cgroup is named by the caller (unique per task attempt on the node) so
 * that a process started later (the task's supervisor, or batchd after a
 * restart) can open it again by name.
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct bd_cgroup;
struct bd_config;

struct bd_cgroup_limits {
	int64_t memory_max;	/* bytes; 0: no limit */
	int64_t pids_max;	/* processes; 0: no limit */
	int cpu_weight;		/* 1..10000 (v2's scale); 0: the default */
};

struct bd_cgroup_stats {
	int64_t memory_peak;	/* bytes; -1 when unknown */
	int64_t cpu_user_usec;	/* -1 when unknown */
	int64_t cpu_system_usec;
	int64_t oom_kills;	/* processes the OOM killer ended in it */
};

/* Where task cgroups live (see above). */
enum bd_cgroup_mode {
	BD_CGROUP_MODE_NONE,
	BD_CGROUP_MODE_V2,	/* a delegated cgroup v2 subtree */
	BD_CGROUP_MODE_HYBRID,	/* v2 for membership and kill, v1 for limits */
};

/*
 * The node's choices, for before bd_cgroup_setup(): enabled false makes
 * the mode none (the configuration turned cgroups off; logged as the
 * reason), and lim (copied) becomes bd_cgroup_node_limits().  Without a
 * call, cgroups are on and the limits are all 0 (none).
 */
void bd_cgroup_configure(bool enabled, const struct bd_cgroup_limits *lim);

/*
 * For before bd_cgroup_setup(): dir (an absolute path in the cgroup v2
 * hierarchy; NULL or "": none) is a cgroup delegated to batchd, used in
 * the v2 mode in place of batchd's own cgroup (tasks.cgroupDir): for a
 * host whose batchd cgroup is not delegated in v2 (a hybrid host, a
 * systemd without Delegate=), and for tests of the v2 mode.  Controllers
 * it lacks only mean limits that are not applied.  0 or -EINVAL.
 */
int bd_cgroup_configure_dir(const char *dir);

/*
 * For before bd_cgroup_setup() in a process that only joins and opens the
 * task cgroups the agent made (a task's supervisor): setup then takes the
 * agent's layout as it finds it, and moves no process (itself or any
 * other) and enables no controller.
 */
void bd_cgroup_configure_joiner(void);

/* The limits given to bd_cgroup_configure(); static. */
const struct bd_cgroup_limits *bd_cgroup_node_limits(void);

/* The mode bd_cgroup_setup() chose, and its name ("v2", "hybrid", "none"). */
enum bd_cgroup_mode bd_cgroup_mode(void);
const char *bd_cgroup_mode_name(enum bd_cgroup_mode mode);

/*
 * Finds where task cgroups can live and says once in the log which mode it
 * chose and why.  Idempotent.  Returns 0 (no cgroups is a mode, not an
 * error) or a negative errno for a broken invariant.
 */
int bd_cgroup_setup(void);

/*
 * bd_cgroup_configure() from the configuration's tasks.cgroups and
 * tasks.limits, then bd_cgroup_setup().  Returns what that returns.
 */
int bd_cgroup_setup_config(const struct bd_config *c);

/* Whether bd_cgroup_setup() found somewhere to put task cgroups. */
bool bd_cgroup_available(void);

/*
 * Creates the cgroup called name (a file-name-safe word) with lim, or
 * takes an empty one bd_cgroup_release() kept (it keeps the name it was
 * made with: see bd_cgroup_name()); its statistics count from now.  Sets
 * *out to NULL and returns 0 when cgroups are not available.  Else 0 or a
 * negative errno.  Caller ends it with bd_cgroup_release(),
 * bd_cgroup_destroy() or bd_cgroup_free().
 */
int bd_cgroup_create(const char *name, const struct bd_cgroup_limits *lim,
    struct bd_cgroup **out);

/* Opens the existing cgroup called name (after a restart); -ENOENT if gone. */
int bd_cgroup_open(const char *name, struct bd_cgroup **out);

/* The name cg was created with; borrowed. */
const char *bd_cgroup_name(const struct bd_cgroup *cg);

/* Its directory in the v2 hierarchy (membership, kill); borrowed. */
const char *bd_cgroup_path(const struct bd_cgroup *cg);

/* Moves process pid (0: the caller) into cg in every hierarchy. */
int bd_cgroup_join(struct bd_cgroup *cg, pid_t pid);

/*
 * For a child created by clone3() with CLONE_INTO_CGROUP into the
 * directory bd_cgroup_open_dir() opened, between the clone and its exec:
 * joins cg's v1 hierarchies (hybrid mode; nothing in v2 mode) by moving
 * the calling thread, its only one.  Unlike bd_cgroup_join(), which moves
 * a whole process, this takes no system-wide lock (such a move waited for
 * an RCU grace period: 15 ms on a loaded host).  Uses only system calls
 * and snprintf, so a child of a threaded parent may call it.  0 or a
 * negative errno.
 */
int bd_cgroup_join_thread_v1(const struct bd_cgroup *cg);

/*
 * An O_DIRECTORY descriptor of cg's v2 directory, for clone3()'s
 * CLONE_INTO_CGROUP.  Caller closes it.  A descriptor or a negative errno.
 */
int bd_cgroup_open_dir(struct bd_cgroup *cg);

/*
 * Sends sig to every process in cg; with SIGKILL, uses cgroup.kill where
 * the kernel has it.  Returns the number signalled or a negative errno.
 */
int bd_cgroup_signal(const struct bd_cgroup *cg, int sig);

/*
 * Whether no process is left in cg.  Once a read found it empty, it stays
 * so without reading again until this handle joins a process or opens
 * its directory (only batchd puts processes in; an empty cgroup has none
 * to fork).  A process put in through another handle (a supervisor's) is
 * not seen then: ask only after whoever else holds it is done.  A spare
 * is read again before bd_cgroup_create() hands it out.
 */
bool bd_cgroup_empty(struct bd_cgroup *cg);

/* Peak memory, CPU time and OOM kills so far.  0 or a negative errno. */
int bd_cgroup_stats(struct bd_cgroup *cg, struct bd_cgroup_stats *out);

/*
 * Done with cg: when it is empty, kept for a later bd_cgroup_create() in
 * this process (a few at most), else removed as bd_cgroup_destroy() does.
 * NULL is fine.
 */
void bd_cgroup_release(struct bd_cgroup *cg);

/* Removes the cgroups bd_cgroup_release() kept (at the end of a process). */
void bd_cgroup_drop_spares(void);

/* What bd_cgroup_sweep() does with a task cgroup. */
enum bd_cgroup_sweep_action {
	BD_CGROUP_KEEP,		/* in use: left alone */
	BD_CGROUP_REMOVE,	/* stale: removed if no process is in it */
	BD_CGROUP_KILL,		/* stale, and what runs in it has no one
				   watching it: killed, then removed */
};

/* Says what to do with the task cgroup called name. */
typedef enum bd_cgroup_sweep_action (*bd_cgroup_stale_fn)(const char *name,
    void *arg);

/*
 * Removes task cgroups left behind by an earlier batchd (killed before it
 * could remove them): every one stale() says to remove that holds no
 * process, and every one it says to kill, after killing what runs in it
 * (cgroup.kill; waits up to a second for the processes to go).  A cgroup
 * that still holds a process afterwards stays.  Returns how many were
 * removed; *killed (may be NULL) gets how many were killed.
 */
int bd_cgroup_sweep(bd_cgroup_stale_fn stale, void *arg, int *killed);

/* Removes cg's directories (it must be empty) and frees it; NULL is fine. */
void bd_cgroup_destroy(struct bd_cgroup *cg);

/* Frees the handle, leaving the cgroup in place; NULL is fine. */
void bd_cgroup_free(struct bd_cgroup *cg);

#endif
