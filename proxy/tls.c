/*
 * tls.c - a listener's TLS server contexts (certificate/key pairs, SNI,
 * protocol versions, ciphers, optional client certificates) and the facts
 * of a finished handshake.
 *
 * Built from the config while it is loaded (config.c), so a bad
 * certificate fails the whole load and a reload never swaps in half a
 * TLS setup (DESIGN.md invariant 6).  Nothing here knows sessions or the
 * event loop: tls_session.c does the STARTTLS and implicit-TLS work.
 */
#include "autoconf.h"

#include <arpa/inet.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "tls.h"
#include "util.h"

/* One certificate/key pair with the names its certificate covers. */
struct tls_pair {
	SSL_CTX		*ctx;		/* owned */
	char		**names;	/* DNS SANs, else the CN; owned */
	size_t		  nnames;
};

struct tls_server {
	struct tls_pair	*pairs;		/* pairs[0] is the default */
	size_t		 npairs;
};

static SSL_CTX	*tls_ctx_new(const struct config_listener_tls *, const char *,
		    const char *, char *, size_t);
static int	 tls_ctx_protocol(SSL_CTX *, const struct config_listener_tls *, char *,
		    size_t);
static void	 tls_pair_names(struct tls_pair *);
static int	 tls_sni_cb(SSL *, int *, void *);
static int	 tls_verify_cb(int, X509_STORE_CTX *);
static char	*tls_name_string(const X509_NAME *);

/* The session id context OpenSSL needs once client certificates are asked for. */
static const unsigned char tls_sid_ctx[] = "sluice";

int
tls_name_match(const char *pattern, const char *name)
{
	size_t	 plen = strlen(pattern), nlen = strlen(name);
	const char *dot;

	if (plen > 0 && pattern[plen - 1] == '.')
		plen--;
	if (nlen > 0 && name[nlen - 1] == '.')
		nlen--;
	if (plen == 0 || nlen == 0)
		return 0;
	if (plen > 2 && pattern[0] == '*' && pattern[1] == '.') {
		/* The wildcard stands for exactly one non-empty leftmost label. */
		if ((dot = memchr(name, '.', nlen)) == NULL || dot == name)
			return 0;
		nlen -= (size_t)(dot - name);
		name = dot;
		pattern++;
		plen--;
	}
	return plen == nlen && strncasecmp(pattern, name, plen) == 0;
}

int
tls_version_parse(const char *s)
{
	if (strcmp(s, "TLSv1") == 0 || strcmp(s, "TLSv1.0") == 0)
		return TLS1_VERSION;
	if (strcmp(s, "TLSv1.1") == 0)
		return TLS1_1_VERSION;
	if (strcmp(s, "TLSv1.2") == 0)
		return TLS1_2_VERSION;
	if (strcmp(s, "TLSv1.3") == 0)
		return TLS1_3_VERSION;
	return -1;
}

const char *
tls_error_string(char *buf, size_t size)
{
	unsigned long	 e = ERR_get_error();

	if (e == 0)
		snprintf(buf, size, "unknown error");
	else
		ERR_error_string_n(e, buf, size);
	ERR_clear_error();
	return buf;
}

struct tls_server *
tls_server_new(const struct config_listener_tls *conf, char *err, size_t errlen)
{
	struct tls_server	*srv;
	size_t			 i;

	if (conf->ncert_files == 0) {
		snprintf(err, errlen, "tls needs a certificate: tls_cert_file and tls_key_file");
		return NULL;
	}
	if (conf->nkey_files != conf->ncert_files) {
		snprintf(err, errlen, "tls_cert_file has %zu entries and tls_key_file %zu; "
		    "give one key per certificate, in the same order",
		    conf->ncert_files, conf->nkey_files);
		return NULL;
	}
	srv = xcalloc(1, sizeof(*srv));
	srv->pairs = xcalloc(conf->ncert_files, sizeof(*srv->pairs));
	for (i = 0; i < conf->ncert_files; i++) {
		srv->npairs++;
		srv->pairs[i].ctx = tls_ctx_new(conf, conf->cert_files[i], conf->key_files[i],
		    err, errlen);
		if (srv->pairs[i].ctx == NULL) {
			tls_server_free(&srv);
			return NULL;
		}
		tls_pair_names(&srv->pairs[i]);
		SSL_CTX_set_tlsext_servername_callback(srv->pairs[i].ctx, tls_sni_cb);
		SSL_CTX_set_tlsext_servername_arg(srv->pairs[i].ctx, srv);
	}
	return srv;
}

void
tls_server_free(struct tls_server **srvp)
{
	struct tls_server	*srv = *srvp;
	size_t			 i, j;

	if (srv == NULL)
		return;
	*srvp = NULL;
	for (i = 0; i < srv->npairs; i++) {
		SSL_CTX_free(srv->pairs[i].ctx);
		for (j = 0; j < srv->pairs[i].nnames; j++)
			free(srv->pairs[i].names[j]);
		free(srv->pairs[i].names);
	}
	free(srv->pairs);
	free(srv);
}

