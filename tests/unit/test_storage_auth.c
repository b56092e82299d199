/* SPDX-License-Identifier: MIT */
/*
 * Tests of common/storage_auth: connection strings, SAS URLs, base64, and
 * Shared Key signatures checked against vectors that the Azure SDK for
 * JavaScript (@azure/storage-blob 12.27.0) produced for the same requests
 * with Azurite's well-known key.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "storage_auth.h"
#include "unit.h"
#include "xmalloc.h"

#define SDK_UA "User-Agent: azsdk-js-azure-storage-blob/12.27.0 " \
	"core-rest-pipeline/1.24.0 Node/20.20.2 (Linux 6.18.44-fc-v782; x64)"

struct vector {
	const char *method;
	const char *url;
	const char *headers[12];
	const char *auth;
};

/* Requests signed by the SDK (captured before sending). */
static const struct vector vectors[] = {
	{ "GET", "http://127.0.0.1:10000/devstoreaccount1/mycontainer/dir/a%20b.txt",
	    { "x-ms-version: 2025-05-05",
	    "Accept: application/xml",
	    "x-ms-range: bytes=0-8388607",
	    "If-Match: \"0x8DB\"",
	    SDK_UA,
	    "x-ms-client-request-id: eb1092fe-e9c1-4132-8e79-d964b83020af",
	    "x-ms-date: Fri, 27 Nov 2026 02:56:49 GMT" },
	    "SharedKey devstoreaccount1:aXlynfCIHl+VyaCvZfP25swQnCwEb5CiHaBoQLzmM6o=" },
	{ "GET", "http://127.0.0.1:10000/devstoreaccount1/mycontainer?comp=list&prefix=a%2Fb&marker=X%2B1&maxresults=100&restype=container",
	    { "x-ms-version: 2025-05-05",
	    "Accept: application/xml",
	    SDK_UA,
	    "x-ms-client-request-id: 6826b09f-d107-4d9e-8854-138c8f304679",
	    "x-ms-date: Fri, 27 Nov 2026 02:56:49 GMT" },
	    "SharedKey devstoreaccount1:kLFfWlAcR2SWnDRpUKVXoUi8TNt/UzJTD0ze9s08HjU=" },
	{ "PUT", "http://127.0.0.1:10000/devstoreaccount1/mycontainer/big.bin?comp=blocklist",
	    { "Content-Type: application/xml",
	    "Accept: application/xml",
	    "x-ms-version: 2025-05-05",
	    "x-ms-meta-Color: blue",
	    "x-ms-blob-content-type: text/plain",
	    "x-ms-blob-content-md5: MDEyMzQ1Njc4OWFiY2RlZg==",
	    SDK_UA,
	    "x-ms-client-request-id: 5b177274-44d8-4b90-8e18-2ac6c7d3f4db",
	    "Content-Length: 99",
	    "x-ms-date: Fri, 27 Nov 2026 02:56:49 GMT" },
	    "SharedKey devstoreaccount1:1NGnFjgGKnD47Yq4cA0IOp1WuuVzvZr0bAx4fW8jE84=" },
};

/* The number of non-NULL lines in h. */
static size_t
count(const char *const *h, size_t max)
{
	size_t n = 0;

	while (n < max && h[n] != NULL)
		n++;
	return n;
}

/* The Authorization value bd_storage_headers-style signing gives. */
static char *
sign(const struct bd_storage_account *a, const char *method, const char *url,
    int64_t len, const char *range, const char *const *h, size_t n)
{
	char *sts = NULL, *cause = NULL, *sig, *auth;

	ASSERT_INT_EQ(bd_storage_string_to_sign(a->name, BD_STORAGE_BLOB,
	    method, url, len, range, h, n, &sts, &cause), 0);
	sig = bd_storage_hmac(a->key, a->key_len, sts);
	auth = xasprintf("SharedKey %s:%s", a->name, sig);
	free(sig);
	free(sts);
	return auth;
}

