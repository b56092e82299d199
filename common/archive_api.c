/* SPDX-License-Identifier: MIT */
/* libarchive's entry points, resolved on first use (see archive_api.h). */
#include "archive_api.h"

#include <pthread.h>
#include <stddef.h>

#include "lazylib.h"

struct bd_archive_api bd_archive;

#define ARCHIVE_SYMBOL(field, name) { name, (void **)&bd_archive.field }

static const struct bd_lazylib_symbol archive_symbols[] = {
	ARCHIVE_SYMBOL(read_new, "archive_read_new"),
	ARCHIVE_SYMBOL(read_support_filter_by_code,
	    "archive_read_support_filter_by_code"),
	ARCHIVE_SYMBOL(read_support_format_by_code,
	    "archive_read_support_format_by_code"),
	ARCHIVE_SYMBOL(read_open_fd, "archive_read_open_fd"),
	ARCHIVE_SYMBOL(read_next_header, "archive_read_next_header"),
	ARCHIVE_SYMBOL(read_data_block, "archive_read_data_block"),
	ARCHIVE_SYMBOL(read_free, "archive_read_free"),
	ARCHIVE_SYMBOL(error_string, "archive_error_string"),
	ARCHIVE_SYMBOL(entry_pathname, "archive_entry_pathname"),
	ARCHIVE_SYMBOL(entry_filetype, "archive_entry_filetype"),
	ARCHIVE_SYMBOL(entry_perm, "archive_entry_perm"),
	ARCHIVE_SYMBOL(entry_size, "archive_entry_size"),
	ARCHIVE_SYMBOL(entry_size_is_set, "archive_entry_size_is_set"),
	ARCHIVE_SYMBOL(entry_symlink, "archive_entry_symlink"),
	ARCHIVE_SYMBOL(entry_hardlink, "archive_entry_hardlink"),
	ARCHIVE_SYMBOL(entry_mtime, "archive_entry_mtime"),
	ARCHIVE_SYMBOL(entry_mtime_nsec, "archive_entry_mtime_nsec"),
	ARCHIVE_SYMBOL(entry_mtime_is_set, "archive_entry_mtime_is_set"),
	{ NULL, NULL },
};

static struct bd_lazylib archive_lib = {
	"libarchive.so.13", archive_symbols, 0, NULL,
};

static pthread_once_t archive_once = PTHREAD_ONCE_INIT;
static int archive_state;
static const char *archive_cause;

/* Loads libarchive once; pthread_once serialises the threads that race. */
static void
archive_load(void)
{
	archive_state = bd_lazylib_load(&archive_lib, &archive_cause);
}

int
bd_archive_api_load(const char **cause)
{
	pthread_once(&archive_once, archive_load);
	if (archive_state < 0 && cause != NULL)
		*cause = archive_cause;
	return archive_state;
}
