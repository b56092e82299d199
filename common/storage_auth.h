/* SPDX-License-Identifier: MIT */
#ifndef BD_STORAGE_AUTH_H
#define BD_STORAGE_AUTH_H

/*
 * Azure Storage credentials and endpoints: connection strings (including
 * Azurite's UseDevelopmentStorage=true) and Shared Key signing of
 * requests for the Blob, Queue and Table services.  SAS URLs are split up
 * by sas.h, included here for the callers of both.
 *
 * Nothing here talks to the network.  Error texts (char **cause, caller
 * frees) name the offending key and the reason but never contain an
 * account key or a SAS signature.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "sas.h"

/* The x-ms-version sent on every request (Azurite 3.x accepts it). */
#define BD_STORAGE_API_VERSION	"2023-11-03"

/* Azurite's well-known development account. */
#define BD_STORAGE_DEV_ACCOUNT	"devstoreaccount1"
#define BD_STORAGE_DEV_KEY \
	"Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

enum bd_storage_service {
	BD_STORAGE_BLOB,
	BD_STORAGE_QUEUE,
	BD_STORAGE_TABLE,
};

/*
 * An account: where its services are and how to authorize.  Endpoints are
 * base URLs without a trailing '/' (NULL when the connection string gives
 * no way to form one).  With a key, requests are signed with Shared Key;
 * with sas (a query without '?'), it is appended to every URL instead.  A
 * connection string may give both; users of the account then prefer the
 * SAS and never send both.  All fields are owned by the struct and freed
 * by bd_storage_account_free().
 */
struct bd_storage_account {
	char *name;			/* AccountName, or NULL */
	unsigned char *key;		/* decoded AccountKey, or NULL */
	size_t key_len;
	char *blob_endpoint;
	char *queue_endpoint;
	char *table_endpoint;
	char *sas;			/* SharedAccessSignature, or NULL */
};

/*
 * Parses an Azure Storage connection string ("Key=value;..." with the
 * keys DefaultEndpointsProtocol, AccountName, AccountKey, BlobEndpoint,
 * QueueEndpoint, TableEndpoint, EndpointSuffix, SharedAccessSignature and
 * UseDevelopmentStorage; keys in any case, unknown keys rejected).
 * UseDevelopmentStorage=true gives Azurite's account on 127.0.0.1 (ports
 * 10000, 10001, 10002; DevelopmentStorageProxyUri is not supported).
 * Returns 0 and *out (free with bd_storage_account_free()), or
 * BD_EINVALID with *cause naming the key and the reason.
 */
int bd_storage_account_parse(const char *conn, struct bd_storage_account **out,
    char **cause);

/*
 * An account from its parts: name, base64 key (may be NULL) and the
 * service endpoints (any may be NULL).  Returns 0 and *out, or BD_EINVALID
 * with *cause for a key that is not base64.
 */
int bd_storage_account_new(const char *name, const char *key_base64,
    const char *blob_endpoint, const char *queue_endpoint,
    const char *table_endpoint, struct bd_storage_account **out, char **cause);

/* The endpoint of service in a, or NULL. */
const char *bd_storage_account_endpoint(const struct bd_storage_account *a,
    enum bd_storage_service service);

/* Frees a; NULL is allowed. */
void bd_storage_account_free(struct bd_storage_account *a);

/*
 * Percent-decodes n bytes of s, a URL query component ('+' as a space when
 * plus); a bad escape is kept as it is and a NUL byte becomes '?'.  Caller
 * frees.
 */
char *bd_storage_decode(const char *s, size_t n, bool plus);

/*
 * Parses an ISO 8601 UTC time as SAS and Azure use it
 * ("2024-01-02T03:04:05Z", fractional seconds and "YYYY-MM-DD" allowed).
 * Returns 0 and *out, or BD_EINVALID.
 */
int bd_storage_parse_time(const char *s, time_t *out);

/*
 * The headers every request to service needs, plus Authorization when a
 * has a key and no sas is in use: the caller's own headers ("Name: value",
 * copied), then "x-ms-date: <now>" and "x-ms-version:
 * BD_STORAGE_API_VERSION" unless given, then the Shared Key signature over
 * method, url (with its query), content_length (the body's length, 0 for
 * none) and range (the bytes the transfer asks for, range_start -1 for no
 * Range header; http.h sends it as "Range: bytes=START-END").  When sign is
 * false (SAS or anonymous requests) no Authorization is added.  Returns 0
 * and *out (n_out lines, free with bd_storage_headers_free()), or
 * BD_EINVALID with *cause for a URL or header it cannot sign.
 */
int bd_storage_headers(const struct bd_storage_account *a,
    enum bd_storage_service service, bool sign, const char *method,
    const char *url, int64_t content_length, int64_t range_start,
    int64_t range_end, const char *const *headers, size_t n_headers,
    time_t now, char ***out, size_t *n_out, char **cause);

/* Frees n header lines from bd_storage_headers(). */
void bd_storage_headers_free(char **lines, size_t n);

/*
 * The Shared Key string-to-sign for a request, exposed for tests: the same
 * inputs as bd_storage_headers() with the headers already complete
 * (x-ms-date included).  Returns 0 and *out (caller frees), or
 * BD_EINVALID.
 */
int bd_storage_string_to_sign(const char *account,
    enum bd_storage_service service, const char *method, const char *url,
    int64_t content_length, const char *range, const char *const *headers,
    size_t n_headers, char **out, char **cause);

/*
 * Base64 of HMAC-SHA256(key, text), as Shared Key uses it.  Caller frees.
 */
char *bd_storage_hmac(const unsigned char *key, size_t key_len,
    const char *text);

/*
 * Base64 encoding and decoding (standard alphabet, padded).  decode
 * returns 0 and *out and *out_len (caller frees), or BD_EINVALID.
 */
char *bd_storage_base64(const unsigned char *data, size_t len);
int bd_storage_unbase64(const char *s, unsigned char **out, size_t *out_len);

#endif