TEST(sdk_vectors)
{
	struct bd_storage_account *a = NULL;
	char *cause = NULL, *auth;
	size_t i, n;
	int64_t len;

	ASSERT_INT_EQ(bd_storage_account_parse("UseDevelopmentStorage=true",
	    &a, &cause), 0);
	for (i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		n = count(vectors[i].headers, 12);
		len = strcmp(vectors[i].method, "PUT") == 0 ? 99 : 0;
		auth = sign(a, vectors[i].method, vectors[i].url, len, NULL,
		    vectors[i].headers, n);
		ASSERT_STR_EQ(auth, vectors[i].auth);
		free(auth);
	}
	bd_storage_account_free(a);
}

TEST(string_to_sign_shape)
{
	const char *h[] = {
		"x-ms-date: Tue, 02 Jan 2024 03:04:05 GMT",
		"X-MS-Version:  2023-11-03 ",
		"x-ms-meta-b: 2",
		"x-ms-meta-a: 1",
		"Content-Type: text/plain",
		"Content-MD5: AAAA",
		"If-None-Match: *",
	};
	char *sts = NULL, *cause = NULL;

	ASSERT_INT_EQ(bd_storage_string_to_sign("acct", BD_STORAGE_BLOB, "PUT",
	    "https://acct.blob.core.windows.net/c/x%2By?B=2&a=1&a=0", 5,
	    "bytes=1-2", h, 7, &sts, &cause), 0);
	ASSERT_STR_EQ(sts, "PUT\n\n\n5\nAAAA\ntext/plain\n\n\n\n*\n\n"
	    "bytes=1-2\n"
	    "x-ms-date:Tue, 02 Jan 2024 03:04:05 GMT\n"
	    "x-ms-meta-a:1\nx-ms-meta-b:2\nx-ms-version:2023-11-03\n"
	    "/acct/c/x%2By\na:0,1\nb:2");
	free(sts);

	/* Content-Length 0 is an empty line; no query gives no lines. */
	ASSERT_INT_EQ(bd_storage_string_to_sign("acct", BD_STORAGE_BLOB,
	    "DELETE", "https://h/c", 0, NULL, h, 1, &sts, &cause), 0);
	ASSERT_STR_EQ(sts, "DELETE\n\n\n\n\n\n\n\n\n\n\n\n"
	    "x-ms-date:Tue, 02 Jan 2024 03:04:05 GMT\n/acct/c");
	free(sts);

	/* The Table service's short form keeps only comp. */
	ASSERT_INT_EQ(bd_storage_string_to_sign("acct", BD_STORAGE_TABLE,
	    "GET", "https://acct.table.core.windows.net/Tables?comp=x&"
	    "$filter=a", 0, NULL, h, 7, &sts, &cause), 0);
	ASSERT_STR_EQ(sts, "GET\nAAAA\ntext/plain\n"
	    "Tue, 02 Jan 2024 03:04:05 GMT\n/acct/Tables?comp=x");
	free(sts);

	ASSERT_INT_EQ(bd_storage_string_to_sign("acct", BD_STORAGE_BLOB, "GET",
	    "no-scheme", 0, NULL, h, 0, &sts, &cause), BD_EINVALID);
	ASSERT_NOT_NULL(cause);
	free(cause);
}

