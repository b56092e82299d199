/* SPDX-License-Identifier: MIT */
#ifndef BD_QUEUE_H
#define BD_QUEUE_H

/*
 * Azure Storage Queue operations over common/http: create and delete a
 * queue, put, get (receive), update and delete messages, and clear a
 * queue.  The queue client belongs to one account; requests are
 * authorized with the account's SAS when it has one, else with Shared Key
 * when it has a key, else not at all.
 *
 * Message text is kept exactly as stored: it is XML-escaped on the way
 * out and unescaped on the way in, and never base64-encoded here.  It
 * must be UTF-8 that XML 1.0 can carry (no control characters other than
 * tab, line feed and carriage return).
 *
 * Callback contract (every function that takes a callback): if the call
 * returns an error its callback never runs; otherwise the callback runs
 * exactly once, later, on the loop thread, with -ECANCELED when
 * bd_http_close() cancelled the request.  Strings passed to a callback are
 * borrowed until it returns unless said otherwise.
 *
 * Statuses: 0; -ENOENT for 404 (QueueNotFound, MessageNotFound) and, on
 * update and delete, for a 400 PopReceiptMismatch: the lease is gone;
 * BD_EDENIED for 401 and 403; BD_ETOOBIG for a message the service finds
 * too large (or a response over the module's bounds); BD_EINVALID for a
 * malformed response; BD_EHTTP for other statuses; BD_ENET, BD_ETIMEDOUT
 * as http.h gives them.  detail is text for a person naming the
 * operation, the queue, the HTTP status and the storage error code; it
 * never holds a key, a SAS signature or a pop receipt.
 *
 * http retries transient failures, so a request whose answer was lost may
 * run twice: a put may store two messages (tasks run at least once), and
 * an update or delete retried after it succeeded reports -ENOENT.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "storage_auth.h"

#define BD_QUEUE_MAX_GET	32		/* messages of one get */
#define BD_QUEUE_MAX_TEXT	(64 * 1024)	/* bytes of text, as sent */
#define BD_QUEUE_MAX_VISIBILITY	(7 * 24 * 3600)	/* seconds */

struct bd_queue_client;

/* Tuning; zero fields take the defaults in brackets. */
struct bd_queue_options {
	struct bd_retry_policy retry;	/* of each request [http's] */
	long timeout_ms;		/* one attempt [60000] */
};

/*
 * A client of the queue service of account a (borrowed: it must outlive
 * the client) over http (borrowed likewise).  o may be NULL.  Returns 0
 * and *out (free with bd_queue_client_free()), or BD_EINVALID with *cause
 * (caller frees) when a has no queue endpoint.
 */
int bd_queue_client_new(struct bd_http *http,
    const struct bd_storage_account *a, const struct bd_queue_options *o,
    struct bd_queue_client **out, char **cause);

/* Frees c; requests still running keep what they need. */
void bd_queue_client_free(struct bd_queue_client *c);

/*
 * Whether name is a valid queue name: 3 to 63 lower-case letters, digits
 * and dashes, starting and ending with a letter or digit, no "--".
 */
bool bd_queue_name_valid(const char *name);

/* A received message; every field is owned by the struct. */
struct bd_queue_message {
	char *id;
	char *pop_receipt;	/* NULL for a message that is not leased */
	char *text;		/* unescaped, as stored */
	int dequeue_count;
	int64_t inserted_ms;	/* wall clock, -1 if unknown */
	int64_t expires_ms;	/* -1 if unknown or never */
	int64_t visible_ms;	/* TimeNextVisible, -1 if unknown */
};

/* Frees m and what it owns; NULL is allowed. */
void bd_queue_message_free(struct bd_queue_message *m);

/* detail: NULL on success. */
typedef void (*bd_queue_done_cb)(void *arg, int status, const char *detail);

/* msgs (n of them, n may be 0) are the callee's to free, each with
   bd_queue_message_free() and the array with free(). */
