/* SPDX-License-Identifier: MIT */
/*
 * Application packages on a real local store: the pick rule, directory
 * names, the task variables, and the manager end to end (concurrent
 * requests share one install, an ETag change installs again beside the
 * held copy, a hostile archive fails naming its entry, leftovers of a
 * crashed install are removed, least recently used packages go first,
 * but never one that another process holds; an install that nobody waits
 * for any more stops in the middle of its unpack; a package that a batchd
 * renamed into place but did not sync is synced at the next start in the
 * same boot and removed after a reboot, before any request sees it).
 * Archives are made at test time with tar(1) and python3's zipfile.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <dirent.h>
#include <unistd.h>
#include <uv.h>

#include "app_package.h"
#include "app_store.h"
#include "clock.h"
#include "environment.h"
#include "error.h"
#include "fsutil.h"
#include "xmalloc.h"
#include "unit.h"

static char tmp[] = "/tmp/batchd-test-app-XXXXXX";
static char *store_dir, *root;

static void
sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
sh(const char *fmt, ...)
{
	va_list ap;
	char *cmd;
	int rc;

	va_start(ap, fmt);
	cmd = xvasprintf(fmt, ap);
	va_end(ap);
	rc = system(cmd);
	if (rc != 0)
		UNIT_FAIL("command failed (%d): %s", rc, cmd);
	free(cmd);
}

/* A tar.gz package app/version holding one file "marker" with text. */
static void
make_targz(const char *app, const char *version, const char *text)
{
	sh("set -e; d=%s/src; rm -rf $d; mkdir -p $d/bin; printf '%%s' '%s' "
	    "> $d/marker; printf '#!/bin/sh\\necho hi\\n' > $d/bin/run; "
	    "chmod 4755 $d/bin/run; mkdir -p %s/%s; "
	    "tar -C $d -czf %s/%s/%s.tar.gz.tmp . && "
	    "mv %s/%s/%s.tar.gz.tmp %s/%s/%s.tar.gz", tmp, text, store_dir, app,
	    store_dir, app, version, store_dir, app, version, store_dir, app,
	    version);
}

/* ---- pure parts --------------------------------------------------------- */

TEST(pick)
{
	const char *names[] = { "1.0.tar.gz", "1.0.ZIP", "2.0.tar.zst",
	    "notes.txt", "3.tar.xz" };
	char *cause = NULL;

	ASSERT_INT_EQ(bd_app_store_pick(names, 5, "1.0", NULL, &cause), 1);
	ASSERT_INT_EQ(bd_app_store_pick(names, 5, "2.0", NULL, &cause), 2);
	ASSERT_INT_EQ(bd_app_store_pick(names, 5, "3", NULL, &cause), 4);
	ASSERT_INT_EQ(bd_app_store_pick(names, 5, NULL, "2.0", &cause), 2);
	ASSERT_INT_EQ(bd_app_store_pick(names, 5, "4.0", NULL, &cause), -1);
	ASSERT_STR_CONTAINS(cause, "version 4.0 is not in the store");
	ASSERT_STR_CONTAINS(cause, "versions there: 1.0, 1.0, 2.0, 3");
	free(cause);
	ASSERT_INT_EQ(bd_app_store_pick(names, 5, NULL, NULL, &cause), -1);
	ASSERT_STR_CONTAINS(cause, "no default version");
	free(cause);
	ASSERT_INT_EQ(bd_app_store_pick(names, 5, NULL, "../x", &cause), -1);
	ASSERT_STR_CONTAINS(cause, "does not hold a version");
	free(cause);
}

TEST(dir_name)
{
	char *a = bd_app_package_dir_name("MyApp", "1.5", "\"0x1\"");
	char *b = bd_app_package_dir_name("myapp", "1.5", "\"0x1\"");
	char *c = bd_app_package_dir_name("myapp", "1.5", "\"0x2\"");

	ASSERT_STR_EQ(a, b);
	ASSERT(strncmp(a, "myapp-1.5-", 10) == 0);
	ASSERT_INT_EQ(strlen(a), 10 + 12);
	ASSERT(strcmp(a, c) != 0);
	free(b);
	/* A listing's ETag and a GET's name the same package. */
	b = bd_app_package_dir_name("MyApp", "1.5", "0x1");
	ASSERT_STR_EQ(a, b);
	free(a);
	free(b);
	free(c);
}

