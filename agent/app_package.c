/* SPDX-License-Identifier: MIT */
/*
 * Application packages on the node (see app_package.h).
 *
 * Three kinds of object:
 *
 *   - an install: one reference being resolved and, when no installed
 *     directory matches, fetched and unpacked.  States:
 *       RESOLVE -> (installed: done) | FETCH -> UNPACK -> done
 *     Installs of the same reference are shared: a request that finds one
 *     in flight waits for it (a waiter in its list); an install that
 *     resolves to a package another install is already fetching hands its
 *     waiters over and ends.  The manager owns installs.
 *   - a request: the references of one task, one waiter each, answered
 *     once when all are done or one failed.  The caller owns it.
 *   - a package directory of the index: name, size, last use and how many
 *     requests hold it.  Only the loop thread touches the index; the
 *     workers (scan, unpack, removal) get copies of what they need.
 *
 * On disk, under <nodeRoot>/applications:
 *   <id>-<version>-<hash>          installed packages (read by tasks)
 *   .install-<pid>-<token>-<n>[.archive]   an install in progress
 *   .install-<pid>-<token>-<n>.unsynced    "<bootId>\n<dir name>\n": that
 *                                  package may not be on disk yet
 *   .remove-<pid>-<token>-<n>              a package being removed
 * Temporaries whose process is gone are removed by the start-up scan.
 *
 * Durability: an install writes and fsyncs its .unsynced marker before it
 * unpacks, renames the unpacked tree into place without waiting for the
 * disk, answers its waiters, and then, off their path, syncs the file
 * system and removes the marker.  A package whose marker is still there
 * at the next start is whole if the marker is of this boot (the page
 * cache kept what batchd wrote: the scan syncs it and drops the marker),
 * and suspect if it is of an earlier boot (a power cut may have lost part
 * of it: the scan removes it).  Requests wait for that scan, so no task
 * ever sees a package that a power cut tore.
 *
 * The last use of a package is its directory's mtime, set at each use, so
 * that the order of removal survives a restart.
 *
 * Holds: whoever uses a package keeps its directory open with a shared
 * flock(2) on it.  The install takes the lock before the rename gives the
 * directory its name; each request keeps a dup of it; a task's supervisor
 * inherits the request's (bd_app_packages_hold_fds()) and keeps it, away
 * from the task, until the task ends, even when batchd does not live that
 * long.  A removal takes the lock exclusive without waiting and leaves
 * the package when it cannot: the lock says "in use" across processes (a
 * second batchd on the same node root) and across restarts (an adopted
 * task's supervisor), where the index's own counts cannot.
 *
 * Cancel: an install that no request waits for any more is stopped (its
 * store operation cancelled, its unpack told through an atomic flag that
 * the archive module reads between entries) and hidden from new requests,
 * which start an install of their own.
 */
#include "app_package.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "error.h"
#include "fsutil.h"
#include "log.h"
#include "xmalloc.h"

#define PKG_INSTALL_PREFIX ".install-"
#define PKG_REMOVE_PREFIX ".remove-"

struct waiter {
	struct bd_app_request *req;
	size_t index;
	struct install *in;
	struct waiter *prev, *next;
};

enum install_state { I_RESOLVE, I_FETCH, I_UNPACK };

struct install {
	struct bd_app_packages *m;
	enum install_state state;
	char *app_ref, *version_ref;	/* the reference */
	struct bd_app_store_op *sop;
	struct bd_app_object *obj;
	char *dir_name;
	char *tmp_dir, *tmp_archive, *archive;
	bool own_archive;		/* downloaded: removed after unpack */
	char *marker;			/* the .unsynced marker */
	bool renamed;			/* the tree has its final name */
	bool waiting_scan;		/* resolves once the scan is done */
	uv_work_t work;
	atomic_bool stop;		/* read by the unpack between entries */
	bool cancelled;			/* nobody waits: new waiters go elsewhere */
	int hold_fd;			/* the installed directory, locked shared */
	int status;
	char *cause;
	struct bd_archive_result res;
	uint64_t started_ms;
	struct waiter *waiters;
	struct install *next;
};

struct pkg_dir {
	char *name;
	uint64_t bytes;
	int64_t last_used_ms;
	int users;
};

struct bd_app_request {
	struct bd_app_packages *m;
	bd_app_request_cb cb;
	void *arg;
	size_t n, pending;
	struct bd_app_package *pkgs;
	char **names, **ids, **versions, **dirs; /* owned strings of pkgs */
	char **store_ids, **store_versions;
	int *fds;			/* each package's directory, locked */
	struct waiter *w;
	bool answered;
	bool cancelled;
	int status;
	char *message;
	uv_work_t work;			/* a deferred cancel's answer */
};

struct bd_app_packages {
	uv_loop_t *loop;
	struct bd_app_store *store;
	char *apps_dir;
	struct bd_archive_limits limits;
	uint64_t cache_max;
	struct install *installs;
	struct pkg_dir *dirs;
	size_t n_dirs;
	struct bd_app_request *pool;
	struct bd_app_packages_stats stats;
	uint64_t seq;
	unsigned token;			/* tells this process from an earlier
					   one with the same pid */
	char boot_id[64];
	int busy;			/* installs, works and live requests */
	int handing_out;		/* no collection while > 0 */
	bool scanned;
	bool closing;
};

static void pkg_maybe_free(struct bd_app_packages *m);
static void pkg_gc(struct bd_app_packages *m);
static void pkg_install_abandon(struct install *in);

/* ---- names ---------------------------------------------------------------- */

/*
 * The ETag without the quotes around it: a blob listing gives 0x8D...,
 * a GET's header "0x8D..." for the same blob.  Sets *len.
 */
static const char *
pkg_etag_bare(const char *etag, size_t *len)
{
	size_t n = strlen(etag);

	if (n >= 2 && etag[0] == '"' && etag[n - 1] == '"') {
		*len = n - 2;
		return etag + 1;
	}
	*len = n;
	return etag;
}

