/* SPDX-License-Identifier: MIT */
/*
 * Durable assignment records (see adopt.h).  Records are versioned JSON
 * files written with bd_write_file_atomic(); their names come from the
 * message id with every byte outside [A-Za-z0-9_-] written as %XX, so any
 * id the queue hands out maps to one safe file name.
 */
#include "adopt.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "fsutil.h"
#include "json_field.h"
#include "log.h"
#include "xmalloc.h"

/* Task messages are at most 64 KiB on Azure; leave room for the rest. */
#define ADOPT_MAX_RECORD (1024 * 1024)
#define ADOPT_MAX_ID 512

void
bd_adopt_record_free(struct bd_adopt_record *r)
{
	if (r == NULL)
		return;
	free(r->message_id);
	free(r->pop_receipt);
	free(r->message_text);
	free(r->job_id);
	free(r->task_id);
	free(r->etag);
	free(r);
}

int
bd_adopt_dir(const char *state_dir, char **out)
{
	char *dir = bd_path_join(state_dir, "tasks");
	int rc;

	if ((rc = bd_mkdir_p(dir, 0700)) < 0) {
		free(dir);
		return rc;
	}
	*out = dir;
	return 0;
}

/* dir/<escaped id><suffix>. */
static char *
adopt_path(const char *dir, const char *id, const char *suffix)
{
	size_t len = strlen(id);
	char *key = xmalloc(len * 3 + 1), *k = key, *path;

	for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_')
			*k++ = (char)*p;
		else
			k += sprintf(k, "%%%02X", *p);
	}
	*k = '\0';
	path = xasprintf("%s/%s%s", dir, key, suffix);
	free(key);
	return path;
}

char *
bd_adopt_record_path(const char *dir, const char *message_id)
{
	return adopt_path(dir, message_id, ".json");
}

char *
bd_adopt_state_path(const char *dir, const char *message_id)
{
	return adopt_path(dir, message_id, ".supervisor");
}

/* Adds the integer v to o as it is printed (cJSON_AddNumberToObject()
 * would print it with "%1.15g" and read it back with sscanf). */
static void
adopt_add_int(cJSON *o, const char *name, int64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%" PRId64, v);
	cJSON_AddRawToObject(o, name, buf);
}

char *
bd_adopt_format(const struct bd_adopt_record *r)
{
	cJSON *o = cJSON_CreateObject();
	char *text;

	adopt_add_int(o, "version", BD_ADOPT_VERSION);
	cJSON_AddStringToObject(o, "messageId", r->message_id);
	cJSON_AddStringToObject(o, "popReceipt", r->pop_receipt);
	cJSON_AddStringToObject(o, "messageText", r->message_text);
	adopt_add_int(o, "dequeueCount", r->dequeue_count);
	adopt_add_int(o, "insertedMs", r->inserted_ms);
	cJSON_AddStringToObject(o, "jobId", r->job_id);
	cJSON_AddStringToObject(o, "taskId", r->task_id);
	cJSON_AddStringToObject(o, "etag", r->etag);
	adopt_add_int(o, "retryCount", r->retry_count);
	adopt_add_int(o, "requeueCount", r->requeue_count);
	adopt_add_int(o, "startedMs", r->started_ms);
	text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return text;
}

