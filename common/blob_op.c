/* SPDX-License-Identifier: MIT */
/*
 * The engine of common/blob's operations.
 *
 * An operation (struct bd_blob_op, see blob_op.h) is made of parts, each
 * one HTTP request: a range of a download, a block of an upload, or the
 * single request of a step (HEAD, a listing page, Put Block List...).
 * bd_blob_op_pump() moves parts onto the wire while fewer than the allowed
 * number are there, asks blob.c's phase_done hook for the next step when
 * all are done, and ends the operation after a failure or a cancel once
 * nothing is in flight.  The op embeds one uv_timer_t, for waking parts
 * that wait to retry and for delivering the result: the callback always
 * runs from that timer, never from inside a _start() or bd_blob_cancel(),
 * and the op is freed in the timer's close callback.
 *
 * Authorization is a SAS query appended to every URL, or Shared Key
 * headers made fresh for every request.  A Shared Key signature covers
 * the Range header, so http's own resume (which changes the Range) cannot
 * be used there: such parts (self_resume) make one attempt each, and a
 * broken one is resumed here from the bytes already written, with a newly
 * signed request after a backoff (a streamed GET, which has no If-Match,
 * starts again instead).  With a SAS, http retries and resumes by itself,
 * as far as the response's validator allows (see http.h).
 *
 * Error texts name the operation and the blob URL without its query, the
 * HTTP status, the storage error code and message, and for a refused SAS
 * what visibly is wrong with it; all go through bd_url_redact().
 */
#include "blob_op.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crypto_api.h"
#include "error.h"
#include "url.h"
#include "xml_list.h"
#include "xmalloc.h"

static void blob_on_http(struct bd_http_transfer *, int,
    const struct bd_http_response *, void *);

/* Frees the op once its timer (and its hash_async, if opened) is closed. */
void
bd_blob_op_handle_closed(uv_handle_t *h)
{
	struct bd_blob_op *op = h->data;
	size_t i;

	if (--op->handles > 0)
		return;
	if (op->md_ctx != NULL)
		EVP_MD_CTX_free(op->md_ctx);
	free(op->url);
	free(op->query);
	free(op->mem);
	for (i = 0; i < op->n_headers; i++)
		free(op->headers[i]);
	free(op->headers);
	free(op->parts);
	free(op->prefix);
	free(op->delimiter);
	bd_xml_list_free(op->list);
	free(op->p_md5);
	free(op->p_etag);
	free(op->if_match);
	free(op->p_modified);
	free(op->p_type);
	for (i = 0; i < op->p_n_headers; i++) {
		free(op->p_headers[i].name);
		free(op->p_headers[i].value);
	}
	free(op->p_headers);
	free(op->put_md5);
	free(op->code);
	free(op->detail);
	free(op);
}

/* The timer: a wake-up for waiting parts, or the delivery of the result. */
static void
blob_on_timer(uv_timer_t *timer)
{
	struct bd_blob_op *op = timer->data;
	struct bd_blob_result r;

	if (!op->finishing) {
		bd_blob_op_pump(op);
		return;
	}
	memset(&r, 0, sizeof(r));
	r.status = op->status;
	r.http_status = op->http_status;
	r.code = op->code;
	r.detail = op->status != 0 ? op->detail : NULL;
	if (op->status == 0) {
		r.props = op->kind == K_PROPS || op->kind == K_GET ?
		    &op->props : NULL;
		r.bytes = op->size;
		r.md5_checked = op->md5_checked;
		r.content_md5 = op->put_md5;
		r.list = op->list;
	}
	op->cb(op, &r, op->arg);
	uv_close((uv_handle_t *)&op->timer, bd_blob_op_handle_closed);
}

/* Ends op with its status: the callback runs from the timer. */
void
bd_blob_op_finish(struct bd_blob_op *op)
{
	if (op->finishing)
		return;
	op->finishing = true;
	if (op->cancelled && op->status == 0)
		op->status = -ECANCELED;
	if (op->status == -ECANCELED && op->detail == NULL)
		op->detail = xstrdup("cancelled");
	uv_timer_stop(&op->timer);
	uv_timer_start(&op->timer, blob_on_timer, 0, 0);
}

/* Records the first failure of op (a status and a formatted detail). */
void
bd_blob_op_fail(struct bd_blob_op *op, int status, const char *fmt, ...)
{
	va_list ap;
	char *text;

	if (op->status != 0)
		return;
	va_start(ap, fmt);
	text = xvasprintf(fmt, ap);
	va_end(ap);
	op->status = status;
	op->detail = bd_url_redact(text);
	free(text);
}