/* One context: protocol settings, then the pair, checked against each other. */
static SSL_CTX *
tls_ctx_new(const struct config_listener_tls *conf, const char *cert, const char *key,
    char *err, size_t errlen)
{
	SSL_CTX	*ctx;
	char	 e[256];

	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		snprintf(err, errlen, "cannot create a TLS context: %s",
		    tls_error_string(e, sizeof(e)));
		return NULL;
	}
	if (tls_ctx_protocol(ctx, conf, err, errlen) == -1)
		goto fail;
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		snprintf(err, errlen, "tls_cert_file \"%s\": cannot load the certificate: %s",
		    cert, tls_error_string(e, sizeof(e)));
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 &&
	    ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_VALUES_MISMATCH) {
		snprintf(err, errlen, "tls_key_file \"%s\": cannot load the private key: %s",
		    key, tls_error_string(e, sizeof(e)));
		goto fail;
	}
	/* Loading a key that belongs to another certificate fails above as a mismatch too. */
	if (ERR_peek_last_error() != 0 || SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errlen, "tls_key_file \"%s\" does not match the certificate "
		    "in \"%s\"", key, cert);
		ERR_clear_error();
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* Versions, ciphers and the optional client certificate request. */
static int
tls_ctx_protocol(SSL_CTX *ctx, const struct config_listener_tls *conf, char *err,
    size_t errlen)
{
	STACK_OF(X509_NAME)	*cas;
	char			 e[256];

	SSL_CTX_set_min_proto_version(ctx, conf->min_version);
	/* Renegotiation only helps attackers in SMTP; compression is CRIME. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
	    SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_session_id_context(ctx, tls_sid_ctx, sizeof(tls_sid_ctx) - 1);
	if (conf->ciphers != NULL && SSL_CTX_set_cipher_list(ctx, conf->ciphers) != 1) {
		snprintf(err, errlen, "tls_ciphers \"%s\": no usable cipher: %s",
		    conf->ciphers, tls_error_string(e, sizeof(e)));
		return -1;
	}
	if (conf->ciphersuites != NULL &&
	    SSL_CTX_set_ciphersuites(ctx, conf->ciphersuites) != 1) {
		snprintf(err, errlen, "tls_ciphersuites \"%s\": not a valid TLS 1.3 list: %s",
		    conf->ciphersuites, tls_error_string(e, sizeof(e)));
		return -1;
	}
	if (conf->ca_file == NULL)
		return 0;
	if (SSL_CTX_load_verify_locations(ctx, conf->ca_file, NULL) != 1 ||
	    (cas = SSL_load_client_CA_file(conf->ca_file)) == NULL) {
		snprintf(err, errlen, "tls_ca_file \"%s\": cannot load: %s", conf->ca_file,
		    tls_error_string(e, sizeof(e)));
		return -1;
	}
	SSL_CTX_set_client_CA_list(ctx, cas);
	/* Ask, never require (SMTP clients rarely have one): the result is recorded. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, tls_verify_cb);
	return 0;
}

static int
tls_verify_cb(int ok, X509_STORE_CTX *store)
{
	return 1;
}

/* The DNS names of the pair's certificate (subjectAltName, else CN) for SNI. */
static void
tls_pair_names(struct tls_pair *p)
{
	X509			*x = SSL_CTX_get0_certificate(p->ctx);
	GENERAL_NAMES		*gens;
	const GENERAL_NAME	*g;
	char			 cn[256];
	int			 i, n;

	if (x == NULL)
		return;
	if ((gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL)) != NULL) {
		n = sk_GENERAL_NAME_num(gens);
		p->names = xcalloc(n > 0 ? (size_t)n : 1, sizeof(*p->names));
		for (i = 0; i < n; i++) {
			g = sk_GENERAL_NAME_value(gens, i);
			if (g->type != GEN_DNS)
				continue;
			p->names[p->nnames++] = xstrndup((const char *)ASN1_STRING_get0_data(
			    g->d.dNSName), (size_t)ASN1_STRING_length(g->d.dNSName));
		}
		GENERAL_NAMES_free(gens);
	}
	if (p->nnames > 0)
		return;
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
	    sizeof(cn)) > 0) {
		free(p->names);
		p->names = xcalloc(1, sizeof(*p->names));
		p->names[p->nnames++] = xstrdup(cn);
	}
}

/* SNI: switch to the first pair whose certificate covers the name asked for. */
static int
tls_sni_cb(SSL *ssl, int *alert, void *arg)
{
	struct tls_server	*srv = arg;
	const char		*name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	size_t			 i, j;

	if (name == NULL)
		return SSL_TLSEXT_ERR_OK;
	for (i = 0; i < srv->npairs; i++)
		for (j = 0; j < srv->pairs[i].nnames; j++)
			if (tls_name_match(srv->pairs[i].names[j], name)) {
				if (i > 0)
					SSL_set_SSL_CTX(ssl, srv->pairs[i].ctx);
				return SSL_TLSEXT_ERR_OK;
			}
	/* No match: the default pair answers, as most MTAs do. */
	return SSL_TLSEXT_ERR_OK;
}

