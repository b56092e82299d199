/* SPDX-License-Identifier: MIT */
/*
 * `batchd wait [--config FILE] [--timeout DURATION] JOB_ID`: waits until
 * every task of a job has finished, reading the task table
 * (docs/protocol.md §4).  A task is finished when it is completed, or when
 * it is active with blockedBy (a dependency failed with dependencyAction
 * block: it will never run), which counts as a failure.
 *
 * Every read is a query of the job's whole partition, so reads are kept
 * few (wait_next_delay()): the next one comes when the completion rate
 * between the last two reads says the job should be done, between WAIT_POLL_END and
 * WAIT_POLL_MAX from now; a read that finds no progress doubles the
 * shortest wait, so a job whose last task hangs is not polled hard.
 *
 * While it waits it shows the counts per state: one line redrawn in place
 * when stderr is a terminal, else a plain line on stderr when they
 * changed, at most every WAIT_PLAIN_EVERY.  At the end it prints a
 * summary on stdout and the failed tasks on stderr.  Exit status 0 when
 * every task succeeded, 1 when one failed (or for an error), 2 on
 * timeout.
 */
#include "cmd_wait.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "clock.h"
#include "duration.h"
#include "error.h"

#define WAIT_POLL_MIN 200	/* after the first read: no rate yet */
#define WAIT_POLL_END 50	/* shortest wait, when the end is near */
#define WAIT_POLL_MAX 2000
#define WAIT_PLAIN_EVERY 5000	/* plain progress lines at most so often */
#define WAIT_BAR 24		/* progress bar width */
#define WAIT_MAX_ERRORS 10	/* failed reads in a row before giving up */
#define WAIT_MAX_SHOWN 50	/* failed tasks listed */

static void
wait_usage(FILE *f)
{
	fprintf(f, "usage: batchd wait [--config FILE] [--timeout DURATION] "
	    "JOB_ID\n");
}

/* The counts as one line: "[####----] 12/40  active 20  running 8 ...". */
static void
wait_line(const char *job, const struct bd_client_counts *k, int64_t ms,
    char *buf, size_t len)
{
	size_t done = k->completed + k->blocked, fill;
	char bar[WAIT_BAR + 1], age[32];

	fill = k->total > 0 ? done * WAIT_BAR / k->total : 0;
	for (size_t i = 0; i < WAIT_BAR; i++)
		bar[i] = i < fill ? '#' : '-';
	bar[WAIT_BAR] = '\0';
	snprintf(buf, len, "job %s: [%s] %zu/%zu  active %zu  running %zu  "
	    "succeeded %zu  failed %zu  blocked %zu  %s", job, bar, done,
	    k->total, k->active, k->running + k->preparing, k->succeeded,
	    k->failed, k->blocked, bd_client_age(ms, age, sizeof(age)));
}

/* Lists the failed and blocked tasks on stderr. */
static void
wait_list_failed(struct bd_entity *const *rows, size_t n)
{
	size_t shown = 0;

	for (size_t i = 0; i < n; i++) {
		const struct bd_entity *r = rows[i];
		const char *code, *msg;
		char exit_code[48] = "";
		int64_t v;

		if (bd_client_task_blocked(r)) {
			if (shown++ < WAIT_MAX_SHOWN)
				bd_client_error("wait", "blocked: %s: "
				    "dependency %s failed with "
				    "dependencyAction block", r->row_key,
				    bd_client_prop(r, "blockedBy"));
			continue;
		}
		if (!bd_client_task_failed(r))
			continue;
		if (shown++ >= WAIT_MAX_SHOWN)
			continue;
		code = bd_client_prop(r, "failureCode");
		msg = bd_client_prop(r, "failureMessage");
		if (bd_client_prop_int(r, "exitCode", &v))
			snprintf(exit_code, sizeof(exit_code), " (exit code "
			    "%lld)", (long long)v);
		bd_client_error("wait", "failed: %s%s: %s%s%s", r->row_key,
		    exit_code, code != NULL ? code : "failure",
		    msg != NULL ? ": " : "", msg != NULL ? msg : "");
	}
	if (shown > WAIT_MAX_SHOWN)
		bd_client_error("wait", "... and %zu more",
		    shown - WAIT_MAX_SHOWN);
}

/* Whether a failed read is worth trying again. */
static bool
wait_transient(int rc)
{
	return rc != BD_EDENIED && rc != -EACCES && rc != -EPERM &&
	    rc != BD_EINVALID && bd_client_status(rc) == BD_CLIENT_FAIL;
}

/*
 * The wait before the next read: the time the rate of the last interval
 * (done_since tasks finished in elapsed_ms) needs for the tasks left, but at least floor and at most WAIT_POLL_MAX.  floor is the
 * no-progress backoff (WAIT_POLL_END, doubled by every read that saw no
 * task finish), so an estimate from a rate that no longer holds (the last
 * task is a long one) costs a few reads, not one every WAIT_POLL_END.
 */
static int64_t
wait_next_delay(size_t left, size_t done_since, int64_t elapsed_ms,
    int64_t floor)
{
	int64_t d;

	if (done_since == 0 || elapsed_ms <= 0)
		return floor > WAIT_POLL_MIN ? floor : WAIT_POLL_MIN;
	/* left * elapsed / done, without overflow for any real count. */
	d = (int64_t)((double)left * (double)elapsed_ms / (double)done_since);
	if (d < floor)
		d = floor;
	return d > WAIT_POLL_MAX ? WAIT_POLL_MAX : d;
}

