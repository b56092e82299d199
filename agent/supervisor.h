/* SPDX-License-Identifier: MIT */
#ifndef BD_SUPERVISOR_H
#define BD_SUPERVISOR_H

/*
 * The per-task supervisor: a small process (forked by the spawner,
 * spawner.h, else the batchd-supervise program or `batchd supervise`; see
 * cmd_supervise.c) that holds one task's
 * command so that the task outlives a restart or crash of the agent.  It
 * runs in a session of its own and is a child subreaper, so everything the
 * task forks stays below it.  It starts the command (in the task's cgroup,
 * as the task's user), copies the command's stdout and stderr from pipes
 * into stdout.txt and stderr.txt up to a cap, waits for it, ends what the
 * command left behind, and writes the outcome into a small state file.
 *
 * Talking to the agent:
 *   - fd report_fd (a pipe the agent reads): one line "ok PID START\n"
 *     once the command runs (PID the command's, START the supervisor's own
 *     start time, see bd_supervisor_start_time()) or "error ERRNO\n" when
 *     it could not start; at the end the outcome as one JSON line, after
 *     which the supervisor closes the pipe (the agent need not wait for
 *     its exit).  The agent that started it reads the outcome there; an
 *     agent that adopts
 *     the supervisor after a restart reads the state file.
 *   - SIGTERM: end the task gracefully: SIGTERM to its tree, SIGKILL after
 *     the grace period.
 *   - SIGRTMIN with a value (sigqueue, pidfd_send_signal): send that
 *     signal to the task's whole tree now.  The value is the signal in
 *     its low 8 bits and, above them, the tag the supervisor was given
 *     for this task (0: any task); a request tagged for another task is
 *     ignored, for a supervisor the spawner reuses may be on its next
 *     task when a request for its last one arrives.
 *
 * The state file says "running" with the supervisor's pid and start time
 * before the agent hears "ok", and "exited" with the outcome at the end.
 * The state is the file's first BD_SUPERVISOR_STATE_MAX bytes (a slot,
 * padded with spaces to a newline, written whole in place; blank: none),
 * so that batchd's assignment record (adopt.h) can carry it.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BD_SUPERVISOR_STATE_VERSION 1

/* The state slot's size: the largest state or report line accepted. */
#define BD_SUPERVISOR_STATE_MAX 4096

/* SIGRTMIN's value for a kill request: sig for the task tagged tag. */
#define BD_SUPERVISOR_KILL_VALUE(sig, tag) \
	((int)(((uint32_t)(tag) << 8) | ((uint32_t)(sig) & 0xff)))
/* Tags fit in the value's 31 bits above the signal, sign bit clear. */
#define BD_SUPERVISOR_TAG_MAX 0x7fffff

struct bd_supervisor_options {
	const char *file;	/* program to execute (absolute or cwd-relative) */
	char *const *argv;	/* its argv */
	char *const *envp;	/* its environment */
	const char *cwd;
	const char *stdout_path, *stderr_path;
	int64_t stdout_cap, stderr_cap; /* bytes kept; 0: no cap */
	const char *state_path;	/* or NULL: report only */
	const char *cgroup;	/* cgroup name to join (cgroup.h), or NULL */
	bool has_identity;
	uid_t uid;
	gid_t gid;
	const gid_t *groups;
	size_t ngroups;
	int64_t grace_ms;	/* SIGTERM to SIGKILL on our own SIGTERM */
	int report_fd;		/* or -1 */
	uint32_t tag;		/* of this task's kill requests; 0: none */
	int keep_fd;		/* left open at the end too, or -1 */
	/* Or NULL: set when the process may supervise another task (the
	   outcome reported and recorded, nothing of the task left below). */
	bool *reusable;
};

enum bd_supervisor_state {
	BD_SUPERVISOR_NONE,	/* no state file: the supervisor never started */
	BD_SUPERVISOR_RUNNING,
	BD_SUPERVISOR_EXITED,
};

/* What a supervisor records. */
struct bd_supervisor_record {
	enum bd_supervisor_state state;
	pid_t pid;		/* the supervisor's */
	uint64_t start_time;	/* its /proc/PID/stat start time */
	pid_t task_pid;		/* the command's */
	int64_t start_ms, end_ms; /* wall clock */
	int exit_code;		/* when term_signal is 0 */
	int term_signal;
	int64_t user_cpu_us, system_cpu_us; /* of the whole tree */
	int64_t max_rss_kb;	/* largest process of the tree */
	bool stdout_capped, stderr_capped;
};

/*
 * Runs the supervisor in this process and returns its exit status: 0 once
 * the outcome is written, 127 when the command could not start (reported
 * as "error ERRNO"), 1 on a broken invariant.  Never returns early because
 * of what the task does.
 */
int bd_supervisor_run(const struct bd_supervisor_options *o);

/*
 * The start time of process pid (field 22 of /proc/PID/stat, clock ticks
 * since boot), which with the pid names a process for good.  0 or a
 * negative errno (-ESRCH when there is no such process).
 */
int bd_supervisor_start_time(pid_t pid, uint64_t *out);

/* A record as one line of JSON (with '\n'); caller frees. */
char *bd_supervisor_record_format(const struct bd_supervisor_record *r);

/*
 * Parses a record (a state file's text or a report line).  0 or BD_EJSON /
 * BD_EINVALID with *cause (caller frees; cause may be NULL).
 */
int bd_supervisor_record_parse(const char *text, size_t len,
    struct bd_supervisor_record *r, char **cause);

/*
 * Reads the state slot of the file at path.  Returns 0 with r->state NONE
 * when there is no file or the slot is blank, 0 with the record, or a
 * negative errno / BD_E code (with *cause) for a slot that cannot be read
 * or parsed.
 */
int bd_supervisor_read_state(const char *path,
    struct bd_supervisor_record *r, char **cause);

/*
 * Whether the supervisor a RUNNING record names is that very process still:
 * pid exists and has the recorded start time (PID reuse check).
 */
bool bd_supervisor_alive(const struct bd_supervisor_record *r);

#endif
