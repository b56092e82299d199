/* SPDX-License-Identifier: MIT */
/*
 * The per-task supervisor (see supervisor.h for what it promises).
 *
 * One process, one thread, one poll() loop over a signalfd and the two
 * output pipes.  States:
 *
 *   RUNNING -(command exits)-> DRAINING -(pipes at EOF)-> write outcome
 *      \-(SIGTERM)-> ENDING (tree got SIGTERM; SIGKILL at the deadline)
 *
 * When the command exits, whatever it left behind is killed (its cgroup
 * when it has one, else its process group and every process below the
 * supervisor, which as a subreaper inherits the task's orphans) and the
 * pipes are drained to their end.  Output past a stream's cap is spliced
 * into /dev/null, so a task that writes without end neither blocks nor
 * costs a copy.
 */
#include "supervisor.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/close_range.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "clock.h"
#include "error.h"
#include "fsutil.h"
#include "json_field.h"
#include "log.h"
#include "procstat.h"
#include "xmalloc.h"

/* How long the pipes may stay open once the tree is gone (an escaped
 * writer that holds them); then the outcome is written anyway. */
#define SUPERVISOR_DRAIN_MS 10000

struct sv_stream {
	const char *name;	/* "stdout", for the note */
	int rfd;		/* read end; -1 at EOF */
	int file_fd;
	int64_t cap, written;
	bool capped;
	bool can_splice;
};

struct sv {
	const struct bd_supervisor_options *o;
	struct bd_cgroup *cg;
	pid_t task_pid;
	bool task_exited;
	int task_status;
	int64_t kill_at;	/* monotonic ms of the SIGKILL after a SIGTERM */
	int64_t drain_until;	/* monotonic ms; 0 while the command runs */
	int devnull;
	int state_fd;		/* the state file (supervisor_open_state()) */
	struct sv_stream out, err;
	struct bd_supervisor_record rec;
	/* What the processes reaped for this task used (wait4): a process
	   that supervises again must not count its last task's. */
	int64_t user_us, system_us, max_rss_kb;
};

/* ---- state file ------------------------------------------------------- */

/* Reads of a state file that does not parse before it counts as damaged. */
#define SUPERVISOR_STATE_TRIES 3

/*
 * The state letter and start time of process pid, from one read of
 * /proc/PID/stat.  0, -ESRCH (no such process) or a negative errno.
 */
static int
supervisor_proc_stat(pid_t pid, char *state, uint64_t *start_time)
{
	unsigned long long f[BD_PROC_STAT_FIELDS];
	int last = bd_proc_stat(pid, f);

	if (last < 0)
		return last;
	if (last < 22)
		return -EINVAL;
	*state = (char)f[3];
	*start_time = f[22];
	return 0;
}

int
bd_supervisor_start_time(pid_t pid, uint64_t *out)
{
	char state;

	return supervisor_proc_stat(pid, &state, out);
}

char *
bd_supervisor_record_format(const struct bd_supervisor_record *r)
{
	/* Integers and fixed words only: printed directly (cJSON prints a
	 * number with "%1.15g" and reads it back with sscanf, twice per
	 * task in every supervisor). */
	if (r->state != BD_SUPERVISOR_EXITED)
		return xasprintf("{\"version\":%d,\"state\":\"running\","
		    "\"pid\":%d,\"startTime\":%" PRIu64 ",\"taskPid\":%d,"
		    "\"startMs\":%" PRId64 "}\n", BD_SUPERVISOR_STATE_VERSION,
		    (int)r->pid, r->start_time, (int)r->task_pid, r->start_ms);
	return xasprintf("{\"version\":%d,\"state\":\"exited\","
	    "\"pid\":%d,\"startTime\":%" PRIu64 ",\"taskPid\":%d,"
	    "\"startMs\":%" PRId64 ",\"endMs\":%" PRId64 ",\"exitCode\":%d,"
	    "\"signal\":%d,\"userCpuUs\":%" PRId64 ",\"systemCpuUs\":%" PRId64
	    ",\"maxRssKb\":%" PRId64 ",\"stdoutCapped\":%s,"
	    "\"stderrCapped\":%s}\n", BD_SUPERVISOR_STATE_VERSION,
	    (int)r->pid, r->start_time, (int)r->task_pid, r->start_ms,
	    r->end_ms, r->exit_code, r->term_signal, r->user_cpu_us,
	    r->system_cpu_us, r->max_rss_kb, r->stdout_capped ? "true" :
	    "false", r->stderr_capped ? "true" : "false");
}

int
bd_supervisor_record_parse(const char *text, size_t len,
    struct bd_supervisor_record *r, char **cause)
{
	static const char *const fields[] = { "version", "state", "pid",
	    "startTime", "taskPid", "startMs", "endMs", "exitCode", "signal",
	    "userCpuUs", "systemCpuUs", "maxRssKb", "stdoutCapped",
	    "stderrCapped", NULL };
	static const struct bd_json_enum states[] = {
		{ "running", BD_SUPERVISOR_RUNNING },
		{ "exited", BD_SUPERVISOR_EXITED },
		{ NULL, 0 },
	};
	const int req = BD_JSON_REQUIRED;
	cJSON *o = NULL;
	int64_t v, pid, tpid, st, ver;
	int state, rc;
	bool exited;

