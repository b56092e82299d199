/* SPDX-License-Identifier: MIT */
/*
 * The local spool's state store on real files and real processes: every
 * operation and error code, key encoding and query order, ETag races
 * between two processes (one success, one -ESTALE), optimistic counters
 * incremented from two processes, and leftovers of a crash.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "error.h"
#include "fsutil.h"
#include "store_local.h"
#include "unit.h"
#include "spool_support.h"
#include "ext4_support.h"
#include "xmalloc.h"


struct wait {
	bool done;
	int status;
	char *etag;
	struct bd_entity *e;
	struct bd_entity **rows;
	size_t n;
};

static void
on_write(void *arg, int status, const char *etag, const char *detail)
{
	struct wait *w = arg;

	w->done = true;
	w->status = status;
	w->etag = etag ? xstrdup(etag) : NULL;
	if (status == 0)
		ASSERT_NULL(detail);
	else
		ASSERT_NOT_NULL(detail);
}

static void
on_entity(void *arg, int status, struct bd_entity *e, const char *detail)
{
	struct wait *w = arg;

	w->done = true;
	w->status = status;
	w->e = e;
}

static void
on_query(void *arg, int status, struct bd_entity **rows, size_t n,
    const char *detail)
{
	struct wait *w = arg;

	w->done = true;
	w->status = status;
	w->rows = rows;
	w->n = n;
}

static void
run_until(struct wait *w)
{
	/* The callback never runs from inside the call. */
	ASSERT(!w->done);
	while (!w->done)
		uv_run(L, UV_RUN_ONCE);
}

enum wop { W_INSERT, W_REPLACE, W_MERGE };

/* A write; returns the status and the new ETag in *etag (caller frees). */
static int
write_row(struct bd_store *s, enum wop op, const struct bd_entity *e,
    const char *if_match, char **etag)
{
	struct wait w = { 0 };
	int rc;

	if (op == W_INSERT)
		rc = bd_store_insert(s, BD_TABLE_TASKS, e, on_write, &w);
	else if (op == W_REPLACE)
		rc = bd_store_replace(s, BD_TABLE_TASKS, e, if_match, on_write,
		    &w);
	else
		rc = bd_store_merge(s, BD_TABLE_TASKS, e, if_match, on_write,
		    &w);
	ASSERT_INT_EQ(rc, 0);
	run_until(&w);
	if (w.status == 0)
		ASSERT_NOT_NULL(w.etag);
	else
		ASSERT_NULL(w.etag);
	if (etag != NULL)
		*etag = w.etag;
	else
		free(w.etag);
	return w.status;
}

static int
get_row(struct bd_store *s, const char *pk, const char *rk,
    struct bd_entity **e)
{
	struct wait w = { 0 };

	ASSERT_INT_EQ(bd_store_get(s, BD_TABLE_TASKS, pk, rk, on_entity, &w),
	    0);
	run_until(&w);
	if (w.status == 0)
		ASSERT_NOT_NULL(w.e);
	else
		ASSERT_NULL(w.e);
	*e = w.e;
	return w.status;
}

static int
remove_row(struct bd_store *s, const char *pk, const char *rk,
    const char *etag)
{
	struct wait w = { 0 };

	ASSERT_INT_EQ(bd_store_remove(s, BD_TABLE_TASKS, pk, rk, etag, on_write,
	    &w), 0);
	run_until(&w);
	free(w.etag);
	return w.status;
}

static struct bd_entity **
query(struct bd_store *s, enum bd_table t, const char *pk, size_t *n)
{
	struct wait w = { 0 };

	ASSERT_INT_EQ(bd_store_query(s, t, pk, on_query, &w), 0);
	run_until(&w);
	ASSERT_INT_EQ(w.status, 0);
	*n = w.n;
	return w.rows;
}

static void
free_rows(struct bd_entity **rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		bd_entity_free(rows[i]);
	free(rows);
}

static struct bd_entity *
entity(const char *pk, const char *rk, const char *state, int n)
{
	struct bd_entity *e = bd_entity_new(pk, rk);

	if (state != NULL)
		cJSON_AddStringToObject(e->props, "state", state);
	cJSON_AddNumberToObject(e->props, "n", n);
	return e;
}

static const char *
prop_str(const struct bd_entity *e, const char *name)
{
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(e->props, name);

	return cJSON_IsString(p) ? p->valuestring : NULL;
}

static int
prop_int(const struct bd_entity *e, const char *name)
{
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(e->props, name);

	ASSERT(cJSON_IsNumber(p));
	return p->valueint;
}

static struct bd_store *
open_store(const char *spool)
{
	struct bd_store *s;
	char *cause = NULL;
	int rc = bd_store_local_new(L, spool, &s, &cause);

	if (rc != 0)
		UNIT_FAIL("bd_store_local_new: %d %s", rc, cause);
	return s;
}

static struct bd_store_local_stats
stats(struct bd_store *s)
{
	struct bd_store_local_stats st;

	ASSERT_INT_EQ(bd_store_local_stats(s, &st), 0);
	return st;
}

