/* SPDX-License-Identifier: MIT */
#include <cjson/cJSON.h>
#include <stdlib.h>

#include "error.h"
#include "message.h"
#include "unit.h"

static int
decode(const char *text, struct bd_task_message **m, char **job, char **task,
    char **cause)
{
	*cause = NULL;
	return bd_task_message_decode(text, strlen(text), m, job, task, cause);
}

TEST(raw_and_base64)
{
	const char *raw = "{\"jobId\":\"j1\",\"task\":{\"id\":\"t1\","
	    "\"commandLine\":\"/bin/true\"},\"retryCount\":2}";
	/* base64 of the same text, as some SDKs send it */
	const char *b64 = "eyJqb2JJZCI6ImoxIiwidGFzayI6eyJpZCI6InQxIiwiY29tbW"
	    "FuZExpbmUiOiIvYmluL3RydWUifSwicmV0cnlDb3VudCI6Mn0=";
	struct bd_task_message *m;
	char *job, *task, *cause;

	ASSERT_INT_EQ(decode(raw, &m, &job, &task, &cause), 0);
	ASSERT_STR_EQ(m->job_id, "j1");
	ASSERT_STR_EQ(m->task->id, "t1");
	ASSERT_INT_EQ(m->retry_count, 2);
	ASSERT_INT_EQ(m->version, 1);
	bd_task_message_free(m);
	free(job);
	free(task);
	ASSERT_INT_EQ(decode(b64, &m, &job, &task, &cause), 0);
	ASSERT_STR_EQ(m->task->command_line, "/bin/true");
	ASSERT_INT_EQ(m->retry_count, 2);
	bd_task_message_free(m);
	free(job);
	free(task);
}

TEST(encode_round_trip)
{
	cJSON *t = cJSON_Parse("{\"id\":\"t9\",\"commandLine\":\"x y\"}");
	char *cause = NULL, *text, *job, *task;
	struct bd_task_message *m;

	text = bd_task_message_encode("jobA", t, 1, 2, 3, &cause);
	ASSERT_NOT_NULL(text);
	ASSERT_INT_EQ(decode(text, &m, &job, &task, &cause), 0);
	ASSERT_STR_EQ(m->job_id, "jobA");
	ASSERT_INT_EQ(m->retry_count, 1);
	ASSERT_INT_EQ(m->requeue_count, 2);
	ASSERT_INT_EQ(m->dependency_waits, 3);
	ASSERT_STR_EQ(cJSON_GetObjectItem(m->task_json, "commandLine")->valuestring,
	    "x y");
	bd_task_message_free(m);
	free(text);
	free(job);
	free(task);
	/* Over the queue's limit. */
	char *big = malloc(70000);
	memset(big, 'a', 69999);
	big[69999] = '\0';
	cJSON_ReplaceItemInObject(t, "commandLine", cJSON_CreateString(big));
	ASSERT_NULL(bd_task_message_encode("jobA", t, 0, 0, 0, &cause));
	ASSERT_STR_CONTAINS(cause, "limit");
	free(cause);
	free(big);
	cJSON_Delete(t);
}

TEST(bad_messages)
{
	static const struct { const char *text, *want, *job, *task; } cases[] = {
		{ "not json at all", "message: ", NULL, NULL },
		{ "[1,2]", "expected a JSON object", NULL, NULL },
		{ "{\"jobId\":\"j\"}", "message.task: required", "j", NULL },
		{ "{\"task\":{\"id\":\"t\",\"commandLine\":\"x\"}}",
		  "message.jobId", NULL, "t" },
		{ "{\"jobId\":\"j\",\"task\":{\"id\":\"t\"}}",
		  "task.commandLine: required", "j", "t" },
		{ "{\"jobId\":\"j\",\"task\":{\"id\":\"t\",\"commandLine\":\"x\"},"
		  "\"extra\":1}", "extra: unknown field", "j", "t" },
		{ "{\"jobId\":\"j\",\"version\":2,\"task\":{\"id\":\"t\","
		  "\"commandLine\":\"x\"}}", "message.version", "j", "t" },
		{ "{\"jobId\":\"bad id!\",\"task\":{\"id\":\"t\",\"commandLine\":"
		  "\"x\"}}", "message.jobId", NULL, "t" },
		{ "e30=", "message.jobId: required", NULL, NULL }, /* base64 {} */
		{ "!!!!", "message: ", NULL, NULL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct bd_task_message *m = NULL;
		char *job, *task, *cause;
		ASSERT(decode(cases[i].text, &m, &job, &task, &cause) < 0);
		ASSERT_NULL(m);
		ASSERT_STR_CONTAINS(cause, cases[i].want);
		if (cases[i].job)
			ASSERT_STR_EQ(job, cases[i].job);
		else
			ASSERT_NULL(job);
		if (cases[i].task)
			ASSERT_STR_EQ(task, cases[i].task);
		else
			ASSERT_NULL(task);
		free(cause);
		free(job);
		free(task);
	}
	/* Oversized. */
	char *big = malloc(BD_MESSAGE_MAX + 2);
	memset(big, ' ', BD_MESSAGE_MAX + 1);
	big[BD_MESSAGE_MAX + 1] = '\0';
	struct bd_task_message *m;
	char *job, *task, *cause;
	ASSERT_INT_EQ(decode(big, &m, &job, &task, &cause), BD_ETOOBIG);
	free(cause);
	free(big);
}

int
main(void)
{
	RUN(raw_and_base64);
	RUN(encode_round_trip);
	RUN(bad_messages);
	return 0;
}
