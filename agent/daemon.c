/* SPDX-License-Identifier: MIT */
/*
 * The node daemon (see daemon.h).
 *
 * Slots: free_slots counts what assignments do not hold.  A poll asks for
 * at most that many messages, and each message starts an assignment that
 * holds one slot (it may take more for requiredSlots, or give them back
 * while it waits for dependencies by leaving the queue).
 *
 * Polling adapts: right after a poll that found work the next one runs at
 * once (while slots are free); after an empty poll the interval doubles
 * from poll_min up to poll_max.  There is never more than one receive in
 * flight, and no timer runs faster than poll_min.
 *
 * The node's row in the store is written when its state changes and at
 * every heartbeat.  Timers: poll, heartbeat and job check; all three are
 * closed by bd_daemon_free(), which frees in the last close callback.
 */
#include "daemon.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "app_package.h"
#include "adopt.h"
#include "assignment.h"
#include "cgroup.h"
#include "clock.h"
#include "version.h"
#include "error.h"
#include "fsutil.h"
#include "housekeeping.h"
#include "jobs.h"
#include "layout.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "runner.h"
#include "xmalloc.h"

struct bd_daemon {
	uv_loop_t *loop;
	struct bd_daemon_settings s;
	struct bd_source *source;
	struct bd_store *store;
	struct bd_http *http;
	struct bd_jobs *jobs;
	struct bd_housekeeping *hk;
	struct bd_node_info node;
	struct bd_daemon_stats stats;

	struct bd_assignment **assignments;
	size_t n_assignments, cap_assignments;
	int free_slots;
	/* Started ahead, ready, waiting for slots: oldest first, each with
	   the time it parked.  At most task_slots. */
	struct daemon_parked {
		struct bd_assignment *a;
		int64_t since_ms;
	} *parked;
	size_t n_parked;
	/* Moving average of how long this node's tasks ran, in ms: receiving
	   ahead pays only while tasks are short. */
	int64_t avg_run_ms;

	uv_timer_t poll_timer, heartbeat_timer, job_timer, park_timer;
	int open_handles;
	int64_t poll_interval;
	bool receiving;
	bool accepting;		/* start task done (or not waited for) */
	bool start_failed;
	char *start_failure;	/* why, for the node's row */
	bool draining;
	bool node_write_in_flight;
	int giving_back;	/* messages being made visible again */
	struct bd_runner *start_runner;
	struct bd_app_request *pool_packages;	/* while they install */
	char *unusable;		/* why the node cannot run tasks, or NULL */
	void (*drain_cb)(void *arg);
	void *drain_arg;
	const char *last_state;
	size_t last_retained;	/* retainedTaskDirs last written */
	char *adopt_dir;	/* <stateDir>/tasks (adopt.h) */
	int adopting;		/* adopted tasks whose lease is not settled */
};

static void daemon_poll_soon(struct bd_daemon *d, int64_t delay_ms);
static void daemon_give_back_parked(struct bd_daemon *d);

/*
 * Receiving ahead.  While tasks are short, a slot that frees waits for the
 * next message's receive, task row read and claim, which can take longer
 * than the task.  So while work flows and tasks run under
 * DAEMON_AHEAD_MAX_RUN_MS on average, the daemon receives up to
 * task_slots messages more than it has free slots: their assignments
 * read the job and the task row, then park until a slot frees.  One
 * parked longer than DAEMON_PARK_MS gives its message back to the queue
 * for other nodes.
 */
#define DAEMON_AHEAD_MAX_RUN_MS	500
#define DAEMON_PARK_MS		1000

/* Assignments started ahead that hold no slot yet. */
static int
daemon_ahead(const struct bd_daemon *d)
{
	int n = 0;

	for (size_t i = 0; i < d->n_assignments; i++)
		n += bd_assignment_ahead(d->assignments[i]);
	return n;
}

/* How many messages a receive may ask for now beyond the free slots. */
static int
daemon_ahead_room(const struct bd_daemon *d)
{
	if (d->poll_interval > d->s.poll_min_ms || d->avg_run_ms <= 0 ||
	    d->avg_run_ms > DAEMON_AHEAD_MAX_RUN_MS)
		return 0;
	return d->s.task_slots - daemon_ahead(d);
}

/* Makes sure the HTTP client exists before something may need it. */
static void
daemon_need_http(struct bd_daemon *d)
{
	if (d->http == NULL && d->s.get_http != NULL)
		d->http = d->s.get_http(d->s.http_arg);
}
static void daemon_check_drained(struct bd_daemon *d);

