/* SPDX-License-Identifier: MIT */
/*
 * Shared access signatures: a SAS URL split into its base and query, and
 * the parameters a person needs to hear about when storage refuses it
 * (sig present, se expiry, st start, sp permissions, sr and ss scope),
 * turned into text such as "the SAS expired at ...".
 *
 * The signature is a secret: it is only ever tested for presence, its
 * copy in the query is wiped when the struct is freed, and no message
 * built here quotes the query or a value from it other than sp.
 */
#include "sas.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "crypto_api.h"

#include "error.h"
#include "storage_auth.h"
#include "xmalloc.h"

#define SAS_MAX_URL	(64 * 1024)

/* Sets *cause (when wanted) to a formatted message; returns BD_EINVALID. */
static int __attribute__((format(printf, 2, 3)))
sas_fail(char **cause, const char *fmt, ...)
{
	va_list ap;

	if (cause != NULL) {
		va_start(ap, fmt);
		*cause = xvasprintf(fmt, ap);
		va_end(ap);
	}
	return BD_EINVALID;
}

int
bd_sas_parse(const char *url, struct bd_sas **out, char **cause)
{
	struct bd_sas *s;
	const char *q, *p, *amp, *eq, *hash;
	char *name, *value;
	size_t n;

	*out = NULL;
	if (cause != NULL)
		*cause = NULL;
	if (url == NULL || (n = strlen(url)) == 0)
		return sas_fail(cause, "SAS URL: empty");
	if (n > SAS_MAX_URL)
		return sas_fail(cause, "SAS URL: longer than %d bytes",
		    SAS_MAX_URL);
	if (strncasecmp(url, "http://", 7) != 0 &&
	    strncasecmp(url, "https://", 8) != 0)
		return sas_fail(cause, "SAS URL: not an http or https URL");
	if (strpbrk(url, " \t\r\n") != NULL)
		return sas_fail(cause, "SAS URL: contains white space");
	s = xcalloc(1, sizeof(*s));
	s->expiry = s->start = -1;
	hash = strchr(url, '#');
	n = hash != NULL ? (size_t)(hash - url) : strlen(url);
	q = memchr(url, '?', n);
	s->base = xstrndup(url, q != NULL ? (size_t)(q - url) : n);
	if (q != NULL && q + 1 < url + n)
		s->query = xstrndup(q + 1, (size_t)(url + n - q - 1));
	for (p = s->query; p != NULL && *p != '\0'; p = amp ? amp + 1 : NULL) {
		amp = strchr(p, '&');
		n = amp != NULL ? (size_t)(amp - p) : strlen(p);
		eq = memchr(p, '=', n);
		name = bd_storage_decode(p, eq ? (size_t)(eq - p) : n, true);
		value = eq ? bd_storage_decode(eq + 1, (size_t)(p + n - eq - 1), true)
		    : xstrdup("");
		if (strcmp(name, "sig") == 0) {
			s->has_sig = *value != '\0';
			OPENSSL_cleanse(value, strlen(value));
		} else if (strcmp(name, "sp") == 0 && s->permissions == NULL) {
			s->permissions = value;
			value = NULL;
		} else if (strcmp(name, "se") == 0 && s->expiry_text == NULL) {
			if (bd_storage_parse_time(value, &s->expiry) != 0)
				s->expiry = -1;
			s->expiry_text = value;
			value = NULL;
		} else if (strcmp(name, "st") == 0 && s->start_text == NULL) {
			if (bd_storage_parse_time(value, &s->start) != 0)
				s->start = -1;
			s->start_text = value;
			value = NULL;
		} else if (strcmp(name, "sr") == 0 && s->resource == NULL) {
			s->resource = value;
			value = NULL;
		} else if (strcmp(name, "ss") == 0 && s->services == NULL) {
			s->services = value;
			value = NULL;
		}
		free(name);
		free(value);
	}
	*out = s;
	return 0;
}

void
bd_sas_free(struct bd_sas *s)
{
	if (s == NULL)
		return;
	free(s->base);
	if (s->query != NULL) {
		OPENSSL_cleanse(s->query, strlen(s->query));
		free(s->query);
	}
	free(s->permissions);
	free(s->expiry_text);
	free(s->start_text);
	free(s->resource);
	free(s->services);
	free(s);
}

bool
bd_sas_allows(const struct bd_sas *s, char perm)
{
	return s->permissions == NULL || strchr(s->permissions, perm) != NULL;
}

/* The word for a permission letter. */
static const char *
sas_perm_word(char perm)
{
	switch (perm) {
	case 'r': return "read";
	case 'w': return "write";
	case 'l': return "list";
	case 'c': return "create";
	case 'a': return "add";
	case 'd': return "delete";
	case 'u': return "update";
	case 'p': return "process";
	}
	return "a needed";
}

/* The time t as "YYYY-MM-DDTHH:MM:SSZ" into buf. */
static void
sas_fmt_time(time_t t, char *buf, size_t size)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A copy of s with characters outside printable ASCII as '?'. */
static char *
sas_printable(const char *s, size_t max)
{
	size_t n = strnlen(s, max), i;
	char *out = xstrndup(s, n);

	for (i = 0; i < n; i++)
		if ((unsigned char)out[i] < 0x20 || (unsigned char)out[i] > 0x7e)
			out[i] = '?';
	return out;
}

char *
bd_sas_explain(const struct bd_sas *s, const char *perms, time_t now)
{
	char when[32], *sp, *msg;
	const char *p;

	if (s->query == NULL || !s->has_sig)
		return xstrdup("the URL has no SAS signature (sig)");
	if (s->expiry != -1 && s->expiry <= now) {
		sas_fmt_time(s->expiry, when, sizeof(when));
		return xasprintf("the SAS expired at %s", when);
	}
	if (s->expiry == -1 && s->expiry_text != NULL)
		return xstrdup("the SAS expiry time (se) cannot be read");
	if (s->start != -1 && s->start > now + 15 * 60) {
		sas_fmt_time(s->start, when, sizeof(when));
		return xasprintf("the SAS is not valid until %s", when);
	}
	for (p = perms; p != NULL && *p != '\0'; p++) {
		if (!bd_sas_allows(s, *p)) {
			sp = sas_printable(s->permissions, 32);
			msg = xasprintf("the SAS lacks %s permission (sp=%s)",
			    sas_perm_word(*p), sp);
			free(sp);
			return msg;
		}
	}
	return NULL;
}
