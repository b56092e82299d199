/* SPDX-License-Identifier: MIT */
#ifndef BD_ADOPT_H
#define BD_ADOPT_H

/*
 * Durable assignment records, so that a restarted batchd can finish the
 * tasks its previous run started (docs/protocol.md §8).  One file per
 * running task, <stateDir>/tasks/<key>.json, named after its message, in
 * three parts at fixed offsets:
 *
 *   0     the supervisor's state (supervisor.h), written by the supervisor
 *         in place; blank until it starts;
 *   4096  the lease: the message's newest pop receipt, rewritten in place
 *         after every lease renewal (the pop receipt changes with each);
 *   8192  the record: what else the daemon needs to finish the task (the
 *         message's id and text, the task row's ETag, counts, when it
 *         started), written once.
 *
 * One file rather than a record and a state file: every file created and
 * removed per task costs the next creations on an ext4 without a journal.
 * The file is written once (not fsync'd, since it has to outlive batchd,
 * not the machine) after the task is claimed and before its supervisor
 * starts: a stale one from an earlier receive is removed first, with its
 * state, and the new one created in its place, so one that a crash left
 * half written never has a supervisor; it is removed when the task's
 * message is done with.  On start the daemon loads every record and adopts its task before
 * it takes new work.  A version 1 record, from a batchd before this
 * layout, is the record alone, its state in <key>.supervisor: read, renewed
 * and removed as such, so that an upgrade keeps the running tasks.
 */

#include <stddef.h>
#include <stdint.h>

#define BD_ADOPT_VERSION 2

/* Where the parts of a version 2 file start; each but the record is
 * padded with spaces to its end, which is a newline. */
#define BD_ADOPT_STATE_OFFSET 0
#define BD_ADOPT_LEASE_OFFSET 4096
#define BD_ADOPT_RECORD_OFFSET 8192

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
	int version;		/* 1: an older batchd's; else BD_ADOPT_VERSION */
};

/* Frees a record and its strings; NULL is fine. */
void bd_adopt_record_free(struct bd_adopt_record *r);

/* <stateDir>/tasks, created (0700) if missing.  0 or a negative errno. */
int bd_adopt_dir(const char *state_dir, char **out);

/* The record file of a message, and the file its supervisor writes its
 * state into (the same one unless version is 1); caller frees. */
char *bd_adopt_record_path(const char *dir, const char *message_id);
char *bd_adopt_state_path(const char *dir, const char *message_id,
    int version);

/* Writes r's file whole and atomically, replacing the last one (and its
 * supervisor state).  0 or a negative errno. */
int bd_adopt_save(const char *dir, const struct bd_adopt_record *r);

/* Writes r's pop receipt into its file in place (a version 1 record is
 * written whole).  0 or a negative errno (-ENOENT: no file). */
int bd_adopt_save_lease(const char *dir, const struct bd_adopt_record *r);

/* Removes a message's record (and a version 1 record's state file). */
void bd_adopt_remove(const char *dir, const char *message_id, int version);

/* r's whole file as text, and back; parse gives BD_E codes with *cause
 * and ignores the supervisor's state. */
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
