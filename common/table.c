/* SPDX-License-Identifier: MIT */
/*
 * Azure Storage Table operations on top of common/http, in OData JSON.
 *
 * Every operation is a struct table_op made by the public call: it holds
 * a reference on the client (so the client may be "freed" while it runs;
 * the last reference frees it), starts its request, and is freed after
 * its callback has run from the http callback.  A query is the one
 * operation of several requests: each answer's continuation headers
 * (x-ms-continuation-NextPartitionKey and -NextRowKey) start the next
 * page, and the rows of every page gather in the op until the last.
 *
 * Writes go with "Accept: application/json;odata=nometadata" and
 * "Prefer: return-no-content"; the ETag comes from the ETag header.
 * Reads ask for minimal metadata, because only with it does an answer
 * say which strings are Int64 and DateTime values and carry each
 * queried entity's odata.etag.
 *
 * Answers are untrusted: their size is bounded by the memory sink of
 * http, the rows of a query by max_query_rows, and nothing but strings,
 * numbers and booleans reaches an entity's properties.  Error texts name
 * the table, the operation, the HTTP status and the storage error code
 * and message; the URLs in them never carry their query, and they go
 * through bd_url_redact() all the same.
 */
#include "table.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "storage_request.h"
#include "url.h"
#include "xmalloc.h"

#define TABLE_DEFAULT_TIMEOUT	60000L
#define TABLE_DEFAULT_ROWS	1000000
#define TABLE_DEFAULT_PAGE	(32u * 1024 * 1024)
#define TABLE_MAX_PROPS		252	/* 255 less PK, RK, Timestamp */
#define TABLE_MAX_PROP_NAME	255
#define TABLE_MAX_TOKEN		4096	/* bytes of a continuation */
#define TABLE_MAX_MESSAGE	1024	/* bytes of an error message */
#define TABLE_ERROR_DOC		(64 * 1024)

#define TABLE_ACCEPT_READ \
	"Accept: application/json;odata=minimalmetadata"
#define TABLE_ACCEPT_WRITE	"Accept: application/json;odata=nometadata"

struct bd_table_client {
	struct bd_http *http;
	const struct bd_storage_account *acct;
	char *endpoint;			/* no trailing '/' */
	struct bd_table_options o;
	int refs;			/* the owner's and each op's */
};

enum table_kind {
	T_CREATE, T_DELETE_TABLE, T_INSERT, T_REPLACE, T_MERGE, T_REMOVE,
	T_GET, T_QUERY,
};

/* One operation in flight. */
struct table_op {
	struct bd_table_client *c;
	enum table_kind kind;
	char *what;			/* "table NAME: insert (pk, rk)" */
	bd_table_write_cb write_cb;
	bd_table_entity_cb entity_cb;
	bd_table_query_cb query_cb;
	void *arg;

	/* A query: the path and filter of every page, and the rows. */
	char *path;
	char *filter;			/* "$filter=..." or NULL */
	struct bd_table_entity **rows;
	size_t n_rows;
	size_t pages;
};

/* --- Names, keys and values ------------------------------------------ */

bool
bd_table_name_valid(const char *name)
{
	size_t n, i;

	if (name == NULL || (n = strlen(name)) < 3 || n > 63)
		return false;
	for (i = 0; i < n; i++) {
		if ((name[i] >= 'a' && name[i] <= 'z') ||
		    (name[i] >= 'A' && name[i] <= 'Z'))
			continue;
		if (i == 0 || name[i] < '0' || name[i] > '9')
			return false;
	}
	return true;
}

/* Sets *cause (when wanted) to a formatted message; returns BD_EINVALID. */
static int __attribute__((format(printf, 2, 3)))
table_invalid(char **cause, const char *fmt, ...)
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
bd_table_key_check(const char *key, char **cause)
{
	const unsigned char *s = (const unsigned char *)key;
	size_t n, i;

	if (cause != NULL)
		*cause = NULL;
	if (key == NULL)
		return table_invalid(cause, "key is missing");
	if ((n = strlen(key)) > BD_TABLE_MAX_KEY)
		return table_invalid(cause, "key is longer than %d bytes",
		    BD_TABLE_MAX_KEY);
	for (i = 0; i < n; i++) {
		if (s[i] == '/' || s[i] == '\\' || s[i] == '#' || s[i] == '?')
			return table_invalid(cause, "key holds '%c', which "
			    "Azure Tables forbid", s[i]);
		/* U+0000-U+001F, U+007F, and U+0080-U+009F (C2 80..C2 9F). */
		if (s[i] < 0x20 || s[i] == 0x7f ||
		    (s[i] == 0xc2 && i + 1 < n && s[i + 1] >= 0x80 &&
		    s[i + 1] <= 0x9f))
			return table_invalid(cause, "key holds a control "
			    "character at byte %zu", i);
	}
	return 0;
}

