/* SPDX-License-Identifier: MIT */
/*
 * `batchd run`: one task in the foreground, exactly as a node runs it.
 *
 *   batchd run [--root DIR] [--job JOB.json] [--result FILE]
 *              [--config FILE] TASK.json
 *
 * The job's preparation task runs first, then the task, then the job's
 * release task.  The task's stdout and stderr are echoed live while the
 * task writes them to its files.  Exit status: the task's exit code when
 * its command ran, 125 when batchd failed or the task failed before its
 * command could run.
 *
 * Application packages come from the configuration's applicationStore
 * (the default store when the configuration names none), the pool's
 * applicationPackages first, as a node installs them before anything
 * runs; they are installed under <root>/applications.
 *
 * The storage account that autoStorageContainerName resource files come
 * from is the node configuration's storage section (--config FILE, else
 * $BATCHD_CONFIG or /etc/batchd/batchd.json), else the Azure CLI's
 * AZURE_STORAGE_CONNECTION_STRING, else none.
 */
#include "cmd_run.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app_package.h"
#include "cgroup.h"
#include "config.h"
#include "task_user.h"
#include "error.h"
#include "follow.h"
#include "fsutil.h"
#include "http.h"
#include "job_spec.h"
#include "log.h"
#include "process.h"
#include "progress.h"
#include "runner.h"
#include "storage_auth.h"
#include "url.h"
#include "xmalloc.h"

/* Task and job files larger than this are refused before parsing. */
#define RUN_MAX_FILE (64 * 1024 * 1024)
/* The Azure CLI's variable for a storage account. */
#define RUN_STORAGE_ENV "AZURE_STORAGE_CONNECTION_STRING"

enum run_stage {
	STAGE_POOL, STAGE_PREP, STAGE_TASK, STAGE_RELEASE, STAGE_END
};

struct run {
	uv_loop_t loop;
	struct bd_http *http;
	struct bd_config *config;	/* --config, or for storage */
	struct bd_storage_account *env_storage; /* from RUN_STORAGE_ENV */
	const struct bd_storage_account *storage; /* one of the two, or NULL */
	uv_signal_t sigint, sigterm;
	struct bd_node_info node;
	struct bd_task_users *users;	/* who tasks run as */
	struct bd_job_spec *job;
	struct bd_task_spec *task;
	cJSON *task_json; /* the task as given, for --result */
	const char *result_path;
	bool quiet;

	enum run_stage stage;
	struct bd_runner *runner;
	struct bd_app_packages *packages;	/* or NULL */
	bool pool_ok;
	struct bd_follow *out_follow, *err_follow;
	int interrupts;

	bool prep_ok;
	bool prep_ran;
	bool task_ran;
	int exit_status;
};

static void run_next_stage(struct run *run);

static void
run_usage(void)
{
	fprintf(stderr, "usage: batchd run [--root DIR] [--job JOB.json] "
	    "[--result FILE] [--config FILE] [--quiet] TASK.json\n");
}

/* Reads and parses a JSON file; on error prints "file: reason". */
static cJSON *
run_read_json(const char *path, char **text, size_t *len)
{
	int rc = bd_read_file(path, RUN_MAX_FILE, text, len);

	if (rc < 0) {
		log_warnx("%s: %s", path, rc == BD_ETOOBIG ?
		    "file is larger than 64 MiB" : bd_strerror(rc));
		return NULL;
	}
	return cJSON_ParseWithLength(*text, *len);
}

static void
run_phase(void *arg, const char *task_id, const char *what)
{
	struct run *run = arg;

	bd_progress_clear();
	if (!run->quiet)
		log_info("job %s: task %s: %s", run->job->id, task_id, what);
}

static void
run_transfer(void *arg, const char *name, int64_t done, int64_t total)
{
	struct run *run = arg;

	if (!run->quiet)
		bd_progress_update("transferring", name, done, total);
}

