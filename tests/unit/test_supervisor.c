/* SPDX-License-Identifier: MIT */
/*
 * The task supervisor with real processes: exit codes and signals, the
 * output cap against a task that writes 10 GiB, a double-forked setsid
 * sleep that must not survive its task, a task that ignores SIGTERM, the
 * state file, the state written into an assignment record (adopt.h)
 * without touching the rest of it, an agent that dies and another that
 * adopts its task by pidfd, and the PID reuse check.  This program is its own supervisor
 * (argv[1] "supervise") and its own short-lived "old agent" (argv[1]
 * "old-agent").
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "adopt.h"
#include "clock.h"
#include "cmd_supervise.h"
#include "error.h"
#include "fsutil.h"
#include "process.h"
#include "supervisor.h"
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

static void
run_until_exits(int n)
{
	while (exits < n)
		uv_run(&loop, UV_RUN_ONCE);
}

static char *
path_in(const char *name)
{
	return bd_path_join(dir, name);
}

/* Spawns /bin/sh -c script under a supervisor with the given options. */
static struct bd_process *
spawn_opts(const char *script, struct bd_process_options *o)
{
	char *copy = xstrdup(script);
	char *argv[] = { (char[]){"sh"}, (char[]){"-c"}, copy, NULL };
	char *envp[] = { (char[]){"PATH=/usr/bin:/bin"}, NULL };
	char *out = path_in("stdout.txt"), *err = path_in("stderr.txt");
	struct bd_process *p = NULL;

	o->file = "/bin/sh";
	o->argv = argv;
	o->envp = envp;
	o->cwd = dir;
	o->stdout_path = out;
	o->stderr_path = err;
	exits = 0;
	ASSERT_INT_EQ(bd_process_spawn(o, on_exit_cb, NULL, &p), 0);
	free(copy);
	free(out);
	free(err);
	return p;
}

static struct bd_process *
spawn_sh(const char *script)
{
	struct bd_process_options o = { 0 };

	return spawn_opts(script, &o);
}

/* Whether pid names a live (not zombie) process. */
static bool
alive(pid_t pid)
{
	char path[64], buf[512];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *rp = strrchr(buf, ')');
	return rp != NULL && rp[2] != 'Z' && rp[2] != 'X';
}

/* Waits (running the loop) until path exists and is not empty. */
static char *
await_file(const char *path)
{
	char *data = NULL;
	size_t len;

	for (;;) {
		if (bd_read_file(path, 4096, &data, &len) == 0 && len > 0)
			return data;
		free(data);
		data = NULL;
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(10000);
	}
}

static int64_t
file_size(const char *name)
{
	char *path = path_in(name);
	struct stat st;

	ASSERT_INT_EQ(stat(path, &st), 0);
	free(path);
	return (int64_t)st.st_size;
}

TEST(exit_codes_and_signals)
{
	struct bd_process *p = spawn_sh("echo out; echo err >&2; exit 7");
	char *path, *data;
	size_t len;

	run_until_exits(1);
	ASSERT_INT_EQ(got_code, 7);
	ASSERT_INT_EQ(got_signal, 0);
	ASSERT_INT_EQ(bd_process_record(p)->state, BD_SUPERVISOR_EXITED);
	bd_process_free(p);
	path = path_in("stdout.txt");
	ASSERT_INT_EQ(bd_read_file(path, 100, &data, &len), 0);
	ASSERT_STR_EQ(data, "out\n");
	free(data);
	free(path);
	path = path_in("stderr.txt");
	ASSERT_INT_EQ(bd_read_file(path, 100, &data, &len), 0);
	ASSERT_STR_EQ(data, "err\n");
	free(data);
	free(path);

	p = spawn_sh("kill -USR1 $$");
	run_until_exits(1);
	ASSERT_INT_EQ(got_signal, SIGUSR1);
	bd_process_free(p);

	/* A signal through the agent's request reaches the command. */
	p = spawn_sh("exec sleep 1000");
	ASSERT_INT_EQ(bd_process_kill_tree(p, SIGTERM), 1);
	run_until_exits(1);
	ASSERT_INT_EQ(got_signal, SIGTERM);
	ASSERT_INT_EQ(bd_process_kill_tree(p, SIGTERM), 0);
	bd_process_free(p);
}

