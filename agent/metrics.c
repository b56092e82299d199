/* SPDX-License-Identifier: MIT */
/*
 * Prometheus metrics (see metrics.h).
 *
 * Counters are C11 atomics with relaxed order: each is a sum on its own
 * and nothing reads two of them as one fact, apart from the task
 * duration histogram, whose count is taken as the sum of its buckets so
 * that +Inf and _count always agree.
 *
 * The exporter owns a timer (the textfile), a TCP server (the endpoint)
 * and its open connections.  A textfile write runs in uv_queue_work (it
 * fsyncs); at most one is in flight, and a write due while one runs is
 * skipped, except the last one at stop, which waits for it.  The struct
 * is freed when every handle is closed and no write is in flight.
 *
 * A connection reads at most METRICS_MAX_REQUEST bytes of request head,
 * for at most METRICS_TIMEOUT_MS; answers GET or HEAD of /metrics, 404
 * other paths, 405 other methods, 400 or 431 what it cannot read; and
 * closes.  At most METRICS_MAX_CONNS are open at once: more are accepted
 * and closed at once, so a flood costs the loop nothing but accepts.
 */
#include "metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "fsutil.h"
#include "log.h"
#include "version.h"
#include "xmalloc.h"

#define METRICS_FILE		"batchd.prom"
#define METRICS_MAX_REQUEST	4096	/* bytes of a request head */
#define METRICS_TIMEOUT_MS	10000	/* to read a request and answer it */
#define METRICS_MAX_CONNS	16

/* ---- counters ---------------------------------------------------------- */

static _Atomic uint64_t metrics_counters[BD_METRIC_COUNT];

/* Upper bounds (seconds) of the task duration buckets; +Inf follows. */
static const double metrics_buckets[] = {
	1, 5, 10, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 24 * 3600,
};
#define METRICS_N_BUCKETS (sizeof(metrics_buckets) / sizeof(metrics_buckets[0]))

/* Runs per bucket, not cumulative; the last one is +Inf. */
static _Atomic uint64_t metrics_duration_counts[METRICS_N_BUCKETS + 1];
static _Atomic uint64_t metrics_duration_sum_ms;

/* The process's start, for process_start_time_seconds. */
static _Atomic int64_t metrics_start_ms;

void
bd_metrics_add(enum bd_metric m, uint64_t n)
{
	if ((unsigned)m < BD_METRIC_COUNT)
		atomic_fetch_add_explicit(&metrics_counters[m], n,
		    memory_order_relaxed);
}

void
bd_metrics_add_file(enum bd_metric files, uint64_t size)
{
	bd_metrics_add(files, 1);
	bd_metrics_add(files + 1, size);
}

void
bd_metrics_add_path(enum bd_metric files, const char *path)
{
	struct stat st;

	if (path != NULL && stat(path, &st) == 0 && S_ISREG(st.st_mode))
		bd_metrics_add_file(files, (uint64_t)st.st_size);
}

void
bd_metrics_task_ran(const struct bd_execution_info *info)
{
	int64_t ms;
	size_t b;

	bd_metrics_add(info->result == BD_RESULT_SUCCESS ?
	    BD_METRIC_TASK_RUNS_SUCCEEDED : BD_METRIC_TASK_RUNS_FAILED, 1);
	if (info->start_ms <= 0 || info->end_ms < info->start_ms)
		return;
	ms = info->end_ms - info->start_ms;
	for (b = 0; b < METRICS_N_BUCKETS; b++)
		if ((double)ms <= metrics_buckets[b] * 1000)
			break;
	atomic_fetch_add_explicit(&metrics_duration_counts[b], 1,
	    memory_order_relaxed);
	atomic_fetch_add_explicit(&metrics_duration_sum_ms, (uint64_t)ms,
	    memory_order_relaxed);
}

uint64_t
bd_metrics_get(enum bd_metric m)
{
	if ((unsigned)m >= BD_METRIC_COUNT)
		return 0;
	return atomic_load_explicit(&metrics_counters[m],
	    memory_order_relaxed);
}

/* ---- the text format ---------------------------------------------------- */

/* A growing text buffer. */
struct metrics_text {
	char *s;
	size_t len, cap;
};

static void
metrics_printf(struct metrics_text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
metrics_printf(struct metrics_text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < t->cap - t->len) {
			t->len += (size_t)n;
			return;
		}
		t->cap = (t->cap + (size_t)n + 1) * 2;
		t->s = xrealloc(t->s, t->cap);
	}
}

