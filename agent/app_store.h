/* SPDX-License-Identifier: MIT */
#ifndef BD_APP_STORE_H
#define BD_APP_STORE_H

/*
 * The application store: where a node finds application packages.  Two
 * backends with one layout (docs/running-tasks.md, "Application
 * packages"):
 *
 *   <applicationId>/<version>.zip | .tar.gz | .tar.xz | .tar.zst
 *   <applicationId>/default          the default version, as text
 *
 * either as blobs of a container in the pool's storage account, or as
 * files of a local directory.  Application ids and versions are matched
 * without regard to case, as Azure Batch matches them.
 *
 * bd_app_store_resolve() turns a reference {applicationId, version?} into
 * the object to fetch (its name, version and ETag); bd_app_store_fetch()
 * gives a local path to that object's archive: the blob downloaded into a
 * file the caller named, or the local store's own file.
 *
 * Callback contract: if a _start function fails its callback never runs;
 * otherwise it runs exactly once on the loop thread, never from inside
 * the call, with BD_ECANCELED-like -ECANCELED after bd_app_store_cancel().
 */

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "http.h"
#include "storage_auth.h"

struct bd_app_store;
struct bd_app_store_op;

/* A resolved package; every string owned, freed by bd_app_object_free(). */
struct bd_app_object {
	char *application_id;	/* as the store spells it */
	char *version;		/* as the store spells it */
	char *name;		/* "<applicationId>/<version>.<ext>" */
	char *etag;		/* changes whenever the object does */
	int64_t size;		/* bytes of the archive, -1 unknown */
	bool default_version;	/* the reference named no version */
};

void bd_app_object_free(struct bd_app_object *o);

/* A local directory store (dir copied).  Never fails. */
struct bd_app_store *bd_app_store_local_new(uv_loop_t *loop, const char *dir);

/*
 * A blob container store: container of account (borrowed; must outlive
 * the store), over http (borrowed).  Returns 0 and *out, or BD_EINVALID
 * with *cause (caller frees).
 */
int bd_app_store_blob_new(uv_loop_t *loop, struct bd_http *http,
    const struct bd_storage_account *account, const char *container,
    struct bd_app_store **out, char **cause);

/* Where the store is, for messages ("directory /srv/apps"). Borrowed. */
const char *bd_app_store_describe(const struct bd_app_store *s);

/*
 * Status and text of a resolve or fetch.  detail (NULL on success) is a
 * message a user can act on, borrowed until the callback returns.
 * Statuses: 0; BD_ENOTFOUND (no such application, version or default);
 * BD_EINVALID (a default that is not a version); BD_EDENIED; BD_ENET,
 * BD_ETIMEDOUT, BD_EHTTP (transient or server side); negative errnos.
 */
typedef void (*bd_app_store_resolve_cb)(void *arg, int status,
    struct bd_app_object *obj, const char *detail);
typedef void (*bd_app_store_fetch_cb)(void *arg, int status,
    const char *archive, const char *etag, const char *detail);

/*
 * Resolves application_id and version (NULL: the store's default).  On
 * success obj is the caller's (free with bd_app_object_free()).  *out (may
 * be NULL) is a handle for bd_app_store_cancel(), valid until the callback.
 */
int bd_app_store_resolve(struct bd_app_store *s, const char *application_id,
    const char *version, bd_app_store_resolve_cb cb, void *arg,
    struct bd_app_store_op **out);

/*
 * Makes obj's archive available as a local file: a blob is downloaded into
 * tmp_path (created; the caller removes it), a local store gives its own
 * file.  archive is that path, etag the ETag of what was fetched; both
 * borrowed until the callback returns.
 */
int bd_app_store_fetch(struct bd_app_store *s, const struct bd_app_object *obj,
    const char *tmp_path, bd_app_store_fetch_cb cb, void *arg,
    struct bd_app_store_op **out);

/* Stops op: its callback runs later with -ECANCELED (or its result). */
void bd_app_store_cancel(struct bd_app_store_op *op);

/* Frees s; no operation may be running. */
void bd_app_store_free(struct bd_app_store *s);

/*
 * Picks the object for version (NULL: def, the default's text) among
 * names, the file names in the application's directory ("1.0.zip"...).
 * Returns the index in names, or -1 with *cause (caller frees).  Exposed
 * for tests.
 */
int bd_app_store_pick(const char *const *names, size_t n,
    const char *version, const char *def, char **cause);

#endif