/* Checks a property name. */
static int
table_prop_name_check(const char *name, char **cause)
{
	size_t n, i;

	if (name == NULL || (n = strlen(name)) == 0 || n > TABLE_MAX_PROP_NAME)
		return table_invalid(cause, "property name: empty or longer "
		    "than %d bytes", TABLE_MAX_PROP_NAME);
	for (i = 0; i < n; i++) {
		if ((name[i] >= 'a' && name[i] <= 'z') ||
		    (name[i] >= 'A' && name[i] <= 'Z') || name[i] == '_' ||
		    (i > 0 && name[i] >= '0' && name[i] <= '9'))
			continue;
		return table_invalid(cause, "property name \"%.64s\": not "
		    "an identifier", name);
	}
	if (strcmp(name, "PartitionKey") == 0 || strcmp(name, "RowKey") == 0 ||
	    strcmp(name, "Timestamp") == 0)
		return table_invalid(cause, "property name \"%s\" is the "
		    "service's own", name);
	return 0;
}

/* Whether a property of this name holds times. */
static bool
table_is_time_name(const char *name)
{
	size_t n = strlen(name);

	return (n >= 4 && strcmp(name + n - 4, "Time") == 0) ||
	    strcmp(name, "lastHeartbeat") == 0;
}

/* Whether s is "YYYY-MM-DDTHH:MM:SS[.f{1,7}]Z", a real UTC time. */
static bool
table_is_time(const char *s)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd";
	size_t i, f = 0;
	time_t t;

	for (i = 0; shape[i] != '\0'; i++) {
		if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') :
		    s[i] != shape[i])
			return false;
	}
	if (s[i] == '.') {
		for (i++; s[i] >= '0' && s[i] <= '9'; i++)
			f++;
		if (f == 0 || f > 7)
			return false;
	}
	if (s[i] != 'Z' || s[i + 1] != '\0')
		return false;
	return bd_storage_parse_time(s, &t) == 0;
}

/*
 * A time read back, without the trailing zeros of its fraction (and the
 * '.' when nothing is left): "2024-01-02T03:04:05.1200000Z" gives
 * "2024-01-02T03:04:05.12Z".  Other text is copied as it is.
 */
static char *
table_time_normal(const char *s)
{
	const char *dot = strchr(s, '.');
	size_t n = strlen(s), e;

	if (dot == NULL || n < 2 || s[n - 1] != 'Z')
		return xstrdup(s);
	e = n - 1;
	while (e > (size_t)(dot - s) + 1 && s[e - 1] == '0')
		e--;
	if (e == (size_t)(dot - s) + 1)
		e--;
	return xasprintf("%.*sZ", (int)e, s);
}

/* Adds name@odata.type: type to o. */
static void
table_annotate(cJSON *o, const char *name, const char *type)
{
	char *key = xasprintf("%s@odata.type", name);

	cJSON_AddStringToObject(o, key, type);
	free(key);
}