static void
run_launched(void *arg, const char *stdout_path, const char *stderr_path)
{
	struct run *run = arg;

	bd_progress_clear();
	if (run->quiet)
		return;
	if (bd_follow_start(&run->loop, stdout_path, STDOUT_FILENO,
	    &run->out_follow) < 0)
		run->out_follow = NULL;
	if (bd_follow_start(&run->loop, stderr_path, STDERR_FILENO,
	    &run->err_follow) < 0)
		run->err_follow = NULL;
}

static void
run_exited(void *arg)
{
	struct run *run = arg;

	if (run->out_follow != NULL)
		bd_follow_stop(run->out_follow);
	if (run->err_follow != NULL)
		bd_follow_stop(run->err_follow);
	run->out_follow = run->err_follow = NULL;
}

static const struct bd_runner_observer *
run_observer(struct run *run)
{
	static struct bd_runner_observer o = {
		.phase = run_phase,
		.transfer = run_transfer,
		.launched = run_launched,
		.exited = run_exited,
	};

	o.arg = run;
	return &o;
}

/* One line that says how a task ended, and where its files are. */
static void
run_report(struct run *run, const struct bd_task_spec *t,
    const struct bd_run_outcome *o)
{
	const struct bd_execution_info *i = &o->info;
	double secs = (double)(i->end_ms - i->start_ms) / 1000.0;

	bd_progress_clear();
	if (i->failure != NULL)
		log_warnx("job %s: task %s: failed: %s: %s", run->job->id, t->id, i->failure->code,
		    i->failure->message);
	if (i->has_exit_code)
		log_info("job %s: task %s: completed with exit code %d (%s) "
		    "after %.3f s, %d retr%s", run->job->id, t->id, i->exit_code,
		    bd_task_result_name(i->result), secs, i->retry_count,
		    i->retry_count == 1 ? "y" : "ies");
	else
		log_info("job %s: task %s: completed without running (%s)",
		    run->job->id, t->id,
		    bd_task_result_name(i->result));
	if (o->job_action != BD_JOB_ACTION_NONE)
		log_info("job %s: task %s: exit conditions: jobAction %s",
		    run->job->id, t->id,
		    bd_job_action_name(o->job_action));
	log_info("job %s: task %s: directory %s", run->job->id, t->id,
	    o->dirs.task_dir);
}

/* Writes the task in the CloudTask shape to --result. */
static void
run_write_result(struct run *run, const struct bd_run_outcome *o)
{
	cJSON *doc = run->task_json ? cJSON_Duplicate(run->task_json, 1) :
	    cJSON_CreateObject();
	cJSON *node, *stats;
	char *text;
	int rc;

	cJSON_DeleteItemFromObjectCaseSensitive(doc, "state");
	cJSON_DeleteItemFromObjectCaseSensitive(doc, "executionInfo");
	cJSON_DeleteItemFromObjectCaseSensitive(doc, "nodeInfo");
	cJSON_DeleteItemFromObjectCaseSensitive(doc, "stats");
	cJSON_AddStringToObject(doc, "state", o != NULL ? "completed" :
	    "active");
	if (o != NULL) {
		cJSON_AddItemToObject(doc, "executionInfo",
		    bd_execution_info_to_json(&o->info));
		if ((stats = bd_task_stats_to_json(&o->info)) != NULL)
			cJSON_AddItemToObject(doc, "stats", stats);
		node = cJSON_AddObjectToObject(doc, "nodeInfo");
		cJSON_AddStringToObject(node, "poolId", run->node.pool_id);
		cJSON_AddStringToObject(node, "nodeId", run->node.node_id);
		cJSON_AddStringToObject(node, "taskRootDirectory",
		    o->dirs.task_dir);
	}
	text = cJSON_Print(doc);
	cJSON_Delete(doc);
	char *clean = bd_url_redact(text);
	free(text);
	size_t len = strlen(clean);
	clean = xrealloc(clean, len + 2);
	clean[len++] = '\n';
	clean[len] = '\0';
	if ((rc = bd_write_file_atomic(run->result_path, clean, len, 0644)) < 0)
		log_warnx("%s: cannot write the result: %s", run->result_path,
		    strerror(-rc));
	free(clean);
}

