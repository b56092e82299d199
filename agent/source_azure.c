/* SPDX-License-Identifier: MIT */
/*
 * The task source on Azure Storage Queues: source.h's operations mapped
 * onto common/queue.  The source holds a queue client and the names of
 * the task queue and its poison queue.  Each call makes a small struct
 * azure_call that carries the caller's callback through the queue
 * request(s) and is freed when the callback has run; create is the one
 * call of two requests (both queues at once), reporting the first
 * failure.  Leases are the service's own: a pop receipt per receive,
 * replaced by every update, so this file keeps no state of its own.
 */
#include "source_azure.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "queue.h"
#include "xmalloc.h"

struct source_azure {
	struct bd_source base;		/* first: the ops */
	uv_loop_t *loop;
	struct bd_queue_client *qc;
	char *queue;
	char *poison;
};

/* One call in flight. */
struct azure_call {
	struct source_azure *s;
	bd_source_receive_cb receive_cb;
	bd_source_done_cb done_cb;
	void *arg;
	struct bd_message *m;		/* update: the message leased */
	int64_t visibility_ms;
	int pending;			/* create: requests not yet back */
	int status;			/* create: the first failure */
	char *detail;
};

/* Milliseconds as whole seconds, rounded up. */
static int64_t
azure_seconds(int64_t ms)
{
	return ms <= 0 ? 0 : (ms + 999) / 1000;
}

/* A new call for callback arg. */
static struct azure_call *
azure_call_new(struct source_azure *s, void *arg)
{
	struct azure_call *call = xcalloc(1, sizeof(*call));

	call->s = s;
	call->arg = arg;
	return call;
}

/* queue: the answer of Get Messages, as bd_message structs. */
static void
azure_on_get(void *arg, int status, struct bd_queue_message **msgs, size_t n,
    const char *detail)
{
	struct azure_call *call = arg;
	struct bd_message **out = NULL;
	struct bd_queue_message *q;
	size_t i;

	if (status == 0 && n > 0) {
		out = xcalloc(n, sizeof(*out));
		for (i = 0; i < n; i++) {
			q = msgs[i];
			out[i] = xcalloc(1, sizeof(*out[i]));
			/* The strings move over; the shell is freed. */
			out[i]->id = q->id;
			out[i]->pop_receipt = q->pop_receipt;
			out[i]->text = q->text;
			out[i]->dequeue_count = q->dequeue_count;
			out[i]->inserted_ms = q->inserted_ms;
			out[i]->visible_ms = q->visible_ms;
			free(q);
		}
		free(msgs);
	}
	call->receive_cb(call->arg, status, out, status == 0 ? n : 0, detail);
	free(call);
}

/* Receives up to max messages (at most 32) hidden for visibility_ms. */
static int
azure_receive(struct bd_source *base, int max, int64_t visibility_ms,
    bd_source_receive_cb cb, void *arg)
{
	struct source_azure *s = (struct source_azure *)base;
	struct azure_call *call;
	int64_t secs = azure_seconds(visibility_ms);
	int rc;

	if (max < 1 || visibility_ms < 0)
		return BD_EINVALID;
	if (max > BD_QUEUE_MAX_GET)
		max = BD_QUEUE_MAX_GET;
	if (secs < 1)
		secs = 1;
	call = azure_call_new(s, arg);
	call->receive_cb = cb;
	if ((rc = bd_queue_get(s->qc, s->queue, max, secs, azure_on_get,
	    call)) != 0)
		free(call);
	return rc;
}

/* queue: an update ended; the message takes its new lease. */
static void
azure_on_update(void *arg, int status, const char *pop_receipt,
    int64_t visible_ms, const char *detail)
{
	struct azure_call *call = arg;
	struct bd_message *m = call->m;
	uv_timeval64_t now;

	if (status == 0) {
		free(m->pop_receipt);
		m->pop_receipt = xstrdup(pop_receipt);
		if (visible_ms < 0 && uv_gettimeofday(&now) == 0)
			visible_ms = now.tv_sec * 1000 + now.tv_usec / 1000 +
			    call->visibility_ms;
		m->visible_ms = visible_ms;
	}
	call->done_cb(call->arg, status, detail);
	free(call);
}

/* Renews (or changes) m's lease, optionally replacing its text. */
static int
azure_update(struct bd_source *base, struct bd_message *m,
    int64_t visibility_ms, const char *new_text, bd_source_done_cb cb,
    void *arg)
{
	struct source_azure *s = (struct source_azure *)base;
	struct azure_call *call;
	int rc;

	if (m == NULL || visibility_ms < 0)
		return BD_EINVALID;
	call = azure_call_new(s, arg);
	call->done_cb = cb;
	call->m = m;
	call->visibility_ms = azure_seconds(visibility_ms) * 1000;
	if ((rc = bd_queue_update(s->qc, s->queue, m->id, m->pop_receipt,
	    azure_seconds(visibility_ms), new_text, azure_on_update,
	    call)) != 0)
		free(call);
	return rc;
}

