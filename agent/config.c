/* SPDX-License-Identifier: MIT */
/*
 * The node configuration: one JSON file read into struct bd_config by one
 * table of options.
 *
 * Each row of config_table names an option by its dotted path, says how
 * to read it, where it lands in struct bd_config, and what it defaults to,
 * written as it would be in the file.  Loading runs in four passes over a
 * fresh struct: every default is read from the table, exactly as a value
 * in the file would be; the file is walked member by member, each member
 * found in the table by its path and read over its default; defaults that
 * depend on other options (nodeId, queue.name) are computed; and the rules
 * that tie options together (one form of storage credentials, poll
 * intervals in order, a store for application packages) are checked.  No
 * pass stops at an error: each error becomes a line of the cause, so one
 * run of `batchd check-config` shows them all.
 *
 * Messages quote no string value but durations and enum names (and
 * member names), so that a secret put in the wrong place is not echoed.
 */
#include "config.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "duration.h"
#include "error.h"
#include "fsutil.h"
#include "log.h"
#include "url.h"
#include "xmalloc.h"

#define CONFIG_MAX_STRING	8192	/* bytes in any string option */
#define CONFIG_MAX_PACKAGES	10	/* Azure's limit for a pool */
#define CONFIG_MAX_ACCOUNTS	100
#define CONFIG_MAX_UID		4294967294LL	/* below (uid_t)-1 */
#define CONFIG_MAX_SIZE		((int64_t)1 << 50)	/* 1 PiB */
#define CONFIG_MAX_SIBLINGS	64	/* bd_json_check_fields() limit */
#define CONFIG_MAX_ERRORS	100	/* lines of one cause */

#define SEC(n)		((int64_t)(n) * 1000)
#define MINUTES(n)	SEC((n) * 60)
#define HOURS(n)	MINUTES((n) * 60)
#define DAYS(n)		HOURS((n) * 24)
#define OFF(field)	offsetof(struct bd_config, field)

static const struct bd_json_enum config_deallocation_values[] = {
	{ "requeue", BD_CONFIG_DEALLOCATE_REQUEUE },
	{ "terminate", BD_CONFIG_DEALLOCATE_TERMINATE },
	{ "taskcompletion", BD_CONFIG_DEALLOCATE_TASK_COMPLETION },
	{ "retaineddata", BD_CONFIG_DEALLOCATE_RETAINED_DATA },
	{ NULL, 0 },
};

static const struct bd_json_enum config_log_levels[] = {
	{ "error", BD_LOG_ERROR },
	{ "warning", BD_LOG_WARNING },
	{ "info", BD_LOG_INFO },
	{ "debug", BD_LOG_DEBUG },
	{ NULL, 0 },
};

static const struct bd_json_enum config_log_formats[] = {
	{ "auto", BD_LOG_FORMAT_AUTO },
	{ "text", BD_LOG_FORMAT_TEXT },
	{ "journal", BD_LOG_FORMAT_JOURNAL },
	{ "json", BD_LOG_FORMAT_JSON },
	{ NULL, 0 },
};

/*
 * Why s is not a valid name of an Azure queue or blob container at most
 * max characters long, or NULL.  Both follow the same rules: lower-case
 * letters, digits and single hyphens, starting and ending with a letter
 * or digit.
 */
static const char *
config_storage_name_reason(const char *s, size_t max, const char *too_long)
{
	size_t i, n = strlen(s);

	if (n < 3 || n > max)
		return too_long;
	for (i = 0; i < n; i++) {
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return "may contain only lower-case letters, digits "
			    "and '-'";
		if (s[i] == '-' && (i == 0 || i == n - 1))
			return "must start and end with a letter or digit";
		if (s[i] == '-' && s[i + 1] == '-')
			return "must not contain \"--\"";
	}
	return NULL;
}

/* Queue names leave room for the "-poison" of the poison queue. */
static const char *
config_check_queue_name(const char *s)
{
	return config_storage_name_reason(s, 56, "must be 3 to 56 characters "
	    "long (the poison queue adds \"-poison\")");
}

static const char *
config_check_container(const char *s)
{
	return config_storage_name_reason(s, 63,
	    "must be 3 to 63 characters long");
}

/* Azure storage account names: 3 to 24 lower-case letters and digits. */
static const char *
config_check_account_name(const char *s)
{
	size_t i, n = strlen(s);

	if (n < 3 || n > 24)
		return "must be 3 to 24 characters long";
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9')))
			return "may contain only lower-case letters and digits";
	return NULL;
}

/* A DNS suffix such as core.windows.net or core.chinacloudapi.cn. */
static const char *
config_check_suffix(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
		    s[i] == '.'))
			return "must be a DNS name such as core.windows.net";
	if (s[0] == '.' || s[i - 1] == '.')
		return "must not start or end with '.'";
	return NULL;
}

/* A POSIX user name as useradd takes it, at most 32 characters. */
static const char *
config_check_user(const char *s)
{
	size_t i;

	if (strlen(s) > 32)
		return "longer than 32 characters";
	if (s[0] == '-' || (s[0] >= '0' && s[0] <= '9'))
		return "must not start with '-' or a digit";
	for (i = 0; s[i] != '\0'; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		    s[i] == '-' || s[i] == '.'))
			return "may contain only letters, digits, '_', '-' "
			    "and '.'";
	return NULL;
}

/*
 * "HOST:PORT" on the loopback interface: 127.0.0.0/8, [::1] or
 * localhost.  Metrics carry nothing secret, but nothing else protects the
 * port, so it is never offered to the network.
 */
static const char *
config_check_listen(const char *s)
{
	const char *colon = strrchr(s, ':');
	unsigned char addr[16];
	char host[64], *end;
	size_t n;
	long port;

	if (colon == NULL)
		return "must be HOST:PORT, such as 127.0.0.1:9464";
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || errno != 0 || port < 1 ||
	    port > 65535)
		return "the port must be a number from 1 to 65535";
	n = (size_t)(colon - s);
	if (n > 1 && s[0] == '[' && s[n - 1] == ']') {
		s++;
		n -= 2;
	}
	if (n == 0 || n >= sizeof(host))
		return "must be HOST:PORT, such as 127.0.0.1:9464";
	memcpy(host, s, n);
	host[n] = '\0';
	if (strcasecmp(host, "localhost") == 0)
		return NULL;
	if (inet_pton(AF_INET, host, addr) == 1)
		return addr[0] == 127 ? NULL :
		    "must be a loopback address (127.0.0.1, [::1], localhost)";
	if (inet_pton(AF_INET6, host, addr) == 1) {
		static const unsigned char loop6[16] = { [15] = 1 };

		return memcmp(addr, loop6, sizeof(loop6)) == 0 ? NULL :
		    "must be a loopback address (127.0.0.1, [::1], localhost)";
	}
	return "the host must be a loopback IP address or localhost";
}

/*
 * The table.  Sections come before the options in them; the order is the
 * order of docs/configuration.md and of --show.
 */