	memset(r, 0, sizeof(*r));
	if (len > BD_SUPERVISOR_STATE_MAX)
		return bd_json_fail(cause, BD_ETOOBIG, NULL, NULL,
		    "a supervisor record is at most %d bytes",
		    BD_SUPERVISOR_STATE_MAX);
	if ((rc = bd_json_parse(text, len, &o, cause)) < 0)
		return rc;
	if ((rc = bd_json_check_fields(o, "", fields, NULL, NULL, NULL,
	    cause)) < 0 ||
	    (rc = bd_json_get_int(o, "", "version", req, 1,
	    BD_SUPERVISOR_STATE_VERSION, &ver, cause)) < 0 ||
	    (rc = bd_json_get_enum(o, "", "state", req, states, &state,
	    cause)) < 0 ||
	    (rc = bd_json_get_int(o, "", "pid", req, 1, INT_MAX, &pid,
	    cause)) < 0 ||
	    (rc = bd_json_get_int(o, "", "startTime", req, 0, INT64_MAX, &st,
	    cause)) < 0 ||
	    (rc = bd_json_get_int(o, "", "taskPid", req, 1, INT_MAX, &tpid,
	    cause)) < 0 ||
	    (rc = bd_json_get_int(o, "", "startMs", req, 0, INT64_MAX,
	    &r->start_ms, cause)) < 0)
		goto out;
	r->state = (enum bd_supervisor_state)state;
	r->pid = (pid_t)pid;
	r->task_pid = (pid_t)tpid;
	r->start_time = (uint64_t)st;
	exited = r->state == BD_SUPERVISOR_EXITED;
	if ((rc = bd_json_get_int(o, "", "endMs", exited ? req : 0, 0,
	    INT64_MAX, &r->end_ms, cause)) < 0 ||
	    (rc = bd_json_get_int(o, "", "exitCode", exited ? req : 0, 0, 255,
	    &v, cause)) < 0)
		goto out;
	r->exit_code = (int)v;
	if ((rc = bd_json_get_int(o, "", "signal", exited ? req : 0, 0, 64,
	    &v, cause)) < 0)
		goto out;
	r->term_signal = (int)v;
	if ((rc = bd_json_get_int(o, "", "userCpuUs", 0, 0, INT64_MAX,
	    &r->user_cpu_us, cause)) < 0 ||
	    (rc = bd_json_get_int(o, "", "systemCpuUs", 0, 0, INT64_MAX,
	    &r->system_cpu_us, cause)) < 0 ||
	    (rc = bd_json_get_int(o, "", "maxRssKb", 0, 0, INT64_MAX,
	    &r->max_rss_kb, cause)) < 0 ||
	    (rc = bd_json_get_bool(o, "", "stdoutCapped", 0,
	    &r->stdout_capped, cause)) < 0 ||
	    (rc = bd_json_get_bool(o, "", "stderrCapped", 0,
	    &r->stderr_capped, cause)) < 0)
		goto out;
	rc = 0;
out:
	cJSON_Delete(o);
	return rc < 0 ? rc : 0;
}

/* Reads the state slot (the first BD_SUPERVISOR_STATE_MAX bytes) of the
 * file at path into *data, without its blank padding. */
static int
supervisor_read_slot(const char *path, char **data, size_t *len)
{
	char *buf = xmalloc(BD_SUPERVISOR_STATE_MAX);
	ssize_t n;
	int fd, rc = 0;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		free(buf);
		return -errno;
	}
	if ((n = pread(fd, buf, BD_SUPERVISOR_STATE_MAX, 0)) == -1)
		rc = -errno;
	close(fd);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\n'))
		n--;
	*data = buf;
	*len = (size_t)n;
	return 0;
}

int
bd_supervisor_read_state(const char *path, struct bd_supervisor_record *r,
    char **cause)
{
	char *data = NULL;
	size_t len = 0;
	int rc;

	/* The outcome is written over the running record in place
	 * (supervisor_write_state()): a read in the middle of that write
	 * does not parse, and the next one finds it done. */
	for (int tries = 0; ; tries++) {
		memset(r, 0, sizeof(*r));
		rc = supervisor_read_slot(path, &data, &len);
		if (rc == -ENOENT || (rc == 0 && len == 0)) {
			free(data);
			r->state = BD_SUPERVISOR_NONE;
			return 0;
		}
		if (rc < 0) {
			if (cause != NULL)
				*cause = xasprintf("%s: %s", path,
				    bd_strerror(rc));
			return rc;
		}
		rc = bd_supervisor_record_parse(data, len, r,
		    tries < SUPERVISOR_STATE_TRIES - 1 ? NULL : cause);
		free(data);
		if (rc == 0 || tries == SUPERVISOR_STATE_TRIES - 1)
			break;
		nanosleep(&(struct timespec){ 0, 2 * 1000 * 1000 }, NULL);
	}
	if (rc < 0 && cause != NULL) {
		char *c = xasprintf("%s: %s", path, *cause);
		free(*cause);
		*cause = c;
	}
	return rc;
}

