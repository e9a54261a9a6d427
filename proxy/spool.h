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
 * Append len bytes.  Returns 0, or -1 with errno set (ENOSPC, EFBIG, EIO,
 * ENOMEM, ...) when storing failed; after a failure the spool stays failed
 * and every later append returns -1 with the same errno.  Small file
 * appends are buffered (16 KiB), so a write error may show at a later
 * append or at spool_add_to(); bytes already appended stay readable.
 */
int		 spool_append(struct spool *spool, const void *data, size_t len);

/*
 * Write out bytes still held in the write-behind buffer, so a full disk
 * shows now (at end of data, as 452) and not while forwarding.  Returns 0,
 * or -1 with errno (the spool then stays failed).
 */
int		 spool_flush(struct spool *spool);

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
 * Append len bytes from offset to out: a copy for a memory spool (at most
 * mem_limit bytes), a libevent file segment for a file spool (sendfile
 * when out drains to a socket, else mmap).  out never depends on the spool
 * staying alive: the segment holds its own descriptor, so spool_reset()
 * or spool_free() may come before out is drained.  Returns 0, or -1 with
 * errno (EINVAL for a range past the end, or the latched write error).
 */
int		 spool_add_to(struct spool *spool, off_t offset, size_t len,
		    struct evbuffer *out);

/*
 * Empty the spool for reuse: keeps mem_limit, dir and the memory array;
 * drops the file and a latched failure.
 */
void		 spool_reset(struct spool *spool);

#endif /* SLUICE_SPOOL_H */