static const struct bd_config_option config_table[] = {
	{ .name = "poolId", .type = BD_CONFIG_ID, .default_value = "\"local\"",
	  .offset = OFF(pool_id),
	  .help = "The pool this node serves; names its task queue and its "
	    "rows in the pool's tables." },
	{ .name = "nodeId", .type = BD_CONFIG_ID, .flags = BD_CONFIG_DERIVED,
	  .default_value = "the host name", .offset = OFF(node_id),
	  .help = "This node's id, unique in the pool." },
	{ .name = "nodeRoot", .type = BD_CONFIG_PATH,
	  .default_value = "\"/mnt/batch/tasks\"", .offset = OFF(node_root),
	  .help = "AZ_BATCH_NODE_ROOT_DIR: task, shared, startup and "
	    "application directories." },
	{ .name = "stateDir", .type = BD_CONFIG_PATH,
	  .default_value = "\"/var/lib/batchd\"", .offset = OFF(state_dir),
	  .help = "Durable state of the agent, kept across restarts." },
	{ .name = "spoolDir", .type = BD_CONFIG_PATH,
	  .default_value = "\"/var/lib/batchd/spool\"",
	  .offset = OFF(spool_dir),
	  .help = "The local spool (queue and tables) used when storage is "
	    "not configured." },
	{ .name = "taskSlotsPerNode", .type = BD_CONFIG_INT,
	  .default_value = "1", .min = 1, .max = 256,
	  .offset = OFF(task_slots_per_node),
	  .help = "Task slots of this node: how many tasks (by requiredSlots) "
	    "run at once." },
	{ .name = "isDedicated", .type = BD_CONFIG_BOOL,
	  .default_value = "true", .offset = OFF(is_dedicated),
	  .help = "AZ_BATCH_NODE_IS_DEDICATED: false for a spot node." },
	{ .name = "nodeDeallocationOption", .type = BD_CONFIG_ENUM,
	  .default_value = "\"requeue\"", .values = config_deallocation_values,
	  .offset = OFF(node_deallocation_option),
	  .help = "What happens to running tasks when the agent is told to "
	    "stop." },
	{ .name = "heartbeatInterval", .type = BD_CONFIG_DURATION,
	  .default_value = "\"PT30S\"", .min = SEC(1), .max = HOURS(1),
	  .offset = OFF(heartbeat_interval_ms),
	  .help = "How often the node rewrites its row in the node table." },
	{ .name = "jobCheckInterval", .type = BD_CONFIG_DURATION,
	  .default_value = "\"PT30S\"", .min = SEC(1), .max = HOURS(1),
	  .offset = OFF(job_check_interval_ms),
	  .help = "How often the jobs of running tasks are read to see "
	    "whether they were terminated." },

	{ .name = "storage", .type = BD_CONFIG_SECTION,
	  .help = "The Azure Storage account of the pool; absent: the local "
	    "spool." },
	{ .name = "storage.connectionString", .type = BD_CONFIG_STRING,
	  .flags = BD_CONFIG_SECRET, .offset = OFF(storage.connection_string),
	  .help = "An Azure Storage connection string." },
	{ .name = "storage.accountName", .type = BD_CONFIG_STRING,
	  .check = config_check_account_name,
	  .offset = OFF(storage.account_name),
	  .help = "The storage account's name (with accountKey)." },
	{ .name = "storage.accountKey", .type = BD_CONFIG_STRING,
	  .flags = BD_CONFIG_SECRET, .offset = OFF(storage.account_key),
	  .help = "The storage account's key, base64 (with accountName)." },
	{ .name = "storage.endpointSuffix", .type = BD_CONFIG_STRING,
	  .default_value = "\"core.windows.net\"", .check = config_check_suffix,
	  .offset = OFF(storage.endpoint_suffix),
	  .help = "DNS suffix of the service endpoints made from "
	    "accountName." },
	{ .name = "storage.blobEndpoint", .type = BD_CONFIG_URL,
	  .offset = OFF(storage.blob_endpoint),
	  .help = "Blob service URL, instead of the one made from "
	    "accountName." },
	{ .name = "storage.queueEndpoint", .type = BD_CONFIG_URL,
	  .offset = OFF(storage.queue_endpoint),
	  .help = "Queue service URL, instead of the one made from "
	    "accountName." },
	{ .name = "storage.tableEndpoint", .type = BD_CONFIG_URL,
	  .offset = OFF(storage.table_endpoint),
	  .help = "Table service URL, instead of the one made from "
	    "accountName." },
	{ .name = "storage.blobSasUrl", .type = BD_CONFIG_URL,
	  .flags = BD_CONFIG_SECRET, .offset = OFF(storage.blob_sas_url),
	  .help = "Blob service URL with an account SAS." },
	{ .name = "storage.queueSasUrl", .type = BD_CONFIG_URL,
	  .flags = BD_CONFIG_SECRET, .offset = OFF(storage.queue_sas_url),
	  .help = "Queue service URL with an account SAS." },
	{ .name = "storage.tableSasUrl", .type = BD_CONFIG_URL,
	  .flags = BD_CONFIG_SECRET, .offset = OFF(storage.table_sas_url),
	  .help = "Table service URL with an account SAS." },

	{ .name = "queue", .type = BD_CONFIG_SECTION,
	  .help = "The pool's task queue and how this node takes tasks from "
	    "it." },
	{ .name = "queue.name", .type = BD_CONFIG_STRING,
	  .flags = BD_CONFIG_DERIVED, .default_value = "<poolId>-tasks",
	  .check = config_check_queue_name, .offset = OFF(queue.name),
	  .help = "The task queue; the poison queue is this name plus "
	    "\"-poison\"." },
	{ .name = "queue.pollMinInterval", .type = BD_CONFIG_DURATION,
	  .default_value = "\"PT0.1S\"", .min = 10, .max = MINUTES(1),
	  .offset = OFF(queue.poll_min_interval_ms),
	  .help = "Shortest wait between polls of an empty queue; the wait "
	    "doubles after each empty poll." },
	{ .name = "queue.pollMaxInterval", .type = BD_CONFIG_DURATION,
	  .default_value = "\"PT30S\"", .min = 100, .max = MINUTES(10),
	  .offset = OFF(queue.poll_max_interval_ms),
	  .help = "Longest wait between polls of an empty queue." },
	{ .name = "queue.leaseDuration", .type = BD_CONFIG_DURATION,
	  .default_value = "\"PT2M\"", .min = SEC(10), .max = DAYS(7),
	  .offset = OFF(queue.lease_duration_ms),
	  .help = "Visibility timeout of a taken message; renewed at half "
	    "this while its task runs." },
	{ .name = "queue.maxDequeueCount", .type = BD_CONFIG_INT,
	  .default_value = "5", .min = 1, .max = 100,
	  .offset = OFF(queue.max_dequeue_count),
	  .help = "Receives of one message before it goes to the poison "
	    "queue." },

	{ .name = "startTask", .type = BD_CONFIG_START_TASK,
	  .offset = OFF(start_task),
	  .help = "An Azure Batch StartTask run when the node starts." },
	{ .name = "applicationPackages", .type = BD_CONFIG_PACKAGES,
	  .offset = OFF(application_packages),
	  .help = "Pool application packages, installed before the start "
	    "task." },
	{ .name = "applicationStore", .type = BD_CONFIG_SECTION,
	  .help = "Where application packages are found." },
	{ .name = "applicationStore.container", .type = BD_CONFIG_STRING,
	  .check = config_check_container,
	  .offset = OFF(application_store.container),
	  .help = "A blob container of the storage account." },
	{ .name = "applicationStore.directory", .type = BD_CONFIG_PATH,
	  .flags = BD_CONFIG_DERIVED,
	  .default_value = "<spoolDir>/applications, without container",
	  .offset = OFF(application_store.directory),
	  .help = "A local directory." },
	{ .name = "applicationCacheMaxBytes", .type = BD_CONFIG_SIZE,
	  .default_value = "10737418240", .min = 0, .max = CONFIG_MAX_SIZE,
	  .offset = OFF(application_cache_max_bytes),
	  .help = "Extracted packages kept under nodeRoot/applications; 0: no "
	    "limit." },
	{ .name = "applicationPackageMaxBytes", .type = BD_CONFIG_SIZE,
	  .default_value = "8589934592", .min = 0, .max = CONFIG_MAX_SIZE,
	  .offset = OFF(application_package_max_bytes),
	  .help = "Unpacked size of one application package; 0: no limit." },
	{ .name = "applicationPackageMaxEntries", .type = BD_CONFIG_INT,
	  .default_value = "50000", .min = 0, .max = 100000000,
	  .offset = OFF(application_package_max_entries),
	  .help = "Files, directories and links in one application package; "
	    "0: no limit." },

	{ .name = "tasks", .type = BD_CONFIG_SECTION,
	  .help = "How tasks run on this node." },
	{ .name = "tasks.killGracePeriod", .type = BD_CONFIG_DURATION,
	  .default_value = "\"PT5S\"", .min = 0, .max = MINUTES(10),
	  .offset = OFF(tasks.kill_grace_period_ms),
	  .help = "From SIGTERM to SIGKILL when a task is ended." },
	{ .name = "tasks.stdoutMaxBytes", .type = BD_CONFIG_SIZE,
	  .default_value = "1073741824", .min = 0, .max = CONFIG_MAX_SIZE,
	  .offset = OFF(tasks.stdout_max_bytes),
	  .help = "Largest stdout.txt of a task; 0: no limit." },
	{ .name = "tasks.stderrMaxBytes", .type = BD_CONFIG_SIZE,
	  .default_value = "1073741824", .min = 0, .max = CONFIG_MAX_SIZE,
	  .offset = OFF(tasks.stderr_max_bytes),
	  .help = "Largest stderr.txt of a task; 0: no limit." },
	{ .name = "tasks.defaultRetentionTime", .type = BD_CONFIG_DURATION,
	  .default_value = "\"P7D\"", .min = 0, .max = BD_DURATION_INFINITE,
	  .offset = OFF(tasks.default_retention_time_ms),
	  .help = "How long a task directory is kept when the task sets no "
	    "constraints.retentionTime." },
	{ .name = "tasks.freeSpaceReserveBytes", .type = BD_CONFIG_SIZE,
	  .default_value = "1073741824", .min = 0, .max = CONFIG_MAX_SIZE,
	  .offset = OFF(tasks.free_space_reserve_bytes),
	  .help = "Free space under nodeRoot below which no new task "
	    "starts." },
	{ .name = "tasks.cgroups", .type = BD_CONFIG_BOOL,
	  .default_value = "true", .offset = OFF(tasks.cgroups),
	  .help = "Run each task in a cgroup of its own when the host allows "
	    "it; false: process groups only." },
	{ .name = "tasks.cgroupDir", .type = BD_CONFIG_PATH,
	  .offset = OFF(tasks.cgroup_dir),
	  .help = "A cgroup v2 directory delegated to batchd, used for task "
	    "cgroups instead of batchd's own cgroup." },
	{ .name = "tasks.limits", .type = BD_CONFIG_SECTION,
	  .help = "Resource limits of each task (its cgroup)." },
	{ .name = "tasks.limits.memoryMaxBytes", .type = BD_CONFIG_SIZE,
	  .default_value = "0", .min = 0, .max = CONFIG_MAX_SIZE,
	  .offset = OFF(tasks.limits.memory_max_bytes),
	  .help = "memory.max of a task; 0: no limit." },
	{ .name = "tasks.limits.pidsMax", .type = BD_CONFIG_INT,
	  .default_value = "4096", .min = 0, .max = 4194304,
	  .offset = OFF(tasks.limits.pids_max),
	  .help = "pids.max of a task; 0: no limit." },
	{ .name = "tasks.limits.cpuWeight", .type = BD_CONFIG_INT,
	  .default_value = "100", .min = 1, .max = 10000,
	  .offset = OFF(tasks.limits.cpu_weight),
	  .help = "cpu.weight of a task." },

	{ .name = "users", .type = BD_CONFIG_SECTION,
	  .help = "The OS accounts tasks run as." },
	{ .name = "users.poolNonAdmin", .type = BD_CONFIG_STRING,
	  .default_value = "\"_azbatch\"", .check = config_check_user,
	  .offset = OFF(users.pool_non_admin),
	  .help = "The account of the pool-scope non-admin auto-user." },
	{ .name = "users.poolAdmin", .type = BD_CONFIG_STRING,
	  .default_value = "\"_azbatchadmin\"", .check = config_check_user,
	  .offset = OFF(users.pool_admin),
	  .help = "The account of the pool-scope admin auto-user." },
	{ .name = "users.accounts", .type = BD_CONFIG_ACCOUNTS,
	  .offset = OFF(users.accounts),
	  .help = "Named accounts for userIdentity.username: name -> {uid, "
	    "gid} or {systemUser}, with elevationLevel." },

	{ .name = "http", .type = BD_CONFIG_SECTION,
	  .help = "The HTTP client (storage, resource and output files)." },
	{ .name = "http.maxConnections", .type = BD_CONFIG_INT,
	  .default_value = "32", .min = 1, .max = 1024,
	  .offset = OFF(http.max_connections),
	  .help = "Transfers on the wire at once." },
	{ .name = "http.connectTimeout", .type = BD_CONFIG_DURATION,
	  .default_value = "\"PT30S\"", .min = SEC(1), .max = MINUTES(10),
	  .offset = OFF(http.connect_timeout_ms),
	  .help = "Longest wait for a connection." },
	{ .name = "http.stallTimeout", .type = BD_CONFIG_DURATION,
	  .default_value = "\"PT1M\"", .min = SEC(1), .max = HOURS(1),
	  .offset = OFF(http.stall_timeout_ms),
	  .help = "A transfer slower than 1 byte/s for this long is aborted "
	    "and retried." },
	{ .name = "http.caFile", .type = BD_CONFIG_PATH,
	  .offset = OFF(http.ca_file),
	  .help = "Extra CA certificates (PEM) to trust." },

	{ .name = "log", .type = BD_CONFIG_SECTION,
	  .help = "The agent's own log on stderr." },
	{ .name = "log.level", .type = BD_CONFIG_ENUM,
	  .default_value = "\"info\"", .values = config_log_levels,
	  .offset = OFF(log.level),
	  .help = "Least severe level logged." },
	{ .name = "log.format", .type = BD_CONFIG_ENUM,
	  .default_value = "\"auto\"", .values = config_log_formats,
	  .offset = OFF(log.format),
	  .help = "auto: journal prefixes under systemd, else text." },

	{ .name = "metrics", .type = BD_CONFIG_SECTION,
	  .help = "Prometheus metrics of the node." },
	{ .name = "metrics.textfileDir", .type = BD_CONFIG_PATH,
	  .offset = OFF(metrics.textfile_dir),
	  .help = "Directory of node_exporter's textfile collector." },
	{ .name = "metrics.interval", .type = BD_CONFIG_DURATION,
	  .default_value = "\"PT15S\"", .min = SEC(1), .max = HOURS(1),
	  .offset = OFF(metrics.interval_ms),
	  .help = "How often the textfile is rewritten." },
	{ .name = "metrics.listen", .type = BD_CONFIG_STRING,
	  .check = config_check_listen, .offset = OFF(metrics.listen),
	  .help = "Loopback HOST:PORT to serve /metrics on." },
};

