/* SPDX-License-Identifier: MIT */
/*
 * The shared part of the client commands (see client.h).  A client is a
 * short-lived process: it opens the pool the node configuration names on
 * a loop of its own, makes a few store and queue calls and prints what it
 * found.  Most calls are run to their end one at a time (the loop runs
 * until the call's callback has set its result), which keeps the commands
 * straight-line code; `task add` drives many calls at once itself.
 *
 * Everything read from the store is untrusted text: it is printed with
 * control characters escaped and SAS signatures redacted.
 */
#include "client.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "error.h"
#include "fsutil.h"
#include "json_field.h"
#include "log.h"
#include "url.h"
#include "xmalloc.h"

/* One store or queue call run to its end. */
struct client_call {
	bool done;
	int status;
	char *detail;
	const char *what;	/* the table or queue, for messages */
	struct bd_entity *entity;
	struct bd_entity **rows;
	size_t n;
};

struct bd_client_table {
	size_t ncols;
	size_t nrows;		/* the header included */
	char **cells;		/* nrows * ncols */
};

/*
 * A copy of s with control characters other than newline and tab (and,
 * with keep_space false, those too) written as \xNN.  Caller frees.
 */
static char *
client_escape(const char *s, bool keep_space)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;
	char *out, *o;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		n += (*p < 0x20 || *p == 0x7f) ? 4 : 1;
	out = o = xmalloc(n + 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p < 0x20 && !(keep_space && (*p == '\n' ||
		    *p == '\t'))) || *p == 0x7f) {
			*o++ = '\\';
			*o++ = 'x';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 15];
		} else
			*o++ = (char)*p;
	}
	*o = '\0';
	return out;
}

/* Redacts, then escapes: any text from outside that goes to a person. */
static char *
client_clean(const char *s, bool keep_space)
{
	char *r = bd_url_redact(s), *e = client_escape(r, keep_space);

	free(r);
	return e;
}

void
bd_client_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	char *msg, *clean;

	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	clean = client_clean(msg, true);
	if (cmd != NULL)
		fprintf(stderr, "batchd %s: %s\n", cmd, clean);
	else
		fprintf(stderr, "batchd: %s\n", clean);
	free(clean);
	free(msg);
}

int
bd_client_parse(int argc, char **argv, const char *cmd, const char *allowed,
    void (*usage)(FILE *), struct bd_client_args *a)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "reason", required_argument, NULL, 'r' },
		{ "state", required_argument, NULL, 's' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "json", no_argument, NULL, 'j' },
		{ "tasks", no_argument, NULL, 't' },
		{ "resend", no_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	memset(a, 0, sizeof(*a));
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		if (ch == 'h') {
			usage(stdout);
			return BD_CLIENT_OK;
		}
		if (ch == '?' || (ch != 'c' && strchr(allowed, ch) == NULL)) {
			for (int i = 0; ch != '?' && longopts[i].name; i++)
				if (longopts[i].val == ch)
					bd_client_error(cmd, "no option "
					    "--%s here", longopts[i].name);
			usage(stderr);
			return BD_CLIENT_FAIL;
		}
		switch (ch) {
		case 'c':
			a->config = optarg;
			break;
		case 'r':
			a->reason = optarg;
			break;
		case 's':
			a->state = optarg;
			break;
		case 'T':
			a->timeout = optarg;
			break;
		case 'j':
			a->json = true;
			break;
		case 't':
			a->tasks = true;
			break;
		case 'R':
			a->resend = true;
			break;
		}
	}
	a->argv = argv + optind;
	a->argc = argc - optind;
	return -1;
}

int
bd_client_open(struct bd_client *c, const char *cmd, const char *config_path)
{
	char *cause = NULL;
	int rc;

	memset(c, 0, sizeof(*c));
	c->cmd = cmd;
	/* Only warnings from the modules below: the output is ours. */
	log_init(BD_LOG_WARNING, BD_LOG_FORMAT_TEXT);
	if ((rc = bd_config_load(config_path, &c->cfg, &cause)) != 0) {
		bd_client_error(NULL, "%s", cause != NULL ? cause :
		    bd_strerror(rc));
		free(cause);
		return BD_CLIENT_FAIL;
	}
	if ((rc = uv_loop_init(&c->loop)) != 0) {
		bd_client_error(cmd, "cannot start the event loop: %s",
		    uv_strerror(rc));
		bd_config_free(c->cfg);
		c->cfg = NULL;
		return BD_CLIENT_INTERNAL;
	}
	c->loop_open = true;
	if ((rc = bd_pool_open(&c->loop, c->cfg, false, &c->pool,
	    &cause)) < 0) {
		bd_client_error(cmd, "cannot open pool %s: %s", c->cfg->pool_id,
		    cause != NULL ? cause : bd_strerror(rc));
		free(cause);
		return bd_client_close(c, BD_CLIENT_FAIL);
	}
	return BD_CLIENT_OK;
}

