/*
 * auth_passwd.c - the passwd-file credential store: parsing "user:hash"
 * lines, checking a password with crypt_r(3) (libxcrypt: yescrypt, SHA-512
 * and SHA-256 crypt, bcrypt), and keeping the file current when it
 * changes on disk.  See auth_passwd.h.
 */
#include "autoconf.h"

#include <sys/stat.h>

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "auth_passwd.h"
#include "log.h"
#include "util.h"

/* A passwd file bigger than this is refused (a mistake, not a user list). */
#define AUTH_PASSWD_FILE_MAX	(64 * 1024 * 1024)

struct auth_passwd_entry {
	char		*user;		/* owned */
	char		*hash;		/* owned */
	int		 line;		/* in the file, for duplicate reports */
};

struct auth_passwd_table {
	struct auth_passwd_entry *entries;	/* sorted by user */
	size_t			  n;		/* entries */
};

struct auth_passwd {
	char			*path;		/* owned */
	pthread_mutex_t		 lock;		/* guards table and the stat fields */
	struct auth_passwd_table *table;	/* last good contents */
	struct timespec		 mtime;		/* of the file read */
	off_t			 size;
	ino_t			 ino;
};

static int	 auth_passwd_entry_cmp(const void *, const void *);
static int	 auth_passwd_hash_usable(const char *hash);
static void	 auth_passwd_err(char *err, size_t errlen, const char *file, int line,
		    const char *what);
static int	 auth_passwd_line(struct auth_passwd_table *t, const char *file, int lineno,
		    char *line, char *err, size_t errlen);
static char	*auth_passwd_read(const char *path, size_t *len, struct stat *st, char *err,
		    size_t errlen);
static int	 auth_passwd_reload(struct auth_passwd *p);

static int
auth_passwd_entry_cmp(const void *a, const void *b)
{
	const struct auth_passwd_entry *x = a, *y = b;
	int	 c = strcmp(x->user, y->user);

	return c != 0 ? c : x->line - y->line;
}

/* Only modern crypt(3) hashes: DES and MD5 crypt would be a silent downgrade. */
static int
auth_passwd_hash_usable(const char *hash)
{
	static const char *const prefixes[] = { "$y$", "$gy$", "$7$", "$6$", "$5$", "$2b$",
	    "$2y$", "$2a$" };
	size_t	 i;

	for (i = 0; i < nitems(prefixes); i++)
		if (strncmp(hash, prefixes[i], strlen(prefixes[i])) == 0)
			return 1;
	return 0;
}

static void
auth_passwd_err(char *err, size_t errlen, const char *file, int line, const char *what)
{
	size_t	 n = strlen(err);

	if (n < errlen)
		snprintf(err + n, errlen - n, "%s:%d: %s\n", file, line, what);
}

/* One line (NUL-terminated, no line end); 0, or -1 after reporting it. */
static int
auth_passwd_line(struct auth_passwd_table *t, const char *file, int lineno, char *line,
    char *err, size_t errlen)
{
	char	*colon, *hash, *end;

	while (*line == ' ' || *line == '\t')
		line++;
	if (*line == '\0' || *line == '#')
		return 0;
	if ((colon = strchr(line, ':')) == NULL) {
		auth_passwd_err(err, errlen, file, lineno, "expected user:hash");
		return -1;
	}
	*colon = '\0';
	hash = colon + 1;
	/* Dovecot's passwd-file has more fields (uid:gid:...) after the hash. */
	if ((end = strchr(hash, ':')) != NULL)
		*end = '\0';
	/* Dovecot's scheme prefix: "{SHA512-CRYPT}$6$...", "{CRYPT}$y$...". */
	if (hash[0] == '{' && (end = strchr(hash, '}')) != NULL && strstr(hash, "CRYPT}") != NULL)
		hash = end + 1;
	if (!auth_user_valid(line, strlen(line))) {
		auth_passwd_err(err, errlen, file, lineno, "empty or invalid user name");
		return -1;
	}
	if (!auth_passwd_hash_usable(hash)) {
		auth_passwd_err(err, errlen, file, lineno, "unsupported password hash "
		    "(use yescrypt $y$, SHA-512 $6$, SHA-256 $5$ or bcrypt $2b$)");
		return -1;
	}
	t->entries = xreallocarray(t->entries, t->n + 1, sizeof(*t->entries));
	t->entries[t->n].user = xstrdup(line);
	t->entries[t->n].hash = xstrdup(hash);
	t->entries[t->n].line = lineno;
	t->n++;
	return 0;
}

struct auth_passwd_table *
auth_passwd_parse(const char *file, const char *text, size_t len, char *err, size_t errlen)
{
	struct auth_passwd_table *t = xcalloc(1, sizeof(*t));
	char		*copy = xstrndup(text, len), *line, *next, what[128];
	int		 lineno = 0, bad = 0;
	size_t		 i;

	if (errlen > 0)
		err[0] = '\0';
	if (memchr(text, '\0', len) != NULL) {
		auth_passwd_err(err, errlen, file, 1, "NUL byte in the file");
		bad = 1;
	}
	for (line = copy; !bad && line != NULL; line = next) {
		lineno++;
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if (*line != '\0' && line[strlen(line) - 1] == '\r')
			line[strlen(line) - 1] = '\0';
		if (auth_passwd_line(t, file, lineno, line, err, errlen) == -1)
			bad = 1;
	}
	free(copy);
	if (t->n > 1)
		qsort(t->entries, t->n, sizeof(*t->entries), auth_passwd_entry_cmp);
	for (i = 1; !bad && i < t->n; i++)
		if (strcmp(t->entries[i - 1].user, t->entries[i].user) == 0) {
			snprintf(what, sizeof(what), "duplicate user (first on line %d)",
			    t->entries[i - 1].line);
			auth_passwd_err(err, errlen, file, t->entries[i].line, what);
			bad = 1;
		}
	if (bad) {
		auth_passwd_table_free(t);
		return NULL;
	}
	return t;
}