TEST(insert_get_replace_merge_remove)
{
	uv_loop_t loop;
	char *spool = spool_tmpdir("bd-storelocal"), *e1, *e2, *e3, *e4;
	struct bd_entity *e, *got;
	struct bd_store *s;

	loop_begin(&loop);
	s = open_store(spool);
	ASSERT_STR_EQ(s->ops->name, "local");
	e = entity("job1", "t1", "active", 1);
	cJSON_AddBoolToObject(e->props, "flag", true);
	cJSON_AddStringToObject(e->props, "startTime",
	    "2026-11-27T02:19:32.123Z");
	ASSERT_INT_EQ(write_row(s, W_INSERT, e, NULL, &e1), 0);
	ASSERT_INT_EQ(write_row(s, W_INSERT, e, NULL, NULL), -EEXIST);
	ASSERT(exists(spool, "tables/batchdtasks/job1/t1.json"));

	ASSERT_INT_EQ(get_row(s, "job1", "t1", &got), 0);
	ASSERT_STR_EQ(got->partition_key, "job1");
	ASSERT_STR_EQ(got->row_key, "t1");
	ASSERT_STR_EQ(got->etag, e1);
	ASSERT_STR_EQ(prop_str(got, "state"), "active");
	ASSERT_STR_EQ(prop_str(got, "startTime"), "2026-11-27T02:19:32.123Z");
	ASSERT_INT_EQ(prop_int(got, "n"), 1);
	ASSERT(cJSON_IsTrue(cJSON_GetObjectItem(got->props, "flag")));
	ASSERT_INT_EQ(cJSON_GetArraySize(got->props), 4);
	bd_entity_free(got);

	/* Replace with the current ETag: the props are replaced whole. */
	bd_entity_free(e);
	e = entity("job1", "t1", "running", 2);
	ASSERT_INT_EQ(write_row(s, W_REPLACE, e, e1, &e2), 0);
	ASSERT(strcmp(e1, e2) != 0);
	ASSERT_INT_EQ(write_row(s, W_REPLACE, e, e1, NULL), -ESTALE);
	ASSERT_INT_EQ(write_row(s, W_MERGE, e, e1, NULL), -ESTALE);
	ASSERT_INT_EQ(get_row(s, "job1", "t1", &got), 0);
	ASSERT_STR_EQ(got->etag, e2);
	ASSERT_NULL(cJSON_GetObjectItem(got->props, "flag"));
	ASSERT_STR_EQ(prop_str(got, "state"), "running");
	bd_entity_free(got);

	/* Merge keeps the properties it does not name. */
	bd_entity_free(e);
	e = bd_entity_new("job1", "t1");
	cJSON_AddNumberToObject(e->props, "exitCode", 3);
	cJSON_AddStringToObject(e->props, "state", "completed");
	ASSERT_INT_EQ(write_row(s, W_MERGE, e, e2, &e3), 0);
	ASSERT_INT_EQ(get_row(s, "job1", "t1", &got), 0);
	ASSERT_STR_EQ(prop_str(got, "state"), "completed");
	ASSERT_INT_EQ(prop_int(got, "exitCode"), 3);
	ASSERT_INT_EQ(prop_int(got, "n"), 2);
	ASSERT_STR_EQ(got->etag, e3);
	bd_entity_free(got);

	/* "*" matches whatever is there; NULL upserts. */
	ASSERT_INT_EQ(write_row(s, W_MERGE, e, "*", &e4), 0);
	free(e4);
	ASSERT_INT_EQ(write_row(s, W_MERGE, e, NULL, &e4), 0);

	/* Remove: a stale ETag loses, the current one wins, then it's gone. */
	ASSERT_INT_EQ(remove_row(s, "job1", "t1", e3), -ESTALE);
	ASSERT_INT_EQ(remove_row(s, "job1", "t1", e4), 0);
	ASSERT_INT_EQ(get_row(s, "job1", "t1", &got), -ENOENT);
	ASSERT_INT_EQ(remove_row(s, "job1", "t1", NULL), -ENOENT);
	ASSERT_INT_EQ(remove_row(s, "nojob", "t1", "*"), -ENOENT);
	ASSERT_INT_EQ(get_row(s, "nojob", "t1", &got), -ENOENT);
	ASSERT_INT_EQ(write_row(s, W_REPLACE, e, e4, NULL), -ENOENT);
	ASSERT_INT_EQ(write_row(s, W_MERGE, e, "*", NULL), -ENOENT);
	ASSERT_INT_EQ(write_row(s, W_REPLACE, e, "*", NULL), -ENOENT);

	/* Inserted again: the old ETag does not match the new row. */
	free(e1);
	ASSERT_INT_EQ(write_row(s, W_REPLACE, e, NULL, &e1), 0);
	free(e1);
	ASSERT_INT_EQ(write_row(s, W_REPLACE, e, e4, NULL), -ESTALE);
	ASSERT_INT_EQ(remove_row(s, "job1", "t1", NULL), 0);
	/* A remove with no ETag is unconditional. */
	ASSERT_INT_EQ(write_row(s, W_INSERT, e, NULL, NULL), 0);
	ASSERT_INT_EQ(remove_row(s, "job1", "t1", NULL), 0);

	struct bd_store_local_stats st = stats(s);
	ASSERT_INT_EQ(st.inserts, 2);
	ASSERT_INT_EQ(st.replaces, 2);
	ASSERT_INT_EQ(st.merges, 3);
	ASSERT_INT_EQ(st.removes, 3);
	ASSERT_INT_EQ(st.exists, 1);
	ASSERT_INT_EQ(st.conflicts, 4);
	ASSERT_INT_EQ(st.not_found, 7);
	ASSERT_INT_EQ(st.failures, 0);

	/* create() is there and harmless. */
	struct wait w = { 0 };
	ASSERT_INT_EQ(bd_store_create(s, on_write, &w), 0);
	run_until(&w);
	ASSERT_INT_EQ(w.status, 0);

	free(e2);
	free(e3);
	free(e4);
	bd_entity_free(e);
	bd_store_free(s);
	loop_end(&loop);
	bd_rm_rf(spool);
	free(spool);
}