static void
client_on_pool_closed(void *arg)
{
	*(bool *)arg = true;
}

int
bd_client_close(struct bd_client *c, int status)
{
	bool closed = false;

	if (c->pool != NULL) {
		bd_pool_close(c->pool, client_on_pool_closed, &closed);
		c->pool = NULL;
		(void)bd_client_run_until(c, &closed);
	}
	if (c->loop_open) {
		uv_run(&c->loop, UV_RUN_DEFAULT);
		if (uv_loop_close(&c->loop) != 0)
			bd_client_error(c->cmd, "internal error: the event "
			    "loop did not close");
		c->loop_open = false;
	}
	bd_config_free(c->cfg);
	c->cfg = NULL;
	return status;
}

int
bd_client_status(int rc)
{
	switch (rc) {
	case -EINVAL:
	case -EFAULT:
	case -EBADF:
	case -ENOMEM:
	case -ECANCELED:
	case -EDEADLK:
		return BD_CLIENT_INTERNAL;
	default:
		return BD_CLIENT_FAIL;
	}
}

int
bd_client_run_until(struct bd_client *c, const bool *done)
{
	while (!*done) {
		if (uv_run(&c->loop, UV_RUN_ONCE) == 0 && !*done)
			return -EDEADLK;
	}
	return 0;
}

/* Records a call's end; detail is copied, redacted. */
static void
client_end(struct client_call *cc, int status, const char *detail)
{
	cc->done = true;
	cc->status = status;
	if (status < 0)
		cc->detail = detail != NULL ? bd_url_redact(detail) :
		    xasprintf("%s: %s", cc->what, bd_strerror(status));
}

/*
 * Runs a started call to its end: rc is what the start returned.  Returns
 * the call's status and hands over its detail.
 */
static int
client_finish(struct bd_client *c, struct client_call *cc, int rc,
    char **detail)
{
	if (rc < 0)
		client_end(cc, rc, NULL);
	else if (bd_client_run_until(c, &cc->done) < 0)
		client_end(cc, -EDEADLK, "internal error: a store call never "
		    "ended");
	if (cc->status < 0)
		*detail = cc->detail;
	else
		free(cc->detail);
	cc->detail = NULL;
	return cc->status;
}

static void
client_on_done(void *arg, int status, const char *detail)
{
	client_end(arg, status, detail);
}

static void
client_on_write(void *arg, int status, const char *etag, const char *detail)
{
	client_end(arg, status, detail);
}

static void
client_on_entity(void *arg, int status, struct bd_entity *e,
    const char *detail)
{
	struct client_call *cc = arg;

	cc->entity = e;
	client_end(cc, status, detail);
}

static void
client_on_rows(void *arg, int status, struct bd_entity **rows, size_t n,
    const char *detail)
{
	struct client_call *cc = arg;

	cc->rows = rows;
	cc->n = n;
	client_end(cc, status, detail);
}

int
bd_client_create(struct bd_client *c, char **detail)
{
	struct client_call cc = { .what = "the pool's queues and tables" };

	return client_finish(c, &cc, bd_pool_create(c->pool, client_on_done,
	    &cc), detail);
}

int
bd_client_get(struct bd_client *c, enum bd_table t, const char *pk,
    const char *rk, struct bd_entity **out, char **detail)
{
	struct client_call cc = { .what = bd_table_name(t) };
	int rc;

	rc = client_finish(c, &cc, bd_store_get(c->pool->store, t, pk, rk,
	    client_on_entity, &cc), detail);
	if (rc < 0) {
		bd_entity_free(cc.entity);
		cc.entity = NULL;
	}
	*out = cc.entity;
	return rc;
}

static int
client_row_cmp(const void *a, const void *b)
{
	const struct bd_entity *x = *(const struct bd_entity *const *)a;
	const struct bd_entity *y = *(const struct bd_entity *const *)b;

	return strcmp(x->row_key, y->row_key);
}

int
bd_client_query(struct bd_client *c, enum bd_table t, const char *pk,
    struct bd_entity ***rows, size_t *n, char **detail)
{
	struct client_call cc = { .what = bd_table_name(t) };
	int rc;

