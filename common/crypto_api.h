/* SPDX-License-Identifier: MIT */
#ifndef BD_CRYPTO_API_H
#define BD_CRYPTO_API_H

/*
 * OpenSSL's libcrypto, loaded on first use through lazylib, as libcurl is
 * (curl_api.h): linked normally it adds ~2 ms to every start of batchd,
 * and only storage signing, MD5 checks and base64 need it.  Include this
 * instead of the OpenSSL headers; each call below loads the library the
 * first time.  A libcrypto that cannot be loaded is a broken installation
 * (the package depends on it): batchd says so and aborts.
 */

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

struct bd_crypto_api {
	__typeof__(HMAC) *hmac;
	__typeof__(EVP_sha256) *sha256;
	__typeof__(EVP_md5) *md5;
	__typeof__(EVP_Digest) *digest;
	__typeof__(EVP_DigestInit_ex) *digest_init_ex;
	__typeof__(EVP_DigestUpdate) *digest_update;
	__typeof__(EVP_DigestFinal_ex) *digest_final_ex;
	__typeof__(EVP_MD_CTX_new) *md_ctx_new;
	__typeof__(EVP_MD_CTX_free) *md_ctx_free;
	__typeof__(EVP_EncodeBlock) *encode_block;
	__typeof__(EVP_DecodeBlock) *decode_block;
	__typeof__(OPENSSL_cleanse) *cleanse;
};

/* Filled on first use; read through the macros below. */
const struct bd_crypto_api *bd_crypto_api(void);

#undef OPENSSL_cleanse
#define HMAC (*bd_crypto_api()->hmac)
#define EVP_sha256 (*bd_crypto_api()->sha256)
#define EVP_md5 (*bd_crypto_api()->md5)
#define EVP_Digest (*bd_crypto_api()->digest)
#define EVP_DigestInit_ex (*bd_crypto_api()->digest_init_ex)
#define EVP_DigestUpdate (*bd_crypto_api()->digest_update)
#define EVP_DigestFinal_ex (*bd_crypto_api()->digest_final_ex)
#define EVP_MD_CTX_new (*bd_crypto_api()->md_ctx_new)
#define EVP_MD_CTX_free (*bd_crypto_api()->md_ctx_free)
#define EVP_EncodeBlock (*bd_crypto_api()->encode_block)
#define EVP_DecodeBlock (*bd_crypto_api()->decode_block)
#define OPENSSL_cleanse (*bd_crypto_api()->cleanse)

#endif
