/* SPDX-License-Identifier: MIT */
#ifndef BD_XMALLOC_H
#define BD_XMALLOC_H

#include <stdarg.h>
#include <stddef.h>

/*
 * Allocation that cannot fail: on out-of-memory these abort with a message
 * on stderr.  Sizes that come from outside must be checked against a limit
 * by the caller before they get here.  Every result is freed with free().
 */
void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t size);
void *xreallocarray(void *ptr, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

#endif
