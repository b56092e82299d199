/* SPDX-License-Identifier: MIT */
/*
 * Task environments.  bd_env keeps insertion order so that `env` inside a
 * task lists variables in a stable order; lookups are linear, which is fine
 * for the few dozen variables a task has.
 */
#include "environment.h"

#include <inttypes.h>
#include <stdio.h>
#include <sys/types.h>
#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

struct bd_env {
	char **names;
	char **values;
	size_t count, cap;
};

struct bd_env *
bd_env_new(void)
{
	return xcalloc(1, sizeof(struct bd_env));
}

void
bd_env_free(struct bd_env *env)
{
	if (env == NULL)
		return;
	for (size_t i = 0; i < env->count; i++) {
		free(env->names[i]);
		free(env->values[i]);
	}
	free(env->names);
	free(env->values);
	free(env);
}

static ssize_t
env_find(const struct bd_env *env, const char *name)
{
	for (size_t i = 0; i < env->count; i++)
		if (strcmp(env->names[i], name) == 0)
			return (ssize_t)i;
	return -1;
}

void
bd_env_set(struct bd_env *env, const char *name, const char *value)
{
	ssize_t i = env_find(env, name);

	if (i >= 0) {
		free(env->values[i]);
		env->values[i] = xstrdup(value);
		return;
	}
	if (env->count == env->cap) {
		env->cap = env->cap ? env->cap * 2 : 32;
		env->names = xreallocarray(env->names, env->cap, sizeof(char *));
		env->values = xreallocarray(env->values, env->cap,
		    sizeof(char *));
	}
	env->names[env->count] = xstrdup(name);
	env->values[env->count++] = xstrdup(value);
}

void
bd_env_unset(struct bd_env *env, const char *name)
{
	ssize_t i = env_find(env, name);

	if (i < 0)
		return;
	free(env->names[i]);
	free(env->values[i]);
	memmove(env->names + i, env->names + i + 1,
	    (env->count - (size_t)i - 1) * sizeof(char *));
	memmove(env->values + i, env->values + i + 1,
	    (env->count - (size_t)i - 1) * sizeof(char *));
	env->count--;
}

const char *
bd_env_get(const struct bd_env *env, const char *name)
{
	ssize_t i = env_find(env, name);

	return i >= 0 ? env->values[i] : NULL;
}

char **
bd_env_envp(const struct bd_env *env)
{
	char **envp = xcalloc(env->count + 1, sizeof(char *));

	for (size_t i = 0; i < env->count; i++)
		envp[i] = xasprintf("%s=%s", env->names[i], env->values[i]);
	return envp;
}

void
bd_env_envp_free(char **envp)
{
	if (envp == NULL)
		return;
	for (char **p = envp; *p != NULL; p++)
		free(*p);
	free(envp);
}

/* Applies a list of environmentSettings on top of env. */
static void
env_apply(struct bd_env *env, const struct bd_name_value_list *list)
{
	for (size_t i = 0; i < list->count; i++)
		bd_env_set(env, list->items[i].name, list->items[i].value);
}

