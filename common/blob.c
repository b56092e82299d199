/* SPDX-License-Identifier: MIT */
/*
 * Azure Blob Storage operations on top of common/http: what each one does,
 * step by step, on the engine of blob_op.c (parts, signing, resuming,
 * failures and delivery; see blob_op.h).  The steps (phases):
 *
 *	properties  PH_HEAD -> done
 *	get         PH_HEAD (or a listing's entry) -> PH_PARTS (ranged GETs
 *	            with If-Match, or one streamed GET) -> PH_HASH -> done
 *	put file    PH_HASH (MD5s) -> PH_PARTS (Put Blob, or Put Blocks)
 *	            -> PH_COMMIT (Put Block List) -> done
 *	list        PH_ONE per page, until no NextMarker
 *	others      PH_ONE
 *
 * The MD5 of a file of md5_off_loop_min bytes or more is computed in
 * uv_queue_work: the whole file's, and for an upload in blocks each
 * block's in the same pass, each block leaving as soon as its MD5 is
 * known (PH_PARTS while the worker runs); a download's as its bytes
 * become contiguous from the start, so PH_HASH has only the tail left.  Block ids are base64 of "batchd" and eight
 * digits, so all have the same length as Put Block List requires.
 */
#include "blob.h"

#include <sys/stat.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "crypto_api.h"

#include "blob_op.h"
#include "error.h"
#include "url.h"
#include "xmalloc.h"

#define MiB			(1024 * 1024)
#define BLOB_MAX_BLOCKS		50000
#define BLOB_MAX_BLOCK		(4000LL * MiB)
#define BLOB_HASH_BUF		(128 * 1024)
#define BLOB_MAX_PARALLEL	64
#define BLOB_BLOCK_ID_FMT	"batchd%08d"	/* 14 bytes: equal lengths */

/* The defaults of options that are zero. */
static void
blob_options(struct bd_blob_options *d, const struct bd_blob_options *o)
{
	if (o != NULL)
		*d = *o;
	else
		memset(d, 0, sizeof(*d));
	if (d->get_single_max <= 0)
		d->get_single_max = 32LL * MiB;
	if (d->get_chunk_size <= 0)
		d->get_chunk_size = 8LL * MiB;
	if (d->get_parallel <= 0 || d->get_parallel > BLOB_MAX_PARALLEL)
		d->get_parallel = 8;
	if (d->put_single_max <= 0)
		d->put_single_max = 32LL * MiB;
	if (d->put_block_size <= 0 || d->put_block_size > BLOB_MAX_BLOCK)
		d->put_block_size = 8LL * MiB;
	if (d->put_parallel <= 0 || d->put_parallel > BLOB_MAX_PARALLEL)
		d->put_parallel = 8;
	if (d->list_page_size < 0 || d->list_page_size > 5000)
		d->list_page_size = 0;
	if (d->md5_off_loop_min <= 0)
		d->md5_off_loop_min = 1LL * MiB;
}

/* The container for base URL and SAS query (may be NULL). */
static struct bd_blob_container *
blob_container_new(uv_loop_t *loop, struct bd_http *http, const char *base,
    const char *sas, const struct bd_storage_account *acct,
    const struct bd_blob_options *o)
{
	struct bd_blob_container *c = xcalloc(1, sizeof(*c));
	size_t n = strlen(base);
	char *url, *cause = NULL;

	c->loop = loop;
	c->http = http;
	while (n > 0 && base[n - 1] == '/')
		n--;
	c->base = xstrndup(base, n);
	if (sas != NULL && *sas != '\0') {
		c->sas = xstrdup(sas);
		url = xasprintf("%s?%s", c->base, sas);
		if (bd_sas_parse(url, &c->sas_info, &cause) != 0)
			free(cause);
		free(url);
	} else
		c->acct = acct;
	blob_options(&c->o, o);
	return c;
}

int
bd_blob_container_from_url(uv_loop_t *loop, struct bd_http *http,
    const char *url, const struct bd_blob_options *o,
    struct bd_blob_container **out, char **cause)
{
	struct bd_sas *s;
	const char *p;
	int rc;

	*out = NULL;
	if ((rc = bd_sas_parse(url, &s, cause)) != 0)
		return rc;
	p = strstr(s->base, "://") + 3;
	if (*p == '\0' || *p == '/' || strchr(p, '/') == NULL) {
		bd_sas_free(s);
		if (cause != NULL)
			*cause = xstrdup("container URL: no container in the "
			    "path");
		return BD_EINVALID;
	}
	*out = blob_container_new(loop, http, s->base, s->query, NULL, o);
	bd_sas_free(s);
	return 0;
}