static void
run_on_done(struct bd_runner *r, const struct bd_run_outcome *o, void *arg)
{
	struct run *run = arg;
	const struct bd_task_spec *t;

	run_exited(run);
	switch (run->stage) {
	case STAGE_PREP:
		t = run->job->job_preparation_task;
		run_report(run, t, o);
		run->prep_ran = true;
		run->prep_ok = o->info.result == BD_RESULT_SUCCESS ||
		    !t->wait_for_success;
		if (!run->prep_ok)
			log_warnx("job %s: task %s: not run: the job "
			    "preparation task failed and has waitForSuccess "
			    "set", run->job->id, run->task->id);
		break;
	case STAGE_TASK:
		run_report(run, run->task, o);
		run->task_ran = true;
		if (o->launched && o->info.has_exit_code &&
		    !o->pre_processing_error) {
			int c = o->info.exit_code;
			run->exit_status = c < 0 ? 128 + (-c & 0x7f) : c & 0xff;
		} else
			run->exit_status = 125;
		if (run->result_path != NULL)
			run_write_result(run, o);
		break;
	case STAGE_RELEASE:
		run_report(run, run->job->job_release_task, o);
		break;
	case STAGE_POOL:
	case STAGE_END:
		break;
	}
	bd_runner_free(r);
	run->runner = NULL;
	run->stage++;
	run_next_stage(run);
}

/* Starts a runner for t; false if it could not start. */
static bool
run_start(struct run *run, const struct bd_task_spec *t)
{
	struct bd_runner_options ro = {
		.loop = &run->loop,
		.http = run->http,
		.storage = run->storage,
		.node = &run->node,
		.job = run->job,
		.task = t,
		.users = run->users,
		.kill_grace_ms = run->config->tasks.kill_grace_period_ms,
		.observer = run_observer(run),
	};
	int rc;

	if (!run->quiet)
		log_info("job %s: task %s: starting", run->job->id, t->id);
	if ((rc = bd_runner_start(&ro, run_on_done, run, &run->runner)) < 0) {
		log_warnx("job %s: task %s: cannot start: %s", run->job->id,
		    t->id, bd_strerror(rc));
		return false;
	}
	return true;
}

static void
run_on_http_closed(void *arg)
{
}

static void
run_on_pool_packages(struct bd_app_request *req, int status,
    const char *message, void *arg)
{
	struct run *run = arg;

	if (status < 0) {
		log_warnx("the pool's application packages: %s", message);
		bd_app_request_free(req);
	} else {
		bd_app_packages_set_pool(run->packages, req);
		run->pool_ok = true;
	}
	run->stage = run->pool_ok ? STAGE_PREP : STAGE_END;
	run_next_stage(run);
}

/*
 * The pool's packages of the configuration, as a node installs them
 * before its start task; true when run_on_pool_packages() goes on.
 */
static bool
run_install_pool_packages(struct run *run)
{
	struct bd_app_request *req;
	int rc;

	run->pool_ok = true;
	if (run->packages == NULL || run->config->application_packages.n == 0)
		return false;
	run->pool_ok = false;
	if (!run->quiet)
		log_info("installing the pool's application packages");
	if ((rc = bd_app_packages_acquire(run->packages,
	    run->config->application_packages.items,
	    run->config->application_packages.n, run_on_pool_packages, run,
	    &req)) < 0) {
		log_warnx("the pool's application packages: %s",
		    bd_strerror(rc));
		return false;
	}
	return true;
}

static void
run_next_stage(struct run *run)
{
	for (;;) {
		switch (run->stage) {
		case STAGE_POOL:
			if (run_install_pool_packages(run))
				return;
			if (!run->pool_ok)
				run->stage = STAGE_END - 1;
			break;
		case STAGE_PREP:
			if (run->job->job_preparation_task != NULL &&
			    run_start(run, run->job->job_preparation_task))
				return;
			run->prep_ok = true;
			break;
		case STAGE_TASK:
			if (run->prep_ok && run->interrupts == 0 &&
			    run_start(run, run->task))
				return;
			if (run->result_path != NULL)
				run_write_result(run, NULL);
			break;
		case STAGE_RELEASE:
			if (run->prep_ran && run->job->job_release_task != NULL &&
			    run_start(run, run->job->job_release_task))
				return;
			break;
		case STAGE_END:
			uv_close((uv_handle_t *)&run->sigint, NULL);
			uv_close((uv_handle_t *)&run->sigterm, NULL);
			bd_process_shutdown();
			bd_app_packages_close(run->packages);
			run->packages = NULL;
			if (run->http != NULL)
				bd_http_close(run->http, run_on_http_closed,
				    NULL);
			return;
		}
		run->stage++;
	}
}

