/* SPDX-License-Identifier: MIT */
#ifndef BD_ARCHIVE_API_H
#define BD_ARCHIVE_API_H

/*
 * libarchive, loaded on first use through lazylib, as libcurl is
 * (curl_api.h): linked normally it costs ~4 ms at every start of batchd,
 * and only the unpacking of application packages needs it.  Include this
 * instead of <archive.h> and <archive_entry.h>, and call
 * bd_archive_api_load() before the first archive_* call; the calls below
 * then go through pointers that it fills.  Only the archive module uses
 * libarchive.
 */

/* libarchive's <archive.h>: ours (common/archive.h) has the same name. */
#include BD_LIBARCHIVE_H
#include <archive_entry.h>

struct bd_archive_api {
	__typeof__(archive_read_new) *read_new;
	__typeof__(archive_read_support_filter_by_code) *read_support_filter_by_code;
	__typeof__(archive_read_support_format_by_code) *read_support_format_by_code;
	__typeof__(archive_read_open_fd) *read_open_fd;
	__typeof__(archive_read_next_header) *read_next_header;
	__typeof__(archive_read_data_block) *read_data_block;
	__typeof__(archive_read_free) *read_free;
	__typeof__(archive_error_string) *error_string;
	__typeof__(archive_entry_pathname) *entry_pathname;
	__typeof__(archive_entry_filetype) *entry_filetype;
	__typeof__(archive_entry_perm) *entry_perm;
	__typeof__(archive_entry_size) *entry_size;
	__typeof__(archive_entry_size_is_set) *entry_size_is_set;
	__typeof__(archive_entry_symlink) *entry_symlink;
	__typeof__(archive_entry_hardlink) *entry_hardlink;
	__typeof__(archive_entry_mtime) *entry_mtime;
	__typeof__(archive_entry_mtime_nsec) *entry_mtime_nsec;
	__typeof__(archive_entry_mtime_is_set) *entry_mtime_is_set;
};

extern struct bd_archive_api bd_archive;

/*
 * Loads libarchive once per process, from whichever thread asks first
 * (unpacking runs on the thread pool).  Returns 0, or -ELIBACC with *cause
 * (borrowed, lives as long as the process) saying what is missing.
 */
int bd_archive_api_load(const char **cause);

#define archive_read_new (*bd_archive.read_new)
#define archive_read_support_filter_by_code \
	(*bd_archive.read_support_filter_by_code)
#define archive_read_support_format_by_code \
	(*bd_archive.read_support_format_by_code)
#define archive_read_open_fd (*bd_archive.read_open_fd)
#define archive_read_next_header (*bd_archive.read_next_header)
#define archive_read_data_block (*bd_archive.read_data_block)
#define archive_read_free (*bd_archive.read_free)
#define archive_error_string (*bd_archive.error_string)
#define archive_entry_pathname (*bd_archive.entry_pathname)
#define archive_entry_filetype (*bd_archive.entry_filetype)
#define archive_entry_perm (*bd_archive.entry_perm)
#define archive_entry_size (*bd_archive.entry_size)
#define archive_entry_size_is_set (*bd_archive.entry_size_is_set)
#define archive_entry_symlink (*bd_archive.entry_symlink)
#define archive_entry_hardlink (*bd_archive.entry_hardlink)
#define archive_entry_mtime (*bd_archive.entry_mtime)
#define archive_entry_mtime_nsec (*bd_archive.entry_mtime_nsec)
#define archive_entry_mtime_is_set (*bd_archive.entry_mtime_is_set)

#endif
