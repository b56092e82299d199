/* SPDX-License-Identifier: MIT */
/*
 * Azure Storage credentials.  Two jobs, neither of which touches the
 * network: parsing a connection string into an account (name, decoded key,
 * service endpoints, optional SAS), and signing a request with Shared Key
 * as "Authorize with Shared Key" documents it (the Blob and Queue form,
 * and the Table form), with the base64, HMAC and time helpers they need.
 * SAS URLs are common/sas's.
 *
 * The account key and SAS signatures are secrets: no error text built here
 * quotes a value from a connection string or a query, only key names.
 * Everything returned is newly allocated and owned by the caller.
 */
#include "storage_auth.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "crypto_api.h"

#include "error.h"
#include "xmalloc.h"

#define AUTH_MAX_CONN		(64 * 1024)	/* bytes of a connection string */
#define AUTH_MAX_URL		(64 * 1024)
#define AUTH_MAX_PARAMS		256		/* query parameters signed */
#define AUTH_DEV_HOST		"http://127.0.0.1"

/* A string being built. */
struct auth_buf {
	char *p;
	size_t len;
	size_t cap;
};

/* Appends n bytes of s to b, keeping it NUL-terminated. */
static void
auth_add(struct auth_buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		while (b->len + n + 1 > b->cap)
			b->cap = b->cap ? b->cap * 2 : 256;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* Appends the C string s to b. */
static void
auth_adds(struct auth_buf *b, const char *s)
{
	auth_add(b, s, strlen(s));
}

/* Sets *cause (when wanted) to a formatted message; returns BD_EINVALID. */
static int __attribute__((format(printf, 2, 3)))
auth_fail(char **cause, const char *fmt, ...)
{
	va_list ap;

	if (cause != NULL) {
		va_start(ap, fmt);
		*cause = xvasprintf(fmt, ap);
		va_end(ap);
	}
	return BD_EINVALID;
}

char *
bd_storage_base64(const unsigned char *data, size_t len)
{
	char *out = xmalloc(4 * ((len + 2) / 3) + 1);

	EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

/* True for a character of the standard base64 alphabet. */
static bool
auth_b64_char(unsigned char c)
{
	return isalnum(c) || c == '+' || c == '/';
}

int
bd_storage_unbase64(const char *s, unsigned char **out, size_t *out_len)
{
	size_t n = strlen(s), i, pad = 0;
	unsigned char *buf;
	int got;

	*out = NULL;
	*out_len = 0;
	if (n % 4 != 0 || n > (size_t)1 << 30)
		return BD_EINVALID;
	for (i = 0; i < n; i++) {
		if (s[i] == '=') {
			if (i < n - 2)
				return BD_EINVALID;
			pad++;
		} else if (pad > 0 || !auth_b64_char((unsigned char)s[i]))
			return BD_EINVALID;
	}
	buf = xmalloc(n / 4 * 3 + 1);
	got = n == 0 ? 0 : EVP_DecodeBlock(buf, (const unsigned char *)s,
	    (int)n);
	if (got < 0 || (size_t)got < pad) {
		free(buf);
		return BD_EINVALID;
	}
	*out = buf;
	*out_len = (size_t)got - pad;
	return 0;
}

char *
bd_storage_hmac(const unsigned char *key, size_t key_len, const char *text)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;

	if (HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)text,
	    strlen(text), mac, &mac_len) == NULL) {
		fprintf(stderr, "batchd: HMAC-SHA256 failed\n");
		abort();
	}
	return bd_storage_base64(mac, mac_len);
}

/* --- Connection strings ----------------------------------------------- */

/* The keys a connection string may have, in the order of this table. */
enum {
	K_PROTOCOL, K_NAME, K_KEY, K_BLOB, K_QUEUE, K_TABLE, K_SUFFIX, K_SAS,
	K_DEV, K_COUNT
};

static const char *const auth_keys[K_COUNT] = {
	"DefaultEndpointsProtocol", "AccountName", "AccountKey",
	"BlobEndpoint", "QueueEndpoint", "TableEndpoint", "EndpointSuffix",
	"SharedAccessSignature", "UseDevelopmentStorage",
};

