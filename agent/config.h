/* SPDX-License-Identifier: MIT */
#ifndef BD_CONFIG_H
#define BD_CONFIG_H

/*
 * The node's configuration: one JSON file (docs/configuration.md), read
 * once at start-up into a typed struct bd_config.  Every option is a row
 * of one table, bd_config_options(): its dotted name, type, default,
 * bounds and help.  The loader, `batchd check-config --list` and --show,
 * and the documentation tests all read that table.
 *
 * The file is found in this order: the path given (`--config FILE`),
 * $BATCHD_CONFIG, /etc/batchd/batchd.json when it exists, else no file:
 * built-in defaults, which run a local spool.
 *
 * Errors are reported all at once, one per line, each as
 * "FILE: key.path: reason".  Secrets (account keys, SAS tokens,
 * connection strings) never appear in an error or in bd_config_show().
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "json_field.h"
#include "storage_auth.h"
#include "task_spec.h"

struct cJSON;

/* Where bd_config_load() looks when no path and no $BATCHD_CONFIG is given. */
#define BD_CONFIG_SYSTEM_PATH	"/etc/batchd/batchd.json"
#define BD_CONFIG_ENV		"BATCHD_CONFIG"

/* What an option holds, and so how it is read. */
enum bd_config_type {
	BD_CONFIG_SECTION,	/* an object that holds other options */
	BD_CONFIG_STRING,
	BD_CONFIG_ID,		/* an Azure Batch id */
	BD_CONFIG_PATH,		/* an absolute path, stored normalised */
	BD_CONFIG_URL,		/* an http or https URL */
	BD_CONFIG_INT,
	BD_CONFIG_BOOL,
	BD_CONFIG_DURATION,	/* ISO 8601, stored in milliseconds */
	BD_CONFIG_SIZE,		/* bytes: an integer or a string like "10GiB" */
	BD_CONFIG_ENUM,
	BD_CONFIG_START_TASK,	/* an Azure Batch StartTask object */
	BD_CONFIG_PACKAGES,	/* [{applicationId, version?}] */
	BD_CONFIG_ACCOUNTS,	/* {name: {uid, gid} or {systemUser}} */
};

/* Flags of an option. */
#define BD_CONFIG_SECRET	0x1	/* never shown nor quoted */
#define BD_CONFIG_DERIVED	0x2	/* default_value describes a computed default */

/*
 * One row of the option table.  default_value is the default written as
 * it would be in the file (a JSON literal: "\"PT2M\"", "1", "true"), or,
 * with BD_CONFIG_DERIVED, a description of how it is computed; NULL means
 * unset.  min and max bound integers and sizes (bytes) and durations
 * (milliseconds).  check, for strings, returns a static reason when the
 * value is wrong and NULL when it is right.
 */
struct bd_config_option {
	const char *name;	/* "queue.leaseDuration" */
	enum bd_config_type type;
	int flags;
	const char *default_value;
	int64_t min, max;
	const struct bd_json_enum *values;	/* BD_CONFIG_ENUM */
	const char *(*check)(const char *value);
	size_t offset;		/* of the value in struct bd_config */
	const char *help;	/* one line */
};

enum bd_config_deallocation {
	BD_CONFIG_DEALLOCATE_REQUEUE,		/* default */
	BD_CONFIG_DEALLOCATE_TERMINATE,
	BD_CONFIG_DEALLOCATE_TASK_COMPLETION,
	BD_CONFIG_DEALLOCATE_RETAINED_DATA,
};

/* Which credentials storage gives. */
enum bd_config_storage_kind {
	BD_CONFIG_STORAGE_LOCAL,	/* no storage: the local spool */
	BD_CONFIG_STORAGE_CONNECTION_STRING,
	BD_CONFIG_STORAGE_SHARED_KEY,	/* accountName and accountKey */
	BD_CONFIG_STORAGE_SAS,		/* per-service SAS URLs */
};

/* A named user account that tasks select with userIdentity.username. */
struct bd_config_account {
	char *name;
	char *system_user;	/* an existing OS user, or NULL */
	int64_t uid, gid;	/* -1 with system_user */
	enum bd_elevation_level elevation; /* admin: in the sudo group */
};

/*
 * The configuration the daemon reads.  Every string, list and object is
 * owned by the struct and freed by bd_config_free(); strings of options
 * without a value are NULL.
 */
struct bd_config {
	char *path;		/* the file read, or NULL for built-in defaults */

	char *pool_id;
	char *node_id;
	char *node_root;
	char *state_dir;
	char *spool_dir;
	int64_t task_slots_per_node;
	bool is_dedicated;
	int node_deallocation_option;	/* enum bd_config_deallocation */
	int64_t heartbeat_interval_ms;
	int64_t job_check_interval_ms;

