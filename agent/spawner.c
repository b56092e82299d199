/* SPDX-License-Identifier: MIT */
/*
 * The spawner (spawner.h).  batchd and the spawner share a SOCK_SEQPACKET
 * pair.  A request is one message: a header, the supervisor's command
 * line and environment as NUL-terminated strings, and the descriptors
 * (the report pipe first, then the hold fds) as SCM_RIGHTS.  The reply is
 * one message: the supervisor's pid or a negative errno, and its pidfd.
 * The spawner serves one request at a time, so replies come in the
 * order of the requests; batchd matches them (process.c).
 *
 * The spawner hands each request to an idle worker (a child forked ahead,
 * or one whose last task has ended, each on a socket pair of its own) and
 * answers with the worker's pid and pidfd.
 *
 * State: batchd's end of the pair, the spawner's pid, and whether it has
 * failed (no requests then; the replies already queued are still read);
 * in the spawner, its workers (pid, pidfd, its end of their pair, busy).
 */
#include "spawner.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd_supervise.h"
#include "log.h"
#include "procstat.h"
#include "xmalloc.h"

/* Descriptors in one request: the report pipe and the hold fds. */
#define SPAWNER_MAX_FDS 64
/* The largest request: the task's command line and environment. */
#define SPAWNER_MSG_MAX (4 * 1024 * 1024)

struct spawner_header {
	uint32_t argc;		/* strings of the command line */
	uint32_t skip;		/* of them, before bd_cmd_supervise()'s argv */
	uint32_t envc;		/* strings of the environment, after them */
};

extern char **environ;

static int spawner_fd = -1;
static pid_t spawner_pid = -1;
/* It failed (spawner_gone()): no more requests. */
static bool spawner_dead;

/*
 * In the spawner: its workers, children that each wait for a request on a
 * socket pair of their own, supervise that task and wait again
 * (spawner_worker_main()).  An idle one (a spare forked ahead, or one done
 * with its task) takes the next request; a busy one says "i" on its
 * socket once it is free again.  A worker the table has no room for exits
 * after its task.
 */
#define SPAWNER_MAX_WORKERS 64
/* Idle workers kept: as many starts as may come at once, at most. */
#define SPAWNER_MAX_IDLE 8

struct spawner_worker {
	pid_t pid;
	int pidfd;		/* opened at its fork, before any reaping */
	int sock;		/* the spawner's end of its pair */
	bool busy;		/* supervising a task */
	bool fresh;		/* has run no task: its pages are untouched */
};

static struct spawner_worker spawner_workers[SPAWNER_MAX_WORKERS];
static size_t spawner_nworkers;
/* A spare could not be made (no pair, fork or pidfd): none from then on,
 * rather than a fork and a kill for each try. */
static bool spawner_no_spares;

/* In the spawner: whether batchd has a controlling terminal. */
static bool spawner_has_tty;
/* In the spawner: the signals whose disposition is not the default. */
static int spawner_handled[NSIG];
static int spawner_nhandled;

/*
 * batchd's memory layout as /proc/self/stat has it (code, data, brk and
 * stack starts, environment), read before the spawner's fork, which keeps
 * it: the kernel takes a new command line area only with all of them
 * (PR_SET_MM_MAP).
 */
static struct prctl_mm_map spawner_mm;
static bool spawner_mm_known;

/*
 * Reads /proc/self/stat once: fills spawner_mm and returns how many
 * threads this process runs, or -1.
 */
static int
spawner_read_stat(void)
{
	unsigned long long f[BD_PROC_STAT_FIELDS];
	int last = bd_proc_stat(0, f);

	if (last < 20)
		return -1;
	if (last >= 51) {
		spawner_mm.start_code = f[26];
		spawner_mm.end_code = f[27];
		spawner_mm.start_stack = f[28];
		spawner_mm.start_data = f[45];
		spawner_mm.end_data = f[46];
		spawner_mm.start_brk = f[47];
		spawner_mm.env_start = f[50];
		spawner_mm.env_end = f[51];
		spawner_mm.exe_fd = (uint32_t)-1;
		spawner_mm_known = true;
	}
	return (int)f[20];
}