int
bd_table_entity_json(const char *pk, const char *rk, const cJSON *props,
    char **out, char **cause)
{
	const cJSON *p;
	cJSON *o;
	char num[32];
	double d;
	size_t count = 0;
	bool integral;
	int rc = 0;

	*out = NULL;
	if (cause != NULL)
		*cause = NULL;
	if ((rc = bd_table_key_check(pk, cause)) != 0 ||
	    (rc = bd_table_key_check(rk, cause)) != 0)
		return rc;
	if (props != NULL && !cJSON_IsObject(props))
		return table_invalid(cause, "properties: not an object");
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "PartitionKey", pk);
	cJSON_AddStringToObject(o, "RowKey", rk);
	for (p = props != NULL ? props->child : NULL; p != NULL; p = p->next) {
		if ((rc = table_prop_name_check(p->string, cause)) != 0)
			break;
		if (cJSON_GetObjectItemCaseSensitive(o, p->string) != NULL) {
			rc = table_invalid(cause, "property \"%s\" given "
			    "twice", p->string);
			break;
		}
		if (cJSON_IsNull(p))
			continue;
		if (++count > TABLE_MAX_PROPS) {
			rc = table_invalid(cause, "more than %d properties",
			    TABLE_MAX_PROPS);
			break;
		}
		if (cJSON_IsBool(p)) {
			cJSON_AddBoolToObject(o, p->string, cJSON_IsTrue(p));
		} else if (cJSON_IsNumber(p)) {
			d = p->valuedouble;
			if (!isfinite(d)) {
				rc = table_invalid(cause, "property \"%s\": "
				    "not a finite number", p->string);
				break;
			}
			integral = d >= -9223372036854775808.0 &&
			    d < 9223372036854775808.0 &&
			    d == (double)(long long)d;
			if (integral && d >= -2147483648.0 &&
			    d <= 2147483647.0) {
				cJSON_AddNumberToObject(o, p->string, d);
			} else if (integral) {
				snprintf(num, sizeof(num), "%lld",
				    (long long)d);
				cJSON_AddStringToObject(o, p->string, num);
				table_annotate(o, p->string, "Edm.Int64");
			} else {
				cJSON_AddNumberToObject(o, p->string, d);
				table_annotate(o, p->string, "Edm.Double");
			}
		} else if (cJSON_IsString(p)) {
			cJSON_AddStringToObject(o, p->string, p->valuestring);
			if (table_is_time_name(p->string) &&
			    table_is_time(p->valuestring))
				table_annotate(o, p->string, "Edm.DateTime");
		} else {
			rc = table_invalid(cause, "property \"%s\": not a "
			    "string, number or boolean", p->string);
			break;
		}
	}
	if (rc == 0 && (*out = cJSON_PrintUnformatted(o)) == NULL) {
		fprintf(stderr, "batchd: cJSON_PrintUnformatted failed\n");
		abort();
	}
	cJSON_Delete(o);
	return rc;
}

void
bd_table_entity_free(struct bd_table_entity *e)
{
	if (e == NULL)
		return;
	free(e->partition_key);
	free(e->row_key);
	free(e->etag);
	cJSON_Delete(e->props);
	free(e);
}

/* Frees n entities and the array. */
static void
table_rows_free(struct bd_table_entity **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		bd_table_entity_free(v[i]);
	free(v);
}

/* The type annotation of property name in obj, or NULL. */
static const char *
table_annotation(const cJSON *obj, const char *name)
{
	char *key = xasprintf("%s@odata.type", name);
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(obj, key);

	free(key);
	return cJSON_IsString(t) ? t->valuestring : NULL;
}

/* The value of property p of obj as batchd keeps it, or NULL to drop it. */
static cJSON *
table_read_value(const cJSON *obj, const cJSON *p)
{
	const char *type = table_annotation(obj, p->string);
	long long v;
	char *end, *s;
	cJSON *r;

	if (cJSON_IsString(p) && type != NULL) {
		if (strcmp(type, "Edm.Int64") == 0) {
			errno = 0;
			v = strtoll(p->valuestring, &end, 10);
			if (*p->valuestring != '\0' && *end == '\0' &&
			    errno == 0)
				return cJSON_CreateNumber((double)v);
		} else if (strcmp(type, "Edm.DateTime") == 0) {
			s = table_time_normal(p->valuestring);
			r = cJSON_CreateString(s);
			free(s);
			return r;
		}
		return cJSON_CreateString(p->valuestring);
	}
	if (cJSON_IsString(p) || cJSON_IsNumber(p) || cJSON_IsBool(p))
		return cJSON_Duplicate(p, false);
	return NULL;
}

int
bd_table_entity_parse(const cJSON *obj, const char *etag,
    struct bd_table_entity **out, char **cause)
{
	const cJSON *pk, *rk, *et, *p;
	struct bd_table_entity *e;
	cJSON *v;

	*out = NULL;
	if (cause != NULL)
		*cause = NULL;
	if (!cJSON_IsObject(obj))
		return table_invalid(cause, "an entity is not a JSON object");
	pk = cJSON_GetObjectItemCaseSensitive(obj, "PartitionKey");
	rk = cJSON_GetObjectItemCaseSensitive(obj, "RowKey");
	if (!cJSON_IsString(pk) || !cJSON_IsString(rk))
		return table_invalid(cause, "an entity lacks PartitionKey or "
		    "RowKey");
	if (strlen(pk->valuestring) > BD_TABLE_MAX_KEY ||
	    strlen(rk->valuestring) > BD_TABLE_MAX_KEY)
		return table_invalid(cause, "an entity's key is longer than "
		    "%d bytes", BD_TABLE_MAX_KEY);
	et = cJSON_GetObjectItemCaseSensitive(obj, "odata.etag");
	if (etag == NULL && cJSON_IsString(et))
		etag = et->valuestring;
	if (etag != NULL && strlen(etag) > BD_TABLE_MAX_ETAG)
		return table_invalid(cause, "an entity's ETag is longer than "
		    "%d bytes", BD_TABLE_MAX_ETAG);
	e = xcalloc(1, sizeof(*e));
	e->partition_key = xstrdup(pk->valuestring);
	e->row_key = xstrdup(rk->valuestring);
	e->etag = etag != NULL ? xstrdup(etag) : NULL;
	e->props = cJSON_CreateObject();
	for (p = obj->child; p != NULL; p = p->next) {
		if (p->string == NULL ||
		    strcmp(p->string, "PartitionKey") == 0 ||
		    strcmp(p->string, "RowKey") == 0 ||
		    strcmp(p->string, "Timestamp") == 0 ||
		    strncmp(p->string, "odata.", 6) == 0 ||
		    strchr(p->string, '@') != NULL)
			continue;
		/* A name given twice keeps its first value. */
		if (cJSON_GetObjectItemCaseSensitive(e->props, p->string) !=
		    NULL)
			continue;
		if ((v = table_read_value(obj, p)) != NULL)
			cJSON_AddItemToObject(e->props, p->string, v);
	}
	*out = e;
	return 0;
}

