/* SPDX-License-Identifier: MIT */
/*
 * Tests of common/table: first the entity JSON both ways and the checks
 * of keys and names on their own, then every operation against a real
 * Azurite started by tests/lib/azurite-harness.sh, with the official
 * Azure SDK for JavaScript (tests/lib/node/storagetool.js) as the other
 * party: ETag races, upserts, Int64 and DateTime round trips, a query
 * over continuation pages (1,200 rows; Azurite pages at 1,000), and keys
 * with quotes and URL-special characters.  Skipped with 77 only when node
 * or npm is missing.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <cjson/cJSON.h>

#include "azurite_support.h"
#include "error.h"
#include "http.h"
#include "storage_auth.h"
#include "table.h"
#include "unit.h"
#include "xmalloc.h"

#define MANY	1200

static uv_loop_t loop;
static struct bd_http *http;
static struct az_ports ports;
static struct bd_storage_account *account;
static struct bd_table_client *tc;

/* --- Offline ----------------------------------------------------------- */

TEST(names)
{
	ASSERT(bd_table_name_valid("batchdtasks"));
	ASSERT(bd_table_name_valid("Abc123"));
	ASSERT(!bd_table_name_valid("ab"));
	ASSERT(!bd_table_name_valid("1abc"));
	ASSERT(!bd_table_name_valid("a-bc"));
	ASSERT(!bd_table_name_valid(NULL));
}

TEST(keys)
{
	char *cause = NULL, big[BD_TABLE_MAX_KEY + 2];

	ASSERT_INT_EQ(bd_table_key_check("job-1_x", &cause), 0);
	ASSERT_INT_EQ(bd_table_key_check("", &cause), 0);
	ASSERT_INT_EQ(bd_table_key_check("o'brien \xc3\xbc (1),=&+%", &cause),
	    0);
	ASSERT_INT_EQ(bd_table_key_check("a/b", &cause), BD_EINVALID);
	ASSERT_STR_CONTAINS(cause, "'/'");
	free(cause);
	ASSERT_INT_EQ(bd_table_key_check("a\\b", &cause), BD_EINVALID);
	free(cause);
	ASSERT_INT_EQ(bd_table_key_check("a#b", &cause), BD_EINVALID);
	free(cause);
	ASSERT_INT_EQ(bd_table_key_check("a?b", &cause), BD_EINVALID);
	free(cause);
	ASSERT_INT_EQ(bd_table_key_check("a\tb", &cause), BD_EINVALID);
	ASSERT_STR_CONTAINS(cause, "control");
	free(cause);
	ASSERT_INT_EQ(bd_table_key_check("a\x7f", &cause), BD_EINVALID);
	free(cause);
	ASSERT_INT_EQ(bd_table_key_check("a\xc2\x85", &cause), BD_EINVALID);
	free(cause);
	ASSERT_INT_EQ(bd_table_key_check(NULL, &cause), BD_EINVALID);
	free(cause);
	memset(big, 'k', sizeof(big));
	big[BD_TABLE_MAX_KEY] = '\0';
	ASSERT_INT_EQ(bd_table_key_check(big, NULL), 0);
	big[BD_TABLE_MAX_KEY] = 'k';
	big[BD_TABLE_MAX_KEY + 1] = '\0';
	ASSERT_INT_EQ(bd_table_key_check(big, NULL), BD_EINVALID);

	cause = bd_table_partition_filter("o'brien's");
	ASSERT_STR_EQ(cause, "PartitionKey eq 'o''brien''s'");
	free(cause);
}

/* The body for props (JSON text); asserts success. */
static cJSON *
body_of(const char *props_json)
{
	cJSON *props = cJSON_Parse(props_json), *doc;
	char *out = NULL, *cause = NULL;

	ASSERT_NOT_NULL(props);
	if (bd_table_entity_json("p", "r", props, &out, &cause) != 0)
		UNIT_FAIL("entity_json %s: %s", props_json, cause);
	doc = cJSON_Parse(out);
	ASSERT_NOT_NULL(doc);
	free(out);
	cJSON_Delete(props);
	return doc;
}

