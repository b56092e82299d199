/* SPDX-License-Identifier: MIT */
/*
 * HTTP transfers over libcurl's multi interface, driven by libuv.
 *
 * One struct bd_http per loop owns a CURLM handle.  libcurl tells us which
 * sockets to watch (http_on_curl_socket: one uv_poll_t per socket, in a
 * struct http_sock) and when to wake it (http_on_curl_timer: one uv_timer_t),
 * and every wake-up ends in curl_multi_socket_action() followed by
 * http_pump(), which collects finished attempts, carries out cancels and
 * closes that arrived while libcurl was running our callbacks, and moves
 * queued transfers onto the wire while fewer than max_active are there.
 *
 * A transfer (struct bd_http_transfer) moves through these states:
 *
 *	QUEUED   waiting for one of max_active slots
 *	ACTIVE   an attempt is on the wire: an easy handle in the multi
 *	BACKOFF  a transient failure; its timer starts the next attempt
 *	FINISHING the outcome is known; its timer delivers the callback
 *	DONE     the callback is running or has run; the timer is closing
 *
 * The transfer embeds that one uv_timer_t (backoff, then delivery) and is
 * freed in its close callback; the bd_http is freed when its own timer and
 * every poll and transfer timer are closed, so uv_loop_close() succeeds
 * after bd_http_close()'s callback.  Results are always delivered from the
 * timer, never from inside bd_http_start() or bd_http_cancel().
 *
 * Response bodies go to a file descriptor with pwrite() or to memory;
 * request bodies come from a file descriptor with pread() or from memory,
 * inside libcurl's callbacks on the loop thread.  Only the body of a 2xx
 * response reaches the sink; other bodies are kept (capped) for the error
 * text.  A GET into a file that fails mid-body keeps what was written and
 * asks for the rest with a Range and an If-Range on the response's
 * validator, checking the Content-Range start of the 206; a 200 instead
 * restarts the range.  A response without a validator (no ETag and no
 * strong Last-Modified, or a weak ETag) cannot be resumed: the next bytes
 * could be of another version, so the range starts again from its first.
 *
 * libcurl forbids adding or removing easy handles from inside its
 * callbacks, and a user's progress callback runs inside them, so a cancel,
 * start or close made there is recorded and carried out by http_pump() as
 * soon as libcurl returns.
 */
#include "http.h"

#include <sys/queue.h>

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "version.h"
#include "curl_api.h"
#include "error.h"
#include "url.h"
#include "xmalloc.h"

#define container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#define HTTP_USER_AGENT		"batchd/" BATCHD_VERSION
#define HTTP_DEFAULT_MAX_ACTIVE	16
#define HTTP_MAX_ACTIVE		1024
#define HTTP_DEFAULT_MAX_MEMORY	(8u * 1024 * 1024)
#define HTTP_ERROR_BODY_MAX	(64 * 1024)
#define HTTP_MAX_HEADERS	128
#define HTTP_MAX_HEADER_BYTES	(64 * 1024)
#define HTTP_MAX_URL		(64 * 1024)
#define HTTP_MAX_METHOD		16
#define HTTP_BUFFER_SIZE	(128L * 1024)
/*
 * Smaller request bodies go without "Expect: 100-continue": the wait for
 * the interim 100 costs every small upload a round trip (and a blob
 * server a response), to save sending a body that may be refused.
 */
#define HTTP_EXPECT_MIN		(1024L * 1024)
/* Bytes of a file sink gathered before one pwrite: libcurl hands the body
   over in 16 KiB pieces, and a pwrite each cost more than the receiving. */
#define HTTP_SINK_BUF		(128 * 1024)
/* Sink buffers kept for reuse: a download in many ranges would otherwise
   allocate one per range, and the heap grows with the churn. */
#define HTTP_SPARE_BUFS		16
#define HTTP_DEFAULT_CONNECT_MS	30000L
#define HTTP_DEFAULT_STALL_S	60L
#define HTTP_DEFAULT_ATTEMPTS	5
#define HTTP_DEFAULT_BASE_MS	500L
#define HTTP_DEFAULT_MAX_DELAY_MS 30000L
#define HTTP_RETRY_AFTER_MAX_MS	300000L
#define HTTP_MAX_DELAY_MS	3600000L

/* One socket libcurl asked us to watch. */
struct http_sock {
	uv_poll_t poll;
	struct bd_http *h;
	curl_socket_t fd;
	LIST_ENTRY(http_sock) entry;
};

struct bd_http {
	uv_loop_t *loop;
	CURLM *multi;		/* NULL once closing has cleaned it up */
	uv_timer_t timer;	/* libcurl's timeout */
	int max_active;
	char *ca_file;
	int n_active;		/* transfers with an easy handle in multi */
	int n_queued;
	int n_handles;		/* libuv handles not yet closed */
	int in_curl;		/* inside curl_multi_socket_action() */
	bool closing;
	bool close_deferred;
	bool cancel_deferred;
	void (*closed_cb)(void *);
	void *closed_arg;
	uint64_t rng;
	char *spare[HTTP_SPARE_BUFS];	/* sink buffers for the next transfers */
	int n_spare;
	TAILQ_HEAD(, bd_http_transfer) queue;	/* QUEUED, in order */
	TAILQ_HEAD(, bd_http_transfer) all;	/* not yet delivered */
	LIST_HEAD(, http_sock) socks;		/* polls not yet closing */
};

enum transfer_state {
	T_QUEUED,
	T_ACTIVE,
	T_BACKOFF,
	T_FINISHING,
	T_DONE,
};

struct bd_http_transfer {
	struct bd_http *h;
	uv_timer_t timer;
	enum transfer_state state;
	TAILQ_ENTRY(bd_http_transfer) all_entry;
	TAILQ_ENTRY(bd_http_transfer) queue_entry;
	bd_http_done_cb cb;
	void *arg;

	/* The request, copied. */
	char *method;
	char *url;
	char **headers;
	size_t n_headers;
	bool is_get;
	bool is_head;
	bool sends_body;
	int body_fd;
	int64_t body_offset;
	int64_t body_length;
	char *body_mem;
	int sink_fd;
	int64_t sink_offset;
	size_t max_memory;
	int64_t range_start;
	int64_t range_end;
	bool require_partial;
	long connect_timeout_ms;
	long stall_timeout_s;
	long total_timeout_ms;
	struct bd_retry_policy retry;
	void (*progress_cb)(void *, int64_t, int64_t);
	void *progress_arg;