/* Whether two ETags name the same version of an object. */
static bool
pkg_etag_equal(const char *a, const char *b)
{
	size_t la, lb;
	const char *pa = pkg_etag_bare(a, &la), *pb = pkg_etag_bare(b, &lb);

	return la == lb && memcmp(pa, pb, la) == 0;
}

char *
bd_app_package_dir_name(const char *application_id, const char *version,
    const char *etag)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, 64 bits */
	char *name, *p;
	const char *parts[3] = { application_id, version, etag };
	size_t lens[3] = { strlen(application_id), strlen(version), 0 };

	parts[2] = pkg_etag_bare(etag, &lens[2]);
	name = xasprintf("%s-%s-", application_id, version);
	for (p = name; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	for (int i = 0; i < 3; i++) {
		for (const char *q = parts[i]; q < parts[i] + lens[i]; q++) {
			char c = i < 2 && *q >= 'A' && *q <= 'Z' ?
			    (char)(*q - 'A' + 'a') : *q;
			h ^= (unsigned char)c;
			h *= 0x100000001b3ull;
		}
		h ^= 0xff;
		h *= 0x100000001b3ull;
	}
	p = xasprintf("%s%012" PRIx64, name, h >> 16);
	free(name);
	return p;
}

/* "MyApp version 1.0" or "MyApp (default version 1.0)". */
static char *
pkg_describe(const char *app, const char *version_ref, const char *resolved)
{
	if (version_ref != NULL)
		return xasprintf("'%s' version '%s'", app, version_ref);
	if (resolved != NULL)
		return xasprintf("'%s' (default version '%s')", app, resolved);
	return xasprintf("'%s' (default version)", app);
}

bool
bd_app_packages_user_error(int status)
{
	return status == BD_EESCAPE || status == BD_ETOOBIG ||
	    status == BD_EINVALID || status == BD_ENOTFOUND ||
	    status == BD_EDENIED;
}

/* ---- the index ---------------------------------------------------------- */

static struct pkg_dir *
pkg_find_dir(struct bd_app_packages *m, const char *name)
{
	for (size_t i = 0; i < m->n_dirs; i++)
		if (strcmp(m->dirs[i].name, name) == 0)
			return &m->dirs[i];
	return NULL;
}

static struct pkg_dir *
pkg_add_dir(struct bd_app_packages *m, const char *name, uint64_t bytes,
    int64_t last_used_ms)
{
	struct pkg_dir *d = pkg_find_dir(m, name);

	if (d != NULL)
		return d;
	m->dirs = xreallocarray(m->dirs, m->n_dirs + 1, sizeof(*m->dirs));
	d = &m->dirs[m->n_dirs++];
	d->name = xstrdup(name);
	d->bytes = bytes;
	d->last_used_ms = last_used_ms;
	d->users = 0;
	m->stats.bytes += bytes;
	return d;
}

static void
pkg_drop_dir(struct bd_app_packages *m, struct pkg_dir *d)
{
	m->stats.bytes -= d->bytes;
	free(d->name);
	*d = m->dirs[--m->n_dirs];
}

/* Marks a package used now, on disk too (its mtime orders removals). */
static void
pkg_touch(struct bd_app_packages *m, struct pkg_dir *d)
{
	char *path = bd_path_join(m->apps_dir, d->name);

	d->last_used_ms = bd_clock_now_ms();
	(void)utimensat(AT_FDCWD, path, NULL, 0);
	free(path);
}

/*
 * Opens the installed package at path and takes the shared lock that
 * marks it in use.  Returns the descriptor (close-on-exec), -EBUSY when a
 * removal holds it, -ENOENT when no package is (or is any longer) there,
 * or another negative errno.
 */
static int
pkg_hold_path(const char *path)
{
	struct stat held, named;
	int fd, err;

	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) < 0)
		return -errno;
	if (flock(fd, LOCK_SH | LOCK_NB) < 0) {
		err = errno == EWOULDBLOCK ? -EBUSY : -errno;
		close(fd);
		return err;
	}
	/* A removal that renamed it between our open and our lock. */
	if (fstat(fd, &held) < 0 || stat(path, &named) < 0 ||
	    held.st_ino != named.st_ino || held.st_dev != named.st_dev) {
		close(fd);
		return -ENOENT;
	}
	return fd;
}

/* ---- requests ------------------------------------------------------------ */

static void
pkg_unlink_waiter(struct waiter *w)
{
	if (w->in == NULL)
		return;
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		w->in->waiters = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	w->in = NULL;
	w->prev = w->next = NULL;
}

/* Answers req once: its callback, with its other waiters withdrawn. */
static void
pkg_answer(struct bd_app_request *req, int status, const char *message)
{
	if (req->answered)
		return;
	req->answered = true;
	req->status = status;
	for (size_t i = 0; i < req->n; i++)
		pkg_unlink_waiter(&req->w[i]);
	req->cb(req, status, message, req->arg);
}

/*
 * One waiter's package is ready in directory name of the index, held by
 * hold_fd (the request keeps its own copy of the lock).
 */
static void
pkg_waiter_ready(struct waiter *w, struct pkg_dir *d,
    const struct bd_app_object *obj, int hold_fd)
{
	struct bd_app_request *req = w->req;
	struct bd_app_packages *m = req->m;
	size_t i = w->index;

	pkg_unlink_waiter(w);
	d->users++;
	if (hold_fd >= 0 && req->fds[i] < 0)
		req->fds[i] = fcntl(hold_fd, F_DUPFD_CLOEXEC, 3);
	req->names[i] = xstrdup(d->name);
	req->dirs[i] = bd_path_join(m->apps_dir, d->name);
	if (req->versions[i] == NULL)
		req->versions[i] = xstrdup(obj->version);
	req->store_ids[i] = xstrdup(obj->application_id);
	req->store_versions[i] = xstrdup(obj->version);
	req->pkgs[i].version = req->versions[i];
	req->pkgs[i].store_application_id = req->store_ids[i];
	req->pkgs[i].store_version = req->store_versions[i];
	req->pkgs[i].dir = req->dirs[i];
	if (--req->pending == 0)
		pkg_answer(req, 0, NULL);
}

