/* SPDX-License-Identifier: MIT */
/*
 * Tests of common/xml_list: List Blobs pages as Azure and Azurite write
 * them, fed whole and a byte at a time, the limits, malformed and hostile
 * documents, and storage error bodies.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "unit.h"
#include "xml_list.h"
#include "xmalloc.h"

/* A page in Azure's shape (abridged from the REST documentation). */
static const char page[] =
    "\xef\xbb\xbf<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
    "<EnumerationResults ServiceEndpoint=\"https://acct.blob.core.windows."
    "net/\" ContainerName=\"cont\">\n"
    "  <Prefix>a/</Prefix><Marker /><MaxResults>3</MaxResults>\n"
    "  <Blobs>\n"
    "    <Blob><Name>a/one.txt</Name><Properties>"
    "<Creation-Time>Mon, 01 Jan 2024 00:00:00 GMT</Creation-Time>"
    "<Last-Modified>Tue, 02 Jan 2024 03:04:05 GMT</Last-Modified>"
    "<Etag>0x8DB1</Etag><Content-Length>12</Content-Length>"
    "<Content-Type>text/plain</Content-Type>"
    "<Content-MD5>XrY7u+Ae7tCTyyK7j1rNww==</Content-MD5>"
    "<BlobType>BlockBlob</BlobType></Properties>"
    "<Metadata><Name>not a blob name</Name></Metadata></Blob>\n"
    "    <Blob><Name>a/two &amp; &lt;three&gt;.bin</Name><Properties>"
    "<Content-Length>0</Content-Length><Content-MD5 /></Properties></Blob>\n"
    "    <BlobPrefix><Name>a/sub/</Name></BlobPrefix>\n"
    "    <Blob><Name Encoded=\"true\">a%2Fodd%01name</Name></Blob>\n"
    "  </Blobs>\n"
    "  <NextMarker>2!72!MDAwMDE2IWEvdGhyZWUudHh0ITAwMDAyOCE5OTk5LTEyLTMxV"
    "DIzOjU5OjU5Ljk5OTk5OTlaIQ--</NextMarker>\n"
    "</EnumerationResults>\n";

/* Checks the entries page gives. */
static void
check_page(const struct bd_xml_list *l)
{
	ASSERT_INT_EQ(l->n_blobs, 3);
	ASSERT_STR_EQ(l->blobs[0].name, "a/one.txt");
	ASSERT_INT_EQ(l->blobs[0].size, 12);
	ASSERT_STR_EQ(l->blobs[0].content_md5, "XrY7u+Ae7tCTyyK7j1rNww==");
	ASSERT_STR_EQ(l->blobs[0].etag, "0x8DB1");
	ASSERT_STR_EQ(l->blobs[0].last_modified,
	    "Tue, 02 Jan 2024 03:04:05 GMT");
	ASSERT_STR_EQ(l->blobs[1].name, "a/two & <three>.bin");
	ASSERT_INT_EQ(l->blobs[1].size, 0);
	ASSERT_NULL(l->blobs[1].content_md5);
	ASSERT_NULL(l->blobs[1].etag);
	ASSERT_STR_EQ(l->blobs[2].name, "a/odd\x01name");
	ASSERT_INT_EQ(l->blobs[2].size, -1);
	ASSERT_INT_EQ(l->n_prefixes, 1);
	ASSERT_STR_EQ(l->prefixes[0], "a/sub/");
}

TEST(page_whole)
{
	struct bd_xml_list *l = xcalloc(1, sizeof(*l));
	char *next = NULL, *cause = NULL;
	const char *doc;

	ASSERT_INT_EQ(bd_xml_list_parse(page, strlen(page), NULL, l, &next,
	    &cause), 0);
	check_page(l);
	ASSERT_STR_CONTAINS(next, "2!72!MDAw");
	free(next);

	/* A second page appends; without NextMarker the marker is NULL. */
	doc = "<EnumerationResults><Blobs><Blob><Name>z</Name></Blob></Blobs>"
	    "<NextMarker/></EnumerationResults>";
	ASSERT_INT_EQ(bd_xml_list_parse(doc, strlen(doc), NULL, l, &next,
	    &cause), 0);
	ASSERT_NULL(next);
	ASSERT_INT_EQ(l->n_blobs, 4);
	ASSERT_STR_EQ(l->blobs[3].name, "z");
	bd_xml_list_free(l);
}

