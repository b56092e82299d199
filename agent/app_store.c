/* SPDX-License-Identifier: MIT */
/*
 * The application store (see app_store.h).  Both backends answer the same
 * two questions, "which object is this reference?" and "where is its
 * archive?", and share the rule that picks an object from the names of an
 * application's directory (bd_app_store_pick()).
 *
 * The local backend does its directory reads and stats in uv_queue_work,
 * so that a store on a slow or network file system never stalls the loop;
 * it fetches nothing: the archive is the store's own file.  The blob
 * backend resolves with one listing of "<applicationId>/" (a second one of
 * the container's top level when the id's case differs from the store's)
 * and, for a default version, a download of the small "default" blob; it
 * fetches with the blob client's download (HEAD, then GETs pinned to one
 * ETag).
 *
 * An operation owns everything it made; it is freed after its callback.
 */
#include "app_store.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blob.h"
#include "error.h"
#include "fsutil.h"
#include "xmalloc.h"

/* The formats, in the order one is picked when several exist. */
static const char *const store_exts[] = {
	".zip", ".tar.gz", ".tar.xz", ".tar.zst",
};
#define STORE_N_EXTS (sizeof(store_exts) / sizeof(store_exts[0]))

/* The default version's object, and the most of it that is read. */
#define STORE_DEFAULT "default"
#define STORE_DEFAULT_MAX 256

struct bd_app_store {
	uv_loop_t *loop;
	char *desc;
	char *dir;				/* local */
	struct bd_blob_container *c;		/* blob */
};

enum store_step { ST_LIST_APP, ST_LIST_TOP, ST_DEFAULT, ST_FETCH };

struct bd_app_store_op {
	struct bd_app_store *s;
	bool fetch;
	enum store_step step;
	bd_app_store_resolve_cb resolve_cb;
	bd_app_store_fetch_cb fetch_cb;
	void *arg;
	bool cancelled;

	char *app_ref, *version_ref;	/* as asked */
	char *app;			/* as the store spells it */
	struct bd_xml_list *list;	/* the application's directory */
	int fd;
	struct bd_blob_op *bop;
	uv_work_t work;

	int status;
	char *detail;
	struct bd_app_object *obj;	/* resolve: the answer */
	char *archive, *etag;		/* fetch: the answer */
};

void
bd_app_object_free(struct bd_app_object *o)
{
	if (o == NULL)
		return;
	free(o->application_id);
	free(o->version);
	free(o->name);
	free(o->etag);
	free(o);
}

const char *
bd_app_store_describe(const struct bd_app_store *s)
{
	return s->desc;
}

/* Whether s is usable as a version: 1-64 of [A-Za-z0-9_.-]. */
static bool
store_version_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64)
		return false;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' &&
		    *s != '.')
			return false;
	return true;
}

/* The length of the version in name when it ends in ext, else 0. */
static size_t
store_name_version(const char *name, const char *ext)
{
	size_t n = strlen(name), e = strlen(ext);

	if (n <= e || strcasecmp(name + n - e, ext) != 0)
		return 0;
	return n - e;
}

int
bd_app_store_pick(const char *const *names, size_t n, const char *version,
    const char *def, char **cause)
{
	size_t i, j, vlen, shown = 0;
	char *have = xstrdup("");

	if (version == NULL) {
		if (def == NULL) {
			*cause = xasprintf("the application has no default "
			    "version (no %s object); name a version",
			    STORE_DEFAULT);
			free(have);
			return -1;
		}
		if (!store_version_valid(def)) {
			*cause = xasprintf("its %s object does not hold a "
			    "version (1 to 64 letters, digits, _, - and .)",
			    STORE_DEFAULT);
			free(have);
			return -1;
		}
		version = def;
	}
	vlen = strlen(version);
	for (j = 0; j < STORE_N_EXTS; j++) {
		for (i = 0; i < n; i++) {
			if (store_name_version(names[i], store_exts[j]) ==
			    vlen && strncasecmp(names[i], version, vlen) == 0) {
				free(have);
				return (int)i;
			}
		}
	}
	/* Say which versions there are: the likely mistake is a typo. */
	for (i = 0; i < n && shown < 10; i++) {
		for (j = 0; j < STORE_N_EXTS; j++) {
			size_t l = store_name_version(names[i], store_exts[j]);
			if (l == 0)
				continue;
			char *t = xasprintf("%s%s%.*s", have, shown ? ", " : "",
			    (int)l, names[i]);
			free(have);
			have = t;
			shown++;
			break;
		}
	}
	*cause = xasprintf("version %s%s is not in the store (looked for "
	    "%s.zip, .tar.gz, .tar.xz and .tar.zst); %s%s", version,
	    def != NULL && version == def ? " (the default)" : "", version,
	    shown ? "versions there: " : "the application has no versions",
	    have);
	free(have);
	return -1;
}

