/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for common/glob's matcher.  The input is a pattern and
 * a path separated by the first NUL or newline.  Besides not crashing and
 * finishing in time (libFuzzer's -timeout catches exponential
 * backtracking), two properties are checked: a pattern without wildcards
 * or brackets matches itself, and for simple ASCII inputs the answer
 * agrees with fnmatch(3).
 */
#include <fnmatch.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "glob.h"
#include "xmalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Whether s is non-empty plain ASCII without brackets or empty segments,
 * where fnmatch's answer must be the same as ours.
 */
static bool
simple(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80 || *s == '[' ||
		    (s[0] == '/' && s[1] == '/'))
			return false;
	return s[-1] != '/';
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *pattern, *path;
	bool match, wild;
	size_t plen;

	for (plen = 0; plen < size; plen++)
		if (data[plen] == '\0' || data[plen] == '\n')
			break;
	pattern = xstrndup((const char *)data, plen);
	if (plen < size)
		path = xstrndup((const char *)data + plen + 1, size - plen - 1);
	else
		path = xstrdup("");

	match = bd_glob_match(pattern, path);
	wild = bd_glob_has_wildcard(pattern);

	if (!wild && strchr(pattern, '[') == NULL &&
	    !bd_glob_match(pattern, pattern))
		abort();
	if (simple(pattern) && simple(path) && strstr(pattern, "**") == NULL &&
	    (pattern[0] == '/') == (path[0] == '/') && match != (fnmatch(pattern, path,
	    FNM_PATHNAME | FNM_PERIOD | FNM_NOESCAPE) == 0))
		abort();

	free(pattern);
	free(path);
	return 0;
}
