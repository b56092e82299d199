/* SPDX-License-Identifier: MIT */
/*
 * Tests of the daemon's "azure" backends, agent/source_azure.c and
 * agent/store_azure.c, through the ops structs of source.h and store.h
 * only, against a real Azurite started by tests/lib/azurite-harness.sh:
 * the lease cycle of a task message (receive, renew, lose, give back,
 * delete), the poison queue, and the task table's ETag-guarded moves to
 * running and completed as docs/protocol.md §3 and §4 make them.  The
 * official SDK (tests/lib/node/storagetool.js) checks the poison queue
 * from outside.  Skipped with 77 only when node or npm is missing.
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
#include "source.h"
#include "source_azure.h"
#include "storage_auth.h"
#include "store.h"
#include "store_azure.h"
#include "unit.h"
#include "xmalloc.h"

static uv_loop_t loop;
static struct bd_http *http;
static struct bd_storage_account *account;
static struct bd_source *src;
static struct bd_store *store;

/* --- Callbacks ------------------------------------------------------- */

/* What a backend callback saw. */
struct done {
	int calls;
	int status;
	char *detail;
	struct bd_message **msgs;
	size_t n;
	char *etag;
	struct bd_entity *e;
	struct bd_entity **rows;
};

static void
on_done(void *arg, int status, const char *detail)
{
	struct done *d = arg;

	d->calls++;
	d->status = status;
	d->detail = detail != NULL ? xstrdup(detail) : NULL;
	if (detail != NULL && strstr(detail, BD_STORAGE_DEV_KEY) != NULL)
		UNIT_FAIL("the account key in \"%s\"", detail);
}

static void
on_receive(void *arg, int status, struct bd_message **msgs, size_t n,
    const char *detail)
{
	struct done *d = arg;

	on_done(d, status, detail);
	d->msgs = msgs;
	d->n = n;
}

static void
on_write(void *arg, int status, const char *etag, const char *detail)
{
	struct done *d = arg;

	on_done(d, status, detail);
	d->etag = etag != NULL ? xstrdup(etag) : NULL;
}

static void
on_entity(void *arg, int status, struct bd_entity *e, const char *detail)
{
	struct done *d = arg;

	on_done(d, status, detail);
	d->e = e;
}

static void
on_query(void *arg, int status, struct bd_entity **rows, size_t n,
    const char *detail)
{
	struct done *d = arg;

	on_done(d, status, detail);
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
	for (i = 0; d->msgs != NULL && i < d->n; i++)
		bd_message_free(d->msgs[i]);
	free(d->msgs);
	free(d->etag);
	bd_entity_free(d->e);
	for (i = 0; d->rows != NULL && i < d->n; i++)
		bd_entity_free(d->rows[i]);
	free(d->rows);
	memset(d, 0, sizeof(*d));
}

/* A copy of m (to keep an old lease). */
static struct bd_message *
message_dup(const struct bd_message *m)
{
	struct bd_message *c = xcalloc(1, sizeof(*c));

	*c = *m;
	c->id = xstrdup(m->id);
	c->pop_receipt = xstrdup(m->pop_receipt);
	c->text = xstrdup(m->text);
	return c;
}

/* Synchronous source calls: each asserts the status it expects. */
static void
send_msg(enum bd_queue_kind q, const char *text, int64_t delay_ms)
{
	struct done d = { 0 };

	ASSERT_INT_EQ(bd_source_send(src, q, text, delay_ms, on_done, &d), 0);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, 0);
	done_clear(&d);
}

static void
receive(int max, int64_t vis_ms, struct done *d)
{
	ASSERT_INT_EQ(bd_source_receive(src, max, vis_ms, on_receive, d), 0);
	wait_done(d);
	ASSERT_INT_EQ(d->status, 0);
}

static void
update(struct bd_message *m, int64_t vis_ms, const char *text, int want)
{
	struct done d = { 0 };

	ASSERT_INT_EQ(bd_source_update(src, m, vis_ms, text, on_done, &d), 0);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, want);
	done_clear(&d);
}

