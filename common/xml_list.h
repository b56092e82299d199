/* SPDX-License-Identifier: MIT */
#ifndef BD_XML_LIST_H
#define BD_XML_LIST_H

/*
 * The XML of Azure Blob Storage, parsed with expat: List Blobs pages
 * (EnumerationResults) into a list of blobs, and error bodies
 * (<Error><Code/><Message/></Error>) into a code and a message.
 *
 * The input is untrusted: documents, names and counts are bounded, and a
 * malformed document gives BD_EINVALID with a *cause naming the line and
 * the reason.  Everything returned is owned by the caller.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BD_XML_MAX_NAME		1024		/* bytes of a blob name */
#define BD_XML_DEFAULT_MAX_NAMES 1000000	/* entries of one list */
#define BD_XML_DEFAULT_MAX_DOC	(64u * 1024 * 1024) /* bytes of one page */

/* One blob of a listing.  Strings owned by the list. */
struct bd_xml_blob {
	char *name;
	int64_t size;			/* Content-Length, -1 if absent */
	char *content_md5;		/* base64, NULL if absent or empty */
	char *etag;			/* NULL if absent */
	char *last_modified;		/* RFC 1123 text, NULL if absent */
};

/*
 * The blobs (and BlobPrefix names, with a delimiter) of one or more pages,
 * in the order given.  Freed with bd_xml_list_free().
 */
struct bd_xml_list {
	struct bd_xml_blob *blobs;
	size_t n_blobs;
	char **prefixes;
	size_t n_prefixes;
};

/* Limits; zero fields take the defaults above. */
struct bd_xml_limits {
	size_t max_names;		/* blobs + prefixes in the list */
	size_t max_name_len;		/* at most BD_XML_MAX_NAME */
	size_t max_doc;			/* bytes fed to one parser */
};

struct bd_xml_list_parser;

/*
 * A streaming parser of one List Blobs page that appends to list (borrowed
 * until bd_xml_list_parser_free()).  lim may be NULL.
 */
struct bd_xml_list_parser *bd_xml_list_parser_new(struct bd_xml_list *list,
    const struct bd_xml_limits *lim);

/*
 * Feeds len bytes; last is true for the final piece (len may be 0).
 * Returns 0, BD_EINVALID for malformed XML or an unexpected shape, or
 * BD_ETOOBIG past a limit, with *cause.  After an error the parser only
 * gives the same error again; the entries appended so far stay.
 */
int bd_xml_list_parser_feed(struct bd_xml_list_parser *p, const char *data,
    size_t len, bool last, char **cause);

/*
 * The page's NextMarker after the last feed: a string the caller frees, or
 * NULL when the page was the last.
 */
char *bd_xml_list_parser_next_marker(struct bd_xml_list_parser *p);

/* Frees the parser (not the list). */
void bd_xml_list_parser_free(struct bd_xml_list_parser *p);

/*
 * Parses one whole page: the parser above in one call.  On success
 * *next_marker (may be NULL if not wanted) is the next marker or NULL.
 */
int bd_xml_list_parse(const char *doc, size_t len,
    const struct bd_xml_limits *lim, struct bd_xml_list *list,
    char **next_marker, char **cause);

/* Frees the list's contents and the list; NULL is allowed. */
void bd_xml_list_free(struct bd_xml_list *list);

/*
 * Parses a storage error body.  Returns 0 with *code and *message (either
 * may be NULL when absent; caller frees; control characters, such as the
 * line breaks before RequestId, become spaces, the message is cut at 1024
 * bytes), or BD_EINVALID when body is not such a document (*code and
 * *message are then NULL).
 */
int bd_xml_error_parse(const char *body, size_t len, char **code,
    char **message);

#endif