typedef void (*bd_queue_get_cb)(void *arg, int status,
    struct bd_queue_message **msgs, size_t n, const char *detail);

/* pop_receipt: the message's new lease; visible_ms its new visibility
   time (-1 if the service did not say). */
typedef void (*bd_queue_update_cb)(void *arg, int status,
    const char *pop_receipt, int64_t visible_ms, const char *detail);

/*
 * Create Queue: a queue that exists already (204, or 409
 * QueueAlreadyExists when its metadata differ) counts as success.
 * Returns 0, or BD_EINVALID for a bad name.
 */
int bd_queue_create(struct bd_queue_client *c, const char *queue,
    bd_queue_done_cb cb, void *arg);

/* Delete Queue (-ENOENT when missing).  Returns as above. */
int bd_queue_delete(struct bd_queue_client *c, const char *queue,
    bd_queue_done_cb cb, void *arg);

/* Clear Messages: deletes every message of the queue. */
int bd_queue_clear(struct bd_queue_client *c, const char *queue,
    bd_queue_done_cb cb, void *arg);

/*
 * Put Message: text becomes visible after delay_s seconds (0 to 7 days)
 * and lives for ttl_s seconds (-1: forever; else 1 to 7 days).  Returns 0,
 * or BD_EINVALID for a bad name, bad numbers or text that XML cannot
 * carry, BD_ETOOBIG for text over BD_QUEUE_MAX_TEXT bytes once escaped.
 */
int bd_queue_put(struct bd_queue_client *c, const char *queue,
    const char *text, int64_t delay_s, int64_t ttl_s, bd_queue_done_cb cb,
    void *arg);

/*
 * Get Messages: up to max (1 to 32) visible messages, each hidden for
 * visibility_s seconds (1 to 7 days) and leased by its pop receipt.
 * Returns 0 or BD_EINVALID.
 */
int bd_queue_get(struct bd_queue_client *c, const char *queue, int max,
    int64_t visibility_s, bd_queue_get_cb cb, void *arg);

/*
 * Update Message: message id, leased by pop_receipt, is hidden for
 * visibility_s seconds from now (0 to 7 days; 0 makes it visible), and
 * when text is not NULL its text is replaced.  The callback gets the new
 * pop receipt, which alone holds the lease from then on.  Returns 0,
 * BD_EINVALID or BD_ETOOBIG as for bd_queue_put().
 */
int bd_queue_update(struct bd_queue_client *c, const char *queue,
    const char *id, const char *pop_receipt, int64_t visibility_s,
    const char *text, bd_queue_update_cb cb, void *arg);

/* Delete Message id leased by pop_receipt.  Returns 0 or BD_EINVALID. */
int bd_queue_delete_message(struct bd_queue_client *c, const char *queue,
    const char *id, const char *pop_receipt, bd_queue_done_cb cb, void *arg);

/*
 * Parses a QueueMessagesList document (the answer of Get Messages and Put
 * Message): at most BD_QUEUE_MAX_GET messages, each field bounded.
 * Returns 0 with *msgs and *n (free as for bd_queue_get_cb), or
 * BD_EINVALID / BD_ETOOBIG with *cause (caller frees).  Exposed for tests
 * and fuzzing.
 */
int bd_queue_parse_messages(const char *doc, size_t len,
    struct bd_queue_message ***msgs, size_t *n, char **cause);

/*
 * The XML escape of text for a MessageText element, or NULL when text is
 * not UTF-8 or holds a character XML 1.0 cannot carry.  Caller frees.
 */
char *bd_queue_escape(const char *text);

/*
 * Parses an HTTP date ("Sun, 06 Nov 1994 08:49:37 GMT") as milliseconds
 * since the epoch.  Returns 0 and *out, or BD_EINVALID.
 */
int bd_queue_parse_http_date(const char *s, int64_t *out);

#endif
