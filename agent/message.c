/* SPDX-License-Identifier: MIT */
/*
 * The task message codec.  Official Azure SDKs differ on whether queue
 * messages are base64-encoded, so a text that is not a JSON object but is
 * valid base64 of one is accepted too.  Decoding validates the whole task
 * with the task model, so nothing past this point sees raw queue text.
 */
#include "message.h"

#include <cjson/cJSON.h>
#include "crypto_api.h"
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "json_field.h"
#include "xmalloc.h"

void
bd_task_message_free(struct bd_task_message *m)
{
	if (m == NULL)
		return;
	free(m->job_id);
	bd_task_spec_free(m->task);
	cJSON_Delete(m->task_json);
	free(m);
}

/*
 * Decodes base64 text into *out (NUL-terminated; caller frees); -1 when
 * the text is not base64.
 */
static int
message_unbase64(const char *text, size_t len, char **out, size_t *out_len)
{
	size_t n = len;
	unsigned char *buf;
	int got;

	while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r' ||
	    text[n - 1] == ' '))
		n--;
	if (n == 0 || n % 4 != 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		char c = text[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '+' || c == '/' ||
		    (c == '=' && i >= n - 2)))
			return -1;
	}
	buf = xmalloc(n / 4 * 3 + 1);
	got = EVP_DecodeBlock(buf, (const unsigned char *)text, (int)n);
	if (got < 0) {
		free(buf);
		return -1;
	}
	/* EVP_DecodeBlock counts the padding bytes as data. */
	if (text[n - 1] == '=')
		got--;
	if (text[n - 2] == '=')
		got--;
	buf[got] = '\0';
	*out = (char *)buf;
	*out_len = (size_t)got;
	return 0;
}

/* Reads the ids a failure report needs, whatever else is wrong. */
static void
message_salvage_ids(const cJSON *root, char **job_id, char **task_id)
{
	const cJSON *j = bd_json_field(root, "jobId");
	const cJSON *t = bd_json_field(root, "task");
	const cJSON *id = t != NULL ? bd_json_field(t, "id") : NULL;

	if (job_id != NULL && cJSON_IsString(j) && bd_json_id_valid(j->valuestring))
		*job_id = xstrdup(j->valuestring);
	if (task_id != NULL && cJSON_IsString(id) &&
	    bd_json_id_valid(id->valuestring))
		*task_id = xstrdup(id->valuestring);
}

int
bd_task_message_decode(const char *text, size_t len,
    struct bd_task_message **out, char **job_id, char **task_id,
    char **cause)
{
	static const char *const allowed[] = {
		"version", "jobId", "task", "retryCount", "requeueCount",
		"dependencyWaits", NULL,
	};
	struct bd_task_message *m = NULL;
	cJSON *root = NULL;
	char *decoded = NULL;
	size_t decoded_len;
	int64_t v;
	int rc;

	*out = NULL;
	if (job_id != NULL)
		*job_id = NULL;
	if (task_id != NULL)
		*task_id = NULL;
	if (len > BD_MESSAGE_MAX) {
		*cause = xasprintf("message: longer than %d bytes",
		    BD_MESSAGE_MAX);
		return BD_ETOOBIG;
	}
	/* A JSON object starts with '{' (after blanks); base64 never does. */
	size_t i = 0;
	while (i < len && (text[i] == ' ' || text[i] == '\n' ||
	    text[i] == '\r' || text[i] == '\t'))
		i++;
	if ((i == len || text[i] != '{') &&
	    message_unbase64(text, len, &decoded, &decoded_len) == 0) {
		text = decoded;
		len = decoded_len;
	}
	if ((rc = bd_json_parse(text, len, &root, cause)) < 0) {
		char *c = *cause;
		*cause = xasprintf("message: %s%s", decoded ? "base64 text: " :
		    "", c);
		free(c);
		free(decoded);
		return rc;
	}
	free(decoded);
	message_salvage_ids(root, job_id, task_id);
	m = xcalloc(1, sizeof(*m));
	m->version = BD_MESSAGE_VERSION;
	if ((rc = bd_json_check_fields(root, "message", allowed, NULL, NULL,
	    NULL, cause)) < 0)
		goto fail;
	if ((rc = bd_json_get_int(root, "message", "version", 0, 1,
	    BD_MESSAGE_VERSION, &v, cause)) < 0)
		goto fail;
	if (rc == 1)
		m->version = (int)v;
	if ((rc = bd_json_get_id(root, "message", "jobId", BD_JSON_REQUIRED,
	    &m->job_id, cause)) < 0)
		goto fail;
	if ((rc = bd_json_get_int(root, "message", "retryCount", 0, 0,
	    1000000, &v, cause)) < 0)
		goto fail;
	if (rc == 1)
		m->retry_count = (int)v;
	if ((rc = bd_json_get_int(root, "message", "requeueCount", 0, 0,
	    1000000, &v, cause)) < 0)
		goto fail;
	if (rc == 1)
		m->requeue_count = (int)v;
	if ((rc = bd_json_get_int(root, "message", "dependencyWaits", 0, 0,
	    1000000, &v, cause)) < 0)
		goto fail;
	if (rc == 1)
		m->dependency_waits = (int)v;
	const cJSON *task = bd_json_field(root, "task");
	if (task == NULL || !cJSON_IsObject(task)) {
		rc = bd_json_fail(cause, BD_EINVALID, "message", "task",
		    task == NULL ? "required" : "expected an object");
		goto fail;
	}
	if ((rc = bd_task_spec_from_json(task, BD_TASK_KIND_TASK, "task",
	    &m->task, cause)) < 0)
		goto fail;
	m->task_json = cJSON_Duplicate(task, 1);
	cJSON_Delete(root);
	*out = m;
	return 0;
fail:
	cJSON_Delete(root);
	bd_task_message_free(m);
	return rc;
}

char *
bd_task_message_encode(const char *job_id, const cJSON *task_json,
    int retry_count, int requeue_count, int dependency_waits, char **cause)
{
	cJSON *root = cJSON_CreateObject();
	char *text;

	cJSON_AddNumberToObject(root, "version", BD_MESSAGE_VERSION);
	cJSON_AddStringToObject(root, "jobId", job_id);
	cJSON_AddItemToObject(root, "task", cJSON_Duplicate(task_json, 1));
	if (retry_count > 0)
		cJSON_AddNumberToObject(root, "retryCount", retry_count);
	if (requeue_count > 0)
		cJSON_AddNumberToObject(root, "requeueCount", requeue_count);
	if (dependency_waits > 0)
		cJSON_AddNumberToObject(root, "dependencyWaits",
		    dependency_waits);
	text = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	if (text == NULL)
		abort(); /* cJSON fails only when out of memory */
	if (strlen(text) > BD_MESSAGE_MAX) {
		*cause = xasprintf("the task message would be %zu bytes, more "
		    "than the queue's limit of %d", strlen(text),
		    BD_MESSAGE_MAX);
		free(text);
		return NULL;
	}
	return text;
}
