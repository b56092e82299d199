/* SPDX-License-Identifier: MIT */
/*
 * Spawning and reaping task processes; see process.h for the model.
 *
 * State: a list of live tracked processes, and one uv_signal_t for SIGCHLD.
 * A process is tracked from a successful spawn until its exit has been
 * delivered; after that the caller owns the struct and frees it.
 */
#include "process.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "xmalloc.h"

struct bd_process {
	pid_t pid;
	bool exited;
	bd_process_exit_cb exit_cb;
	void *arg;
	struct bd_process *next; /* in process_live while running */
};

static uv_signal_t process_sigchld;
static bool process_ready;
static struct bd_process *process_live;

/* Reaps every exited child and delivers the exits of tracked ones. */
static void
process_on_sigchld(uv_signal_t *handle, int signum)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct bd_process **pp, *p = NULL;

		for (pp = &process_live; *pp != NULL; pp = &(*pp)->next) {
			if ((*pp)->pid == pid) {
				p = *pp;
				*pp = p->next;
				break;
			}
		}
		if (p == NULL)
			continue; /* an orphan the subreaper inherited */
		p->exited = true;
		p->next = NULL;
		if (WIFEXITED(status))
			p->exit_cb(p, WEXITSTATUS(status), 0, p->arg);
		else
			p->exit_cb(p, 0, WIFSIGNALED(status) ?
			    WTERMSIG(status) : SIGKILL, p->arg);
	}
}

