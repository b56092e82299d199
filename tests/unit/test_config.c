/* SPDX-License-Identifier: MIT */
/*
 * Tests for config.c: the option table, the defaults, every kind of
 * option with a good value and the exact reason for a bad one, that all
 * errors of a file come out at once, that secrets never do, and the order
 * in which the file is looked for.  JSON in these tests is written with
 * single quotes, which dq() turns into double quotes.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "duration.h"
#include "error.h"
#include "fsutil.h"
#include "log.h"
#include "unit.h"
#include "xmalloc.h"

/* s with every ' turned into ", so that tests read better.  Caller frees. */
static char *
dq(const char *s)
{
	char *out = xstrdup(s), *p;

	for (p = out; *p != '\0'; p++)
		if (*p == '\'')
			*p = '"';
	return out;
}

/* Parses json (single-quoted) as file "f.json"; fails the test on error. */
static struct bd_config *
parse_ok(const char *json)
{
	struct bd_config *c = NULL;
	char *text = dq(json), *cause = NULL;
	int rc;

	rc = bd_config_parse(text, strlen(text), "f.json", &c, &cause);
	if (rc != 0)
		UNIT_FAIL("%s: rc %d: %s", text, rc, cause ? cause : "(none)");
	ASSERT_NULL(cause);
	ASSERT_NOT_NULL(c);
	free(text);
	return c;
}

/* Parses json that must fail; returns the cause (caller frees). */
static char *
parse_bad(const char *json)
{
	struct bd_config *c = NULL;
	char *text = dq(json), *cause = NULL;
	int rc;

	rc = bd_config_parse(text, strlen(text), "f.json", &c, &cause);
	if (rc == 0)
		UNIT_FAIL("%s: accepted", text);
	ASSERT(rc < 0);
	ASSERT_NULL(c);
	ASSERT_NOT_NULL(cause);
	free(text);
	return cause;
}

/* json must fail with exactly the one line "f.json: want". */
static void
expect_error(const char *json, const char *want)
{
	char *cause = parse_bad(json), *line = xasprintf("f.json: %s", want);

	ASSERT_STR_EQ(cause, line);
	free(line);
	free(cause);
}

/* json must fail with a cause that has the line "f.json: want" in it. */
static void
expect_error_line(const char *json, const char *want)
{
	char *cause = parse_bad(json), *line = xasprintf("f.json: %s", want);
	size_t n = strlen(line);
	const char *p;

	for (p = cause; p != NULL; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == '\0'))
			break;
	if (p == NULL)
		UNIT_FAIL("no line \"%s\" in:\n%s", line, cause);
	free(line);
	free(cause);
}

/* The number of lines of s. */
static size_t
count_lines(const char *s)
{
	size_t n = 1;

	for (; *s != '\0'; s++)
		if (*s == '\n')
			n++;
	return n;
}

TEST(table)
{
	const struct bd_config_option *opts, *o;
	char *section, *type;
	const char *dot;
	size_t i, j, n;
	bool found;

	opts = bd_config_options(&n);
	ASSERT(n > 40);
	for (i = 0; i < n; i++) {
		o = &opts[i];
		ASSERT(o->help != NULL && o->help[0] != '\0');
		for (j = 0; j < i; j++)
			if (strcmp(opts[j].name, o->name) == 0)
				UNIT_FAIL("%s is in the table twice", o->name);
		/* Every section is a row before the options in it. */
		if ((dot = strrchr(o->name, '.')) != NULL) {
			section = xstrndup(o->name, (size_t)(dot - o->name));
			found = false;
			for (j = 0; j < i; j++)
				if (strcmp(opts[j].name, section) == 0 &&
				    opts[j].type == BD_CONFIG_SECTION)
					found = true;
			if (!found)
				UNIT_FAIL("%s: no section %s before it",
				    o->name, section);
			free(section);
		}
		if (o->type == BD_CONFIG_ENUM)
			ASSERT_NOT_NULL(o->values);
		if (o->type == BD_CONFIG_INT || o->type == BD_CONFIG_SIZE ||
		    o->type == BD_CONFIG_DURATION)
			ASSERT(o->min <= o->max);
		type = bd_config_option_type(o);
		ASSERT(type[0] != '\0');
		free(type);
	}
}

TEST(option_type)
{
	const struct bd_config_option *opts;
	size_t i, n;
	char *t;

	opts = bd_config_options(&n);
	for (i = 0; i < n; i++) {
		t = bd_config_option_type(&opts[i]);
		if (strcmp(opts[i].name, "taskSlotsPerNode") == 0)
			ASSERT_STR_EQ(t, "integer 1..256");
		else if (strcmp(opts[i].name, "queue.leaseDuration") == 0)
			ASSERT_STR_EQ(t, "duration PT10S..P7D");
		else if (strcmp(opts[i].name, "tasks.defaultRetentionTime") == 0)
			ASSERT_STR_EQ(t, "duration PT0S..unlimited");
		else if (strcmp(opts[i].name, "tasks.stdoutMaxBytes") == 0)
			ASSERT_STR_EQ(t, "size 0..1PiB");
		else if (strcmp(opts[i].name, "log.level") == 0)
			ASSERT_STR_EQ(t, "one of: error, warning, info, debug");
		else if (strcmp(opts[i].name, "storage.accountKey") == 0)
			ASSERT_STR_EQ(t, "string, secret");
		free(t);
	}
}