TEST(keys_and_query_order)
{
	static const char *const rks[] = { "t10", "t2", "a.b", "", "x y",
	    "caf\xc3\xa9", "100%", "..", "-_" };
	enum { NK = sizeof(rks) / sizeof(rks[0]) };
	uv_loop_t loop;
	char *spool = spool_tmpdir("bd-storelocal");
	struct bd_entity **rows, *e;
	struct bd_store *s;
	size_t n;

	loop_begin(&loop);
	s = open_store(spool);
	for (size_t i = 0; i < NK; i++) {
		e = entity("job.1", rks[i], "active", (int)i);
		ASSERT_INT_EQ(write_row(s, W_INSERT, e, NULL, NULL), 0);
		bd_entity_free(e);
	}
	e = entity("job0", "only", NULL, 0);
	ASSERT_INT_EQ(write_row(s, W_INSERT, e, NULL, NULL), 0);
	bd_entity_free(e);
	/* Percent-encoded names: nothing can climb or hide. */
	ASSERT(exists(spool, "tables/batchdtasks/job%2E1/a%2Eb.json"));
	ASSERT(exists(spool, "tables/batchdtasks/job%2E1/%.json"));
	ASSERT(exists(spool, "tables/batchdtasks/job%2E1/%2E%2E.json"));
	ASSERT(exists(spool, "tables/batchdtasks/job%2E1/caf%C3%A9.json"));
	ASSERT(exists(spool, "tables/batchdtasks/job%2E1/100%25.json"));

	rows = query(s, BD_TABLE_TASKS, "job.1", &n);
	ASSERT_INT_EQ(n, NK);
	for (size_t i = 1; i < n; i++)
		ASSERT(strcmp(rows[i - 1]->row_key, rows[i]->row_key) < 0);
	ASSERT_STR_EQ(rows[0]->row_key, "");
	ASSERT_STR_EQ(rows[n - 1]->row_key, "x y");
	for (size_t i = 0; i < n; i++) {
		ASSERT_STR_EQ(rows[i]->partition_key, "job.1");
		ASSERT_NOT_NULL(rows[i]->etag);
	}
	free_rows(rows, n);

	/* The whole table: by partition, then row. */
	rows = query(s, BD_TABLE_TASKS, NULL, &n);
	ASSERT_INT_EQ(n, NK + 1);
	ASSERT_STR_EQ(rows[0]->partition_key, "job.1");
	ASSERT_STR_EQ(rows[n - 1]->partition_key, "job0");
	free_rows(rows, n);

	rows = query(s, BD_TABLE_TASKS, "nojob", &n);
	ASSERT_INT_EQ(n, 0);
	free_rows(rows, n);
	rows = query(s, BD_TABLE_NODES, NULL, &n);
	ASSERT_INT_EQ(n, 0);
	free_rows(rows, n);
	ASSERT_INT_EQ(stats(s).rows_read, 2 * NK + 1);

	/* Tables are separate. */
	struct wait w = { 0 };
	e = entity("pool1", "node-a", "idle", 0);
	ASSERT_INT_EQ(bd_store_merge(s, BD_TABLE_NODES, e, NULL, on_write, &w),
	    0);
	run_until(&w);
	ASSERT_INT_EQ(w.status, 0);
	free(w.etag);
	bd_entity_free(e);
	ASSERT(exists(spool, "tables/batchdnodes/pool1/node-a.json"));
	rows = query(s, BD_TABLE_NODES, "pool1", &n);
	ASSERT_INT_EQ(n, 1);
	ASSERT_STR_EQ(prop_str(rows[0], "state"), "idle");
	free_rows(rows, n);

	bd_store_free(s);
	loop_end(&loop);
	bd_rm_rf(spool);
	free(spool);
}

TEST(bad_arguments)
{
	uv_loop_t loop;
	char *spool = spool_tmpdir("bd-storelocal"), *cause = NULL, long_key[300], *big;
	struct bd_entity *e;
	struct bd_store *s;
	struct wait w = { 0 };

	loop_begin(&loop);
	ASSERT_INT_EQ(bd_store_local_new(L, "", &s, &cause), -EINVAL);
	free(cause);
	ASSERT_INT_EQ(bd_store_local_new(L, "/proc/nonexistent/x", &s, &cause),
	    -ENOENT);
	ASSERT_STR_CONTAINS(cause, "/proc/nonexistent/x");
	free(cause);
	s = open_store(spool);

	e = entity("job1", "a/b", "x", 0);
	ASSERT_INT_EQ(bd_store_insert(s, BD_TABLE_TASKS, e, on_write, &w),
	    -EINVAL);
	bd_entity_free(e);
	e = entity("job\n", "t", "x", 0);
	ASSERT_INT_EQ(bd_store_insert(s, BD_TABLE_TASKS, e, on_write, &w),
	    -EINVAL);
	bd_entity_free(e);
	memset(long_key, '.', sizeof(long_key) - 1);
	long_key[sizeof(long_key) - 1] = '\0';
	e = entity("job1", long_key, "x", 0);
	ASSERT_INT_EQ(bd_store_insert(s, BD_TABLE_TASKS, e, on_write, &w),
	    -ENAMETOOLONG);
	ASSERT_INT_EQ(bd_store_get(s, BD_TABLE_TASKS, long_key, "t", on_entity,
	    &w), -ENAMETOOLONG);
	bd_entity_free(e);

	e = entity("job1", "t", "x", 0);
	cJSON_AddItemToObject(e->props, "nested", cJSON_CreateObject());
	ASSERT_INT_EQ(bd_store_insert(s, BD_TABLE_TASKS, e, on_write, &w),
	    -EINVAL);
	bd_entity_free(e);
	e = entity("job1", "t", "x", 0);
	cJSON_AddStringToObject(e->props, "RowKey", "sneaky");
	ASSERT_INT_EQ(bd_store_merge(s, BD_TABLE_TASKS, e, NULL, on_write, &w),
	    -EINVAL);
	bd_entity_free(e);
	e = entity("job1", "t", "x", 0);
	big = xmalloc(1024 * 1024 + 1);
	memset(big, 'a', 1024 * 1024);
	big[1024 * 1024] = '\0';
	cJSON_AddStringToObject(e->props, "spec", big);
	free(big);
	ASSERT_INT_EQ(bd_store_replace(s, BD_TABLE_TASKS, e, NULL, on_write,
	    &w), BD_ETOOBIG);
	bd_entity_free(e);
	e = entity("job1", "t", "x", 0);
	ASSERT_INT_EQ(bd_store_insert(s, (enum bd_table)7, e, on_write, &w),
	    -EINVAL);
	ASSERT_INT_EQ(bd_store_get(s, BD_TABLE_TASKS, NULL, "t", on_entity, &w),
	    -EINVAL);
	bd_entity_free(e);
	ASSERT(!w.done);
	ASSERT_INT_EQ(stats(s).inserts, 0);

	bd_store_free(s);
	loop_end(&loop);
	bd_rm_rf(spool);
	free(spool);
}

/*
 * Child: waits for the go byte, replaces the row with if_match and
 * reports the status as one byte (0 success, 1 stale, 2 other).
 */
