/* SPDX-License-Identifier: MIT */
#ifndef BD_TASK_INFO_H
#define BD_TASK_INFO_H

/*
 * What happened to a task, in Azure Batch's shapes: TaskExecutionInformation
 * with its TaskFailureInformation, and their JSON form for records, `batchd
 * run --result` and the pool's tables.  Failure codes are Azure's
 * TaskFailureInformationCodes (reference §2.3).
 */

#include <stdbool.h>
#include <stdint.h>

struct cJSON;

enum bd_error_category {
	BD_CATEGORY_USER_ERROR,
	BD_CATEGORY_SERVER_ERROR,
};

enum bd_task_result {
	BD_RESULT_NONE, /* not completed */
	BD_RESULT_SUCCESS,
	BD_RESULT_FAILURE,
};

struct bd_failure_info {
	enum bd_error_category category;
	char *code;	/* e.g. "BlobNotFound" */
	char *message;	/* for a person; redacted */
	char *detail_name;  /* one optional detail pair, or NULL */
	char *detail_value;
};

/*
 * Azure's TaskStatistics for what batchd can measure, summed over the
 * task's attempts: CPU time and peak memory come from the task's cgroup,
 * so they are unknown (-1) on a node without cgroups.
 */
struct bd_task_stats {
	bool valid;		/* the command line ran at least once */
	int64_t wall_clock_ms;	/* from each launch to its exit, summed */
	int64_t user_cpu_usec;	/* -1 = unknown */
	int64_t kernel_cpu_usec;	/* -1 = unknown */
	int64_t peak_memory_bytes;	/* the highest of the attempts; -1 */
};

struct bd_execution_info {
	int64_t start_ms;	/* 0 = not started */
	int64_t end_ms;		/* 0 = not completed */
	bool has_exit_code;
	int exit_code;
	int retry_count;
	int64_t last_retry_ms;	/* 0 = none */
	int requeue_count;
	int64_t last_requeue_ms;
	enum bd_task_result result;
	struct bd_failure_info *failure; /* owned; NULL on success */
	/* Written as the task's own "stats", beside executionInfo. */
	struct bd_task_stats stats;
};

/*
 * A new failure; message is formatted, then redacted.  Caller frees with
 * bd_failure_info_free().
 */
struct bd_failure_info *bd_failure_info_new(enum bd_error_category category,
    const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void bd_failure_info_set_detail(struct bd_failure_info *f, const char *name,
    const char *value);
void bd_failure_info_free(struct bd_failure_info *f);

/* Replaces info's failure (freeing the old one); takes ownership of f. */
void bd_execution_info_set_failure(struct bd_execution_info *info,
    struct bd_failure_info *f);
/* Frees what info owns (not info itself). */
void bd_execution_info_clear(struct bd_execution_info *info);

/* JSON in the REST shape; caller frees with cJSON_Delete(). */
struct cJSON *bd_execution_info_to_json(const struct bd_execution_info *info);
struct cJSON *bd_failure_info_to_json(const struct bd_failure_info *f);

/*
 * Adds one attempt to s: its wall clock time, and its CPU times and peak
 * memory (each -1 when unknown, which makes the sum unknown too).
 */
void bd_task_stats_add(struct bd_task_stats *s, int64_t wall_clock_ms,
    int64_t user_cpu_usec, int64_t kernel_cpu_usec, int64_t peak_memory);

/*
 * info's stats as Azure's TaskStatistics (startTime, lastUpdateTime,
 * wallClockTime, userCPUTime, kernelCPUTime as ISO 8601 durations) plus
 * batchd's peakMemoryBytes; unknown values are left out.  NULL when the
 * task never ran.  Caller frees with cJSON_Delete().
 */
struct cJSON *bd_task_stats_to_json(const struct bd_execution_info *info);

const char *bd_error_category_name(enum bd_error_category c);
const char *bd_task_result_name(enum bd_task_result r);

#endif
