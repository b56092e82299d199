/* SPDX-License-Identifier: MIT */
/*
 * The local spool's task source on real files and real processes: every
 * operation and error code, delays and FIFO order, visibility timeouts,
 * a receiver killed with SIGKILL, two processes racing for 1,000
 * messages, leftovers of a crash, and the cost of a receive+delete cycle
 * (BATCHD_BENCH_MESSAGES sets how many; 10,000 for the measurement).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "error.h"
#include "fsutil.h"
#include "source_local.h"
#include "unit.h"
#include "spool_support.h"
#include "xmalloc.h"


struct wait {
	bool done;
	int status;
	struct bd_message **msgs;
	size_t n;
	char *detail;
};

static void
on_receive(void *arg, int status, struct bd_message **msgs, size_t n,
    const char *detail)
{
	struct wait *w = arg;

	w->done = true;
	w->status = status;
	w->msgs = msgs;
	w->n = n;
	w->detail = detail ? xstrdup(detail) : NULL;
}

static void
on_done(void *arg, int status, const char *detail)
{
	struct wait *w = arg;

	w->done = true;
	w->status = status;
	w->detail = detail ? xstrdup(detail) : NULL;
}

static void
run_until(struct wait *w)
{
	while (!w->done)
		uv_run(L, UV_RUN_ONCE);
	free(w->detail);
	w->detail = NULL;
}

/* Receives; returns the messages (caller frees) and their count in *n. */
static struct bd_message **
receive(struct bd_source *s, int max, int64_t vis, size_t *n)
{
	struct wait w = { 0 };

	ASSERT_INT_EQ(bd_source_receive(s, max, vis, on_receive, &w), 0);
	/* The callback never runs from inside the call. */
	ASSERT(!w.done);
	run_until(&w);
	ASSERT_INT_EQ(w.status, 0);
	*n = w.n;
	return w.msgs;
}

/* Receives exactly one message. */
static struct bd_message *
receive1(struct bd_source *s, int64_t vis)
{
	size_t n;
	struct bd_message **msgs = receive(s, 1, vis, &n), *m;

	ASSERT_INT_EQ(n, 1);
	m = msgs[0];
	free(msgs);
	return m;
}

static void
expect_empty(struct bd_source *s)
{
	size_t n;
	struct bd_message **msgs = receive(s, 32, 60000, &n);

	ASSERT_INT_EQ(n, 0);
	free(msgs);
}

static void
free_msgs(struct bd_message **msgs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		bd_message_free(msgs[i]);
	free(msgs);
}

static int
send_msg(struct bd_source *s, enum bd_queue_kind q, const char *text,
    int64_t delay)
{
	struct wait w = { 0 };

	ASSERT_INT_EQ(bd_source_send(s, q, text, delay, on_done, &w), 0);
	ASSERT(!w.done);
	run_until(&w);
	return w.status;
}

struct many {
	int in_flight;
	int failed;
};

static void
on_many(void *arg, int status, const char *detail)
{
	struct many *m = arg;

	m->in_flight--;
	if (status != 0)
		m->failed++;
}

/* Sends "<prefix><i>" (i zero-padded) for i < n, 16 at a time. */
static void
send_many(struct bd_source *s, const char *prefix, int n)
{
	struct many m = { 0 };

	for (int i = 0; i < n; i++) {
		char text[64];

		while (m.in_flight >= 16)
			uv_run(L, UV_RUN_ONCE);
		snprintf(text, sizeof(text), "%s%04d", prefix, i);
		ASSERT_INT_EQ(bd_source_send(s, BD_QUEUE_TASKS, text, 0,
		    on_many, &m), 0);
		m.in_flight++;
	}
	while (m.in_flight > 0)
		uv_run(L, UV_RUN_ONCE);
	ASSERT_INT_EQ(m.failed, 0);
}

static int
update(struct bd_source *s, struct bd_message *m, int64_t vis,
    const char *text)
{
	struct wait w = { 0 };

	ASSERT_INT_EQ(bd_source_update(s, m, vis, text, on_done, &w), 0);
	run_until(&w);
	return w.status;
}

static int
remove_msg(struct bd_source *s, const struct bd_message *m)
{
	struct wait w = { 0 };

	ASSERT_INT_EQ(bd_source_remove(s, m, on_done, &w), 0);
	run_until(&w);
	return w.status;
}