TEST(page_bytewise)
{
	struct bd_xml_list *l = xcalloc(1, sizeof(*l));
	struct bd_xml_list_parser *p = bd_xml_list_parser_new(l, NULL);
	char *cause = NULL, *next;
	size_t i, n = strlen(page);

	for (i = 0; i < n; i++)
		ASSERT_INT_EQ(bd_xml_list_parser_feed(p, page + i, 1, false,
		    &cause), 0);
	ASSERT_INT_EQ(bd_xml_list_parser_feed(p, NULL, 0, true, &cause), 0);
	next = bd_xml_list_parser_next_marker(p);
	ASSERT_NOT_NULL(next);
	free(next);
	bd_xml_list_parser_free(p);
	check_page(l);
	bd_xml_list_free(l);
}

/* doc fails with err and a cause containing want. */
static void
bad(const char *doc, const struct bd_xml_limits *lim, int err,
    const char *want)
{
	struct bd_xml_list *l = xcalloc(1, sizeof(*l));
	char *next = NULL, *cause = NULL;

	ASSERT_INT_EQ(bd_xml_list_parse(doc, strlen(doc), lim, l, &next,
	    &cause), err);
	ASSERT_NULL(next);
	ASSERT_STR_CONTAINS(cause, want);
	free(cause);
	bd_xml_list_free(l);
}

TEST(malformed)
{
	bad("", NULL, BD_EINVALID, "no element found");
	bad("<EnumerationResults><Blobs>", NULL, BD_EINVALID, "line 1");
	bad("<Error><Code>x</Code></Error>", NULL, BD_EINVALID,
	    "not EnumerationResults");
	bad("<EnumerationResults><Blobs><Blob></Blob></Blobs>"
	    "</EnumerationResults>", NULL, BD_EINVALID, "Blob without a Name");
	bad("<EnumerationResults><Blobs><Blob><Name></Name></Blob></Blobs>"
	    "</EnumerationResults>", NULL, BD_EINVALID, "empty");
	bad("<EnumerationResults><Blobs><Blob><Name>a</Name><Name>b</Name>"
	    "</Blob></Blobs></EnumerationResults>", NULL, BD_EINVALID,
	    "two Name");
	bad("<EnumerationResults><Blobs><Blob><Name>a<b/></Name></Blob>"
	    "</Blobs></EnumerationResults>", NULL, BD_EINVALID,
	    "inside a text field");
	bad("<EnumerationResults><Blobs><Blob><Name>a</Name><Properties>"
	    "<Content-Length>-1</Content-Length></Properties></Blob></Blobs>"
	    "</EnumerationResults>", NULL, BD_EINVALID, "not a number");
	bad("<EnumerationResults><Blobs><Blob><Name Encoded=\"true\">a%00"
	    "</Name></Blob></Blobs></EnumerationResults>", NULL, BD_EINVALID,
	    "badly encoded");
	bad("<EnumerationResults><Blobs><Blob><Name Encoded=\"true\">a%4"
	    "</Name></Blob></Blobs></EnumerationResults>", NULL, BD_EINVALID,
	    "badly encoded");
	bad("<EnumerationResults/><EnumerationResults/>", NULL, BD_EINVALID,
	    "junk after document element");
	/* Entity expansion never starts: DOCTYPE is refused. */
	bad("<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY a \"aaaaaaaaaa\">"
	    "<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">]>"
	    "<EnumerationResults><Blobs><Blob><Name>&b;</Name></Blob></Blobs>"
	    "</EnumerationResults>", NULL, BD_EINVALID, "DOCTYPE");
}

