/* SPDX-License-Identifier: MIT */
/*
 * Resource files: the downloads that come before a task's command line.
 *
 * Each resourceFiles entry becomes a job:
 *
 *	httpUrl http(s)		DL_BLOB: the blob client's download (a GET
 *				of the first 8 MiB, which tells the size,
 *				then the other ranges in parallel, MD5
 *				checked; a small file costs one GET, not a
 *				HEAD and a GET) into a partial file; any HTTP
 *				server serves, and one that refuses the HEAD
 *				the blob client then asks with gets a plain
 *				GET instead (DL_HTTP)
 *	listed blob		DL_BLOB without the HEAD: size, ETag and
 *				Content-MD5 come from the listing
 *	httpUrl file://		DL_COPY
 *	container http(s)	DL_LIST_BLOB: List Blobs, then one DL_BLOB job
 *				per blob (storageContainerUrl with its SAS,
 *				or autoStorageContainerName in the node's
 *				storage account)
 *	container file://	DL_LIST_LOCAL: a directory walk, then one
 *				DL_COPY job per file (download_local.c)
 *
 * Jobs made from a listing go to the end of the queue.  At most
 * max_parallel jobs are active at once; copies, local listings, the
 * creation of a download's partial file and its rename run in
 * uv_queue_work so the loop never blocks on the disk.  The partial files
 * of the next max_parallel jobs are created ahead of their turn (opening,
 * then open), and a download being renamed (committing) does not count as
 * active: a connection goes on to the next file at once, without waiting
 * for the disk, which is what keeps many small files moving (creating a
 * file costs about as much as a small blob's GET: docs/performance.md).
 * Creations and renames go to the thread pool in batches, one batch of
 * each at a time: the files whose turn came while the last batch ran.
 * A hand-off to a worker and back costs the loop, the worker and the
 * kernel about what a small file's rename does, twice per file otherwise.
 * Blob names are kept whole
 * below filePath, and a name that would leave the working directory fails
 * the set.
 *
 * The first failure stops the set: nothing new starts, the active
 * transfers are cancelled, their partial files removed, and the callback
 * runs with that failure once every active job has ended.  Failures carry
 * Azure's codes (reference §2.3) and a message naming the resource file
 * and the reason, redacted.  One blob container per resourceFiles entry
 * is shared by its jobs and freed with the set.  bd_download_free closes
 * the kick timer; the struct and its jobs go in the close callback.
 */
#include "download.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "blob.h"
#include "download_local.h"
#include "error.h"
#include "fsutil.h"
#include "metrics.h"
#include "sas.h"
#include "url.h"
#include "xmalloc.h"

#define DL_DEFAULT_PARALLEL 8
#define DL_MAX_PARALLEL 64
#define DL_DIR_MODE 0770
/* Blobs (or files) one container listing may bring. */
#define DL_LIST_MAX_BLOBS 100000

enum dl_kind {
	DL_BLOB,	/* the blob client's download into a partial file */
	DL_HTTP,	/* a plain GET into a partial file */
	DL_COPY,	/* a local file: file:// httpUrl or directory entry */
	DL_LIST_LOCAL,	/* list a file:// container into DL_COPY jobs */
	DL_LIST_BLOB,	/* list a blob container into DL_BLOB jobs */
	DL_FAIL,	/* fails when it is reached (failure made up front) */
};

struct dl_job {
	struct bd_download *d;
	enum dl_kind kind;
	size_t index;		/* in resourceFiles */
	const struct bd_resource_file *rf;
	struct bd_blob_container *c; /* borrowed from the set */
	char *blob;		/* the name in c; NULL for c's own URL */
	struct bd_xml_blob listed; /* what c's listing said of blob (name
				   NULL when it was not listed) */
	char *src;		/* URL (http) or local path (copy, list) */
	char *shown;		/* the source for messages, redacted */
	char *name;		/* path relative to wd, for messages */
	char *dst;		/* final path */
	char *partial;		/* the temporary file of a download */
	int fd;
	bool fell_back;		/* DL_BLOB that became DL_HTTP */
	int64_t size;		/* of a finished blob download, or -1 */
	struct bd_blob_op *op;
	struct bd_http_transfer *transfer;
	uv_work_t work;
	bool working;		/* work queued and not yet done */
	bool opening;		/* its partial file is being created ahead */
	bool committing;	/* its rename is pending or in a batch: not
				   active */
	struct bd_failure_info *failure; /* made by a worker */
	char **blobs;		/* local listing result, sorted */
	size_t n_blobs;
};

struct bd_download {
	uv_loop_t *loop;
	struct bd_http *http;
	const struct bd_storage_account *storage;
	char *wd;
	const struct bd_process_identity *identity; /* borrowed */
	int max_parallel;
	bd_download_progress_cb progress_cb;
	void *progress_arg;
	bd_download_done_cb cb;
	void *arg;

	struct bd_blob_container **containers; /* one per resource file */
	size_t n_containers;
	struct dl_job **jobs;
	size_t n_jobs, next_job;
	size_t next_open;	/* the next job whose partial file to create */
	int active;
	int opening;		/* partial files being created ahead (in
				   open_batch) */
	int committing;		/* downloads being renamed into place */
	/* The batch of partial files being created, and of renames; renames
	 * asked for while one runs wait in commit_next. */
	struct dl_batch {
		uv_work_t work;
		struct dl_job **jobs;
		size_t n, cap;
		bool queued;
	} open_batch, commit_batch, commit_next;
	char *made_dir;		/* the last directory dl_make_parent made */
	bool stopping, cancelled, done;
	struct bd_failure_info *failure;
	uv_timer_t kick;
};

/*
 * Retries of each request: a storage outage of about ten seconds (a
 * restarted server, a network blip) is waited out, resuming what came
 * already, before the task fails.
 */
#define DL_RETRY { .max_attempts = 7, .max_delay_ms = 8000 }

