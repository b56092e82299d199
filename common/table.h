/* SPDX-License-Identifier: MIT */
#ifndef BD_TABLE_H
#define BD_TABLE_H

/*
 * Azure Storage Table operations over common/http (OData JSON, data
 * service version 3.0): create and delete a table, insert, get, replace,
 * merge and delete an entity, and query the entities of a partition or a
 * table across continuation pages.  The client belongs to one account;
 * requests are authorized with its SAS when it has one, else with Shared
 * Key ("Shared Key for Table service") when it has a key.
 *
 * Properties are a flat cJSON object of strings, numbers and booleans.
 * Written, an integral number that fits Int32 goes plain, a bigger one as
 * Edm.Int64, any other number as Edm.Double; a string in a property whose
 * name ends in "Time" or is "lastHeartbeat" goes as Edm.DateTime when it
 * is an ISO 8601 UTC time ("2024-01-02T03:04:05Z", up to 7 fractional
 * digits).  Read, Int64 values come back as numbers, DateTime values as
 * ISO 8601 strings without trailing zero fractional digits, Guid and
 * Binary values as strings; Timestamp and odata.* are dropped.  JSON null
 * properties are not written.  Property names are identifiers ([A-Za-z_]
 * then [A-Za-z0-9_], at most 255 bytes) and not PartitionKey, RowKey or
 * Timestamp.
 *
 * Keys may not hold '/', '\\', '#', '?' or control characters (U+0000 to
 * U+001F, U+007F to U+009F), and are at most 1 KiB.
 *
 * Callback contract (every function that takes a callback): if the call
 * returns an error its callback never runs; otherwise the callback runs
 * exactly once, later, on the loop thread, with -ECANCELED when
 * bd_http_close() cancelled the request.  Strings passed to a callback are
 * borrowed until it returns unless said otherwise.
 *
 * Statuses: 0; -ENOENT for 404 (the table or entity is missing); -EEXIST
 * for 409 EntityAlreadyExists; -ESTALE for 412 (the entity's ETag is not
 * the one given); BD_EDENIED for 401 and 403; BD_ETOOBIG for an entity or
 * property the service finds too large, or a response over the module's
 * bounds; BD_EINVALID for a malformed response; BD_EHTTP for other
 * statuses; BD_ENET, BD_ETIMEDOUT as http.h gives them.  detail is text
 * for a person naming the table, the operation, the HTTP status and the
 * storage error code; it never holds a key or a SAS signature.
 *
 * http retries transient failures, so a write whose answer was lost may
 * run twice: a retried insert may report -EEXIST, a retried conditional
 * write -ESTALE, a retried delete -ENOENT, although the first attempt
 * succeeded.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "storage_auth.h"

struct cJSON;
struct bd_table_client;

#define BD_TABLE_MAX_KEY	1024	/* bytes of a PartitionKey, RowKey */
#define BD_TABLE_MAX_ETAG	256	/* bytes of an ETag */

/* Tuning; zero fields take the defaults in brackets. */
struct bd_table_options {
	struct bd_retry_policy retry;	/* of each request [http's] */
	long timeout_ms;		/* one attempt [60000] */
	size_t max_query_rows;		/* rows of one query [1000000] */
	size_t max_page_bytes;		/* bytes of one answer [32 MiB] */
};

/*
 * A client of the table service of account a (borrowed: it must outlive
 * the client) over http (borrowed likewise).  o may be NULL.  Returns 0
 * and *out (free with bd_table_client_free()), or BD_EINVALID with *cause
 * (caller frees) when a has no table endpoint.
 */
int bd_table_client_new(struct bd_http *http,
    const struct bd_storage_account *a, const struct bd_table_options *o,
    struct bd_table_client **out, char **cause);

/* Frees c; requests still running keep what they need. */
void bd_table_client_free(struct bd_table_client *c);

/* Whether name is a valid table name: [A-Za-z][A-Za-z0-9]{2,62}. */
bool bd_table_name_valid(const char *name);

/*
 * Checks a PartitionKey or RowKey value.  Returns 0, or BD_EINVALID with
 * *cause (may be NULL; caller frees) naming the reason.
 */
int bd_table_key_check(const char *key, char **cause);

/* An entity; every field is owned by the struct. */
struct bd_table_entity {
	char *partition_key;
	char *row_key;
	char *etag;		/* NULL when the answer had none */
	struct cJSON *props;	/* an object, never NULL */
};