SSL *
tls_server_ssl_new(struct tls_server *srv)
{
	if (srv == NULL || srv->npairs == 0)
		return NULL;
	return SSL_new(srv->pairs[0].ctx);
}

static char *
tls_name_string(const X509_NAME *name)
{
	BIO	*bio;
	char	*p, *s;
	long	 len;

	if ((bio = BIO_new(BIO_s_mem())) == NULL)
		return NULL;
	X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
	len = BIO_get_mem_data(bio, &p);
	s = xstrndup(p, len > 0 ? (size_t)len : 0);
	BIO_free(bio);
	return s;
}

void
tls_conn_fill(struct tls_conn *tc, SSL *ssl)
{
	const char	*sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	X509		*peer;

	tc->established = 1;
	tc->version = xstrdup(SSL_get_version(ssl));
	tc->cipher = xstrdup(SSL_get_cipher_name(ssl));
	tc->bits = SSL_get_cipher_bits(ssl, &tc->alg_bits);
	tc->sni = sni != NULL ? xstrdup(sni) : NULL;
	if ((peer = SSL_get1_peer_certificate(ssl)) != NULL) {
		tc->peer_subject = tls_name_string(X509_get_subject_name(peer));
		tc->peer_issuer = tls_name_string(X509_get_issuer_name(peer));
		tc->peer_verified = SSL_get_verify_result(ssl) == X509_V_OK;
		X509_free(peer);
	}
}

void
tls_conn_free(struct tls_conn **tcp)
{
	struct tls_conn	*tc = *tcp;

	if (tc == NULL)
		return;
	*tcp = NULL;
	free(tc->version);
	free(tc->cipher);
	free(tc->sni);
	free(tc->peer_subject);
	free(tc->peer_issuer);
	free(tc);
}

/* --- Client side (towards backends) -------------------------------------- */

struct tls_client {
	SSL_CTX		*ctx;		/* owned */
	int		 verify;	/* check the server's name */
};

struct tls_client *
tls_client_new(const struct config_backend_tls *conf, char *err, size_t errlen)
{
	struct tls_client	*cl;
	char			 e[256];

	ERR_clear_error();
	cl = xcalloc(1, sizeof(*cl));
	cl->verify = conf->mode == CONFIG_BACKEND_TLS_VERIFY;
	if ((cl->ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		snprintf(err, errlen, "cannot create a TLS context: %s",
		    tls_error_string(e, sizeof(e)));
		goto fail;
	}
	SSL_CTX_set_min_proto_version(cl->ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(cl->ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	if (conf->ca_file != NULL ?
	    SSL_CTX_load_verify_locations(cl->ctx, conf->ca_file, NULL) != 1 :
	    SSL_CTX_set_default_verify_paths(cl->ctx) != 1) {
		snprintf(err, errlen, "tls_ca_file \"%s\": cannot load: %s",
		    conf->ca_file != NULL ? conf->ca_file : "(system)",
		    tls_error_string(e, sizeof(e)));
		goto fail;
	}
	/* may and encrypt take any certificate, as Postfix does; verify fails the handshake. */
	SSL_CTX_set_verify(cl->ctx, cl->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	if ((conf->cert_file == NULL) != (conf->key_file == NULL)) {
		snprintf(err, errlen, "tls_cert_file and tls_key_file go together");
		goto fail;
	}
	if (conf->cert_file != NULL &&
	    (SSL_CTX_use_certificate_chain_file(cl->ctx, conf->cert_file) != 1 ||
	    SSL_CTX_use_PrivateKey_file(cl->ctx, conf->key_file, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(cl->ctx) != 1)) {
		snprintf(err, errlen, "tls_cert_file \"%s\" / tls_key_file \"%s\": cannot "
		    "load, or the key does not match: %s", conf->cert_file, conf->key_file,
		    tls_error_string(e, sizeof(e)));
		goto fail;
	}
	return cl;
fail:
	tls_client_free(&cl);
	return NULL;
}

void
tls_client_free(struct tls_client **clp)
{
	struct tls_client	*cl = *clp;

	if (cl == NULL)
		return;
	*clp = NULL;
	SSL_CTX_free(cl->ctx);
	free(cl);
}

SSL *
tls_client_ssl_new(struct tls_client *cl, const char *name)
{
	SSL		*ssl;
	unsigned char	 addr[16];
	int		 literal;

	if (cl == NULL || (ssl = SSL_new(cl->ctx)) == NULL)
		return NULL;
	literal = inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1;
	/* SNI carries host names only (RFC 6066 3). */
	if (!literal && name[0] != '\0')
		SSL_set_tlsext_host_name(ssl, name);
	if (cl->verify && (literal ?
	    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) != 1 :
	    SSL_set1_host(ssl, name) != 1)) {
		SSL_free(ssl);
		return NULL;
	}
	return ssl;
}