	/* State kept across attempts. */
	uint64_t started;	/* uv_now() at bd_http_start() */
	int attempts;
	int64_t written;	/* bytes of the range in the sink */
	int64_t expect_len;	/* length of the range once known, or -1 */
	char *if_range;		/* validator of the first 2xx, for resuming;
				   NULL: a broken attempt starts again */
	bool cancel_requested;
	int final_status;
	char *detail;

	/* The current attempt. */
	CURL *easy;
	struct curl_slist *slist;
	char errbuf[CURL_ERROR_SIZE];
	int64_t body_pos;	/* read position in the request body */
	long status;
	bool body_ok;		/* the response is a final 2xx */
	int64_t skip;		/* body bytes to drop before the range */
	int64_t limit;		/* range bytes to keep at most, or -1 */
	bool range_complete;	/* stopped reading: the range is whole */
	bool range_mismatch;
	bool range_ignored;	/* 2xx but not 206 with require_partial */
	bool too_big;
	int sink_err;
	int read_err;
	char *wbuf;		/* body bytes not yet written to sink_fd: the
				   last wlen of the written ones */
	size_t wlen;
	int64_t last_done;
	int64_t last_total;

	/* The last response. */
	struct bd_http_header *hdrs;
	size_t n_hdrs;
	size_t hdr_bytes;
	int64_t content_length;
	int64_t entity_length;
	char *mem;		/* memory sink, or the body of an error */
	size_t mem_len;
	size_t mem_cap;
	struct bd_http_response resp;
};

static void http_pump(struct bd_http *);
static void transfer_attempt(struct bd_http_transfer *);
static void transfer_finish(struct bd_http_transfer *, int, char *);

/* A pseudo-random number for backoff jitter (xorshift64*). */
static uint64_t
http_random(struct bd_http *h)
{
	h->rng ^= h->rng >> 12;
	h->rng ^= h->rng << 25;
	h->rng ^= h->rng >> 27;
	return h->rng * 2685821657736338717ULL;
}

/* Frees h once everything it owns is closed, then tells the owner. */
static void
http_maybe_free(struct bd_http *h)
{
	void (*cb)(void *) = h->closed_cb;
	void *arg = h->closed_arg;

	if (!h->closing || h->n_handles > 0 || h->multi != NULL)
		return;
	while (h->n_spare > 0)
		free(h->spare[--h->n_spare]);
	free(h->ca_file);
	free(h);
	if (cb != NULL)
		cb(arg);
}

/* Close callback of every handle the module owns but the transfers'. */
static void
http_on_handle_closed(uv_handle_t *handle)
{
	struct bd_http *h;
	struct http_sock *s;

	if (handle->type == UV_POLL) {
		s = container_of(handle, struct http_sock, poll);
		h = s->h;
		free(s);
	} else
		h = container_of(handle, struct bd_http, timer);
	h->n_handles--;
	http_maybe_free(h);
}

/* Stops watching a socket; the struct goes in the close callback. */
static void
http_sock_close(struct http_sock *s)
{
	LIST_REMOVE(s, entry);
	uv_close((uv_handle_t *)&s->poll, http_on_handle_closed);
}

/* Runs libcurl for one socket event or timeout, then the pending work. */
static void
http_socket_action(struct bd_http *h, curl_socket_t fd, int flags)
{
	int running;

	if (h->multi == NULL)
		return;
	h->in_curl++;
	curl_multi_socket_action(h->multi, fd, flags, &running);
	h->in_curl--;
	http_pump(h);
}

/* A watched socket is ready (or failed). */
static void
http_on_poll(uv_poll_t *poll, int status, int events)
{
	struct http_sock *s = container_of(poll, struct http_sock, poll);
	int flags = 0;

	if (status < 0)
		flags = CURL_CSELECT_ERR;
	else {
		if (events & UV_READABLE)
			flags |= CURL_CSELECT_IN;
		if (events & UV_WRITABLE)
			flags |= CURL_CSELECT_OUT;
	}
	http_socket_action(s->h, s->fd, flags);
}

/* libcurl's timeout expired. */
static void
http_on_timer(uv_timer_t *timer)
{
	struct bd_http *h = container_of(timer, struct bd_http, timer);

	http_socket_action(h, CURL_SOCKET_TIMEOUT, 0);
}

/* CURLMOPT_SOCKETFUNCTION: start, change or stop watching a socket. */
static int
http_on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *arg,
    void *sockp)
{
	struct bd_http *h = arg;
	struct http_sock *s = sockp;
	int events = 0;

	if (what == CURL_POLL_REMOVE) {
		if (s != NULL)
			http_sock_close(s);
		return 0;
	}
	if (s == NULL) {
		/*
		 * A watcher still on this descriptor means libcurl closed the
		 * old socket without telling us; libuv would refuse a second.
		 */
		LIST_FOREACH(s, &h->socks, entry)
			if (s->fd == fd)
				break;
		if (s != NULL)
			http_sock_close(s);
		s = xcalloc(1, sizeof(*s));
		s->h = h;
		s->fd = fd;
		if (uv_poll_init_socket(h->loop, &s->poll, fd) != 0) {
			free(s);
			return -1;
		}
		h->n_handles++;
		LIST_INSERT_HEAD(&h->socks, s, entry);
		curl_multi_assign(h->multi, fd, s);
	}
	if (what & CURL_POLL_IN)
		events |= UV_READABLE;
	if (what & CURL_POLL_OUT)
		events |= UV_WRITABLE;
	if (uv_poll_start(&s->poll, events, http_on_poll) != 0)
		return -1;
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: (re)arm or stop the one timer. */
static int
http_on_curl_timer(CURLM *multi, long timeout_ms, void *arg)
{
	struct bd_http *h = arg;

	if (uv_is_closing((uv_handle_t *)&h->timer))
		return 0;
	if (timeout_ms < 0)
		uv_timer_stop(&h->timer);
	else
		uv_timer_start(&h->timer, http_on_timer, (uint64_t)timeout_ms,
		    0);
	return 0;
}

int
bd_http_new(uv_loop_t *loop, const struct bd_http_options *o,
    struct bd_http **out)
{
	struct bd_http *h;
	int rc;
	int max_active = o != NULL ? o->max_active : 0;
	int per_host = o != NULL ? o->max_per_host : 0;

	*out = NULL;
	if (max_active < 0 || max_active > HTTP_MAX_ACTIVE || per_host < 0)
		return -EINVAL;
	if (max_active == 0)
		max_active = HTTP_DEFAULT_MAX_ACTIVE;
	if (per_host == 0 || per_host > max_active)
		per_host = max_active;
	/* libcurl is loaded on first use: see curl_api.h. */
	if ((rc = bd_curl_api_load(NULL)) < 0)
		return rc;

	h = xcalloc(1, sizeof(*h));
	h->loop = loop;
	h->max_active = max_active;
	if (o != NULL && o->ca_file != NULL)
		h->ca_file = xstrdup(o->ca_file);
	h->rng = uv_hrtime() ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)h;
	if (h->rng == 0)
		h->rng = 1;
	TAILQ_INIT(&h->queue);
	TAILQ_INIT(&h->all);
	LIST_INIT(&h->socks);
	if ((h->multi = curl_multi_init()) == NULL) {
		free(h->ca_file);
		free(h);
		return -ENOMEM;
	}
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION,
	    http_on_curl_socket);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, http_on_curl_timer);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
	    (long)max_active);
	curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
	    (long)per_host);
	curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)max_active);
	uv_timer_init(loop, &h->timer);
	h->n_handles = 1;
	*out = h;
	return 0;
}

