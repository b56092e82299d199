/* SPDX-License-Identifier: MIT */
/*
 * Bounded parsing of JSON documents from outside, and typed getters over
 * their fields that explain every refusal as "path: reason".
 *
 * bd_json_parse() checks what cJSON does not before handing it the text:
 * the size limit, UTF-8, how deep the document nests (cJSON recurses once
 * per level, so this bounds its stack use well below its own limit of
 * 1000), NUL characters, which cJSON would silently cut strings at, and
 * raw control characters, which it would take as whitespace.  The getters
 * then read one member each; callers run bd_json_check_fields() on an
 * object first, so that every name they look up occurs at most once.
 * Nothing here keeps state; all strings returned are the caller's.
 */
#include "json_field.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "duration.h"
#include "error.h"
#include "xmalloc.h"

/* Longest field name offered as a "did you mean" suggestion. */
#define JSON_SUGGEST_MAX 64

char *
bd_json_path(const char *parent, const char *name)
{
	if (parent == NULL || *parent == '\0')
		return xstrdup(name);
	return xasprintf("%s.%s", parent, name);
}

char *
bd_json_path_index(const char *parent, size_t index)
{
	return xasprintf("%s[%zu]", parent != NULL ? parent : "", index);
}

int
bd_json_fail(char **cause, int err, const char *parent, const char *name,
    const char *fmt, ...)
{
	bool has_parent = parent != NULL && *parent != '\0';
	bool has_name = name != NULL && *name != '\0';
	va_list ap;
	char *msg;

	if (cause == NULL)
		return err;
	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	if (has_parent && has_name)
		*cause = xasprintf("%s.%s: %s", parent, name, msg);
	else if (has_parent || has_name)
		*cause = xasprintf("%s: %s", has_parent ? parent : name, msg);
	else {
		*cause = msg;
		msg = NULL;
	}
	free(msg);
	return err;
}

char *
bd_json_quote(const char *s, size_t max)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, n = strnlen(s, max + 1), o = 0;
	bool cut = n > max;
	unsigned char c;
	char *out;

	if (cut)
		n = max;
	out = xmalloc(n * 4 + 6);
	out[o++] = '"';
	for (i = 0; i < n; i++) {
		c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < 0x20 || c >= 0x7f) {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 0xf];
		} else
			out[o++] = (char)c;
	}
	out[o++] = '"';
	if (cut) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	return out;
}

const char *
bd_json_type_name(const cJSON *item)
{
	if (item == NULL || cJSON_IsNull(item))
		return "null";
	if (cJSON_IsBool(item))
		return "a boolean";
	if (cJSON_IsNumber(item))
		return "a number";
	if (cJSON_IsString(item))
		return "a string";
	if (cJSON_IsArray(item))
		return "an array";
	if (cJSON_IsObject(item))
		return "an object";
	return "an invalid value";
}

/*
 * Returns the offset of the first byte that does not start or continue a
 * well-formed UTF-8 sequence (no overlong forms, no surrogates, nothing
 * past U+10FFFF), or len when all of s is valid.
 */
static size_t
json_utf8_invalid_at(const unsigned char *s, size_t len)
{
	size_t i = 0, need, k;
	unsigned char c, lo, hi;

	while (i < len) {
		c = s[i];
		lo = 0x80;
		hi = 0xbf;
		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf)
			need = 1;
		else if (c == 0xe0) {
			need = 2;
			lo = 0xa0;
		} else if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef)
			need = 2;
		else if (c == 0xed) {
			need = 2;
			hi = 0x9f;
		} else if (c == 0xf0) {
			need = 3;
			lo = 0x90;
		} else if (c >= 0xf1 && c <= 0xf3)
			need = 3;
		else if (c == 0xf4) {
			need = 3;
			hi = 0x8f;
		} else
			return i;
		if (len - i - 1 < need)
			return i;
		if (s[i + 1] < lo || s[i + 1] > hi)
			return i;
		for (k = 2; k <= need; k++)
			if (s[i + k] < 0x80 || s[i + k] > 0xbf)
				return i;
		i += need + 1;
	}
	return len;
}

/* The 1-based line and column (in characters) of byte offset off. */
static void
json_line_column(const char *text, size_t len, size_t off, size_t *line,
    size_t *column)
{
	size_t i;

	*line = 1;
	*column = 1;
	if (off > len)
		off = len;
	for (i = 0; i < off; i++) {
		if (text[i] == '\n') {
			(*line)++;
			*column = 1;
		} else if (((unsigned char)text[i] & 0xc0) != 0x80)
			(*column)++;
	}
}

