/*
 * dkim_sign.c - DKIM signing with OpenSSL, relaxed/relaxed, rsa-sha256
 * and ed25519-sha256; the key files; the two relaxed canonicalizations.
 * See dkim_sign.h for why libopendkim does not sign here.
 *
 * What is signed: the fields named in sign_headers, every instance of
 * each (h= lists a name once per instance, and a verifier takes them from
 * the bottom up, RFC 6376 5.4.2), plus From once more, so no From can be
 * added above without breaking the signature.  The body hash streams; the
 * field canonicalization is done at the start, the fields do not change.
 */
#include "autoconf.h"

#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "dkim_policy.h"
#include "dkim_sign.h"

#define KEYFILE_MAX	(64 * 1024)	/* largest key file read */
#define RSA_BITS_MAX	8192		/* larger keys cost seconds per message */
#define LINE_WRAP	76		/* fold the signature field near here */
#define B64_CHUNK	70		/* b= characters per folded line */

struct dkimf_key {
	char			*selector;	/* s= */
	EVP_PKEY		*pkey;		/* read-only once loaded */
	enum dkimf_key_alg	 alg;
	unsigned int		 bits;
};

/* A growing byte buffer; on allocation failure it stays failed. */
struct sbuf {
	char		*p;
	size_t		 len, cap;
	int		 failed;
};

struct dkimf_signer {
	const struct dkimf_key	*key;		/* the instance's, outlives the signer */
	char			*domain;	/* d= */
	uint64_t		 t;		/* t= */
	struct sbuf		 hdata;		/* canonicalized signed fields, CRLF each */
	struct sbuf		 hlist;		/* h= names joined by ':' */
	EVP_MD_CTX		*body;		/* the body hash */
	struct dkimf_body_canon	 bc;
};

static int	 key_no_password(char *, int, int, void *);
static char	*key_read(const char *, size_t *, char *, size_t);
static int	 key_parse(struct dkimf_key *, const char *, size_t, const char *,
		    unsigned int, char *, size_t);
static int	 key_sign(const struct dkimf_key *, const unsigned char *, size_t,
		    unsigned char **, size_t *);
static void	 sbuf_add(struct sbuf *, const void *, size_t);
static void	 sbuf_str(struct sbuf *, const char *);
static void	 signer_fields(struct dkimf_signer *, char *const *, size_t,
		    const struct dkimf_field *, size_t);
static void	 signer_body_emit(void *, const char *, size_t);
static char	*signer_b64(const unsigned char *, size_t);
static void	 signer_prefix(struct dkimf_signer *, struct sbuf *, const char *);

/* --- Keys ------------------------------------------------------------------ */

/* Encrypted keys are refused, never prompted for. */
static int
key_no_password(char *buf, int size, int rwflag, void *arg)
{
	return -1;
}