void
bd_http_counts(const struct bd_http *h, int *active, int *queued)
{
	if (active != NULL)
		*active = h->n_active;
	if (queued != NULL)
		*queued = h->n_queued;
}

/* Frees the last response's headers. */
static void
transfer_clear_headers(struct bd_http_transfer *t)
{
	size_t i;

	for (i = 0; i < t->n_hdrs; i++) {
		free(t->hdrs[i].name);
		free(t->hdrs[i].value);
	}
	free(t->hdrs);
	t->hdrs = NULL;
	t->n_hdrs = 0;
	t->hdr_bytes = 0;
}

/* The value of header name in the last response, or NULL. */
static const char *
transfer_header(const struct bd_http_transfer *t, const char *name)
{
	size_t i;

	for (i = 0; i < t->n_hdrs; i++)
		if (strcasecmp(t->hdrs[i].name, name) == 0)
			return t->hdrs[i].value;
	return NULL;
}

const char *
bd_http_response_header(const struct bd_http_response *resp, const char *name)
{
	size_t i;

	for (i = 0; i < resp->n_headers; i++)
		if (strcasecmp(resp->headers[i].name, name) == 0)
			return resp->headers[i].value;
	return NULL;
}

/* Detaches the current attempt's easy handle and gives back its slot. */
static void
transfer_detach(struct bd_http_transfer *t)
{
	struct bd_http *h = t->h;

	if (t->easy != NULL) {
		if (h->multi != NULL)
			curl_multi_remove_handle(h->multi, t->easy);
		curl_easy_cleanup(t->easy);
		t->easy = NULL;
		h->n_active--;
	}
	curl_slist_free_all(t->slist);
	t->slist = NULL;
}

/* Close callback of a transfer's timer: the last of the transfer. */
static void
transfer_on_closed(uv_handle_t *handle)
{
	struct bd_http_transfer *t =
	    container_of(handle, struct bd_http_transfer, timer);
	struct bd_http *h = t->h;
	size_t i;

	for (i = 0; i < t->n_headers; i++)
		free(t->headers[i]);
	free(t->headers);
	free(t->method);
	free(t->url);
	free(t->body_mem);
	free(t->if_range);
	free(t->detail);
	free(t->mem);
	if (t->wbuf != NULL && h->n_spare < HTTP_SPARE_BUFS)
		h->spare[h->n_spare++] = t->wbuf;
	else
		free(t->wbuf);
	transfer_clear_headers(t);
	free(t);
	h->n_handles--;
	http_maybe_free(h);
}

/* Timer callback: runs the user's callback with the outcome, then frees. */
static void
transfer_on_deliver(uv_timer_t *timer)
{
	struct bd_http_transfer *t =
	    container_of(timer, struct bd_http_transfer, timer);
	struct bd_http_response *r = &t->resp;
	bool has_body = t->mem != NULL && (t->sink_fd < 0 || !t->body_ok);

	memset(r, 0, sizeof(*r));
	r->status = t->status;
	r->content_length = t->content_length;
	r->entity_length = t->entity_length;
	r->bytes_received = t->written;
	r->attempts = t->attempts;
	r->etag = transfer_header(t, "ETag");
	r->content_md5 = transfer_header(t, "Content-MD5");
	r->blob_content_md5 = transfer_header(t, "x-ms-blob-content-md5");
	r->error_code = transfer_header(t, "x-ms-error-code");
	r->retry_after = transfer_header(t, "Retry-After");
	r->content_range = transfer_header(t, "Content-Range");
	r->last_modified = transfer_header(t, "Last-Modified");
	r->headers = t->hdrs;
	r->n_headers = t->n_hdrs;
	r->body = has_body ? t->mem : NULL;
	r->body_len = has_body ? t->mem_len : 0;
	r->error_detail = t->detail;
	t->state = T_DONE;
	t->cb(t, t->final_status, r, t->arg);
	TAILQ_REMOVE(&t->h->all, t, all_entry);
	uv_close((uv_handle_t *)&t->timer, transfer_on_closed);
}

/*
 * Records the outcome and schedules the callback.  detail (owned, may be
 * NULL) is redacted here, so no error text leaves with a signature.
 */
static void
transfer_finish(struct bd_http_transfer *t, int status, char *detail)
{
	if (t->state == T_QUEUED) {
		TAILQ_REMOVE(&t->h->queue, t, queue_entry);
		t->h->n_queued--;
	}
	t->final_status = status;
	free(t->detail);
	t->detail = bd_url_redact(detail);
	free(detail);
	t->state = T_FINISHING;
	uv_timer_start(&t->timer, transfer_on_deliver, 0, 0);
}

/* Ends a transfer now with -ECANCELED, whatever it was doing. */
static void
transfer_cancel_now(struct bd_http_transfer *t)
{
	if (t->state == T_FINISHING || t->state == T_DONE)
		return;
	transfer_detach(t);
	transfer_finish(t, -ECANCELED, xstrdup("cancelled"));
}

void
bd_http_cancel(struct bd_http_transfer *t)
{
	struct bd_http *h = t->h;

	if (t->state == T_FINISHING || t->state == T_DONE)
		return;
	if (t->state == T_ACTIVE && h->in_curl) {
		t->cancel_requested = true;
		h->cancel_deferred = true;
		return;
	}
	transfer_cancel_now(t);
	http_pump(h);
}

