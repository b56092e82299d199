/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for duration.c: parsing never crashes, a parsed
 * duration is never negative, and formatting it parses back to the same
 * number of milliseconds.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char text[512], buf[BD_DURATION_BUFSZ];
	const char *reason = NULL;
	int64_t ms = -1, again = -1;
	int rc;

	if (size >= sizeof text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	rc = bd_duration_parse_reason(text, &ms, &reason);
	if (rc != 0) {
		if (rc != -EINVAL || reason == NULL || ms != -1)
			abort();
		return 0;
	}
	if (ms < 0)
		abort();
	bd_duration_format(ms, buf, sizeof buf);
	if (bd_duration_parse(buf, &again) != 0 || again != ms)
		abort();
	return 0;
}
