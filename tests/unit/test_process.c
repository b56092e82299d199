/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd_supervise.h"
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

/* Runs the loop until n exits have been seen (the SIGCHLD watcher keeps
 * the loop alive, so UV_RUN_DEFAULT would not return). */
static void
run_until_exits(int n)
{
	while (exits < n)
		uv_run(&loop, UV_RUN_ONCE);
}

/* Spawns sh -c script; started: see bd_process_options. */
static struct bd_process *
spawn_sh_with(const char *script, bd_process_start_cb started)
{
	char *copy = xstrdup(script);
	char *argv[] = { (char[]){"sh"}, (char[]){"-c"}, copy, NULL };
	char *envp[] = { (char[]){"PATH=/usr/bin:/bin"}, NULL };
	char *out = bd_path_join(dir, "out.txt"), *err = bd_path_join(dir, "err.txt");
	struct bd_process_options o = { .file = "/bin/sh", .argv = argv,
	    .envp = envp, .cwd = dir, .stdout_path = out, .stderr_path = err,
	    .started = started };
	struct bd_process *p = NULL;

	ASSERT_INT_EQ(bd_process_spawn(&o, on_exit_cb, NULL, &p), 0);
	free(copy);
	free(out);
	free(err);
	return p;
}

static struct bd_process *
spawn_sh(const char *script)
{
	return spawn_sh_with(script, NULL);
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

/* The task starts with no signal ignored or blocked, whatever batchd's. */
TEST(default_signals)
{
	struct bd_process *p = spawn_sh("grep -E '^Sig(Ign|Blk)' /proc/self/status");
	char *path = bd_path_join(dir, "out.txt"), *data;
	size_t len;

	exits = 0;
	run_until_exits(1);
	ASSERT_INT_EQ(got_code, 0);
	bd_process_free(p);
	ASSERT_INT_EQ(bd_read_file(path, 4096, &data, &len), 0);
	ASSERT_STR_EQ(data, "SigBlk:\t0000000000000000\n"
	    "SigIgn:\t0000000000000000\n");
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
	struct bd_process *p;
	char *data;
	size_t len;

	(void)unlink(pidfile); /* from the other pass */
	p = spawn_sh(script);

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

/* The pid of parent's live child named comm other than except, or 0. */
static pid_t
child_named(pid_t parent, const char *comm, pid_t except)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	pid_t found = 0;

	while (found == 0 && (de = readdir(d)) != NULL) {
		char path[300], buf[512], name[64], *rp;
		int ppid;
		FILE *f;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		if (atoi(de->d_name) <= 0 || (f = fopen(path, "r")) == NULL)
			continue;
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = '\0';
		/* Not a zombie: a spawner that ended keeps its name. */
		if ((rp = strrchr(buf, ')')) == NULL || rp[2] == 'Z' ||
		    sscanf(rp + 2, "%*c %d", &ppid) != 1 || ppid != parent)
			continue;
		snprintf(name, sizeof(name), "(%s)", comm);
		if (strstr(buf, name) != NULL && atoi(de->d_name) != except)
			found = (pid_t)atoi(de->d_name);
	}
	closedir(d);
	return found;
}

/* The spawner: a child that names itself once it runs. */
static pid_t
spawner_pid(void)
{
	pid_t pid = 0;

	for (int i = 0; i < 5000 && (pid = child_named(getpid(),
	    "batchd-spawner", 0)) == 0; i++)
		usleep(1000);
	return pid;
}

/* A spare of the spawner other than except (0: any): a child waiting
 * for the next request. */
static pid_t
spare_pid(pid_t spawner, pid_t except)
{
	pid_t pid = 0;

	for (int i = 0; i < 5000 && (pid = child_named(spawner,
	    "batchd-spare", except)) == 0; i++)
		usleep(1000);
	return pid;
}

/* Whether process pid's name (comm) is name. */
static bool
named(pid_t pid, const char *name)
{
	char path[64], *data;
	size_t len;
	bool same;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	if (bd_read_file(path, 64, &data, &len) != 0)
		return false;
	same = len == strlen(name) + 1 && strncmp(data, name, len - 1) == 0;
	free(data);
	return same;
}

/* Waits until supervisor pid waits for its next task (the spawner's
 * worker names itself so once it has said it is free). */
static void
wait_idle(pid_t pid)
{
	for (int i = 0; i < 5000 && !named(pid, "batchd-spare"); i++)
		usleep(1000);
	ASSERT(named(pid, "batchd-spare"));
}

/* The supervisor's command line, as ps shows it. */
static char *
cmdline_of(pid_t pid)
{
	char path[64], *data;
	size_t len;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	if (bd_read_file(path, 65536, &data, &len) != 0)
		return NULL;
	for (size_t i = 0; i + 1 < len; i++)
		if (data[i] == '\0')
			data[i] = ' ';
	return data;
}

/*
 * Supervisors forked by the spawner show their own command line, are not
 * our children, and their ends still arrive; when the spawner dies, the
 * next task starts by exec; when batchd closes its end, it exits.
 */
TEST(spawner_forks_then_exec_when_it_dies)
{
	pid_t spawner = spawner_pid();
	struct bd_process *p;
	int status;

	ASSERT(spawner > 0);
	p = spawn_sh("read x < /dev/null; exec sleep 1000");
	/* The supervisor is the spawner's child, not ours. */
	ASSERT_INT_EQ(child_named(getpid(), "batchd-supervis", 0), 0);
	for (int i = 0; i < 500 && bd_process_pid(p) == 0; i++)
		uv_run(&loop, UV_RUN_NOWAIT);
	exits = 0;
	ASSERT_INT_EQ(bd_process_kill_tree(p, SIGKILL), 1);
	run_until_exits(1);
	ASSERT_INT_EQ(got_signal, 9);
	bd_process_free(p);

	/* A real fault: the spawner is killed. */
	ASSERT_INT_EQ(kill(spawner, SIGKILL), 0);
	ASSERT_INT_EQ(waitpid(spawner, &status, 0), spawner);
	p = spawn_sh("exit 4");
	exits = 0;
	run_until_exits(1);
	ASSERT_INT_EQ(got_code, 4);
	bd_process_free(p);
}

TEST(supervisor_shows_its_command_line)
{
	struct bd_process *p = spawn_sh("exec sleep 1000");
	pid_t sup = 0;
	char *cmd = NULL;

	/* The sleep's parent is the supervisor. */
	for (int i = 0; i < 500 && bd_process_pid(p) == 0; i++)
		uv_run(&loop, UV_RUN_NOWAIT);
	ASSERT(bd_process_pid(p) > 0);
	char path[64], buf[512];
	FILE *f;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)bd_process_pid(p));
	ASSERT_NOT_NULL(f = fopen(path, "r"));
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	ASSERT_INT_EQ(sscanf(strrchr(buf, ')') + 2, "%*c %d", &sup), 1);
	ASSERT_NOT_NULL(cmd = cmdline_of(sup));
	ASSERT(strstr(cmd, " supervise --stdout ") != NULL);
	ASSERT(strstr(cmd, " -- /bin/sh sh -c exec sleep 1000") != NULL);
	free(cmd);
	/* Its environment is the task's, not batchd's. */
	char *env;
	size_t len;
	snprintf(path, sizeof(path), "/proc/%d/environ", (int)sup);
	ASSERT_INT_EQ(bd_read_file(path, 65536, &env, &len), 0);
	ASSERT_INT_EQ(len, strlen("PATH=/usr/bin:/bin") + 1);
	ASSERT_STR_EQ(env, "PATH=/usr/bin:/bin");
	free(env);
	exits = 0;
	ASSERT_INT_EQ(bd_process_kill_tree(p, SIGKILL), 1);
	run_until_exits(1);
	bd_process_free(p);
}

