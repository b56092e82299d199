/* SPDX-License-Identifier: MIT */
#ifndef BD_LOG_H
#define BD_LOG_H

/*
 * Logging in the OpenBSD mould.  One line per message on stderr: plain text
 * for a terminal, "<N>" priority prefixes under systemd (so journald keeps
 * the level), or one JSON object per line for log shippers.  Every line is
 * redacted (SAS signatures) and control characters from outside are
 * escaped.  The level is tested before anything is formatted.
 */

#include <stdarg.h>

enum bd_log_level {
	BD_LOG_ERROR = 3,
	BD_LOG_WARNING = 4,
	BD_LOG_INFO = 6,
	BD_LOG_DEBUG = 7,
};

enum bd_log_format {
	BD_LOG_FORMAT_AUTO,	/* journal prefixes under systemd, else text */
	BD_LOG_FORMAT_TEXT,
	BD_LOG_FORMAT_JOURNAL,
	BD_LOG_FORMAT_JSON,
};

/* Sets where and how lines go; callable again (SIGHUP). */
void log_init(enum bd_log_level level, enum bd_log_format format);
enum bd_log_level log_get_level(void);

void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

/* The same at an explicit level; errnum >= 0 appends strerror(errnum). */
void log_vlog(enum bd_log_level level, int errnum, const char *fmt,
    va_list ap) __attribute__((format(printf, 3, 0)));

#endif