TEST(defaults)
{
	struct bd_config *c = NULL;
	char *cause = NULL;

	ASSERT_INT_EQ(bd_config_parse(NULL, 0, NULL, &c, &cause), 0);
	ASSERT_NULL(cause);
	ASSERT_NULL(c->path);
	ASSERT_STR_EQ(c->pool_id, "local");
	ASSERT_NOT_NULL(c->node_id);
	ASSERT(c->node_id[0] != '\0' && strchr(c->node_id, '.') == NULL);
	ASSERT_STR_EQ(c->node_root, "/mnt/batch/tasks");
	ASSERT_STR_EQ(c->state_dir, "/var/lib/batchd");
	ASSERT_STR_EQ(c->spool_dir, "/var/lib/batchd/spool");
	ASSERT_INT_EQ(c->task_slots_per_node, 1);
	ASSERT(c->is_dedicated);
	ASSERT_INT_EQ(c->node_deallocation_option,
	    BD_CONFIG_DEALLOCATE_REQUEUE);
	ASSERT_INT_EQ(c->heartbeat_interval_ms, 30000);
	ASSERT_INT_EQ(c->job_check_interval_ms, 30000);
	ASSERT_INT_EQ(c->storage.kind, BD_CONFIG_STORAGE_LOCAL);
	ASSERT_NULL(c->storage.connection_string);
	ASSERT_STR_EQ(c->storage.endpoint_suffix, "core.windows.net");
	ASSERT_NULL(bd_config_storage_account(c, BD_STORAGE_QUEUE));
	ASSERT_STR_EQ(c->queue.name, "local-tasks");
	ASSERT_INT_EQ(c->queue.poll_min_interval_ms, 100);
	ASSERT_INT_EQ(c->queue.poll_max_interval_ms, 30000);
	ASSERT_INT_EQ(c->queue.lease_duration_ms, 120000);
	ASSERT_INT_EQ(c->queue.max_dequeue_count, 5);
	ASSERT_NULL(c->start_task);
	ASSERT_INT_EQ(c->application_packages.n, 0);
	ASSERT_NULL(c->application_store.container);
	ASSERT_STR_EQ(c->application_store.directory,
	    "/var/lib/batchd/spool/applications");
	ASSERT_INT_EQ(c->application_cache_max_bytes, (int64_t)10 << 30);
	ASSERT_INT_EQ(c->application_package_max_bytes, (int64_t)8 << 30);
	ASSERT_INT_EQ(c->application_package_max_entries, 50000);
	ASSERT_INT_EQ(c->tasks.kill_grace_period_ms, 5000);
	ASSERT_INT_EQ(c->tasks.stdout_max_bytes, (int64_t)1 << 30);
	ASSERT_INT_EQ(c->tasks.stderr_max_bytes, (int64_t)1 << 30);
	ASSERT_INT_EQ(c->tasks.default_retention_time_ms,
	    7LL * 24 * 3600 * 1000);
	ASSERT_INT_EQ(c->tasks.free_space_reserve_bytes, (int64_t)1 << 30);
	ASSERT_INT_EQ(c->tasks.limits.memory_max_bytes, 0);
	ASSERT_INT_EQ(c->tasks.limits.pids_max, 4096);
	ASSERT_INT_EQ(c->tasks.limits.cpu_weight, 100);
	ASSERT(c->tasks.cgroups);
	ASSERT_STR_EQ(c->users.pool_non_admin, "_azbatch");
	ASSERT_INT_EQ(c->users.n_accounts, 0);
	ASSERT_INT_EQ(c->http.max_connections, 32);
	ASSERT_INT_EQ(c->http.connect_timeout_ms, 30000);
	ASSERT_INT_EQ(c->http.stall_timeout_ms, 60000);
	ASSERT_NULL(c->http.ca_file);
	ASSERT_INT_EQ(c->log.level, BD_LOG_INFO);
	ASSERT_INT_EQ(c->log.format, BD_LOG_FORMAT_AUTO);
	ASSERT_NULL(c->metrics.textfile_dir);
	ASSERT_NULL(c->metrics.listen);
	bd_config_free(c);

	/* An empty file and an empty storage section are the same. */
	c = parse_ok("{}");
	ASSERT_STR_EQ(c->path, "f.json");
	ASSERT_STR_EQ(c->queue.name, "local-tasks");
	bd_config_free(c);
	c = parse_ok("{'storage': {}, 'queue': null, 'startTask': null}");
	ASSERT_INT_EQ(c->storage.kind, BD_CONFIG_STORAGE_LOCAL);
	bd_config_free(c);
	bd_config_free(NULL);
}

