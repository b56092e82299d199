/* SPDX-License-Identifier: MIT */
/* libcrypto's entry points, resolved on first use (see crypto_api.h). */
#include "crypto_api.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "lazylib.h"

static struct bd_crypto_api crypto;

#define CRYPTO_SYMBOL(field, name) { name, (void **)&crypto.field }

static const struct bd_lazylib_symbol crypto_symbols[] = {
	CRYPTO_SYMBOL(hmac, "HMAC"),
	CRYPTO_SYMBOL(sha256, "EVP_sha256"),
	CRYPTO_SYMBOL(md5, "EVP_md5"),
	CRYPTO_SYMBOL(digest, "EVP_Digest"),
	CRYPTO_SYMBOL(digest_init_ex, "EVP_DigestInit_ex"),
	CRYPTO_SYMBOL(digest_update, "EVP_DigestUpdate"),
	CRYPTO_SYMBOL(digest_final_ex, "EVP_DigestFinal_ex"),
	CRYPTO_SYMBOL(md_ctx_new, "EVP_MD_CTX_new"),
	CRYPTO_SYMBOL(md_ctx_free, "EVP_MD_CTX_free"),
	CRYPTO_SYMBOL(encode_block, "EVP_EncodeBlock"),
	CRYPTO_SYMBOL(decode_block, "EVP_DecodeBlock"),
	CRYPTO_SYMBOL(cleanse, "OPENSSL_cleanse"),
	{ NULL, NULL },
};

static struct bd_lazylib crypto_lib = {
	"libcrypto.so.3", crypto_symbols, 0, NULL,
};

static pthread_once_t crypto_once = PTHREAD_ONCE_INIT;

/* Loads libcrypto once per process, whichever thread asks first. */
static void
crypto_load(void)
{
	const char *cause;

	if (bd_lazylib_load(&crypto_lib, &cause) < 0) {
		fprintf(stderr, "batchd: %s (is OpenSSL's libcrypto 3 "
		    "installed?)\n", cause);
		abort();
	}
}

const struct bd_crypto_api *
bd_crypto_api(void)
{
	/* Hashing also runs on the thread pool, so the first load may come
	 * from any thread. */
	pthread_once(&crypto_once, crypto_load);
	return &crypto;
}