/*
 * Appends s escaped for the exposition format: backslash and newline
 * always, the double quote too inside a label value.
 */
static void
metrics_escape(struct metrics_text *t, const char *s, bool label)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			metrics_printf(t, "\\\\");
		else if (*s == '\n')
			metrics_printf(t, "\\n");
		else if (*s == '"' && label)
			metrics_printf(t, "\\\"");
		else
			metrics_printf(t, "%c", *s);
	}
}

/* The HELP and TYPE lines of a family. */
static void
metrics_family(struct metrics_text *t, const char *name, const char *type,
    const char *help)
{
	metrics_printf(t, "# HELP %s ", name);
	metrics_escape(t, help, false);
	metrics_printf(t, "\n# TYPE %s %s\n", name, type);
}

/* A family of one sample without labels. */
static void
metrics_one(struct metrics_text *t, const char *name, const char *type,
    const char *help, uint64_t value)
{
	metrics_family(t, name, type, help);
	metrics_printf(t, "%s %" PRIu64 "\n", name, value);
}

static void
metrics_counter(struct metrics_text *t, const char *name, const char *help,
    enum bd_metric m)
{
	metrics_one(t, name, "counter", help, bd_metrics_get(m));
}

/* The node's states, in Azure's ComputeNodeState words. */
static const char *const metrics_states[] = {
	"starting", "waitingforstarttask", "starttaskfailed", "idle",
	"running", "leavingpool", "offline",
};