/*
 * Shows the supervisor's command line and environment (the strings from
 * start to end, then to env_end) in /proc/PID/cmdline and environ (ps,
 * and the tests that find supervisors), as an exec'd one would.  PR_SET_MM_MAP
 * needs no capability; the single-field calls need CAP_SYS_RESOURCE (and
 * the kernel checks arg_start <= arg_end after each, hence the order).
 */
static void
spawner_set_cmdline(const char *start, const char *end, const char *env_end)
{
	unsigned long s = (unsigned long)start, e = (unsigned long)end;

	if (spawner_mm_known) {
		struct prctl_mm_map m = spawner_mm;
		m.brk = (uint64_t)(uintptr_t)sbrk(0);
		m.arg_start = s;
		m.arg_end = e;
		/* /proc/PID/environ: the supervisor's, not batchd's. */
		m.env_start = e;
		m.env_end = (unsigned long)env_end;
		if (prctl(PR_SET_MM, PR_SET_MM_MAP, (unsigned long)&m,
		    sizeof(m), 0) == 0)
			return;
	}
	if (prctl(PR_SET_MM, PR_SET_MM_ARG_START, s, 0, 0) == 0) {
		(void)prctl(PR_SET_MM, PR_SET_MM_ARG_END, e, 0, 0);
		return;
	}
	if (prctl(PR_SET_MM, PR_SET_MM_ARG_END, e, 0, 0) == 0)
		(void)prctl(PR_SET_MM, PR_SET_MM_ARG_START, s, 0, 0);
}

/* Room for the most descriptors one message carries. */
union spawner_cmsg {
	char buf[CMSG_SPACE(sizeof(int) * SPAWNER_MAX_FDS)];
	struct cmsghdr align;
};

/*
 * Sends len bytes of data as one message, with nfds descriptors (at most
 * SPAWNER_MAX_FDS) as SCM_RIGHTS; flags as sendmsg's (MSG_DONTWAIT).  The
 * bytes sent, or -1 with errno.
 */
static ssize_t
spawner_send(int sock, const void *data, size_t len, const int *fds,
    size_t nfds, int flags)
{
	union spawner_cmsg u;
	struct iovec iov = { (void *)(uintptr_t)data, len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;
	ssize_t n;

	if (nfds > 0) {
		memset(&u, 0, sizeof(u));
		msg.msg_control = u.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	do
		n = sendmsg(sock, &msg, MSG_NOSIGNAL | flags);
	while (n == -1 && errno == EINTR);
	return n;
}

/*
 * Receives one message: up to len bytes into data and up to max (at most
 * SPAWNER_MAX_FDS) descriptors, close-on-exec, into fds, their number in
 * *nfds; *flags gets the message's flags (MSG_TRUNC, MSG_CTRUNC); how is
 * recvmsg's (MSG_DONTWAIT).  The bytes received (0 at the other end's
 * close), or -1 with errno.
 */
static ssize_t
spawner_recv(int sock, void *data, size_t len, int *fds, size_t max,
    size_t *nfds, int *flags, int how)
{
	union spawner_cmsg u;
	struct iovec iov = { data, len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
	    .msg_control = u.buf,
	    .msg_controllen = CMSG_SPACE(sizeof(int) * max) };
	struct cmsghdr *c;
	ssize_t n;

	*nfds = 0;
	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | how);
	while (n == -1 && errno == EINTR);
	if (n < 0)
		return n;
	for (c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k && *nfds < max; i++)
			memcpy(&fds[(*nfds)++], CMSG_DATA(c) + i * sizeof(int),
			    sizeof(int));
	}
	*flags = msg.msg_flags;
	return n;
}

/*
 * Away from a terminal's signals and reads: a session of its own.
 * Without a terminal (a service) a group of its own does that, and spares
 * the scheduler autogroup a session costs; the supervisor's own setsid()
 * then fails, as for any group leader.
 */
static void
spawner_own_group(void)
{
	if (spawner_has_tty)
		(void)setsid();
	else
		(void)setpgid(0, 0);
}

/* In a child of the spawner: the spawner's ends of the workers' pairs. */
static void
spawner_close_workers(void)
{
	for (size_t i = 0; i < spawner_nworkers; i++) {
		close(spawner_workers[i].sock);
		close(spawner_workers[i].pidfd);
	}
	spawner_nworkers = 0;
}

