/* SPDX-License-Identifier: MIT */
/*
 * The state store on Azure Storage Tables: store.h's operations mapped
 * onto common/table.  The store holds a table client; each call makes a
 * small struct azure_call that carries the caller's callback through the
 * table request(s) and is freed once the callback has run.  create is
 * the one call of several requests (the three tables at once) and
 * reports the first failure.  Entities from common/table become
 * bd_entity structs by moving their fields over: the two have the same
 * parts and owners.
 */
#include "store_azure.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "table.h"
#include "xmalloc.h"

#define STORE_N_TABLES	3

struct store_azure {
	struct bd_store base;		/* first: the ops */
	uv_loop_t *loop;
	struct bd_table_client *tc;
};

/* One call in flight. */
struct azure_call {
	bd_store_entity_cb entity_cb;
	bd_store_write_cb write_cb;
	bd_store_query_cb query_cb;
	void *arg;
	int pending;			/* create: requests not yet back */
	int status;			/* create: the first failure */
	char *detail;
};

/* A new call for callback arg. */
static struct azure_call *
azure_call_new(void *arg)
{
	struct azure_call *call = xcalloc(1, sizeof(*call));

	call->arg = arg;
	return call;
}

/* The bd_entity holding what e held; e is consumed. */
static struct bd_entity *
azure_entity(struct bd_table_entity *e)
{
	struct bd_entity *out = xcalloc(1, sizeof(*out));

	out->partition_key = e->partition_key;
	out->row_key = e->row_key;
	out->etag = e->etag;
	out->props = e->props;
	free(e);
	return out;
}

/* table: Get Entity ended. */
static void
azure_on_entity(void *arg, int status, struct bd_table_entity *e,
    const char *detail)
{
	struct azure_call *call = arg;

	call->entity_cb(call->arg, status, e != NULL ? azure_entity(e) : NULL,
	    detail);
	free(call);
}

/* Reads row pk/rk of table t. */
static int
azure_get(struct bd_store *base, enum bd_table t, const char *pk,
    const char *rk, bd_store_entity_cb cb, void *arg)
{
	struct store_azure *s = (struct store_azure *)base;
	struct azure_call *call = azure_call_new(arg);
	int rc;

	call->entity_cb = cb;
	if ((rc = bd_table_get(s->tc, bd_table_name(t), pk, rk,
	    azure_on_entity, call, NULL)) != 0)
		free(call);
	return rc;
}

/* table: a write ended. */
static void
azure_on_write(void *arg, int status, const char *etag, const char *detail)
{
	struct azure_call *call = arg;

	call->write_cb(call->arg, status, etag, detail);
	free(call);
}

/* The write of kind 'i' (insert), 'r' (replace) or 'm' (merge). */
static int
azure_write(struct store_azure *s, int kind, enum bd_table t,
    const struct bd_entity *e, const char *etag, bd_store_write_cb cb,
    void *arg)
{
	struct azure_call *call;
	const char *name = bd_table_name(t);
	int rc;

	if (e == NULL)
		return BD_EINVALID;
	call = azure_call_new(arg);
	call->write_cb = cb;
	switch (kind) {
	case 'i':
		rc = bd_table_insert(s->tc, name, e->partition_key, e->row_key,
		    e->props, azure_on_write, call, NULL);
		break;
	case 'r':
		rc = bd_table_replace(s->tc, name, e->partition_key,
		    e->row_key, e->props, etag, azure_on_write, call, NULL);
		break;
	default:
		rc = bd_table_merge(s->tc, name, e->partition_key, e->row_key,
		    e->props, etag, azure_on_write, call, NULL);
		break;
	}
	if (rc != 0)
		free(call);
	return rc;
}

/* Inserts e: -EEXIST when the row exists. */
static int
azure_insert(struct bd_store *base, enum bd_table t,
    const struct bd_entity *e, bd_store_write_cb cb, void *arg)
{
	return azure_write((struct store_azure *)base, 'i', t, e, NULL, cb,
	    arg);
}

/* Replaces e if its ETag is etag (NULL: upserts). */
static int
azure_replace(struct bd_store *base, enum bd_table t,
    const struct bd_entity *e, const char *etag, bd_store_write_cb cb,
    void *arg)
{
	return azure_write((struct store_azure *)base, 'r', t, e, etag, cb,
	    arg);
}

/* Merges e into the row if its ETag is etag (NULL: upserts). */
static int
azure_merge(struct bd_store *base, enum bd_table t,
    const struct bd_entity *e, const char *etag, bd_store_write_cb cb,
    void *arg)
{
	return azure_write((struct store_azure *)base, 'm', t, e, etag, cb,
	    arg);
}

