/* SPDX-License-Identifier: MIT */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "task_info.h"
#include "unit.h"

TEST(execution_info_json)
{
	struct bd_execution_info info = { 0 };
	cJSON *j;
	char *text;

	info.start_ms = 1000;
	info.end_ms = 2500;
	info.has_exit_code = true;
	info.exit_code = 3;
	info.retry_count = 1;
	info.last_retry_ms = 1200;
	info.result = BD_RESULT_FAILURE;
	bd_execution_info_set_failure(&info, bd_failure_info_new(
	    BD_CATEGORY_USER_ERROR, "BlobNotFound",
	    "resourceFiles[0]: https://a.blob/c/x?sv=1&sig=SECRET%%2F: HTTP 404"));
	bd_failure_info_set_detail(info.failure, "url",
	    "https://a/b?sig=OTHER");
	j = bd_execution_info_to_json(&info);
	text = cJSON_PrintUnformatted(j);
	ASSERT_STR_CONTAINS(text, "\"startTime\":\"1970-01-01T00:00:01.000Z\"");
	ASSERT_STR_CONTAINS(text, "\"endTime\":\"1970-01-01T00:00:02.500Z\"");
	ASSERT_STR_CONTAINS(text, "\"exitCode\":3");
	ASSERT_STR_CONTAINS(text, "\"category\":\"usererror\"");
	ASSERT_STR_CONTAINS(text, "\"code\":\"BlobNotFound\"");
	ASSERT_STR_CONTAINS(text, "\"retryCount\":1");
	ASSERT_STR_CONTAINS(text, "\"requeueCount\":0");
	ASSERT_STR_CONTAINS(text, "\"result\":\"failure\"");
	ASSERT_STR_CONTAINS(text, "sig=REDACTED");
	ASSERT(strstr(text, "SECRET") == NULL);
	ASSERT(strstr(text, "OTHER") == NULL);
	free(text);
	cJSON_Delete(j);
	bd_execution_info_clear(&info);

	/* Nothing optional: no exit code, no times, no result. */
	struct bd_execution_info empty = { 0 };
	j = bd_execution_info_to_json(&empty);
	text = cJSON_PrintUnformatted(j);
	ASSERT_STR_EQ(text, "{\"retryCount\":0,\"requeueCount\":0}");
	free(text);
	cJSON_Delete(j);
}

/* Attempts add up; an unknown value makes the sum unknown. */
TEST(stats)
{
	struct bd_execution_info info = { 0 };
	cJSON *j;
	char *text;

	ASSERT_NULL(bd_task_stats_to_json(&info));	/* never ran */
	info.start_ms = 1000;
	info.end_ms = 4000;
	bd_task_stats_add(&info.stats, 1500, 250000, 1000, 10 << 20);
	bd_task_stats_add(&info.stats, 500, 750000, 2000, 30 << 20);
	ASSERT_INT_EQ(info.stats.wall_clock_ms, 2000);
	ASSERT_INT_EQ(info.stats.user_cpu_usec, 1000000);
	ASSERT_INT_EQ(info.stats.kernel_cpu_usec, 3000);
	ASSERT_INT_EQ(info.stats.peak_memory_bytes, 30 << 20);
	j = bd_task_stats_to_json(&info);
	text = cJSON_PrintUnformatted(j);
	ASSERT_STR_EQ(text, "{\"startTime\":\"1970-01-01T00:00:01.000Z\","
	    "\"lastUpdateTime\":\"1970-01-01T00:00:04.000Z\","
	    "\"wallClockTime\":\"PT2S\",\"userCPUTime\":\"PT1S\","
	    "\"kernelCPUTime\":\"PT0.003S\",\"peakMemoryBytes\":31457280}");
	free(text);
	cJSON_Delete(j);

	/* No cgroup: only the wall clock. */
	bd_task_stats_add(&info.stats, 1000, -1, -1, -1);
	ASSERT_INT_EQ(info.stats.wall_clock_ms, 3000);
	j = bd_task_stats_to_json(&info);
	text = cJSON_PrintUnformatted(j);
	ASSERT_STR_CONTAINS(text, "\"wallClockTime\":\"PT3S\"");
	ASSERT(strstr(text, "CPUTime") == NULL);
	ASSERT(strstr(text, "peakMemoryBytes") == NULL);
	free(text);
	cJSON_Delete(j);
}

int
main(void)
{
	RUN(execution_info_json);
	RUN(stats);
	return 0;
}