/*
 * In a child of the spawner, its session or group made: the descriptors
 * and signals that posix_spawn gave an exec'd supervisor, then the
 * supervisor itself.  With keep (a worker's end of its pair, moved just
 * above the hold fds) it returns the supervisor's status and whether
 * *reusable, this process free for another task; without, it exits.
 */
static int
spawner_supervise(char **argv, size_t skip, size_t argc, char **envp,
    int *fds, size_t nfds, int *keep, bool *reusable)
{
	static char *no_env[] = { NULL };
	int top = 3 + (int)nfds, null, rc, k;
	const char *args_end, *env_end;
	sigset_t none;

	/* Above their places first, so that no dup2 overwrites one still to
	 * come; then report pipe on 3, hold fds after it, keep after them,
	 * nothing else. */
	if (keep != NULL) {
		if ((k = fcntl(*keep, F_DUPFD_CLOEXEC, top)) == -1)
			_exit(127);
		close(*keep);
		*keep = k;
	}
	for (size_t i = 0; i < nfds; i++)
		if ((fds[i] = fcntl(fds[i], F_DUPFD, top)) == -1)
			_exit(127);
	for (size_t i = 0; i < nfds; i++)
		if (dup2(fds[i], 3 + (int)i) == -1)
			_exit(127);
	if (keep != NULL && *keep != top) {
		if (dup3(*keep, top, O_CLOEXEC) == -1)
			_exit(127);
		*keep = top;
	}
	if (close_range((unsigned)top + (keep != NULL), ~0U, 0) == -1)
		_exit(127);
	if ((null = open("/dev/null", O_RDWR)) == -1 ||
	    dup2(null, 0) == -1 || dup2(null, 1) == -1)
		_exit(127);
	if (null > 2)
		close(null);
	for (int i = 0; i < spawner_nhandled; i++)
		(void)signal(spawner_handled[i], SIG_DFL);
	/* A worker keeps what it has blocked (SIGCHLD; after a task, the
	 * supervisor's signals too): a kill request for its last task that
	 * comes now must wait for the supervisor's tag check, not end it.
	 * The supervisor drops what came before it took over. */
	if (keep == NULL) {
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
	}
	(void)prctl(PR_SET_NAME, "batchd-supervis", 0, 0, 0);
	args_end = env_end = argv[argc - 1] + strlen(argv[argc - 1]) + 1;
	for (char **e = envp; *e != NULL; e++)
		env_end = *e + strlen(*e) + 1;
	spawner_set_cmdline(argv[0], args_end, env_end);
	environ = envp;
	if (keep == NULL)
		_exit(bd_cmd_supervise((int)(argc - skip), argv + skip));
	rc = bd_cmd_supervise_kept((int)(argc - skip), argv + skip, *keep,
	    reusable);
	/* The request's strings are the caller's to free. */
	environ = no_env;
	return rc;
}

/* In a supervisor forked for a request the spawner took itself. */
static void __attribute__((noreturn))
spawner_child(int sock, int sigfd, const int go[2], char **argv, size_t skip,
    size_t argc, char **envp, int *fds, size_t nfds)
{
	char byte = 0;
	ssize_t n;

	close(sock);
	close(sigfd);
	/* Its own copy of the write end would keep the pipe from ending;
	 * the workers' ends would keep them from seeing the spawner's. */
	close(go[1]);
	spawner_close_workers();
	/* Nothing happens until batchd has this supervisor's pid and pidfd:
	 * a spawner that dies first (EOF) must leave nothing running, for
	 * batchd then execs a supervisor of its own. */
	do
		n = read(go[0], &byte, 1);
	while (n == -1 && errno == EINTR);
	if (n != 1 || byte != 'g')
		_exit(0);
	close(go[0]);
	spawner_own_group();
	(void)spawner_supervise(argv, skip, argc, envp, fds, nfds, NULL, NULL);
	_exit(127);
}

/*
 * Sends the reply: a pid or negative errno, and the pidfd when >= 0.
 * Whether it went.
 */
static bool
spawner_reply(int sock, int32_t status, int pidfd)
{
	return spawner_send(sock, &status, sizeof(status), &pidfd,
	    pidfd >= 0 ? 1 : 0, 0) == (ssize_t)sizeof(status);
}