TEST(no_leaked_descriptors)
{
	/* A descriptor batchd forgot to mark close-on-exec. */
	int fd = dup2(2, 57);
	struct bd_process *p;

	ASSERT_INT_EQ(fd, 57);
	p = spawn_sh("[ -e /proc/self/fd/57 ] && exit 1; exit 0");
	run_until_exits(1);
	ASSERT_INT_EQ(got_code, 0);
	bd_process_free(p);
	close(fd);
}

TEST(output_cap_10_gib)
{
	struct bd_process_options o = { .output_cap = 1 << 20 };
	int64_t t0 = bd_clock_mono_ms();
	struct bd_process *p = spawn_opts("head -c 10G /dev/zero; "
	    "head -c 5000 /dev/zero >&2; exit 3", &o);
	char *path, *data;
	size_t len;

	run_until_exits(1);
	fprintf(stderr, "   10 GiB through the cap in %lld ms\n",
	    (long long)(bd_clock_mono_ms() - t0));
	ASSERT_INT_EQ(got_code, 3);
	ASSERT(bd_process_record(p)->stdout_capped);
	ASSERT(!bd_process_record(p)->stderr_capped);
	bd_process_free(p);
	/* The cap, then one line of note. */
	path = path_in("stdout.txt");
	ASSERT_INT_EQ(bd_read_file(path, 2 << 20, &data, &len), 0);
	ASSERT(len > (size_t)(1 << 20) && len < (size_t)(1 << 20) + 200);
	ASSERT_INT_EQ(data[(1 << 20) - 1], 0);
	ASSERT_STR_CONTAINS(data + (1 << 20), "stdout.txt reached its limit "
	    "of 1048576 bytes");
	ASSERT_INT_EQ(data[len - 1], '\n');
	free(data);
	free(path);
	ASSERT_INT_EQ(file_size("stderr.txt"), 5000);

	/* A separate stderr cap. */
	o.output_cap = 0;
	o.stderr_cap = 100;
	p = spawn_opts("head -c 1000 /dev/zero; head -c 1000 /dev/zero >&2", &o);
	run_until_exits(1);
	ASSERT_INT_EQ(file_size("stdout.txt"), 1000);
	ASSERT(file_size("stderr.txt") > 100 && file_size("stderr.txt") < 300);
	bd_process_free(p);
}

TEST(double_fork_leaves_nothing)
{
	char *pidfile = path_in("gc.pid");
	char *script = xasprintf("setsid sh -c 'sleep 1000 & echo $! > %s' & "
	    "while [ ! -s %s ]; do sleep 0.01; done; exit 0", pidfile,
	    pidfile);
	struct bd_process *p = spawn_sh(script);
	char *data;

	run_until_exits(1);
	ASSERT_INT_EQ(got_code, 0);
	data = await_file(pidfile);
	pid_t gc = (pid_t)atoi(data);
	ASSERT(gc > 0);
	/* The supervisor killed it before it reported the exit; its zombie
	 * may wait for a reaper a moment. */
	ASSERT(!alive(gc));
	free(data);
	bd_process_free(p);
	free(script);
	free(pidfile);
}