/* Whether key is safe to quote in a message: short and plain. */
static bool
auth_quotable(const char *key, size_t n)
{
	size_t i;

	if (n == 0 || n > 40)
		return false;
	for (i = 0; i < n; i++)
		if (!isalpha((unsigned char)key[i]))
			return false;
	return true;
}

/* An endpoint without trailing '/', checked to be an http(s) URL. */
static int
auth_endpoint(const char *key, const char *v, char **out, char **cause)
{
	size_t n = strlen(v);

	if (strncasecmp(v, "http://", 7) != 0 &&
	    strncasecmp(v, "https://", 8) != 0)
		return auth_fail(cause, "connection string: %s: not an http or "
		    "https URL", key);
	if (strchr(v, '?') != NULL || strchr(v, '#') != NULL)
		return auth_fail(cause, "connection string: %s: must not have "
		    "a query (give the SAS as SharedAccessSignature)", key);
	while (n > 0 && v[n - 1] == '/')
		n--;
	*out = xstrndup(v, n);
	return 0;
}

/* Fills the development storage account into a. */
static void
auth_dev_account(struct bd_storage_account *a)
{
	a->name = xstrdup(BD_STORAGE_DEV_ACCOUNT);
	(void)bd_storage_unbase64(BD_STORAGE_DEV_KEY, &a->key, &a->key_len);
	a->blob_endpoint = xstrdup(AUTH_DEV_HOST ":10000/"
	    BD_STORAGE_DEV_ACCOUNT);
	a->queue_endpoint = xstrdup(AUTH_DEV_HOST ":10001/"
	    BD_STORAGE_DEV_ACCOUNT);
	a->table_endpoint = xstrdup(AUTH_DEV_HOST ":10002/"
	    BD_STORAGE_DEV_ACCOUNT);
}

/* Builds the account from the values found (vals[k] or NULL). */
static int
auth_build(char *const *vals, struct bd_storage_account *a, char **cause)
{
	static const char *const svc[3] = { "blob", "queue", "table" };
	char **ep[3] = { &a->blob_endpoint, &a->queue_endpoint,
	    &a->table_endpoint };
	const char *proto = "https", *suffix = "core.windows.net";
	const char *s;
	int i, rc;

	if (vals[K_DEV] != NULL) {
		if (strcasecmp(vals[K_DEV], "true") != 0)
			return auth_fail(cause, "connection string: "
			    "UseDevelopmentStorage: only \"true\" is supported");
		for (i = 0; i < K_COUNT; i++)
			if (i != K_DEV && vals[i] != NULL)
				return auth_fail(cause, "connection string: "
				    "%s cannot be combined with "
				    "UseDevelopmentStorage", auth_keys[i]);
		auth_dev_account(a);
		return 0;
	}
	if ((s = vals[K_PROTOCOL]) != NULL) {
		if (strcasecmp(s, "http") != 0 && strcasecmp(s, "https") != 0)
			return auth_fail(cause, "connection string: "
			    "DefaultEndpointsProtocol: must be http or https");
		proto = strcasecmp(s, "http") == 0 ? "http" : "https";
	}
	if ((s = vals[K_SUFFIX]) != NULL) {
		if (*s == '\0' || strpbrk(s, "/?#:@ ") != NULL)
			return auth_fail(cause, "connection string: "
			    "EndpointSuffix: not a host name suffix");
		suffix = s;
	}
	if ((s = vals[K_NAME]) != NULL) {
		if (*s == '\0' || strlen(s) > 64 || strpbrk(s, "/?#:@ ") != NULL)
			return auth_fail(cause, "connection string: "
			    "AccountName: not a valid account name");
		a->name = xstrdup(s);
	}
	if ((s = vals[K_KEY]) != NULL) {
		if (a->name == NULL)
			return auth_fail(cause, "connection string: "
			    "AccountKey needs AccountName");
		if (bd_storage_unbase64(s, &a->key, &a->key_len) != 0 ||
		    a->key_len == 0)
			return auth_fail(cause, "connection string: "
			    "AccountKey: not valid base64");
	}
	if ((s = vals[K_SAS]) != NULL) {
		if (*s == '?')
			s++;
		if (*s == '\0' || strpbrk(s, "# \t\r\n") != NULL)
			return auth_fail(cause, "connection string: "
			    "SharedAccessSignature: not a query string");
		a->sas = xstrdup(s);
	}
	for (i = 0; i < 3; i++) {
		if (vals[K_BLOB + i] != NULL) {
			if ((rc = auth_endpoint(auth_keys[K_BLOB + i],
			    vals[K_BLOB + i], ep[i], cause)) != 0)
				return rc;
		} else if (a->name != NULL)
			*ep[i] = xasprintf("%s://%s.%s.%s", proto, a->name,
			    svc[i], suffix);
	}
	if (a->key == NULL && a->sas == NULL && a->name == NULL &&
	    a->blob_endpoint == NULL && a->queue_endpoint == NULL &&
	    a->table_endpoint == NULL)
		return auth_fail(cause, "connection string: no AccountName, "
		    "endpoint or UseDevelopmentStorage");
	if (a->key == NULL && a->sas == NULL && a->name != NULL &&
	    vals[K_BLOB] == NULL && vals[K_QUEUE] == NULL &&
	    vals[K_TABLE] == NULL)
		return auth_fail(cause, "connection string: AccountName "
		    "without AccountKey or SharedAccessSignature");
	return 0;
}