TEST(values)
{
	struct bd_config *c;

	c = parse_ok("{'poolId': 'Render-Pool', 'nodeId': 'node_7', "
	    "'nodeRoot': '/srv//batch/./tasks/', 'stateDir': '/srv/state', "
	    "'spoolDir': '/srv/spool', 'taskSlotsPerNode': 256, "
	    "'isDedicated': false, 'nodeDeallocationOption': 'TaskCompletion', "
	    "'heartbeatInterval': 'PT1M', 'jobCheckInterval': 'PT5S', "
	    "'queue': {'pollMinInterval': 'PT0.5S', 'pollMaxInterval': 'PT1M', "
	    "'leaseDuration': 'P7D', 'maxDequeueCount': 1}, "
	    "'applicationPackages': [{'applicationId': 'blender', "
	    "'version': '2.80-daily'}, {'applicationId': 'ffmpeg'}], "
	    "'applicationStore': {'directory': '/srv/apps'}, "
	    "'applicationCacheMaxBytes': '20GiB', "
	    "'tasks': {'killGracePeriod': 'PT0S', 'stdoutMaxBytes': 0, "
	    "'stderrMaxBytes': '10 MB', 'defaultRetentionTime': "
	    "'P10675199DT2H48M5.4775807S', 'freeSpaceReserveBytes': '512MiB', "
	    "'limits': {'memoryMaxBytes': '4 gib', 'pidsMax': 1000, "
	    "'cpuWeight': 10000}}, "
	    "'users': {'poolNonAdmin': 'batch', 'poolAdmin': 'boss', "
	    "'accounts': {"
	    "'alice': {'uid': 1500, 'gid': 1500, 'elevationLevel': 'admin'}, "
	    "'svc': {'systemUser': 'nobody'}}}, "
	    "'http': {'maxConnections': 1, 'connectTimeout': 'PT10M', "
	    "'stallTimeout': 'PT1S', 'caFile': '/etc/ssl/x.pem'}, "
	    "'log': {'level': 'DEBUG', 'format': 'json'}, "
	    "'metrics': {'textfileDir': '/var/lib/node_exporter', "
	    "'listen': '[::1]:9464'}}");
	ASSERT_STR_EQ(c->pool_id, "Render-Pool");
	ASSERT_STR_EQ(c->node_id, "node_7");
	ASSERT_STR_EQ(c->node_root, "/srv/batch/tasks");
	ASSERT_INT_EQ(c->task_slots_per_node, 256);
	ASSERT(!c->is_dedicated);
	ASSERT_INT_EQ(c->node_deallocation_option,
	    BD_CONFIG_DEALLOCATE_TASK_COMPLETION);
	ASSERT_INT_EQ(c->heartbeat_interval_ms, 60000);
	ASSERT_INT_EQ(c->job_check_interval_ms, 5000);
	/* The queue name comes from the pool id, lower-cased. */
	ASSERT_STR_EQ(c->queue.name, "render-pool-tasks");
	ASSERT_INT_EQ(c->queue.poll_min_interval_ms, 500);
	ASSERT_INT_EQ(c->queue.lease_duration_ms, 7LL * 24 * 3600 * 1000);
	ASSERT_INT_EQ(c->queue.max_dequeue_count, 1);
	ASSERT_INT_EQ(c->application_packages.n, 2);
	ASSERT_STR_EQ(c->application_packages.items[0].application_id,
	    "blender");
	ASSERT_STR_EQ(c->application_packages.items[0].version, "2.80-daily");
	ASSERT_NULL(c->application_packages.items[1].version);
	ASSERT_STR_EQ(c->application_store.directory, "/srv/apps");
	ASSERT_INT_EQ(c->application_cache_max_bytes, (int64_t)20 << 30);
	ASSERT_INT_EQ(c->tasks.kill_grace_period_ms, 0);
	ASSERT_INT_EQ(c->tasks.stdout_max_bytes, 0);
	ASSERT_INT_EQ(c->tasks.stderr_max_bytes, 10000000);
	ASSERT_INT_EQ(c->tasks.default_retention_time_ms,
	    BD_DURATION_INFINITE);
	ASSERT_INT_EQ(c->tasks.free_space_reserve_bytes, 512 << 20);
	ASSERT_INT_EQ(c->tasks.limits.memory_max_bytes, (int64_t)4 << 30);
	ASSERT_INT_EQ(c->tasks.limits.pids_max, 1000);
	ASSERT_INT_EQ(c->tasks.limits.cpu_weight, 10000);
	ASSERT_STR_EQ(c->users.pool_non_admin, "batch");
	ASSERT_INT_EQ(c->users.n_accounts, 2);
	ASSERT_STR_EQ(c->users.accounts[0].name, "alice");
	ASSERT_INT_EQ(c->users.accounts[0].uid, 1500);
	ASSERT_INT_EQ(c->users.accounts[0].gid, 1500);
	ASSERT_NULL(c->users.accounts[0].system_user);
	ASSERT_STR_EQ(c->users.accounts[1].system_user, "nobody");
	ASSERT_STR_EQ(c->users.pool_admin, "boss");
	ASSERT_INT_EQ(c->users.accounts[0].elevation, BD_ELEVATION_ADMIN);
	ASSERT_INT_EQ(c->users.accounts[1].elevation, BD_ELEVATION_NONADMIN);
	ASSERT_INT_EQ(c->users.accounts[1].uid, -1);
	ASSERT_INT_EQ(c->http.max_connections, 1);
	ASSERT_INT_EQ(c->http.connect_timeout_ms, 600000);
	ASSERT_INT_EQ(c->http.stall_timeout_ms, 1000);
	ASSERT_STR_EQ(c->http.ca_file, "/etc/ssl/x.pem");
	ASSERT_INT_EQ(c->log.level, BD_LOG_DEBUG);
	ASSERT_INT_EQ(c->log.format, BD_LOG_FORMAT_JSON);
	ASSERT_STR_EQ(c->metrics.textfile_dir, "/var/lib/node_exporter");
	ASSERT_STR_EQ(c->metrics.listen, "[::1]:9464");
	bd_config_free(c);
}

TEST(start_task)
{
	struct bd_config *c;

	c = parse_ok("{'startTask': {'commandLine': '/bin/sh -c \\'echo hi\\'', "
	    "'waitForSuccess': false, 'maxTaskRetryCount': 2, "
	    "'userIdentity': {'autoUser': {'scope': 'pool', "
	    "'elevationLevel': 'admin'}}}}");
	ASSERT_NOT_NULL(c->start_task);
	ASSERT_INT_EQ(c->start_task->kind, BD_TASK_KIND_START);
	ASSERT_STR_EQ(c->start_task->command_line, "/bin/sh -c \"echo hi\"");
	ASSERT(!c->start_task->wait_for_success);
	ASSERT_NOT_NULL(c->start_task_json);
	bd_config_free(c);

	/* Its errors are named from startTask down. */
	expect_error("{'startTask': {'waitForSuccess': true}}",
	    "startTask.commandLine: required");
	expect_error("{'startTask': 'true'}",
	    "startTask: expected an object, not a string");
	expect_error_line("{'startTask': {'commandLine': 'x', "
	    "'constraints': {}}}", "startTask.constraints: unknown field "
	    "(not a field of a start task)");
}

TEST(types)
{
	expect_error("{'taskSlotsPerNode': 0}",
	    "taskSlotsPerNode: must be an integer between 1 and 256");
	expect_error("{'taskSlotsPerNode': 1.5}",
	    "taskSlotsPerNode: must be an integer between 1 and 256");
	expect_error("{'taskSlotsPerNode': '4'}",
	    "taskSlotsPerNode: expected an integer, not a string");
	expect_error("{'isDedicated': 'true'}",
	    "isDedicated: expected true or false, not a string");
	expect_error("{'poolId': 'a b'}",
	    "poolId: may contain only letters, digits, '-' and '_'");
	expect_error("{'poolId': ''}", "poolId: must not be empty");
	expect_error("{'nodeRoot': 'mnt/batch'}",
	    "nodeRoot: must be an absolute path");
	expect_error("{'stateDir': 5}",
	    "stateDir: expected a string, not a number");
	expect_error("{'queue': {'leaseDuration': 'PT1X'}}",
	    "queue.leaseDuration: invalid duration \"PT1X\": not an ISO 8601 "
	    "duration such as PT1H30M, P7D or PT0.5S");
	expect_error("{'queue': {'leaseDuration': 'P8D'}}",
	    "queue.leaseDuration: must be between PT10S and P7D");
	expect_error("{'queue': {'leaseDuration': 120}}",
	    "queue.leaseDuration: expected a duration string such as "
	    "\"PT1H\", not a number");
	expect_error("{'tasks': {'defaultRetentionTime': 'P1Y'}}",
	    "tasks.defaultRetentionTime: invalid duration \"P1Y\": years and "
	    "months have no fixed length; use days (P30D) or weeks (P4W)");
	expect_error("{'nodeDeallocationOption': 'drain'}",
	    "nodeDeallocationOption: unknown value \"drain\" (expected one "
	    "of: requeue, terminate, taskcompletion, retaineddata)");
	expect_error("{'log': {'format': 'xml'}}",
	    "log.format: unknown value \"xml\" (expected one of: auto, text, "
	    "journal, json)");
	expect_error("{'queue': 'x'}",
	    "queue: expected an object, not a string");
	expect_error("{'applicationPackages': {}}",
	    "applicationPackages: expected an array, not an object");
}