/* The node's state, in Azure's ComputeNodeState words. */
static const char *
daemon_state(const struct bd_daemon *d)
{
	if (d->draining)
		return "leavingpool";
	if (d->unusable != NULL)
		return "unusable";
	if (d->start_failed)
		return "starttaskfailed";
	if (bd_housekeeping_problem(d->hk) != NULL)
		return "unusable";
	if (!d->accepting)
		return d->start_runner != NULL ? "waitingforstarttask" :
		    "starting";
	return d->n_assignments > 0 ? "running" : "idle";
}

static void
daemon_on_node_written(void *arg, int status, const char *etag,
    const char *detail)
{
	struct bd_daemon *d = arg;

	d->node_write_in_flight = false;
	if (status < 0)
		log_warnx("node %s: cannot write the node's record: %s",
		    d->s.node_id, detail ? detail : bd_strerror(status));
	if (d->draining)
		daemon_check_drained(d);
}

/* Writes the node's row (protocol §5); state overrides the computed one. */
static void
daemon_write_node(struct bd_daemon *d, const char *state)
{
	struct bd_entity *e;
	struct utsname un;
	char buf[40];
	long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
	size_t running;

	if (d->node_write_in_flight)
		return;
	if (state == NULL)
		state = daemon_state(d);
	d->last_state = state;
	running = d->n_assignments - (size_t)daemon_ahead(d);
	bd_notify("STATUS=%s: %zu task%s running, %d of %d slots free", state,
	    running, running == 1 ? "" : "s", d->free_slots, d->s.task_slots);
	e = bd_entity_new(d->s.pool_id, d->s.node_id);
	e->lazy = true;		/* the next heartbeat writes it again */
	cJSON_AddStringToObject(e->props, "state", state);
	bd_clock_format_iso(bd_clock_now_ms(), buf, sizeof(buf));
	cJSON_AddStringToObject(e->props, "lastHeartbeat", buf);
	cJSON_AddNumberToObject(e->props, "runningTasks", (double)running);
	cJSON_AddNumberToObject(e->props, "freeSlots", d->free_slots);
	cJSON_AddNumberToObject(e->props, "totalSlots", d->s.task_slots);
	cJSON_AddStringToObject(e->props, "agentVersion", BATCHD_VERSION);
	/* Why the node is unusable (or starttaskfailed); empty otherwise. */
	cJSON_AddStringToObject(e->props, "stateReason",
	    strcmp(state, "unusable") == 0 && bd_housekeeping_problem(d->hk) ?
	    bd_housekeeping_problem(d->hk) : strcmp(state, "unusable") == 0 &&
	    d->unusable != NULL ? d->unusable : strcmp(state,
	    "starttaskfailed") == 0 && d->start_failure ? d->start_failure :
	    "");
	d->last_retained = bd_housekeeping_retained(d->hk);
	cJSON_AddNumberToObject(e->props, "retainedTaskDirs",
	    (double)d->last_retained);
	if (bd_housekeeping_free_bytes(d->hk) >= 0)
		cJSON_AddNumberToObject(e->props, "freeBytes",
		    (double)bd_housekeeping_free_bytes(d->hk));
	if (d->unusable != NULL) {
		/* ComputeNode.errors[0], flat as a table row must be. */
		cJSON_AddStringToObject(e->props, "errorCode",
		    "ApplicationPackageError");
		cJSON_AddStringToObject(e->props, "errorMessage", d->unusable);
	}
	cJSON_AddNumberToObject(e->props, "cpus",
	    (double)sysconf(_SC_NPROCESSORS_ONLN));
	if (pages > 0 && psize > 0)
		cJSON_AddNumberToObject(e->props, "memoryBytes",
		    (double)pages * (double)psize);
	if (uname(&un) == 0) {
		cJSON_AddStringToObject(e->props, "hostname", un.nodename);
		cJSON_AddStringToObject(e->props, "kernel", un.release);
	}
	if (bd_store_merge(d->store, BD_TABLE_NODES, e, NULL,
	    daemon_on_node_written, d) == 0)
		d->node_write_in_flight = true;
	bd_entity_free(e);
}

/* Writes the node's row when its state changed. */
static void
daemon_state_changed(struct bd_daemon *d)
{
	const char *now = daemon_state(d);

	if (d->last_state == NULL || strcmp(now, d->last_state) != 0)
		daemon_write_node(d, NULL);
}

static void
daemon_on_heartbeat(uv_timer_t *t)
{
	daemon_write_node(t->data, NULL);
}

static void
daemon_on_job_timer(uv_timer_t *t)
{
	struct bd_daemon *d = t->data;

	/* A release task may download files. */
	if (bd_jobs_watching(d->jobs))
		daemon_need_http(d);
	bd_jobs_check(d->jobs);
}

/* ---- assignments ------------------------------------------------------ */

static bool
daemon_reserve(void *arg, int n)
{
	struct bd_daemon *d = arg;

	if (d->free_slots < n)
		return false;
	d->free_slots -= n;
	return true;
}