TEST(limits)
{
	struct bd_xml_limits lim = { 0 };
	char *doc, *name;

	/* Names: 1024 bytes pass, 1025 do not. */
	name = xmalloc(1026);
	memset(name, 'n', 1025);
	name[1025] = '\0';
	doc = xasprintf("<EnumerationResults><Blobs><Blob><Name>%s</Name>"
	    "</Blob></Blobs></EnumerationResults>", name);
	bad(doc, NULL, BD_ETOOBIG, "a blob name longer than 1024 bytes");
	free(doc);
	name[1024] = '\0';
	doc = xasprintf("<EnumerationResults><Blobs><Blob><Name>%s</Name>"
	    "</Blob></Blobs></EnumerationResults>", name);
	{
		struct bd_xml_list *l = xcalloc(1, sizeof(*l));
		char *cause = NULL;

		ASSERT_INT_EQ(bd_xml_list_parse(doc, strlen(doc), NULL, l,
		    NULL, &cause), 0);
		ASSERT_INT_EQ(strlen(l->blobs[0].name), 1024);
		bd_xml_list_free(l);
	}
	lim.max_name_len = 10;
	bad(doc, &lim, BD_ETOOBIG, "longer than 10 bytes");
	free(doc);
	free(name);

	/* Names in the list, and the document size. */
	lim.max_name_len = 0;
	lim.max_names = 2;
	bad(page, &lim, BD_ETOOBIG, "more than 2 names");
	lim.max_names = 0;
	lim.max_doc = 100;
	bad(page, &lim, BD_ETOOBIG, "larger than 100 bytes");

	/* A field that grows without end. */
	name = xmalloc(10001);
	memset(name, '0', 10000);
	name[10000] = '\0';
	doc = xasprintf("<EnumerationResults><Blobs><Blob><Name>a</Name>"
	    "<Properties><Etag>%s</Etag></Properties></Blob></Blobs>"
	    "</EnumerationResults>", name);
	bad(doc, NULL, BD_ETOOBIG, "a field longer than");
	free(doc);
	free(name);
}

TEST(errors)
{
	char *code, *msg;
	const char *body = "\xef\xbb\xbf<?xml version=\"1.0\" encoding=\"utf-8\"?>"
	    "<Error><Code>BlobNotFound</Code><Message>The specified blob does "
	    "not exist.\nRequestId:7d3c\nTime:2024-01-02T03:04:05.0000000Z"
	    "</Message></Error>";

	ASSERT_INT_EQ(bd_xml_error_parse(body, strlen(body), &code, &msg), 0);
	ASSERT_STR_EQ(code, "BlobNotFound");
	ASSERT_STR_EQ(msg, "The specified blob does not exist. RequestId:7d3c "
	    "Time:2024-01-02T03:04:05.0000000Z");
	free(code);
	free(msg);

	body = "<Error><Code>AuthenticationFailed</Code><AuthenticationError"
	    "Detail>Signature did not match</AuthenticationErrorDetail></Error>";
	ASSERT_INT_EQ(bd_xml_error_parse(body, strlen(body), &code, &msg), 0);
	ASSERT_STR_EQ(code, "AuthenticationFailed");
	ASSERT_NULL(msg);
	free(code);

	ASSERT_INT_EQ(bd_xml_error_parse("status 404\n", 11, &code, &msg),
	    BD_EINVALID);
	ASSERT_NULL(code);
	ASSERT_NULL(msg);
	ASSERT_INT_EQ(bd_xml_error_parse("<Other/>", 8, &code, &msg),
	    BD_EINVALID);
	ASSERT_INT_EQ(bd_xml_error_parse(NULL, 0, &code, &msg), BD_EINVALID);
	body = "<!DOCTYPE x [<!ENTITY a \"b\">]><Error><Code>&a;</Code></Error>";
	ASSERT_INT_EQ(bd_xml_error_parse(body, strlen(body), &code, &msg),
	    BD_EINVALID);

	/* A long message is cut. */
	{
		char *big = xmalloc(5000), *doc;

		memset(big, 'm', 4999);
		big[4999] = '\0';
		doc = xasprintf("<Error><Message>%s</Message></Error>", big);
		ASSERT_INT_EQ(bd_xml_error_parse(doc, strlen(doc), &code,
		    &msg), 0);
		ASSERT_NULL(code);
		ASSERT_INT_EQ(strlen(msg), 1024);
		free(msg);
		free(doc);
		free(big);
	}
}

int
main(void)
{
	RUN(page_whole);
	RUN(page_bytewise);
	RUN(malformed);
	RUN(limits);
	RUN(errors);
	return 0;
}