static void
run_on_signal(uv_signal_t *h, int signum)
{
	struct run *run = h->data;

	if (++run->interrupts > 1)
		log_warnx("interrupted again: killing the task at once");
	else
		log_warnx("interrupted: ending the task (again to kill it)");
	if (run->runner != NULL)
		bd_runner_terminate(run->runner, signum == SIGINT ?
		    "batchd run was interrupted (SIGINT)" :
		    "batchd run was asked to stop (SIGTERM)");
}

/* True when any of the task's files goes over http(s). */
static bool
run_task_needs_http(const struct bd_task_spec *t)
{
	if (t == NULL)
		return false;
	for (size_t i = 0; i < t->n_resource_files; i++)
		if (!bd_url_is_file(t->resource_files[i].url))
			return true;
	for (size_t i = 0; i < t->n_output_files; i++)
		if (!bd_url_is_file(t->output_files[i].container_url))
			return true;
	return false;
}

/* True when any of the task's resource files is in the storage account. */
static bool
run_task_needs_storage(const struct bd_task_spec *t)
{
	if (t == NULL)
		return false;
	for (size_t i = 0; i < t->n_resource_files; i++)
		if (t->resource_files[i].source ==
		    BD_RESOURCE_AUTO_STORAGE_CONTAINER)
			return true;
	return false;
}

/*
 * Finds the storage account for autoStorageContainerName: the node
 * configuration's (config_path, or the file bd_config_find() names) when
 * it has one, else the one in RUN_STORAGE_ENV, else none.  The file is
 * only read when it was named or when a task needs the account, so that
 * a broken system configuration does not stop tasks that never use it.
 * Returns 0, or -1 after printing why.
 */
static int
run_find_storage(struct run *run, const char *config_path, bool needed)
{
	const char *conn;
	char *cause = NULL;
	int rc;

	if (config_path != NULL || (needed &&
	    bd_config_find(NULL, BD_CONFIG_SYSTEM_PATH) != NULL)) {
		if ((rc = bd_config_load(config_path, &run->config,
		    &cause)) < 0) {
			log_warnx("%s", cause != NULL ? cause :
			    bd_strerror(rc));
			free(cause);
			return -1;
		}
		run->storage = bd_config_storage_account(run->config,
		    BD_STORAGE_BLOB);
	}
	if (run->storage != NULL || !needed)
		return 0;
	if ((conn = getenv(RUN_STORAGE_ENV)) == NULL || *conn == '\0')
		return 0;	/* the download says what is missing */
	if (bd_storage_account_parse(conn, &run->env_storage, &cause) < 0) {
		log_warnx("%s: %s", RUN_STORAGE_ENV, cause);
		free(cause);
		return -1;
	}
	run->storage = run->env_storage;
	return 0;
}

/* Refuses what a node without containers or packages cannot run. */
static int
run_check_supported(const char *file, const struct bd_task_spec *t)
{
	if (t == NULL)
		return 0;
	if (t->container_settings != NULL) {
		log_warnx("%s: containerSettings: this node has no container "
		    "configuration; batchd runs tasks directly on the node",
		    file);
		return -1;
	}
	if (t->multi_instance != NULL &&
	    t->multi_instance->number_of_instances > 1) {
		log_warnx("%s: multiInstanceSettings.numberOfInstances: %d "
		    "nodes are needed; batchd run has one", file,
		    t->multi_instance->number_of_instances);
		return -1;
	}
	return 0;
}

/* True when t references application packages. */
static bool
run_task_needs_packages(const struct bd_task_spec *t)
{
	return t != NULL && t->n_application_packages > 0;
}