#define CONFIG_N_OPTIONS (sizeof(config_table) / sizeof(config_table[0]))

/* What one load collects. */
struct config_ctx {
	const char *file;	/* FILE of the messages */
	struct bd_config *c;
	char *errors;		/* lines so far, or NULL */
	size_t n_errors;	/* including those not in errors */
	int rc;			/* of the first error */
	bool seen[CONFIG_N_OPTIONS];	/* a member of that name was met */
	bool set[CONFIG_N_OPTIONS];	/* ... with a value (not null) */
};

const struct bd_config_option *
bd_config_options(size_t *n)
{
	*n = CONFIG_N_OPTIONS;
	return config_table;
}

/* The value of o in c. */
static void *
config_slot(struct bd_config *c, const struct bd_config_option *o)
{
	return (char *)c + o->offset;
}

static const void *
config_cslot(const struct bd_config *c, const struct bd_config_option *o)
{
	return (const char *)c + o->offset;
}

/* The last part of a dotted name. */
static const char *
config_leaf(const char *name)
{
	const char *dot = strrchr(name, '.');

	return dot != NULL ? dot + 1 : name;
}

/* Whether the option called name sits directly in section path ("" = top). */
static bool
config_in_section(const char *name, const char *path)
{
	size_t n = path != NULL ? strlen(path) : 0;

	if (n == 0)
		return strchr(name, '.') == NULL;
	return strncmp(name, path, n) == 0 && name[n] == '.' &&
	    strchr(name + n + 1, '.') == NULL;
}

