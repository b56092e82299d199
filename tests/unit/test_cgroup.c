/* SPDX-License-Identifier: MIT */
/*
 * Task cgroups on this host's real cgroup file system, with real
 * processes: the mode chosen, limits written, join, signal, emptiness,
 * statistics (CPU, peak memory, an OOM kill), open by name, destroy.
 * Needs root and a writable cgroup hierarchy; skipped (77) with the
 * reason otherwise.  Children are made with fork() and waited for; the
 * waits for a cgroup to empty poll its cgroup.events against a deadline.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "fsutil.h"
#include "unit.h"
#include "xmalloc.h"

#define MiB ((int64_t)1 << 20)

static unsigned seq;

/* The v2 mode has the memory and pids controllers (not so in a
 * tasks.cgroupDir on a hybrid host). */
static bool v2_has_all = true;

/* A cgroup name unique to this run. */
static char *
unique(const char *what)
{
	return xasprintf("test.%s.%ld.%u", what, (long)getpid(), ++seq);
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits (10 s at most) for cg to have no process left. */
static bool
wait_empty(struct bd_cgroup *cg)
{
	int64_t end = now_ms() + 10000;

	while (!bd_cgroup_empty(cg)) {
		if (now_ms() > end)
			return false;
		usleep(2000);
	}
	return true;
}

/* A file's text, or NULL; caller frees. */
static char *
slurp(const char *path)
{
	char *data;
	size_t len;
	FILE *f = fopen(path, "re");

	if (f == NULL)
		return NULL;
	data = xmalloc(65536);
	len = fread(data, 1, 65535, f);
	fclose(f);
	data[len] = '\0';
	return data;
}

/*
 * The directory of pid's cgroup in the v1 hierarchy of controller, from
 * /proc/PID/cgroup (this host mounts v1 hierarchies at
 * /sys/fs/cgroup/CONTROLLER); NULL when pid is not in one.
 */
static char *
v1_dir(pid_t pid, const char *controller)
{
	char path[64], *text, *line, *save = NULL, *dir = NULL;

	snprintf(path, sizeof(path), "/proc/%ld/cgroup", (long)pid);
	if ((text = slurp(path)) == NULL)
		return NULL;
	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		char *c = strchr(line, ':'), *p;
		if (c == NULL || (p = strchr(c + 1, ':')) == NULL)
			continue;
		*p = '\0';
		if (strcmp(c + 1, controller) == 0 ||
		    (strncmp(c + 1, controller, strlen(controller)) == 0 &&
		    c[1 + strlen(controller)] == ','))
			dir = xasprintf("/sys/fs/cgroup/%s%s", c + 1, p + 1);
	}
	free(text);
	return dir;
}

/* Whether pid runs (not gone, not a zombie waiting for its reaper). */
static bool
alive(pid_t pid)
{
	char path[64], *text, *rp;
	bool up;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if ((text = slurp(path)) == NULL)
		return false;
	rp = strrchr(text, ')');
	up = rp != NULL && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
	free(text);
	return up;
}

/* A child that waits on a pipe until told to exit (or is killed). */
static pid_t
spawn_waiter(int *release_fd)
{
	int fds[2];
	pid_t pid;
	char c;

	ASSERT(pipe(fds) == 0);
	if ((pid = fork()) == 0) {
		close(fds[1]);
		(void)!read(fds[0], &c, 1);
		_exit(0);
	}
	ASSERT(pid > 0);
	close(fds[0]);
	*release_fd = fds[1];
	return pid;
}

static struct bd_cgroup_limits limits = {
	.memory_max = 64 * MiB,
	.pids_max = 16,
	.cpu_weight = 200,
};

/* The mode fits the host: pure v2 when /proc/self/cgroup has one line. */
TEST(mode)
{
	char *text = slurp("/proc/self/cgroup");
	bool pure_v2 = text != NULL && strncmp(text, "0::", 3) == 0 &&
	    strchr(text, '\n') == strrchr(text, '\n');

	ASSERT(bd_cgroup_available());
	ASSERT_STR_EQ(bd_cgroup_mode_name(bd_cgroup_mode()),
	    pure_v2 ? "v2" : "hybrid");
	ASSERT_STR_EQ(bd_cgroup_mode_name(BD_CGROUP_MODE_NONE), "none");
	ASSERT_INT_EQ(bd_cgroup_setup(), 0); /* idempotent */
	free(text);
}

/* Names are one word of [A-Za-z0-9._-]. */
TEST(bad_names)
{
	struct bd_cgroup *cg = (struct bd_cgroup *)1;

	ASSERT_INT_EQ(bd_cgroup_create("a/b", &limits, &cg), -EINVAL);
	ASSERT_NULL(cg);
	ASSERT_INT_EQ(bd_cgroup_create("..", &limits, &cg), -EINVAL);
	ASSERT_INT_EQ(bd_cgroup_create("", &limits, &cg), -EINVAL);
	ASSERT_INT_EQ(bd_cgroup_create("tasks", &limits, &cg), -EINVAL);
	ASSERT_INT_EQ(bd_cgroup_open("../x", &cg), -ENOENT);
}