static void
remove_msg(const struct bd_message *m, int want)
{
	struct done d = { 0 };

	ASSERT_INT_EQ(bd_source_remove(src, m, on_done, &d), 0);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, want);
	done_clear(&d);
}

/* --- The task source --------------------------------------------------- */

TEST(source_new)
{
	struct bd_source *s = NULL;
	struct bd_storage_account *a;
	char *cause = NULL;

	ASSERT_INT_EQ(bd_source_azure_new(&loop, http, account, "Pool",
	    &s, &cause), BD_EINVALID);
	ASSERT_STR_CONTAINS(cause, "queue name");
	free(cause);
	/* 57 characters: the poison queue's name would pass 63. */
	ASSERT_INT_EQ(bd_source_azure_new(&loop, http, account,
	    "a23456789012345678901234567890123456789012345678901234567",
	    &s, &cause), BD_EINVALID);
	free(cause);
	ASSERT_INT_EQ(bd_source_azure_new(&loop, http, account,
	    "a2345678901234567890123456789012345678901234567890123456",
	    &s, &cause), 0);
	ASSERT_STR_EQ(s->ops->name, "azure");
	bd_source_free(s);
	ASSERT_INT_EQ(bd_storage_account_new("x", NULL, NULL, NULL, NULL, &a,
	    &cause), 0);
	ASSERT_INT_EQ(bd_source_azure_new(&loop, http, a, "pool-tasks", &s,
	    &cause), BD_EINVALID);
	ASSERT_NULL(s);
	free(cause);
	bd_storage_account_free(a);
}

TEST(source_create)
{
	struct done d = { 0 };

	ASSERT_INT_EQ(bd_source_create(src, on_done, &d), 0);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, 0);
	done_clear(&d);
	ASSERT_INT_EQ(bd_source_create(src, on_done, &d), 0);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, 0);
	done_clear(&d);
}

TEST(source_lease)
{
	static const char text[] = "{\"version\":1,\"jobId\":\"j\",\"task\":"
	    "{\"id\":\"t1\",\"commandLine\":\"echo <hi> & 'bye'\"},"
	    "\"retryCount\":0,\"requeueCount\":0}";
	struct done d = { 0 }, again = { 0 };
	struct bd_message *m, *old;
	int64_t t0 = az_now_ms();

	send_msg(BD_QUEUE_TASKS, text, 0);
	/* More than 32 asked: 32 is what the service allows. */
	receive(100, 1500, &d);
	ASSERT_INT_EQ(d.n, 1);
	m = d.msgs[0];
	ASSERT_STR_EQ(m->text, text);
	ASSERT_INT_EQ(m->dequeue_count, 1);
	ASSERT_NOT_NULL(m->id);
	ASSERT_NOT_NULL(m->pop_receipt);
	ASSERT(m->inserted_ms >= t0 - 5000 && m->inserted_ms <= t0 + 5000);
	/* 1.5 s rounds up to 2 s on the service. */
	ASSERT(m->visible_ms >= t0 + 1000 && m->visible_ms <= t0 + 4000);

	/* Leased: nobody else receives it. */
	receive(32, 30000, &again);
	ASSERT_INT_EQ(again.n, 0);
	done_clear(&again);

	/* Renew: a new receipt and visibility; the old receipt is dead. */
	old = message_dup(m);
	t0 = az_now_ms();
	update(m, 60000, NULL, 0);
	ASSERT(strcmp(m->pop_receipt, old->pop_receipt) != 0);
	ASSERT(m->visible_ms >= t0 + 55000 && m->visible_ms <= t0 + 65000);
	az_sleep_ms(&loop, 2500);
	receive(32, 30000, &again);
	ASSERT_INT_EQ(again.n, 0);
	done_clear(&again);
	update(old, 30000, NULL, -ENOENT);
	remove_msg(old, -ENOENT);
	bd_message_free(old);

	/* Give it back now with new text (a requeue). */
	update(m, 0, "{\"version\":1,\"requeueCount\":1}", 0);
	receive(32, 1000, &again);
	ASSERT_INT_EQ(again.n, 1);
	ASSERT_STR_EQ(again.msgs[0]->id, m->id);
	ASSERT_STR_EQ(again.msgs[0]->text, "{\"version\":1,\"requeueCount\":1}");
	ASSERT_INT_EQ(again.msgs[0]->dequeue_count, 2);

	/* m's lease is gone: the message was received again. */
	update(m, 30000, NULL, -ENOENT);
	remove_msg(m, -ENOENT);
	done_clear(&d);

	/* The new holder's lease runs out; a third receive takes it. */
	az_sleep_ms(&loop, 2000);
	receive(32, 30000, &d);
	ASSERT_INT_EQ(d.n, 1);
	ASSERT_INT_EQ(d.msgs[0]->dequeue_count, 3);
	remove_msg(again.msgs[0], -ENOENT);
	remove_msg(d.msgs[0], 0);
	remove_msg(d.msgs[0], -ENOENT);
	done_clear(&again);
	done_clear(&d);

	/* Nothing is left. */
	receive(32, 1000, &d);
	ASSERT_INT_EQ(d.n, 0);
	done_clear(&d);
}