/*
 * Splits a request's body into argv and envp (pointing into buf).
 * Returns 0 or -EINVAL.
 */
static int
spawner_parse(char *buf, size_t len, char ***argv, size_t *argc,
    size_t *skip, char ***envp)
{
	struct spawner_header h;
	char *p = buf + sizeof(h), *end = buf + len, **v;
	size_t n;

	if (len < sizeof(h))
		return -EINVAL;
	memcpy(&h, buf, sizeof(h));
	n = (size_t)h.argc + h.envc;
	if (h.argc < 2 || h.skip >= h.argc - 1 || n > len)
		return -EINVAL;
	v = xcalloc(n + 2, sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		char *nul = memchr(p, '\0', (size_t)(end - p));
		if (nul == NULL) {
			free(v);
			return -EINVAL;
		}
		/* argv, NULL, then envp, NULL */
		v[i < h.argc ? i : i + 1] = p;
		p = nul + 1;
	}
	*argv = v;
	*argc = h.argc;
	*skip = h.skip;
	*envp = v + h.argc + 1;
	return 0;
}

/*
 * Receives one request: its body in *buf and, parsed, in *argv and *envp
 * (the caller frees *buf and *argv), and its descriptors.  0; a negative
 * errno for a request to answer with it (-EAGAIN: none was there); or 1
 * when batchd has closed its end (or the socket failed).
 */
static int
spawner_take(int sock, char **buf, size_t *buf_len, char ***argv,
    size_t *argc, size_t *skip, char ***envp, int *fds, size_t *nfds)
{
	ssize_t len, n;
	int flags;

	*buf_len = 0;
	*buf = NULL;
	*argv = NULL;
	*nfds = 0;
	do
		len = recv(sock, NULL, 0, MSG_PEEK | MSG_TRUNC);
	while (len == -1 && errno == EINTR);
	if (len <= 0)
		return len == -1 && errno == EAGAIN ? -EAGAIN : 1;
	*buf = xmalloc((size_t)len + 1);
	if ((n = spawner_recv(sock, *buf, (size_t)len, fds, SPAWNER_MAX_FDS,
	    nfds, &flags, 0)) <= 0)
		return 1;
	if ((flags & (MSG_TRUNC | MSG_CTRUNC)) != 0 || *nfds == 0)
		return -EMSGSIZE;
	*buf_len = (size_t)n;
	return spawner_parse(*buf, (size_t)n, argv, argc, skip, envp);
}

/* What ps shows for a worker that waits. */
static void
spawner_name_idle(void)
{
	static const char name[] = "batchd-spare";

	(void)prctl(PR_SET_NAME, name, 0, 0, 0);
	spawner_set_cmdline(name, name + sizeof(name), name + sizeof(name));
}

/*
 * A worker's life.  Forked ahead of a request, it waits on its own socket
 * pair for the request the spawner hands it, then for the word to go
 * (sent once batchd has its pid), and becomes the supervisor: a task's
 * start waits for no fork (the spawner's fork and the new process's first
 * run were a tenth of a short task's cycle).  When the task is wholly done
 * it says so ("i") and waits for the next: the fork, the page faults of a
 * new process and its exit are then not paid per task at all.  The
 * spawner alone answers batchd, so replies keep the requests' order.  A
 * spawner that ends leaves the pair's end: the worker exits, having done
 * nothing more.
 */
static void __attribute__((noreturn))
spawner_worker_main(int sock, int sigfd, int mine)
{
	char **argv, **envp, *buf, go = 0;
	int fds[SPAWNER_MAX_FDS], rc;
	size_t nfds, argc = 0, skip = 0, len;
	bool reusable = false;
	ssize_t n;

	/* batchd's socket must end with the spawner: only it holds it. */
	close(sock);
	close(sigfd);
	spawner_close_workers();
	spawner_own_group();
	spawner_name_idle();
	for (;;) {
		while ((rc = spawner_take(mine, &buf, &len, &argv, &argc,
		    &skip, &envp, fds, &nfds)) == -EAGAIN)
			free(buf);
		if (rc != 0)
			_exit(0);
		do
			n = recv(mine, &go, 1, 0);
		while (n == -1 && errno == EINTR);
		if (n != 1 || go != 'g')
			_exit(0);
		rc = spawner_supervise(argv, skip, argc, envp, fds, nfds,
		    &mine, &reusable);
		if (rc != 0 || !reusable ||
		    send(mine, "i", 1, MSG_NOSIGNAL) != 1)
			_exit(rc);
		/* After "i": a worker named idle is one the spawner knows to
		 * be (the tests rely on it); before the free: its command
		 * line is in buf. */
		spawner_name_idle();
		free(argv);
		free(buf);
	}
}

