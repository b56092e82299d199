/* SPDX-License-Identifier: MIT */
#ifndef BD_BLOB_H
#define BD_BLOB_H

/*
 * Azure Blob Storage operations over common/http: properties, downloads to
 * a file descriptor (parallel ranged GETs for big blobs, MD5 checked),
 * listings with paging, uploads from a file (one PUT, or Put Block + Put
 * Block List for big files) or from memory, and container create/delete.
 *
 * A struct bd_blob_container says where a container is and how requests
 * are authorized: either a SAS query appended to every URL, or Shared Key
 * headers from an account key, never both (or neither, for public data).
 *
 * Callback contract (every _start function): if _start() fails its
 * callback never runs; otherwise it runs exactly once, on the loop thread,
 * never from inside _start() or bd_blob_cancel(), with status -ECANCELED
 * after a cancel.  The op handle is valid until the callback returns.
 *
 * Errors in the result: 0; BD_ENOTFOUND (404; code "BlobNotFound",
 * "ContainerNotFound"...); BD_EDENIED (401, 403; code
 * "AuthenticationFailed", "AuthorizationPermissionMismatch"...);
 * BD_ECHECKSUM (downloaded bytes do not match the blob's Content-MD5);
 * -EEXIST (409 ContainerAlreadyExists / BlobAlreadyExists); BD_EHTTP for
 * other statuses; BD_ENET, BD_ETIMEDOUT, BD_ETOOBIG, BD_EINVALID (a
 * malformed listing), negative errnos (-ENOSPC...) as http.h gives them.
 * detail is text for a person with the storage error code and message,
 * redacted: no SAS signature or account key ever appears in it.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "http.h"
#include "storage_auth.h"
#include "xml_list.h"

struct bd_blob_container;
struct bd_blob_op;

/* Tuning; zero fields take the defaults in brackets. */
struct bd_blob_options {
	int64_t get_single_max;		/* bigger blobs download in ranges [32 MiB] */
	int64_t get_chunk_size;		/* bytes of one ranged GET [8 MiB] */
	int get_parallel;		/* ranged GETs in flight [8] */
	int64_t put_single_max;		/* bigger files upload in blocks [32 MiB] */
	int64_t put_block_size;		/* bytes of one block [8 MiB], <= 4000 MiB */
	int put_parallel;		/* Put Block requests in flight [8] */
	int list_page_size;		/* maxresults of a List Blobs page
					   [server's default, 5000] */
	struct bd_xml_limits list_limits; /* of the whole listing */
	int64_t md5_off_loop_min;	/* hash files at least this big with
					   uv_queue_work [1 MiB] */
	struct bd_retry_policy retry;	/* of each request [http's] */
	long stall_timeout_s;		/* [http's] */
	bool get_probe;			/* bd_blob_get_start() begins with a
					   ranged GET, not a HEAD [false] */
};

/*
 * A container given by its URL: "https://acct.blob.core.windows.net/cont"
 * optionally followed by "?<SAS>".  The URL may also be a blob URL, which
 * then only serves the single-blob operations with name NULL.  http is
 * borrowed and must outlive the container; loop is the one http runs on.
 * o may be NULL.  Returns 0 and *out, or BD_EINVALID with *cause.
 */
int bd_blob_container_from_url(uv_loop_t *loop, struct bd_http *http,
    const char *url, const struct bd_blob_options *o,
    struct bd_blob_container **out, char **cause);

/*
 * Container name in account a (borrowed: must outlive the container):
 * authorized with a->sas when there is one, else with Shared Key when a
 * has a key, else anonymously.  Returns 0 and *out, or BD_EINVALID with
 * *cause (no blob endpoint, bad container name).
 */
int bd_blob_container_from_account(uv_loop_t *loop, struct bd_http *http,
    const struct bd_storage_account *a, const char *name,
    const struct bd_blob_options *o, struct bd_blob_container **out,
    char **cause);

/*
 * The URL of blob name (or of the container with name NULL), without any
 * SAS: fit for messages.  Caller frees.
 */
char *bd_blob_url(const struct bd_blob_container *c, const char *name);

/* Frees c.  No operation of c may be running. */
void bd_blob_container_free(struct bd_blob_container *c);

/* Properties of a blob, from Get Blob Properties (owned by the module). */
struct bd_blob_props {
	int64_t size;			/* -1 when the server did not say */
	const char *content_md5;	/* base64, or NULL */
	const char *etag;
	const char *last_modified;
	const char *content_type;
	const struct bd_http_header *headers; /* every response header, e.g.
					   x-ms-meta-*, in the order sent */
	size_t n_headers;
};

/*
 * The outcome of an operation, valid until the callback returns.  Fields
 * an operation does not fill stay 0/NULL.
 */
struct bd_blob_result {
	int status;			/* see above */
	long http_status;		/* last HTTP status, 0 if none */
	const char *code;		/* storage error code, or NULL */
	const char *detail;		/* redacted text, NULL on success */
	const struct bd_blob_props *props; /* get_props, get (when known) */
	int64_t bytes;			/* downloaded or uploaded */
	bool md5_checked;		/* get: the bytes matched Content-MD5 */
	const char *content_md5;	/* put: base64 MD5 of what was sent */
	struct bd_xml_list *list;	/* list: take it with bd_blob_take_list() */
};

typedef void (*bd_blob_done_cb)(struct bd_blob_op *op,
    const struct bd_blob_result *r, void *arg);

/* Stops op; its callback runs later with -ECANCELED.  No-op once due. */
void bd_blob_cancel(struct bd_blob_op *op);