/* The store's description, for messages. */
static const char *
store_desc(const struct bd_app_store_op *op)
{
	return op->s->desc;
}

/* Strips white space around the default's text, in place. */
static char *
store_trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/*
 * Picks from the application's directory listing (names relative to it)
 * and fills op->obj, or op->status and op->detail.
 */
static void
store_pick_into(struct bd_app_store_op *op, const char *def)
{
	struct bd_xml_list *l = op->list;
	const char **names = xcalloc(l->n_blobs + 1, sizeof(*names));
	char *cause = NULL;
	int i;

	for (size_t k = 0; k < l->n_blobs; k++)
		names[k] = l->blobs[k].name;
	i = bd_app_store_pick(names, l->n_blobs, op->version_ref, def, &cause);
	free(names);
	if (i < 0) {
		op->status = op->version_ref == NULL && def != NULL &&
		    !store_version_valid(def) ? BD_EINVALID : BD_ENOTFOUND;
		op->detail = xasprintf("%s (store: %s)", cause, store_desc(op));
		free(cause);
		return;
	}
	struct bd_app_object *o = xcalloc(1, sizeof(*o));
	const char *nm = l->blobs[i].name;
	size_t vlen = 0;

	for (size_t j = 0; j < STORE_N_EXTS && vlen == 0; j++)
		vlen = store_name_version(nm, store_exts[j]);
	o->application_id = xstrdup(op->app);
	o->version = xasprintf("%.*s", (int)vlen, nm);
	o->name = xasprintf("%s/%s", op->app, nm);
	o->etag = xstrdup(l->blobs[i].etag != NULL ? l->blobs[i].etag : "");
	o->size = l->blobs[i].size;
	o->default_version = op->version_ref == NULL;
	op->obj = o;
}

/* Adds one name (with its ETag and size) to a listing. */
static void
store_list_add(struct bd_xml_list *l, const char *name, const char *etag,
    int64_t size)
{
	struct bd_xml_blob *b;

	l->blobs = xreallocarray(l->blobs, l->n_blobs + 1, sizeof(*l->blobs));
	b = &l->blobs[l->n_blobs++];
	memset(b, 0, sizeof(*b));
	b->name = xstrdup(name);
	b->etag = etag != NULL ? xstrdup(etag) : NULL;
	b->size = size;
}

/* ---- delivery ----------------------------------------------------------- */

static void
store_op_free(struct bd_app_store_op *op)
{
	free(op->app_ref);
	free(op->version_ref);
	free(op->app);
	if (op->list != NULL)
		bd_xml_list_free(op->list);
	if (op->fd >= 0)
		close(op->fd);
	free(op->detail);
	bd_app_object_free(op->obj);
	free(op->archive);
	free(op->etag);
	free(op);
}

/* Runs the callback with what op holds, then frees op. */
static void
store_deliver(struct bd_app_store_op *op)
{
	if (op->cancelled && op->status == 0 && op->obj == NULL &&
	    op->archive == NULL)
		op->status = -ECANCELED;
	if (op->fetch)
		op->fetch_cb(op->arg, op->status, op->status == 0 ?
		    op->archive : NULL, op->status == 0 ? op->etag : NULL,
		    op->detail);
	else {
		struct bd_app_object *o = op->status == 0 ? op->obj : NULL;
		if (o != NULL)
			op->obj = NULL;
		op->resolve_cb(op->arg, op->status, o, op->detail);
	}
	store_op_free(op);
}

static struct bd_app_store_op *
store_op_new(struct bd_app_store *s, struct bd_app_store_op **out)
{
	struct bd_app_store_op *op = xcalloc(1, sizeof(*op));

	op->s = s;
	op->fd = -1;
	op->work.data = op;
	if (out != NULL)
		*out = op;
	return op;
}

