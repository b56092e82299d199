/* SPDX-License-Identifier: MIT */
#ifndef BD_HTTP_H
#define BD_HTTP_H

/*
 * Every HTTP request batchd makes goes through this module: one struct
 * bd_http per event loop owns a libcurl multi handle driven from libuv, so
 * transfers share connections and a node-wide concurrency limit, and never
 * block the loop thread.
 *
 * A transfer is one request with its retries.  Transient failures
 * (connection errors, timeouts, HTTP 408, 429, 500, 502, 503, 504) are
 * retried with capped, jittered exponential backoff that honours
 * Retry-After; other statuses are final at once.  A GET into a file that
 * breaks mid-body resumes from the last byte written, with If-Range on the
 * response's strong ETag (or, without any ETag, its Last-Modified when
 * that is a strong validator); a response with neither starts again from
 * the first byte of the range.
 *
 * Callback contract: if bd_http_start() fails its callback never runs;
 * otherwise it runs exactly once, on the loop thread and never from inside
 * bd_http_start() or bd_http_cancel(), with -ECANCELED after a cancel or a
 * bd_http_close().  The transfer and the response belong to the module and
 * are freed when the callback returns.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct bd_http;
struct bd_http_transfer;

struct bd_http_options {
	int max_active;		/* transfers on the wire at once; 0 = 16 */
	int max_per_host;	/* connections to one host; 0 = max_active */
	const char *ca_file;	/* extra CA bundle (PEM) or NULL; copied */
};

/*
 * Creates the HTTP client for loop.  Calls curl_global_init() the first
 * time in the process.  Returns 0 and *out, or a negative errno.  Released
 * with bd_http_close().
 */
int bd_http_new(uv_loop_t *loop, const struct bd_http_options *o,
    struct bd_http **out);

/*
 * Cancels every transfer (each callback runs with -ECANCELED), then closes
 * the libuv handles and frees h; closed_cb (may be NULL) runs once it is
 * gone, after which uv_loop_close() can succeed.  bd_http_start() fails with
 * -ECANCELED from the moment this is called.
 */
void bd_http_close(struct bd_http *h, void (*closed_cb)(void *arg), void *arg);

/* Transfers on the wire and waiting for a slot, for tests and status. */
void bd_http_counts(const struct bd_http *h, int *active, int *queued);

/* Retries of one transfer.  Zero fields take the defaults in brackets. */
struct bd_retry_policy {
	int max_attempts;	/* attempts in all, 1 = no retry [5] */
	long base_delay_ms;	/* first backoff [500] */
	long max_delay_ms;	/* cap of one backoff [30000] */
	long max_total_ms;	/* no retry starts later than this after the
				   transfer started [no limit] */
};

/*
 * One request.  Always start from bd_http_request_init(), which sets the
 * "none" values (-1) below.  Everything is copied by bd_http_start() except
 * the file descriptors, which must stay open until the callback runs.
 */
struct bd_http_request {
	const char *method;		/* "GET", "PUT", "HEAD", "DELETE"... */
	const char *url;		/* http:// or https:// */
	const char *const *headers;	/* "Name: value" lines */
	size_t n_headers;

	/* The body to send: a range of a file, or memory.  PUT, POST, PATCH
	   and MERGE without a body send Content-Length: 0. */
	int body_fd;			/* -1 = none; read with pread */
	int64_t body_offset;
	int64_t body_length;
	const void *body_mem;		/* when body_fd is -1; NULL = none */
	size_t body_mem_len;

	/*
	 * Where a 2xx response body goes: pwrite to sink_fd at sink_offset
	 * (so parallel ranges can share one descriptor), or memory when
	 * sink_fd is -1, up to max_memory_body bytes (BD_ETOOBIG past it;
	 * 0 = 8 MiB).  A retried download rewrites its bytes in place; the
	 * module truncates the file only when a GET to the end of the
	 * resource (range_end -1) starts again, at sink_offset.
	 */
	int sink_fd;
	int64_t sink_offset;
	size_t max_memory_body;