static void
race_child(const char *spool, const char *if_match, int go, int out,
    const char *who)
{
	uv_loop_t child;
	struct bd_entity *e;
	struct bd_store *s;
	char c;
	int rc;

	loop_begin(&child);
	s = open_store(spool);
	e = entity("job1", "t1", who, 0);
	if (read(go, &c, 1) != 1)
		_exit(4);
	rc = write_row(s, W_REPLACE, e, if_match, NULL);
	c = rc == 0 ? '0' : rc == -ESTALE ? '1' : '2';
	if (write(out, &c, 1) != 1)
		_exit(5);
	bd_entity_free(e);
	bd_store_free(s);
	loop_end(&child);
	_exit(0);
}

TEST(etag_race_between_processes)
{
	uv_loop_t loop;
	char *spool = spool_tmpdir("bd-storelocal"), *etag;
	struct bd_entity *e, *got;
	struct bd_store *s;

	loop_begin(&loop);
	s = open_store(spool);
	e = entity("job1", "t1", "active", 0);
	ASSERT_INT_EQ(write_row(s, W_INSERT, e, NULL, &etag), 0);
	for (int round = 0; round < 20; round++) {
		int go[2], out[2], wins = 0, stale = 0;
		pid_t pids[2];
		char c;

		ASSERT_INT_EQ(pipe(go), 0);
		ASSERT_INT_EQ(pipe(out), 0);
		for (int k = 0; k < 2; k++) {
			pids[k] = fork();
			ASSERT(pids[k] >= 0);
			if (pids[k] == 0) {
				close(go[1]);
				close(out[0]);
				race_child(spool, etag, go[0], out[1],
				    k ? "b" : "a");
			}
		}
		close(go[0]);
		close(out[1]);
		/* Both start at once. */
		ASSERT_INT_EQ(write(go[1], "gg", 2), 2);
		close(go[1]);
		for (int k = 0; k < 2; k++) {
			ASSERT_INT_EQ(read(out[0], &c, 1), 1);
			wins += c == '0';
			stale += c == '1';
		}
		close(out[0]);
		for (int k = 0; k < 2; k++) {
			int status;
			ASSERT_INT_EQ(waitpid(pids[k], &status, 0), pids[k]);
			ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		}
		ASSERT_INT_EQ(wins, 1);
		ASSERT_INT_EQ(stale, 1);
		/* The winner's write is the row; take its ETag for the next. */
		ASSERT_INT_EQ(get_row(s, "job1", "t1", &got), 0);
		ASSERT(strcmp(prop_str(got, "state"), "a") == 0 ||
		    strcmp(prop_str(got, "state"), "b") == 0);
		free(etag);
		etag = xstrdup(got->etag);
		bd_entity_free(got);
	}
	free(etag);
	bd_entity_free(e);
	bd_store_free(s);
	loop_end(&loop);
	bd_rm_rf(spool);
	free(spool);
}

/* Child: adds 1 to the row's n, times times, by read and If-Match. */
static void
count_child(const char *spool, int times)
{
	uv_loop_t child;
	struct bd_store *s;
	int conflicts = 0;

	loop_begin(&child);
	s = open_store(spool);
	for (int i = 0; i < times; i++) {
		for (;;) {
			struct bd_entity *got, *e;
			int rc;

			if (get_row(s, "job1", "counter", &got) != 0)
				_exit(6);
			e = bd_entity_new("job1", "counter");
			cJSON_AddNumberToObject(e->props, "n",
			    prop_int(got, "n") + 1);
			rc = write_row(s, W_MERGE, e, got->etag, NULL);
			bd_entity_free(e);
			bd_entity_free(got);
			if (rc == 0)
				break;
			if (rc != -ESTALE)
				_exit(7);
			conflicts++;
		}
	}
	bd_store_free(s);
	loop_end(&child);
	if (conflicts > 0)
		fprintf(stderr, "   child %d: %d conflicts\n", (int)getpid(),
		    conflicts);
	_exit(0);
}

TEST(optimistic_counter_two_processes)
{
	enum { TIMES = 150 };
	uv_loop_t loop;
	char *spool = spool_tmpdir("bd-storelocal");
	struct bd_entity *e, *got;
	struct bd_store *s;
	pid_t pids[2];

	loop_begin(&loop);
	s = open_store(spool);
	e = entity("job1", "counter", "x", 0);
	ASSERT_INT_EQ(write_row(s, W_INSERT, e, NULL, NULL), 0);
	bd_entity_free(e);
	for (int k = 0; k < 2; k++) {
		pids[k] = fork();
		ASSERT(pids[k] >= 0);
		if (pids[k] == 0)
			count_child(spool, TIMES);
	}
	for (int k = 0; k < 2; k++) {
		int status;
		ASSERT_INT_EQ(waitpid(pids[k], &status, 0), pids[k]);
		ASSERT(WIFEXITED(status));
		ASSERT_INT_EQ(WEXITSTATUS(status), 0);
	}
	/* No increment lost. */
	ASSERT_INT_EQ(get_row(s, "job1", "counter", &got), 0);
	ASSERT_INT_EQ(prop_int(got, "n"), 2 * TIMES);
	ASSERT_STR_EQ(prop_str(got, "state"), "x");
	bd_entity_free(got);
	bd_store_free(s);
	loop_end(&loop);
	bd_rm_rf(spool);
	free(spool);
}

