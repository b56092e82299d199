/* SPDX-License-Identifier: MIT */
/*
 * Starting, watching and adopting task supervisors; see process.h for the
 * model and supervisor.h for the supervisor's side.
 *
 * State: the path of this program, a list of live processes, and one
 * uv_signal_t for SIGCHLD that reaps every child (supervisors and any
 * orphan the subreaper inherits).  A started process's outcome is read
 * from its report pipe when the pipe ends (the supervisor closes it after
 * the outcome, or dies); its pidfd is watched with a uv_poll_t too, and an
 * adopted process's only by that, its outcome then read from its state
 * file.  A uv_timer_t delivers the exit of a supervisor that ended
 * while batchd was away.  bd_process_free() closes both handles and frees
 * in the last close callback.
 *
 * A supervisor the spawner forks for a process started without waiting
 * (opts->started) is asked for, and the loop goes on: the process exists
 * before its supervisor's pid is known (pid 0, pidfd -1, starting), and
 * its request waits in a FIFO (process_requests) that matches the
 * spawner's replies, which come in request order.  The reply brings the
 * pid and pidfd; only then is the report pipe watched, so the first
 * line is never acted on before them.  A blocking spawn queues its own
 * request in the same FIFO and reads replies until its own has come.
 * Should the spawner die, the requests it never answered exec their
 * supervisors instead, as a spawn does without a spawner (no supervisor
 * ran for them: spawner.h).  A queued request holds a reference to its
 * process, so that one freed before its reply lives until the reply is
 * read and its pidfd closed.
 */
#include "process.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "log.h"
#include "spawner.h"
#include "supervisor.h"
#include "xmalloc.h"

/* The descriptor the supervisor reports on (cmd_supervise --report-fd). */
#define PROCESS_REPORT_FD 3

struct bd_process {
	pid_t pid;		/* the supervisor's */
	pid_t task_pid;		/* the command's */
	int pidfd;
	int report_fd;		/* our end of the report pipe, or -1 */
	bool child;		/* ours to reap (not adopted) */
	bool reaped, exited;
	char *state_path;
	struct bd_supervisor_record rec;
	char report[BD_SUPERVISOR_STATE_MAX + 1];
	size_t report_len;
	bd_process_exit_cb exit_cb;
	void *arg;
	/* Started without waiting (opts->started): until the first report
	   line, starting is set, report_poll watches the pipe and a signal
	   for the tree waits in pending_sig.  Forked by the spawner, it has
	   no pid nor pidfd, and report_poll waits, until the reply. */
	bd_process_start_cb start_cb;
	bool starting, report_polled;
	int start_err;		/* for start_cb, from process_on_start_failed() */
	bool freed;		/* bd_process_free() was called */
	int pending_sig;
	/* Its supervisor's tag (--tag): a kill request names the task, for
	   a reused supervisor may be on its next one (supervisor.h); 0 for
	   an adopted one, whose tag is not known. */
	uint32_t tag;
	uv_poll_t report_poll;
	uv_poll_t poll;
	uv_timer_t defer;
	int open_handles;	/* and one for a request in process_requests */
	struct bd_process *next; /* in process_live until the exit */
};

/*
 * A request sent to the spawner whose reply has not been read.  For an
 * exec should the spawner die, it keeps what bd_process_spawn() was given
 * (argv and envp copied, the supervisor's end of the report pipe, the
 * hold fds duplicated).  A blocking spawn's own (proc NULL, on its stack)
 * keeps nothing and gets the reply in status and pidfd.
 */
struct process_request {
	struct bd_process *proc;
	char **argv;
	char **envp;
	int report_w;
	int *hold_fds;
	size_t n_hold_fds;
	int status, pidfd;
	struct process_request *next;
};

static void process_ended(struct bd_process *p);
static void process_on_close(uv_handle_t *h);
static void process_spawner_drain_all(void);
static void process_spawner_unwatch(void);
static void process_unref(struct bd_process *p);

static uv_loop_t *process_loop;
static uv_signal_t process_sigchld;
static bool process_ready;
static struct bd_process *process_live;
/* The supervisor's program and the words before its options: either
 * batchd-supervise, or this program with "supervise". */
static char *process_supervisor;
static bool process_supervisor_is_self;
/* Whether bd_process_init() starts the spawner (bd_process_use_spawner()). */
static bool process_want_spawner = true;
/* Requests sent to the spawner, oldest first, and the watch on its
 * socket (active while there are some). */
static struct process_request *process_requests;
static struct process_request **process_requests_tail = &process_requests;
static uv_poll_t process_spawner_poll;
static bool process_spawner_polled;
/* The tag of the last supervisor started. */
static uint32_t process_last_tag;

/* Reaps every exited child; tracked supervisors are marked reaped. */
static void
process_on_sigchld(uv_signal_t *handle, int signum)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (struct bd_process *p = process_live; p != NULL;
		    p = p->next) {
			if (!p->child || p->pid != pid)
				continue;
			p->reaped = true;
			/* Without a pidfd this is how its end is seen (once
			 * its start is known: process_on_report). */
			if (p->pidfd == -1 && !p->starting)
				process_ended(p);
			break;
		}
	}
}