/* The string field name of o, or NULL. */
static const char *
str(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The number field name of o (it must be one). */
static double
num(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	if (!cJSON_IsNumber(v))
		UNIT_FAIL("%s is not a number", name);
	return v->valuedouble;
}

/* Asserts that entity_json refuses props_json with a cause holding why. */
static void
refused(const char *props_json, const char *why)
{
	cJSON *props = cJSON_Parse(props_json);
	char *out = NULL, *cause = NULL;

	ASSERT_NOT_NULL(props);
	ASSERT_INT_EQ(bd_table_entity_json("p", "r", props, &out, &cause),
	    BD_EINVALID);
	ASSERT_NULL(out);
	ASSERT_STR_CONTAINS(cause, why);
	free(cause);
	cJSON_Delete(props);
}

TEST(entity_json)
{
	cJSON *b;
	char *out, *cause = NULL;

	b = body_of("{\"state\":\"running\",\"exitCode\":0,\"cpus\":-2147483648,"
	    "\"memoryBytes\":17179869184,\"neg\":-5000000000000,"
	    "\"ratio\":0.25,\"ok\":true,\"gone\":null,"
	    "\"startTime\":\"2024-01-02T03:04:05.123Z\","
	    "\"endTime\":\"2024-01-02T03:04:05Z\","
	    "\"lastHeartbeat\":\"2024-01-02T03:04:05.1234567Z\","
	    "\"creationTime\":\"not a time\",\"queuedTime\":\"\","
	    "\"otherTime\":\"2024-01-02T03:04:05.12345678Z\","
	    "\"dateTime\":\"2024-01-02\",\"heartbeat\":\"2024-01-02T03:04:05Z\"}");
	ASSERT_STR_EQ(str(b, "PartitionKey"), "p");
	ASSERT_STR_EQ(str(b, "RowKey"), "r");
	ASSERT_STR_EQ(str(b, "state"), "running");
	ASSERT_NULL(str(b, "state@odata.type"));
	ASSERT(num(b, "exitCode") == 0);
	ASSERT(num(b, "cpus") == -2147483648.0);
	ASSERT_NULL(str(b, "cpus@odata.type"));
	ASSERT_STR_EQ(str(b, "memoryBytes"), "17179869184");
	ASSERT_STR_EQ(str(b, "memoryBytes@odata.type"), "Edm.Int64");
	ASSERT_STR_EQ(str(b, "neg"), "-5000000000000");
	ASSERT_STR_EQ(str(b, "neg@odata.type"), "Edm.Int64");
	ASSERT(num(b, "ratio") == 0.25);
	ASSERT_STR_EQ(str(b, "ratio@odata.type"), "Edm.Double");
	ASSERT(cJSON_IsTrue(cJSON_GetObjectItem(b, "ok")));
	ASSERT_NULL(cJSON_GetObjectItem(b, "gone"));
	ASSERT_STR_EQ(str(b, "startTime@odata.type"), "Edm.DateTime");
	ASSERT_STR_EQ(str(b, "endTime@odata.type"), "Edm.DateTime");
	ASSERT_STR_EQ(str(b, "lastHeartbeat@odata.type"), "Edm.DateTime");
	/* Not times: stored as the strings they are. */
	ASSERT_STR_EQ(str(b, "creationTime"), "not a time");
	ASSERT_NULL(str(b, "creationTime@odata.type"));
	ASSERT_NULL(str(b, "queuedTime@odata.type"));
	ASSERT_NULL(str(b, "otherTime@odata.type"));
	ASSERT_NULL(str(b, "dateTime@odata.type"));
	ASSERT_NULL(str(b, "heartbeat@odata.type"));
	cJSON_Delete(b);

	/* No properties at all. */
	ASSERT_INT_EQ(bd_table_entity_json("p", "r", NULL, &out, &cause), 0);
	ASSERT_STR_EQ(out, "{\"PartitionKey\":\"p\",\"RowKey\":\"r\"}");
	free(out);

	refused("{\"a\":{\"b\":1}}", "not a string, number or boolean");
	refused("{\"a\":[1]}", "not a string, number or boolean");
	refused("{\"a-b\":1}", "not an identifier");
	refused("{\"1a\":1}", "not an identifier");
	refused("{\"a@odata.type\":\"Edm.Int64\"}", "not an identifier");
	refused("{\"PartitionKey\":\"x\"}", "service's own");
	refused("{\"Timestamp\":\"x\"}", "service's own");
	refused("{\"a\":1,\"a\":2}", "twice");
	refused("[1]", "not an object");
	b = cJSON_CreateObject();
	ASSERT_INT_EQ(bd_table_entity_json("a/b", "r", b, &out, &cause),
	    BD_EINVALID);
	free(cause);
	cJSON_Delete(b);
}

TEST(entity_parse)
{
	static const char doc[] = "{\"odata.metadata\":\"http://x/$metadata\","
	    "\"odata.etag\":\"W/\\\"datetime'2024-01-02T03%3A04%3A05.1Z'\\\"\","
	    "\"PartitionKey\":\"job\",\"RowKey\":\"t1\","
	    "\"Timestamp\":\"2024-01-02T03:04:05.1Z\","
	    "\"state\":\"completed\",\"exitCode\":3,"
	    "\"memoryBytes@odata.type\":\"Edm.Int64\","
	    "\"memoryBytes\":\"17179869184\","
	    "\"bad@odata.type\":\"Edm.Int64\",\"bad\":\"12x\","
	    "\"startTime@odata.type\":\"Edm.DateTime\","
	    "\"startTime\":\"2024-01-02T03:04:05.1230000Z\","
	    "\"endTime@odata.type\":\"Edm.DateTime\","
	    "\"endTime\":\"2024-01-02T03:04:05.0000000Z\","
	    "\"g@odata.type\":\"Edm.Guid\","
	    "\"g\":\"c9da6455-213d-42c9-9a79-3e9149a57833\","
	    "\"ratio\":0.5,\"ok\":false,\"nested\":{\"x\":1},\"n\":null}";
	struct bd_table_entity *e;
	cJSON *obj = cJSON_Parse(doc);
	char *cause = NULL;

	ASSERT_NOT_NULL(obj);
	ASSERT_INT_EQ(bd_table_entity_parse(obj, NULL, &e, &cause), 0);
	ASSERT_STR_EQ(e->partition_key, "job");
	ASSERT_STR_EQ(e->row_key, "t1");
	ASSERT_STR_EQ(e->etag, "W/\"datetime'2024-01-02T03%3A04%3A05.1Z'\"");
	ASSERT_STR_EQ(str(e->props, "state"), "completed");
	ASSERT(num(e->props, "exitCode") == 3);
	ASSERT(num(e->props, "memoryBytes") == 17179869184.0);
	ASSERT_STR_EQ(str(e->props, "bad"), "12x");
	ASSERT_STR_EQ(str(e->props, "startTime"), "2024-01-02T03:04:05.123Z");
	ASSERT_STR_EQ(str(e->props, "endTime"), "2024-01-02T03:04:05Z");
	ASSERT_STR_EQ(str(e->props, "g"), "c9da6455-213d-42c9-9a79-3e9149a57833");
	ASSERT(num(e->props, "ratio") == 0.5);
	ASSERT(cJSON_IsFalse(cJSON_GetObjectItem(e->props, "ok")));
	ASSERT_NULL(cJSON_GetObjectItem(e->props, "Timestamp"));
	ASSERT_NULL(cJSON_GetObjectItem(e->props, "PartitionKey"));
	ASSERT_NULL(cJSON_GetObjectItem(e->props, "odata.etag"));
	ASSERT_NULL(cJSON_GetObjectItem(e->props, "memoryBytes@odata.type"));
	ASSERT_NULL(cJSON_GetObjectItem(e->props, "nested"));
	ASSERT_NULL(cJSON_GetObjectItem(e->props, "n"));
	ASSERT_INT_EQ(cJSON_GetArraySize(e->props), 9);
	bd_table_entity_free(e);

	/* The ETag header wins over odata.etag. */
	ASSERT_INT_EQ(bd_table_entity_parse(obj, "W/\"x\"", &e, &cause), 0);
	ASSERT_STR_EQ(e->etag, "W/\"x\"");
	bd_table_entity_free(e);
	cJSON_Delete(obj);

	obj = cJSON_Parse("{\"RowKey\":\"r\"}");
	ASSERT_INT_EQ(bd_table_entity_parse(obj, NULL, &e, &cause),
	    BD_EINVALID);
	ASSERT_NULL(e);
	free(cause);
	cJSON_Delete(obj);
	obj = cJSON_Parse("[]");
	ASSERT_INT_EQ(bd_table_entity_parse(obj, NULL, &e, &cause),
	    BD_EINVALID);
	free(cause);
	cJSON_Delete(obj);
	ASSERT_INT_EQ(bd_table_entity_parse(NULL, NULL, &e, &cause),
	    BD_EINVALID);
	free(cause);
}

/* --- Harness ----------------------------------------------------------- */

/* s quoted for the shell: '...' with each ' as '\''.  Caller frees. */
static char *
shq(const char *s)
{
	char *out = xmalloc(strlen(s) * 4 + 3), *p = out;

	*p++ = '\'';
	for (; *s != '\0'; s++) {
		if (*s == '\'') {
			memcpy(p, "'\\''", 4);
			p += 4;
		} else
			*p++ = *s;
	}
	*p++ = '\'';
	*p = '\0';
	return out;
}

/* --- Callbacks ------------------------------------------------------- */

/* What a table callback saw. */
struct done {
	int calls;
	int status;
	char *detail;
	char *etag;
	struct bd_table_entity *e;
	struct bd_table_entity **rows;
	size_t n;
};

static void
on_write(void *arg, int status, const char *etag, const char *detail)
{
	struct done *d = arg;

	d->calls++;
	d->status = status;
	d->detail = detail != NULL ? xstrdup(detail) : NULL;
	d->etag = etag != NULL ? xstrdup(etag) : NULL;
	ASSERT(status == 0 ? detail == NULL : detail != NULL);
	if (detail != NULL && strstr(detail, BD_STORAGE_DEV_KEY) != NULL)
		UNIT_FAIL("the account key in \"%s\"", detail);
}

static void
on_entity(void *arg, int status, struct bd_table_entity *e,
    const char *detail)
{
	struct done *d = arg;

	on_write(d, status, NULL, detail);
	ASSERT(status == 0 ? e != NULL : e == NULL);
	d->e = e;
}

static void
on_query(void *arg, int status, struct bd_table_entity **rows, size_t n,
    const char *detail)
{
	struct done *d = arg;

	on_write(d, status, NULL, detail);
	d->rows = rows;
	d->n = n;
}

/* Runs the loop until d's callback ran once. */
static void
wait_done(struct done *d)
{
	while (d->calls == 0)
		uv_run(&loop, UV_RUN_ONCE);
	ASSERT_INT_EQ(d->calls, 1);
	if (d->status != 0)
		fprintf(stderr, "   status %d: %s\n", d->status,
		    d->detail ? d->detail : "");
}

static void
done_clear(struct done *d)
{
	size_t i;

	free(d->detail);
	free(d->etag);
	bd_table_entity_free(d->e);
	for (i = 0; i < d->n; i++)
		bd_table_entity_free(d->rows[i]);
	free(d->rows);
	memset(d, 0, sizeof(*d));
}

/* Synchronous wrappers: each asserts the status it expects and returns
   the ETag written (caller frees) or NULL. */
static char *
write_sync(char kind, const char *table, const char *pk, const char *rk,
    const char *props_json, const char *etag, int want)
{
	cJSON *props = props_json != NULL ? cJSON_Parse(props_json) : NULL;
	struct done d = { 0 };
	char *cause = NULL, *out;
	int rc;

	ASSERT(props_json == NULL || props != NULL);
	switch (kind) {
	case 'i':
		rc = bd_table_insert(tc, table, pk, rk, props, on_write, &d,
		    &cause);
		break;
	case 'r':
		rc = bd_table_replace(tc, table, pk, rk, props, etag, on_write,
		    &d, &cause);
		break;
	case 'm':
		rc = bd_table_merge(tc, table, pk, rk, props, etag, on_write,
		    &d, &cause);
		break;
	default:
		rc = bd_table_remove(tc, table, pk, rk, etag, on_write, &d,
		    &cause);
		break;
	}
	cJSON_Delete(props);
	if (rc != 0)
		UNIT_FAIL("start: %d %s", rc, cause ? cause : "");
	wait_done(&d);
	ASSERT_INT_EQ(d.status, want);
	if (want == 0 && kind != 'd')
		ASSERT_NOT_NULL(d.etag);
	out = d.etag;
	d.etag = NULL;
	done_clear(&d);
	return out;
}

/* Get Entity into d (cleared by the caller). */
static void
get(const char *table, const char *pk, const char *rk, struct done *d,
    int want)
{
	char *cause = NULL;

	ASSERT_INT_EQ(bd_table_get(tc, table, pk, rk, on_entity, d, &cause),
	    0);
	wait_done(d);
	ASSERT_INT_EQ(d->status, want);
}

/* Query into d (cleared by the caller). */
static void
query(struct bd_table_client *c, const char *table, const char *pk,
    struct done *d, int want)
{
	char *cause = NULL;

	ASSERT_INT_EQ(bd_table_query(c, table, pk, on_query, d, &cause), 0);
	wait_done(d);
	ASSERT_INT_EQ(d->status, want);
}

static void
create(const char *table, int want)
{
	struct done d = { 0 };

	ASSERT_INT_EQ(bd_table_create(tc, table, on_write, &d), 0);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, want);
	done_clear(&d);
}