void
bd_app_store_cancel(struct bd_app_store_op *op)
{
	op->cancelled = true;
	if (op->bop != NULL)
		bd_blob_cancel(op->bop);
}

/* ---- local directory ------------------------------------------------------ */

/* An ETag of a local file: it changes when the file is written or replaced. */
static char *
store_local_etag(const struct stat *st)
{
	return xasprintf("\"%" PRIx64 ".%09ld-%" PRIx64 "-%" PRIx64 "\"",
	    (uint64_t)st->st_mtim.tv_sec, (long)st->st_mtim.tv_nsec,
	    (uint64_t)st->st_size, (uint64_t)st->st_ino);
}

/* Finds entry name in dir, same case first, else any case; caller frees. */
static char *
store_local_find(const char *dir, const char *name, int *err)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char *found = NULL;

	if (d == NULL) {
		*err = -errno;
		return NULL;
	}
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, name) == 0) {
			free(found);
			found = xstrdup(e->d_name);
			break;
		}
		if (found == NULL && strcasecmp(e->d_name, name) == 0)
			found = xstrdup(e->d_name);
	}
	closedir(d);
	*err = found != NULL ? 0 : BD_ENOTFOUND;
	return found;
}

static void
store_local_resolve_work(uv_work_t *w)
{
	struct bd_app_store_op *op = w->data;
	struct bd_app_store *s = op->s;
	char *adir, *path, *def = NULL;
	struct dirent *e;
	struct stat st;
	DIR *d;
	int err;

	op->app = store_local_find(s->dir, op->app_ref, &err);
	if (op->app == NULL) {
		op->status = err;
		op->detail = err == BD_ENOTFOUND ? xasprintf("the application "
		    "is not in the store (no directory %s/%s)", s->dir,
		    op->app_ref) : xasprintf("cannot read the store %s: %s",
		    s->dir, strerror(-err));
		return;
	}
	adir = bd_path_join(s->dir, op->app);
	op->list = xcalloc(1, sizeof(*op->list));
	if ((d = opendir(adir)) == NULL) {
		op->status = -errno;
		op->detail = xasprintf("cannot read %s: %s", adir,
		    strerror(errno));
		free(adir);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		path = bd_path_join(adir, e->d_name);
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			char *etag = store_local_etag(&st);
			if (strcasecmp(e->d_name, STORE_DEFAULT) == 0) {
				size_t len;
				char *text = NULL;
				if (op->version_ref == NULL &&
				    st.st_size <= STORE_DEFAULT_MAX &&
				    bd_read_file(path, STORE_DEFAULT_MAX,
				    &text, &len) == 0) {
					free(def);
					def = xstrdup(store_trim(text));
				} else if (op->version_ref == NULL &&
				    def == NULL)
					def = xstrdup("");
				free(text);
			} else
				store_list_add(op->list, e->d_name, etag,
				    (int64_t)st.st_size);
			free(etag);
		}
		free(path);
	}
	closedir(d);
	free(adir);
	store_pick_into(op, def);
	free(def);
}

static void
store_after_work(uv_work_t *w, int status)
{
	store_deliver(w->data);
}

/* For a failure found on the loop: delivered through the thread pool. */
static void
store_noop_work(uv_work_t *w)
{
}

static void
store_local_fetch_work(uv_work_t *w)
{
	struct bd_app_store_op *op = w->data;
	struct stat st;

	if (stat(op->archive, &st) < 0) {
		op->status = errno == ENOENT ? BD_ENOTFOUND : -errno;
		op->detail = xasprintf("cannot read %s: %s", op->archive,
		    strerror(errno));
		return;
	}
	op->etag = store_local_etag(&st);
}

struct bd_app_store *
bd_app_store_local_new(uv_loop_t *loop, const char *dir)
{
	struct bd_app_store *s = xcalloc(1, sizeof(*s));

	s->loop = loop;
	s->dir = xstrdup(dir);
	s->desc = xasprintf("directory %s", dir);
	return s;
}

/* ---- blob container -------------------------------------------------------- */

static void store_blob_step(struct bd_app_store_op *op);