static void
pkg_request_on_cancelled(uv_work_t *w, int status)
{
	struct bd_app_request *req = w->data;

	req->m->busy--;
	pkg_answer(req, -ECANCELED, "the request was cancelled");
}

static void
pkg_noop_work(uv_work_t *w)
{
}

void
bd_app_request_cancel(struct bd_app_request *req)
{
	if (req->answered || req->cancelled)
		return;
	req->cancelled = true;
	for (size_t i = 0; i < req->n; i++) {
		struct install *in = req->w[i].in;

		pkg_unlink_waiter(&req->w[i]);
		pkg_install_abandon(in);
	}
	/* The answer comes on a later turn of the loop, never from here. */
	req->work.data = req;
	req->m->busy++;
	if (uv_queue_work(req->m->loop, &req->work, pkg_noop_work,
	    pkg_request_on_cancelled) < 0) {
		req->m->busy--;
		pkg_answer(req, -ECANCELED, "the request was cancelled");
	}
}

const struct bd_app_package *
bd_app_request_packages(const struct bd_app_request *req, size_t *n)
{
	*n = req->status == 0 && req->answered ? req->n : 0;
	return req->pkgs;
}

void
bd_app_request_free(struct bd_app_request *req)
{
	struct bd_app_packages *m;

	if (req == NULL)
		return;
	m = req->m;
	for (size_t i = 0; i < req->n; i++) {
		struct install *in = req->w[i].in;
		struct pkg_dir *d;

		pkg_unlink_waiter(&req->w[i]);
		pkg_install_abandon(in);
		if (req->fds[i] >= 0)
			close(req->fds[i]);
		if (req->names[i] != NULL &&
		    (d = pkg_find_dir(m, req->names[i])) != NULL && d->users > 0)
			d->users--;
		free(req->names[i]);
		free(req->ids[i]);
		free(req->versions[i]);
		free(req->dirs[i]);
		free(req->store_ids[i]);
		free(req->store_versions[i]);
	}
	free(req->store_ids);
	free(req->store_versions);
	free(req->fds);
	free(req->names);
	free(req->ids);
	free(req->versions);
	free(req->dirs);
	free(req->pkgs);
	free(req->w);
	free(req->message);
	free(req);
	m->busy--;
	if (!m->closing)
		pkg_gc(m);
	pkg_maybe_free(m);
}

/* ---- installs ------------------------------------------------------------- */

static void
pkg_install_free(struct install *in)
{
	struct bd_app_packages *m = in->m;
	struct install **pp;

	for (pp = &m->installs; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == in) {
			*pp = in->next;
			break;
		}
	}
	free(in->app_ref);
	free(in->version_ref);
	bd_app_object_free(in->obj);
	free(in->dir_name);
	free(in->tmp_dir);
	free(in->tmp_archive);
	free(in->marker);
	free(in->archive);
	free(in->cause);
	if (in->hold_fd >= 0)
		close(in->hold_fd);
	free(in);
	m->busy--;
	pkg_maybe_free(m);
}

/* Fails every waiter of in with a message naming the package. */
static void
pkg_install_failed(struct install *in, int status, const char *why)
{
	struct bd_app_packages *m = in->m;
	char *what = pkg_describe(in->app_ref, in->version_ref,
	    in->obj != NULL ? in->obj->version : NULL);
	char *msg = xasprintf("application package %s: %s", what, why);

	if (status != -ECANCELED) {
		m->stats.failures++;
		log_warnx("app_package: %s", msg);
	} else if (in->cancelled)
		log_info("app_package: %s: cancelled, no task waits for it any "
		    "more", what);
	while (in->waiters != NULL) {
		struct bd_app_request *req = in->waiters->req;

		pkg_unlink_waiter(in->waiters);
		pkg_answer(req, status, msg);
	}
	free(what);
	free(msg);
	pkg_install_free(in);
}

/*
 * Every waiter of in gets its directory (in->dir_name, in the index).  Callbacks may
 * free requests, which may collect: the collection waits until the end,
 * and the entry is found again for each waiter (the index may move).
 */
static void
pkg_install_done(struct install *in)
{
	struct bd_app_packages *m = in->m;
	const char *name = in->dir_name;
	struct pkg_dir *d = pkg_find_dir(m, name);

	pkg_touch(m, d);
	m->handing_out++;
	while (in->waiters != NULL) {
		if ((d = pkg_find_dir(m, name)) == NULL)
			d = pkg_add_dir(m, name, 0, bd_clock_now_ms());
		pkg_waiter_ready(in->waiters, d, in->obj, in->hold_fd);
	}
	m->handing_out--;
	pkg_install_free(in);
	if (!m->closing)
		pkg_gc(m);
}

/* Removes what an unpack left behind; runs in a worker. */
static void
pkg_remove_temporaries(struct install *in)
{
	if (in->tmp_dir != NULL)
		(void)bd_rm_rf(in->tmp_dir);
	if (!in->renamed && in->marker != NULL)
		(void)unlink(in->marker);
	if (in->own_archive)
		(void)unlink(in->tmp_archive);
}

/* fsyncs the directory at path; an error is not worth more than a try. */
static void
pkg_fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

/*
 * Writes in's .unsynced marker and makes it durable before anything of
 * the package can be.  Returns 0, or a negative errno with in->cause.
 */
static int
pkg_write_marker(struct install *in)
{
	char *text = xasprintf("%s\n%s\n", in->m->boot_id, in->dir_name);
	int fd, err = 0;

	if ((fd = open(in->marker, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644)) < 0)
		err = -errno;
	else
		err = bd_write_all(fd, text, strlen(text));
	if (err == 0 && fsync(fd) < 0)
		err = -errno;
	if (fd >= 0)
		close(fd);
	free(text);
	if (err < 0) {
		in->cause = xasprintf("cannot write %s: %s", in->marker,
		    strerror(-err));
		return err;
	}
	pkg_fsync_dir(in->m->apps_dir);
	return 0;
}

/*
 * The unpack, in a worker: marker, temporary directory, extract, rename.
 * The sync comes after the waiters are answered (pkg_sync_work()).
 */