/* Sets *cause to "not valid JSON at line L, column C: why". */
static int
json_syntax_error(char **cause, const char *text, size_t len, size_t off,
    const char *why)
{
	size_t line, column;

	json_line_column(text, len, off, &line, &column);
	if (why == NULL)
		return bd_json_fail(cause, BD_EJSON, NULL, NULL,
		    "not valid JSON at line %zu, column %zu", line, column);
	return bd_json_fail(cause, BD_EJSON, NULL, NULL,
	    "not valid JSON at line %zu, column %zu: %s", line, column, why);
}

/* Whitespace as JSON defines it (cJSON takes any byte below 33). */
static bool
json_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/*
 * Walks the raw text before cJSON sees it: nesting depth, NUL bytes and
 * \u0000 escapes, and control characters that JSON does not allow.
 * Returns 0, or BD_EJSON with *cause.
 */
static int
json_prescan(const char *text, size_t len, size_t start, char **cause)
{
	size_t i, line, column, depth = 0;
	bool in_string = false;
	unsigned char c;

	for (i = start; i < len; i++) {
		c = (unsigned char)text[i];
		if (c == '\0')
			return json_syntax_error(cause, text, len, i,
			    "a NUL byte");
		if (in_string) {
			if (c == '"')
				in_string = false;
			else if (c == '\\') {
				if (i + 5 < len && text[i + 1] == 'u' &&
				    memcmp(text + i + 2, "0000", 4) == 0)
					return json_syntax_error(cause, text,
					    len, i, "strings must not contain "
					    "NUL characters (\\u0000)");
				i++;
			} else if (c < 0x20)
				return json_syntax_error(cause, text, len, i,
				    "a control character in a string must be "
				    "escaped");
			continue;
		}
		if (c == '"')
			in_string = true;
		else if (c == '{' || c == '[') {
			if (++depth > BD_JSON_MAX_DEPTH) {
				json_line_column(text, len, i, &line, &column);
				return bd_json_fail(cause, BD_EJSON, NULL, NULL,
				    "document is nested more than %d levels "
				    "deep (at line %zu, column %zu)",
				    BD_JSON_MAX_DEPTH, line, column);
			}
		} else if (c == '}' || c == ']') {
			if (depth > 0)
				depth--;
		} else if (c < 0x20 && !json_is_space((char)c))
			return json_syntax_error(cause, text, len, i,
			    "a control character");
	}
	return 0;
}

int
bd_json_parse(const char *text, size_t len, cJSON **out, char **cause)
{
	const char *end = NULL;
	size_t start = 0, bad, i, off;
	cJSON *root;
	char *copy;
	int rc;

	*out = NULL;
	if (len > BD_JSON_MAX_DOCUMENT)
		return bd_json_fail(cause, BD_ETOOBIG, NULL, NULL,
		    "document is larger than 1 MiB (%zu bytes)", len);
	bad = json_utf8_invalid_at((const unsigned char *)text, len);
	if (bad != len)
		return bd_json_fail(cause, BD_EJSON, NULL, NULL,
		    "not valid UTF-8 at byte %zu", bad);
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		start = 3;
	for (i = start; i < len && json_is_space(text[i]); i++)
		;
	if (i == len)
		return bd_json_fail(cause, BD_EJSON, NULL, NULL,
		    "not valid JSON: the document is empty");
	if ((rc = json_prescan(text, len, start, cause)) != 0)
		return rc;

	/* cJSON gets its own NUL-terminated copy. */
	copy = xmalloc(len - start + 1);
	memcpy(copy, text + start, len - start);
	copy[len - start] = '\0';
	root = cJSON_ParseWithLengthOpts(copy, len - start, &end, 0);
	off = end != NULL ? (size_t)(end - copy) : 0;
	free(copy);
	if (root == NULL)
		return json_syntax_error(cause, text, len, start + off, NULL);
	for (off += start; off < len && json_is_space(text[off]); off++)
		;
	if (off < len) {
		cJSON_Delete(root);
		return json_syntax_error(cause, text, len, off,
		    "unexpected text after the end of the document");
	}
	if (!cJSON_IsObject(root)) {
		rc = bd_json_fail(cause, BD_EJSON, NULL, NULL,
		    "expected a JSON object, not %s", bd_json_type_name(root));
		cJSON_Delete(root);
		return rc;
	}
	*out = root;
	return 0;
}