/* The default node root: the node's when root, else the user's own. */
/*
 * The accounts tasks run as (as root: the configuration's users, created
 * if missing; else batchd's own user), and a check that a configuration
 * with credentials is out of their reach.  0 or -1 (logged).
 */
static int
run_task_users(struct run *run, const char *root)
{
	struct bd_task_users_options o = { .node_root = root };
	char *cause = NULL;

	if (run->config != NULL) {
		o.pool_non_admin = run->config->users.pool_non_admin;
		o.pool_admin = run->config->users.pool_admin;
		o.accounts = run->config->users.accounts;
		o.n_accounts = run->config->users.n_accounts;
	}
	if (bd_task_users_new(&o, &run->users, &cause) < 0 ||
	    (run->config != NULL && bd_task_users_guard(run->users,
	    run->config, false, &cause) < 0)) {
		log_warnx("task users: %s", cause);
		free(cause);
		return -1;
	}
	return 0;
}

static char *
run_default_root(void)
{
	const char *home;

	if (geteuid() == 0)
		return xstrdup("/mnt/batch/tasks");
	if ((home = getenv("XDG_STATE_HOME")) != NULL && home[0] == '/')
		return xasprintf("%s/batchd/tasks", home);
	if ((home = getenv("HOME")) == NULL)
		home = "/tmp";
	return xasprintf("%s/.local/state/batchd/tasks", home);
}

