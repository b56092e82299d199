/* SPDX-License-Identifier: MIT */
#ifndef BD_CLIENT_H
#define BD_CLIENT_H

/*
 * What the client commands (job, task, node, wait) share: the pool opened
 * from the node configuration on a loop of their own, store calls run to
 * their end one at a time, error messages that never carry a secret, the
 * exit statuses, and aligned tables for people.
 *
 * Exit statuses (docs/commands.md): BD_CLIENT_OK, BD_CLIENT_FAIL for a
 * failure the user can fix (a message says what), BD_CLIENT_TIMEOUT for
 * `batchd wait` running out of time, BD_CLIENT_INTERNAL for batchd's own.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "config.h"
#include "pool.h"
#include "store.h"

struct cJSON;

#define BD_CLIENT_OK		0
#define BD_CLIENT_FAIL		1
#define BD_CLIENT_TIMEOUT	2
#define BD_CLIENT_INTERNAL	125

/*
 * The longest `spec` text a job or task row may hold: an Azure table
 * string property holds 64 KiB of UTF-16, and a byte of UTF-8 is never
 * more than one UTF-16 unit, so 32 Ki bytes always fit.
 */
#define BD_CLIENT_SPEC_MAX	(32 * 1024)

/*
 * An open pool.  cmd ("job add") prefixes messages; cfg and pool are
 * owned and freed by bd_client_close().
 */
struct bd_client {
	uv_loop_t loop;
	const char *cmd;		/* borrowed, static */
	struct bd_config *cfg;
	struct bd_pool *pool;
	bool loop_open;
};

/*
 * The options of every client command; which ones a command takes is its
 * own.  Strings are borrowed from argv.
 */
struct bd_client_args {
	const char *config;	/* --config FILE */
	const char *reason;	/* --reason TEXT */
	const char *state;	/* --state S */
	const char *timeout;	/* --timeout DURATION */
	bool json;		/* --json */
	bool tasks;		/* --tasks */
	bool resend;		/* --resend */
	char **argv;		/* the operands */
	int argc;
};

/*
 * Parses the options of a command whose words (argv[0]) cmd names ("job
 * add").  allowed lists the options it takes besides --config and
 * --help, by their short letters: r reason, s state, T timeout, j json,
 * t tasks, R resend.  usage prints the command's usage.  Returns -1 to go
 * on, or an exit status (after printing the usage).
 */
int bd_client_parse(int argc, char **argv, const char *cmd,
    const char *allowed, void (*usage)(FILE *), struct bd_client_args *a);

/*
 * Prints "batchd CMD: message" on stderr, with SAS signatures redacted
 * and control characters escaped.  cmd may be NULL.
 */
void bd_client_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Loads the configuration (config_path or the usual places, config.h)
 * and opens its pool on a new loop in c.  Returns BD_CLIENT_OK, or an exit
 * status after printing why (then c needs no close).
 */
int bd_client_open(struct bd_client *c, const char *cmd,
    const char *config_path);

/*
 * Closes the pool and the loop and frees the configuration.  Returns
 * status, or BD_CLIENT_INTERNAL when the loop would not close.
 */
int bd_client_close(struct bd_client *c, int status);

/*
 * The exit status for a failed store or queue call: BD_CLIENT_INTERNAL
 * for statuses that mean batchd called wrongly, else BD_CLIENT_FAIL.
 */
int bd_client_status(int rc);

/*
 * Store and queue calls run until they end.  Each returns 0 or a negative
 * code, and on failure sets *detail (caller frees; never NULL then) to
 * redacted text naming the call.  Entities returned are the caller's to
 * free (bd_entity_free(), bd_client_free_rows()).
 */
int bd_client_create(struct bd_client *c, char **detail);
int bd_client_get(struct bd_client *c, enum bd_table t, const char *pk,
    const char *rk, struct bd_entity **out, char **detail);
/*
 * Rows of partition pk sorted by row key; a table that does not exist
 * yet gives no rows.
 */
int bd_client_query(struct bd_client *c, enum bd_table t, const char *pk,
    struct bd_entity ***rows, size_t *n, char **detail);
int bd_client_insert(struct bd_client *c, enum bd_table t,
    const struct bd_entity *e, char **detail);
int bd_client_merge(struct bd_client *c, enum bd_table t,
    const struct bd_entity *e, const char *etag, char **detail);

/* Runs the loop for ms milliseconds. */
void bd_client_sleep(struct bd_client *c, int64_t ms);

/*
 * Runs the loop until *done.  Returns 0, or -EDEADLK when the loop ran
 * out of work first (a callback that never came: an internal error).
 */
int bd_client_run_until(struct bd_client *c, const bool *done);

/* Frees n rows and the array. */
void bd_client_free_rows(struct bd_entity **rows, size_t n);

/* A string property of e, or NULL.  Borrowed from e. */
const char *bd_client_prop(const struct bd_entity *e, const char *name);
/* A number property of e: true and *v, or false. */
bool bd_client_prop_int(const struct bd_entity *e, const char *name,
    int64_t *v);

/*
 * Reads the JSON file path (at most max bytes).  Returns 0 and *out
 * (caller frees with cJSON_Delete()), or BD_CLIENT_FAIL after printing
 * "PATH: why".
 */
int bd_client_read_json(const char *cmd, const char *path, size_t max,
    struct cJSON **out);

/*
 * The job row of id: BD_CLIENT_OK and *row (caller frees), or an exit
 * status after printing why ("job X not found").
 */
int bd_client_get_job(struct bd_client *c, const char *id,
    struct bd_entity **row);

/* Task counts of a job, from its task rows (protocol §4). */
struct bd_client_counts {
	size_t total;
	size_t active;		/* waiting, blocked ones not included */
	size_t preparing;
	size_t running;
	size_t completed;	/* succeeded + failed */
	size_t succeeded;
	size_t failed;
	size_t blocked;		/* active with blockedBy: never runs */
};

/* Whether a task row is blocked, failed: see bd_client_counts. */
bool bd_client_task_blocked(const struct bd_entity *row);
bool bd_client_task_failed(const struct bd_entity *row);
void bd_client_count_tasks(struct bd_entity *const *rows, size_t n,
    struct bd_client_counts *out);

/*
 * An ISO 8601 time shown to a second ("2026-11-27T02:19:32Z"); text that
 * does not parse is shown escaped.  Writes into buf.
 */
const char *bd_client_time(const char *iso, char *buf, size_t len);

/* An age in milliseconds as "45s", "3m12s", "5h2m", "2d3h".  Into buf. */
const char *bd_client_age(int64_t ms, char *buf, size_t len);

/*
 * A table for people: a header row, then rows of cells, printed with
 * columns aligned.  Cells are copied with control characters escaped;
 * NULL or "" prints as "-".
 */
struct bd_client_table;
struct bd_client_table *bd_client_table_new(size_t ncols,
    const char *const *headers);
void bd_client_table_add(struct bd_client_table *t, const char *const *cells);
void bd_client_table_print(const struct bd_client_table *t, FILE *f);
void bd_client_table_free(struct bd_client_table *t);

/*
 * Prints JSON (borrowed) indented on stdout with SAS signatures
 * redacted.
 */
void bd_client_print_json(const struct cJSON *json);

#endif
