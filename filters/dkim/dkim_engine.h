/*
 * dkim_engine.h - one message's DKIM work behind a small interface: one
 * libopendkim handle per filter instance, and one message object per
 * transaction that collects header fields, verifies up to max_signatures
 * DKIM-Signature fields (libopendkim) and signs with up to two keys
 * (dkim_sign.c).
 *
 * No sluice session in here: the key lookup is a function the caller
 * passes (the filter asks its resolver; the unit test a table), so the
 * whole verify and sign path runs in a unit test.  Signing itself is
 * dkim_sign.c's (OpenSSL), see there why.
 *
 * Threads.  dkimf_engine_new and dkimf_engine_free run in the main
 * thread; the engine is read-only in between and may be used by many
 * threads.  A dkimf_msg belongs to one thread at a time: the
 * filter hands it to a pool thread for dkimf_msg_eom() (or a large body
 * chunk) and takes it back in the done callback.
 */
#ifndef SLUICE_DKIM_ENGINE_H
#define SLUICE_DKIM_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "dkim_policy.h"
#include "dkim_sign.h"

#define DKIMF_MAX_KEYS		2		/* signing keys per instance */
#define DKIMF_HEADER_MAX	(1024 * 1024)	/* header bytes kept per message */

struct dkimf_engine;
struct dkimf_msg;

struct dkimf_engine_config {
	unsigned int	 min_key_bits;	/* RSA keys below are not accepted (1024..4096) */
	size_t		 max_signatures;/* DKIM-Signature fields verified per message */
	char *const	*sign_headers;	/* header names to sign (copied) */
	size_t		 nsign_headers;	/* how many */
	uint64_t	 fixed_time;	/* t= of our signatures; 0 = now (tests set it) */
};

/*
 * The key lookup: write the TXT record of name (selector._domainkey.domain)
 * as a C string into buf (buflen bytes, NUL included), or say why not in
 * why.  Runs in the thread calling dkimf_msg_eom(); may block.
 */
typedef enum dkimf_lookup (*dkimf_lookup_fn)(void *arg, const char *name, char *buf,
		    size_t buflen, char *why, size_t whylen);

/* One verified signature, its tag values made safe for logs and A-R. */
struct dkimf_sig_result {
	enum dkimf_result	 result;	/* RFC 8601 result */
	const char		*reason;	/* static text */
	char			 props[600];	/* "header.d=... header.s=... header.a=... header.b=..." */
	char			 domain[254];	/* d= lowercased if it is a host name, else "" */
	char			 why[96];	/* lookup detail for logs, or "" */
	unsigned int		 keybits;	/* key size, 0 if unknown */
};

/* NULL with a sentence in err when the library refuses the settings. */
struct dkimf_engine *dkimf_engine_new(const struct dkimf_engine_config *config, char *err,
		    size_t errlen);
void		 dkimf_engine_free(struct dkimf_engine *engine);
/* "rsa-sha256 ed25519-sha256", what this libopendkim can verify. */
const char	*dkimf_engine_algorithms(const struct dkimf_engine *engine);

/* A new message; verify says whether its signatures are to be checked. */
struct dkimf_msg *dkimf_msg_new(struct dkimf_engine *engine, uint64_t id, int verify);
void		 dkimf_msg_free(struct dkimf_msg *msg);

/* One header field as the API gives it (value without the space after ':'). */
void		 dkimf_msg_header(struct dkimf_msg *msg, const char *name, const char *value);

/* The From domain (lowercased) when the message has exactly one From field
 * with one mailbox, else NULL.  Valid for the message's life. */
const char	*dkimf_msg_from_domain(struct dkimf_msg *msg);

/*
 * End of the header section: start verifying (if asked and signed), and
 * signing as sign_domain with keys (nkeys may be 0).  Header copies are
 * released.  Cheap: no key lookup, no public key operation.
 */
void		 dkimf_msg_eoh(struct dkimf_msg *msg, const char *sign_domain,
		    struct dkimf_key *const *keys, size_t nkeys);

/*
 * Key prefetch.  After dkimf_msg_eoh(), the names (selector._domainkey.
 * domain) of the keys the signatures want and nobody answered yet, at
 * most max; valid until the message is freed.  An answer handed in with
 * dkimf_msg_key_answer() is used by dkimf_msg_eom() instead of asking;
 * text is the TXT record for DKIMF_LOOKUP_OK.  Not while dkimf_msg_eom()
 * runs (dkimf_msg_body() may run meanwhile: they touch different fields).
 */
size_t		 dkimf_msg_key_names(const struct dkimf_msg *msg, const char **names, size_t max);
void		 dkimf_msg_key_answer(struct dkimf_msg *msg, const char *name,
		    enum dkimf_lookup status, const char *text, const char *why);

/* Work still to do: 1 when a verify handle or a signer is open. */
int		 dkimf_msg_active(const struct dkimf_msg *msg);
/* Handles a body byte is hashed by (for the caller's inline/offload choice). */
size_t		 dkimf_msg_cost(const struct dkimf_msg *msg);

/* A body chunk, dot-unstuffed with CRLF line ends. */
void		 dkimf_msg_body(struct dkimf_msg *msg, const unsigned char *chunk, size_t len);

/*
 * End of message: the keys not prefetched are asked through lookup
 * (blocking; NULL: they count as temperror), then verify and sign.  Then
 * read the results below.
 */
void		 dkimf_msg_eom(struct dkimf_msg *msg, dkimf_lookup_fn lookup, void *arg);

/* DKIM-Signature fields seen, and those not verified (over max_signatures). */
size_t		 dkimf_msg_signatures_seen(const struct dkimf_msg *msg);
size_t		 dkimf_msg_signatures_skipped(const struct dkimf_msg *msg);
/* Distinct keys answered (prefetched or asked by dkimf_msg_eom()). */
size_t		 dkimf_msg_lookups(const struct dkimf_msg *msg);

/*
 * Verification: 0 = not verified (not asked), 1 = verified (results
 * below; none means unsigned), -1 = the message could not be verified at
 * all (verify_error says why; header section too large, library error).
 */
int		 dkimf_msg_verified(const struct dkimf_msg *msg);
const char	*dkimf_msg_verify_error(const struct dkimf_msg *msg);
size_t		 dkimf_msg_results(const struct dkimf_msg *msg);
const struct dkimf_sig_result *dkimf_msg_result(const struct dkimf_msg *msg, size_t index);

/*
 * Signing: the number of keys signing was attempted with, and for each
 * the DKIM-Signature value (folded with CRLF TAB, without the name) or
 * NULL with sign_error saying why.
 */
size_t		 dkimf_msg_signing(const struct dkimf_msg *msg);
const char	*dkimf_msg_signature(const struct dkimf_msg *msg, size_t index);
const char	*dkimf_msg_sign_error(const struct dkimf_msg *msg, size_t index);
const struct dkimf_key *dkimf_msg_sign_key(const struct dkimf_msg *msg, size_t index);

#endif /* SLUICE_DKIM_ENGINE_H */
