/* SPDX-License-Identifier: MIT */
/*
 * Resource files: the downloads that come before a task's command line.
 *
 * Each resourceFiles entry becomes a job: an http(s) GET into a partial
 * file that is fsynced and renamed when complete, a copy of a file:// URL,
 * or the listing of a file:// container, whose blobs become copy jobs added
 * to the end of the queue.  At most max_parallel jobs are active at once;
 * copies, listings and the fsync-and-rename run in uv_queue_work so the
 * loop never blocks on the disk.
 *
 * The first failure stops the set: nothing new starts, the active
 * transfers are cancelled, their partial files removed, and the callback
 * runs with that failure once every active job has ended.  bd_download_free
 * closes the kick timer; the struct and its jobs go in the close callback.
 */
#include "download.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "fsutil.h"
#include "url.h"
#include "xmalloc.h"

#define DL_DEFAULT_PARALLEL 8
#define DL_MAX_PARALLEL 64
#define DL_DIR_MODE 0770
/* Bounds of a file:// container listing. */
#define DL_LIST_MAX_BLOBS 100000
#define DL_LIST_MAX_DEPTH 64

enum dl_kind {
	DL_HTTP,	/* GET into a partial file */
	DL_COPY,	/* a local file: httpUrl file:// or a container blob */
	DL_LIST,	/* list a file:// container into DL_COPY jobs */
	DL_FAIL,	/* fails when it is reached (failure made up front) */
};

struct dl_job {
	struct bd_download *d;
	enum dl_kind kind;
	size_t index;		/* in resourceFiles */
	const struct bd_resource_file *rf;
	char *src;		/* URL (http) or local path (copy, list) */
	char *shown;		/* the source for messages, redacted */
	char *name;		/* path relative to wd, for messages */
	char *dst;		/* final path */
	char *partial;		/* http: the temporary file */
	int fd;
	struct bd_http_transfer *transfer;
	uv_work_t work;
	bool working;		/* work queued and not yet done */
	struct bd_failure_info *failure; /* made by a worker */
	char **blobs;		/* listing result, sorted */
	size_t n_blobs;
};

struct bd_download {
	uv_loop_t *loop;
	struct bd_http *http;
	char *wd;
	int max_parallel;
	bd_download_progress_cb progress_cb;
	void *progress_arg;
	bd_download_done_cb cb;
	void *arg;

	struct dl_job **jobs;
	size_t n_jobs, next_job;
	int active;
	bool stopping, cancelled, done;
	struct bd_failure_info *failure;
	uv_timer_t kick;
};

static void dl_pump(struct bd_download *d);

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
		if (j->transfer != NULL)
			bd_http_cancel(j->transfer);
		if (j->working)
			uv_cancel((uv_req_t *)&j->work);
	}
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