int
bd_blob_container_from_account(uv_loop_t *loop, struct bd_http *http,
    const struct bd_storage_account *a, const char *name,
    const struct bd_blob_options *o, struct bd_blob_container **out,
    char **cause)
{
	size_t n = strlen(name), i;
	char *base;

	*out = NULL;
	if (a->blob_endpoint == NULL) {
		if (cause != NULL)
			*cause = xstrdup("the storage account has no blob "
			    "endpoint");
		return BD_EINVALID;
	}
	/* Azure's rule: 3-63 of a-z, 0-9 and '-', or $root / $logs... */
	for (i = 0; i < n; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
		    (name[i] >= '0' && name[i] <= '9') || name[i] == '-' ||
		    (i == 0 && name[i] == '$')))
			break;
	if (n < 3 || n > 63 || i != n) {
		if (cause != NULL)
			*cause = xstrdup("container name: 3 to 63 lower-case "
			    "letters, digits and dashes");
		return BD_EINVALID;
	}
	base = xasprintf("%s/%s", a->blob_endpoint, name);
	*out = blob_container_new(loop, http, base, a->sas,
	    a->key != NULL ? a : NULL, o);
	free(base);
	return 0;
}

char *
bd_blob_url(const struct bd_blob_container *c, const char *name)
{
	return name != NULL ? bd_url_append_path(c->base, name) :
	    xstrdup(c->base);
}

void
bd_blob_container_free(struct bd_blob_container *c)
{
	if (c == NULL)
		return;
	free(c->base);
	free(c->sas);
	bd_sas_free(c->sas_info);
	free(c);
}

/* Builds the Put Block List body of op into op->mem. */
static void
blob_block_list(struct bd_blob_op *op)
{
	size_t i, len = 0, cap = 64 + op->n_parts * 48;
	char *buf = xmalloc(cap), line[64], *id;

	len += (size_t)snprintf(buf, cap, "<?xml version=\"1.0\" encoding="
	    "\"utf-8\"?><BlockList>");
	for (i = 0; i < op->n_parts; i++) {
		snprintf(line, sizeof(line), BLOB_BLOCK_ID_FMT, (int)i);
		id = bd_storage_base64((unsigned char *)line, strlen(line));
		len += (size_t)snprintf(buf + len, cap - len,
		    "<Latest>%s</Latest>", id);
		free(id);
	}
	len += (size_t)snprintf(buf + len, cap - len, "</BlockList>");
	free(op->mem);
	op->mem = buf;
	op->mem_len = len;
}

/* --- Requests ------------------------------------------------------------ */

/*
 * The send hook: starts the request of part p for the op's phase.
 * Returns 0, or the error (recorded in op).
 */
static int
blob_send(struct bd_blob_op *op, struct blob_part *p)
{
	char line[128], md5h[64], *b64, *id, *eid, *q;
	const char *h[4];
	int rc;

	switch (op->phase) {
	case PH_HEAD:
		return bd_blob_op_request(op, p, "HEAD", NULL, NULL, 0);
	case PH_PROBE:
		return bd_blob_op_request(op, p, "GET", NULL, NULL, 0);
	case PH_PARTS:
		if (op->kind == K_GET) {
			snprintf(line, sizeof(line), "If-Match: %.100s",
			    op->if_match != NULL ? op->if_match : "*");
			h[0] = line;
			p->self_resume = op->shared_key;
			return bd_blob_op_request(op, p, "GET", NULL, h,
			    op->if_match != NULL ? 1 : 0);
		}
		b64 = bd_storage_base64(p->md5, 16);
		snprintf(md5h, sizeof(md5h), "Content-MD5: %s", b64);
		free(b64);
		h[0] = md5h;
		if (op->n_parts == 1) {
			h[1] = "x-ms-blob-type: BlockBlob";
			return bd_blob_op_request(op, p, "PUT", NULL, h, 2);
		}
		snprintf(line, sizeof(line), BLOB_BLOCK_ID_FMT, p->index);
		id = bd_storage_base64((unsigned char *)line, strlen(line));
		eid = bd_url_encode(id, false);
		q = xasprintf("comp=block&blockid=%s", eid);
		rc = bd_blob_op_request(op, p, "PUT", q, h, 1);
		free(q);
		free(eid);
		free(id);
		return rc;
	case PH_COMMIT:
		blob_block_list(op);
		b64 = bd_storage_base64(op->md5, 16);
		snprintf(md5h, sizeof(md5h), "x-ms-blob-content-md5: %s", b64);
		free(b64);
		h[0] = md5h;
		return bd_blob_op_request(op, p, "PUT", "comp=blocklist", h,
		    1);
	case PH_ONE:
	default:
		return bd_blob_op_request(op, p, op->method, op->query, NULL,
		    0);
	}
}

/* --- Phases -------------------------------------------------------------- */

/* Splits op->size into parts of size each (one part for 0 bytes). */
static void
blob_make_parts(struct bd_blob_op *op, int64_t size)
{
	size_t i, n = op->size == 0 ? 1 : (size_t)((op->size + size - 1) / size);

	op->parts = xcalloc(n, sizeof(*op->parts));
	op->n_parts = n;
	for (i = 0; i < n; i++) {
		op->parts[i].op = op;
		op->parts[i].index = (int)i;
		op->parts[i].offset = (int64_t)i * size;
		op->parts[i].length = op->size - op->parts[i].offset < size ?
		    op->size - op->parts[i].offset : size;
	}
}

