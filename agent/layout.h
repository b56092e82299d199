/* SPDX-License-Identifier: MIT */
#ifndef BD_LAYOUT_H
#define BD_LAYOUT_H

/*
 * The node's directory layout, as on an Azure Batch Linux node
 * (reference §3.2):
 *
 *   <root>/shared  startup/{wd,certs}  applications  fsmounts  volatile
 *   <root>/workitems/<jobId>/job-1/<taskId>/{wd,certs,stdout.txt,...}
 *
 * The job preparation and release tasks live beside the job's tasks under
 * their ids; the start task's directory is <root>/startup.
 */

#include "task_spec.h"

struct bd_task_dirs {
	char *task_dir; /* AZ_BATCH_TASK_DIR */
	char *wd;	/* AZ_BATCH_TASK_WORKING_DIR */
	char *certs;	/* AZ_BATCH_CERTIFICATES_DIR */
};

/* Creates the node-wide directories under root; 0 or a negative errno. */
int bd_layout_prepare_node(const char *root);

/*
 * Fills dirs for a task of the job (job_id ignored for the start task).
 * Caller frees with bd_layout_dirs_free().
 */
void bd_layout_task_dirs(const char *root, const char *job_id,
    const struct bd_task_spec *task, struct bd_task_dirs *dirs);
void bd_layout_dirs_free(struct bd_task_dirs *dirs);

/* Single paths; caller frees. */
char *bd_layout_path(const char *root, const char *name); /* "shared", ... */

#endif