/* Takes the i-th parked assignment off the list (0: the oldest). */
static struct bd_assignment *
daemon_parked_take(struct bd_daemon *d, size_t i)
{
	struct bd_assignment *a = d->parked[i].a;

	memmove(d->parked + i, d->parked + i + 1,
	    (--d->n_parked - i) * sizeof(*d->parked));
	return a;
}

static void
daemon_release(void *arg, int n)
{
	struct bd_daemon *d = arg;

	d->free_slots += n;
	if (d->draining) {
		daemon_give_back_parked(d);
		return;
	}
	/* A parked assignment is the next to run: it takes the slots. */
	for (size_t tries = d->n_parked; tries > 0 && d->free_slots > 0 &&
	    d->n_parked > 0; tries--)
		bd_assignment_resume(daemon_parked_take(d, 0));
	/* While work flows, a freed slot is filled at once; else at the next
	 * poll, which a poll that found no free slot did not arm. */
	daemon_poll_soon(d, d->poll_interval <= d->s.poll_min_ms ? 0 :
	    d->poll_interval);
}

/* Every parked assignment gives its message back (the node drains). */
static void
daemon_give_back_parked(struct bd_daemon *d)
{
	while (d->n_parked > 0) {
		struct bd_assignment *a = d->parked[--d->n_parked].a;
		bd_assignment_give_back(a);
	}
	uv_timer_stop(&d->park_timer);
}

static void
daemon_on_park_timer(uv_timer_t *t)
{
	struct bd_daemon *d = t->data;
	int64_t now = bd_clock_mono_ms();

	/* The oldest first: give back those parked too long. */
	while (d->n_parked > 0 && now - d->parked[0].since_ms >=
	    DAEMON_PARK_MS) {
		bd_assignment_give_back(daemon_parked_take(d, 0));
		/* A task here has run that long at least: no more receiving
		 * ahead until short ones bring the average down again. */
		if (d->avg_run_ms < DAEMON_PARK_MS)
			d->avg_run_ms = DAEMON_PARK_MS;
	}
	if (d->n_parked > 0)
		uv_timer_start(&d->park_timer, daemon_on_park_timer,
		    (uint64_t)(d->parked[0].since_ms + DAEMON_PARK_MS - now), 0);
}

static void
daemon_park(void *arg, struct bd_assignment *a)
{
	struct bd_daemon *d = arg;

	d->parked = xreallocarray(d->parked, d->n_parked + 1,
	    sizeof(*d->parked));
	d->parked[d->n_parked].a = a;
	d->parked[d->n_parked].since_ms = bd_clock_mono_ms();
	if (d->n_parked++ == 0)
		uv_timer_start(&d->park_timer, daemon_on_park_timer,
		    DAEMON_PARK_MS, 0);
}

/* Takes a off the parked list, if it is there. */
static void
daemon_unpark(struct bd_daemon *d, struct bd_assignment *a)
{
	for (size_t i = 0; i < d->n_parked; i++) {
		if (d->parked[i].a == a) {
			(void)daemon_parked_take(d, i);
			return;
		}
	}
}

/* An adopted task's lease is settled: polling may start once all are. */
static void
daemon_adopt_settled(void *arg)
{
	struct bd_daemon *d = arg;

	if (--d->adopting == 0 && d->accepting)
		daemon_poll_soon(d, 0);
}

static void
daemon_assignment_done(void *arg, struct bd_assignment *a)
{
	struct bd_daemon *d = arg;
	int64_t retention_ms, run_ms;
	char *dir;

	for (size_t i = 0; i < d->n_assignments; i++) {
		if (d->assignments[i] == a) {
			d->assignments[i] = d->assignments[--d->n_assignments];
			break;
		}
	}
	daemon_unpark(d, a);
	if ((run_ms = bd_assignment_run_ms(a)) >= 0)
		d->avg_run_ms = d->avg_run_ms <= 0 ? run_ms :
		    (d->avg_run_ms * 7 + run_ms) / 8;
	/* Its directory stays for the task's retentionTime (spec §4.4); a
	 * task that set none (Azure's default, 7 days) gets the node's. */
	if ((dir = bd_assignment_task_dir(a, &retention_ms)) != NULL) {
		if (retention_ms == BD_TASK_RETENTION_DEFAULT_MS)
			retention_ms = d->s.default_retention_ms;
		bd_housekeeping_retain(d->hk, dir, retention_ms);
		free(dir);
	}
	bd_assignment_free(a);
	daemon_state_changed(d);
	if (d->draining)
		daemon_check_drained(d);
}

/*
 * Starts an assignment for message m, or (m NULL) adopts the task of rec
 * (taken over) from before a restart.
 */