	/* Bytes range_start..range_end (inclusive) of the resource; -1 = no
	   Range header, range_end -1 = to the end. */
	int64_t range_start;
	int64_t range_end;

	/*
	 * With a range: a 2xx other than 206 (the server ignored the Range,
	 * so every part would bring the whole resource) ends the transfer at
	 * its headers, before any body, with BD_EUNSUPPORTED.
	 */
	bool require_partial;

	/*
	 * Limits of one attempt: connect [30 s], a stall below 1 byte/s for
	 * stall_timeout_s [60 s], and the whole attempt [no limit].  0 takes
	 * the default.
	 */
	long connect_timeout_ms;
	long stall_timeout_s;
	long total_timeout_ms;

	struct bd_retry_policy retry;

	/* Optional: bytes of the body done so far (received for a download,
	   sent for an upload) and the total (-1 if unknown).  Runs inside
	   libcurl: a bd_http_cancel(), bd_http_start() or bd_http_close()
	   made here takes effect as soon as libcurl returns. */
	void (*progress_cb)(void *arg, int64_t done, int64_t total);
	void *progress_arg;
};

/* Sets every field of req to its "none" or default value. */
void bd_http_request_init(struct bd_http_request *req);

struct bd_http_header {
	char *name;
	char *value;
};

/*
 * The outcome of a transfer, owned by the module and valid until the
 * callback returns.  Headers are those of the last response; the named
 * ones are NULL when absent.
 */
struct bd_http_response {
	long status;			/* last HTTP status, 0 if none */
	int64_t content_length;		/* of the last response, or -1 */
	int64_t entity_length;		/* size of the whole resource: the total
					   of Content-Range or, on a 200, the
					   Content-Length; -1 if unknown */
	int64_t bytes_received;		/* bytes of the range in the sink */
	int attempts;
	const char *etag;
	const char *content_md5;
	const char *blob_content_md5;	/* x-ms-blob-content-md5 */
	const char *error_code;		/* x-ms-error-code */
	const char *retry_after;
	const char *content_range;
	const char *last_modified;
	const struct bd_http_header *headers;
	size_t n_headers;
	/* The memory sink's body (NUL-terminated, body_len without the NUL),
	   or for a non-2xx status its first 64 KiB, whatever the sink. */
	const char *body;
	size_t body_len;
	const char *error_detail;	/* failure text, redacted, or NULL */
};

/* The value of header name (any case) in resp, or NULL. */
const char *bd_http_response_header(const struct bd_http_response *resp,
    const char *name);

/*
 * status is 0 for a 2xx, BD_EHTTP for any other final status (resp->status
 * set, error_detail like "HTTP 404 (BlobNotFound)"), BD_ENET for failures
 * below HTTP, BD_ETIMEDOUT for timeouts, BD_ETOOBIG past max_memory_body,
 * a negative errno when reading the body or writing the sink fails
 * (-ENOSPC for a full disk), -ECANCELED after a cancel.  resp is never NULL.
 */
typedef void (*bd_http_done_cb)(struct bd_http_transfer *t, int status,
    const struct bd_http_response *resp, void *arg);

/*
 * Starts a transfer.  Returns 0 and *out (may be NULL if not wanted; the
 * handle is valid until the callback returns), -EINVAL for a bad request
 * (unknown scheme, CR or LF in a header, bad range), or -ECANCELED once
 * bd_http_close() was called.
 */
int bd_http_start(struct bd_http *h, const struct bd_http_request *req,
    bd_http_done_cb cb, void *arg, struct bd_http_transfer **out);

/*
 * Stops a transfer; its callback runs later with -ECANCELED.  A no-op once
 * the callback is due or running.
 */
void bd_http_cancel(struct bd_http_transfer *t);

#endif