/* The blob client's settings for resource files. */
static const struct bd_blob_options dl_blob_options = {
	.list_limits = { .max_names = DL_LIST_MAX_BLOBS },
	.retry = DL_RETRY,
	/* An httpUrl starts with its first bytes rather than a HEAD. */
	.get_probe = true,
};

static void dl_pump(struct bd_download *d);
static int dl_get_start(struct bd_download *d, struct dl_job *j);
static void dl_drop_partial(struct dl_job *j);

/* Adds a job to the end of the queue and returns it. */
static struct dl_job *
dl_add(struct bd_download *d, enum dl_kind kind, size_t index,
    const struct bd_resource_file *rf)
{
	struct dl_job *j = xcalloc(1, sizeof(*j));

	j->d = d;
	j->kind = kind;
	j->index = index;
	j->rf = rf;
	j->fd = -1;
	j->size = -1;
	j->work.data = j;
	d->jobs = xreallocarray(d->jobs, d->n_jobs + 1, sizeof(*d->jobs));
	d->jobs[d->n_jobs++] = j;
	return j;
}

/* Frees a job and what it owns; its descriptor is already closed. */
static void
dl_job_free(struct dl_job *j)
{
	for (size_t i = 0; i < j->n_blobs; i++)
		free(j->blobs[i]);
	free(j->blobs);
	bd_failure_info_free(j->failure);
	free(j->blob);
	free(j->listed.content_md5);
	free(j->listed.etag);
	free(j->listed.last_modified);
	free(j->src);
	free(j->shown);
	free(j->name);
	free(j->dst);
	free(j->partial);
	free(j);
}