TEST(sizes)
{
	struct bd_config *c;

	c = parse_ok("{'tasks': {'stdoutMaxBytes': '1KiB', "
	    "'stderrMaxBytes': '3 kB', 'freeSpaceReserveBytes': '1 PiB', "
	    "'limits': {'memoryMaxBytes': '7B'}}}");
	ASSERT_INT_EQ(c->tasks.stdout_max_bytes, 1024);
	ASSERT_INT_EQ(c->tasks.stderr_max_bytes, 3000);
	ASSERT_INT_EQ(c->tasks.free_space_reserve_bytes, (int64_t)1 << 50);
	ASSERT_INT_EQ(c->tasks.limits.memory_max_bytes, 7);
	bd_config_free(c);

	expect_error("{'tasks': {'stdoutMaxBytes': '1.5GiB'}}",
	    "tasks.stdoutMaxBytes: unknown unit (use B, KiB, MiB, GiB, TiB, "
	    "kB, MB, GB or TB)");
	expect_error("{'tasks': {'stdoutMaxBytes': '-1'}}",
	    "tasks.stdoutMaxBytes: must be a number of bytes, optionally "
	    "with a unit such as KiB, MiB, GiB or GB");
	expect_error("{'tasks': {'stdoutMaxBytes': -1}}",
	    "tasks.stdoutMaxBytes: must be an integer between 0 and "
	    "1125899906842624");
	expect_error("{'tasks': {'stdoutMaxBytes': '2PiB'}}",
	    "tasks.stdoutMaxBytes: too large");
	expect_error("{'tasks': {'stdoutMaxBytes': '99999999999999999999'}}",
	    "tasks.stdoutMaxBytes: too large");
	expect_error("{'tasks': {'stdoutMaxBytes': true}}",
	    "tasks.stdoutMaxBytes: expected a number of bytes or a string "
	    "such as \"10GiB\", not a boolean");
}

TEST(unknown_and_duplicate)
{
	expect_error("{'poolid': 'x'}",
	    "poolid: unknown field (did you mean poolId?)");
	expect_error("{'leaseDuration': 'PT1M'}",
	    "leaseDuration: unknown field (did you mean "
	    "queue.leaseDuration?)");
	expect_error("{'queue': {'lease': 'PT1M'}}",
	    "queue.lease: unknown field");
	expect_error("{'log': {'formt': 'json'}}",
	    "log.formt: unknown field (did you mean format?)");
	expect_error("{'storage': {'AccountKey': 'c2VjcmV0'}}",
	    "storage.AccountKey: unknown field (did you mean accountKey?)");
	expect_error("{'additionalProperties': null}",
	    "additionalProperties: unknown field");
	expect_error("{'poolId': 'a', 'poolId': 'b'}",
	    "poolId: duplicate field");
	expect_error("{'users': {'accounts': {'a': {'uid': 1, 'gid': 1}, "
	    "'a': {'uid': 2, 'gid': 2}}}}",
	    "users.accounts.a: duplicate field");
	expect_error("{'applicationPackages': [{'appId': 'x'}]}",
	    "applicationPackages[0].appId: unknown field");
	expect_error("{'users': {'accounts': {'bob': {'uid': 1, 'gid': 1, "
	    "'home': '/x'}}}}", "users.accounts.bob.home: unknown field");
}

TEST(all_errors_at_once)
{
	char *cause, *text;
	size_t i, n;

	cause = parse_bad("{'poolid': 'x', 'taskSlotsPerNode': 0, "
	    "'queue': {'leaseDuration': 'soon', 'pollMinInterval': 'PT1M', "
	    "'pollMaxInterval': 'PT10S'}, 'log': {'level': 'loud'}, "
	    "'startTask': {}, "
	    "'storage': {'connectionString': 'UseDevelopmentStorage=true', "
	    "'accountKey': 'c2VjcmV0'}}");
	ASSERT_INT_EQ(count_lines(cause), 7);
	ASSERT_STR_CONTAINS(cause, "f.json: poolid: unknown field");
	ASSERT_STR_CONTAINS(cause, "\nf.json: taskSlotsPerNode: must be");
	ASSERT_STR_CONTAINS(cause, "\nf.json: queue.leaseDuration: invalid");
	ASSERT_STR_CONTAINS(cause, "\nf.json: log.level: unknown value");
	ASSERT_STR_CONTAINS(cause, "\nf.json: startTask.commandLine: required");
	ASSERT_STR_CONTAINS(cause, "\nf.json: storage.accountKey: cannot be "
	    "combined with storage.connectionString");
	ASSERT_STR_CONTAINS(cause, "\nf.json: queue.pollMinInterval: must not "
	    "be longer than queue.pollMaxInterval (PT10S)");
	ASSERT(cause[strlen(cause) - 1] != '\n');
	free(cause);

	/* A hundred errors are shown, the others counted. */
	text = xmalloc(20000 * 32);
	for (i = 0, n = 0; i < 20000; i++)
		n += (size_t)sprintf(text + n, "%s'unknownOption%zu': 1",
		    i > 0 ? ", " : "{", i);
	strcpy(text + n, "}");
	cause = parse_bad(text);
	free(text);
	ASSERT_INT_EQ(count_lines(cause), 101);
	ASSERT_STR_CONTAINS(cause, "\nf.json: unknownOption99: unknown field\n"
	    "f.json: 19900 more errors");
	free(cause);

	/* A file that is not JSON says where, and nothing else. */
	expect_error("{\n  'poolId': 'x',\n  'nodeId' 'y'\n}",
	    "not valid JSON at line 3, column 12");
	expect_error("[]", "expected a JSON object, not an array");
}