static struct bd_source *
open_source(const char *spool, const char *node)
{
	struct bd_source *s;
	char *cause = NULL;
	int rc = bd_source_local_new(L, spool, "pool1-tasks", node, &s, &cause);

	if (rc != 0)
		UNIT_FAIL("bd_source_local_new: %d %s", rc, cause);
	return s;
}

static struct bd_source_local_stats
stats(struct bd_source *s)
{
	struct bd_source_local_stats st;

	ASSERT_INT_EQ(bd_source_local_stats(s, &st), 0);
	return st;
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* Sleeps until the wall clock passes t (ms). */
static void
sleep_until(int64_t t)
{
	int64_t now;

	while ((now = bd_clock_now_ms()) <= t)
		sleep_ms((int)(t - now + 1));
}

/*
 * Asserts that s receives nothing, if the time is still before t; a slow
 * machine that got there late skips the check rather than fail it.
 */
static void
expect_empty_before(struct bd_source *s, int64_t t)
{
	if (bd_clock_now_ms() < t - 50)
		expect_empty(s);
	else
		fprintf(stderr, "   (too slow to check a hidden message)\n");
}

/* Number of entries (dot files included) in spool/rel. */
static int
count_dir(const char *spool, const char *rel)
{
	char *p = xasprintf("%s/%s", spool, rel);
	DIR *d = opendir(p);
	struct dirent *de;
	int n = 0;

	ASSERT_NOT_NULL(d);
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	free(p);
	return n;
}

TEST(send_receive_remove)
{
	uv_loop_t loop;
	char *spool = spool_tmpdir("bd-srclocal");
	int64_t before = bd_clock_now_ms();
	struct bd_message **msgs;
	struct bd_source *s;
	size_t n;

	loop_begin(&loop);
	s = open_source(spool, "node-a");
	ASSERT_STR_EQ(s->ops->name, "local");
	ASSERT_INT_EQ(send_msg(s, BD_QUEUE_TASKS, "one", 0), 0);
	ASSERT_INT_EQ(send_msg(s, BD_QUEUE_TASKS, "two \"quoted\" \n", 0), 0);
	ASSERT_INT_EQ(send_msg(s, BD_QUEUE_TASKS, "", 0), 0);
	msgs = receive(s, 32, 30000, &n);
	ASSERT_INT_EQ(n, 3);
	ASSERT_STR_EQ(msgs[0]->text, "one");
	ASSERT_STR_EQ(msgs[1]->text, "two \"quoted\" \n");
	ASSERT_STR_EQ(msgs[2]->text, "");
	for (size_t i = 0; i < n; i++) {
		ASSERT_INT_EQ(msgs[i]->dequeue_count, 1);
		ASSERT(msgs[i]->inserted_ms >= before - 1);
		ASSERT(msgs[i]->inserted_ms <= bd_clock_now_ms());
		ASSERT(msgs[i]->visible_ms >= before + 30000);
		ASSERT_INT_EQ(strlen(msgs[i]->id), 32);
	}
	ASSERT(strcmp(msgs[0]->id, msgs[1]->id) != 0);
	ASSERT_INT_EQ(count_dir(spool, "queues/pool1-tasks/leased"), 3);
	ASSERT_INT_EQ(count_dir(spool, "queues/pool1-tasks/visible"), 0);
	/* Leased: nobody else receives them. */
	expect_empty(s);
	for (size_t i = 0; i < n; i++)
		ASSERT_INT_EQ(remove_msg(s, msgs[i]), 0);
	/* Gone: a second delete is a lost lease. */
	ASSERT_INT_EQ(remove_msg(s, msgs[0]), -ENOENT);
	ASSERT_INT_EQ(update(s, msgs[1], 1000, NULL), -ENOENT);
	ASSERT_INT_EQ(count_dir(spool, "queues/pool1-tasks/leased"), 0);
	expect_empty(s);

	struct bd_source_local_stats st = stats(s);
	ASSERT_INT_EQ(st.sends, 3);
	ASSERT_INT_EQ(st.received, 3);
	ASSERT_INT_EQ(st.removes, 3);
	ASSERT_INT_EQ(st.leases_lost, 2);
	ASSERT_INT_EQ(st.receives, 3);
	free_msgs(msgs, n);
	bd_source_free(s);
	loop_end(&loop);
	ASSERT_INT_EQ(bd_rm_rf(spool), 0);
	free(spool);
}

TEST(bad_arguments)
{
	uv_loop_t loop;
	char *spool = spool_tmpdir("bd-srclocal"), *cause = NULL, *big;
	struct bd_message fake = { 0 };
	struct bd_source *s;
	struct wait w = { 0 };

	loop_begin(&loop);
	ASSERT_INT_EQ(bd_source_local_new(L, spool, "Bad_Name", "n", &s,
	    &cause), -EINVAL);
	ASSERT_STR_CONTAINS(cause, "Bad_Name");
	free(cause);
	ASSERT_INT_EQ(bd_source_local_new(L, "", "pool1-tasks", "n", &s,
	    &cause), -EINVAL);
	free(cause);
	ASSERT_INT_EQ(bd_source_local_new(L, "/proc/nonexistent/x",
	    "pool1-tasks", "n", &s, &cause), -ENOENT);
	ASSERT_NOT_NULL(cause);
	free(cause);

	s = open_source(spool, "node-a");
	ASSERT_INT_EQ(bd_source_receive(s, 0, 1000, on_receive, &w), -EINVAL);
	ASSERT_INT_EQ(bd_source_receive(s, 33, 1000, on_receive, &w), -EINVAL);
	ASSERT_INT_EQ(bd_source_receive(s, 1, 0, on_receive, &w), -EINVAL);
	ASSERT_INT_EQ(bd_source_send(s, BD_QUEUE_TASKS, "x", -1, on_done, &w),
	    -EINVAL);
	big = xmalloc(64 * 1024 + 2);
	memset(big, 'a', 64 * 1024 + 1);
	big[64 * 1024 + 1] = '\0';
	ASSERT_INT_EQ(bd_source_send(s, BD_QUEUE_TASKS, big, 0, on_done, &w),
	    BD_ETOOBIG);
	big[64 * 1024] = '\0';
	ASSERT_INT_EQ(send_msg(s, BD_QUEUE_TASKS, big, 0), 0);
	/* A receipt this backend never made. */
	fake.id = xstrdup("../../../etc/passwd");
	fake.pop_receipt = xstrdup("x");
	ASSERT_INT_EQ(bd_source_update(s, &fake, 1000, NULL, on_done, &w),
	    -EINVAL);
	ASSERT_INT_EQ(bd_source_remove(s, &fake, on_done, &w), -EINVAL);
	free(fake.id);
	fake.id = xstrdup("0123456789abcdef0123456789abcdef");
	ASSERT_INT_EQ(bd_source_remove(s, &fake, on_done, &w), -EINVAL);
	ASSERT(!w.done);

	struct bd_message *m = receive1(s, 1000);
	ASSERT_INT_EQ(strlen(m->text), 64 * 1024);
	ASSERT_INT_EQ(bd_source_update(s, m, -1, NULL, on_done, &w), -EINVAL);
	ASSERT_INT_EQ(bd_source_update(s, m, 1000, big, on_done, &w), 0);
	run_until(&w);
	ASSERT_INT_EQ(w.status, 0);
	ASSERT_INT_EQ(remove_msg(s, m), 0);
	bd_message_free(m);
	free(fake.id);
	free(fake.pop_receipt);
	free(big);
	bd_source_free(s);
	loop_end(&loop);
	bd_rm_rf(spool);
	free(spool);
}

TEST(delay_and_order)
{
	uv_loop_t loop;
	char *spool = spool_tmpdir("bd-srclocal");
	struct bd_source *s, *t;
	struct bd_message **msgs;
	size_t n;
	char text[16];

	loop_begin(&loop);
	s = open_source(spool, "node-a");
	t = open_source(spool, "node-b");
	int64_t due = bd_clock_now_ms() + 1000;
	ASSERT_INT_EQ(send_msg(s, BD_QUEUE_TASKS, "later", 1000), 0);
	for (int i = 0; i < 5; i++) {
		snprintf(text, sizeof(text), "m%d", i);
		ASSERT_INT_EQ(send_msg(i % 2 ? s : t, BD_QUEUE_TASKS, text, 0),
		    0);
	}
	/* Oldest first, one at a time, whoever sent it. */
	for (int i = 0; i < 5; i++) {
		struct bd_message *m = receive1(i % 2 ? t : s, 60000);
		snprintf(text, sizeof(text), "m%d", i);
		ASSERT_STR_EQ(m->text, text);
		ASSERT_INT_EQ(remove_msg(s, m), 0);
		bd_message_free(m);
	}
	/* The delayed one is not visible yet... */
	expect_empty_before(s, due);
	expect_empty_before(t, due);
	/* Its time is taken when the call runs, a little after due. */
	sleep_until(due + 50);
	/* ...and then it is. */
	msgs = receive(t, 32, 60000, &n);
	ASSERT_INT_EQ(n, 1);
	ASSERT_STR_EQ(msgs[0]->text, "later");
	ASSERT(msgs[0]->visible_ms > msgs[0]->inserted_ms + 60000);
	ASSERT_INT_EQ(remove_msg(t, msgs[0]), 0);
	free_msgs(msgs, n);

	/* The poison queue is another queue. */
	ASSERT_INT_EQ(send_msg(s, BD_QUEUE_POISON, "bad", 0), 0);
	ASSERT_INT_EQ(count_dir(spool, "queues/pool1-tasks-poison/visible"), 1);
	expect_empty(s);

	/* create() is there and harmless. */
	struct wait w = { 0 };
	ASSERT_INT_EQ(bd_source_create(s, on_done, &w), 0);
	run_until(&w);
	ASSERT_INT_EQ(w.status, 0);
	bd_source_free(s);
	bd_source_free(t);
	loop_end(&loop);
	bd_rm_rf(spool);
	free(spool);
}

TEST(update_renews_and_replaces)
{
	uv_loop_t loop;
	char *spool = spool_tmpdir("bd-srclocal"), *old;
	struct bd_source *s, *t;
	struct bd_message *m, *m2, copy;

	loop_begin(&loop);
	s = open_source(spool, "node-a");
	t = open_source(spool, "node-b");
	ASSERT_INT_EQ(send_msg(s, BD_QUEUE_TASKS, "v1", 0), 0);
	m = receive1(s, 1000);
	old = xstrdup(m->pop_receipt);
	int64_t was = m->visible_ms;

	/* Renew: a new receipt, a later time; the old receipt is dead. */
	ASSERT_INT_EQ(update(s, m, 60000, NULL), 0);
	ASSERT(strcmp(old, m->pop_receipt) != 0);
	ASSERT(m->visible_ms >= was + 50000);
	copy = *m;
	copy.pop_receipt = old;
	ASSERT_INT_EQ(remove_msg(s, &copy), -ENOENT);
	ASSERT_INT_EQ(update(s, &copy, 1000, NULL), -ENOENT);
	free(old);

	/* New text, and hidden again for a moment (a dependency wait). */
	ASSERT_INT_EQ(update(s, m, 500, "v2"), 0);
	expect_empty_before(t, m->visible_ms);
	sleep_until(m->visible_ms);
	m2 = receive1(t, 60000);
	ASSERT_STR_EQ(m2->id, m->id);
	ASSERT_STR_EQ(m2->text, "v2");
	ASSERT_INT_EQ(m2->dequeue_count, 2);
	ASSERT_INT_EQ(m2->inserted_ms, m->inserted_ms);
	/* t has it now: s's receipt is stale. */
	ASSERT_INT_EQ(update(s, m, 60000, NULL), -ENOENT);
	ASSERT_INT_EQ(remove_msg(s, m), -ENOENT);

	/* Given back at once (visibility 0): receivable by another node. */
	ASSERT_INT_EQ(update(t, m2, 0, NULL), 0);
	bd_message_free(m);
	m = receive1(s, 60000);
	ASSERT_STR_EQ(m->id, m2->id);
	ASSERT_INT_EQ(m->dequeue_count, 3);
	ASSERT_INT_EQ(remove_msg(t, m2), -ENOENT);
	ASSERT_INT_EQ(remove_msg(s, m), 0);
	expect_empty(t);

	struct bd_source_local_stats st = stats(t);
	ASSERT_INT_EQ(st.taken_expired, 1);
	ASSERT_INT_EQ(st.updates, 1);
	ASSERT_INT_EQ(stats(s).leases_lost, 4);
	bd_message_free(m);
	bd_message_free(m2);
	bd_source_free(s);
	bd_source_free(t);
	loop_end(&loop);
	bd_rm_rf(spool);
	free(spool);
}

TEST(visibility_timeout_while_holder_lives)
{
	uv_loop_t loop;
	char *spool = spool_tmpdir("bd-srclocal");
	struct bd_source *s, *t;
	struct bd_message *m, *m2;

	loop_begin(&loop);
	s = open_source(spool, "node-a");
	t = open_source(spool, "node-b");
	ASSERT_INT_EQ(send_msg(s, BD_QUEUE_TASKS, "task", 0), 0);
	m = receive1(s, 500);
	expect_empty_before(t, m->visible_ms);
	sleep_until(m->visible_ms);
	/* The holder lives but did not renew: the lease is lost. */
	m2 = receive1(t, 60000);
	ASSERT_STR_EQ(m2->id, m->id);
	ASSERT_INT_EQ(m2->dequeue_count, 2);
	ASSERT_INT_EQ(update(s, m, 60000, NULL), -ENOENT);
	ASSERT_INT_EQ(remove_msg(s, m), -ENOENT);
	ASSERT_INT_EQ(remove_msg(t, m2), 0);

	/* The same source receives its own expired lease again too. */
	ASSERT_INT_EQ(send_msg(s, BD_QUEUE_TASKS, "again", 0), 0);
	bd_message_free(m);
	m = receive1(s, 100);
	sleep_until(m->visible_ms);
	bd_message_free(m2);
	m2 = receive1(s, 60000);
	ASSERT_INT_EQ(m2->dequeue_count, 2);
	ASSERT_INT_EQ(remove_msg(s, m), -ENOENT);
	ASSERT_INT_EQ(remove_msg(s, m2), 0);
	bd_message_free(m);
	bd_message_free(m2);
	bd_source_free(s);
	bd_source_free(t);
	loop_end(&loop);
	bd_rm_rf(spool);
	free(spool);
}

TEST(freeing_gives_leases_back)
{
	uv_loop_t loop;
	char *spool = spool_tmpdir("bd-srclocal");
	struct bd_source *s, *t;
	struct bd_message *m;

	loop_begin(&loop);
	s = open_source(spool, "node-a");
	t = open_source(spool, "node-b");
	ASSERT_INT_EQ(send_msg(s, BD_QUEUE_TASKS, "task", 0), 0);
	m = receive1(s, 600000);
	bd_message_free(m);
	expect_empty(t);
	bd_source_free(s);
	m = receive1(t, 60000);
	ASSERT_INT_EQ(m->dequeue_count, 2);
	ASSERT_INT_EQ(stats(t).taken_dead, 1);
	ASSERT_INT_EQ(remove_msg(t, m), 0);
	bd_message_free(m);
	/* Only t's owner file is left. */
	ASSERT_INT_EQ(count_dir(spool, "owners"), 1);
	bd_source_free(t);
	ASSERT_INT_EQ(count_dir(spool, "owners"), 0);
	loop_end(&loop);
	bd_rm_rf(spool);
	free(spool);
}

TEST(killed_receiver)
{
	uv_loop_t loop;
	char *spool = spool_tmpdir("bd-srclocal");
	struct bd_source *s;
	struct bd_message *m;
	int fds[2], status;
	pid_t pid;
	char c;

	loop_begin(&loop);
	s = open_source(spool, "node-a");
	ASSERT_INT_EQ(send_msg(s, BD_QUEUE_TASKS, "doomed", 0), 0);
	ASSERT_INT_EQ(pipe(fds), 0);
	pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		uv_loop_t child;
		struct bd_source *cs;
		size_t n;

		close(fds[0]);
		loop_begin(&child);
		cs = open_source(spool, "node-child");
		struct bd_message **msgs = receive(cs, 1, 600000, &n);
		c = n == 1 && strcmp(msgs[0]->text, "doomed") == 0 ? 'y' : 'n';
		if (write(fds[1], &c, 1) != 1)
			_exit(2);
		for (;;)
			pause();
	}
	close(fds[1]);
	ASSERT_INT_EQ(read(fds[0], &c, 1), 1);
	ASSERT_INT_EQ(c, 'y');
	close(fds[0]);
	/* The child holds it: not receivable. */
	expect_empty(s);
	ASSERT_INT_EQ(kill(pid, SIGKILL), 0);
	ASSERT_INT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT(WIFSIGNALED(status));
	/* Its lock died with it: the message is back, count kept. */
	m = receive1(s, 60000);
	ASSERT_STR_EQ(m->text, "doomed");
	ASSERT_INT_EQ(m->dequeue_count, 2);
	ASSERT_INT_EQ(stats(s).taken_dead, 1);
	ASSERT_INT_EQ(remove_msg(s, m), 0);
	bd_message_free(m);
	/* The dead owner's file was cleaned up. */
	ASSERT_INT_EQ(count_dir(spool, "owners"), 1);
	bd_source_free(s);
	loop_end(&loop);
	bd_rm_rf(spool);
	free(spool);
}