/* --- Against Azurite --------------------------------------------------- */

TEST(create)
{
	struct done d = { 0 };

	create("batchdtasks", 0);
	create("batchdtasks", 0);	/* exists: still fine */
	ASSERT_INT_EQ(bd_table_create(tc, "bad-name", on_write, &d),
	    BD_EINVALID);
	ASSERT_INT_EQ(d.calls, 0);
}

TEST(crud)
{
	struct done d = { 0 };
	char *e1, *e2, *e3, *cause = NULL;

	e1 = write_sync('i', "batchdtasks", "job1", "t1",
	    "{\"state\":\"active\",\"spec\":\"{\\\"id\\\":\\\"t1\\\"}\","
	    "\"retryCount\":0}", NULL, 0);
	free(write_sync('i', "batchdtasks", "job1", "t1", "{}", NULL,
	    -EEXIST));

	get("batchdtasks", "job1", "t1", &d, 0);
	ASSERT_STR_EQ(d.e->partition_key, "job1");
	ASSERT_STR_EQ(d.e->row_key, "t1");
	ASSERT_STR_EQ(d.e->etag, e1);
	ASSERT_STR_EQ(str(d.e->props, "state"), "active");
	ASSERT_STR_EQ(str(d.e->props, "spec"), "{\"id\":\"t1\"}");
	ASSERT(num(d.e->props, "retryCount") == 0);
	ASSERT_INT_EQ(cJSON_GetArraySize(d.e->props), 3);
	done_clear(&d);

	/* Merge keeps what it does not name. */
	e2 = write_sync('m', "batchdtasks", "job1", "t1",
	    "{\"state\":\"running\",\"nodeId\":\"n1\"}", e1, 0);
	ASSERT(strcmp(e1, e2) != 0);
	get("batchdtasks", "job1", "t1", &d, 0);
	ASSERT_STR_EQ(d.e->etag, e2);
	ASSERT_STR_EQ(str(d.e->props, "state"), "running");
	ASSERT_STR_EQ(str(d.e->props, "nodeId"), "n1");
	ASSERT_STR_EQ(str(d.e->props, "spec"), "{\"id\":\"t1\"}");
	done_clear(&d);

	/* The old ETag no longer matches. */
	free(write_sync('m', "batchdtasks", "job1", "t1", "{\"x\":1}", e1,
	    -ESTALE));
	free(write_sync('r', "batchdtasks", "job1", "t1", "{\"x\":1}", e1,
	    -ESTALE));

	/* Replace drops what it does not name. */
	e3 = write_sync('r', "batchdtasks", "job1", "t1",
	    "{\"state\":\"completed\",\"exitCode\":0}", e2, 0);
	get("batchdtasks", "job1", "t1", &d, 0);
	ASSERT_STR_EQ(str(d.e->props, "state"), "completed");
	ASSERT_NULL(cJSON_GetObjectItem(d.e->props, "spec"));
	ASSERT_INT_EQ(cJSON_GetArraySize(d.e->props), 2);
	done_clear(&d);

	/* "*" matches any version of a row that exists. */
	free(e3);
	e3 = write_sync('m', "batchdtasks", "job1", "t1", "{\"y\":2}", "*", 0);
	free(write_sync('m', "batchdtasks", "job1", "nosuch", "{\"y\":2}",
	    "*", -ENOENT));
	free(write_sync('r', "batchdtasks", "job1", "nosuch", "{\"y\":2}",
	    e3, -ENOENT));

	/* Delete: a stale ETag fails, the right one works, then it is gone. */
	free(write_sync('d', "batchdtasks", "job1", "t1", NULL, e1, -ESTALE));
	free(write_sync('d', "batchdtasks", "job1", "t1", NULL, e3, 0));
	free(write_sync('d', "batchdtasks", "job1", "t1", NULL, NULL,
	    -ENOENT));
	get("batchdtasks", "job1", "t1", &d, -ENOENT);
	ASSERT_STR_CONTAINS(d.detail, "batchdtasks");
	ASSERT_STR_CONTAINS(d.detail, "404");
	done_clear(&d);
	free(e1);
	free(e2);
	free(e3);

	/* Bad input never reaches the wire. */
	ASSERT_INT_EQ(bd_table_get(tc, "batchdtasks", "a/b", "r", on_entity,
	    &d, &cause), BD_EINVALID);
	ASSERT_STR_CONTAINS(cause, "'/'");
	free(cause);
	ASSERT_INT_EQ(bd_table_remove(tc, "batchdtasks", "a", "r?", NULL,
	    on_write, &d, &cause), BD_EINVALID);
	free(cause);
	ASSERT_INT_EQ(bd_table_merge(tc, "batchdtasks", "a", "r", NULL,
	    "W/\"x\"\r\nX-Evil: 1", on_write, &d, &cause), BD_EINVALID);
	free(cause);
	ASSERT_INT_EQ(bd_table_query(tc, "x", NULL, on_query, &d, &cause),
	    BD_EINVALID);
	free(cause);
	ASSERT_INT_EQ(d.calls, 0);
}

