/* SPDX-License-Identifier: MIT */
#ifndef BD_URL_H
#define BD_URL_H

/*
 * Small URL helpers: redaction of SAS signatures, file:// parsing and the
 * forming of a blob URL from a container URL.  No parsing of untrusted
 * input beyond what these functions document; results are always freshly
 * allocated strings that the caller frees with free().
 */

#include <stdbool.h>

/*
 * A copy of text in which the value of every "sig" query parameter
 * (name matched without regard to case, after '?', '&', ';' or any other
 * non-word character) is replaced with REDACTED.  The percent-encoded form
 * "sig%3D" of a URL nested in a query is redacted too.  Works on bare URLs
 * and on any text that contains URLs.  text may be NULL (gives NULL).
 * Caller frees.
 */
char *bd_url_redact(const char *text);

/* True when url uses the file scheme ("file:", any case). */
bool bd_url_is_file(const char *url);

/* True when url uses the http or https scheme (any case). */
bool bd_url_is_http(const char *url);

/*
 * The local path of a file URL: file:///abs/path, file://localhost/abs/path
 * or file:/abs/path, percent-decoded; a query or fragment ends the path.
 * Returns 0 and a path the caller frees in *path_out, or -EINVAL for any
 * other form (another host, a relative path, a bad or NUL escape).
 */
int bd_url_file_path(const char *url, char **path_out);

/*
 * container_url + "/" + name, with name's bytes percent-encoded except the
 * unreserved characters (A-Z a-z 0-9 - . _ ~) and '/', and the query
 * ("?..."), if any, kept at the end: this forms a blob URL from a container
 * SAS URL and a blob name.  A trailing '/' on the container path is not
 * doubled.  Caller frees.
 */
char *bd_url_append_path(const char *container_url, const char *name);

/*
 * Percent-encodes every byte of s except the unreserved characters and, if
 * keep_slash, '/'.  Caller frees.
 */
char *bd_url_encode(const char *s, bool keep_slash);

#endif