TEST(crash_leftovers)
{
	uv_loop_t loop;
	char *spool = spool_tmpdir("bd-storelocal");
	struct bd_entity **rows, *e, *got;
	struct bd_store *s;
	size_t n;

	loop_begin(&loop);
	s = open_store(spool);
	e = entity("job1", "good", "active", 0);
	ASSERT_INT_EQ(write_row(s, W_INSERT, e, NULL, NULL), 0);
	bd_entity_free(e);
	/* A write that died half-way, one in progress, junk, a torn row. */
	plant(spool, "tables/batchdtasks/job1/.tmp-0011223344556677",
	    "{\"v\":1,\"Parti", 3600);
	plant(spool, "tables/batchdtasks/job1/.tmp-8899aabbccddeeff", "{", 0);
	plant(spool, "tables/batchdtasks/job1/notes.txt", "hello", 0);
	plant(spool, "tables/batchdtasks/job1/torn.json", "{\"v\":1,", 0);

	rows = query(s, BD_TABLE_TASKS, "job1", &n);
	ASSERT_INT_EQ(n, 1);
	ASSERT_STR_EQ(rows[0]->row_key, "good");
	free_rows(rows, n);
	ASSERT(!exists(spool, "tables/batchdtasks/job1/.tmp-0011223344556677"));
	ASSERT(exists(spool, "tables/batchdtasks/job1/.tmp-8899aabbccddeeff"));
	ASSERT(exists(spool, "tables/batchdtasks/job1/notes.txt"));

	struct bd_store_local_stats st = stats(s);
	ASSERT_INT_EQ(st.temps_removed, 1);
	ASSERT_INT_EQ(st.corrupt, 1);

	/* A torn row reads as an error, refuses a conditional write... */
	ASSERT_INT_EQ(get_row(s, "job1", "torn", &got), BD_EJSON);
	e = entity("job1", "torn", "mended", 0);
	ASSERT_INT_EQ(write_row(s, W_MERGE, e, "W/\"1.0\"", NULL), BD_EJSON);
	/* ...and an unconditional one mends it. */
	ASSERT_INT_EQ(write_row(s, W_REPLACE, e, NULL, NULL), 0);
	bd_entity_free(e);
	ASSERT_INT_EQ(get_row(s, "job1", "torn", &got), 0);
	ASSERT_STR_EQ(prop_str(got, "state"), "mended");
	bd_entity_free(got);

	/*
	 * A lazy write (no fsync) cut off by a power failure may leave an
	 * empty file under the row's name: it reads as missing, a
	 * conditional write finds no row, and an insert takes its place.
	 */
	e = entity("job1", "lazy", "running", 1);
	e->lazy = true;
	ASSERT_INT_EQ(write_row(s, W_INSERT, e, NULL, NULL), 0);
	ASSERT_INT_EQ(get_row(s, "job1", "lazy", &got), 0);
	bd_entity_free(got);
	plant(spool, "tables/batchdtasks/job1/lazy.json", "", 0);
	ASSERT_INT_EQ(get_row(s, "job1", "lazy", &got), -ENOENT);
	ASSERT_INT_EQ(write_row(s, W_MERGE, e, "W/\"1.0\"", NULL), -ENOENT);
	ASSERT_INT_EQ(write_row(s, W_INSERT, e, NULL, NULL), 0);
	ASSERT_INT_EQ(write_row(s, W_INSERT, e, NULL, NULL), -EEXIST);
	bd_entity_free(e);
	ASSERT_INT_EQ(get_row(s, "job1", "lazy", &got), 0);
	ASSERT_STR_EQ(prop_str(got, "state"), "running");
	bd_entity_free(got);

	bd_store_free(s);
	loop_end(&loop);
	bd_rm_rf(spool);
	free(spool);
}

/*
 * A write after this store's own read or write does not read the row
 * again, unless another writer changed it meanwhile: then the ETag check
 * and the merge see the other writer's row.
 */
TEST(rows_remembered)
{
	uv_loop_t loop;
	char *spool = spool_tmpdir("bd-storelocal"), *e1, *e2, *e3;
	struct bd_entity *e, *got;
	struct bd_store *s, *other;
	struct bd_store_local_stats st;

	loop_begin(&loop);
	s = open_store(spool);
	other = open_store(spool);
	e = entity("job1", "t1", "active", 1);
	ASSERT_INT_EQ(write_row(s, W_INSERT, e, NULL, &e1), 0);
	bd_entity_free(e);
	e = bd_entity_new("job1", "t1");
	cJSON_AddStringToObject(e->props, "state", "running");
	ASSERT_INT_EQ(write_row(s, W_MERGE, e, e1, &e2), 0);
	bd_entity_free(e);
	st = stats(s);
	ASSERT_INT_EQ((int)st.rows_reused, 1);
	/* Another writer (another process, in effect) replaces the row. */
	e = entity("job1", "t1", "stolen", 7);
	cJSON_AddStringToObject(e->props, "by", "other");
	ASSERT_INT_EQ(write_row(other, W_REPLACE, e, e2, &e3), 0);
	bd_entity_free(e);
	e = bd_entity_new("job1", "t1");
	cJSON_AddStringToObject(e->props, "state", "completed");
	ASSERT_INT_EQ(write_row(s, W_MERGE, e, e2, NULL), -ESTALE);
	ASSERT_INT_EQ(write_row(s, W_MERGE, e, e3, NULL), 0);
	bd_entity_free(e);
	ASSERT_INT_EQ(get_row(other, "job1", "t1", &got), 0);
	ASSERT_STR_EQ(prop_str(got, "state"), "completed");
	ASSERT_STR_EQ(prop_str(got, "by"), "other");
	ASSERT_INT_EQ(prop_int(got, "n"), 7);
	/* Read by other, then written by other without reading again. */
	e = bd_entity_new("job1", "t1");
	cJSON_AddNumberToObject(e->props, "n", 8);
	ASSERT_INT_EQ(write_row(other, W_MERGE, e, got->etag, NULL), 0);
	bd_entity_free(e);
	bd_entity_free(got);
	ASSERT_INT_EQ(get_row(s, "job1", "t1", &got), 0);
	ASSERT_STR_EQ(prop_str(got, "state"), "completed");
	ASSERT_INT_EQ(prop_int(got, "n"), 8);
	bd_entity_free(got);
	st = stats(other);
	ASSERT_INT_EQ((int)st.rows_reused, 1);
	ASSERT_INT_EQ(remove_row(s, "job1", "t1", NULL), 0);
	ASSERT_INT_EQ(get_row(other, "job1", "t1", &got), -ENOENT);
	free(e1);
	free(e2);
	free(e3);
	bd_store_free(other);
	bd_store_free(s);
	loop_end(&loop);
	bd_rm_rf(spool);
	free(spool);
}

/* More partitions than the store keeps open, used in turn: each write
 * lands in its own partition. */