/* Keeps a blob failure's status and text (already redacted). */
static void
store_blob_failed(struct bd_app_store_op *op, const struct bd_blob_result *r,
    const char *what)
{
	op->status = r->status;
	if (r->detail != NULL)
		op->detail = xstrdup(r->detail);
	else
		op->detail = xasprintf("%s (%s): %s", what, store_desc(op),
		    bd_strerror(r->status));
}

static void
store_blob_on_default(struct bd_blob_op *bop, const struct bd_blob_result *r,
    void *arg)
{
	struct bd_app_store_op *op = arg;
	char buf[STORE_DEFAULT_MAX + 1];
	ssize_t n;

	op->bop = NULL;
	if (r->status < 0) {
		store_blob_failed(op, r, "cannot read the default version");
		store_deliver(op);
		return;
	}
	n = pread(op->fd, buf, STORE_DEFAULT_MAX, 0);
	buf[n > 0 ? n : 0] = '\0';
	store_pick_into(op, store_trim(buf));
	store_deliver(op);
}

static void
store_blob_on_list(struct bd_blob_op *bop, const struct bd_blob_result *r,
    void *arg)
{
	struct bd_app_store_op *op = arg;
	struct bd_xml_list *l;

	op->bop = NULL;
	if (r->status < 0) {
		store_blob_failed(op, r, "cannot list the store");
		store_deliver(op);
		return;
	}
	l = bd_blob_take_list(bop);
	if (op->step == ST_LIST_TOP) {
		/* The application's own spelling, found without case. */
		size_t n = strlen(op->app_ref);
		for (size_t i = 0; i < l->n_prefixes && op->app == NULL; i++)
			if (strncasecmp(l->prefixes[i], op->app_ref, n) == 0 &&
			    strcmp(l->prefixes[i] + n, "/") == 0)
				op->app = xstrndup(l->prefixes[i], n);
		bd_xml_list_free(l);
		if (op->app == NULL) {
			op->status = BD_ENOTFOUND;
			op->detail = xasprintf("the application is not in the "
			    "store %s (no blobs named %s/...)", store_desc(op),
			    op->app_ref);
			store_deliver(op);
			return;
		}
		op->step = ST_LIST_APP;
		store_blob_step(op);
		return;
	}
	/* ST_LIST_APP: the names inside the application's "directory". */
	if (l->n_blobs == 0 && op->app == NULL) {
		bd_xml_list_free(l);
		op->step = ST_LIST_TOP;
		store_blob_step(op);
		return;
	}
	if (op->app == NULL)
		op->app = xstrdup(op->app_ref);
	op->list = xcalloc(1, sizeof(*op->list));
	size_t plen = strlen(op->app) + 1;
	bool has_default = false;
	int64_t def_size = 0;
	for (size_t i = 0; i < l->n_blobs; i++) {
		const char *rel = l->blobs[i].name + plen;
		if (strlen(l->blobs[i].name) <= plen || strchr(rel, '/') != NULL)
			continue;
		if (strcasecmp(rel, STORE_DEFAULT) == 0) {
			has_default = true;
			def_size = l->blobs[i].size;
			free(op->app);
			op->app = xstrndup(l->blobs[i].name, plen - 1);
			continue;
		}
		store_list_add(op->list, rel, l->blobs[i].etag,
		    l->blobs[i].size);
	}
	bd_xml_list_free(l);
	if (op->version_ref != NULL || !has_default) {
		store_pick_into(op, NULL);
		store_deliver(op);
		return;
	}
	if (def_size > STORE_DEFAULT_MAX) {
		store_pick_into(op, "");
		store_deliver(op);
		return;
	}
	op->step = ST_DEFAULT;
	store_blob_step(op);
}