/* Forgets worker i (gone, or let go): the table keeps no gaps. */
static void
spawner_worker_drop(size_t i)
{
	close(spawner_workers[i].sock);
	close(spawner_workers[i].pidfd);
	spawner_workers[i] = spawner_workers[--spawner_nworkers];
}

/* The idle worker to hand the next request to, or -1: one that has
 * supervised before (its pages are in) ahead of a fresh spare. */
static int
spawner_idle_worker(void)
{
	int found = -1;

	for (size_t i = 0; i < spawner_nworkers; i++) {
		if (spawner_workers[i].busy)
			continue;
		if (!spawner_workers[i].fresh)
			return (int)i;
		found = (int)i;
	}
	return found;
}

static size_t
spawner_idle_count(void)
{
	size_t n = 0;

	for (size_t i = 0; i < spawner_nworkers; i++)
		n += !spawner_workers[i].busy;
	return n;
}

/* Forks a spare worker; without one (no pair, fork or pidfd) the spawner
 * forks for each request as it comes, from then on. */
static void
spawner_fork_spare(int sock, int sigfd)
{
	struct spawner_worker *w;
	int sv[2], size = SPAWNER_MSG_MAX;
	pid_t pid;

	if (spawner_no_spares || spawner_nworkers == SPAWNER_MAX_WORKERS)
		return;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		spawner_no_spares = true;
		return;
	}
	if ((pid = _Fork()) == 0) {
		close(sv[0]);
		spawner_worker_main(sock, sigfd, sv[1]);
	}
	close(sv[1]);
	if (pid == -1) {
		close(sv[0]);
		spawner_no_spares = true;
		return;
	}
	/* Room for the largest request, as on batchd's socket. */
	if (setsockopt(sv[0], SOL_SOCKET, SO_SNDBUFFORCE, &size,
	    sizeof(size)) == -1)
		(void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &size,
		    sizeof(size));
	w = &spawner_workers[spawner_nworkers++];
	w->pid = pid;
	w->sock = sv[0];
	w->busy = false;
	w->fresh = true;
	/* Before any reaping: it names this child. */
	if ((w->pidfd = pidfd_open(pid, 0)) == -1) {
		kill(pid, SIGKILL);
		close(w->sock);
		spawner_nworkers--;
		spawner_no_spares = true;
	}
}

/*
 * Hands a request (its body and descriptors) to an idle worker, answers
 * batchd with its pid and pidfd, then tells it to go.  False without an
 * idle worker that takes it (the caller forks instead).
 */
static bool
spawner_hand_to_worker(int sock, const char *buf, size_t len, const int *fds,
    size_t nfds)
{
	struct spawner_worker *w;
	int i;

	while ((i = spawner_idle_worker()) != -1) {
		w = &spawner_workers[i];
		if (spawner_send(w->sock, buf, len, fds, nfds, 0) ==
		    (ssize_t)len)
			break;
		/* Too big for the pair: this one request is forked for. */
		if (errno == EMSGSIZE || errno == ENOBUFS)
			return false;
		kill(w->pid, SIGKILL);
		spawner_worker_drop((size_t)i);
	}
	if (i == -1)
		return false;
	w->busy = true;
	w->fresh = false;
	/* Without batchd's answer the worker sees its pair end, and exits. */
	/* Waits a little at most: the worker reads the request at once, but
	 * a request that filled the pair's buffer (unprivileged, where it
	 * stays small) needs that read first.  A worker that still cannot
	 * take the word (stopped) must not hold up every later request: it
	 * is ended, and batchd sees a supervisor that died before it began. */
	if (!spawner_reply(sock, w->pid, w->pidfd)) {
		spawner_worker_drop((size_t)i);
		return true;
	}
	if (send(w->sock, "g", 1, MSG_NOSIGNAL | MSG_DONTWAIT) != 1) {
		struct pollfd p = { w->sock, POLLOUT, 0 };
		if (poll(&p, 1, 1000) != 1 || send(w->sock, "g", 1,
		    MSG_NOSIGNAL | MSG_DONTWAIT) != 1) {
			kill(w->pid, SIGKILL);
			spawner_worker_drop((size_t)i);
		}
	}
	return true;
}