/* Deletes row pk/rk if its ETag is etag (NULL: any). */
static int
azure_remove(struct bd_store *base, enum bd_table t, const char *pk,
    const char *rk, const char *etag, bd_store_write_cb cb, void *arg)
{
	struct store_azure *s = (struct store_azure *)base;
	struct azure_call *call = azure_call_new(arg);
	int rc;

	call->write_cb = cb;
	if ((rc = bd_table_remove(s->tc, bd_table_name(t), pk, rk, etag,
	    azure_on_write, call, NULL)) != 0)
		free(call);
	return rc;
}

/* table: a query ended; its rows become bd_entity structs. */
static void
azure_on_query(void *arg, int status, struct bd_table_entity **rows,
    size_t n, const char *detail)
{
	struct azure_call *call = arg;
	struct bd_entity **out = NULL;
	size_t i;

	if (status == 0 && n > 0) {
		out = xcalloc(n, sizeof(*out));
		for (i = 0; i < n; i++)
			out[i] = azure_entity(rows[i]);
	}
	free(rows);
	call->query_cb(call->arg, status, out, status == 0 ? n : 0, detail);
	free(call);
}

/* Every row of partition pk (NULL: of the table). */
static int
azure_query(struct bd_store *base, enum bd_table t, const char *pk,
    bd_store_query_cb cb, void *arg)
{
	struct store_azure *s = (struct store_azure *)base;
	struct azure_call *call = azure_call_new(arg);
	int rc;

	call->query_cb = cb;
	if ((rc = bd_table_query(s->tc, bd_table_name(t), pk, azure_on_query,
	    call, NULL)) != 0)
		free(call);
	return rc;
}

/* table: one of create's requests ended. */
static void
azure_on_create(void *arg, int status, const char *etag, const char *detail)
{
	struct azure_call *call = arg;

	(void)etag;
	if (status != 0 && call->status == 0) {
		call->status = status;
		call->detail = xstrdup(detail != NULL ? detail :
		    bd_strerror(status));
	}
	if (--call->pending > 0)
		return;
	call->write_cb(call->arg, call->status, NULL, call->detail);
	free(call->detail);
	free(call);
}

/* Creates the three tables when missing. */
static int
azure_create(struct bd_store *base, bd_store_write_cb cb, void *arg)
{
	static const enum bd_table tables[STORE_N_TABLES] = {
		BD_TABLE_TASKS, BD_TABLE_JOBS, BD_TABLE_NODES,
	};
	struct store_azure *s = (struct store_azure *)base;
	struct azure_call *call = azure_call_new(arg);
	int i, rc;

	call->write_cb = cb;
	/* One extra count keeps the call alive until every start is made. */
	call->pending = 1;
	for (i = 0; i < STORE_N_TABLES; i++) {
		if ((rc = bd_table_create(s->tc, bd_table_name(tables[i]),
		    azure_on_create, call)) != 0) {
			if (i == 0) {
				free(call);
				return rc;
			}
			call->status = rc;
			call->detail = xasprintf("table %s: create: %s",
			    bd_table_name(tables[i]), bd_strerror(rc));
			break;
		}
		call->pending++;
	}
	/* Drop the extra count; a request is in flight, so it is not 0. */
	call->pending--;
	return 0;
}

/* Frees the store; no call may be in flight. */
static void
azure_free(struct bd_store *base)
{
	struct store_azure *s = (struct store_azure *)base;

	bd_table_client_free(s->tc);
	free(s);
}

static const struct bd_store_ops store_azure_ops = {
	.name = "azure",
	.get = azure_get,
	.insert = azure_insert,
	.replace = azure_replace,
	.merge = azure_merge,
	.remove = azure_remove,
	.query = azure_query,
	.create = azure_create,
	.free = azure_free,
};

int
bd_store_azure_new(uv_loop_t *loop, struct bd_http *http,
    const struct bd_storage_account *account, struct bd_store **out,
    char **cause)
{
	struct store_azure *s;
	struct bd_table_client *tc;
	int rc;

	*out = NULL;
	if ((rc = bd_table_client_new(http, account, NULL, &tc, cause)) != 0)
		return rc;
	s = xcalloc(1, sizeof(*s));
	s->base.ops = &store_azure_ops;
	s->loop = loop;
	s->tc = tc;
	*out = &s->base;
	return 0;
}