static int started_status = 1;

static void
on_started(struct bd_process *p, int status, void *arg)
{
	started_status = status;
}

/*
 * The outcome is delivered when the supervisor closes its report pipe,
 * without waiting for the supervisor's exit: here it stays (main() of
 * this test lingers after bd_cmd_supervise() returns) until it is killed.
 */
TEST(outcome_before_supervisor_exit)
{
	char *argv[] = { (char[]){"sh"}, (char[]){"-c"},
	    (char[]){"echo $PPID >sup.txt; exit 5"}, NULL };
	char *envp[] = { (char[]){"PATH=/usr/bin:/bin"},
	    (char[]){"TEST_SUPERVISOR_LINGERS=1"}, NULL };
	char *out = bd_path_join(dir, "out.txt"), *err = bd_path_join(dir,
	    "err.txt"), *supfile = bd_path_join(dir, "sup.txt"), *data;
	int held[2];
	ASSERT_INT_EQ(pipe2(held, O_CLOEXEC), 0);
	/* A held descriptor (as an application package's lock): let go of
	 * before the outcome comes. */
	struct bd_process_options o = { .file = "/bin/sh", .argv = argv,
	    .envp = envp, .cwd = dir, .stdout_path = out, .stderr_path = err,
	    .started = on_started, .hold_fds = &held[1], .n_hold_fds = 1 };
	struct bd_process *p = NULL;
	size_t len;
	int sup;

	exits = 0;
	started_status = 1;
	ASSERT_INT_EQ(bd_process_spawn(&o, on_exit_cb, NULL, &p), 0);
	close(held[1]);
	run_until_exits(1);
	ASSERT_INT_EQ(started_status, 0);
	ASSERT_INT_EQ(got_code, 5);
	struct pollfd hup = { held[0], POLLIN, 0 };
	ASSERT_INT_EQ(poll(&hup, 1, 0), 1);
	ASSERT((hup.revents & POLLHUP) != 0);
	close(held[0]);
	ASSERT_INT_EQ(bd_read_file(supfile, 64, &data, &len), 0);
	ASSERT_INT_EQ(sscanf(data, "%d", &sup), 1);
	ASSERT(alive(sup));
	ASSERT_INT_EQ(kill(sup, SIGKILL), 0);
	bd_process_free(p);
	free(data);
	free(supfile);
	free(out);
	free(err);
}