/*
 * MD5 of bytes [0, size) of fd, and with block > 0 of each block into
 * parts; with notify, each block's is published to notify's loop as soon
 * as it is known (see hashed in blob_op.h).  Returns 0 or a negative
 * errno.  A small file (most downloads of many files) gets a buffer of
 * its own size and no second context: a 128 KiB allocation per file
 * cost more than its MD5.
 */
static int
blob_hash(int fd, int64_t size, int64_t block, struct blob_part *parts,
    unsigned char md5[16], struct bd_blob_op *notify)
{
	int64_t bufsize = size < BLOB_HASH_BUF ? size : BLOB_HASH_BUF;
	EVP_MD_CTX *all = EVP_MD_CTX_new();
	EVP_MD_CTX *one = block > 0 ? EVP_MD_CTX_new() : NULL;
	unsigned char *buf = xmalloc(bufsize > 0 ? (size_t)bufsize : 1);
	int64_t off = 0, want;
	ssize_t got;
	size_t bi = 0;
	int rc = 0;

	if (all == NULL || (block > 0 && one == NULL)) {
		fprintf(stderr, "batchd: EVP_MD_CTX_new failed\n");
		abort();
	}
	EVP_DigestInit_ex(all, EVP_md5(), NULL);
	if (block > 0)
		EVP_DigestInit_ex(one, EVP_md5(), NULL);
	while (off < size) {
		want = size - off < bufsize ? size - off : bufsize;
		if (block > 0 && (off / block + 1) * block - off < want)
			want = (off / block + 1) * block - off;
		got = pread(fd, buf, (size_t)want, off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			rc = got < 0 ? -errno : -EIO;
			break;
		}
		EVP_DigestUpdate(all, buf, (size_t)got);
		if (block > 0)
			EVP_DigestUpdate(one, buf, (size_t)got);
		off += got;
		if (block > 0 && (off % block == 0 || off == size)) {
			EVP_DigestFinal_ex(one, parts[bi++].md5, NULL);
			EVP_DigestInit_ex(one, EVP_md5(), NULL);
			if (notify != NULL) {
				atomic_store_explicit(&notify->hashed, bi,
				    memory_order_release);
				uv_async_send(&notify->hash_async);
			}
		}
	}
	if (block > 0 && size == 0)
		EVP_DigestFinal_ex(one, parts[0].md5, NULL);
	EVP_DigestFinal_ex(all, md5, NULL);
	EVP_MD_CTX_free(all);
	if (one != NULL)
		EVP_MD_CTX_free(one);
	free(buf);
	return rc;
}

/* The thread pool's part of hashing. */
static void
blob_work(uv_work_t *w)
{
	struct bd_blob_op *op = w->data;
	bool blocks = op->kind == K_PUT;

	op->work_err = blob_hash(op->fd, op->size, blocks ?
	    op->parts[0].length : 0, blocks ? op->parts : NULL, op->md5,
	    op->async_open ? op : NULL);
}

/* Loop: the worker hashed more blocks; send them. */
static void
blob_on_block_hashed(uv_async_t *a)
{
	bd_blob_op_pump(a->data);
}

/* Closes hash_async once the worker can no longer use it. */
static void
blob_close_async(struct bd_blob_op *op)
{
	if (!op->async_open)
		return;
	op->async_open = false;
	uv_close((uv_handle_t *)&op->hash_async, bd_blob_op_handle_closed);
}

/* After hashing: compare (get) or upload (put). */
static void
blob_hashed(struct bd_blob_op *op)
{
	char *got;

	if (op->work_err != 0) {
		bd_blob_op_fail(op, op->work_err, "%s %s: reading the file: %s",
		    op->what, op->url, strerror(-op->work_err));
	} else if (op->kind == K_GET) {
		got = bd_storage_base64(op->md5, 16);
		if (strcmp(got, op->p_md5) != 0)
			bd_blob_op_fail(op, BD_ECHECKSUM, "%s %s: the MD5 of the "
			    "bytes received (%s) differs from the blob's "
			    "Content-MD5 (%s)", op->what, op->url, got,
			    op->p_md5);
		else
			op->md5_checked = true;
		free(got);
		/* Nothing is left to do: the pump ends the op. */
		op->phase = PH_ONE;
		op->one.state = P_DONE;
	} else {
		op->put_md5 = bd_storage_base64(op->md5, 16);
		if (op->n_parts == 1)
			memcpy(op->parts[0].md5, op->md5, 16);
		op->phase = PH_PARTS;
	}
	bd_blob_op_pump(op);
}

/* uv_queue_work's after callback. */
static void
blob_after_work(uv_work_t *w, int status)
{
	struct bd_blob_op *op = w->data;

	op->working = false;
	blob_close_async(op);
	if (status == UV_ECANCELED || op->cancelled) {
		op->cancelled = true;
		bd_blob_op_pump(op);
		return;
	}
	blob_hashed(op);
}