/* Records the outcome of a failed request of op. */
static void
blob_fail_http(struct bd_blob_op *op, int status,
    const struct bd_http_response *resp)
{
	char *code = NULL, *msg = NULL, *why = NULL, *tail;
	const char *sp;
	long st = resp->status;
	int err = status;

	if (op->status != 0)
		return;
	if (status == BD_EHTTP) {
		(void)bd_xml_error_parse(resp->body, resp->body_len, &code,
		    &msg);
		if (resp->error_code != NULL) {
			free(code);
			code = xstrndup(resp->error_code, 128);
		}
		if (st == 404)
			err = BD_ENOTFOUND;
		else if (st == 401 || st == 403)
			err = BD_EDENIED;
		else if (st == 409 && code != NULL &&
		    strstr(code, "AlreadyExists") != NULL)
			err = -EEXIST;
		if (err == BD_EDENIED && op->c->sas_info != NULL) {
			sp = op->perms;
			if (op->kind == K_PUT && bd_sas_allows(op->c->sas_info,
			    'c'))
				sp = NULL;
			why = bd_sas_explain(op->c->sas_info, sp, time(NULL));
			if (why == NULL)
				why = xstrdup("the storage service refused the "
				    "SAS: check its signature and scope");
		}
		if (st == 412 && op->kind == K_GET)
			why = xstrdup("the blob changed while it was "
			    "downloaded");
		tail = xasprintf("HTTP %ld%s%s%s%s%s%s%s", st,
		    code != NULL ? " " : "", code != NULL ? code : "",
		    msg != NULL ? ": " : "", msg != NULL ? msg : "",
		    why != NULL ? " (" : "", why != NULL ? why : "",
		    why != NULL ? ")" : "");
	} else
		tail = xstrdup(resp->error_detail != NULL ?
		    resp->error_detail : bd_strerror(status));
	bd_blob_op_fail(op, err, "%s %s: %s", op->what, op->url, tail);
	op->http_status = st;
	if (code != NULL)
		op->code = code;
	free(tail);
	free(msg);
	free(why);
}

/* The URL of a request: op's target, query, then the SAS. */
static char *
blob_request_url(struct bd_blob_op *op, const char *query)
{
	const char *sas = op->c->sas;

	if (query != NULL && sas != NULL)
		return xasprintf("%s?%s&%s", op->url, query, sas);
	if (query != NULL || sas != NULL)
		return xasprintf("%s?%s", op->url, query != NULL ? query : sas);
	return xstrdup(op->url);
}

/*
 * The Range of GET part p: none for a read of the whole blob not yet
 * begun (streamed, or a single part), else from the first byte still
 * missing to the part's end (or the blob's end when the length is
 * unknown).  With several parts a 200 instead of a 206 must stop at the
 * headers: see ranges_refused.
 */
static void
blob_get_range(const struct bd_blob_op *op, const struct blob_part *p,
    struct bd_http_request *req)
{
	req->sink_fd = op->fd;
	req->sink_offset = p->offset + p->done;
	if ((op->streamed || op->n_parts == 1) && p->done == 0)
		return;
	req->range_start = p->offset + p->done;
	req->range_end = p->length >= 0 ? p->offset + p->length - 1 : -1;
	req->require_partial = op->n_parts > 1;
}

/* libcurl's progress of part p: the op's bytes so far, to its callback. */
static void
blob_on_progress(void *arg, int64_t done, int64_t total)
{
	struct blob_part *p = arg;
	struct bd_blob_op *op = p->op;
	int64_t sum = 0;
	size_t i;

	(void)total;
	p->now = done;
	for (i = 0; i < op->n_parts; i++)
		sum += op->parts[i].state == P_DONE &&
		    op->parts[i].length >= 0 ? op->parts[i].length :
		    op->parts[i].done + op->parts[i].now;
	if (op->progress_cb != NULL)
		op->progress_cb(op->progress_arg, sum, op->size);
}

