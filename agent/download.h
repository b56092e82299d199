/* SPDX-License-Identifier: MIT */
#ifndef BD_DOWNLOAD_H
#define BD_DOWNLOAD_H

/*
 * Resource files: fetching a task's resourceFiles into its working
 * directory before the command runs (reference §1.2): httpUrl over http(s)
 * (through the blob client, common/blob.h: parallel ranged GETs for big
 * files, MD5 checked when the server gives a Content-MD5) and file://;
 * storageContainerUrl as an http(s) container URL (listed, then every blob
 * whose name starts with blobPrefix, names kept whole below filePath) or a
 * file:// directory; autoStorageContainerName as a container of the node's
 * storage account.  Files are written under a temporary name and renamed
 * when complete, with fileMode applied.
 *
 * A failure is a pre-processing error: the callback gets a failure info
 * with one of Azure's codes (BlobNotFound, BlobAccessDenied,
 * BlobDownloadMiscError, BlobDownloadTimedOut, ResourceContainerNotFound,
 * ResourceContainerAccessDenied, ResourceContainerListTimedOut,
 * ResourceContainerListMiscError, DiskFull,
 * ResourceDirectoryCreateFailed, ResourceFileCreateFailed,
 * ResourceFileWriteFailed) and a message naming the file and the reason,
 * never a SAS signature.
 */

#include <stdint.h>
#include <uv.h>

#include "http.h"
#include "process.h"
#include "storage_auth.h"
#include "task_info.h"
#include "task_spec.h"

struct bd_download;

/* Progress of the whole set, for a terminal status line (optional). */
typedef void (*bd_download_progress_cb)(void *arg, const char *name,
    int64_t done, int64_t total);

/*
 * failure is NULL on success; otherwise the callback owns it.  Runs exactly
 * once if bd_download_start() succeeded; after bd_download_cancel() it runs
 * with failure NULL and cancelled 1.
 */
typedef void (*bd_download_done_cb)(void *arg, struct bd_failure_info *failure,
    int cancelled);

struct bd_download_options {
	uv_loop_t *loop;
	struct bd_http *http;		/* shared; borrowed */
	/* The node's storage account (autoStorageContainerName), or NULL
	   when none is configured; borrowed until done. */
	const struct bd_storage_account *storage;
	const struct bd_resource_file *files; /* borrowed until done */
	size_t n_files;
	const char *wd;			/* destination root; copied */
	/* The task's user: file:// sources are read with its rights
	   (file_access.h); NULL: batchd's own.  Borrowed until done. */
	const struct bd_process_identity *identity;
	int max_parallel;		/* files at once; default 8 */
	bd_download_progress_cb progress_cb; /* or NULL */
	void *progress_arg;
};

/* Starts; 0 or a negative errno (then cb never runs). */
int bd_download_start(const struct bd_download_options *opts,
    bd_download_done_cb cb, void *arg, struct bd_download **out);

/* Stops transfers; the callback then runs with cancelled = 1. */
void bd_download_cancel(struct bd_download *d);

/* Frees after the callback has run. */
void bd_download_free(struct bd_download *d);

#endif