TEST(sigterm_ignored_then_killed)
{
	char *state = path_in("term.state");
	struct bd_process_options o = { .grace_ms = 300, .state_path = state };
	char *ready = path_in("ready");
	char *script = xasprintf("trap '' TERM; echo x > %s; exec sleep 1000",
	    ready);
	struct bd_supervisor_record rec;
	struct bd_process *p = spawn_opts(script, &o);

	/* The running state names the supervisor; SIGTERM it as systemd or
	 * an operator would. */
	ASSERT_INT_EQ(bd_supervisor_read_state(state, &rec, NULL), 0);
	ASSERT_INT_EQ(rec.state, BD_SUPERVISOR_RUNNING);
	ASSERT(bd_supervisor_alive(&rec));
	free(await_file(ready));
	int64_t t0 = bd_clock_mono_ms();
	ASSERT_INT_EQ(kill(rec.pid, SIGTERM), 0);
	run_until_exits(1);
	ASSERT_INT_EQ(got_signal, SIGKILL);
	ASSERT(bd_clock_mono_ms() - t0 >= 300);
	bd_process_free(p);

	/* The outcome is in the state file, durably. */
	ASSERT_INT_EQ(bd_supervisor_read_state(state, &rec, NULL), 0);
	ASSERT_INT_EQ(rec.state, BD_SUPERVISOR_EXITED);
	ASSERT_INT_EQ(rec.term_signal, SIGKILL);
	ASSERT(rec.end_ms >= rec.start_ms && rec.start_ms > 0);
	ASSERT(!bd_supervisor_alive(&rec));
	free(script);
	free(ready);
	free(state);
}

/* The state goes into the record's first slot; the record stays whole. */
TEST(state_in_assignment_record)
{
	struct bd_adopt_record r = { .message_id = (char[]){"m/1"},
	    .pop_receipt = (char[]){"r1"}, .message_text = (char[]){"{}"},
	    .job_id = (char[]){"j"}, .task_id = (char[]){"t"},
	    .etag = (char[]){"e"}, .version = BD_ADOPT_VERSION };
	struct bd_adopt_record **v;
	struct bd_supervisor_record rec;
	char *tasks = NULL, *state;
	size_t n;

	ASSERT_INT_EQ(bd_adopt_dir(dir, &tasks), 0);
	ASSERT_INT_EQ(bd_adopt_save(tasks, &r), 0);
	state = bd_adopt_state_path(tasks, r.message_id, r.version);
	ASSERT_INT_EQ(bd_supervisor_read_state(state, &rec, NULL), 0);
	ASSERT_INT_EQ(rec.state, BD_SUPERVISOR_NONE);
	struct bd_process_options o = { .state_path = state };
	struct bd_process *p = spawn_opts("exit 7", &o);
	run_until_exits(1);
	ASSERT_INT_EQ(got_code, 7);
	bd_process_free(p);
	ASSERT_INT_EQ(bd_supervisor_read_state(state, &rec, NULL), 0);
	ASSERT_INT_EQ(rec.state, BD_SUPERVISOR_EXITED);
	ASSERT_INT_EQ(rec.exit_code, 7);
	/* A renewal beside it leaves the outcome alone. */
	r.pop_receipt = (char[]){"r2"};
	ASSERT_INT_EQ(bd_adopt_save_lease(tasks, &r), 0);
	ASSERT_INT_EQ(bd_supervisor_read_state(state, &rec, NULL), 0);
	ASSERT_INT_EQ(rec.exit_code, 7);
	ASSERT_INT_EQ(bd_adopt_load(tasks, &v, &n), 0);
	ASSERT_INT_EQ(n, 1);
	ASSERT_STR_EQ(v[0]->message_id, "m/1");
	ASSERT_STR_EQ(v[0]->pop_receipt, "r2");
	bd_adopt_record_free(v[0]);
	free(v);
	bd_adopt_remove(tasks, r.message_id, r.version);
	free(state);
	free(tasks);
}

TEST(identity)
{
	static const gid_t groups[] = { 65534 };
	struct bd_process_identity id = { .uid = 65534, .gid = 65534,
	    .groups = groups, .ngroups = 1 };
	struct bd_process_options o = { .identity = &id };
	char *path, *data;
	size_t len;

	if (geteuid() != 0) {
		fprintf(stderr, "   skipped: not root\n");
		return;
	}
	struct bd_process *p = spawn_opts("id -u; id -g; id -G", &o);
	run_until_exits(1);
	ASSERT_INT_EQ(got_code, 0);
	bd_process_free(p);
	path = path_in("stdout.txt");
	ASSERT_INT_EQ(bd_read_file(path, 100, &data, &len), 0);
	ASSERT_STR_EQ(data, "65534\n65534\n65534\n");
	free(data);
	free(path);
}