TEST(headers)
{
	struct bd_storage_account *a = NULL;
	const char *extra[] = { "If-Match: \"e\"", "x-ms-blob-type: BlockBlob" };
	char **lines = NULL, *cause = NULL, *auth;
	size_t n = 0;
	time_t t = 1704164645; /* 2024-01-02T03:04:05Z */

	ASSERT_INT_EQ(bd_storage_account_parse("UseDevelopmentStorage=true",
	    &a, &cause), 0);
	ASSERT_INT_EQ(bd_storage_headers(a, BD_STORAGE_BLOB, true, "GET",
	    "http://127.0.0.1:10000/devstoreaccount1/c/b", 0, 0, 99, extra, 2,
	    t, &lines, &n, &cause), 0);
	ASSERT_INT_EQ(n, 5);
	ASSERT_STR_EQ(lines[0], "If-Match: \"e\"");
	ASSERT_STR_EQ(lines[2], "x-ms-date: Tue, 02 Jan 2024 03:04:05 GMT");
	ASSERT_STR_EQ(lines[3], "x-ms-version: " BD_STORAGE_API_VERSION);
	auth = sign(a, "GET", "http://127.0.0.1:10000/devstoreaccount1/c/b",
	    0, "bytes=0-99", (const char *const *)lines, 4);
	ASSERT(strncmp(lines[4], "Authorization: ", 15) == 0);
	ASSERT_STR_EQ(lines[4] + 15, auth);
	free(auth);
	bd_storage_headers_free(lines, n);

	/* Unsigned: no Authorization. */
	ASSERT_INT_EQ(bd_storage_headers(a, BD_STORAGE_BLOB, false, "GET",
	    "http://h/c/b", 0, -1, -1, NULL, 0, t, &lines, &n, &cause), 0);
	ASSERT_INT_EQ(n, 2);
	bd_storage_headers_free(lines, n);

	/* A header with a line break is refused. */
	extra[0] = "X-Bad: a\r\nInjected: b";
	ASSERT_INT_EQ(bd_storage_headers(a, BD_STORAGE_BLOB, true, "GET",
	    "http://h/c/b", 0, -1, -1, extra, 2, t, &lines, &n, &cause),
	    BD_EINVALID);
	free(cause);
	bd_storage_account_free(a);
}

TEST(connection_strings)
{
	struct bd_storage_account *a = NULL;
	char *cause = NULL;

	ASSERT_INT_EQ(bd_storage_account_parse("UseDevelopmentStorage=true;",
	    &a, &cause), 0);
	ASSERT_STR_EQ(a->name, "devstoreaccount1");
	ASSERT_INT_EQ(a->key_len, 64);
	ASSERT_STR_EQ(a->blob_endpoint,
	    "http://127.0.0.1:10000/devstoreaccount1");
	ASSERT_STR_EQ(a->queue_endpoint,
	    "http://127.0.0.1:10001/devstoreaccount1");
	ASSERT_STR_EQ(bd_storage_account_endpoint(a, BD_STORAGE_TABLE),
	    "http://127.0.0.1:10002/devstoreaccount1");
	ASSERT_NULL(a->sas);
	bd_storage_account_free(a);

	/* Azurite's explicit form, with other ports. */
	ASSERT_INT_EQ(bd_storage_account_parse(
	    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
	    "AccountKey=" BD_STORAGE_DEV_KEY ";"
	    "BlobEndpoint=http://127.0.0.1:31000/devstoreaccount1/;"
	    "QueueEndpoint=http://127.0.0.1:31001/devstoreaccount1;"
	    "TableEndpoint=http://127.0.0.1:31002/devstoreaccount1;",
	    &a, &cause), 0);
	ASSERT_STR_EQ(a->blob_endpoint,
	    "http://127.0.0.1:31000/devstoreaccount1");
	ASSERT_STR_EQ(a->table_endpoint,
	    "http://127.0.0.1:31002/devstoreaccount1");
	ASSERT_INT_EQ(a->key_len, 64);
	bd_storage_account_free(a);

	/* The Azure form: endpoints from name and suffix. */
	ASSERT_INT_EQ(bd_storage_account_parse(
	    " defaultendpointsprotocol=https; AccountName=acct;"
	    "AccountKey=a2V5;EndpointSuffix=core.chinacloudapi.cn\n",
	    &a, &cause), 0);
	ASSERT_STR_EQ(a->blob_endpoint,
	    "https://acct.blob.core.chinacloudapi.cn");
	ASSERT_STR_EQ(a->queue_endpoint,
	    "https://acct.queue.core.chinacloudapi.cn");
	ASSERT_INT_EQ(a->key_len, 3);
	ASSERT(memcmp(a->key, "key", 3) == 0);
	bd_storage_account_free(a);

	/* SAS only. */
	ASSERT_INT_EQ(bd_storage_account_parse(
	    "BlobEndpoint=https://acct.blob.core.windows.net;"
	    "SharedAccessSignature=?sv=2023-11-03&sp=rl&sig=c2ln%3D",
	    &a, &cause), 0);
	ASSERT_STR_EQ(a->sas, "sv=2023-11-03&sp=rl&sig=c2ln%3D");
	ASSERT_NULL(a->key);
	ASSERT_NULL(a->queue_endpoint);
	bd_storage_account_free(a);
}