TEST(source_send)
{
	struct done d = { 0 };
	char *out;
	size_t i;
	int k;

	/* A delayed message. */
	send_msg(BD_QUEUE_TASKS, "later", 1500);
	receive(32, 30000, &d);
	ASSERT_INT_EQ(d.n, 0);
	done_clear(&d);
	az_sleep_ms(&loop, 2600);
	receive(32, 30000, &d);
	ASSERT_INT_EQ(d.n, 1);
	ASSERT_STR_EQ(d.msgs[0]->text, "later");
	remove_msg(d.msgs[0], 0);
	done_clear(&d);

	/* Base64 as an SDK may send it: passed on as stored. */
	send_msg(BD_QUEUE_TASKS, "eyJ2ZXJzaW9uIjoxfQ==", 0);
	receive(1, 30000, &d);
	ASSERT_INT_EQ(d.n, 1);
	ASSERT_STR_EQ(d.msgs[0]->text, "eyJ2ZXJzaW9uIjoxfQ==");
	remove_msg(d.msgs[0], 0);
	done_clear(&d);

	/* The poison queue is <task queue>-poison. */
	send_msg(BD_QUEUE_POISON, "{\"poisoned\":true}", 0);
	out = az_storagetool("queue-take pool1-tasks-poison");
	ASSERT_STR_CONTAINS(out, "\"text\":\"{\\\"poisoned\\\":true}\"");
	free(out);

	/* A batch of 40: receives give 32, then 8. */
	for (k = 0; k < 40; k++)
		send_msg(BD_QUEUE_TASKS, "{}", 0);
	receive(40, 30000, &d);
	ASSERT_INT_EQ(d.n, 32);
	for (i = 0; i < d.n; i++)
		remove_msg(d.msgs[i], 0);
	done_clear(&d);
	receive(40, 30000, &d);
	ASSERT_INT_EQ(d.n, 8);
	for (i = 0; i < d.n; i++)
		remove_msg(d.msgs[i], 0);
	done_clear(&d);

	/* Bad arguments never reach the wire. */
	ASSERT_INT_EQ(bd_source_receive(src, 0, 1000, on_receive, &d),
	    BD_EINVALID);
	ASSERT_INT_EQ(bd_source_receive(src, 1, -1, on_receive, &d),
	    BD_EINVALID);
	ASSERT_INT_EQ(bd_source_send(src, BD_QUEUE_TASKS, "x", -5, on_done,
	    &d), BD_EINVALID);
	ASSERT_INT_EQ(bd_source_send(src, BD_QUEUE_TASKS, "\x01", 0, on_done,
	    &d), BD_EINVALID);
	ASSERT_INT_EQ(d.calls, 0);
}

/* --- The state store --------------------------------------------------- */

/* An entity with props from JSON text; caller frees. */
static struct bd_entity *
entity(const char *pk, const char *rk, const char *props_json)
{
	struct bd_entity *e = bd_entity_new(pk, rk);

	cJSON_Delete(e->props);
	e->props = cJSON_Parse(props_json);
	ASSERT_NOT_NULL(e->props);
	return e;
}

