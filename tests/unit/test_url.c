/* SPDX-License-Identifier: MIT */
/*
 * Tests of common/url: SAS redaction, file URLs and blob URLs.
 */
#include <errno.h>
#include <stdlib.h>

#include "unit.h"
#include "url.h"

/* Redacts text and compares with want. */
static void
check_redact(const char *text, const char *want)
{
	char *got = bd_url_redact(text);

	ASSERT_STR_EQ(got, want);
	free(got);
}

TEST(redact_positions)
{
	check_redact(
	    "https://a.blob.core.windows.net/c/b?sv=2020&sig=abc%2Fdef&se=2030",
	    "https://a.blob.core.windows.net/c/b?sv=2020&sig=REDACTED&se=2030");
	check_redact("https://a/c?sig=abc%2Bdef%3D&sv=1",
	    "https://a/c?sig=REDACTED&sv=1");
	check_redact("https://a/c?sv=1&sp=r&sig=abc+/def=",
	    "https://a/c?sv=1&sp=r&sig=REDACTED");
	check_redact("https://a/c?sv=1&sig=abc#frag",
	    "https://a/c?sv=1&sig=REDACTED#frag");
}

TEST(redact_case_and_text)
{
	check_redact("https://a/c?SIG=ABC&se=1",
	    "https://a/c?SIG=REDACTED&se=1");
	check_redact("https://a/c?Sig=ABC", "https://a/c?Sig=REDACTED");
	check_redact("download of https://a/x?sig=s1 failed; retry "
	    "\"https://b/y?sv=1&sig=s2\" (https://c/z?sig=s3)",
	    "download of https://a/x?sig=REDACTED failed; retry "
	    "\"https://b/y?sv=1&sig=REDACTED\" (https://c/z?sig=REDACTED)");
	check_redact("a=https://a/x?sig=one\nb=https://b/y?sig=two",
	    "a=https://a/x?sig=REDACTED\nb=https://b/y?sig=REDACTED");
	check_redact("<Url>https://a/x?sv=1&amp;sig=xyz</Url>",
	    "<Url>https://a/x?sv=1&amp;sig=REDACTED</Url>");
	check_redact("sig=top", "sig=REDACTED");
}

TEST(redact_encoded_nested)
{
	check_redact("https://a/copy?src=https%3A%2F%2Fb%2Fc%3Fsv%3D1"
	    "%26sig%3Dsecret%26se%3D2&x=1",
	    "https://a/copy?src=https%3A%2F%2Fb%2Fc%3Fsv%3D1"
	    "%26sig%3DREDACTED%26se%3D2&x=1");
	check_redact("https://a/copy?src=https%3a%2f%2fb%2fc%3fsig%3dsecret",
	    "https://a/copy?src=https%3a%2f%2fb%2fc%3fsig%3dREDACTED");
}

TEST(redact_nothing)
{
	char *p;

	check_redact("", "");
	check_redact("https://a/c?sv=1&se=2", "https://a/c?sv=1&se=2");
	check_redact("no url here", "no url here");
	check_redact("https://a/c?signature=x&xsig=y&sigma=z",
	    "https://a/c?signature=x&xsig=y&sigma=z");
	check_redact("https://a/design=1", "https://a/design=1");
	check_redact("trailing sig", "trailing sig");
	p = bd_url_redact(NULL);
	ASSERT_NULL(p);
}

TEST(redact_empty_value)
{
	check_redact("https://a/c?sig=&se=1", "https://a/c?sig=REDACTED&se=1");
	check_redact("https://a/c?sig=", "https://a/c?sig=REDACTED");
}

TEST(schemes)
{
	ASSERT(bd_url_is_file("file:///tmp/x"));
	ASSERT(bd_url_is_file("FILE:///tmp/x"));
	ASSERT(!bd_url_is_file("https://a/b"));
	ASSERT(!bd_url_is_file("files:///x"));
	ASSERT(!bd_url_is_file(NULL));
	ASSERT(bd_url_is_http("http://a/b"));
	ASSERT(bd_url_is_http("HTTPS://a/b"));
	ASSERT(!bd_url_is_http("https:/a"));
	ASSERT(!bd_url_is_http("ftp://a/b"));
	ASSERT(!bd_url_is_http("file:///a"));
}

/* Parses url as a file URL and expects path, or error when path is NULL. */
static void
check_file(const char *url, const char *path)
{
	char *got = (char *)1;
	int error = bd_url_file_path(url, &got);

	if (path == NULL) {
		ASSERT_INT_EQ(error, -EINVAL);
		ASSERT_NULL(got);
		return;
	}
	ASSERT_INT_EQ(error, 0);
	ASSERT_STR_EQ(got, path);
	free(got);
}

TEST(file_paths)
{
	check_file("file:///abs/path", "/abs/path");
	check_file("file://localhost/abs/path", "/abs/path");
	check_file("file://LOCALHOST/abs", "/abs");
	check_file("file:/abs", "/abs");
	check_file("file:///a%20b/c%2Fd%25", "/a b/c/d%");
	check_file("file:///dir/x?query#frag", "/dir/x");
	check_file("file:///", "/");
	check_file("file:///caf%C3%A9", "/caf\xc3\xa9");
	check_file("file://otherhost/abs", NULL);
	check_file("file://localhost", NULL);
	check_file("file:relative/path", NULL);
	check_file("file:///bad%2", NULL);
	check_file("file:///bad%", NULL);
	check_file("file:///bad%zz", NULL);
	check_file("file:///nul%00x", NULL);
	check_file("https://a/b", NULL);
	check_file("", NULL);
}

/* Appends name to container and expects want. */
static void
check_append(const char *container, const char *name, const char *want)
{
	char *got = bd_url_append_path(container, name);

	ASSERT_STR_EQ(got, want);
	free(got);
}

TEST(append_path)
{
	check_append("https://a.blob.core.windows.net/out?sv=1&sig=x%2F",
	    "dir/file name.txt",
	    "https://a.blob.core.windows.net/out/dir/file%20name.txt"
	    "?sv=1&sig=x%2F");
	check_append("https://a/out", "x.txt", "https://a/out/x.txt");
	check_append("https://a/out/", "x.txt", "https://a/out/x.txt");
	check_append("https://a/out/?sv=1", "x", "https://a/out/x?sv=1");
	check_append("https://a/out", "a?b#c&d=e%f+g",
	    "https://a/out/a%3Fb%23c%26d%3De%25f%2Bg");
	check_append("https://a/out", "-._~AZaz09/",
	    "https://a/out/-._~AZaz09/");
	check_append("https://a/out?q", "caf\xc3\xa9",
	    "https://a/out/caf%C3%A9?q");
	check_append("https://a/out", "", "https://a/out/");
}

TEST(encode)
{
	char *p = bd_url_encode("a b/c", false);

	ASSERT_STR_EQ(p, "a%20b%2Fc");
	free(p);
	p = bd_url_encode("a b/c", true);
	ASSERT_STR_EQ(p, "a%20b/c");
	free(p);
}

int
main(void)
{
	RUN(redact_positions);
	RUN(redact_case_and_text);
	RUN(redact_encoded_nested);
	RUN(redact_nothing);
	RUN(redact_empty_value);
	RUN(schemes);
	RUN(file_paths);
	RUN(append_path);
	RUN(encode);
	return 0;
}