TEST(race)
{
	struct done a = { 0 }, b = { 0 };
	cJSON *pa = cJSON_Parse("{\"state\":\"running\",\"nodeId\":\"a\"}");
	cJSON *pb = cJSON_Parse("{\"state\":\"running\",\"nodeId\":\"b\"}");
	char *e0, *cause = NULL;
	int round;

	e0 = write_sync('i', "batchdtasks", "race", "t",
	    "{\"state\":\"active\"}", NULL, 0);
	for (round = 0; round < 2; round++) {
		/* Two nodes take the task with the ETag both read. */
		if (round == 0) {
			ASSERT_INT_EQ(bd_table_merge(tc, "batchdtasks", "race",
			    "t", pa, e0, on_write, &a, &cause), 0);
			ASSERT_INT_EQ(bd_table_merge(tc, "batchdtasks", "race",
			    "t", pb, e0, on_write, &b, &cause), 0);
		} else {
			ASSERT_INT_EQ(bd_table_replace(tc, "batchdtasks",
			    "race", "t", pa, e0, on_write, &a, &cause), 0);
			ASSERT_INT_EQ(bd_table_replace(tc, "batchdtasks",
			    "race", "t", pb, e0, on_write, &b, &cause), 0);
		}
		wait_done(&a);
		wait_done(&b);
		ASSERT((a.status == 0 && b.status == -ESTALE) ||
		    (a.status == -ESTALE && b.status == 0));
		free(e0);
		e0 = xstrdup(a.status == 0 ? a.etag : b.etag);
		done_clear(&a);
		done_clear(&b);
	}
	free(e0);
	cJSON_Delete(pa);
	cJSON_Delete(pb);
}

