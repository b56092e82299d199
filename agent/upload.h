/* SPDX-License-Identifier: MIT */
#ifndef BD_UPLOAD_H
#define BD_UPLOAD_H

/*
 * Output files: after the task process exits, each outputFiles entry whose
 * uploadCondition holds has its filePattern expanded ($VAR from the task's
 * environment, then the glob of reference §1.3, relative to the working
 * directory) and every match uploaded to its destination container:
 * a file:// directory, or an http(s) container URL with a SAS, through the
 * blob client (common/blob.h: one Put Blob, or Put Block and Put Block List
 * for a big file, with Content-MD5, and the uploadHeaders on the request
 * that creates the blob).  Blob names
 * follow §1.3/§7: without wildcards, `path` or the file name; with
 * wildcards, `path/` + the path relative to the pattern's base directory.
 *
 * Progress goes to <task_dir>/fileuploadout.txt, one JSON object per
 * failure to <task_dir>/fileuploaderr.txt; a pattern that matches nothing
 * is logged, not an error.  A failure gives the first error's Azure code
 * (FileUploadContainerNotFound, FileUploadAccessDenied, FileUploadConflict,
 * FileUploadTimedOut, FileUploadMiscError) with a message naming the file
 * and the destination without its SAS signature.
 *
 * Patterns are expanded, matches opened, file:// containers written and
 * the two log files created with the rights of the task's user
 * (file_access.h): a match the user cannot read itself (a symlink to
 * /etc/shadow, to the agent's configuration) fails with
 * FileUploadAccessDenied and its content is never read.
 */

#include <stdbool.h>
#include <uv.h>

#include "environment.h"
#include "http.h"
#include "process.h"
#include "task_info.h"
#include "task_spec.h"

struct bd_upload;

typedef void (*bd_upload_progress_cb)(void *arg, const char *name,
    int64_t done, int64_t total);
/* failure NULL on success, else owned by the callback. */
typedef void (*bd_upload_done_cb)(void *arg, struct bd_failure_info *failure,
    int cancelled);

struct bd_upload_options {
	uv_loop_t *loop;
	struct bd_http *http;		/* borrowed */
	const struct bd_output_file *files; /* borrowed until done */
	size_t n_files;
	const char *wd;			/* patterns are relative to it */
	const char *task_dir;		/* where the two log files go */
	const struct bd_env *env;	/* for $VAR in patterns; borrowed */
	/* The task's user, whose rights every file access has; NULL:
	   batchd's own.  Borrowed until done. */
	const struct bd_process_identity *identity;
	bool task_succeeded;		/* exit code 0: selects by uploadCondition */
	int max_parallel;		/* default 8 */
	bd_upload_progress_cb progress_cb; /* or NULL */
	void *progress_arg;
};

/* Starts; 0 or a negative errno (then cb never runs). */
int bd_upload_start(const struct bd_upload_options *opts, bd_upload_done_cb cb,
    void *arg, struct bd_upload **out);
void bd_upload_cancel(struct bd_upload *u);
void bd_upload_free(struct bd_upload *u);

/*
 * The blob name for a matched file (exposed for tests): pattern has
 * wildcards or not, path is the destination path or NULL, relative is the
 * glob's relative name.  Caller frees.
 */
char *bd_upload_blob_name(bool has_wildcard, const char *path,
    const char *relative);

#endif
