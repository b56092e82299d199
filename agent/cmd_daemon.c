/* SPDX-License-Identifier: MIT */
/*
 * `batchd daemon [--config FILE]`: the node agent.  Reads the
 * configuration, opens the pool, makes sure its queues and tables exist,
 * and runs the daemon until SIGTERM or SIGINT, which drain it by the
 * configured deallocation option (a second signal ends running tasks at
 * once by requeueing them).  SIGHUP re-reads the configuration and applies
 * what can change safely (bd_daemon_reload(); docs/configuration.md,
 * "Reloading: SIGHUP", lists the options).  SIGUSR2
 * is a restart (systemd/batchd.service sends it from ExecStop= when a
 * restart job is queued): batchd exits at once and leaves its running
 * tasks to their supervisors, for the next start to adopt (adopt.h), just
 * as after a crash, since every task's state is on disk all along.
 */
#include "cmd_daemon.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app_package.h"
#include "cgroup.h"
#include "config.h"
#include "daemon.h"
#include "error.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "pool.h"
#include "process.h"
#include "store_local.h"
#include "task_user.h"
#include "xmalloc.h"

#define NODE_COMMIT_DELAY_MS 50	/* a row waits at most this for its commit */

struct node {
	uv_loop_t loop;
	struct bd_config *cfg;
	const char *config_path;
	struct bd_pool *pool;
	struct bd_daemon *daemon;
	struct bd_app_packages *packages;
	struct bd_metrics *metrics;
	struct bd_task_users *users;	/* who tasks run as */
	uv_signal_t sigterm, sigint, sighup, sigusr2;
	uv_timer_t watchdog;
	int stops;
	int status;
};

static void
node_on_pool_closed(void *arg)
{
}

/* Everything is drained: close what is left so the loop can end. */
static void
node_on_drained(void *arg)
{
	struct node *n = arg;

	log_info("node %s: stopped", n->cfg->node_id);
	bd_metrics_stop(n->metrics);
	n->metrics = NULL;
	bd_daemon_free(n->daemon);
	n->daemon = NULL;
	bd_app_packages_close(n->packages);
	n->packages = NULL;
	/* The daemon owned the source and store. */
	n->pool->source = NULL;
	n->pool->store = NULL;
	bd_pool_close(n->pool, node_on_pool_closed, n);
	n->pool = NULL;
	bd_process_shutdown();
	uv_close((uv_handle_t *)&n->sigterm, NULL);
	uv_close((uv_handle_t *)&n->sigint, NULL);
	uv_close((uv_handle_t *)&n->sighup, NULL);
	uv_close((uv_handle_t *)&n->sigusr2, NULL);
	uv_close((uv_handle_t *)&n->watchdog, NULL);
}

static void
node_on_stop(uv_signal_t *h, int signum)
{
	struct node *n = h->data;

	if (n->daemon == NULL)
		return;
	if (++n->stops == 1) {
		log_info("node %s: %s: draining", n->cfg->node_id,
		    strsignal(signum));
		bd_notify("STOPPING=1\nSTATUS=draining (%s)",
		    strsignal(signum));
		bd_daemon_drain(n->daemon, node_on_drained, n);
	} else {
		log_warnx("node %s: %s again: ending running tasks now",
		    n->cfg->node_id, strsignal(signum));
		bd_daemon_drain(n->daemon, node_on_drained, n);
	}
}

static void node_settings(const struct bd_config *c,
    struct bd_daemon_settings *s);

static void
node_on_restart(uv_signal_t *h, int signum)
{
	struct node *n = h->data;
	struct bd_daemon_stats st;
	int rc;

	if (n->daemon == NULL || n->stops > 0)
		return; /* a drain goes on: the tasks end with it */
	bd_daemon_stats(n->daemon, &st);
	log_info("node %s: %s: restarting; %d task%s left running for the "
	    "next start", n->cfg->node_id, strsignal(signum), st.running,
	    st.running == 1 ? "" : "s");
	bd_notify("STOPPING=1\nSTATUS=restarting");
	/*
	 * Nothing to drain.  The completed rows waiting for their commit
	 * are made durable now: the next start may take their messages at
	 * once and delete them on the strength of those rows.
	 */
	if ((rc = bd_store_local_flush(n->pool->store)) < 0 && rc != -EINVAL)
		log_warnx("node %s: cannot sync the spool's rows: %s",
		    n->cfg->node_id, strerror(-rc));
	_exit(0);
}