/* Create writes the limits; join moves a process in every hierarchy. */
TEST(create_join_limits)
{
	char *name = unique("limits"), *procs, *dir, *v;
	struct bd_cgroup *cg;
	int release;
	pid_t pid;

	ASSERT_INT_EQ(bd_cgroup_create(name, &limits, &cg), 0);
	ASSERT_NOT_NULL(cg);
	ASSERT_STR_EQ(bd_cgroup_name(cg), name);
	ASSERT_STR_CONTAINS(bd_cgroup_path(cg), name);
	ASSERT(bd_cgroup_empty(cg));

	pid = spawn_waiter(&release);
	ASSERT_INT_EQ(bd_cgroup_join(cg, pid), 0);
	ASSERT(!bd_cgroup_empty(cg));
	procs = xasprintf("%s/cgroup.procs", bd_cgroup_path(cg));
	v = slurp(procs);
	ASSERT_INT_EQ(atol(v), pid);
	free(v);
	free(procs);
	if (bd_cgroup_mode() == BD_CGROUP_MODE_HYBRID) {
		char *file;

		dir = v1_dir(pid, "memory");
		ASSERT_STR_CONTAINS(dir, name);
		file = xasprintf("%s/memory.limit_in_bytes", dir);
		v = slurp(file);
		ASSERT_INT_EQ(atoll(v), 64 * MiB);
		free(v);
		free(file);
		free(dir);
		dir = v1_dir(pid, "pids");
		ASSERT_STR_CONTAINS(dir, name);
		file = xasprintf("%s/pids.max", dir);
		v = slurp(file);
		ASSERT_INT_EQ(atoll(v), 16);
		free(v);
		free(file);
		free(dir);
		/* Weight 200 is twice v1's default 1024 shares. */
		dir = v1_dir(pid, "cpu");
		ASSERT_STR_CONTAINS(dir, name);
		file = xasprintf("%s/cpu.shares", dir);
		v = slurp(file);
		ASSERT_INT_EQ(atoll(v), 2048);
		free(v);
		free(file);
		free(dir);
	} else {
		/* In tasks.cgroupDir a controller may be missing: then its
		 * limit is not there (said once at setup), and no error. */
		char *file = xasprintf("%s/memory.max", bd_cgroup_path(cg));
		if ((v = slurp(file)) != NULL || v2_has_all)
			ASSERT_INT_EQ(atoll(v), 64 * MiB);
		free(v);
		free(file);
		file = xasprintf("%s/pids.max", bd_cgroup_path(cg));
		if ((v = slurp(file)) != NULL || v2_has_all)
			ASSERT_INT_EQ(atoll(v), 16);
		free(v);
		free(file);
	}
	close(release);
	ASSERT_INT_EQ(waitpid(pid, NULL, 0), pid);
	ASSERT(wait_empty(cg));
	dir = xstrdup(bd_cgroup_path(cg));
	bd_cgroup_destroy(cg);
	ASSERT(access(dir, F_OK) != 0 && errno == ENOENT);
	free(dir);
	free(name);
}

/*
 * A process that joins itself (as the supervisor will), double-forks a
 * grandchild into a session of its own and exits: the grandchild is still
 * in the cgroup, and SIGKILL through the cgroup ends it.
 */
TEST(signal_escaped)
{
	char *name = unique("escape");
	struct bd_cgroup *cg;
	int status, fds[2];
	pid_t pid, grandchild = 0;

	ASSERT_INT_EQ(bd_cgroup_create(name, &limits, &cg), 0);
	ASSERT(pipe(fds) == 0);
	if ((pid = fork()) == 0) {
		pid_t g;
		if (bd_cgroup_join(cg, 0) < 0)
			_exit(2);
		if ((g = fork()) == 0) {
			setsid();
			pause();
			_exit(0);
		}
		(void)!write(fds[1], &g, sizeof(g));
		_exit(0);
	}
	close(fds[1]);
	ASSERT_INT_EQ(read(fds[0], &grandchild, sizeof(grandchild)),
	    sizeof(grandchild));
	close(fds[0]);
	ASSERT_INT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ASSERT(!bd_cgroup_empty(cg));
	ASSERT(alive(grandchild));
	ASSERT_INT_EQ(bd_cgroup_signal(cg, SIGKILL), 1);
	ASSERT(wait_empty(cg));
	ASSERT(!alive(grandchild));
	bd_cgroup_destroy(cg);
	free(name);
}

/* A signal other than SIGKILL goes to each process listed. */
TEST(signal_term)
{
	char *name = unique("term");
	struct bd_cgroup *cg;
	int release, status;
	pid_t pid;

	ASSERT_INT_EQ(bd_cgroup_create(name, &limits, &cg), 0);
	pid = spawn_waiter(&release);
	ASSERT_INT_EQ(bd_cgroup_join(cg, pid), 0);
	ASSERT_INT_EQ(bd_cgroup_signal(cg, SIGTERM), 1);
	ASSERT_INT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
	close(release);
	ASSERT(wait_empty(cg));
	ASSERT_INT_EQ(bd_cgroup_signal(cg, SIGTERM), 0);
	bd_cgroup_destroy(cg);
	free(name);
}