int
bd_storage_account_parse(const char *conn, struct bd_storage_account **out,
    char **cause)
{
	struct bd_storage_account *a;
	char *copy, *seg, *next, *eq, *vals[K_COUNT] = { 0 };
	size_t n, segno = 0;
	int i, k, rc = 0;

	*out = NULL;
	if (cause != NULL)
		*cause = NULL;
	if (conn == NULL || (n = strlen(conn)) == 0)
		return auth_fail(cause, "connection string: empty");
	if (n > AUTH_MAX_CONN)
		return auth_fail(cause, "connection string: longer than %d "
		    "bytes", AUTH_MAX_CONN);
	copy = xstrdup(conn);
	for (seg = copy; seg != NULL && rc == 0; seg = next) {
		segno++;
		if ((next = strchr(seg, ';')) != NULL)
			*next++ = '\0';
		while (*seg == ' ' || *seg == '\t' || *seg == '\r' ||
		    *seg == '\n')
			seg++;
		if (*seg == '\0')
			continue;
		if ((eq = strchr(seg, '=')) == NULL) {
			rc = auth_fail(cause, "connection string: part %zu is "
			    "not Key=value", segno);
			break;
		}
		*eq = '\0';
		n = strlen(seg);
		while (n > 0 && (seg[n - 1] == ' ' || seg[n - 1] == '\t'))
			seg[--n] = '\0';
		for (k = 0; k < K_COUNT; k++)
			if (strcasecmp(seg, auth_keys[k]) == 0)
				break;
		if (k == K_COUNT) {
			if (auth_quotable(seg, n))
				rc = auth_fail(cause, "connection string: "
				    "unknown key \"%s\"", seg);
			else
				rc = auth_fail(cause, "connection string: "
				    "part %zu has an unknown key", segno);
			break;
		}
		if (vals[k] != NULL) {
			rc = auth_fail(cause, "connection string: %s given "
			    "twice", auth_keys[k]);
			break;
		}
		vals[k] = eq + 1;
		/* Trailing blanks (a line end) are not part of a value. */
		n = strlen(vals[k]);
		while (n > 0 && isspace((unsigned char)vals[k][n - 1]))
			vals[k][--n] = '\0';
	}
	a = xcalloc(1, sizeof(*a));
	if (rc == 0)
		rc = auth_build(vals, a, cause);
	for (i = 0; i < K_COUNT; i++)
		vals[i] = NULL;
	free(copy);
	if (rc != 0) {
		bd_storage_account_free(a);
		return rc;
	}
	*out = a;
	return 0;
}