int
bd_process_init(uv_loop_t *loop)
{
	int rc;

	if (process_ready)
		return 0;
	/* Orphans of a task come to us, so its whole tree stays findable. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) == -1)
		return -errno;
	if ((rc = uv_signal_init(loop, &process_sigchld)) < 0)
		return rc;
	if ((rc = uv_signal_start(&process_sigchld, process_on_sigchld,
	    SIGCHLD)) < 0)
		return rc;
	process_ready = true;
	return 0;
}

void
bd_process_shutdown(void)
{
	if (!process_ready)
		return;
	uv_signal_stop(&process_sigchld);
	uv_close((uv_handle_t *)&process_sigchld, NULL);
	process_ready = false;
}

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL	/* Linux 5.7 */
#endif

/* The kernel's struct clone_args up to its cgroup member (Linux 5.7). */
struct process_clone_args {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal;
	uint64_t stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};

/*
 * fork() that puts the child straight into the v2 cgroup open as dirfd
 * (clone3 with CLONE_INTO_CGROUP, without CLONE_VM: the child runs on a
 * copy, as after fork).  *joined tells whether it did; without clone3 or
 * CLONE_INTO_CGROUP (Linux before 5.7, seccomp filters) it is a plain fork.
 */
static pid_t
process_fork_into(int dirfd, bool *joined)
{
#ifdef SYS_clone3
	struct process_clone_args a = {
		.flags = CLONE_INTO_CGROUP,
		.exit_signal = SIGCHLD,
		.cgroup = (uint64_t)dirfd,
	};
	long pid;

	if (dirfd >= 0) {
		pid = syscall(SYS_clone3, &a, sizeof(a));
		if (pid >= 0) {
			*joined = true;
			return (pid_t)pid;
		}
		if (errno != ENOSYS && errno != E2BIG && errno != EINVAL &&
		    errno != EPERM)
			return -1;
	}
#endif
	*joined = false;
	return fork();
}

/*
 * Spawns opts->file as a member of opts->cgroup from its first
 * instruction: the child is cloned into the cgroup's v2 directory, joins
 * the v1 ones (hybrid mode) with its only thread, then does what
 * bd_process_spawn()'s posix_spawn does (files, directory, session,
 * signals) and execs.  Joining after posix_spawn left a window in which a
 * task forked processes that stayed outside (a shell's first command
 * often did), and a whole-process move (cgroup.procs) waits for an RCU
 * grace period under a system-wide lock: 15 ms per task on a loaded host.
 * glibc 2.36 has no posix_spawnattr_setcgroup_np.  The child uses only
 * async-signal-safe calls; its errno comes back through a close-on-exec
 * pipe, so that a failed exec is reported as posix_spawn reports it.  The
 * task's supervisor will take this over.  Sets *pid; 0 or -errno.
 */
static int
process_spawn_joined(const struct bd_process_options *opts, pid_t *pid)
{
	int fds[2], err = 0, rc, dirfd;
	bool joined;
	ssize_t n;
	pid_t child;

	if (pipe2(fds, O_CLOEXEC) == -1)
		return -errno;
	dirfd = bd_cgroup_open_dir(opts->cgroup);
	child = process_fork_into(dirfd, &joined);
	if (child == -1) {
		err = errno;
		if (dirfd >= 0)
			close(dirfd);
		close(fds[0]);
		close(fds[1]);
		return -err;
	}
	if (child == 0) {
		sigset_t none;
		int fd;

		rc = joined ? bd_cgroup_join_thread_v1(opts->cgroup) :
		    bd_cgroup_join(opts->cgroup, 0);
		if (rc < 0) {
			err = -rc;
			goto child_fail;
		}
		for (int sig = 1; sig < NSIG; sig++)
			signal(sig, SIG_DFL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (setsid() == -1)
			goto child_errno;
		if ((fd = open("/dev/null", O_RDONLY)) == -1 ||
		    dup2(fd, 0) == -1)
			goto child_errno;
		if (fd != 0)
			close(fd);
		if ((fd = open(opts->stdout_path, O_WRONLY | O_CREAT |
		    O_TRUNC | O_APPEND, 0660)) == -1 || dup2(fd, 1) == -1)
			goto child_errno;
		if (fd != 1)
			close(fd);
		if ((fd = open(opts->stderr_path, O_WRONLY | O_CREAT |
		    O_TRUNC | O_APPEND, 0660)) == -1 || dup2(fd, 2) == -1)
			goto child_errno;
		if (fd != 2)
			close(fd);
		if (chdir(opts->cwd) == -1)
			goto child_errno;
		execve(opts->file, opts->argv, opts->envp);
child_errno:
		err = errno;
child_fail:
		(void)!write(fds[1], &err, sizeof(err));
		_exit(127);
	}
	if (dirfd >= 0)
		close(dirfd);
	close(fds[1]);
	do
		n = read(fds[0], &err, sizeof(err));
	while (n == -1 && errno == EINTR);
	close(fds[0]);
	if (n == (ssize_t)sizeof(err)) {
		waitpid(child, NULL, 0);
		return -err;
	}
	*pid = child;
	return 0;
}

int
bd_process_spawn(const struct bd_process_options *opts,
    bd_process_exit_cb exit_cb, void *arg, struct bd_process **out)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t all, none;
	pid_t pid;
	int rc;

	if (opts->cgroup != NULL) {
		if ((rc = process_spawn_joined(opts, &pid)) < 0)
			return rc;
		goto spawned;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, opts->stdout_path,
	    O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0660);
	posix_spawn_file_actions_addopen(&fa, 2, opts->stderr_path,
	    O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0660);
	posix_spawn_file_actions_addchdir_np(&fa, opts->cwd);
	/* The task starts with default dispositions and nothing blocked,
	 * whatever batchd ignores or blocks itself (SIGPIPE, SIGCHLD). */
	sigfillset(&all);
	sigemptyset(&none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID |
	    POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
	rc = posix_spawn(&pid, opts->file, &fa, &attr, opts->argv, opts->envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (rc != 0)
		return -rc;

spawned:;
	struct bd_process *p = xcalloc(1, sizeof(*p));
	p->pid = pid;
	p->exit_cb = exit_cb;
	p->arg = arg;
	p->next = process_live;
	process_live = p;
	*out = p;
	return 0;
}

pid_t
bd_process_pid(const struct bd_process *proc)
{
	return proc->pid;
}

void
bd_process_free(struct bd_process *proc)
{
	free(proc);
}

struct proc_entry {
	pid_t pid, ppid, pgid, sid;
};

/* Reads pid, ppid, pgid and sid of every process from /proc. */
static struct proc_entry *
process_snapshot(size_t *count)
{
	struct proc_entry *v = NULL;
	size_t n = 0, cap = 0;
	DIR *d = opendir("/proc");
	struct dirent *de;

	*count = 0;
	if (d == NULL)
		return NULL;
	while ((de = readdir(d)) != NULL) {
		char path[300], buf[512];
		int fd;
		ssize_t len;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
			continue;
		len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0)
			continue;
		buf[len] = '\0';
		/* The command name may hold spaces and parentheses: parse
		 * after the last ')'. */
		char *rp = strrchr(buf, ')');
		struct proc_entry e;
		char state;
		if (rp == NULL || sscanf(rp + 1, " %c %d %d %d", &state,
		    &e.ppid, &e.pgid, &e.sid) != 4)
			continue;
		e.pid = (pid_t)atoi(de->d_name);
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			v = xreallocarray(v, cap, sizeof(*v));
		}
		v[n++] = e;
	}
	closedir(d);
	*count = n;
	return v;
}

static bool
process_is_tracked(pid_t pid)
{
	for (struct bd_process *p = process_live; p != NULL; p = p->next)
		if (p->pid == pid)
			return true;
	return false;
}

/*
 * True when batchd has a child that is not a tracked task process: an
 * orphan the subreaper inherited.  Reads /proc/self/task/<tid>/children,
 * which lists the children of each of our threads.
 */
static bool
process_has_orphans(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	bool found = false;

	if (d == NULL)
		return true; /* cannot tell: assume the worst */
	while (!found && (de = readdir(d)) != NULL) {
		char path[300], buf[4096];
		ssize_t len;
		int fd;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/children",
		    de->d_name);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
			found = errno != ENOENT; /* a thread that just ended */
			continue;
		}
		len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len < 0 || len == (ssize_t)sizeof(buf) - 1) {
			found = true;
			continue;
		}
		buf[len] = '\0';
		for (char *p = buf, *end; *p != '\0'; p = end) {
			long pid = strtol(p, &end, 10);
			if (end == p)
				break;
			if (!process_is_tracked((pid_t)pid))
				found = true;
		}
	}
	closedir(d);
	return found;
}