/*
 * Worker i's socket is readable: "i", it is free again (kept, unless
 * enough are idle already: then let go, and it exits), or its end (it
 * died; the reap follows).
 */
static void
spawner_on_worker(size_t i)
{
	struct spawner_worker *w = &spawner_workers[i];
	char byte = 0;
	ssize_t n;

	do
		n = recv(w->sock, &byte, 1, MSG_DONTWAIT);
	while (n == -1 && errno == EINTR);
	if (n == -1 && errno == EAGAIN)
		return;
	if (n == 1 && byte == 'i' && w->busy &&
	    spawner_idle_count() < SPAWNER_MAX_IDLE) {
		w->busy = false;
		return;
	}
	if (n == 1)
		kill(w->pid, SIGKILL);	/* not a worker's word: end it */
	spawner_worker_drop(i);
}

/*
 * Forks a supervisor for a request (without an idle worker) and answers
 * batchd; the child starts once batchd has the answer: without it, the
 * child sees the pipe's end and exits having done nothing.
 */
static void
spawner_fork_for(int sock, int sigfd, char **argv, size_t skip, size_t argc,
    char **envp, int *fds, size_t nfds)
{
	int go[2], pidfd = -1;
	int32_t status;
	pid_t pid;

	if (pipe2(go, O_CLOEXEC) == -1) {
		(void)spawner_reply(sock, -errno, -1);
		return;
	}
	/* _Fork: no atfork handlers, which are batchd's libraries' (libuv's
	 * would replace descriptors it no longer owns). */
	if ((pid = _Fork()) == 0)
		spawner_child(sock, sigfd, go, argv, skip, argc, envp, fds,
		    nfds);
	close(go[0]);
	/* The pidfd before any reaping: it names this child. */
	if (pid == -1)
		status = -errno;
	else if ((pidfd = pidfd_open(pid, 0)) == -1)
		status = -errno;
	else
		status = (int32_t)pid;
	if (spawner_reply(sock, status, pidfd) && status > 0)
		(void)!write(go[1], "g", 1);
	close(go[1]);
	if (pidfd != -1)
		close(pidfd);
}

/*
 * Serves one request: hands it to an idle worker, else forks for it; a request
 * that cannot be served is answered with its error.  Returns -1 when
 * batchd has closed its end (or the socket failed), else 0.
 */
static int
spawner_serve(int sock, int sigfd)
{
	char **argv = NULL, **envp = NULL, *buf = NULL;
	int fds[SPAWNER_MAX_FDS], rc;
	size_t nfds = 0, argc = 0, skip = 0, len;

	rc = spawner_take(sock, &buf, &len, &argv, &argc, &skip, &envp, fds,
	    &nfds);
	if (rc == 0 && !spawner_hand_to_worker(sock, buf, len, fds, nfds))
		spawner_fork_for(sock, sigfd, argv, skip, argc, envp, fds,
		    nfds);
	else if (rc < 0 && rc != -EAGAIN)
		(void)spawner_reply(sock, rc, -1);
	for (size_t i = 0; i < nfds; i++)
		close(fds[i]);
	free(argv);
	free(buf);
	return rc == 1 ? -1 : 0;
}

/*
 * The spawner's life: serve requests from sock one at a time and reap
 * the supervisors as they exit, until batchd closes its end.
 */