bool
bd_supervisor_alive(const struct bd_supervisor_record *r)
{
	uint64_t st;
	char state;

	/* A supervisor that was killed and is not reaped yet (its parent,
	 * the batchd that died, left it to an init that may be slow or never
	 * reap) is a zombie: gone, with no outcome. */
	return r->state == BD_SUPERVISOR_RUNNING &&
	    supervisor_proc_stat(r->pid, &state, &st) == 0 &&
	    st == r->start_time && state != 'Z' && state != 'X';
}

/*
 * Opens the state file once, before the command starts, and keeps it: a
 * batchd that restarts and gives up the record meanwhile gets no new file
 * of that name from us.  0 (also without a state file) or -errno.
 */
static int
supervisor_open_state(struct sv *s)
{
	if (s->o->state_path == NULL || s->state_fd != -1)
		return 0;
	s->state_fd = open(s->o->state_path, O_WRONLY | O_CREAT | O_CLOEXEC |
	    O_NOFOLLOW, 0600);
	return s->state_fd == -1 ? -errno : 0;
}

/*
 * Writes the record into the state file's slot: its first
 * BD_SUPERVISOR_STATE_MAX bytes, padded with spaces to a newline, in one
 * pwrite() of one page, so that a supervisor killed in the middle leaves
 * the old record or the new one, never a mix.  The file is batchd's
 * assignment record (adopt.h), made before the supervisor starts with a
 * blank slot, or one of its own made here; it stays open for the outcome.
 * Writing in place also spares a rename: on ext4 a rename over a file
 * writes the new file's data out at once (auto_da_alloc).  A reader that
 * catches a write half done reads again (bd_supervisor_read_state()).
 * Neither record is fsync'd: the file has to outlive batchd, not the
 * machine, whose crash ends the supervisor too and whose tasks then run
 * again from the queue.
 */
static int
supervisor_write_state(struct sv *s)
{
	char slot[BD_SUPERVISOR_STATE_MAX], *text;
	size_t len;
	ssize_t n;
	int rc = 0;

	if (s->o->state_path == NULL)
		return 0;
	text = bd_supervisor_record_format(&s->rec);
	len = strlen(text);	/* with its newline */
	if (len > sizeof(slot)) {
		free(text);
		return -EOVERFLOW;
	}
	memcpy(slot, text, len - 1);
	memset(slot + len - 1, ' ', sizeof(slot) - len);
	slot[sizeof(slot) - 1] = '\n';
	free(text);
	if ((rc = supervisor_open_state(s)) < 0)
		return rc;
	if ((n = pwrite(s->state_fd, slot, sizeof(slot), 0)) !=
	    (ssize_t)sizeof(slot))
		rc = n == -1 ? -errno : -EIO;
	return rc;
}

/* ---- the task's tree ------------------------------------------------- */

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL	/* Linux 5.7 */
#endif

/* The kernel's struct clone_args up to its cgroup member (Linux 5.7). */
struct supervisor_clone_args {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal;
	uint64_t stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};

static bool supervisor_reap_quietly(struct sv *s);

struct sv_proc {
	pid_t pid, ppid;
	bool zombie;
};

