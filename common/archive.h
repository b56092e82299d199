/* SPDX-License-Identifier: MIT */
#ifndef BD_ARCHIVE_H
#define BD_ARCHIVE_H

/*
 * Unpacking untrusted archives (application packages): zip, tar.gz, tar.xz,
 * tar.zst and whatever else libarchive reads, into a directory, refusing
 * anything that would land outside it or is not a plain file, directory or
 * in-tree link, and within limits on size and entry count.  Blocking: call
 * it from a worker thread (uv_queue_work), never from the loop.
 */

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct bd_archive_limits {
	uint64_t max_bytes;	/* total unpacked size; 0: no limit */
	uint64_t max_entries;	/* entries of any kind; 0: no limit */
	/* Everyone may read every file and enter every directory, and run
	   what its owner may run (a package that other users' tasks use). */
	bool readable_by_all;
	/* When not NULL, a flag another thread may set to stop the unpack:
	   it is read before each entry and each block of data. */
	const atomic_bool *cancel;
};

struct bd_archive_result {
	uint64_t entries;	/* entries unpacked */
	uint64_t bytes;		/* bytes written */
};

/*
 * Unpacks the archive at path into dest, an existing empty directory.
 * File modes are kept without set-uid, set-gid and sticky bits; owners are
 * not restored.  Returns 0, or BD_EESCAPE (an entry would leave dest, or
 * is a device, FIFO or socket), BD_ETOOBIG (a limit was passed),
 * BD_EINVALID (not an archive, corrupt or truncated), -ECANCELED (the
 * limits' cancel flag was set) or a negative errno;
 * then *cause (caller frees) names the entry and the reason, and dest may
 * hold a partial tree that the caller removes.  result may be NULL.
 */
int bd_archive_extract(const char *path, const char *dest,
    const struct bd_archive_limits *lim, struct bd_archive_result *result,
    char **cause);

#endif