int
bd_blob_op_request(struct bd_blob_op *op, struct blob_part *p,
    const char *method, const char *query, const char *const *extra,
    size_t n_extra)
{
	struct bd_http_request req;
	char **lines = NULL, *url, *cause = NULL;
	const char **all;
	size_t n = 0, i;
	int rc;

	bd_http_request_init(&req);
	req.method = method;
	url = blob_request_url(op, query);
	req.url = url;
	req.retry = op->c->o.retry;
	req.stall_timeout_s = op->c->o.stall_timeout_s;
	all = xcalloc(n_extra + op->n_headers + 1, sizeof(*all));
	for (i = 0; i < n_extra; i++)
		all[i] = extra[i];
	if (op->phase == PH_COMMIT || (op->kind == K_PUT &&
	    op->n_parts == 1) || op->kind == K_SIMPLE) {
		/* The caller's headers go with the request that makes the
		   blob. */
		for (i = 0; i < op->n_headers; i++)
			all[n_extra + i] = op->headers[i];
		n_extra += op->n_headers;
	}
	if (op->phase == PH_PROBE) {
		/* The first bytes, which also tell the size (blob.c). */
		req.sink_fd = op->fd;
		req.sink_offset = 0;
		req.range_start = 0;
		req.range_end = op->c->o.get_chunk_size - 1;
	} else if (op->phase == PH_PARTS && op->kind == K_GET) {
		blob_get_range(op, p, &req);
		if (p->self_resume)
			req.retry.max_attempts = 1;
	} else if (op->phase == PH_PARTS && op->kind == K_PUT) {
		req.body_fd = op->fd;
		req.body_offset = p->offset;
		req.body_length = p->length;
	} else if (op->mem != NULL) {
		req.body_mem = op->mem;
		req.body_mem_len = op->mem_len;
	}
	if (op->phase == PH_PARTS && op->progress_cb != NULL) {
		req.progress_cb = blob_on_progress;
		req.progress_arg = p;
	}
	if (op->kind == K_LIST)
		req.max_memory_body = op->c->o.list_limits.max_doc != 0 ?
		    op->c->o.list_limits.max_doc : BD_XML_DEFAULT_MAX_DOC;
	rc = bd_storage_headers(op->c->acct, BD_STORAGE_BLOB, op->shared_key,
	    method, url, req.body_fd >= 0 ? req.body_length :
	    (int64_t)req.body_mem_len, req.range_start, req.range_end,
	    all, n_extra, time(NULL), &lines, &n, &cause);
	free(all);
	if (rc != 0) {
		bd_blob_op_fail(op, rc, "%s %s: %s", op->what, op->url, cause);
		free(cause);
		free(url);
		return rc;
	}
	req.headers = (const char *const *)lines;
	req.n_headers = n;
	p->now = 0;
	rc = bd_http_start(op->c->http, &req, blob_on_http, p, &p->t);
	bd_storage_headers_free(lines, n);
	free(url);
	if (rc != 0) {
		bd_blob_op_fail(op, rc, "%s %s: %s", op->what, op->url,
		    bd_strerror(rc));
		return rc;
	}
	p->state = P_ACTIVE;
	op->active++;
	return 0;
}

/* True for a failure worth one more of our own retries. */
static bool
blob_transient(int status, long http_status)
{
	if (status == BD_ENET || status == BD_ETIMEDOUT)
		return true;
	return status == BD_EHTTP && (http_status == 408 ||
	    http_status == 429 || http_status >= 500);
}

/* Schedules part p to retry after a backoff. */
static void
blob_retry_later(struct bd_blob_op *op, struct blob_part *p)
{
	const struct bd_retry_policy *r = &op->c->o.retry;
	long base = r->base_delay_ms > 0 ? r->base_delay_ms : 500;
	long cap = r->max_delay_ms > 0 ? r->max_delay_ms : 30000;
	long delay = base;
	int i;

	for (i = 1; i < p->tries && delay < cap; i++)
		delay *= 2;
	if (delay > cap)
		delay = cap;
	delay = delay / 2 + (long)(rand() % (delay / 2 + 1));
	p->state = P_WAIT;
	p->not_before = uv_now(op->c->loop) + (uint64_t)delay;
}

/*
 * Whether the first ranged GET of a download (PH_PROBE) failed for its
 * Range rather than for the blob: 416 for an empty blob, or a server
 * that refuses a Range without a validator (400, 412...) or a GET.
 */
static bool
blob_probe_refused(int status, long http_status)
{
	return status == BD_EHTTP && (http_status == 400 ||
	    http_status == 405 || http_status == 412 || http_status == 416 ||
	    http_status == 501);
}