/* Worker: adds bytes [md_off, md_to) of the download to its MD5. */
static void
blob_md_work(uv_work_t *w)
{
	struct bd_blob_op *op = w->data;
	unsigned char *buf = xmalloc(BLOB_HASH_BUF);
	int64_t off = op->md_off;
	ssize_t got;
	size_t want;

	op->work_err = 0;
	while (off < op->md_to) {
		want = op->md_to - off < BLOB_HASH_BUF ?
		    (size_t)(op->md_to - off) : BLOB_HASH_BUF;
		got = pread(op->fd, buf, want, off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			op->work_err = got < 0 ? -errno : -EIO;
			break;
		}
		EVP_DigestUpdate(op->md_ctx, buf, (size_t)got);
		off += got;
	}
	free(buf);
}

static void blob_md_more(struct bd_blob_op *);

/* Loop: a piece of the download's MD5 is done. */
static void
blob_after_md_work(uv_work_t *w, int status)
{
	struct bd_blob_op *op = w->data;

	op->working = false;
	if (status == UV_ECANCELED || op->cancelled || op->status != 0 ||
	    op->work_err != 0) {
		if (status == UV_ECANCELED)
			op->cancelled = true;
		else if (op->work_err != 0)
			bd_blob_op_fail(op, op->work_err, "%s %s: reading the "
			    "file: %s", op->what, op->url,
			    strerror(-op->work_err));
		bd_blob_op_pump(op);
		return;
	}
	op->md_off = op->md_to;
	blob_md_more(op);
	bd_blob_op_pump(op);
}

/*
 * Hashes the downloaded bytes that have become contiguous from the start
 * (parts complete mostly in order, so the hash trails the download by the
 * parts in flight), in the thread pool; after the last part, finishes the
 * MD5 and compares it (PH_HASH).  Not while ranges were refused: the parts
 * are then replanned and the hash begun again.
 */
static void
blob_md_more(struct bd_blob_op *op)
{
	int64_t to;
	int rc;

	if (op->md_ctx == NULL || op->working || op->status != 0 ||
	    op->cancelled || op->ranges_refused)
		return;
	while (op->md_part < op->n_parts &&
	    op->parts[op->md_part].state == P_DONE)
		op->md_part++;
	to = op->md_part == op->n_parts ? op->size :
	    op->parts[op->md_part].offset;
	if (to > op->md_off) {
		op->md_to = to;
		op->work.data = op;
		if ((rc = uv_queue_work(op->c->loop, &op->work, blob_md_work,
		    blob_after_md_work)) == 0) {
			op->working = true;
			return;
		}
		bd_blob_op_fail(op, rc, "%s %s: hashing: %s", op->what,
		    op->url, uv_strerror(rc));
		return;
	}
	if (op->phase == PH_HASH && op->md_off == op->size) {
		EVP_DigestFinal_ex(op->md_ctx, op->md5, NULL);
		blob_hashed(op);
	}
}

/*
 * Hashes the file, in the thread pool when it is big.  An upload in
 * blocks sends each block as soon as its MD5 is known (PH_PARTS while the
 * worker runs) rather than after a first pass over the whole file.
 */
static void
blob_start_hash(struct bd_blob_op *op)
{
	bool pipe = op->kind == K_PUT && op->n_parts > 1;

	op->phase = PH_HASH;
	op->work.data = op;
	if (op->size >= op->c->o.md5_off_loop_min) {
		if (pipe && uv_async_init(op->c->loop, &op->hash_async,
		    blob_on_block_hashed) == 0) {
			op->hash_async.data = op;
			op->async_open = true;
			op->handles++;
		}
		if (uv_queue_work(op->c->loop, &op->work, blob_work,
		    blob_after_work) == 0) {
			op->working = true;
			if (op->async_open)
				op->phase = PH_PARTS;
			return;
		}
		blob_close_async(op);
	}
	blob_work(&op->work);
	blob_hashed(op);
}

/* Copies the properties of a HEAD response into op. */
static void
blob_keep_props(struct bd_blob_op *op, const struct bd_http_response *r)
{
	size_t i;

	op->size = r->content_length;
	if (r->content_md5 != NULL && *r->content_md5 != '\0')
		op->p_md5 = xstrndup(r->content_md5, 64);
	if (r->etag != NULL)
		op->p_etag = xstrndup(r->etag, 256);
	if (r->last_modified != NULL)
		op->p_modified = xstrndup(r->last_modified, 64);
	op->p_type = bd_http_response_header(r, "Content-Type") != NULL ?
	    xstrndup(bd_http_response_header(r, "Content-Type"), 256) : NULL;
	op->p_headers = xcalloc(r->n_headers + 1, sizeof(*op->p_headers));
	for (i = 0; i < r->n_headers; i++) {
		op->p_headers[i].name = xstrdup(r->headers[i].name);
		op->p_headers[i].value = xstrdup(r->headers[i].value);
	}
	op->p_n_headers = r->n_headers;
	op->props.size = op->size;
	op->props.content_md5 = op->p_md5;
	op->props.etag = op->p_etag;
	op->props.last_modified = op->p_modified;
	op->props.content_type = op->p_type;
	op->props.headers = op->p_headers;
	op->props.n_headers = op->p_n_headers;
}

