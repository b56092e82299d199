/* SPDX-License-Identifier: MIT */
/*
 * The log module: the only place in common/ that writes anything.  A
 * message is formatted once, redacted with bd_url_redact() so that no SAS
 * signature survives, stripped of control characters, and written as one
 * line with a single write(2), so lines from several sources never
 * interleave.
 */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "url.h"
#include "xmalloc.h"

static enum bd_log_level log_level = BD_LOG_INFO;
static enum bd_log_format log_format = BD_LOG_FORMAT_TEXT;

void
log_init(enum bd_log_level level, enum bd_log_format format)
{
	log_level = level;
	if (format == BD_LOG_FORMAT_AUTO)
		format = getenv("JOURNAL_STREAM") != NULL ?
		    BD_LOG_FORMAT_JOURNAL : BD_LOG_FORMAT_TEXT;
	log_format = format;
}

enum bd_log_level
log_get_level(void)
{
	return log_level;
}

/* Appends s to buf escaping control characters (and, for JSON, quotes). */
static size_t
log_escape(char *buf, size_t o, size_t cap, const char *s, int json)
{
	for (; *s != '\0' && o + 8 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (json && (c == '"' || c == '\\')) {
			buf[o++] = '\\';
			buf[o++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			o += (size_t)snprintf(buf + o, cap - o,
			    json ? "\\u%04x" : "\\x%02x", c);
		} else
			buf[o++] = (char)c;
	}
	return o;
}

static const char *
log_level_name(enum bd_log_level level)
{
	switch (level) {
	case BD_LOG_ERROR:
		return "error";
	case BD_LOG_WARNING:
		return "warning";
	case BD_LOG_INFO:
		return "info";
	case BD_LOG_DEBUG:
		return "debug";
	}
	return "info";
}

void
log_vlog(enum bd_log_level level, int errnum, const char *fmt, va_list ap)
{
	char line[8192], ts[40];
	char *msg, *full, *clean;
	size_t o = 0;
	int saved = errno;

	if (level > log_level)
		return;
	msg = xvasprintf(fmt, ap);
	if (errnum >= 0)
		full = xasprintf("%s: %s", msg, strerror(errnum));
	else
		full = xstrdup(msg);
	clean = bd_url_redact(full);
	switch (log_format) {
	case BD_LOG_FORMAT_JOURNAL:
		o = (size_t)snprintf(line, sizeof(line), "<%d>", (int)level);
		o = log_escape(line, o, sizeof(line), clean, 0);
		break;
	case BD_LOG_FORMAT_JSON:
		bd_clock_format_iso(bd_clock_now_ms(), ts, sizeof(ts));
		o = (size_t)snprintf(line, sizeof(line),
		    "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts,
		    log_level_name(level));
		o = log_escape(line, o, sizeof(line), clean, 1);
		line[o++] = '"';
		line[o++] = '}';
		break;
	default:
		o = (size_t)snprintf(line, sizeof(line), "batchd: %s",
		    level == BD_LOG_ERROR ? "error: " :
		    level == BD_LOG_WARNING ? "warning: " : "");
		o = log_escape(line, o, sizeof(line), clean, 0);
		break;
	}
	line[o++] = '\n';
	(void)!write(STDERR_FILENO, line, o);
	free(clean);
	free(full);
	free(msg);
	errno = saved;
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;
	int e = errno;

	va_start(ap, fmt);
	log_vlog(BD_LOG_WARNING, e, fmt, ap);
	va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vlog(BD_LOG_WARNING, -1, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vlog(BD_LOG_INFO, -1, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	if (log_level < BD_LOG_DEBUG)
		return;
	va_start(ap, fmt);
	log_vlog(BD_LOG_DEBUG, -1, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;
	int e = errno;

	va_start(ap, fmt);
	log_vlog(BD_LOG_ERROR, e, fmt, ap);
	va_end(ap);
	exit(125);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vlog(BD_LOG_ERROR, -1, fmt, ap);
	va_end(ap);
	exit(125);
}