TEST(queue_name)
{
	struct bd_config *c;

	c = parse_ok("{'poolId': 'p', 'queue': {'name': 'jobs-a1'}}");
	ASSERT_STR_EQ(c->queue.name, "jobs-a1");
	bd_config_free(c);
	expect_error("{'queue': {'name': 'Jobs'}}", "queue.name: may contain "
	    "only lower-case letters, digits and '-'");
	expect_error("{'queue': {'name': 'a--b'}}",
	    "queue.name: must not contain \"--\"");
	expect_error("{'queue': {'name': '-ab'}}",
	    "queue.name: must start and end with a letter or digit");
	expect_error("{'queue': {'name': 'ab'}}", "queue.name: must be 3 to "
	    "56 characters long (the poison queue adds \"-poison\")");
	/* A pool id that makes no queue name needs queue.name. */
	expect_error("{'poolId': 'my_pool'}", "queue.name: the default "
	    "\"my_pool-tasks\", made from poolId, is not a valid queue name "
	    "(may contain only lower-case letters, digits and '-'); set "
	    "queue.name");
	c = parse_ok("{'poolId': 'my_pool', 'queue': {'name': 'my-pool'}}");
	bd_config_free(c);
}

TEST(rules)
{
	struct bd_config *c;

	expect_error("{'queue': {'pollMinInterval': 'PT31S'}}",
	    "queue.pollMinInterval: must not be longer than "
	    "queue.pollMaxInterval (PT30S)");
	expect_error("{'applicationStore': {'container': 'apps'}}",
	    "applicationStore.container: needs storage (with the local "
	    "spool, use applicationStore.directory)");
	expect_error("{'applicationStore': {'container': 'apps', "
	    "'directory': '/a'}}", "applicationStore.directory: cannot be "
	    "combined with applicationStore.container");
	expect_error("{'applicationStore': {'container': 'Apps'}}",
	    "applicationStore.container: may contain only lower-case "
	    "letters, digits and '-'");
	expect_error("{'applicationPackages': [{'applicationId': 'a b'}], "
	    "'applicationStore': {'directory': '/a'}}",
	    "applicationPackages[0].applicationId: must be 1 to 64 letters, "
	    "digits, '_', '-' and '.'");
	expect_error("{'applicationPackages': [{'applicationId': 'a'}, "
	    "{'applicationId': 'A', 'version': '1'}], "
	    "'applicationStore': {'directory': '/a'}}",
	    "applicationPackages[1].applicationId: given twice");
	expect_error("{'applicationPackages': [{}, {}, {}, {}, {}, {}, {}, {}, "
	    "{}, {}, {}]}", "applicationPackages: more than 10 items");
	c = parse_ok("{'storage': {'connectionString': "
	    "'UseDevelopmentStorage=true'}, "
	    "'applicationStore': {'container': 'apps'}}");
	ASSERT_STR_EQ(c->application_store.container, "apps");
	bd_config_free(c);
}

TEST(users)
{
	expect_error("{'users': {'accounts': {'a': {'uid': 1}}}}",
	    "users.accounts.a.gid: required with uid");
	expect_error("{'users': {'accounts': {'a': {'gid': 1}}}}",
	    "users.accounts.a.uid: required with gid");
	expect_error("{'users': {'accounts': {'a': {}}}}",
	    "users.accounts.a: give uid and gid, or systemUser");
	expect_error("{'users': {'accounts': {'a': {'uid': 1, 'gid': 1, "
	    "'elevationLevel': 'root'}}}}",
	    "users.accounts.a.elevationLevel: unknown value \"root\" "
	    "(expected one of: nonadmin, admin)");
	expect_error("{'users': {'accounts': {'a': {'systemUser': 'b', "
	    "'uid': 3}}}}", "users.accounts.a.uid: cannot be combined with "
	    "systemUser");
	expect_error("{'users': {'accounts': {'a': {'uid': -1, 'gid': 1}}}}",
	    "users.accounts.a.uid: must be an integer between 0 and "
	    "4294967294");
	expect_error("{'users': {'accounts': {'9a': {'uid': 1, 'gid': 1}}}}",
	    "users.accounts: account name \"9a\": must not start with '-' or "
	    "a digit");
	expect_error("{'users': {'accounts': []}}",
	    "users.accounts: expected an object, not an array");
	expect_error("{'users': {'poolNonAdmin': 'a:b'}}",
	    "users.poolNonAdmin: may contain only letters, digits, '_', '-' "
	    "and '.'");
}

TEST(metrics_listen)
{
	static const char *const good[] = { "127.0.0.1:9464",
	    "127.1.2.3:1", "[::1]:65535", "localhost:9464", NULL };
	struct bd_config *c;
	char *json;
	size_t i;

	for (i = 0; good[i] != NULL; i++) {
		json = xasprintf("{'metrics': {'listen': '%s'}}", good[i]);
		c = parse_ok(json);
		ASSERT_STR_EQ(c->metrics.listen, good[i]);
		bd_config_free(c);
		free(json);
	}
	expect_error("{'metrics': {'listen': '0.0.0.0:9464'}}",
	    "metrics.listen: must be a loopback address (127.0.0.1, [::1], "
	    "localhost)");
	expect_error("{'metrics': {'listen': '[::]:9464'}}",
	    "metrics.listen: must be a loopback address (127.0.0.1, [::1], "
	    "localhost)");
	expect_error("{'metrics': {'listen': 'example.com:80'}}",
	    "metrics.listen: the host must be a loopback IP address or "
	    "localhost");
	expect_error("{'metrics': {'listen': '127.0.0.1'}}",
	    "metrics.listen: must be HOST:PORT, such as 127.0.0.1:9464");
	expect_error("{'metrics': {'listen': '127.0.0.1:0'}}",
	    "metrics.listen: the port must be a number from 1 to 65535");
	expect_error("{'metrics': {'listen': ':80'}}",
	    "metrics.listen: must be HOST:PORT, such as 127.0.0.1:9464");
}