int
bd_process_kill_tree(struct bd_process *proc, int sig)
{
	size_t n, i;
	struct proc_entry *v;
	bool *in;
	pid_t self = getpid();
	int killed = 0;
	bool grew = true;

	/*
	 * Once the main process has exited, anything it left either is still
	 * in its process group or was orphaned to us: when neither holds,
	 * the task is gone and the /proc walk below can be skipped.
	 */
	if (proc->exited && kill(-proc->pid, 0) == -1 && errno == ESRCH &&
	    !process_has_orphans())
		return 0;
	if (!proc->exited)
		kill(proc->pid, sig);
	kill(-proc->pid, sig);
	v = process_snapshot(&n);
	in = xcalloc(n ? n : 1, sizeof(bool));
	/* Seed: the task's session or group, and untracked orphans of ours. */
	for (i = 0; i < n; i++)
		in[i] = v[i].pid == proc->pid || v[i].sid == proc->pid ||
		    v[i].pgid == proc->pid ||
		    (v[i].ppid == self && !process_is_tracked(v[i].pid));
	/* Close over descendants (a grandchild that changed session). */
	while (grew) {
		grew = false;
		for (i = 0; i < n; i++) {
			if (in[i])
				continue;
			for (size_t j = 0; j < n; j++) {
				if (in[j] && v[j].pid == v[i].ppid) {
					in[i] = grew = true;
					break;
				}
			}
		}
	}
	for (i = 0; i < n; i++) {
		if (!in[i] || v[i].pid == self)
			continue;
		if (v[i].pid == proc->pid && proc->exited)
			continue; /* its pid may be reused already */
		if (kill(v[i].pid, sig) == 0)
			killed++;
	}
	free(in);
	free(v);
	return killed;
}

char *
bd_process_find_program(const char *argv0, const char *cwd, const char *path)
{
	int saw_eacces = 0;

	if (argv0[0] == '\0') {
		errno = ENOENT;
		return NULL;
	}
	if (strchr(argv0, '/') != NULL) {
		char *full = argv0[0] == '/' ? xstrdup(argv0) :
		    xasprintf("%s/%s", cwd, argv0);
		if (access(full, X_OK) == 0)
			return full;
		free(full);
		return NULL;
	}
	for (const char *p = path; p != NULL && *p != '\0'; ) {
		const char *colon = strchr(p, ':');
		size_t len = colon ? (size_t)(colon - p) : strlen(p);
		char *dir = len ? xstrndup(p, len) : xstrdup(cwd);
		char *full = xasprintf("%s/%s", dir, argv0);
		struct stat st;
		free(dir);
		if (stat(full, &st) == 0 && S_ISREG(st.st_mode)) {
			if (access(full, X_OK) == 0)
				return full;
			saw_eacces = 1;
		}
		free(full);
		p = colon ? colon + 1 : NULL;
	}
	errno = saw_eacces ? EACCES : ENOENT;
	return NULL;
}