/*
 * Whether etag is strong: a weak one (W/"...") only says two bodies are
 * equivalent, not byte for byte the same, so it can guard neither If-Match
 * on a range nor the joining of ranges (RFC 9110 8.8.3, 13.1.1).
 */
static bool
blob_etag_strong(const char *etag)
{
	return etag != NULL && *etag != '\0' && strncmp(etag, "W/", 2) != 0;
}

/*
 * Plans the GET of op once its size (-1: unknown), ETag and whether the
 * server serves ranges are known: parallel ranges, each with If-Match, for
 * a big blob that allows them; one ranged GET with If-Match for a small
 * one; otherwise one streamed GET.  Sizes the file.
 */
static void
blob_plan_get(struct bd_blob_op *op, int64_t size, bool ranges)
{
	const struct bd_blob_options *o = &op->c->o;
	size_t i;

	free(op->parts);
	op->parts = NULL;
	op->n_done = 0;
	op->ranges_refused = false;
	free(op->if_match);
	op->if_match = NULL;
	op->size = size;
	op->streamed = size < 0 || !ranges || !blob_etag_strong(op->p_etag);
	if (!op->streamed)
		op->if_match = xstrdup(op->p_etag);
	if (ftruncate(op->fd, size > 0 ? size : 0) != 0)
		bd_blob_op_fail(op, -errno, "%s %s: sizing the file: %s",
		    op->what, op->url, strerror(errno));
	if (op->streamed || size <= o->get_single_max) {
		op->parts = xcalloc(1, sizeof(*op->parts));
		op->n_parts = 1;
		op->parts[0].op = op;
		op->parts[0].length = size;
		if (size == 0)
			op->parts[0].state = P_DONE;
	} else
		blob_make_parts(op, o->get_chunk_size);
	for (i = 0; i < op->n_parts; i++)
		op->parts[i].op = op;
	op->phase = PH_PARTS;
	/* Big downloads with an MD5 are hashed as they arrive. */
	op->md_off = op->md_to = 0;
	op->md_part = 0;
	if (op->md_ctx != NULL) {
		EVP_MD_CTX_free(op->md_ctx);
		op->md_ctx = NULL;
	}
	if (op->p_md5 != NULL && size >= o->md5_off_loop_min) {
		if ((op->md_ctx = EVP_MD_CTX_new()) == NULL) {
			fprintf(stderr, "batchd: EVP_MD_CTX_new failed\n");
			abort();
		}
		EVP_DigestInit_ex(op->md_ctx, EVP_md5(), NULL);
	}
}

/*
 * After a HEAD: plans the GET from the response.  Without a Content-Length
 * the size is unknown (not 0); ranges are used only where the server says
 * it serves them (Accept-Ranges: bytes, which blob storage always sends).
 */
static void
blob_plan_from_head(struct bd_blob_op *op, const struct bd_http_response *r)
{
	const char *ar = bd_http_response_header(r, "Accept-Ranges");

	op->props.size = r->content_length;
	blob_plan_get(op, r->content_length, ar != NULL &&
	    strcasecmp(ar, "bytes") == 0);
}

/*
 * After the first ranged GET (PH_PROBE): the properties and the plan come
 * from its response, and the bytes it brought count as done.  A 206 gives
 * the size in its Content-Range and the blob's MD5 in
 * x-ms-blob-content-md5 (its Content-MD5 would be the range's); a 200
 * gives the whole blob, of which http kept the first get_chunk_size bytes.
 */
static void
blob_plan_from_probe(struct bd_blob_op *op, const struct bd_http_response *r)
{
	bool partial = r->status == 206;
	const char *md5 = partial ? r->blob_content_md5 : r->content_md5;
	int64_t got = r->bytes_received, size = r->entity_length;
	size_t i;

	blob_keep_props(op, r);
	free(op->p_md5);
	op->p_md5 = md5 != NULL && *md5 != '\0' ? xstrndup(md5, 64) : NULL;
	op->props.content_md5 = op->p_md5;
	op->props.size = size;
	/* A 200 without a length was read to its end. */
	if (!partial && size < 0 && got < op->c->o.get_chunk_size)
		size = op->props.size = got;
	blob_plan_get(op, size, partial);
	if (size < 0 || (got < size && (op->streamed || !partial)))
		return;		/* the plan reads it all again */
	for (i = 0; i < op->n_parts; i++) {
		struct blob_part *p = &op->parts[i];
		if (p->offset + p->length <= got) {
			p->state = P_DONE;
			p->done = p->length;
			op->n_done++;
		} else if (p->offset < got)
			p->done = got - p->offset;
	}
	blob_md_more(op);
}