/* Parsing conn fails with a cause containing want and not secret. */
static void
bad_conn(const char *conn, const char *want, const char *secret)
{
	struct bd_storage_account *a = NULL;
	char *cause = NULL;

	ASSERT_INT_EQ(bd_storage_account_parse(conn, &a, &cause), BD_EINVALID);
	ASSERT_NULL(a);
	ASSERT_STR_CONTAINS(cause, want);
	if (secret != NULL && strstr(cause, secret) != NULL)
		UNIT_FAIL("cause \"%s\" quotes a secret", cause);
	free(cause);
}

TEST(connection_string_errors)
{
	bad_conn("", "empty", NULL);
	bad_conn("AccountName=a;AccountKey=not*base64*secretvalue",
	    "AccountKey: not valid base64", "secretvalue");
	bad_conn("AccountName=a;Bogus=1", "unknown key \"Bogus\"", NULL);
	bad_conn("AccountName=a;AccountKey:c2VjcmV0c2VjcmV0=x",
	    "part 2 has an unknown key", "c2VjcmV0c2VjcmV0");
	bad_conn("AccountName=a;c2VjcmV0c2VjcmV0", "part 2 is not Key=value",
	    "c2VjcmV0c2VjcmV0");
	bad_conn("AccountName=a;AccountName=b", "AccountName given twice",
	    NULL);
	bad_conn("DefaultEndpointsProtocol=ftp;AccountName=a;AccountKey=a2V5",
	    "DefaultEndpointsProtocol", NULL);
	bad_conn("AccountKey=a2V5", "AccountKey needs AccountName", NULL);
	bad_conn("AccountName=a", "without AccountKey", NULL);
	bad_conn("UseDevelopmentStorage=false", "only \"true\"", NULL);
	bad_conn("UseDevelopmentStorage=true;AccountName=x",
	    "AccountName cannot be combined", NULL);
	bad_conn("BlobEndpoint=ftp://x", "BlobEndpoint: not an http", NULL);
	bad_conn("BlobEndpoint=https://x/?sig=c2VjcmV0c2VjcmV0",
	    "must not have a query", "c2VjcmV0c2VjcmV0");
}

TEST(sas)
{
	struct bd_sas *s = NULL;
	char *cause = NULL, *msg;
	time_t now = 1704164645; /* 2024-01-02T03:04:05Z */

	ASSERT_INT_EQ(bd_sas_parse("https://acct.blob.core.windows.net/cont?"
	    "sv=2023-11-03&st=2024-01-01T00%3A00%3A00Z&se=2024-01-02T00:00:00Z"
	    "&sr=c&sp=rl&sig=c2VjcmV0%2Bc2lnbmF0dXJl#frag", &s, &cause), 0);
	ASSERT_STR_EQ(s->base, "https://acct.blob.core.windows.net/cont");
	ASSERT_STR_CONTAINS(s->query, "sig=");
	ASSERT(s->has_sig);
	ASSERT_STR_EQ(s->permissions, "rl");
	ASSERT_STR_EQ(s->resource, "c");
	ASSERT_STR_EQ(s->start_text, "2024-01-01T00:00:00Z");
	ASSERT_INT_EQ(s->expiry, 1704153600);
	ASSERT(bd_sas_allows(s, 'l'));
	ASSERT(!bd_sas_allows(s, 'w'));
	msg = bd_sas_explain(s, "r", now);
	ASSERT_STR_EQ(msg, "the SAS expired at 2024-01-02T00:00:00Z");
	free(msg);
	msg = bd_sas_explain(s, "w", 1704153600 - 10);
	ASSERT_STR_EQ(msg, "the SAS lacks write permission (sp=rl)");
	free(msg);
	ASSERT_NULL(bd_sas_explain(s, "rl", 1704153600 - 10));
	bd_sas_free(s);

	/* No query at all. */
	ASSERT_INT_EQ(bd_sas_parse("http://127.0.0.1:1/a/c", &s, &cause), 0);
	ASSERT_NULL(s->query);
	ASSERT(!s->has_sig);
	ASSERT(bd_sas_allows(s, 'w'));
	msg = bd_sas_explain(s, "r", now);
	ASSERT_STR_CONTAINS(msg, "no SAS signature");
	free(msg);
	bd_sas_free(s);

	/* A future start and an unreadable expiry. */
	ASSERT_INT_EQ(bd_sas_parse("http://h/c?st=2030-01-01&sig=x", &s,
	    &cause), 0);
	msg = bd_sas_explain(s, NULL, now);
	ASSERT_STR_EQ(msg, "the SAS is not valid until 2030-01-01T00:00:00Z");
	free(msg);
	bd_sas_free(s);
	ASSERT_INT_EQ(bd_sas_parse("http://h/c?se=tomorrow&sig=x", &s,
	    &cause), 0);
	ASSERT_INT_EQ(s->expiry, -1);
	msg = bd_sas_explain(s, NULL, now);
	ASSERT_STR_CONTAINS(msg, "cannot be read");
	free(msg);
	bd_sas_free(s);

	ASSERT_INT_EQ(bd_sas_parse("ftp://h/c?sig=c2VjcmV0", &s, &cause),
	    BD_EINVALID);
	ASSERT(strstr(cause, "c2VjcmV0") == NULL);
	free(cause);
	ASSERT_INT_EQ(bd_sas_parse("", &s, &cause), BD_EINVALID);
	free(cause);
}