TEST(many_partitions)
{
	uv_loop_t loop;
	char *spool = spool_tmpdir("bd-storelocal"), pk[16], *etag[20];
	struct bd_entity *e, *got;
	struct bd_store *s;

	loop_begin(&loop);
	s = open_store(spool);
	for (int round = 0; round < 2; round++)
		for (int i = 0; i < 20; i++) {
			snprintf(pk, sizeof(pk), "job%d", i);
			e = entity(pk, "t", round ? "completed" : "active", i);
			if (round == 0)
				ASSERT_INT_EQ(write_row(s, W_INSERT, e, NULL,
				    &etag[i]), 0);
			else {
				ASSERT_INT_EQ(write_row(s, W_MERGE, e, etag[i],
				    NULL), 0);
				free(etag[i]);
			}
			bd_entity_free(e);
		}
	for (int i = 0; i < 20; i++) {
		snprintf(pk, sizeof(pk), "job%d", i);
		ASSERT_INT_EQ(get_row(s, pk, "t", &got), 0);
		ASSERT_STR_EQ(prop_str(got, "state"), "completed");
		ASSERT_INT_EQ(prop_int(got, "n"), i);
		bd_entity_free(got);
	}
	bd_store_free(s);
	loop_end(&loop);
	bd_rm_rf(spool);
	free(spool);
}

/* Every kind of value a row may hold reads back as it was written. */
TEST(props_round_trip)
{
	static const double nums[] = { 0, -3, 1.5, 1e300, -2.5e-7,
	    1152921504606846976.0, 9007199254740993.0, 4611686018427387904.0,
	    -9007199254740992.0, 123456789012.0 };
	static const char text[] = "q\"b\\n\nt\tc\x01\x1f \xc3\xa9 end";
	uv_loop_t loop;
	char *spool = spool_tmpdir("bd-storelocal"), name[16];
	struct bd_entity *e, *got;
	struct bd_store *s;
	const cJSON *v;

	loop_begin(&loop);
	s = open_store(spool);
	e = bd_entity_new("job \"1\"", "t%1");
	cJSON_AddStringToObject(e->props, "s", text);
	cJSON_AddStringToObject(e->props, "na\"me\n", "");
	cJSON_AddTrueToObject(e->props, "yes");
	cJSON_AddFalseToObject(e->props, "no");
	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		snprintf(name, sizeof(name), "n%zu", i);
		cJSON_AddNumberToObject(e->props, name, nums[i]);
	}
	ASSERT_INT_EQ(write_row(s, W_INSERT, e, NULL, NULL), 0);
	ASSERT_INT_EQ(get_row(s, "job \"1\"", "t%1", &got), 0);
	ASSERT_STR_EQ(prop_str(got, "s"), text);
	ASSERT_STR_EQ(prop_str(got, "na\"me\n"), "");
	ASSERT(cJSON_IsTrue(cJSON_GetObjectItem(got->props, "yes")));
	ASSERT(cJSON_IsFalse(cJSON_GetObjectItem(got->props, "no")));
	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		snprintf(name, sizeof(name), "n%zu", i);
		v = cJSON_GetObjectItem(got->props, name);
		ASSERT(cJSON_IsNumber(v));
		ASSERT(v->valuedouble == nums[i]);
	}
	bd_entity_free(got);
	bd_entity_free(e);
	bd_store_free(s);
	loop_end(&loop);
	bd_rm_rf(spool);
	free(spool);
}

/*
 * Inserts rows t0..t<n-1> ("completed", n = i) all at once, every fourth
 * into partition pk4 and the others into pk, and runs the loop until
 * every write has called back into w[i].
 */
static void
insert_at_once(struct bd_store *s, struct wait *w, int n, const char *pk,
    const char *pk4)
{
	struct bd_entity *e;
	char rk[16];
	int left = n;

	for (int i = 0; i < n; i++) {
		snprintf(rk, sizeof(rk), "t%d", i);
		e = entity(i % 4 ? pk : pk4, rk, "completed", i);
		ASSERT_INT_EQ(bd_store_insert(s, BD_TABLE_TASKS, e, on_write,
		    &w[i]), 0);
		bd_entity_free(e);
	}
	while (left > 0) {
		uv_run(L, UV_RUN_ONCE);
		left = 0;
		for (int i = 0; i < n; i++)
			left += !w[i].done;
	}
}

/*
 * Writes due at once, to two partitions: each is durable (its directory
 * fsynced by itself or by a write it waited with) and each reads back.
 * How many shared an fsync depends on the disk; it is printed.
 */
TEST(group_commit)
{
	enum { N = 48 };
	uv_loop_t loop;
	char *spool = spool_tmpdir("bd-storelocal"), rk[16];
	struct wait w[N];
	struct bd_store_local_stats st;
	struct bd_entity *got;
	struct bd_store *s;

	loop_begin(&loop);
	s = open_store(spool);
	memset(w, 0, sizeof(w));
	insert_at_once(s, w, N, "jobA", "jobB");
	for (int i = 0; i < N; i++) {
		ASSERT_INT_EQ(w[i].status, 0);
		free(w[i].etag);
		snprintf(rk, sizeof(rk), "t%d", i);
		ASSERT_INT_EQ(get_row(s, i % 4 ? "jobA" : "jobB", rk, &got), 0);
		ASSERT_INT_EQ(prop_int(got, "n"), i);
		bd_entity_free(got);
	}
	ASSERT_INT_EQ(bd_store_local_stats(s, &st), 0);
	ASSERT(st.dir_syncs >= 2);	/* two directories */
	ASSERT_INT_EQ((int)(st.dir_syncs + st.dir_syncs_shared), N);
	fprintf(stderr, "   %d inserts at once: %d directory fsyncs\n", N,
	    (int)st.dir_syncs);
	bd_store_free(s);
	loop_end(&loop);
	bd_rm_rf(spool);
	free(spool);
}

/* Inserts one row per tick of a timer, from the loop (commit_delay). */
struct delayed {
	struct bd_store *s;
	struct wait w[4];
	int sent;
	uint64_t first_ms, first_cb_ms;
	uint64_t syncs_at_first_cb;
};

static void
delayed_tick(uv_timer_t *t)
{
	struct delayed *d = t->data;
	struct bd_entity *e;
	char rk[16];

	snprintf(rk, sizeof(rk), "t%d", d->sent);
	e = entity("job1", rk, "completed", d->sent);
	if (d->sent == 0)
		d->first_ms = uv_now(t->loop);
	ASSERT_INT_EQ(bd_store_insert(d->s, BD_TABLE_TASKS, e, on_write,
	    &d->w[d->sent]), 0);
	bd_entity_free(e);
	if (++d->sent == 4)
		uv_timer_stop(t);
}