TEST(storage_connection_string)
{
	const struct bd_storage_account *a;
	struct bd_config *c;

	c = parse_ok("{'storage': {'connectionString': "
	    "'UseDevelopmentStorage=true'}}");
	ASSERT_INT_EQ(c->storage.kind, BD_CONFIG_STORAGE_CONNECTION_STRING);
	a = bd_config_storage_account(c, BD_STORAGE_QUEUE);
	ASSERT_NOT_NULL(a);
	ASSERT(a == bd_config_storage_account(c, BD_STORAGE_BLOB));
	ASSERT(a == bd_config_storage_account(c, BD_STORAGE_TABLE));
	ASSERT_STR_EQ(a->name, "devstoreaccount1");
	ASSERT_STR_EQ(a->queue_endpoint,
	    "http://127.0.0.1:10001/devstoreaccount1");
	bd_config_free(c);

	expect_error("{'storage': {'connectionString': "
	    "'AccountName=abc;AcountKey=SECRETSECRET'}}",
	    "storage.connectionString: unknown key \"AcountKey\"");
	expect_error("{'storage': {'connectionString': 'AccountName=abc'}}",
	    "storage.connectionString: AccountName without AccountKey or "
	    "SharedAccessSignature");
	expect_error("{'storage': {'connectionString': "
	    "'BlobEndpoint=https://a.blob.core.windows.net;"
	    "SharedAccessSignature=sv=1&sig=abc'}}",
	    "storage.connectionString: gives no queue endpoint (add "
	    "AccountName or QueueEndpoint)");
	expect_error("{'storage': {'connectionString': "
	    "'UseDevelopmentStorage=true', 'queueSasUrl': "
	    "'https://a.queue.core.windows.net/?sig=x'}}",
	    "storage.queueSasUrl: cannot be combined with "
	    "storage.connectionString; give one form of credentials: "
	    "connectionString, accountName with accountKey, or SAS URLs");
}

TEST(storage_shared_key)
{
	const struct bd_storage_account *a;
	struct bd_config *c;

	c = parse_ok("{'storage': {'accountName': 'abc', "
	    "'accountKey': 'c2VjcmV0'}}");
	ASSERT_INT_EQ(c->storage.kind, BD_CONFIG_STORAGE_SHARED_KEY);
	a = bd_config_storage_account(c, BD_STORAGE_TABLE);
	ASSERT_STR_EQ(a->name, "abc");
	ASSERT_INT_EQ(a->key_len, 6);
	ASSERT_STR_EQ(a->blob_endpoint, "https://abc.blob.core.windows.net");
	ASSERT_STR_EQ(a->queue_endpoint, "https://abc.queue.core.windows.net");
	ASSERT_STR_EQ(a->table_endpoint, "https://abc.table.core.windows.net");
	bd_config_free(c);

	c = parse_ok("{'storage': {'accountName': 'devstoreaccount1', "
	    "'accountKey': 'c2VjcmV0', 'endpointSuffix': 'core.chinacloudapi.cn', "
	    "'queueEndpoint': 'http://127.0.0.1:10001/devstoreaccount1/'}}");
	a = bd_config_storage_account(c, BD_STORAGE_QUEUE);
	ASSERT_STR_EQ(a->queue_endpoint,
	    "http://127.0.0.1:10001/devstoreaccount1");
	ASSERT_STR_EQ(a->blob_endpoint,
	    "https://devstoreaccount1.blob.core.chinacloudapi.cn");
	bd_config_free(c);

	expect_error("{'storage': {'accountName': 'abc'}}",
	    "storage.accountKey: required with storage.accountName");
	expect_error("{'storage': {'accountKey': 'c2VjcmV0'}}",
	    "storage.accountName: required with storage.accountKey");
	expect_error("{'storage': {'accountName': 'abc', "
	    "'accountKey': 'not base64!'}}",
	    "storage.accountKey: not valid base64");
	expect_error("{'storage': {'accountName': 'ABC', "
	    "'accountKey': 'c2VjcmV0'}}",
	    "storage.accountName: may contain only lower-case letters and "
	    "digits");
	expect_error("{'storage': {'accountName': 'abc', "
	    "'accountKey': 'c2VjcmV0', 'tableEndpoint': 'ftp://x'}}",
	    "storage.tableEndpoint: must be an http or https URL");
	expect_error("{'storage': {'accountName': 'abc', "
	    "'accountKey': 'c2VjcmV0', 'endpointSuffix': 'a/b'}}",
	    "storage.endpointSuffix: must be a DNS name such as "
	    "core.windows.net");
	expect_error("{'storage': {'accountName': 'abc', "
	    "'accountKey': 'c2VjcmV0', 'tableSasUrl': "
	    "'https://a.table.core.windows.net/?sig=x'}}",
	    "storage.tableSasUrl: cannot be combined with storage.accountKey; "
	    "give one form of credentials: connectionString, accountName with "
	    "accountKey, or SAS URLs");
}