/* The file's bytes, NUL-terminated; NULL with a sentence in err. */
static char *
key_read(const char *path, size_t *lenp, char *err, size_t errlen)
{
	char		*buf;
	struct stat	 st;
	ssize_t		 n;
	size_t		 len = 0;
	int		 fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
		snprintf(err, errlen, "key_file %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
	    st.st_size > KEYFILE_MAX) {
		snprintf(err, errlen, "key_file %s: not a regular file of 1 to %d bytes", path,
		    KEYFILE_MAX);
		close(fd);
		return NULL;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		close(fd);
		return NULL;
	}
	while (len < (size_t)st.st_size &&
	    (n = read(fd, buf + len, (size_t)st.st_size - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = '\0';
	*lenp = len;
	return buf;
}

static int
key_parse(struct dkimf_key *k, const char *pem, size_t len, const char *path,
    unsigned int min_bits, char *err, size_t errlen)
{
	BIO	*bio;
	int	 id = 0;

	if ((bio = BIO_new_mem_buf(pem, (int)len)) != NULL)
		k->pkey = PEM_read_bio_PrivateKey(bio, NULL, key_no_password, NULL);
	BIO_free(bio);
	ERR_clear_error();
	if (k->pkey != NULL)
		id = EVP_PKEY_get_base_id(k->pkey);
	if (id != EVP_PKEY_RSA && id != EVP_PKEY_ED25519) {
		snprintf(err, errlen, "key_file %s: not an unencrypted RSA or ed25519 private key "
		    "in PEM form", path);
		return -1;
	}
	k->alg = id == EVP_PKEY_RSA ? DKIMF_ALG_RSA_SHA256 : DKIMF_ALG_ED25519_SHA256;
	k->bits = (unsigned int)EVP_PKEY_get_bits(k->pkey);
	if (k->alg == DKIMF_ALG_RSA_SHA256 && (k->bits < min_bits || k->bits > RSA_BITS_MAX)) {
		snprintf(err, errlen, "key_file %s: RSA key of %u bits, min_key_bits is %u and "
		    "at most %d are used", path, k->bits, min_bits, RSA_BITS_MAX);
		return -1;
	}
	return 0;
}

struct dkimf_key *
dkimf_key_load_file(const char *selector, const char *path, unsigned int min_bits, char *err,
    size_t errlen)
{
	struct dkimf_key	*k;
	char			 name[300], *pem;
	unsigned char		*sig = NULL;
	size_t			 len = 0, siglen;
	int			 rc;

	if (dkimf_key_name(selector, "example.org", name, sizeof(name)) == -1) {
		snprintf(err, errlen, "selector \"%.64s\" is not a DNS label", selector);
		return NULL;
	}
	if ((k = calloc(1, sizeof(*k))) == NULL || (k->selector = strdup(selector)) == NULL) {
		free(k);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if ((pem = key_read(path, &len, err, errlen)) == NULL) {
		dkimf_key_free(k);
		return NULL;
	}
	rc = key_parse(k, pem, len, path, min_bits, err, errlen);
	explicit_bzero(pem, len);
	free(pem);
	if (rc == 0 && key_sign(k, (const unsigned char *)"key check", 9, &sig, &siglen) == -1) {
		snprintf(err, errlen, "key_file %s: OpenSSL cannot sign with it", path);
		rc = -1;
	}
	free(sig);
	if (rc == -1) {
		dkimf_key_free(k);
		return NULL;
	}
	return k;
}

void
dkimf_key_free(struct dkimf_key *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->pkey);
	free(k->selector);
	free(k);
}

enum dkimf_key_alg
dkimf_key_alg(const struct dkimf_key *k)
{
	return k->alg;
}

const char *
dkimf_key_algorithm(const struct dkimf_key *k)
{
	return k->alg == DKIMF_ALG_ED25519_SHA256 ? "ed25519-sha256" : "rsa-sha256";
}

unsigned int
dkimf_key_bits(const struct dkimf_key *k)
{
	return k->bits;
}

const char *
dkimf_key_selector(const struct dkimf_key *k)
{
	return k->selector;
}

/*
 * Sign data: RSA signs it with SHA-256; Ed25519 signs its SHA-256 hash
 * (RFC 8463 3).  *sig is the caller's to free.  0, or -1.
 */
static int
key_sign(const struct dkimf_key *k, const unsigned char *data, size_t len,
    unsigned char **sig, size_t *siglen)
{
	EVP_MD_CTX	*ctx;
	unsigned char	 hash[32];
	unsigned int	 hlen = 0;
	int		 ok;

	*sig = NULL;
	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return -1;
	if (k->alg == DKIMF_ALG_ED25519_SHA256) {
		ok = EVP_Digest(data, len, hash, &hlen, EVP_sha256(), NULL) == 1 &&
		    EVP_DigestSignInit(ctx, NULL, NULL, NULL, k->pkey) == 1 &&
		    EVP_DigestSign(ctx, NULL, siglen, hash, hlen) == 1 &&
		    (*sig = malloc(*siglen)) != NULL &&
		    EVP_DigestSign(ctx, *sig, siglen, hash, hlen) == 1;
	} else {
		ok = EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k->pkey) == 1 &&
		    EVP_DigestSign(ctx, NULL, siglen, data, len) == 1 &&
		    (*sig = malloc(*siglen)) != NULL &&
		    EVP_DigestSign(ctx, *sig, siglen, data, len) == 1;
	}
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	if (!ok) {
		free(*sig);
		*sig = NULL;
		return -1;
	}
	return 0;
}

/* --- Canonicalization -------------------------------------------------------- */

size_t
dkimf_header_canon(const char *name, size_t namelen, const char *value, int crlf, char *out)
{
	size_t	 o = 0, start;
	int	 wsp = 0;

	while (namelen > 0 && (name[namelen - 1] == ' ' || name[namelen - 1] == '\t'))
		namelen--;
	for (; o < namelen; o++)
		out[o] = (char)tolower((unsigned char)name[o]);
	out[o++] = ':';
	start = o;
	for (; *value != '\0'; value++) {
		if (*value == '\r' || *value == '\n')
			continue;	/* unfold */
		if (*value == ' ' || *value == '\t') {
			wsp = 1;
			continue;
		}
		if (wsp && o > start)
			out[o++] = ' ';
		wsp = 0;
		out[o++] = *value;
	}
	if (crlf) {
		out[o++] = '\r';
		out[o++] = '\n';
	}
	out[o] = '\0';
	return o;
}

void
dkimf_body_canon_init(struct dkimf_body_canon *bc, void (*emit)(void *, const char *, size_t),
    void *arg)
{
	memset(bc, 0, sizeof(*bc));
	bc->emit = emit;
	bc->arg = arg;
}

/* Output goes through a small buffer, one emit call per few KiB. */
struct canon_out {
	struct dkimf_body_canon	*bc;
	char			 buf[4096];
	size_t			 len;
};

static void
canon_put(struct canon_out *o, char c)
{
	if (o->len == sizeof(o->buf)) {
		o->bc->emit(o->bc->arg, o->buf, o->len);
		o->len = 0;
	}
	o->buf[o->len++] = c;
}

/* A byte that is line content: deferred empty lines and white space first. */
static void
canon_content(struct canon_out *o, char c)
{
	struct dkimf_body_canon	*bc = o->bc;

	if (bc->line_len == 0)
		for (; bc->empty_lines > 0; bc->empty_lines--) {
			canon_put(o, '\r');
			canon_put(o, '\n');
		}
	if (bc->wsp) {
		canon_put(o, ' ');
		bc->line_len++;
		bc->wsp = 0;
	}
	canon_put(o, c);
	bc->line_len++;
}

void
dkimf_body_canon_feed(struct dkimf_body_canon *bc, const unsigned char *data, size_t len)
{
	struct canon_out	 o;
	size_t			 i;

	o.bc = bc;
	o.len = 0;
	for (i = 0; i < len; i++) {
		if (bc->cr) {
			bc->cr = 0;
			if (data[i] == '\n') {
				/* End of line: trailing white space goes, empty lines wait. */
				bc->wsp = 0;
				if (bc->line_len == 0)
					bc->empty_lines++;
				else {
					canon_put(&o, '\r');
					canon_put(&o, '\n');
				}
				bc->line_len = 0;
				continue;
			}
			canon_content(&o, '\r');	/* a bare CR is content */
		}
		if (data[i] == '\r')
			bc->cr = 1;
		else if (data[i] == ' ' || data[i] == '\t')
			bc->wsp = 1;
		else
			canon_content(&o, (char)data[i]);
	}
	if (o.len > 0)
		bc->emit(bc->arg, o.buf, o.len);
}

void
dkimf_body_canon_end(struct dkimf_body_canon *bc)
{
	struct canon_out	 o;

	o.bc = bc;
	o.len = 0;
	if (bc->cr) {
		bc->cr = 0;
		canon_content(&o, '\r');
	}
	/* A last line without CRLF gets one; trailing empty lines are dropped. */
	if (bc->line_len > 0) {
		canon_put(&o, '\r');
		canon_put(&o, '\n');
		bc->line_len = 0;
	}
	bc->empty_lines = 0;
	bc->wsp = 0;
	if (o.len > 0)
		bc->emit(bc->arg, o.buf, o.len);
}

/* --- Signer ----------------------------------------------------------------- */

static void
sbuf_add(struct sbuf *b, const void *data, size_t len)
{
	size_t	 cap = b->cap != 0 ? b->cap : 256;
	char	*p;

	if (b->failed)
		return;
	while (cap < b->len + len + 1)
		cap *= 2;
	if (cap != b->cap) {
		if ((p = realloc(b->p, cap)) == NULL) {
			b->failed = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
	b->p[b->len] = '\0';
}

static void
sbuf_str(struct sbuf *b, const char *s)
{
	sbuf_add(b, s, strlen(s));
}

struct dkimf_signer *
dkimf_signer_new(const struct dkimf_key *key, const char *domain, uint64_t t,
    char *const *sign_headers, size_t nsign, const struct dkimf_field *fields, size_t nfields)
{
	struct dkimf_signer	*s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->key = key;
	s->t = t;
	if ((s->domain = strdup(domain)) == NULL || (s->body = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(s->body, EVP_sha256(), NULL) != 1) {
		dkimf_signer_free(s);
		return NULL;
	}
	dkimf_body_canon_init(&s->bc, signer_body_emit, s);
	signer_fields(s, sign_headers, nsign, fields, nfields);
	if (s->hdata.failed || s->hlist.failed) {
		dkimf_signer_free(s);
		return NULL;
	}
	return s;
}

/* h= and the canonicalized fields it names, each instance bottom-up. */
static void
signer_fields(struct dkimf_signer *s, char *const *names, size_t nnames,
    const struct dkimf_field *f, size_t nf)
{
	unsigned char	*used = calloc(nf + 1, 1);
	char		*canon;
	size_t		 i, j, n, want, len;

	if (used == NULL) {
		s->hdata.failed = 1;
		return;
	}
	for (i = 0; i < nnames; i++) {
		len = strlen(names[i]);
		for (j = 0, want = 0; j < nf; j++)
			want += f[j].namelen == len && strncasecmp(f[j].name, names[i], len) == 0;
		if (strcasecmp(names[i], "From") == 0)
			want++;		/* oversigned: a From added later breaks it */
		for (n = 0; n < want; n++) {
			if (s->hlist.len > 0)
				sbuf_add(&s->hlist, ":", 1);
			sbuf_str(&s->hlist, names[i]);
			for (j = nf; j-- > 0;)
				if (!used[j] && f[j].namelen == len &&
				    strncasecmp(f[j].name, names[i], len) == 0)
					break;
			if (j == (size_t)-1)
				continue;	/* not there: signs its absence */
			used[j] = 1;
			if ((canon = malloc(len + strlen(f[j].value) + 4)) == NULL) {
				s->hdata.failed = 1;
				break;
			}
			sbuf_add(&s->hdata, canon, dkimf_header_canon(f[j].name, f[j].namelen,
			    f[j].value, 1, canon));
			free(canon);
		}
	}
	free(used);
}

static void
signer_body_emit(void *arg, const char *data, size_t len)
{
	struct dkimf_signer	*s = arg;

	(void)EVP_DigestUpdate(s->body, data, len);
}

void
dkimf_signer_body(struct dkimf_signer *s, const unsigned char *chunk, size_t len)
{
	dkimf_body_canon_feed(&s->bc, chunk, len);
}

static char *
signer_b64(const unsigned char *data, size_t len)
{
	char	*out = malloc(4 * ((len + 2) / 3) + 1);

	if (out != NULL)
		EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

/* The field's value up to and including "b=", folded, into v. */
static void
signer_prefix(struct dkimf_signer *s, struct sbuf *v, const char *bh)
{
	char		 num[32];
	const char	*p, *q;
	size_t		 line;

	sbuf_str(v, "v=1; a=");
	sbuf_str(v, dkimf_key_algorithm(s->key));
	sbuf_str(v, "; c=relaxed/relaxed; d=");
	sbuf_str(v, s->domain);
	sbuf_str(v, "; s=");
	sbuf_str(v, s->key->selector);
	snprintf(num, sizeof(num), ";\r\n\tt=%llu; bh=", (unsigned long long)s->t);
	sbuf_str(v, num);
	sbuf_str(v, bh);
	sbuf_str(v, ";\r\n\th=");
	/* Names wrap after a ':' (FWS is allowed there, RFC 6376 3.5). */
	for (p = s->hlist.p, line = 3; p != NULL && *p != '\0'; p = *q != '\0' ? q + 1 : q) {
		q = strchr(p, ':');
		if (q == NULL)
			q = p + strlen(p);
		if (p != s->hlist.p && line + (size_t)(q - p) + 1 > LINE_WRAP) {
			sbuf_str(v, "\r\n\t ");
			line = 2;
		}
		sbuf_add(v, p, (size_t)(q - p) + (*q == ':'));
		line += (size_t)(q - p) + 1;
	}
	sbuf_str(v, ";\r\n\tb=");
}

char *
dkimf_signer_finish(struct dkimf_signer *s, char *err, size_t errlen)
{
	unsigned char	 bh[32], *sig = NULL;
	unsigned int	 bhlen = 0;
	size_t		 siglen = 0, i, n;
	char		*bh64 = NULL, *b64 = NULL, *canon = NULL;
	struct sbuf	 v = { NULL, 0, 0, 0 };

	dkimf_body_canon_end(&s->bc);
	if (EVP_DigestFinal_ex(s->body, bh, &bhlen) != 1 || (bh64 = signer_b64(bh, bhlen)) ==
	    NULL) {
		snprintf(err, errlen, "body hash failed");
		goto done;
	}
	signer_prefix(s, &v, bh64);
	/* The signature covers the fields, then this one with an empty b=. */
	if (!v.failed && (canon = malloc(v.len + 20)) != NULL)
		sbuf_add(&s->hdata, canon, dkimf_header_canon("DKIM-Signature", 14, v.p, 0, canon));
	if (v.failed || canon == NULL || s->hdata.failed) {
		snprintf(err, errlen, "out of memory");
		goto done;
	}
	if (key_sign(s->key, (unsigned char *)s->hdata.p, s->hdata.len, &sig, &siglen) == -1 ||
	    (b64 = signer_b64(sig, siglen)) == NULL) {
		snprintf(err, errlen, "%s signing failed", dkimf_key_algorithm(s->key));
		goto done;
	}
	for (i = 0, n = strlen(b64); i < n; i += B64_CHUNK) {
		if (i > 0)
			sbuf_str(&v, "\r\n\t ");
		sbuf_add(&v, b64 + i, n - i < B64_CHUNK ? n - i : B64_CHUNK);
	}
	if (v.failed)
		snprintf(err, errlen, "out of memory");
done:
	free(bh64);
	free(b64);
	free(sig);
	free(canon);
	if (v.failed || b64 == NULL) {
		free(v.p);
		return NULL;
	}
	return v.p;
}

void
dkimf_signer_free(struct dkimf_signer *s)
{
	if (s == NULL)
		return;
	EVP_MD_CTX_free(s->body);
	free(s->hdata.p);
	free(s->hlist.p);
	free(s->domain);
	free(s);
}
