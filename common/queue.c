/* SPDX-License-Identifier: MIT */
/*
 * Azure Storage Queue operations on top of common/http.
 *
 * Every operation is one HTTP request: a struct queue_op is made by the
 * public call, holds copies of everything it needs (so the client may be
 * freed while it runs), starts the request and is freed after its
 * callback has run from the http callback.  http never calls back from
 * inside bd_http_start(), which gives this module the same promise.
 *
 * Messages go out as <QueueMessage><MessageText>escaped</MessageText>
 * </QueueMessage> and come back in QueueMessagesList documents, parsed by
 * expat with bounds on the number of messages and on every field, and
 * with DOCTYPE declarations refused (no entity expansion).
 *
 * Error texts name the queue, the operation, the HTTP status and the
 * storage error code and message.  URLs in them never carry their query,
 * so neither a SAS signature nor a pop receipt reaches them, and they go
 * through bd_url_redact() all the same.
 */
#include "queue.h"

#include <ctype.h>
#include <errno.h>
#include <expat.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "error.h"
#include "storage_request.h"
#include "url.h"
#include "xmalloc.h"
#include "xml_list.h"

#define QUEUE_MAX_FIELD		1024	/* bytes of an id, a receipt... */
#define QUEUE_MAX_READ_TEXT	(4 * BD_QUEUE_MAX_TEXT) /* unescaped, read */
/* Bytes of a Get Messages answer: 32 texts, escaped, and their fields. */
#define QUEUE_MAX_BODY		(16 * 1024 * 1024)
#define QUEUE_DEFAULT_TIMEOUT	60000L
#define QUEUE_XML_DEPTH		8

struct bd_queue_client {
	struct bd_http *http;
	const struct bd_storage_account *acct;
	char *endpoint;			/* no trailing '/' */
	struct bd_queue_options o;
};

enum queue_kind {
	Q_CREATE, Q_DELETE, Q_CLEAR, Q_PUT, Q_GET, Q_UPDATE, Q_DELETE_MSG,
};

/* One request in flight. */
struct queue_op {
	enum queue_kind kind;
	char *what;			/* "queue NAME: put message" */
	bd_queue_done_cb done_cb;
	bd_queue_get_cb get_cb;
	bd_queue_update_cb update_cb;
	void *arg;
};

/* --- Names, text and times ------------------------------------------- */

bool
bd_queue_name_valid(const char *name)
{
	size_t n, i;

	if (name == NULL || (n = strlen(name)) < 3 || n > 63)
		return false;
	for (i = 0; i < n; i++) {
		if ((name[i] >= 'a' && name[i] <= 'z') ||
		    (name[i] >= '0' && name[i] <= '9'))
			continue;
		if (name[i] != '-' || i == 0 || i == n - 1 ||
		    name[i - 1] == '-')
			return false;
	}
	return true;
}

/*
 * The length of the UTF-8 sequence at s (1 to 4) and its code point in
 * *cp, or 0 for a malformed, overlong or surrogate sequence.
 */
static size_t
queue_utf8(const unsigned char *s, uint32_t *cp)
{
	uint32_t c = s[0], min;
	size_t n, i;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		c &= 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		c &= 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		c &= 0x07;
		min = 0x10000;
	} else
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

char *
bd_queue_escape(const char *text)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t len = strlen(text), i = 0, o = 0, k;
	char *out = xmalloc(len * 6 + 1);
	const char *rep;
	uint32_t cp;

	while (i < len) {
		if ((k = queue_utf8(s + i, &cp)) == 0 ||
		    (cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') ||
		    cp == 0xfffe || cp == 0xffff) {
			free(out);
			return NULL;
		}
		switch (cp) {
		case '&':
			rep = "&amp;";
			break;
		case '<':
			rep = "&lt;";
			break;
		case '>':
			rep = "&gt;";
			break;
		case '"':
			rep = "&quot;";
			break;
		case '\'':
			rep = "&apos;";
			break;
		case '\r':
			/* A bare CR would be read back as LF. */
			rep = "&#13;";
			break;
		default:
			rep = NULL;
			break;
		}
		if (rep != NULL) {
			memcpy(out + o, rep, strlen(rep));
			o += strlen(rep);
		} else {
			memcpy(out + o, s + i, k);
			o += k;
		}
		i += k;
	}
	out[o] = '\0';
	return out;
}

