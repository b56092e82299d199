/* SPDX-License-Identifier: MIT */
#ifndef BD_STORE_H
#define BD_STORE_H

/*
 * The state store: the pool's tables of tasks, jobs and nodes
 * (docs/protocol.md §4, §5), behind a small ops struct: Azure Storage
 * Tables (store_azure.c) or the local spool (store_local.c).  Semantics
 * are those of Azure Tables:
 *
 * - an entity is a PartitionKey, a RowKey, an ETag and flat properties
 *   (a cJSON object of strings, numbers and booleans; times are ISO 8601
 *   strings in properties whose names end in "Time" or are lastHeartbeat);
 * - insert fails with -EEXIST when the row exists;
 * - replace and merge with an etag succeed only if the row still has that
 *   ETag (-ESTALE otherwise, -ENOENT if it is gone); with etag NULL they
 *   upsert unconditionally (merge keeps properties not named);
 * - query returns every row of a partition (pk NULL: of the table),
 *   following continuation tokens.
 *
 * Callback contract as in source.h.  Entities passed to callbacks are the
 * callee's to free with bd_entity_free().
 */

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

struct bd_store;
struct cJSON;

enum bd_table {
	BD_TABLE_TASKS, /* batchdtasks: PK job id, RK task id */
	BD_TABLE_JOBS,	/* batchdjobs: PK pool id, RK job id */
	BD_TABLE_NODES, /* batchdnodes: PK pool id, RK node id */
};

/* The table's name in the store ("batchdtasks", ...). */
const char *bd_table_name(enum bd_table t);

struct bd_entity {
	char *partition_key;
	char *row_key;
	char *etag;		 /* NULL for an entity not yet stored */
	struct cJSON *props;	 /* owned; an object */
	/*
	 * A write of this entity may be undone by a power failure (never by
	 * a crash of the process): for rows whose loss the protocol
	 * recovers from (a task's running state, a node's heartbeat).  The
	 * local store then skips its fsyncs; Azure ignores it.
	 */
	bool lazy;
};

/* A new entity with an empty property object; caller frees. */
struct bd_entity *bd_entity_new(const char *pk, const char *rk);
void bd_entity_free(struct bd_entity *e);

typedef void (*bd_store_entity_cb)(void *arg, int status,
    struct bd_entity *e, const char *detail);
typedef void (*bd_store_write_cb)(void *arg, int status, const char *etag,
    const char *detail);
typedef void (*bd_store_query_cb)(void *arg, int status,
    struct bd_entity **rows, size_t n, const char *detail);

struct bd_store_ops {
	const char *name; /* "azure", "local" */
	int (*get)(struct bd_store *s, enum bd_table t, const char *pk,
	    const char *rk, bd_store_entity_cb cb, void *arg);
	/* e is borrowed until the call returns (it is copied). */
	int (*insert)(struct bd_store *s, enum bd_table t,
	    const struct bd_entity *e, bd_store_write_cb cb, void *arg);
	int (*replace)(struct bd_store *s, enum bd_table t,
	    const struct bd_entity *e, const char *etag, bd_store_write_cb cb,
	    void *arg);
	int (*merge)(struct bd_store *s, enum bd_table t,
	    const struct bd_entity *e, const char *etag, bd_store_write_cb cb,
	    void *arg);
	int (*remove)(struct bd_store *s, enum bd_table t, const char *pk,
	    const char *rk, const char *etag, bd_store_write_cb cb, void *arg);
	int (*query)(struct bd_store *s, enum bd_table t, const char *pk,
	    bd_store_query_cb cb, void *arg);
	/* Creates the tables if missing. */
	int (*create)(struct bd_store *s, bd_store_write_cb cb, void *arg);
	void (*free)(struct bd_store *s);
};

struct bd_store {
	const struct bd_store_ops *ops;
};

#define bd_store_get(s, ...) ((s)->ops->get((s), __VA_ARGS__))
#define bd_store_insert(s, ...) ((s)->ops->insert((s), __VA_ARGS__))
#define bd_store_replace(s, ...) ((s)->ops->replace((s), __VA_ARGS__))
#define bd_store_merge(s, ...) ((s)->ops->merge((s), __VA_ARGS__))
#define bd_store_remove(s, ...) ((s)->ops->remove((s), __VA_ARGS__))
#define bd_store_query(s, ...) ((s)->ops->query((s), __VA_ARGS__))
#define bd_store_create(s, ...) ((s)->ops->create((s), __VA_ARGS__))
#define bd_store_free(s) ((s)->ops->free((s)))

#endif
