/* SPDX-License-Identifier: MIT */
#ifndef BD_SAS_H
#define BD_SAS_H

/*
 * Shared access signatures (SAS): a SAS URL split into base and query,
 * and what a person needs to know when storage refuses one.  Nothing here
 * quotes the signature; error texts (char **cause, caller frees) name the
 * reason only.  storage_auth.h includes this header.
 */

#include <stdbool.h>
#include <time.h>

/*
 * A SAS URL split up: base is the URL up to the '?' (no fragment), query
 * what follows it (NULL when there is none).  The recognised parameters
 * are percent-decoded copies; expiry is se as a time, or -1.  Owned by the
 * struct; freed with bd_sas_free().
 */
struct bd_sas {
	char *base;
	char *query;
	bool has_sig;			/* a non-empty sig= is present */
	char *permissions;		/* sp, or NULL */
	char *expiry_text;		/* se, or NULL */
	time_t expiry;			/* se as UTC seconds, or -1 */
	char *start_text;		/* st, or NULL */
	time_t start;			/* st as UTC seconds, or -1 */
	char *resource;			/* sr (c, b...), or NULL */
	char *services;			/* ss of an account SAS, or NULL */
};

/*
 * Splits url (http or https, with or without a query).  Returns 0 and
 * *out, or BD_EINVALID with *cause (never quoting the signature).
 */
int bd_sas_parse(const char *url, struct bd_sas **out, char **cause);

/* Frees s; NULL is allowed. */
void bd_sas_free(struct bd_sas *s);

/*
 * Whether the SAS grants permission letter perm ('r' read, 'w' write,
 * 'l' list, 'c' create, 'a' add, 'd' delete).  True when the SAS has no
 * sp (a stored access policy may grant it; the server decides).
 */
bool bd_sas_allows(const struct bd_sas *s, char perm);

/*
 * Why the SAS cannot serve a request that needs the permission letters in
 * perms at time now, as text a person can act on ("the SAS expired at
 * 2024-01-02T03:04:05Z", "the SAS lacks list permission (sp=r)", "the SAS
 * is not valid until ..."), or NULL when nothing is visibly wrong.  perms
 * may be NULL or "".  Caller frees.
 */
char *bd_sas_explain(const struct bd_sas *s, const char *perms, time_t now);

#endif