/* Starts the request of op's step; delivers the failure to start. */
static void
store_blob_step(struct bd_app_store_op *op)
{
	struct bd_app_store *s = op->s;
	char *prefix, *name;
	int rc = 0;

	if (op->cancelled) {
		store_deliver(op);
		return;
	}
	switch (op->step) {
	case ST_LIST_APP:
		prefix = xasprintf("%s/", op->app != NULL ? op->app :
		    op->app_ref);
		rc = bd_blob_list_start(s->c, prefix, NULL, store_blob_on_list,
		    op, &op->bop);
		free(prefix);
		break;
	case ST_LIST_TOP:
		rc = bd_blob_list_start(s->c, NULL, "/", store_blob_on_list,
		    op, &op->bop);
		break;
	case ST_DEFAULT:
		if ((op->fd = memfd_create("batchd-app-default",
		    MFD_CLOEXEC)) < 0) {
			rc = -errno;
			break;
		}
		name = xasprintf("%s/%s", op->app, STORE_DEFAULT);
		rc = bd_blob_get_start(s->c, name, op->fd, NULL,
		    store_blob_on_default, op, &op->bop);
		free(name);
		break;
	case ST_FETCH:
		break;
	}
	if (rc < 0) {
		op->status = rc;
		op->detail = xasprintf("cannot ask the store %s: %s",
		    store_desc(op), bd_strerror(rc));
		/* Deferred, so that the callback never runs in the caller. */
		uv_queue_work(s->loop, &op->work, store_noop_work,
		    store_after_work);
	}
}

static void
store_blob_on_fetched(struct bd_blob_op *bop, const struct bd_blob_result *r,
    void *arg)
{
	struct bd_app_store_op *op = arg;

	op->bop = NULL;
	close(op->fd);
	op->fd = -1;
	if (r->status < 0)
		store_blob_failed(op, r, "cannot download the package");
	else
		op->etag = xstrdup(r->props != NULL && r->props->etag != NULL ?
		    r->props->etag : "");
	store_deliver(op);
}

int
bd_app_store_blob_new(uv_loop_t *loop, struct bd_http *http,
    const struct bd_storage_account *account, const char *container,
    struct bd_app_store **out, char **cause)
{
	struct bd_app_store *s = xcalloc(1, sizeof(*s));
	int rc;

	s->loop = loop;
	if ((rc = bd_blob_container_from_account(loop, http, account,
	    container, NULL, &s->c, cause)) < 0) {
		free(s);
		return rc;
	}
	char *url = bd_blob_url(s->c, NULL);
	s->desc = xasprintf("container %s", url);
	free(url);
	*out = s;
	return 0;
}

/* ---- operations ------------------------------------------------------------ */

int
bd_app_store_resolve(struct bd_app_store *s, const char *application_id,
    const char *version, bd_app_store_resolve_cb cb, void *arg,
    struct bd_app_store_op **out)
{
	struct bd_app_store_op *op = store_op_new(s, out);
	int rc;

	op->resolve_cb = cb;
	op->arg = arg;
	op->app_ref = xstrdup(application_id);
	op->version_ref = version != NULL ? xstrdup(version) : NULL;
	if (s->c == NULL) {
		if ((rc = uv_queue_work(s->loop, &op->work,
		    store_local_resolve_work, store_after_work)) < 0) {
			store_op_free(op);
			return rc;
		}
		return 0;
	}
	op->step = ST_LIST_APP;
	store_blob_step(op);
	return 0;
}

int
bd_app_store_fetch(struct bd_app_store *s, const struct bd_app_object *obj,
    const char *tmp_path, bd_app_store_fetch_cb cb, void *arg,
    struct bd_app_store_op **out)
{
	struct bd_app_store_op *op = store_op_new(s, out);
	int rc;

	op->fetch = true;
	op->step = ST_FETCH;
	op->fetch_cb = cb;
	op->arg = arg;
	if (s->c == NULL) {
		op->archive = bd_path_join(s->dir, obj->name);
		if ((rc = uv_queue_work(s->loop, &op->work,
		    store_local_fetch_work, store_after_work)) < 0) {
			store_op_free(op);
			return rc;
		}
		return 0;
	}
	op->archive = xstrdup(tmp_path);
	/* Read back too: the download checks the blob's Content-MD5. */
	op->fd = open(tmp_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (op->fd < 0) {
		rc = -errno;
		store_op_free(op);
		return rc;
	}
	if ((rc = bd_blob_get_start(s->c, obj->name, op->fd, NULL,
	    store_blob_on_fetched, op, &op->bop)) < 0) {
		store_op_free(op);
		return rc;
	}
	return 0;
}

void
bd_app_store_free(struct bd_app_store *s)
{
	if (s == NULL)
		return;
	if (s->c != NULL)
		bd_blob_container_free(s->c);
	free(s->dir);
	free(s->desc);
	free(s);
}
