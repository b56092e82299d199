/* SPDX-License-Identifier: MIT */
/* Terminal progress line for downloads and uploads of `batchd run`. */
#include "progress.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "url.h"
#include "xmalloc.h"

#include <stdlib.h>

static int64_t progress_last_ms;
static bool progress_shown;

void
bd_progress_update(const char *verb, const char *name, int64_t done,
    int64_t total)
{
	int64_t now = bd_clock_mono_ms();
	char line[200];
	char *clean;

	if (!isatty(STDERR_FILENO) || now - progress_last_ms < 100)
		return;
	progress_last_ms = now;
	clean = bd_url_redact(name);
	if (total > 0)
		snprintf(line, sizeof(line), "\r\033[K%s %.60s  %.1f/%.1f MiB",
		    verb, clean, done / 1048576.0, total / 1048576.0);
	else
		snprintf(line, sizeof(line), "\r\033[K%s %.60s  %.1f MiB",
		    verb, clean, done / 1048576.0);
	free(clean);
	(void)!write(STDERR_FILENO, line, strlen(line));
	progress_shown = true;
}

void
bd_progress_clear(void)
{
	if (!progress_shown)
		return;
	(void)!write(STDERR_FILENO, "\r\033[K", 4);
	progress_shown = false;
}