/* pid, ppid and state of every process, from /proc. */
static struct sv_proc *
supervisor_snapshot(size_t *count)
{
	struct sv_proc *v = NULL;
	size_t n = 0, cap = 0;
	DIR *d = opendir("/proc");
	struct dirent *de;

	*count = 0;
	if (d == NULL)
		return NULL;
	while ((de = readdir(d)) != NULL) {
		unsigned long long f[BD_PROC_STAT_FIELDS];
		struct sv_proc e;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		e.pid = (pid_t)atoi(de->d_name);
		if (bd_proc_stat(e.pid, f) < 4)
			continue;	/* gone meanwhile */
		e.ppid = (pid_t)f[4];
		e.zombie = f[3] == 'Z' || f[3] == 'X';
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

/*
 * Sends sig to every live process below the supervisor: the task's tree,
 * orphans included, since the supervisor is their subreaper.  Returns how
 * many were signalled.
 */
static int
supervisor_sweep(int sig)
{
	size_t n, i;
	struct sv_proc *v = supervisor_snapshot(&n);
	bool *in = xcalloc(n ? n : 1, sizeof(bool)), grew = true;
	pid_t self = getpid();
	int killed = 0;

	for (i = 0; i < n; i++)
		in[i] = v[i].ppid == self;
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
	for (i = 0; i < n; i++)
		if (in[i] && !v[i].zombie && kill(v[i].pid, sig) == 0)
			killed++;
	free(in);
	free(v);
	return killed;
}

/*
 * Whether the supervisor has any child left (zombies included).  As the
 * subreaper of the task's tree, it has none exactly when nothing of the
 * tree lives: the topmost live process of any branch is its child.
 */
static bool
supervisor_has_children(void)
{
	char path[64], buf[16];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/children",
	    (int)getpid());
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return true; /* cannot tell: assume the worst */
	n = read(fd, buf, sizeof(buf));
	close(fd);
	return n != 0;
}

/* Sends sig to the task's whole tree. */
static void
supervisor_kill_tree(struct sv *s, int sig)
{
	if (s->cg != NULL)
		(void)bd_cgroup_signal(s->cg, sig);
	/* The command's process group (it may be a zombie by now, which
	 * keeps its group id from being reused). */
	(void)kill(-s->task_pid, sig);
	if (sig != SIGKILL) {
		(void)supervisor_sweep(sig);
		return;
	}
	/* Most tasks leave nothing: then the /proc walk can be skipped. */
	(void)supervisor_reap_quietly(s);
	if (!supervisor_has_children())
		return;
	/* Forks may race a sweep: sweep until nothing is left to kill. */
	for (int i = 0; i < 100 && supervisor_sweep(SIGKILL) > 0; i++)
		;
}

/* ---- output ----------------------------------------------------------- */

static void
supervisor_stream_close(struct sv_stream *st)
{
	if (st->rfd != -1)
		close(st->rfd);
	st->rfd = -1;
}

/* Past the cap: throw away whatever the pipe holds, without copying. */
static void
supervisor_discard(struct sv *s, struct sv_stream *st)
{
	char buf[65536];
	ssize_t n;

	for (int i = 0; i < 64; i++) {
		if (st->can_splice) {
			n = splice(st->rfd, NULL, s->devnull, NULL, 1 << 20,
			    SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n == -1 && errno == EINVAL) {
				st->can_splice = false;
				continue;
			}
		} else
			n = read(st->rfd, buf, sizeof(buf));
		if (n == 0) {
			supervisor_stream_close(st);
			return;
		}
		if (n == -1) {
			if (errno != EAGAIN && errno != EINTR)
				supervisor_stream_close(st);
			return;
		}
	}
}

/* Copies what the pipe holds into the file, up to the cap. */
static void
supervisor_copy(struct sv *s, struct sv_stream *st)
{
	char buf[65536];
	ssize_t n;

	for (int i = 0; i < 64 && !st->capped; i++) {
		n = read(st->rfd, buf, sizeof(buf));
		if (n == 0) {
			supervisor_stream_close(st);
			return;
		}
		if (n == -1) {
			if (errno != EAGAIN && errno != EINTR)
				supervisor_stream_close(st);
			return;
		}
		size_t keep = (size_t)n;
		if (st->cap > 0 && st->written + n > st->cap) {
			keep = (size_t)(st->cap - st->written);
			st->capped = true;
		}
		if (keep > 0 && write(st->file_fd, buf, keep) != (ssize_t)keep) {
			/* A full disk: keep draining, stop writing. */
			log_warn("supervise: task %d: %s", (int)s->task_pid,
			    st->name);
			st->capped = true;
			return;
		}
		st->written += (int64_t)keep;
		if (st->capped) {
			char note[200];
			int len = snprintf(note, sizeof(note), "\n[batchd: "
			    "%s.txt reached its limit of %lld bytes; the rest "
			    "of the task's %s was discarded]\n", st->name,
			    (long long)st->cap, st->name);
			(void)!write(st->file_fd, note, (size_t)len);
		}
	}
	if (st->capped && st->rfd != -1)
		supervisor_discard(s, st);
}

static void
supervisor_on_output(struct sv *s, struct sv_stream *st)
{
	if (st->capped)
		supervisor_discard(s, st);
	else
		supervisor_copy(s, st);
}

/* ---- start ------------------------------------------------------------ */

/* In the forked child: becomes the command, or reports errno on errfd. */
/*
 * fork() that puts the child straight into the v2 cgroup open as dirfd
 * (clone3 with CLONE_INTO_CGROUP, without CLONE_VM: the child runs on a
 * copy, as after fork).  *joined tells whether it did; without clone3 or
 * CLONE_INTO_CGROUP (Linux before 5.7, seccomp filters) it is a plain
 * fork, and the child joins by a whole-process move, which waits for an
 * RCU grace period under a system-wide lock (15 ms on a loaded host).
 */
static pid_t
supervisor_fork_into(int dirfd, bool *joined)
{
#ifdef SYS_clone3
	struct supervisor_clone_args a = {
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

static void __attribute__((noreturn))
supervisor_exec(const struct bd_supervisor_options *o,
    struct bd_cgroup *cg, bool joined, int out_w, int err_w, int errfd,
    pid_t supervisor)
{
	sigset_t none;
	int rc = 0;

	/* A group of its own, for signals to its tree; the supervisor's
	 * session already has no terminal, and a session of its own would
	 * cost a scheduler autogroup per task. */
	if (setpgid(0, 0) == -1)
		rc = -errno;
	/* The command alone joins the cgroup: its kill must not reach the
	 * supervisor, which still has an outcome to write.  Cloned into
	 * the v2 cgroup, it moves its only thread into the v1 ones (hybrid
	 * mode), which takes no system-wide lock. */
	if (rc == 0 && cg != NULL)
		rc = joined ? bd_cgroup_join_thread_v1(cg) :
		    bd_cgroup_join(cg, 0);
	if (rc == 0 && (dup2(out_w, 1) == -1 || dup2(err_w, 2) == -1))
		rc = -errno;
	if (rc == 0 && chdir(o->cwd) == -1)
		rc = -errno;
	/* The user last: after it nothing privileged is possible. */
	if (rc == 0 && o->has_identity &&
	    (setgroups(o->ngroups, o->groups) == -1 ||
	    setgid(o->gid) == -1 || setuid(o->uid) == -1))
		rc = -errno;
	/* The command ends with its supervisor, as its output does: one
	 * killed before its "ok" (batchd ends a start so) leaves no task
	 * behind that nobody watches.  After the user, whose change clears
	 * it; a supervisor gone already shows as another parent. */
	if (rc == 0 && (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 ||
	    getppid() != supervisor))
		rc = -ESRCH;
	if (rc == 0) {
		signal(SIGPIPE, SIG_DFL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execve(o->file, o->argv, o->envp);
		rc = -errno;
	}
	(void)!write(errfd, &rc, sizeof(rc));
	_exit(127);
}

/*
 * Without a cgroup to clone into, the command's child starts as vfork
 * does: on the supervisor's memory until its exec, the supervisor waiting
 * meanwhile.  A forked copy of the supervisor's page tables, and the
 * copy-on-write faults it would cause the supervisor after, were a tenth
 * of a short task's start.  The child uses only system calls (the
 * supervisor has one thread, so libc's set*id() are plain ones too).
 */
struct sv_child {
	const struct bd_supervisor_options *o;
	struct bd_cgroup *cg;
	int out_w, err_w, errfd;
	pid_t supervisor;
};

static char supervisor_child_stack[64 * 1024] __attribute__((aligned(16)));

static int
supervisor_vfork_child(void *arg)
{
	const struct sv_child *c = arg;

	/* In the v2 cgroup from its start (supervisor_vfork_into()). */
	supervisor_exec(c->o, c->cg, c->cg != NULL, c->out_w, c->err_w,
	    c->errfd, c->supervisor);
}

/*
 * The same into the v2 cgroup open as dirfd: clone3 with CLONE_VM,
 * CLONE_VFORK and CLONE_INTO_CGROUP.  libc has no clone3 that runs a
 * function on a new stack, so on x86-64 a few instructions do: the child
 * calls supervisor_vfork_child(c) and exits with its value.  Returns the
 * pid, or -1 with errno (ENOSYS elsewhere, and where the kernel or a
 * seccomp filter refuses it: then fork it is).
 */
static pid_t
supervisor_vfork_into(int dirfd, struct sv_child *c)
{
#if defined(__x86_64__) && defined(SYS_clone3)
	struct supervisor_clone_args a = {
		.flags = CLONE_VM | CLONE_VFORK | CLONE_INTO_CGROUP,
		.exit_signal = SIGCHLD,
		.stack = (uint64_t)(uintptr_t)supervisor_child_stack,
		.stack_size = sizeof(supervisor_child_stack),
		.cgroup = (uint64_t)dirfd,
	};
	register long rax __asm__("rax") = SYS_clone3;
	register void *rdi __asm__("rdi") = &a;
	register size_t rsi __asm__("rsi") = sizeof(a);
	register int (*r12)(void *) __asm__("r12") = supervisor_vfork_child;
	register void *r13 __asm__("r13") = c;

	if (dirfd < 0) {
		errno = ENOSYS;
		return -1;
	}
	__asm__ volatile(
	    "syscall\n\t"
	    "test %%rax, %%rax\n\t"
	    "jnz 1f\n\t"
	    /* The child, on the new stack (16-byte aligned at the call). */
	    "xor %%ebp, %%ebp\n\t"
	    "mov %%r13, %%rdi\n\t"
	    "call *%%r12\n\t"
	    "mov %%eax, %%edi\n\t"
	    "mov $231, %%eax\n\t"	/* exit_group */
	    "syscall\n\t"
	    "hlt\n\t"
	    "1:\n\t"
	    : "+r"(rax)
	    : "r"(rdi), "r"(rsi), "r"(r12), "r"(r13)
	    : "rcx", "r11", "memory", "cc");
	if (rax < 0) {
		errno = rax == -E2BIG || rax == -EINVAL || rax == -EPERM ?
		    ENOSYS : (int)-rax;
		return -1;
	}
	return (pid_t)rax;
#else
	(void)dirfd;
	(void)c;
	errno = ENOSYS;
	return -1;
#endif
}

/* Whether the line went (or there is no pipe to write it to). */
static bool
supervisor_report(const struct bd_supervisor_options *o, const char *line)
{
	/* A write that fails: the agent is gone; the state file stays. */
	return o->report_fd < 0 ||
	    bd_write_all(o->report_fd, line, strlen(line)) >= 0;
}

static int
supervisor_open_output(const struct bd_supervisor_options *o,
    struct sv_stream *st, const char *name, const char *path, int64_t cap,
    int *wfd)
{
	int p[2];

	st->name = name;
	st->cap = cap;
	st->can_splice = true;
	/* The task's user owns the directory: never follow its links. */
	st->file_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND |
	    O_CLOEXEC | O_NOFOLLOW, 0660);
	if (st->file_fd == -1)
		return -errno;
	/* The file is the task's, as if its user had made it. */
	if (o->has_identity && fchown(st->file_fd, o->uid, o->gid) == -1)
		return -errno;
	if (pipe2(p, O_CLOEXEC) == -1)
		return -errno;
	/* Fewer wake-ups for a chatty task; best effort. */
	(void)fcntl(p[0], F_SETPIPE_SZ, 1 << 20);
	(void)fcntl(p[0], F_SETFL, O_NONBLOCK);
	st->rfd = p[0];
	*wfd = p[1];
	return 0;
}

/* Starts the command; 0, or a negative errno that goes to the report. */
static int
supervisor_start(struct sv *s)
{
	const struct bd_supervisor_options *o = s->o;
	int out_w = -1, err_w = -1, ep[2], rc, child_rc, dirfd;
	bool joined;
	ssize_t n;
	pid_t pid;

	if ((rc = supervisor_open_output(o, &s->out, "stdout", o->stdout_path,
	    o->stdout_cap, &out_w)) < 0 ||
	    (rc = supervisor_open_output(o, &s->err, "stderr", o->stderr_path,
	    o->stderr_cap, &err_w)) < 0)
		goto out;
	if (pipe2(ep, O_CLOEXEC) == -1) {
		rc = -errno;
		goto out;
	}
	dirfd = s->cg != NULL ? bd_cgroup_open_dir(s->cg) : -1;
	struct sv_child c = { o, s->cg, out_w, err_w, ep[1], s->rec.pid };
	if (s->cg == NULL)
		pid = clone(supervisor_vfork_child, supervisor_child_stack +
		    sizeof(supervisor_child_stack), CLONE_VM | CLONE_VFORK |
		    SIGCHLD, &c);
	else if ((pid = supervisor_vfork_into(dirfd, &c)) == -1 &&
	    errno == ENOSYS &&
	    (pid = supervisor_fork_into(dirfd, &joined)) == 0) {
		close(ep[0]);
		supervisor_exec(o, s->cg, joined, out_w, err_w, ep[1],
		    s->rec.pid);
	}
	if (pid == -1) {
		rc = -errno;
		if (dirfd >= 0)
			close(dirfd);
		close(ep[0]);
		close(ep[1]);
		goto out;
	}
	if (dirfd >= 0)
		close(dirfd);
	close(ep[1]);
	s->task_pid = pid;
	do
		n = read(ep[0], &child_rc, sizeof(child_rc));
	while (n == -1 && errno == EINTR);
	close(ep[0]);
	if (n == (ssize_t)sizeof(child_rc)) {
		/* The exec failed: the child exits 127 at once. */
		(void)waitpid(pid, NULL, 0);
		rc = child_rc < 0 ? child_rc : -EIO;
		s->task_pid = 0;
	} else
		rc = 0;
out:
	if (out_w != -1)
		close(out_w);
	if (err_w != -1)
		close(err_w);
	return rc;
}

/* ---- the loop --------------------------------------------------------- */

/*
 * Reaps the children that have exited, keeping the command's status.
 * Returns true when the command was among them.
 */
static bool
supervisor_reap_quietly(struct sv *s)
{
	bool ended = false;
	struct rusage ru;
	int status;
	pid_t pid;

	while ((pid = wait4(-1, &status, WNOHANG, &ru)) > 0) {
		s->user_us += (int64_t)ru.ru_utime.tv_sec * 1000000 +
		    ru.ru_utime.tv_usec;
		s->system_us += (int64_t)ru.ru_stime.tv_sec * 1000000 +
		    ru.ru_stime.tv_usec;
		if (ru.ru_maxrss > s->max_rss_kb)
			s->max_rss_kb = ru.ru_maxrss;
		if (pid == s->task_pid && !s->task_exited) {
			s->task_exited = ended = true;
			s->task_status = status;
			s->drain_until = bd_clock_mono_ms() +
			    SUPERVISOR_DRAIN_MS;
		}
	}
	return ended;
}

static void
supervisor_reap(struct sv *s)
{
	/* Whatever the command left behind ends with it. */
	if (supervisor_reap_quietly(s))
		supervisor_kill_tree(s, SIGKILL);
}

static void
supervisor_on_signal(struct sv *s, const struct signalfd_siginfo *si)
{
	int sig = (int)si->ssi_signo;

	if (sig == SIGCHLD) {
		supervisor_reap(s);
		return;
	}
	if (s->task_exited)
		return;
	if (sig == SIGTERM || sig == SIGINT) {
		if (s->kill_at != 0)
			return;
		log_info("supervise: task %d: %s: ending the task",
		    (int)s->task_pid, strsignal(sig));
		supervisor_kill_tree(s, SIGTERM);
		s->kill_at = bd_clock_mono_ms() + (s->o->grace_ms > 0 ?
		    s->o->grace_ms : 1);
	} else if (sig == SIGRTMIN) {
		/* A request from the agent: the signal is the value's low
		 * bits, for the task its tag names (supervisor.h). */
		uint32_t v = (uint32_t)si->ssi_int, tag = v >> 8;
		int want = (int)(v & 0xff);
		if (tag != 0 && tag != s->o->tag)
			return;	/* meant for this process's last task */
		if (want > 0 && want < NSIG)
			supervisor_kill_tree(s, want);
	}
}

/* Fills the outcome from the command's status and the tree's usage. */
static void
supervisor_outcome(struct sv *s)
{
	struct bd_supervisor_record *r = &s->rec;

	r->state = BD_SUPERVISOR_EXITED;
	r->end_ms = bd_clock_now_ms();
	if (WIFEXITED(s->task_status))
		r->exit_code = WEXITSTATUS(s->task_status);
	else
		r->term_signal = WIFSIGNALED(s->task_status) ?
		    WTERMSIG(s->task_status) : SIGKILL;
	r->user_cpu_us = s->user_us;
	r->system_cpu_us = s->system_us;
	r->max_rss_kb = s->max_rss_kb;
	r->stdout_capped = s->out.capped;
	r->stderr_capped = s->err.capped;
}

static void
supervisor_loop(struct sv *s, int sigfd)
{
	for (;;) {
		struct pollfd pfd[3];
		int nfd = 0, timeout = -1, out_i = -1, err_i = -1;
		int64_t now = bd_clock_mono_ms(), due = 0;

		if (s->task_exited && s->out.rfd == -1 && s->err.rfd == -1)
			return;
		if (s->task_exited && now >= s->drain_until) {
			log_warnx("supervise: task %d: its output pipes are "
			    "still open after its end; not waiting for them",
			    (int)s->task_pid);
			return;
		}
		if (s->kill_at != 0 && !s->task_exited) {
			if (now >= s->kill_at) {
				supervisor_kill_tree(s, SIGKILL);
				s->kill_at = INT64_MAX;
			} else if (s->kill_at != INT64_MAX)
				due = s->kill_at;
		}
		if (s->task_exited)
			due = s->drain_until;
		if (due != 0)
			timeout = (int)(due - now > INT_MAX ? INT_MAX :
			    due - now);
		pfd[nfd].fd = sigfd;
		pfd[nfd++].events = POLLIN;
		if (s->out.rfd != -1) {
			out_i = nfd;
			pfd[nfd].fd = s->out.rfd;
			pfd[nfd++].events = POLLIN;
		}
		if (s->err.rfd != -1) {
			err_i = nfd;
			pfd[nfd].fd = s->err.rfd;
			pfd[nfd++].events = POLLIN;
		}
		if (poll(pfd, (nfds_t)nfd, timeout) == -1) {
			if (errno == EINTR)
				continue;
			fatal("supervise: poll");
		}
		if (pfd[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(sigfd, &si, sizeof(si)) ==
			    (ssize_t)sizeof(si))
				supervisor_on_signal(s, &si);
		}
		if (out_i != -1 && pfd[out_i].revents != 0)
			supervisor_on_output(s, &s->out);
		if (err_i != -1 && pfd[err_i].revents != 0)
			supervisor_on_output(s, &s->err);
	}
}

/*
 * Gives libc's own signals (those below SIGRTMIN, which sigaction()
 * refuses) their default disposition.  posix_spawn leaves them ignored in
 * an exec'd supervisor (sigfillset() leaves them out of its defaults),
 * and an ignored signal would stay ignored in the task's program.
 */
static void
supervisor_default_libc_signals(void)
{
	struct {
		void (*handler)(int);
		unsigned long flags;
		void (*restorer)(void);
		uint64_t mask;
	} dfl = { SIG_DFL, 0, NULL, 0 };

	for (int sig = 32; sig < SIGRTMIN; sig++)
		(void)syscall(SYS_rt_sigaction, sig, &dfl, NULL,
		    sizeof(dfl.mask));
}

/* Takes every signal of mask that is pending, and does nothing with it. */
static void
supervisor_drop_signals(const sigset_t *mask)
{
	struct timespec now = { 0, 0 };

	while (sigtimedwait(mask, NULL, &now) > 0)
		;
}

/*
 * Does close_range(flags: 0 closes, CLOSE_RANGE_CLOEXEC marks) on every
 * descriptor above stderr but keep and keep2 (-1: none).
 */
static void
supervisor_close_fds(int keep, int keep2, unsigned flags)
{
	int kept[2] = { keep < keep2 ? keep : keep2, keep < keep2 ? keep2 :
	    keep };
	unsigned from = 3;

	/* The ranges between the kept ones, in order. */
	for (int i = 0; i < 2; i++) {
		if (kept[i] < (int)from)
			continue;	/* -1, below 3, or the same twice */
		if ((unsigned)kept[i] > from)
			(void)close_range(from, (unsigned)kept[i] - 1, flags);
		from = (unsigned)kept[i] + 1;
	}
	(void)close_range(from, ~0U, flags);
}

int
bd_supervisor_run(const struct bd_supervisor_options *o)
{
	struct sv s;
	sigset_t mask;
	char line[128];
	int sigfd, rc;
	bool recorded, reported;

	if (o->reusable != NULL)
		*o->reusable = false;
	memset(&s, 0, sizeof(s));
	s.o = o;
	s.out.rfd = s.err.rfd = s.out.file_fd = s.err.file_fd = -1;
	s.state_fd = -1;
	/* Descriptors the agent leaked stay out of the task. */
	supervisor_close_fds(o->report_fd, o->keep_fd, CLOSE_RANGE_CLOEXEC);
	if (o->report_fd >= 0)
		(void)fcntl(o->report_fd, F_SETFD, FD_CLOEXEC);
	/* Started by batchd it has a session (exec) or group (spawner) of
	 * its own already, and this fails; started by hand it gets one. */
	(void)setsid();
	supervisor_default_libc_signals();
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) == -1)
		fatal("supervise: cannot become a subreaper");
	/* The agent may be gone when the outcome is reported. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGRTMIN);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	/* A process that supervises again drops what it was sent while it
	 * waited (a SIGTERM, a kill request for its last task): nothing is
	 * for this task before its "ok". */
	if (o->reusable != NULL)
		supervisor_drop_signals(&mask);
	if ((sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) == -1)
		fatal("supervise: signalfd");
	if ((s.devnull = open("/dev/null", O_WRONLY | O_CLOEXEC)) == -1)
		fatal("supervise: /dev/null");
	/* A failure here is the first write's to report. */
	(void)supervisor_open_state(&s);
	/* A task that should be contained and cannot be does not start. */
	if (o->cgroup != NULL && ((rc = bd_cgroup_setup()) < 0 ||
	    (rc = bd_cgroup_open(o->cgroup, &s.cg)) < 0)) {
		log_warnx("supervise: cgroup %s: %s", o->cgroup,
		    bd_strerror(rc));
		snprintf(line, sizeof(line), "error %d\n", rc);
		supervisor_report(o, line);
		return 127;
	}

	s.rec.state = BD_SUPERVISOR_RUNNING;
	s.rec.pid = getpid();
	s.rec.start_ms = bd_clock_now_ms();
	if ((rc = bd_supervisor_start_time(s.rec.pid, &s.rec.start_time)) < 0)
		fatalx("supervise: own start time: %s", strerror(-rc));
	if ((rc = supervisor_start(&s)) < 0) {
		snprintf(line, sizeof(line), "error %d\n", rc);
		supervisor_report(o, line);
		return 127;
	}
	s.rec.task_pid = s.task_pid;
	if ((rc = supervisor_write_state(&s)) < 0) {
		/* Without a state file the task could not be adopted: end it
		 * rather than run it unknown. */
		kill(-s.task_pid, SIGKILL);
		supervisor_kill_tree(&s, SIGKILL);
		snprintf(line, sizeof(line), "error %d\n", rc);
		supervisor_report(o, line);
		return 127;
	}
	snprintf(line, sizeof(line), "ok %d %llu\n", (int)s.task_pid,
	    (unsigned long long)s.rec.start_time);
	supervisor_report(o, line);

	supervisor_loop(&s, sigfd);
	supervisor_outcome(&s);
	if (!(recorded = (rc = supervisor_write_state(&s)) >= 0))
		log_warnx("supervise: task %d: cannot write %s: %s",
		    (int)s.task_pid, o->state_path, strerror(-rc));
	char *text = bd_supervisor_record_format(&s.rec);
	supervisor_stream_close(&s.out);
	supervisor_stream_close(&s.err);
	close(s.out.file_fd);
	close(s.err.file_fd);
	close(s.devnull);
	close(sigfd);
	if (s.state_fd != -1)
		close(s.state_fd);
	bd_cgroup_free(s.cg);
	/* Everything else before the outcome: the agent acts on it at once,
	 * and the descriptors the agent handed over (the locks that keep
	 * the task's application packages) must be let go by then. */
	supervisor_close_fds(o->report_fd, o->keep_fd, 0);
	reported = supervisor_report(o, text);
	free(text);
	/* Its end tells the agent the outcome is all there, without
	 * waiting for this process's exit (process.c). */
	if (o->report_fd >= 0)
		close(o->report_fd);
	/* Another task may follow only where this one is wholly done: its
	 * outcome known to the agent and in the state file (an adopting
	 * agent trusts a live supervisor's "running"), nothing of it left
	 * to reap or to count in the next one's usage. */
	if (o->reusable != NULL)
		*o->reusable = recorded && reported && o->report_fd >= 0 &&
		    !supervisor_has_children();
	return 0;
}
