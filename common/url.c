/* SPDX-License-Identifier: MIT */
/*
 * URL helpers.  batchd handles URLs that carry secrets (Azure SAS tokens,
 * whose "sig" parameter is the signature), so the first job here is
 * bd_url_redact(), which every error text built from a URL or from a
 * library's message about one goes through before it can reach a log, a
 * record or a task's failure information.  The rest is the little parsing
 * and forming the transfer modules need: file:// URLs to local paths, and
 * blob URLs from a container URL plus a blob name.  Nothing here keeps
 * state; every result is a new string the caller frees.
 */
#include "url.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xmalloc.h"

#define URL_REDACTED "REDACTED"

/* A growing string buffer for building results. */
struct url_buf {
	char *p;
	size_t len;
	size_t cap;
};

/* Appends n bytes of s to b. */
static void
url_buf_add(struct url_buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		while (b->len + n + 1 > b->cap)
			b->cap = b->cap ? b->cap * 2 : 64;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* True for characters that can be part of a parameter name. */
static bool
url_is_word(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '_';
}

/* True for the unreserved characters of RFC 3986. */
static bool
url_is_unreserved(unsigned char c)
{
	return url_is_word(c) || c == '-' || c == '.' || c == '~';
}

/*
 * True when position i of text may start a parameter name: the start of
 * the text, after a non-word character, or after an encoded '&' or '?'
 * ("%26", "%3F") of a URL nested inside another URL's query.
 */
static bool
url_name_boundary(const char *text, size_t i)
{
	if (i == 0 || !url_is_word((unsigned char)text[i - 1]))
		return true;
	if (i >= 3 && (strncasecmp(text + i - 3, "%26", 3) == 0 ||
	    strncasecmp(text + i - 3, "%3F", 3) == 0))
		return true;
	return false;
}

/*
 * True when c ends a parameter value in free text.  Signatures are base64
 * (maybe percent-encoded), so anything that cannot appear in one and can
 * delimit a URL in prose or markup ends the value.
 */
static bool
url_value_end(unsigned char c)
{
	if (c <= 0x20 || c == 0x7f)
		return true;
	/* A signature is percent-encoded base64: a raw ":" ends it too. */
	return strchr("&#\"'<>\\`()[]{}|,;^:", c) != NULL;
}

/*
 * The length of the value starting at s.  In the encoded form an encoded
 * '&' or '#' ends it as well.
 */
static size_t
url_value_len(const char *s, bool encoded)
{
	size_t n = 0;

	while (s[n] != '\0' && !url_value_end((unsigned char)s[n])) {
		if (encoded && s[n] == '%' &&
		    (strncasecmp(s + n, "%26", 3) == 0 ||
		    strncasecmp(s + n, "%23", 3) == 0))
			break;
		n++;
	}
	return n;
}

char *
bd_url_redact(const char *text)
{
	struct url_buf b = { NULL, 0, 0 };
	size_t i = 0, start = 0, name, vlen;
	bool encoded;

	if (text == NULL)
		return NULL;
	url_buf_add(&b, "", 0);
	while (text[i] != '\0') {
		if ((text[i] != 's' && text[i] != 'S') ||
		    strncasecmp(text + i, "sig", 3) != 0 ||
		    !url_name_boundary(text, i)) {
			i++;
			continue;
		}
		if (text[i + 3] == '=') {
			name = 4;
			encoded = false;
		} else if (strncasecmp(text + i + 3, "%3D", 3) == 0) {
			name = 6;
			encoded = true;
		} else {
			i++;
			continue;
		}
		vlen = url_value_len(text + i + name, encoded);
		url_buf_add(&b, text + start, i + name - start);
		url_buf_add(&b, URL_REDACTED, strlen(URL_REDACTED));
		i += name + vlen;
		start = i;
	}
	url_buf_add(&b, text + start, i - start);
	return b.p;
}

/* True when url starts with scheme followed by ':' (scheme in lower case). */
static bool
url_has_scheme(const char *url, const char *scheme)
{
	size_t n = strlen(scheme);

	return url != NULL && strncasecmp(url, scheme, n) == 0 && url[n] == ':';
}

bool
bd_url_is_file(const char *url)
{
	return url_has_scheme(url, "file");
}

bool
bd_url_is_http(const char *url)
{
	return (url_has_scheme(url, "http") &&
	    strncmp(url + 5, "//", 2) == 0) ||
	    (url_has_scheme(url, "https") && strncmp(url + 6, "//", 2) == 0);
}

/* The value of hex digit c, or -1. */
static int
url_hex(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
bd_url_file_path(const char *url, char **path_out)
{
	const char *p;
	char *out;
	size_t n, len, o = 0;
	int hi, lo;

	*path_out = NULL;
	if (!bd_url_is_file(url))
		return -EINVAL;
	p = url + 5;
	if (strncmp(p, "//", 2) == 0) {
		p += 2;
		if (strncasecmp(p, "localhost/", 10) == 0)
			p += 9;
	}
	if (*p != '/')
		return -EINVAL;
	len = strcspn(p, "?#");
	out = xmalloc(len + 1);
	for (n = 0; n < len; n++) {
		if (p[n] != '%') {
			out[o++] = p[n];
			continue;
		}
		if (n + 2 >= len) {
			free(out);
			return -EINVAL;
		}
		hi = url_hex((unsigned char)p[n + 1]);
		lo = hi < 0 ? -1 : url_hex((unsigned char)p[n + 2]);
		if (lo < 0 || (hi == 0 && lo == 0)) {
			free(out);
			return -EINVAL;
		}
		out[o++] = (char)(hi << 4 | lo);
		n += 2;
	}
	out[o] = '\0';
	*path_out = out;
	return 0;
}

char *
bd_url_encode(const char *s, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	struct url_buf b = { NULL, 0, 0 };
	unsigned char c;
	char esc[3];

	url_buf_add(&b, "", 0);
	for (; *s != '\0'; s++) {
		c = (unsigned char)*s;
		if (url_is_unreserved(c) || (keep_slash && c == '/')) {
			url_buf_add(&b, s, 1);
			continue;
		}
		esc[0] = '%';
		esc[1] = hex[c >> 4];
		esc[2] = hex[c & 0xf];
		url_buf_add(&b, esc, 3);
	}
	return b.p;
}

char *
bd_url_append_path(const char *container_url, const char *name)
{
	struct url_buf b = { NULL, 0, 0 };
	size_t base;
	char *enc;

	base = strcspn(container_url, "?#");
	url_buf_add(&b, container_url, base);
	if (base == 0 || container_url[base - 1] != '/')
		url_buf_add(&b, "/", 1);
	enc = bd_url_encode(name, true);
	url_buf_add(&b, enc, strlen(enc));
	free(enc);
	url_buf_add(&b, container_url + base, strlen(container_url + base));
	return b.p;
}