/* Worker: makes a finished download durable and gives it its name. */
static void
dl_commit_work(uv_work_t *w)
{
	struct dl_job *j = w->data;
	int fd = j->fd;

	j->fd = -1;
	if (fsync(fd) == -1 || fchmod(fd, j->rf->file_mode) == -1) {
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

/* Loop: the commit (or a copy, or a listing) is over. */
static void
dl_after_work(uv_work_t *w, int status)
{
	struct dl_job *j = w->data;
	struct bd_download *d = j->d;

	j->working = false;
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
	if (j->kind == DL_LIST && !d->stopping) {
		const struct bd_resource_file *rf = j->rf;
		for (size_t i = 0; i < j->n_blobs && !d->stopping; i++) {
			const char *blob = j->blobs[i];
			char *rel = rf->file_path != NULL ?
			    bd_path_join(rf->file_path, blob) : xstrdup(blob);
			struct dl_job *c = dl_add(d, DL_COPY, j->index, rf);
			char *u = bd_url_append_path(rf->url, blob);

			c->shown = bd_url_redact(u);
			free(u);
			c->name = rel;
			c->src = bd_path_join(j->src, blob);
			if (!bd_path_stays_inside(rel)) {
				c->kind = DL_FAIL;
				c->failure = dl_failure(c,
				    BD_CATEGORY_USER_ERROR,
				    "ResourceFileCreateFailed", "blob %s would "
				    "be written outside the working directory",
				    blob);
				continue;
			}
			char *norm = bd_path_normalize(rel);
			c->dst = bd_path_join(d->wd, norm);
			free(norm);
		}
	} else if (j->kind == DL_COPY && d->progress_cb != NULL) {
		struct stat st;
		if (stat(j->dst, &st) == 0)
			d->progress_cb(d->progress_arg, j->name, st.st_size,
			    st.st_size);
	}
	dl_job_end(j);
}

/* Loop: the GET of job j ended. */
static void
dl_on_http(struct bd_http_transfer *t, int status,
    const struct bd_http_response *resp, void *arg)
{
	struct dl_job *j = arg;
	struct bd_download *d = j->d;
	const char *detail = resp->error_detail ? resp->error_detail :
	    bd_strerror(status);
	long st = status == BD_EHTTP ? resp->status : 0;
	int rc;

	j->transfer = NULL;
	if (status == 0 && !d->stopping) {
		j->working = true;
		rc = uv_queue_work(d->loop, &j->work, dl_commit_work,
		    dl_after_work);
		if (rc == 0)
			return;
		j->working = false;
		dl_fail(d, dl_failure(j, BD_CATEGORY_SERVER_ERROR,
		    "ResourceFileWriteFailed", "%s", uv_strerror(rc)));
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
		dl_fail(d, dl_failure(j, BD_CATEGORY_USER_ERROR,
		    "BlobDownloadMiscError", "download failed (%s)", detail));
	}
	dl_job_end(j);
}

/* Creates the directories above j's file; 0 or -1 with j->failure set. */
static int
dl_make_parent(struct dl_job *j)
{
	char *dir = bd_path_dirname(j->dst);
	int rc = bd_mkdir_p(dir, DL_DIR_MODE);

	free(dir);
	if (rc == 0)
		return 0;
	j->failure = dl_failure(j, rc == -ENOSPC ? BD_CATEGORY_SERVER_ERROR :
	    BD_CATEGORY_USER_ERROR, rc == -ENOSPC ? "DiskFull" :
	    "ResourceDirectoryCreateFailed", "cannot create the directory of "
	    "%s: %s", j->name, strerror(-rc));
	return -1;
}

/* Worker: copies a local file (a file:// httpUrl or a container blob). */
static void
dl_copy_work(uv_work_t *w)
{
	struct dl_job *j = w->data;
	struct stat st;
	int fd, rc;

	if ((fd = open(j->src, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fstat(fd, &st) == -1) {
		int err = errno;
		if (fd != -1)
			close(fd);
		j->failure = dl_failure(j, BD_CATEGORY_USER_ERROR,
		    err == ENOENT || err == ENOTDIR ? "BlobNotFound" :
		    err == EACCES || err == EPERM ? "BlobAccessDenied" :
		    "BlobDownloadMiscError", "%s", err == ENOENT ?
		    "file not found" : strerror(err));
		return;
	}
	close(fd);
	if (!S_ISREG(st.st_mode)) {
		j->failure = dl_failure(j, BD_CATEGORY_USER_ERROR,
		    "BlobDownloadMiscError", "not a regular file");
		return;
	}
	if (dl_make_parent(j) < 0)
		return;
	if ((rc = bd_copy_file(j->src, j->dst, j->rf->file_mode, NULL)) < 0)
		j->failure = dl_local_failure(j, -rc, dl_is_create_error(-rc));
}

/* Appends name to the list of a listing, failing past the limit. */
static int
dl_list_add(struct dl_job *j, char *name)
{
	if (j->n_blobs >= DL_LIST_MAX_BLOBS) {
		free(name);
		return BD_ETOOBIG;
	}
	j->blobs = xreallocarray(j->blobs, j->n_blobs + 1, sizeof(*j->blobs));
	j->blobs[j->n_blobs++] = name;
	return 0;
}

/*
 * Whether the subtree dir (with a trailing '/') can hold a blob named with
 * prefix: one of the two must start with the other.
 */
static bool
dl_prefix_reaches(const char *dir, const char *prefix)
{
	size_t a = strlen(dir), b = strlen(prefix);

	return strncmp(dir, prefix, a < b ? a : b) == 0;
}

/* Lists the regular files below the open directory dfd (closed here). */
static int
dl_list_dir(struct dl_job *j, int dfd, const char *rel, int depth)
{
	const char *prefix = j->rf->blob_prefix ? j->rf->blob_prefix : "";
	struct dirent *de;
	struct stat st;
	DIR *dir;
	int rc = 0;

	if (depth > DL_LIST_MAX_DEPTH) {
		close(dfd);
		return BD_ETOOBIG;
	}
	if ((dir = fdopendir(dfd)) == NULL) {
		rc = -errno;
		close(dfd);
		return rc;
	}
	while (rc == 0 && (errno = 0, de = readdir(dir)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(dir), de->d_name, &st,
		    AT_SYMLINK_NOFOLLOW) == -1) {
			if (errno != ENOENT)
				rc = -errno;
			continue;
		}
		char *name = xasprintf("%s%s", rel, de->d_name);
		if (S_ISREG(st.st_mode)) {
			if (strncmp(name, prefix, strlen(prefix)) == 0)
				rc = dl_list_add(j, name);
			else
				free(name);
			continue;
		}
		/* Symlinks and special files are not blobs. */
		char *sub = xasprintf("%s/", name);
		free(name);
		if (S_ISDIR(st.st_mode) && dl_prefix_reaches(sub, prefix)) {
			int fd = openat(dirfd(dir), de->d_name, O_RDONLY |
			    O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			rc = fd == -1 ? -errno : dl_list_dir(j, fd, sub,
			    depth + 1);
		}
		free(sub);
	}
	if (rc == 0 && errno != 0)
		rc = -errno;
	closedir(dir);
	return rc;
}

/* Orders blob names bytewise, as a blob listing is. */
static int
dl_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Worker: lists a file:// container. */
static void
dl_list_work(uv_work_t *w)
{
	struct dl_job *j = w->data;
	const char *code = "ResourceContainerListMiscError";
	enum bd_error_category cat = BD_CATEGORY_SERVER_ERROR;
	int fd, rc;

	fd = open(j->src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	rc = fd == -1 ? -errno : dl_list_dir(j, fd, "", 0);
	if (rc == 0) {
		qsort(j->blobs, j->n_blobs, sizeof(*j->blobs), dl_cmp);
		return;
	}
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
		    DL_LIST_MAX_DEPTH);
	else
		j->failure = dl_failure(j, cat, code, "listing the container: "
		    "%s", strerror(-rc));
}

/*
 * Opens the partial file of an http job and starts its GET; 0, or -1 with
 * j->failure set.
 */
static int
dl_http_start(struct bd_download *d, struct dl_job *j)
{
	struct bd_http_request req;
	char *dir;
	int rc;

	if (dl_make_parent(j) < 0)
		return -1;
	dir = bd_path_dirname(j->dst);
	j->partial = xasprintf("%s/.%s.batchd-partial", dir,
	    j->dst + strlen(dir) + 1);
	free(dir);
	/* A leftover partial file may be read-only: remove it first. */
	unlink(j->partial);
	j->fd = open(j->partial, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	    O_NOFOLLOW, j->rf->file_mode);
	if (j->fd == -1) {
		j->failure = dl_local_failure(j, errno, true);
		return -1;
	}
	bd_http_request_init(&req);
	req.method = "GET";
	req.url = j->src;
	req.sink_fd = j->fd;
	req.sink_offset = 0;
	req.progress_cb = dl_on_progress;
	req.progress_arg = j;
	rc = d->http == NULL ? -ENOTSUP :
	    bd_http_start(d->http, &req, dl_on_http, j, &j->transfer);
	if (rc < 0) {
		close(j->fd);
		j->fd = -1;
		unlink(j->partial);
		j->failure = dl_failure(j, BD_CATEGORY_USER_ERROR,
		    "BlobDownloadMiscError", "%s", bd_strerror(rc));
		return -1;
	}
	return 0;
}

/* Starts job j; it counts as active unless it failed at once. */
static void
dl_job_start(struct bd_download *d, struct dl_job *j)
{
	struct bd_failure_info *f;
	int rc;

	if (j->kind == DL_HTTP && dl_http_start(d, j) == 0) {
		d->active++;
		return;
	}
	if (j->kind == DL_COPY || j->kind == DL_LIST) {
		rc = uv_queue_work(d->loop, &j->work, j->kind == DL_LIST ?
		    dl_list_work : dl_copy_work, dl_after_work);
		if (rc == 0) {
			j->working = true;
			d->active++;
			return;
		}
		j->failure = dl_failure(j, BD_CATEGORY_SERVER_ERROR,
		    "ResourceFileWriteFailed", "%s", uv_strerror(rc));
	}
	f = j->failure;
	j->failure = NULL;
	dl_fail(d, f);
}

/* Starts what may start and ends the set when nothing is left. */
static void
dl_pump(struct bd_download *d)
{
	struct bd_failure_info *f;

	while (!d->stopping && d->active < d->max_parallel &&
	    d->next_job < d->n_jobs)
		dl_job_start(d, d->jobs[d->next_job++]);
	if (d->done || d->active > 0 ||
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
	d->cb(d->arg, f, d->cancelled);	/* may free d */
}

/* Timer: starts the set, or ends it after a cancel with nothing active. */
static void
dl_on_kick(uv_timer_t *t)
{
	dl_pump(t->data);
}

/* Makes the job (or the failure) for resource file i. */
static void
dl_plan(struct bd_download *d, size_t i, const struct bd_resource_file *rf)
{
	struct dl_job *j = dl_add(d, DL_FAIL, i, rf);
	const char *what = NULL, *code = "BlobDownloadMiscError";
	enum bd_error_category cat = BD_CATEGORY_USER_ERROR;
	char *path = NULL;

	j->shown = bd_url_redact(rf->url);
	j->name = rf->file_path ? xstrdup(rf->file_path) : NULL;
	if (rf->source == BD_RESOURCE_HTTP_URL) {
		if (rf->file_path == NULL || !bd_path_stays_inside(rf->file_path)) {
			code = "ResourceFileCreateFailed";
			what = "filePath must name a file inside the working "
			    "directory";
		} else if (bd_url_is_http(rf->url)) {
			j->kind = DL_HTTP;
			j->src = xstrdup(rf->url);
		} else if (bd_url_is_file(rf->url) &&
		    bd_url_file_path(rf->url, &path) == 0) {
			j->kind = DL_COPY;
			j->src = path;
		} else {
			what = "unsupported URL: http, https and "
			    "file:///path URLs are supported";
		}
		if (j->kind != DL_FAIL) {
			char *norm = bd_path_normalize(rf->file_path);
			j->dst = bd_path_join(d->wd, norm);
			free(norm);
		}
	} else if (rf->file_path != NULL &&
	    !bd_path_stays_inside(rf->file_path)) {
		code = "ResourceFileCreateFailed";
		what = "filePath must stay inside the working directory";
	} else if (rf->source == BD_RESOURCE_STORAGE_CONTAINER_URL &&
	    bd_url_is_file(rf->url) &&
	    bd_url_file_path(rf->url, &path) == 0) {
		j->kind = DL_LIST;
		j->src = path;
	} else {
		code = "ResourceContainerListMiscError";
		cat = BD_CATEGORY_SERVER_ERROR;
		what = rf->source == BD_RESOURCE_AUTO_STORAGE_CONTAINER ?
		    "autoStorageContainerName needs the Azure Storage client, "
		    "which this batchd does not have yet" :
		    "a storageContainerUrl other than file:// needs the Azure "
		    "Storage client, which this batchd does not have yet";
	}
	if (j->kind == DL_FAIL)
		j->failure = dl_failure(j, cat, code, "%s", what);
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
	d->wd = xstrdup(opts->wd);
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
	bd_failure_info_free(d->failure);
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
