/* SPDX-License-Identifier: MIT */
#ifndef BD_TASK_SPEC_H
#define BD_TASK_SPEC_H

/*
 * The Azure Batch task model, validated into typed structs.
 *
 * A bd_task_spec describes anything batchd runs as a process: a task
 * (TaskAddParameter), a job manager task, a job preparation task, a job
 * release task or a pool start task.  `kind` says which; fields that a kind
 * does not have in the REST API are left at their defaults and rejected
 * when present in the JSON.
 *
 * Everything is validated here, once: past the parser nothing touches raw
 * JSON.  Strings are owned by the struct and freed by bd_task_spec_free().
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "duration.h" /* BD_DURATION_INFINITE */

struct cJSON;

enum bd_task_kind {
	BD_TASK_KIND_TASK,
	BD_TASK_KIND_JOB_MANAGER,
	BD_TASK_KIND_JOB_PREPARATION,
	BD_TASK_KIND_JOB_RELEASE,
	BD_TASK_KIND_START,
};

/* One name=value pair: environmentSettings, uploadHeaders, metadata. */
struct bd_name_value {
	char *name;
	char *value; /* "" when the JSON omits value */
};

struct bd_name_value_list {
	struct bd_name_value *items;
	size_t count;
};

enum bd_resource_source {
	BD_RESOURCE_HTTP_URL,
	BD_RESOURCE_STORAGE_CONTAINER_URL,
	BD_RESOURCE_AUTO_STORAGE_CONTAINER,
};

struct bd_resource_file {
	enum bd_resource_source source;
	char *url;	      /* httpUrl, storageContainerUrl or the container name */
	char *blob_prefix;    /* NULL when absent (container forms only) */
	char *file_path;      /* relative to wd; NULL = wd itself (container forms) */
	unsigned file_mode;   /* from the octal fileMode; 0770 by default */
	char *identity_reference; /* identityReference.resourceId or NULL */
};

enum bd_upload_condition {
	BD_UPLOAD_TASK_COMPLETION, /* default */
	BD_UPLOAD_TASK_SUCCESS,
	BD_UPLOAD_TASK_FAILURE,
};

struct bd_output_file {
	char *file_pattern;
	char *container_url;	  /* destination.container.containerUrl */
	char *path;		  /* destination.container.path or NULL */
	char *identity_reference; /* or NULL */
	struct bd_name_value_list upload_headers;
	enum bd_upload_condition upload_condition;
};

/* Azure's retentionTime of a task that sets none: 7 days. */
#define BD_TASK_RETENTION_DEFAULT_MS (7LL * 24 * 3600 * 1000)

struct bd_task_constraints {
	int64_t max_wall_clock_ms; /* BD_DURATION_INFINITE by default */
	int64_t retention_ms;	   /* 7 days by default */
	int max_task_retry_count;  /* -1 = unlimited */
	bool has_max_task_retry_count; /* false: inherit the job's value */
};

enum bd_auto_user_scope {
	BD_AUTO_USER_SCOPE_POOL, /* default */
	BD_AUTO_USER_SCOPE_TASK,
};

enum bd_elevation_level {
	BD_ELEVATION_NONADMIN, /* default */
	BD_ELEVATION_ADMIN,
};

struct bd_user_identity {
	char *username; /* a named account; NULL for the auto-user */
	enum bd_auto_user_scope scope;
	enum bd_elevation_level elevation;
	bool has_auto_user; /* autoUser was given explicitly */
};

enum bd_job_action {
	BD_JOB_ACTION_NONE,
	BD_JOB_ACTION_DISABLE,
	BD_JOB_ACTION_TERMINATE,
};

enum bd_dependency_action {
	BD_DEPENDENCY_ACTION_SATISFY,
	BD_DEPENDENCY_ACTION_BLOCK,
};

struct bd_exit_options {
	bool has_job_action;
	enum bd_job_action job_action;
	bool has_dependency_action;
	enum bd_dependency_action dependency_action;
};

struct bd_exit_code_mapping {
	int code;
	struct bd_exit_options options;
};

struct bd_exit_code_range {
	int start, end; /* inclusive */
	struct bd_exit_options options;
};

struct bd_exit_conditions {
	struct bd_exit_code_mapping *exit_codes;
	size_t n_exit_codes;
	struct bd_exit_code_range *exit_code_ranges;
	size_t n_exit_code_ranges;
	bool has_pre_processing_error;
	struct bd_exit_options pre_processing_error;
	bool has_file_upload_error;
	struct bd_exit_options file_upload_error;
	bool has_default;
	struct bd_exit_options default_options;
};

struct bd_task_id_range {
	int64_t start, end; /* inclusive */
};