int
bd_storage_account_new(const char *name, const char *key_base64,
    const char *blob_endpoint, const char *queue_endpoint,
    const char *table_endpoint, struct bd_storage_account **out, char **cause)
{
	struct bd_storage_account *a = xcalloc(1, sizeof(*a));
	const char *eps[3] = { blob_endpoint, queue_endpoint, table_endpoint };
	char **dst[3] = { &a->blob_endpoint, &a->queue_endpoint,
	    &a->table_endpoint };
	int i, rc;

	*out = NULL;
	if (cause != NULL)
		*cause = NULL;
	if (name != NULL)
		a->name = xstrdup(name);
	if (key_base64 != NULL && (bd_storage_unbase64(key_base64, &a->key,
	    &a->key_len) != 0 || a->key_len == 0)) {
		bd_storage_account_free(a);
		return auth_fail(cause, "account key: not valid base64");
	}
	for (i = 0; i < 3; i++) {
		if (eps[i] != NULL && (rc = auth_endpoint(auth_keys[K_BLOB + i],
		    eps[i], dst[i], cause)) != 0) {
			bd_storage_account_free(a);
			return rc;
		}
	}
	*out = a;
	return 0;
}

const char *
bd_storage_account_endpoint(const struct bd_storage_account *a,
    enum bd_storage_service service)
{
	switch (service) {
	case BD_STORAGE_BLOB:
		return a->blob_endpoint;
	case BD_STORAGE_QUEUE:
		return a->queue_endpoint;
	case BD_STORAGE_TABLE:
		return a->table_endpoint;
	}
	return NULL;
}

void
bd_storage_account_free(struct bd_storage_account *a)
{
	if (a == NULL)
		return;
	free(a->name);
	if (a->key != NULL) {
		/* Wipe the secret before the memory goes back. */
		OPENSSL_cleanse(a->key, a->key_len);
		free(a->key);
	}
	free(a->blob_endpoint);
	free(a->queue_endpoint);
	free(a->table_endpoint);
	if (a->sas != NULL) {
		OPENSSL_cleanse(a->sas, strlen(a->sas));
		free(a->sas);
	}
	free(a);
}

/* --- Times and query components ---------------------------------------- */

int
bd_storage_parse_time(const char *s, time_t *out)
{
	struct tm tm;
	const char *p;
	int n = 0;

	memset(&tm, 0, sizeof(tm));
	if (sscanf(s, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
	    &n) != 3 || n != 10)
		return BD_EINVALID;
	p = s + 10;
	if (*p == 'T') {
		n = 0;
		if (sscanf(p, "T%2d:%2d%n", &tm.tm_hour, &tm.tm_min, &n) != 2 ||
		    n != 6)
			return BD_EINVALID;
		p += 6;
		if (*p == ':') {
			if (!isdigit((unsigned char)p[1]) ||
			    !isdigit((unsigned char)p[2]))
				return BD_EINVALID;
			tm.tm_sec = (p[1] - '0') * 10 + (p[2] - '0');
			p += 3;
			if (*p == '.') {
				p++;
				if (!isdigit((unsigned char)*p))
					return BD_EINVALID;
				while (isdigit((unsigned char)*p))
					p++;
			}
		}
		if (*p++ != 'Z')
			return BD_EINVALID;
	}
	if (*p != '\0' || tm.tm_year < 1970 || tm.tm_year > 9999 ||
	    tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
	    tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
	    tm.tm_sec > 60)
		return BD_EINVALID;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	*out = timegm(&tm);
	return 0;
}

