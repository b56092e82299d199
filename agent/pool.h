/* SPDX-License-Identifier: MIT */
#ifndef BD_POOL_H
#define BD_POOL_H

/*
 * The pool as the configuration names it: its task source and state store
 * on Azure Storage (queue and tables) or on the local spool, and the HTTP
 * client they and the tasks' file transfers share.  Used by the daemon and
 * by the client commands (job, task, node, wait), so both always agree on
 * where the pool is.
 */

#include <uv.h>

#include "config.h"
#include "http.h"
#include "source.h"
#include "store.h"

struct bd_pool {
	struct bd_source *source;	/* owned unless taken */
	struct bd_store *store;		/* owned unless taken */
	struct bd_http *http;		/* owned; NULL until needed for local */
	const char *backend;		/* "azure" or "local" */
	uv_loop_t *loop;		/* for bd_pool_http() */
	const struct bd_config *cfg;	/* borrowed */
};

/*
 * Opens the pool of cfg (borrowed; must outlive the pool) on loop.  With
 * need_http the HTTP client is created even for the local spool (the
 * daemon's tasks may download files).  Returns 0 and *out, or a negative
 * code with *cause (caller frees).
 */
int bd_pool_open(uv_loop_t *loop, const struct bd_config *cfg, bool need_http,
    struct bd_pool **out, char **cause);

/*
 * The pool's HTTP client, created on first use (so that a node on the
 * local spool loads libcurl only when a task needs it): 0 and *out
 * (borrowed, owned by the pool), or an error with *cause (caller frees).
 */
int bd_pool_http(struct bd_pool *p, struct bd_http **out, char **cause);

/*
 * Creates the queues and tables if missing; cb gets 0 or an error with
 * detail.  Returns 0, or an error (then cb never runs).
 */
int bd_pool_create(struct bd_pool *p, void (*cb)(void *arg, int status,
    const char *detail), void *arg);

/*
 * Frees the source and store (unless taken: set them NULL) and closes the
 * HTTP client; closed_cb (may be NULL) runs when its handles are gone.
 */
void bd_pool_close(struct bd_pool *p, void (*closed_cb)(void *arg), void *arg);

#endif