char *
bd_metrics_render(const struct bd_metrics_sample *s, size_t *len)
{
	const struct bd_daemon_stats *st = &s->stats;
	struct metrics_text t = { xmalloc(4096), 0, 4096 };
	uint64_t cum = 0, n;
	size_t i;
	int used = s->total_slots - st->free_slots;

	metrics_family(&t, "batchd_build_info", "gauge",
	    "The version of batchd and the pool and node it serves.");
	metrics_printf(&t, "batchd_build_info{version=\"");
	metrics_escape(&t, BATCHD_VERSION, true);
	metrics_printf(&t, "\",pool=\"");
	metrics_escape(&t, s->pool_id ? s->pool_id : "", true);
	metrics_printf(&t, "\",node=\"");
	metrics_escape(&t, s->node_id ? s->node_id : "", true);
	metrics_printf(&t, "\"} 1\n");

	metrics_family(&t, "batchd_node_state", "gauge",
	    "1 for the node's current state (Azure's ComputeNodeState), "
	    "0 for the others.");
	for (i = 0; i < sizeof(metrics_states) / sizeof(metrics_states[0]);
	    i++)
		metrics_printf(&t, "batchd_node_state{state=\"%s\"} %d\n",
		    metrics_states[i], st->state != NULL &&
		    strcmp(st->state, metrics_states[i]) == 0);

	metrics_one(&t, "process_start_time_seconds", "gauge",
	    "Start time of the process since the Unix epoch in seconds.",
	    (uint64_t)(atomic_load(&metrics_start_ms) / 1000));
	metrics_one(&t, "batchd_task_slots", "gauge",
	    "Task slots of the node (taskSlotsPerNode).",
	    (uint64_t)(s->total_slots > 0 ? s->total_slots : 0));
	metrics_one(&t, "batchd_task_slots_used", "gauge",
	    "Task slots held by the node's tasks now.",
	    (uint64_t)(used > 0 ? used : 0));
	metrics_one(&t, "batchd_tasks_running", "gauge",
	    "Tasks the node holds now, from preparation to their report.",
	    (uint64_t)(st->running > 0 ? st->running : 0));

	metrics_one(&t, "batchd_queue_polls_total", "counter",
	    "Receives from the pool's task queue.", st->polls);
	metrics_counter(&t, "batchd_queue_errors_total",
	    "Receives from the task queue that failed.",
	    BD_METRIC_QUEUE_ERRORS);
	metrics_one(&t, "batchd_queue_messages_total", "counter",
	    "Task messages received from the queue.", st->messages);
	metrics_one(&t, "batchd_messages_poisoned_total", "counter",
	    "Messages moved to the poison queue.", st->poisoned);
	metrics_one(&t, "batchd_lease_renewals_total", "counter",
	    "Leases of running tasks renewed.", st->lease_renewals);
	metrics_one(&t, "batchd_leases_lost_total", "counter",
	    "Leases lost: the task was ended here and left to another node.",
	    st->leases_lost);

	metrics_one(&t, "batchd_tasks_started_total", "counter",
	    "Task command lines started.", st->tasks_started);
	metrics_one(&t, "batchd_tasks_completed_total", "counter",
	    "Tasks whose completion this node recorded.", st->tasks_completed);
	metrics_family(&t, "batchd_task_runs_total", "counter",
	    "Runs of task command lines that ended, by result.");
	metrics_printf(&t, "batchd_task_runs_total{result=\"success\"} %"
	    PRIu64 "\n", bd_metrics_get(BD_METRIC_TASK_RUNS_SUCCEEDED));
	metrics_printf(&t, "batchd_task_runs_total{result=\"failure\"} %"
	    PRIu64 "\n", bd_metrics_get(BD_METRIC_TASK_RUNS_FAILED));
	metrics_one(&t, "batchd_task_retries_total", "counter",
	    "Task runs that failed and went back to the queue for a retry.",
	    st->retries);
	metrics_one(&t, "batchd_task_requeues_total", "counter",
	    "Tasks given back to the queue when the node left the pool.",
	    st->requeues);

	metrics_family(&t, "batchd_task_duration_seconds", "histogram",
	    "Wall-clock time of task runs, from start to end.");
	for (i = 0; i <= METRICS_N_BUCKETS; i++) {
		cum += atomic_load_explicit(&metrics_duration_counts[i],
		    memory_order_relaxed);
		if (i < METRICS_N_BUCKETS)
			metrics_printf(&t, "batchd_task_duration_seconds_bucket"
			    "{le=\"%g\"} %" PRIu64 "\n", metrics_buckets[i],
			    cum);
		else
			metrics_printf(&t, "batchd_task_duration_seconds_bucket"
			    "{le=\"+Inf\"} %" PRIu64 "\n", cum);
	}
	n = atomic_load_explicit(&metrics_duration_sum_ms,
	    memory_order_relaxed);
	metrics_printf(&t, "batchd_task_duration_seconds_sum %" PRIu64
	    ".%03u\n", n / 1000, (unsigned)(n % 1000));
	metrics_printf(&t, "batchd_task_duration_seconds_count %" PRIu64 "\n",
	    cum);

	metrics_counter(&t, "batchd_download_files_total",
	    "Resource files fetched.", BD_METRIC_DOWNLOAD_FILES);
	metrics_counter(&t, "batchd_download_bytes_total",
	    "Bytes of resource files fetched.", BD_METRIC_DOWNLOAD_BYTES);
	metrics_counter(&t, "batchd_download_errors_total",
	    "Tasks whose resource files could not be fetched.",
	    BD_METRIC_DOWNLOAD_ERRORS);
	metrics_counter(&t, "batchd_upload_files_total",
	    "Output files stored.", BD_METRIC_UPLOAD_FILES);
	metrics_counter(&t, "batchd_upload_bytes_total",
	    "Bytes of output files stored.", BD_METRIC_UPLOAD_BYTES);
	metrics_counter(&t, "batchd_upload_errors_total",
	    "Tasks whose output files could not all be stored.",
	    BD_METRIC_UPLOAD_ERRORS);
	*len = t.len;
	return t.s;
}

/* ---- the exporter -------------------------------------------------------- */

struct bd_metrics {
	uv_loop_t *loop;
	bd_metrics_sample_cb sample_cb;
	void *arg;
	char *textfile;		/* DIR/batchd.prom, or NULL */
	int64_t interval_ms;
	uv_timer_t timer;
	uv_tcp_t server;
	bool listening;
	int port;
	int open_handles;
	int n_conns;
	struct metrics_conn *conns;	/* open ones, linked by next */
	bool stopped;

	/* The textfile write in flight, and the last one waiting for it. */
	uv_work_t work;
	bool writing;
	char *text;		/* being written */
	size_t text_len;
	int write_rc;
	char *final_text;	/* or NULL */
	size_t final_len;
	bool write_failed;	/* the last write failed: logged once */
};

/* One HTTP connection. */
struct metrics_conn {
	struct bd_metrics *m;
	struct metrics_conn *next, **prevp;
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_write_t write;
	uv_shutdown_t shutdown;
	int open_handles;
	bool answered;
	size_t len;
	char *reply;
	char buf[METRICS_MAX_REQUEST];
};

