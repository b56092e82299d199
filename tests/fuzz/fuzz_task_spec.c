/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for task_spec.c and json_field.c: any bytes, parsed as
 * each kind of task, must give either a spec that keeps the documented
 * invariants or an error with a cause, and never leak or crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json_field.h"
#include "task_spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Checks what every successfully parsed spec promises. */
static void
check_spec(const struct bd_task_spec *s, enum bd_task_kind kind)
{
	size_t i;

	if (s->kind != kind || s->id == NULL || s->command_line == NULL ||
	    s->command_line[0] == '\0')
		abort();
	if (kind == BD_TASK_KIND_START ? s->id[0] != '\0' :
	    !bd_json_id_valid(s->id))
		abort();
	for (i = 0; i < s->n_resource_files; i++) {
		const struct bd_resource_file *rf = &s->resource_files[i];

		if (rf->url == NULL || (rf->file_mode & ~0777u) != 0)
			abort();
		if (rf->file_path != NULL && (rf->file_path[0] == '/' ||
		    strcmp(rf->file_path, "..") == 0 ||
		    strncmp(rf->file_path, "../", 3) == 0 ||
		    strstr(rf->file_path, "/../") != NULL))
			abort();
		if (rf->source == BD_RESOURCE_HTTP_URL &&
		    rf->file_path == NULL)
			abort();
	}
	for (i = 0; i < s->environment_settings.count; i++)
		if (strchr(s->environment_settings.items[i].name, '=') != NULL)
			abort();
	if (s->required_slots < 1 || s->required_slots > 256)
		abort();
	if (kind == BD_TASK_KIND_JOB_RELEASE &&
	    s->constraints.max_wall_clock_ms > 15 * 60 * 1000)
		abort();
	if (s->constraints.max_task_retry_count < -1)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bd_task_spec *spec;
	char *cause;
	int kind, rc;

	for (kind = BD_TASK_KIND_TASK; kind <= BD_TASK_KIND_START; kind++) {
		spec = NULL;
		cause = NULL;
		rc = bd_task_spec_parse((const char *)data, size,
		    (enum bd_task_kind)kind, &spec, &cause);
		if (rc == 0) {
			if (spec == NULL || cause != NULL)
				abort();
			check_spec(spec, (enum bd_task_kind)kind);
		} else if (spec != NULL || cause == NULL || rc >= 0)
			abort();
		bd_task_spec_free(spec);
		free(cause);
	}
	return 0;
}