void
auth_passwd_table_free(struct auth_passwd_table *t)
{
	size_t	 i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n; i++) {
		free(t->entries[i].user);
		free(t->entries[i].hash);
	}
	free(t->entries);
	free(t);
}

const char *
auth_passwd_table_find(const struct auth_passwd_table *t, const char *user)
{
	size_t	 lo = 0, hi = t->n, mid;
	int	 c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if ((c = strcmp(user, t->entries[mid].user)) == 0)
			return t->entries[mid].hash;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

size_t
auth_passwd_table_count(const struct auth_passwd_table *t)
{
	return t->n;
}

int
auth_passwd_hash_check(const char *hash, const char *password)
{
	struct crypt_data	*cd = xcalloc(1, sizeof(*cd));
	const char		*out;
	int			 ok = 0;

	out = crypt_r(password, hash, cd);
	/* libxcrypt fails with NULL or a "*"-string, never a valid-looking hash. */
	if (out != NULL && out[0] != '*')
		ok = auth_equal_constant_time(out, hash);
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return ok;
}

static char *
auth_passwd_read(const char *path, size_t *len, struct stat *st, char *err, size_t errlen)
{
	char	*buf;
	int	 fd;
	ssize_t	 n;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1 || fstat(fd, st) == -1) {
		snprintf(err, errlen, "%s: %s\n", path, strerror(errno));
		if (fd != -1)
			close(fd);
		return NULL;
	}
	if (!S_ISREG(st->st_mode) || st->st_size > AUTH_PASSWD_FILE_MAX) {
		snprintf(err, errlen, "%s: not a regular file of at most 64 MiB\n", path);
		close(fd);
		return NULL;
	}
	buf = xmalloc((size_t)st->st_size + 1);
	*len = 0;
	while (*len < (size_t)st->st_size &&
	    (n = read(fd, buf + *len, (size_t)st->st_size - *len)) > 0)
		*len += (size_t)n;
	close(fd);
	return buf;
}

struct auth_passwd *
auth_passwd_open(const char *path, char *err, size_t errlen)
{
	struct auth_passwd	*p;
	struct auth_passwd_table *t;
	struct stat		 st;
	size_t			 len;
	char			*text;

	if ((text = auth_passwd_read(path, &len, &st, err, errlen)) == NULL)
		return NULL;
	t = auth_passwd_parse(path, text, len, err, errlen);
	free(text);
	if (t == NULL)
		return NULL;
	p = xcalloc(1, sizeof(*p));
	p->path = xstrdup(path);
	pthread_mutex_init(&p->lock, NULL);
	p->table = t;
	p->mtime = st.st_mtim;
	p->size = st.st_size;
	p->ino = st.st_ino;
	return p;
}

void
auth_passwd_free(struct auth_passwd *p)
{
	if (p == NULL)
		return;
	auth_passwd_table_free(p->table);
	pthread_mutex_destroy(&p->lock);
	free(p->path);
	free(p);
}

/* Re-read if the file changed; -1 if it cannot be read now.  Lock held. */
static int
auth_passwd_reload(struct auth_passwd *p)
{
	struct auth_passwd_table *t;
	struct stat		 st;
	char			 err[1024], *text;
	size_t			 len;

	if (stat(p->path, &st) == -1) {
		log_warn("auth passwd_file=%s", p->path);
		return -1;
	}
	if (st.st_mtim.tv_sec == p->mtime.tv_sec && st.st_mtim.tv_nsec == p->mtime.tv_nsec &&
	    st.st_size == p->size && st.st_ino == p->ino)
		return 0;
	if ((text = auth_passwd_read(p->path, &len, &st, err, sizeof(err))) == NULL) {
		err[strcspn(err, "\n")] = '\0';
		log_warnx("auth passwd_file=%s unreadable: %s", p->path, err);
		return -1;
	}
	t = auth_passwd_parse(p->path, text, len, err, sizeof(err));
	free(text);
	/* Remember this version either way, so a bad file is reported once. */
	p->mtime = st.st_mtim;
	p->size = st.st_size;
	p->ino = st.st_ino;
	if (t == NULL) {
		err[strcspn(err, "\n")] = '\0';
		log_warnx("auth passwd_file=%s changed but is bad, keeping the last good one: %s",
		    p->path, err);
		return 0;
	}
	auth_passwd_table_free(p->table);
	p->table = t;
	log_info("auth passwd_file=%s reloaded users=%zu", p->path, t->n);
	return 0;
}

enum auth_passwd_result
auth_passwd_check(struct auth_passwd *p, const char *user, const char *password)
{
	const char	*found;
	char		*hash = NULL;
	int		 ok;

	pthread_mutex_lock(&p->lock);
	if (auth_passwd_reload(p) == -1) {
		pthread_mutex_unlock(&p->lock);
		return AUTH_PASSWD_ERROR;
	}
	if ((found = auth_passwd_table_find(p->table, user)) != NULL)
		hash = xstrdup(found);
	pthread_mutex_unlock(&p->lock);
	/*
	 * An unknown user costs a hash too (of a fixed yescrypt hash), so the
	 * answer's timing does not tell which users exist.
	 */
	ok = auth_passwd_hash_check(hash != NULL ? hash :
	    "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o7hKp0uo9wuqLd2ZjIRGA5ZRQk4nVp8mA",
	    password) && hash != NULL;
	free(hash);
	return ok ? AUTH_PASSWD_OK : AUTH_PASSWD_FAIL;
}
