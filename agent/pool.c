/* SPDX-License-Identifier: MIT */
/*
 * Opening the pool that the configuration names (see pool.h).  The choice
 * of backend is made here and nowhere else.
 */
#include "pool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "source_azure.h"
#include "source_local.h"
#include "store_azure.h"
#include "store_local.h"
#include "xmalloc.h"

static int
pool_http(uv_loop_t *loop, const struct bd_config *cfg, struct bd_pool *p,
    char **cause)
{
	struct bd_http_options ho = {
		.max_active = (int)cfg->http.max_connections,
		.ca_file = cfg->http.ca_file,
	};
	int rc;

	if ((rc = bd_http_new(loop, &ho, &p->http)) < 0)
		*cause = xasprintf("cannot start the HTTP client: %s",
		    bd_strerror(rc));
	return rc;
}

int
bd_pool_open(uv_loop_t *loop, const struct bd_config *cfg, bool need_http,
    struct bd_pool **out, char **cause)
{
	struct bd_pool *p = xcalloc(1, sizeof(*p));
	int rc;

	*out = NULL;
	p->loop = loop;
	p->cfg = cfg;
	if (cfg->storage.kind == BD_CONFIG_STORAGE_LOCAL) {
		p->backend = "local";
		if ((rc = bd_source_local_new(loop, cfg->spool_dir,
		    cfg->queue.name, cfg->node_id, &p->source, cause)) < 0 ||
		    (rc = bd_store_local_new(loop, cfg->spool_dir, &p->store,
		    cause)) < 0 ||
		    (need_http && (rc = pool_http(loop, cfg, p, cause)) < 0))
			goto fail;
		/*
		 * A lease rename or delete rolled back by a power loss only
		 * brings a message back, and a task whose row says completed
		 * is then dropped (protocol §3), so the queue's directory
		 * fsyncs buy nothing the protocol needs; they were a third of
		 * the per-task cost (docs/performance.md).  Rows stay fully
		 * synced: they are the record.
		 */
		bd_source_local_set_sync(p->source, 0);
	} else {
		const struct bd_storage_account *q, *t;
		p->backend = "azure";
		q = bd_config_storage_account(cfg, BD_STORAGE_QUEUE);
		t = bd_config_storage_account(cfg, BD_STORAGE_TABLE);
		if (q == NULL || t == NULL) {
			*cause = xasprintf("storage: the pool needs the queue "
			    "and table services (give queueSasUrl and "
			    "tableSasUrl, or an account)");
			rc = BD_EINVALID;
			goto fail;
		}
		if ((rc = pool_http(loop, cfg, p, cause)) < 0 ||
		    (rc = bd_source_azure_new(loop, p->http, q,
		    cfg->queue.name, &p->source, cause)) < 0 ||
		    (rc = bd_store_azure_new(loop, p->http, t, &p->store,
		    cause)) < 0)
			goto fail;
	}
	*out = p;
	return 0;
fail:
	bd_pool_close(p, NULL, NULL);
	return rc;
}

int
bd_pool_http(struct bd_pool *p, struct bd_http **out, char **cause)
{
	int rc;

	if (p->http == NULL && (rc = pool_http(p->loop, p->cfg, p, cause)) < 0)
		return rc;
	*out = p->http;
	return 0;
}

struct pool_create {
	struct bd_pool *p;
	void (*cb)(void *, int, const char *);
	void *arg;
	int status;
	char *detail;
};

static void
pool_on_tables(void *arg, int status, const char *etag, const char *detail)
{
	struct pool_create *pc = arg;

	pc->cb(pc->arg, status, detail);
	free(pc);
}

static void
pool_on_queues(void *arg, int status, const char *detail)
{
	struct pool_create *pc = arg;

	if (status < 0 || bd_store_create(pc->p->store, pool_on_tables,
	    pc) < 0) {
		pc->cb(pc->arg, status < 0 ? status : -EIO, detail);
		free(pc);
	}
}

int
bd_pool_create(struct bd_pool *p, void (*cb)(void *, int, const char *),
    void *arg)
{
	struct pool_create *pc = xcalloc(1, sizeof(*pc));
	int rc;

	pc->p = p;
	pc->cb = cb;
	pc->arg = arg;
	if ((rc = bd_source_create(p->source, pool_on_queues, pc)) < 0)
		free(pc);
	return rc;
}

void
bd_pool_close(struct bd_pool *p, void (*closed_cb)(void *), void *arg)
{
	if (p->source != NULL)
		bd_source_free(p->source);
	if (p->store != NULL)
		bd_store_free(p->store);
	if (p->http != NULL)
		bd_http_close(p->http, closed_cb, arg);
	else if (closed_cb != NULL)
		closed_cb(arg);
	free(p);
}