static void
daemon_start_assignment(struct bd_daemon *d, struct bd_message *m,
    struct bd_adopt_record *rec, bool ahead)
{
	struct bd_assignment_env env = {
		.loop = d->loop,
		.http = &d->http,
		.source = d->source,
		.store = d->store,
		.jobs = d->jobs,
		.node = &d->node,
		.users = d->s.users,
		.settings = &d->s,
		.stats = &d->stats,
		.adopt_dir = d->adopt_dir,
	};
	struct bd_assignment_hooks hooks = {
		.reserve = daemon_reserve,
		.release = daemon_release,
		.done = daemon_assignment_done,
		.settled = daemon_adopt_settled,
		.park = daemon_park,
		.arg = d,
	};
	struct bd_assignment *a;

	if (d->n_assignments == d->cap_assignments) {
		d->cap_assignments = d->cap_assignments ?
		    d->cap_assignments * 2 : 16;
		d->assignments = xreallocarray(d->assignments,
		    d->cap_assignments, sizeof(*d->assignments));
	}
	if (ahead)
		bd_assignment_start_ahead(&env, m, &hooks, &a);
	else {
		d->free_slots--;
		if (m != NULL)
			bd_assignment_start(&env, m, &hooks, &a);
		else
			bd_assignment_adopt(&env, rec, &hooks, &a);
	}
	d->assignments[d->n_assignments++] = a;
}

/* ---- polling ---------------------------------------------------------- */

struct give_back {
	struct bd_daemon *d;
	struct bd_message *m;
};

static void
daemon_on_given_back(void *arg, int status, const char *detail)
{
	struct give_back *g = arg;

	bd_message_free(g->m);
	g->d->giving_back--;
	if (g->d->draining)
		daemon_check_drained(g->d);
	free(g);
}

/*
 * Makes a message received during a drain visible again at once, for
 * another node; the message is freed when that is done.
 */
static void
daemon_give_back(struct bd_daemon *d, struct bd_message *m)
{
	struct give_back *g = xcalloc(1, sizeof(*g));

	g->d = d;
	g->m = m;
	if (bd_source_update(d->source, m, 0, NULL, daemon_on_given_back,
	    g) < 0) {
		bd_message_free(m);
		free(g);
		return;
	}
	d->giving_back++;
}

static void
daemon_on_received(void *arg, int status, struct bd_message **msgs, size_t n,
    const char *detail)
{
	struct bd_daemon *d = arg;

	d->receiving = false;
	if (status < 0) {
		log_warnx("node %s: cannot read the task queue: %s",
		    d->s.node_id, detail ? detail : bd_strerror(status));
		bd_metrics_add(BD_METRIC_QUEUE_ERRORS, 1);
		n = 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (d->draining)
			daemon_give_back(d, msgs[i]);
		else if (d->free_slots > 0) {
			daemon_need_http(d);
			daemon_start_assignment(d, msgs[i], NULL, false);
		} else if (daemon_ahead(d) < d->s.task_slots) {
			daemon_need_http(d);
			daemon_start_assignment(d, msgs[i], NULL, true);
		} else
			daemon_give_back(d, msgs[i]);
	}
	free(msgs);
	if (d->draining) {
		daemon_check_drained(d);
		return;
	}
	if (n > 0) {
		d->poll_interval = d->s.poll_min_ms;
		daemon_state_changed(d);
		daemon_poll_soon(d, 0);
	} else {
		d->poll_interval = d->poll_interval * 2;
		if (d->poll_interval > d->s.poll_max_ms)
			d->poll_interval = d->s.poll_max_ms;
		daemon_poll_soon(d, d->poll_interval);
	}
}

static void
daemon_on_poll_timer(uv_timer_t *t)
{
	struct bd_daemon *d = t->data;
	int want;

	want = (d->free_slots > 0 ? d->free_slots : 0) + daemon_ahead_room(d);
	if (!d->accepting || d->draining || d->receiving || want <= 0 ||
	    bd_housekeeping_problem(d->hk) != NULL || d->adopting > 0)
		return;
	want = want < 32 ? want : 32;
	d->stats.polls++;
	if (bd_source_receive(d->source, want, d->s.lease_ms,
	    daemon_on_received, d) == 0)
		d->receiving = true;
	else
		daemon_poll_soon(d, d->s.poll_max_ms);
}

static void
daemon_poll_soon(struct bd_daemon *d, int64_t delay_ms)
{
	if (d->receiving || d->draining)
		return;
	/* An earlier due time wins over a later one already set. */
	if (uv_is_active((uv_handle_t *)&d->poll_timer) &&
	    uv_timer_get_due_in(&d->poll_timer) <= (uint64_t)delay_ms)
		return;
	uv_timer_start(&d->poll_timer, daemon_on_poll_timer,
	    (uint64_t)delay_ms, 0);
}