/* Child: receives and deletes until the queue stays empty; logs ids. */
static void
race_child(const char *spool, const char *node, int out)
{
	uv_loop_t child;
	struct bd_source *s;
	int empty = 0;

	loop_begin(&child);
	s = open_source(spool, node);
	while (empty < 3) {
		size_t n;
		struct bd_message **msgs = receive(s, 4, 600000, &n);

		empty = n == 0 ? empty + 1 : 0;
		for (size_t i = 0; i < n; i++) {
			if (remove_msg(s, msgs[i]) != 0)
				_exit(3);
			dprintf(out, "%s %s %d\n", msgs[i]->id, msgs[i]->text,
			    msgs[i]->dequeue_count);
		}
		free_msgs(msgs, n);
		if (n == 0)
			sleep_ms(20);
	}
	bd_source_free(s);
	loop_end(&child);
	_exit(0);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

TEST(two_processes_race)
{
	enum { N = 1000 };
	uv_loop_t loop;
	char *spool = spool_tmpdir("bd-srclocal"), *files[2], *lines[N + 16];
	struct bd_source *s;
	size_t total = 0;
	pid_t pids[2];
	int got[2] = { 0 };

	loop_begin(&loop);
	s = open_source(spool, "sender");
	send_many(s, "t", N);
	for (int k = 0; k < 2; k++) {
		files[k] = xasprintf("%s/out%d", spool, k);
		int fd = open(files[k], O_WRONLY | O_CREAT | O_TRUNC, 0600);
		ASSERT(fd >= 0);
		pids[k] = fork();
		ASSERT(pids[k] >= 0);
		if (pids[k] == 0)
			race_child(spool, k ? "node-b" : "node-a", fd);
		close(fd);
	}
	for (int k = 0; k < 2; k++) {
		int status;
		ASSERT_INT_EQ(waitpid(pids[k], &status, 0), pids[k]);
		ASSERT(WIFEXITED(status));
		ASSERT_INT_EQ(WEXITSTATUS(status), 0);
	}
	for (int k = 0; k < 2; k++) {
		FILE *f = fopen(files[k], "r");
		char buf[128];

		ASSERT_NOT_NULL(f);
		while (fgets(buf, sizeof(buf), f) != NULL) {
			char id[64], text[16];
			int dq, num;

			ASSERT(total < N + 16);
			ASSERT_INT_EQ(sscanf(buf, "%63s t%d %d", id, &num, &dq),
			    3);
			ASSERT(num >= 0 && num < N);
			/* Received once: never handed out again. */
			ASSERT_INT_EQ(dq, 1);
			snprintf(text, sizeof(text), "t%04d", num);
			lines[total++] = xstrdup(text);
			got[k]++;
		}
		fclose(f);
		free(files[k]);
	}
	/* Every message exactly once, and both children did work. */
	ASSERT_INT_EQ(total, N);
	qsort(lines, total, sizeof(lines[0]), cmp_str);
	for (size_t i = 0; i < total; i++) {
		char want[16];
		snprintf(want, sizeof(want), "t%04zu", i);
		ASSERT_STR_EQ(lines[i], want);
	}
	for (size_t i = 0; i < total; i++)
		free(lines[i]);
	fprintf(stderr, "   children received %d and %d\n", got[0], got[1]);
	ASSERT(got[0] > 0 && got[1] > 0);
	expect_empty(s);
	ASSERT_INT_EQ(count_dir(spool, "queues/pool1-tasks/leased"), 0);
	bd_source_free(s);
	loop_end(&loop);
	bd_rm_rf(spool);
	free(spool);
}

TEST(crash_leftovers)
{
	uv_loop_t loop;
	char *spool = spool_tmpdir("bd-srclocal");
	struct bd_source *s;
	struct bd_message **msgs;
	size_t n;

	loop_begin(&loop);
	s = open_source(spool, "node-a");
	bd_source_free(s);
	/* A send that died half-way, one still being written, junk. */
	plant(spool, "queues/pool1-tasks/visible/.tmp-0011223344556677",
	    "{\"v\":1,\"id\":\"00", 3600);
	plant(spool, "queues/pool1-tasks/visible/.tmp-8899aabbccddeeff",
	    "{\"v\":1,", 0);
	plant(spool, "queues/pool1-tasks/leased/.tmp-0123456789abcdef",
	    "{", 3600);
	plant(spool, "queues/pool1-tasks/visible/README", "not a message", 0);
	/* A message file with a proper name whose content is not one. */
	plant(spool, "queues/pool1-tasks/visible/"
	    "0000000000001.0123456789abcdef0123456789abcdef.0", "garbage", 0);
	/* The owner file of a process that died. */
	plant(spool, "owners/fedcba9876543210", "{}", 0);
	/* A lease of a dead owner, with a message that is fine. */
	plant(spool, "queues/pool1-tasks/leased/"
	    "00000000002000000aaaaaaaaaaaaaaa.4.9999999999999."
	    "fedcba9876543210.0000000000000000",
	    "{\"v\":1,\"id\":\"00000000002000000aaaaaaaaaaaaaaa\","
	    "\"insertedMs\":2,\"text\":\"survivor\"}", 0);

	s = open_source(spool, "node-a");
	ASSERT(!exists(spool, "owners/fedcba9876543210"));
	msgs = receive(s, 32, 60000, &n);
	ASSERT_INT_EQ(n, 1);
	ASSERT_STR_EQ(msgs[0]->text, "survivor");
	ASSERT_INT_EQ(msgs[0]->dequeue_count, 5);
	ASSERT_INT_EQ(msgs[0]->inserted_ms, 2);
	ASSERT_INT_EQ(remove_msg(s, msgs[0]), 0);
	free_msgs(msgs, n);

	struct bd_source_local_stats st = stats(s);
	ASSERT_INT_EQ(st.quarantined, 1);
	ASSERT_INT_EQ(st.temps_removed, 2);
	ASSERT(!exists(spool, "queues/pool1-tasks/visible/"
	    ".tmp-0011223344556677"));
	ASSERT(!exists(spool, "queues/pool1-tasks/leased/"
	    ".tmp-0123456789abcdef"));
	/* Young: may belong to a live writer. */
	ASSERT(exists(spool, "queues/pool1-tasks/visible/"
	    ".tmp-8899aabbccddeeff"));
	ASSERT(exists(spool, "queues/pool1-tasks/visible/README"));
	ASSERT_INT_EQ(count_dir(spool, "queues/pool1-tasks/bad"), 1);
	expect_empty(s);

	/* The queue still works. */
	ASSERT_INT_EQ(send_msg(s, BD_QUEUE_TASKS, "after", 0), 0);
	msgs = receive(s, 32, 60000, &n);
	ASSERT_INT_EQ(n, 1);
	ASSERT_STR_EQ(msgs[0]->text, "after");
	ASSERT_INT_EQ(remove_msg(s, msgs[0]), 0);
	free_msgs(msgs, n);
	bd_source_free(s);
	loop_end(&loop);
	bd_rm_rf(spool);
	free(spool);
}

TEST(huge_queue)
{
	enum { N = 20000 };
	uv_loop_t loop;
	char *spool = spool_tmpdir("bd-srclocal"), *dir;
	struct bd_source *s;
	int64_t last = -1;
	size_t got = 0;

	loop_begin(&loop);
	s = open_source(spool, "node-a");
	bd_source_local_set_sync(s, 0);
	/* Put in by hand, in scrambled order, more than one view holds. */
	dir = xasprintf("%s/queues/pool1-tasks/visible", spool);
	for (int i = 0; i < N; i++) {
		int k = (int)(((int64_t)i * 7919) % N);
		char name[512], rec[160], id[33];
		int fd;

		snprintf(id, sizeof(id), "%013x000%016x", 1000 + k, k);
		snprintf(name, sizeof(name), "%s/%013d.%s.0", dir, 1000 + k,
		    id);
		snprintf(rec, sizeof(rec), "{\"v\":1,\"id\":\"%s\","
		    "\"insertedMs\":%d,\"text\":\"%d\"}", id, k, k);
		fd = open(name, O_WRONLY | O_CREAT | O_EXCL, 0640);
		ASSERT(fd >= 0);
		ASSERT_INT_EQ(write(fd, rec, strlen(rec)), (ssize_t)strlen(rec));
		close(fd);
	}
	free(dir);
	for (;;) {
		size_t n;
		struct bd_message **msgs = receive(s, 32, 600000, &n);

		if (n == 0) {
			free(msgs);
			break;
		}
		for (size_t i = 0; i < n; i++) {
			/* Oldest first, across the re-reads. */
			ASSERT_INT_EQ(msgs[i]->inserted_ms, last + 1);
			last = msgs[i]->inserted_ms;
			ASSERT_INT_EQ(remove_msg(s, msgs[i]), 0);
		}
		got += n;
		free_msgs(msgs, n);
	}
	ASSERT_INT_EQ(got, N);
	struct bd_source_local_stats st = stats(s);
	fprintf(stderr, "   %d messages: %ju visible scans\n", N,
	    st.visible_scans);
	ASSERT(st.visible_scans >= 2 && st.visible_scans <= 8);
	bd_source_free(s);
	loop_end(&loop);
	bd_rm_rf(spool);
	free(spool);
}

struct cycle {
	struct bd_source *s;
	int taken;
	int active;
	struct bd_message *m;
};

static void cycle_next(struct cycle *c);

static void
cycle_on_removed(void *arg, int status, const char *detail)
{
	struct cycle *c = arg;

	ASSERT_INT_EQ(status, 0);
	bd_message_free(c->m);
	c->m = NULL;
	cycle_next(c);
}

static void
cycle_on_received(void *arg, int status, struct bd_message **msgs, size_t n,
    const char *detail)
{
	struct cycle *c = arg;

	ASSERT_INT_EQ(status, 0);
	if (n == 0) {
		free(msgs);
		c->active--;
		return;
	}
	ASSERT_INT_EQ(n, 1);
	c->m = msgs[0];
	free(msgs);
	c->taken++;
	ASSERT_INT_EQ(bd_source_remove(c->s, c->m, cycle_on_removed, c), 0);
}

/* One "slot": receive one, delete it, again. */
static void
cycle_next(struct cycle *c)
{
	ASSERT_INT_EQ(bd_source_receive(c->s, 1, 60000, cycle_on_received, c),
	    0);
}

/* CPU seconds of this process, all threads, user and system. */
static double
cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

TEST(receive_delete_cost)
{
	const char *env = getenv("BATCHD_BENCH_MESSAGES");
	int n = env ? atoi(env) : 1000;
	uv_loop_t loop;
	char *spool = spool_tmpdir("bd-srclocal");
	struct bd_source *s;
	struct cycle slots[2];
	double t0, t1, t2, c1, c2;

	if (n < 10)
		n = 10;
	loop_begin(&loop);
	s = open_source(spool, "bench");
	if (getenv("BATCHD_BENCH_NOSYNC") != NULL)
		bd_source_local_set_sync(s, 0);
	t0 = now_s();
	send_many(s, "{\"version\":1} ", n);
	t1 = now_s();
	c1 = cpu_s();
	/* Two slots, as a node with 2 task slots would run. */
	for (int k = 0; k < 2; k++) {
		slots[k] = (struct cycle){ .s = s, .active = 1 };
		cycle_next(&slots[k]);
	}
	while (slots[0].active + slots[1].active > 0)
		uv_run(&loop, UV_RUN_ONCE);
	t2 = now_s();
	c2 = cpu_s();
	ASSERT_INT_EQ(slots[0].taken + slots[1].taken, n);

	struct bd_source_local_stats st = stats(s);
	fprintf(stderr, "   %d messages: send %.0f us each (16 in flight), "
	    "receive+delete %.0f us each (2 in flight, %.0f us of CPU); "
	    "%ju visible scans, %ju lease scans, %ju claims lost\n", n,
	    (t1 - t0) * 1e6 / n,
	    (t2 - t1) * 1e6 / n, (c2 - c1) * 1e6 / n, st.visible_scans,
	    st.lease_scans, st.claims_lost);
	/* No directory re-read per message. */
	ASSERT(st.visible_scans < (uint64_t)n / 20 + 5);
	ASSERT_INT_EQ(st.removes, n);
	/*
	 * Wall time is the disk's (fsync); the CPU is ours.  Generous: the
	 * sanitizers are slow.
	 */
	ASSERT((c2 - c1) * 1e3 / n < 3.0);
	bd_source_free(s);
	loop_end(&loop);
	bd_rm_rf(spool);
	free(spool);
}

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	RUN(send_receive_remove);
	RUN(bad_arguments);
	RUN(delay_and_order);
	RUN(update_renews_and_replaces);
	RUN(visibility_timeout_while_holder_lives);
	RUN(freeing_gives_leases_back);
	RUN(killed_receiver);
	RUN(two_processes_race);
	RUN(crash_leftovers);
	RUN(huge_queue);
	RUN(receive_delete_cost);
	return 0;
}
