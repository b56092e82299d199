/* SPDX-License-Identifier: MIT */
#ifndef BD_ENVIRONMENT_H
#define BD_ENVIRONMENT_H

/*
 * A task's process environment, built as an Azure Batch Linux node builds
 * it (reference §3.3): the node's AZ_BATCH_* variables, HOME, USER and
 * PATH, then the job's commonEnvironmentSettings, then the task's
 * environmentSettings on top.  The agent's own environment is not
 * inherited.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "job_spec.h"
#include "layout.h"

struct bd_app_packages;

/* An ordered set of NAME=value; setting a name again replaces its value. */
struct bd_env;

struct bd_env *bd_env_new(void);
void bd_env_free(struct bd_env *env);
void bd_env_set(struct bd_env *env, const char *name, const char *value);
void bd_env_unset(struct bd_env *env, const char *name);
/* The value or NULL; borrowed until the next change. */
const char *bd_env_get(const struct bd_env *env, const char *name);
/* A NULL-terminated "NAME=value" array; caller frees with bd_env_envp_free(). */
char **bd_env_envp(const struct bd_env *env);
void bd_env_envp_free(char **envp);

/* Facts about the node that every task sees. */
struct bd_node_info {
	const char *root;
	const char *pool_id;
	const char *node_id;
	const char *account_name;
	const char *account_url;
	bool is_dedicated;
	int64_t reserved_disk_bytes;
	/* The node's application packages (app_package.h), or NULL when
	   none can be installed; borrowed. */
	struct bd_app_packages *packages;
};

/* Who the task runs as. */
struct bd_task_user {
	const char *name;     /* AZ_BATCH_TASK_USER and USER */
	const char *identity; /* AZ_BATCH_TASK_USER_IDENTITY: PoolNonAdmin, ... */
};

/*
 * The environment of task (any kind) of job (NULL for a start task) on
 * node, with dirs from bd_layout_task_dirs().  Caller frees.
 */
struct bd_env *bd_env_for_task(const struct bd_node_info *node,
    const struct bd_job_spec *job, const struct bd_task_spec *task,
    const struct bd_task_dirs *dirs, const struct bd_task_user *user);

/*
 * Sets the variables of one application package (reference §5, Linux):
 * AZ_BATCH_APP_PACKAGE_<id>_<version> in the case given and lower-cased,
 * with '.', '-' and '#' flattened to '_', both naming dir; with
 * default_version also AZ_BATCH_APP_PACKAGE_<id> in both cases.  A name
 * the task's or job's environmentSettings already set is left alone.
 */
void bd_env_add_app_package(struct bd_env *env, const char *application_id,
    const char *version, const char *dir, bool default_version);

/* The default PATH a task gets before shared dir and wd are appended. */
#define BD_ENV_DEFAULT_PATH \
	"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#endif