TEST(environment)
{
	struct bd_env *env = bd_env_new();

	bd_env_set(env, "AZ_BATCH_APP_PACKAGE_keep_1", "mine");
	bd_env_add_app_package(env, "Agent-linux-x64", "1.1.46#0", "/a", false);
	ASSERT_STR_EQ(bd_env_get(env,
	    "AZ_BATCH_APP_PACKAGE_Agent_linux_x64_1_1_46_0"), "/a");
	ASSERT_STR_EQ(bd_env_get(env,
	    "AZ_BATCH_APP_PACKAGE_agent_linux_x64_1_1_46_0"), "/a");
	ASSERT_NULL(bd_env_get(env, "AZ_BATCH_APP_PACKAGE_agent_linux_x64"));
	bd_env_add_app_package(env, "blender", "2.80-daily", "/b", true);
	ASSERT_STR_EQ(bd_env_get(env, "AZ_BATCH_APP_PACKAGE_blender"), "/b");
	ASSERT_STR_EQ(bd_env_get(env,
	    "AZ_BATCH_APP_PACKAGE_blender_2_80_daily"), "/b");
	bd_env_add_app_package(env, "keep", "1", "/k", false);
	ASSERT_STR_EQ(bd_env_get(env, "AZ_BATCH_APP_PACKAGE_keep_1"), "mine");
	bd_env_free(env);
}

/* ---- the manager on a local store ----------------------------------------- */

struct answer {
	bool done;
	int status;
	char *message;
	char *dir;
	bool default_version;
};

static void
on_answer(struct bd_app_request *req, int status, const char *message,
    void *arg)
{
	struct answer *a = arg;
	const struct bd_app_package *p;
	size_t n;

	a->done = true;
	a->status = status;
	a->message = message != NULL ? xstrdup(message) : NULL;
	p = bd_app_request_packages(req, &n);
	if (n > 0) {
		a->dir = xstrdup(p[0].dir);
		a->default_version = p[0].default_version;
	}
}

static struct bd_app_packages *
manager(uv_loop_t *loop, uint64_t cache_max)
{
	struct bd_app_packages_options o = {
		.loop = loop,
		.store = bd_app_store_local_new(loop, store_dir),
		.node_root = root,
		.limits = { .max_bytes = 1 << 20, .max_entries = 100 },
		.cache_max_bytes = cache_max,
	};

	return bd_app_packages_new(&o);
}

/* Acquires one reference and runs the loop until it is answered. */
static struct bd_app_request *
get(uv_loop_t *loop, struct bd_app_packages *m, const char *app,
    const char *version, struct answer *a)
{
	struct bd_application_package_reference ref = {
		.application_id = (char *)(uintptr_t)app,
		.version = (char *)(uintptr_t)version,
	};
	struct bd_app_request *req;

	memset(a, 0, sizeof(*a));
	ASSERT_INT_EQ(bd_app_packages_acquire(m, &ref, 1, on_answer, a, &req),
	    0);
	while (!a->done)
		uv_run(loop, UV_RUN_ONCE);
	return req;
}

static void
answer_clear(struct answer *a)
{
	free(a->message);
	free(a->dir);
}

static char *
read_text(const char *dir, const char *name)
{
	char *path = bd_path_join(dir, name), *text = NULL;
	size_t len;

	ASSERT_INT_EQ(bd_read_file(path, 4096, &text, &len), 0);
	free(path);
	return text;
}