/* The query of a List Blobs page after marker (NULL: the first). */
static char *
blob_list_query(struct bd_blob_op *op, const char *marker)
{
	char *prefix = NULL, *delim = NULL, *mark = NULL, size[32], *q;

	if (op->prefix != NULL)
		prefix = bd_url_encode(op->prefix, false);
	if (op->delimiter != NULL)
		delim = bd_url_encode(op->delimiter, false);
	if (marker != NULL)
		mark = bd_url_encode(marker, false);
	size[0] = '\0';
	if (op->c->o.list_page_size > 0)
		snprintf(size, sizeof(size), "&maxresults=%d",
		    op->c->o.list_page_size);
	q = xasprintf("restype=container&comp=list%s%s%s%s%s%s%s",
	    prefix != NULL ? "&prefix=" : "", prefix != NULL ? prefix : "",
	    delim != NULL ? "&delimiter=" : "", delim != NULL ? delim : "",
	    mark != NULL ? "&marker=" : "", mark != NULL ? mark : "", size);
	free(prefix);
	free(delim);
	free(mark);
	return q;
}

/* A list page arrived: parse it and ask for the next. */
static void
blob_list_page(struct bd_blob_op *op, const struct bd_http_response *resp)
{
	char *next = NULL, *cause = NULL;
	int rc;

	rc = bd_xml_list_parse(resp->body, resp->body_len,
	    &op->c->o.list_limits, op->list, &next, &cause);
	if (rc != 0) {
		bd_blob_op_fail(op, rc, "%s %s: %s", op->what, op->url, cause);
		free(cause);
		free(next);
		return;
	}
	if (next == NULL)
		return;
	free(op->query);
	op->query = blob_list_query(op, next);
	free(next);
	op->one.state = P_IDLE;
}

/* The part_done hook: a request of op succeeded. */
static void
blob_part_done(struct bd_blob_op *op, struct blob_part *p,
    const struct bd_http_response *resp)
{
	if (op->phase == PH_HEAD) {
		blob_keep_props(op, resp);
		if (op->kind == K_GET)
			blob_plan_from_head(op, resp);
	} else if (op->phase == PH_PROBE) {
		blob_plan_from_probe(op, resp);
	} else if (op->kind == K_GET && op->streamed && p->index == 0 &&
	    op->size < 0) {
		/* The streamed GET of a blob of unknown size: now known. */
		op->size = op->props.size = p->length;
	} else if (op->kind == K_GET && op->phase == PH_PARTS) {
		blob_md_more(op);
	} else if (op->kind == K_LIST) {
		blob_list_page(op, resp);
	} else if (op->phase == PH_COMMIT) {
		op->phase = PH_ONE;
	}
}

/* The phase_done hook: starts the next phase, or ends op. */
static void
blob_next_phase(struct bd_blob_op *op)
{
	size_t i;

	if (op->phase == PH_HEAD || op->phase == PH_ONE ||
	    op->phase == PH_COMMIT) {
		bd_blob_op_finish(op);
		return;
	}
	/* PH_PARTS is complete, once the blocks' hashing is too. */
	if (op->working)
		return;
	for (i = 0; i < op->n_parts; i++)
		if (op->parts[i].state != P_DONE)
			return;
	if (op->kind == K_GET && op->ranges_refused) {
		/* The server ignored Range: one GET of the whole blob. */
		blob_plan_get(op, op->size, false);
		bd_blob_op_pump(op);
		return;
	}
	if (op->progress_cb != NULL)
		op->progress_cb(op->progress_arg, op->size, op->size);
	if (op->kind == K_GET) {
		if (op->p_md5 == NULL) {
			bd_blob_op_finish(op);
			return;
		}
		if (op->md_ctx != NULL) {
			/* The rest of the MD5 begun during the download. */
			op->phase = PH_HASH;
			blob_md_more(op);
			bd_blob_op_pump(op);
			return;
		}
		blob_start_hash(op);
	} else if (op->n_parts > 1) {
		op->phase = PH_COMMIT;
		op->one.state = P_IDLE;
		bd_blob_op_pump(op);
	} else
		bd_blob_op_finish(op);
}


/* --- Operations ---------------------------------------------------------- */

/* A new op of kind with blob.c's hooks. */
static struct bd_blob_op *
blob_new(struct bd_blob_container *c, enum blob_kind kind, const char *name,
    bd_blob_done_cb cb, void *arg)
{
	struct bd_blob_op *op = bd_blob_op_new(c, kind, name, cb, arg);

	op->send = blob_send;
	op->part_done = blob_part_done;
	op->phase_done = blob_next_phase;
	return op;
}

/* Takes op's first step; see bd_blob_op_started(). */
static int
blob_begin(struct bd_blob_op *op, struct bd_blob_op **out)
{
	int rc = 0;

	if (op->phase == PH_HASH)
		blob_start_hash(op);
	else
		rc = blob_send(op, &op->one);
	return bd_blob_op_started(op, rc, out);
}

void
bd_blob_cancel(struct bd_blob_op *op)
{
	if (op->finishing || op->cancelled)
		return;
	op->cancelled = true;
	/* Never deliver from here: the pump only cancels transfers, whose
	   callbacks come later, or arms the timer. */
	bd_blob_op_pump(op);
}