/* ---- start task -------------------------------------------------------- */

static void
daemon_on_start_task(struct bd_runner *r, const struct bd_run_outcome *o,
    void *arg)
{
	struct bd_daemon *d = arg;
	const struct bd_execution_info *i = &o->info;

	d->start_runner = NULL;
	if (i->result == BD_RESULT_SUCCESS)
		log_info("node %s: start task succeeded", d->s.node_id);
	else
		log_warnx("node %s: start task failed: %s: %s", d->s.node_id,
		    i->failure ? i->failure->code : "?",
		    i->failure ? i->failure->message : "?");
	if (i->result != BD_RESULT_SUCCESS && d->s.start_task->wait_for_success) {
		d->start_failed = true;
		free(d->start_failure);
		d->start_failure = xasprintf("the start task failed: %s: %s",
		    i->failure ? i->failure->code : "?",
		    i->failure ? i->failure->message : "?");
	}
	else if (!d->accepting) {
		d->accepting = true;
		daemon_poll_soon(d, 0);
	}
	bd_runner_free(r);
	daemon_state_changed(d);
	if (d->draining)
		daemon_check_drained(d);
}

static void
daemon_run_start_task(struct bd_daemon *d)
{
	struct bd_runner_options ro = {
		.loop = d->loop,
		.http = NULL,	/* set below, once made */
		.node = &d->node,
		.job = NULL,
		.task = d->s.start_task,
		.users = d->s.users,
		.kill_grace_ms = d->s.kill_grace_ms,
		.storage = d->s.storage,
	};

	daemon_need_http(d);
	ro.http = d->http;
	log_info("node %s: running the start task", d->s.node_id);
	if (bd_runner_start(&ro, daemon_on_start_task, d, &d->start_runner) < 0) {
		d->start_failed = true;
		return;
	}
	if (!d->s.start_task->wait_for_success)
		d->accepting = true;
}

/* ---- pool application packages ------------------------------------------ */

/* The start task, or taking tasks at once. */
static void
daemon_begin(struct bd_daemon *d)
{
	if (d->s.start_task != NULL)
		daemon_run_start_task(d);
	else
		d->accepting = true;
}

static void
daemon_on_pool_packages(struct bd_app_request *req, int status,
    const char *message, void *arg)
{
	struct bd_daemon *d = arg;

	d->pool_packages = NULL;
	if (status < 0) {
		bd_app_request_free(req);
		if (!d->draining) {
			log_warnx("node %s: unusable: %s", d->s.node_id,
			    message);
			d->unusable = xstrdup(message);
		}
	} else {
		log_info("node %s: the pool's application packages are "
		    "installed", d->s.node_id);
		bd_app_packages_set_pool(d->s.packages, req);
		if (!d->draining) {
			daemon_begin(d);
			if (d->accepting)
				daemon_poll_soon(d, 0);
		}
	}
	daemon_state_changed(d);
	if (d->draining)
		daemon_check_drained(d);
}

/*
 * Installs the pool's packages before anything runs (reference §5).  True
 * when daemon_on_pool_packages() goes on.
 */
static bool
daemon_install_pool_packages(struct bd_daemon *d)
{
	int rc;

	if (d->s.n_pool_packages == 0)
		return false;
	if (d->s.packages == NULL) {
		d->unusable = xstrdup("applicationPackages: this node has no "
		    "application package store");
		return true;
	}
	log_info("node %s: installing the pool's %zu application "
	    "package%s", d->s.node_id, d->s.n_pool_packages,
	    d->s.n_pool_packages == 1 ? "" : "s");
	if ((rc = bd_app_packages_acquire(d->s.packages, d->s.pool_packages,
	    d->s.n_pool_packages, daemon_on_pool_packages, d,
	    &d->pool_packages)) < 0) {
		d->pool_packages = NULL;
		d->unusable = xasprintf("cannot install the pool's "
		    "application packages: %s", bd_strerror(rc));
	}
	return true;
}

/* ---- housekeeping ------------------------------------------------------ */

/* How often the housekeeper looks: every heartbeat, at most a minute. */
static int64_t
daemon_housekeeping_ms(const struct bd_daemon_settings *s)
{
	return s->heartbeat_ms < 60000 ? s->heartbeat_ms : 60000;
}

/* Whether a running task uses dir (the housekeeper must leave it). */
static bool
daemon_dir_in_use(void *arg, const char *dir)
{
	struct bd_daemon *d = arg;
	int64_t retention_ms;
	bool used = false;

	for (size_t i = 0; i < d->n_assignments && !used; i++) {
		char *own = bd_assignment_task_dir(d->assignments[i],
		    &retention_ms);
		used = own != NULL && strcmp(own, dir) == 0;
		free(own);
	}
	return used;
}