struct bd_task_dependencies {
	char **task_ids;
	size_t n_task_ids;
	struct bd_task_id_range *task_id_ranges;
	size_t n_task_id_ranges;
};

struct bd_application_package_reference {
	char *application_id;
	char *version; /* NULL = the application's default version */
};

enum bd_container_working_directory {
	BD_CONTAINER_WD_TASK, /* taskWorkingDirectory, default */
	BD_CONTAINER_WD_IMAGE_DEFAULT,
};

struct bd_container_settings {
	char *image_name;
	char *container_run_options; /* or NULL */
	char *registry_server;	     /* or NULL */
	char *registry_username;     /* or NULL */
	char *registry_password;     /* or NULL; a secret */
	enum bd_container_working_directory working_directory;
};

struct bd_multi_instance_settings {
	int number_of_instances; /* default 1 */
	char *coordination_command_line;
	struct bd_resource_file *common_resource_files;
	size_t n_common_resource_files;
};

struct bd_task_spec {
	enum bd_task_kind kind;
	char *id; /* defaults "jobpreparation"/"jobrelease"; "" for a start task */
	char *display_name; /* or NULL */
	char *command_line;

	struct bd_resource_file *resource_files;
	size_t n_resource_files;
	struct bd_output_file *output_files;
	size_t n_output_files;
	struct bd_name_value_list environment_settings;

	struct bd_task_constraints constraints;
	bool has_constraints;
	struct bd_user_identity user_identity;
	struct bd_exit_conditions exit_conditions;
	bool has_exit_conditions;
	struct bd_task_dependencies depends_on;
	bool has_depends_on;
	struct bd_application_package_reference *application_packages;
	size_t n_application_packages;
	struct bd_container_settings *container_settings; /* or NULL */
	struct bd_multi_instance_settings *multi_instance; /* or NULL */
	char *affinity_id; /* or NULL */
	int required_slots; /* default 1 */
	bool authentication_token_job; /* authenticationTokenSettings.access has "job" */

	/* Job preparation and start tasks. */
	bool wait_for_success;			/* default true */
	bool rerun_on_node_reboot_after_success; /* job preparation; default true */
	/* Job manager tasks. */
	bool kill_job_on_completion; /* default true */
	bool run_exclusive;	     /* default true */
	bool allow_low_priority_node; /* default true */
};

/*
 * Parses a task from JSON text of the given kind.  Returns 0 and sets *out
 * (caller frees with bd_task_spec_free()), or returns BD_ETOOBIG (over
 * 1 MiB), BD_EJSON (not a JSON object) or BD_EINVALID (a field is wrong)
 * and sets *cause to "path: reason", e.g.
 * "resourceFiles[2].filePath: must stay inside the working directory"
 * (caller frees).
 */
int bd_task_spec_parse(const char *json, size_t len, enum bd_task_kind kind,
    struct bd_task_spec **out, char **cause);

/*
 * The same from a parsed cJSON object (borrowed).  `path` prefixes every
 * field name in *cause ("jobPreparationTask" gives
 * "jobPreparationTask.commandLine: required"); NULL or "" for none.
 */
int bd_task_spec_from_json(const struct cJSON *obj, enum bd_task_kind kind,
    const char *path, struct bd_task_spec **out, char **cause);

/* Frees a spec and everything it owns; NULL is allowed. */
void bd_task_spec_free(struct bd_task_spec *spec);

/* The kind in words for messages: "task", "job manager task"... */
const char *bd_task_kind_name(enum bd_task_kind kind);

/* What a name/value list holds; it decides the rules for names and values. */
enum bd_name_value_kind {
	BD_NAME_VALUE_ENVIRONMENT, /* no '=' in names; a repeated name: last wins */
	BD_NAME_VALUE_METADATA,	   /* value required; a repeated name: last wins */
	BD_NAME_VALUE_HEADER,	   /* HTTP header names; no line breaks in values */
};

/*
 * Parses the array obj.name of {name, value} objects into *out (which
 * must be empty).  Returns 1 if it was present, 0 if absent, or
 * BD_EINVALID with *cause.  On error *out stays empty.
 */
int bd_name_value_list_from_json(const struct cJSON *obj, const char *path,
    const char *name, enum bd_name_value_kind kind,
    struct bd_name_value_list *out, char **cause);

/* The value for name (compared exactly), or NULL. */
const char *bd_name_value_list_get(const struct bd_name_value_list *list,
    const char *name);

/* Frees what the list owns and leaves it empty. */
void bd_name_value_list_clear(struct bd_name_value_list *list);

/* Lower-case REST names of enum values, for records and logs. */
const char *bd_upload_condition_name(enum bd_upload_condition c);
const char *bd_job_action_name(enum bd_job_action a);
const char *bd_dependency_action_name(enum bd_dependency_action a);

#endif