/* s with each single quote doubled, as OData string literals want. */
static char *
table_quote(const char *s)
{
	size_t n = strlen(s), i, o = 0;
	char *q = xmalloc(2 * n + 1);

	for (i = 0; i < n; i++) {
		if (s[i] == '\'')
			q[o++] = '\'';
		q[o++] = s[i];
	}
	q[o] = '\0';
	return q;
}

char *
bd_table_partition_filter(const char *pk)
{
	char *q = table_quote(pk), *f;

	f = xasprintf("PartitionKey eq '%s'", q);
	free(q);
	return f;
}

/* --- Client ---------------------------------------------------------- */

int
bd_table_client_new(struct bd_http *http, const struct bd_storage_account *a,
    const struct bd_table_options *o, struct bd_table_client **out,
    char **cause)
{
	struct bd_table_client *c;
	const char *ep;

	*out = NULL;
	if (cause != NULL)
		*cause = NULL;
	if ((ep = bd_storage_account_endpoint(a, BD_STORAGE_TABLE)) == NULL)
		return table_invalid(cause, "the storage account has no "
		    "table endpoint");
	c = xcalloc(1, sizeof(*c));
	c->http = http;
	c->acct = a;
	c->endpoint = xstrdup(ep);
	if (o != NULL)
		c->o = *o;
	if (c->o.timeout_ms <= 0)
		c->o.timeout_ms = TABLE_DEFAULT_TIMEOUT;
	if (c->o.max_query_rows == 0)
		c->o.max_query_rows = TABLE_DEFAULT_ROWS;
	if (c->o.max_page_bytes == 0)
		c->o.max_page_bytes = TABLE_DEFAULT_PAGE;
	c->refs = 1;
	*out = c;
	return 0;
}

/* Drops a reference on c, freeing it with the last. */
static void
table_client_unref(struct bd_table_client *c)
{
	if (--c->refs > 0)
		return;
	free(c->endpoint);
	free(c);
}

void
bd_table_client_free(struct bd_table_client *c)
{
	if (c != NULL)
		table_client_unref(c);
}

/* --- Requests -------------------------------------------------------- */

/* A new op of kind for arg, "table T: verb". */
static struct table_op *
table_op_new(struct bd_table_client *c, enum table_kind kind, void *arg,
    const char *table, const char *verb, const char *pk, const char *rk)
{
	struct table_op *op = xcalloc(1, sizeof(*op));

	op->c = c;
	c->refs++;
	op->kind = kind;
	op->arg = arg;
	if (pk != NULL && rk != NULL)
		op->what = xasprintf("table %s: %s (%.128s, %.128s)", table,
		    verb, pk, rk);
	else if (pk != NULL)
		op->what = xasprintf("table %s: %s (%.128s)", table, verb, pk);
	else
		op->what = xasprintf("table %s: %s", table, verb);
	return op;
}

/* Frees op and what it holds. */
static void
table_op_free(struct table_op *op)
{
	table_rows_free(op->rows, op->n_rows);
	free(op->what);
	free(op->path);
	free(op->filter);
	table_client_unref(op->c);
	free(op);
}

/* Runs op's callback with a failure. */
static void
table_deliver_error(struct table_op *op, int status, const char *detail)
{
	switch (op->kind) {
	case T_GET:
		op->entity_cb(op->arg, status, NULL, detail);
		break;
	case T_QUERY:
		op->query_cb(op->arg, status, NULL, 0, detail);
		break;
	default:
		op->write_cb(op->arg, status, NULL, detail);
		break;
	}
}

