/*
 * dkim_sign.h - DKIM signing (RFC 6376, RFC 8463), relaxed/relaxed, with
 * OpenSSL: rsa-sha256 and ed25519-sha256.
 *
 * Why not libopendkim: 2.11.0~beta2 frees the private key of a signing
 * handle only for RSA (dkim_free() checks sig_keytype), so every
 * ed25519-sha256 signature leaks its EVP_PKEY, BIO and output buffer
 * (about 530 bytes, seen with AddressSanitizer).  Relaxed/relaxed signing
 * is small and fully specified; libopendkim, dkimpy and opendkim-testmsg
 * verify what this makes (unit and integration tests).
 *
 * Pure apart from OpenSSL: no session, no libopendkim.  A key is
 * read-only once loaded and may sign in many threads at once; a signer
 * belongs to one thread at a time.
 */
#ifndef SLUICE_DKIM_SIGN_H
#define SLUICE_DKIM_SIGN_H

#include <stddef.h>
#include <stdint.h>

struct dkimf_key;
struct dkimf_signer;

enum dkimf_key_alg {
	DKIMF_ALG_RSA_SHA256 = 0,	/* RSASSA-PKCS1-v1_5 over SHA-256 */
	DKIMF_ALG_ED25519_SHA256	/* Ed25519 over the SHA-256 hash (RFC 8463) */
};

/* A header field of the message: name and value as the filter API gives them. */
struct dkimf_field {
	const char	*name;		/* not NUL-terminated: namelen bytes */
	size_t		 namelen;
	const char	*value;		/* NUL-terminated, folding kept */
};

/*
 * Read a private key file: PEM, unencrypted, RSA of at least min_rsa_bits
 * or ed25519; one test signature proves it signs.  NULL with a sentence
 * naming the file in err.
 */
struct dkimf_key *dkimf_key_load_file(const char *selector, const char *path,
		    unsigned int min_rsa_bits, char *err, size_t errlen);
void		 dkimf_key_free(struct dkimf_key *key);
enum dkimf_key_alg dkimf_key_alg(const struct dkimf_key *key);
const char	*dkimf_key_algorithm(const struct dkimf_key *key);	/* "rsa-sha256", ... */
unsigned int	 dkimf_key_bits(const struct dkimf_key *key);
const char	*dkimf_key_selector(const struct dkimf_key *key);

/*
 * Start signing as domain: the fields named in sign_headers (every
 * instance, and From once more so none can be added) are canonicalized
 * now.  t is the signature time (t=).  NULL when out of memory.
 */
struct dkimf_signer *dkimf_signer_new(const struct dkimf_key *key, const char *domain,
		    uint64_t t, char *const *sign_headers, size_t nsign_headers,
		    const struct dkimf_field *fields, size_t nfields);
/* A body chunk, dot-unstuffed, CRLF line ends. */
void		 dkimf_signer_body(struct dkimf_signer *signer, const unsigned char *chunk,
		    size_t len);
/*
 * The DKIM-Signature value (without the name), folded with CRLF TAB;
 * caller frees.  NULL with err set when signing fails.
 */
char		*dkimf_signer_finish(struct dkimf_signer *signer, char *err, size_t errlen);
void		 dkimf_signer_free(struct dkimf_signer *signer);

/* --- The canonicalizations, for tests ----------------------------------- */

/* Relaxed body canonicalization (RFC 6376 3.4.4), streamed. */
struct dkimf_body_canon {
	void		(*emit)(void *arg, const char *data, size_t len);
	void		*arg;
	size_t		 empty_lines;	/* CRLFs of empty lines not yet emitted */
	size_t		 line_len;	/* bytes emitted on the current line */
	int		 wsp;		/* white space seen, not yet emitted */
	int		 cr;		/* a CR seen, its LF not yet */
};

void		 dkimf_body_canon_init(struct dkimf_body_canon *bc,
		    void (*emit)(void *, const char *, size_t), void *arg);
void		 dkimf_body_canon_feed(struct dkimf_body_canon *bc, const unsigned char *data,
		    size_t len);
void		 dkimf_body_canon_end(struct dkimf_body_canon *bc);

/*
 * Relaxed header canonicalization (RFC 6376 3.4.2) of one field into out
 * (at least namelen + strlen(value) + 4 bytes): "name:value" lowercased
 * name, unfolded, white space runs as one SP, none at either end of the
 * value; crlf adds the CRLF.  Returns the length.
 */
size_t		 dkimf_header_canon(const char *name, size_t namelen, const char *value,
		    int crlf, char *out);

#endif /* SLUICE_DKIM_SIGN_H */