/* This program's path, as the kernel (or valgrind) knows it. */
static char *
process_find_self(void)
{
	char buf[PATH_MAX];
	const char *deleted = " (deleted)";
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
	size_t dl = strlen(deleted);

	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	/* An upgrade replaced the binary: the new one is the supervisor. */
	if ((size_t)n > dl && strcmp(buf + n - dl, deleted) == 0)
		buf[n - dl] = '\0';
	return xstrdup(buf);
}

/*
 * The supervisor program: batchd-supervise beside this program (a build
 * tree, or both installed in one directory), else the installed one
 * (BD_SUPERVISOR_PATH), else this program itself as `batchd supervise`
 * (and a unit test's own binary, which dispatches "supervise").  The small
 * program starts faster than batchd, which matters at every task's start.
 */
static char *
process_find_supervisor(bool *is_self)
{
	char *self = process_find_self(), *slash, *path;

	*is_self = false;
	if (self == NULL)
		return NULL;
	if ((slash = strrchr(self, '/')) != NULL) {
		path = xasprintf("%.*s/batchd-supervise", (int)(slash - self),
		    self);
		if (strcmp(path, self) != 0 && access(path, X_OK) == 0) {
			free(self);
			return path;
		}
		free(path);
	}
#if defined(BD_SUPERVISOR_PATH) && defined(BD_BATCHD_PATH)
	/* Only the installed batchd uses the installed supervisor: another
	 * build must not run an older one. */
	if (strcmp(self, BD_BATCHD_PATH) == 0 &&
	    access(BD_SUPERVISOR_PATH, X_OK) == 0) {
		free(self);
		return xstrdup(BD_SUPERVISOR_PATH);
	}
#endif
	*is_self = true;
	return self;
}

int
bd_process_init(uv_loop_t *loop)
{
	int rc;

	if (process_ready)
		return 0;
	/* Orphans come to us should a supervisor die before its task. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) == -1)
		return -errno;
	if (process_supervisor == NULL && (process_supervisor =
	    process_find_supervisor(&process_supervisor_is_self)) == NULL)
		return -ENOENT;
	if ((rc = uv_signal_init(loop, &process_sigchld)) < 0)
		return rc;
	if ((rc = uv_signal_start(&process_sigchld, process_on_sigchld,
	    SIGCHLD)) < 0)
		return rc;
	if (process_want_spawner && (rc = bd_spawner_start()) < 0)
		log_info("process: task supervisors are started by exec: no "
		    "spawner (%s)", rc == -EBUSY ? "batchd runs threads already" :
		    strerror(-rc));
	process_loop = loop;
	process_ready = true;
	return 0;
}

void
bd_process_use_spawner(bool use)
{
	process_want_spawner = use;
}

void
bd_process_shutdown(void)
{
	/* The empty task cgroups kept for reuse end with the last task. */
	bd_cgroup_drop_spares();
	/* No supervisor forked is left unknown. */
	process_spawner_drain_all();
	process_spawner_unwatch();
	bd_spawner_stop();
	if (!process_ready)
		return;
	uv_signal_stop(&process_sigchld);
	uv_close((uv_handle_t *)&process_sigchld, NULL);
	process_ready = false;
	free(process_supervisor);
	process_supervisor = NULL;
}

/* Takes p off the live list and runs its exit callback, once. */
static void
process_deliver(struct bd_process *p)
{
	struct bd_process **pp;

	if (p->exited)
		return;
	p->exited = true;
	for (pp = &process_live; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	p->next = NULL;
	if (p->rec.state == BD_SUPERVISOR_EXITED)
		p->exit_cb(p, p->rec.term_signal ? 0 : p->rec.exit_code,
		    p->rec.term_signal, p->arg);
	else
		p->exit_cb(p, 0, SIGKILL, p->arg);
}

/*
 * Whether p's supervisor may be past this task's start although its first
 * line is unread: the line is there (written whole, once).  A supervisor
 * the spawner reuses may then be on a later task already, so a plain
 * SIGKILL to it is for this task only while this says no.
 */
static bool
process_past_start(const struct bd_process *p)
{
	int n = 0;

	return p->report_len > 0 || (p->report_fd != -1 &&
	    ioctl(p->report_fd, FIONREAD, &n) == 0 && n > 0);
}

/*
 * Asks p's supervisor (through pidfd, else its pid) to send sig to the
 * task's tree: SIGRTMIN with the value, tagged for p's task.  Whether
 * it went.
 */
static bool
process_send_tagged(const struct bd_process *p, int pidfd, int sig)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	si.si_signo = SIGRTMIN;
	si.si_code = SI_QUEUE;
	si.si_pid = getpid();
	si.si_uid = getuid();
	si.si_value.sival_int = BD_SUPERVISOR_KILL_VALUE(sig, p->tag);
	if (pidfd != -1)
		return pidfd_send_signal(pidfd, SIGRTMIN, &si, 0) == 0;
	return sigqueue(p->pid, SIGRTMIN, si.si_value) == 0;
}