TEST(storage_sas)
{
	const struct bd_storage_account *a;
	struct bd_config *c;

	c = parse_ok("{'storage': {"
	    "'queueSasUrl': 'https://a.queue.core.windows.net/?sv=2023-11-03&"
	    "ss=qt&srt=sco&sp=rwdlacup&se=2099-01-01T00:00:00Z&sig=S1',"
	    "'tableSasUrl': 'https://a.table.core.windows.net?sv=2023-11-03&"
	    "ss=qt&srt=sco&sp=rwdlacup&se=2099-01-01T00:00:00Z&sig=S2'}}");
	ASSERT_INT_EQ(c->storage.kind, BD_CONFIG_STORAGE_SAS);
	ASSERT_NULL(bd_config_storage_account(c, BD_STORAGE_BLOB));
	a = bd_config_storage_account(c, BD_STORAGE_QUEUE);
	ASSERT_STR_EQ(a->queue_endpoint, "https://a.queue.core.windows.net");
	ASSERT_STR_CONTAINS(a->sas, "sig=S1");
	ASSERT_NULL(a->key);
	a = bd_config_storage_account(c, BD_STORAGE_TABLE);
	ASSERT_STR_EQ(a->table_endpoint, "https://a.table.core.windows.net");
	ASSERT_STR_CONTAINS(a->sas, "sig=S2");
	bd_config_free(c);

	expect_error("{'storage': {'queueSasUrl': "
	    "'https://a.queue.core.windows.net/?se=2099-01-01&sig=x'}}",
	    "storage.tableSasUrl: required with SAS URLs (the node uses the "
	    "queue and table services)");
	expect_error_line("{'storage': {'queueSasUrl': "
	    "'https://a.queue.core.windows.net/?se=2020-01-01&sig=SECRET'}}",
	    "storage.queueSasUrl: the SAS expired at 2020-01-01T00:00:00Z");
	expect_error_line("{'storage': {'tableSasUrl': "
	    "'https://a.table.core.windows.net/?ss=b&sig=SECRET'}}",
	    "storage.tableSasUrl: the account SAS does not cover this service "
	    "(ss=\"b\")");
	expect_error_line("{'storage': {'tableSasUrl': "
	    "'https://a.table.core.windows.net/?ss=t'}}",
	    "storage.tableSasUrl: the URL has no SAS signature (sig)");
	expect_error_line("{'storage': {'blobSasUrl': 'ftp://SECRET'}}",
	    "storage.blobSasUrl: must be an http or https URL");
	expect_error_line("{'storage': {'queueSasUrl': "
	    "'https://a.queue.core.windows.net/?sig=x', 'tableSasUrl': "
	    "'https://a.table.core.windows.net/?sig=y'}, "
	    "'applicationStore': {'container': 'apps'}}",
	    "applicationStore.container: needs storage.blobSasUrl");
}

/* No cause of these bad files, nor their --show, may hold SECRET. */
TEST(secrets_never_shown)
{
	static const char *const bad[] = {
		"{'storage': {'accountName': 'abc', 'accountKey': 'SECRET!'}}",
		"{'storage': {'accountName': 'SECRETSECRETSECRETSECRET==', "
		    "'accountKey': 'c2VjcmV0'}}",
		"{'storage': {'connectionString': 'AccountName=a;AccountKey="
		    "SECRET!'}}",
		"{'storage': {'connectionString': 'SECRET'}}",
		"{'storage': {'connectionString': 'AccountName=a;Foo=SECRET'}}",
		"{'storage': {'acountKey': 'SECRET'}}",
		"{'storage': {'queueSasUrl': 'http://x/?sig=SECRET&se=2000-01-01',"
		    "'tableSasUrl': 'ftp://x/?sig=SECRET'}}",
		"{'storage': {'blobEndpoint': 'https://x/?sig=SECRET'}}",
		"{'storage': {'connectionString': 5, 'accountKey': 'SECRET'}}",
		"{'queue': {'name': 'SECRET'}}",
		"{'metrics': {'listen': 'SECRET'}}",
		"{'users': {'poolNonAdmin': 'SECRET:x'}}",
		"{'applicationStore': {'container': 'SECRET'}}",
		NULL,
	};
	struct bd_config *c;
	char *cause, *shown;
	size_t i;

	for (i = 0; bad[i] != NULL; i++) {
		cause = parse_bad(bad[i]);
		if (strstr(cause, "SECRET") != NULL)
			UNIT_FAIL("%s: the secret shows in: %s", bad[i], cause);
		free(cause);
	}

	c = parse_ok("{'storage': {'accountName': 'abc', "
	    "'accountKey': 'U0VDUkVUU0VDUkVU'}, "
	    "'startTask': {'commandLine': 'x', 'resourceFiles': [{'httpUrl': "
	    "'https://a/b?sv=1&sig=SECRET', 'filePath': 'b'}], "
	    "'containerSettings': {'imageName': 'i', 'registry': {"
	    "'registryServer': 'r', 'username': 'u', 'password': 'SECRET'}}}}");
	shown = bd_config_show(c);
	ASSERT(strstr(shown, "SECRET") == NULL);
	ASSERT(strstr(shown, "U0VDUkVU") == NULL);
	ASSERT_STR_CONTAINS(shown, "\"accountKey\":\t\"REDACTED\"");
	ASSERT_STR_CONTAINS(shown, "\"password\":\t\"REDACTED\"");
	ASSERT_STR_CONTAINS(shown, "sig=REDACTED");
	free(shown);
	bd_config_free(c);
}

/* --show prints every option, and what it prints reads back the same. */
TEST(show)
{
	const struct bd_config_option *opts;
	struct bd_config *c, *again;
	char *shown, *shown2, *cause = NULL, *key;
	size_t i, n;

	c = parse_ok("{'poolId': 'p1', 'taskSlotsPerNode': 4, "
	    "'tasks': {'stdoutMaxBytes': '1MiB', 'killGracePeriod': 'PT90S'}, "
	    "'applicationPackages': [{'applicationId': 'a', 'version': '1'}], "
	    "'applicationStore': {'directory': '/apps'}, "
	    "'users': {'accounts': {'x': {'uid': 5, 'gid': 6}, "
	    "'y': {'systemUser': 'nobody'}}}, "
	    "'startTask': {'commandLine': 'echo'}}");
	shown = bd_config_show(c);
	opts = bd_config_options(&n);
	for (i = 0; i < n; i++) {
		key = xasprintf("\"%s\":", strrchr(opts[i].name, '.') != NULL ?
		    strrchr(opts[i].name, '.') + 1 : opts[i].name);
		ASSERT_STR_CONTAINS(shown, key);
		free(key);
	}
	ASSERT_STR_CONTAINS(shown, "\"killGracePeriod\":\t\"PT1M30S\"");
	ASSERT_STR_CONTAINS(shown, "\"stdoutMaxBytes\":\t1048576");
	ASSERT_STR_CONTAINS(shown, "\"name\":\t\"p1-tasks\"");
	ASSERT_STR_CONTAINS(shown, "\"connectionString\":\tnull");
	if (bd_config_parse(shown, strlen(shown), "shown", &again,
	    &cause) != 0)
		UNIT_FAIL("%s", cause);
	shown2 = bd_config_show(again);
	ASSERT_STR_EQ(shown, shown2);
	free(shown);
	free(shown2);
	bd_config_free(again);
	bd_config_free(c);
}

