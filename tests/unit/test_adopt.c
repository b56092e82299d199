/* SPDX-License-Identifier: MIT */
/*
 * Adoption records on real files: save, update, load, remove; names for
 * any message id; damaged records set aside without stopping the others.
 */
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adopt.h"
#include "error.h"
#include "fsutil.h"
#include "unit.h"
#include "xmalloc.h"

static char *dir;

static struct bd_adopt_record *
sample(const char *id, const char *receipt)
{
	struct bd_adopt_record *r = xcalloc(1, sizeof(*r));

	r->message_id = xstrdup(id);
	r->pop_receipt = xstrdup(receipt);
	r->message_text = xstrdup("{\"jobId\":\"j\",\"task\":{\"id\":\"t\","
	    "\"commandLine\":\"/bin/true\"}}");
	r->dequeue_count = 2;
	r->inserted_ms = 1764210000000;
	r->job_id = xstrdup("j");
	r->task_id = xstrdup("t");
	r->etag = xstrdup("W/\"datetime'2026-11-27T05%3A00%3A00Z'\"");
	r->retry_count = 1;
	r->requeue_count = 3;
	r->started_ms = 1764210001000;
	return r;
}

static struct bd_adopt_record *
find(struct bd_adopt_record **v, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i]->message_id, id) == 0)
			return v[i];
	return NULL;
}

static void
free_all(struct bd_adopt_record **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		bd_adopt_record_free(v[i]);
	free(v);
}

TEST(dir_and_names)
{
	char *d = NULL, *p;
	struct stat st;

	ASSERT_INT_EQ(bd_adopt_dir(dir, &d), 0);
	ASSERT_INT_EQ(stat(d, &st), 0);
	ASSERT_INT_EQ(st.st_mode & 0777, 0700);
	p = bd_adopt_record_path(d, "0123abc-_Z");
	ASSERT(strstr(p, "/tasks/0123abc-_Z.json") != NULL);
	free(p);
	/* Ids from outside never make a path of their own. */
	p = bd_adopt_record_path(d, "../x/y z");
	ASSERT(strstr(p, "/tasks/%2E%2E%2Fx%2Fy%20z.json") != NULL);
	free(p);
	p = bd_adopt_state_path(d, "m1");
	ASSERT(strstr(p, "/tasks/m1.supervisor") != NULL);
	free(p);
	free(d);
}

TEST(round_trip)
{
	struct bd_adopt_record *r = sample("m1", "r1"), *back = NULL;
	char *text = bd_adopt_format(r), *cause = NULL;

	ASSERT_INT_EQ(bd_adopt_parse(text, strlen(text), &back, &cause), 0);
	ASSERT_STR_EQ(back->message_id, "m1");
	ASSERT_STR_EQ(back->pop_receipt, "r1");
	ASSERT_STR_EQ(back->message_text, r->message_text);
	ASSERT_STR_EQ(back->etag, r->etag);
	ASSERT_INT_EQ(back->dequeue_count, 2);
	ASSERT_INT_EQ(back->inserted_ms, 1764210000000);
	ASSERT_INT_EQ(back->retry_count, 1);
	ASSERT_INT_EQ(back->requeue_count, 3);
	ASSERT_INT_EQ(back->started_ms, 1764210001000);
	bd_adopt_record_free(back);
	free(text);
	bd_adopt_record_free(r);

	/* A newer version, a missing field, text that is not JSON: refused. */
	ASSERT(bd_adopt_parse("{\"version\":2}", 13, &back, &cause) < 0);
	ASSERT_NOT_NULL(cause);
	free(cause);
	cause = NULL;
	ASSERT(bd_adopt_parse("{\"version\":1}", 13, &back, &cause) < 0);
	ASSERT_STR_CONTAINS(cause, "messageId");
	free(cause);
	cause = NULL;
	ASSERT(bd_adopt_parse("not json", 8, &back, &cause) < 0);
	ASSERT_NULL(back);
	free(cause);
}

TEST(save_update_load_remove)
{
	char *d = NULL, *state;
	struct bd_adopt_record *a = sample("m1", "r1"), *b = sample("m2", "x");
	struct bd_adopt_record **v;
	size_t n;

	ASSERT_INT_EQ(bd_adopt_dir(dir, &d), 0);
	ASSERT_INT_EQ(bd_adopt_save(d, a), 0);
	ASSERT_INT_EQ(bd_adopt_save(d, b), 0);
	/* A renewal: the newest pop receipt replaces the record whole. */
	free(a->pop_receipt);
	a->pop_receipt = xstrdup("r2");
	ASSERT_INT_EQ(bd_adopt_save(d, a), 0);
	state = bd_adopt_state_path(d, "m1");
	ASSERT_INT_EQ(bd_write_file_atomic(state, "{}", 2, 0600), 0);

	ASSERT_INT_EQ(bd_adopt_load(d, &v, &n), 0);
	ASSERT_INT_EQ(n, 2);
	ASSERT_STR_EQ(find(v, n, "m1")->pop_receipt, "r2");
	ASSERT_STR_EQ(find(v, n, "m2")->pop_receipt, "x");
	free_all(v, n);

	bd_adopt_remove(d, "m1");
	ASSERT(access(state, F_OK) != 0);
	ASSERT_INT_EQ(bd_adopt_load(d, &v, &n), 0);
	ASSERT_INT_EQ(n, 1);
	ASSERT_STR_EQ(v[0]->message_id, "m2");
	free_all(v, n);
	bd_adopt_remove(d, "m2");
	ASSERT_INT_EQ(bd_adopt_load(d, &v, &n), 0);
	ASSERT_INT_EQ(n, 0);
	free(v);
	free(state);
	free(d);
	bd_adopt_record_free(a);
	bd_adopt_record_free(b);
}

TEST(damaged_records_set_aside)
{
	char *d = NULL, *bad, *aside;
	struct bd_adopt_record *a = sample("good", "r");
	struct bd_adopt_record **v;
	size_t n;

	ASSERT_INT_EQ(bd_adopt_dir(dir, &d), 0);
	ASSERT_INT_EQ(bd_adopt_save(d, a), 0);
	bad = bd_path_join(d, "torn.json");
	ASSERT_INT_EQ(bd_write_file_atomic(bad, "{\"version\":1,\"mess", 18,
	    0600), 0);
	ASSERT_INT_EQ(bd_adopt_load(d, &v, &n), 0);
	ASSERT_INT_EQ(n, 1);
	ASSERT_STR_EQ(v[0]->message_id, "good");
	free_all(v, n);
	aside = xasprintf("%s.bad", bad);
	ASSERT_INT_EQ(access(aside, F_OK), 0);
	ASSERT(access(bad, F_OK) != 0);
	/* A missing directory holds no records. */
	ASSERT_INT_EQ(bd_adopt_load("/nonexistent/batchd", &v, &n), 0);
	ASSERT_INT_EQ(n, 0);
	bd_adopt_remove(d, "good");
	free(aside);
	free(bad);
	free(d);
	bd_adopt_record_free(a);
}

int
main(void)
{
	dir = xstrdup("/tmp/bd-adopt-XXXXXX");
	ASSERT_NOT_NULL(mkdtemp(dir));
	RUN(dir_and_names);
	RUN(round_trip);
	RUN(save_update_load_remove);
	RUN(damaged_records_set_aside);
	bd_rm_rf(dir);
	free(dir);
	return 0;
}