struct bd_xml_list *
bd_blob_take_list(struct bd_blob_op *op)
{
	struct bd_xml_list *l = op->list;

	op->list = NULL;
	return l;
}

int
bd_blob_get_props_start(struct bd_blob_container *c, const char *name,
    bd_blob_done_cb cb, void *arg, struct bd_blob_op **out)
{
	struct bd_blob_op *op = blob_new(c, K_PROPS, name, cb, arg);

	op->phase = PH_HEAD;
	op->what = "properties of";
	op->perms = "r";
	return blob_begin(op, out);
}

int
bd_blob_get_start(struct bd_blob_container *c, const char *name, int fd,
    void (*progress_cb)(void *arg, int64_t done, int64_t total),
    bd_blob_done_cb cb, void *arg, struct bd_blob_op **out)
{
	struct bd_blob_op *op = NULL;

	if (fd < 0)
		return -EBADF;
	op = blob_new(c, K_GET, name, cb, arg);
	/* A Shared Key signs the Range, which the probe's resume changes. */
	op->phase = c->o.get_probe && !op->shared_key ? PH_PROBE : PH_HEAD;
	op->what = "download of";
	op->perms = "r";
	op->fd = fd;
	op->parallel = c->o.get_parallel;
	op->progress_cb = progress_cb;
	op->progress_arg = arg;
	return blob_begin(op, out);
}

/*
 * The ETag of a listing as an HTTP entity tag: List Blobs gives it bare
 * (0x8D...), headers and If-Match want it quoted.  Caller frees.
 */
static char *
blob_quote_etag(const char *etag)
{
	size_t n = strlen(etag);

	if (n >= 2 && etag[n - 1] == '"' && (etag[0] == '"' ||
	    strncmp(etag, "W/\"", 3) == 0))
		return xstrndup(etag, 256);
	return xasprintf("\"%.254s\"", etag);
}

int
bd_blob_get_listed_start(struct bd_blob_container *c,
    const struct bd_xml_blob *b, int fd,
    void (*progress_cb)(void *arg, int64_t done, int64_t total),
    bd_blob_done_cb cb, void *arg, struct bd_blob_op **out)
{
	struct bd_blob_op *op;

	if (b->size < 0 || b->etag == NULL || *b->etag == '\0')
		return bd_blob_get_start(c, b->name, fd, progress_cb, cb, arg,
		    out);
	if (fd < 0)
		return -EBADF;
	op = blob_new(c, K_GET, b->name, cb, arg);
	op->what = "download of";
	op->perms = "r";
	op->fd = fd;
	op->parallel = c->o.get_parallel;
	op->progress_cb = progress_cb;
	op->progress_arg = arg;
	op->p_etag = blob_quote_etag(b->etag);
	if (b->content_md5 != NULL && *b->content_md5 != '\0')
		op->p_md5 = xstrndup(b->content_md5, 64);
	if (b->last_modified != NULL)
		op->p_modified = xstrndup(b->last_modified, 64);
	op->props.size = b->size;
	op->props.content_md5 = op->p_md5;
	op->props.etag = op->p_etag;
	op->props.last_modified = op->p_modified;
	/* A container that lists is blob storage: it serves ranges. */
	blob_plan_get(op, b->size, true);
	bd_blob_op_pump(op);
	return bd_blob_op_started(op, 0, out);
}

int
bd_blob_list_start(struct bd_blob_container *c, const char *prefix,
    const char *delimiter, bd_blob_done_cb cb, void *arg,
    struct bd_blob_op **out)
{
	struct bd_blob_op *op = blob_new(c, K_LIST, NULL, cb, arg);

	op->what = "listing of";
	op->perms = "l";
	op->method = "GET";
	op->list = xcalloc(1, sizeof(*op->list));
	if (prefix != NULL && *prefix != '\0')
		op->prefix = xstrdup(prefix);
	if (delimiter != NULL && *delimiter != '\0')
		op->delimiter = xstrdup(delimiter);
	op->query = blob_list_query(op, NULL);
	return blob_begin(op, out);
}

/*
 * The caller's upload headers, with the plain forms of the blob's
 * properties turned into their x-ms-blob-* names (a Put Block List's own
 * Content-Type would describe the XML, not the blob).
 */
static int
blob_upload_headers(struct bd_blob_op *op, const char *const *headers,
    size_t n)
{
	static const char *const plain[] = {
		"Content-Type", "Content-Encoding", "Content-Language",
		"Content-Disposition", "Cache-Control", NULL,
	};
	size_t i, len;
	int k;

	op->headers = xcalloc(n + 1, sizeof(*op->headers));
	for (i = 0; i < n; i++) {
		if (strpbrk(headers[i], "\r\n") != NULL ||
		    strchr(headers[i], ':') == NULL ||
		    strncasecmp(headers[i], "Authorization:", 14) == 0 ||
		    strncasecmp(headers[i], "Content-Length:", 15) == 0)
			return -EINVAL;
		for (k = 0; plain[k] != NULL; k++) {
			len = strlen(plain[k]);
			if (strncasecmp(headers[i], plain[k], len) == 0 &&
			    headers[i][len] == ':')
				break;
		}
		op->headers[op->n_headers++] = plain[k] != NULL ?
		    xasprintf("x-ms-blob-%s", headers[i]) :
		    xstrdup(headers[i]);
	}
	return 0;
}