/* Writes (kind 'i', 'r', 'm') e to t; returns the ETag (caller frees). */
static char *
write_sync(char kind, enum bd_table t, struct bd_entity *e, const char *etag,
    int want)
{
	struct done d = { 0 };
	char *out;
	int rc;

	if (kind == 'i')
		rc = bd_store_insert(store, t, e, on_write, &d);
	else if (kind == 'r')
		rc = bd_store_replace(store, t, e, etag, on_write, &d);
	else
		rc = bd_store_merge(store, t, e, etag, on_write, &d);
	ASSERT_INT_EQ(rc, 0);
	bd_entity_free(e);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, want);
	ASSERT(want != 0 || d.etag != NULL);
	out = d.etag;
	d.etag = NULL;
	done_clear(&d);
	return out;
}

/* Reads pk/rk of t into d. */
static void
get(enum bd_table t, const char *pk, const char *rk, struct done *d, int want)
{
	ASSERT_INT_EQ(bd_store_get(store, t, pk, rk, on_entity, d), 0);
	wait_done(d);
	ASSERT_INT_EQ(d->status, want);
}

/* The string property name of e, or NULL. */
static const char *
prop_str(const struct bd_entity *e, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(e->props, name);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The number property name of e (it must be one). */
static double
prop_num(const struct bd_entity *e, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(e->props, name);

	if (!cJSON_IsNumber(v))
		UNIT_FAIL("%s is not a number", name);
	return v->valuedouble;
}

TEST(store_new)
{
	struct bd_store *s = NULL;
	struct bd_storage_account *a;
	char *cause = NULL;

	ASSERT_STR_EQ(store->ops->name, "azure");
	ASSERT_INT_EQ(bd_storage_account_new("x", NULL, NULL, NULL, NULL, &a,
	    &cause), 0);
	ASSERT_INT_EQ(bd_store_azure_new(&loop, http, a, &s, &cause),
	    BD_EINVALID);
	ASSERT_NULL(s);
	ASSERT_STR_CONTAINS(cause, "table endpoint");
	free(cause);
	bd_storage_account_free(a);
}

TEST(store_create)
{
	struct done d = { 0 };

	ASSERT_INT_EQ(bd_store_create(store, on_write, &d), 0);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, 0);
	done_clear(&d);
	ASSERT_INT_EQ(bd_store_create(store, on_write, &d), 0);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, 0);
	done_clear(&d);
}