/* The index of the option called name, or -1. */
static int
config_index(const char *name)
{
	size_t i;

	for (i = 0; i < CONFIG_N_OPTIONS; i++)
		if (strcmp(config_table[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* Whether the file gave a value to the option called name. */
static bool
config_is_set(const struct config_ctx *ctx, const char *name)
{
	int i = config_index(name);

	return i >= 0 && ctx->set[i];
}

/*
 * Adds the line "FILE: msg" to the errors; keeps the first rc.  Past
 * CONFIG_MAX_ERRORS lines they are only counted: a file of a million
 * unknown names should not take minutes to refuse.
 */
static void
config_add_error(struct config_ctx *ctx, int rc, const char *msg)
{
	char *tmp;

	if (ctx->n_errors++ >= CONFIG_MAX_ERRORS)
		return;
	if (ctx->errors == NULL) {
		ctx->errors = xasprintf("%s: %s", ctx->file, msg);
		ctx->rc = rc;
	} else {
		tmp = xasprintf("%s\n%s: %s", ctx->errors, ctx->file, msg);
		free(ctx->errors);
		ctx->errors = tmp;
	}
}

/* Adds the error in cause (consumed), as the getters return it. */
static void
config_add_cause(struct config_ctx *ctx, int rc, char *cause)
{
	config_add_error(ctx, rc, cause != NULL ? cause : bd_strerror(rc));
	free(cause);
}

/* Adds "path.name: reason" as an error; name may be NULL. */
static void
config_errorf(struct config_ctx *ctx, const char *path, const char *name,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
config_errorf(struct config_ctx *ctx, const char *path, const char *name,
    const char *fmt, ...)
{
	va_list ap;
	char *msg, *line;

	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	if (name != NULL)
		line = xasprintf("%s.%s: %s", path, name, msg);
	else
		line = xasprintf("%s: %s", path, msg);
	config_add_error(ctx, BD_EINVALID, line);
	free(line);
	free(msg);
}

/* s without a leading prefix, for texts from modules that name themselves. */
static const char *
config_strip(const char *s, const char *prefix)
{
	size_t n = strlen(prefix);

	return strncmp(s, prefix, n) == 0 ? s + n : s;
}

/* Writes bytes as "10GiB" when a whole number of binary units, else digits. */
static void
config_format_size(int64_t v, char *buf, size_t len)
{
	static const char *const units[] = { "PiB", "TiB", "GiB", "MiB",
	    "KiB" };
	int shift = 50;
	size_t i;

	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++, shift -= 10) {
		if (v != 0 && v % ((int64_t)1 << shift) == 0) {
			snprintf(buf, len, "%lld%s",
			    (long long)(v >> shift), units[i]);
			return;
		}
	}
	snprintf(buf, len, "%lld", (long long)v);
}

/*
 * Parses a size such as "512MiB", "10 GB" or "4096" (binary and decimal
 * units, any case) into *out.  Returns 0, or -1 with *reason.
 */
static int
config_parse_size(const char *s, int64_t *out, const char **reason)
{
	static const struct {
		const char *unit;
		int64_t factor;
	} units[] = {
		{ "", 1 }, { "B", 1 },
		{ "KiB", (int64_t)1 << 10 }, { "MiB", (int64_t)1 << 20 },
		{ "GiB", (int64_t)1 << 30 }, { "TiB", (int64_t)1 << 40 },
		{ "PiB", (int64_t)1 << 50 },
		{ "kB", 1000 }, { "MB", 1000000 }, { "GB", 1000000000 },
		{ "TB", 1000000000000LL }, { "PB", 1000000000000000LL },
	};
	unsigned long long v;
	char *p;
	size_t i;

	if (*s < '0' || *s > '9') {
		*reason = "must be a number of bytes, optionally with a unit "
		    "such as KiB, MiB, GiB or GB";
		return -1;
	}
	errno = 0;
	v = strtoull(s, &p, 10);
	if (errno != 0 || v > (unsigned long long)CONFIG_MAX_SIZE) {
		*reason = "too large";
		return -1;
	}
	while (*p == ' ')
		p++;
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcasecmp(p, units[i].unit) != 0)
			continue;
		if (v > (unsigned long long)CONFIG_MAX_SIZE /
		    (unsigned long long)units[i].factor) {
			*reason = "too large";
			return -1;
		}
		*out = (int64_t)v * units[i].factor;
		return 0;
	}
	*reason = "unknown unit (use B, KiB, MiB, GiB, TiB, kB, MB, GB or TB)";
	return -1;
}

/* Reads a size member: an integer, or a string with a unit. */
static int
config_get_size(const cJSON *parent, const char *path, const char *name,
    const cJSON *item, int64_t *out, char **cause)
{
	const char *reason;

	if (cJSON_IsNumber(item))
		return bd_json_get_int(parent, path, name, 0, 0,
		    CONFIG_MAX_SIZE, out, cause);
	if (!cJSON_IsString(item) || item->valuestring == NULL)
		return bd_json_fail(cause, BD_EINVALID, path, name,
		    "expected a number of bytes or a string such as "
		    "\"10GiB\", not %s", bd_json_type_name(item));
	if (config_parse_size(item->valuestring, out, &reason) != 0)
		return bd_json_fail(cause, BD_EINVALID, path, name, "%s",
		    reason);
	return 1;
}

/* Checks a number against o's bounds; durations and sizes read as such. */
static int
config_bounds(const struct bd_config_option *o, const char *path,
    const char *name, int64_t v, char **cause)
{
	char lo[BD_DURATION_BUFSZ], hi[BD_DURATION_BUFSZ];

	if (v >= o->min && v <= o->max)
		return 0;
	if (o->type == BD_CONFIG_DURATION) {
		bd_duration_format(o->min, lo, sizeof(lo));
		bd_duration_format(o->max, hi, sizeof(hi));
		if (o->max == BD_DURATION_INFINITE)
			return bd_json_fail(cause, BD_EINVALID, path, name,
			    "must be at least %s", lo);
	} else {
		config_format_size(o->min, lo, sizeof(lo));
		config_format_size(o->max, hi, sizeof(hi));
	}
	return bd_json_fail(cause, BD_EINVALID, path, name,
	    "must be between %s and %s", lo, hi);
}

/* Reads a string-like option (string, id, path, URL) into *out. */
static int
config_get_text(const struct bd_config_option *o, const cJSON *parent,
    const char *path, const char *name, char **out, char **cause)
{
	const char *reason = NULL;
	char *s = NULL, *norm;
	size_t n;
	int rc;

	if (o->type == BD_CONFIG_ID)
		rc = bd_json_get_id(parent, path, name, 0, &s, cause);
	else
		rc = bd_json_get_string(parent, path, name, BD_JSON_NONEMPTY,
		    CONFIG_MAX_STRING, &s, cause);
	if (rc <= 0)
		return rc;
	if (o->type == BD_CONFIG_PATH) {
		if (s[0] != '/')
			reason = "must be an absolute path";
		else if (strlen(s) >= PATH_MAX)
			reason = "longer than PATH_MAX";
		else {
			norm = bd_path_normalize(s);
			free(s);
			s = norm;
		}
	} else if (o->type == BD_CONFIG_URL) {
		if (!bd_url_is_http(s))
			reason = "must be an http or https URL";
		else if (!(o->flags & BD_CONFIG_SECRET) &&
		    strpbrk(s, "?#") != NULL)
			reason = "must not have a query (give a SAS as a "
			    "SAS URL)";
		else if (!(o->flags & BD_CONFIG_SECRET)) {
			n = strlen(s);
			while (n > 8 && s[n - 1] == '/')
				s[--n] = '\0';
		}
	}
	if (reason == NULL && o->check != NULL)
		reason = o->check(s);
	if (reason != NULL) {
		free(s);
		return bd_json_fail(cause, BD_EINVALID, path, name, "%s",
		    reason);
	}
	*out = s;
	return 1;
}

/* Whether s is an application id or version: 1-64 of [A-Za-z0-9_.-]. */
static bool
config_app_name_valid(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		if (i >= 64)
			return false;
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		    s[i] == '-' || s[i] == '.'))
			return false;
	}
	return i > 0;
}

/* Reads one item of applicationPackages into r; 0, or -1 after an error. */
static int
config_read_package(struct config_ctx *ctx, const cJSON *item,
    const char *ipath, struct bd_application_package_reference *r)
{
	static const char *const allowed[] = { "applicationId", "version",
	    NULL };
	static const char *const rule = "must be 1 to 64 letters, digits, "
	    "'_', '-' and '.'";
	char *cause = NULL;
	int rc;

	if ((rc = bd_json_check_fields(item, ipath, allowed, NULL, NULL, NULL,
	    &cause)) < 0 ||
	    (rc = bd_json_get_string(item, ipath, "applicationId",
	    BD_JSON_REQUIRED | BD_JSON_NONEMPTY, CONFIG_MAX_STRING,
	    &r->application_id, &cause)) < 0 ||
	    (rc = bd_json_get_string(item, ipath, "version", BD_JSON_NONEMPTY,
	    CONFIG_MAX_STRING, &r->version, &cause)) < 0) {
		config_add_cause(ctx, rc, cause);
		return -1;
	}
	if (!config_app_name_valid(r->application_id)) {
		config_errorf(ctx, ipath, "applicationId", "%s", rule);
		return -1;
	}
	if (r->version != NULL && !config_app_name_valid(r->version)) {
		config_errorf(ctx, ipath, "version", "%s", rule);
		return -1;
	}
	return 0;
}

