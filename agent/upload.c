/* SPDX-License-Identifier: MIT */
/*
 * Output files: the uploads that come after a task's process exits.
 *
 * bd_upload_start() selects the outputFiles entries by uploadCondition,
 * expands `$VAR` in their patterns from the task's environment and hands
 * the directory walks of all patterns to one uv_queue_work.  Back on the
 * loop, every match becomes a job: an upload through the blob client (one
 * Put Blob, or Put Block and Put Block List for a big file, each with its
 * Content-MD5) to an http(s) container, or a copy into a file:// container
 * directory (in uv_queue_work), at most max_parallel at once.  Each http(s)
 * pattern has one blob container, shared by its jobs and freed with the
 * set.  A failed file does not stop the others; the first failure is the
 * one reported.
 *
 * Progress lines go to <task_dir>/fileuploadout.txt and one JSON object per
 * failure to <task_dir>/fileuploaderr.txt, both opened (truncated) at start
 * and closed before the callback runs.  Every line is redacted, so no SAS
 * signature reaches them.  The struct and its jobs are freed in the close
 * callback of the kick timer, after bd_upload_free().
 */
#include "upload.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "blob.h"
#include "clock.h"
#include "error.h"
#include "file_access.h"
#include "fsutil.h"
#include "glob.h"
#include "metrics.h"
#include "sas.h"
#include "url.h"
#include "varexpand.h"
#include "xmalloc.h"

#define UL_DEFAULT_PARALLEL 8
#define UL_MAX_PARALLEL 64

/*
 * Uploads wait out a storage outage of about ten seconds, as downloads
 * do, before the file counts as failed (spec §7: "a more generous
 * connection/transmission timeout" for output files).
 */
static const struct bd_blob_options ul_blob_options = {
	.retry = { .max_attempts = 7, .max_delay_ms = 8000 },
};

/* One selected outputFiles entry. */
struct ul_pattern {
	const struct bd_output_file *of;
	size_t index;
	char *expanded;		/* filePattern after $VAR; NULL if too long */
	char *full;		/* absolute and normalised, for the log */
	bool wildcard;
	struct bd_blob_container *c; /* http(s) destinations */
	struct bd_glob_result result;
	int rc;			/* of bd_glob_expand */
	char *cause;
};

/* One file to upload. */
struct ul_job {
	struct bd_upload *u;
	struct ul_pattern *p;
	const char *file;	/* absolute; borrowed from p->result */
	char *blob;
	bool put;		/* to p->c through the blob client */
	char *dst;		/* file://: the destination path */
	char *shown;		/* the destination, redacted */
	int fd;
	int64_t size;
	char *md5;		/* base64 Content-MD5 of what was sent */
	int64_t started_ms;
	struct bd_blob_op *op;
	uv_work_t work;
	bool working;
	struct bd_failure_info *failure; /* made by the copy worker */
};

struct bd_upload {
	uv_loop_t *loop;
	struct bd_http *http;
	char *wd;
	const struct bd_process_identity *identity; /* borrowed */
	int max_parallel;
	bd_upload_progress_cb progress_cb;
	void *progress_arg;
	bd_upload_done_cb cb;
	void *arg;

	struct ul_pattern *patterns;
	size_t n_patterns;
	uv_work_t glob_work;
	bool globbing, resolved;

	struct ul_job **jobs;
	size_t n_jobs, next_job;
	int active;
	bool cancelled, done;
	struct bd_failure_info *failure;
	FILE *out, *err;
	uv_timer_t kick;
};

static void ul_pump(struct bd_upload *u);

char *
bd_upload_blob_name(bool has_wildcard, const char *path, const char *relative)
{
	const char *base = strrchr(relative, '/');
	size_t n;

	base = base ? base + 1 : relative;
	while (path != NULL && *path == '/')
		path++;
	while (*relative == '/')
		relative++;
	n = path ? strlen(path) : 0;
	if (!has_wildcard && n > 0 && path[n - 1] != '/')
		return xstrdup(path);
	if (!has_wildcard)	/* the file name, below a path ending in '/' */
		relative = base;
	while (n > 0 && path[n - 1] == '/')
		n--;
	if (n == 0)
		return xstrdup(relative);
	return xasprintf("%.*s/%s", (int)n, path, relative);
}