static void
node_on_hup(uv_signal_t *h, int signum)
{
	struct node *n = h->data;
	struct bd_config *fresh = NULL;
	struct bd_daemon_settings s;
	char *cause = NULL;

	if (bd_config_load(n->config_path, &fresh, &cause) < 0) {
		log_warnx("configuration not reloaded: %s", cause);
		free(cause);
		return;
	}
	log_init((enum bd_log_level)fresh->log.level,
	    (enum bd_log_format)fresh->log.format);
	if (n->daemon != NULL) {
		node_settings(fresh, &s);
		bd_daemon_reload(n->daemon, &s);
	}
	log_info("node %s: configuration reloaded (options that need a "
	    "restart take effect at the next start)", n->cfg->node_id);
	bd_config_free(fresh);
}

static void
node_on_created(void *arg, int status, const char *detail)
{
	struct node *n = arg;

	if (status < 0) {
		log_warnx("pool %s: cannot create its queues and tables: %s",
		    n->cfg->pool_id, detail ? detail : bd_strerror(status));
		n->status = 1;
		/* Drain at once: nothing runs yet. */
		bd_daemon_drain(n->daemon, node_on_drained, n);
		return;
	}
	bd_daemon_start(n->daemon);
	/* The pool's queues and tables exist and the node has joined. */
	bd_notify("READY=1\nSTATUS=node %s in pool %s", n->cfg->node_id,
	    n->cfg->pool_id);
}

/* What the metrics show, read when they are made. */
static void
node_sample(void *arg, struct bd_metrics_sample *s)
{
	struct node *n = arg;

	s->pool_id = n->cfg->pool_id;
	s->node_id = n->cfg->node_id;
	s->total_slots = (int)n->cfg->task_slots_per_node;
	if (n->daemon != NULL)
		bd_daemon_stats(n->daemon, &s->stats);
	else
		s->stats.state = "starting";
}

static void
node_on_watchdog(uv_timer_t *t)
{
	bd_notify("WATCHDOG=1");
}

/* The daemon's HTTP client, made on first use (bd_pool_http). */
static struct bd_http *
node_http(void *arg)
{
	struct node *n = arg;
	struct bd_http *http = NULL;
	char *cause = NULL;

	if (n->pool == NULL || bd_pool_http(n->pool, &http, &cause) < 0) {
		log_warnx("node %s: %s", n->cfg->node_id,
		    cause ? cause : "no pool");
		free(cause);
		return NULL;
	}
	return http;
}

static void
node_settings(const struct bd_config *c, struct bd_daemon_settings *s)
{
	memset(s, 0, sizeof(*s));
	s->pool_id = c->pool_id;
	s->node_id = c->node_id;
	s->node_root = c->node_root;
	s->state_dir = c->state_dir;
	if (c->storage.kind == BD_CONFIG_STORAGE_LOCAL)
		s->spool_dir = c->spool_dir;
	s->task_slots = (int)c->task_slots_per_node;
	s->is_dedicated = c->is_dedicated;
	s->poll_min_ms = c->queue.poll_min_interval_ms;
	s->poll_max_ms = c->queue.poll_max_interval_ms;
	s->lease_ms = c->queue.lease_duration_ms;
	s->max_dequeue_count = (int)c->queue.max_dequeue_count;
	s->heartbeat_ms = c->heartbeat_interval_ms;
	s->job_check_ms = c->job_check_interval_ms;
	s->kill_grace_ms = c->tasks.kill_grace_period_ms;
	s->stdout_max_bytes = c->tasks.stdout_max_bytes;
	s->stderr_max_bytes = c->tasks.stderr_max_bytes;
	switch (c->node_deallocation_option) {
	case BD_CONFIG_DEALLOCATE_TERMINATE:
		s->deallocation = BD_DEALLOCATE_TERMINATE;
		break;
	case BD_CONFIG_DEALLOCATE_TASK_COMPLETION:
		s->deallocation = BD_DEALLOCATE_TASK_COMPLETION;
		break;
	case BD_CONFIG_DEALLOCATE_RETAINED_DATA:
		s->deallocation = BD_DEALLOCATE_RETAINED_DATA;
		break;
	default:
		s->deallocation = BD_DEALLOCATE_REQUEUE;
		break;
	}
	s->default_retention_ms = c->tasks.default_retention_time_ms;
	s->free_space_reserve_bytes = (uint64_t)c->tasks.free_space_reserve_bytes;
	s->start_task = c->start_task;
	s->storage = bd_config_storage_account(c, BD_STORAGE_BLOB);
}