/*
 * The spawner dies while batchd waits for its reply (a real SIGKILL,
 * sent by a helper process once this one sleeps in poll or recvmsg): the
 * task runs once, by exec.
 */
TEST(spawner_dies_mid_request)
{
	pid_t spawner = spawner_pid(), me = getpid(), killer;
	char *runs = bd_path_join(dir, "runs.txt"), *script, *data;
	struct bd_process *p;
	size_t len;
	int status;

	ASSERT(spawner > 0);
	(void)unlink(runs);
	ASSERT_INT_EQ(kill(spawner, SIGSTOP), 0);
	if ((killer = fork()) == 0) {
		char path[64], buf[64];
		snprintf(path, sizeof(path), "/proc/%d/syscall", (int)me);
		for (;;) {	/* 7, 47: poll, recvmsg on x86-64 */
			FILE *f = fopen(path, "r");
			size_t n = f != NULL ? fread(buf, 1, 3, f) : 0;
			if (f != NULL)
				fclose(f);
			if (n == 3 && (memcmp(buf, "47 ", 3) == 0 ||
			    memcmp(buf, "7 ", 2) == 0))
				break;
			usleep(1000);
		}
		kill(spawner, SIGKILL);
		_exit(0);
	}
	script = xasprintf("echo ran >> %s", runs);
	p = spawn_sh(script);
	ASSERT_INT_EQ(waitpid(killer, &status, 0), killer);
	ASSERT_INT_EQ(waitpid(spawner, &status, 0), spawner);
	exits = 0;
	run_until_exits(1);
	ASSERT_INT_EQ(got_code, 0);
	bd_process_free(p);
	ASSERT_INT_EQ(bd_read_file(runs, 4096, &data, &len), 0);
	ASSERT_STR_EQ(data, "ran\n");
	free(data);
	free(script);
	free(runs);
}

/* The parent of the task that script (run by spawn_sh) starts. */
static pid_t
supervisor_of(const char *script)
{
	char *path = bd_path_join(dir, "ppid.txt"), *data, *full;
	struct bd_process *p;
	size_t len;
	pid_t pid;

	(void)unlink(path);
	full = xasprintf("echo $PPID > ppid.txt; %s", script);
	p = spawn_sh(full);
	exits = 0;
	run_until_exits(1);
	bd_process_free(p);
	ASSERT_INT_EQ(bd_read_file(path, 64, &data, &len), 0);
	pid = (pid_t)atoi(data);
	free(data);
	free(full);
	free(path);
	return pid;
}

/*
 * A task's supervisor is the spare forked before its request came (no
 * fork on the way).  Once done it waits as a spare too, beside the one
 * forked after it; one killed while it waits (a real SIGKILL) is
 * forgotten: the next task's supervisor is the other.
 */