static void __attribute__((noreturn))
spawner_main(int sock)
{
	static const int ignored[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT,
	    SIGUSR1, SIGUSR2, SIGPIPE };
	sigset_t mask;
	int sigfd, fd;

	/* Nothing of batchd's but the socket and the standard streams. */
	if (sock > 3)
		(void)close_range(3, (unsigned)sock - 1, 0);
	(void)close_range((unsigned)sock + 1, ~0U, 0);
	(void)prctl(PR_SET_NAME, "batchd-spawner", 0, 0, 0);
	if ((fd = open("/dev/tty", O_RDONLY | O_NOCTTY | O_CLOEXEC)) != -1) {
		spawner_has_tty = true;
		close(fd);
	}
	/* It ends when batchd closes its end, not on a terminal's or a
	 * service manager's signals, which are batchd's to act on. */
	for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
		(void)signal(ignored[i], SIG_IGN);
	/* What each supervisor resets, found once. */
	for (int sig = 1; sig < NSIG; sig++) {
		struct sigaction sa;
		if (sigaction(sig, NULL, &sa) == 0 &&
		    sa.sa_handler != SIG_DFL)
			spawner_handled[spawner_nhandled++] = sig;
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	if ((sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) == -1)
		_exit(1);
	for (;;) {
		struct pollfd p[2 + SPAWNER_MAX_WORKERS];
		pid_t pids[SPAWNER_MAX_WORKERS];
		struct signalfd_siginfo si;
		size_t n = 0;
		pid_t pid;

		/* Ahead of the next request, off the path of this one. */
		if (spawner_idle_worker() == -1)
			spawner_fork_spare(sock, sigfd);
		p[0] = (struct pollfd){ sock, POLLIN, 0 };
		p[1] = (struct pollfd){ sigfd, POLLIN, 0 };
		for (; n < spawner_nworkers; n++) {
			p[2 + n] = (struct pollfd){ spawner_workers[n].sock,
			    POLLIN, 0 };
			pids[n] = spawner_workers[n].pid;
		}
		if (poll(p, 2 + n, -1) == -1) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		/* Workers first: one free again takes the request below.
		 * From the last, as a drop moves the last into its place. */
		while (n-- > 0)
			if (p[2 + n].revents != 0 && n < spawner_nworkers &&
			    spawner_workers[n].pid == pids[n])
				spawner_on_worker(n);
		if (p[1].revents != 0) {
			while (read(sigfd, &si, sizeof(si)) > 0)
				;
			/* A worker that died: forgotten (a spare is forked
			 * again when none is idle). */
			while ((pid = waitpid(-1, NULL, WNOHANG)) > 0)
				for (size_t i = 0; i < spawner_nworkers; i++)
					if (spawner_workers[i].pid == pid) {
						spawner_worker_drop(i);
						break;
					}
		}
		if (p[0].revents != 0 && spawner_serve(sock, sigfd) < 0)
			_exit(0);
	}
}

int
bd_spawner_start(void)
{
	int sv[2], fd, size = SPAWNER_MSG_MAX, rc;
	pid_t pid;

	if (spawner_fd != -1)
		return 0;
	/* fork() copies only the calling thread: another could hold a lock
	 * (malloc's) that the copy would never see released. */
	if (spawner_read_stat() != 1)
		return -EBUSY;
	/* batchd watches supervisors that are not its children by pidfd. */
	if ((fd = pidfd_open(getpid(), 0)) == -1)
		return -errno;
	close(fd);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1)
		return -errno;
	/* Nothing buffered may be written twice, by both processes. */
	fflush(NULL);
	if ((pid = fork()) == -1) {
		rc = -errno;
		close(sv[0]);
		close(sv[1]);
		return rc;
	}
	if (pid == 0) {
		close(sv[0]);
		spawner_main(sv[1]);
	}
	close(sv[1]);
	/* Room for a large environment in one message. */
	if (setsockopt(sv[0], SOL_SOCKET, SO_SNDBUFFORCE, &size,
	    sizeof(size)) == -1)
		(void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &size,
		    sizeof(size));
	spawner_fd = sv[0];
	spawner_pid = pid;
	spawner_dead = false;
	return 0;
}

bool
bd_spawner_running(void)
{
	return spawner_fd != -1 && !spawner_dead;
}

void
bd_spawner_stop(void)
{
	if (spawner_fd == -1)
		return;
	close(spawner_fd);
	spawner_fd = -1;
	spawner_pid = -1;
}