/* Whether blob can be stored: not empty, no "." or ".." segment. */
static bool
ul_blob_ok(const char *blob)
{
	const char *s = blob;

	if (*blob == '\0')
		return false;
	while (*s != '\0') {
		size_t n = strcspn(s, "/");
		if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' &&
		    s[1] == '.'))
			return false;
		s += n;
		if (*s == '/')
			s++;
	}
	return true;
}

/* Writes a timestamped, redacted, escaped line to fileuploadout.txt. */
static void __attribute__((format(printf, 2, 3)))
ul_log(struct bd_upload *u, const char *fmt, ...)
{
	char ts[64], *line, *red;
	va_list ap;

	if (u->out == NULL)
		return;
	va_start(ap, fmt);
	line = xvasprintf(fmt, ap);
	va_end(ap);
	red = bd_url_redact(line);
	bd_clock_format_iso(bd_clock_now_ms(), ts, sizeof(ts));
	fprintf(u->out, "%s ", ts);
	for (const unsigned char *p = (const unsigned char *)red; *p; p++) {
		if (*p < 0x20 || *p == 0x7f)
			fprintf(u->out, "\\x%02x", *p);
		else
			fputc(*p, u->out);
	}
	fputc('\n', u->out);
	fflush(u->out);
	free(line);
	free(red);
}

/*
 * Records a failure (taking f): a JSON line in fileuploaderr.txt, a line in
 * fileuploadout.txt, and the set's failure if it is the first.
 */
static void
ul_record(struct bd_upload *u, const struct ul_pattern *p, const char *file,
    const char *dest, struct bd_failure_info *f)
{
	cJSON *o = cJSON_CreateObject();
	char *text, *red;

	cJSON_AddStringToObject(o, "code", f->code);
	cJSON_AddBoolToObject(o, "user_error",
	    f->category == BD_CATEGORY_USER_ERROR);
	cJSON_AddStringToObject(o, "pattern", p->of->file_pattern);
	if (file != NULL)
		cJSON_AddStringToObject(o, "file", file);
	else
		cJSON_AddNullToObject(o, "file");
	red = bd_url_redact(dest);
	cJSON_AddStringToObject(o, "destination", red);
	free(red);
	cJSON_AddStringToObject(o, "message", f->message);
	if ((text = cJSON_PrintUnformatted(o)) != NULL && u->err != NULL) {
		red = bd_url_redact(text);
		fprintf(u->err, "%s\n", red);
		fflush(u->err);
		free(red);
	}
	cJSON_free(text);
	cJSON_Delete(o);
	ul_log(u, "Failed: %s: %s", f->code, f->message);
	if (u->failure == NULL)
		u->failure = f;
	else
		bd_failure_info_free(f);
}