/* Free space or retained directories changed. */
static void
daemon_on_housekeeping(void *arg)
{
	struct bd_daemon *d = arg;

	daemon_state_changed(d);
	if (d->draining)
		daemon_check_drained(d);
	else if (bd_housekeeping_problem(d->hk) == NULL)
		daemon_poll_soon(d, 0);
}

/* ---- life -------------------------------------------------------------- */

/* A job check or release task ended: a drain may be waiting for it. */
static void
daemon_on_jobs_idle(void *arg)
{
	struct bd_daemon *d = arg;

	if (d->draining)
		daemon_check_drained(d);
}

int
bd_daemon_new(uv_loop_t *loop, const struct bd_daemon_settings *s,
    struct bd_source *source, struct bd_store *store, struct bd_http *http,
    struct bd_daemon **out, char **cause)
{
	struct bd_daemon *d = xcalloc(1, sizeof(*d));
	int rc;

	d->loop = loop;
	d->s = *s;
	d->source = source;
	d->store = store;
	d->http = http;
	d->free_slots = s->task_slots;
	d->poll_interval = s->poll_min_ms;
	d->node.root = s->node_root;
	d->node.pool_id = s->pool_id;
	d->node.node_id = s->node_id;
	d->node.is_dedicated = s->is_dedicated;
	d->node.packages = s->packages;
	if ((rc = bd_layout_prepare_node(s->node_root)) < 0) {
		*cause = xasprintf("node root %s: %s", s->node_root,
		    strerror(-rc));
		free(d);
		return rc;
	}
	if ((rc = bd_adopt_dir(s->state_dir, &d->adopt_dir)) < 0) {
		*cause = xasprintf("state directory %s: %s", s->state_dir,
		    strerror(-rc));
		free(d);
		return rc;
	}
	struct bd_jobs_env je = {
		.loop = loop,
		.store = store,
		.http = &d->http,
		.node = &d->node,
		.users = d->s.users,
		.pool_id = s->pool_id,
		.state_dir = s->state_dir,
		.kill_grace_ms = s->kill_grace_ms,
		.storage = s->storage,
		.idle_cb = daemon_on_jobs_idle,
		.idle_arg = d,
	};
	if ((rc = bd_jobs_new(&je, &d->jobs, cause)) < 0) {
		free(d->adopt_dir);
		free(d);
		return rc;
	}
	struct bd_housekeeping_env he = {
		.loop = loop,
		.node_root = s->node_root,
		.state_dir = s->state_dir,
		.interval_ms = daemon_housekeeping_ms(s),
		.reserve_bytes = s->free_space_reserve_bytes,
		.in_use = daemon_dir_in_use,
		.changed = daemon_on_housekeeping,
		.arg = d,
	};
	if ((rc = bd_housekeeping_new(&he, &d->hk, cause)) < 0) {
		bd_jobs_free(d->jobs);
		free(d);
		return rc;
	}
	uv_timer_init(loop, &d->poll_timer);
	uv_timer_init(loop, &d->heartbeat_timer);
	uv_timer_init(loop, &d->job_timer);
	uv_timer_init(loop, &d->park_timer);
	d->poll_timer.data = d->heartbeat_timer.data = d->job_timer.data = d;
	d->park_timer.data = d;
	d->open_handles = 4;
	*out = d;
	return 0;
}

/*
 * Adopts the tasks a previous run of batchd left running or finished
 * (adopt.h), before any new work is taken: each holds its slots from now.
 */
static void
daemon_adopt(struct bd_daemon *d)
{
	struct bd_adopt_record **recs;
	size_t n;
	int rc, swept, killed;

	/*
	 * Cgroups of tasks that ended while no batchd was there go; adopted
	 * tasks that still run keep theirs.  Processes whose supervisor is
	 * gone are killed first: their task goes back to the queue below.
	 */
	swept = bd_runner_sweep_cgroups(true, &killed);
	if (killed > 0)
		log_warnx("node %s: killed the processes of %d task%s whose "
		    "supervisor is gone", d->s.node_id, killed,
		    killed == 1 ? "" : "s");
	if (swept > 0)
		log_info("node %s: removed %d task cgroup%s left by an earlier "
		    "batchd", d->s.node_id, swept, swept == 1 ? "" : "s");
	if ((rc = bd_adopt_load(d->adopt_dir, &recs, &n)) < 0) {
		log_warnx("node %s: cannot read %s: %s", d->s.node_id,
		    d->adopt_dir, strerror(-rc));
		return;
	}
	if (n > 0)
		log_info("node %s: adopting %zu task%s from before the restart",
		    d->s.node_id, n, n == 1 ? "" : "s");
	d->adopting = (int)n;
	if (n > 0)
		daemon_need_http(d);
	for (size_t i = 0; i < n; i++)
		daemon_start_assignment(d, NULL, recs[i], false);
	free(recs);
}