/*
 * The spawner failed: say so once.  No request is sent from now on, but
 * the socket stays open until the caller has read the replies already
 * queued on it (bd_spawner_read_reply()): each names a supervisor that
 * runs.
 */
static int
spawner_gone(const char *what, int err)
{
	if (!spawner_dead)
		log_warnx("spawner (pid %d): %s: %s; task supervisors are "
		    "started by exec from now on", (int)spawner_pid, what,
		    err != 0 ? strerror(err) : "it has exited");
	spawner_dead = true;
	return -ENOTCONN;
}

/* The request's body: header, command line, environment. */
static char *
spawner_request(char *const *argv, size_t skip, char *const *envp,
    size_t *len)
{
	struct spawner_header h = { 0, (uint32_t)skip, 0 };
	size_t n = sizeof(h), off;
	char *buf;

	for (; argv[h.argc] != NULL; h.argc++)
		n += strlen(argv[h.argc]) + 1;
	for (; envp != NULL && envp[h.envc] != NULL; h.envc++)
		n += strlen(envp[h.envc]) + 1;
	if (n > SPAWNER_MSG_MAX)
		return NULL;
	buf = xmalloc(n);
	memcpy(buf, &h, sizeof(h));
	off = sizeof(h);
	for (size_t i = 0; i < h.argc + h.envc; i++) {
		const char *s = i < h.argc ? argv[i] : envp[i - h.argc];
		size_t sl = strlen(s) + 1;
		memcpy(buf + off, s, sl);
		off += sl;
	}
	*len = n;
	return buf;
}

int
bd_spawner_fd(void)
{
	return spawner_fd;
}

int
bd_spawner_send(char *const *argv, size_t skip, char *const *envp,
    int report_fd, const int *hold_fds, size_t n_hold_fds)
{
	int fds[SPAWNER_MAX_FDS];
	size_t len, nfds = 1 + n_hold_fds;
	ssize_t n;
	char *buf;

	if (spawner_fd == -1 || spawner_dead)
		return -ENOTCONN;
	if (nfds > SPAWNER_MAX_FDS ||
	    (buf = spawner_request(argv, skip, envp, &len)) == NULL)
		return -EMSGSIZE;
	fds[0] = report_fd;
	if (n_hold_fds > 0)
		memcpy(fds + 1, hold_fds, sizeof(int) * n_hold_fds);
	/* Never waits: a full socket buffer (two slots' requests are a few
	 * kB in 4 MB) is this request's problem only. */
	n = spawner_send(spawner_fd, buf, len, fds, nfds, MSG_DONTWAIT);
	free(buf);
	if (n == -1)
		return errno == EMSGSIZE || errno == ENOBUFS ||
		    errno == EAGAIN ? -EMSGSIZE :
		    spawner_gone("cannot send it a request", errno);
	return 0;
}

int
bd_spawner_read_reply(bool wait, int *status, int *pidfd)
{
	int32_t st;
	size_t got;
	ssize_t n;
	int flags;

	*pidfd = -1;
	if (spawner_fd == -1)
		return -ENOTCONN;
	/* The socket may be non-blocking (a uv_poll_t makes it so).  A
	 * spawner that died with requests unread leaves ECONNRESET, once,
	 * before the replies it did send: those name running supervisors. */
	while ((n = spawner_recv(spawner_fd, &st, sizeof(st), pidfd, 1, &got,
	    &flags, MSG_DONTWAIT)) == -1 && (errno == EAGAIN ||
	    errno == ECONNRESET)) {
		struct pollfd pfd = { spawner_fd, POLLIN, 0 };
		if (errno == ECONNRESET)
			continue;
		if (!wait)
			return 0;
		if (poll(&pfd, 1, -1) == -1 && errno != EINTR)
			break;
	}
	if (n != (ssize_t)sizeof(st)) {
		if (*pidfd != -1)
			close(*pidfd);
		*pidfd = -1;
		return spawner_gone("no reply", n == -1 ? errno : 0);
	}
	if (st >= 0 && *pidfd == -1)
		return spawner_gone("a reply without a pidfd", EPROTO);
	if (st < 0 && *pidfd != -1) {
		close(*pidfd);
		*pidfd = -1;
	}
	*status = (int)st;
	return 1;
}