/* Reads an OData error body into *code and *msg (NULL when absent). */
static void
table_error_parse(const char *body, size_t len, char **code, char **msg)
{
	const cJSON *e, *c, *m;
	cJSON *doc;
	size_t i, n;

	*code = *msg = NULL;
	if (body == NULL || len == 0 || len > TABLE_ERROR_DOC ||
	    (doc = cJSON_ParseWithLength(body, len)) == NULL)
		return;
	e = cJSON_GetObjectItemCaseSensitive(doc, "odata.error");
	c = cJSON_GetObjectItemCaseSensitive(e, "code");
	m = cJSON_GetObjectItemCaseSensitive(e, "message");
	if (cJSON_IsObject(m))
		m = cJSON_GetObjectItemCaseSensitive(m, "value");
	if (cJSON_IsString(c) && *c->valuestring != '\0')
		*code = xstrndup(c->valuestring, 128);
	if (cJSON_IsString(m) && *m->valuestring != '\0') {
		*msg = xstrndup(m->valuestring, TABLE_MAX_MESSAGE);
		/* Azure's messages carry RequestId and Time on new lines. */
		n = strlen(*msg);
		for (i = 0; i < n; i++)
			if ((unsigned char)(*msg)[i] < 0x20 ||
			    (*msg)[i] == 0x7f)
				(*msg)[i] = ' ';
		while (n > 0 && (*msg)[n - 1] == ' ')
			(*msg)[--n] = '\0';
	}
	cJSON_Delete(doc);
}

/*
 * The status of a failed request and its text, mapped as table.h says.
 * *ok is set when the failure is success for this operation (a table
 * that exists).
 */
static int
table_map_error(struct table_op *op, int status,
    const struct bd_http_response *resp, char **detail, bool *ok)
{
	char *code = NULL, *msg = NULL, *text;
	long st = resp->status;
	int err = status;

	*ok = false;
	if (status != BD_EHTTP) {
		text = xasprintf("%s: %s", op->what,
		    resp->error_detail != NULL ? resp->error_detail :
		    bd_strerror(status));
		*detail = bd_url_redact(text);
		free(text);
		return status;
	}
	table_error_parse(resp->body, resp->body_len, &code, &msg);
	if (resp->error_code != NULL) {
		free(code);
		code = xstrndup(resp->error_code, 128);
	}
	if (st == 404)
		err = -ENOENT;
	else if (st == 412)
		err = -ESTALE;
	else if (st == 401 || st == 403)
		err = BD_EDENIED;
	else if (st == 413 || (code != NULL && (strstr(code, "TooLarge") !=
	    NULL || strcmp(code, "RequestBodyTooLarge") == 0)))
		err = BD_ETOOBIG;
	else if (st == 409 && code != NULL &&
	    strcmp(code, "EntityAlreadyExists") == 0)
		err = -EEXIST;
	else if (st == 409 && code != NULL && op->kind == T_CREATE &&
	    strcmp(code, "TableAlreadyExists") == 0)
		*ok = true;
	text = xasprintf("%s: HTTP %ld%s%s%s%s", op->what, st,
	    code != NULL ? " " : "", code != NULL ? code : "",
	    msg != NULL ? ": " : "", msg != NULL ? msg : "");
	*detail = bd_url_redact(text);
	free(text);
	free(code);
	free(msg);
	return err;
}

static int table_start(struct table_op *, const char *, const char *,
    const char *, const char *, const char *);

/*
 * One page of a query arrived: its rows join the op's, and the next page
 * starts when the answer has continuation headers.  Returns 1 when a next
 * page is on its way, 0 when the query is complete, or an error with
 * *detail.
 */