TEST(spare_starts_a_task_without_a_fork)
{
	pid_t spawner = spawner_pid(), spare, next;

	ASSERT(spawner > 0);
	ASSERT((spare = spare_pid(spawner, 0)) > 0);
	ASSERT_INT_EQ(supervisor_of("exit 6"), spare);
	ASSERT_INT_EQ(got_code, 6);

	wait_idle(spare);
	ASSERT((next = spare_pid(spawner, spare)) > 0);
	ASSERT_INT_EQ(kill(spare, SIGKILL), 0);
	/* Dead (its end of the pair closed) before the request. */
	for (int i = 0; i < 5000 && alive(spare); i++)
		usleep(1000);
	ASSERT_INT_EQ(supervisor_of("exit 7"), next);
	ASSERT_INT_EQ(got_code, 7);
	ASSERT_INT_EQ(kill(spawner, 0), 0);

	/* A request of about 1 MiB (the environment: 8 variables of
	 * 120 KiB, each under the kernel's limit for one string) goes to
	 * the spare too. */
	size_t big = 120 * 1024;
	char *vars[8], *envp[10] = { (char[]){"PATH=/usr/bin:/bin"} };
	for (int i = 0; i < 8; i++) {
		vars[i] = xmalloc(big + 4);
		snprintf(vars[i], 4, "V%d=", i);
		memset(vars[i] + 3, 'v', big);
		vars[i][big + 3] = '\0';
		envp[i + 1] = vars[i];
	}
	envp[9] = NULL;
	char *argv[] = { (char[]){"sh"}, (char[]){"-c"},
	    (char[]){"echo $PPID ${#V7} > big-env.txt"}, NULL };
	char *out = bd_path_join(dir, "out.txt"), *err = bd_path_join(dir,
	    "err.txt"), *path = bd_path_join(dir, "big-env.txt"), *data;
	struct bd_process_options o = { .file = "/bin/sh", .argv = argv,
	    .envp = envp, .cwd = dir, .stdout_path = out, .stderr_path = err };
	struct bd_process *p = NULL;
	size_t len;
	int ppid = 0, vlen = 0;

	/* It has supervised: it goes ahead of the spare forked since. */
	wait_idle(next);
	exits = 0;
	ASSERT_INT_EQ(bd_process_spawn(&o, on_exit_cb, NULL, &p), 0);
	run_until_exits(1);
	bd_process_free(p);
	ASSERT_INT_EQ(bd_read_file(path, 64, &data, &len), 0);
	ASSERT_INT_EQ(sscanf(data, "%d %d", &ppid, &vlen), 2);
	ASSERT_INT_EQ(ppid, next);
	ASSERT_INT_EQ(vlen, (int)big);
	free(data);
	free(path);
	free(out);
	free(err);
	for (int i = 0; i < 8; i++)
		free(vars[i]);
}

/* Spawns script without waiting (opts->started), with on_started. */
static struct bd_process *
spawn_sh_started(const char *script)
{
	return spawn_sh_with(script, on_started);
}

/*
 * Without a spare the spawner forks for the request.  With the spawner
 * stopped, its spare is killed and a request sent: when it goes on, its
 * poll shows the spare's end and the request at once, and the spare is
 * dropped before the request is read (the next spare is forked only at
 * the top of its loop), so this request takes the fork.
 */
TEST(spawner_forks_without_a_spare)
{
	pid_t spawner = spawner_pid(), spare;
	struct bd_process *p;

	ASSERT(spawner > 0);
	ASSERT((spare = spare_pid(spawner, 0)) > 0);
	ASSERT_INT_EQ(kill(spawner, SIGSTOP), 0);
	ASSERT_INT_EQ(kill(spare, SIGKILL), 0);
	/* Dead (a zombie, its parent stopped) before the request. */
	for (int i = 0; i < 5000 && alive(spare); i++)
		usleep(1000);
	ASSERT(!alive(spare));
	started_status = 1;
	exits = 0;
	p = spawn_sh_started("exit 8");
	ASSERT_INT_EQ(kill(spawner, SIGCONT), 0);
	while (started_status == 1)
		uv_run(&loop, UV_RUN_ONCE);
	ASSERT_INT_EQ(started_status, 0);
	run_until_exits(1);
	ASSERT_INT_EQ(got_code, 8);
	bd_process_free(p);
	/* And spares again after it. */
	pid_t next = spare_pid(spawner, spare);
	ASSERT(next > 0 && next != spare);
	ASSERT_INT_EQ(kill(spawner, 0), 0);
}

/* How many descriptors this process has open. */
static int
open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n - 1;	/* the DIR's own */
}

/* Removes name in dir (from an earlier pass). */
static void
unlink_in_dir(const char *name)
{
	char *path = bd_path_join(dir, name);

	(void)unlink(path);
	free(path);
}

/* The contents of file in dir (malloc'd), or NULL. */
static char *
read_in_dir(const char *name)
{
	char *path = bd_path_join(dir, name), *data = NULL;
	size_t len;

	if (bd_read_file(path, 4096, &data, &len) != 0)
		data = NULL;
	free(path);
	return data;
}