TEST(store_task_life)
{
	struct done a = { 0 }, b = { 0 }, d = { 0 };
	struct bd_entity *ea, *eb;
	char *e0, *erun, *edone;

	/* A client adds the task. */
	e0 = write_sync('i', BD_TABLE_TASKS, entity("job1", "t1",
	    "{\"state\":\"active\",\"spec\":\"{\\\"id\\\":\\\"t1\\\"}\","
	    "\"retryCount\":0,\"requeueCount\":0}"), NULL, 0);
	free(write_sync('i', BD_TABLE_TASKS, entity("job1", "t1", "{}"), NULL,
	    -EEXIST));

	/* Two nodes read it and race to run it: one wins. */
	get(BD_TABLE_TASKS, "job1", "t1", &d, 0);
	ASSERT_STR_EQ(d.e->etag, e0);
	ASSERT_STR_EQ(prop_str(d.e, "state"), "active");
	done_clear(&d);
	ea = entity("job1", "t1", "{\"state\":\"running\",\"nodeId\":\"a\","
	    "\"startTime\":\"2024-01-02T03:04:05.250Z\"}");
	eb = entity("job1", "t1", "{\"state\":\"running\",\"nodeId\":\"b\","
	    "\"startTime\":\"2024-01-02T03:04:06Z\"}");
	ASSERT_INT_EQ(bd_store_merge(store, BD_TABLE_TASKS, ea, e0, on_write,
	    &a), 0);
	ASSERT_INT_EQ(bd_store_merge(store, BD_TABLE_TASKS, eb, e0, on_write,
	    &b), 0);
	bd_entity_free(ea);
	bd_entity_free(eb);
	wait_done(&a);
	wait_done(&b);
	ASSERT((a.status == 0) != (b.status == 0));
	ASSERT(a.status == -ESTALE || b.status == -ESTALE);
	erun = xstrdup(a.status == 0 ? a.etag : b.etag);

	/* The winner completes it on the ETag of its own running write. */
	edone = write_sync('m', BD_TABLE_TASKS, entity("job1", "t1",
	    "{\"state\":\"completed\",\"exitCode\":0,\"result\":\"success\","
	    "\"endTime\":\"2024-01-02T03:05:00Z\"}"), erun, 0);
	/* The loser's late completion fails. */
	free(write_sync('m', BD_TABLE_TASKS, entity("job1", "t1",
	    "{\"state\":\"completed\"}"), erun, -ESTALE));
	get(BD_TABLE_TASKS, "job1", "t1", &d, 0);
	ASSERT_STR_EQ(d.e->etag, edone);
	ASSERT_STR_EQ(prop_str(d.e, "state"), "completed");
	ASSERT_STR_EQ(prop_str(d.e, "nodeId"), a.status == 0 ? "a" : "b");
	ASSERT_STR_EQ(prop_str(d.e, "startTime"), a.status == 0 ?
	    "2024-01-02T03:04:05.25Z" : "2024-01-02T03:04:06Z");
	ASSERT_STR_EQ(prop_str(d.e, "endTime"), "2024-01-02T03:05:00Z");
	ASSERT_STR_EQ(prop_str(d.e, "spec"), "{\"id\":\"t1\"}");
	ASSERT(prop_num(d.e, "exitCode") == 0);
	done_clear(&d);
	done_clear(&a);
	done_clear(&b);

	/* Replace drops unnamed properties; upserts need no row. */
	free(write_sync('r', BD_TABLE_TASKS, entity("job1", "t1",
	    "{\"state\":\"active\"}"), edone, 0));
	get(BD_TABLE_TASKS, "job1", "t1", &d, 0);
	ASSERT_INT_EQ(cJSON_GetArraySize(d.e->props), 1);
	done_clear(&d);
	free(write_sync('r', BD_TABLE_TASKS, entity("job1", "t2",
	    "{\"state\":\"active\"}"), NULL, 0));
	free(write_sync('m', BD_TABLE_TASKS, entity("job1", "t3",
	    "{\"state\":\"active\"}"), NULL, 0));
	free(write_sync('m', BD_TABLE_TASKS, entity("job1", "t3",
	    "{\"nodeId\":\"c\"}"), NULL, 0));
	get(BD_TABLE_TASKS, "job1", "t3", &d, 0);
	ASSERT_STR_EQ(prop_str(d.e, "state"), "active");
	ASSERT_STR_EQ(prop_str(d.e, "nodeId"), "c");
	done_clear(&d);
	free(write_sync('m', BD_TABLE_TASKS, entity("job1", "nosuch",
	    "{\"x\":1}"), e0, -ENOENT));

	/* Remove: stale fails, NULL takes any version, then it is gone. */
	ASSERT_INT_EQ(bd_store_remove(store, BD_TABLE_TASKS, "job1", "t1", e0,
	    on_write, &d), 0);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, -ESTALE);
	done_clear(&d);
	ASSERT_INT_EQ(bd_store_remove(store, BD_TABLE_TASKS, "job1", "t1",
	    NULL, on_write, &d), 0);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, 0);
	done_clear(&d);
	get(BD_TABLE_TASKS, "job1", "t1", &d, -ENOENT);
	done_clear(&d);
	ASSERT_INT_EQ(bd_store_remove(store, BD_TABLE_TASKS, "job1", "t1",
	    NULL, on_write, &d), 0);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, -ENOENT);
	done_clear(&d);
	free(e0);
	free(erun);
	free(edone);
}