/* Cancels everything, cleans up libcurl and closes the libuv handles. */
static void
http_shutdown(struct bd_http *h)
{
	struct bd_http_transfer *t;
	struct http_sock *s;

	TAILQ_FOREACH(t, &h->all, all_entry)
		transfer_cancel_now(t);
	curl_multi_cleanup(h->multi);
	h->multi = NULL;
	while ((s = LIST_FIRST(&h->socks)) != NULL)
		http_sock_close(s);
	uv_timer_stop(&h->timer);
	uv_close((uv_handle_t *)&h->timer, http_on_handle_closed);
}

void
bd_http_close(struct bd_http *h, void (*closed_cb)(void *arg), void *arg)
{
	if (h->closing)
		return;
	h->closing = true;
	h->closed_cb = closed_cb;
	h->closed_arg = arg;
	if (h->in_curl) {
		h->close_deferred = true;
		return;
	}
	http_shutdown(h);
}

/* Appends n bytes to the memory buffer, which stays NUL-terminated. */
static void
transfer_mem_add(struct bd_http_transfer *t, const char *data, size_t n)
{
	size_t cap = t->mem_cap;

	if (t->mem_len + n + 1 > cap) {
		if (cap == 0)
			cap = 4096;
		while (t->mem_len + n + 1 > cap)
			cap *= 2;
		t->mem = xrealloc(t->mem, cap);
		t->mem_cap = cap;
	}
	memcpy(t->mem + t->mem_len, data, n);
	t->mem_len += n;
	t->mem[t->mem_len] = '\0';
}

/* Empties the memory buffer, keeping an empty string. */
static void
transfer_mem_reset(struct bd_http_transfer *t)
{
	t->mem_len = 0;
	if (t->mem != NULL)
		t->mem[0] = '\0';
}