static bool
daemon_dev_in(dev_t dev, const dev_t *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == dev)
			return true;
	return false;
}

/*
 * Says so when the node root, the state directory or the local spool is
 * on an ext4 made without a journal: there every new file walks past
 * each inode freed in its group in the last minutes, so task starts slow
 * down as the node works (docs/operations.md).  Once per file system.
 */
static void
daemon_check_file_systems(const struct bd_daemon *d)
{
	const char *dirs[] = { d->s.node_root, d->s.state_dir,
	    d->s.spool_dir };
	dev_t warned[3] = { 0 };
	size_t n_warned = 0;

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		struct stat st;
		int fd;

		if (dirs[i] == NULL || (fd = open(dirs[i], O_RDONLY |
		    O_DIRECTORY | O_CLOEXEC)) == -1)
			continue;
		if (fstat(fd, &st) == 0 && !daemon_dev_in(st.st_dev, warned,
		    n_warned) && bd_fs_ext4_without_journal(fd)) {
			log_warnx("node %s: %s is on an ext4 without a journal: "
			    "each new file there walks past every inode freed "
			    "in the last minutes, so task starts slow down as "
			    "the node works (see docs/operations.md, \"Which "
			    "file system\")", d->s.node_id, dirs[i]);
			warned[n_warned++] = st.st_dev;
		}
		close(fd);
	}
}

void
bd_daemon_start(struct bd_daemon *d)
{
	log_info("node %s: joining pool %s with %d slot%s (%s backend)",
	    d->s.node_id, d->s.pool_id, d->s.task_slots,
	    d->s.task_slots == 1 ? "" : "s", d->source->ops->name);
	daemon_check_file_systems(d);
	/* Tasks a previous batchd left running are watched again first. */
	daemon_adopt(d);
	bd_housekeeping_start(d->hk);
	if (!daemon_install_pool_packages(d))
		daemon_begin(d);
	if (d->unusable != NULL)
		log_warnx("node %s: unusable: %s", d->s.node_id, d->unusable);
	daemon_write_node(d, NULL);
	uv_timer_start(&d->heartbeat_timer, daemon_on_heartbeat,
	    (uint64_t)d->s.heartbeat_ms, (uint64_t)d->s.heartbeat_ms);
	uv_timer_start(&d->job_timer, daemon_on_job_timer,
	    (uint64_t)d->s.job_check_ms, (uint64_t)d->s.job_check_ms);
	if (d->accepting)
		daemon_poll_soon(d, 0);
}

static void
daemon_check_drained(struct bd_daemon *d)
{
	void (*cb)(void *) = d->drain_cb;

	if (cb == NULL || d->n_assignments > 0 || d->receiving ||
	    d->giving_back > 0 ||
	    d->start_runner != NULL || d->pool_packages != NULL ||
	    bd_jobs_busy(d->jobs) || bd_housekeeping_busy(d->hk))
		return;
	/* retaineddata: every task directory's retention must pass first
	 * (spec §6.3); the housekeeper's timer goes on sweeping. */
	if (d->s.deallocation == BD_DEALLOCATE_RETAINED_DATA &&
	    bd_housekeeping_retained(d->hk) > 0) {
		/* Say on the node's row what it waits for. */
		if (d->last_retained != bd_housekeeping_retained(d->hk))
			daemon_write_node(d, NULL);
		return;
	}
	if (d->node_write_in_flight)
		return; /* daemon_on_node_written comes back here */
	if (d->last_state == NULL || strcmp(d->last_state, "offline") != 0) {
		daemon_write_node(d, "offline");
		if (d->node_write_in_flight)
			return;
		/* The write could not start: leave without it. */
	}
	d->drain_cb = NULL;
	cb(d->drain_arg);
}