TEST(store_query)
{
	struct done d = { 0 };
	struct bd_entity *e;
	char rk[16];
	size_t i;
	int k;

	for (k = 0; k < 5; k++) {
		snprintf(rk, sizeof(rk), "node%d", k);
		free(write_sync('i', BD_TABLE_NODES, entity("pool1", rk,
		    "{\"state\":\"idle\",\"lastHeartbeat\":"
		    "\"2024-01-02T03:04:05Z\",\"memoryBytes\":68719476736,"
		    "\"totalSlots\":4}"), NULL, 0));
	}
	free(write_sync('i', BD_TABLE_NODES, entity("pool2", "node0",
	    "{\"state\":\"idle\"}"), NULL, 0));
	ASSERT_INT_EQ(bd_store_query(store, BD_TABLE_NODES, "pool1", on_query,
	    &d), 0);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, 0);
	ASSERT_INT_EQ(d.n, 5);
	for (i = 0; i < d.n; i++) {
		e = d.rows[i];
		ASSERT_STR_EQ(e->partition_key, "pool1");
		ASSERT_NOT_NULL(e->etag);
		ASSERT_STR_EQ(prop_str(e, "lastHeartbeat"),
		    "2024-01-02T03:04:05Z");
		ASSERT(prop_num(e, "memoryBytes") == 68719476736.0);
		ASSERT(prop_num(e, "totalSlots") == 4);
		ASSERT_NULL(cJSON_GetObjectItem(e->props, "Timestamp"));
	}
	done_clear(&d);
	ASSERT_INT_EQ(bd_store_query(store, BD_TABLE_NODES, NULL, on_query,
	    &d), 0);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, 0);
	ASSERT_INT_EQ(d.n, 6);
	done_clear(&d);
	ASSERT_INT_EQ(bd_store_query(store, BD_TABLE_JOBS, "nosuchpool",
	    on_query, &d), 0);
	wait_done(&d);
	ASSERT_INT_EQ(d.status, 0);
	ASSERT_INT_EQ(d.n, 0);
	done_clear(&d);

	/* Bad keys never reach the wire. */
	e = bd_entity_new("a/b", "r");
	ASSERT_INT_EQ(bd_store_insert(store, BD_TABLE_JOBS, e, on_write, &d),
	    BD_EINVALID);
	bd_entity_free(e);
	ASSERT_INT_EQ(bd_store_get(store, BD_TABLE_JOBS, "p", "r#1", on_entity,
	    &d), BD_EINVALID);
	ASSERT_INT_EQ(bd_store_query(store, BD_TABLE_JOBS, "p?", on_query,
	    &d), BD_EINVALID);
	ASSERT_INT_EQ(d.calls, 0);
}

static void
on_http_closed(void *arg)
{
	*(bool *)arg = true;
}

int
main(void)
{
	struct az_ports ports;
	char *conn, *cause = NULL;
	bool closed = false;

	setvbuf(stderr, NULL, _IONBF, 0);
	az_setup("azure");
	az_use_node("@azure/storage-queue");
	az_start(&ports);
	conn = az_connect(&ports, AZ_QUEUE | AZ_TABLE);
	ASSERT_INT_EQ(bd_storage_account_parse(conn, &account, &cause), 0);
	free(conn);

	ASSERT_INT_EQ(uv_loop_init(&loop), 0);
	ASSERT_INT_EQ(bd_http_new(&loop, NULL, &http), 0);
	ASSERT_INT_EQ(bd_source_azure_new(&loop, http, account, "pool1-tasks",
	    &src, &cause), 0);
	ASSERT_INT_EQ(bd_store_azure_new(&loop, http, account, &store, &cause),
	    0);

	RUN(source_new);
	RUN(source_create);
	RUN(source_lease);
	RUN(source_send);
	RUN(store_new);
	RUN(store_create);
	RUN(store_task_life);
	RUN(store_query);

	bd_source_free(src);
	bd_store_free(store);
	bd_http_close(http, on_http_closed, &closed);
	while (!closed)
		uv_run(&loop, UV_RUN_ONCE);
	uv_run(&loop, UV_RUN_DEFAULT);
	ASSERT_INT_EQ(uv_loop_close(&loop), 0);
	bd_storage_account_free(account);
	return 0;
}