static void
pkg_unpack_work(uv_work_t *w)
{
	struct install *in = w->data;
	char *final = bd_path_join(in->m->apps_dir, in->dir_name);
	struct bd_archive_limits lim = in->m->limits;
	int rc;

	lim.cancel = &in->stop;
	if ((rc = pkg_write_marker(in)) < 0) {
		in->status = rc;
		goto out;
	}
	if (mkdir(in->tmp_dir, 0755) < 0) {
		in->status = -errno;
		in->cause = xasprintf("cannot create %s: %s", in->tmp_dir,
		    strerror(errno));
		goto out;
	}
	rc = bd_archive_extract(in->archive, in->tmp_dir, &lim, &in->res,
	    &in->cause);
	if (rc < 0) {
		in->status = rc;
		if (in->cause == NULL)
			in->cause = xstrdup(bd_strerror(rc));
		goto out;
	}
	if (atomic_load(&in->stop)) {
		in->status = -ECANCELED;
		in->cause = xstrdup("the unpack was cancelled");
		goto out;
	}
	(void)chmod(in->tmp_dir, 0755);
	/* Held before it has its name: no removal can come between. */
	if ((in->hold_fd = open(in->tmp_dir, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) >= 0)
		(void)flock(in->hold_fd, LOCK_SH);
	if (rename(in->tmp_dir, final) == 0)
		in->renamed = true;
	else if (errno == EEXIST || errno == ENOTEMPTY) {
		/* Another process installed it first: use theirs, which its
		 * own marker covers. */
		(void)bd_rm_rf(in->tmp_dir);
		if (in->hold_fd >= 0)
			close(in->hold_fd);
		if ((in->hold_fd = pkg_hold_path(final)) < 0) {
			in->status = in->hold_fd;
			in->hold_fd = -1;
			in->cause = xasprintf("another process installed it at "
			    "%s and is removing it: %s", final,
			    strerror(-in->status));
			goto out;
		}
	} else {
		in->status = -errno;
		in->cause = xasprintf("cannot move the package into place at "
		    "%s: %s", final, strerror(errno));
		goto out;
	}
	free(in->tmp_dir);
	in->tmp_dir = NULL;
out:
	pkg_remove_temporaries(in);
	free(final);
}

/* A package renamed into place, to be made durable. */
struct pkg_sync {
	struct bd_app_packages *m;
	char *dir, *marker;
	uv_work_t work;
};

/*
 * Makes the package durable, then drops its marker: syncfs writes back
 * the package's file system once for all its files (an fsync per file
 * would commit the journal once per file).
 */
static void
pkg_sync_work(uv_work_t *w)
{
	struct pkg_sync *ps = w->data;
	int fd = open(ps->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || syncfs(fd) < 0) {
		/* The marker stays: the next start syncs it or removes it. */
		if (fd >= 0)
			close(fd);
		return;
	}
	close(fd);
	(void)unlink(ps->marker);
	pkg_fsync_dir(ps->m->apps_dir);
}

static void
pkg_on_synced(uv_work_t *w, int status)
{
	struct pkg_sync *ps = w->data;
	struct bd_app_packages *m = ps->m;

	free(ps->dir);
	free(ps->marker);
	free(ps);
	m->busy--;
	pkg_maybe_free(m);
}

/* Starts the sync of in's package, off the waiters' path. */
static void
pkg_sync_start(struct install *in)
{
	struct bd_app_packages *m = in->m;
	struct pkg_sync *ps = xcalloc(1, sizeof(*ps));

	ps->m = m;
	ps->dir = bd_path_join(m->apps_dir, in->dir_name);
	ps->marker = xstrdup(in->marker);
	ps->work.data = ps;
	m->busy++;
	if (uv_queue_work(m->loop, &ps->work, pkg_sync_work,
	    pkg_on_synced) < 0) {
		/* Left to the next start's scan. */
		m->busy--;
		free(ps->dir);
		free(ps->marker);
		free(ps);
	}
}

static void
pkg_on_unpacked(uv_work_t *w, int status)
{
	struct install *in = w->data;
	struct bd_app_packages *m = in->m;

	if (in->status < 0) {
		char *why = xasprintf("the archive %s cannot be installed: %s",
		    in->obj->name, in->cause);
		pkg_install_failed(in, in->status, why);
		free(why);
		return;
	}
	m->stats.installs++;
	log_info("app_package: application package '%s' version '%s' "
	    "installed in %s/%s: %" PRIu64 " entries, %" PRIu64 " bytes in "
	    "%.3f s", in->obj->application_id, in->obj->version, m->apps_dir,
	    in->dir_name, in->res.entries, in->res.bytes,
	    (double)(bd_clock_now_ms() - in->started_ms) / 1000.0);
	pkg_add_dir(m, in->dir_name, in->res.bytes, bd_clock_now_ms());
	if (in->renamed)
		pkg_sync_start(in);
	pkg_install_done(in);
}

static void
pkg_on_fetched(void *arg, int status, const char *archive, const char *etag,
    const char *detail)
{
	struct install *in = arg;
	struct bd_app_packages *m = in->m;
	int rc;

	in->sop = NULL;
	if (status < 0) {
		if (in->own_archive)
			(void)unlink(in->tmp_archive);
		char *why = detail != NULL ? xstrdup(detail) :
		    xasprintf("cannot fetch %s from the store %s: %s",
		    in->obj->name, bd_app_store_describe(m->store),
		    bd_strerror(status));
		pkg_install_failed(in, status, why);
		free(why);
		return;
	}
	in->own_archive = strcmp(archive, in->tmp_archive) == 0;
	if (in->own_archive)
		m->stats.downloads++;
	in->archive = xstrdup(archive);
	if (etag != NULL && !pkg_etag_equal(etag, in->obj->etag)) {
		/* Replaced since the listing: name what was fetched. */
		free(in->obj->etag);
		in->obj->etag = xstrdup(etag);
		free(in->dir_name);
		in->dir_name = bd_app_package_dir_name(in->obj->application_id,
		    in->obj->version, etag);
	}
	if (m->closing || in->cancelled) {
		pkg_remove_temporaries(in);
		pkg_install_failed(in, -ECANCELED, m->closing ?
		    "the node is stopping" : "cancelled");
		return;
	}
	in->state = I_UNPACK;
	in->work.data = in;
	if ((rc = uv_queue_work(m->loop, &in->work, pkg_unpack_work,
	    pkg_on_unpacked)) < 0) {
		pkg_remove_temporaries(in);
		pkg_install_failed(in, rc, "cannot start unpacking");
	}
}

/* The install fetching or unpacking dir_name, other than in, or NULL. */
static struct install *
pkg_find_installing(struct bd_app_packages *m, struct install *in)
{
	for (struct install *o = m->installs; o != NULL; o = o->next)
		if (o != in && !o->cancelled && o->state != I_RESOLVE &&
		    o->dir_name != NULL &&
		    strcmp(o->dir_name, in->dir_name) == 0)
			return o;
	return NULL;
}

static void
pkg_on_resolved(void *arg, int status, struct bd_app_object *obj,
    const char *detail)
{
	struct install *in = arg;
	struct bd_app_packages *m = in->m;
	struct install *other;
	struct pkg_dir *d;
	char *path;
	int rc;

	in->sop = NULL;
	if (status < 0) {
		char *why = status == -ECANCELED ? xstrdup("cancelled") :
		    xstrdup(detail != NULL ? detail : bd_strerror(status));
		pkg_install_failed(in, status, why);
		free(why);
		return;
	}
	in->obj = obj;
	if (in->cancelled) {
		pkg_install_failed(in, -ECANCELED, "cancelled");
		return;
	}
	in->dir_name = bd_app_package_dir_name(obj->application_id,
	    obj->version, obj->etag);
	path = bd_path_join(m->apps_dir, in->dir_name);
	d = pkg_find_dir(m, in->dir_name);
	if ((in->hold_fd = pkg_hold_path(path)) >= 0) {
		/* Installed already (perhaps by another process). */
		free(path);
		if (d == NULL)
			d = pkg_add_dir(m, in->dir_name, 0,
			    bd_clock_now_ms());
		m->stats.reuses++;
		pkg_install_done(in);
		return;
	}
	/* Absent, or being removed (-EBUSY): installed anew. */
	in->hold_fd = -1;
	free(path);
	if (d != NULL && d->users == 0)
		pkg_drop_dir(m, d);	/* removed behind our back */
	if ((other = pkg_find_installing(m, in)) != NULL) {
		/* The same package by another reference: wait for that. */
		while (in->waiters != NULL) {
			struct waiter *w = in->waiters;
			pkg_unlink_waiter(w);
			w->in = other;
			w->next = other->waiters;
			if (other->waiters != NULL)
				other->waiters->prev = w;
			other->waiters = w;
		}
		pkg_install_free(in);
		return;
	}
	if (m->closing) {
		pkg_install_failed(in, -ECANCELED, "the node is stopping");
		return;
	}
	in->state = I_FETCH;
	in->started_ms = bd_clock_now_ms();
	m->seq++;
	in->tmp_dir = xasprintf("%s/" PKG_INSTALL_PREFIX "%ld-%08x-%" PRIu64,
	    m->apps_dir, (long)getpid(), m->token, m->seq);
	in->tmp_archive = xasprintf("%s.archive", in->tmp_dir);
	in->marker = xasprintf("%s.unsynced", in->tmp_dir);
	log_info("app_package: application package '%s' version '%s': "
	    "fetching %s (%" PRId64 " bytes) from the store %s",
	    obj->application_id, obj->version, obj->name, obj->size,
	    bd_app_store_describe(m->store));
	if ((rc = bd_app_store_fetch(m->store, obj, in->tmp_archive,
	    pkg_on_fetched, in, &in->sop)) < 0) {
		char *why = xasprintf("cannot fetch %s: %s", obj->name,
		    bd_strerror(rc));
		pkg_install_failed(in, rc, why);
		free(why);
	}
}

/*
 * Stops in (may be NULL) when no request waits for it any more: the store
 * operation is cancelled, the unpack stops at its next entry, and the
 * callbacks that follow free it.  New requests start their own install.
 */
static void
pkg_install_abandon(struct install *in)
{
	if (in == NULL || in->waiters != NULL || in->cancelled)
		return;
	in->cancelled = true;
	atomic_store(&in->stop, true);
	if (in->sop != NULL)
		bd_app_store_cancel(in->sop);
}

/* The install of reference (app, version) in flight, or NULL. */
static struct install *
pkg_find_install(struct bd_app_packages *m, const char *app,
    const char *version)
{
	for (struct install *in = m->installs; in != NULL; in = in->next) {
		if (in->cancelled || strcasecmp(in->app_ref, app) != 0)
			continue;
		if (version == NULL ? in->version_ref == NULL :
		    in->version_ref != NULL &&
		    strcasecmp(in->version_ref, version) == 0)
			return in;
	}
	return NULL;
}

/* A new install of one reference, resolving. */
static struct install *
pkg_install_new(struct bd_app_packages *m, const char *app,
    const char *version)
{
	struct install *in = xcalloc(1, sizeof(*in));
	int rc;

	in->m = m;
	in->hold_fd = -1;
	in->app_ref = xstrdup(app);
	in->version_ref = version != NULL ? xstrdup(version) : NULL;
	/* Until the scan has removed what a power cut may have torn. */
	if (!m->scanned)
		in->waiting_scan = true;
	else if ((rc = bd_app_store_resolve(m->store, app, version,
	    pkg_on_resolved, in, &in->sop)) < 0) {
		free(in->app_ref);
		free(in->version_ref);
		free(in);
		return NULL;
	}
	in->next = m->installs;
	m->installs = in;
	m->busy++;
	return in;
}

int
bd_app_packages_acquire(struct bd_app_packages *m,
    const struct bd_application_package_reference *refs, size_t n,
    bd_app_request_cb cb, void *arg, struct bd_app_request **out)
{
	struct bd_app_request *req;

	if (n == 0 || m->closing)
		return -EINVAL;
	req = xcalloc(1, sizeof(*req));
	req->m = m;
	req->cb = cb;
	req->arg = arg;
	req->n = req->pending = n;
	req->pkgs = xcalloc(n, sizeof(*req->pkgs));
	req->names = xcalloc(n, sizeof(char *));
	req->ids = xcalloc(n, sizeof(char *));
	req->versions = xcalloc(n, sizeof(char *));
	req->dirs = xcalloc(n, sizeof(char *));
	req->store_ids = xcalloc(n, sizeof(char *));
	req->store_versions = xcalloc(n, sizeof(char *));
	req->fds = xcalloc(n, sizeof(int));
	for (size_t i = 0; i < n; i++)
		req->fds[i] = -1;
	req->w = xcalloc(n, sizeof(*req->w));
	m->busy++;
	for (size_t i = 0; i < n; i++) {
		const struct bd_application_package_reference *r = &refs[i];
		struct install *in = pkg_find_install(m, r->application_id,
		    r->version);
		struct waiter *w = &req->w[i];

		req->ids[i] = xstrdup(r->application_id);
		req->versions[i] = r->version != NULL ? xstrdup(r->version) :
		    NULL;
		req->pkgs[i].application_id = req->ids[i];
		req->pkgs[i].default_version = r->version == NULL;
		if (in == NULL &&
		    (in = pkg_install_new(m, r->application_id,
		    r->version)) == NULL) {
			bd_app_request_free(req);
			return -ENOMEM;
		}
		w->req = req;
		w->index = i;
		w->in = in;
		w->next = in->waiters;
		if (in->waiters != NULL)
			in->waiters->prev = w;
		in->waiters = w;
	}
	*out = req;
	return 0;
}

/* Resolves the installs that waited for the start-up scan. */
static void
pkg_resolve_waiting(struct bd_app_packages *m)
{
	struct install *in;
	int rc;

	m->busy++;	/* a failure may free the last install */
	for (;;) {
		for (in = m->installs; in != NULL && !in->waiting_scan;
		    in = in->next)
			;
		if (in == NULL)
			break;
		in->waiting_scan = false;
		if (m->closing || in->cancelled)
			pkg_install_failed(in, -ECANCELED, m->closing ?
			    "the node is stopping" : "cancelled");
		else if ((rc = bd_app_store_resolve(m->store, in->app_ref,
		    in->version_ref, pkg_on_resolved, in, &in->sop)) < 0) {
			char *why = xasprintf("cannot ask the store %s: %s",
			    bd_app_store_describe(m->store), bd_strerror(rc));
			pkg_install_failed(in, rc, why);
			free(why);
		}
	}
	m->busy--;
}

/* ---- removal ------------------------------------------------------------- */

struct removal {
	struct bd_app_packages *m;
	char *path;
	uv_work_t work;
};

static void
pkg_remove_work(uv_work_t *w)
{
	struct removal *r = w->data;

	(void)bd_rm_rf(r->path);
}

static void
pkg_on_removed(uv_work_t *w, int status)
{
	struct removal *r = w->data;
	struct bd_app_packages *m = r->m;

	free(r->path);
	free(r);
	m->busy--;
	pkg_maybe_free(m);
}

static int
pkg_cmp_last_used(const void *a, const void *b)
{
	const struct pkg_dir *x = a, *y = b;

	return x->last_used_ms < y->last_used_ms ? -1 :
	    x->last_used_ms > y->last_used_ms;
}

/*
 * Removes packages no request holds, least recently used first, until the
 * directory is within its limit.  The rename takes a package out of sight
 * at once; the worker removes the tree.
 */
static void
pkg_gc(struct bd_app_packages *m)
{
	if (m->cache_max == 0 || m->stats.bytes <= m->cache_max ||
	    !m->scanned || m->handing_out > 0)
		return;
	qsort(m->dirs, m->n_dirs, sizeof(*m->dirs), pkg_cmp_last_used);
	for (size_t i = 0; i < m->n_dirs && m->stats.bytes > m->cache_max;) {
		struct pkg_dir *d = &m->dirs[i];
		char *from, *to;
		struct removal *r;
		int fd;

		if (d->users > 0) {
			i++;
			continue;
		}
		from = bd_path_join(m->apps_dir, d->name);
		fd = open(from, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
		if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0) {
			/* A task of another batchd on this node root, or one
			 * adopted after a restart, still uses it. */
			log_debug("app_package: keeping %s: in use by a task "
			    "that another process holds", from);
			close(fd);
			free(from);
			i++;
			continue;
		}
		m->seq++;
		to = xasprintf("%s/" PKG_REMOVE_PREFIX "%ld-%08x-%" PRIu64,
		    m->apps_dir, (long)getpid(), m->token, m->seq);
		if (rename(from, to) < 0 && errno != ENOENT) {
			log_warn("app_package: cannot remove %s", from);
			if (fd >= 0)
				close(fd);
			free(from);
			free(to);
			i++;
			continue;
		}
		if (fd >= 0)
			close(fd);
		log_info("app_package: removing %s (%" PRIu64 " bytes, least "
		    "recently used) to stay under %" PRIu64 " bytes", from,
		    d->bytes, m->cache_max);
		free(from);
		m->stats.removed++;
		/* Keep the order: move the tail down rather than swap. */
		m->stats.bytes -= d->bytes;
		free(d->name);
		memmove(d, d + 1, (m->n_dirs - i - 1) * sizeof(*d));
		m->n_dirs--;
		r = xcalloc(1, sizeof(*r));
		r->m = m;
		r->path = to;
		r->work.data = r;
		m->busy++;
		if (uv_queue_work(m->loop, &r->work, pkg_remove_work,
		    pkg_on_removed) < 0) {
			m->busy--;
			free(r->path);
			free(r);
		}
	}
}

/* ---- the start-up scan ---------------------------------------------------- */

struct scan {
	struct bd_app_packages *m;
	unsigned token;
	char boot_id[64];
	uint64_t synced;	/* packages of this boot made durable */
	uint64_t torn;		/* packages of an earlier boot removed */
	char *apps_dir;
	struct pkg_dir *found;
	size_t n_found;
	uint64_t cleaned;
	uv_work_t work;
};

/* Bytes of regular files under the directory fd (closed); no symlinks. */
static uint64_t
pkg_du(int fd, int depth)
{
	DIR *d = fdopendir(fd);
	struct dirent *e;
	struct stat st;
	uint64_t total = 0;

	if (d == NULL) {
		close(fd);
		return 0;
	}
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISREG(st.st_mode))
			total += (uint64_t)st.st_size;
		else if (S_ISDIR(st.st_mode) && depth < 256) {
			int sub = openat(dirfd(d), e->d_name, O_RDONLY |
			    O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub >= 0)
				total += pkg_du(sub, depth + 1);
		}
	}
	closedir(d);
	return total;
}

