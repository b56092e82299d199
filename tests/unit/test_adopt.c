/* SPDX-License-Identifier: MIT */
/*
 * Adoption records on real files: save, update, load, remove; names for
 * any message id; damaged records set aside without stopping the others;
 * the supervisor's state carried in the record and left alone by it;
 * records of an older batchd (version 1, the state in a file of its own).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adopt.h"
#include "error.h"
#include "fsutil.h"
#include "supervisor.h"
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
	/* The record carries the state; an older batchd's did not. */
	p = bd_adopt_state_path(d, "m1", BD_ADOPT_VERSION);
	ASSERT(strstr(p, "/tasks/m1.json") != NULL);
	free(p);
	p = bd_adopt_state_path(d, "m1", 1);
	ASSERT(strstr(p, "/tasks/m1.supervisor") != NULL);
	free(p);
	free(d);
}

static void
check_sample(const struct bd_adopt_record *back,
    const struct bd_adopt_record *r)
{
	ASSERT_STR_EQ(back->message_id, r->message_id);
	ASSERT_STR_EQ(back->pop_receipt, r->pop_receipt);
	ASSERT_STR_EQ(back->message_text, r->message_text);
	ASSERT_STR_EQ(back->etag, r->etag);
	ASSERT_INT_EQ(back->dequeue_count, 2);
	ASSERT_INT_EQ(back->inserted_ms, 1764210000000);
	ASSERT_INT_EQ(back->retry_count, 1);
	ASSERT_INT_EQ(back->requeue_count, 3);
	ASSERT_INT_EQ(back->started_ms, 1764210001000);
}

