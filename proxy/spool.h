/*
 * spool.h - a message body store: memory up to a bound, then a file.
 *
 * Bytes are appended in order and read back by offset.  While the total
 * stays within mem_limit the bytes live in memory; the append that would exceed it moves everything to an
 * unlinked temporary file in dir and every later append goes there, so
 * memory per spool never exceeds mem_limit plus a small constant.
 *
 * One owner; not thread-safe; spool_free() releases memory and the file.
 */
#ifndef SLUICE_SPOOL_H
#define SLUICE_SPOOL_H

#include <stddef.h>
#include <sys/types.h>

struct evbuffer;
struct spool;

/*
 * A new empty spool.  dir is copied; it is where the temporary file goes
 * (created only when needed, O_TMPFILE where possible, else mkstemp then
 * unlink, mode 0600).  Returns NULL when out of memory.
 */
struct spool	*spool_new(size_t mem_limit, const char *dir);
void		 spool_free(struct spool *spool);

/*
 * Append len bytes.  Returns 0, or -1 with errno set (ENOSPC, EIO, ...)
 * when the file write failed; after a failure the spool stays failed and
 * every later append returns -1 with the same errno.
 */
int		 spool_append(struct spool *spool, const void *data, size_t len);

/* Total bytes appended. */
size_t		 spool_size(const struct spool *spool);

/* 1 when the bytes moved to a file. */
int		 spool_on_disk(const struct spool *spool);

/*
 * Copy up to len bytes from offset into buf.  Returns bytes copied (0 at
 * the end), or -1 with errno set.
 */
ssize_t		 spool_read(struct spool *spool, off_t offset, void *buf, size_t len);

/*
 * Append len bytes from offset to out without copying where possible (a
 * file segment for file spools, a reference for memory spools).  The spool
 * must outlive out's use of those bytes.  Returns 0 or -1 with errno.
 */
int		 spool_add_to(struct spool *spool, off_t offset, size_t len,
		    struct evbuffer *out);

/* Empty the spool for reuse (keeps mem_limit and dir, drops the file). */
void		 spool_reset(struct spool *spool);

#endif /* SLUICE_SPOOL_H */
