/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for common/archive: the input is an archive, unpacked
 * into a fresh directory with small limits.  Besides not crashing, the
 * unpacker must keep its promises whatever the input: nothing appears
 * beside or above the destination; inside it are only regular files,
 * directories and symlinks, without set-uid, set-gid or sticky bits, and
 * every symlink that resolves stays inside; the counts stay within the
 * limits; a failure always gives a cause and a success never does.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive.h"
#include "fsutil.h"
#include "xmalloc.h"

#define FUZZ_MAX_BYTES (256 * 1024)
#define FUZZ_MAX_ENTRIES 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char root[PATH_MAX];	/* holds "in" and "d"; d holds "dest" */
static char input[PATH_MAX], box[PATH_MAX], dest[PATH_MAX];
static size_t dest_len;

/* Removes the scratch directory when libFuzzer exits. */
static void
fuzz_cleanup(void)
{
	(void)bd_rm_rf(root);
}

/*
 * Makes the scratch directory once, in memory when /dev/shm is there (a
 * run is mostly creating and removing files); its real path, for the
 * checks.
 */
static void
fuzz_setup(void)
{
	char shm[] = "/dev/shm/batchd-fuzz-archive.XXXXXX";
	char tmp[] = "/tmp/batchd-fuzz-archive.XXXXXX";
	char *tmpl = access("/dev/shm", W_OK) == 0 ? shm : tmp;

	if (root[0] != '\0')
		return;
	if (mkdtemp(tmpl) == NULL || realpath(tmpl, root) == NULL)
		abort();
	snprintf(input, sizeof(input), "%s/in", root);
	snprintf(box, sizeof(box), "%s/d", root);
	snprintf(dest, sizeof(dest), "%s/d/dest", root);
	dest_len = strlen(dest);
	atexit(fuzz_cleanup);
}

/* Whether the directory path holds exactly the one name only. */
static bool
holds_only(const char *path, const char *a, const char *b)
{
	struct dirent *de;
	bool ok = true;
	DIR *d;

	if ((d = opendir(path)) == NULL)
		abort();
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0 &&
		    strcmp(de->d_name, a) != 0 &&
		    (b == NULL || strcmp(de->d_name, b) != 0))
			ok = false;
	closedir(d);
	return ok;
}

/* Checks one thing in dest (nftw callback). */
static int
check_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	char real[PATH_MAX];

	if (S_ISLNK(st->st_mode)) {
		/* Resolved by the kernel, as a task would. */
		if (realpath(path, real) != NULL &&
		    (strncmp(real, dest, dest_len) != 0 ||
		    (real[dest_len] != '/' && real[dest_len] != '\0'))) {
			fprintf(stderr, "symlink %s leads to %s\n", path, real);
			abort();
		}
		return 0;
	}
	if (!S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode)) {
		fprintf(stderr, "%s has type %o\n", path,
		    (unsigned)(st->st_mode & S_IFMT));
		abort();
	}
	if ((st->st_mode & 07000) != 0 && ftw->level > 0) {
		fprintf(stderr, "%s has mode %o\n", path,
		    (unsigned)(st->st_mode & 07777));
		abort();
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bd_archive_limits lim = { .max_bytes = FUZZ_MAX_BYTES,
	    .max_entries = FUZZ_MAX_ENTRIES };
	struct bd_archive_result res;
	char *cause = NULL;
	int fd, rc;

	fuzz_setup();
	if ((fd = open(input, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);
	if (bd_rm_rf(box) < 0 || bd_mkdir_p(dest, 0755) < 0)
		abort();

	rc = bd_archive_extract(input, dest, &lim, &res, &cause);
	if ((rc == 0) != (cause == NULL))
		abort();
	if (res.bytes > FUZZ_MAX_BYTES || res.entries > FUZZ_MAX_ENTRIES)
		abort();
	if (!holds_only(root, "in", "d") || !holds_only(box, "dest", NULL))
		abort();
	if (nftw(dest, check_one, 16, FTW_PHYS) != 0)
		abort();
	free(cause);
	return 0;
}
