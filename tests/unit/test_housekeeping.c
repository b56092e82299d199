/* SPDX-License-Identifier: MIT */
/*
 * The node's housekeeping on real directories: task directories removed
 * once their retention passed and kept before, kept while a task uses
 * them, the journal carried over to a new housekeeper (a daemon restart),
 * leftovers of an earlier run's removal cleaned up, and the free-space
 * reserve as statvfs() sees the real filesystem.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "duration.h"
#include "fsutil.h"
#include "housekeeping.h"
#include "unit.h"
#include "xmalloc.h"

static uv_loop_t *L;
static char *base;
static int changes;
static const char *busy_dir;
static char *kept_paths[32];
static int n_kept;

static bool
exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static bool
in_use(void *arg, const char *dir)
{
	return busy_dir != NULL && strcmp(dir, busy_dir) == 0;
}

static void
changed(void *arg)
{
	changes++;
}

/* A task directory with a file in it; caller frees the path. */
static char *
make_task_dir(const char *root, const char *task)
{
	char *dir = xasprintf("%s/workitems/job/job-1/%s", root, task);
	char *file = xasprintf("%s/wd/out.txt", dir);
	char *wd = xasprintf("%s/wd", dir);

	ASSERT_INT_EQ(bd_mkdir_p(wd, 0755), 0);
	ASSERT_INT_EQ(bd_write_file_atomic(file, "x", 1, 0644), 0);
	free(file);
	free(wd);
	return dir;
}

static struct bd_housekeeping *
new_hk(const char *name, uint64_t reserve)
{
	struct bd_housekeeping *hk;
	char *root = xasprintf("%s/%s/root", base, name);
	char *state = xasprintf("%s/%s/state", base, name);
	struct bd_housekeeping_env env = {
		.loop = L,
		.node_root = root,
		.state_dir = state,
		.interval_ms = 3600 * 1000,
		.reserve_bytes = reserve,
		.in_use = in_use,
		.changed = changed,
	};
	char *cause = NULL;

	ASSERT_INT_EQ(bd_mkdir_p(root, 0755), 0);
	ASSERT_INT_EQ(bd_housekeeping_new(&env, &hk, &cause), 0);
	ASSERT_NULL(cause);
	/* The env's strings are borrowed: keep them for the process. */
	kept_paths[n_kept++] = root;
	kept_paths[n_kept++] = state;
	return hk;
}

/* Runs the loop until no sweep is under way. */
static void
settle(struct bd_housekeeping *hk)
{
	while (bd_housekeeping_busy(hk))
		uv_run(L, UV_RUN_ONCE);
}

static void
done(struct bd_housekeeping *hk)
{
	bd_housekeeping_free(hk);
	uv_run(L, UV_RUN_DEFAULT);
}

TEST(retention_removes_expired_and_keeps_the_rest)
{
	struct bd_housekeeping *hk = new_hk("ret", 0);
	char *root = xasprintf("%s/ret/root", base);
	char *gone = make_task_dir(root, "gone");
	char *kept = make_task_dir(root, "kept");
	char *never = make_task_dir(root, "never");

	changes = 0;
	bd_housekeeping_retain(hk, gone, 0);
	bd_housekeeping_retain(hk, kept, 3600 * 1000);
	bd_housekeeping_retain(hk, never, BD_DURATION_INFINITE);
	ASSERT_INT_EQ((int)bd_housekeeping_retained(hk), 2);
	bd_housekeeping_start(hk);
	settle(hk);
	ASSERT(changes >= 1);
	ASSERT(!exists(gone));
	ASSERT(exists(kept));
	ASSERT(exists(never));
	ASSERT_INT_EQ((int)bd_housekeeping_retained(hk), 1);
	/* The same directory again replaces its record. */
	bd_housekeeping_retain(hk, kept, 3600 * 1000);
	ASSERT_INT_EQ((int)bd_housekeeping_retained(hk), 1);
	done(hk);

	/* A new housekeeper (a restarted daemon) reads the journal. */
	hk = new_hk("ret", 0);
	ASSERT_INT_EQ((int)bd_housekeeping_retained(hk), 1);
	bd_housekeeping_retain(hk, kept, 0);
	bd_housekeeping_sweep(hk);
	settle(hk);
	ASSERT(!exists(kept));
	ASSERT_INT_EQ((int)bd_housekeeping_retained(hk), 0);
	done(hk);
	hk = new_hk("ret", 0);
	ASSERT_INT_EQ((int)bd_housekeeping_retained(hk), 0);
	done(hk);
	free(gone);
	free(kept);
	free(never);
	free(root);
}

/* Thousands of records: each directory is one record, after a sweep and
 * after a restart too (the index follows the array). */
