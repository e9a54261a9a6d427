/*
 * dmarc_psl.c - organizational domains (RFC 7489 3.2) from the public
 * suffix list, and the domain-name checks DMARC needs.
 *
 * The list is libpsl's (publicsuffix.org algorithm: wildcards,
 * exceptions, the default rule), loaded per filter instance so a reload
 * reads the file again and sessions of the old generation keep theirs;
 * a loaded psl_ctx_t is read-only and shared by the workers.  U-labels
 * become A-labels with libidn2.  libopendmarc's own list is not used: it
 * is one process-wide list that each init replaces, and its alignment
 * treats a.co.uk and b.co.uk as one organization.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <idn2.h>
#include <libpsl.h>

#include "dmarc_psl.h"

struct dmarc_psl {
	psl_ctx_t	*ctx;
};

static struct dmarc_psl *
psl_wrap(psl_ctx_t *ctx)
{
	struct dmarc_psl	*psl;

	if (ctx == NULL)
		return NULL;
	if (psl_suffix_count(ctx) <= 0 || (psl = calloc(1, sizeof(*psl))) == NULL) {
		psl_free(ctx);
		return NULL;
	}
	psl->ctx = ctx;
	return psl;
}

struct dmarc_psl *
dmarc_psl_parse(const char *text, size_t len)
{
	FILE		*fp;
	psl_ctx_t	*ctx;

	if ((fp = fmemopen((void *)(uintptr_t)text, len, "r")) == NULL)
		return NULL;
	ctx = psl_load_fp(fp);
	fclose(fp);
	return psl_wrap(ctx);
}

struct dmarc_psl *
dmarc_psl_load(const char *path, char *err, size_t errlen)
{
	FILE			*fp;
	psl_ctx_t		*ctx;
	struct dmarc_psl	*psl;

	if ((fp = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "public_suffix_list \"%s\": %s", path, strerror(errno));
		return NULL;
	}
	ctx = psl_load_fp(fp);
	fclose(fp);
	if ((psl = psl_wrap(ctx)) == NULL)
		snprintf(err, errlen, "public_suffix_list \"%s\" holds no rule", path);
	return psl;
}

void
dmarc_psl_free(struct dmarc_psl *psl)
{
	if (psl == NULL)
		return;
	psl_free(psl->ctx);
	free(psl);
}

size_t
dmarc_psl_count(const struct dmarc_psl *psl)
{
	int	 n = psl != NULL ? psl_suffix_count(psl->ctx) : 0;

	return n > 0 ? (size_t)n : 0;
}

/*
 * The longest public suffix plus one label; a domain that is itself a
 * public suffix is its own organizational domain.  Without a list, the
 * default rule "*": the last two labels.
 */
const char *
dmarc_org_domain(const struct dmarc_psl *psl, const char *domain)
{
	const char	*org, *p;

	if (psl != NULL) {
		org = psl_registrable_domain(psl->ctx, domain);
		return org != NULL ? org : domain;
	}
	if ((p = strrchr(domain, '.')) == NULL)
		return domain;
	while (p > domain && p[-1] != '.')
		p--;
	return p;
}

int
dmarc_domain_normalize(const char *in, size_t len, char *out)
{
	size_t		 i, label = 0;
	unsigned char	 c;

	if (len > 0 && in[len - 1] == '.')
		len--;
	if (len == 0 || len > DMARC_DOMAIN_MAX - 1)
		return -1;
	for (i = 0; i < len; i++) {
		c = (unsigned char)in[i];
		if (c == '.') {
			if (label == 0)
				return -1;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
		    c == '_')
			label++;
		else if (c >= 'A' && c <= 'Z') {
			c = (unsigned char)(c - 'A' + 'a');
			label++;
		} else
			return -1;
		if (label > 63)
			return -1;
		out[i] = (char)c;
	}
	if (label == 0)
		return -1;
	out[len] = '\0';
	return 0;
}

/* One UTF-8 label as its A-label ("xn--..."), by libidn2 (IDNA2008). */
int
dmarc_punycode_label(const char *in, size_t len, char *out, size_t outlen)
{
	char	 label[256], *ace = NULL;
	int	 rc;

	if (len == 0 || len >= sizeof(label) || memchr(in, '\0', len) != NULL)
		return -1;
	memcpy(label, in, len);
	label[len] = '\0';
	if ((rc = idn2_to_ascii_8z(label, &ace, IDN2_NONTRANSITIONAL)) != IDN2_OK)
		return -1;
	if (strchr(ace, '.') != NULL || strlen(ace) >= outlen) {
		idn2_free(ace);
		return -1;
	}
	strcpy(out, ace);
	idn2_free(ace);
	return 0;
}

int
dmarc_domain_to_ascii(const char *s, size_t n, char *out)
{
	char	 buf[DMARC_DOMAIN_MAX * 2], label[64];
	size_t	 i, j, len = 0, o;
	int	 ascii, dot = n > 0 && s[n - 1] == '.';

	n -= (size_t)dot;	/* the final dot goes to dmarc_domain_normalize */
	for (i = 0; i <= n; i = j + 1) {
		for (j = i, ascii = 1; j < n && s[j] != '.'; j++)
			ascii &= (unsigned char)s[j] < 0x80;
		if (ascii) {
			if (j - i >= sizeof(label))
				return -1;
			memcpy(label, s + i, j - i);
			label[j - i] = '\0';
		} else if (dmarc_punycode_label(s + i, j - i, label, sizeof(label)) == -1)
			return -1;
		o = strlen(label);
		if (len + o + 2 > sizeof(buf))
			return -1;
		memcpy(buf + len, label, o);
		len += o;
		buf[len++] = '.';
	}
	return dmarc_domain_normalize(buf, len - 1 + (size_t)dot, out);
}