void
bd_daemon_drain(struct bd_daemon *d, void (*done_cb)(void *arg), void *arg)
{
	static const char *const how[] = { "requeue", "terminate",
	    "taskcompletion", "retaineddata" };

	d->drain_cb = done_cb;
	d->drain_arg = arg;
	if (d->draining) {
		/* Asked again: end what still runs now, by requeueing it, and
		 * wait no longer for retention times. */
		log_info("node %s: asked again: requeueing %zu running task%s",
		    d->s.node_id, d->n_assignments,
		    d->n_assignments == 1 ? "" : "s");
		d->s.deallocation = BD_DEALLOCATE_REQUEUE;
		for (size_t i = 0; i < d->n_assignments; i++)
			bd_assignment_stop(d->assignments[i], BD_STOP_REQUEUE);
		daemon_check_drained(d);
		return;
	}
	d->draining = true;
	log_info("node %s: leaving the pool (%s): %zu task%s running",
	    d->s.node_id, how[d->s.deallocation], d->n_assignments,
	    d->n_assignments == 1 ? "" : "s");
	uv_timer_stop(&d->poll_timer);
	uv_timer_stop(&d->heartbeat_timer);
	uv_timer_stop(&d->job_timer);
	daemon_give_back_parked(d);
	if (d->start_runner != NULL)
		bd_runner_terminate(d->start_runner, "the node is stopping");
	if (d->pool_packages != NULL)
		bd_app_request_cancel(d->pool_packages);
	for (size_t i = 0; i < d->n_assignments; i++) {
		if (d->s.deallocation == BD_DEALLOCATE_REQUEUE)
			bd_assignment_stop(d->assignments[i], BD_STOP_REQUEUE);
		else if (d->s.deallocation == BD_DEALLOCATE_TERMINATE)
			bd_assignment_stop(d->assignments[i],
			    BD_STOP_TERMINATE);
		/* taskcompletion, retaineddata: let them finish. */
	}
	daemon_write_node(d, NULL);
	daemon_check_drained(d);
}

void
bd_daemon_reload(struct bd_daemon *d, const struct bd_daemon_settings *s)
{
	int more = s->task_slots - d->s.task_slots;

	if (more < 0)
		log_warnx("node %s: taskSlotsPerNode: fewer slots (%d, now %d) "
		    "take effect at the next start", d->s.node_id,
		    s->task_slots, d->s.task_slots);
	else if (more > 0) {
		log_info("node %s: %d more task slot%s (%d)", d->s.node_id,
		    more, more == 1 ? "" : "s", s->task_slots);
		d->s.task_slots = s->task_slots;
		d->free_slots += more;
	}
	d->s.poll_min_ms = s->poll_min_ms;
	d->s.poll_max_ms = s->poll_max_ms;
	if (d->poll_interval > d->s.poll_max_ms)
		d->poll_interval = d->s.poll_max_ms;
	if (d->poll_interval < d->s.poll_min_ms)
		d->poll_interval = d->s.poll_min_ms;
	d->s.max_dequeue_count = s->max_dequeue_count;
	d->s.kill_grace_ms = s->kill_grace_ms;
	d->s.deallocation = s->deallocation;
	d->s.default_retention_ms = s->default_retention_ms;
	if (s->heartbeat_ms != d->s.heartbeat_ms) {
		d->s.heartbeat_ms = s->heartbeat_ms;
		bd_housekeeping_set_interval(d->hk, daemon_housekeeping_ms(s));
		if (!d->draining)
			uv_timer_start(&d->heartbeat_timer, daemon_on_heartbeat,
			    (uint64_t)d->s.heartbeat_ms,
			    (uint64_t)d->s.heartbeat_ms);
	}
	if (s->job_check_ms != d->s.job_check_ms) {
		d->s.job_check_ms = s->job_check_ms;
		if (!d->draining)
			uv_timer_start(&d->job_timer, daemon_on_job_timer,
			    (uint64_t)d->s.job_check_ms,
			    (uint64_t)d->s.job_check_ms);
	}
	if (s->free_space_reserve_bytes != d->s.free_space_reserve_bytes) {
		d->s.free_space_reserve_bytes = s->free_space_reserve_bytes;
		bd_housekeeping_set_reserve(d->hk, s->free_space_reserve_bytes);
	}
	/* The new bounds, and any new slot, apply from the next poll. */
	daemon_write_node(d, NULL);
	if (!d->draining && d->accepting)
		daemon_poll_soon(d, 0);
}

void
bd_daemon_stats(const struct bd_daemon *d, struct bd_daemon_stats *out)
{
	*out = d->stats;
	out->running = (int)d->n_assignments - daemon_ahead(d);
	out->free_slots = d->free_slots;
	out->state = d->draining && d->drain_cb == NULL ? "offline" :
	    daemon_state(d);
}

static void
daemon_on_close(uv_handle_t *h)
{
	struct bd_daemon *d = h->data;

	if (--d->open_handles > 0)
		return;
	bd_jobs_free(d->jobs);
	bd_housekeeping_free(d->hk);
	free(d->start_failure);
	bd_source_free(d->source);
	bd_store_free(d->store);
	free(d->assignments);
	free(d->parked);
	free(d->unusable);
	free(d->adopt_dir);
	free(d);
}

void
bd_daemon_free(struct bd_daemon *d)
{
	uv_close((uv_handle_t *)&d->poll_timer, daemon_on_close);
	uv_close((uv_handle_t *)&d->heartbeat_timer, daemon_on_close);
	uv_close((uv_handle_t *)&d->job_timer, daemon_on_close);
	uv_close((uv_handle_t *)&d->park_timer, daemon_on_close);
}
