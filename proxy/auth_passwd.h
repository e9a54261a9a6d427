/*
 * auth_passwd.h - a file of "user:crypt-hash" lines (Dovecot passwd-file
 * and htpasswd style) and checking a password against it with crypt_r(3)
 * from libxcrypt.
 *
 * The table is immutable once parsed.  struct auth_passwd is the file as
 * the daemon keeps it: re-read when its mtime, size or inode changes,
 * shared by every thread (its own lock).  The check is slow on purpose
 * (yescrypt, SHA-crypt rounds): call it on a pool thread.
 */
#ifndef SLUICE_AUTH_PASSWD_H
#define SLUICE_AUTH_PASSWD_H

#include <stddef.h>

struct auth_passwd_table;
struct auth_passwd;

/*
 * Parse text (len bytes, the contents of file) into a table.  Returns
 * NULL and one "file:line: what is wrong" per line in err when any line is
 * bad (no colon, empty user, a hash crypt(3) cannot use, a duplicate
 * user); caller frees the table with auth_passwd_table_free.
 */
struct auth_passwd_table *auth_passwd_parse(const char *file, const char *text, size_t len,
		    char *err, size_t errlen);
void		 auth_passwd_table_free(struct auth_passwd_table *t);
/* The stored hash of user (points into t), or NULL. */
const char	*auth_passwd_table_find(const struct auth_passwd_table *t, const char *user);
size_t		 auth_passwd_table_count(const struct auth_passwd_table *t);

/*
 * 1 if password hashes to hash (crypt_r, constant-time comparison of the
 * result), 0 if not or if the hash is unusable.
 */
int		 auth_passwd_hash_check(const char *hash, const char *password);

/* Load path now; NULL with the reasons in err.  Caller frees with auth_passwd_free. */
struct auth_passwd *auth_passwd_open(const char *path, char *err, size_t errlen);
void		 auth_passwd_free(struct auth_passwd *p);

enum auth_passwd_result {
	AUTH_PASSWD_OK = 0,	/* the password is right */
	AUTH_PASSWD_FAIL,	/* unknown user or wrong password */
	AUTH_PASSWD_ERROR	/* the file could not be read at all */
};

/*
 * Re-read the file if it changed (a bad new file is logged and the last
 * good table kept), then check user and password.  Any thread; blocking.
 */
enum auth_passwd_result auth_passwd_check(struct auth_passwd *p, const char *user,
		    const char *password);

#endif /* SLUICE_AUTH_PASSWD_H */