TEST(install_once_and_again_on_change)
{
	uv_loop_t loop;
	struct bd_app_packages *m;
	struct bd_app_packages_stats st;
	struct bd_application_package_reference ref = {
		.application_id = (char *)(uintptr_t)"Tool",
		.version = (char *)(uintptr_t)"1.0",
	};
	struct bd_app_request *reqs[5], *held, *again;
	struct answer ans[5], a, b;
	struct stat sb;
	char *text, *path;

	make_targz("tool", "1.0", "first");
	uv_loop_init(&loop);
	m = manager(&loop, 0);
	for (int i = 0; i < 5; i++) {
		memset(&ans[i], 0, sizeof(ans[i]));
		ASSERT_INT_EQ(bd_app_packages_acquire(m, &ref, 1, on_answer,
		    &ans[i], &reqs[i]), 0);
	}
	for (int i = 0; i < 5; i++)
		while (!ans[i].done)
			uv_run(&loop, UV_RUN_ONCE);
	bd_app_packages_stats(m, &st);
	ASSERT_INT_EQ(st.installs, 1);
	for (int i = 0; i < 5; i++) {
		ASSERT_INT_EQ(ans[i].status, 0);
		ASSERT_STR_EQ(ans[i].dir, ans[0].dir);
	}
	text = read_text(ans[0].dir, "marker");
	ASSERT_STR_EQ(text, "first");
	free(text);
	/* Modes kept, set-uid dropped. */
	path = bd_path_join(ans[0].dir, "bin/run");
	ASSERT_INT_EQ(stat(path, &sb), 0);
	ASSERT_INT_EQ(sb.st_mode & 07777, 0755);
	free(path);
	for (int i = 1; i < 5; i++) {
		bd_app_request_free(reqs[i]);
		answer_clear(&ans[i]);
	}
	held = reqs[0];

	/* Installed: found again, no new install. */
	again = get(&loop, m, "TOOL", "1.0", &a);
	ASSERT_INT_EQ(a.status, 0);
	ASSERT_STR_EQ(a.dir, ans[0].dir);
	bd_app_packages_stats(m, &st);
	ASSERT_INT_EQ(st.installs, 1);
	ASSERT_INT_EQ(st.reuses, 1);
	bd_app_request_free(again);
	answer_clear(&a);

	/* The store's copy changes: a new directory; the held one stays. */
	make_targz("tool", "1.0", "second");
	again = get(&loop, m, "tool", "1.0", &b);
	ASSERT_INT_EQ(b.status, 0);
	ASSERT(strcmp(b.dir, ans[0].dir) != 0);
	text = read_text(b.dir, "marker");
	ASSERT_STR_EQ(text, "second");
	free(text);
	text = read_text(ans[0].dir, "marker");
	ASSERT_STR_EQ(text, "first");
	free(text);
	bd_app_request_free(again);
	answer_clear(&b);
	bd_app_request_free(held);
	answer_clear(&ans[0]);

	bd_app_packages_close(m);
	uv_run(&loop, UV_RUN_DEFAULT);
	ASSERT_INT_EQ(uv_loop_close(&loop), 0);
}

TEST(default_version_and_missing)
{
	uv_loop_t loop;
	struct bd_app_packages *m;
	struct bd_app_request *req;
	struct answer a;

	make_targz("deftool", "2.1", "two");
	uv_loop_init(&loop);
	m = manager(&loop, 0);

	req = get(&loop, m, "deftool", NULL, &a);
	ASSERT_INT_EQ(a.status, BD_ENOTFOUND);
	ASSERT_STR_CONTAINS(a.message, "application package 'deftool' "
	    "(default version)");
	ASSERT_STR_CONTAINS(a.message, "no default version");
	ASSERT(bd_app_packages_user_error(a.status));
	bd_app_request_free(req);
	answer_clear(&a);

	sh("echo ' 2.1 ' > %s/deftool/default", store_dir);
	req = get(&loop, m, "DefTool", NULL, &a);
	ASSERT_INT_EQ(a.status, 0);
	ASSERT(a.default_version);
	ASSERT_STR_CONTAINS(a.dir, "/applications/deftool-2.1-");
	bd_app_request_free(req);
	answer_clear(&a);

	req = get(&loop, m, "deftool", "9", &a);
	ASSERT_INT_EQ(a.status, BD_ENOTFOUND);
	ASSERT_STR_CONTAINS(a.message, "version 9 is not in the store");
	bd_app_request_free(req);
	answer_clear(&a);

	bd_app_packages_close(m);
	uv_run(&loop, UV_RUN_DEFAULT);
	ASSERT_INT_EQ(uv_loop_close(&loop), 0);
}