static void
metrics_sample(struct bd_metrics *m, struct bd_metrics_sample *s)
{
	memset(s, 0, sizeof(*s));
	m->sample_cb(m->arg, s);
}

/* Frees m once nothing of it is left. */
static void
metrics_maybe_free(struct bd_metrics *m)
{
	if (!m->stopped || m->open_handles > 0 || m->n_conns > 0 || m->writing)
		return;
	free(m->textfile);
	free(m);
}

static void
metrics_on_close(uv_handle_t *h)
{
	struct bd_metrics *m = h->data;

	m->open_handles--;
	metrics_maybe_free(m);
}

/* Logs a textfile write's result: the first failure and the recovery. */
static void
metrics_note_write(struct bd_metrics *m, int rc)
{
	if (rc < 0 && !m->write_failed)
		log_warnx("metrics: cannot write %s: %s", m->textfile,
		    strerror(-rc));
	else if (rc == 0 && m->write_failed)
		log_info("metrics: %s written again", m->textfile);
	m->write_failed = rc < 0;
}

static void
metrics_write_work(uv_work_t *w)
{
	struct bd_metrics *m = w->data;

	m->write_rc = bd_write_file_atomic(m->textfile, m->text, m->text_len,
	    0644);
}

static void
metrics_after_write(uv_work_t *w, int status)
{
	struct bd_metrics *m = w->data;

	m->writing = false;
	free(m->text);
	m->text = NULL;
	metrics_note_write(m, status < 0 ? status : m->write_rc);
	if (m->final_text != NULL) {
		/* The last write, after this one so that it wins. */
		metrics_note_write(m, bd_write_file_atomic(m->textfile,
		    m->final_text, m->final_len, 0644));
		free(m->final_text);
		m->final_text = NULL;
	}
	metrics_maybe_free(m);
}

static void
metrics_on_timer(uv_timer_t *t)
{
	struct bd_metrics *m = t->data;
	struct bd_metrics_sample s;

	if (m->writing)
		return;	/* a slow disk: skip this one */
	metrics_sample(m, &s);
	m->text = bd_metrics_render(&s, &m->text_len);
	m->work.data = m;
	if (uv_queue_work(m->loop, &m->work, metrics_write_work,
	    metrics_after_write) == 0) {
		m->writing = true;
		return;
	}
	free(m->text);
	m->text = NULL;
}

static void
metrics_conn_on_close(uv_handle_t *h)
{
	struct metrics_conn *c = h->data;
	struct bd_metrics *m = c->m;

	if (--c->open_handles > 0)
		return;
	if (c->next != NULL)
		c->next->prevp = c->prevp;
	*c->prevp = c->next;
	free(c->reply);
	free(c);
	m->n_conns--;
	metrics_maybe_free(m);
}

static void
metrics_conn_close(struct metrics_conn *c)
{
	if (!uv_is_closing((uv_handle_t *)&c->tcp))
		uv_close((uv_handle_t *)&c->tcp, metrics_conn_on_close);
	if (!uv_is_closing((uv_handle_t *)&c->timer))
		uv_close((uv_handle_t *)&c->timer, metrics_conn_on_close);
}

static void
metrics_on_shutdown(uv_shutdown_t *req, int status)
{
	metrics_conn_close(req->data);
}

static void
metrics_on_written(uv_write_t *req, int status)
{
	struct metrics_conn *c = req->data;

	c->shutdown.data = c;
	if (status < 0 || uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp,
	    metrics_on_shutdown) < 0)
		metrics_conn_close(c);
}

/* Sends the answer and closes after it; body NULL: a short text. */
static void
metrics_reply(struct metrics_conn *c, const char *status, const char *extra,
    const char *body, size_t body_len, bool head_only)
{
	uv_buf_t buf;

	if (body == NULL) {
		body = status + 4;	/* "404 Not Found" -> "Not Found" */
		body_len = strlen(body);
	}
	c->answered = true;
	uv_read_stop((uv_stream_t *)&c->tcp);
	c->reply = xasprintf("HTTP/1.1 %s\r\nContent-Type: %s\r\n"
	    "Content-Length: %zu\r\n%sConnection: close\r\n\r\n%.*s", status,
	    strncmp(status, "200", 3) == 0 ?
	    "text/plain; version=0.0.4; charset=utf-8" :
	    "text/plain; charset=utf-8", body_len, extra ? extra : "",
	    head_only ? 0 : (int)body_len, body);
	buf = uv_buf_init(c->reply, (unsigned)strlen(c->reply));
	c->write.data = c;
	if (uv_write(&c->write, (uv_stream_t *)&c->tcp, &buf, 1,
	    metrics_on_written) < 0)
		metrics_conn_close(c);
}