/* The value of a hex digit, or -1. */
static int
auth_hex(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *
bd_storage_decode(const char *s, size_t n, bool plus)
{
	char *out = xmalloc(n + 1);
	size_t i, o = 0;
	int hi, lo;

	for (i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n &&
		    (hi = auth_hex((unsigned char)s[i + 1])) >= 0 &&
		    (lo = auth_hex((unsigned char)s[i + 2])) >= 0) {
			out[o] = (char)(hi * 16 + lo);
			if (out[o] == '\0')
				out[o] = '?';
			o++;
			i += 2;
		} else if (plus && s[i] == '+')
			out[o++] = ' ';
		else
			out[o++] = s[i];
	}
	out[o] = '\0';
	return out;
}


/* --- Shared Key --------------------------------------------------------- */

/* One query parameter or header while canonicalizing. */
struct auth_pair {
	char *name;
	char *value;
};

/* Orders pairs by name, then by value (byte order). */
static int
auth_pair_cmp(const void *a, const void *b)
{
	const struct auth_pair *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c != 0 ? c : strcmp(x->value, y->value);
}

/* Frees n pairs. */
static void
auth_pairs_free(struct auth_pair *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].value);
	}
	free(v);
}

/*
 * Appends sorted "name:value" pairs to b, each after sep, joining the
 * values of one name with ','.
 */
static void
auth_add_pairs(struct auth_buf *b, struct auth_pair *v, size_t n,
    const char *sep, const char *after)
{
	size_t i;

	qsort(v, n, sizeof(*v), auth_pair_cmp);
	for (i = 0; i < n; i++) {
		if (i > 0 && strcmp(v[i].name, v[i - 1].name) == 0) {
			auth_adds(b, ",");
		} else {
			if (i > 0)
				auth_adds(b, after);
			auth_adds(b, sep);
			auth_adds(b, v[i].name);
			auth_adds(b, ":");
		}
		auth_adds(b, v[i].value);
	}
	if (n > 0)
		auth_adds(b, after);
}

/*
 * Splits url into its encoded path (from the first '/' after the host,
 * "/" when none) and query (without '?', NULL when none).
 */
static int
auth_split_url(const char *url, char **path, const char **query)
{
	const char *p, *host, *q, *end;

	if ((p = strstr(url, "://")) == NULL)
		return BD_EINVALID;
	host = p + 3;
	end = host + strcspn(host, "#");
	q = memchr(host, '?', (size_t)(end - host));
	if (q == NULL)
		q = end;
	p = memchr(host, '/', (size_t)(q - host));
	if (p == host)
		return BD_EINVALID;
	*path = p != NULL ? xstrndup(p, (size_t)(q - p)) : xstrdup("/");
	*query = *q == '?' ? q + 1 : NULL;
	return 0;
}