/* Parses a non-negative decimal number that fills s, or returns -1. */
static int64_t
http_parse_int(const char *s, size_t n)
{
	int64_t v = 0;
	size_t i;

	if (n == 0 || n > 18)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/*
 * Parses "bytes S-E/T" (T may be "*", giving -1).  Returns 0, or -1 when
 * the value is not of that form.
 */
static int
http_parse_content_range(const char *v, int64_t *s, int64_t *e, int64_t *total)
{
	const char *dash, *slash;

	if (v == NULL || strncasecmp(v, "bytes", 5) != 0)
		return -1;
	v += 5;
	while (*v == ' ')
		v++;
	if ((dash = strchr(v, '-')) == NULL ||
	    (slash = strchr(dash, '/')) == NULL)
		return -1;
	*s = http_parse_int(v, (size_t)(dash - v));
	*e = http_parse_int(dash + 1, (size_t)(slash - dash - 1));
	if (strcmp(slash + 1, "*") == 0)
		*total = -1;
	else if ((*total = http_parse_int(slash + 1, strlen(slash + 1))) < 0)
		return -1;
	if (*s < 0 || *e < *s || (*total >= 0 && *e >= *total))
		return -1;
	return 0;
}

/*
 * The validator of the response in t that a resumed request may send in
 * If-Range (caller frees), or NULL: its ETag if strong; else, when it has
 * no ETag at all, its Last-Modified if the Date is at least a second later,
 * which makes the date strong (RFC 9110 8.8.2.2, 13.1.5).  A weak ETag
 * only says two bodies are equivalent, not the same bytes, and forbids
 * the date too: the client has an entity tag, just not a usable one.
 */
static char *
transfer_validator(const struct bd_http_transfer *t)
{
	const char *etag = transfer_header(t, "ETag");
	const char *lm = transfer_header(t, "Last-Modified");
	const char *date = transfer_header(t, "Date");
	time_t m, d;

	if (etag != NULL && *etag != '\0')
		return strncmp(etag, "W/", 2) != 0 ? xstrdup(etag) : NULL;
	if (lm == NULL || date == NULL)
		return NULL;
	m = curl_getdate(lm, NULL);
	d = curl_getdate(date, NULL);
	if (m == -1 || d == -1 || d - m < 1)
		return NULL;
	return xstrdup(lm);
}

/*
 * Drops the bytes of the range kept so far: the next come from its first
 * byte.  A GET to the end of the resource also cuts the file at
 * sink_offset, so that no byte of a longer earlier version stays past the
 * new end.  0, or sets and returns sink_err.
 */
static int
transfer_restart(struct bd_http_transfer *t)
{
	bool had = t->written > 0;

	t->written = 0;
	t->wlen = 0;
	if (had && t->sink_fd >= 0 && t->range_end < 0 &&
	    ftruncate(t->sink_fd, t->sink_offset) != 0) {
		t->sink_err = -errno;
		return t->sink_err;
	}
	return 0;
}

/* The first byte of the resource the range starts at. */
static int64_t
transfer_base(const struct bd_http_transfer *t)
{
	return t->range_start >= 0 ? t->range_start : 0;
}

/*
 * The headers of a final response are in: decide where its body goes.
 * Returns false to abort the attempt.
 */
static bool
transfer_on_headers_end(struct bd_http_transfer *t)
{
	const char *cl = transfer_header(t, "Content-Length");
	const char *cr;
	int64_t base = transfer_base(t), s, e, total, end;

	t->content_length = cl != NULL ? http_parse_int(cl, strlen(cl)) : -1;
	t->entity_length = -1;
	t->skip = 0;
	t->limit = -1;
	t->body_ok = t->status >= 200 && t->status < 300;
	transfer_mem_reset(t);
	if (!t->body_ok)
		return true;
	if (t->status == 206) {
		cr = transfer_header(t, "Content-Range");
		if (http_parse_content_range(cr, &s, &e, &total) != 0 ||
		    s != base + t->written) {
			t->range_mismatch = true;
			return false;
		}
		t->entity_length = total;
		t->expect_len = t->written + (e - s + 1);
		if (t->if_range == NULL)
			t->if_range = transfer_validator(t);
		return true;
	}

	if (t->require_partial && (t->range_start >= 0 || t->written > 0)) {
		t->range_ignored = true;
		return false;
	}

	/*
	 * A whole representation: the server ignored the Range, or If-Range
	 * found the resource changed.  Start the range again from its first
	 * byte, dropping what comes before it and stopping after its end.
	 */
	t->entity_length = t->content_length;
	free(t->if_range);
	t->if_range = transfer_validator(t);
	t->expect_len = t->content_length;
	if (t->range_start >= 0 || t->written > 0) {
		if (transfer_restart(t) != 0)
			return false;
		t->skip = base;
		if (t->range_end >= 0)
			t->limit = t->range_end - base + 1;
		if (t->content_length >= 0) {
			end = t->content_length;
			if (t->range_end >= 0 && t->range_end + 1 < end)
				end = t->range_end + 1;
			t->expect_len = end > base ? end - base : 0;
		}
	}
	if (t->sink_fd < 0 && !t->is_head && t->skip == 0 &&
	    t->content_length >= 0 &&
	    (uint64_t)t->content_length > t->max_memory) {
		t->too_big = true;
		return false;
	}
	return true;
}

/* CURLOPT_HEADERFUNCTION: one header line of a response. */
static size_t
transfer_on_header(char *buf, size_t size, size_t nitems, void *arg)
{
	struct bd_http_transfer *t = arg;
	size_t len = size * nitems, n = len, name_len;
	const char *sp, *colon, *v;
	size_t vlen;

	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	if (n >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
		transfer_clear_headers(t);
		sp = memchr(buf, ' ', n);
		t->status = sp != NULL && (size_t)(sp - buf) + 4 <= n ?
		    (long)http_parse_int(sp + 1, 3) : 0;
		t->body_ok = false;
		return len;
	}
	if (n == 0) {
		if (t->status >= 200 && !transfer_on_headers_end(t))
			return 0;
		return len;
	}
	if ((colon = memchr(buf, ':', n)) == NULL || colon == buf ||
	    buf[0] == ' ' || buf[0] == '\t')
		return len;
	name_len = (size_t)(colon - buf);
	v = colon + 1;
	vlen = n - name_len - 1;
	while (vlen > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		vlen--;
	}
	while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
		vlen--;
	if (t->n_hdrs >= HTTP_MAX_HEADERS ||
	    t->hdr_bytes + n > HTTP_MAX_HEADER_BYTES)
		return len;
	t->hdrs = xreallocarray(t->hdrs, t->n_hdrs + 1, sizeof(*t->hdrs));
	t->hdrs[t->n_hdrs].name = xstrndup(buf, name_len);
	t->hdrs[t->n_hdrs].value = xstrndup(v, vlen);
	t->n_hdrs++;
	t->hdr_bytes += n;
	return len;
}

/* Writes n bytes at off of the sink; 0, or sets and returns sink_err. */
static int
transfer_pwrite(struct bd_http_transfer *t, const char *data, size_t n,
    int64_t off)
{
	ssize_t w;

	while (n > 0) {
		w = pwrite(t->sink_fd, data, n, off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			t->sink_err = w < 0 ? -errno : -EIO;
			return t->sink_err;
		}
		data += w;
		n -= (size_t)w;
		off += w;
	}
	return 0;
}

/*
 * Writes the gathered body bytes to the sink; 0, or sets and returns
 * sink_err.  Called when the buffer is full and when an attempt ends, so
 * that written counts bytes in the file wherever it is read.
 */
static int
transfer_sink_flush(struct bd_http_transfer *t)
{
	size_t n = t->wlen;

	if (n == 0)
		return 0;
	t->wlen = 0;
	return transfer_pwrite(t, t->wbuf, n, t->sink_offset + t->written -
	    (int64_t)n);
}

/* Writes n bytes of the range at its current end.  0 or a negative errno. */
static int
transfer_sink_write(struct bd_http_transfer *t, const char *data, size_t n)
{
	if (t->sink_fd < 0) {
		if ((uint64_t)t->written + n > t->max_memory) {
			t->too_big = true;
			return BD_ETOOBIG;
		}
		transfer_mem_add(t, data, n);
		t->written += (int64_t)n;
		return 0;
	}
	if (t->wlen + n > HTTP_SINK_BUF && transfer_sink_flush(t) != 0)
		return t->sink_err;
	if (n >= HTTP_SINK_BUF) {
		if (transfer_pwrite(t, data, n, t->sink_offset +
		    t->written) != 0)
			return t->sink_err;
	} else {
		if (t->wbuf == NULL)
			t->wbuf = t->h->n_spare > 0 ?
			    t->h->spare[--t->h->n_spare] :
			    xmalloc(HTTP_SINK_BUF);
		memcpy(t->wbuf + t->wlen, data, n);
		t->wlen += n;
	}
	t->written += (int64_t)n;
	return 0;
}

/* CURLOPT_WRITEFUNCTION: response body bytes. */
static size_t
transfer_on_body(char *data, size_t size, size_t nitems, void *arg)
{
	struct bd_http_transfer *t = arg;
	size_t len = size * nitems, n = len, room, d;

	if (!t->body_ok) {
		/* An error's body: keep the start for the error text. */
		room = HTTP_ERROR_BODY_MAX - t->mem_len;
		transfer_mem_add(t, data, n < room ? n : room);
		return len;
	}
	if (t->skip > 0) {
		d = (uint64_t)t->skip < n ? (size_t)t->skip : n;
		t->skip -= (int64_t)d;
		data += d;
		n -= d;
	}
	if (t->limit >= 0 && (uint64_t)(t->limit - t->written) < n) {
		n = (size_t)(t->limit - t->written);
		t->range_complete = true;
	}
	if (n > 0 && transfer_sink_write(t, data, n) != 0)
		return 0;
	return t->range_complete ? 0 : len;
}

/* CURLOPT_READFUNCTION: request body bytes, from the file or memory. */
static size_t
transfer_on_read(char *buf, size_t size, size_t nitems, void *arg)
{
	struct bd_http_transfer *t = arg;
	size_t want = size * nitems;
	int64_t remain = t->body_length - t->body_pos;
	ssize_t r;

	if (remain <= 0)
		return 0;
	if ((uint64_t)remain < want)
		want = (size_t)remain;
	if (t->body_fd < 0) {
		memcpy(buf, t->body_mem + t->body_pos, want);
		t->body_pos += (int64_t)want;
		return want;
	}
	do
		r = pread(t->body_fd, buf, want, t->body_offset + t->body_pos);
	while (r < 0 && errno == EINTR);
	if (r <= 0) {
		/* A file shorter than the length promised is an I/O error. */
		t->read_err = r < 0 ? -errno : -EIO;
		return CURL_READFUNC_ABORT;
	}
	t->body_pos += r;
	return (size_t)r;
}

/* CURLOPT_SEEKFUNCTION: libcurl rewinds the body to send it again. */
static int
transfer_on_seek(void *arg, curl_off_t offset, int origin)
{
	struct bd_http_transfer *t = arg;

	if (origin != SEEK_SET || offset < 0 || offset > t->body_length)
		return CURL_SEEKFUNC_FAIL;
	t->body_pos = offset;
	return CURL_SEEKFUNC_OK;
}

/* CURLOPT_XFERINFOFUNCTION: passes progress on when it changed. */
static int
transfer_on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow,
    curl_off_t ultotal, curl_off_t ulnow)
{
	struct bd_http_transfer *t = arg;
	int64_t done, total;

	if (t->sends_body) {
		done = ulnow;
		total = t->body_length;
	} else {
		done = t->written;
		total = t->expect_len;
	}
	if (t->progress_cb != NULL && t->state == T_ACTIVE &&
	    !t->cancel_requested &&
	    (done != t->last_done || total != t->last_total)) {
		t->last_done = done;
		t->last_total = total;
		t->progress_cb(t->progress_arg, done, total);
	}
	return 0;
}