/* Answers the request whose head is in c->buf. */
static void
metrics_answer(struct metrics_conn *c)
{
	struct bd_metrics *m = c->m;
	struct bd_metrics_sample s;
	char method[8], path[64], version[16], *text;
	size_t len;
	bool head;

	c->buf[c->len] = '\0';
	/* The request line: METHOD SP TARGET SP HTTP/1.x */
	if (sscanf(c->buf, "%7[A-Z] %63[^ \r\n] %15[^ \r\n]", method, path,
	    version) != 3 || strncmp(version, "HTTP/1.", 7) != 0) {
		metrics_reply(c, "400 Bad Request", NULL, NULL, 0, false);
		return;
	}
	head = strcmp(method, "HEAD") == 0;
	if (!head && strcmp(method, "GET") != 0) {
		metrics_reply(c, "405 Method Not Allowed",
		    "Allow: GET, HEAD\r\n", NULL, 0, false);
		return;
	}
	path[strcspn(path, "?")] = '\0';
	if (strcmp(path, "/metrics") != 0) {
		metrics_reply(c, "404 Not Found", NULL, NULL, 0, head);
		return;
	}
	metrics_sample(m, &s);
	text = bd_metrics_render(&s, &len);
	metrics_reply(c, "200 OK", NULL, text, len, head);
	free(text);
}

static void
metrics_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct metrics_conn *c = h->data;

	/* One byte kept for the NUL of metrics_answer(). */
	*buf = uv_buf_init(c->buf + c->len,
	    (unsigned)(sizeof(c->buf) - 1 - c->len));
}

static void
metrics_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct metrics_conn *c = s->data;

	if (c->answered)
		return;
	if (nread < 0) {
		metrics_conn_close(c);
		return;
	}
	c->len += (size_t)nread;
	c->buf[c->len] = '\0';
	if (strstr(c->buf, "\r\n\r\n") != NULL || strstr(c->buf, "\n\n"))
		metrics_answer(c);
	else if (c->len >= sizeof(c->buf) - 1)
		metrics_reply(c, "431 Request Header Fields Too Large", NULL,
		    NULL, 0, false);
}

static void
metrics_conn_on_timeout(uv_timer_t *t)
{
	metrics_conn_close(t->data);
}

static void
metrics_on_connection(uv_stream_t *server, int status)
{
	struct bd_metrics *m = server->data;
	struct metrics_conn *c;

	if (status < 0)
		return;
	c = xcalloc(1, sizeof(*c));
	c->m = m;
	uv_tcp_init(m->loop, &c->tcp);
	uv_timer_init(m->loop, &c->timer);
	c->tcp.data = c->timer.data = c;
	c->open_handles = 2;
	m->n_conns++;
	c->next = m->conns;
	if (c->next != NULL)
		c->next->prevp = &c->next;
	c->prevp = &m->conns;
	m->conns = c;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0 ||
	    m->n_conns > METRICS_MAX_CONNS || m->stopped) {
		metrics_conn_close(c);
		return;
	}
	uv_timer_start(&c->timer, metrics_conn_on_timeout, METRICS_TIMEOUT_MS,
	    0);
	if (uv_read_start((uv_stream_t *)&c->tcp, metrics_on_alloc,
	    metrics_on_read) < 0)
		metrics_conn_close(c);
}

/*
 * The socket address of a "HOST:PORT" that config.c accepted: an IPv4 or
 * bracketed IPv6 literal, or localhost (as 127.0.0.1).
 */