TEST(many_records_one_per_directory)
{
	struct bd_housekeeping *hk = new_hk("many", 0);
	char *root = xasprintf("%s/many/root", base);
	char path[512];

	for (int round = 0; round < 2; round++)
		for (int i = 0; i < 3000; i++) {
			snprintf(path, sizeof(path), "%s/workitems/j/job-1/t%d",
			    root, i);
			/* The odd ones expire in the second round. */
			bd_housekeeping_retain(hk, path, round == 1 && i % 2 ?
			    0 : 3600 * 1000);
		}
	ASSERT_INT_EQ((int)bd_housekeeping_retained(hk), 3000);
	bd_housekeeping_sweep(hk);
	settle(hk);
	ASSERT_INT_EQ((int)bd_housekeeping_retained(hk), 1500);
	for (int i = 0; i < 3000; i += 2) {
		snprintf(path, sizeof(path), "%s/workitems/j/job-1/t%d", root,
		    i);
		bd_housekeeping_retain(hk, path, 3600 * 1000);
	}
	ASSERT_INT_EQ((int)bd_housekeeping_retained(hk), 1500);
	snprintf(path, sizeof(path), "%s/workitems/j/job-1/t1", root);
	bd_housekeeping_retain(hk, path, 3600 * 1000);
	ASSERT_INT_EQ((int)bd_housekeeping_retained(hk), 1501);
	done(hk);
	hk = new_hk("many", 0);
	ASSERT_INT_EQ((int)bd_housekeeping_retained(hk), 1501);
	done(hk);
	free(root);
}

TEST(a_directory_in_use_stays)
{
	struct bd_housekeeping *hk = new_hk("busy", 0);
	char *root = xasprintf("%s/busy/root", base);
	char *dir = make_task_dir(root, "again");

	bd_housekeeping_retain(hk, dir, 0);
	busy_dir = dir;
	bd_housekeeping_sweep(hk);
	settle(hk);
	ASSERT(exists(dir));
	ASSERT_INT_EQ((int)bd_housekeeping_retained(hk), 1);
	busy_dir = NULL;
	bd_housekeeping_sweep(hk);
	settle(hk);
	ASSERT(!exists(dir));
	done(hk);
	free(dir);
	free(root);
}

TEST(leftovers_of_an_earlier_removal_go_at_start)
{
	char *trash = xasprintf("%s/left/root/workitems/.removing/7-1/wd",
	    base);
	char *top = xasprintf("%s/left/root/workitems/.removing/7-1", base);
	struct bd_housekeeping *hk;

	ASSERT_INT_EQ(bd_mkdir_p(trash, 0755), 0);
	hk = new_hk("left", 0);
	bd_housekeeping_start(hk);
	settle(hk);
	ASSERT(!exists(top));
	done(hk);
	free(trash);
	free(top);
}

TEST(a_bad_journal_line_is_skipped)
{
	char *state = xasprintf("%s/badj/state", base);
	char *journal = xasprintf("%s/retention", state);
	static const char text[] = "batchd-retention 1\n"
	    "garbage\n12 relative/path\n99 /abs/dir\n";
	struct bd_housekeeping *hk;

	ASSERT_INT_EQ(bd_mkdir_p(state, 0700), 0);
	ASSERT_INT_EQ(bd_write_file_atomic(journal, text, strlen(text), 0600),
	    0);
	hk = new_hk("badj", 0);
	ASSERT_INT_EQ((int)bd_housekeeping_retained(hk), 1);
	done(hk);
	free(state);
	free(journal);
}

TEST(free_space_reserve)
{
	struct bd_housekeeping *hk = new_hk("space", 0);

	changes = 0;
	ASSERT(!bd_housekeeping_check_space(hk));
	ASSERT_NULL(bd_housekeeping_problem(hk));
	ASSERT(bd_housekeeping_free_bytes(hk) > 0);
	/* More than any test machine has free. */
	bd_housekeeping_set_reserve(hk, (uint64_t)1 << 60);
	ASSERT_NOT_NULL(bd_housekeeping_problem(hk));
	ASSERT_STR_CONTAINS(bd_housekeeping_problem(hk),
	    "tasks.freeSpaceReserveBytes");
	ASSERT_INT_EQ(changes, 1);
	bd_housekeeping_set_reserve(hk, 1);
	ASSERT_NULL(bd_housekeeping_problem(hk));
	ASSERT_INT_EQ(changes, 2);
	done(hk);
}

int
main(void)
{
	char tmpl[] = "/tmp/batchd-hk-XXXXXX";

	L = uv_default_loop();
	base = mkdtemp(tmpl);
	ASSERT_NOT_NULL(base);
	RUN(retention_removes_expired_and_keeps_the_rest);
	RUN(many_records_one_per_directory);
	RUN(a_directory_in_use_stays);
	RUN(leftovers_of_an_earlier_removal_go_at_start);
	RUN(a_bad_journal_line_is_skipped);
	RUN(free_space_reserve);
	bd_rm_rf(base);
	ASSERT_INT_EQ(uv_loop_close(L), 0);
	for (int i = 0; i < n_kept; i++)
		free(kept_paths[i]);
	printf("housekeeping: all passed\n");
	return 0;
}