struct bd_env *
bd_env_for_task(const struct bd_node_info *node, const struct bd_job_spec *job,
    const struct bd_task_spec *task, const struct bd_task_dirs *dirs,
    const struct bd_task_user *user)
{
	struct bd_env *env = bd_env_new();
	char *p;
	char reserved[32];

	p = xasprintf("%s/shared", node->root);
	bd_env_set(env, "AZ_BATCH_NODE_SHARED_DIR", p);
	free(p);
	if (node->account_name != NULL)
		bd_env_set(env, "AZ_BATCH_ACCOUNT_NAME", node->account_name);
	if (node->account_url != NULL)
		bd_env_set(env, "AZ_BATCH_ACCOUNT_URL", node->account_url);
	bd_env_set(env, "AZ_BATCH_POOL_ID", node->pool_id);
	bd_env_set(env, "AZ_BATCH_NODE_ID", node->node_id);
	bd_env_set(env, "AZ_BATCH_NODE_IS_DEDICATED",
	    node->is_dedicated ? "true" : "false");
	bd_env_set(env, "AZ_BATCH_NODE_ROOT_DIR", node->root);
	p = xasprintf("%s/startup", node->root);
	bd_env_set(env, "AZ_BATCH_NODE_STARTUP_DIR", p);
	free(p);
	p = xasprintf("%s/startup/wd", node->root);
	bd_env_set(env, "AZ_BATCH_NODE_STARTUP_WORKING_DIR", p);
	free(p);
	p = xasprintf("%s/fsmounts", node->root);
	bd_env_set(env, "AZ_BATCH_NODE_MOUNTS_DIR", p);
	free(p);
	bd_env_set(env, "AZ_BATCH_TASK_DIR", dirs->task_dir);
	bd_env_set(env, "AZ_BATCH_TASK_WORKING_DIR", dirs->wd);
	bd_env_set(env, "AZ_BATCH_CERTIFICATES_DIR", dirs->certs);
	if (task->kind != BD_TASK_KIND_START && job != NULL) {
		bd_env_set(env, "AZ_BATCH_JOB_ID", job->id);
		bd_env_set(env, "AZ_BATCH_TASK_ID", task->id);
		if (job->job_preparation_task != NULL &&
		    task->kind != BD_TASK_KIND_JOB_PREPARATION) {
			p = xasprintf("%s/workitems/%s/job-1/%s", node->root,
			    job->id, job->job_preparation_task->id);
			bd_env_set(env, "AZ_BATCH_JOB_PREP_DIR", p);
			char *wd = xasprintf("%s/wd", p);
			bd_env_set(env, "AZ_BATCH_JOB_PREP_WORKING_DIR", wd);
			free(wd);
			free(p);
		}
	}
	if (task->multi_instance != NULL)
		bd_env_set(env, "AZ_BATCH_TASK_SHARED_DIR", dirs->task_dir);
	/* Real nodes show three names besides the documented one; set all. */
	snprintf(reserved, sizeof(reserved), "%" PRId64,
	    node->reserved_disk_bytes);
	bd_env_set(env, "AZ_BATCH_TASK_RESERVED_EPHEMERAL_DISK_SPACE_BYTES",
	    reserved);
	bd_env_set(env, "AZ_BATCH_RESERVED_EPHEMERAL_DISK_SPACE_BYTES",
	    reserved);
	bd_env_set(env, "AZ_BATCH_RESERVED_DISK_SPACE_BYTES", reserved);
	bd_env_set(env, "AZ_BATCH_OS_RESERVED_EPHEMERAL_DISK_SPACE_BYTES",
	    reserved);
	bd_env_set(env, "AZ_BATCH_TASK_USER", user->name);
	bd_env_set(env, "AZ_BATCH_TASK_USER_IDENTITY", user->identity);
	bd_env_set(env, "HOME", dirs->wd);
	bd_env_set(env, "PWD", dirs->wd);
	bd_env_set(env, "USER", user->name);
	p = xasprintf("%s:%s/shared:%s", BD_ENV_DEFAULT_PATH, node->root,
	    dirs->wd);
	bd_env_set(env, "PATH", p);
	free(p);
	if (job != NULL)
		env_apply(env, &job->common_environment_settings);
	env_apply(env, &task->environment_settings);
	return env;
}

/* Sets name=value unless it is set, so that settings of the task win. */
static void
env_set_new(struct bd_env *env, const char *name, const char *value)
{
	if (bd_env_get(env, name) == NULL)
		bd_env_set(env, name, value);
}

/* Sets the package variable prefix+suffix, as given and lower-cased. */
static void
env_set_app_var(struct bd_env *env, const char *suffix, const char *dir)
{
	char *name = xasprintf("AZ_BATCH_APP_PACKAGE_%s", suffix);
	char *p = name + strlen("AZ_BATCH_APP_PACKAGE_");

	for (char *q = p; *q != '\0'; q++)
		if (*q == '.' || *q == '-' || *q == '#')
			*q = '_';
	env_set_new(env, name, dir);
	for (char *q = p; *q != '\0'; q++)
		if (*q >= 'A' && *q <= 'Z')
			*q = (char)(*q - 'A' + 'a');
	env_set_new(env, name, dir);
	free(name);
}

void
bd_env_add_app_package(struct bd_env *env, const char *application_id,
    const char *version, const char *dir, bool default_version)
{
	char *suffix = xasprintf("%s_%s", application_id, version);

	env_set_app_var(env, suffix, dir);
	if (default_version)
		env_set_app_var(env, application_id, dir);
	free(suffix);
}