/*
 * From inside the callback of a list operation: takes the listing (free
 * with bd_xml_list_free()); otherwise the module frees it.
 */
struct bd_xml_list *bd_blob_take_list(struct bd_blob_op *op);

/*
 * Get Blob Properties (HEAD) of blob name (NULL: the container URL is the
 * blob's).  r->props on success.
 */
int bd_blob_get_props_start(struct bd_blob_container *c, const char *name,
    bd_blob_done_cb cb, void *arg, struct bd_blob_op **out);

/*
 * Downloads blob name into fd, a regular file, from offset 0 (fd must stay
 * open until the callback; it is sized with ftruncate to the blob's length
 * first, then written with pwrite).  The blob's properties come first
 * (HEAD).  With a strong ETag, a Content-Length and Accept-Ranges: bytes
 * (as blob storage always sends), every range asks for that ETag
 * (If-Match), so a blob replaced meanwhile fails (HTTP 412) rather than
 * mixing two versions: blobs up to get_single_max come in one GET, bigger
 * ones in get_chunk_size ranges, get_parallel at once, each resuming by
 * itself after a broken connection.  Otherwise (a weak or no ETag, no
 * length, no ranges), and when a ranged GET is answered 200, the blob
 * comes in one streamed GET without If-Match.  When the blob has a
 * Content-MD5 the file is hashed afterwards (off the loop thread for big
 * files) and a mismatch gives BD_ECHECKSUM.  r->bytes, r->md5_checked and
 * r->props on success.  progress_cb (may be NULL) is called with arg,
 * the bytes so far and the total (-1 if unknown), from inside libcurl
 * (see http.h).
 *
 * With get_probe (and a SAS or no authorization), the first request is
 * a GET of the first get_chunk_size bytes instead of the HEAD: its 206
 * (Content-Range total, ETag, x-ms-blob-content-md5) plans the rest, so
 * a small blob costs one request, not two.  A 200 to it that holds the
 * whole blob ends there; a longer one is read again in one streamed GET;
 * a 416 (an empty blob), 400, 405, 412 or 501 gets the HEAD after all.  r->props then has the
 * size, ETag, Content-MD5, Last-Modified, Content-Type and the headers of
 * that response.
 */
int bd_blob_get_start(struct bd_blob_container *c, const char *name, int fd,
    void (*progress_cb)(void *arg, int64_t done, int64_t total),
    bd_blob_done_cb cb, void *arg, struct bd_blob_op **out);

/*
 * As bd_blob_get_start() for blob b of a listing of c (borrowed until
 * this returns), without the HEAD: the size, ETag and Content-MD5 come
 * from the listing.  A listing entry without a size or ETag gets the
 * HEAD after all.  r->props has only those fields.
 */
int bd_blob_get_listed_start(struct bd_blob_container *c,
    const struct bd_xml_blob *b, int fd,
    void (*progress_cb)(void *arg, int64_t done, int64_t total),
    bd_blob_done_cb cb, void *arg, struct bd_blob_op **out);

/*
 * Lists the blobs whose names start with prefix (NULL or "" for all),
 * following NextMarker through every page.  delimiter (NULL for a flat
 * listing) groups names into r->list->prefixes.  r->list on success.
 */
int bd_blob_list_start(struct bd_blob_container *c, const char *prefix,
    const char *delimiter, bd_blob_done_cb cb, void *arg,
    struct bd_blob_op **out);

/*
 * Uploads bytes 0..size-1 of fd (size -1: fstat's size) as block blob
 * name.  Files up to put_single_max go in one Put Blob with Content-MD5;
 * bigger ones as Put Block (each with its Content-MD5) and Put Block List
 * with x-ms-blob-content-md5 of the whole file.  headers ("Name: value":
 * x-ms-blob-content-type, x-ms-blob-cache-control, x-ms-meta-*,
 * Content-Type, Cache-Control...; copied) are sent with the request that
 * creates the blob; Content-Type, Content-Encoding, Content-Language,
 * Content-Disposition and Cache-Control given plainly become their
 * x-ms-blob-* form for block lists.  r->bytes and r->content_md5.
 * progress_cb (may be NULL) as for bd_blob_get_start(): the bytes sent.
 */
int bd_blob_put_file_start(struct bd_blob_container *c, const char *name,
    int fd, int64_t size, const char *const *headers, size_t n_headers,
    void (*progress_cb)(void *arg, int64_t done, int64_t total),
    bd_blob_done_cb cb, void *arg, struct bd_blob_op **out);

/*
 * Uploads len bytes of data (copied) as block blob name with Content-MD5;
 * headers as above.
 */
int bd_blob_put_mem_start(struct bd_blob_container *c, const char *name,
    const void *data, size_t len, const char *const *headers, size_t n_headers,
    bd_blob_done_cb cb, void *arg, struct bd_blob_op **out);

/* Deletes blob name (and its snapshots). */
int bd_blob_delete_start(struct bd_blob_container *c, const char *name,
    bd_blob_done_cb cb, void *arg, struct bd_blob_op **out);

/* Creates the container; -EEXIST with code "ContainerAlreadyExists". */
int bd_blob_container_create_start(struct bd_blob_container *c,
    bd_blob_done_cb cb, void *arg, struct bd_blob_op **out);

/* Deletes the container. */
int bd_blob_container_delete_start(struct bd_blob_container *c,
    bd_blob_done_cb cb, void *arg, struct bd_blob_op **out);

#endif