/* Reads applicationPackages: [{applicationId, version?}]. */
static void
config_read_packages(struct config_ctx *ctx, const cJSON *parent,
    const char *path, const char *name)
{
	struct bd_application_package_reference *refs, *r;
	const cJSON *first, *item;
	char *cause = NULL, *ipath;
	size_t count, i, j, n = 0;
	bool ok;
	int rc;

	rc = bd_json_get_array(parent, path, name, 0, BD_JSON_ITEM_OBJECT,
	    CONFIG_MAX_PACKAGES, &first, &count, &cause);
	if (rc < 0)
		config_add_cause(ctx, rc, cause);
	if (rc <= 0 || count == 0)
		return;
	refs = xcalloc(count, sizeof(*refs));
	for (item = first, i = 0; item != NULL; item = item->next, i++) {
		r = &refs[n];
		ipath = bd_json_path_index(name, i);
		ok = config_read_package(ctx, item, ipath, r) == 0;
		/* Azure takes an application once per pool. */
		for (j = 0; ok && j < n; j++) {
			if (strcasecmp(refs[j].application_id,
			    r->application_id) == 0) {
				config_errorf(ctx, ipath, "applicationId",
				    "given twice");
				ok = false;
			}
		}
		if (ok)
			n++;
		else {
			free(r->application_id);
			free(r->version);
			memset(r, 0, sizeof(*r));
		}
		free(ipath);
	}
	ctx->c->application_packages.items = refs;
	ctx->c->application_packages.n = n;
}

/* Reads one named account of users.accounts into a; 0 or -1. */
static int
config_read_account(struct config_ctx *ctx, const cJSON *m, const char *mpath,
    struct bd_config_account *a)
{
	static const char *const allowed[] = { "uid", "gid", "systemUser",
	    "elevationLevel", NULL };
	static const struct bd_json_enum elevations[] = {
		{ "nonadmin", BD_ELEVATION_NONADMIN },
		{ "admin", BD_ELEVATION_ADMIN },
		{ NULL, 0 },
	};
	char *cause = NULL;
	const char *reason;
	int rc, has_uid = 0, has_gid = 0, elevation = BD_ELEVATION_NONADMIN;

	a->uid = a->gid = -1;
	if ((rc = bd_json_check_fields(m, mpath, allowed, NULL, NULL, NULL,
	    &cause)) < 0 ||
	    (has_uid = bd_json_get_int(m, mpath, "uid", 0, 0, CONFIG_MAX_UID,
	    &a->uid, &cause)) < 0 ||
	    (has_gid = bd_json_get_int(m, mpath, "gid", 0, 0, CONFIG_MAX_UID,
	    &a->gid, &cause)) < 0 ||
	    (rc = bd_json_get_string(m, mpath, "systemUser", BD_JSON_NONEMPTY,
	    CONFIG_MAX_STRING, &a->system_user, &cause)) < 0 ||
	    (rc = bd_json_get_enum(m, mpath, "elevationLevel", 0, elevations,
	    &elevation, &cause)) < 0) {
		config_add_cause(ctx, BD_EINVALID, cause);
		return -1;
	}
	a->elevation = (enum bd_elevation_level)elevation;
	if (a->system_user != NULL) {
		if ((reason = config_check_user(a->system_user)) != NULL)
			config_errorf(ctx, mpath, "systemUser", "%s", reason);
		else if (has_uid || has_gid)
			config_errorf(ctx, mpath, has_uid ? "uid" : "gid",
			    "cannot be combined with systemUser");
		else
			return 0;
	} else if (!has_uid && !has_gid)
		config_errorf(ctx, mpath, NULL,
		    "give uid and gid, or systemUser");
	else if (!has_gid)
		config_errorf(ctx, mpath, "gid", "required with uid");
	else if (!has_uid)
		config_errorf(ctx, mpath, "uid", "required with gid");
	else
		return 0;
	return -1;
}

/* Reads users.accounts: an object of accounts by name. */
static void
config_read_accounts(struct config_ctx *ctx, const cJSON *item,
    const char *path)
{
	struct bd_config *c = ctx->c;
	struct bd_config_account *a;
	const char *reason;
	char *mpath, *shown;
	const cJSON *m, *o;
	size_t n = 0;

	if (!cJSON_IsObject(item)) {
		config_errorf(ctx, path, NULL, "expected an object, not %s",
		    bd_json_type_name(item));
		return;
	}
	for (m = item->child; m != NULL; m = m->next)
		n++;
	if (n > CONFIG_MAX_ACCOUNTS) {
		config_errorf(ctx, path, NULL, "more than %d accounts",
		    CONFIG_MAX_ACCOUNTS);
		return;
	}
	c->users.accounts = xcalloc(n, sizeof(*c->users.accounts));
	for (m = item->child; m != NULL; m = m->next) {
		if ((reason = config_check_user(m->string)) != NULL ||
		    m->string[0] == '\0') {
			shown = bd_json_quote(m->string, 32);
			config_errorf(ctx, path, NULL, "account name %s: %s",
			    shown, reason != NULL ? reason : "empty");
			free(shown);
			continue;
		}
		mpath = bd_json_path(path, m->string);
		for (o = item->child; o != m; o = o->next)
			if (strcmp(o->string, m->string) == 0)
				break;
		if (o != m)
			config_errorf(ctx, mpath, NULL, "duplicate field");
		else if (!cJSON_IsNull(m)) {
			a = &c->users.accounts[c->users.n_accounts];
			if (config_read_account(ctx, m, mpath, a) == 0) {
				a->name = xstrdup(m->string);
				c->users.n_accounts++;
			} else {
				free(a->system_user);
				a->system_user = NULL;
			}
		}
		free(mpath);
	}
}

/*
 * Reads the value item of option o, the member name of parent (whose
 * path is path), over what o holds in ctx->c.
 */
static void
config_read_value(struct config_ctx *ctx, const struct bd_config_option *o,
    const cJSON *parent, const char *path, const char *name,
    const cJSON *item)
{
	struct bd_config *c = ctx->c;
	void *slot = config_slot(c, o);
	struct bd_task_spec *spec = NULL;
	char *cause = NULL, *s = NULL;
	int64_t v = 0;
	bool b;
	int rc = 0, e;

	switch (o->type) {
	case BD_CONFIG_SECTION:
		return;
	case BD_CONFIG_STRING:
	case BD_CONFIG_ID:
	case BD_CONFIG_PATH:
	case BD_CONFIG_URL:
		if ((rc = config_get_text(o, parent, path, name, &s,
		    &cause)) > 0) {
			free(*(char **)slot);
			*(char **)slot = s;
		}
		break;
	case BD_CONFIG_INT:
		if ((rc = bd_json_get_int(parent, path, name, 0, o->min, o->max,
		    &v, &cause)) > 0)
			*(int64_t *)slot = v;
		break;
	case BD_CONFIG_DURATION:
	case BD_CONFIG_SIZE:
		rc = o->type == BD_CONFIG_DURATION ?
		    bd_json_get_duration(parent, path, name, 0, &v, &cause) :
		    config_get_size(parent, path, name, item, &v, &cause);
		if (rc > 0 && (rc = config_bounds(o, path, name, v,
		    &cause)) == 0)
			*(int64_t *)slot = v;
		break;
	case BD_CONFIG_BOOL:
		if ((rc = bd_json_get_bool(parent, path, name, 0, &b,
		    &cause)) > 0)
			*(bool *)slot = b;
		break;
	case BD_CONFIG_ENUM:
		if ((rc = bd_json_get_enum(parent, path, name, 0, o->values, &e,
		    &cause)) > 0)
			*(int *)slot = e;
		break;
	case BD_CONFIG_START_TASK:
		s = bd_json_path(path, name);
		rc = bd_task_spec_from_json(item, BD_TASK_KIND_START, s, &spec,
		    &cause);
		free(s);
		if (rc == 0) {
			c->start_task = spec;
			c->start_task_json = cJSON_Duplicate(item, true);
		}
		break;
	case BD_CONFIG_PACKAGES:
		config_read_packages(ctx, parent, path, name);
		break;
	case BD_CONFIG_ACCOUNTS:
		s = bd_json_path(path, name);
		config_read_accounts(ctx, item, s);
		free(s);
		break;
	}
	if (rc < 0)
		config_add_cause(ctx, rc, cause);
}