static int
table_query_page(struct table_op *op, const struct bd_http_response *resp,
    char **detail)
{
	const char *npk, *nrk;
	const cJSON *value, *item;
	struct bd_table_entity *e;
	char *cause = NULL, *query, *epk, *erk;
	cJSON *doc;
	int rc = 0;

	op->pages++;
	if ((doc = cJSON_ParseWithLength(resp->body, resp->body_len)) ==
	    NULL) {
		*detail = xasprintf("%s: page %zu is not JSON", op->what,
		    op->pages);
		return BD_EINVALID;
	}
	value = cJSON_GetObjectItemCaseSensitive(doc, "value");
	if (!cJSON_IsArray(value)) {
		cJSON_Delete(doc);
		*detail = xasprintf("%s: page %zu has no value array",
		    op->what, op->pages);
		return BD_EINVALID;
	}
	cJSON_ArrayForEach(item, value) {
		if (op->n_rows >= op->c->o.max_query_rows) {
			*detail = xasprintf("%s: more than %zu rows",
			    op->what, op->c->o.max_query_rows);
			rc = BD_ETOOBIG;
			break;
		}
		if ((rc = bd_table_entity_parse(item, NULL, &e, &cause)) !=
		    0) {
			*detail = xasprintf("%s: page %zu: %s", op->what,
			    op->pages, cause);
			free(cause);
			break;
		}
		op->rows = xreallocarray(op->rows, op->n_rows + 1,
		    sizeof(*op->rows));
		op->rows[op->n_rows++] = e;
	}
	cJSON_Delete(doc);
	if (rc != 0)
		return rc;
	npk = bd_http_response_header(resp,
	    "x-ms-continuation-NextPartitionKey");
	nrk = bd_http_response_header(resp, "x-ms-continuation-NextRowKey");
	if (npk == NULL || *npk == '\0')
		return 0;
	if (strlen(npk) > TABLE_MAX_TOKEN ||
	    (nrk != NULL && strlen(nrk) > TABLE_MAX_TOKEN)) {
		*detail = xasprintf("%s: continuation token too long",
		    op->what);
		return BD_EINVALID;
	}
	epk = bd_url_encode(npk, false);
	erk = nrk != NULL && *nrk != '\0' ? bd_url_encode(nrk, false) : NULL;
	query = xasprintf("%s%sNextPartitionKey=%s%s%s",
	    op->filter != NULL ? op->filter : "",
	    op->filter != NULL ? "&" : "", epk,
	    erk != NULL ? "&NextRowKey=" : "", erk != NULL ? erk : "");
	rc = table_start(op, "GET", op->path, query, NULL, NULL);
	free(query);
	free(epk);
	free(erk);
	if (rc != 0) {
		*detail = xasprintf("%s: page %zu: %s", op->what,
		    op->pages + 1, bd_strerror(rc));
		return rc;
	}
	return 1;
}

/* http: a request of op ended. */
static void
table_on_http(struct bd_http_transfer *t, int status,
    const struct bd_http_response *resp, void *arg)
{
	struct table_op *op = arg;
	struct bd_table_entity *e = NULL, **rows;
	char *detail = NULL, *cause = NULL;
	const char *etag;
	cJSON *doc;
	size_t n;
	bool ok = false;
	int rc;

	(void)t;
	if (status != 0) {
		rc = table_map_error(op, status, resp, &detail, &ok);
		if (ok)
			op->write_cb(op->arg, 0, NULL, NULL);
		else
			table_deliver_error(op, rc, detail);
		free(detail);
		table_op_free(op);
		return;
	}
	etag = resp->etag;
	if (etag != NULL && (strlen(etag) > BD_TABLE_MAX_ETAG ||
	    strpbrk(etag, "\r\n") != NULL))
		etag = NULL;
	switch (op->kind) {
	case T_GET:
		doc = cJSON_ParseWithLength(resp->body, resp->body_len);
		rc = bd_table_entity_parse(doc, etag, &e, &cause);
		cJSON_Delete(doc);
		if (rc != 0) {
			detail = xasprintf("%s: %s", op->what, cause);
			op->entity_cb(op->arg, rc, NULL, detail);
			break;
		}
		op->entity_cb(op->arg, 0, e, NULL);
		break;
	case T_QUERY:
		if ((rc = table_query_page(op, resp, &detail)) == 1)
			return;
		if (rc != 0) {
			op->query_cb(op->arg, rc, NULL, 0, detail);
			break;
		}
		rows = op->rows;
		n = op->n_rows;
		op->rows = NULL;
		op->n_rows = 0;
		op->query_cb(op->arg, 0, rows, n, NULL);
		break;
	case T_INSERT:
	case T_REPLACE:
	case T_MERGE:
		if (etag == NULL) {
			detail = xasprintf("%s: the answer has no ETag",
			    op->what);
			op->write_cb(op->arg, BD_EINVALID, NULL, detail);
			break;
		}
		op->write_cb(op->arg, 0, etag, NULL);
		break;
	default:
		op->write_cb(op->arg, 0, NULL, NULL);
		break;
	}
	free(detail);
	free(cause);
	table_op_free(op);
}

/*
 * Starts a request of op: method on the endpoint's path, with query (NULL:
 * none), a JSON body (NULL: none) and If-Match: if_match (NULL: none).
 * Returns 0 or the error of bd_storage_headers() or bd_http_start(); the
 * op is left to the caller then.
 */