/* Waits (running the loop) until the file name in dir exists. */
static char *
wait_for_file(const char *name)
{
	char *data = NULL;

	for (int i = 0; i < 5000 && (data = read_in_dir(name)) == NULL; i++) {
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	return data;
}

/* Writes the task's $PPID (its supervisor's pid) whole. */
#define WRITE_PPID "echo $PPID > ppid.tmp; mv ppid.tmp ppid.txt; "

/* The pid WRITE_PPID wrote, once it is there; removed after. */
static pid_t
read_ppid(void)
{
	char *data = wait_for_file("ppid.txt");
	pid_t pid;

	ASSERT_NOT_NULL(data);
	pid = (pid_t)atoi(data);
	unlink_in_dir("ppid.txt");
	free(data);
	return pid;
}

/* Runs script to its end; *rec gets its outcome, and it returns the
 * pid of its supervisor (the script's $PPID). */
static pid_t
run_recorded(const char *script, struct bd_supervisor_record *rec)
{
	char *full = xasprintf(WRITE_PPID "%s", script);
	struct bd_process *p = spawn_sh(full);

	exits = 0;
	run_until_exits(1);
	*rec = *bd_process_record(p);
	bd_process_free(p);
	free(full);
	return read_ppid();
}

/*
 * A supervisor killed outright (batchd ends a start so, before the
 * supervisor's "ok"; an operator may too) takes its command with it:
 * no task runs on that nobody watches.
 */
TEST(task_ends_with_its_supervisor)
{
	struct bd_process *p;
	pid_t sup, task;
	char *data;
	int pidfd;

	unlink_in_dir("task.pid");
	exits = 0;
	p = spawn_sh(WRITE_PPID "echo $$ > task.pid.tmp; mv task.pid.tmp "
	    "task.pid; exec sleep 1000");
	sup = read_ppid();
	ASSERT_NOT_NULL(data = wait_for_file("task.pid"));
	task = (pid_t)atoi(data);
	free(data);
	ASSERT((pidfd = pidfd_open(task, 0)) >= 0);
	ASSERT_INT_EQ(kill(sup, SIGKILL), 0);
	struct pollfd pfd = { pidfd, POLLIN, 0 };
	int n;
	do	/* SIGCHLD (libuv's handler) may interrupt it */
		n = poll(&pfd, 1, 10000);
	while (n == -1 && errno == EINTR);
	ASSERT_INT_EQ(n, 1);
	close(pidfd);
	run_until_exits(1);
	bd_process_free(p);
}

/*
 * A supervisor done with its task supervises the next one (no fork, no
 * exit per task), and nothing of the last task carries over: the next
 * one's CPU time and peak memory are its own, a kill request tagged for
 * another task is ignored, and signals sent while it waited (a SIGTERM,
 * a kill request for its last task) do not reach the next task.
 */
TEST(supervisor_reused)
{
	struct bd_supervisor_record a, b;
	struct bd_process *p;
	pid_t sup;
	union sigval v;

	/* About 40 MB held by sh, and CPU to fill it. */
	sup = run_recorded("x=$(head -c 40000000 /dev/zero | tr '\\0' x); "
	    "echo ${#x}", &a);
	ASSERT_INT_EQ(got_code, 0);
	ASSERT(a.max_rss_kb > 30000);
	ASSERT(a.user_cpu_us + a.system_cpu_us > 20000);
	wait_idle(sup);
	ASSERT_INT_EQ(run_recorded("exit 4", &b), sup);
	ASSERT_INT_EQ(got_code, 4);
	ASSERT(b.max_rss_kb < a.max_rss_kb / 2);
	ASSERT(b.user_cpu_us + b.system_cpu_us <
	    (a.user_cpu_us + a.system_cpu_us) / 2);

	/* A kill request tagged for another task is ignored; the one after
	 * it (tag 0: any task) ends the task.  Both SIGRTMIN: in order. */
	wait_idle(sup);
	p = spawn_sh(WRITE_PPID "exec sleep 1000");
	ASSERT_INT_EQ(read_ppid(), sup);
	exits = 0;
	v.sival_int = BD_SUPERVISOR_KILL_VALUE(SIGKILL, BD_SUPERVISOR_TAG_MAX);
	ASSERT_INT_EQ(sigqueue(sup, SIGRTMIN, v), 0);
	v.sival_int = BD_SUPERVISOR_KILL_VALUE(SIGUSR1, 0);
	ASSERT_INT_EQ(sigqueue(sup, SIGRTMIN, v), 0);
	run_until_exits(1);
	ASSERT_INT_EQ(got_signal, SIGUSR1);
	bd_process_free(p);

	/* Waiting again: what it is sent now is not for the next task. */
	wait_idle(sup);
	ASSERT_INT_EQ(kill(sup, SIGTERM), 0);
	v.sival_int = BD_SUPERVISOR_KILL_VALUE(SIGKILL, 0);
	ASSERT_INT_EQ(sigqueue(sup, SIGRTMIN, v), 0);
	ASSERT_INT_EQ(run_recorded("exit 5", &b), sup);
	ASSERT_INT_EQ(got_code, 5);
	ASSERT_INT_EQ(got_signal, 0);
}

/*
 * Started without waiting: the spawner's reply is read on the loop.  Here
 * the loop does not run until the task has ended, so the report pipe
 * holds the first line and the outcome before the reply is read; both
 * are taken once it is.
 */
TEST(started_reply_after_report)
{
	char *data;
	pid_t task;
	struct bd_process *p;

	unlink_in_dir("task.pid");
	started_status = 1;
	exits = 0;
	p = spawn_sh_started("echo $$ > task.pid.tmp; mv task.pid.tmp task.pid; "
	    "exit 7");
	ASSERT_INT_EQ(bd_process_pid(p), 0);
	/* Without the loop: the task runs and ends all the same. */
	while ((data = read_in_dir("task.pid")) == NULL)
		usleep(1000);
	task = (pid_t)atoi(data);
	free(data);
	while (alive(task))
		usleep(1000);
	ASSERT_INT_EQ(started_status, 1);
	run_until_exits(1);
	ASSERT_INT_EQ(started_status, 0);
	ASSERT_INT_EQ(got_code, 7);
	ASSERT_INT_EQ(got_signal, 0);
	ASSERT_INT_EQ(bd_process_pid(p), task);
	bd_process_free(p);
}

/* A signal asked for before the reply reaches the task once it runs
 * (SIGKILL: the supervisor at once). */
TEST(started_kill_before_reply)
{
	struct bd_process *p;

	started_status = 1;
	exits = 0;
	p = spawn_sh_started("exec sleep 1000");
	ASSERT_INT_EQ(bd_process_kill_tree(p, SIGTERM), 1);
	run_until_exits(1);
	ASSERT_INT_EQ(started_status, 0);
	ASSERT_INT_EQ(got_signal, SIGTERM);
	bd_process_free(p);

	/* SIGKILL ends the supervisor once its pid is known: before it
	 * starts the command (the start fails) or after (killed). */
	started_status = 1;
	exits = 0;
	p = spawn_sh_started("exec sleep 2");
	ASSERT_INT_EQ(bd_process_kill_tree(p, SIGKILL), 1);
	while (started_status > 0 || (started_status == 0 && exits == 0))
		uv_run(&loop, UV_RUN_ONCE);
	if (started_status == 0)
		ASSERT_INT_EQ(got_signal, SIGKILL);
	else
		ASSERT_INT_EQ(exits, 0);
	bd_process_free(p);
}

/*
 * Freed before the reply: the reply is still read and its pidfd closed;
 * the supervisor is left to run its task (as after any free), unless a
 * SIGKILL was asked for first.
 */
TEST(started_free_before_reply)
{
	struct bd_process *p;
	char *data;
	int fds;

	uv_run(&loop, UV_RUN_NOWAIT);	/* the last test's closes */
	fds = open_fds();
	unlink_in_dir("freed.txt");
	started_status = 1;
	exits = 0;
	p = spawn_sh_started("echo ran > freed.tmp; mv freed.tmp freed.txt");
	bd_process_free(p);
	ASSERT_NOT_NULL(data = wait_for_file("freed.txt"));
	ASSERT_STR_EQ(data, "ran\n");
	free(data);
	for (int i = 0; i < 5000 && open_fds() != fds; i++) {
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	ASSERT_INT_EQ(open_fds(), fds);

	/* Killed, then freed: the reply's SIGKILL ends the supervisor (a
	 * task it started already, orphaned, ends soon by itself). */
	p = spawn_sh_started("exec sleep 2");
	ASSERT_INT_EQ(bd_process_kill_tree(p, SIGKILL), 1);
	bd_process_free(p);
	for (int i = 0; i < 5000 && open_fds() != fds; i++) {
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	ASSERT_INT_EQ(open_fds(), fds);
	ASSERT_INT_EQ(started_status, 1);
	ASSERT_INT_EQ(exits, 0);
}

/* The parent of pid, or 0. */
static pid_t
parent_of(pid_t pid)
{
	char path[64], buf[512], *rp;
	int ppid = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	if ((rp = strrchr(buf, ')')) == NULL ||
	    sscanf(rp + 2, "%*c %d", &ppid) != 1)
		return 0;
	return (pid_t)ppid;
}

/*
 * A request too big for one message to the spawner (more descriptors than
 * it takes) is exec'd at once, without waiting, and its copies closed.
 */
TEST(started_too_big_for_the_spawner)
{
	char *argv[] = { (char[]){"sh"}, (char[]){"-c"},
	    (char[]){"echo $PPID > big.tmp; mv big.tmp big.txt; "
	    "exec sleep 1000"}, NULL };
	char *envp[] = { (char[]){"PATH=/usr/bin:/bin"}, NULL };
	char *out = bd_path_join(dir, "out.txt"), *err = bd_path_join(dir,
	    "err.txt"), *data;
	int hold[65], fds;
	struct bd_process_options o = { .file = "/bin/sh", .argv = argv,
	    .envp = envp, .cwd = dir, .stdout_path = out, .stderr_path = err,
	    .started = on_started, .hold_fds = hold, .n_hold_fds = 65 };
	struct bd_process *p = NULL;

	uv_run(&loop, UV_RUN_NOWAIT);	/* the last test's closes */
	fds = open_fds();
	unlink_in_dir("big.txt");
	for (int i = 0; i < 65; i++)
		ASSERT((hold[i] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0);
	started_status = 1;
	exits = 0;
	ASSERT_INT_EQ(bd_process_spawn(&o, on_exit_cb, NULL, &p), 0);
	for (int i = 0; i < 65; i++)
		close(hold[i]);
	ASSERT_NOT_NULL(data = wait_for_file("big.txt"));
	/* Exec'd: the supervisor is our child. */
	ASSERT_INT_EQ(parent_of((pid_t)atoi(data)), getpid());
	free(data);
	/* Started (its "ok" read): the kill below is the task's, not a
	 * start's (started_kill_before_reply has those). */
	while (started_status == 1)
		uv_run(&loop, UV_RUN_ONCE);
	ASSERT_INT_EQ(bd_process_kill_tree(p, SIGKILL), 1);
	run_until_exits(1);
	ASSERT_INT_EQ(started_status, 0);
	ASSERT_INT_EQ(got_signal, SIGKILL);
	bd_process_free(p);
	uv_run(&loop, UV_RUN_NOWAIT);
	ASSERT_INT_EQ(open_fds(), fds);
	free(out);
	free(err);
}

/* Counts the exits and start failures of the tasks of spawner_killed_*. */
static int starts_ok, starts_failed;

static void
on_started_count(struct bd_process *p, int status, void *arg)
{
	if (status == 0)
		starts_ok++;
	else
		starts_failed++;
}

/*
 * The spawner is killed (a real SIGKILL) with two requests whose replies
 * batchd has not read.  It served neither (stopped first), or, with
 * serve_first, it served the first (that supervisor runs; its reply waits
 * unread, past the ECONNRESET of the second request left unread).  Those
 * not served are exec'd; each task runs once.
 */
static void
spawner_killed_with_two_pending(bool serve_first)
{
	pid_t spawner = spawner_pid();
	char *argv[] = { (char[]){"sh"}, (char[]){"-c"},
	    (char[]){"echo ran >> runs-$T.txt; exit $T"}, NULL };
	char *env1[] = { (char[]){"PATH=/usr/bin:/bin"}, (char[]){"T=1"}, NULL };
	char *env2[] = { (char[]){"PATH=/usr/bin:/bin"}, (char[]){"T=2"}, NULL };
	char *out = bd_path_join(dir, "out.txt"), *err = bd_path_join(dir,
	    "err.txt"), *data;
	struct bd_process_options o = { .file = "/bin/sh", .argv = argv,
	    .envp = env1, .cwd = dir, .stdout_path = out, .stderr_path = err,
	    .started = on_started_count };
	struct bd_process *p1 = NULL, *p2 = NULL;
	int status;

	ASSERT(spawner > 0);
	unlink_in_dir("runs-1.txt");
	unlink_in_dir("runs-2.txt");
	starts_ok = starts_failed = 0;
	exits = 0;
	if (!serve_first)
		ASSERT_INT_EQ(kill(spawner, SIGSTOP), 0);
	ASSERT_INT_EQ(bd_process_spawn(&o, on_exit_cb, NULL, &p1), 0);
	if (serve_first) {
		/* The first task ran: its reply is sent, not read (no loop). */
		while ((data = read_in_dir("runs-1.txt")) == NULL)
			usleep(1000);
		free(data);
		ASSERT_INT_EQ(kill(spawner, SIGSTOP), 0);
	}
	o.envp = env2;
	ASSERT_INT_EQ(bd_process_spawn(&o, on_exit_cb, NULL, &p2), 0);
	ASSERT_INT_EQ(kill(spawner, SIGKILL), 0);
	ASSERT_INT_EQ(waitpid(spawner, &status, 0), spawner);
	run_until_exits(2);
	ASSERT_INT_EQ(starts_ok, 2);
	ASSERT_INT_EQ(starts_failed, 0);
	ASSERT(bd_process_pid(p1) > 0 && bd_process_pid(p2) > 0);
	bd_process_free(p1);
	bd_process_free(p2);
	ASSERT_NOT_NULL(data = read_in_dir("runs-1.txt"));
	ASSERT_STR_EQ(data, "ran\n");
	free(data);
	ASSERT_NOT_NULL(data = read_in_dir("runs-2.txt"));
	ASSERT_STR_EQ(data, "ran\n");
	free(data);
	/* And the next task starts by exec at once. */
	exits = 0;
	o.envp = env1;
	unlink_in_dir("runs-1.txt");
	ASSERT_INT_EQ(bd_process_spawn(&o, on_exit_cb, NULL, &p1), 0);
	run_until_exits(1);
	ASSERT_INT_EQ(got_code, 1);
	ASSERT_INT_EQ(starts_ok, 3);
	bd_process_free(p1);
	free(out);
	free(err);
}

TEST(spawner_killed_serving_none)
{
	spawner_killed_with_two_pending(false);
}

TEST(spawner_killed_after_serving_one)
{
	spawner_killed_with_two_pending(true);
}

/* A fresh spawner for the next test (the last one may have killed it). */
static void
restart_spawner(void)
{
	pid_t old = child_named(getpid(), "batchd-spawner", 0);

	bd_process_shutdown();
	uv_run(&loop, UV_RUN_DEFAULT);
	/* Gone before the next starts: a test that looks for the spawner
	 * by name must not find the old one on its way out. */
	if (old > 0)
		(void)waitpid(old, NULL, 0);
	ASSERT_INT_EQ(bd_process_init(&loop), 0);
}

/* Closing batchd's end ends the spawner. */
static void
spawner_ends_with_shutdown(void)
{
	pid_t spawner = spawner_pid();
	int status;

	ASSERT(spawner > 0);
	bd_process_shutdown();
	ASSERT_INT_EQ(waitpid(spawner, &status, 0), spawner);
	ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	uv_run(&loop, UV_RUN_DEFAULT); /* the closed SIGCHLD watcher */
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
	if (argc > 1 && strcmp(argv[1], "supervise") == 0) {
		int rc = bd_cmd_supervise(argc - 1, argv + 1);
		/* A slow exit (outcome_before_supervisor_exit). */
		if (getenv("TEST_SUPERVISOR_LINGERS") != NULL)
			sleep(20);
		return rc;
	}
	dir = xstrdup("/tmp/bd-process-XXXXXX");
	ASSERT_NOT_NULL(mkdtemp(dir));
	uv_loop_init(&loop);
	/* As batchd does: the task must not inherit it. */
	signal(SIGPIPE, SIG_IGN);
	/* Supervisors forked by the spawner, then exec'd. */
	for (int spawner = 1; spawner >= 0; spawner--) {
		fprintf(stderr, "== %s\n", spawner ? "spawner" : "exec");
		bd_process_use_spawner(spawner);
		ASSERT_INT_EQ(bd_process_init(&loop), 0);
		RUN(exit_code_and_files);
		RUN(default_signals);
		RUN(signal_death);
		RUN(kill_tree_reaches_escaped_grandchild);
		RUN(task_ends_with_its_supervisor);
		RUN(spawn_errors);
		RUN(supervisor_shows_its_command_line);
		/* Exec'd: the supervisor is this program's main(). */
		if (!spawner)
			RUN(outcome_before_supervisor_exit);
		RUN(started_reply_after_report);
		RUN(started_kill_before_reply);
		RUN(started_free_before_reply);
		RUN(started_too_big_for_the_spawner);
		if (spawner) {
			spawner_ends_with_shutdown();
			ASSERT_INT_EQ(bd_process_init(&loop), 0);
			RUN(spawner_forks_then_exec_when_it_dies);
#ifdef __x86_64__
			restart_spawner();
			RUN(spawner_dies_mid_request);
#endif
			restart_spawner();
			RUN(spare_starts_a_task_without_a_fork);
			restart_spawner();
			RUN(supervisor_reused);
			restart_spawner();
			RUN(spawner_forks_without_a_spare);
			restart_spawner();
			RUN(spawner_killed_serving_none);
			restart_spawner();
			RUN(spawner_killed_after_serving_one);
		}
		bd_process_shutdown();
		uv_run(&loop, UV_RUN_DEFAULT);
	}
	RUN(find_program);
	uv_run(&loop, UV_RUN_DEFAULT);
	ASSERT_INT_EQ(uv_loop_close(&loop), 0);
	bd_rm_rf(dir);
	free(dir);
	return 0;
}