TEST(upsert)
{
	struct done d = { 0 };

	/* Insert Or Replace and Insert Or Merge create rows... */
	free(write_sync('r', "batchdtasks", "up", "a", "{\"v\":1,\"w\":1}",
	    NULL, 0));
	free(write_sync('m', "batchdtasks", "up", "b", "{\"v\":1,\"w\":1}",
	    NULL, 0));
	/* ...and overwrite or merge into rows that exist. */
	free(write_sync('r', "batchdtasks", "up", "a", "{\"v\":2}", NULL, 0));
	free(write_sync('m', "batchdtasks", "up", "b", "{\"v\":2}", NULL, 0));
	get("batchdtasks", "up", "a", &d, 0);
	ASSERT(num(d.e->props, "v") == 2);
	ASSERT_NULL(cJSON_GetObjectItem(d.e->props, "w"));
	done_clear(&d);
	get("batchdtasks", "up", "b", &d, 0);
	ASSERT(num(d.e->props, "v") == 2);
	ASSERT(num(d.e->props, "w") == 1);
	done_clear(&d);
}

/* The {value, type} of property name in the SDK's JSON; asserts both. */
static void
sdk_prop(const cJSON *o, const char *name, const char *value,
    const char *type)
{
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, name);

	if (p == NULL)
		UNIT_FAIL("the SDK sees no property %s", name);
	ASSERT_STR_EQ(str(p, "value"), value);
	ASSERT_STR_EQ(str(p, "type"), type);
}