static int
table_start(struct table_op *op, const char *method, const char *path,
    const char *query, const char *body, const char *if_match)
{
	struct bd_table_client *c = op->c;
	struct bd_http_request req;
	const char *extra[8];
	char *url, *im = NULL;
	size_t n_extra = 0;
	bool read = op->kind == T_GET || op->kind == T_QUERY;
	int rc;

	url = bd_storage_url(c->acct, c->endpoint, path, query);
	extra[n_extra++] = read ? TABLE_ACCEPT_READ : TABLE_ACCEPT_WRITE;
	extra[n_extra++] = "DataServiceVersion: 3.0;NetFx";
	extra[n_extra++] = "MaxDataServiceVersion: 3.0;NetFx";
	if (body != NULL) {
		extra[n_extra++] = "Content-Type: application/json";
		extra[n_extra++] = "Expect:";
	}
	if (op->kind == T_INSERT || op->kind == T_CREATE)
		extra[n_extra++] = "Prefer: return-no-content";
	if (if_match != NULL) {
		im = xasprintf("If-Match: %s", if_match);
		extra[n_extra++] = im;
	}
	bd_http_request_init(&req);
	req.method = method;
	req.url = url;
	req.retry = c->o.retry;
	req.total_timeout_ms = c->o.timeout_ms;
	req.max_memory_body = read ? c->o.max_page_bytes : 0;
	if (body != NULL) {
		req.body_mem = body;
		req.body_mem_len = strlen(body);
	}
	rc = bd_storage_request_start(c->http, c->acct, BD_STORAGE_TABLE, &req,
	    extra, n_extra, table_on_http, op);
	free(im);
	free(url);
	return rc;
}

/* Starts op's single request, freeing op when that fails. */
static int
table_start_one(struct table_op *op, const char *method, const char *path,
    const char *query, const char *body, const char *if_match)
{
	int rc = table_start(op, method, path, query, body, if_match);

	if (rc != 0)
		table_op_free(op);
	return rc;
}

/* "/table(PartitionKey='pk',RowKey='rk')", quotes doubled, encoded. */
static char *
table_entity_path(const char *table, const char *pk, const char *rk)
{
	char *qpk = table_quote(pk), *qrk = table_quote(rk), *epk, *erk, *path;

	epk = bd_url_encode(qpk, false);
	erk = bd_url_encode(qrk, false);
	path = xasprintf("/%s(PartitionKey='%s',RowKey='%s')", table, epk,
	    erk);
	free(qpk);
	free(qrk);
	free(epk);
	free(erk);
	return path;
}

/* Checks an ETag given for If-Match. */
static int
table_etag_check(const char *etag, char **cause)
{
	size_t n, i;

	if ((n = strlen(etag)) == 0 || n > BD_TABLE_MAX_ETAG)
		return table_invalid(cause, "ETag: empty or longer than %d "
		    "bytes", BD_TABLE_MAX_ETAG);
	for (i = 0; i < n; i++)
		if ((unsigned char)etag[i] < 0x20 || etag[i] == 0x7f)
			return table_invalid(cause, "ETag: holds a control "
			    "character");
	return 0;
}

/* Checks a table name, with *cause. */
static int
table_name_check(const char *table, char **cause)
{
	if (!bd_table_name_valid(table))
		return table_invalid(cause, "table name: 3 to 63 letters and "
		    "digits, starting with a letter");
	return 0;
}

int
bd_table_create(struct bd_table_client *c, const char *table,
    bd_table_write_cb cb, void *arg)
{
	struct table_op *op;
	char *body;
	int rc;

	if (!bd_table_name_valid(table))
		return BD_EINVALID;
	op = table_op_new(c, T_CREATE, arg, table, "create", NULL, NULL);
	op->write_cb = cb;
	body = xasprintf("{\"TableName\":\"%s\"}", table);
	rc = table_start_one(op, "POST", "/Tables", NULL, body, NULL);
	free(body);
	return rc;
}

int
bd_table_delete(struct bd_table_client *c, const char *table,
    bd_table_write_cb cb, void *arg)
{
	struct table_op *op;
	char *path;
	int rc;

	if (!bd_table_name_valid(table))
		return BD_EINVALID;
	op = table_op_new(c, T_DELETE_TABLE, arg, table, "delete", NULL,
	    NULL);
	op->write_cb = cb;
	path = xasprintf("/Tables('%s')", table);
	rc = table_start_one(op, "DELETE", path, NULL, NULL, NULL);
	free(path);
	return rc;
}