/* pids.max stops a fork bomb. */
TEST(pids_max)
{
	char *name = unique("bomb");
	struct bd_cgroup *cg;
	int status, fds[2], forked = 0;
	pid_t pid;

	ASSERT_INT_EQ(bd_cgroup_create(name, &limits, &cg), 0);
	ASSERT(pipe(fds) == 0);
	if ((pid = fork()) == 0) {
		int n = 0;
		if (bd_cgroup_join(cg, 0) < 0)
			_exit(2);
		for (; n < 100; n++) {
			pid_t c = fork();
			if (c == -1)
				break;
			if (c == 0) {
				pause();
				_exit(0);
			}
		}
		(void)!write(fds[1], &n, sizeof(n));
		pause();
		_exit(0);
	}
	close(fds[1]);
	ASSERT_INT_EQ(read(fds[0], &forked, sizeof(forked)), sizeof(forked));
	close(fds[0]);
	/* The forker itself is one of the 16. */
	ASSERT_INT_EQ(forked, 15);
	ASSERT(bd_cgroup_signal(cg, SIGKILL) >= 16);
	ASSERT_INT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT(wait_empty(cg));
	bd_cgroup_destroy(cg);
	free(name);
}

/* A child of cg that touches mb MiB and burns ms of CPU, waited for. */
static void
run_in(struct bd_cgroup *cg, size_t mb, long ms)
{
	int status;
	pid_t pid;

	if ((pid = fork()) == 0) {
		struct timespec ts;
		volatile unsigned long x = 0;
		char *mem;

		if (bd_cgroup_join(cg, 0) < 0)
			_exit(2);
		mem = mmap(NULL, mb * MiB, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (mem == MAP_FAILED)
			_exit(3);
		memset(mem, 1, mb * MiB);
		do {
			for (int i = 0; i < 100000; i++)
				x += (unsigned long)i;
			clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
		} while (ts.tv_sec == 0 && ts.tv_nsec < ms * 1000000);
		_exit(x == 0 ? 4 : 0);
	}
	ASSERT_INT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ASSERT(wait_empty(cg));
}

/* CPU time and peak memory of a finished process; no OOM kill. */
TEST(stats)
{
	char *name = unique("stats");
	struct bd_cgroup *cg;
	struct bd_cgroup_stats st;

	ASSERT_INT_EQ(bd_cgroup_create(name, &limits, &cg), 0);
	run_in(cg, 16, 50);	/* 16 MiB, 50 ms of CPU in user mode */
	ASSERT_INT_EQ(bd_cgroup_stats(cg, &st), 0);
	ASSERT(st.cpu_user_usec + st.cpu_system_usec >= 40000);
	ASSERT(st.memory_peak >= 16 * MiB);
	ASSERT(st.memory_peak <= 64 * MiB);
	ASSERT_INT_EQ(st.oom_kills, 0);
	bd_cgroup_destroy(cg);
	ASSERT_INT_EQ(bd_cgroup_stats(NULL, &st), 0);
	ASSERT_INT_EQ(st.memory_peak, -1);
	free(name);
}

/*
 * A cgroup removed under its open counter files: the statistics say it is
 * gone (-ENOENT) and know nothing.
 */
TEST(stats_removed)
{
	char *name = unique("removed");
	struct bd_cgroup *cg;
	struct bd_cgroup_stats st;

	ASSERT_INT_EQ(bd_cgroup_create(name, &limits, &cg), 0);
	ASSERT(bd_cgroup_empty(cg));
	ASSERT_INT_EQ(bd_cgroup_stats(cg, &st), 0);	/* files opened */
	ASSERT(st.cpu_user_usec >= 0);
	ASSERT_INT_EQ(rmdir(bd_cgroup_path(cg)), 0);
	ASSERT_INT_EQ(bd_cgroup_stats(cg, &st), -ENOENT);
	ASSERT_INT_EQ(st.cpu_user_usec, -1);
	ASSERT_INT_EQ(st.cpu_system_usec, -1);
	ASSERT_INT_EQ(st.memory_peak, -1);
	ASSERT_INT_EQ(st.oom_kills, 0);
	bd_cgroup_destroy(cg);	/* what is left: v1 directories */
	free(name);
}

/* How many descriptors this process has open. */
static int
open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

/*
 * A released empty cgroup serves the next create with the same limits,
 * which counts its statistics from zero (its counter files, kept open,
 * show the values of now); other limits get a new one; the spares are
 * removed at the end, and their files closed.
 */
TEST(reuse)
{
	int fds_before = open_fds();
	char *a = unique("reuse-a"), *b = unique("reuse-b");
	char *c = unique("reuse-c"), *path;
	struct bd_cgroup_limits other = limits;
	struct bd_cgroup *cg, *cg2;
	struct bd_cgroup_stats st;

	ASSERT_INT_EQ(bd_cgroup_create(a, &limits, &cg), 0);
	run_in(cg, 24, 60);
	ASSERT_INT_EQ(bd_cgroup_stats(cg, &st), 0);
	ASSERT(st.memory_peak >= 24 * MiB);
	path = strdup(bd_cgroup_path(cg));
	bd_cgroup_release(cg);
	ASSERT(access(path, F_OK) == 0);	/* kept */

	ASSERT_INT_EQ(bd_cgroup_create(b, &limits, &cg), 0);
	ASSERT_STR_EQ(bd_cgroup_name(cg), a);	/* the same one again */
	ASSERT_STR_EQ(bd_cgroup_path(cg), path);
	ASSERT_INT_EQ(bd_cgroup_stats(cg, &st), 0);
	ASSERT(st.cpu_user_usec >= 0 && st.cpu_user_usec < 20000);
	ASSERT(st.memory_peak >= 0 && st.memory_peak < 16 * MiB);
	ASSERT_INT_EQ(st.oom_kills, 0);
	run_in(cg, 8, 30);
	ASSERT_INT_EQ(bd_cgroup_stats(cg, &st), 0);
	ASSERT(st.memory_peak >= 8 * MiB && st.memory_peak < 24 * MiB);
	ASSERT(st.cpu_user_usec + st.cpu_system_usec >= 20000 &&
	    st.cpu_user_usec + st.cpu_system_usec < 55000);

	/* A third use: the peak reset again (through the descriptor the
	 * first reuse kept), CPU time from the counters read at the end of
	 * the second use. */
	bd_cgroup_release(cg);
	ASSERT_INT_EQ(bd_cgroup_create(b, &limits, &cg), 0);
	ASSERT_STR_EQ(bd_cgroup_name(cg), a);
	ASSERT_INT_EQ(bd_cgroup_stats(cg, &st), 0);
	ASSERT(st.memory_peak >= 0 && st.memory_peak < 4 * MiB);
	ASSERT(st.cpu_user_usec >= 0 && st.cpu_user_usec < 20000);
	ASSERT(st.cpu_system_usec >= 0 && st.cpu_system_usec < 20000);

	/* Released without its statistics read: the next use's base is
	 * read when it is taken. */
	run_in(cg, 8, 30);
	bd_cgroup_release(cg);
	ASSERT_INT_EQ(bd_cgroup_create(b, &limits, &cg), 0);
	ASSERT_STR_EQ(bd_cgroup_name(cg), a);
	ASSERT_INT_EQ(bd_cgroup_stats(cg, &st), 0);
	ASSERT(st.memory_peak >= 0 && st.memory_peak < 4 * MiB);
	ASSERT(st.cpu_user_usec + st.cpu_system_usec < 20000);

	/* Other limits: not the spare. */
	bd_cgroup_release(cg);
	other.pids_max = 32;
	ASSERT_INT_EQ(bd_cgroup_create(c, &other, &cg2), 0);
	ASSERT_STR_EQ(bd_cgroup_name(cg2), c);
	bd_cgroup_destroy(cg2);

	bd_cgroup_drop_spares();
	ASSERT(access(path, F_OK) == -1 && errno == ENOENT);
	ASSERT_INT_EQ(open_fds(), fds_before);
	free(path);
	free(a);
	free(b);
	free(c);
}

/*
 * A handle that found its cgroup empty says so without reading again,
 * but a spare is read before it is handed out: one that a process
 * entered behind the handle's back is not reused.
 */
TEST(reuse_entered)
{
	char *a = unique("entered-a"), *b = unique("entered-b"), *file, *pid_s;
	struct bd_cgroup *cg, *cg2;
	int release, fd;
	pid_t pid;

	ASSERT_INT_EQ(bd_cgroup_create(a, &limits, &cg), 0);
	ASSERT(bd_cgroup_empty(cg));
	pid = spawn_waiter(&release);
	file = xasprintf("%s/cgroup.procs", bd_cgroup_path(cg));
	pid_s = xasprintf("%ld", (long)pid);
	fd = open(file, O_WRONLY);
	ASSERT(fd >= 0);
	ASSERT(write(fd, pid_s, strlen(pid_s)) == (ssize_t)strlen(pid_s));
	close(fd);
	ASSERT(bd_cgroup_empty(cg));	/* remembered, not read */
	bd_cgroup_release(cg);		/* kept: it said empty */
	ASSERT_INT_EQ(bd_cgroup_create(b, &limits, &cg2), 0);
	ASSERT_STR_EQ(bd_cgroup_name(cg2), b);	/* a new one */
	ASSERT(bd_cgroup_empty(cg2));
	ASSERT_INT_EQ(bd_cgroup_open(a, &cg), 0);	/* still there */
	ASSERT(!bd_cgroup_empty(cg));
	close(release);
	ASSERT_INT_EQ(waitpid(pid, NULL, 0), pid);
	ASSERT(wait_empty(cg));
	bd_cgroup_destroy(cg);
	bd_cgroup_destroy(cg2);
	free(file);
	free(pid_s);
	free(a);
	free(b);
}

/* A spare that still holds a task's memory (a tmpfs file) is not reused. */
TEST(reuse_charged)
{
	char *a = unique("charged-a"), *b = unique("charged-b");
	char shm[64];
	struct bd_cgroup *cg;
	int status;
	pid_t pid;

	snprintf(shm, sizeof(shm), "/dev/shm/batchd-test-cgroup-%ld",
	    (long)getpid());
	ASSERT_INT_EQ(bd_cgroup_create(a, &limits, &cg), 0);
	if ((pid = fork()) == 0) {
		static char block[1024 * 1024];
		int fd;

		if (bd_cgroup_join(cg, 0) < 0 ||
		    (fd = open(shm, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0)
			_exit(2);
		memset(block, 7, sizeof(block));
		for (int i = 0; i < 8; i++)
			if (write(fd, block, sizeof(block)) !=
			    (ssize_t)sizeof(block))
				_exit(3);
		_exit(0);
	}
	ASSERT_INT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ASSERT(wait_empty(cg));
	bd_cgroup_release(cg);
	ASSERT_INT_EQ(bd_cgroup_create(b, &limits, &cg), 0);
	ASSERT_STR_EQ(bd_cgroup_name(cg), b);	/* a new one */
	unlink(shm);
	bd_cgroup_destroy(cg);
	bd_cgroup_drop_spares();
	free(a);
	free(b);
}

/* Past memory_max the OOM killer ends the process; stats count it. */
TEST(oom)
{
	char *name = unique("oom");
	struct bd_cgroup *cg;
	struct bd_cgroup_stats st;
	int status;
	pid_t pid;

	ASSERT_INT_EQ(bd_cgroup_create(name, &limits, &cg), 0);
	if ((pid = fork()) == 0) {
		char *mem;

		if (bd_cgroup_join(cg, 0) < 0)
			_exit(2);
		mem = mmap(NULL, 256 * MiB, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (mem == MAP_FAILED)
			_exit(3);
		memset(mem, 1, 256 * MiB);
		_exit(0);
	}
	ASSERT_INT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	ASSERT(wait_empty(cg));
	ASSERT_INT_EQ(bd_cgroup_stats(cg, &st), 0);
	ASSERT(st.oom_kills >= 1);
	ASSERT(st.memory_peak >= 60 * MiB);
	bd_cgroup_destroy(cg);
	free(name);
}

/*
 * The spawn path: a directory descriptor for CLONE_INTO_CGROUP, and a
 * child that joins the v1 hierarchies with its only thread.
 */
TEST(thread_join)
{
	char *name = unique("thread");
	struct bd_cgroup *cg;
	int status, fd;
	pid_t pid;

	ASSERT_INT_EQ(bd_cgroup_create(name, &limits, &cg), 0);
	fd = bd_cgroup_open_dir(cg);
	ASSERT(fd >= 0);
	close(fd);
	ASSERT_INT_EQ(bd_cgroup_open_dir(NULL), -EINVAL);
	ASSERT_INT_EQ(bd_cgroup_join_thread_v1(NULL), 0);
	if ((pid = fork()) == 0) {
		char *dir;
		if (bd_cgroup_join_thread_v1(cg) < 0)
			_exit(2);
		if (bd_cgroup_mode() != BD_CGROUP_MODE_HYBRID)
			_exit(0);
		dir = v1_dir(getpid(), "pids");
		_exit(dir != NULL && strstr(dir, name) != NULL ? 0 : 3);
	}
	ASSERT_INT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT(WIFEXITED(status));
	ASSERT_INT_EQ(WEXITSTATUS(status), 0);
	bd_cgroup_destroy(cg);
	free(name);
}

/* A cgroup is found again by name; an unknown name is -ENOENT. */
TEST(open)
{
	char *name = unique("open"), *path;
	struct bd_cgroup *cg, *again;
	int release;
	pid_t pid;

	ASSERT_INT_EQ(bd_cgroup_create(name, &limits, &cg), 0);
	path = xstrdup(bd_cgroup_path(cg));
	pid = spawn_waiter(&release);
	ASSERT_INT_EQ(bd_cgroup_join(cg, pid), 0);
	bd_cgroup_free(cg);		/* as if batchd restarted */
	ASSERT(access(path, F_OK) == 0);

	/* In use: a second create of the name is refused. */
	ASSERT_INT_EQ(bd_cgroup_create(name, &limits, &again), -EEXIST);
	ASSERT_INT_EQ(bd_cgroup_open(name, &again), 0);
	ASSERT_STR_EQ(bd_cgroup_path(again), path);
	ASSERT(!bd_cgroup_empty(again));
	ASSERT_INT_EQ(bd_cgroup_signal(again, SIGKILL), 1);
	ASSERT_INT_EQ(waitpid(pid, NULL, 0), pid);
	close(release);
	ASSERT(wait_empty(again));
	bd_cgroup_free(again);

	/* Left empty (a crash): create takes it over. */
	ASSERT_INT_EQ(bd_cgroup_create(name, &limits, &cg), 0);
	bd_cgroup_destroy(cg);
	ASSERT(access(path, F_OK) != 0);
	ASSERT_INT_EQ(bd_cgroup_open(name, &again), -ENOENT);
	ASSERT_NULL(again);
	free(path);
	free(name);
}

/* tasks.cgroups false: the none mode, where NULL is every cgroup. */
TEST(configured_off)
{
	int status;
	pid_t pid;

	/* The mode is per process and set once: look in a child. */
	if ((pid = fork()) == 0) {
		struct bd_cgroup *cg = (struct bd_cgroup *)1;
		struct bd_cgroup_stats st;

		bd_cgroup_configure(false, &limits);
		bd_cgroup_setup();
		if (bd_cgroup_available() ||
		    bd_cgroup_mode() != BD_CGROUP_MODE_NONE ||
		    bd_cgroup_node_limits()->pids_max != 16)
			_exit(1);
		if (bd_cgroup_create("x.y", &limits, &cg) != 0 || cg != NULL)
			_exit(2);
		if (bd_cgroup_join(NULL, 0) != 0 ||
		    bd_cgroup_signal(NULL, SIGKILL) != 0 ||
		    !bd_cgroup_empty(NULL) || bd_cgroup_stats(NULL, &st) != 0 ||
		    st.cpu_user_usec != -1 || bd_cgroup_name(NULL) != NULL)
			_exit(3);
		bd_cgroup_destroy(NULL);
		bd_cgroup_free(NULL);
		_exit(0);
	}
	ASSERT_INT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT(WIFEXITED(status));
	ASSERT_INT_EQ(WEXITSTATUS(status), 0);
}

/*
 * The sweep tests' verdicts: "stale.PID." names (this process's) are to
 * be removed, "orphan.PID." ones killed; the rest kept.
 */
static enum bd_cgroup_sweep_action
stale_names(const char *name, void *arg)
{
	char prefix[32];

	(void)arg;
	snprintf(prefix, sizeof(prefix), "stale.%ld.", (long)getpid());
	if (strncmp(name, prefix, strlen(prefix)) == 0)
		return BD_CGROUP_REMOVE;
	snprintf(prefix, sizeof(prefix), "orphan.%ld.", (long)getpid());
	if (strncmp(name, prefix, strlen(prefix)) == 0)
		return BD_CGROUP_KILL;
	return BD_CGROUP_KEEP;
}

/*
 * The sweep removes the stale cgroups that are empty, and keeps a stale
 * one with a process in it (an adopted task's) and those not stale.
 */
TEST(sweep)
{
	char *empty = xasprintf("stale.%ld.%u", (long)getpid(), ++seq);
	char *busy = xasprintf("stale.%ld.%u", (long)getpid(), ++seq);
	char *live = unique("live");
	char *orphan = xasprintf("orphan.%ld.%u", (long)getpid(), ++seq);
	struct bd_cgroup *e, *b, *l, *o;
	char *epath;
	int release, killed, status;
	pid_t pid;

	ASSERT_INT_EQ(bd_cgroup_create(empty, &limits, &e), 0);
	ASSERT_INT_EQ(bd_cgroup_create(busy, &limits, &b), 0);
	ASSERT_INT_EQ(bd_cgroup_create(live, &limits, &l), 0);
	epath = xstrdup(bd_cgroup_path(e));
	bd_cgroup_free(e);
	pid = spawn_waiter(&release);
	ASSERT_INT_EQ(bd_cgroup_join(b, pid), 0);
	ASSERT_INT_EQ(bd_cgroup_sweep(stale_names, NULL, &killed), 1);
	ASSERT_INT_EQ(killed, 0);
	ASSERT(access(epath, F_OK) != 0 && errno == ENOENT);
	ASSERT_INT_EQ(bd_cgroup_open(empty, &e), -ENOENT);
	ASSERT_INT_EQ(access(bd_cgroup_path(b), F_OK), 0);
	ASSERT_INT_EQ(access(bd_cgroup_path(l), F_OK), 0);
	if (bd_cgroup_mode() == BD_CGROUP_MODE_HYBRID) {
		/* Its v1 directories went with it. */
		char *v1 = v1_dir(getpid(), "memory");
		char *gone = xasprintf("%.*s/batchd/%s",
		    (int)(strlen(v1) - (strcmp(strrchr(v1, '/'), "/") == 0 ?
		    1 : 0)), v1, empty);
		ASSERT(access(gone, F_OK) != 0);
		free(gone);
		free(v1);
	}
	close(release);
	ASSERT_INT_EQ(waitpid(pid, NULL, 0), pid);
	ASSERT(wait_empty(b));
	bd_cgroup_free(b);
	/* Its process gone, the next sweep takes it. */
	ASSERT_INT_EQ(bd_cgroup_sweep(stale_names, NULL, NULL), 1);
	ASSERT_INT_EQ(bd_cgroup_open(busy, &b), -ENOENT);

	/* An orphan's processes (a double fork too) are killed, then it
	 * goes. */
	ASSERT_INT_EQ(bd_cgroup_create(orphan, &limits, &o), 0);
	pid = spawn_waiter(&release);
	ASSERT_INT_EQ(bd_cgroup_join(o, pid), 0);
	bd_cgroup_free(o);
	ASSERT_INT_EQ(bd_cgroup_sweep(stale_names, NULL, &killed), 1);
	ASSERT_INT_EQ(killed, 1);
	ASSERT_INT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	close(release);
	ASSERT_INT_EQ(bd_cgroup_open(orphan, &o), -ENOENT);
	free(orphan);
	bd_cgroup_destroy(l);
	free(epath);
	free(empty);
	free(busy);
	free(live);
}

/* The mount point of the cgroup v2 hierarchy, or NULL; caller frees. */
static char *
v2_mount(void)
{
	char *text = slurp("/proc/self/mountinfo"), *line, *save = NULL;
	char *found = NULL;

	for (line = strtok_r(text, "\n", &save); line != NULL && found == NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		char point[4096], *sep = strstr(line, " - ");
		if (sep != NULL && strncmp(sep + 3, "cgroup2 ", 8) == 0 &&
		    sscanf(line, "%*s %*s %*s %*s %4095s", point) == 1)
			found = xstrdup(point);
	}
	free(text);
	return found;
}

/* Whether the cgroup directory dir holds no process of its own. */
static bool
no_procs(const char *dir)
{
	char *file = xasprintf("%s/cgroup.procs", dir), *v = slurp(file);
	bool none = v != NULL && v[0] == '\0';

	free(v);
	free(file);
	return none;
}

/* This process's v2 cgroup directory under mount; caller frees. */
static char *
own_v2(const char *mount, pid_t pid)
{
	char path[64], *text, *line, *save = NULL, *dir = NULL;

	snprintf(path, sizeof(path), "/proc/%ld/cgroup", (long)pid);
	text = slurp(path);
	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save))
		if (strncmp(line, "0::", 3) == 0)
			dir = xasprintf("%s%s", mount, strcmp(line + 3, "/") == 0 ?
			    "" : line + 3);
	free(text);
	return dir;
}

/*
 * A task's supervisor, as the agent starts it in its leaf: waits on go,
 * then sets up as a joiner, opens the task cgroup name and checks that
 * nothing moved.  Exits 0 when all held.
 */
static void __attribute__((noreturn))
joiner(int go, const char *mount, const char *d, const char *name)
{
	char *agent = xasprintf("%s/agent", d), *own;
	struct bd_cgroup *cg;
	char c;

	if (read(go, &c, 1) != 1)
		_exit(10);
	bd_cgroup_configure_joiner();
	if (bd_cgroup_setup() < 0 || bd_cgroup_mode() != BD_CGROUP_MODE_V2)
		_exit(11);
	if (bd_cgroup_open(name, &cg) < 0)
		_exit(12);
	own = own_v2(mount, getpid());
	if (own == NULL || strcmp(own, agent) != 0)
		_exit(13);	/* it moved itself */
	if (!no_procs(d))
		_exit(14);
	bd_cgroup_free(cg);
	_exit(0);
}

/*
 * The child that tests tasks.cgroupDir d: it forks a supervisor-to-be,
 * sets up the v2 mode in d, runs the tests of a task cgroup there, then
 * lets the supervisor check the layout.  Exits 0 when all held.
 */
static void __attribute__((noreturn))
v2_dir_child(const char *mount, const char *d)
{
	char *agent = xasprintf("%s/agent", d), *tasks = xasprintf("%s/tasks", d);
	char *name = unique("into"), *own, *ctl, *file;
	struct bd_cgroup *cg;
	struct clone_args ca;
	int go[2], fd, status;
	pid_t pid, sup;

	ASSERT(pipe(go) == 0);
	if ((sup = fork()) == 0) {
		close(go[1]);
		joiner(go[0], mount, d, name);
	}
	close(go[0]);
	bd_cgroup_configure(true, &limits);
	ASSERT_INT_EQ(bd_cgroup_configure_dir(d), 0);
	ASSERT_INT_EQ(bd_cgroup_setup(), 0);
	ASSERT_STR_EQ(bd_cgroup_mode_name(bd_cgroup_mode()), "v2");
	file = xasprintf("%s/cgroup.subtree_control", tasks);
	ctl = slurp(file);
	v2_has_all = ctl != NULL && strstr(ctl, "memory") != NULL &&
	    strstr(ctl, "pids") != NULL;
	free(ctl);
	free(file);
	/* The agent sits in its leaf; d and d/tasks hold no process. */
	own = own_v2(mount, getpid());
	ASSERT_STR_EQ(own, agent);
	free(own);
	ASSERT(no_procs(d));
	ASSERT(no_procs(tasks));

	RUN(create_join_limits);
	RUN(signal_escaped);
	RUN(signal_term);
	if (v2_has_all) {
		RUN(pids_max);
		RUN(stats);
		RUN(reuse);
		RUN(oom);
	}
	RUN(stats_removed);
	RUN(reuse_entered);
	RUN(thread_join);
	RUN(open);
	RUN(sweep);

	/* clone3() with CLONE_INTO_CGROUP starts a child in a task cgroup. */
	ASSERT_INT_EQ(bd_cgroup_create(name, &limits, &cg), 0);
	fd = bd_cgroup_open_dir(cg);
	ASSERT(fd >= 0);
	memset(&ca, 0, sizeof(ca));
	ca.flags = CLONE_INTO_CGROUP;
	ca.exit_signal = SIGCHLD;
	ca.cgroup = (uint64_t)fd;
	pid = (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
	if (pid == 0) {
		char *here = own_v2(mount, getpid());
		_exit(here != NULL && strcmp(here, bd_cgroup_path(cg)) == 0 ?
		    0 : 3);
	}
	ASSERT(pid > 0);
	close(fd);
	ASSERT_INT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT(WIFEXITED(status));
	ASSERT_INT_EQ(WEXITSTATUS(status), 0);
	ASSERT(wait_empty(cg));

	/* The supervisor-to-be, started in the agent's leaf. */
	file = xasprintf("%ld", (long)sup);
	ctl = xasprintf("%s/cgroup.procs", agent);
	fd = open(ctl, O_WRONLY | O_CLOEXEC);
	ASSERT(fd >= 0);
	ASSERT_INT_EQ(write(fd, file, strlen(file)), (ssize_t)strlen(file));
	close(fd);
	free(ctl);
	free(file);
	ASSERT_INT_EQ(write(go[1], "g", 1), 1);
	ASSERT_INT_EQ(waitpid(sup, &status, 0), sup);
	ASSERT(WIFEXITED(status));
	ASSERT_INT_EQ(WEXITSTATUS(status), 0);
	bd_cgroup_destroy(cg);
	free(name);
	free(agent);
	free(tasks);
	_exit(0);
}

/*
 * tasks.cgroupDir: the v2 mode in a cgroup made for this test in the v2
 * hierarchy, whatever mode the host gives batchd's own cgroup (on a
 * hybrid host, a v2 mode without the memory and pids controllers).  Run
 * in a child, since the mode is per process and the child moves itself.
 */
TEST(v2_dir)
{
	char *mount = v2_mount(), *d, *sub;
	int status;
	pid_t pid;

	if (mount == NULL) {
		printf("skip v2_dir: no cgroup v2 hierarchy\n");
		return;
	}
	d = xasprintf("%s/batchd-test-v2.%ld", mount, (long)getpid());
	if (mkdir(d, 0755) == -1) {
		printf("skip v2_dir: cannot create %s: %s\n", d,
		    strerror(errno));
		free(d);
		free(mount);
		return;
	}
	if ((pid = fork()) == 0)
		v2_dir_child(mount, d);
	ASSERT_INT_EQ(waitpid(pid, &status, 0), pid);
	/* The child and its children are gone: the tree can go. */
	sub = xasprintf("%s/agent", d);
	(void)rmdir(sub);
	free(sub);
	sub = xasprintf("%s/tasks", d);
	(void)rmdir(sub);
	free(sub);
	ASSERT_INT_EQ(rmdir(d), 0);
	ASSERT(WIFEXITED(status));
	ASSERT_INT_EQ(WEXITSTATUS(status), 0);
	free(d);
	free(mount);
}

/*
 * tasks.cgroupDir that cannot be used: a relative or too long path is
 * refused; a directory that is not a cgroup gives the none mode.
 */
TEST(v2_dir_errors)
{
	char *big = xmalloc(PATH_MAX + 2);
	int status;
	pid_t pid;

	memset(big, 'x', PATH_MAX + 1);
	big[0] = '/';
	big[PATH_MAX + 1] = '\0';
	ASSERT_INT_EQ(bd_cgroup_configure_dir("relative/dir"), -EINVAL);
	ASSERT_INT_EQ(bd_cgroup_configure_dir(big), -EINVAL);
	ASSERT_INT_EQ(bd_cgroup_configure_dir(NULL), 0);
	ASSERT_INT_EQ(bd_cgroup_configure_dir(""), 0);
	free(big);
	if ((pid = fork()) == 0) {
		char dir[] = "/tmp/bd-cgroup-not-XXXXXX";
		int rc = 0;

		if (mkdtemp(dir) == NULL)
			_exit(1);
		bd_cgroup_configure(true, &limits);
		if (bd_cgroup_configure_dir(dir) != 0 || bd_cgroup_setup() != 0)
			rc = 2;
		else if (bd_cgroup_available())
			rc = 3;
		rmdir(dir);
		_exit(rc);
	}
	ASSERT_INT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT(WIFEXITED(status));
	ASSERT_INT_EQ(WEXITSTATUS(status), 0);
}

int
main(void)
{
	RUN(configured_off);
	RUN(v2_dir_errors);
	RUN(v2_dir);
	bd_cgroup_setup();
	if (!bd_cgroup_available()) {
		printf("SKIP: this host offers no writable cgroups to batchd "
		    "(see the log line above for why)\n");
		return 77;
	}
	RUN(mode);
	RUN(bad_names);
	RUN(create_join_limits);
	RUN(signal_escaped);
	RUN(signal_term);
	RUN(pids_max);
	RUN(stats);
	RUN(stats_removed);
	RUN(reuse);
	RUN(reuse_entered);
	RUN(reuse_charged);
	RUN(oom);
	RUN(thread_join);
	RUN(open);
	RUN(sweep);
	return 0;
}