const cJSON *
bd_json_field(const cJSON *obj, const char *name)
{
	const cJSON *item;

	if (obj == NULL || !cJSON_IsObject(obj))
		return NULL;
	item = cJSON_GetObjectItemCaseSensitive(obj, name);
	if (item == NULL || cJSON_IsNull(item))
		return NULL;
	return item;
}

/* Whether name is in the NULL-terminated list; returns its index or -1. */
static int
json_name_index(const char *const *list, const char *name)
{
	int i;

	if (list == NULL)
		return -1;
	for (i = 0; list[i] != NULL; i++)
		if (strcmp(list[i], name) == 0)
			return i;
	return -1;
}

/* Edit distance between a and b, both shorter than JSON_SUGGEST_MAX. */
static size_t
json_distance(const char *a, const char *b)
{
	size_t row[JSON_SUGGEST_MAX + 1], la = strlen(a), lb = strlen(b);
	size_t i, j, diag, up, best;

	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		diag = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			up = row[j];
			best = diag + (a[i - 1] == b[j - 1] ? 0 : 1);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

/*
 * The allowed name that name was most likely meant to be: the same but
 * for case, or one edit away (two for names of 8 or more characters).
 * NULL when there is none.
 */
static const char *
json_suggest(const char *const *allowed, const char *name)
{
	const char *best = NULL;
	size_t i, d, len = strlen(name), best_d;

	if (len >= JSON_SUGGEST_MAX)
		return NULL;
	/* One slip in a short name, two in a long one. */
	best_d = len < 8 ? 2 : 3;
	for (i = 0; allowed[i] != NULL; i++) {
		if (strcasecmp(allowed[i], name) == 0)
			return allowed[i];
		if (strlen(allowed[i]) >= JSON_SUGGEST_MAX)
			continue;
		d = json_distance(name, allowed[i]);
		if (d < best_d) {
			best_d = d;
			best = allowed[i];
		}
	}
	return best;
}

/* Whether a field name can be shown in a path as it is. */
static bool
json_plain_name(const char *name)
{
	size_t i;

	for (i = 0; name[i] != '\0'; i++) {
		if (i >= JSON_SUGGEST_MAX)
			return false;
		if (!((name[i] >= 'a' && name[i] <= 'z') ||
		    (name[i] >= 'A' && name[i] <= 'Z') ||
		    (name[i] >= '0' && name[i] <= '9') ||
		    name[i] == '_' || name[i] == '-' || name[i] == '.'))
			return false;
	}
	return i > 0;
}

int
bd_json_check_fields(const cJSON *obj, const char *path,
    const char *const *allowed, const char *const *ignored,
    const char *const *also_known, const char *why, char **cause)
{
	const char *suggestion;
	uint64_t seen = 0;
	const cJSON *c;
	char *shown;
	int idx, rc;

	if (obj == NULL || !cJSON_IsObject(obj))
		return bd_json_fail(cause, BD_EINVALID, path, NULL,
		    "expected an object, not %s", bd_json_type_name(obj));
	for (c = obj->child; c != NULL; c = c->next) {
		if (c->string == NULL)
			continue;
		idx = json_name_index(allowed, c->string);
		if (idx >= 0 && idx < 64) {
			if (seen & ((uint64_t)1 << idx))
				return bd_json_fail(cause, BD_EINVALID, path,
				    c->string, "duplicate field");
			seen |= (uint64_t)1 << idx;
			continue;
		}
		if (json_name_index(ignored, c->string) >= 0)
			continue;
		if (strcmp(c->string, "additionalProperties") == 0 &&
		    (cJSON_IsNull(c) ||
		    (cJSON_IsObject(c) && c->child == NULL)))
			continue;

		shown = json_plain_name(c->string) ? xstrdup(c->string) :
		    bd_json_quote(c->string, JSON_SUGGEST_MAX);
		if (why != NULL && json_name_index(also_known, c->string) >= 0)
			rc = bd_json_fail(cause, BD_EINVALID, path, shown,
			    "unknown field (%s)", why);
		else if ((suggestion = json_suggest(allowed,
		    c->string)) != NULL)
			rc = bd_json_fail(cause, BD_EINVALID, path, shown,
			    "unknown field (did you mean %s?)", suggestion);
		else
			rc = bd_json_fail(cause, BD_EINVALID, path, shown,
			    "unknown field");
		free(shown);
		return rc;
	}
	return 0;
}

/*
 * The member name of obj, or NULL with a "required" error in *rc when it
 * is absent and required (*rc is 0 otherwise).
 */
static const cJSON *
json_lookup(const cJSON *obj, const char *path, const char *name, int flags,
    int *rc, char **cause)
{
	const cJSON *item = bd_json_field(obj, name);

	*rc = 0;
	if (item == NULL && (flags & BD_JSON_REQUIRED))
		*rc = bd_json_fail(cause, BD_EINVALID, path, name, "required");
	return item;
}

int
bd_json_get_object(const cJSON *obj, const char *path, const char *name,
    int flags, const cJSON **out, char **cause)
{
	const cJSON *item;
	int rc;

	if ((item = json_lookup(obj, path, name, flags, &rc, cause)) == NULL)
		return rc;
	if (!cJSON_IsObject(item))
		return bd_json_fail(cause, BD_EINVALID, path, name,
		    "expected an object, not %s", bd_json_type_name(item));
	*out = item;
	return 1;
}

int
bd_json_get_string(const cJSON *obj, const char *path, const char *name,
    int flags, size_t max_len, char **out, char **cause)
{
	const cJSON *item;
	size_t len;
	int rc;

	if ((item = json_lookup(obj, path, name, flags, &rc, cause)) == NULL)
		return rc;
	if (!cJSON_IsString(item) || item->valuestring == NULL)
		return bd_json_fail(cause, BD_EINVALID, path, name,
		    "expected a string, not %s", bd_json_type_name(item));
	len = strlen(item->valuestring);
	if (len > max_len)
		return bd_json_fail(cause, BD_EINVALID, path, name,
		    "longer than %zu bytes", max_len);
	if (len == 0 && (flags & BD_JSON_NONEMPTY))
		return bd_json_fail(cause, BD_EINVALID, path, name,
		    "must not be empty");
	*out = xstrdup(item->valuestring);
	return 1;
}

int
bd_json_get_int(const cJSON *obj, const char *path, const char *name,
    int flags, int64_t min, int64_t max, int64_t *out, char **cause)
{
	const cJSON *item;
	double d;
	int rc;

	if ((item = json_lookup(obj, path, name, flags, &rc, cause)) == NULL)
		return rc;
	if (!cJSON_IsNumber(item))
		return bd_json_fail(cause, BD_EINVALID, path, name,
		    "expected an integer, not %s", bd_json_type_name(item));
	d = item->valuedouble;
	if (!isfinite(d) || d != floor(d) || d < (double)min ||
	    d > (double)max)
		return bd_json_fail(cause, BD_EINVALID, path, name,
		    "must be an integer between %lld and %lld",
		    (long long)min, (long long)max);
	*out = (int64_t)d;
	return 1;
}

int
bd_json_get_bool(const cJSON *obj, const char *path, const char *name,
    int flags, bool *out, char **cause)
{
	const cJSON *item;
	int rc;

	if ((item = json_lookup(obj, path, name, flags, &rc, cause)) == NULL)
		return rc;
	if (!cJSON_IsBool(item))
		return bd_json_fail(cause, BD_EINVALID, path, name,
		    "expected true or false, not %s", bd_json_type_name(item));
	*out = cJSON_IsTrue(item);
	return 1;
}

int
bd_json_get_duration(const cJSON *obj, const char *path, const char *name,
    int flags, int64_t *ms_out, char **cause)
{
	const char *reason = NULL;
	const cJSON *item;
	int64_t ms;
	char *shown;
	int rc;

	if ((item = json_lookup(obj, path, name, flags, &rc, cause)) == NULL)
		return rc;
	if (!cJSON_IsString(item) || item->valuestring == NULL)
		return bd_json_fail(cause, BD_EINVALID, path, name,
		    "expected a duration string such as \"PT1H\", not %s",
		    bd_json_type_name(item));
	if (bd_duration_parse_reason(item->valuestring, &ms, &reason) != 0) {
		shown = bd_json_quote(item->valuestring, 64);
		rc = bd_json_fail(cause, BD_EINVALID, path, name,
		    "invalid duration %s: %s", shown, reason);
		free(shown);
		return rc;
	}
	*ms_out = ms;
	return 1;
}

int
bd_json_get_enum(const cJSON *obj, const char *path, const char *name,
    int flags, const struct bd_json_enum *table, int *out, char **cause)
{
	const cJSON *item;
	char *shown, *list, *tmp;
	size_t i;
	int rc;

	if ((item = json_lookup(obj, path, name, flags, &rc, cause)) == NULL)
		return rc;
	if (!cJSON_IsString(item) || item->valuestring == NULL)
		return bd_json_fail(cause, BD_EINVALID, path, name,
		    "expected a string, not %s", bd_json_type_name(item));
	for (i = 0; table[i].name != NULL; i++) {
		if (strcasecmp(table[i].name, item->valuestring) == 0) {
			*out = table[i].value;
			return 1;
		}
	}
	list = xstrdup("");
	for (i = 0; table[i].name != NULL; i++) {
		tmp = xasprintf("%s%s%s", list, i > 0 ? ", " : "",
		    table[i].name);
		free(list);
		list = tmp;
	}
	shown = bd_json_quote(item->valuestring, 64);
	rc = bd_json_fail(cause, BD_EINVALID, path, name,
	    "unknown value %s (expected one of: %s)", shown, list);
	free(shown);
	free(list);
	return rc;
}

/* Whether item has the type an array asks for. */
static bool
json_item_matches(const cJSON *item, enum bd_json_item type)
{
	switch (type) {
	case BD_JSON_ITEM_OBJECT:
		return cJSON_IsObject(item);
	case BD_JSON_ITEM_STRING:
		return cJSON_IsString(item) && item->valuestring != NULL;
	case BD_JSON_ITEM_ANY:
		break;
	}
	return true;
}

int
bd_json_get_array(const cJSON *obj, const char *path, const char *name,
    int flags, enum bd_json_item type, size_t max_items,
    const cJSON **first, size_t *count, char **cause)
{
	const cJSON *item, *c;
	char *apath;
	size_t n = 0;
	int rc;

	if ((item = json_lookup(obj, path, name, flags, &rc, cause)) == NULL)
		return rc;
	if (!cJSON_IsArray(item))
		return bd_json_fail(cause, BD_EINVALID, path, name,
		    "expected an array, not %s", bd_json_type_name(item));
	for (c = item->child; c != NULL; c = c->next, n++) {
		if (n >= max_items)
			return bd_json_fail(cause, BD_EINVALID, path, name,
			    "more than %zu items", max_items);
		if (!json_item_matches(c, type)) {
			apath = bd_json_path(path, name);
			rc = bd_json_fail(cause, BD_EINVALID, NULL, NULL,
			    "%s[%zu]: expected %s, not %s", apath, n,
			    type == BD_JSON_ITEM_OBJECT ? "an object" :
			    "a string", bd_json_type_name(c));
			free(apath);
			return rc;
		}
	}
	*first = item->child;
	*count = n;
	return 1;
}

bool
bd_json_id_valid(const char *id)
{
	size_t i;

	for (i = 0; id[i] != '\0'; i++) {
		if (i >= BD_JSON_MAX_ID)
			return false;
		if (!((id[i] >= 'a' && id[i] <= 'z') ||
		    (id[i] >= 'A' && id[i] <= 'Z') ||
		    (id[i] >= '0' && id[i] <= '9') ||
		    id[i] == '-' || id[i] == '_'))
			return false;
	}
	return i > 0;
}

int
bd_json_get_id(const cJSON *obj, const char *path, const char *name,
    int flags, char **out, char **cause)
{
	char *id = NULL;
	int rc;

	rc = bd_json_get_string(obj, path, name, flags | BD_JSON_NONEMPTY,
	    BD_JSON_MAX_DOCUMENT, &id, cause);
	if (rc <= 0)
		return rc;
	if (strlen(id) > BD_JSON_MAX_ID)
		rc = bd_json_fail(cause, BD_EINVALID, path, name,
		    "longer than %d characters", BD_JSON_MAX_ID);
	else if (!bd_json_id_valid(id))
		rc = bd_json_fail(cause, BD_EINVALID, path, name,
		    "may contain only letters, digits, '-' and '_'");
	if (rc < 0) {
		free(id);
		return rc;
	}
	*out = id;
	return 1;
}