TEST(times)
{
	time_t t;

	ASSERT_INT_EQ(bd_storage_parse_time("2024-01-02T03:04:05Z", &t), 0);
	ASSERT_INT_EQ(t, 1704164645);
	ASSERT_INT_EQ(bd_storage_parse_time("2024-01-02T03:04:05.1234567Z",
	    &t), 0);
	ASSERT_INT_EQ(t, 1704164645);
	ASSERT_INT_EQ(bd_storage_parse_time("2024-01-02T03:04Z", &t), 0);
	ASSERT_INT_EQ(t, 1704164640);
	ASSERT_INT_EQ(bd_storage_parse_time("2024-01-02", &t), 0);
	ASSERT_INT_EQ(t, 1704153600);
	ASSERT_INT_EQ(bd_storage_parse_time("2024-01-02T03:04:05", &t),
	    BD_EINVALID);
	ASSERT_INT_EQ(bd_storage_parse_time("2024-13-02", &t), BD_EINVALID);
	ASSERT_INT_EQ(bd_storage_parse_time("2024-01-02T03:04:05Zx", &t),
	    BD_EINVALID);
	ASSERT_INT_EQ(bd_storage_parse_time("", &t), BD_EINVALID);
}

TEST(base64)
{
	unsigned char *out;
	size_t n;
	char *s;

	s = bd_storage_base64((const unsigned char *)"hello", 5);
	ASSERT_STR_EQ(s, "aGVsbG8=");
	ASSERT_INT_EQ(bd_storage_unbase64(s, &out, &n), 0);
	ASSERT_INT_EQ(n, 5);
	ASSERT(memcmp(out, "hello", 5) == 0);
	free(out);
	free(s);
	ASSERT_INT_EQ(bd_storage_unbase64("", &out, &n), 0);
	ASSERT_INT_EQ(n, 0);
	free(out);
	ASSERT_INT_EQ(bd_storage_unbase64("aGVsbG8", &out, &n), BD_EINVALID);
	ASSERT_INT_EQ(bd_storage_unbase64("aG=sbG8=", &out, &n), BD_EINVALID);
	ASSERT_INT_EQ(bd_storage_unbase64("aGVs*G8=", &out, &n), BD_EINVALID);
	s = bd_storage_hmac((const unsigned char *)"key", 3,
	    "The quick brown fox jumps over the lazy dog");
	/* RFC 4231-style well-known value, in base64. */
	ASSERT_STR_EQ(s, "97yD9DBThCSxMpjmqm+xQ+9NWaFJRhdZl0edvC0aPNg=");
	free(s);
}

int
main(void)
{
	RUN(sdk_vectors);
	RUN(string_to_sign_shape);
	RUN(headers);
	RUN(connection_strings);
	RUN(connection_string_errors);
	RUN(sas);
	RUN(times);
	RUN(base64);
	return 0;
}