/* Polls until the job's tasks have finished or the timeout passes. */
int
bd_cmd_wait(int argc, char **argv)
{
	struct bd_client_args a;
	struct bd_client c;
	struct bd_client_counts k, last;
	struct bd_entity *job = NULL, **rows = NULL;
	const char *reason = NULL;
	char *detail = NULL, line[512], tbuf[BD_DURATION_BUFSZ];
	int64_t timeout = BD_DURATION_INFINITE, start, now, delay, last_line;
	int64_t prev_ms = -1, floor = WAIT_POLL_END, elapsed = 0;
	size_t n = 0, done = 0, done_since = 0;
	int rc, status, errors = 0;
	bool tty, drawn = false;

	if ((status = bd_client_parse(argc, argv, "wait", "T", wait_usage,
	    &a)) >= 0)
		return status;
	if (a.argc != 1) {
		wait_usage(stderr);
		return BD_CLIENT_FAIL;
	}
	if (a.timeout != NULL && bd_duration_parse_reason(a.timeout,
	    &timeout, &reason) < 0) {
		bd_client_error("wait", "--timeout %s: %s", a.timeout,
		    reason != NULL ? reason : "not an ISO 8601 duration");
		return BD_CLIENT_FAIL;
	}
	if ((status = bd_client_open(&c, "wait", a.config)) != BD_CLIENT_OK)
		return status;
	if ((status = bd_client_get_job(&c, a.argv[0], &job)) != BD_CLIENT_OK)
		return bd_client_close(&c, status);

	tty = isatty(STDERR_FILENO) == 1;
	start = bd_clock_mono_ms();
	last_line = start - WAIT_PLAIN_EVERY;
	delay = WAIT_POLL_MIN;
	memset(&last, 0, sizeof(last));
	memset(&k, 0, sizeof(k));
	for (;;) {
		rc = bd_client_query(&c, BD_TABLE_TASKS, job->row_key, &rows,
		    &n, &detail);
		now = bd_clock_mono_ms();
		if (rc < 0) {
			if (drawn)
				fputs("\r\033[K", stderr);
			drawn = false;
			if (!wait_transient(rc) ||
			    ++errors >= WAIT_MAX_ERRORS) {
				bd_client_error(c.cmd, "cannot read the tasks "
				    "of job %s: %s", job->row_key, detail);
				status = bd_client_status(rc);
				break;
			}
			bd_client_error(c.cmd, "cannot read the tasks of job "
			    "%s (trying again): %s", job->row_key, detail);
			free(detail);
			detail = NULL;
		} else {
			errors = 0;
			bd_client_count_tasks(rows, n, &k);
			wait_line(job->row_key, &k, now - start, line,
			    sizeof(line));
			if (tty) {
				fprintf(stderr, "\r\033[K%s", line);
				drawn = true;
			} else if (now - last_line >= WAIT_PLAIN_EVERY &&
			    memcmp(&k, &last, sizeof(k)) != 0) {
				fprintf(stderr, "%s\n", line);
				last_line = now;
			}
			fflush(stderr);
			done = k.completed + k.blocked;
			done_since = 0;
			if (prev_ms >= 0 && done > last.completed + last.blocked) {
				done_since = done - last.completed - last.blocked;
				floor = WAIT_POLL_END;
			} else if (prev_ms >= 0 && floor < WAIT_POLL_MAX)
				floor *= 2;
			elapsed = prev_ms >= 0 ? now - prev_ms : 0;
			prev_ms = now;
			last = k;
			if (k.active + k.preparing + k.running == 0)
				break;
			bd_client_free_rows(rows, n);
			rows = NULL;
			n = 0;
		}
		if (timeout != BD_DURATION_INFINITE && now - start >= timeout) {
			if (drawn)
				fputs("\r\033[K", stderr);
			drawn = false;
			bd_duration_format(timeout, tbuf, sizeof(tbuf));
			bd_client_error(c.cmd, "timed out after %s: %zu of %zu "
			    "tasks of job %s finished (%zu active, %zu "
			    "running)", tbuf, last.completed + last.blocked,
			    last.total, job->row_key, last.active,
			    last.running + last.preparing);
			status = BD_CLIENT_TIMEOUT;
			break;
		}
		if (prev_ms >= 0)
			delay = wait_next_delay(k.active + k.preparing +
			    k.running, done_since, elapsed, floor);
		else	/* the first read failed: back off */
			delay = delay * 2 > WAIT_POLL_MAX ? WAIT_POLL_MAX :
			    delay * 2;
		if (timeout != BD_DURATION_INFINITE &&
		    timeout - (now - start) < delay)
			bd_client_sleep(&c, timeout - (now - start));
		else
			bd_client_sleep(&c, delay);
	}
	if (drawn) {
		/* The last state stays on the screen, as a plain line. */
		fprintf(stderr, "\r\033[K%s\n", line);
	}
	if (status == BD_CLIENT_OK) {
		if (k.total == 0)
			printf("job %s has no tasks\n", job->row_key);
		else
			printf("job %s: %zu %s: %zu succeeded, %zu failed, "
			    "%zu blocked\n", job->row_key, k.total,
			    k.total == 1 ? "task" : "tasks", k.succeeded,
			    k.failed, k.blocked);
		if (k.failed + k.blocked > 0) {
			wait_list_failed(rows, n);
			status = BD_CLIENT_FAIL;
		}
	}
	free(detail);
	bd_client_free_rows(rows, n);
	bd_entity_free(job);
	return bd_client_close(&c, status);
}
