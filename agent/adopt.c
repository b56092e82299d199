/* SPDX-License-Identifier: MIT */
/*
 * Durable assignment records (see adopt.h).  Records are versioned JSON
 * in files created in place (adopt_write_new()); their names come from the
 * message id with every byte outside [A-Za-z0-9_-] written as %XX, so any
 * id the queue hands out maps to one safe file name.  The lease and the
 * supervisor's state are each one pwrite() of a whole page-aligned slot,
 * so a writer killed in between leaves the old slot or the new one.
 */
#include "adopt.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "fsutil.h"
#include "json_field.h"
#include "log.h"
#include "supervisor.h"
#include "xmalloc.h"

_Static_assert(BD_ADOPT_LEASE_OFFSET - BD_ADOPT_STATE_OFFSET ==
    BD_SUPERVISOR_STATE_MAX, "the supervisor's slot is its largest state");
#define ADOPT_LEASE_SLOT (BD_ADOPT_RECORD_OFFSET - BD_ADOPT_LEASE_OFFSET)

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
bd_adopt_state_path(const char *dir, const char *message_id, int version)
{
	return adopt_path(dir, message_id, version == 1 ? ".supervisor" :
	    ".json");
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

/* The record's JSON: version 1 with the pop receipt, else without it
 * (it is in the lease slot). */
static char *
adopt_format_record(const struct bd_adopt_record *r)
{
	cJSON *o = cJSON_CreateObject();
	char *text;

	adopt_add_int(o, "version", r->version == 1 ? 1 : BD_ADOPT_VERSION);
	cJSON_AddStringToObject(o, "messageId", r->message_id);
	if (r->version == 1)
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

/* Fills slot (ADOPT_LEASE_SLOT bytes) with r's lease; 0 or BD_ETOOBIG. */
static int
adopt_format_lease(const struct bd_adopt_record *r, char *slot)
{
	cJSON *o = cJSON_CreateObject();
	char *text;
	size_t len;

	cJSON_AddStringToObject(o, "popReceipt", r->pop_receipt);
	text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	len = strlen(text);
	if (len >= ADOPT_LEASE_SLOT) {
		free(text);
		return BD_ETOOBIG;
	}
	memcpy(slot, text, len);
	memset(slot + len, ' ', ADOPT_LEASE_SLOT - len - 1);
	slot[ADOPT_LEASE_SLOT - 1] = '\n';
	free(text);
	return 0;
}

char *
bd_adopt_format(const struct bd_adopt_record *r)
{
	char *record = adopt_format_record(r), *text;
	size_t len;

	if (r->version == 1)
		return record;
	len = strlen(record);
	text = xmalloc(BD_ADOPT_RECORD_OFFSET + len + 2);
	/* A blank state: the supervisor has not started. */
	memset(text, ' ', BD_ADOPT_LEASE_OFFSET - 1);
	text[BD_ADOPT_LEASE_OFFSET - 1] = '\n';
	if (adopt_format_lease(r, text + BD_ADOPT_LEASE_OFFSET) < 0) {
		free(record);
		free(text);
		return NULL;
	}
	memcpy(text + BD_ADOPT_RECORD_OFFSET, record, len);
	memcpy(text + BD_ADOPT_RECORD_OFFSET + len, "\n", 2);
	free(record);
	return text;
}

/* The lease slot's pop receipt into r.  0 or a BD_E code with *cause. */
static int
adopt_parse_lease(const char *slot, struct bd_adopt_record *r, char **cause)
{
	static const char *const fields[] = { "popReceipt", NULL };
	cJSON *o = NULL;
	int rc;

	if ((rc = bd_json_parse(slot, ADOPT_LEASE_SLOT, &o, cause)) == 0 &&
	    (rc = bd_json_check_fields(o, "", fields, NULL, NULL, NULL,
	    cause)) == 0)
		rc = bd_json_get_string(o, "", "popReceipt", BD_JSON_REQUIRED |
		    BD_JSON_NONEMPTY, ADOPT_MAX_ID, &r->pop_receipt, cause);
	cJSON_Delete(o);
	return rc;
}

int
bd_adopt_parse(const char *text, size_t len, struct bd_adopt_record **out,
    char **cause)
{
	static const char *const fields[] = { "version", "messageId",
	    "popReceipt", "messageText", "dequeueCount", "insertedMs", "jobId",
	    "taskId", "etag", "retryCount", "requeueCount", "startedMs", NULL };
	const int req = BD_JSON_REQUIRED;
	/* A version 2 file ends its first slot with a newline; a version 1
	 * record is one line of JSON without any. */
	bool v2 = len > BD_ADOPT_RECORD_OFFSET &&
	    text[BD_ADOPT_LEASE_OFFSET - 1] == '\n';
	const char *rec = v2 ? text + BD_ADOPT_RECORD_OFFSET : text;
	size_t rec_len = v2 ? len - BD_ADOPT_RECORD_OFFSET : len;
	struct bd_adopt_record *r = xcalloc(1, sizeof(*r));
	cJSON *o = NULL;
	int64_t ver, dq, retry, requeue;
	int rc;

	*out = NULL;
	if ((rc = bd_json_parse(rec, rec_len, &o, cause)) < 0)
		goto fail;
	if ((rc = bd_json_check_fields(o, "", fields, NULL, NULL, NULL,
	    cause)) < 0 ||
	    (rc = bd_json_get_int(o, "", "version", req, v2 ? 2 : 1,
	    v2 ? BD_ADOPT_VERSION : 1, &ver, cause)) < 0 ||
	    (rc = bd_json_get_string(o, "", "messageId", req | BD_JSON_NONEMPTY,
	    ADOPT_MAX_ID, &r->message_id, cause)) < 0 ||
	    (!v2 && (rc = bd_json_get_string(o, "", "popReceipt", req |
	    BD_JSON_NONEMPTY, ADOPT_MAX_ID, &r->pop_receipt, cause)) < 0) ||
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
	if (v2 && (rc = adopt_parse_lease(text +
	    BD_ADOPT_LEASE_OFFSET, r, cause)) < 0)
		goto fail;
	r->version = (int)ver;
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

/*
 * A new record's file, written in place: it is made before its supervisor
 * starts, so one half written by a crash has no task behind it (the load
 * sets it aside), and a temporary file and its rename would only cost
 * the directory two more changes per task.  Removed first, not truncated:
 * a supervisor of an earlier receive of the message may still write its
 * state into the old file, which must not land in the new one.
 */
static int
adopt_write_new(const char *path, const char *text, size_t len)
{
	int fd, rc;

	if (unlink(path) == -1 && errno != ENOENT)
		return -errno;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd == -1)
		return -errno;
	rc = bd_write_all(fd, text, len);
	if (close(fd) == -1 && rc == 0)
		rc = -errno;
	if (rc < 0)
		(void)unlink(path);
	return rc;
}

int
bd_adopt_save(const char *dir, const struct bd_adopt_record *r)
{
	char *path = bd_adopt_record_path(dir, r->message_id);
	char *text = bd_adopt_format(r);
	int rc = BD_ETOOBIG;

	/* No fsync: the record has to outlive batchd, not the machine; the
	 * supervisors die with the machine, and after a reboot a lost record
	 * only means the task's message comes back when its lease ends.  A
	 * version 1 record is rewritten at every renewal while its task
	 * runs, so it is replaced whole. */
	if (text != NULL)
		rc = r->version == 1 ?
		    bd_write_file_replace(path, text, strlen(text), 0600) :
		    adopt_write_new(path, text, strlen(text));
	free(text);
	free(path);
	return rc;
}

int
bd_adopt_save_lease(const char *dir, const struct bd_adopt_record *r)
{
	char slot[ADOPT_LEASE_SLOT], *path;
	ssize_t n;
	int fd, rc;

	if (r->version == 1)
		return bd_adopt_save(dir, r);
	if ((rc = adopt_format_lease(r, slot)) < 0)
		return rc;
	path = bd_adopt_record_path(dir, r->message_id);
	fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	free(path);
	if (fd == -1)
		return -errno;
	n = pwrite(fd, slot, sizeof(slot), BD_ADOPT_LEASE_OFFSET);
	rc = n == -1 ? -errno : n != (ssize_t)sizeof(slot) ? -EIO : 0;
	if (close(fd) == -1 && rc == 0)
		rc = -errno;
	return rc;
}

void
bd_adopt_remove(const char *dir, const char *message_id, int version)
{
	char *path = bd_adopt_record_path(dir, message_id);

	/* The record first: a state file without one is never looked at. */
	(void)unlink(path);
	free(path);
	if (version == 1) {
		path = bd_adopt_state_path(dir, message_id, version);
		(void)unlink(path);
		free(path);
	}
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

/*
 * Whether name in d is a version 1 state file whose record is gone: a
 * crash between bd_adopt_remove()'s two unlinks, or a record set aside,
 * leaves one, and a later claim of the same message (version 2) keeps
 * its state in its record and would never remove it.
 */
static bool
adopt_is_orphan_state(DIR *d, const char *name, size_t nl)
{
	static const char suffix[] = ".supervisor";
	size_t sl = sizeof(suffix) - 1;
	char *record;
	bool orphan;

	if (nl <= sl || strcmp(name + nl - sl, suffix) != 0)
		return false;
	record = xasprintf("%.*s.json", (int)(nl - sl), name);
	orphan = faccessat(dirfd(d), record, F_OK, AT_SYMLINK_NOFOLLOW) == -1 &&
	    errno == ENOENT;
	free(record);
	return orphan;
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

		if (de->d_name[0] == '.')
			continue;
		if (adopt_is_orphan_state(d, de->d_name, nl)) {
			/* Never looked at: see adopt_is_orphan_state(). */
			(void)unlinkat(dirfd(d), de->d_name, 0);
			continue;
		}
		if (nl <= 5 || strcmp(de->d_name + nl - 5, ".json") != 0)
			continue;
		path = bd_path_join(dir, de->d_name);
		if ((rc = bd_read_file(path, BD_ADOPT_RECORD_OFFSET +
		    ADOPT_MAX_RECORD, &text, &len)) < 0) {
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
