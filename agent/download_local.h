/* SPDX-License-Identifier: MIT */
#ifndef BD_DOWNLOAD_LOCAL_H
#define BD_DOWNLOAD_LOCAL_H

/*
 * The file:// side of resource files, for download.c: a directory listed
 * as if it were a blob container, and the check of a local source file.
 * Both block on the disk, so download.c calls them from uv_queue_work.
 * They return 0 or a negative errno (BD_ETOOBIG past a limit) and never
 * log.
 *
 * Both act with the rights of the task's user (file_access.h; NULL:
 * batchd's own), so a task names only files its user could read itself:
 * file:///etc/shadow gives -EACCES, not a copy.
 */

#include <stddef.h>

#include "process.h"

/* Directory levels a listing descends at most. */
#define BD_DOWNLOAD_LOCAL_MAX_DEPTH	64

/*
 * Lists the regular files below dir whose names relative to dir
 * ('/'-separated, like blob names) start with prefix (NULL or "" for all),
 * sorted bytewise as a blob listing is.  Symlinks and special files are
 * not blobs and are skipped; directories that cannot hold a matching name
 * are not entered.  Returns 0 with *names (n entries; the caller frees
 * each and the array), BD_ETOOBIG past max names or
 * BD_DOWNLOAD_LOCAL_MAX_DEPTH levels, or a negative errno (-ENOENT for a
 * missing dir, -EACCES for an unreadable one...).
 */
int bd_download_local_list(const struct bd_process_identity *id,
    const char *dir, const char *prefix, size_t max, char ***names, size_t *n);

/*
 * Opens path, which must be a regular file the user can read: a file
 * descriptor (the caller closes it), -EINVAL for something that is not a
 * regular file, or the errno of open/fstat.
 */
int bd_download_local_open(const struct bd_process_identity *id,
    const char *path);

#endif
