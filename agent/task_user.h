/* SPDX-License-Identifier: MIT */
#ifndef BD_TASK_USER_H
#define BD_TASK_USER_H

/*
 * The OS accounts tasks run as (reference §1.5, §3.4).  A task's
 * userIdentity picks one:
 *
 *   (none) / autoUser scope pool, nonadmin  users.poolNonAdmin (_azbatch)
 *   autoUser scope pool, admin              users.poolAdmin (_azbatchadmin)
 *   autoUser scope task, nonadmin           _azbatchtask_<n> (start task:
 *                                           _azbatchtask_start)
 *   autoUser scope task, admin              _azbatchtaskadm_<n> (..._start)
 *   username                                users.accounts[username]
 *
 * Auto-users have the primary group _azbatchgrp; admin ones are also in
 * _azbatchsudogrp, which a sudoers drop-in gives password-less sudo when
 * sudo is installed (systemd/batchd.sysusers names the same accounts).
 * Task-scope users come from a pool: each is held by one task at a time
 * (also across the batchd processes of one machine, by a lock file),
 * and on release every process left with its uid is killed and the
 * task's directory is closed to it (given to root), so the next task that
 * gets the same user finds nothing of the last one's.
 *
 * batchd creates missing groups and users at start (and task-scope ones
 * when first needed) by running groupadd/useradd.  When batchd is not root
 * it cannot: every task runs as batchd's own user, which it logs once.
 *
 * The module also guards the agent's secrets: bd_task_users_guard() checks
 * that the configuration (when it holds credentials), the state directory
 * and the spool are not readable by a task user.
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"
#include "process.h"
#include "task_spec.h"

struct bd_task_users;

/* The task-scope pool's names: prefix + index, or prefix + "start". */
#define BD_TASK_USER_TASK_PREFIX	"_azbatchtask_"
#define BD_TASK_USER_TASK_ADMIN_PREFIX	"_azbatchtaskadm_"
#define BD_TASK_USER_GROUP		"_azbatchgrp"
#define BD_TASK_USER_ADMIN_GROUP	"_azbatchsudogrp"
/* Locks that keep a task-scope user to one batchd of the machine. */
#define BD_TASK_USER_LOCK_DIR		"/run/batchd/task-users"
/* Where the admin group's sudo rule goes, when that directory exists. */
#define BD_TASK_USER_SUDOERS		"/etc/sudoers.d/batchd"

struct bd_task_users_options {
	const char *pool_non_admin;	/* NULL: "_azbatch" */
	const char *pool_admin;		/* NULL: "_azbatchadmin" */
	const struct bd_config_account *accounts; /* borrowed until free */
	size_t n_accounts;
	/* The node root, checked to be reachable by task users; or NULL. */
	const char *node_root;
};

/* The account one task runs as; from bd_task_users_acquire(). */
struct bd_task_account {
	char *name;		/* AZ_BATCH_TASK_USER and USER */
	char *identity;		/* AZ_BATCH_TASK_USER_IDENTITY */
	/* NULL when tasks run as batchd itself; else uid, gid, groups. */
	const struct bd_process_identity *process;
	struct bd_process_identity id;
	gid_t *groups;
	/* Task scope: the index in the pool, -2 for the start task's own
	   user; -1 for other accounts. */
	int pool_index;
	int lock_fd;		/* holds the task-scope user's lock, or -1 */
	bool admin;
};

/*
 * Makes sure the auto-users' groups and accounts, and the configured
 * accounts, exist (as root), or notes that tasks run as batchd itself (not
 * root) and logs that once.  Returns 0 and *out (free with
 * bd_task_users_free()), or a negative errno with *cause (caller frees):
 * a configured systemUser that does not exist, an account whose name is
 * taken by another uid, a useradd that failed.
 */
int bd_task_users_new(const struct bd_task_users_options *o,
    struct bd_task_users **out, char **cause);

/* Frees u (NULL is fine); accounts still held must be released first. */
void bd_task_users_free(struct bd_task_users *u);

/* Whether tasks run as batchd's own user. */
bool bd_task_users_as_self(const struct bd_task_users *u);

/*
 * The label of AZ_BATCH_TASK_USER_IDENTITY for ui: PoolNonAdmin,
 * PoolAdmin, TaskNonAdmin, TaskAdmin, or the username.  Static or
 * borrowed from ui.
 */
const char *bd_task_user_identity_label(const struct bd_user_identity *ui);

/*
 * The account task runs as, by its userIdentity.  u may be NULL (tasks
 * run as batchd itself).  Returns 0 and *out (release with
 * bd_task_users_release()), or a negative errno with *cause (caller
 * frees): an unknown username, a task-scope user that cannot be created.
 */
int bd_task_users_acquire(struct bd_task_users *u,
    const struct bd_task_spec *task, struct bd_task_account **out,
    char **cause);

/*
 * Ends a's use by its task (NULL is fine).  For a task-scope user the
 * processes left with its uid are killed and task_dir (if not NULL) is
 * given to root, before the user can serve another task.
 */
void bd_task_users_release(struct bd_task_users *u, struct bd_task_account *a,
    const char *task_dir);

/*
 * Checks that the agent's secrets are out of the task users' reach: the
 * configuration file when it holds storage credentials (refused: a
 * negative errno and *cause) and, with dirs, the state directory (created
 * 0700 if missing) and the local spool (access for others is removed,
 * with a warning, then checked again).  Nothing to do when tasks run as
 * batchd itself.  0 or a negative errno with *cause.
 */
int bd_task_users_guard(struct bd_task_users *u, const struct bd_config *c,
    bool dirs, char **cause);

/*
 * Gives a task's directories to its account before the command starts,
 * with the access rules of reference §1.5: the task directory and all in
 * it belong to the task's user; the start task's and a job preparation
 * task's directories are readable by every task user (0755), other task
 * directories by their own user only (0700).  walk: everything in the
 * tree; else only the task directory, wd and certs (for a directory that
 * batchd has just made and written nothing into: no walk to pay for).
 * Nothing when a->process is NULL.  0 or a negative errno.
 */
int bd_task_users_own_dir(const struct bd_task_account *a,
    const char *task_dir, enum bd_task_kind kind, bool walk);

/*
 * Takes a directory of a task back for batchd (root, mode unchanged)
 * before batchd writes in it again (a retry's downloads), so the task's
 * user cannot plant links there meanwhile.  0 or a negative errno.
 */
int bd_task_users_reclaim_dir(const struct bd_task_account *a,
    const char *dir);

#endif