TEST(find_order)
{
	char dir[] = "/tmp/test_config.XXXXXX", *sys, *missing;

	ASSERT_NOT_NULL(mkdtemp(dir));
	sys = xasprintf("%s/batchd.json", dir);
	missing = xasprintf("%s/missing.json", dir);
	ASSERT_INT_EQ(bd_write_file_atomic(sys, "{}", 2, 0644), 0);

	unsetenv(BD_CONFIG_ENV);
	ASSERT_STR_EQ(bd_config_find("/x.json", sys), "/x.json");
	ASSERT_STR_EQ(bd_config_find(NULL, sys), sys);
	ASSERT_NULL(bd_config_find(NULL, missing));
	ASSERT_NULL(bd_config_find(NULL, NULL));

	setenv(BD_CONFIG_ENV, "/env.json", 1);
	ASSERT_STR_EQ(bd_config_find("/x.json", sys), "/x.json");
	ASSERT_STR_EQ(bd_config_find(NULL, sys), "/env.json");
	ASSERT_STR_EQ(bd_config_find(NULL, missing), "/env.json");

	/* An empty variable is as good as none. */
	setenv(BD_CONFIG_ENV, "", 1);
	ASSERT_STR_EQ(bd_config_find(NULL, sys), sys);
	unsetenv(BD_CONFIG_ENV);

	ASSERT_INT_EQ(unlink(sys), 0);
	ASSERT_INT_EQ(rmdir(dir), 0);
	free(sys);
	free(missing);
}

TEST(load)
{
	char dir[] = "/tmp/test_config.XXXXXX", *good, *bad, *missing, *big;
	struct bd_config *c = NULL;
	char *cause = NULL, *line, *text;
	const char *json = "{\"poolId\": \"from-file\"}";

	ASSERT_NOT_NULL(mkdtemp(dir));
	good = xasprintf("%s/good.json", dir);
	bad = xasprintf("%s/bad.json", dir);
	missing = xasprintf("%s/missing.json", dir);
	big = xasprintf("%s/big.json", dir);
	ASSERT_INT_EQ(bd_write_file_atomic(good, json, strlen(json), 0644), 0);
	json = "{\"poolId\": 5, \"nodeId\": \"a.b\"}";
	ASSERT_INT_EQ(bd_write_file_atomic(bad, json, strlen(json), 0644), 0);
	text = xmalloc(BD_JSON_MAX_DOCUMENT + 2);
	memset(text, ' ', BD_JSON_MAX_DOCUMENT + 2);
	text[0] = '{';
	text[BD_JSON_MAX_DOCUMENT + 1] = '}';
	ASSERT_INT_EQ(bd_write_file_atomic(big, text,
	    BD_JSON_MAX_DOCUMENT + 2, 0644), 0);
	free(text);

	/* The path given. */
	unsetenv(BD_CONFIG_ENV);
	ASSERT_INT_EQ(bd_config_load(good, &c, &cause), 0);
	ASSERT_STR_EQ(c->path, good);
	ASSERT_STR_EQ(c->pool_id, "from-file");
	bd_config_free(c);

	/* $BATCHD_CONFIG, and the path given over it. */
	setenv(BD_CONFIG_ENV, bad, 1);
	ASSERT_INT_EQ(bd_config_load(NULL, &c, &cause), BD_EINVALID);
	ASSERT_NULL(c);
	line = xasprintf("%s: poolId: expected a string, not a number\n"
	    "%s: nodeId: may contain only letters, digits, '-' and '_'", bad,
	    bad);
	ASSERT_STR_EQ(cause, line);
	free(line);
	free(cause);
	cause = NULL;
	ASSERT_INT_EQ(bd_config_load(good, &c, &cause), 0);
	ASSERT_STR_EQ(c->pool_id, "from-file");
	bd_config_free(c);

	/* A file named but missing is an error, not the defaults. */
	setenv(BD_CONFIG_ENV, missing, 1);
	ASSERT_INT_EQ(bd_config_load(NULL, &c, &cause), -ENOENT);
	line = xasprintf("%s: %s", missing, bd_strerror(-ENOENT));
	ASSERT_STR_EQ(cause, line);
	free(line);
	free(cause);
	cause = NULL;
	unsetenv(BD_CONFIG_ENV);

	ASSERT_INT_EQ(bd_config_load(big, &c, &cause), BD_ETOOBIG);
	line = xasprintf("%s: larger than 1 MiB", big);
	ASSERT_STR_EQ(cause, line);
	free(line);
	free(cause);
	cause = NULL;

	/* With nothing else, the system path or the defaults. */
	if (access(BD_CONFIG_SYSTEM_PATH, F_OK) != 0) {
		ASSERT_INT_EQ(bd_config_load(NULL, &c, &cause), 0);
		ASSERT_NULL(c->path);
		ASSERT_STR_EQ(c->pool_id, "local");
		bd_config_free(c);
	}

	ASSERT_INT_EQ(unlink(good), 0);
	ASSERT_INT_EQ(unlink(bad), 0);
	ASSERT_INT_EQ(unlink(big), 0);
	ASSERT_INT_EQ(rmdir(dir), 0);
	free(good);
	free(bad);
	free(missing);
	free(big);
}

int
main(void)
{
	RUN(table);
	RUN(option_type);
	RUN(defaults);
	RUN(values);
	RUN(start_task);
	RUN(types);
	RUN(sizes);
	RUN(unknown_and_duplicate);
	RUN(all_errors_at_once);
	RUN(queue_name);
	RUN(rules);
	RUN(users);
	RUN(metrics_listen);
	RUN(storage_connection_string);
	RUN(storage_shared_key);
	RUN(storage_sas);
	RUN(secrets_never_shown);
	RUN(show);
	RUN(find_order);
	RUN(load);
	return 0;
}