TEST(hostile_package_names_entry)
{
	uv_loop_t loop;
	struct bd_app_packages *m;
	struct bd_app_request *req;
	struct answer a;
	char *apps;

	sh("mkdir -p %s/evil && python3 -c \"import zipfile; "
	    "z = zipfile.ZipFile('%s/evil/1.zip', 'w'); "
	    "z.writestr('ok.txt', 'x'); z.writestr('../../escape.txt', 'x'); "
	    "z.close()\"", store_dir, store_dir);
	uv_loop_init(&loop);
	m = manager(&loop, 0);
	req = get(&loop, m, "evil", "1", &a);
	ASSERT_INT_EQ(a.status, BD_EESCAPE);
	ASSERT_STR_CONTAINS(a.message, "application package 'evil' version "
	    "'1'");
	ASSERT_STR_CONTAINS(a.message, "escape.txt");
	bd_app_request_free(req);
	answer_clear(&a);
	bd_app_packages_close(m);
	uv_run(&loop, UV_RUN_DEFAULT);
	ASSERT_INT_EQ(uv_loop_close(&loop), 0);

	/* Nothing of it is left, under a final name or a temporary one. */
	apps = bd_path_join(root, "applications");
	sh("! ls -a %s | grep -q -e evil -e '^\\.install'", apps);
	free(apps);
}

