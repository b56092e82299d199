/* SPDX-License-Identifier: MIT */
#ifndef BD_BLOB_OP_H
#define BD_BLOB_OP_H

/*
 * The engine under common/blob, for blob.c only: an operation's state,
 * its parts (the HTTP requests it is made of), and the machinery that
 * signs and starts requests, resumes broken ranges, records the first
 * failure, waits for what is in flight and delivers the result.  What an
 * operation does at each step is given by blob.c through three hooks in
 * struct bd_blob_op: send, part_done and phase_done.
 */

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "blob.h"
#include "http.h"
#include "storage_auth.h"

enum blob_kind { K_PROPS, K_GET, K_LIST, K_PUT, K_SIMPLE };
enum blob_phase { PH_ONE, PH_HEAD, PH_PROBE, PH_HASH, PH_PARTS, PH_COMMIT };
enum part_state { P_IDLE, P_ACTIVE, P_WAIT, P_DONE };

struct bd_blob_container {
	uv_loop_t *loop;
	struct bd_http *http;
	char *base;			/* container or blob URL, no query */
	char *sas;			/* query without '?', or NULL */
	struct bd_sas *sas_info;	/* sas parsed, for messages */
	const struct bd_storage_account *acct; /* signs when non-NULL */
	struct bd_blob_options o;
};

struct blob_part {
	struct bd_blob_op *op;
	int index;
	int64_t offset;
	int64_t length;			/* -1: to the end, length unknown */
	int64_t done;			/* bytes kept from earlier attempts */
	int64_t now;			/* bytes of the current attempt */
	int tries;			/* our own retries without progress */
	bool self_resume;		/* broken GETs resume here, not in http */
	uint64_t not_before;		/* loop time (ms) of the next try */
	enum part_state state;
	struct bd_http_transfer *t;
	unsigned char md5[16];		/* of a block to upload */
};

struct bd_blob_op {
	struct bd_blob_container *c;
	enum blob_kind kind;
	enum blob_phase phase;
	bd_blob_done_cb cb;
	void *arg;
	const char *what;		/* "download of"... for messages */
	const char *perms;		/* SAS permissions it needs */
	char *url;			/* the target, without SAS */
	int fd;
	int64_t size;
	void (*progress_cb)(void *, int64_t, int64_t);
	void *progress_arg;

	/* A simple request (PH_ONE): method, query and body. */
	const char *method;
	char *query;
	void *mem;
	size_t mem_len;
	char **headers;			/* the caller's, translated */
	size_t n_headers;

	struct blob_part one;		/* HEAD, pages, commit, simple */
	struct blob_part *parts;
	size_t n_parts;
	size_t n_done;
	int active;
	int parallel;
	bool shared_key;

	/*
	 * How a download reads (blob.c decides after the HEAD or from a
	 * listing): in ranges, each with If-Match on the strong ETag
	 * if_match; or streamed, one GET without Range (and no If-Match)
	 * because the size is unknown, the server does not serve ranges or
	 * only a weak ETag could guard them.  ranges_refused: a ranged GET
	 * got a 200, so the parts are dropped for one streamed GET.
	 */
	bool streamed;
	bool ranges_refused;
	char *if_match;

	/* What the operation does at each step (blob.c). */
	int (*send)(struct bd_blob_op *, struct blob_part *);
	void (*part_done)(struct bd_blob_op *, struct blob_part *,
	    const struct bd_http_response *);
	void (*phase_done)(struct bd_blob_op *);

	uv_work_t work;
	bool working;
	int work_err;
	unsigned char md5[16];
	/*
	 * An upload in blocks hashes while it sends: the worker publishes
	 * how many blocks have their MD5 (release; the loop reads it with
	 * acquire before it starts those blocks) and wakes the loop through
	 * hash_async, open while the worker runs.
	 */
	_Atomic size_t hashed;
	uv_async_t hash_async;
	bool async_open;
	/*
	 * A download with a Content-MD5 hashes the file while it arrives:
	 * md_ctx has taken bytes [0, md_off) (parts up to md_part are done),
	 * and a worker adds [md_off, md_to) at a time.
	 */
	void *md_ctx;			/* EVP_MD_CTX *, or NULL */
	int64_t md_off;
	int64_t md_to;
	size_t md_part;
	int handles;			/* open libuv handles; freed at 0 */

	char *prefix;
	char *delimiter;
	struct bd_xml_list *list;

	/* Properties and result. */
	struct bd_blob_props props;
	char *p_md5, *p_etag, *p_modified, *p_type;
	struct bd_http_header *p_headers;
	size_t p_n_headers;
	char *put_md5;
	int status;
	long http_status;
	char *code;
	char *detail;
	bool md5_checked;
	bool cancelled;
	bool finishing;
	uv_timer_t timer;
};

/*
 * A new operation of kind on c for blob name (NULL: c's own URL), with
 * one part (op->one) and no hooks; the caller sets them.
 */
struct bd_blob_op *bd_blob_op_new(struct bd_blob_container *c,
    enum blob_kind kind, const char *name, bd_blob_done_cb cb, void *arg);

/*
 * Ends a _start(): rc is the result of the first step (0 when it is
 * under way).  On failure the op is freed, the callback never runs and the
 * error is returned; otherwise *out (may be NULL) is the op and 0.
 */
int bd_blob_op_started(struct bd_blob_op *op, int rc, struct bd_blob_op **out);

/*
 * Starts the HTTP request of part p: method, query (NULL for none) and
 * the extra header lines, signed or with the SAS as the container says;
 * ranges, bodies and sinks follow from the op's kind and phase.  Returns 0,
 * or records the failure in op and returns it.
 */
int bd_blob_op_request(struct bd_blob_op *op, struct blob_part *p,
    const char *method, const char *query, const char *const *extra,
    size_t n_extra);

/*
 * Moves op along: starts parts that may start, calls phase_done when the
 * phase is complete, or after a failure or cancel stops what is in flight
 * and ends op once nothing is.
 */
void bd_blob_op_pump(struct bd_blob_op *op);

/* Close callback of op's handles: frees op once the last is closed. */
void bd_blob_op_handle_closed(uv_handle_t *h);

/* Ends op with its status; the callback runs from op's timer. */
void bd_blob_op_finish(struct bd_blob_op *op);

/* Records the first failure of op: a status and a detail (redacted). */
void bd_blob_op_fail(struct bd_blob_op *op, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
