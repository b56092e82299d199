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

const char *bd_error_category_name(enum bd_error_category c);
const char *bd_task_result_name(enum bd_task_result r);

#endif