TEST(leftovers_and_lru)
{
	uv_loop_t loop;
	struct bd_app_packages *m;
	struct bd_app_packages_stats st;
	struct bd_app_request *req;
	struct answer a, b, c;
	char *apps = bd_path_join(root, "applications");
	pid_t pid;
	struct stat sb;

	/* A leftover of a process that is gone, and one of a live one. */
	if ((pid = fork()) == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	sh("mkdir -p %s/.install-%ld-1234abcd-1/x %s/.install-1-1234abcd-1 "
	    "%s/.remove-%ld-00000002-3", apps, (long)pid, apps, apps,
	    (long)getpid());
	sh("rm -rf %s/*", apps);
	for (int i = 0; i < 3; i++) {
		char app[16];
		snprintf(app, sizeof(app), "lru%d", i);
		make_targz(app, "1", "some bytes");
	}
	uv_loop_init(&loop);
	m = manager(&loop, 1);	/* one byte: only held packages stay */
	req = get(&loop, m, "lru0", "1", &a);
	bd_app_request_free(req);
	req = get(&loop, m, "lru1", "1", &b);
	/* lru0 is unheld and over the limit: gone. */
	ASSERT(stat(a.dir, &sb) < 0 && errno == ENOENT);
	ASSERT_INT_EQ(stat(b.dir, &sb), 0);
	bd_app_request_free(req);
	req = get(&loop, m, "lru2", "1", &c);
	ASSERT(stat(b.dir, &sb) < 0 && errno == ENOENT);
	ASSERT_INT_EQ(stat(c.dir, &sb), 0);
	bd_app_packages_stats(m, &st);
	ASSERT_INT_EQ(st.removed, 2);
	bd_app_request_free(req);
	bd_app_packages_close(m);
	uv_run(&loop, UV_RUN_DEFAULT);
	ASSERT_INT_EQ(uv_loop_close(&loop), 0);
	answer_clear(&a);
	answer_clear(&b);
	answer_clear(&c);

	/* The dead processes' temporaries went; the live one's stayed. */
	char *dead = xasprintf("%s/.install-%ld-1234abcd-1", apps, (long)pid);
	char *live = xasprintf("%s/.install-1-1234abcd-1", apps);
	char *mine = xasprintf("%s/.remove-%ld-00000002-3", apps,
	    (long)getpid());
	ASSERT(stat(dead, &sb) < 0 && errno == ENOENT);
	/* Our own pid, but an earlier process's token: gone too. */
	ASSERT(stat(mine, &sb) < 0 && errno == ENOENT);
	free(mine);
	ASSERT_INT_EQ(stat(live, &sb), 0);
	free(dead);
	free(live);
	free(apps);
}

/*
 * Forks a process that holds dir as a task's supervisor would (open, a
 * shared flock) until *release is closed; returns its pid once it holds.
 */
static pid_t
hold_elsewhere(const char *dir, int *release)
{
	int ready[2], gate[2];
	pid_t pid;
	char c;

	ASSERT_INT_EQ(pipe(ready), 0);
	ASSERT_INT_EQ(pipe(gate), 0);
	if ((pid = fork()) == 0) {
		int fd = open(dir, O_RDONLY | O_DIRECTORY);

		close(ready[0]);
		close(gate[1]);
		if (fd < 0 || flock(fd, LOCK_SH) < 0)
			_exit(1);
		(void)write(ready[1], "x", 1);
		(void)read(gate[0], &c, 1);	/* until the parent closes */
		_exit(0);
	}
	close(ready[1]);
	close(gate[0]);
	ASSERT_INT_EQ(read(ready[0], &c, 1), 1);
	close(ready[0]);
	*release = gate[1];
	return pid;
}

/* Whether dir can be locked exclusively from another process now. */
static bool
free_elsewhere(const char *dir)
{
	pid_t pid;
	int status;

	if ((pid = fork()) == 0) {
		int fd = open(dir, O_RDONLY | O_DIRECTORY);
		_exit(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0 ? 0 : 1);
	}
	ASSERT_INT_EQ(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

TEST(held_elsewhere_is_kept)
{
	uv_loop_t loop;
	struct bd_app_packages *m;
	struct bd_app_packages_stats st;
	struct bd_app_request *req;
	struct answer a, b, c;
	struct stat sb;
	int release, fds[4];
	pid_t pid;

	make_targz("kept0", "1", "kept");
	make_targz("kept1", "1", "other");
	make_targz("kept2", "1", "third");
	uv_loop_init(&loop);
	m = manager(&loop, 1);	/* one byte: only held packages stay */
	req = get(&loop, m, "kept0", "1", &a);
	ASSERT_INT_EQ(a.status, 0);
	/* The request's lock is what a supervisor inherits. */
	ASSERT_INT_EQ(bd_app_packages_hold_fds(m, req, fds, 4), 1);
	ASSERT(!free_elsewhere(a.dir));
	/* Another process (a task of another batchd, an adopted task's
	 * supervisor) holds it too; this process lets go. */
	pid = hold_elsewhere(a.dir, &release);
	bd_app_request_free(req);
	req = get(&loop, m, "kept1", "1", &b);
	bd_app_request_free(req);
	/* Over the limit: kept1 went, kept0 stayed for its holder. */
	ASSERT_INT_EQ(stat(a.dir, &sb), 0);
	ASSERT(stat(b.dir, &sb) < 0 && errno == ENOENT);
	bd_app_packages_stats(m, &st);
	ASSERT_INT_EQ(st.removed, 1);
	/* Its holder ends: the next collection takes it. */
	close(release);
	ASSERT_INT_EQ(waitpid(pid, NULL, 0), pid);
	ASSERT(free_elsewhere(a.dir));
	req = get(&loop, m, "kept2", "1", &c);
	ASSERT(stat(a.dir, &sb) < 0 && errno == ENOENT);
	bd_app_request_free(req);
	bd_app_packages_close(m);
	uv_run(&loop, UV_RUN_DEFAULT);
	ASSERT_INT_EQ(uv_loop_close(&loop), 0);
	answer_clear(&a);
	answer_clear(&b);
	answer_clear(&c);
}

/* Cancels the request once the unpack has made its first file. */
struct canceller {
	uv_timer_t timer;
	struct bd_app_request *req;
	char *apps;
	uint64_t cancelled_ms;
};

static void
on_canceller_tick(uv_timer_t *t)
{
	struct canceller *k = t->data;
	struct dirent *e;
	DIR *d = opendir(k->apps);
	bool started = false;

	while (d != NULL && (e = readdir(d)) != NULL && !started) {
		char *first;
		struct stat sb;

		if (strncmp(e->d_name, ".install-", 9) != 0)
			continue;
		first = xasprintf("%s/%s/000-first.txt", k->apps, e->d_name);
		started = stat(first, &sb) == 0;
		free(first);
	}
	if (d != NULL)
		closedir(d);
	if (!started)
		return;
	uv_timer_stop(t);
	k->cancelled_ms = uv_hrtime() / 1000000;
	bd_app_request_cancel(k->req);
}

/* No temporary of ours and no directory of app under applications/. */
static void
assert_nothing_of(const char *apps, const char *app)
{
	sh("! ls -a %s | grep -q -e '^%s-' -e '^\\.install-%ld-'", apps, app,
	    (long)getpid());
}

TEST(cancel_stops_the_unpack)
{
	struct bd_app_packages_options o = { 0 };
	uv_loop_t loop;
	struct bd_app_packages *m;
	struct bd_application_package_reference ref = {
		.application_id = (char *)(uintptr_t)"slow",
		.version = (char *)(uintptr_t)"1",
	};
	struct canceller k = { 0 };
	struct answer a;
	uint64_t t0, full_ms, answered_ms, idle_ms;

	/* 30,000 small files: long enough to catch in the middle. */
	sh("set -e; d=%s/slowsrc; rm -rf $d; mkdir -p $d/data; "
	    "echo first > $d/000-first.txt; cd $d/data; "
	    "seq -w 1 30000 | xargs touch; mkdir -p %s/slow %s/slowref; "
	    "tar -C $d -czf %s/slow/1.tar.gz . && "
	    "cp %s/slow/1.tar.gz %s/slowref/1.tar.gz", tmp, store_dir,
	    store_dir, store_dir, store_dir, store_dir);
	uv_loop_init(&loop);
	o.loop = &loop;
	o.store = bd_app_store_local_new(&loop, store_dir);
	o.node_root = root;
	o.limits.max_entries = 100000;
	m = bd_app_packages_new(&o);
	k.apps = bd_path_join(root, "applications");

	/* The same archive, whole, for the time it takes. */
	t0 = uv_hrtime() / 1000000;
	bd_app_request_free(get(&loop, m, "slowref", "1", &a));
	full_ms = uv_hrtime() / 1000000 - t0;
	ASSERT_INT_EQ(a.status, 0);
	answer_clear(&a);

	memset(&a, 0, sizeof(a));
	ASSERT_INT_EQ(bd_app_packages_acquire(m, &ref, 1, on_answer, &a,
	    &k.req), 0);
	uv_timer_init(&loop, &k.timer);
	k.timer.data = &k;
	uv_timer_start(&k.timer, on_canceller_tick, 1, 1);
	while (!a.done)
		uv_run(&loop, UV_RUN_ONCE);
	answered_ms = uv_hrtime() / 1000000;
	ASSERT(k.cancelled_ms != 0);
	ASSERT_INT_EQ(a.status, -ECANCELED);
	bd_app_request_free(k.req);
	uv_close((uv_handle_t *)&k.timer, NULL);
	/* The install stops too: the loop ends once its unpack has. */
	bd_app_packages_close(m);
	uv_run(&loop, UV_RUN_DEFAULT);
	idle_ms = uv_hrtime() / 1000000;
	ASSERT_INT_EQ(uv_loop_close(&loop), 0);
	fprintf(stderr, "full install %llu ms; cancelled: answered in %llu "
	    "ms, unpack stopped in %llu ms\n", (unsigned long long)full_ms,
	    (unsigned long long)(answered_ms - k.cancelled_ms),
	    (unsigned long long)(idle_ms - k.cancelled_ms));
	ASSERT(idle_ms - k.cancelled_ms < full_ms / 2 + 50);
	/* Nothing of it is usable, nor left over. */
	assert_nothing_of(k.apps, "slow");
	free(k.apps);
	answer_clear(&a);
}

/* Writes a dead process's .unsynced marker for dir under apps. */
static void
write_marker(const char *apps, pid_t dead, int n, const char *boot,
    const char *dir)
{
	const char *slash = strrchr(dir, '/');

	sh("printf '%%s\\n%%s\\n' '%s' '%s' > %s/.install-%ld-1234abcd-%d"
	    ".unsynced", boot, slash != NULL ? slash + 1 : dir, apps,
	    (long)dead, n);
}

TEST(unsynced_markers)
{
	uv_loop_t loop;
	struct bd_app_packages *m;
	struct bd_app_packages_stats st;
	struct bd_app_request *req;
	struct answer a, b;
	char *apps = bd_path_join(root, "applications"), *extra, *sum;
	char *torn_dir, *whole_dir;
	char boot[64];
	struct stat sb;
	pid_t dead;

	if ((dead = fork()) == 0)
		_exit(0);
	waitpid(dead, NULL, 0);
	make_targz("torn", "1", "torn");
	make_targz("whole", "1", "whole");
	uv_loop_init(&loop);
	m = manager(&loop, 0);
	/* Installed: the marker is gone once the sync has run. */
	bd_app_request_free(get(&loop, m, "torn", "1", &a));
	bd_app_request_free(get(&loop, m, "whole", "1", &b));
	bd_app_packages_close(m);
	uv_run(&loop, UV_RUN_DEFAULT);
	sh("! ls -a %s | grep -q 'unsynced$'", apps);
	torn_dir = xstrdup(a.dir);
	whole_dir = xstrdup(b.dir);
	answer_clear(&a);
	answer_clear(&b);

	/* As if a batchd had died before its syncs: one package of an
	 * earlier boot (a power cut may have torn it), one of this boot. */
	bd_clock_boot_id(boot, sizeof(boot));
	write_marker(apps, dead, 1, "an-earlier-boot", torn_dir);
	write_marker(apps, dead, 2, boot, whole_dir);
	extra = bd_path_join(torn_dir, "torn-by-the-power-cut");
	sh("touch %s", extra);
	sum = bd_path_join(whole_dir, "marker");
	m = manager(&loop, 0);
	/* Asked before the scan has run: it waits for it. */
	req = get(&loop, m, "torn", "1", &a);
	ASSERT_INT_EQ(a.status, 0);
	ASSERT(stat(extra, &sb) < 0 && errno == ENOENT);
	bd_app_request_free(req);
	bd_app_packages_stats(m, &st);
	ASSERT_INT_EQ(st.installs, 1);
	req = get(&loop, m, "whole", "1", &b);
	ASSERT_INT_EQ(b.status, 0);
	ASSERT_INT_EQ(stat(sum, &sb), 0);
	bd_app_request_free(req);
	bd_app_packages_stats(m, &st);
	ASSERT_INT_EQ(st.installs, 1);
	ASSERT_INT_EQ(st.reuses, 1);
	bd_app_packages_close(m);
	uv_run(&loop, UV_RUN_DEFAULT);
	ASSERT_INT_EQ(uv_loop_close(&loop), 0);
	sh("! ls -a %s | grep -q 'unsynced$'", apps);
	free(extra);
	free(sum);
	free(torn_dir);
	free(whole_dir);
	free(apps);
	answer_clear(&a);
	answer_clear(&b);
}

int
main(void)
{
	if (mkdtemp(tmp) == NULL)
		UNIT_FAIL("mkdtemp: %s", strerror(errno));
	store_dir = bd_path_join(tmp, "store");
	root = bd_path_join(tmp, "root");
	ASSERT_INT_EQ(bd_mkdir_p(store_dir, 0755), 0);
	ASSERT_INT_EQ(bd_mkdir_p(root, 0755), 0);
	RUN(pick);
	RUN(dir_name);
	RUN(environment);
	RUN(install_once_and_again_on_change);
	RUN(default_version_and_missing);
	RUN(hostile_package_names_entry);
	RUN(leftovers_and_lru);
	RUN(held_elsewhere_is_kept);
	RUN(cancel_stops_the_unpack);
	RUN(unsynced_markers);
	bd_rm_rf(tmp);
	free(store_dir);
	free(root);
	return 0;
}