/* Reports the unknown member name of section path, with a likely meaning. */
static void
config_unknown(struct config_ctx *ctx, const char *path, const char *name)
{
	const char *siblings[CONFIG_MAX_SIBLINGS + 1], *elsewhere = NULL;
	const char *also[2] = { name, NULL }, *leaf;
	char *why = NULL, *cause = NULL;
	size_t i, n = 0;
	cJSON *probe;

	/* Past the errors shown, only the count matters. */
	if (ctx->n_errors >= CONFIG_MAX_ERRORS) {
		ctx->n_errors++;
		return;
	}
	for (i = 0; i < CONFIG_N_OPTIONS; i++) {
		leaf = config_leaf(config_table[i].name);
		if (config_in_section(config_table[i].name, path)) {
			if (n < CONFIG_MAX_SIBLINGS)
				siblings[n++] = leaf;
		} else if (elsewhere == NULL && strcasecmp(leaf, name) == 0)
			elsewhere = config_table[i].name;
	}
	siblings[n] = NULL;
	if (elsewhere != NULL)
		why = xasprintf("did you mean %s?", elsewhere);
	/* bd_json_check_fields() words it, with its did-you-mean. */
	probe = cJSON_CreateObject();
	cJSON_AddNullToObject(probe, name);
	if (bd_json_check_fields(probe, path, siblings, NULL,
	    elsewhere != NULL ? also : NULL, why, &cause) == 0)
		/* It lets "additionalProperties": null pass; this may not. */
		cause = xasprintf("%s%s%s: unknown field", path,
		    *path != '\0' ? "." : "", name);
	config_add_cause(ctx, BD_EINVALID, cause);
	cJSON_Delete(probe);
	free(why);
}

/* Reads every member of obj, the section path ("" for the top). */
static void
config_walk(struct config_ctx *ctx, const cJSON *obj, const char *path)
{
	const struct bd_config_option *o;
	const cJSON *m;
	char *full;
	int i;

	for (m = obj->child; m != NULL; m = m->next) {
		if (m->string == NULL)
			continue;
		full = bd_json_path(path, m->string);
		if ((i = config_index(full)) < 0)
			config_unknown(ctx, path, m->string);
		else if (ctx->seen[i])
			config_errorf(ctx, full, NULL, "duplicate field");
		else {
			o = &config_table[i];
			ctx->seen[i] = true;
			/* null counts as absent, as everywhere in batchd. */
			ctx->set[i] = !cJSON_IsNull(m);
			if (ctx->set[i] && o->type != BD_CONFIG_SECTION)
				config_read_value(ctx, o, obj, path, m->string,
				    m);
			else if (ctx->set[i] && !cJSON_IsObject(m))
				config_errorf(ctx, full, NULL, "expected an "
				    "object, not %s", bd_json_type_name(m));
			else if (ctx->set[i])
				config_walk(ctx, m, full);
		}
		free(full);
	}
}

/* The section part of an option name, as a new string ("" at the top). */
static char *
config_section_of(const char *name)
{
	const char *dot = strrchr(name, '.');

	return dot != NULL ? xstrndup(name, (size_t)(dot - name)) :
	    xstrdup("");
}

/*
 * Fills every default from the table, read as a value in a file would be;
 * a default the reader refuses is a bug in the table, and shows as an
 * error like any other.
 */
static void
config_defaults(struct config_ctx *ctx)
{
	const struct bd_config_option *o;
	cJSON *holder, *v;
	char *section;
	size_t i;

	for (i = 0; i < CONFIG_N_OPTIONS; i++) {
		o = &config_table[i];
		if (o->default_value == NULL || (o->flags & BD_CONFIG_DERIVED))
			continue;
		if ((v = cJSON_Parse(o->default_value)) == NULL) {
			config_errorf(ctx, o->name, NULL, "built-in default "
			    "is not JSON");
			continue;
		}
		holder = cJSON_CreateObject();
		cJSON_AddItemToObject(holder, config_leaf(o->name), v);
		section = config_section_of(o->name);
		config_read_value(ctx, o, holder, section, config_leaf(o->name),
		    v);
		free(section);
		cJSON_Delete(holder);
	}
}

/* The host name made into an Azure Batch id: the part before the first dot. */
static char *
config_host_node_id(void)
{
	char host[256];
	size_t i, n;

	if (gethostname(host, sizeof(host)) != 0)
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	n = strcspn(host, ".");
	if (n > BD_JSON_MAX_ID)
		n = BD_JSON_MAX_ID;
	host[n] = '\0';
	for (i = 0; i < n; i++)
		if (!((host[i] >= 'a' && host[i] <= 'z') ||
		    (host[i] >= 'A' && host[i] <= 'Z') ||
		    (host[i] >= '0' && host[i] <= '9') || host[i] == '_'))
			host[i] = '-';
	return xstrdup(n > 0 ? host : "localhost");
}