/* Frees e and what it owns; NULL is allowed. */
void bd_table_entity_free(struct bd_table_entity *e);

/* etag: of the entity written (NULL for table operations and deletes). */
typedef void (*bd_table_write_cb)(void *arg, int status, const char *etag,
    const char *detail);

/* e is the callee's to free with bd_table_entity_free(); NULL on failure. */
typedef void (*bd_table_entity_cb)(void *arg, int status,
    struct bd_table_entity *e, const char *detail);

/* rows (n of them) are the callee's to free, each with
   bd_table_entity_free() and the array with free(). */
typedef void (*bd_table_query_cb)(void *arg, int status,
    struct bd_table_entity **rows, size_t n, const char *detail);

/*
 * Create Table; a table that exists (409 TableAlreadyExists) counts as
 * success.  Returns 0, or BD_EINVALID for a bad name.
 */
int bd_table_create(struct bd_table_client *c, const char *table,
    bd_table_write_cb cb, void *arg);

/* Delete Table (-ENOENT when missing).  Returns as above. */
int bd_table_delete(struct bd_table_client *c, const char *table,
    bd_table_write_cb cb, void *arg);

/*
 * Insert Entity pk/rk with props (borrowed until the call returns; may be
 * NULL for none): -EEXIST when it exists.  Returns 0, or BD_EINVALID with
 * *cause (may be NULL; caller frees) for a bad name, key or property.
 */
int bd_table_insert(struct bd_table_client *c, const char *table,
    const char *pk, const char *rk, const struct cJSON *props,
    bd_table_write_cb cb, void *arg, char **cause);

/*
 * Update Entity (replace: properties not in props are removed) when etag
 * is not NULL: only if the entity's ETag is etag ("*": any; -ESTALE
 * otherwise, -ENOENT when it is gone).  With etag NULL, Insert Or Replace
 * Entity: unconditional.  Returns as bd_table_insert().
 */
int bd_table_replace(struct bd_table_client *c, const char *table,
    const char *pk, const char *rk, const struct cJSON *props,
    const char *etag, bd_table_write_cb cb, void *arg, char **cause);

/*
 * Merge Entity (properties not in props are kept) with etag as for
 * bd_table_replace(); etag NULL is Insert Or Merge Entity.
 */
int bd_table_merge(struct bd_table_client *c, const char *table,
    const char *pk, const char *rk, const struct cJSON *props,
    const char *etag, bd_table_write_cb cb, void *arg, char **cause);

/*
 * Delete Entity, only if its ETag is etag (NULL or "*": any).  Returns as
 * bd_table_insert().
 */
int bd_table_remove(struct bd_table_client *c, const char *table,
    const char *pk, const char *rk, const char *etag, bd_table_write_cb cb,
    void *arg, char **cause);

/* Get Entity: -ENOENT when missing.  Returns as bd_table_insert(). */
int bd_table_get(struct bd_table_client *c, const char *table,
    const char *pk, const char *rk, bd_table_entity_cb cb, void *arg,
    char **cause);

/*
 * Query Entities: every entity of partition pk (NULL: of the table),
 * following continuation pages, up to max_query_rows (BD_ETOOBIG past
 * it).  Returns as bd_table_insert().
 */
int bd_table_query(struct bd_table_client *c, const char *table,
    const char *pk, bd_table_query_cb cb, void *arg, char **cause);

/*
 * The JSON body that writes pk, rk and props, with the type annotations
 * described above.  Returns 0 and *out (caller frees), or BD_EINVALID
 * with *cause.  Exposed for tests.
 */
int bd_table_entity_json(const char *pk, const char *rk,
    const struct cJSON *props, char **out, char **cause);

/*
 * Reads one entity object of an answer (minimal metadata): keys, ETag
 * from odata.etag (or etag when given, from the ETag header), properties
 * as described above.  Returns 0 and *out, or BD_EINVALID with *cause.
 * Exposed for tests and fuzzing.
 */
int bd_table_entity_parse(const struct cJSON *obj, const char *etag,
    struct bd_table_entity **out, char **cause);

/* "PartitionKey eq 'v'" with the quotes of v doubled.  Caller frees. */
char *bd_table_partition_filter(const char *pk);

#endif
