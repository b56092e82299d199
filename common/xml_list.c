/* SPDX-License-Identifier: MIT */
/*
 * The XML that Azure Blob Storage answers with, parsed by expat as it
 * streams in: List Blobs pages and error bodies.
 *
 * A List Blobs page looks like
 *
 *	<EnumerationResults ServiceEndpoint=".." ContainerName="..">
 *	  <Prefix/><Marker/><MaxResults/>
 *	  <Blobs>
 *	    <Blob><Name>a/b.txt</Name><Properties>
 *	      <Content-Length>12</Content-Length><Content-MD5>..</Content-MD5>
 *	      <Etag>..</Etag><Last-Modified>..</Last-Modified>...
 *	    </Properties></Blob>
 *	    <BlobPrefix><Name>a/</Name></BlobPrefix>
 *	  </Blobs>
 *	  <NextMarker>..</NextMarker>
 *	</EnumerationResults>
 *
 * The parser keeps the path of open elements (to a fixed depth) and
 * collects text only inside the few elements it wants, each with its own
 * size limit, so a hostile page costs bounded memory: names are at most
 * 1024 bytes, the entries of a listing and the bytes of a page are capped,
 * and DOCTYPE declarations (entity expansion) are refused outright.
 * Names sent with Encoded="true" are percent-decoded.
 */
#include "xml_list.h"

#include <errno.h>
#include <expat.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "xmalloc.h"

#define XML_MAX_DEPTH		16	/* elements tracked; deeper ones ignored */
#define XML_MAX_FIELD		256	/* bytes of Etag, Content-MD5... */
#define XML_MAX_MARKER		4096	/* bytes of NextMarker */
#define XML_MAX_MESSAGE		1024	/* bytes of an error message */
#define XML_MAX_ERROR_DOC	(256 * 1024)

/* The elements the list parser cares about. */
enum xml_el {
	EL_OTHER, EL_ROOT, EL_BLOBS, EL_BLOB, EL_PREFIX, EL_NAME, EL_PROPS,
	EL_LENGTH, EL_MD5, EL_ETAG, EL_MODIFIED, EL_NEXT,
};

struct bd_xml_list_parser {
	XML_Parser xp;
	struct bd_xml_list *list;
	size_t max_names;
	size_t max_name_len;
	size_t max_doc;
	size_t fed;
	int depth;			/* open elements */
	enum xml_el path[XML_MAX_DEPTH];
	bool seen_root;
	bool name_encoded;
	bool in_entry;			/* a Blob or BlobPrefix is open */
	struct bd_xml_blob cur;		/* the entry being read */
	char *text;			/* text of the wanted element */
	size_t text_len;
	size_t text_max;		/* 0: not collecting */
	char *next_marker;
	int err;			/* first error, or 0 */
	char *cause;
};

/* Records the first error and stops expat. */
static void __attribute__((format(printf, 3, 4)))
list_fail(struct bd_xml_list_parser *p, int err, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	if (p->err != 0)
		return;
	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	p->err = err;
	p->cause = xasprintf("listing line %lu: %s",
	    (unsigned long)XML_GetCurrentLineNumber(p->xp), msg);
	free(msg);
	XML_StopParser(p->xp, XML_FALSE);
}

/* The element name as one of ours, given the parent. */
static enum xml_el
list_classify(enum xml_el parent, int depth, const char *name)
{
	if (depth == 0)
		return strcmp(name, "EnumerationResults") == 0 ? EL_ROOT :
		    EL_OTHER;
	switch (parent) {
	case EL_ROOT:
		if (strcmp(name, "Blobs") == 0)
			return EL_BLOBS;
		if (strcmp(name, "NextMarker") == 0)
			return EL_NEXT;
		break;
	case EL_BLOBS:
		if (strcmp(name, "Blob") == 0)
			return EL_BLOB;
		if (strcmp(name, "BlobPrefix") == 0)
			return EL_PREFIX;
		break;
	case EL_BLOB:
		if (strcmp(name, "Name") == 0)
			return EL_NAME;
		if (strcmp(name, "Properties") == 0)
			return EL_PROPS;
		break;
	case EL_PREFIX:
		if (strcmp(name, "Name") == 0)
			return EL_NAME;
		break;
	case EL_PROPS:
		if (strcmp(name, "Content-Length") == 0)
			return EL_LENGTH;
		if (strcmp(name, "Content-MD5") == 0)
			return EL_MD5;
		if (strcmp(name, "Etag") == 0)
			return EL_ETAG;
		if (strcmp(name, "Last-Modified") == 0)
			return EL_MODIFIED;
		break;
	default:
		break;
	}
	return EL_OTHER;
}