/*
 * Builds this attempt's header list: the request's, then no Expect for a
 * small body, then If-Range.
 */
static struct curl_slist *
transfer_slist(struct bd_http_transfer *t)
{
	struct curl_slist *l = NULL, *n;
	size_t i;
	char *line;

	for (i = 0; i < t->n_headers; i++) {
		if ((n = curl_slist_append(l, t->headers[i])) == NULL)
			goto oom;
		l = n;
	}
	if (t->sends_body && t->body_length < HTTP_EXPECT_MIN) {
		if ((n = curl_slist_append(l, "Expect:")) == NULL)
			goto oom;
		l = n;
	}
	if (t->is_get && t->written > 0 && t->if_range != NULL) {
		line = xasprintf("If-Range: %s", t->if_range);
		n = curl_slist_append(l, line);
		free(line);
		if (n == NULL)
			goto oom;
		l = n;
	}
	return l;
oom:
	fprintf(stderr, "batchd: out of memory in curl_slist_append\n");
	abort();
}

/* Starts one attempt: a fresh easy handle in the multi. */
static void
transfer_attempt(struct bd_http_transfer *t)
{
	struct bd_http *h = t->h;
	CURL *e;
	CURLMcode mc;
	char range[64];
	int64_t from;

	if (!(t->is_get && t->sink_fd >= 0))
		t->written = 0;
	transfer_mem_reset(t);
	transfer_clear_headers(t);
	t->errbuf[0] = '\0';
	t->body_pos = 0;
	t->status = 0;
	t->body_ok = false;
	t->skip = 0;
	t->limit = -1;
	t->range_complete = t->range_mismatch = t->too_big = false;
	t->range_ignored = false;
	t->sink_err = t->read_err = 0;
	t->content_length = t->entity_length = -1;
	t->last_done = t->last_total = -2;
	t->attempts++;

	/* Bytes kept without a validator could join two versions. */
	if (t->is_get && t->sink_fd >= 0 && t->written > 0 &&
	    t->if_range == NULL && transfer_restart(t) != 0) {
		transfer_finish(t, t->sink_err, xasprintf("truncating the "
		    "file to start again: %s", strerror(-t->sink_err)));
		return;
	}
	if ((e = curl_easy_init()) == NULL) {
		transfer_finish(t, -ENOMEM, xstrdup("curl_easy_init failed"));
		return;
	}
	t->easy = e;
	h->n_active++;
	t->slist = transfer_slist(t);
	curl_easy_setopt(e, CURLOPT_URL, t->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, t);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_USERAGENT, HTTP_USER_AGENT);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(e, CURLOPT_PROTOCOLS,
	    CURLPROTO_HTTP | CURLPROTO_HTTPS);
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS,
	    CURLPROTO_HTTP | CURLPROTO_HTTPS);
#endif
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (h->ca_file != NULL)
		curl_easy_setopt(e, CURLOPT_CAINFO, h->ca_file);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->slist);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, transfer_on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, transfer_on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(e, CURLOPT_BUFFERSIZE, HTTP_BUFFER_SIZE);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, t->connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, t->stall_timeout_s);
	if (t->total_timeout_ms > 0)
		curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, t->total_timeout_ms);
	if (t->progress_cb != NULL) {
		curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION,
		    transfer_on_progress);
		curl_easy_setopt(e, CURLOPT_XFERINFODATA, t);
	}

	if (t->sends_body) {
		curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE,
		    (curl_off_t)t->body_length);
		curl_easy_setopt(e, CURLOPT_READFUNCTION, transfer_on_read);
		curl_easy_setopt(e, CURLOPT_READDATA, t);
		curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, transfer_on_seek);
		curl_easy_setopt(e, CURLOPT_SEEKDATA, t);
		curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE,
		    HTTP_BUFFER_SIZE);
		if (strcmp(t->method, "PUT") != 0)
			curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, t->method);
	} else if (t->is_head) {
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	} else if (t->is_get) {
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	} else
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, t->method);
	if (t->is_get || t->is_head) {
		curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
		curl_easy_setopt(e, CURLOPT_MAXREDIRS, 10L);
	}

	from = transfer_base(t) + t->written;
	if (t->range_start >= 0 || t->written > 0) {
		if (t->range_end >= 0)
			snprintf(range, sizeof(range), "%" PRId64 "-%" PRId64,
			    from, t->range_end);
		else
			snprintf(range, sizeof(range), "%" PRId64 "-", from);
		curl_easy_setopt(e, CURLOPT_RANGE, range);
	}

	if ((mc = curl_multi_add_handle(h->multi, e)) != CURLM_OK) {
		transfer_detach(t);
		transfer_finish(t, BD_ENET, xasprintf(
		    "curl_multi_add_handle: %s", curl_multi_strerror(mc)));
	}
}

/* True for HTTP statuses worth another attempt. */
static bool
http_status_transient(long status)
{
	switch (status) {
	case 408:
	case 429:
	case 500:
	case 502:
	case 503:
	case 504:
		return true;
	default:
		return false;
	}
}

/* True for libcurl failures that another attempt cannot mend. */
static bool
http_curl_permanent(CURLcode rc)
{
	switch (rc) {
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_NOT_BUILT_IN:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_TOO_MANY_REDIRECTS:
	case CURLE_FILESIZE_EXCEEDED:
	case CURLE_BAD_CONTENT_ENCODING:
	case CURLE_LOGIN_DENIED:
	case CURLE_REMOTE_ACCESS_DENIED:
	case CURLE_BAD_FUNCTION_ARGUMENT:
	case CURLE_FUNCTION_NOT_FOUND:
	case CURLE_UNKNOWN_OPTION:
		return true;
	default:
		return false;
	}
}

/*
 * The backoff before the next attempt, or -1 when the policy allows no
 * more.  Exponential from base_delay_ms, capped, with equal jitter, and at
 * least the response's Retry-After in seconds.
 */