	*rows = NULL;
	*n = 0;
	rc = client_finish(c, &cc, bd_store_query(c->pool->store, t, pk,
	    client_on_rows, &cc), detail);
	if (rc < 0) {
		bd_client_free_rows(cc.rows, cc.n);
		if (rc == -ENOENT || rc == BD_ENOTFOUND) {
			/* No table yet: nothing was ever added. */
			free(*detail);
			*detail = NULL;
			return 0;
		}
		return rc;
	}
	if (cc.n > 1)
		qsort(cc.rows, cc.n, sizeof(*cc.rows), client_row_cmp);
	*rows = cc.rows;
	*n = cc.n;
	return 0;
}

int
bd_client_insert(struct bd_client *c, enum bd_table t,
    const struct bd_entity *e, char **detail)
{
	struct client_call cc = { .what = bd_table_name(t) };

	return client_finish(c, &cc, bd_store_insert(c->pool->store, t, e,
	    client_on_write, &cc), detail);
}

int
bd_client_merge(struct bd_client *c, enum bd_table t,
    const struct bd_entity *e, const char *etag, char **detail)
{
	struct client_call cc = { .what = bd_table_name(t) };

	return client_finish(c, &cc, bd_store_merge(c->pool->store, t, e,
	    etag, client_on_write, &cc), detail);
}

static void
client_on_timer(uv_timer_t *t)
{
	*(bool *)t->data = true;
}

static void
client_on_timer_closed(uv_handle_t *h)
{
	*(bool *)h->data = true;
}

void
bd_client_sleep(struct bd_client *c, int64_t ms)
{
	uv_timer_t timer;
	bool fired = false, closed = false;

	uv_timer_init(&c->loop, &timer);
	timer.data = &fired;
	uv_timer_start(&timer, client_on_timer, (uint64_t)(ms > 0 ? ms : 0),
	    0);
	(void)bd_client_run_until(c, &fired);
	timer.data = &closed;
	uv_close((uv_handle_t *)&timer, client_on_timer_closed);
	(void)bd_client_run_until(c, &closed);
}

void
bd_client_free_rows(struct bd_entity **rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		bd_entity_free(rows[i]);
	free(rows);
}

const char *
bd_client_prop(const struct bd_entity *e, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(e->props, name);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

bool
bd_client_prop_int(const struct bd_entity *e, const char *name, int64_t *v)
{
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(e->props, name);

	if (!cJSON_IsNumber(p) || p->valuedouble < -9.0e15 ||
	    p->valuedouble > 9.0e15)
		return false;
	*v = (int64_t)p->valuedouble;
	return true;
}

int
bd_client_read_json(const char *cmd, const char *path, size_t max,
    cJSON **out)
{
	char *data = NULL;
	const char *end = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	if ((rc = bd_read_file(path, max, &data, &len)) < 0) {
		if (rc == BD_ETOOBIG)
			bd_client_error(cmd, "%s: bigger than %zu MiB", path,
			    max >> 20);
		else
			bd_client_error(cmd, "%s: %s", path, bd_strerror(rc));
		return BD_CLIENT_FAIL;
	}
	*out = cJSON_ParseWithLengthOpts(data, len, &end, false);
	if (*out == NULL) {
		size_t off = end != NULL && end >= data ?
		    (size_t)(end - data) : 0;
		size_t line = 1;
		for (size_t i = 0; i < off && i < len; i++)
			line += data[i] == '\n';
		bd_client_error(cmd, "%s:%zu: not valid JSON", path, line);
		free(data);
		return BD_CLIENT_FAIL;
	}
	free(data);
	return BD_CLIENT_OK;
}

int
bd_client_get_job(struct bd_client *c, const char *id,
    struct bd_entity **row)
{
	char *detail = NULL;
	int rc;

	*row = NULL;
	if (!bd_json_id_valid(id)) {
		bd_client_error(c->cmd, "'%s' is not a job id (1 to 64 "
		    "letters, digits, '-' and '_')", id);
		return BD_CLIENT_FAIL;
	}
	rc = bd_client_get(c, BD_TABLE_JOBS, c->cfg->pool_id, id, row,
	    &detail);
	if (rc == -ENOENT || rc == BD_ENOTFOUND) {
		bd_client_error(c->cmd, "job %s not found in pool %s", id,
		    c->cfg->pool_id);
		free(detail);
		return BD_CLIENT_FAIL;
	}
	if (rc < 0) {
		bd_client_error(c->cmd, "cannot read job %s: %s", id, detail);
		free(detail);
		return bd_client_status(rc);
	}
	return BD_CLIENT_OK;
}

bool
bd_client_task_blocked(const struct bd_entity *row)
{
	const char *state = bd_client_prop(row, "state");

	return (state == NULL || strcmp(state, "active") == 0) &&
	    bd_client_prop(row, "blockedBy") != NULL;
}

bool
bd_client_task_failed(const struct bd_entity *row)
{
	const char *state = bd_client_prop(row, "state");
	const char *result = bd_client_prop(row, "result");

	if (state == NULL || strcmp(state, "completed") != 0)
		return false;
	if (result != NULL)
		return strcmp(result, "success") != 0;
	return bd_client_prop(row, "failureCode") != NULL;
}

void
bd_client_count_tasks(struct bd_entity *const *rows, size_t n,
    struct bd_client_counts *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < n; i++) {
		const char *state = bd_client_prop(rows[i], "state");

		out->total++;
		if (state != NULL && strcmp(state, "completed") == 0) {
			out->completed++;
			if (bd_client_task_failed(rows[i]))
				out->failed++;
			else
				out->succeeded++;
		} else if (state != NULL && strcmp(state, "running") == 0)
			out->running++;
		else if (state != NULL && strcmp(state, "preparing") == 0)
			out->preparing++;
		else if (bd_client_task_blocked(rows[i]))
			out->blocked++;
		else
			out->active++;
	}
}