/* Clears the entry being read. */
static void
list_entry_reset(struct bd_xml_list_parser *p)
{
	free(p->cur.name);
	free(p->cur.content_md5);
	free(p->cur.etag);
	free(p->cur.last_modified);
	memset(&p->cur, 0, sizeof(p->cur));
	p->cur.size = -1;
}

/* expat: an element opens. */
static void XMLCALL
list_on_start(void *arg, const XML_Char *name, const XML_Char **attrs)
{
	struct bd_xml_list_parser *p = arg;
	enum xml_el parent = p->depth > 0 && p->depth <= XML_MAX_DEPTH ?
	    p->path[p->depth - 1] : EL_OTHER;
	enum xml_el el;
	int i;

	if (p->err != 0)
		return;
	if (p->depth == 0 && p->seen_root)
		return list_fail(p, BD_EINVALID, "a second root element");
	el = p->depth <= XML_MAX_DEPTH ? list_classify(parent, p->depth, name)
	    : EL_OTHER;
	if (p->depth == 0) {
		if (el != EL_ROOT)
			return list_fail(p, BD_EINVALID, "the root element is "
			    "not EnumerationResults");
		p->seen_root = true;
	}
	if (p->depth < XML_MAX_DEPTH)
		p->path[p->depth] = el;
	p->depth++;
	if (p->text_max != 0)
		return list_fail(p, BD_EINVALID, "an element inside a "
		    "text field");
	switch (el) {
	case EL_BLOB:
	case EL_PREFIX:
		list_entry_reset(p);
		p->in_entry = true;
		break;
	case EL_NAME:
		if (p->cur.name != NULL)
			return list_fail(p, BD_EINVALID, "two Name elements "
			    "in one entry");
		p->name_encoded = false;
		for (i = 0; attrs[i] != NULL; i += 2)
			if (strcmp(attrs[i], "Encoded") == 0 &&
			    strcmp(attrs[i + 1], "true") == 0)
				p->name_encoded = true;
		/* An encoded name takes up to three bytes a character. */
		p->text_max = p->max_name_len * (p->name_encoded ? 3 : 1);
		break;
	case EL_NEXT:
		p->text_max = XML_MAX_MARKER;
		break;
	case EL_LENGTH:
	case EL_MD5:
	case EL_ETAG:
	case EL_MODIFIED:
		p->text_max = XML_MAX_FIELD;
		break;
	default:
		break;
	}
	p->text_len = 0;
	if (p->text_max != 0 && p->text == NULL)
		p->text = xmalloc(3 * BD_XML_MAX_NAME + XML_MAX_MARKER + 1);
}

/* expat: character data, collected only inside a wanted element. */
static void XMLCALL
list_on_text(void *arg, const XML_Char *s, int len)
{
	struct bd_xml_list_parser *p = arg;

	if (p->err != 0 || p->text_max == 0 || len <= 0)
		return;
	if (p->text_len + (size_t)len > p->text_max) {
		if (p->path[p->depth - 1] == EL_NAME)
			return list_fail(p, BD_ETOOBIG, "a blob name longer "
			    "than %zu bytes", p->max_name_len);
		return list_fail(p, BD_ETOOBIG, "a field longer than %zu "
		    "bytes", p->text_max);
	}
	memcpy(p->text + p->text_len, s, (size_t)len);
	p->text_len += (size_t)len;
	p->text[p->text_len] = '\0';
}