/* http is done with a request of part p. */
static void
blob_on_http(struct bd_http_transfer *t, int status,
    const struct bd_http_response *resp, void *arg)
{
	struct blob_part *p = arg;
	struct bd_blob_op *op = p->op;
	int max = op->c->o.retry.max_attempts > 0 ?
	    op->c->o.retry.max_attempts : 5;

	p->t = NULL;
	op->active--;
	p->state = P_DONE;
	if (status == -ECANCELED || op->cancelled) {
		op->cancelled = true;
	} else if (op->phase == PH_PROBE && blob_probe_refused(status,
	    resp->status)) {
		/* No first byte to read (an empty blob), or a server that
		   takes a Range badly: ask with a HEAD as before. */
		op->phase = PH_HEAD;
		op->one.state = P_IDLE;
	} else if (status == BD_EUNSUPPORTED && op->kind == K_GET &&
	    op->phase == PH_PARTS && op->n_parts > 1) {
		/* A 200 to a Range: end the parts, then read it whole. */
		op->ranges_refused = true;
		for (size_t i = 0; i < op->n_parts; i++)
			if (op->parts[i].state == P_IDLE ||
			    op->parts[i].state == P_WAIT)
				op->parts[i].state = P_DONE;
	} else if (status != 0 && p->self_resume && op->status == 0 &&
	    blob_transient(status, resp->status)) {
		/*
		 * Resume with a freshly signed Range (see the top), guarded by
		 * If-Match.  A streamed GET has no strong ETag to guard one:
		 * it starts again, from an empty file.
		 */
		if (!op->streamed) {
			if (resp->bytes_received > 0)
				p->tries = 0;
			p->done += resp->bytes_received;
		}
		if (op->streamed && ftruncate(op->fd, p->offset) != 0)
			bd_blob_op_fail(op, -errno, "%s %s: truncating the "
			    "file: %s", op->what, op->url, strerror(errno));
		else if (++p->tries < max)
			blob_retry_later(op, p);
		else
			blob_fail_http(op, status, resp);
	} else if (status != 0) {
		blob_fail_http(op, status, resp);
	} else {
		if (op->phase == PH_PARTS) {
			op->n_done++;
			if (p->length < 0)
				p->length = p->done + resp->bytes_received;
			p->now = 0;
			p->done = p->length;
		}
		op->part_done(op, p, resp);
	}
	bd_blob_op_pump(op);
}

/*
 * Moves op along: starts what may start, ends the phase when all is done,
 * or ends op after a failure or cancel once nothing is in flight.
 */
void
bd_blob_op_pump(struct bd_blob_op *op)
{
	uint64_t now, wake = 0;
	struct blob_part *p;
	size_t i, n;

	if (op->finishing)
		return;
	if (op->status != 0 || op->cancelled) {
		for (i = 0; i < op->n_parts; i++)
			if (op->parts[i].t != NULL)
				bd_http_cancel(op->parts[i].t);
		if (op->one.t != NULL)
			bd_http_cancel(op->one.t);
		if (op->working)
			(void)uv_cancel((uv_req_t *)&op->work);
		else if (op->active == 0)
			bd_blob_op_finish(op);
		return;
	}
	if (op->phase == PH_HASH || (op->working && op->phase != PH_PARTS))
		return;
	if (op->phase != PH_PARTS) {
		if (op->one.state == P_IDLE) {
			if (op->send(op, &op->one) != 0)
				bd_blob_op_pump(op);
		} else if (op->one.state == P_DONE)
			op->phase_done(op);
		return;
	}
	now = uv_now(op->c->loop);
	/* While an upload's blocks are hashed, only hashed ones may go. */
	n = op->working && op->kind == K_PUT ?
	    atomic_load_explicit(&op->hashed, memory_order_acquire) :
	    op->n_parts;
	for (i = 0; i < n && op->active < op->parallel; i++) {
		p = &op->parts[i];
		if (p->state == P_WAIT && p->not_before > now) {
			if (wake == 0 || p->not_before < wake)
				wake = p->not_before;
			continue;
		}
		if (p->state != P_IDLE && p->state != P_WAIT)
			continue;
		if (op->send(op, p) != 0) {
			bd_blob_op_pump(op);
			return;
		}
	}
	for (; i < op->n_parts; i++)
		if (op->parts[i].state == P_WAIT &&
		    (wake == 0 || op->parts[i].not_before < wake))
			wake = op->parts[i].not_before;
	if (wake != 0 && op->active < op->parallel) {
		uv_timer_stop(&op->timer);
		uv_timer_start(&op->timer, blob_on_timer,
		    wake > now ? wake - now : 0, 0);
	}
	if (op->active == 0 && wake == 0)
		op->phase_done(op);
}

/* A new op of kind on c for blob name (NULL: c's own URL). */
struct bd_blob_op *
bd_blob_op_new(struct bd_blob_container *c, enum blob_kind kind,
    const char *name, bd_blob_done_cb cb, void *arg)
{
	struct bd_blob_op *op = xcalloc(1, sizeof(*op));

	op->c = c;
	op->kind = kind;
	op->cb = cb;
	op->arg = arg;
	op->fd = -1;
	op->url = bd_blob_url(c, name);
	op->one.op = op;
	op->one.index = -1;
	op->parallel = 1;
	op->shared_key = c->acct != NULL && c->sas == NULL;
	op->handles = 1;
	uv_timer_init(c->loop, &op->timer);
	op->timer.data = op;
	return op;
}

int
bd_blob_op_started(struct bd_blob_op *op, int rc, struct bd_blob_op **out)
{
	if (out != NULL)
		*out = op;
	if (rc != 0 || (op->status != 0 && op->active == 0 && !op->working)) {
		rc = rc != 0 ? rc : op->status;
		if (out != NULL)
			*out = NULL;
		op->finishing = true;
		uv_close((uv_handle_t *)&op->timer, bd_blob_op_handle_closed);
	}
	return rc;
}