int
bd_cmd_daemon(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct bd_daemon_settings settings;
	struct node n;
	char *cause = NULL;
	int ch, rc;

	memset(&n, 0, sizeof(n));
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			n.config_path = optarg;
			break;
		case 'h':
			printf("usage: batchd daemon [--config FILE]\n");
			return 0;
		default:
			fprintf(stderr, "usage: batchd daemon [--config FILE]\n");
			return 125;
		}
	}
	if ((rc = bd_config_load(n.config_path, &n.cfg, &cause)) < 0) {
		fprintf(stderr, "%s\n", cause);
		free(cause);
		return 1;
	}
	log_init((enum bd_log_level)n.cfg->log.level,
	    (enum bd_log_format)n.cfg->log.format);
	signal(SIGPIPE, SIG_IGN);
	bd_cgroup_setup_config(n.cfg);
	uv_loop_init(&n.loop);
	if ((rc = bd_process_init(&n.loop)) < 0) {
		log_warnx("cannot watch child processes: %s", strerror(-rc));
		goto fail;
	}
	if ((rc = bd_pool_open(&n.loop, n.cfg, false, &n.pool, &cause)) < 0) {
		log_warnx("pool %s: %s", n.cfg->pool_id, cause);
		goto fail;
	}
	/*
	 * A completed row is visible at once and its task's slot is free;
	 * only the delete of its message waits for the commit.  Letting the
	 * rows of the next 50 ms share it costs nothing a user sees, and
	 * short tasks no longer pay a journal commit each
	 * (docs/performance.md).
	 */
	(void)bd_store_local_set_commit_delay(n.pool->store,
	    NODE_COMMIT_DELAY_MS);
	struct bd_task_users_options uo = {
		.pool_non_admin = n.cfg->users.pool_non_admin,
		.pool_admin = n.cfg->users.pool_admin,
		.accounts = n.cfg->users.accounts,
		.n_accounts = n.cfg->users.n_accounts,
		.node_root = n.cfg->node_root,
	};
	if ((rc = bd_task_users_new(&uo, &n.users, &cause)) < 0 ||
	    (rc = bd_task_users_guard(n.users, n.cfg, true, &cause)) < 0) {
		log_warnx("task users: %s", cause);
		goto fail;
	}
	/* A container store needs HTTP now; a directory store never does. */
	if ((rc = bd_app_packages_from_config(&n.loop,
	    n.cfg->application_store.container != NULL ? node_http(&n) : NULL, n.cfg,
	    n.cfg->node_root, &n.packages, &cause)) < 0) {
		log_warnx("node %s: %s", n.cfg->node_id, cause);
		goto fail;
	}
	struct bd_metrics_options mo = { n.cfg->metrics.textfile_dir,
	    n.cfg->metrics.listen, n.cfg->metrics.interval_ms };
	if ((rc = bd_metrics_start(&n.loop, &mo, node_sample, &n, &n.metrics,
	    &cause)) < 0) {
		log_warnx("node %s: %s", n.cfg->node_id, cause);
		goto fail;
	}
	node_settings(n.cfg, &settings);
	settings.packages = n.packages;
	settings.pool_packages = n.cfg->application_packages.items;
	settings.n_pool_packages = n.cfg->application_packages.n;
	settings.get_http = node_http;
	settings.http_arg = &n;
	settings.users = n.users;
	if ((rc = bd_daemon_new(&n.loop, &settings, n.pool->source,
	    n.pool->store, n.pool->http, &n.daemon, &cause)) < 0) {
		log_warnx("node %s: %s", n.cfg->node_id, cause);
		goto fail;
	}
	uv_signal_init(&n.loop, &n.sigterm);
	uv_signal_init(&n.loop, &n.sigint);
	uv_signal_init(&n.loop, &n.sighup);
	uv_signal_init(&n.loop, &n.sigusr2);
	n.sigterm.data = n.sigint.data = n.sighup.data = n.sigusr2.data = &n;
	uv_signal_start(&n.sigusr2, node_on_restart, SIGUSR2);
	uv_signal_start(&n.sigterm, node_on_stop, SIGTERM);
	uv_signal_start(&n.sigint, node_on_stop, SIGINT);
	uv_signal_start(&n.sighup, node_on_hup, SIGHUP);
	uv_timer_init(&n.loop, &n.watchdog);
	if (bd_notify_watchdog_ms() > 0)
		uv_timer_start(&n.watchdog, node_on_watchdog,
		    (uint64_t)bd_notify_watchdog_ms(),
		    (uint64_t)bd_notify_watchdog_ms());
	if (bd_pool_create(n.pool, node_on_created, &n) < 0)
		bd_daemon_start(n.daemon);
	uv_run(&n.loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&n.loop) != 0)
		log_warnx("internal: handles left open at exit");
	bd_task_users_free(n.users);
	bd_config_free(n.cfg);
	return n.status;
fail:
	free(cause);
	bd_app_packages_close(n.packages);
	bd_metrics_stop(n.metrics);
	if (n.pool != NULL)
		bd_pool_close(n.pool, NULL, NULL);
	bd_process_shutdown();
	uv_run(&n.loop, UV_RUN_DEFAULT);
	uv_loop_close(&n.loop);
	bd_task_users_free(n.users);
	bd_config_free(n.cfg);
	return 1;
}