int
bd_blob_put_file_start(struct bd_blob_container *c, const char *name,
    int fd, int64_t size, const char *const *headers, size_t n_headers,
    void (*progress_cb)(void *arg, int64_t done, int64_t total),
    bd_blob_done_cb cb, void *arg, struct bd_blob_op **out)
{
	struct bd_blob_op *op = NULL;
	struct stat st;
	int rc;

	if (size < 0) {
		if (fstat(fd, &st) != 0)
			return -errno;
		size = st.st_size;
	}
	if (size > c->o.put_block_size * BLOB_MAX_BLOCKS)
		return BD_ETOOBIG;
	op = blob_new(c, K_PUT, name, cb, arg);
	op->what = "upload to";
	op->perms = "w";
	op->fd = fd;
	op->size = size;
	op->parallel = c->o.put_parallel;
	op->progress_cb = progress_cb;
	op->progress_arg = arg;
	if ((rc = blob_upload_headers(op, headers, n_headers)) != 0) {
		return bd_blob_op_started(op, rc, NULL);
	}
	blob_make_parts(op, size > c->o.put_single_max ? c->o.put_block_size :
	    (size > 0 ? size : 1));
	op->phase = PH_HASH;
	return blob_begin(op, out);
}

/* Starts a one-request op (PH_ONE) with method, query and headers. */
static int
blob_simple(struct bd_blob_container *c, const char *name, const char *what,
    const char *perms, const char *method, const char *query,
    const char *const *headers, size_t n, bd_blob_done_cb cb, void *arg,
    struct bd_blob_op **out, struct bd_blob_op **opp)
{
	struct bd_blob_op *op = blob_new(c, K_SIMPLE, name, cb, arg);
	int rc;

	op->what = what;
	op->perms = perms;
	op->method = method;
	op->query = query != NULL ? xstrdup(query) : NULL;
	if ((rc = blob_upload_headers(op, headers, n)) != 0) {
		return bd_blob_op_started(op, rc, NULL);
	}
	if (opp != NULL)
		*opp = op;
	return 0;
}

int
bd_blob_put_mem_start(struct bd_blob_container *c, const char *name,
    const void *data, size_t len, const char *const *headers, size_t n_headers,
    bd_blob_done_cb cb, void *arg, struct bd_blob_op **out)
{
	struct bd_blob_op *op = NULL;
	unsigned char md5[16];
	unsigned int mlen = 0;
	char *b64;
	size_t i;
	int rc;

	if ((rc = blob_simple(c, name, "upload to", "w", "PUT", NULL, headers,
	    n_headers, cb, arg, out, &op)) != 0)
		return rc;
	op->mem = xmalloc(len + 1);
	if (len > 0)
		memcpy(op->mem, data, len);
	op->mem_len = len;
	op->size = (int64_t)len;
	EVP_Digest(data != NULL ? data : "", len, md5, &mlen, EVP_md5(), NULL);
	b64 = bd_storage_base64(md5, 16);
	op->headers = xreallocarray(op->headers, op->n_headers + 3,
	    sizeof(*op->headers));
	for (i = op->n_headers; i > 0; i--)
		op->headers[i + 1] = op->headers[i - 1];
	op->headers[0] = xstrdup("x-ms-blob-type: BlockBlob");
	op->headers[1] = xasprintf("Content-MD5: %s", b64);
	op->n_headers += 2;
	op->put_md5 = b64;
	return blob_begin(op, out);
}

int
bd_blob_delete_start(struct bd_blob_container *c, const char *name,
    bd_blob_done_cb cb, void *arg, struct bd_blob_op **out)
{
	const char *h[] = { "x-ms-delete-snapshots: include" };
	struct bd_blob_op *op = NULL;
	int rc;

	if ((rc = blob_simple(c, name, "deletion of", "d", "DELETE", NULL, h,
	    1, cb, arg, out, &op)) != 0)
		return rc;
	return blob_begin(op, out);
}

int
bd_blob_container_create_start(struct bd_blob_container *c,
    bd_blob_done_cb cb, void *arg, struct bd_blob_op **out)
{
	struct bd_blob_op *op = NULL;
	int rc;

	if ((rc = blob_simple(c, NULL, "creation of container", "c", "PUT",
	    "restype=container", NULL, 0, cb, arg, out, &op)) != 0)
		return rc;
	return blob_begin(op, out);
}

int
bd_blob_container_delete_start(struct bd_blob_container *c,
    bd_blob_done_cb cb, void *arg, struct bd_blob_op **out)
{
	struct bd_blob_op *op = NULL;
	int rc;

	if ((rc = blob_simple(c, NULL, "deletion of container", "d", "DELETE",
	    "restype=container", NULL, 0, cb, arg, out, &op)) != 0)
		return rc;
	return blob_begin(op, out);
}