/* Computes the defaults that depend on other options. */
static void
config_derive(struct config_ctx *ctx)
{
	struct bd_config *c = ctx->c;
	const char *reason;
	char *name, *p, *shown;

	if (c->node_id == NULL)
		c->node_id = config_host_node_id();
	if (c->application_store.container == NULL &&
	    c->application_store.directory == NULL && c->spool_dir != NULL)
		c->application_store.directory = bd_path_join(c->spool_dir,
		    "applications");
	if (c->queue.name == NULL && c->pool_id != NULL) {
		name = xasprintf("%s-tasks", c->pool_id);
		for (p = name; *p != '\0'; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
		if ((reason = config_check_queue_name(name)) != NULL) {
			shown = bd_json_quote(name, 80);
			config_errorf(ctx, "queue.name", NULL, "the default "
			    "%s, made from poolId, is not a valid queue name "
			    "(%s); set queue.name", shown, reason);
			free(shown);
			free(name);
		} else
			c->queue.name = name;
	}
}

/*
 * Options of each form of storage credentials; NULL ends each list.
 * endpointSuffix is in none: it has a default, which --show prints, and
 * it only matters with accountName.
 */
static const char *const config_key_form[] = {
	"storage.accountName", "storage.accountKey", "storage.blobEndpoint",
	"storage.queueEndpoint", "storage.tableEndpoint", NULL,
};
static const char *const config_sas_form[] = {
	"storage.blobSasUrl", "storage.queueSasUrl", "storage.tableSasUrl",
	NULL,
};

/* The first option of list that the file sets, or NULL. */
static const char *
config_first_set(const struct config_ctx *ctx, const char *const *list)
{
	for (; *list != NULL; list++)
		if (config_is_set(ctx, *list))
			return *list;
	return NULL;
}

/* Reports every option of list set in the file beside option other. */
static int
config_exclude(struct config_ctx *ctx, const char *const *list,
    const char *other)
{
	int n = 0;

	for (; *list != NULL; list++) {
		if (!config_is_set(ctx, *list))
			continue;
		config_errorf(ctx, *list, NULL, "cannot be combined with %s; "
		    "give one form of credentials: connectionString, "
		    "accountName with accountKey, or SAS URLs", other);
		n++;
	}
	return n;
}

/* Builds the account of the connection string form. */
static void
config_storage_connection_string(struct config_ctx *ctx)
{
	struct bd_config *c = ctx->c;
	struct bd_storage_account *a = NULL;
	const char *name = "storage.connectionString";
	char *cause = NULL;

	if (bd_storage_account_parse(c->storage.connection_string, &a,
	    &cause) != 0) {
		config_errorf(ctx, name, NULL, "%s",
		    config_strip(cause, "connection string: "));
		free(cause);
		return;
	}
	if (a->key == NULL && a->sas == NULL)
		config_errorf(ctx, name, NULL, "has neither AccountKey nor "
		    "SharedAccessSignature");
	else if (a->queue_endpoint == NULL || a->table_endpoint == NULL)
		config_errorf(ctx, name, NULL, "gives no %s endpoint (add "
		    "AccountName or %s)", a->queue_endpoint == NULL ?
		    "queue" : "table", a->queue_endpoint == NULL ?
		    "QueueEndpoint" : "TableEndpoint");
	else {
		c->storage.accounts[BD_STORAGE_BLOB] = a;
		c->storage.accounts[BD_STORAGE_QUEUE] = a;
		c->storage.accounts[BD_STORAGE_TABLE] = a;
		return;
	}
	bd_storage_account_free(a);
}

/* Builds the account of the accountName and accountKey form. */
static void
config_storage_shared_key(struct config_ctx *ctx)
{
	static const char *const svc[3] = { "blob", "queue", "table" };
	struct bd_config *c = ctx->c;
	struct bd_storage_account *a = NULL;
	const char *given[3] = { c->storage.blob_endpoint,
	    c->storage.queue_endpoint, c->storage.table_endpoint };
	char *eps[3], *cause = NULL;
	unsigned char *key = NULL;
	size_t key_len = 0;
	bool key_ok = false;
	int i, rc;

	if (c->storage.account_key != NULL) {
		key_ok = bd_storage_unbase64(c->storage.account_key, &key,
		    &key_len) == 0 && key_len > 0;
		free(key);
		if (!key_ok)
			config_errorf(ctx, "storage.accountKey", NULL,
			    "not valid base64");
	}
	/* An option that is set but missing was refused already. */
	if (c->storage.account_name == NULL) {
		if (!config_is_set(ctx, "storage.accountName"))
			config_errorf(ctx, "storage.accountName", NULL,
			    "required with %s", config_first_set(ctx,
			    config_key_form + 1));
		return;
	}
	if (c->storage.account_key == NULL) {
		if (!config_is_set(ctx, "storage.accountKey"))
			config_errorf(ctx, "storage.accountKey", NULL,
			    "required with storage.accountName");
		return;
	}
	if (!key_ok)
		return;
	for (i = 0; i < 3; i++)
		eps[i] = given[i] != NULL ? xstrdup(given[i]) :
		    xasprintf("https://%s.%s.%s", c->storage.account_name,
		    svc[i], c->storage.endpoint_suffix);
	rc = bd_storage_account_new(c->storage.account_name,
	    c->storage.account_key, eps[0], eps[1], eps[2], &a, &cause);
	for (i = 0; i < 3; i++)
		free(eps[i]);
	if (rc != 0) {
		config_errorf(ctx, "storage", NULL, "%s", cause);
		free(cause);
		return;
	}
	for (i = 0; i < 3; i++)
		c->storage.accounts[i] = a;
}

/* Builds one account per SAS URL of the SAS form. */
static void
config_storage_sas(struct config_ctx *ctx)
{
	static const char letters[3] = { 'b', 'q', 't' };
	struct bd_config *c = ctx->c;
	const char *urls[3] = { c->storage.blob_sas_url,
	    c->storage.queue_sas_url, c->storage.table_sas_url };
	struct bd_storage_account *a;
	struct bd_sas *s;
	char *cause = NULL, *why, *shown;
	int i;

	for (i = 0; i < 3; i++) {
		if (urls[i] == NULL) {
			if (i != BD_STORAGE_BLOB &&
			    !config_is_set(ctx, config_sas_form[i]))
				config_errorf(ctx, config_sas_form[i], NULL,
				    "required with SAS URLs (the node uses the "
				    "queue and table services)");
			continue;
		}
		if (bd_sas_parse(urls[i], &s, &cause) != 0) {
			config_errorf(ctx, config_sas_form[i], NULL, "%s",
			    config_strip(cause, "SAS URL: "));
			free(cause);
			cause = NULL;
			continue;
		}
		if (s->services != NULL && strchr(s->services,
		    letters[i]) == NULL) {
			shown = bd_json_quote(s->services, 8);
			config_errorf(ctx, config_sas_form[i], NULL, "the "
			    "account SAS does not cover this service (ss=%s)",
			    shown);
			free(shown);
		} else if ((why = bd_sas_explain(s, NULL, time(NULL))) !=
		    NULL) {
			config_errorf(ctx, config_sas_form[i], NULL, "%s", why);
			free(why);
		} else if (bd_storage_account_new(NULL, NULL,
		    i == BD_STORAGE_BLOB ? s->base : NULL,
		    i == BD_STORAGE_QUEUE ? s->base : NULL,
		    i == BD_STORAGE_TABLE ? s->base : NULL, &a, &cause) != 0) {
			config_errorf(ctx, config_sas_form[i], NULL, "%s",
			    config_strip(cause, "connection string: "));
			free(cause);
			cause = NULL;
		} else {
			a->sas = xstrdup(s->query);
			c->storage.accounts[i] = a;
		}
		bd_sas_free(s);
	}
}

/*
 * Decides the form of storage credentials: at most one form may be given,
 * and the one given must be complete.
 */
static void
config_check_storage(struct config_ctx *ctx)
{
	struct bd_config *c = ctx->c;
	const char *key, *sas;

	key = config_first_set(ctx, config_key_form);
	sas = config_first_set(ctx, config_sas_form);
	if (config_is_set(ctx, "storage.connectionString")) {
		c->storage.kind = BD_CONFIG_STORAGE_CONNECTION_STRING;
		if (config_exclude(ctx, config_key_form,
		    "storage.connectionString") +
		    config_exclude(ctx, config_sas_form,
		    "storage.connectionString") == 0 &&
		    c->storage.connection_string != NULL)
			config_storage_connection_string(ctx);
	} else if (key != NULL) {
		c->storage.kind = BD_CONFIG_STORAGE_SHARED_KEY;
		if (config_exclude(ctx, config_sas_form,
		    config_is_set(ctx, "storage.accountKey") ?
		    "storage.accountKey" : key) == 0)
			config_storage_shared_key(ctx);
	} else if (sas != NULL) {
		c->storage.kind = BD_CONFIG_STORAGE_SAS;
		config_storage_sas(ctx);
	} else
		c->storage.kind = BD_CONFIG_STORAGE_LOCAL;
}

/* The rules that tie options together. */
static void
config_check_rules(struct config_ctx *ctx)
{
	struct bd_config *c = ctx->c;
	char a[BD_DURATION_BUFSZ];

	config_check_storage(ctx);

	if (c->queue.poll_min_interval_ms > c->queue.poll_max_interval_ms) {
		bd_duration_format(c->queue.poll_max_interval_ms, a,
		    sizeof(a));
		config_errorf(ctx, "queue.pollMinInterval", NULL, "must not be "
		    "longer than queue.pollMaxInterval (%s)", a);
	}

	if (c->application_store.container != NULL &&
	    c->application_store.directory != NULL)
		config_errorf(ctx, "applicationStore.directory", NULL,
		    "cannot be combined with applicationStore.container");
	else if (c->application_store.container != NULL &&
	    c->storage.kind == BD_CONFIG_STORAGE_LOCAL)
		config_errorf(ctx, "applicationStore.container", NULL, "needs "
		    "storage (with the local spool, use "
		    "applicationStore.directory)");
	else if (c->application_store.container != NULL &&
	    c->storage.kind == BD_CONFIG_STORAGE_SAS &&
	    c->storage.blob_sas_url == NULL)
		config_errorf(ctx, "applicationStore.container", NULL, "needs "
		    "storage.blobSasUrl");
}

/* Frees the storage accounts, each once. */
static void
config_free_accounts(struct bd_config *c)
{
	int i, j;

	for (i = 0; i < 3; i++) {
		for (j = 0; j < i; j++)
			if (c->storage.accounts[j] == c->storage.accounts[i])
				break;
		if (j == i)
			bd_storage_account_free(c->storage.accounts[i]);
	}
	memset(c->storage.accounts, 0, sizeof(c->storage.accounts));
}

void
bd_config_free(struct bd_config *c)
{
	const struct bd_config_option *o;
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < CONFIG_N_OPTIONS; i++) {
		o = &config_table[i];
		switch (o->type) {
		case BD_CONFIG_STRING:
		case BD_CONFIG_ID:
		case BD_CONFIG_PATH:
		case BD_CONFIG_URL:
			free(*(char **)config_slot(c, o));
			break;
		default:
			break;
		}
	}
	config_free_accounts(c);
	bd_task_spec_free(c->start_task);
	cJSON_Delete(c->start_task_json);
	for (i = 0; i < c->application_packages.n; i++) {
		free(c->application_packages.items[i].application_id);
		free(c->application_packages.items[i].version);
	}
	free(c->application_packages.items);
	for (i = 0; i < c->users.n_accounts; i++) {
		free(c->users.accounts[i].name);
		free(c->users.accounts[i].system_user);
	}
	free(c->users.accounts);
	free(c->path);
	free(c);
}

int
bd_config_parse(const char *text, size_t len, const char *name,
    struct bd_config **out, char **cause)
{
	struct config_ctx ctx;
	cJSON *root = NULL;
	char *why = NULL, *more;
	int rc;

	*out = NULL;
	if (cause != NULL)
		*cause = NULL;
	memset(&ctx, 0, sizeof(ctx));
	ctx.file = name != NULL ? name : "built-in defaults";
	ctx.c = xcalloc(1, sizeof(*ctx.c));
	if (name != NULL)
		ctx.c->path = xstrdup(name);

	config_defaults(&ctx);
	if (text != NULL) {
		if ((rc = bd_json_parse(text, len, &root, &why)) != 0)
			config_add_cause(&ctx, rc, why);
		else
			config_walk(&ctx, root, "");
	}
	/* A file that is not JSON has nothing more to check. */
	if (text == NULL || root != NULL) {
		config_derive(&ctx);
		config_check_rules(&ctx);
	}
	cJSON_Delete(root);
	if (ctx.errors != NULL) {
		if (ctx.n_errors > CONFIG_MAX_ERRORS) {
			more = xasprintf("%s\n%s: %zu more errors", ctx.errors,
			    ctx.file, ctx.n_errors - CONFIG_MAX_ERRORS);
			free(ctx.errors);
			ctx.errors = more;
		}
		bd_config_free(ctx.c);
		if (cause != NULL)
			*cause = ctx.errors;
		else
			free(ctx.errors);
		return ctx.rc;
	}
	*out = ctx.c;
	return 0;
}

