/* SPDX-License-Identifier: MIT */
#ifndef BD_ADOPT_H
#define BD_ADOPT_H

/*
 * Durable assignment records, so that a restarted batchd can finish the
 * tasks its previous run started (docs/protocol.md §8).  One small JSON
 * file per running task in <stateDir>/tasks/, named after its message:
 *
 *   <key>.json        what the daemon needs to finish the task: the
 *                     message (id, newest pop receipt, text), the task
 *                     row's ETag, counts, when it started;
 *   <key>.supervisor  the supervisor's state file (supervisor.h).
 *
 * A record is written (atomically; not fsync'd, since it has to outlive
 * batchd, not the machine) after the task is claimed and
 * before its supervisor starts, again after every lease renewal (the pop
 * receipt changes with each), and removed when the task's message is done
 * with.  On start the daemon loads every record and adopts its task before
 * it takes new work.
 */

#include <stddef.h>
#include <stdint.h>

#define BD_ADOPT_VERSION 1

struct bd_adopt_record {
	char *message_id;
	char *pop_receipt;	/* the newest */
	char *message_text;
	int dequeue_count;
	int64_t inserted_ms;
	char *job_id, *task_id;
	char *etag;		/* of the task row's "running" write */
	int retry_count, requeue_count;
	int64_t started_ms;	/* wall clock, when the attempt started */
};

/* Frees a record and its strings; NULL is fine. */
void bd_adopt_record_free(struct bd_adopt_record *r);

/* <stateDir>/tasks, created (0700) if missing.  0 or a negative errno. */
int bd_adopt_dir(const char *state_dir, char **out);

/* The record file and the supervisor state file of a message; caller frees. */
char *bd_adopt_record_path(const char *dir, const char *message_id);
char *bd_adopt_state_path(const char *dir, const char *message_id);

/* Writes r atomically (replacing the last one).  0 or a negative errno. */
int bd_adopt_save(const char *dir, const struct bd_adopt_record *r);

/* Removes a message's record and supervisor state file. */
void bd_adopt_remove(const char *dir, const char *message_id);

/* The record as JSON text, and back; parse gives BD_E codes with *cause. */
char *bd_adopt_format(const struct bd_adopt_record *r);
int bd_adopt_parse(const char *text, size_t len, struct bd_adopt_record **out,
    char **cause);

/*
 * Loads every record in dir into *out (n of them; caller frees each and
 * the array).  A record that cannot be read or parsed is renamed to
 * <name>.bad and named in the log; it is skipped.  0 or a negative errno
 * when the directory cannot be read.
 */
int bd_adopt_load(const char *dir, struct bd_adopt_record ***out, size_t *n);

#endif
