/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "cmd_supervise.h"
#include "fsutil.h"
#include "process.h"
#include "unit.h"
#include "xmalloc.h"

static uv_loop_t loop;
static char *dir;
static int got_code, got_signal, exits;

static void
on_exit_cb(struct bd_process *p, int code, int sig, void *arg)
{
	got_code = code;
	got_signal = sig;
	exits++;
}

/* Runs the loop until n exits have been seen (the SIGCHLD watcher keeps
 * the loop alive, so UV_RUN_DEFAULT would not return). */
static void
run_until_exits(int n)
{
	while (exits < n)
		uv_run(&loop, UV_RUN_ONCE);
}

static struct bd_process *
spawn_sh(const char *script)
{
	char *copy = xstrdup(script);
	char *argv[] = { (char[]){"sh"}, (char[]){"-c"}, copy, NULL };
	char *envp[] = { (char[]){"PATH=/usr/bin:/bin"}, NULL };
	char *out = bd_path_join(dir, "out.txt"), *err = bd_path_join(dir, "err.txt");
	struct bd_process_options o = { .file = "/bin/sh", .argv = argv,
	    .envp = envp, .cwd = dir, .stdout_path = out, .stderr_path = err };
	struct bd_process *p = NULL;

	ASSERT_INT_EQ(bd_process_spawn(&o, on_exit_cb, NULL, &p), 0);
	free(copy);
	free(out);
	free(err);
	return p;
}

static bool
alive(pid_t pid)
{
	char path[64], buf[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *rp = strrchr(buf, ')');
	return rp != NULL && rp[2] != 'Z';
}

TEST(exit_code_and_files)
{
	struct bd_process *p = spawn_sh("pwd; echo err >&2; exit 3");

	exits = 0;
	run_until_exits(1);
	ASSERT_INT_EQ(exits, 1);
	ASSERT_INT_EQ(got_code, 3);
	ASSERT_INT_EQ(got_signal, 0);
	bd_process_free(p);
	char *path = bd_path_join(dir, "out.txt"), *data;
	size_t len;
	ASSERT_INT_EQ(bd_read_file(path, 4096, &data, &len), 0);
	ASSERT(strncmp(data, dir, strlen(dir)) == 0);
	free(data);
	free(path);
}

TEST(signal_death)
{
	struct bd_process *p = spawn_sh("kill -9 $$");

	exits = 0;
	run_until_exits(1);
	ASSERT_INT_EQ(exits, 1);
	ASSERT_INT_EQ(got_signal, 9);
	bd_process_free(p);
}

TEST(kill_tree_reaches_escaped_grandchild)
{
	char *pidfile = bd_path_join(dir, "gc.pid");
	char *script = xasprintf("setsid sh -c 'echo $$ > %s; exec sleep 1000' & "
	    "while [ ! -s %s ]; do sleep 0.01; done; exec sleep 1000",
	    pidfile, pidfile);
	struct bd_process *p = spawn_sh(script);
	char *data;
	size_t len;

	/* Wait for the grandchild to record itself (it is a real event). */
	while (bd_read_file(pidfile, 64, &data, &len) != 0 || len == 0) {
		free(data);
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(10000);
	}
	pid_t gc = (pid_t)atoi(data);
	free(data);
	ASSERT(alive(gc));
	exits = 0;
	ASSERT_INT_EQ(bd_process_kill_tree(p, SIGKILL), 1);
	run_until_exits(1);
	ASSERT_INT_EQ(exits, 1);
	/* The orphaned grandchild was reaped by our subreaper handler. */
	for (int i = 0; i < 200 && alive(gc); i++) {
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(10000);
	}
	ASSERT(!alive(gc));
	bd_process_free(p);
	free(script);
	free(pidfile);
}

TEST(spawn_errors)
{
	char *argv[] = { (char[]){"nope"}, NULL };
	char *envp[] = { NULL };
	struct bd_process_options o = { .file = "/nonexistent/prog",
	    .argv = argv, .envp = envp, .cwd = dir,
	    .stdout_path = "/dev/null", .stderr_path = "/dev/null" };
	struct bd_process *p = NULL;

	ASSERT_INT_EQ(bd_process_spawn(&o, on_exit_cb, NULL, &p), -ENOENT);
	o.file = "/etc/hostname"; /* not executable */
	ASSERT(bd_process_spawn(&o, on_exit_cb, NULL, &p) < 0);
}

TEST(find_program)
{
	char *f = bd_process_find_program("sh", dir, "/nonexistent:/bin:/usr/bin");

	ASSERT_STR_EQ(f, "/bin/sh");
	free(f);
	ASSERT_NULL(bd_process_find_program("no-such-prog-xyz", dir, "/bin"));
	ASSERT_INT_EQ(errno, ENOENT);
	f = bd_process_find_program("/bin/sh", dir, "");
	ASSERT_STR_EQ(f, "/bin/sh");
	free(f);
	ASSERT_NULL(bd_process_find_program("./missing", dir, "/bin"));
	ASSERT_NULL(bd_process_find_program("", dir, "/bin"));
}

int
main(int argc, char **argv)
{
	/* Task supervisors are this program re-executed (process.c). */
	if (argc > 1 && strcmp(argv[1], "supervise") == 0)
		return bd_cmd_supervise(argc - 1, argv + 1);
	dir = xstrdup("/tmp/bd-process-XXXXXX");
	ASSERT_NOT_NULL(mkdtemp(dir));
	uv_loop_init(&loop);
	ASSERT_INT_EQ(bd_process_init(&loop), 0);
	RUN(exit_code_and_files);
	RUN(signal_death);
	RUN(kill_tree_reaches_escaped_grandchild);
	RUN(spawn_errors);
	RUN(find_program);
	bd_process_shutdown();
	uv_run(&loop, UV_RUN_DEFAULT);
	ASSERT_INT_EQ(uv_loop_close(&loop), 0);
	bd_rm_rf(dir);
	free(dir);
	return 0;
}