/*
 * With a commit delay, writes that come one after another within it wait
 * for one directory fsync together; none is called back before it, yet
 * every row is there to read meanwhile.  bd_store_local_flush() syncs
 * them at once and leaves the callbacks to the commit.
 */
TEST(commit_delay)
{
	uv_loop_t loop;
	char *spool = spool_tmpdir("bd-storelocal"), rk[16], rel[64];
	struct delayed d;
	struct bd_store_local_stats st;
	struct bd_entity *got;
	uv_timer_t tick;
	bool seen = false;
	int left = 4;

	loop_begin(&loop);
	memset(&d, 0, sizeof(d));
	d.s = open_store(spool);
	ASSERT_INT_EQ(bd_store_local_set_commit_delay(d.s, 1500), 0);
	uv_timer_init(L, &tick);
	tick.data = &d;
	uv_timer_start(&tick, delayed_tick, 0, 10);
	while (left > 0) {
		uv_run(L, UV_RUN_ONCE);
		left = 0;
		for (int i = 0; i < 4; i++)
			left += !d.w[i].done;
		if (left < 4 && d.first_cb_ms == 0) {
			d.first_cb_ms = uv_now(L);
			d.syncs_at_first_cb = stats(d.s).dir_syncs;
		}
		if (left == 4 && !seen && d.sent == 4) {
			seen = true;
			for (int i = 0; i < 4 && seen; i++) {
				snprintf(rel, sizeof(rel),
				    "tables/batchdtasks/job1/t%d.json", i);
				seen = exists(spool, rel);
			}
			if (seen)
				ASSERT_INT_EQ(bd_store_local_flush(d.s), 0);
		}
	}
	ASSERT(seen);
	ASSERT(d.first_cb_ms - d.first_ms >= 1490);
	ASSERT_INT_EQ((int)d.syncs_at_first_cb, 1);
	st = stats(d.s);
	ASSERT_INT_EQ((int)st.dir_syncs, 1);
	ASSERT_INT_EQ((int)st.dir_syncs_shared, 3);
	for (int i = 0; i < 4; i++) {
		ASSERT_INT_EQ(d.w[i].status, 0);
		free(d.w[i].etag);
		snprintf(rk, sizeof(rk), "t%d", i);
		ASSERT_INT_EQ(get_row(d.s, "job1", rk, &got), 0);
		ASSERT_INT_EQ(prop_int(got, "n"), i);
		bd_entity_free(got);
	}
	ASSERT_INT_EQ(bd_store_local_set_commit_delay(NULL, 1), -EINVAL);
	ASSERT_INT_EQ(bd_store_local_flush(NULL), -EINVAL);
	/* Nothing waits: a flush has nothing to do. */
	ASSERT_INT_EQ(bd_store_local_flush(d.s), 0);
	uv_close((uv_handle_t *)&tick, NULL);
	bd_store_free(d.s);
	loop_end(&loop);
	bd_rm_rf(spool);
	free(spool);
}

/* Enough writes waiting start their commit without the delay. */
TEST(commit_delay_cut_short)
{
	enum { N = 256 };	/* ST_COMMIT_MAX */
	uv_loop_t loop;
	char *spool = spool_tmpdir("bd-storelocal");
	struct wait *w = xcalloc(N, sizeof(*w));
	struct bd_store *s;
	double t0 = now_s();

	loop_begin(&loop);
	s = open_store(spool);
	ASSERT_INT_EQ(bd_store_local_set_commit_delay(s, 600000), 0);
	insert_at_once(s, w, N, "job1", "job1");
	ASSERT(now_s() - t0 < 300);
	for (int i = 0; i < N; i++) {
		ASSERT_INT_EQ(w[i].status, 0);
		free(w[i].etag);
	}
	ASSERT_INT_EQ((int)stats(s).dir_syncs, 1);
	free(w);
	bd_store_free(s);
	loop_end(&loop);
	bd_rm_rf(spool);
	free(spool);
}

/*
 * A lazy write runs on the loop: its row is written when the call
 * returns, its callback comes on a later turn.  One whose row another
 * process holds locked, or whose row has a write in the pool, goes to the
 * pool and waits there.
 */
