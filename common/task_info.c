/* SPDX-License-Identifier: MIT */
/*
 * Execution and failure information in Azure Batch's REST shape.  A
 * bd_execution_info owns its failure; messages are redacted when they are
 * made, so nothing built from a URL can carry a SAS signature onward.
 */
#include "task_info.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdlib.h>

#include "clock.h"
#include "duration.h"
#include "url.h"
#include "xmalloc.h"

struct bd_failure_info *
bd_failure_info_new(enum bd_error_category category, const char *code,
    const char *fmt, ...)
{
	struct bd_failure_info *f = xcalloc(1, sizeof(*f));
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	f->category = category;
	f->code = xstrdup(code);
	f->message = bd_url_redact(msg);
	free(msg);
	return f;
}

void
bd_failure_info_set_detail(struct bd_failure_info *f, const char *name,
    const char *value)
{
	free(f->detail_name);
	free(f->detail_value);
	f->detail_name = xstrdup(name);
	f->detail_value = bd_url_redact(value);
}

void
bd_failure_info_free(struct bd_failure_info *f)
{
	if (f == NULL)
		return;
	free(f->code);
	free(f->message);
	free(f->detail_name);
	free(f->detail_value);
	free(f);
}

void
bd_execution_info_set_failure(struct bd_execution_info *info,
    struct bd_failure_info *f)
{
	bd_failure_info_free(info->failure);
	info->failure = f;
}

void
bd_execution_info_clear(struct bd_execution_info *info)
{
	bd_failure_info_free(info->failure);
	info->failure = NULL;
}

const char *
bd_error_category_name(enum bd_error_category c)
{
	return c == BD_CATEGORY_USER_ERROR ? "usererror" : "servererror";
}

const char *
bd_task_result_name(enum bd_task_result r)
{
	switch (r) {
	case BD_RESULT_SUCCESS:
		return "success";
	case BD_RESULT_FAILURE:
		return "failure";
	default:
		return NULL;
	}
}

cJSON *
bd_failure_info_to_json(const struct bd_failure_info *f)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "category",
	    bd_error_category_name(f->category));
	cJSON_AddStringToObject(o, "code", f->code);
	cJSON_AddStringToObject(o, "message", f->message);
	if (f->detail_name != NULL) {
		cJSON *details = cJSON_AddArrayToObject(o, "details");
		cJSON *d = cJSON_CreateObject();
		cJSON_AddStringToObject(d, "name", f->detail_name);
		cJSON_AddStringToObject(d, "value", f->detail_value);
		cJSON_AddItemToArray(details, d);
	}
	return o;
}

/* Adds name: ISO time unless ms is 0. */
static void
task_info_add_time(cJSON *o, const char *name, int64_t ms)
{
	char buf[40];

	if (ms == 0)
		return;
	bd_clock_format_iso(ms, buf, sizeof(buf));
	cJSON_AddStringToObject(o, name, buf);
}

cJSON *
bd_execution_info_to_json(const struct bd_execution_info *info)
{
	cJSON *o = cJSON_CreateObject();
	const char *result = bd_task_result_name(info->result);

	task_info_add_time(o, "startTime", info->start_ms);
	task_info_add_time(o, "endTime", info->end_ms);
	if (info->has_exit_code)
		cJSON_AddNumberToObject(o, "exitCode", info->exit_code);
	if (info->failure != NULL)
		cJSON_AddItemToObject(o, "failureInfo",
		    bd_failure_info_to_json(info->failure));
	cJSON_AddNumberToObject(o, "retryCount", info->retry_count);
	task_info_add_time(o, "lastRetryTime", info->last_retry_ms);
	cJSON_AddNumberToObject(o, "requeueCount", info->requeue_count);
	task_info_add_time(o, "lastRequeueTime", info->last_requeue_ms);
	if (result != NULL)
		cJSON_AddStringToObject(o, "result", result);
	return o;
}

/* Adds b to *a where both are known; unknown stays unknown. */
static void
task_stats_sum(int64_t *a, int64_t b, bool first)
{
	if (first)
		*a = b;
	else if (*a >= 0)
		*a = b >= 0 ? *a + b : -1;
}

void
bd_task_stats_add(struct bd_task_stats *s, int64_t wall_clock_ms,
    int64_t user_cpu_usec, int64_t kernel_cpu_usec, int64_t peak_memory)
{
	bool first = !s->valid;

	task_stats_sum(&s->wall_clock_ms, wall_clock_ms, first);
	task_stats_sum(&s->user_cpu_usec, user_cpu_usec, first);
	task_stats_sum(&s->kernel_cpu_usec, kernel_cpu_usec, first);
	if (first)
		s->peak_memory_bytes = peak_memory;
	else if (s->peak_memory_bytes >= 0)
		s->peak_memory_bytes = peak_memory < 0 ? -1 :
		    peak_memory > s->peak_memory_bytes ? peak_memory :
		    s->peak_memory_bytes;
	s->valid = true;
}

/* Adds name: an ISO 8601 duration of ms unless ms is unknown. */
static void
task_info_add_duration(cJSON *o, const char *name, int64_t ms)
{
	char buf[BD_DURATION_BUFSZ];

	if (ms < 0)
		return;
	bd_duration_format(ms, buf, sizeof(buf));
	cJSON_AddStringToObject(o, name, buf);
}

cJSON *
bd_task_stats_to_json(const struct bd_execution_info *info)
{
	const struct bd_task_stats *s = &info->stats;
	cJSON *o;

	if (!s->valid)
		return NULL;
	o = cJSON_CreateObject();
	task_info_add_time(o, "startTime", info->start_ms);
	task_info_add_time(o, "lastUpdateTime", info->end_ms);
	task_info_add_duration(o, "wallClockTime", s->wall_clock_ms);
	task_info_add_duration(o, "userCPUTime", s->user_cpu_usec < 0 ? -1 :
	    s->user_cpu_usec / 1000);
	task_info_add_duration(o, "kernelCPUTime", s->kernel_cpu_usec < 0 ?
	    -1 : s->kernel_cpu_usec / 1000);
	if (s->peak_memory_bytes >= 0)
		cJSON_AddNumberToObject(o, "peakMemoryBytes",
		    (double)s->peak_memory_bytes);
	return o;
}