TEST(types)
{
	struct done d = { 0 };
	cJSON *o;
	char *out;

	free(write_sync('i', "batchdnodes", "pool", "node1",
	    "{\"state\":\"idle\",\"cpus\":8,\"memoryBytes\":17179869184,"
	    "\"big\":-9007199254740992,\"load\":0.75,\"up\":true,"
	    "\"startTime\":\"2024-01-02T03:04:05.123Z\","
	    "\"endTime\":\"2024-01-02T03:04:05Z\","
	    "\"lastHeartbeat\":\"2024-02-29T23:59:59.5Z\","
	    "\"creationTime\":\"someday\"}", NULL, 0));
	get("batchdnodes", "pool", "node1", &d, 0);
	ASSERT_STR_EQ(str(d.e->props, "state"), "idle");
	ASSERT(num(d.e->props, "cpus") == 8);
	ASSERT(num(d.e->props, "memoryBytes") == 17179869184.0);
	ASSERT(num(d.e->props, "big") == -9007199254740992.0);
	ASSERT(num(d.e->props, "load") == 0.75);
	ASSERT(cJSON_IsTrue(cJSON_GetObjectItem(d.e->props, "up")));
	ASSERT_STR_EQ(str(d.e->props, "startTime"), "2024-01-02T03:04:05.123Z");
	ASSERT_STR_EQ(str(d.e->props, "endTime"), "2024-01-02T03:04:05Z");
	ASSERT_STR_EQ(str(d.e->props, "lastHeartbeat"),
	    "2024-02-29T23:59:59.5Z");
	ASSERT_STR_EQ(str(d.e->props, "creationTime"), "someday");
	ASSERT_INT_EQ(cJSON_GetArraySize(d.e->props), 10);
	done_clear(&d);

	/* The official SDK reads the types we meant. */
	out = az_storagetool("table-get batchdnodes pool node1");
	ASSERT_NOT_NULL(o = cJSON_Parse(out));
	sdk_prop(o, "state", "idle", "String");
	sdk_prop(o, "cpus", "8", "Int32");
	sdk_prop(o, "memoryBytes", "17179869184", "Int64");
	sdk_prop(o, "big", "-9007199254740992", "Int64");
	sdk_prop(o, "load", "0.75", "Double");
	sdk_prop(o, "up", "true", "Boolean");
	sdk_prop(o, "startTime", "2024-01-02T03:04:05.123Z", "DateTime");
	sdk_prop(o, "lastHeartbeat", "2024-02-29T23:59:59.5Z", "DateTime");
	sdk_prop(o, "creationTime", "someday", "String");
	cJSON_Delete(o);
	free(out);

	/* What the SDK writes, we read with the right types. */
	free(az_storagetool("table-put-typed batchdnodes pool fromsdk"));
	get("batchdnodes", "pool", "fromsdk", &d, 0);
	ASSERT_STR_EQ(str(d.e->props, "name"), "\xc3\xbc\xc3\xb1\xc3\xad <&> 'q'");
	ASSERT(num(d.e->props, "small") == 42);
	ASSERT(num(d.e->props, "negative") == -7);
	ASSERT(num(d.e->props, "memoryBytes") == 17179869184.0);
	ASSERT(num(d.e->props, "ratio") == 0.25);
	ASSERT(cJSON_IsTrue(cJSON_GetObjectItem(d.e->props, "enabled")));
	ASSERT_STR_EQ(str(d.e->props, "startTime"), "2024-01-02T03:04:05.123Z");
	ASSERT_STR_EQ(str(d.e->props, "lastHeartbeat"), "2024-05-06T07:08:09Z");
	ASSERT_STR_EQ(str(d.e->props, "blob"), "AQID+g==");
	ASSERT_STR_EQ(str(d.e->props, "guid"),
	    "c9da6455-213d-42c9-9a79-3e9149a57833");
	ASSERT_NOT_NULL(d.e->etag);
	done_clear(&d);
}

