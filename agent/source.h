/* SPDX-License-Identifier: MIT */
#ifndef BD_SOURCE_H
#define BD_SOURCE_H

/*
 * The task source: the pool's queue of task messages, behind a small ops
 * struct so that the daemon runs the same on Azure Storage Queues
 * (source_azure.c) and on the local spool (source_local.c).  Semantics are
 * those of an Azure Storage queue (docs/protocol.md §2, §3, §7):
 *
 * - receive hides each message it returns for a visibility timeout and
 *   gives it a pop receipt; while hidden the message is leased to us;
 * - update extends (renews) or changes the visibility of a leased message
 *   and may replace its text; it gives a new pop receipt;
 * - delete removes a leased message;
 * - update and delete report -ENOENT when the lease is gone (the message
 *   became visible and another receiver took it, or it was deleted);
 * - send adds a message, visible after delay_ms.
 *
 * Callback contract (STYLE.md 12): if a call returns an error its callback
 * never runs; otherwise the callback runs exactly once, later, on the loop
 * thread.  detail is redacted human text for failures, or NULL.
 */

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct bd_source;

enum bd_queue_kind {
	BD_QUEUE_TASKS,	 /* the pool's task queue */
	BD_QUEUE_POISON, /* <task queue>-poison */
};

struct bd_message {
	char *id;
	char *pop_receipt;	/* the lease; replaced by every update */
	char *text;		/* as stored (may be base64: see protocol §2) */
	int dequeue_count;	/* receives so far, this one included */
	int64_t inserted_ms;	/* wall clock */
	int64_t visible_ms;	/* when it becomes visible again */
};

/* Frees a message and everything it owns; NULL is allowed. */
void bd_message_free(struct bd_message *m);

/* msgs (n of them) are the callee's to free with bd_message_free(). */
typedef void (*bd_source_receive_cb)(void *arg, int status,
    struct bd_message **msgs, size_t n, const char *detail);
typedef void (*bd_source_done_cb)(void *arg, int status, const char *detail);

struct bd_source_ops {
	const char *name; /* "azure", "local" */
	int (*receive)(struct bd_source *s, int max, int64_t visibility_ms,
	    bd_source_receive_cb cb, void *arg);
	/* On success m->pop_receipt and m->visible_ms are updated. */
	int (*update)(struct bd_source *s, struct bd_message *m,
	    int64_t visibility_ms, const char *new_text, bd_source_done_cb cb,
	    void *arg);
	int (*remove)(struct bd_source *s, const struct bd_message *m,
	    bd_source_done_cb cb, void *arg);
	int (*send)(struct bd_source *s, enum bd_queue_kind q,
	    const char *text, int64_t delay_ms, bd_source_done_cb cb, void *arg);
	/* Creates the queues if missing. */
	int (*create)(struct bd_source *s, bd_source_done_cb cb, void *arg);
	/* Frees; no call may be in flight. */
	void (*free)(struct bd_source *s);
};

/* Every backend's struct starts with this. */
struct bd_source {
	const struct bd_source_ops *ops;
};

#define bd_source_receive(s, ...) ((s)->ops->receive((s), __VA_ARGS__))
#define bd_source_update(s, ...) ((s)->ops->update((s), __VA_ARGS__))
#define bd_source_remove(s, ...) ((s)->ops->remove((s), __VA_ARGS__))
#define bd_source_send(s, ...) ((s)->ops->send((s), __VA_ARGS__))
#define bd_source_create(s, ...) ((s)->ops->create((s), __VA_ARGS__))
#define bd_source_free(s) ((s)->ops->free((s)))

#endif
