/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for common/cmdline.  The input (up to its first NUL) is
 * split; when that succeeds the vector is quoted, the quoted line split
 * again, and the two vectors must be equal.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cmdline.h"
#include "xmalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line, *quoted, *cause = NULL, **argv, **again;
	size_t argc, argc2, i;

	line = xstrndup((const char *)data, size);
	if (bd_cmdline_split(line, &argv, &argc, &cause) != 0) {
		if (cause == NULL)
			abort();
		free(cause);
		free(line);
		return 0;
	}
	if (argc == 0 || argv[argc] != NULL)
		abort();

	quoted = bd_cmdline_quote(argv);
	if (bd_cmdline_split(quoted, &again, &argc2, NULL) != 0)
		abort();
	if (argc2 != argc)
		abort();
	for (i = 0; i < argc; i++)
		if (strcmp(argv[i], again[i]) != 0)
			abort();

	bd_cmdline_free(again);
	bd_cmdline_free(argv);
	free(quoted);
	free(line);
	return 0;
}
