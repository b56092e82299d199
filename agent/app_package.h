/* SPDX-License-Identifier: MIT */
#ifndef BD_APP_PACKAGE_H
#define BD_APP_PACKAGE_H

/*
 * Application packages on a node (reference §5): each package version is
 * fetched from the application store and unpacked once, under
 * <nodeRoot>/applications, and shared by every task that references it.
 *
 * A request asks for a list of references {applicationId, version?} and
 * gets, for each, the directory of the installed package.  Requests for
 * the same package while it is being installed wait for that one install.
 * An install downloads into a temporary file, unpacks off the loop into a
 * temporary directory (.install-<pid>-...), and renames that directory
 * into place: a crash leaves only temporaries, which the next start
 * removes, never a half-unpacked package under a final name.  The sync
 * to disk comes after the rename, off the waiters' path; a marker written
 * first lets the next start remove a package that a reboot came too soon
 * for, before any request sees it.  The final
 * name carries a hash of the store object's ETag, so a package whose store
 * copy changed is installed again beside the old one; tasks that hold the
 * old one keep it.  A request holds its directories until it is freed;
 * unheld ones are removed least recently used first when the directory
 * passes its size limit; a package that a process elsewhere holds (a task
 * of another batchd on the node root, or one adopted after a restart,
 * through its supervisor) is never removed.  A request given up by all
 * its waiters stops its install, even in the middle of the unpack.
 */

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "app_store.h"
#include "archive.h"
#include "environment.h"
#include "task_spec.h"

struct bd_app_packages;
struct bd_app_request;
struct bd_config;
struct bd_http;

struct bd_app_packages_options {
	uv_loop_t *loop;
	struct bd_app_store *store;	/* taken over */
	const char *node_root;		/* applications/ is under it; copied */
	struct bd_archive_limits limits;	/* of one package */
	uint64_t cache_max_bytes;	/* of applications/; 0: no limit */
};

/*
 * Creates the node's package manager and starts, off the loop, the scan
 * of applications/ that removes what crashed installs left and measures
 * the installed packages.  Never fails.
 */
struct bd_app_packages *bd_app_packages_new(
    const struct bd_app_packages_options *o);

/*
 * The manager the configuration describes: its applicationStore (a
 * container of the storage account over http, which may be NULL only for
 * a directory store), limits and cache size, on node_root.  Returns 0 and
 * *out, or a negative code with *cause (caller frees).
 */
int bd_app_packages_from_config(uv_loop_t *loop, struct bd_http *http,
    const struct bd_config *c, const char *node_root,
    struct bd_app_packages **out, char **cause);

/*
 * Stops: cancels what can be cancelled and frees the manager once nothing
 * of it is in flight and every request is freed.  NULL is allowed.
 */
void bd_app_packages_close(struct bd_app_packages *m);

/* One package as a task sees it; owned by its request. */
struct bd_app_package {
	const char *application_id;	/* as the reference spells it */
	const char *version;		/* the reference's, else the store's */
	const char *store_application_id; /* as the store spells them */
	const char *store_version;
	const char *dir;		/* absolute */
	bool default_version;		/* the reference named no version */
};

/*
 * status 0, or the first failure: message (borrowed until the callback
 * returns) names the package and the reason, with the archive entry when
 * the archive was refused; -ECANCELED after bd_app_request_cancel().
 */
typedef void (*bd_app_request_cb)(struct bd_app_request *req, int status,
    const char *message, void *arg);

/*
 * Installs (or finds installed) the n >= 1 packages of refs (copied).
 * Returns 0 and *out, then cb runs once; or a negative errno.
 */
int bd_app_packages_acquire(struct bd_app_packages *m,
    const struct bd_application_package_reference *refs, size_t n,
    bd_app_request_cb cb, void *arg, struct bd_app_request **out);

/* After a successful callback: the packages, in the order of refs. */
const struct bd_app_package *bd_app_request_packages(
    const struct bd_app_request *req, size_t *n);

/* Gives up waiting: the callback runs later with -ECANCELED. */
void bd_app_request_cancel(struct bd_app_request *req);

/* Frees req after its callback, letting go of its directories. */
void bd_app_request_free(struct bd_app_request *req);

/* Whether a failure is the package's (usererror) rather than the node's. */
bool bd_app_packages_user_error(int status);

/*
 * The pool's packages, which every task sees: the manager takes req over
 * (after its successful callback) and holds it until it closes.
 */
void bd_app_packages_set_pool(struct bd_app_packages *m,
    struct bd_app_request *req);
/* The pool's packages (none before set_pool); borrowed. */
const struct bd_app_package *bd_app_packages_pool(
    const struct bd_app_packages *m, size_t *n);

/*
 * Adds to env the variables (bd_env_add_app_package()) of the packages of
 * req (may be NULL) and then of the pool's of m (may be NULL): each named
 * as the store spells the application and, when it differs, as the
 * reference does.
 */
void bd_app_packages_add_env(const struct bd_app_packages *m,
    const struct bd_app_request *req, struct bd_env *env);

/*
 * The descriptors that hold (flock, shared) the packages of req (may be
 * NULL) and of the pool of m (may be NULL): a task's supervisor inherits
 * them and keeps them until the task ends, so that no batchd on the node
 * removes a package a task still uses, even after this batchd is gone.
 * Fills at most max of them into fds (borrowed while req and m live) and
 * returns how many there are.
 */
size_t bd_app_packages_hold_fds(const struct bd_app_packages *m,
    const struct bd_app_request *req, int *fds, size_t max);

/* Counters, for logs, metrics and tests. */
struct bd_app_packages_stats {
	uint64_t downloads;	/* archives fetched from the store */
	uint64_t installs;	/* packages unpacked into place */
	uint64_t reuses;	/* references served by an installed package */
	uint64_t failures;
	uint64_t removed;	/* directories removed to stay under the limit */
	uint64_t bytes;		/* installed bytes known */
};
void bd_app_packages_stats(const struct bd_app_packages *m,
    struct bd_app_packages_stats *out);

/*
 * The directory name of a package under applications/: lower-cased id and
 * version and a hash of the ETag (without its quotes, which a listing
 * leaves out and a GET puts in).  Caller frees.  Exposed for tests.
 */
char *bd_app_package_dir_name(const char *application_id,
    const char *version, const char *etag);

#endif
