/* SPDX-License-Identifier: MIT */
#ifndef BD_GLOB_H
#define BD_GLOB_H

/*
 * The filePattern language of Azure Batch output files, on Linux.
 *
 * - `/` is the only separator; empty segments are ignored.
 * - `*` matches any run of characters (also none) within one segment.
 * - `?` matches one character (a UTF-8 sequence counts as one character;
 *   a byte that is not valid UTF-8 counts as one too).
 * - `[abc]`, `[a-c]`, `[!abc]` and `[^abc]` match one character in or
 *   out of the set; `]` first in the set is a member and `-` first or last
 *   is literal.  A `[` without its `]` in the same segment is literal.
 *   A set of one character, such as `[*]`, is an escape: `abc[*]` names
 *   the file `abc*`.  There is no backslash escape; `\` is an ordinary
 *   character on Linux.
 * - `**` as a whole segment matches zero or more segments (directories,
 *   and files when it ends the pattern).  Elsewhere it is the same as `*`.
 * - A segment that starts with `.` is matched only by a pattern segment
 *   that starts with a literal `.` (or `[.]`): `*.gif` does not match
 *   `.a.gif` but `.*.gif` does, and `**` never matches a dot segment.
 *
 * Matching is polynomial in the lengths of the pattern and the path:
 * segments are matched with one saved star position, and `**` across
 * segments with a table of (pattern segment, path segment) results.
 */

#include <stdbool.h>
#include <stddef.h>

/* Defaults used when a field of struct bd_glob_limits is 0. */
#define BD_GLOB_MAX_MATCHES 100000
#define BD_GLOB_MAX_DEPTH 64

/* Longest pattern (after any variable expansion) bd_glob_expand() takes. */
#define BD_GLOB_PATTERN_MAX 4096

struct bd_glob_limits {
	size_t max_matches;	/* more matching files give BD_ETOOBIG */
	unsigned max_depth;	/* directory levels below the base */
};

/* One matching file. */
struct bd_glob_item {
	char *path;	/* absolute path */
	char *relative;	/* path relative to bd_glob_result.base */
};

/* The files a pattern matched, sorted by path; owned by the caller. */
struct bd_glob_result {
	char *base;	/* the pattern's base directory (absolute) */
	struct bd_glob_item *items;
	size_t count;
};

/*
 * Whether pattern has a wildcard: `*`, `?` or a bracket set other than a
 * one-character escape such as `[*]`.
 */
bool bd_glob_has_wildcard(const char *pattern);

/*
 * Whether pattern matches all of path.  Both are split at `/`; an absolute
 * pattern matches only an absolute path and a relative one only a
 * relative path.  `.` and `..` segments get no special meaning here.
 */
bool bd_glob_match(const char *pattern, const char *path);

/*
 * Find the regular files that pattern names.  A relative pattern is taken
 * from base_dir, which must then be absolute; `.` and `..` segments are
 * resolved lexically first, so `../std*.txt` from a task's working
 * directory finds the task directory's stdout.txt and stderr.txt.
 *
 * The base directory is the longest leading run of segments without
 * wildcards; each item's relative name is its path below the base (for the
 * segments `out`, `**`, `*.txt` the base is `<base_dir>/out` and the file
 * `<base_dir>/out/a/b.txt` is `a/b.txt`).  A pattern with no wildcard names
 * one file: the base is its directory and the relative name its basename.
 *
 * The walk never follows a symlink to a directory; a symlink to a regular
 * file is a match.  limits may be NULL for the defaults.
 *
 * Returns 0 and fills *out (free with bd_glob_result_free()); no match and
 * a missing base directory both give count 0.  Returns -EINVAL for an
 * empty pattern or a relative base_dir, BD_ETOOBIG when the pattern is
 * longer than BD_GLOB_PATTERN_MAX or a limit is passed, or a negative
 * errno when a directory cannot be read; then *out is empty and *cause
 * (if cause is not NULL) gets a message the caller frees.
 */
int bd_glob_expand(const char *pattern, const char *base_dir,
    const struct bd_glob_limits *limits, struct bd_glob_result *out,
    char **cause);

/* Free what a result holds and empty it; the struct itself is the caller's. */
void bd_glob_result_free(struct bd_glob_result *result);

#endif