/* Records the failure of job j with code and category. */
static void
ul_job_fail(struct ul_job *j, enum bd_error_category cat, const char *code,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
ul_job_fail(struct ul_job *j, enum bd_error_category cat, const char *code,
    const char *fmt, ...)
{
	va_list ap;
	char *what;

	va_start(ap, fmt);
	what = xvasprintf(fmt, ap);
	va_end(ap);
	ul_record(j->u, j->p, j->file, j->shown, bd_failure_info_new(cat, code,
	    "%s: %s to %s", what, j->file, j->shown));
	free(what);
}

/* The failure a copy into a file:// container gets for errno err. */
static struct bd_failure_info *
ul_copy_failure(const struct ul_job *j, int err, const char *doing)
{
	const char *code = "FileUploadMiscError";
	enum bd_error_category cat = BD_CATEGORY_SERVER_ERROR;

	if (err == EACCES || err == EPERM || err == EROFS || err == ELOOP) {
		code = "FileUploadAccessDenied";
		cat = BD_CATEGORY_USER_ERROR;
	} else if (err == EISDIR || err == ENOTDIR || err == EEXIST) {
		code = "FileUploadConflict";
		cat = BD_CATEGORY_USER_ERROR;
	}
	return bd_failure_info_new(cat, code, "Error (%s: %s) uploading output "
	    "file: %s to %s", doing, strerror(err), j->file, j->shown);
}

/* The failure of a match that the task's user cannot open (errno err). */
static struct bd_failure_info *
ul_open_failure(const char *file, const char *shown, int err)
{
	if (err == EACCES || err == EPERM)
		return bd_failure_info_new(BD_CATEGORY_USER_ERROR,
		    "FileUploadAccessDenied", "Access denied (the task's user "
		    "may not read this file: %s) uploading output file: %s to "
		    "%s", strerror(err), file, shown);
	return bd_failure_info_new(BD_CATEGORY_USER_ERROR,
	    "FileUploadMiscError", "Cannot read output file (%s): %s to %s",
	    strerror(err), file, shown);
}

/*
 * Worker: copies one file into a file:// container directory, all of it
 * (reading the match, creating the directories and the copy) with the
 * task user's rights, which this worker thread takes on meanwhile.
 */
static void
ul_copy_work(uv_work_t *w)
{
	struct ul_job *j = w->data;
	struct bd_file_access_saved saved;
	char *dir;
	int fd, rc;

	if ((rc = bd_file_access_enter(j->u->identity, &saved)) < 0) {
		j->failure = ul_copy_failure(j, -rc, "taking the task user's "
		    "rights");
		return;
	}
	if ((fd = open(j->file, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) == -1) {
		j->failure = ul_open_failure(j->file, j->shown, errno);
		goto out;
	}
	dir = bd_path_dirname(j->dst);
	rc = bd_mkdir_p(dir, 0755);
	free(dir);
	if (rc < 0)
		j->failure = ul_copy_failure(j, -rc, "creating its directory");
	else if ((rc = bd_copy_fd(fd, j->dst, 0644, &j->size)) < 0)
		j->failure = ul_copy_failure(j, -rc, "copying");
	close(fd);
out:
	bd_file_access_leave(&saved);
}

/* Ends job j's part in the set and lets the next ones start. */
static void
ul_job_end(struct ul_job *j, bool ok)
{
	struct bd_upload *u = j->u;

	if (j->fd != -1) {
		close(j->fd);
		j->fd = -1;
	}
	if (ok) {
		bd_metrics_add_file(BD_METRIC_UPLOAD_FILES, (uint64_t)j->size);
		ul_log(u, "Uploaded %s to %s (%lld bytes%s%s) in %lld ms",
		    j->file, j->shown, (long long)j->size, j->md5 != NULL ?
		    ", Content-MD5 " : "", j->md5 != NULL ? j->md5 : "",
		    (long long)(bd_clock_mono_ms() - j->started_ms));
		if (u->progress_cb != NULL)
			u->progress_cb(u->progress_arg, j->blob, j->size,
			    j->size);
	}
	u->active--;
	ul_pump(u);
}

/* Loop: a copy is over. */
static void
ul_after_copy(uv_work_t *w, int status)
{
	struct ul_job *j = w->data;

	j->working = false;
	if (status == UV_ECANCELED) {
		ul_job_end(j, false);
		return;
	}
	if (j->failure != NULL) {
		ul_record(j->u, j->p, j->file, j->shown, j->failure);
		j->failure = NULL;
		ul_job_end(j, false);
		return;
	}
	ul_job_end(j, true);
}

/*
 * The reason in the blob client's detail, without the "upload to URL: "
 * that the message says anyway, and with what is wrong with the SAS of a
 * refused upload when the detail does not tell.  Caller frees.
 */
static char *
ul_reason(const struct ul_job *j, const struct bd_blob_result *r)
{
	const char *detail = r->detail != NULL ? r->detail :
	    bd_strerror(r->status);
	char *url = bd_blob_url(j->p->c, j->blob), *why = NULL, *out;
	const char *p = strstr(detail, url);
	struct bd_sas *sas = NULL;

	if (p != NULL && strncmp(p + strlen(url), ": ", 2) == 0)
		detail = p + strlen(url) + 2;
	free(url);
	if (r->status == BD_EDENIED && bd_sas_parse(j->p->of->container_url,
	    &sas, NULL) == 0 && sas->has_sig) {
		/* Create permission is enough for a new blob. */
		why = bd_sas_explain(sas, bd_sas_allows(sas, 'c') ? NULL : "w",
		    time(NULL));
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

/* Inside libcurl: the bytes of job j's upload sent so far. */
static void
ul_on_progress(void *arg, int64_t done, int64_t total)
{
	struct ul_job *j = arg;

	if (j->u->progress_cb != NULL)
		j->u->progress_cb(j->u->progress_arg, j->blob, done, total);
}

/* Loop: the upload of job j ended. */
static void
ul_on_blob(struct bd_blob_op *op, const struct bd_blob_result *r, void *arg)
{
	struct ul_job *j = arg;
	int st = r->status;
	char *why;

	j->op = NULL;
	if (st == 0 || st == -ECANCELED) {
		if (st == 0 && r->content_md5 != NULL)
			j->md5 = xstrdup(r->content_md5);
		ul_job_end(j, st == 0);
		return;
	}
	why = ul_reason(j, r);
	if (st == BD_ENOTFOUND)
		ul_job_fail(j, BD_CATEGORY_USER_ERROR,
		    "FileUploadContainerNotFound", "One of the specified Azure "
		    "container(s) was not found while attempting to upload an "
		    "output file (%s)", why);
	else if (st == BD_EDENIED)
		ul_job_fail(j, BD_CATEGORY_USER_ERROR, "FileUploadAccessDenied",
		    "Access denied (%s) uploading output file", why);
	else if (st == -EEXIST || (st == BD_EHTTP && r->http_status == 409))
		ul_job_fail(j, BD_CATEGORY_USER_ERROR, "FileUploadConflict",
		    "Conflict (%s) uploading output file", why);
	else if (st == BD_ETIMEDOUT)
		ul_job_fail(j, BD_CATEGORY_SERVER_ERROR, "FileUploadTimedOut",
		    "Timed out (%s) uploading output file", why);
	else if (st < 0 && st > BD_EFIRST && st != -EEXIST)
		ul_job_fail(j, BD_CATEGORY_USER_ERROR, "FileUploadMiscError",
		    "Cannot read output file (%s)", why);
	else
		ul_job_fail(j, st == BD_EHTTP && r->http_status >= 400 &&
		    r->http_status < 500 ? BD_CATEGORY_USER_ERROR :
		    BD_CATEGORY_SERVER_ERROR, "FileUploadMiscError",
		    "Error (%s) uploading output file", why);
	free(why);
	ul_job_end(j, false);
}

/*
 * Whether an uploadHeaders entry is one that batchd sets itself for every
 * upload (the blob type, the length and the MD5 of what it sends).
 */
static bool
ul_own_header(const char *name)
{
	static const char *const own[] = {
		"x-ms-blob-type", "Content-Length", "Content-MD5",
		"x-ms-blob-content-md5", NULL,
	};

	for (int i = 0; own[i] != NULL; i++)
		if (strcasecmp(name, own[i]) == 0)
			return true;
	return false;
}

/* Starts the upload of job j; false if it failed at once (recorded). */
static bool
ul_put_start(struct bd_upload *u, struct ul_job *j)
{
	const struct bd_name_value_list *hl = &j->p->of->upload_headers;
	struct stat st;
	char **h = xcalloc(hl->count + 1, sizeof(*h));
	size_t n = 0;
	int rc;

	/* With the task user's rights: a link it planted to a file it may
	 * not read gets EACCES here, and nothing of the file is read. */
	if ((j->fd = bd_file_access_open(u->identity, j->file, O_RDONLY |
	    O_CLOEXEC | O_NONBLOCK, 0)) < 0) {
		ul_record(u, j->p, j->file, j->shown, ul_open_failure(j->file,
		    j->shown, -j->fd));
		j->fd = -1;
		free(h);
		return false;
	}
	if (fstat(j->fd, &st) == -1) {
		ul_job_fail(j, BD_CATEGORY_USER_ERROR, "FileUploadMiscError",
		    "Cannot read output file (%s)", strerror(errno));
		free(h);
		return false;
	}
	if (!S_ISREG(st.st_mode)) {
		ul_job_fail(j, BD_CATEGORY_USER_ERROR, "FileUploadMiscError",
		    "Not a regular file: output file");
		free(h);
		return false;
	}
	j->size = st.st_size;
	for (size_t i = 0; i < hl->count; i++)
		if (!ul_own_header(hl->items[i].name))
			h[n++] = xasprintf("%s: %s", hl->items[i].name,
			    hl->items[i].value != NULL ? hl->items[i].value :
			    "");
	rc = bd_blob_put_file_start(j->p->c, j->blob, j->fd, j->size,
	    (const char *const *)h, n, ul_on_progress, ul_on_blob, j, &j->op);
	for (size_t i = 0; i < n; i++)
		free(h[i]);
	free(h);
	if (rc < 0) {
		if (rc == BD_ETOOBIG)
			ul_job_fail(j, BD_CATEGORY_USER_ERROR,
			    "FileUploadMiscError", "Output file of %lld bytes "
			    "is larger than a block blob can be",
			    (long long)j->size);
		else
			ul_job_fail(j, BD_CATEGORY_USER_ERROR,
			    "FileUploadMiscError", "Cannot send (%s; check the "
			    "uploadHeaders)", bd_strerror(rc));
		close(j->fd);
		j->fd = -1;
		return false;
	}
	return true;
}

/* Starts job j; it counts as active unless it failed at once. */
static void
ul_job_start(struct bd_upload *u, struct ul_job *j)
{
	int rc;

	j->started_ms = bd_clock_mono_ms();
	if (j->put) {
		if (ul_put_start(u, j))
			u->active++;
		return;
	}
	if ((rc = uv_queue_work(u->loop, &j->work, ul_copy_work,
	    ul_after_copy)) < 0) {
		ul_job_fail(j, BD_CATEGORY_SERVER_ERROR, "FileUploadMiscError",
		    "Cannot copy (%s)", uv_strerror(rc));
		return;
	}
	j->working = true;
	u->active++;
}

/* Starts what may start and ends the set when nothing is left. */
static void
ul_pump(struct bd_upload *u)
{
	struct bd_failure_info *f;

	while (!u->cancelled && u->active < u->max_parallel &&
	    u->next_job < u->n_jobs)
		ul_job_start(u, u->jobs[u->next_job++]);
	if (u->done || u->active > 0 || u->globbing ||
	    (!u->cancelled && (!u->resolved || u->next_job < u->n_jobs)))
		return;
	u->done = true;
	uv_timer_stop(&u->kick);
	if (u->out != NULL)
		fclose(u->out);
	if (u->err != NULL)
		fclose(u->err);
	u->out = u->err = NULL;
	f = u->failure;
	u->failure = NULL;
	if (u->cancelled) {
		bd_failure_info_free(f);
		f = NULL;
	}
	bd_metrics_add(BD_METRIC_UPLOAD_ERRORS, f != NULL);
	u->cb(u->arg, f, u->cancelled);	/* may free u */
}

/*
 * Worker: walks the directories of every pattern, with the task user's
 * rights (this worker thread takes them on meanwhile): it sees only the
 * directories its user could list.
 */
static void
ul_glob_work(uv_work_t *w)
{
	struct bd_upload *u = w->data;
	struct bd_file_access_saved saved;
	int rc;

	if ((rc = bd_file_access_enter(u->identity, &saved)) < 0) {
		for (size_t i = 0; i < u->n_patterns; i++)
			u->patterns[i].rc = rc;
		return;
	}
	for (size_t i = 0; i < u->n_patterns; i++) {
		struct ul_pattern *p = &u->patterns[i];
		if (p->expanded != NULL)
			p->rc = bd_glob_expand(p->expanded, u->wd, NULL,
			    &p->result, &p->cause);
	}
	bd_file_access_leave(&saved);
}

/* Makes the job for match i of pattern p, or records why it cannot be. */
static void
ul_add_job(struct bd_upload *u, struct ul_pattern *p, size_t i,
    const char *dir)
{
	const struct bd_output_file *of = p->of;
	struct ul_job *j = xcalloc(1, sizeof(*j));
	char *url;

	j->u = u;
	j->p = p;
	j->fd = -1;
	j->work.data = j;
	j->file = p->result.items[i].path;
	j->blob = bd_upload_blob_name(p->wildcard, of->path,
	    p->result.items[i].relative);
	url = bd_url_append_path(of->container_url, j->blob);
	j->shown = bd_url_redact(url);
	if (!ul_blob_ok(j->blob)) {
		ul_job_fail(j, BD_CATEGORY_USER_ERROR, "FileUploadMiscError",
		    "Blob name %s has a \".\" or \"..\" segment for output file",
		    j->blob);
		free(url);
		free(j->blob);
		free(j->shown);
		free(j);
		return;
	}
	if (dir == NULL)
		j->put = true;
	else
		j->dst = bd_path_join(dir, j->blob);
	free(url);
	u->jobs = xreallocarray(u->jobs, u->n_jobs + 1, sizeof(*u->jobs));
	u->jobs[u->n_jobs++] = j;
}

/* Logs pattern p's resolution and makes the jobs for its matches. */
static void
ul_plan(struct bd_upload *u, struct ul_pattern *p)
{
	const struct bd_output_file *of = p->of;
	char *dest = of->path != NULL && *of->path != '\0' ?
	    bd_url_append_path(of->container_url, of->path) :
	    xstrdup(of->container_url);
	char *dir = NULL, *cause = NULL;
	int rc;

	ul_log(u, "Resolved mapping - base_path: %s, full_pattern: %s, "
	    "original_pattern: %s, destination: %s", p->result.base ?
	    p->result.base : "", p->full, of->file_pattern, dest);
	if (p->expanded == NULL || p->rc < 0) {
		ul_record(u, p, NULL, dest, bd_failure_info_new(
		    BD_CATEGORY_USER_ERROR, "FileUploadMiscError",
		    "outputFiles[%zu]: filePattern %s: %s", p->index,
		    of->file_pattern, p->expanded == NULL ? "too long after "
		    "variable expansion" : p->cause ? p->cause :
		    bd_strerror(p->rc)));
	} else if (!bd_url_is_http(of->container_url) &&
	    (!bd_url_is_file(of->container_url) ||
	    bd_url_file_path(of->container_url, &dir) < 0)) {
		ul_record(u, p, NULL, dest, bd_failure_info_new(
		    BD_CATEGORY_USER_ERROR, "FileUploadMiscError",
		    "outputFiles[%zu]: containerUrl %s: unsupported URL "
		    "(http, https and file:///path are supported)", p->index,
		    of->container_url));
	} else if (p->result.count == 0) {
		ul_log(u, "No files matched pattern %s", p->full);
	} else if (dir == NULL && u->http == NULL) {
		ul_record(u, p, NULL, dest, bd_failure_info_new(
		    BD_CATEGORY_SERVER_ERROR, "FileUploadMiscError",
		    "outputFiles[%zu]: no HTTP client was started for this "
		    "task", p->index));
	} else if (dir == NULL && (rc = bd_blob_container_from_url(u->loop,
	    u->http, of->container_url, &ul_blob_options, &p->c,
	    &cause)) < 0) {
		ul_record(u, p, NULL, dest, bd_failure_info_new(
		    BD_CATEGORY_USER_ERROR, "FileUploadMiscError",
		    "outputFiles[%zu]: containerUrl %s: %s", p->index,
		    of->container_url, cause != NULL ? cause :
		    bd_strerror(rc)));
	} else {
		ul_log(u, "Uploading %zu file%s matching pattern %s",
		    p->result.count, p->result.count == 1 ? "" : "s", p->full);
		for (size_t i = 0; i < p->result.count; i++)
			ul_add_job(u, p, i, dir);
	}
	free(cause);
	free(dir);
	free(dest);
}

/* Loop: the patterns are resolved; make the jobs and start them. */
static void
ul_after_glob(uv_work_t *w, int status)
{
	struct bd_upload *u = w->data;

	u->globbing = false;
	u->resolved = true;
	if (status != UV_ECANCELED && !u->cancelled)
		for (size_t i = 0; i < u->n_patterns; i++)
			ul_plan(u, &u->patterns[i]);
	ul_pump(u);
}

/* Timer: ends the set after a cancel, or when there was nothing to do. */
static void
ul_on_kick(uv_timer_t *t)
{
	ul_pump(t->data);
}

/* Looks a variable up in the task's environment. */
static const char *
ul_lookup(const char *name, void *arg)
{
	return arg != NULL ? bd_env_get(arg, name) : NULL;
}

/* Whether output file of is selected by its uploadCondition. */
static bool
ul_selected(const struct bd_output_file *of, bool succeeded)
{
	switch (of->upload_condition) {
	case BD_UPLOAD_TASK_SUCCESS:
		return succeeded;
	case BD_UPLOAD_TASK_FAILURE:
		return !succeeded;
	default:
		return true;
	}
}

/*
 * Opens <task_dir>/name for writing, truncated, as the task's user (it
 * owns what is in its task directory); NULL and errno on error.
 */
static FILE *
ul_open_log(const struct bd_process_identity *id, const char *task_dir,
    const char *name)
{
	char *path = bd_path_join(task_dir, name);
	int fd = bd_file_access_open(id, path, O_WRONLY | O_CREAT | O_TRUNC |
	    O_CLOEXEC | O_NOFOLLOW, 0644);
	FILE *f = NULL;

	free(path);
	if (fd < 0) {
		errno = -fd;
		return NULL;
	}
	if ((f = fdopen(fd, "w")) == NULL)
		close(fd);
	return f;
}

int
bd_upload_start(const struct bd_upload_options *opts, bd_upload_done_cb cb,
    void *arg, struct bd_upload **out)
{
	struct bd_upload *u;
	int rc;

	if (opts->loop == NULL || opts->wd == NULL || opts->wd[0] != '/' ||
	    opts->task_dir == NULL || cb == NULL ||
	    (opts->files == NULL && opts->n_files > 0))
		return -EINVAL;
	u = xcalloc(1, sizeof(*u));
	if ((u->out = ul_open_log(opts->identity, opts->task_dir,
	    "fileuploadout.txt")) == NULL || (u->err = ul_open_log(
	    opts->identity, opts->task_dir, "fileuploaderr.txt")) == NULL) {
		rc = -errno;
		if (u->out != NULL)
			fclose(u->out);
		free(u);
		return rc;
	}
	if ((rc = uv_timer_init(opts->loop, &u->kick)) < 0) {
		fclose(u->out);
		fclose(u->err);
		free(u);
		return rc;
	}
	u->kick.data = u;
	u->loop = opts->loop;
	u->http = opts->http;
	u->identity = opts->identity;
	u->wd = xstrdup(opts->wd);
	u->max_parallel = opts->max_parallel > 0 ? opts->max_parallel :
	    UL_DEFAULT_PARALLEL;
	if (u->max_parallel > UL_MAX_PARALLEL)
		u->max_parallel = UL_MAX_PARALLEL;
	u->progress_cb = opts->progress_cb;
	u->progress_arg = opts->progress_arg;
	u->cb = cb;
	u->arg = arg;
	u->patterns = xcalloc(opts->n_files + 1, sizeof(*u->patterns));
	for (size_t i = 0; i < opts->n_files; i++) {
		const struct bd_output_file *of = &opts->files[i];
		if (!ul_selected(of, opts->task_succeeded))
			continue;
		struct ul_pattern *p = &u->patterns[u->n_patterns++];
		p->of = of;
		p->index = i;
		p->expanded = bd_varexpand(of->file_pattern, ul_lookup,
		    (void *)(uintptr_t)opts->env);
		char *joined = bd_path_join(u->wd, p->expanded ? p->expanded :
		    of->file_pattern);
		p->full = bd_path_normalize(joined);
		free(joined);
		p->wildcard = p->expanded != NULL &&
		    bd_glob_has_wildcard(p->expanded);
	}
	u->glob_work.data = u;
	if (u->n_patterns > 0 && uv_queue_work(u->loop, &u->glob_work,
	    ul_glob_work, ul_after_glob) == 0)
		u->globbing = true;
	else
		u->resolved = true;
	/* Nothing queued: end on the next turn, never inside start. */
	if (!u->globbing)
		uv_timer_start(&u->kick, ul_on_kick, 0, 0);
	*out = u;
	return 0;
}

void
bd_upload_cancel(struct bd_upload *u)
{
	if (u->done || u->cancelled)
		return;
	u->cancelled = true;
	if (u->globbing)
		uv_cancel((uv_req_t *)&u->glob_work);
	for (size_t i = 0; i < u->next_job; i++) {
		struct ul_job *j = u->jobs[i];
		if (j->op != NULL)
			bd_blob_cancel(j->op);
		if (j->working)
			uv_cancel((uv_req_t *)&j->work);
	}
	uv_timer_start(&u->kick, ul_on_kick, 0, 0);
}

/* Close callback of the timer: the last use of u. */
static void
ul_on_closed(uv_handle_t *h)
{
	struct bd_upload *u = h->data;

	for (size_t i = 0; i < u->n_jobs; i++) {
		struct ul_job *j = u->jobs[i];
		bd_failure_info_free(j->failure);
		free(j->blob);
		free(j->md5);
		free(j->dst);
		free(j->shown);
		free(j);
	}
	free(u->jobs);
	for (size_t i = 0; i < u->n_patterns; i++) {
		struct ul_pattern *p = &u->patterns[i];
		free(p->expanded);
		free(p->full);
		free(p->cause);
		bd_blob_container_free(p->c);
		bd_glob_result_free(&p->result);
	}
	free(u->patterns);
	bd_failure_info_free(u->failure);
	if (u->out != NULL)
		fclose(u->out);
	if (u->err != NULL)
		fclose(u->err);
	free(u->wd);
	free(u);
}

void
bd_upload_free(struct bd_upload *u)
{
	if (u == NULL)
		return;
	uv_close((uv_handle_t *)&u->kick, ul_on_closed);
}