TEST(lazy_writes_on_the_loop)
{
	uv_loop_t loop;
	char *spool = spool_tmpdir("bd-storelocal"), *etag, *path;
	struct bd_entity *e, *got;
	struct bd_store *s;
	struct wait w = { 0 }, w2 = { 0 };
	int lock_fd;

	loop_begin(&loop);
	s = open_store(spool);
	e = entity("job1", "t1", "active", 1);
	ASSERT_INT_EQ(write_row(s, W_INSERT, e, NULL, &etag), 0);
	cJSON_ReplaceItemInObject(e->props, "state",
	    cJSON_CreateString("running"));
	e->lazy = true;
	ASSERT_INT_EQ(bd_store_merge(s, BD_TABLE_TASKS, e, etag, on_write,
	    &w), 0);
	free(etag);
	ASSERT_INT_EQ(stats(s).lazy_on_loop, 1);
	/* Written already, as another process would read it. */
	path = xasprintf("%s/tables/batchdtasks/job1/t1.json", spool);
	{
		char *text;
		size_t len;

		ASSERT_INT_EQ(bd_read_file(path, 1 << 20, &text, &len), 0);
		ASSERT_NOT_NULL(strstr(text, "\"state\":\"running\""));
		free(text);
	}
	run_until(&w);
	ASSERT_INT_EQ(w.status, 0);
	ASSERT_INT_EQ(get_row(s, "job1", "t1", &got), 0);
	ASSERT_STR_EQ(prop_str(got, "state"), "running");
	ASSERT_STR_EQ(got->etag, w.etag);
	bd_entity_free(got);
	free(w.etag);

	/* A new partition is made with an fsync: in the pool. */
	{
		struct bd_entity *n = entity("job2", "t1", "running", 2);

		n->lazy = true;
		ASSERT_INT_EQ(write_row(s, W_MERGE, n, NULL, NULL), 0);
		ASSERT_INT_EQ(stats(s).lazy_on_loop, 1);
		ASSERT_INT_EQ(stats(s).failures, 0);
		bd_entity_free(n);
	}

	/* Another process's lock (flock is per open file): to the pool,
	   where the write waits for it. */
	lock_fd = open(path, O_RDONLY | O_CLOEXEC);
	ASSERT(lock_fd >= 0);
	ASSERT_INT_EQ(flock(lock_fd, LOCK_EX), 0);
	memset(&w, 0, sizeof(w));
	cJSON_ReplaceItemInObject(e->props, "state",
	    cJSON_CreateString("preparing"));
	ASSERT_INT_EQ(bd_store_merge(s, BD_TABLE_TASKS, e, NULL, on_write,
	    &w), 0);
	ASSERT_INT_EQ(stats(s).lazy_on_loop, 1);
	/* A second lazy write of the row goes to the pool too: on the loop
	   it would overtake the first. */
	cJSON_ReplaceItemInObject(e->props, "state",
	    cJSON_CreateString("running"));
	ASSERT_INT_EQ(bd_store_merge(s, BD_TABLE_TASKS, e, NULL, on_write,
	    &w2), 0);
	ASSERT_INT_EQ(stats(s).lazy_on_loop, 1);
	uv_run(L, UV_RUN_NOWAIT);
	ASSERT(!w.done && !w2.done);
	ASSERT_INT_EQ(stats(s).failures, 0);
	close(lock_fd);
	run_until(&w);
	if (!w2.done)
		run_until(&w2);
	ASSERT_INT_EQ(w.status, 0);
	ASSERT_INT_EQ(w2.status, 0);
	free(w.etag);
	free(w2.etag);
	ASSERT_INT_EQ(get_row(s, "job1", "t1", &got), 0);
	ASSERT_INT_EQ(prop_int(got, "n"), 1);
	bd_entity_free(got);
	ASSERT_INT_EQ(stats(s).lazy_on_loop, 1);

	/* Once the pool is done with the row, the loop takes it again. */
	memset(&w, 0, sizeof(w));
	ASSERT_INT_EQ(bd_store_merge(s, BD_TABLE_TASKS, e, NULL, on_write,
	    &w), 0);
	ASSERT_INT_EQ(stats(s).lazy_on_loop, 2);
	run_until(&w);
	free(w.etag);
	bd_store_free(s);
	bd_entity_free(e);
	free(path);
	loop_end(&loop);
	bd_rm_rf(spool);
	free(spool);
}

TEST(write_cost)
{
	enum { N = 300 };
	uv_loop_t loop;
	char *spool = spool_tmpdir("bd-storelocal"), *etag, rk[16];
	struct bd_entity *e;
	struct bd_store *s;
	double t0, t1;

	loop_begin(&loop);
	s = open_store(spool);
	t0 = now_s();
	for (int i = 0; i < N; i++) {
		snprintf(rk, sizeof(rk), "t%d", i);
		e = entity("job1", rk, "active", i);
		ASSERT_INT_EQ(write_row(s, W_INSERT, e, NULL, &etag), 0);
		cJSON_ReplaceItemInObject(e->props, "state",
		    cJSON_CreateString("running"));
		ASSERT_INT_EQ(write_row(s, W_MERGE, e, etag, NULL), 0);
		free(etag);
		bd_entity_free(e);
	}
	t1 = now_s();
	fprintf(stderr, "   %d rows: insert + conditional merge %.0f us\n", N,
	    (t1 - t0) * 1e6 / N);
	bd_store_free(s);
	loop_end(&loop);
	bd_rm_rf(spool);
	free(spool);
}

/*
 * On an ext4 with a journal a write's file is written out, not fsynced:
 * the directory's fsync commits it.  Without a journal the file is
 * fsynced before its rename, as everywhere else.  Each write here costs
 * one directory fsync either way, and rows read back.
 */
TEST(written_out_on_journaled_ext4)
{
	static const struct {
		const char *mkfs;
		bool written_out;
	} cases[] = {
		{ "", true },
		{ "-O ^has_journal", false },
	};
	char *dir = spool_tmpdir("bd-storelocal"), *mnt, *etag;
	struct bd_store_local_stats st;
	struct bd_entity *e, *got;
	struct bd_store *s;
	uv_loop_t loop;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if ((mnt = ext4_mount(dir, cases[i].mkfs, "")) == NULL)
			continue;
		loop_begin(&loop);
		s = open_store(mnt);
		e = entity("job1", "t1", "active", 1);
		ASSERT_INT_EQ(write_row(s, W_INSERT, e, NULL, &etag), 0);
		st = stats(s);
		ASSERT_INT_EQ((int)st.dir_syncs, 1);
		ASSERT_INT_EQ((int)st.written_out, cases[i].written_out);
		cJSON_ReplaceItemInObject(e->props, "state",
		    cJSON_CreateString("completed"));
		ASSERT_INT_EQ(write_row(s, W_MERGE, e, etag, NULL), 0);
		st = stats(s);
		ASSERT_INT_EQ((int)st.written_out, cases[i].written_out ? 2 : 0);
		ASSERT_INT_EQ((int)st.dir_syncs, 2);
		ASSERT_INT_EQ(get_row(s, "job1", "t1", &got), 0);
		ASSERT_STR_EQ(prop_str(got, "state"), "completed");
		bd_entity_free(got);
		bd_entity_free(e);
		free(etag);
		bd_store_free(s);
		loop_end(&loop);
		ext4_unmount(mnt);
		free(mnt);
	}
	bd_rm_rf(dir);
	free(dir);
}

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	RUN(insert_get_replace_merge_remove);
	RUN(keys_and_query_order);
	RUN(bad_arguments);
	RUN(etag_race_between_processes);
	RUN(optimistic_counter_two_processes);
	RUN(crash_leftovers);
	RUN(rows_remembered);
	RUN(many_partitions);
	RUN(props_round_trip);
	RUN(group_commit);
	RUN(commit_delay);
	RUN(commit_delay_cut_short);
	RUN(lazy_writes_on_the_loop);
	RUN(write_cost);
	RUN(written_out_on_journaled_ext4);
	return 0;
}