/* Insert, replace or merge (etag as bd_table_replace() takes it). */
static int
table_write(struct bd_table_client *c, enum table_kind kind,
    const char *table, const char *pk, const char *rk, const cJSON *props,
    const char *etag, bd_table_write_cb cb, void *arg, char **cause)
{
	static const char *const verbs[] = {
		[T_INSERT] = "insert", [T_REPLACE] = "replace",
		[T_MERGE] = "merge",
	};
	struct table_op *op;
	char *body, *path;
	int rc;

	if (cause != NULL)
		*cause = NULL;
	if ((rc = table_name_check(table, cause)) != 0 ||
	    (etag != NULL && (rc = table_etag_check(etag, cause)) != 0) ||
	    (rc = bd_table_entity_json(pk, rk, props, &body, cause)) != 0)
		return rc;
	op = table_op_new(c, kind, arg, table, verbs[kind], pk, rk);
	op->write_cb = cb;
	if (kind == T_INSERT) {
		path = xasprintf("/%s", table);
		rc = table_start_one(op, "POST", path, NULL, body, NULL);
	} else {
		path = table_entity_path(table, pk, rk);
		rc = table_start_one(op, kind == T_MERGE ? "MERGE" : "PUT",
		    path, NULL, body, etag);
	}
	free(path);
	free(body);
	return rc;
}

int
bd_table_insert(struct bd_table_client *c, const char *table, const char *pk,
    const char *rk, const cJSON *props, bd_table_write_cb cb, void *arg,
    char **cause)
{
	return table_write(c, T_INSERT, table, pk, rk, props, NULL, cb, arg,
	    cause);
}

int
bd_table_replace(struct bd_table_client *c, const char *table, const char *pk,
    const char *rk, const cJSON *props, const char *etag,
    bd_table_write_cb cb, void *arg, char **cause)
{
	return table_write(c, T_REPLACE, table, pk, rk, props, etag, cb, arg,
	    cause);
}

int
bd_table_merge(struct bd_table_client *c, const char *table, const char *pk,
    const char *rk, const cJSON *props, const char *etag,
    bd_table_write_cb cb, void *arg, char **cause)
{
	return table_write(c, T_MERGE, table, pk, rk, props, etag, cb, arg,
	    cause);
}

int
bd_table_remove(struct bd_table_client *c, const char *table, const char *pk,
    const char *rk, const char *etag, bd_table_write_cb cb, void *arg,
    char **cause)
{
	struct table_op *op;
	char *path;
	int rc;

	if (cause != NULL)
		*cause = NULL;
	if ((rc = table_name_check(table, cause)) != 0 ||
	    (rc = bd_table_key_check(pk, cause)) != 0 ||
	    (rc = bd_table_key_check(rk, cause)) != 0 ||
	    (etag != NULL && (rc = table_etag_check(etag, cause)) != 0))
		return rc;
	op = table_op_new(c, T_REMOVE, arg, table, "delete", pk, rk);
	op->write_cb = cb;
	path = table_entity_path(table, pk, rk);
	rc = table_start_one(op, "DELETE", path, NULL, NULL,
	    etag != NULL ? etag : "*");
	free(path);
	return rc;
}

int
bd_table_get(struct bd_table_client *c, const char *table, const char *pk,
    const char *rk, bd_table_entity_cb cb, void *arg, char **cause)
{
	struct table_op *op;
	char *path;
	int rc;

	if (cause != NULL)
		*cause = NULL;
	if ((rc = table_name_check(table, cause)) != 0 ||
	    (rc = bd_table_key_check(pk, cause)) != 0 ||
	    (rc = bd_table_key_check(rk, cause)) != 0)
		return rc;
	op = table_op_new(c, T_GET, arg, table, "get", pk, rk);
	op->entity_cb = cb;
	path = table_entity_path(table, pk, rk);
	rc = table_start_one(op, "GET", path, NULL, NULL, NULL);
	free(path);
	return rc;
}

int
bd_table_query(struct bd_table_client *c, const char *table, const char *pk,
    bd_table_query_cb cb, void *arg, char **cause)
{
	struct table_op *op;
	char *f, *ef;
	int rc;

	if (cause != NULL)
		*cause = NULL;
	if ((rc = table_name_check(table, cause)) != 0 ||
	    (pk != NULL && (rc = bd_table_key_check(pk, cause)) != 0))
		return rc;
	op = table_op_new(c, T_QUERY, arg, table, "query", pk, NULL);
	op->query_cb = cb;
	op->path = xasprintf("/%s()", table);
	if (pk != NULL) {
		f = bd_table_partition_filter(pk);
		ef = bd_url_encode(f, false);
		op->filter = xasprintf("$filter=%s", ef);
		free(ef);
		free(f);
	}
	rc = table_start_one(op, "GET", op->path, op->filter, NULL, NULL);
	return rc;
}
