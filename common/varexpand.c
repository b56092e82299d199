/* SPDX-License-Identifier: MIT */
/*
 * Variable expansion.  One pass over the input copies bytes to the result
 * and replaces each `$NAME` or `${NAME}` with what the caller's lookup
 * returns.  Anything that is not a well-formed reference is copied as it
 * is, so the expansion never fails on syntax; it fails only when the
 * result would pass BD_VAREXPAND_MAX, because a short pattern that names
 * a long variable many times could otherwise ask for gigabytes.
 */
#include "varexpand.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

/* The result being built. */
struct varexpand_buf {
	char	*data;
	size_t	 len;
	size_t	 size;
};

/* Append n bytes of s to buf; false when the result would be too long. */
static bool
varexpand_add(struct varexpand_buf *buf, const char *s, size_t n)
{
	if (n > BD_VAREXPAND_MAX - buf->len)
		return false;
	if (buf->len + n + 1 > buf->size) {
		while (buf->len + n + 1 > buf->size)
			buf->size = buf->size == 0 ? 64 : buf->size * 2;
		buf->data = xrealloc(buf->data, buf->size);
	}
	memcpy(buf->data + buf->len, s, n);
	buf->len += n;
	buf->data[buf->len] = '\0';
	return true;
}

/* Whether c may start a variable name. */
static bool
varexpand_is_first(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

/* Whether c may continue a variable name. */
static bool
varexpand_is_rest(char c)
{
	return varexpand_is_first(c) || (c >= '0' && c <= '9');
}

/* Length of the variable name at s, 0 when there is none. */
static size_t
varexpand_name_len(const char *s)
{
	size_t n = 0;

	if (!varexpand_is_first(s[0]))
		return 0;
	while (varexpand_is_rest(s[n]))
		n++;
	return n;
}

/* Append the value of the n-byte name at s to buf. */
static bool
varexpand_lookup(struct varexpand_buf *buf, const char *s, size_t n,
    bd_var_lookup_fn lookup, void *arg)
{
	char *name = xstrndup(s, n);
	const char *value = lookup(name, arg);
	bool ok = true;

	if (value != NULL)
		ok = varexpand_add(buf, value, strlen(value));
	free(name);
	return ok;
}

char *
bd_varexpand(const char *s, bd_var_lookup_fn lookup, void *arg)
{
	struct varexpand_buf buf = { NULL, 0, 0 };
	const char *p = s, *dollar;
	size_t n;

	if (!varexpand_add(&buf, "", 0))
		return NULL;
	while ((dollar = strchr(p, '$')) != NULL) {
		if (!varexpand_add(&buf, p, dollar - p))
			goto fail;
		p = dollar + 1;
		if ((n = varexpand_name_len(p)) != 0) {
			if (!varexpand_lookup(&buf, p, n, lookup, arg))
				goto fail;
			p += n;
		} else if (*p == '{' && (n = varexpand_name_len(p + 1)) != 0 &&
		    p[1 + n] == '}') {
			if (!varexpand_lookup(&buf, p + 1, n, lookup, arg))
				goto fail;
			p += n + 2;
		} else if (!varexpand_add(&buf, "$", 1))
			goto fail;
	}
	if (!varexpand_add(&buf, p, strlen(p)))
		goto fail;
	return buf.data;

fail:
	free(buf.data);
	return NULL;
}
