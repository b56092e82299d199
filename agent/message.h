/* SPDX-License-Identifier: MIT */
#ifndef BD_MESSAGE_H
#define BD_MESSAGE_H

/*
 * Task messages of the pool protocol (docs/protocol.md §2): the text of a
 * queue message, raw JSON or base64 of it, decoded into a typed struct,
 * and the encoding the other way.  Everything from the queue is untrusted:
 * a message that does not decode gives a reason and changes nothing.
 */

#include <stddef.h>

#include "task_spec.h"

struct cJSON;

#define BD_MESSAGE_VERSION 1
#define BD_MESSAGE_MAX (64 * 1024) /* Azure's queue message limit */

struct bd_task_message {
	int version;
	char *job_id;
	struct bd_task_spec *task;	/* validated */
	struct cJSON *task_json;	/* the task as sent, for records */
	int retry_count;
	int requeue_count;
	int dependency_waits;	/* times it was put back for dependencies */
};

/*
 * Decodes text (len bytes; at most BD_MESSAGE_MAX).  Returns 0 and *out
 * (caller frees with bd_task_message_free()), or BD_EJSON/BD_EINVALID/
 * BD_ETOOBIG with *cause (caller frees).  When the message names a job
 * and a task id that could be read, *job_id and *task_id (may be NULL
 * pointers; caller frees) are set even on failure, so that the task can be
 * completed with the reason.
 */
int bd_task_message_decode(const char *text, size_t len,
    struct bd_task_message **out, char **job_id, char **task_id,
    char **cause);

void bd_task_message_free(struct bd_task_message *m);

/*
 * The message text for a task (task_json borrowed) of job_id with the
 * given counts (zeros are left out), as compact UTF-8 JSON.  Returns NULL with *cause when it
 * would pass BD_MESSAGE_MAX.  Caller frees.
 */
char *bd_task_message_encode(const char *job_id, const struct cJSON *task_json,
    int retry_count, int requeue_count, int dependency_waits, char **cause);

#endif
