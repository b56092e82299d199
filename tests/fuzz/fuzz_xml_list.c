/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for common/xml_list: the List Blobs page parser and the
 * storage error body parser.  The first byte picks how the input is fed
 * (whole, or in pieces of the size it gives) and the limits, so that the
 * streaming path and the limit checks are exercised too.  Besides not
 * crashing, the listing must keep its promises: names non-empty, within
 * the name limit and without NUL, entries within the count limit, and a
 * failed parse always gives a cause.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xml_list.h"
#include "xmalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bd_xml_limits lim = { 0 };
	struct bd_xml_list *l;
	struct bd_xml_list_parser *p;
	char *cause = NULL, *next, *code, *msg;
	size_t piece, off, i, n;
	int rc = 0;

	if (size < 1)
		return 0;
	piece = (size_t)(data[0] & 0x0f) * 7 + 1;
	if (data[0] & 0x10)
		lim.max_names = 3;
	if (data[0] & 0x20)
		lim.max_name_len = 8;
	if (data[0] & 0x40)
		lim.max_doc = 200;
	data++;
	size--;

	l = xcalloc(1, sizeof(*l));
	p = bd_xml_list_parser_new(l, &lim);
	for (off = 0; off < size && rc == 0; off += n) {
		n = size - off < piece ? size - off : piece;
		rc = bd_xml_list_parser_feed(p, (const char *)data + off, n,
		    false, &cause);
		if (rc != 0 && cause == NULL)
			abort();
		free(cause);
		cause = NULL;
	}
	if (rc == 0) {
		rc = bd_xml_list_parser_feed(p, NULL, 0, true, &cause);
		if (rc != 0 && cause == NULL)
			abort();
		free(cause);
	}
	next = bd_xml_list_parser_next_marker(p);
	free(next);
	bd_xml_list_parser_free(p);
	if (l->n_blobs + l->n_prefixes > (lim.max_names ? lim.max_names :
	    BD_XML_DEFAULT_MAX_NAMES))
		abort();
	for (i = 0; i < l->n_blobs; i++) {
		n = strlen(l->blobs[i].name);
		if (n == 0 || n > (lim.max_name_len ? lim.max_name_len :
		    BD_XML_MAX_NAME))
			abort();
		if (l->blobs[i].size < -1)
			abort();
	}
	for (i = 0; i < l->n_prefixes; i++)
		if (l->prefixes[i][0] == '\0')
			abort();
	bd_xml_list_free(l);

	if (bd_xml_error_parse((const char *)data, size, &code, &msg) == 0) {
		if (msg != NULL && strlen(msg) > 1024)
			abort();
		free(code);
		free(msg);
	}
	return 0;
}