/* The value of a hex digit, or -1. */
static int
list_hex(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The collected name, decoded when Encoded="true"; NULL on a bad one. */
static char *
list_take_name(struct bd_xml_list_parser *p)
{
	char *out = xmalloc(p->text_len + 1);
	size_t i, o = 0;
	int hi, lo;

	for (i = 0; i < p->text_len; i++) {
		if (p->name_encoded && p->text[i] == '%') {
			if (i + 2 >= p->text_len ||
			    (hi = list_hex((unsigned char)p->text[i + 1])) < 0 ||
			    (lo = list_hex((unsigned char)p->text[i + 2])) < 0 ||
			    hi + lo == 0) {
				free(out);
				return NULL;
			}
			out[o++] = (char)(hi * 16 + lo);
			i += 2;
		} else
			out[o++] = p->text[i];
	}
	out[o] = '\0';
	if (o == 0 || o > p->max_name_len) {
		free(out);
		return NULL;
	}
	return out;
}

/* Parses a Content-Length; -1 when it is not a plain number. */
static int64_t
list_number(const char *s, size_t n)
{
	int64_t v = 0;
	size_t i;

	if (n == 0 || n > 18)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* Appends the finished entry to the list. */
static void
list_add_entry(struct bd_xml_list_parser *p, bool prefix)
{
	struct bd_xml_list *l = p->list;

	if (p->cur.name == NULL)
		return list_fail(p, prefix ? BD_EINVALID : BD_EINVALID,
		    "%s without a Name", prefix ? "BlobPrefix" : "Blob");
	if (l->n_blobs + l->n_prefixes >= p->max_names)
		return list_fail(p, BD_ETOOBIG, "more than %zu names",
		    p->max_names);
	if (prefix) {
		l->prefixes = xreallocarray(l->prefixes, l->n_prefixes + 1,
		    sizeof(*l->prefixes));
		l->prefixes[l->n_prefixes++] = p->cur.name;
		p->cur.name = NULL;
		list_entry_reset(p);
	} else {
		l->blobs = xreallocarray(l->blobs, l->n_blobs + 1,
		    sizeof(*l->blobs));
		l->blobs[l->n_blobs++] = p->cur;
		memset(&p->cur, 0, sizeof(p->cur));
		p->cur.size = -1;
	}
}

/* expat: an element closes. */
static void XMLCALL
list_on_end(void *arg, const XML_Char *name)
{
	struct bd_xml_list_parser *p = arg;
	enum xml_el el;
	char *s = NULL;

	(void)name;
	if (p->err != 0)
		return;
	p->depth--;
	el = p->depth < XML_MAX_DEPTH ? p->path[p->depth] : EL_OTHER;
	if (p->text_max != 0) {
		p->text_max = 0;
		if (el != EL_NAME && el != EL_LENGTH && p->text_len > 0)
			s = xstrndup(p->text, p->text_len);
	}
	switch (el) {
	case EL_NAME:
		if ((p->cur.name = list_take_name(p)) == NULL)
			list_fail(p, BD_EINVALID, "an empty or badly encoded "
			    "blob name");
		break;
	case EL_LENGTH:
		if ((p->cur.size = list_number(p->text, p->text_len)) < 0)
			list_fail(p, BD_EINVALID, "Content-Length is not a "
			    "number");
		break;
	case EL_MD5:
		free(p->cur.content_md5);
		p->cur.content_md5 = s;
		s = NULL;
		break;
	case EL_ETAG:
		free(p->cur.etag);
		p->cur.etag = s;
		s = NULL;
		break;
	case EL_MODIFIED:
		free(p->cur.last_modified);
		p->cur.last_modified = s;
		s = NULL;
		break;
	case EL_NEXT:
		free(p->next_marker);
		p->next_marker = s;
		s = NULL;
		break;
	case EL_BLOB:
	case EL_PREFIX:
		p->in_entry = false;
		list_add_entry(p, el == EL_PREFIX);
		break;
	default:
		break;
	}
	free(s);
}

/* expat: a DOCTYPE, refused so that no entity is ever declared. */
static void XMLCALL
list_on_doctype(void *arg, const XML_Char *name, const XML_Char *sysid,
    const XML_Char *pubid, int has_internal)
{
	list_fail(arg, BD_EINVALID, "a DOCTYPE declaration");
}

struct bd_xml_list_parser *
bd_xml_list_parser_new(struct bd_xml_list *list,
    const struct bd_xml_limits *lim)
{
	struct bd_xml_list_parser *p = xcalloc(1, sizeof(*p));

	p->list = list;
	p->max_names = lim != NULL && lim->max_names != 0 ? lim->max_names :
	    BD_XML_DEFAULT_MAX_NAMES;
	p->max_name_len = lim != NULL && lim->max_name_len != 0 &&
	    lim->max_name_len < BD_XML_MAX_NAME ? lim->max_name_len :
	    BD_XML_MAX_NAME;
	p->max_doc = lim != NULL && lim->max_doc != 0 ? lim->max_doc :
	    BD_XML_DEFAULT_MAX_DOC;
	p->cur.size = -1;
	if ((p->xp = XML_ParserCreate("UTF-8")) == NULL) {
		fprintf(stderr, "batchd: XML_ParserCreate failed\n");
		abort();
	}
	XML_SetUserData(p->xp, p);
	XML_SetElementHandler(p->xp, list_on_start, list_on_end);
	XML_SetCharacterDataHandler(p->xp, list_on_text);
	XML_SetStartDoctypeDeclHandler(p->xp, list_on_doctype);
	return p;
}

int
bd_xml_list_parser_feed(struct bd_xml_list_parser *p, const char *data,
    size_t len, bool last, char **cause)
{
	enum XML_Status st;

	if (cause != NULL)
		*cause = NULL;
	if (p->err == 0 && len > p->max_doc - p->fed) {
		p->err = BD_ETOOBIG;
		p->cause = xasprintf("listing: a page larger than %zu bytes",
		    p->max_doc);
	}
	if (p->err == 0) {
		p->fed += len;
		st = XML_Parse(p->xp, data, (int)len, last);
		if (st == XML_STATUS_ERROR && p->err == 0) {
			p->err = BD_EINVALID;
			p->cause = xasprintf("listing line %lu: %s",
			    (unsigned long)XML_GetCurrentLineNumber(p->xp),
			    XML_ErrorString(XML_GetErrorCode(p->xp)));
		}
		if (p->err == 0 && last && !p->seen_root) {
			p->err = BD_EINVALID;
			p->cause = xstrdup("listing: no EnumerationResults");
		}
	}
	if (p->err != 0 && cause != NULL)
		*cause = xstrdup(p->cause);
	return p->err;
}

char *
bd_xml_list_parser_next_marker(struct bd_xml_list_parser *p)
{
	char *m = p->next_marker;

	p->next_marker = NULL;
	return m;
}

void
bd_xml_list_parser_free(struct bd_xml_list_parser *p)
{
	if (p == NULL)
		return;
	XML_ParserFree(p->xp);
	list_entry_reset(p);
	free(p->text);
	free(p->next_marker);
	free(p->cause);
	free(p);
}

int
bd_xml_list_parse(const char *doc, size_t len,
    const struct bd_xml_limits *lim, struct bd_xml_list *list,
    char **next_marker, char **cause)
{
	struct bd_xml_list_parser *p;
	int rc;

	if (next_marker != NULL)
		*next_marker = NULL;
	p = bd_xml_list_parser_new(list, lim);
	/* expat takes an int length: feed big documents in pieces. */
	while (len > (1u << 30)) {
		if ((rc = bd_xml_list_parser_feed(p, doc, 1u << 30, false,
		    cause)) != 0)
			goto out;
		doc += 1u << 30;
		len -= 1u << 30;
	}
	rc = bd_xml_list_parser_feed(p, doc, len, true, cause);
	if (rc == 0 && next_marker != NULL)
		*next_marker = bd_xml_list_parser_next_marker(p);
out:
	bd_xml_list_parser_free(p);
	return rc;
}

void
bd_xml_list_free(struct bd_xml_list *list)
{
	size_t i;

	if (list == NULL)
		return;
	for (i = 0; i < list->n_blobs; i++) {
		free(list->blobs[i].name);
		free(list->blobs[i].content_md5);
		free(list->blobs[i].etag);
		free(list->blobs[i].last_modified);
	}
	for (i = 0; i < list->n_prefixes; i++)
		free(list->prefixes[i]);
	free(list->blobs);
	free(list->prefixes);
	free(list);
}

/* --- Error bodies ---------------------------------------------------- */

struct xml_err {
	XML_Parser xp;
	int depth;
	bool root_ok;
	int field;			/* 1 Code, 2 Message, 0 none */
	char code[XML_MAX_FIELD + 1];
	size_t code_len;
	char msg[XML_MAX_MESSAGE + 1];
	size_t msg_len;
	bool have_code, have_msg;
	bool bad;
};

/* expat: an element of an error body opens. */
static void XMLCALL
err_on_start(void *arg, const XML_Char *name, const XML_Char **attrs)
{
	struct xml_err *e = arg;

	(void)attrs;
	if (e->depth == 0) {
		if (strcmp(name, "Error") != 0 || e->root_ok) {
			e->bad = true;
			XML_StopParser(e->xp, XML_FALSE);
		}
		e->root_ok = true;
	} else if (e->depth == 1 && strcmp(name, "Code") == 0) {
		e->field = 1;
		e->have_code = true;
		e->code_len = 0;
	} else if (e->depth == 1 && strcmp(name, "Message") == 0) {
		e->field = 2;
		e->have_msg = true;
		e->msg_len = 0;
	} else
		e->field = 0;
	e->depth++;
}

/* expat: an element of an error body closes. */
static void XMLCALL
err_on_end(void *arg, const XML_Char *name)
{
	struct xml_err *e = arg;

	(void)name;
	e->depth--;
	e->field = 0;
}

/* expat: text of an error body, kept (cut) for Code and Message. */
static void XMLCALL
err_on_text(void *arg, const XML_Char *s, int len)
{
	struct xml_err *e = arg;
	char *buf;
	size_t *n, max, i;

	if (e->field == 1) {
		buf = e->code;
		n = &e->code_len;
		max = XML_MAX_FIELD;
	} else if (e->field == 2) {
		buf = e->msg;
		n = &e->msg_len;
		max = XML_MAX_MESSAGE;
	} else
		return;
	for (i = 0; i < (size_t)len && *n < max; i++) {
		unsigned char c = (unsigned char)s[i];

		/* Azure's messages carry RequestId and Time on new lines. */
		buf[(*n)++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
	}
	buf[*n] = '\0';
}

/* expat: a DOCTYPE in an error body makes it "not an error body". */
static void XMLCALL
err_on_doctype(void *arg, const XML_Char *name, const XML_Char *sysid,
    const XML_Char *pubid, int has_internal)
{
	struct xml_err *e = arg;

	e->bad = true;
	XML_StopParser(e->xp, XML_FALSE);
}

/* A copy of s without white space at either end, or NULL when empty. */
static char *
err_trimmed(const char *s, size_t n)
{
	while (n > 0 && s[0] == ' ') {
		s++;
		n--;
	}
	while (n > 0 && s[n - 1] == ' ')
		n--;
	return n > 0 ? xstrndup(s, n) : NULL;
}

int
bd_xml_error_parse(const char *body, size_t len, char **code, char **message)
{
	struct xml_err *e;
	enum XML_Status st;
	int rc = 0;

	*code = *message = NULL;
	if (body == NULL || len == 0 || len > XML_MAX_ERROR_DOC)
		return BD_EINVALID;
	e = xcalloc(1, sizeof(*e));
	if ((e->xp = XML_ParserCreate("UTF-8")) == NULL) {
		fprintf(stderr, "batchd: XML_ParserCreate failed\n");
		abort();
	}
	XML_SetUserData(e->xp, e);
	XML_SetElementHandler(e->xp, err_on_start, err_on_end);
	XML_SetCharacterDataHandler(e->xp, err_on_text);
	XML_SetStartDoctypeDeclHandler(e->xp, err_on_doctype);
	st = XML_Parse(e->xp, body, (int)len, 1);
	if (st == XML_STATUS_ERROR || e->bad || !e->root_ok)
		rc = BD_EINVALID;
	else {
		if (e->have_code)
			*code = err_trimmed(e->code, e->code_len);
		if (e->have_msg)
			*message = err_trimmed(e->msg, e->msg_len);
	}
	XML_ParserFree(e->xp);
	free(e);
	return rc;
}