int
bd_adopt_parse(const char *text, size_t len, struct bd_adopt_record **out,
    char **cause)
{
	static const char *const fields[] = { "version", "messageId",
	    "popReceipt", "messageText", "dequeueCount", "insertedMs", "jobId",
	    "taskId", "etag", "retryCount", "requeueCount", "startedMs", NULL };
	const int req = BD_JSON_REQUIRED;
	struct bd_adopt_record *r = xcalloc(1, sizeof(*r));
	cJSON *o = NULL;
	int64_t ver, dq, retry, requeue;
	int rc;

	*out = NULL;
	if ((rc = bd_json_parse(text, len, &o, cause)) < 0)
		goto fail;
	if ((rc = bd_json_check_fields(o, "", fields, NULL, NULL, NULL,
	    cause)) < 0 ||
	    (rc = bd_json_get_int(o, "", "version", req, 1, BD_ADOPT_VERSION,
	    &ver, cause)) < 0 ||
	    (rc = bd_json_get_string(o, "", "messageId", req | BD_JSON_NONEMPTY,
	    ADOPT_MAX_ID, &r->message_id, cause)) < 0 ||
	    (rc = bd_json_get_string(o, "", "popReceipt", req |
	    BD_JSON_NONEMPTY, ADOPT_MAX_ID, &r->pop_receipt, cause)) < 0 ||
	    (rc = bd_json_get_string(o, "", "messageText", req,
	    ADOPT_MAX_RECORD, &r->message_text, cause)) < 0 ||
	    (rc = bd_json_get_int(o, "", "dequeueCount", req, 0, INT32_MAX,
	    &dq, cause)) < 0 ||
	    (rc = bd_json_get_int(o, "", "insertedMs", req, 0, INT64_MAX,
	    &r->inserted_ms, cause)) < 0 ||
	    (rc = bd_json_get_id(o, "", "jobId", req, &r->job_id, cause)) < 0 ||
	    (rc = bd_json_get_id(o, "", "taskId", req, &r->task_id,
	    cause)) < 0 ||
	    (rc = bd_json_get_string(o, "", "etag", req | BD_JSON_NONEMPTY,
	    ADOPT_MAX_ID, &r->etag, cause)) < 0 ||
	    (rc = bd_json_get_int(o, "", "retryCount", req, 0, INT32_MAX,
	    &retry, cause)) < 0 ||
	    (rc = bd_json_get_int(o, "", "requeueCount", req, 0, INT32_MAX,
	    &requeue, cause)) < 0 ||
	    (rc = bd_json_get_int(o, "", "startedMs", req, 0, INT64_MAX,
	    &r->started_ms, cause)) < 0)
		goto fail;
	r->dequeue_count = (int)dq;
	r->retry_count = (int)retry;
	r->requeue_count = (int)requeue;
	cJSON_Delete(o);
	*out = r;
	return 0;
fail:
	cJSON_Delete(o);
	bd_adopt_record_free(r);
	return rc < 0 ? rc : BD_EJSON;
}

int
bd_adopt_save(const char *dir, const struct bd_adopt_record *r)
{
	char *path = bd_adopt_record_path(dir, r->message_id);
	char *text = bd_adopt_format(r);
	/* No fsync: the record has to outlive batchd, not the machine; the
	 * supervisors die with the machine, and after a reboot a lost record
	 * only means the task's message comes back when its lease ends. */
	int rc = bd_write_file_replace(path, text, strlen(text), 0600);

	free(text);
	free(path);
	return rc;
}

void
bd_adopt_remove(const char *dir, const char *message_id)
{
	char *path = bd_adopt_record_path(dir, message_id);

	/* The record first: a state file without one is never looked at. */
	(void)unlink(path);
	free(path);
	path = bd_adopt_state_path(dir, message_id);
	(void)unlink(path);
	free(path);
}

/* Moves a record that cannot be used out of the way, saying why. */
static void
adopt_set_aside(const char *path, const char *why)
{
	char *bad = xasprintf("%s.bad", path);

	log_warnx("adopt: %s: %s; renamed to %s, its task is not adopted",
	    path, why, bad);
	(void)rename(path, bad);
	free(bad);
}

int
bd_adopt_load(const char *dir, struct bd_adopt_record ***out, size_t *n)
{
	struct bd_adopt_record **v = NULL;
	size_t count = 0, cap = 0;
	struct dirent *de;
	DIR *d;

	*out = NULL;
	*n = 0;
	if ((d = opendir(dir)) == NULL)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d)) != NULL) {
		size_t nl = strlen(de->d_name);
		struct bd_adopt_record *r;
		char *path, *text, *cause = NULL;
		size_t len;
		int rc;

		if (nl <= 5 || strcmp(de->d_name + nl - 5, ".json") != 0 ||
		    de->d_name[0] == '.')
			continue;
		path = bd_path_join(dir, de->d_name);
		if ((rc = bd_read_file(path, ADOPT_MAX_RECORD, &text,
		    &len)) < 0) {
			adopt_set_aside(path, bd_strerror(rc));
			free(path);
			continue;
		}
		rc = bd_adopt_parse(text, len, &r, &cause);
		free(text);
		if (rc < 0) {
			adopt_set_aside(path, cause);
			free(cause);
			free(path);
			continue;
		}
		free(path);
		if (count == cap) {
			cap = cap ? cap * 2 : 8;
			v = xreallocarray(v, cap, sizeof(*v));
		}
		v[count++] = r;
	}
	closedir(d);
	*out = v;
	*n = count;
	return 0;
}