/* The value of header name in "Name: value" lines, trimmed, or NULL. */
static char *
auth_header(const char *const *headers, size_t n, const char *name)
{
	size_t len = strlen(name), i, e;
	const char *v;

	for (i = 0; i < n; i++) {
		if (strncasecmp(headers[i], name, len) != 0 ||
		    headers[i][len] != ':')
			continue;
		v = headers[i] + len + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		e = strlen(v);
		while (e > 0 && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		return xstrndup(v, e);
	}
	return NULL;
}

/* Appends header name's value (or nothing) and a newline to b. */
static void
auth_add_header(struct auth_buf *b, const char *const *headers, size_t n,
    const char *name)
{
	char *v = auth_header(headers, n, name);

	if (v != NULL)
		auth_adds(b, v);
	auth_adds(b, "\n");
	free(v);
}

/* Appends the canonicalized x-ms- headers to b. */
static int
auth_add_ms_headers(struct auth_buf *b, const char *const *headers,
    size_t n_headers, char **cause)
{
	struct auth_pair *v = xcalloc(n_headers + 1, sizeof(*v));
	const char *colon, *val;
	size_t i, n = 0, k, e;

	for (i = 0; i < n_headers; i++) {
		if (strncasecmp(headers[i], "x-ms-", 5) != 0)
			continue;
		if ((colon = strchr(headers[i], ':')) == NULL) {
			auth_pairs_free(v, n);
			return auth_fail(cause, "header line %zu has no ':'",
			    i + 1);
		}
		e = (size_t)(colon - headers[i]);
		while (e > 0 && (headers[i][e - 1] == ' '))
			e--;
		v[n].name = xstrndup(headers[i], e);
		for (k = 0; k < e; k++)
			v[n].name[k] = (char)tolower((unsigned char)v[n].name[k]);
		val = colon + 1;
		while (*val == ' ' || *val == '\t')
			val++;
		e = strlen(val);
		while (e > 0 && (val[e - 1] == ' ' || val[e - 1] == '\t'))
			e--;
		v[n].value = xstrndup(val, e);
		n++;
	}
	auth_add_pairs(b, v, n, "", "\n");
	auth_pairs_free(v, n);
	return 0;
}

/*
 * Appends the canonicalized resource: "/account" + path, then for the
 * Blob and Queue services each query parameter as "\nname:value" (names
 * lower-cased, sorted, values decoded), for the Table service only comp.
 */
static int
auth_add_resource(struct auth_buf *b, const char *account,
    enum bd_storage_service service, const char *url, char **cause)
{
	struct auth_pair *v;
	const char *query, *p, *amp, *eq;
	char *path;
	size_t n = 0, len, k;

	if (auth_split_url(url, &path, &query) != 0)
		return auth_fail(cause, "cannot sign a URL without a host "
		    "and path");
	auth_adds(b, "/");
	auth_adds(b, account);
	auth_adds(b, path);
	free(path);
	v = xcalloc(AUTH_MAX_PARAMS, sizeof(*v));
	for (p = query; p != NULL && *p != '\0' && *p != '#';
	    p = amp ? amp + 1 : NULL) {
		amp = strchr(p, '&');
		len = amp != NULL ? (size_t)(amp - p) : strcspn(p, "#");
		if (len == 0)
			continue;
		if (n == AUTH_MAX_PARAMS) {
			auth_pairs_free(v, n);
			return auth_fail(cause, "more than %d query parameters",
			    AUTH_MAX_PARAMS);
		}
		eq = memchr(p, '=', len);
		v[n].name = bd_storage_decode(p, eq ? (size_t)(eq - p) : len, true);
		for (k = 0; v[n].name[k] != '\0'; k++)
			v[n].name[k] = (char)tolower(
			    (unsigned char)v[n].name[k]);
		v[n].value = eq ? bd_storage_decode(eq + 1,
		    (size_t)(p + len - eq - 1), true) : xstrdup("");
		if (service == BD_STORAGE_TABLE &&
		    strcmp(v[n].name, "comp") != 0) {
			free(v[n].name);
			free(v[n].value);
			continue;
		}
		n++;
	}
	if (service == BD_STORAGE_TABLE) {
		if (n > 0) {
			auth_adds(b, "?comp=");
			auth_adds(b, v[0].value);
		}
	} else {
		auth_add_pairs(b, v, n, "\n", "");
	}
	auth_pairs_free(v, n);
	return 0;
}

int
bd_storage_string_to_sign(const char *account,
    enum bd_storage_service service, const char *method, const char *url,
    int64_t content_length, const char *range, const char *const *headers,
    size_t n_headers, char **out, char **cause)
{
	struct auth_buf b = { NULL, 0, 0 };
	char num[32], *date;
	int rc;

	*out = NULL;
	if (cause != NULL)
		*cause = NULL;
	auth_add(&b, "", 0);
	auth_adds(&b, method);
	auth_adds(&b, "\n");
	if (service == BD_STORAGE_TABLE) {
		/* Shared Key for the Table service: a shorter form whose
		   Date is x-ms-date when that is present. */
		auth_add_header(&b, headers, n_headers, "Content-MD5");
		auth_add_header(&b, headers, n_headers, "Content-Type");
		if ((date = auth_header(headers, n_headers, "x-ms-date")) ==
		    NULL)
			date = auth_header(headers, n_headers, "Date");
		if (date != NULL)
			auth_adds(&b, date);
		auth_adds(&b, "\n");
		free(date);
	} else {
		auth_add_header(&b, headers, n_headers, "Content-Encoding");
		auth_add_header(&b, headers, n_headers, "Content-Language");
		if (content_length > 0) {
			snprintf(num, sizeof(num), "%" PRId64, content_length);
			auth_adds(&b, num);
		}
		auth_adds(&b, "\n");
		auth_add_header(&b, headers, n_headers, "Content-MD5");
		auth_add_header(&b, headers, n_headers, "Content-Type");
		auth_add_header(&b, headers, n_headers, "Date");
		auth_add_header(&b, headers, n_headers, "If-Modified-Since");
		auth_add_header(&b, headers, n_headers, "If-Match");
		auth_add_header(&b, headers, n_headers, "If-None-Match");
		auth_add_header(&b, headers, n_headers, "If-Unmodified-Since");
		if (range != NULL)
			auth_adds(&b, range);
		auth_adds(&b, "\n");
		if ((rc = auth_add_ms_headers(&b, headers, n_headers,
		    cause)) != 0) {
			free(b.p);
			return rc;
		}
	}
	if ((rc = auth_add_resource(&b, account, service, url, cause)) != 0) {
		free(b.p);
		return rc;
	}
	*out = b.p;
	return 0;
}

/* True when some line of headers is header name. */
static bool
auth_has_header(char *const *lines, size_t n, const char *name)
{
	size_t len = strlen(name), i;

	for (i = 0; i < n; i++)
		if (strncasecmp(lines[i], name, len) == 0 &&
		    lines[i][len] == ':')
			return true;
	return false;
}

int
bd_storage_headers(const struct bd_storage_account *a,
    enum bd_storage_service service, bool sign, const char *method,
    const char *url, int64_t content_length, int64_t range_start,
    int64_t range_end, const char *const *headers, size_t n_headers,
    time_t now, char ***out, size_t *n_out, char **cause)
{
	char **lines, *sts, *sig, range[64], date[64];
	const char *rangep = NULL;
	struct tm tm;
	size_t i, n = 0;
	int rc;

	*out = NULL;
	*n_out = 0;
	if (cause != NULL)
		*cause = NULL;
	lines = xcalloc(n_headers + 3, sizeof(*lines));
	for (i = 0; i < n_headers; i++) {
		if (strpbrk(headers[i], "\r\n") != NULL ||
		    strchr(headers[i], ':') == NULL) {
			bd_storage_headers_free(lines, n);
			return auth_fail(cause, "header line %zu is not "
			    "\"Name: value\"", i + 1);
		}
		lines[n++] = xstrdup(headers[i]);
	}
	if (!auth_has_header(lines, n, "x-ms-date")) {
		gmtime_r(&now, &tm);
		strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		lines[n++] = xasprintf("x-ms-date: %s", date);
	}
	if (!auth_has_header(lines, n, "x-ms-version"))
		lines[n++] = xstrdup("x-ms-version: " BD_STORAGE_API_VERSION);
	if (sign && a != NULL && a->key != NULL && a->name != NULL) {
		if (range_start >= 0) {
			if (range_end >= 0)
				snprintf(range, sizeof(range), "bytes=%" PRId64
				    "-%" PRId64, range_start, range_end);
			else
				snprintf(range, sizeof(range), "bytes=%" PRId64
				    "-", range_start);
			rangep = range;
		}
		rc = bd_storage_string_to_sign(a->name, service, method, url,
		    content_length, rangep, (const char *const *)lines, n,
		    &sts, cause);
		if (rc != 0) {
			bd_storage_headers_free(lines, n);
			return rc;
		}
		sig = bd_storage_hmac(a->key, a->key_len, sts);
		lines[n++] = xasprintf("Authorization: SharedKey %s:%s",
		    a->name, sig);
		free(sig);
		free(sts);
	}
	*out = lines;
	*n_out = n;
	return 0;
}

void
bd_storage_headers_free(char **lines, size_t n)
{
	size_t i;

	if (lines == NULL)
		return;
	for (i = 0; i < n; i++)
		free(lines[i]);
	free(lines);
}