/* The month number (0-11) of a three-letter English name, or -1. */
static int
queue_month(const char *m)
{
	static const char *const names[12] = { "Jan", "Feb", "Mar", "Apr",
	    "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	int i;

	for (i = 0; i < 12; i++)
		if (strcasecmp(m, names[i]) == 0)
			return i;
	return -1;
}

int
bd_queue_parse_http_date(const char *s, int64_t *out)
{
	char wday[4], mon[4], zone[4];
	struct tm tm;
	int n = 0;
	time_t t;

	memset(&tm, 0, sizeof(tm));
	if (s == NULL || strlen(s) > 64 ||
	    sscanf(s, "%3[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d %3[A-Z]%n",
	    wday, &tm.tm_mday, mon, &tm.tm_year, &tm.tm_hour, &tm.tm_min,
	    &tm.tm_sec, zone, &n) != 8 || s[n] != '\0' ||
	    strcmp(zone, "GMT") != 0 || (tm.tm_mon = queue_month(mon)) < 0 ||
	    tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_year < 1970 ||
	    tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
		return BD_EINVALID;
	tm.tm_year -= 1900;
	if ((t = timegm(&tm)) == (time_t)-1)
		return BD_EINVALID;
	*out = (int64_t)t * 1000;
	return 0;
}

void
bd_queue_message_free(struct bd_queue_message *m)
{
	if (m == NULL)
		return;
	free(m->id);
	free(m->pop_receipt);
	free(m->text);
	free(m);
}

/* Frees n messages and the array. */
static void
queue_messages_free(struct bd_queue_message **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		bd_queue_message_free(v[i]);
	free(v);
}

/* --- QueueMessagesList ----------------------------------------------- */

enum queue_field {
	F_NONE, F_ID, F_INSERTED, F_EXPIRES, F_RECEIPT, F_VISIBLE, F_COUNT,
	F_TEXT, F_OTHER,
};

struct queue_parser {
	XML_Parser xp;
	int depth;
	bool seen_root;
	enum queue_field field;		/* the depth-2 element open */
	char *text;			/* its text so far */
	size_t text_len;
	size_t text_cap;
	size_t text_max;
	struct bd_queue_message *cur;	/* the QueueMessage open */
	struct bd_queue_message **msgs;
	size_t n;
	int err;
	char *cause;
};

/* Records the first error and stops expat. */
static void __attribute__((format(printf, 3, 4)))
queue_parse_fail(struct queue_parser *p, int err, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	if (p->err != 0)
		return;
	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	p->err = err;
	p->cause = xasprintf("message list line %lu: %s",
	    (unsigned long)XML_GetCurrentLineNumber(p->xp), msg);
	free(msg);
	XML_StopParser(p->xp, XML_FALSE);
}

/* The field of a QueueMessage child element. */
static enum queue_field
queue_classify(const char *name)
{
	static const struct {
		const char *name;
		enum queue_field f;
	} t[] = {
		{ "MessageId", F_ID }, { "InsertionTime", F_INSERTED },
		{ "ExpirationTime", F_EXPIRES }, { "PopReceipt", F_RECEIPT },
		{ "TimeNextVisible", F_VISIBLE }, { "DequeueCount", F_COUNT },
		{ "MessageText", F_TEXT },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(name, t[i].name) == 0)
			return t[i].f;
	return F_OTHER;
}

/* expat: an element opens. */
static void XMLCALL
queue_on_start(void *arg, const XML_Char *name, const XML_Char **attrs)
{
	struct queue_parser *p = arg;

	(void)attrs;
	if (p->err != 0)
		return;
	if (p->depth == 0) {
		if (strcmp(name, "QueueMessagesList") != 0)
			queue_parse_fail(p, BD_EINVALID, "root element is "
			    "not QueueMessagesList");
		p->seen_root = true;
	} else if (p->depth == 1) {
		if (strcmp(name, "QueueMessage") != 0) {
			queue_parse_fail(p, BD_EINVALID, "unexpected "
			    "element in the message list");
			return;
		}
		if (p->n == BD_QUEUE_MAX_GET) {
			queue_parse_fail(p, BD_ETOOBIG, "more than %d "
			    "messages", BD_QUEUE_MAX_GET);
			return;
		}
		p->cur = xcalloc(1, sizeof(*p->cur));
		p->cur->inserted_ms = p->cur->expires_ms =
		    p->cur->visible_ms = -1;
		p->msgs = xreallocarray(p->msgs, p->n + 1, sizeof(*p->msgs));
		p->msgs[p->n++] = p->cur;
	} else if (p->depth == 2) {
		p->field = queue_classify(name);
		p->text_len = 0;
		p->text_max = p->field == F_TEXT ? QUEUE_MAX_READ_TEXT :
		    QUEUE_MAX_FIELD;
	} else if (p->depth >= QUEUE_XML_DEPTH) {
		queue_parse_fail(p, BD_EINVALID, "elements nested too deep");
		return;
	}
	p->depth++;
}

/* A copy of the collected text (possibly ""). */
static char *
queue_text(struct queue_parser *p)
{
	return xstrndup(p->text != NULL ? p->text : "", p->text_len);
}

/* Reads a time field into *out; a bad one is an error. */
static void
queue_time_field(struct queue_parser *p, const char *what, int64_t *out)
{
	char *s = queue_text(p);

	if (*s != '\0' && bd_queue_parse_http_date(s, out) != 0)
		queue_parse_fail(p, BD_EINVALID, "%s is not an HTTP date",
		    what);
	free(s);
}

/* expat: an element closes; a depth-2 field is stored. */
static void XMLCALL
queue_on_end(void *arg, const XML_Char *name)
{
	struct queue_parser *p = arg;
	struct bd_queue_message *m = p->cur;
	char *s, *end;
	long v;

	(void)name;
	if (p->err != 0)
		return;
	p->depth--;
	if (p->depth == 1) {
		if (m->id == NULL || *m->id == '\0')
			queue_parse_fail(p, BD_EINVALID, "a message has no "
			    "MessageId");
		p->cur = NULL;
		return;
	}
	if (p->depth != 2)
		return;
	switch (p->field) {
	case F_ID:
		free(m->id);
		m->id = queue_text(p);
		break;
	case F_RECEIPT:
		free(m->pop_receipt);
		m->pop_receipt = queue_text(p);
		break;
	case F_TEXT:
		free(m->text);
		m->text = queue_text(p);
		break;
	case F_INSERTED:
		queue_time_field(p, "InsertionTime", &m->inserted_ms);
		break;
	case F_EXPIRES:
		queue_time_field(p, "ExpirationTime", &m->expires_ms);
		break;
	case F_VISIBLE:
		queue_time_field(p, "TimeNextVisible", &m->visible_ms);
		break;
	case F_COUNT:
		s = queue_text(p);
		errno = 0;
		v = strtol(s, &end, 10);
		if (*s == '\0' || *end != '\0' || errno != 0 || v < 0 ||
		    v > INT32_MAX)
			queue_parse_fail(p, BD_EINVALID, "DequeueCount is "
			    "not a count");
		else
			m->dequeue_count = (int)v;
		free(s);
		break;
	default:
		break;
	}
	p->field = F_NONE;
}

/* expat: text, collected (bounded) inside the fields we keep. */
static void XMLCALL
queue_on_text(void *arg, const XML_Char *s, int len)
{
	struct queue_parser *p = arg;
	size_t n = (size_t)len;

	if (p->err != 0 || p->depth != 3 || p->field == F_NONE ||
	    p->field == F_OTHER)
		return;
	if (p->text_len + n > p->text_max) {
		queue_parse_fail(p, BD_ETOOBIG, "a message field is longer "
		    "than %zu bytes", p->text_max);
		return;
	}
	if (p->text_len + n + 1 > p->text_cap) {
		while (p->text_len + n + 1 > p->text_cap)
			p->text_cap = p->text_cap ? p->text_cap * 2 : 256;
		p->text = xrealloc(p->text, p->text_cap);
	}
	memcpy(p->text + p->text_len, s, n);
	p->text_len += n;
}

/* expat: DOCTYPE (and with it entity declarations) is refused. */
static void XMLCALL
queue_on_doctype(void *arg, const XML_Char *name, const XML_Char *sysid,
    const XML_Char *pubid, int has_internal)
{
	struct queue_parser *p = arg;

	(void)name;
	(void)sysid;
	(void)pubid;
	(void)has_internal;
	queue_parse_fail(p, BD_EINVALID, "DOCTYPE is not allowed");
}

int
bd_queue_parse_messages(const char *doc, size_t len,
    struct bd_queue_message ***msgs, size_t *n, char **cause)
{
	struct queue_parser p;
	size_t i;
	int rc;

	*msgs = NULL;
	*n = 0;
	if (cause != NULL)
		*cause = NULL;
	if (len > QUEUE_MAX_BODY || len > INT32_MAX) {
		if (cause != NULL)
			*cause = xasprintf("message list: longer than %d "
			    "bytes", QUEUE_MAX_BODY);
		return BD_ETOOBIG;
	}
	memset(&p, 0, sizeof(p));
	if ((p.xp = XML_ParserCreate("UTF-8")) == NULL) {
		fprintf(stderr, "batchd: XML_ParserCreate failed\n");
		abort();
	}
	XML_SetUserData(p.xp, &p);
	XML_SetElementHandler(p.xp, queue_on_start, queue_on_end);
	XML_SetCharacterDataHandler(p.xp, queue_on_text);
	XML_SetStartDoctypeDeclHandler(p.xp, queue_on_doctype);
	if (XML_Parse(p.xp, doc != NULL ? doc : "", (int)len, XML_TRUE) ==
	    XML_STATUS_ERROR && p.err == 0) {
		p.err = BD_EINVALID;
		p.cause = xasprintf("message list line %lu: %s",
		    (unsigned long)XML_GetCurrentLineNumber(p.xp),
		    XML_ErrorString(XML_GetErrorCode(p.xp)));
	}
	if (p.err == 0 && !p.seen_root) {
		p.err = BD_EINVALID;
		p.cause = xstrdup("message list: empty document");
	}
	/* A message without text (Put Message's answer) gets "". */
	for (i = 0; p.err == 0 && i < p.n; i++)
		if (p.msgs[i]->text == NULL)
			p.msgs[i]->text = xstrdup("");
	XML_ParserFree(p.xp);
	free(p.text);
	if ((rc = p.err) != 0) {
		queue_messages_free(p.msgs, p.n);
		if (cause != NULL)
			*cause = p.cause;
		else
			free(p.cause);
		return rc;
	}
	*msgs = p.msgs;
	*n = p.n;
	return 0;
}

/* --- Client ---------------------------------------------------------- */

int
bd_queue_client_new(struct bd_http *http, const struct bd_storage_account *a,
    const struct bd_queue_options *o, struct bd_queue_client **out,
    char **cause)
{
	struct bd_queue_client *c;
	const char *ep;

	*out = NULL;
	if (cause != NULL)
		*cause = NULL;
	if ((ep = bd_storage_account_endpoint(a, BD_STORAGE_QUEUE)) == NULL) {
		if (cause != NULL)
			*cause = xstrdup("the storage account has no queue "
			    "endpoint");
		return BD_EINVALID;
	}
	c = xcalloc(1, sizeof(*c));
	c->http = http;
	c->acct = a;
	c->endpoint = xstrdup(ep);
	if (o != NULL)
		c->o = *o;
	if (c->o.timeout_ms <= 0)
		c->o.timeout_ms = QUEUE_DEFAULT_TIMEOUT;
	*out = c;
	return 0;
}

void
bd_queue_client_free(struct bd_queue_client *c)
{
	if (c == NULL)
		return;
	free(c->endpoint);
	free(c);
}

/* --- Requests -------------------------------------------------------- */

/* Frees op. */
static void
queue_op_free(struct queue_op *op)
{
	free(op->what);
	free(op);
}

/* Runs op's callback with a failure. */
static void
queue_deliver_error(struct queue_op *op, int status, const char *detail)
{
	switch (op->kind) {
	case Q_GET:
		op->get_cb(op->arg, status, NULL, 0, detail);
		break;
	case Q_UPDATE:
		op->update_cb(op->arg, status, NULL, -1, detail);
		break;
	default:
		op->done_cb(op->arg, status, detail);
		break;
	}
}

/*
 * The status of a failed request and its text: the HTTP status and
 * storage error code are mapped as queue.h says.  *ok is set when the
 * failure is success for this operation (a queue that exists).
 */
static int
queue_map_error(struct queue_op *op, int status,
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
	(void)bd_xml_error_parse(resp->body, resp->body_len, &code, &msg);
	if (resp->error_code != NULL) {
		free(code);
		code = xstrndup(resp->error_code, 128);
	}
	if (st == 404)
		err = -ENOENT;
	else if (st == 401 || st == 403)
		err = BD_EDENIED;
	else if (st == 413 || (code != NULL && strstr(code, "TooLarge") !=
	    NULL))
		err = BD_ETOOBIG;
	else if (st == 400 && code != NULL &&
	    strcmp(code, "PopReceiptMismatch") == 0 &&
	    (op->kind == Q_UPDATE || op->kind == Q_DELETE_MSG))
		err = -ENOENT;
	else if (st == 409 && code != NULL && op->kind == Q_CREATE &&
	    strcmp(code, "QueueAlreadyExists") == 0)
		*ok = true;
	text = xasprintf("%s: HTTP %ld%s%s%s%s%s", op->what, st,
	    code != NULL ? " " : "", code != NULL ? code : "",
	    msg != NULL ? ": " : "", msg != NULL ? msg : "",
	    err == -ENOENT && (op->kind == Q_UPDATE ||
	    op->kind == Q_DELETE_MSG) ? " (the lease is gone)" : "");
	*detail = bd_url_redact(text);
	free(text);
	free(code);
	free(msg);
	return err;
}

/* http: a request of op ended. */
static void
queue_on_http(struct bd_http_transfer *t, int status,
    const struct bd_http_response *resp, void *arg)
{
	struct queue_op *op = arg;
	struct bd_queue_message **msgs = NULL;
	const char *receipt, *vis;
	char *detail = NULL, *cause = NULL;
	int64_t visible = -1;
	size_t n = 0;
	bool ok = false;
	int rc;

	(void)t;
	if (status != 0) {
		rc = queue_map_error(op, status, resp, &detail, &ok);
		if (ok)
			op->done_cb(op->arg, 0, NULL);
		else
			queue_deliver_error(op, rc, detail);
		free(detail);
		queue_op_free(op);
		return;
	}
	switch (op->kind) {
	case Q_GET:
		rc = bd_queue_parse_messages(resp->body, resp->body_len, &msgs,
		    &n, &cause);
		if (rc != 0) {
			detail = xasprintf("%s: %s", op->what, cause);
			op->get_cb(op->arg, rc, NULL, 0, detail);
			break;
		}
		op->get_cb(op->arg, 0, msgs, n, NULL);
		break;
	case Q_UPDATE:
		receipt = bd_http_response_header(resp, "x-ms-popreceipt");
		vis = bd_http_response_header(resp, "x-ms-time-next-visible");
		if (receipt == NULL || *receipt == '\0' ||
		    strlen(receipt) > QUEUE_MAX_FIELD) {
			detail = xasprintf("%s: the answer has no valid "
			    "x-ms-popreceipt", op->what);
			op->update_cb(op->arg, BD_EINVALID, NULL, -1, detail);
			break;
		}
		if (vis != NULL && bd_queue_parse_http_date(vis, &visible) != 0)
			visible = -1;
		op->update_cb(op->arg, 0, receipt, visible, NULL);
		break;
	default:
		op->done_cb(op->arg, 0, NULL);
		break;
	}
	free(detail);
	free(cause);
	queue_op_free(op);
}

/* The callback slot of op for its kind. */
static struct queue_op *
queue_op_new(enum queue_kind kind, void *arg, const char *queue,
    const char *verb)
{
	struct queue_op *op = xcalloc(1, sizeof(*op));

	op->kind = kind;
	op->arg = arg;
	op->what = xasprintf("queue %s: %s", queue, verb);
	return op;
}

/*
 * Starts op's request: method on the queue's URL plus suffix ("",
 * "/messages"...), with query (NULL: none) and an XML body (NULL: none).
 * On failure op is freed and its callback never runs.
 */
static int
queue_start(struct bd_queue_client *c, struct queue_op *op,
    const char *queue, const char *suffix, const char *method,
    const char *query, const char *body, size_t max_body)
{
	static const char *const xml_body[] = {
		"Content-Type: application/xml; charset=utf-8", "Expect:",
	};
	struct bd_http_request req;
	char *path, *url;
	int rc;

	path = xasprintf("/%s%s", queue, suffix);
	url = bd_storage_url(c->acct, c->endpoint, path, query);
	free(path);
	bd_http_request_init(&req);
	req.method = method;
	req.url = url;
	req.retry = c->o.retry;
	req.total_timeout_ms = c->o.timeout_ms;
	req.max_memory_body = max_body;
	if (body != NULL) {
		req.body_mem = body;
		req.body_mem_len = strlen(body);
	}
	rc = bd_storage_request_start(c->http, c->acct, BD_STORAGE_QUEUE, &req,
	    xml_body, body != NULL ? 2 : 0, queue_on_http, op);
	free(url);
	if (rc != 0)
		queue_op_free(op);
	return rc;
}

int
bd_queue_create(struct bd_queue_client *c, const char *queue,
    bd_queue_done_cb cb, void *arg)
{
	struct queue_op *op;

	if (!bd_queue_name_valid(queue))
		return BD_EINVALID;
	op = queue_op_new(Q_CREATE, arg, queue, "create");
	op->done_cb = cb;
	return queue_start(c, op, queue, "", "PUT", NULL, NULL, 0);
}

int
bd_queue_delete(struct bd_queue_client *c, const char *queue,
    bd_queue_done_cb cb, void *arg)
{
	struct queue_op *op;

	if (!bd_queue_name_valid(queue))
		return BD_EINVALID;
	op = queue_op_new(Q_DELETE, arg, queue, "delete");
	op->done_cb = cb;
	return queue_start(c, op, queue, "", "DELETE", NULL, NULL, 0);
}

int
bd_queue_clear(struct bd_queue_client *c, const char *queue,
    bd_queue_done_cb cb, void *arg)
{
	struct queue_op *op;

	if (!bd_queue_name_valid(queue))
		return BD_EINVALID;
	op = queue_op_new(Q_CLEAR, arg, queue, "clear messages");
	op->done_cb = cb;
	return queue_start(c, op, queue, "/messages", "DELETE", NULL, NULL,
	    0);
}

/*
 * The Put/Update body for text in *body, or an error: BD_EINVALID for
 * text XML cannot carry, BD_ETOOBIG past the service's limit.
 */
static int
queue_body(const char *text, char **body)
{
	char *esc;

	*body = NULL;
	if (strlen(text) > BD_QUEUE_MAX_TEXT)
		return BD_ETOOBIG;
	if ((esc = bd_queue_escape(text)) == NULL)
		return BD_EINVALID;
	*body = xasprintf("<?xml version=\"1.0\" encoding=\"utf-8\"?>"
	    "<QueueMessage><MessageText>%s</MessageText></QueueMessage>",
	    esc);
	free(esc);
	return 0;
}

int
bd_queue_put(struct bd_queue_client *c, const char *queue, const char *text,
    int64_t delay_s, int64_t ttl_s, bd_queue_done_cb cb, void *arg)
{
	struct queue_op *op;
	char *body, *query;
	int rc;

	if (!bd_queue_name_valid(queue) || text == NULL || delay_s < 0 ||
	    delay_s > BD_QUEUE_MAX_VISIBILITY || ttl_s == 0 || ttl_s < -1 ||
	    ttl_s > BD_QUEUE_MAX_VISIBILITY ||
	    (ttl_s > 0 && delay_s >= ttl_s))
		return BD_EINVALID;
	if ((rc = queue_body(text, &body)) != 0)
		return rc;
	op = queue_op_new(Q_PUT, arg, queue, "put message");
	op->done_cb = cb;
	query = xasprintf("visibilitytimeout=%" PRId64 "&messagettl=%" PRId64,
	    delay_s, ttl_s);
	rc = queue_start(c, op, queue, "/messages", "POST", query, body, 0);
	free(query);
	free(body);
	return rc;
}

int
bd_queue_get(struct bd_queue_client *c, const char *queue, int max,
    int64_t visibility_s, bd_queue_get_cb cb, void *arg)
{
	struct queue_op *op;
	char *query;
	int rc;

	if (!bd_queue_name_valid(queue) || max < 1 || max > BD_QUEUE_MAX_GET ||
	    visibility_s < 1 || visibility_s > BD_QUEUE_MAX_VISIBILITY)
		return BD_EINVALID;
	op = queue_op_new(Q_GET, arg, queue, "get messages");
	op->get_cb = cb;
	query = xasprintf("numofmessages=%d&visibilitytimeout=%" PRId64, max,
	    visibility_s);
	rc = queue_start(c, op, queue, "/messages", "GET", query, NULL,
	    QUEUE_MAX_BODY);
	free(query);
	return rc;
}

/* Whether s may name a message or lease: short, printable, non-empty. */
static bool
queue_token_valid(const char *s)
{
	size_t n, i;

	if (s == NULL || (n = strlen(s)) == 0 || n > QUEUE_MAX_FIELD)
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

/* "/messages/ID" with id percent-encoded. */
static char *
queue_message_path(const char *id)
{
	char *eid = bd_url_encode(id, false), *path;

	path = xasprintf("/messages/%s", eid);
	free(eid);
	return path;
}

int
bd_queue_update(struct bd_queue_client *c, const char *queue, const char *id,
    const char *pop_receipt, int64_t visibility_s, const char *text,
    bd_queue_update_cb cb, void *arg)
{
	struct queue_op *op;
	char *body = NULL, *query, *path, *er;
	int rc;

	if (!bd_queue_name_valid(queue) || !queue_token_valid(id) ||
	    !queue_token_valid(pop_receipt) || visibility_s < 0 ||
	    visibility_s > BD_QUEUE_MAX_VISIBILITY)
		return BD_EINVALID;
	if (text != NULL && (rc = queue_body(text, &body)) != 0)
		return rc;
	op = queue_op_new(Q_UPDATE, arg, queue, "update message");
	op->update_cb = cb;
	er = bd_url_encode(pop_receipt, false);
	query = xasprintf("popreceipt=%s&visibilitytimeout=%" PRId64, er,
	    visibility_s);
	path = queue_message_path(id);
	rc = queue_start(c, op, queue, path, "PUT", query, body, 0);
	free(path);
	free(query);
	free(er);
	free(body);
	return rc;
}

int
bd_queue_delete_message(struct bd_queue_client *c, const char *queue,
    const char *id, const char *pop_receipt, bd_queue_done_cb cb, void *arg)
{
	struct queue_op *op;
	char *query, *path, *er;
	int rc;

	if (!bd_queue_name_valid(queue) || !queue_token_valid(id) ||
	    !queue_token_valid(pop_receipt))
		return BD_EINVALID;
	op = queue_op_new(Q_DELETE_MSG, arg, queue, "delete message");
	op->done_cb = cb;
	er = bd_url_encode(pop_receipt, false);
	query = xasprintf("popreceipt=%s", er);
	path = queue_message_path(id);
	rc = queue_start(c, op, queue, path, "DELETE", query, NULL, 0);
	free(path);
	free(query);
	free(er);
	return rc;
}