const char *
bd_config_find(const char *explicit_path, const char *system_path)
{
	const char *env;

	if (explicit_path != NULL)
		return explicit_path;
	if ((env = getenv(BD_CONFIG_ENV)) != NULL && *env != '\0')
		return env;
	if (system_path != NULL &&
	    (access(system_path, F_OK) == 0 || errno != ENOENT))
		return system_path;
	return NULL;
}

int
bd_config_load(const char *explicit_path, struct bd_config **out,
    char **cause)
{
	const char *path = bd_config_find(explicit_path, BD_CONFIG_SYSTEM_PATH);
	char *text = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	if (cause != NULL)
		*cause = NULL;
	if (path == NULL)
		return bd_config_parse(NULL, 0, NULL, out, cause);
	if ((rc = bd_read_file(path, BD_JSON_MAX_DOCUMENT, &text,
	    &len)) != 0) {
		if (cause != NULL)
			*cause = xasprintf("%s: %s", path, rc == BD_ETOOBIG ?
			    "larger than 1 MiB" : bd_strerror(rc));
		return rc;
	}
	rc = bd_config_parse(text, len, path, out, cause);
	free(text);
	return rc;
}

const struct bd_storage_account *
bd_config_storage_account(const struct bd_config *c,
    enum bd_storage_service service)
{
	if ((unsigned)service > BD_STORAGE_TABLE)
		return NULL;
	return c->storage.accounts[service];
}

char *
bd_config_option_type(const struct bd_config_option *o)
{
	char lo[BD_DURATION_BUFSZ], hi[BD_DURATION_BUFSZ], *s, *tmp;
	const char *secret = (o->flags & BD_CONFIG_SECRET) ? ", secret" : "";
	size_t i;

	switch (o->type) {
	case BD_CONFIG_SECTION:
		return xstrdup("object");
	case BD_CONFIG_STRING:
		return xasprintf("string%s", secret);
	case BD_CONFIG_ID:
		return xstrdup("id");
	case BD_CONFIG_PATH:
		return xstrdup("path");
	case BD_CONFIG_URL:
		return xasprintf("URL%s", secret);
	case BD_CONFIG_INT:
		return xasprintf("integer %lld..%lld", (long long)o->min,
		    (long long)o->max);
	case BD_CONFIG_BOOL:
		return xstrdup("boolean");
	case BD_CONFIG_DURATION:
		bd_duration_format(o->min, lo, sizeof(lo));
		bd_duration_format(o->max, hi, sizeof(hi));
		return xasprintf("duration %s..%s", lo,
		    o->max == BD_DURATION_INFINITE ? "unlimited" : hi);
	case BD_CONFIG_SIZE:
		config_format_size(o->min, lo, sizeof(lo));
		config_format_size(o->max, hi, sizeof(hi));
		return xasprintf("size %s..%s", lo, hi);
	case BD_CONFIG_ENUM:
		s = xstrdup("one of:");
		for (i = 0; o->values[i].name != NULL; i++) {
			tmp = xasprintf("%s%s %s", s, i > 0 ? "," : "",
			    o->values[i].name);
			free(s);
			s = tmp;
		}
		return s;
	case BD_CONFIG_START_TASK:
		return xstrdup("StartTask");
	case BD_CONFIG_PACKAGES:
		return xstrdup("array");
	case BD_CONFIG_ACCOUNTS:
		return xstrdup("object");
	}
	return xstrdup("?");
}

/*
 * Replaces, in a copy of a start task, what may be secret: every member
 * whose name says password, and the signature of every SAS URL.
 */
static void
config_redact_json(cJSON *item)
{
	cJSON *m;
	char *r;

	for (m = item->child; m != NULL; m = m->next) {
		if (cJSON_IsString(m) && m->valuestring != NULL) {
			if (m->string != NULL &&
			    strcasestr(m->string, "password") != NULL)
				r = xstrdup("REDACTED");
			else
				r = bd_url_redact(m->valuestring);
			cJSON_SetValuestring(m, r);
			free(r);
		} else
			config_redact_json(m);
	}
}

/* The value of option o in c as JSON for --show. */
static cJSON *
config_show_value(const struct bd_config *c, const struct bd_config_option *o)
{
	const void *slot = config_cslot(c, o);
	char buf[BD_DURATION_BUFSZ];
	const struct bd_config_account *a;
	cJSON *v, *item;
	size_t i;

	switch (o->type) {
	case BD_CONFIG_SECTION:
		return cJSON_CreateObject();
	case BD_CONFIG_STRING:
	case BD_CONFIG_ID:
	case BD_CONFIG_PATH:
	case BD_CONFIG_URL:
		if (*(char *const *)slot == NULL)
			return cJSON_CreateNull();
		return cJSON_CreateString((o->flags & BD_CONFIG_SECRET) ?
		    "REDACTED" : *(char *const *)slot);
	case BD_CONFIG_INT:
	case BD_CONFIG_SIZE:
		return cJSON_CreateNumber((double)*(const int64_t *)slot);
	case BD_CONFIG_BOOL:
		return cJSON_CreateBool(*(const bool *)slot);
	case BD_CONFIG_DURATION:
		bd_duration_format(*(const int64_t *)slot, buf, sizeof(buf));
		return cJSON_CreateString(buf);
	case BD_CONFIG_ENUM:
		for (i = 0; o->values[i].name != NULL; i++)
			if (o->values[i].value == *(const int *)slot)
				return cJSON_CreateString(o->values[i].name);
		return cJSON_CreateNull();
	case BD_CONFIG_START_TASK:
		if (c->start_task_json == NULL)
			return cJSON_CreateNull();
		v = cJSON_Duplicate(c->start_task_json, true);
		config_redact_json(v);
		return v;
	case BD_CONFIG_PACKAGES:
		if (c->application_packages.n == 0)
			return cJSON_CreateNull();
		v = cJSON_CreateArray();
		for (i = 0; i < c->application_packages.n; i++) {
			item = cJSON_CreateObject();
			cJSON_AddStringToObject(item, "applicationId",
			    c->application_packages.items[i].application_id);
			if (c->application_packages.items[i].version != NULL)
				cJSON_AddStringToObject(item, "version",
				    c->application_packages.items[i].version);
			cJSON_AddItemToArray(v, item);
		}
		return v;
	case BD_CONFIG_ACCOUNTS:
		if (c->users.n_accounts == 0)
			return cJSON_CreateNull();
		v = cJSON_CreateObject();
		for (i = 0; i < c->users.n_accounts; i++) {
			a = &c->users.accounts[i];
			item = cJSON_AddObjectToObject(v, a->name);
			if (a->system_user != NULL)
				cJSON_AddStringToObject(item, "systemUser",
				    a->system_user);
			else {
				cJSON_AddNumberToObject(item, "uid",
				    (double)a->uid);
				cJSON_AddNumberToObject(item, "gid",
				    (double)a->gid);
			}
			cJSON_AddStringToObject(item, "elevationLevel",
			    a->elevation == BD_ELEVATION_ADMIN ? "admin" :
			    "nonadmin");
		}
		return v;
	}
	return cJSON_CreateNull();
}

char *
bd_config_show(const struct bd_config *c)
{
	cJSON *root = cJSON_CreateObject(), *parent;
	char *section, *p, *next, *text, *out;
	size_t i;

	for (i = 0; i < CONFIG_N_OPTIONS; i++) {
		/* Sections come first in the table, so each parent exists. */
		parent = root;
		section = config_section_of(config_table[i].name);
		for (p = section; *p != '\0'; p = next) {
			if ((next = strchr(p, '.')) != NULL)
				*next++ = '\0';
			else
				next = p + strlen(p);
			parent = cJSON_GetObjectItemCaseSensitive(parent, p);
		}
		free(section);
		cJSON_AddItemToObject(parent, config_leaf(config_table[i].name),
		    config_show_value(c, &config_table[i]));
	}
	text = cJSON_Print(root);
	cJSON_Delete(root);
	out = xstrdup(text);
	cJSON_free(text);
	return out;
}