int
bd_cmd_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "root", required_argument, NULL, 'r' },
		{ "job", required_argument, NULL, 'j' },
		{ "result", required_argument, NULL, 'o' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct run run;
	char *root = NULL, *job_path = NULL, *text = NULL, *cause = NULL;
	const char *config_path = NULL;
	char hostname[256];
	size_t len;
	int ch, rc, status = 125;

	memset(&run, 0, sizeof(run));
	optind = 1;
	while ((ch = getopt_long(argc, argv, "r:j:o:c:qh", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'r':
			free(root);
			root = xstrdup(optarg);
			break;
		case 'j':
			job_path = optarg;
			break;
		case 'o':
			run.result_path = optarg;
			break;
		case 'q':
			run.quiet = true;
			break;
		case 'c':
			config_path = optarg;
			break;
		case 'h':
			run_usage();
			free(root);
			return 0;
		default:
			run_usage();
			free(root);
			return 125;
		}
	}
	if (optind + 1 != argc) {
		run_usage();
		free(root);
		return 125;
	}
	const char *task_path = argv[optind];

	/* The task and its job are checked completely before anything runs. */
	if ((run.task_json = run_read_json(task_path, &text, &len)) == NULL &&
	    text == NULL)
		goto out;
	rc = bd_task_spec_parse(text, len, BD_TASK_KIND_TASK, &run.task,
	    &cause);
	free(text);
	text = NULL;
	if (rc < 0) {
		log_warnx("%s: %s", task_path, cause);
		goto out;
	}
	if (job_path != NULL) {
		cJSON *j = run_read_json(job_path, &text, &len);
		cJSON_Delete(j);
		if (text == NULL)
			goto out;
		rc = bd_job_spec_parse(text, len, &run.job, &cause);
		free(text);
		text = NULL;
		if (rc < 0) {
			log_warnx("%s: %s", job_path, cause);
			goto out;
		}
	} else
		run.job = bd_job_spec_default("job");
	if (bd_job_spec_check_task(run.job, run.task, &cause) < 0) {
		log_warnx("%s: %s", task_path, cause);
		goto out;
	}
	if (run_check_supported(task_path, run.task) < 0 ||
	    run_check_supported(job_path, run.job->job_preparation_task) < 0 ||
	    run_check_supported(job_path, run.job->job_release_task) < 0)
		goto out;
	bool needs_packages = run_task_needs_packages(run.task) ||
	    run_task_needs_packages(run.job->job_preparation_task) ||
	    run_task_needs_packages(run.job->job_release_task);
	if (run_find_storage(&run, config_path,
	    run_task_needs_storage(run.task) ||
	    run_task_needs_storage(run.job->job_preparation_task) ||
	    run_task_needs_storage(run.job->job_release_task)) < 0)
		goto out;
	/* Packages come from the configured store, else the default one. */
	if (needs_packages && run.config == NULL &&
	    (rc = bd_config_load(config_path, &run.config, &cause)) < 0) {
		log_warnx("%s", cause != NULL ? cause : bd_strerror(rc));
		goto out;
	}

	if (root == NULL)
		root = run_default_root();
	if (root[0] != '/') {
		/* AZ_BATCH_NODE_ROOT_DIR and every path below it are absolute
		 * (uploads refuse a relative working directory). */
		char cwd[PATH_MAX];
		if (getcwd(cwd, sizeof(cwd)) == NULL) {
			log_warnx("node root %s: %s", root, strerror(errno));
			goto out;
		}
		char *abs = bd_path_join(cwd, root);
		free(root);
		root = abs;
	}
	if ((rc = bd_layout_prepare_node(root)) < 0) {
		log_warnx("node root %s: %s%s", root, strerror(-rc),
		    rc == -EACCES ? " (use --root DIR)" : "");
		goto out;
	}
	if (gethostname(hostname, sizeof(hostname)) == -1)
		strcpy(hostname, "localhost");
	hostname[sizeof(hostname) - 1] = '\0';
	run.node.root = root;
	run.node.pool_id = "local";
	run.node.node_id = hostname;
	run.node.is_dedicated = true;
	if (run_task_users(&run, root) < 0)
		goto out;

	/* Task cgroups and limits: --config's, else the built-in defaults. */
	if (run.config == NULL && (rc = bd_config_parse(NULL, 0, NULL,
	    &run.config, &cause)) < 0) {
		log_warnx("%s", cause != NULL ? cause : bd_strerror(rc));
		goto out;
	}
	bd_cgroup_setup_config(run.config);

	uv_loop_init(&run.loop);
	if ((rc = bd_process_init(&run.loop)) < 0) {
		log_warnx("cannot watch child processes: %s", strerror(-rc));
		uv_loop_close(&run.loop);
		goto out;
	}
	bool store_blob = run.config != NULL &&
	    run.config->application_store.container != NULL;
	if (run_task_needs_http(run.task) ||
	    run_task_needs_http(run.job->job_preparation_task) ||
	    run_task_needs_http(run.job->job_release_task) || store_blob) {
		struct bd_http_options ho = { .max_active = 16 };
		if (run.config != NULL)
			ho.ca_file = run.config->http.ca_file;
		if ((rc = bd_http_new(&run.loop, &ho, &run.http)) < 0) {
			log_warnx("cannot start the HTTP client: %s",
			    bd_strerror(rc));
			bd_process_shutdown();
			uv_run(&run.loop, UV_RUN_DEFAULT);
			uv_loop_close(&run.loop);
			goto out;
		}
	}
	if (run.config != NULL && (rc = bd_app_packages_from_config(&run.loop,
	    run.http, run.config, root, &run.packages, &cause)) < 0)
		log_warnx("application packages: %s", cause);
	run.node.packages = run.packages;
	uv_signal_init(&run.loop, &run.sigint);
	uv_signal_init(&run.loop, &run.sigterm);
	run.sigint.data = run.sigterm.data = &run;
	uv_signal_start(&run.sigint, run_on_signal, SIGINT);
	uv_signal_start(&run.sigterm, run_on_signal, SIGTERM);
	signal(SIGPIPE, SIG_IGN);

	run.exit_status = 125;
	run.stage = STAGE_POOL;
	run_next_stage(&run);
	uv_run(&run.loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&run.loop) != 0)
		log_warnx("internal: handles left open at exit");
	status = run.task_ran ? run.exit_status : 125;

out:
	free(cause);
	free(text);
	free(root);
	cJSON_Delete(run.task_json);
	bd_task_spec_free(run.task);
	bd_job_spec_free(run.job);
	bd_storage_account_free(run.env_storage);
	bd_task_users_free(run.users);
	bd_config_free(run.config);
	return status;
}