TEST(odd_keys)
{
	static const char *const keys[] = {
		"o'brien's", "''", "a b%20c(1),=&+;:@$!*~", "\xc3\xbc\xe2\x82\xac",
		"", "x'",
	};
	struct done d = { 0 };
	char *etag, *q, *out;
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		etag = write_sync('i', "batchdjobs", keys[i], keys[i],
		    "{\"v\":1}", NULL, 0);
		get("batchdjobs", keys[i], keys[i], &d, 0);
		ASSERT_STR_EQ(d.e->partition_key, keys[i]);
		ASSERT_STR_EQ(d.e->row_key, keys[i]);
		done_clear(&d);
		free(write_sync('m', "batchdjobs", keys[i], keys[i],
		    "{\"w\":2}", etag, 0));
		free(etag);
	}
	/* A quote in the filter: the partition's rows and no other. */
	free(write_sync('i', "batchdjobs", "o'brien's", "second", NULL, NULL,
	    0));
	free(write_sync('i', "batchdjobs", "o", "x", NULL, NULL, 0));
	free(write_sync('i', "batchdjobs", "o'brien", "x", NULL, NULL, 0));
	query(tc, "batchdjobs", "o'brien's", &d, 0);
	ASSERT_INT_EQ(d.n, 2);
	for (i = 0; i < d.n; i++) {
		ASSERT_STR_EQ(d.rows[i]->partition_key, "o'brien's");
		ASSERT_NOT_NULL(d.rows[i]->etag);
	}
	done_clear(&d);
	query(tc, "batchdjobs", "''", &d, 0);
	ASSERT_INT_EQ(d.n, 1);
	ASSERT(num(d.rows[0]->props, "w") == 2);
	ASSERT(num(d.rows[0]->props, "v") == 1);
	done_clear(&d);
	q = shq("o'brien's");
	out = az_storagetool("table-count batchdjobs %s", q);
	ASSERT_STR_EQ(out, "2");
	free(out);
	free(q);
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		free(write_sync('d', "batchdjobs", keys[i], keys[i], NULL,
		    NULL, 0));
}

TEST(query_pages)
{
	struct bd_table_options o = { .max_query_rows = MANY - 1 };
	struct bd_table_client *small;
	struct done *d = xcalloc(MANY, sizeof(*d)), q = { 0 };
	cJSON *props = cJSON_CreateObject();
	char rk[32], *cause = NULL;
	bool *seen = xcalloc(MANY, sizeof(*seen));
	size_t i;
	int k;

	/* 1,200 inserts at once: http queues what it cannot send yet. */
	for (k = 0; k < MANY; k++) {
		snprintf(rk, sizeof(rk), "t%05d", k);
		cJSON_DeleteItemFromObject(props, "n");
		cJSON_AddNumberToObject(props, "n", k);
		ASSERT_INT_EQ(bd_table_insert(tc, "batchdtasks", "bigjob", rk,
		    props, on_write, &d[k], &cause), 0);
	}
	for (k = 0; k < MANY; k++) {
		wait_done(&d[k]);
		ASSERT_INT_EQ(d[k].status, 0);
		done_clear(&d[k]);
	}
	free(d);
	cJSON_Delete(props);
	free(write_sync('i', "batchdtasks", "otherjob", "t", NULL, NULL, 0));

	query(tc, "batchdtasks", "bigjob", &q, 0);
	ASSERT_INT_EQ(q.n, MANY);
	for (i = 0; i < q.n; i++) {
		ASSERT_STR_EQ(q.rows[i]->partition_key, "bigjob");
		ASSERT_INT_EQ(sscanf(q.rows[i]->row_key, "t%d", &k), 1);
		ASSERT(k >= 0 && k < MANY && !seen[k]);
		ASSERT(num(q.rows[i]->props, "n") == k);
		ASSERT_NOT_NULL(q.rows[i]->etag);
		seen[k] = true;
	}
	done_clear(&q);
	free(seen);

	/* The whole table: every partition. */
	query(tc, "batchdtasks", NULL, &q, 0);
	ASSERT(q.n >= MANY + 1);
	done_clear(&q);

	/* More rows than allowed. */
	ASSERT_INT_EQ(bd_table_client_new(http, account, &o, &small, &cause),
	    0);
	query(small, "batchdtasks", "bigjob", &q, BD_ETOOBIG);
	ASSERT_NULL(q.rows);
	done_clear(&q);
	bd_table_client_free(small);

	/* An empty partition. */
	query(tc, "batchdtasks", "nosuchjob", &q, 0);
	ASSERT_INT_EQ(q.n, 0);
	done_clear(&q);
}