static int
metrics_address(const char *listen, struct sockaddr_storage *sa)
{
	const char *colon = strrchr(listen, ':');
	char host[64];
	size_t n;
	int port;

	if (colon == NULL)
		return -EINVAL;
	port = atoi(colon + 1);
	n = (size_t)(colon - listen);
	if (n >= 2 && listen[0] == '[' && listen[n - 1] == ']') {
		listen++;
		n -= 2;
	}
	if (n == 0 || n >= sizeof(host))
		return -EINVAL;
	memcpy(host, listen, n);
	host[n] = '\0';
	if (strcasecmp(host, "localhost") == 0)
		strcpy(host, "127.0.0.1");
	if (uv_ip4_addr(host, port, (struct sockaddr_in *)sa) == 0)
		return 0;
	if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)sa) == 0)
		return 0;
	return -EINVAL;
}

/* Starts the endpoint; 0 or a negative errno. */
static int
metrics_listen(struct bd_metrics *m, const char *listen)
{
	struct sockaddr_storage sa;
	int namelen = sizeof(sa), rc;

	if ((rc = metrics_address(listen, &sa)) < 0)
		return rc;
	uv_tcp_init(m->loop, &m->server);
	m->server.data = m;
	m->open_handles++;
	m->listening = true;
	if ((rc = uv_tcp_bind(&m->server, (struct sockaddr *)&sa, 0)) < 0 ||
	    (rc = uv_listen((uv_stream_t *)&m->server, 16,
	    metrics_on_connection)) < 0)
		return rc;
	if (uv_tcp_getsockname(&m->server, (struct sockaddr *)&sa,
	    &namelen) == 0)
		m->port = ntohs(sa.ss_family == AF_INET6 ?
		    ((struct sockaddr_in6 *)&sa)->sin6_port :
		    ((struct sockaddr_in *)&sa)->sin_port);
	return 0;
}

int
bd_metrics_start(uv_loop_t *loop, const struct bd_metrics_options *o,
    bd_metrics_sample_cb sample_cb, void *arg, struct bd_metrics **out,
    char **cause)
{
	struct bd_metrics *m;
	struct bd_metrics_sample s;
	size_t len;
	char *text;
	int rc;

	*out = NULL;
	int64_t zero = 0;
	atomic_compare_exchange_strong(&metrics_start_ms, &zero,
	    (int64_t)time(NULL) * 1000);
	if (o->textfile_dir == NULL && o->listen == NULL)
		return 0;
	m = xcalloc(1, sizeof(*m));
	m->loop = loop;
	m->sample_cb = sample_cb;
	m->arg = arg;
	m->interval_ms = o->interval_ms > 0 ? o->interval_ms : 15000;
	uv_timer_init(loop, &m->timer);
	m->timer.data = m;
	m->open_handles = 1;
	if (o->textfile_dir != NULL) {
		m->textfile = bd_path_join(o->textfile_dir, METRICS_FILE);
		metrics_sample(m, &s);
		text = bd_metrics_render(&s, &len);
		rc = bd_write_file_atomic(m->textfile, text, len, 0644);
		free(text);
		if (rc < 0) {
			*cause = xasprintf("metrics: cannot write %s: %s",
			    m->textfile, strerror(-rc));
			goto fail;
		}
		uv_timer_start(&m->timer, metrics_on_timer,
		    (uint64_t)m->interval_ms, (uint64_t)m->interval_ms);
	}
	if (o->listen != NULL && (rc = metrics_listen(m, o->listen)) < 0) {
		*cause = xasprintf("metrics: cannot listen on %s: %s",
		    o->listen, uv_strerror(rc));
		goto fail;
	}
	*out = m;
	return 0;
fail:
	free(m->textfile);
	m->textfile = NULL;
	bd_metrics_stop(m);
	return rc;
}

int
bd_metrics_port(const struct bd_metrics *m)
{
	return m != NULL ? m->port : 0;
}

void
bd_metrics_stop(struct bd_metrics *m)
{
	struct bd_metrics_sample s;

	if (m == NULL || m->stopped)
		return;
	m->stopped = true;
	if (m->textfile != NULL) {
		metrics_sample(m, &s);
		m->final_text = bd_metrics_render(&s, &m->final_len);
		if (!m->writing) {
			metrics_note_write(m, bd_write_file_atomic(m->textfile,
			    m->final_text, m->final_len, 0644));
			free(m->final_text);
			m->final_text = NULL;
		}
	}
	uv_close((uv_handle_t *)&m->timer, metrics_on_close);
	if (m->listening)
		uv_close((uv_handle_t *)&m->server, metrics_on_close);
	for (struct metrics_conn *c = m->conns; c != NULL; c = c->next)
		metrics_conn_close(c);
	metrics_maybe_free(m);
}