/*
 * Whether a temporary's name (.install-<pid>-<token>-<n>) says its process
 * is gone: no such pid, or our pid with another token (a process before
 * us, in a container where pids repeat).
 */
static bool
pkg_temp_orphaned(const char *name, unsigned token)
{
	const char *p = name;
	char *end;
	long pid;

	if (strncmp(p, PKG_INSTALL_PREFIX, strlen(PKG_INSTALL_PREFIX)) == 0)
		p += strlen(PKG_INSTALL_PREFIX);
	else if (strncmp(p, PKG_REMOVE_PREFIX, strlen(PKG_REMOVE_PREFIX)) == 0)
		p += strlen(PKG_REMOVE_PREFIX);
	else
		return false;
	pid = strtol(p, &end, 10);
	if (pid <= 0 || *end != '-')
		return true;
	if (pid == (long)getpid())
		return strtoul(end + 1, NULL, 16) != token;
	return kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

/*
 * The .unsynced markers of installs whose process is gone (see the top of
 * the file): a package of this boot is synced, one of an earlier boot is
 * removed; then the markers go.
 */
static void
pkg_scan_markers(struct scan *s, DIR *d)
{
	static const char suffix[] = ".unsynced";
	char **keep = NULL;
	struct dirent *e;
	struct stat st;
	size_t n = 0;
	int fd;

	while ((e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name), tlen;
		char *path, *text = NULL, *name, *pkg;

		if (len < sizeof(suffix) || strcmp(e->d_name + len -
		    (sizeof(suffix) - 1), suffix) != 0 ||
		    !pkg_temp_orphaned(e->d_name, s->token))
			continue;
		path = bd_path_join(s->apps_dir, e->d_name);
		if (bd_read_file(path, 512, &text, &tlen) == 0 &&
		    (name = strchr(text, '\n')) != NULL) {
			*name++ = '\0';
			name[strcspn(name, "\n")] = '\0';
			pkg = bd_path_join(s->apps_dir, name);
			if (name[0] == '\0' || name[0] == '.' ||
			    strchr(name, '/') != NULL ||
			    lstat(pkg, &st) < 0) {
				/* Never renamed into place: only the marker. */
			} else if (strcmp(text, s->boot_id) == 0) {
				keep = xreallocarray(keep, n + 1,
				    sizeof(*keep));
				keep[n++] = path;
				path = NULL;
			} else if (bd_rm_rf(pkg) == 0)
				s->torn++;
			free(pkg);
		}
		if (path != NULL)
			(void)unlink(path);
		free(path);
		free(text);
	}
	if (n > 0 && (fd = open(s->apps_dir, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) >= 0) {
		if (syncfs(fd) == 0) {
			for (size_t i = 0; i < n; i++)
				if (unlink(keep[i]) == 0)
					s->synced++;
			(void)fsync(fd);
		}
		close(fd);
	}
	for (size_t i = 0; i < n; i++)
		free(keep[i]);
	free(keep);
	rewinddir(d);
}

static void
pkg_scan_work(uv_work_t *w)
{
	struct scan *s = w->data;
	DIR *d = opendir(s->apps_dir);
	struct dirent *e;
	struct stat st;

	if (d == NULL)
		return;
	pkg_scan_markers(s, d);
	while ((e = readdir(d)) != NULL) {
		char *path;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		path = bd_path_join(s->apps_dir, e->d_name);
		if (e->d_name[0] == '.') {
			if (pkg_temp_orphaned(e->d_name, s->token) &&
			    bd_rm_rf(path) == 0)
				s->cleaned++;
		} else if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
			int fd = open(path, O_RDONLY | O_DIRECTORY |
			    O_NOFOLLOW | O_CLOEXEC);
			s->found = xreallocarray(s->found, s->n_found + 1,
			    sizeof(*s->found));
			s->found[s->n_found].name = xstrdup(e->d_name);
			s->found[s->n_found].bytes = fd >= 0 ? pkg_du(fd, 0) : 0;
			s->found[s->n_found].last_used_ms =
			    (int64_t)st.st_mtim.tv_sec * 1000 +
			    st.st_mtim.tv_nsec / 1000000;
			s->n_found++;
		}
		free(path);
	}
	closedir(d);
}

static void
pkg_on_scanned(uv_work_t *w, int status)
{
	struct scan *s = w->data;
	struct bd_app_packages *m = s->m;

	if (s->cleaned > 0)
		log_info("app_package: removed %" PRIu64 " leftover%s of "
		    "interrupted installs in %s", s->cleaned,
		    s->cleaned == 1 ? "" : "s", m->apps_dir);
	if (s->torn > 0)
		log_warnx("app_package: removed %" PRIu64 " package%s in %s "
		    "that a reboot may have torn (installed but not yet on "
		    "disk when the node went down)", s->torn,
		    s->torn == 1 ? "" : "s", m->apps_dir);
	if (s->synced > 0)
		log_info("app_package: wrote to disk %" PRIu64 " package%s "
		    "that an earlier batchd installed but did not sync",
		    s->synced, s->synced == 1 ? "" : "s");
	for (size_t i = 0; i < s->n_found; i++) {
		struct pkg_dir *d = pkg_find_dir(m, s->found[i].name);
		if (d == NULL)
			pkg_add_dir(m, s->found[i].name, s->found[i].bytes,
			    s->found[i].last_used_ms);
		else if (d->bytes == 0) {
			d->bytes = s->found[i].bytes;
			m->stats.bytes += d->bytes;
		}
		free(s->found[i].name);
	}
	free(s->found);
	free(s->apps_dir);
	free(s);
	m->scanned = true;
	m->busy--;
	pkg_resolve_waiting(m);
	if (!m->closing)
		pkg_gc(m);
	pkg_maybe_free(m);
}

/* ---- life ------------------------------------------------------------------ */

struct bd_app_packages *
bd_app_packages_new(const struct bd_app_packages_options *o)
{
	struct bd_app_packages *m = xcalloc(1, sizeof(*m));
	struct scan *s;

	m->loop = o->loop;
	m->store = o->store;
	m->apps_dir = bd_path_join(o->node_root, "applications");
	m->limits = o->limits;
	/* Every task user reads the packages batchd (root) unpacked. */
	m->limits.readable_by_all = true;
	m->cache_max = o->cache_max_bytes;
	m->token = (unsigned)(uv_hrtime() ^ ((uint64_t)getpid() << 20)) |
	    1u;
	bd_clock_boot_id(m->boot_id, sizeof(m->boot_id));
	(void)bd_mkdir_p(m->apps_dir, 0755);

	s = xcalloc(1, sizeof(*s));
	s->m = m;
	s->token = m->token;
	memcpy(s->boot_id, m->boot_id, sizeof(s->boot_id));
	s->apps_dir = xstrdup(m->apps_dir);
	s->work.data = s;
	m->busy++;
	if (uv_queue_work(m->loop, &s->work, pkg_scan_work,
	    pkg_on_scanned) < 0) {
		m->busy--;
		free(s->apps_dir);
		free(s);
		m->scanned = true;
	}
	return m;
}

int
bd_app_packages_from_config(uv_loop_t *loop, struct bd_http *http,
    const struct bd_config *c, const char *node_root,
    struct bd_app_packages **out, char **cause)
{
	struct bd_app_packages_options o = {
		.loop = loop,
		.node_root = node_root,
		.limits = {
			.max_bytes = (uint64_t)c->application_package_max_bytes,
			.max_entries =
			    (uint64_t)c->application_package_max_entries,
		},
		.cache_max_bytes = (uint64_t)c->application_cache_max_bytes,
	};
	int rc;

	if (c->application_store.container != NULL) {
		const struct bd_storage_account *a =
		    bd_config_storage_account(c, BD_STORAGE_BLOB);
		if (a == NULL || http == NULL) {
			*cause = xstrdup("applicationStore.container needs "
			    "the storage account's blob service");
			return BD_EINVALID;
		}
		if ((rc = bd_app_store_blob_new(loop, http, a,
		    c->application_store.container, &o.store, cause)) < 0)
			return rc;
	} else if (c->application_store.directory != NULL)
		o.store = bd_app_store_local_new(loop,
		    c->application_store.directory);
	else {
		*cause = xstrdup("no applicationStore is configured");
		return BD_EINVALID;
	}
	*out = bd_app_packages_new(&o);
	return 0;
}

void
bd_app_packages_set_pool(struct bd_app_packages *m,
    struct bd_app_request *req)
{
	bd_app_request_free(m->pool);
	m->pool = req;
}

const struct bd_app_package *
bd_app_packages_pool(const struct bd_app_packages *m, size_t *n)
{
	if (m == NULL || m->pool == NULL) {
		*n = 0;
		return NULL;
	}
	return bd_app_request_packages(m->pool, n);
}

/* The variables of one package, in the store's and the reference's words. */
static void
pkg_add_vars(struct bd_env *env, const struct bd_app_package *p)
{
	bd_env_add_app_package(env, p->store_application_id, p->store_version,
	    p->dir, p->default_version);
	bd_env_add_app_package(env, p->application_id, p->version, p->dir,
	    p->default_version);
}

void
bd_app_packages_add_env(const struct bd_app_packages *m,
    const struct bd_app_request *req, struct bd_env *env)
{
	const struct bd_app_package *p;
	size_t n = 0;

	if (req != NULL) {
		p = bd_app_request_packages(req, &n);
		for (size_t i = 0; i < n; i++)
			pkg_add_vars(env, &p[i]);
	}
	p = bd_app_packages_pool(m, &n);
	for (size_t i = 0; i < n; i++)
		pkg_add_vars(env, &p[i]);
}

size_t
bd_app_packages_hold_fds(const struct bd_app_packages *m,
    const struct bd_app_request *req, int *fds, size_t max)
{
	const struct bd_app_request *reqs[2] = { req,
	    m != NULL ? m->pool : NULL };
	size_t n = 0;

	for (int k = 0; k < 2; k++) {
		const struct bd_app_request *q = reqs[k];

		if (q == NULL || !q->answered || q->status != 0)
			continue;
		for (size_t i = 0; i < q->n; i++) {
			if (q->fds[i] < 0)
				continue;
			if (n < max)
				fds[n] = q->fds[i];
			n++;
		}
	}
	return n;
}

void
bd_app_packages_stats(const struct bd_app_packages *m,
    struct bd_app_packages_stats *out)
{
	*out = m->stats;
}

static void
pkg_maybe_free(struct bd_app_packages *m)
{
	if (!m->closing || m->busy > 0)
		return;
	for (size_t i = 0; i < m->n_dirs; i++)
		free(m->dirs[i].name);
	free(m->dirs);
	bd_app_store_free(m->store);
	free(m->apps_dir);
	free(m);
}

void
bd_app_packages_close(struct bd_app_packages *m)
{
	struct bd_app_request *pool;

	if (m == NULL || m->closing)
		return;
	m->closing = true;
	m->busy++;	/* until the end of this function */
	pool = m->pool;
	m->pool = NULL;
	bd_app_request_free(pool);
	for (struct install *in = m->installs; in != NULL; in = in->next) {
		atomic_store(&in->stop, true);
		if (in->sop != NULL)
			bd_app_store_cancel(in->sop);
	}
	m->busy--;
	pkg_maybe_free(m);
}