TEST(errors)
{
	struct bd_storage_account *bad;
	struct bd_table_client *bc;
	struct done d = { 0 };
	char *conn, *cause = NULL, *big, *props;

	/* A property over Azure's 64 KiB. */
	big = xmalloc(70000);
	memset(big, 'x', 69999);
	big[69999] = '\0';
	props = xasprintf("{\"spec\":\"%s\"}", big);
	free(write_sync('i', "batchdtasks", "big", "t", props, NULL,
	    BD_ETOOBIG));
	free(props);
	free(big);

	/* A missing table. */
	free(write_sync('i', "nosuchtable", "p", "r", NULL, NULL, -ENOENT));
	query(tc, "nosuchtable", "p", &d, -ENOENT);
	done_clear(&d);

	/* A wrong key: refused, and the key never shows. */
	conn = xasprintf("DefaultEndpointsProtocol=http;AccountName="
	    "devstoreaccount1;AccountKey=%s;TableEndpoint="
	    "http://127.0.0.1:%d/devstoreaccount1;",
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==",
	    ports.table);
	ASSERT_INT_EQ(bd_storage_account_parse(conn, &bad, &cause), 0);
	ASSERT_INT_EQ(bd_table_client_new(http, bad, NULL, &bc, &cause), 0);
	ASSERT_INT_EQ(bd_table_get(bc, "batchdtasks", "p", "r", on_entity, &d,
	    &cause), 0);
	/* The client may go while its request runs. */
	bd_table_client_free(bc);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, BD_EDENIED);
	done_clear(&d);
	bd_storage_account_free(bad);
	free(conn);

	ASSERT_INT_EQ(bd_storage_account_new("x", NULL, NULL, NULL, NULL, &bad,
	    &cause), 0);
	ASSERT_INT_EQ(bd_table_client_new(http, bad, NULL, &bc, &cause),
	    BD_EINVALID);
	ASSERT_STR_CONTAINS(cause, "table endpoint");
	free(cause);
	bd_storage_account_free(bad);

	/* Delete Table, then it is missing. */
	create("scratch", 0);
	ASSERT_INT_EQ(bd_table_delete(tc, "scratch", on_write, &d), 0);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, 0);
	done_clear(&d);
	ASSERT_INT_EQ(bd_table_delete(tc, "scratch", on_write, &d), 0);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, -ENOENT);
	done_clear(&d);
}

TEST(sas)
{
	struct bd_storage_account *a;
	struct bd_table_client *saved = tc;
	struct done d = { 0 };
	char *sas, *conn, *cause = NULL, *etag;
	int i;

	/* A SAS in the URL instead of a key: valid, then expired. */
	for (i = 0; i < 2; i++) {
		sas = az_storagetool("account-sas %d", i == 0 ? 3600 : -60);
		conn = xasprintf("TableEndpoint=http://127.0.0.1:%d/"
		    "devstoreaccount1;SharedAccessSignature=%s", ports.table,
		    sas);
		ASSERT_INT_EQ(bd_storage_account_parse(conn, &a, &cause), 0);
		ASSERT_NULL(a->key);
		ASSERT_INT_EQ(bd_table_client_new(http, a, NULL, &tc, &cause),
		    0);
		if (i == 0) {
			create("sastable", 0);
			etag = write_sync('i', "sastable", "o'p", "r",
			    "{\"v\":1}", NULL, 0);
			free(write_sync('m', "sastable", "o'p", "r",
			    "{\"w\":2}", etag, 0));
			free(etag);
			get("sastable", "o'p", "r", &d, 0);
			ASSERT(num(d.e->props, "w") == 2);
			done_clear(&d);
			query(tc, "sastable", "o'p", &d, 0);
			ASSERT_INT_EQ(d.n, 1);
			done_clear(&d);
			free(write_sync('d', "sastable", "o'p", "r", NULL, NULL,
			    0));
		} else {
			get("sastable", "o'p", "r", &d, BD_EDENIED);
			ASSERT(strstr(d.detail, strstr(sas, "sig=") + 4) ==
			    NULL);
			done_clear(&d);
		}
		bd_table_client_free(tc);
		bd_storage_account_free(a);
		free(conn);
		free(sas);
	}
	tc = saved;
}

static void
on_http_closed(void *arg)
{
	*(bool *)arg = true;
}

int
main(void)
{
	char *conn, *cause = NULL;
	struct done d = { 0 };
	bool closed = false;

	setvbuf(stderr, NULL, _IONBF, 0);
	RUN(names);
	RUN(keys);
	RUN(entity_json);
	RUN(entity_parse);

	az_setup("table");
	az_use_node("@azure/data-tables");
	az_start(&ports);
	conn = az_connect(&ports, AZ_TABLE);
	ASSERT_INT_EQ(bd_storage_account_parse(conn, &account, &cause), 0);
	free(conn);

	ASSERT_INT_EQ(uv_loop_init(&loop), 0);
	ASSERT_INT_EQ(bd_http_new(&loop, NULL, &http), 0);
	ASSERT_INT_EQ(bd_table_client_new(http, account, NULL, &tc, &cause),
	    0);

	RUN(create);
	create("batchdjobs", 0);
	create("batchdnodes", 0);
	RUN(crud);
	RUN(race);
	RUN(upsert);
	RUN(types);
	RUN(odd_keys);
	RUN(query_pages);
	RUN(errors);
	RUN(sas);

	/* A query in flight when http closes ends with -ECANCELED. */
	ASSERT_INT_EQ(bd_table_query(tc, "batchdtasks", NULL, on_query, &d,
	    &cause), 0);
	bd_table_client_free(tc);
	bd_http_close(http, on_http_closed, &closed);
	while (!closed)
		uv_run(&loop, UV_RUN_ONCE);
	ASSERT_INT_EQ(d.calls, 1);
	ASSERT_INT_EQ(d.status, -ECANCELED);
	done_clear(&d);
	uv_run(&loop, UV_RUN_DEFAULT);
	ASSERT_INT_EQ(uv_loop_close(&loop), 0);
	bd_storage_account_free(account);
	return 0;
}
