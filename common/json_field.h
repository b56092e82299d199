/* SPDX-License-Identifier: MIT */
#ifndef BD_JSON_FIELD_H
#define BD_JSON_FIELD_H

/*
 * Typed, bounded access to the fields of a cJSON document from outside,
 * shared by the task and job parsers.
 *
 * Every error is reported through `char **cause` (caller frees; cause may
 * be NULL) as "path: reason", where the path names the field the way a
 * person would find it in the file: `resourceFiles[2].filePath`,
 * `constraints.maxWallClockTime`.  A getter takes the path of the object
 * it reads from (NULL or "" at the top level) and the field's name.
 *
 * JSON null counts as absent everywhere, because `az batch task show`
 * prints null for every field that is not set.
 *
 * Getters return 1 when the field was present and *out was set, 0 when it
 * was absent (or null) and *out was left alone, or a negative BD_E* code
 * with *cause set.  With BD_JSON_REQUIRED an absent field is an error.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cJSON;

#define BD_JSON_MAX_DOCUMENT	(1024 * 1024) /* Azure's request limit */
#define BD_JSON_MAX_DEPTH	64	/* deeper documents are refused */
#define BD_JSON_MAX_ITEMS	10000	/* items in any one array */
#define BD_JSON_MAX_ID		64	/* characters in an Azure Batch id */

/* Flags for the getters. */
#define BD_JSON_REQUIRED	0x1	/* absent or null is an error */
#define BD_JSON_NONEMPTY	0x2	/* "" is an error (strings) */

/* Item types for bd_json_get_array(). */
enum bd_json_item {
	BD_JSON_ITEM_ANY,
	BD_JSON_ITEM_OBJECT,
	BD_JSON_ITEM_STRING,
};

/* One row of an enum table; a table ends with a NULL name. */
struct bd_json_enum {
	const char *name; /* as the REST API spells it; matched ignoring case */
	int value;
};

/*
 * Parses a whole document that must be a JSON object.  In order it checks:
 * size (over BD_JSON_MAX_DOCUMENT gives BD_ETOOBIG, "document is larger
 * than 1 MiB"), UTF-8 ("not valid UTF-8 at byte N", N counted from 0), a
 * leading UTF-8 byte order mark is skipped, nesting deeper than
 * BD_JSON_MAX_DEPTH, NUL characters, then the JSON itself ("not valid JSON
 * at line L, column C"), and that the top is an object ("expected a JSON
 * object").  Returns 0 and sets *out (caller frees with cJSON_Delete()),
 * or BD_ETOOBIG/BD_EJSON with *cause.  text need not end in a NUL.
 */
int bd_json_parse(const char *text, size_t len, struct cJSON **out,
    char **cause);

/* "parent.name", or "name" when parent is NULL or "".  Caller frees. */
char *bd_json_path(const char *parent, const char *name);

/* "parent[index]".  Caller frees. */
char *bd_json_path_index(const char *parent, size_t index);

/*
 * Sets *cause to "parent.name: " plus the formatted reason (name may be
 * NULL to name the parent itself) and returns err.  cause may be NULL.
 */
int bd_json_fail(char **cause, int err, const char *parent, const char *name,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/*
 * s quoted for a message: at most max bytes of it, with quotes, control
 * characters, backslashes and non-ASCII bytes escaped, and "..." when it
 * was cut.  Caller frees.
 */
char *bd_json_quote(const char *s, size_t max);

/*
 * The value of obj's member name (names match exactly), or NULL when it is
 * absent or null.  Borrowed from obj.
 */
const struct cJSON *bd_json_field(const struct cJSON *obj, const char *name);

/*
 * Checks obj (which must be an object) for members not named in allowed
 * ("comandLine: unknown field (did you mean commandLine?)") and for
 * allowed names given twice ("commandLine: duplicate field").  Members
 * named in ignored (read-only fields of a dump) are skipped, as is an
 * empty or null "additionalProperties", which the az CLI prints.  Both
 * lists end with NULL; ignored may be NULL.  allowed holds at most 64
 * names.  If `why` is not NULL, a name found in also_known (a list of the
 * fields other kinds have, may be NULL) gets "unknown field (WHY)" instead.
 * Returns 0 or BD_EINVALID.
 */
int bd_json_check_fields(const struct cJSON *obj, const char *path,
    const char *const *allowed, const char *const *ignored,
    const char *const *also_known, const char *why, char **cause);

/* An object member; *out is borrowed from obj. */
int bd_json_get_object(const struct cJSON *obj, const char *path,
    const char *name, int flags, const struct cJSON **out, char **cause);

/*
 * A string of at most max_len bytes ("longer than N bytes").  *out is a
 * copy the caller frees; it is only set when the return is 1.
 */
int bd_json_get_string(const struct cJSON *obj, const char *path,
    const char *name, int flags, size_t max_len, char **out, char **cause);

/*
 * An integer in min..max.  Numbers with a fraction, and numbers out of
 * range, are errors ("must be an integer between MIN and MAX").
 */
int bd_json_get_int(const struct cJSON *obj, const char *path,
    const char *name, int flags, int64_t min, int64_t max, int64_t *out,
    char **cause);

/* true or false; strings such as "true" are errors. */
int bd_json_get_bool(const struct cJSON *obj, const char *path,
    const char *name, int flags, bool *out, char **cause);

/* A duration string, in milliseconds; see duration.h. */
int bd_json_get_duration(const struct cJSON *obj, const char *path,
    const char *name, int flags, int64_t *ms_out, char **cause);

/*
 * A string matched case-insensitively against table; *out gets the row's
 * value.  Other strings give "unknown value "x" (expected one of a, b)".
 */
int bd_json_get_enum(const struct cJSON *obj, const char *path,
    const char *name, int flags, const struct bd_json_enum *table, int *out,
    char **cause);

/*
 * An array of at most max_items items, each of the given type
 * ("name[3]: expected an object, not a string").  *first gets the first
 * item (NULL for an empty array; walk with ->next) and *count the number
 * of items.  Both are borrowed from obj.
 */
int bd_json_get_array(const struct cJSON *obj, const char *path,
    const char *name, int flags, enum bd_json_item type, size_t max_items,
    const struct cJSON **first, size_t *count, char **cause);

/*
 * An Azure Batch id (task, job, pool): 1 to 64 letters, digits, '-' and
 * '_'.  *out is a copy the caller frees.
 */
int bd_json_get_id(const struct cJSON *obj, const char *path,
    const char *name, int flags, char **out, char **cause);

/* Whether id is a valid Azure Batch id, as bd_json_get_id() checks. */
bool bd_json_id_valid(const char *id);

/* The name of a value's JSON type for messages: "a string", "null"... */
const char *bd_json_type_name(const struct cJSON *item);

#endif