/* queue: a request of a single-request call ended. */
static void
azure_on_done(void *arg, int status, const char *detail)
{
	struct azure_call *call = arg;

	call->done_cb(call->arg, status, detail);
	free(call);
}

/* Deletes leased message m. */
static int
azure_remove(struct bd_source *base, const struct bd_message *m,
    bd_source_done_cb cb, void *arg)
{
	struct source_azure *s = (struct source_azure *)base;
	struct azure_call *call;
	int rc;

	if (m == NULL)
		return BD_EINVALID;
	call = azure_call_new(s, arg);
	call->done_cb = cb;
	if ((rc = bd_queue_delete_message(s->qc, s->queue, m->id,
	    m->pop_receipt, azure_on_done, call)) != 0)
		free(call);
	return rc;
}

/* Adds text to queue q, visible after delay_ms; it never expires. */
static int
azure_send(struct bd_source *base, enum bd_queue_kind q, const char *text,
    int64_t delay_ms, bd_source_done_cb cb, void *arg)
{
	struct source_azure *s = (struct source_azure *)base;
	struct azure_call *call;
	int rc;

	if (delay_ms < 0)
		return BD_EINVALID;
	call = azure_call_new(s, arg);
	call->done_cb = cb;
	if ((rc = bd_queue_put(s->qc, q == BD_QUEUE_POISON ? s->poison :
	    s->queue, text, azure_seconds(delay_ms), -1, azure_on_done,
	    call)) != 0)
		free(call);
	return rc;
}

/* queue: one of create's two requests ended. */
static void
azure_on_create(void *arg, int status, const char *detail)
{
	struct azure_call *call = arg;

	if (status != 0 && call->status == 0) {
		call->status = status;
		call->detail = xstrdup(detail != NULL ? detail :
		    bd_strerror(status));
	}
	if (--call->pending > 0)
		return;
	call->done_cb(call->arg, call->status, call->detail);
	free(call->detail);
	free(call);
}

/* Creates the task queue and the poison queue when missing. */
static int
azure_create(struct bd_source *base, bd_source_done_cb cb, void *arg)
{
	struct source_azure *s = (struct source_azure *)base;
	struct azure_call *call = azure_call_new(s, arg);
	int rc;

	call->done_cb = cb;
	call->pending = 1;
	if ((rc = bd_queue_create(s->qc, s->queue, azure_on_create,
	    call)) != 0) {
		free(call);
		return rc;
	}
	/* The first request is on its way: from here the callback runs. */
	call->pending++;
	if ((rc = bd_queue_create(s->qc, s->poison, azure_on_create,
	    call)) != 0) {
		call->pending--;
		call->status = rc;
		call->detail = xasprintf("queue %s: create: %s", s->poison,
		    bd_strerror(rc));
	}
	return 0;
}

/* Frees the source; no call may be in flight. */
static void
azure_free(struct bd_source *base)
{
	struct source_azure *s = (struct source_azure *)base;

	bd_queue_client_free(s->qc);
	free(s->queue);
	free(s->poison);
	free(s);
}

static const struct bd_source_ops source_azure_ops = {
	.name = "azure",
	.receive = azure_receive,
	.update = azure_update,
	.remove = azure_remove,
	.send = azure_send,
	.create = azure_create,
	.free = azure_free,
};

int
bd_source_azure_new(uv_loop_t *loop, struct bd_http *http,
    const struct bd_storage_account *account, const char *queue_name,
    struct bd_source **out, char **cause)
{
	struct source_azure *s;
	struct bd_queue_client *qc;
	char *poison;
	int rc;

	*out = NULL;
	if (cause != NULL)
		*cause = NULL;
	if (queue_name == NULL || !bd_queue_name_valid(queue_name) ||
	    strlen(queue_name) > 63 - strlen("-poison")) {
		if (cause != NULL)
			*cause = xstrdup("task queue name: 3 to 56 lower-case "
			    "letters, digits and single dashes, starting and "
			    "ending with a letter or digit");
		return BD_EINVALID;
	}
	poison = xasprintf("%s-poison", queue_name);
	if ((rc = bd_queue_client_new(http, account, NULL, &qc, cause)) != 0) {
		free(poison);
		return rc;
	}
	s = xcalloc(1, sizeof(*s));
	s->base.ops = &source_azure_ops;
	s->loop = loop;
	s->qc = qc;
	s->queue = xstrdup(queue_name);
	s->poison = poison;
	*out = &s->base;
	return 0;
}