TEST(adopt_after_agent_restart)
{
	char *state = path_in("adopt.state"), *go = path_in("go");
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	struct bd_process *p = NULL;
	char *cmd;

	ASSERT(n > 0);
	self[n] = '\0';
	cmd = xasprintf("%s old-agent %s %s %s", self, dir, state, go);

	/* An agent starts the task, then dies (a separate process). */
	ASSERT_INT_EQ(system(cmd), 0);
	ASSERT_INT_EQ(bd_process_adopt(state, on_exit_cb, NULL, &p), 0);
	exits = 0;
	/* Still running: its exit comes by pidfd once it is told to end. */
	for (int i = 0; i < 5; i++)
		uv_run(&loop, UV_RUN_NOWAIT);
	ASSERT_INT_EQ(exits, 0);
	ASSERT_INT_EQ(bd_write_file_atomic(go, "go", 2, 0644), 0);
	run_until_exits(1);
	ASSERT_INT_EQ(got_code, 42);
	ASSERT_INT_EQ(bd_process_record(p)->exit_code, 42);
	bd_process_free(p);

	/* Adopting a task that ended while no agent watched: at once. */
	ASSERT_INT_EQ(bd_process_adopt(state, on_exit_cb, NULL, &p), 0);
	exits = 0;
	run_until_exits(1);
	ASSERT_INT_EQ(got_code, 42);
	bd_process_free(p);
	free(cmd);
	free(go);
	free(state);
}

/* Both records read back as written, values up to 2^52 whole. */
TEST(record_round_trip)
{
	struct bd_supervisor_record in = { .state = BD_SUPERVISOR_EXITED,
	    .pid = 4194304, .start_time = 399745612345ULL,
	    .task_pid = 77, .start_ms = 1795000000123, .end_ms = 1795000009999,
	    .exit_code = 255, .user_cpu_us = 4503599627370495,
	    .system_cpu_us = 1, .max_rss_kb = 123456789, .stderr_capped = true };
	struct bd_supervisor_record out;
	char *text, *cause = NULL;

	for (int running = 0; running < 2; running++) {
		if (running)
			in.state = BD_SUPERVISOR_RUNNING;
		text = bd_supervisor_record_format(&in);
		ASSERT(text[strlen(text) - 1] == '\n');
		ASSERT_INT_EQ(bd_supervisor_record_parse(text, strlen(text),
		    &out, &cause), 0);
		free(text);
		ASSERT_INT_EQ(out.state, in.state);
		ASSERT_INT_EQ(out.pid, in.pid);
		ASSERT(out.start_time == in.start_time);
		ASSERT_INT_EQ(out.task_pid, in.task_pid);
		ASSERT(out.start_ms == in.start_ms);
		if (running)
			continue;
		ASSERT(out.end_ms == in.end_ms);
		ASSERT_INT_EQ(out.exit_code, 255);
		ASSERT(out.user_cpu_us == in.user_cpu_us);
		ASSERT(out.system_cpu_us == 1);
		ASSERT(out.max_rss_kb == in.max_rss_kb);
		ASSERT(!out.stdout_capped && out.stderr_capped);
	}
}