static long
transfer_backoff(struct bd_http_transfer *t)
{
	const struct bd_retry_policy *p = &t->retry;
	const char *ra = transfer_header(t, "Retry-After");
	long delay = p->base_delay_ms, half;
	int64_t ra_s, elapsed;
	int i;

	if (t->attempts >= p->max_attempts)
		return -1;
	for (i = 1; i < t->attempts && delay < p->max_delay_ms; i++)
		delay *= 2;
	if (delay > p->max_delay_ms)
		delay = p->max_delay_ms;
	half = delay / 2;
	delay = half + (long)(http_random(t->h) % (uint64_t)(delay - half + 1));
	if (ra != NULL && (ra_s = http_parse_int(ra, strlen(ra))) >= 0) {
		if (ra_s > HTTP_RETRY_AFTER_MAX_MS / 1000)
			ra_s = HTTP_RETRY_AFTER_MAX_MS / 1000;
		if (ra_s * 1000 > delay)
			delay = (long)(ra_s * 1000);
	}
	elapsed = (int64_t)(uv_now(t->h->loop) - t->started);
	if (p->max_total_ms > 0 && elapsed + delay > p->max_total_ms)
		return -1;
	return delay;
}

/* The backoff is over: back in the queue, ahead of new transfers. */
static void
transfer_on_backoff(uv_timer_t *timer)
{
	struct bd_http_transfer *t =
	    container_of(timer, struct bd_http_transfer, timer);

	t->state = T_QUEUED;
	TAILQ_INSERT_HEAD(&t->h->queue, t, queue_entry);
	t->h->n_queued++;
	http_pump(t->h);
}

/* The text for a final HTTP status. */
static char *
transfer_http_detail(struct bd_http_transfer *t)
{
	const char *code = transfer_header(t, "x-ms-error-code");

	if (code != NULL)
		return xasprintf("HTTP %ld (%.200s)", t->status, code);
	return xasprintf("HTTP %ld", t->status);
}

/* An attempt ended with rc: succeed, retry or fail the transfer. */
static void
transfer_attempt_done(struct bd_http_transfer *t, CURLcode rc)
{
	int err;
	bool transient;
	char *detail, *more;
	long delay;

	transfer_detach(t);
	if (t->sink_fd >= 0 && transfer_sink_flush(t) != 0) {
		/* The bytes held back could not be written: the sink's
		   error decides, even after a whole response. */
		rc = CURLE_WRITE_ERROR;
		t->range_complete = false;
	}
	if (t->cancel_requested) {
		transfer_finish(t, -ECANCELED, xstrdup("cancelled"));
		return;
	}
	if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && t->range_complete)) {
		if (t->status >= 200 && t->status < 300) {
			transfer_finish(t, 0, NULL);
			return;
		}
		err = BD_EHTTP;
		transient = http_status_transient(t->status);
		detail = transfer_http_detail(t);
	} else if (t->sink_err != 0) {
		err = t->sink_err;
		transient = false;
		detail = xasprintf("writing the response body: %s",
		    strerror(-err));
	} else if (t->too_big) {
		err = BD_ETOOBIG;
		transient = false;
		detail = xasprintf("response body larger than %zu bytes",
		    t->max_memory);
	} else if (t->read_err != 0) {
		err = t->read_err;
		transient = false;
		detail = xasprintf("reading the request body: %s",
		    strerror(-err));
	} else if (t->range_ignored) {
		err = BD_EUNSUPPORTED;
		transient = false;
		detail = xasprintf("HTTP %ld to a request for a range: the "
		    "server does not serve ranges", t->status);
	} else if (t->range_mismatch) {
		/* Start the range again rather than trust the server. */
		err = BD_ENET;
		transient = true;
		detail = xasprintf("unexpected Content-Range \"%.100s\"",
		    transfer_header(t, "Content-Range") ?
		    transfer_header(t, "Content-Range") : "");
		t->written = 0;
	} else {
		err = rc == CURLE_OPERATION_TIMEDOUT ? BD_ETIMEDOUT :
		    rc == CURLE_OUT_OF_MEMORY ? -ENOMEM : BD_ENET;
		transient = !http_curl_permanent(rc) &&
		    rc != CURLE_OUT_OF_MEMORY;
		detail = xstrdup(t->errbuf[0] != '\0' ? t->errbuf :
		    curl_easy_strerror(rc));
		/* The connection broke after the last byte of the range. */
		if (t->body_ok && t->expect_len > 0 &&
		    t->written >= t->expect_len) {
			free(detail);
			transfer_finish(t, 0, NULL);
			return;
		}
	}
	if (transient && !t->h->closing && (delay = transfer_backoff(t)) >= 0) {
		free(detail);
		t->state = T_BACKOFF;
		uv_timer_start(&t->timer, transfer_on_backoff, (uint64_t)delay,
		    0);
		return;
	}
	if (t->attempts > 1) {
		more = xasprintf("%s (after %d attempts)", detail, t->attempts);
		free(detail);
		detail = more;
	}
	transfer_finish(t, err, detail);
}