const char *
bd_client_time(const char *iso, char *buf, size_t len)
{
	int64_t ms;
	time_t t;
	struct tm tm;
	char *e;

	if (iso != NULL && bd_clock_parse_iso(iso, &ms) == 0) {
		t = (time_t)(ms / 1000);
		if (gmtime_r(&t, &tm) != NULL &&
		    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) > 0)
			return buf;
	}
	e = client_escape(iso != NULL ? iso : "", false);
	snprintf(buf, len, "%s", e);
	free(e);
	return buf;
}

const char *
bd_client_age(int64_t ms, char *buf, size_t len)
{
	int64_t s = ms > 0 ? ms / 1000 : 0;

	if (s < 60)
		snprintf(buf, len, "%llds", (long long)s);
	else if (s < 3600)
		snprintf(buf, len, "%lldm%llds", (long long)(s / 60),
		    (long long)(s % 60));
	else if (s < 86400)
		snprintf(buf, len, "%lldh%lldm", (long long)(s / 3600),
		    (long long)(s % 3600 / 60));
	else
		snprintf(buf, len, "%lldd%lldh", (long long)(s / 86400),
		    (long long)(s % 86400 / 3600));
	return buf;
}

struct bd_client_table *
bd_client_table_new(size_t ncols, const char *const *headers)
{
	struct bd_client_table *t = xcalloc(1, sizeof(*t));

	t->ncols = ncols;
	bd_client_table_add(t, headers);
	return t;
}

void
bd_client_table_add(struct bd_client_table *t, const char *const *cells)
{
	t->cells = xreallocarray(t->cells, (t->nrows + 1) * t->ncols,
	    sizeof(*t->cells));
	for (size_t i = 0; i < t->ncols; i++) {
		const char *s = cells[i];
		t->cells[t->nrows * t->ncols + i] = s != NULL && *s != '\0' ?
		    client_clean(s, false) : xstrdup("-");
	}
	t->nrows++;
}

/* The width of s on a terminal: its UTF-8 code points. */
static size_t
client_width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

void
bd_client_table_print(const struct bd_client_table *t, FILE *f)
{
	size_t *width = xcalloc(t->ncols, sizeof(*width));

	for (size_t r = 0; r < t->nrows; r++)
		for (size_t i = 0; i < t->ncols; i++) {
			size_t w = client_width(t->cells[r * t->ncols + i]);
			if (w > width[i])
				width[i] = w;
		}
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t i = 0; i < t->ncols; i++) {
			const char *s = t->cells[r * t->ncols + i];
			fputs(s, f);
			if (i + 1 < t->ncols)
				fprintf(f, "%*s", (int)(width[i] -
				    client_width(s) + 2), "");
		}
		fputc('\n', f);
	}
	free(width);
}

void
bd_client_table_free(struct bd_client_table *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}

void
bd_client_print_json(const cJSON *json)
{
	char *text = cJSON_Print(json), *clean;

	if (text == NULL)
		abort(); /* cJSON fails only when out of memory */
	clean = bd_url_redact(text);
	printf("%s\n", clean);
	free(clean);
	free(text);
}