TEST(pid_reuse_and_missing_state)
{
	char *state = path_in("fake.state"), *text;
	struct bd_supervisor_record rec = { .state = BD_SUPERVISOR_RUNNING,
	    .task_pid = 1, .start_ms = 1 };
	struct bd_process *p = NULL;

	ASSERT_INT_EQ(bd_process_adopt(state, on_exit_cb, NULL, &p), -ENOENT);
	/* A live pid (ours) with another start time is not the supervisor. */
	rec.pid = getpid();
	ASSERT_INT_EQ(bd_supervisor_start_time(getpid(), &rec.start_time), 0);
	rec.start_time += 1;
	text = bd_supervisor_record_format(&rec);
	ASSERT_INT_EQ(bd_write_file_atomic(state, text, strlen(text), 0600), 0);
	free(text);
	ASSERT(!bd_supervisor_alive(&rec));
	ASSERT_INT_EQ(bd_process_adopt(state, on_exit_cb, NULL, &p), -ESRCH);
	/* The same with the right start time is. */
	rec.start_time -= 1;
	ASSERT(bd_supervisor_alive(&rec));
	/* A supervisor killed and not reaped yet (a zombie) is gone. */
	pid_t z = fork();
	if (z == 0)
		_exit(0);
	ASSERT(z > 0);
	rec.pid = z;
	ASSERT_INT_EQ(bd_supervisor_start_time(z, &rec.start_time), 0);
	for (int i = 0; i < 2000 && bd_supervisor_alive(&rec); i++)
		usleep(1000);	/* until it has exited, unreaped */
	ASSERT(!bd_supervisor_alive(&rec));
	ASSERT_INT_EQ(bd_supervisor_start_time(z, &rec.start_time), 0);
	ASSERT_INT_EQ(waitpid(z, NULL, 0), z);
	/* A damaged file is an error, not a guess. */
	ASSERT_INT_EQ(bd_write_file_atomic(state, "{\"version\":1}", 13, 0600),
	    0);
	ASSERT(bd_process_adopt(state, on_exit_cb, NULL, &p) < 0);
	free(state);
}

/* The "old agent": starts a task that waits for GO, then dies at once. */
static int
old_agent(char **argv)
{
	uv_loop_t l;
	struct bd_process *p;
	char *script = xasprintf("while [ ! -e %s ]; do sleep 0.02; done; "
	    "exit 42", argv[4]);
	char *sh_argv[] = { (char[]){"sh"}, (char[]){"-c"}, script, NULL };
	char *envp[] = { (char[]){"PATH=/usr/bin:/bin"}, NULL };
	char *out = bd_path_join(argv[2], "old.out");
	struct bd_process_options o = { .file = "/bin/sh", .argv = sh_argv,
	    .envp = envp, .cwd = argv[2], .stdout_path = out,
	    .stderr_path = out, .state_path = argv[3] };

	uv_loop_init(&l);
	if (bd_process_init(&l) < 0 ||
	    bd_process_spawn(&o, on_exit_cb, NULL, &p) < 0)
		return 1;
	_exit(0); /* as if killed: nothing is cleaned up */
}

int
main(int argc, char **argv)
{
	/* Task supervisors are this program re-executed (process.c). */
	if (argc > 1 && strcmp(argv[1], "supervise") == 0)
		return bd_cmd_supervise(argc - 1, argv + 1);
	if (argc == 5 && strcmp(argv[1], "old-agent") == 0)
		return old_agent(argv);
	dir = xstrdup("/tmp/bd-supervisor-XXXXXX");
	ASSERT_NOT_NULL(mkdtemp(dir));
	uv_loop_init(&loop);
	ASSERT_INT_EQ(bd_process_init(&loop), 0);
	RUN(exit_codes_and_signals);
	RUN(no_leaked_descriptors);
	RUN(output_cap_10_gib);
	RUN(double_fork_leaves_nothing);
	RUN(sigterm_ignored_then_killed);
	RUN(state_in_assignment_record);
	RUN(identity);
	RUN(adopt_after_agent_restart);
	RUN(record_round_trip);
	RUN(pid_reuse_and_missing_state);
	bd_process_shutdown();
	uv_run(&loop, UV_RUN_DEFAULT);
	ASSERT_INT_EQ(uv_loop_close(&loop), 0);
	bd_rm_rf(dir);
	free(dir);
	return 0;
}