/* Collects the attempts libcurl has finished. */
static void
http_check_done(struct bd_http *h)
{
	CURLMsg *msg;
	CURL *e;
	CURLcode rc;
	char *priv;
	int left;

	while (h->multi != NULL &&
	    (msg = curl_multi_info_read(h->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		e = msg->easy_handle;
		rc = msg->data.result;
		priv = NULL;
		curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
		if (priv != NULL)
			transfer_attempt_done(
			    (struct bd_http_transfer *)(void *)priv, rc);
	}
}

/*
 * Runs the work that must happen outside libcurl's callbacks: finished
 * attempts, deferred cancels and close, and queued transfers into free
 * slots.
 */
static void
http_pump(struct bd_http *h)
{
	struct bd_http_transfer *t;

	if (h->in_curl || h->multi == NULL)
		return;
	http_check_done(h);
	if (h->cancel_deferred) {
		h->cancel_deferred = false;
		TAILQ_FOREACH(t, &h->all, all_entry)
			if (t->cancel_requested && t->state == T_ACTIVE)
				transfer_cancel_now(t);
	}
	if (h->close_deferred) {
		h->close_deferred = false;
		http_shutdown(h);
		return;
	}
	while (!h->closing && h->n_active < h->max_active &&
	    (t = TAILQ_FIRST(&h->queue)) != NULL) {
		TAILQ_REMOVE(&h->queue, t, queue_entry);
		h->n_queued--;
		t->state = T_ACTIVE;
		transfer_attempt(t);
	}
}

/* True for a method token of upper-case letters. */
static bool
http_valid_method(const char *m)
{
	size_t i;

	if (m == NULL || m[0] == '\0' || strlen(m) > HTTP_MAX_METHOD)
		return false;
	for (i = 0; m[i] != '\0'; i++)
		if (m[i] < 'A' || m[i] > 'Z')
			return false;
	return true;
}

/* True for a URL batchd may request: http(s), no spaces or controls. */
static bool
http_valid_url(const char *url)
{
	const unsigned char *p;

	if (url == NULL || !bd_url_is_http(url) || strlen(url) > HTTP_MAX_URL)
		return false;
	for (p = (const unsigned char *)url; *p != '\0'; p++)
		if (*p <= 0x20 || *p == 0x7f)
			return false;
	return true;
}

/* Checks a request before anything is allocated.  0 or -EINVAL. */
static int
http_check_request(const struct bd_http_request *req)
{
	const struct bd_retry_policy *p = &req->retry;
	bool body = req->body_fd >= 0 || req->body_mem != NULL;
	size_t i;

	if (!http_valid_method(req->method) || !http_valid_url(req->url))
		return -EINVAL;
	if (req->n_headers > 0 && req->headers == NULL)
		return -EINVAL;
	for (i = 0; i < req->n_headers; i++)
		if (req->headers[i] == NULL ||
		    strpbrk(req->headers[i], "\r\n") != NULL ||
		    strchr(req->headers[i], ':') == NULL)
			return -EINVAL;
	if (body && (strcmp(req->method, "GET") == 0 ||
	    strcmp(req->method, "HEAD") == 0))
		return -EINVAL;
	if (req->body_fd < -1 || (req->body_fd >= 0 &&
	    (req->body_offset < 0 || req->body_length < 0)))
		return -EINVAL;
	if (req->sink_fd < -1 || (req->sink_fd >= 0 && req->sink_offset < 0))
		return -EINVAL;
	if (req->range_start < -1 || req->range_end < -1 ||
	    (req->range_start == -1 && req->range_end != -1) ||
	    (req->range_end >= 0 && req->range_end < req->range_start))
		return -EINVAL;
	if (req->connect_timeout_ms < 0 || req->stall_timeout_s < 0 ||
	    req->total_timeout_ms < 0 || p->max_attempts < 0 ||
	    p->base_delay_ms < 0 || p->max_delay_ms < 0 || p->max_total_ms < 0)
		return -EINVAL;
	return 0;
}

void
bd_http_request_init(struct bd_http_request *req)
{
	memset(req, 0, sizeof(*req));
	req->method = "GET";
	req->body_fd = -1;
	req->sink_fd = -1;
	req->range_start = -1;
	req->range_end = -1;
}

int
bd_http_start(struct bd_http *h, const struct bd_http_request *req,
    bd_http_done_cb cb, void *arg, struct bd_http_transfer **out)
{
	struct bd_http_transfer *t;
	int error;
	size_t i;

	if (out != NULL)
		*out = NULL;
	if (h->closing)
		return -ECANCELED;
	if (cb == NULL)
		return -EINVAL;
	if ((error = http_check_request(req)) != 0)
		return error;

	t = xcalloc(1, sizeof(*t));
	t->h = h;
	t->cb = cb;
	t->arg = arg;
	t->method = xstrdup(req->method);
	t->url = xstrdup(req->url);
	t->headers = xreallocarray(NULL, req->n_headers, sizeof(char *));
	for (i = 0; i < req->n_headers; i++)
		t->headers[i] = xstrdup(req->headers[i]);
	t->n_headers = req->n_headers;
	t->is_get = strcmp(t->method, "GET") == 0;
	t->is_head = strcmp(t->method, "HEAD") == 0;
	t->body_fd = req->body_fd;
	if (req->body_fd >= 0) {
		t->body_offset = req->body_offset;
		t->body_length = req->body_length;
	} else if (req->body_mem != NULL) {
		t->body_mem = xmalloc(req->body_mem_len);
		memcpy(t->body_mem, req->body_mem, req->body_mem_len);
		t->body_length = (int64_t)req->body_mem_len;
	}
	t->sends_body = req->body_fd >= 0 || req->body_mem != NULL ||
	    strcmp(t->method, "PUT") == 0 || strcmp(t->method, "POST") == 0 ||
	    strcmp(t->method, "PATCH") == 0 || strcmp(t->method, "MERGE") == 0;
	t->sink_fd = req->sink_fd;
	t->sink_offset = req->sink_fd >= 0 ? req->sink_offset : 0;
	t->max_memory = req->max_memory_body ? req->max_memory_body :
	    HTTP_DEFAULT_MAX_MEMORY;
	t->range_start = req->range_start;
	t->range_end = req->range_end;
	t->require_partial = req->require_partial;
	t->connect_timeout_ms = req->connect_timeout_ms ?
	    req->connect_timeout_ms : HTTP_DEFAULT_CONNECT_MS;
	t->stall_timeout_s = req->stall_timeout_s ? req->stall_timeout_s :
	    HTTP_DEFAULT_STALL_S;
	t->total_timeout_ms = req->total_timeout_ms;
	t->retry = req->retry;
	if (t->retry.max_attempts == 0)
		t->retry.max_attempts = HTTP_DEFAULT_ATTEMPTS;
	if (t->retry.base_delay_ms == 0)
		t->retry.base_delay_ms = HTTP_DEFAULT_BASE_MS;
	if (t->retry.max_delay_ms == 0)
		t->retry.max_delay_ms = HTTP_DEFAULT_MAX_DELAY_MS;
	if (t->retry.base_delay_ms > HTTP_MAX_DELAY_MS)
		t->retry.base_delay_ms = HTTP_MAX_DELAY_MS;
	if (t->retry.max_delay_ms > HTTP_MAX_DELAY_MS)
		t->retry.max_delay_ms = HTTP_MAX_DELAY_MS;
	if (t->retry.max_delay_ms < t->retry.base_delay_ms)
		t->retry.max_delay_ms = t->retry.base_delay_ms;
	t->progress_cb = req->progress_cb;
	t->progress_arg = req->progress_arg;
	t->expect_len = -1;
	t->content_length = t->entity_length = -1;
	t->started = uv_now(h->loop);

	uv_timer_init(h->loop, &t->timer);
	h->n_handles++;
	TAILQ_INSERT_TAIL(&h->all, t, all_entry);
	t->state = T_QUEUED;
	TAILQ_INSERT_TAIL(&h->queue, t, queue_entry);
	h->n_queued++;
	if (out != NULL)
		*out = t;
	http_pump(h);
	return 0;
}