/* The failure of job j: "resourceFiles[i] (name): source: " + fmt. */
static struct bd_failure_info *
dl_failure(const struct dl_job *j, enum bd_error_category cat,
    const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static struct bd_failure_info *
dl_failure(const struct dl_job *j, enum bd_error_category cat,
    const char *code, const char *fmt, ...)
{
	struct bd_failure_info *f;
	va_list ap;
	char *what;

	va_start(ap, fmt);
	what = xvasprintf(fmt, ap);
	va_end(ap);
	f = bd_failure_info_new(cat, code, "resourceFiles[%zu] (%s): %s: %s",
	    j->index, j->name ? j->name : ".", j->shown, what);
	free(what);
	return f;
}

/* Whether errno err (positive) means the file could not be created. */
static bool
dl_is_create_error(int err)
{
	return err == EACCES || err == EPERM || err == EISDIR ||
	    err == ENOTDIR || err == EEXIST || err == EROFS ||
	    err == ENAMETOOLONG || err == ELOOP || err == ENOENT ||
	    err == ENOTEMPTY;
}

/*
 * The failure for errno err (positive) met on j's local file: DiskFull,
 * else ResourceFileCreateFailed while creating it, else
 * ResourceFileWriteFailed.
 */
static struct bd_failure_info *
dl_local_failure(const struct dl_job *j, int err, bool creating)
{
	bool full = err == ENOSPC || err == EDQUOT;

	return dl_failure(j, creating && !full ? BD_CATEGORY_USER_ERROR :
	    BD_CATEGORY_SERVER_ERROR, full ? "DiskFull" : creating ?
	    "ResourceFileCreateFailed" : "ResourceFileWriteFailed", "%s %s: %s",
	    creating ? "creating" : "writing", j->name ? j->name : ".",
	    strerror(err));
}

/* Records the first failure (taking f) and stops everything else. */
static void
dl_fail(struct bd_download *d, struct bd_failure_info *f)
{
	if (d->failure == NULL && !d->cancelled)
		d->failure = f;
	else
		bd_failure_info_free(f);
	if (d->stopping)
		return;
	d->stopping = true;
	for (size_t i = 0; i < d->next_job; i++) {
		struct dl_job *j = d->jobs[i];
		if (j->op != NULL)
			bd_blob_cancel(j->op);
		if (j->transfer != NULL)
			bd_http_cancel(j->transfer);
		if (j->working)
			uv_cancel((uv_req_t *)&j->work);
	}
	/* A batch that has not begun does not; one that has is undone when
	 * it is over (dl_after_open, dl_after_commit). */
	if (d->open_batch.queued)
		uv_cancel((uv_req_t *)&d->open_batch.work);
	if (d->commit_batch.queued)
		uv_cancel((uv_req_t *)&d->commit_batch.work);
	/* Files created ahead for jobs that will not start now. */
	for (size_t i = d->next_job; i < d->next_open && i < d->n_jobs; i++) {
		struct dl_job *j = d->jobs[i];
		if (!j->opening)
			dl_drop_partial(j);
	}
}

/* Adds job j to batch b. */
static void
dl_batch_add(struct dl_batch *b, struct dl_job *j)
{
	if (b->n == b->cap) {
		b->cap = b->cap > 0 ? 2 * b->cap : 16;
		b->jobs = xreallocarray(b->jobs, b->cap, sizeof(*b->jobs));
	}
	b->jobs[b->n++] = j;
}

/* Ends job j's part in the set and lets the next ones start. */
static void
dl_job_end(struct dl_job *j)
{
	struct bd_download *d = j->d;

	if (j->fd != -1) {
		close(j->fd);
		j->fd = -1;
	}
	if (j->partial != NULL)
		unlink(j->partial);
	if (j->committing)
		d->committing--;
	else
		d->active--;
	dl_pump(d);
}

/* Reports progress of one file. */
static void
dl_on_progress(void *arg, int64_t done, int64_t total)
{
	struct dl_job *j = arg;

	if (j->d->progress_cb != NULL)
		j->d->progress_cb(j->d->progress_arg, j->name, done, total);
}

/*
 * Worker: gives a finished download its mode and its name.  No fsync: a
 * resource file needs to outlive the task's process, not a crash of the
 * node, after which the task runs again in a clean directory and
 * downloads afresh; and flushing a big file would double its download
 * time (docs/performance.md).  The rename still makes it appear whole.
 */
static void
dl_commit_file(struct dl_job *j)
{
	int fd = j->fd;

	j->fd = -1;
	if (fchmod(fd, j->rf->file_mode) == -1) {
		j->failure = dl_local_failure(j, errno, false);
		close(fd);
		return;
	}
	if (close(fd) == -1) {
		j->failure = dl_local_failure(j, errno, false);
		return;
	}
	if (rename(j->partial, j->dst) == -1) {
		j->failure = dl_local_failure(j, errno, true);
		return;
	}
	free(j->partial);
	j->partial = NULL;	/* renamed: nothing to remove */
}

/*
 * Creates the directories above j's file; 0 or -1 with j->failure set.
 * On the loop thread (remember), the directory made last is not made
 * again: the files of a listing mostly share a few directories.
 */
static int
dl_make_parent(struct dl_job *j, bool remember)
{
	char *dir = bd_path_dirname(j->dst);
	int rc;

	if (remember && j->d->made_dir != NULL &&
	    strcmp(dir, j->d->made_dir) == 0) {
		free(dir);
		return 0;
	}
	rc = bd_mkdir_p(dir, DL_DIR_MODE);
	if (rc == 0 && remember) {
		free(j->d->made_dir);
		j->d->made_dir = dir;
		return 0;
	}
	free(dir);
	if (rc == 0)
		return 0;
	j->failure = dl_failure(j, rc == -ENOSPC ? BD_CATEGORY_SERVER_ERROR :
	    BD_CATEGORY_USER_ERROR, rc == -ENOSPC ? "DiskFull" :
	    "ResourceDirectoryCreateFailed", "cannot create the directory of "
	    "%s: %s", j->name, strerror(-rc));
	return -1;
}

/*
 * Whether name can become a path below wd as it is: not empty, not
 * absolute, and no empty, "." or ".." segment.
 */
static bool
dl_blob_name_ok(const char *name)
{
	const char *s = name;

	if (*name == '\0' || *name == '/')
		return false;
	for (;;) {
		size_t n = strcspn(s, "/");
		if (n == 0 || (n == 1 && s[0] == '.') ||
		    (n == 2 && s[0] == '.' && s[1] == '.'))
			return false;
		s += n;
		if (*s == '\0')
			return true;
		s++;
	}
}

/*
 * Adds the job that fetches blob (or file) name of listing job j: a
 * download from j's container, or with j->src a copy from that directory.
 * b (NULL for a file) is the listing's entry, kept so the download needs
 * no HEAD.  A name that would leave the working directory becomes a
 * failure.
 */
static void
dl_add_listed(struct bd_download *d, const struct dl_job *j, const char *name,
    const struct bd_xml_blob *b)
{
	const struct bd_resource_file *rf = j->rf;
	struct dl_job *c = dl_add(d, j->kind == DL_LIST_BLOB ? DL_BLOB :
	    DL_COPY, j->index, rf);
	char *rel = rf->file_path != NULL ? bd_path_join(rf->file_path, name) :
	    xstrdup(name);

	c->name = rel;
	if (j->kind == DL_LIST_BLOB) {
		c->c = j->c;
		c->blob = xstrdup(name);
		c->shown = bd_blob_url(j->c, name);
		if (b != NULL) {
			c->listed.name = c->blob;
			c->listed.size = b->size;
			c->listed.etag = b->etag ? xstrdup(b->etag) : NULL;
			c->listed.content_md5 = b->content_md5 ?
			    xstrdup(b->content_md5) : NULL;
			c->listed.last_modified = b->last_modified ?
			    xstrdup(b->last_modified) : NULL;
		}
	} else {
		char *u = bd_url_append_path(rf->url, name);
		c->shown = bd_url_redact(u);
		free(u);
		c->src = bd_path_join(j->src, name);
	}
	if (!dl_blob_name_ok(name) || !bd_path_stays_inside(rel)) {
		c->kind = DL_FAIL;
		c->failure = dl_failure(c, BD_CATEGORY_USER_ERROR,
		    "ResourceFileCreateFailed", "blob %s would be written "
		    "outside the working directory", name);
		return;
	}
	char *norm = bd_path_normalize(rel);
	c->dst = bd_path_join(d->wd, norm);
	free(norm);
}

/* Loop: the commit (or a copy, or a local listing) of j is over. */
static void
dl_work_done(struct dl_job *j, int status)
{
	struct bd_download *d = j->d;

	if (status == UV_ECANCELED) {
		dl_job_end(j);
		return;
	}
	if (j->failure != NULL) {
		struct bd_failure_info *f = j->failure;
		j->failure = NULL;
		dl_fail(d, f);
		dl_job_end(j);
		return;
	}
	if (j->kind == DL_LIST_LOCAL && !d->stopping) {
		for (size_t i = 0; i < j->n_blobs && !d->stopping; i++)
			dl_add_listed(d, j, j->blobs[i], NULL);
	} else if (j->kind == DL_COPY && d->progress_cb != NULL) {
		struct stat st;
		if (stat(j->dst, &st) == 0)
			d->progress_cb(d->progress_arg, j->name, st.st_size,
			    st.st_size);
	}
	/* A blob's size is known: no stat of it on the loop thread. */
	if (j->size >= 0)
		bd_metrics_add_file(BD_METRIC_DOWNLOAD_FILES,
		    (uint64_t)j->size);
	else
		bd_metrics_add_path(BD_METRIC_DOWNLOAD_FILES,
		    j->kind != DL_LIST_LOCAL ? j->dst : NULL);
	dl_job_end(j);
}

/* Loop: a copy or a local listing is over. */
static void
dl_after_work(uv_work_t *w, int status)
{
	struct dl_job *j = w->data;

	j->working = false;
	dl_work_done(j, status);
}

/* Worker: the renames of commit_batch, in order. */
static void
dl_commit_batch_work(uv_work_t *w)
{
	struct bd_download *d = w->data;

	for (size_t i = 0; i < d->commit_batch.n; i++)
		dl_commit_file(d->commit_batch.jobs[i]);
}

static void dl_after_commit(uv_work_t *w, int status);

/*
 * Queues the renames waiting in commit_next as the next batch once half
 * of max_parallel wait, or no download is active, unless a batch runs
 * (its end comes back here).  After a failure they end instead.  When the
 * thread pool refuses, each of them fails the set.
 */
static void
dl_commit_flush(struct bd_download *d)
{
	struct dl_batch *b = &d->commit_batch, *next = &d->commit_next;
	struct dl_job **jobs;
	size_t cap;
	int rc;

	if (b->queued || next->n == 0)
		return;
	if (d->stopping) {
		while (next->n > 0)
			dl_job_end(next->jobs[--next->n]);
		return;
	}
	if (next->n < (size_t)(d->max_parallel + 1) / 2 && d->active > 0)
		return;
	jobs = b->jobs;
	cap = b->cap;
	b->jobs = next->jobs;
	b->cap = next->cap;
	b->n = next->n;
	next->jobs = jobs;
	next->cap = cap;
	next->n = 0;
	b->queued = true;
	if ((rc = uv_queue_work(d->loop, &b->work, dl_commit_batch_work,
	    dl_after_commit)) == 0)
		return;
	for (size_t i = 0; i < b->n; i++)
		dl_fail(d, dl_failure(b->jobs[i], BD_CATEGORY_SERVER_ERROR,
		    "ResourceFileWriteFailed", "%s", uv_strerror(rc)));
	dl_after_commit(&b->work, UV_ECANCELED);
}

/*
 * Loop: a batch of renames is over (or was cancelled): each job ends,
 * then the renames asked for meanwhile go, or after a failure end too.
 * The batch stays marked queued until then, so that no flush from within
 * takes its array.
 */
static void
dl_after_commit(uv_work_t *w, int status)
{
	struct bd_download *d = w->data;
	struct dl_batch *b = &d->commit_batch;

	for (size_t i = 0; i < b->n; i++)
		dl_work_done(b->jobs[i], status);
	b->n = 0;
	b->queued = false;
	dl_pump(d);
}

/*
 * Hands j's finished download to the next batch of renames; it stops
 * counting as active, so the next download starts.
 */
static void
dl_commit(struct bd_download *d, struct dl_job *j)
{
	j->committing = true;
	d->committing++;
	d->active--;
	dl_batch_add(&d->commit_next, j);
	dl_pump(d);
}

/* Loop: the plain GET of job j ended. */
static void
dl_on_http(struct bd_http_transfer *t, int status,
    const struct bd_http_response *resp, void *arg)
{
	struct dl_job *j = arg;
	struct bd_download *d = j->d;
	const char *detail = resp->error_detail ? resp->error_detail :
	    bd_strerror(status);
	long st = status == BD_EHTTP ? resp->status : 0;

	j->transfer = NULL;
	if (status == 0 && !d->stopping) {
		dl_commit(d, j);
		return;
	} else if (status == -ECANCELED || status == 0) {
		/* Stopped for another file's failure or a cancel. */
	} else if (st == 404) {
		dl_fail(d, dl_failure(j, BD_CATEGORY_USER_ERROR,
		    "BlobNotFound", "blob not found (HTTP 404)"));
	} else if (st == 401 || st == 403) {
		dl_fail(d, dl_failure(j, BD_CATEGORY_USER_ERROR,
		    "BlobAccessDenied", "access denied (%s)", detail));
	} else if (status == BD_ETIMEDOUT) {
		dl_fail(d, dl_failure(j, BD_CATEGORY_SERVER_ERROR,
		    "BlobDownloadTimedOut", "download timed out (%s)", detail));
	} else if (status < 0 && status > BD_EFIRST) {
		/* Writing the sink failed (ENOSPC and the like). */
		dl_fail(d, dl_local_failure(j, -status, false));
	} else {
		dl_fail(d, dl_failure(j, st >= 500 ? BD_CATEGORY_SERVER_ERROR :
		    BD_CATEGORY_USER_ERROR, "BlobDownloadMiscError",
		    "download failed (%s)", detail));
	}
	dl_job_end(j);
}

/*
 * The reason in a blob client's detail, without the "download of URL: "
 * that the failure's own prefix already says, and with what is wrong with
 * the SAS of a refused URL when the detail does not tell.  Caller frees.
 */
static char *
dl_reason(const struct dl_job *j, const struct bd_blob_result *r,
    const char *perms)
{
	const char *detail = r->detail != NULL ? r->detail :
	    bd_strerror(r->status);
	char *url = bd_blob_url(j->c, j->blob), *why = NULL, *out;
	const char *p = strstr(detail, url);
	struct bd_sas *sas = NULL;

	if (p != NULL && strncmp(p + strlen(url), ": ", 2) == 0)
		detail = p + strlen(url) + 2;
	free(url);
	if (r->status == BD_EDENIED && j->rf->source !=
	    BD_RESOURCE_AUTO_STORAGE_CONTAINER &&
	    bd_sas_parse(j->rf->url, &sas, NULL) == 0 && sas->has_sig) {
		why = bd_sas_explain(sas, perms, time(NULL));
		if (why != NULL && strstr(detail, why) != NULL) {
			free(why);
			why = NULL;
		}
	}
	bd_sas_free(sas);
	if (why == NULL)
		return xstrdup(detail);
	out = xasprintf("%s; %s", detail, why);
	free(why);
	return out;
}

/* The failure of blob download or listing j from the blob client's r. */
static struct bd_failure_info *
dl_blob_failure(const struct dl_job *j, const struct bd_blob_result *r)
{
	bool list = j->kind == DL_LIST_BLOB;
	bool container = j->rf->source != BD_RESOURCE_HTTP_URL;
	enum bd_error_category cat = BD_CATEGORY_USER_ERROR;
	const char *code, *what;
	struct bd_failure_info *f;
	char *why = dl_reason(j, r, list ? "l" : "r");
	int err = -r->status;

	switch (r->status) {
	case BD_ENOTFOUND:
		if (list || (container && r->code != NULL &&
		    strcmp(r->code, "ContainerNotFound") == 0)) {
			code = "ResourceContainerNotFound";
			what = "container not found";
		} else {
			code = "BlobNotFound";
			what = "blob not found";
		}
		break;
	case BD_EDENIED:
		code = list ? "ResourceContainerAccessDenied" :
		    "BlobAccessDenied";
		what = list ? "access denied listing the container" :
		    "access denied";
		break;
	case BD_ECHECKSUM:
		code = "BlobDownloadMiscError";
		what = "content does not match its Content-MD5";
		cat = BD_CATEGORY_SERVER_ERROR;
		break;
	case BD_ETIMEDOUT:
		code = list ? "ResourceContainerListTimedOut" :
		    "BlobDownloadTimedOut";
		what = list ? "listing the container timed out" :
		    "download timed out";
		cat = BD_CATEGORY_SERVER_ERROR;
		break;
	default:
		if (!list && (err == ENOSPC || err == EDQUOT || err == EIO ||
		    err == EFBIG || err == EROFS)) {
			f = dl_local_failure(j, err, false);
			free(why);
			return f;
		}
		code = list ? "ResourceContainerListMiscError" :
		    "BlobDownloadMiscError";
		what = list ? "listing the container failed" :
		    "download failed";
		if (r->status != BD_EHTTP || r->http_status >= 500 ||
		    r->http_status == 0)
			cat = BD_CATEGORY_SERVER_ERROR;
		break;
	}
	if (list && r->status == BD_ETOOBIG)
		f = dl_failure(j, BD_CATEGORY_USER_ERROR, code, "%s: more than "
		    "%d blobs, or a listing too big (%s)", what,
		    DL_LIST_MAX_BLOBS, why);
	else
		f = dl_failure(j, cat, code, "%s (%s)", what, why);
	free(why);
	return f;
}

/*
 * Whether httpUrl job j should try once more with a plain GET after the
 * blob client's result r: a server that refuses HEAD (405, 501, or 403 for
 * a URL signed for GET alone, which an Azure SAS never is).  The blob
 * client itself copes with a HEAD without a length, a weak ETag and a
 * server without ranges.
 */
static bool
dl_should_fall_back(const struct dl_job *j, const struct bd_blob_result *r)
{
	struct bd_sas *sas = NULL;
	bool azure_sas;

	if (j->blob != NULL || j->fell_back || j->rf->source !=
	    BD_RESOURCE_HTTP_URL)
		return false;
	if (r->status == BD_EHTTP && (r->http_status == 405 ||
	    r->http_status == 501))
		return true;
	if (!(r->status == BD_EDENIED && r->http_status == 403))
		return false;
	azure_sas = bd_sas_parse(j->src, &sas, NULL) == 0 && sas->has_sig;
	bd_sas_free(sas);
	return !azure_sas;
}

/* Loop: the blob client's download or listing of job j ended. */
static void
dl_on_blob(struct bd_blob_op *op, const struct bd_blob_result *r, void *arg)
{
	struct dl_job *j = arg;
	struct bd_download *d = j->d;

	j->op = NULL;
	if (d->stopping || r->status == -ECANCELED) {
		/* Stopped for another file's failure or a cancel. */
	} else if (dl_should_fall_back(j, r)) {
		j->fell_back = true;
		j->kind = DL_HTTP;
		if (ftruncate(j->fd, 0) == -1)
			dl_fail(d, dl_local_failure(j, errno, false));
		else if (dl_get_start(d, j) == 0)
			return;
		else {
			struct bd_failure_info *f = j->failure;
			j->failure = NULL;
			dl_fail(d, f);
		}
	} else if (r->status != 0) {
		dl_fail(d, dl_blob_failure(j, r));
	} else if (j->kind == DL_LIST_BLOB) {
		for (size_t i = 0; i < r->list->n_blobs && !d->stopping; i++) {
			const struct bd_xml_blob *b = &r->list->blobs[i];
			size_t n = strlen(b->name);
			/* A "directory" placeholder is not a file. */
			if (n > 0 && b->name[n - 1] == '/' && b->size <= 0)
				continue;
			dl_add_listed(d, j, b->name, b);
		}
	} else {
		j->size = r->bytes;
		dl_commit(d, j);
		return;
	}
	dl_job_end(j);
}

/* Worker: copies a local file (a file:// httpUrl or a directory's file). */
static void
dl_copy_work(uv_work_t *w)
{
	struct dl_job *j = w->data;
	int rc, fd;

	if ((fd = rc = bd_download_local_open(j->d->identity, j->src)) < 0) {
		int err = -rc;
		j->failure = dl_failure(j, BD_CATEGORY_USER_ERROR,
		    err == ENOENT || err == ENOTDIR ? "BlobNotFound" :
		    err == EACCES || err == EPERM ? "BlobAccessDenied" :
		    "BlobDownloadMiscError", "%s", err == ENOENT ?
		    "file not found" : err == EINVAL ? "not a regular file" :
		    strerror(err));
		return;
	}
	if (dl_make_parent(j, false) < 0) {
		close(fd);
		return;
	}
	/* The descriptor opened with the task user's rights, not the path
	 * again: what is copied is what the user could read. */
	if ((rc = bd_copy_fd(fd, j->dst, j->rf->file_mode, NULL)) < 0)
		j->failure = dl_local_failure(j, -rc, dl_is_create_error(-rc));
	close(fd);
}

/* Worker: lists a file:// container. */
static void
dl_list_work(uv_work_t *w)
{
	struct dl_job *j = w->data;
	const char *code = "ResourceContainerListMiscError";
	enum bd_error_category cat = BD_CATEGORY_SERVER_ERROR;
	int rc;

	rc = bd_download_local_list(j->d->identity, j->src, j->rf->blob_prefix,
	    DL_LIST_MAX_BLOBS, &j->blobs, &j->n_blobs);
	if (rc == 0)
		return;
	if (rc == -ENOENT || rc == -ENOTDIR) {
		code = "ResourceContainerNotFound";
		cat = BD_CATEGORY_USER_ERROR;
	} else if (rc == -EACCES || rc == -EPERM) {
		code = "ResourceContainerAccessDenied";
		cat = BD_CATEGORY_USER_ERROR;
	}
	if (rc == BD_ETOOBIG)
		j->failure = dl_failure(j, cat, code, "listing the container: "
		    "more than %d files or %d levels", DL_LIST_MAX_BLOBS,
		    BD_DOWNLOAD_LOCAL_MAX_DEPTH);
	else
		j->failure = dl_failure(j, cat, code, "listing the container: "
		    "%s", strerror(-rc));
}

/*
 * Worker: creates the partial file of a download job next to its
 * destination, or sets j->failure.  It is opened for reading too, since
 * the blob client hashes what it wrote.
 */
static void
dl_open_file(struct dl_job *j)
{
	j->fd = open(j->partial, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC |
	    O_NOFOLLOW, j->rf->file_mode);
	if (j->fd == -1 && errno != ENOENT) {
		/* A leftover partial file (read-only, a link): replace it. */
		unlink(j->partial);
		j->fd = open(j->partial, O_RDWR | O_CREAT | O_TRUNC |
		    O_CLOEXEC | O_NOFOLLOW, j->rf->file_mode);
	}
	if (j->fd == -1) {
		j->failure = dl_local_failure(j, errno, true);
		free(j->partial);
		j->partial = NULL;
	}
}

/*
 * Worker: creates the partial files of open_batch, one after the other:
 * creations in parallel in one directory only contend for its lock.
 */
static void
dl_open_batch_work(uv_work_t *w)
{
	struct bd_download *d = w->data;

	for (size_t i = 0; i < d->open_batch.n; i++)
		dl_open_file(d->open_batch.jobs[i]);
}

/* Loop: a batch of partial files is created (or not); turns may have come. */
static void
dl_after_open(uv_work_t *w, int status)
{
	struct bd_download *d = w->data;
	struct dl_batch *b = &d->open_batch;

	for (size_t i = 0; i < b->n; i++) {
		struct dl_job *j = b->jobs[i];
		j->opening = false;
		d->opening--;
		if (status == UV_ECANCELED || d->stopping)
			dl_drop_partial(j);
		else if (j->failure != NULL) {
			struct bd_failure_info *f = j->failure;
			j->failure = NULL;
			dl_fail(d, f);
		}
	}
	b->n = 0;
	b->queued = false;
	dl_pump(d);
}

/*
 * Makes the directories above download job j's file and names its partial
 * file; false, with the set failed, when the directories cannot be made.
 */
static bool
dl_open_prepare(struct dl_job *j)
{
	struct bd_failure_info *f;
	char *dir;

	if (dl_make_parent(j, true) < 0) {
		f = j->failure;
		j->failure = NULL;
		dl_fail(j->d, f);
		return false;
	}
	dir = bd_path_dirname(j->dst);
	j->partial = xasprintf("%s/.%s.batchd-partial", dir,
	    j->dst + strlen(dir) + 1);
	free(dir);
	return true;
}

/* Closes and removes j's partial file after a start that failed. */
static void
dl_drop_partial(struct dl_job *j)
{
	if (j->fd != -1)
		close(j->fd);
	j->fd = -1;
	if (j->partial != NULL)
		unlink(j->partial);
	free(j->partial);
	j->partial = NULL;
}

/* Starts the plain GET of job j into its open partial file; 0 or -1. */
static int
dl_get_start(struct bd_download *d, struct dl_job *j)
{
	struct bd_http_request req;
	int rc;

	bd_http_request_init(&req);
	req.method = "GET";
	req.url = j->src;
	req.sink_fd = j->fd;
	req.sink_offset = 0;
	req.retry = dl_blob_options.retry;
	req.progress_cb = dl_on_progress;
	req.progress_arg = j;
	rc = d->http == NULL ? -ENOTSUP :
	    bd_http_start(d->http, &req, dl_on_http, j, &j->transfer);
	if (rc < 0) {
		j->failure = dl_failure(j, BD_CATEGORY_USER_ERROR,
		    "BlobDownloadMiscError", "%s", bd_strerror(rc));
		return -1;
	}
	return 0;
}

/* Starts a network job (download or listing); 0, or -1 with j->failure. */
static int
dl_net_start(struct bd_download *d, struct dl_job *j)
{
	int rc;

	if (j->kind == DL_LIST_BLOB) {
		rc = bd_blob_list_start(j->c, j->rf->blob_prefix, NULL,
		    dl_on_blob, j, &j->op);
		if (rc < 0) {
			j->failure = dl_failure(j, BD_CATEGORY_SERVER_ERROR,
			    "ResourceContainerListMiscError", "%s",
			    bd_strerror(rc));
			return -1;
		}
		return 0;
	}
	if (j->kind == DL_HTTP)
		rc = dl_get_start(d, j);
	else if ((rc = j->listed.name != NULL ?
	    bd_blob_get_listed_start(j->c, &j->listed, j->fd, dl_on_progress,
	    dl_on_blob, j, &j->op) :
	    bd_blob_get_start(j->c, j->blob, j->fd, dl_on_progress,
	    dl_on_blob, j, &j->op)) < 0) {
		j->failure = dl_failure(j, BD_CATEGORY_USER_ERROR,
		    "BlobDownloadMiscError", "%s", bd_strerror(rc));
		rc = -1;
	}
	if (rc < 0)
		dl_drop_partial(j);
	return rc;
}

/* Starts job j; it counts as active unless it failed at once. */
static void
dl_job_start(struct bd_download *d, struct dl_job *j)
{
	struct bd_failure_info *f;
	int rc;

	switch (j->kind) {
	case DL_BLOB:
	case DL_HTTP:
	case DL_LIST_BLOB:
		if (dl_net_start(d, j) == 0) {
			d->active++;
			return;
		}
		break;
	case DL_COPY:
	case DL_LIST_LOCAL:
		rc = uv_queue_work(d->loop, &j->work, j->kind == DL_LIST_LOCAL ?
		    dl_list_work : dl_copy_work, dl_after_work);
		if (rc == 0) {
			j->working = true;
			d->active++;
			return;
		}
		j->failure = dl_failure(j, BD_CATEGORY_SERVER_ERROR,
		    "ResourceFileWriteFailed", "%s", uv_strerror(rc));
		break;
	case DL_FAIL:
		break;
	}
	f = j->failure;
	j->failure = NULL;
	dl_fail(d, f);
}

/* Whether job j downloads into a partial file. */
static bool
dl_is_download(const struct dl_job *j)
{
	return j->kind == DL_BLOB || j->kind == DL_HTTP;
}

/*
 * Creates the partial files of the jobs ahead of their turn: when fewer
 * than max_parallel are ahead, a batch of up to max_parallel more, up to
 * twice that ahead, unless a batch runs (its end comes back here).
 */
static void
dl_open_ahead(struct bd_download *d)
{
	struct dl_batch *b = &d->open_batch;
	size_t max = (size_t)d->max_parallel;
	int rc;

	if (d->next_open < d->next_job)
		d->next_open = d->next_job;
	if (b->queued || d->next_open - d->next_job >= max)
		return;
	while (!d->stopping && d->next_open < d->n_jobs &&
	    d->next_open - d->next_job < 2 * max && b->n < max) {
		struct dl_job *j = d->jobs[d->next_open++];
		if (dl_is_download(j) && dl_open_prepare(j))
			dl_batch_add(b, j);
	}
	if (b->n == 0)
		return;
	if (!d->stopping && (rc = uv_queue_work(d->loop, &b->work,
	    dl_open_batch_work, dl_after_open)) < 0)
		dl_fail(d, dl_failure(b->jobs[0], BD_CATEGORY_SERVER_ERROR,
		    "ResourceFileWriteFailed", "%s", uv_strerror(rc)));
	if (d->stopping) {
		/* The files were named, not made. */
		while (b->n > 0)
			dl_drop_partial(b->jobs[--b->n]);
		return;
	}
	for (size_t i = 0; i < b->n; i++)
		b->jobs[i]->opening = true;
	d->opening += (int)b->n;
	b->queued = true;
}

/* Starts what may start and ends the set when nothing is left. */
static void
dl_pump(struct bd_download *d)
{
	struct bd_failure_info *f;

	dl_open_ahead(d);
	while (!d->stopping && d->active < d->max_parallel &&
	    d->next_job < d->n_jobs) {
		struct dl_job *j = d->jobs[d->next_job];
		/* A download waits for its file: dl_after_open pumps. */
		if (j->opening)
			break;
		d->next_job++;
		dl_job_start(d, j);
		dl_open_ahead(d);
	}
	dl_commit_flush(d);
	if (d->done || d->active > 0 || d->committing > 0 || d->opening > 0 ||
	    (!d->stopping && d->next_job < d->n_jobs))
		return;
	d->done = true;
	uv_timer_stop(&d->kick);
	f = d->failure;
	d->failure = NULL;
	if (d->cancelled) {
		bd_failure_info_free(f);
		f = NULL;
	}
	bd_metrics_add(BD_METRIC_DOWNLOAD_ERRORS, f != NULL);
	d->cb(d->arg, f, d->cancelled);	/* may free d */
}

/* Timer: starts the set, or ends it after a cancel with nothing active. */
static void
dl_on_kick(uv_timer_t *t)
{
	dl_pump(t->data);
}

/*
 * The blob container of an http(s) storageContainerUrl or of an
 * autoStorageContainerName, kept by the set for resource file i; NULL
 * with *what (caller frees) and *cat when it cannot be made.
 */
static struct bd_blob_container *
dl_container(struct bd_download *d, size_t i,
    const struct bd_resource_file *rf, char **what,
    enum bd_error_category *cat)
{
	struct bd_blob_container *c = NULL;
	char *cause = NULL;
	int rc;

	*cat = BD_CATEGORY_USER_ERROR;
	if (d->http == NULL) {
		*cat = BD_CATEGORY_SERVER_ERROR;
		*what = xstrdup("no HTTP client was started for this task");
		return NULL;
	}
	if (rf->source == BD_RESOURCE_AUTO_STORAGE_CONTAINER) {
		if (d->storage == NULL) {
			*cat = BD_CATEGORY_SERVER_ERROR;
			*what = xstrdup("autoStorageContainerName needs a "
			    "storage account: set `storage` in the node "
			    "configuration or AZURE_STORAGE_CONNECTION_STRING");
			return NULL;
		}
		rc = bd_blob_container_from_account(d->loop, d->http,
		    d->storage, rf->url, &dl_blob_options, &c, &cause);
	} else
		rc = bd_blob_container_from_url(d->loop, d->http, rf->url,
		    &dl_blob_options, &c, &cause);
	if (rc < 0) {
		*what = xstrdup(cause != NULL ? cause : bd_strerror(rc));
		free(cause);
		return NULL;
	}
	d->containers[i] = c;
	return c;
}

/* Plans an httpUrl; false with *what and *code when it cannot be. */
static bool
dl_plan_http_url(struct bd_download *d, size_t i, struct dl_job *j,
    const char **what, const char **code)
{
	const struct bd_resource_file *rf = j->rf;
	char *path = NULL;

	if (rf->file_path == NULL || !bd_path_stays_inside(rf->file_path)) {
		*code = "ResourceFileCreateFailed";
		*what = "filePath must name a file inside the working "
		    "directory";
		return false;
	}
	if (bd_url_is_http(rf->url)) {
		j->src = xstrdup(rf->url);
		j->kind = DL_HTTP;
		/* A URL the blob client cannot take still gets a plain GET. */
		if (d->http != NULL && bd_blob_container_from_url(d->loop,
		    d->http, rf->url, &dl_blob_options, &d->containers[i],
		    NULL) == 0) {
			j->kind = DL_BLOB;
			j->c = d->containers[i];
		}
	} else if (bd_url_is_file(rf->url) &&
	    bd_url_file_path(rf->url, &path) == 0) {
		j->kind = DL_COPY;
		j->src = path;
	} else {
		*what = "unsupported URL: http, https and file:///path URLs "
		    "are supported";
		return false;
	}
	char *norm = bd_path_normalize(rf->file_path);
	j->dst = bd_path_join(d->wd, norm);
	free(norm);
	return true;
}

/* Makes the job (or the failure) for resource file i. */
static void
dl_plan(struct bd_download *d, size_t i, const struct bd_resource_file *rf)
{
	struct dl_job *j = dl_add(d, DL_FAIL, i, rf);
	const char *what = NULL, *code = "BlobDownloadMiscError";
	enum bd_error_category cat = BD_CATEGORY_USER_ERROR;
	char *path = NULL, *why = NULL;

	if (rf->source == BD_RESOURCE_AUTO_STORAGE_CONTAINER)
		j->shown = xasprintf("autoStorageContainerName %s", rf->url);
	else
		j->shown = bd_url_redact(rf->url);
	j->name = rf->file_path ? xstrdup(rf->file_path) : NULL;
	if (rf->source == BD_RESOURCE_HTTP_URL) {
		(void)dl_plan_http_url(d, i, j, &what, &code);
	} else if (rf->file_path != NULL &&
	    !bd_path_stays_inside(rf->file_path)) {
		code = "ResourceFileCreateFailed";
		what = "filePath must stay inside the working directory";
	} else if (rf->source == BD_RESOURCE_STORAGE_CONTAINER_URL &&
	    bd_url_is_file(rf->url)) {
		if (bd_url_file_path(rf->url, &path) == 0) {
			j->kind = DL_LIST_LOCAL;
			j->src = path;
		} else {
			code = "ResourceContainerListMiscError";
			what = "unsupported URL: file:///path is the only file "
			    "URL form";
		}
	} else if (rf->source == BD_RESOURCE_STORAGE_CONTAINER_URL &&
	    !bd_url_is_http(rf->url)) {
		code = "ResourceContainerListMiscError";
		what = "unsupported URL: http, https and file:///path URLs "
		    "are supported";
	} else if ((j->c = dl_container(d, i, rf, &why, &cat)) != NULL) {
		j->kind = DL_LIST_BLOB;
		if (rf->source == BD_RESOURCE_AUTO_STORAGE_CONTAINER) {
			free(j->shown);
			j->shown = bd_blob_url(j->c, NULL);
		}
	} else {
		code = "ResourceContainerListMiscError";
		what = why;
	}
	if (j->kind == DL_FAIL)
		j->failure = dl_failure(j, cat, code, "%s", what);
	free(why);
}

int
bd_download_start(const struct bd_download_options *opts,
    bd_download_done_cb cb, void *arg, struct bd_download **out)
{
	struct bd_download *d;
	int rc;

	if (opts->loop == NULL || opts->wd == NULL || cb == NULL ||
	    (opts->files == NULL && opts->n_files > 0))
		return -EINVAL;
	d = xcalloc(1, sizeof(*d));
	d->loop = opts->loop;
	d->http = opts->http;
	d->storage = opts->storage;
	d->wd = xstrdup(opts->wd);
	d->identity = opts->identity;
	d->max_parallel = opts->max_parallel > 0 ? opts->max_parallel :
	    DL_DEFAULT_PARALLEL;
	if (d->max_parallel > DL_MAX_PARALLEL)
		d->max_parallel = DL_MAX_PARALLEL;
	d->progress_cb = opts->progress_cb;
	d->progress_arg = opts->progress_arg;
	d->cb = cb;
	d->arg = arg;
	if ((rc = uv_timer_init(d->loop, &d->kick)) < 0) {
		free(d->wd);
		free(d);
		return rc;
	}
	d->kick.data = d;
	d->open_batch.work.data = d;
	d->commit_batch.work.data = d;
	d->containers = xcalloc(opts->n_files + 1, sizeof(*d->containers));
	d->n_containers = opts->n_files;
	for (size_t i = 0; i < opts->n_files; i++)
		dl_plan(d, i, &opts->files[i]);
	/* Never call back from inside start: begin on the next turn. */
	uv_timer_start(&d->kick, dl_on_kick, 0, 0);
	*out = d;
	return 0;
}

void
bd_download_cancel(struct bd_download *d)
{
	if (d->done || d->cancelled)
		return;
	d->cancelled = true;
	dl_fail(d, NULL);
	bd_failure_info_free(d->failure);
	d->failure = NULL;
	uv_timer_start(&d->kick, dl_on_kick, 0, 0);
}

/* Close callback of the timer: the last use of d. */
static void
dl_on_closed(uv_handle_t *h)
{
	struct bd_download *d = h->data;

	for (size_t i = 0; i < d->n_jobs; i++)
		dl_job_free(d->jobs[i]);
	free(d->jobs);
	for (size_t i = 0; i < d->n_containers; i++)
		bd_blob_container_free(d->containers[i]);
	free(d->containers);
	bd_failure_info_free(d->failure);
	free(d->open_batch.jobs);
	free(d->commit_batch.jobs);
	free(d->commit_next.jobs);
	free(d->made_dir);
	free(d->wd);
	free(d);
}

void
bd_download_free(struct bd_download *d)
{
	if (d == NULL)
		return;
	uv_close((uv_handle_t *)&d->kick, dl_on_closed);
}