TEST(round_trip)
{
	struct bd_adopt_record *r = sample("m1", "r1"), *back = NULL;
	char *text = bd_adopt_format(r), *cause = NULL;

	/* Blank state, the lease, the record, at their offsets. */
	ASSERT(strlen(text) > BD_ADOPT_RECORD_OFFSET);
	ASSERT_INT_EQ(text[0], ' ');
	ASSERT_INT_EQ(text[BD_ADOPT_LEASE_OFFSET - 1], '\n');
	ASSERT_INT_EQ(strncmp(text + BD_ADOPT_LEASE_OFFSET,
	    "{\"popReceipt\":\"r1\"}", 19), 0);
	ASSERT_INT_EQ(text[BD_ADOPT_RECORD_OFFSET - 1], '\n');
	ASSERT_INT_EQ(strncmp(text + BD_ADOPT_RECORD_OFFSET,
	    "{\"version\":2,", 12), 0);
	ASSERT_INT_EQ(bd_adopt_parse(text, strlen(text), &back, &cause), 0);
	check_sample(back, r);
	ASSERT_INT_EQ(back->version, 2);
	bd_adopt_record_free(back);
	free(text);

	/* An older batchd's record: the JSON alone, with the receipt. */
	r->version = 1;
	text = bd_adopt_format(r);
	ASSERT_INT_EQ(strncmp(text, "{\"version\":1,", 12), 0);
	ASSERT_NULL(strchr(text, '\n'));
	ASSERT_INT_EQ(bd_adopt_parse(text, strlen(text), &back, &cause), 0);
	check_sample(back, r);
	ASSERT_INT_EQ(back->version, 1);
	bd_adopt_record_free(back);
	free(text);
	bd_adopt_record_free(r);

	/* A newer version, a missing field, text that is not JSON: refused. */
	ASSERT(bd_adopt_parse("{\"version\":3}", 13, &back, &cause) < 0);
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

/* Writes a supervisor's record into path's state slot, as it does. */
static void
write_state(const char *path, enum bd_supervisor_state state)
{
	struct bd_supervisor_record rec = { .state = state, .pid = 42,
	    .start_time = 7, .task_pid = 43, .start_ms = 1, .end_ms = 2 };
	char slot[BD_SUPERVISOR_STATE_MAX], *text = bd_supervisor_record_format(
	    &rec);
	int fd = open(path, O_WRONLY | O_CREAT, 0600);

	ASSERT(fd >= 0);
	memset(slot, ' ', sizeof(slot));
	memcpy(slot, text, strlen(text));
	slot[sizeof(slot) - 1] = '\n';
	ASSERT_INT_EQ(pwrite(fd, slot, sizeof(slot), 0), sizeof(slot));
	close(fd);
	free(text);
}

/* Entries of dir, "." and ".." not counted. */
static int
count_entries(const char *path)
{
	DIR *dir_p = opendir(path);
	struct dirent *de;
	int n = 0;

	ASSERT_NOT_NULL(dir_p);
	while ((de = readdir(dir_p)) != NULL)
		n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
	closedir(dir_p);
	return n;
}

TEST(save_update_load_remove)
{
	char *d = NULL, *state;
	int old_fd;
	struct bd_adopt_record *a = sample("m1", "r1"), *b = sample("m2", "x");
	struct bd_adopt_record **v;
	struct bd_supervisor_record rec;
	size_t n;

	ASSERT_INT_EQ(bd_adopt_dir(dir, &d), 0);
	/* A stale state of an earlier receive goes with the record the
	 * claim replaces. */
	ASSERT_INT_EQ(bd_adopt_save(d, a), 0);
	state = bd_adopt_state_path(d, "m1", BD_ADOPT_VERSION);
	write_state(state, BD_SUPERVISOR_EXITED);
	/* That earlier supervisor still holds its file open: what it writes
	 * after the new claim's save stays out of the new file. */
	old_fd = open(state, O_WRONLY | O_CLOEXEC);
	ASSERT(old_fd >= 0);
	ASSERT_INT_EQ(bd_adopt_save(d, a), 0);
	ASSERT_INT_EQ(bd_supervisor_read_state(state, &rec, NULL), 0);
	ASSERT_INT_EQ(rec.state, BD_SUPERVISOR_NONE);
	ASSERT_INT_EQ(pwrite(old_fd, "{\"state\":\"exited\"}", 18, 0), 18);
	close(old_fd);
	ASSERT_INT_EQ(bd_supervisor_read_state(state, &rec, NULL), 0);
	ASSERT_INT_EQ(rec.state, BD_SUPERVISOR_NONE);
	/* No temporary file is left beside it. */
	ASSERT_INT_EQ(count_entries(d), 1);
	ASSERT_INT_EQ(bd_adopt_save(d, b), 0);
	/* The supervisor writes its state in place; a renewal writes the
	 * newest pop receipt beside it, and neither touches the other. */
	write_state(state, BD_SUPERVISOR_RUNNING);
	free(a->pop_receipt);
	a->pop_receipt = xstrdup("r2-a-longer-receipt");
	ASSERT_INT_EQ(bd_adopt_save_lease(d, a), 0);
	ASSERT_INT_EQ(bd_supervisor_read_state(state, &rec, NULL), 0);
	ASSERT_INT_EQ(rec.state, BD_SUPERVISOR_RUNNING);
	ASSERT_INT_EQ(rec.pid, 42);
	write_state(state, BD_SUPERVISOR_EXITED);
	free(a->pop_receipt);
	a->pop_receipt = xstrdup("r3");
	ASSERT_INT_EQ(bd_adopt_save_lease(d, a), 0);
	ASSERT_INT_EQ(bd_supervisor_read_state(state, &rec, NULL), 0);
	ASSERT_INT_EQ(rec.state, BD_SUPERVISOR_EXITED);

	ASSERT_INT_EQ(bd_adopt_load(d, &v, &n), 0);
	ASSERT_INT_EQ(n, 2);
	ASSERT_STR_EQ(find(v, n, "m1")->pop_receipt, "r3");
	ASSERT_STR_EQ(find(v, n, "m1")->message_text, a->message_text);
	ASSERT_STR_EQ(find(v, n, "m2")->pop_receipt, "x");
	free_all(v, n);

	bd_adopt_remove(d, "m1", BD_ADOPT_VERSION);
	ASSERT(access(state, F_OK) != 0);
	/* A renewal after the record is gone does not make one. */
	ASSERT_INT_EQ(bd_adopt_save_lease(d, a), -ENOENT);
	ASSERT_INT_EQ(bd_adopt_load(d, &v, &n), 0);
	ASSERT_INT_EQ(n, 1);
	ASSERT_STR_EQ(v[0]->message_id, "m2");
	free_all(v, n);
	bd_adopt_remove(d, "m2", BD_ADOPT_VERSION);
	ASSERT_INT_EQ(bd_adopt_load(d, &v, &n), 0);
	ASSERT_INT_EQ(n, 0);
	free(v);
	free(state);
	free(d);
	bd_adopt_record_free(a);
	bd_adopt_record_free(b);
}

/* What an older batchd left: a version 1 record and its state file. */
TEST(older_records)
{
	char *d = NULL, *record, *state, *text;
	struct bd_adopt_record *a = sample("old", "r1");
	struct bd_adopt_record **v;
	struct bd_supervisor_record rec;
	size_t n;

	ASSERT_INT_EQ(bd_adopt_dir(dir, &d), 0);
	a->version = 1;
	ASSERT_INT_EQ(bd_adopt_save(d, a), 0);
	state = bd_adopt_state_path(d, "old", 1);
	text = bd_supervisor_record_format(&(struct bd_supervisor_record){
	    .state = BD_SUPERVISOR_RUNNING, .pid = 42, .start_time = 7,
	    .task_pid = 43, .start_ms = 1 });
	ASSERT_INT_EQ(bd_write_file_atomic(state, text, strlen(text), 0600),
	    0);
	free(text);
	ASSERT_INT_EQ(bd_adopt_load(d, &v, &n), 0);
	ASSERT_INT_EQ(n, 1);
	ASSERT_INT_EQ(v[0]->version, 1);
	ASSERT_STR_EQ(v[0]->pop_receipt, "r1");
	free_all(v, n);
	ASSERT_INT_EQ(bd_supervisor_read_state(state, &rec, NULL), 0);
	ASSERT_INT_EQ(rec.state, BD_SUPERVISOR_RUNNING);
	/* A renewal rewrites it as it was, in version 1. */
	free(a->pop_receipt);
	a->pop_receipt = xstrdup("r2");
	ASSERT_INT_EQ(bd_adopt_save_lease(d, a), 0);
	record = bd_adopt_record_path(d, "old");
	ASSERT_INT_EQ(bd_read_file(record, 1 << 20, &text, &n), 0);
	ASSERT_INT_EQ(strncmp(text, "{\"version\":1,", 12), 0);
	free(text);
	ASSERT_INT_EQ(bd_adopt_load(d, &v, &n), 0);
	ASSERT_INT_EQ(n, 1);
	ASSERT_STR_EQ(v[0]->pop_receipt, "r2");
	free_all(v, n);
	bd_adopt_remove(d, "old", 1);
	ASSERT(access(record, F_OK) != 0);
	ASSERT(access(state, F_OK) != 0);
	/* A state file left without its record is removed at the next
	   load; the message's next claim (version 2) never looks for it. */
	ASSERT_INT_EQ(bd_write_file_atomic(state, "{}", 2, 0600), 0);
	bd_adopt_record_free(a);
	a = sample("other", "r");
	ASSERT_INT_EQ(bd_adopt_save(d, a), 0);
	ASSERT_INT_EQ(bd_adopt_load(d, &v, &n), 0);
	ASSERT_INT_EQ(n, 1);
	free_all(v, n);
	ASSERT(access(state, F_OK) != 0);
	bd_adopt_remove(d, "other", BD_ADOPT_VERSION);
	free(record);
	free(state);
	free(d);
	bd_adopt_record_free(a);
}

TEST(damaged_records_set_aside)
{
	char *d = NULL, *bad, *aside, *text;
	struct bd_adopt_record *a = sample("good", "r"), *t = sample("t", "r");
	struct bd_adopt_record **v;
	size_t n, len;

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
	free(aside);
	/* A version 2 file with its record cut short, or a damaged lease. */
	text = bd_adopt_format(t);
	len = strlen(text);
	ASSERT_INT_EQ(bd_write_file_atomic(bad, text, len - 10, 0600), 0);
	ASSERT_INT_EQ(bd_adopt_load(d, &v, &n), 0);
	ASSERT_INT_EQ(n, 1);
	free_all(v, n);
	ASSERT(access(bad, F_OK) != 0);
	text[BD_ADOPT_LEASE_OFFSET + 2] = 'X';
	ASSERT_INT_EQ(bd_write_file_atomic(bad, text, len, 0600), 0);
	ASSERT_INT_EQ(bd_adopt_load(d, &v, &n), 0);
	ASSERT_INT_EQ(n, 1);
	free_all(v, n);
	ASSERT(access(bad, F_OK) != 0);
	free(text);
	/* A missing directory holds no records. */
	ASSERT_INT_EQ(bd_adopt_load("/nonexistent/batchd", &v, &n), 0);
	ASSERT_INT_EQ(n, 0);
	bd_adopt_remove(d, "good", BD_ADOPT_VERSION);
	free(bad);
	free(d);
	bd_adopt_record_free(a);
	bd_adopt_record_free(t);
}

int
main(void)
{
	dir = xstrdup("/tmp/bd-adopt-XXXXXX");
	ASSERT_NOT_NULL(mkdtemp(dir));
	RUN(dir_and_names);
	RUN(round_trip);
	RUN(save_update_load_remove);
	RUN(older_records);
	RUN(damaged_records_set_aside);
	bd_rm_rf(dir);
	free(dir);
	return 0;
}