/*
 * A SIGKILL for p's supervisor while p starts; one past the start gets
 * the tagged request instead, which it ignores if on a later task.  Not
 * covered: a supervisor that writes its line, ends the task and takes
 * the next between the check and the kill (a preemption of batchd there,
 * and a task shorter than it).
 */
static void
process_kill_starting(const struct bd_process *p, int pidfd)
{
	if (process_past_start(p))
		(void)process_send_tagged(p, pidfd, SIGKILL);
	else
		(void)(pidfd != -1 ? pidfd_send_signal(pidfd, SIGKILL, NULL,
		    0) : kill(p->pid, SIGKILL));
}

/* Reads what the report pipe holds; true at its end. */
static bool
process_read_report(struct bd_process *p)
{
	ssize_t n;

	while (p->report_fd != -1) {
		if (p->report_len >= sizeof(p->report) - 1)
			return true; /* too long: parsed (and refused) as is */
		n = read(p->report_fd, p->report + p->report_len,
		    sizeof(p->report) - 1 - p->report_len);
		if (n > 0) {
			p->report_len += (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		return n == 0 || errno != EAGAIN;
	}
	return true;
}

/* The supervisor has exited: find its outcome and deliver. */
static void
process_ended(struct bd_process *p)
{
	char *cause = NULL;
	int rc, wstatus;

	if (p->child && !p->reaped && waitpid(p->pid, &wstatus, WNOHANG) ==
	    p->pid)
		p->reaped = true;
	if (p->pidfd != -1)
		uv_poll_stop(&p->poll);
	if (p->report_polled) {
		/* Closed now, before the pipe is closed under it. */
		uv_close((uv_handle_t *)&p->report_poll, process_on_close);
		p->report_polled = false;
	}
	if (p->report_fd != -1) {
		(void)process_read_report(p);
		p->report[p->report_len] = '\0';
		close(p->report_fd);
		p->report_fd = -1;
		if (p->report_len > 0 && bd_supervisor_record_parse(p->report,
		    p->report_len, &p->rec, &cause) < 0) {
			log_warnx("process: task %d: supervisor's report: %s",
			    (int)p->task_pid, cause);
			free(cause);
			cause = NULL;
			p->rec.state = BD_SUPERVISOR_NONE;
		}
	}
	if (p->rec.state != BD_SUPERVISOR_EXITED && p->state_path != NULL &&
	    (rc = bd_supervisor_read_state(p->state_path, &p->rec,
	    &cause)) < 0) {
		log_warnx("process: task %d: %s", (int)p->task_pid, cause);
		free(cause);
	}
	if (p->rec.state != BD_SUPERVISOR_EXITED) {
		/* Killed before it could say how the task ended: end what
		 * may be left of the task, which is now orphaned. */
		log_warnx("process: task %d: its supervisor (pid %d) died "
		    "without an outcome; ending the task", (int)p->task_pid,
		    (int)p->pid);
		(void)kill(-p->task_pid, SIGKILL);
		p->rec.state = BD_SUPERVISOR_NONE;
	}
	process_deliver(p);
}

/*
 * The report pipe after the first line: the supervisor closes its end
 * once the outcome is written, before its own exit (the teardown of a
 * process, which the pidfd waits for, is a tenth of a short task's
 * turn-around); it also ends if the supervisor dies.
 */
static void
process_on_report_end(uv_poll_t *h, int status, int events)
{
	struct bd_process *p = h->data;

	if (process_read_report(p))
		process_ended(p);
}

static void
process_on_pidfd(uv_poll_t *h, int status, int events)
{
	struct bd_process *p = h->data;

	uv_poll_stop(&p->poll);
	process_ended(p);
}

static void
process_on_defer(uv_timer_t *t)
{
	process_deliver(t->data);
}

/*
 * Without pidfds (valgrind does not know the call, nor do kernels before
 * 5.3) an adopted supervisor is looked at twice a second instead.
 */
static void
process_on_watch(uv_timer_t *t)
{
	struct bd_process *p = t->data;

	if (bd_supervisor_alive(&p->rec))
		return;
	uv_timer_stop(&p->defer);
	process_ended(p);
}

/* Gives p its pidfd (-1: none) and the handle that watches it. */
static void
process_set_pidfd(struct bd_process *p, int pidfd)
{
	int rc;

	p->pidfd = pidfd;
	if (pidfd == -1)
		return;
	if ((rc = uv_poll_init(process_loop, &p->poll, pidfd)) < 0)
		fatalx("process: cannot watch a pidfd: %s", uv_strerror(rc));
	p->poll.data = p;
	p->open_handles++;
}

/* A new process record, on the live list, with its handles. */
static struct bd_process *
process_new(pid_t pid, int pidfd, bd_process_exit_cb exit_cb, void *arg,
    bool watch)
{
	struct bd_process *p = xcalloc(1, sizeof(*p));

	p->pid = pid;
	p->report_fd = -1;
	p->exit_cb = exit_cb;
	p->arg = arg;
	uv_timer_init(process_loop, &p->defer);
	p->defer.data = p;
	p->open_handles = 1;
	process_set_pidfd(p, pidfd);
	if (pidfd != -1 && watch)
		uv_poll_start(&p->poll, UV_READABLE, process_on_pidfd);
	p->next = process_live;
	process_live = p;
	return p;
}

/* The supervisor's command line for opts. */
static char **
process_supervisor_argv(const struct bd_process_options *opts, uint32_t tag)
{
	size_t n = 0, cap = 32, argc = 0;
	char **v;

	while (opts->argv[argc] != NULL)
		argc++;
	cap += argc;
	v = xcalloc(cap, sizeof(char *));
#define ARG(s) (v[n++] = xstrdup(s))
#define ARGF(...) (v[n++] = xasprintf(__VA_ARGS__))
	ARG(process_supervisor);
	if (process_supervisor_is_self)
		ARG("supervise");
	ARG("--stdout");
	ARG(opts->stdout_path);
	ARG("--stderr");
	ARG(opts->stderr_path);
	ARG("--cwd");
	ARG(opts->cwd);
	ARG("--report-fd");
	ARGF("%d", PROCESS_REPORT_FD);
	ARG("--tag");
	ARGF("%u", (unsigned)tag);
	ARG("--grace");
	ARGF("%lld", (long long)(opts->grace_ms > 0 ? opts->grace_ms : 5000));
	if (opts->output_cap > 0) {
		ARG("--stdout-cap");
		ARGF("%lld", (long long)opts->output_cap);
	}
	if (opts->stderr_cap > 0 || opts->output_cap > 0) {
		ARG("--stderr-cap");
		ARGF("%lld", (long long)(opts->stderr_cap > 0 ?
		    opts->stderr_cap : opts->output_cap));
	}
	if (opts->state_path != NULL) {
		ARG("--state");
		ARG(opts->state_path);
	}
	if (opts->cgroup != NULL && bd_cgroup_name(opts->cgroup) != NULL) {
		ARG("--cgroup");
		ARG(bd_cgroup_name(opts->cgroup));
	}
	if (opts->identity != NULL) {
		const struct bd_process_identity *id = opts->identity;
		char *groups = xstrdup("");
		ARG("--uid");
		ARGF("%u", (unsigned)id->uid);
		ARG("--gid");
		ARGF("%u", (unsigned)id->gid);
		for (size_t i = 0; i < id->ngroups; i++) {
			char *g = xasprintf("%s%s%u", groups, i ? "," : "",
			    (unsigned)id->groups[i]);
			free(groups);
			groups = g;
		}
		ARG("--groups");
		v[n++] = groups;
	}
	ARG("--");
	ARG(opts->file);
	for (size_t i = 0; i < argc; i++)
		ARG(opts->argv[i]);
#undef ARG
#undef ARGF
	v[n] = NULL;
	return v;
}

static void
process_argv_free(char **v)
{
	for (size_t i = 0; v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

/* Parses the supervisor's first line: "ok PID START" or "error ERRNO". */
static int
process_parse_first(const char *line, pid_t *task_pid)
{
	int v;

	if (sscanf(line, "ok %d", &v) == 1 && v > 0) {
		*task_pid = (pid_t)v;
		return 0;
	}
	if (sscanf(line, "error %d", &v) == 1 && v < 0)
		return v;
	return -EIO;
}

/* Takes p off the live list: it will not be delivered. */
static void
process_unlist(struct bd_process *p)
{
	for (struct bd_process **pp = &process_live; *pp != NULL;
	    pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	p->next = NULL;
}

/*
 * The report pipe of a process started without waiting: its first line
 * says whether the command runs.  What follows it (the outcome, when the
 * command was quick) stays in p->report for process_ended().
 */
static void
process_on_report(uv_poll_t *h, int status, int events)
{
	struct bd_process *p = h->data;
	bool at_end = process_read_report(p);
	char *nl = memchr(p->report, '\n', p->report_len);
	pid_t task_pid = 0;
	int rc = -EIO;

	if (nl == NULL && !at_end && p->report_len < sizeof(p->report) - 1)
		return;
	p->starting = false;
	if (nl != NULL) {
		size_t len = (size_t)(nl - p->report) + 1;
		*nl = '\0';
		rc = process_parse_first(p->report, &task_pid);
		memmove(p->report, p->report + len, p->report_len - len);
		p->report_len -= len;
	}
	if (rc < 0) {
		uv_close((uv_handle_t *)&p->report_poll, process_on_close);
		p->report_polled = false;
		/* The supervisor exits at once; the SIGCHLD watcher reaps it. */
		p->exited = true;
		process_unlist(p);
		p->start_cb(p, rc, p->arg);
		return;
	}
	p->task_pid = task_pid;
	if (p->pidfd != -1)
		uv_poll_start(&p->poll, UV_READABLE, process_on_pidfd);
	if (p->pending_sig != 0)
		(void)bd_process_kill_tree(p, p->pending_sig);
	/* The pipe's end is the outcome's (process_on_report_end()). */
	if (!at_end)
		uv_poll_start(&p->report_poll, UV_READABLE,
		    process_on_report_end);
	p->start_cb(p, 0, p->arg);
	if (p->exited || p->freed)
		return;
	/* The end may be here already: after a quick command, or (without
	 * a pidfd) reaped before the start was known. */
	if (at_end || (p->pidfd == -1 && p->reaped))
		process_ended(p);
}

/* Reads the supervisor's first line: "ok PID START" or "error ERRNO". */
static int
process_first_report(int fd, pid_t *task_pid)
{
	char line[128];
	size_t len = 0;
	ssize_t n;

	while (len < sizeof(line) - 1) {
		n = read(fd, line + len, 1);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EIO; /* the supervisor died first */
		if (line[len++] == '\n')
			break;
	}
	line[len] = '\0';
	return process_parse_first(line, task_pid);
}

/*
 * Execs the supervisor (argv, envp) as a child, with report_fd as its
 * report descriptor and the hold fds after it.  0 or a positive errno, as
 * posix_spawn.
 */
static int
process_exec(char *const *argv, char *const *envp, int report_fd,
    const int *hold_fds, size_t n_hold_fds, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t all, none;
	int rc, hold;

	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, report_fd, PROCESS_REPORT_FD);
	/* Above every source, so that no dup2 overwrites one still to come;
	 * dup2 clears close-on-exec, and the supervisor keeps them from the
	 * task (it marks every other descriptor close-on-exec). */
	hold = report_fd > PROCESS_REPORT_FD ? report_fd : PROCESS_REPORT_FD;
	for (size_t i = 0; i < n_hold_fds; i++)
		if (hold_fds[i] > hold)
			hold = hold_fds[i];
	for (size_t i = 0; i < n_hold_fds; i++)
		posix_spawn_file_actions_adddup2(&fa, hold_fds[i],
		    hold + 1 + (int)i);
	/* The supervisor starts with default dispositions and nothing
	 * blocked, whatever batchd ignores or blocks itself (SIGPIPE,
	 * SIGCHLD), and passes them on to the task. */
	sigfillset(&all);
	sigemptyset(&none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID |
	    POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
	rc = posix_spawn(pid, process_supervisor, &fa, &attr, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	return rc;
}

/* Watches the report pipe of p with cb. */
static void
process_watch_report(struct bd_process *p, uv_poll_cb cb)
{
	int rc;

	if ((rc = uv_poll_init(process_loop, &p->report_poll,
	    p->report_fd)) < 0)
		fatalx("process: cannot watch a report pipe: %s",
		    uv_strerror(rc));
	p->report_poll.data = p;
	p->report_polled = true;
	p->open_handles++;
	uv_poll_start(&p->report_poll, UV_READABLE, cb);
}

/* A start that failed after bd_process_spawn() returned, from the loop. */
static void
process_on_start_failed(uv_timer_t *t)
{
	struct bd_process *p = t->data;

	p->start_cb(p, p->start_err, p->arg);
}

/* A copy of a NULL-terminated string vector (NULL for NULL). */
static char **
process_strv_dup(char *const *v)
{
	size_t n = 0;
	char **c;

	if (v == NULL)
		return NULL;
	while (v[n] != NULL)
		n++;
	c = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		c[i] = xstrdup(v[i]);
	return c;
}

/* Frees a request of a process (not a blocking spawn's own). */
static void
process_request_free(struct process_request *q)
{
	if (q->argv != NULL)
		process_argv_free(q->argv);
	if (q->envp != NULL)
		process_argv_free(q->envp);
	if (q->report_w != -1)
		close(q->report_w);
	for (size_t i = 0; i < q->n_hold_fds; i++)
		close(q->hold_fds[i]);
	free(q->hold_fds);
	free(q);
}

/*
 * The spawner's reply to q: status, the supervisor's pid or a negative
 * errno (-ENOTCONN: the spawner is gone and never served it), and its
 * pidfd.  Runs no callback of the caller's (a blocking spawn reads replies
 * too): a start that fails is delivered by p->defer.
 */
static void
process_on_reply(struct process_request *q, int status, int pidfd)
{
	struct bd_process *p = q->proc;
	pid_t pid;
	int rc;

	if (p == NULL) {
		q->status = status;
		q->pidfd = pidfd;
		return;
	}
	if (p->freed) {
		/*
		 * Nobody watches this supervisor, but it is left to run, as
		 * bd_process_free() leaves any: it ends its task's tree
		 * itself, writes the outcome to its state file (the next
		 * batchd adopts from it) and is reaped by the spawner or, as
		 * an orphan, by us.  Only a SIGKILL asked for before the free
		 * is still sent, as bd_process_kill_tree() does while a
		 * process starts.  One never served is not exec'd.
		 */
		if (pidfd != -1) {
			if (p->pending_sig == SIGKILL)
				process_kill_starting(p, pidfd);
			close(pidfd);
		}
		process_request_free(q);
		process_unref(p);
		return;
	}
	if (status == -ENOTCONN || status == -EMSGSIZE) {
		/* Not forked: exec it, as a spawn without a spawner does. */
		if ((rc = process_exec(q->argv, q->envp, q->report_w,
		    q->hold_fds, q->n_hold_fds, &pid)) != 0)
			status = -rc;
		else {
			status = (int)pid;
			p->child = true;
			if ((pidfd = pidfd_open(pid, 0)) != -1)
				(void)fcntl(pidfd, F_SETFD, FD_CLOEXEC);
		}
	}
	/* The supervisor's end of the pipe is its own now: the pipe ends
	 * when the supervisor is done with it. */
	process_request_free(q);
	process_unref(p);
	if (status < 0) {
		p->start_err = status;
		p->starting = false;
		p->exited = true;
		process_unlist(p);
		close(p->report_fd);
		p->report_fd = -1;
		uv_timer_start(&p->defer, process_on_start_failed, 0, 0);
		return;
	}
	p->pid = (pid_t)status;
	process_set_pidfd(p, pidfd);
	/* A SIGKILL asked for while the pid was unknown; any other signal
	 * waits for the command (process_on_report()). */
	if (p->pending_sig == SIGKILL)
		process_kill_starting(p, pidfd);
	process_watch_report(p, process_on_report);
}

/* Stops watching the spawner's socket (before it is closed). */
static void
process_spawner_unwatch(void)
{
	if (!process_spawner_polled)
		return;
	uv_close((uv_handle_t *)&process_spawner_poll, NULL);
	process_spawner_polled = false;
}

/*
 * Reads the spawner's replies and hands each to the oldest request.  With
 * until (a request in the FIFO), blocks until that one has its reply;
 * without, reads what is there.  Once the spawner is gone, every request
 * left gets -ENOTCONN.
 */
static void
process_spawner_drain(const struct process_request *until)
{
	struct process_request *q;
	int rc, status = 0, pidfd = -1;
	bool mine;

	while ((q = process_requests) != NULL) {
		rc = bd_spawner_read_reply(until != NULL, &status, &pidfd);
		if (rc == 0)
			break;
		if (rc < 0) {
			status = -ENOTCONN;
			pidfd = -1;
			if (bd_spawner_fd() != -1) {
				process_spawner_unwatch();
				bd_spawner_stop();
			}
		}
		if ((process_requests = q->next) == NULL)
			process_requests_tail = &process_requests;
		q->next = NULL;
		mine = q == until;
		process_on_reply(q, status, pidfd);
		/* The requests after it are answered by the loop, unless
		 * there is no spawner left to answer. */
		if (mine && bd_spawner_fd() != -1)
			break;
	}
	if (process_requests == NULL && process_spawner_polled)
		uv_poll_stop(&process_spawner_poll);
}

/* Reads the replies to every request sent (blocks until they come). */
static void
process_spawner_drain_all(void)
{
	while (process_requests != NULL)
		process_spawner_drain(process_requests);
}

static void
process_on_spawner(uv_poll_t *h, int status, int events)
{
	process_spawner_drain(NULL);
}

/* Appends q to the requests and watches for its reply. */
static void
process_spawner_queue(struct process_request *q)
{
	int rc;

	*process_requests_tail = q;
	process_requests_tail = &q->next;
	if (!process_spawner_polled) {
		if ((rc = uv_poll_init(process_loop, &process_spawner_poll,
		    bd_spawner_fd())) < 0)
			fatalx("process: cannot watch the spawner: %s",
			    uv_strerror(rc));
		process_spawner_polled = true;
	}
	uv_poll_start(&process_spawner_poll, UV_READABLE, process_on_spawner);
}

/*
 * Asks the spawner for a supervisor without waiting for its reply: argv
 * is the supervisor's command line and report_w its end of the report
 * pipe, both taken on success.  0 and *out, a request to queue, or a
 * negative errno (from bd_spawner_send(), or a dup) after which the
 * caller still owns argv and report_w.
 */
static int
process_request_send(const struct bd_process_options *opts, char **argv,
    int report_w, struct process_request **out)
{
	struct process_request *q = xcalloc(1, sizeof(*q));
	int rc;

	q->report_w = -1;
	/* Before the request goes: the caller's are borrowed for the
	 * call, and an exec instead (process_on_reply()) needs them. */
	if (opts->n_hold_fds > 0) {
		q->hold_fds = xcalloc(opts->n_hold_fds, sizeof(int));
		for (; q->n_hold_fds < opts->n_hold_fds; q->n_hold_fds++)
			if ((q->hold_fds[q->n_hold_fds] = fcntl(
			    opts->hold_fds[q->n_hold_fds], F_DUPFD_CLOEXEC,
			    0)) == -1) {
				rc = -errno;
				process_request_free(q);
				return rc;
			}
	}
	if ((rc = bd_spawner_send(argv, process_supervisor_is_self ? 1 : 0,
	    opts->envp, report_w, opts->hold_fds, opts->n_hold_fds)) < 0) {
		process_request_free(q);
		return rc;
	}
	q->argv = argv;
	q->envp = process_strv_dup(opts->envp);
	q->report_w = report_w;
	q->pidfd = -1;
	*out = q;
	return 0;
}

/*
 * Asks the spawner for a supervisor and waits for its reply.  Returns its
 * pid and sets *pidfd, or a negative errno: -ENOTCONN, -EMSGSIZE when the
 * caller is to exec one instead.
 */
static pid_t
process_spawn_now(char **argv, const struct bd_process_options *opts,
    int report_w, int *pidfd)
{
	struct process_request own = { .report_w = -1, .pidfd = -1 };
	int rc;

	*pidfd = -1;
	if ((rc = bd_spawner_send(argv, process_supervisor_is_self ? 1 : 0,
	    opts->envp, report_w, opts->hold_fds, opts->n_hold_fds)) < 0)
		return rc;
	process_spawner_queue(&own);
	process_spawner_drain(&own);
	*pidfd = own.pidfd;
	return own.status;
}

int
bd_process_spawn(const struct bd_process_options *opts,
    bd_process_exit_cb exit_cb, void *arg, struct bd_process **out)
{
	pid_t pid, task_pid = 0;
	int rc, rp[2], pidfd = -1;
	struct bd_process *p;
	bool child;
	char **argv;
	uint32_t tag;

	if (!process_ready)
		return -EINVAL;
	if (pipe2(rp, O_CLOEXEC) == -1)
		return -errno;
	if (rp[1] == PROCESS_REPORT_FD) {
		/* dup2 onto itself would keep close-on-exec. */
		int w = fcntl(rp[1], F_DUPFD_CLOEXEC, PROCESS_REPORT_FD + 1);
		close(rp[1]);
		if ((rp[1] = w) == -1) {
			rc = -errno;
			close(rp[0]);
			return rc;
		}
	}
	tag = process_last_tag = process_last_tag % BD_SUPERVISOR_TAG_MAX + 1;
	argv = process_supervisor_argv(opts, tag);
	if (opts->started != NULL && bd_spawner_running()) {
		/* Forked by the spawner while the loop goes on: the process
		 * exists before its supervisor's pid (process_on_reply()). */
		struct process_request *q = NULL;
		if ((rc = process_request_send(opts, argv, rp[1], &q)) == 0) {
			(void)fcntl(rp[0], F_SETFL, O_NONBLOCK);
			p = process_new(0, -1, exit_cb, arg, false);
			p->tag = tag;
			p->report_fd = rp[0];
			p->starting = true;
			p->start_cb = opts->started;
			if (opts->state_path != NULL)
				p->state_path = xstrdup(opts->state_path);
			q->proc = p;
			p->open_handles++;	/* q's */
			process_spawner_queue(q);
			*out = p;
			return 0;
		}
		if (rc != -ENOTCONN && rc != -EMSGSIZE) {
			process_argv_free(argv);
			close(rp[0]);
			close(rp[1]);
			return rc;
		}
		pid = rc;
	} else
		pid = process_spawn_now(argv, opts, rp[1], &pidfd);
	/* The spawner is gone: what it left unanswered is exec'd first,
	 * then its end is closed. */
	if (pid == -ENOTCONN) {
		process_spawner_drain_all();
		process_spawner_unwatch();
		bd_spawner_stop();
	}
	/* Forked by the spawner, else exec'd (spawner.h). */
	child = pid == -ENOTCONN || pid == -EMSGSIZE;
	if (child)
		rc = process_exec(argv, opts->envp, rp[1], opts->hold_fds,
		    opts->n_hold_fds, &pid);
	else
		rc = pid < 0 ? (int)-pid : 0;
	process_argv_free(argv);
	close(rp[1]);
	if (rc != 0) {
		close(rp[0]);
		return -rc;
	}
	if (opts->started == NULL &&
	    (rc = process_first_report(rp[0], &task_pid)) < 0) {
		close(rp[0]);
		if (child)
			(void)waitpid(pid, NULL, 0);
		else
			close(pidfd);
		return rc;
	}
	/* Our child cannot be reused before we reap it: the pidfd is its.
	 * Without pidfds the SIGCHLD watcher sees its end. */
	if (child && (pidfd = pidfd_open(pid, 0)) != -1)
		(void)fcntl(pidfd, F_SETFD, FD_CLOEXEC);
	(void)fcntl(rp[0], F_SETFL, O_NONBLOCK);
	p = process_new(pid, pidfd, exit_cb, arg, opts->started == NULL);
	p->tag = tag;
	p->child = child;
	p->task_pid = task_pid;
	p->report_fd = rp[0];
	if (opts->state_path != NULL)
		p->state_path = xstrdup(opts->state_path);
	if (opts->started != NULL) {
		p->starting = true;
		p->start_cb = opts->started;
		process_watch_report(p, process_on_report);
	} else if (!child)
		/* Its end is the outcome's: a supervisor the spawner reuses
		 * does not exit. */
		process_watch_report(p, process_on_report_end);
	*out = p;
	return 0;
}

int
bd_process_adopt(const char *state_path, bd_process_exit_cb exit_cb,
    void *arg, struct bd_process **out)
{
	struct bd_supervisor_record rec;
	char *cause = NULL;
	int rc, pidfd = -1;

	if (!process_ready)
		return -EINVAL;
	if ((rc = bd_supervisor_read_state(state_path, &rec, &cause)) < 0) {
		log_warnx("process: %s", cause);
		free(cause);
		return rc;
	}
	if (rec.state == BD_SUPERVISOR_NONE)
		return -ENOENT;
	if (rec.state == BD_SUPERVISOR_RUNNING) {
		/*
		 * Open the pidfd first, then check the start time: if the
		 * process it names has the recorded start time, the pidfd is
		 * the supervisor's, whatever happens to the pid later.
		 */
		pidfd = pidfd_open(rec.pid, 0);
		if (pidfd == -1 && errno == ENOSYS && bd_supervisor_alive(&rec)) {
			struct bd_process *p = process_new(rec.pid, -1,
			    exit_cb, arg, true);
			p->task_pid = rec.task_pid;
			p->state_path = xstrdup(state_path);
			p->rec = rec;
			uv_timer_start(&p->defer, process_on_watch, 500, 500);
			*out = p;
			return 0;
		}
		if (pidfd == -1 || !bd_supervisor_alive(&rec)) {
			if (pidfd != -1)
				close(pidfd);
			/* It may have finished between the two reads. */
			if (bd_supervisor_read_state(state_path, &rec,
			    NULL) < 0 || rec.state != BD_SUPERVISOR_EXITED)
				return -ESRCH;
			pidfd = -1;
		}
	}
	struct bd_process *p = process_new(rec.pid, pidfd, exit_cb, arg,
	    true);
	p->task_pid = rec.task_pid;
	p->state_path = xstrdup(state_path);
	p->rec = rec;
	if (pidfd == -1)
		uv_timer_start(&p->defer, process_on_defer, 0, 0);
	else
		(void)fcntl(pidfd, F_SETFD, FD_CLOEXEC);
	*out = p;
	return 0;
}

pid_t
bd_process_pid(const struct bd_process *proc)
{
	return proc->task_pid;
}

const struct bd_supervisor_record *
bd_process_record(const struct bd_process *proc)
{
	return &proc->rec;
}

/* Drops one of p's references (a handle, a request); frees at the last. */
static void
process_unref(struct bd_process *p)
{
	if (--p->open_handles > 0)
		return;
	if (p->pidfd != -1)
		close(p->pidfd);
	if (p->report_fd != -1)
		close(p->report_fd);
	free(p->state_path);
	free(p);
}

static void
process_on_close(uv_handle_t *h)
{
	process_unref(h->data);
}

void
bd_process_free(struct bd_process *proc)
{
	if (proc == NULL)
		return;
	proc->freed = true;
	/* Off the list, should it be freed before its end (or its start). */
	process_unlist(proc);
	uv_close((uv_handle_t *)&proc->defer, process_on_close);
	if (proc->pidfd != -1)
		uv_close((uv_handle_t *)&proc->poll, process_on_close);
	if (proc->report_polled)
		uv_close((uv_handle_t *)&proc->report_poll, process_on_close);
	proc->report_polled = false;
}

int
bd_process_kill_tree(struct bd_process *proc, int sig)
{
	if (proc->exited)
		return 0;
	/* Without a pidfd, a reaped child's pid may be someone else's now. */
	if (proc->child && proc->reaped && proc->pidfd == -1)
		return 0;
	if (proc->starting) {
		/* Sent once the command runs (process_on_report).  SIGKILL
		 * also ends a supervisor stuck before it (a hung file
		 * system): its start then fails. */
		proc->pending_sig = sig;
		/* Before the spawner's reply there is no pid yet: the reply
		 * sends it (process_on_reply()). */
		if (sig == SIGKILL && (proc->pidfd != -1 || proc->pid > 0))
			process_kill_starting(proc, proc->pidfd);
		return 1;
	}
	/* The supervisor sends sig on to the tree (supervisor.h).  No
	 * pidfd: a child not reaped yet still holds its pid; an adopted one
	 * is checked by its start time first. */
	if (proc->pidfd == -1 && !proc->child &&
	    !bd_supervisor_alive(&proc->rec))
		return 0;
	return process_send_tagged(proc, proc->pidfd, sig);
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