	struct {
		enum bd_config_storage_kind kind;
		char *connection_string;
		char *account_name;
		char *account_key;	/* base64, as given */
		char *endpoint_suffix;
		char *blob_endpoint;
		char *queue_endpoint;
		char *table_endpoint;
		char *blob_sas_url;
		char *queue_sas_url;
		char *table_sas_url;
		/*
		 * The credentials of each service (index enum
		 * bd_storage_service), built from the fields above: one
		 * account shared by the three services, or one per SAS
		 * URL.  NULL for the local spool and for a service without
		 * a SAS URL.  Use bd_config_storage_account().
		 */
		struct bd_storage_account *accounts[3];
	} storage;

	struct {
		char *name;		/* the poison queue is name + "-poison" */
		int64_t poll_min_interval_ms;
		int64_t poll_max_interval_ms;
		int64_t lease_duration_ms;
		int64_t max_dequeue_count;
	} queue;

	struct bd_task_spec *start_task;	/* or NULL */
	struct cJSON *start_task_json;		/* as given, for --show */

	struct {
		struct bd_application_package_reference *items;
		size_t n;
	} application_packages;
	struct {
		char *container;	/* or NULL */
		char *directory;	/* <spoolDir>/applications without
					   a container */
	} application_store;
	int64_t application_cache_max_bytes;	/* 0 = no limit */
	int64_t application_package_max_bytes;	/* unpacked; 0 = no limit */
	int64_t application_package_max_entries; /* 0 = no limit */

	struct {
		int64_t kill_grace_period_ms;
		int64_t stdout_max_bytes;	/* 0 = no limit */
		int64_t stderr_max_bytes;	/* 0 = no limit */
		int64_t default_retention_time_ms;
		int64_t free_space_reserve_bytes;
		bool cgroups;		/* task cgroups when the host allows */
		char *cgroup_dir;	/* a delegated v2 cgroup, or NULL */
		struct {
			int64_t memory_max_bytes;	/* 0 = no limit */
			int64_t pids_max;		/* 0 = no limit */
			int64_t cpu_weight;
		} limits;
	} tasks;

	struct {
		char *pool_non_admin;
		char *pool_admin;
		struct bd_config_account *accounts;
		size_t n_accounts;
	} users;

	struct {
		int64_t max_connections;
		int64_t connect_timeout_ms;
		int64_t stall_timeout_ms;
		char *ca_file;		/* or NULL */
	} http;

	struct {
		int level;		/* enum bd_log_level */
		int format;		/* enum bd_log_format */
	} log;

	struct {
		char *textfile_dir;	/* or NULL */
		int64_t interval_ms;	/* of the textfile */
		char *listen;		/* "HOST:PORT" on loopback, or NULL */
	} metrics;
};

/*
 * The option table, in the order of the documentation; *n gets the number
 * of rows.  Static.
 */
const struct bd_config_option *bd_config_options(size_t *n);

/*
 * The type of o in words with its bounds, for --list and the docs:
 * "integer 1..256", "duration PT10S..P7D", "one of: error, warning, info,
 * debug".  Caller frees.
 */
char *bd_config_option_type(const struct bd_config_option *o);

/*
 * The file bd_config_load() reads: explicit_path when it is not NULL,
 * else $BATCHD_CONFIG when it is set and not empty, else system_path when
 * that exists (or cannot be looked at, so that the read reports why), else
 * NULL for the built-in defaults.  Borrowed from the arguments or the
 * environment.
 */
const char *bd_config_find(const char *explicit_path,
    const char *system_path);

/*
 * Reads the configuration from the file bd_config_find(explicit_path,
 * BD_CONFIG_SYSTEM_PATH) names, or the built-in defaults.  Returns 0 and
 * *out (free with bd_config_free()), or a negative errno or BD_E* code
 * with *cause (caller frees) listing every error, one per line, each
 * "FILE: key.path: reason" (past 100, a last line counts the rest).
 */
int bd_config_load(const char *explicit_path, struct bd_config **out,
    char **cause);

/*
 * The same from text (len bytes, need not end in a NUL), with name as the
 * FILE of the messages and as ->path (NULL: the built-in defaults, when
 * text must be NULL too).
 */
int bd_config_parse(const char *text, size_t len, const char *name,
    struct bd_config **out, char **cause);

/* Frees c; NULL is allowed. */
void bd_config_free(struct bd_config *c);

/*
 * The storage account to use for service, or NULL (local spool, or no SAS
 * URL for it).  Borrowed from c.
 */
const struct bd_storage_account *bd_config_storage_account(
    const struct bd_config *c, enum bd_storage_service service);

/*
 * The effective configuration as indented JSON: every option, defaults
 * filled in, unset ones null, secrets "REDACTED".  Caller frees.
 */
char *bd_config_show(const struct bd_config *c);

#endif
