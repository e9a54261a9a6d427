/*
 * spool.c - a message body store: memory up to a bound, then an unlinked
 * temporary file.  See spool.h.
 *
 * Memory is one array grown by doubling but never past mem_limit.  The
 * append that would pass the bound writes the array to a new file and
 * frees it.  File appends go through a small write-behind buffer so that
 * the many short appends of a normalized or line-by-line producer cost one
 * write per SPOOL_WBUF_SIZE bytes; an append too big for the buffer goes
 * out together with it in one pwritev.  Reads see the buffered bytes too;
 * spool_add_to writes them out first, because a file segment can only
 * reach what is in the file.
 *
 * spool_add_to never lends the spool's own storage: memory bytes are
 * copied (at most mem_limit of them, cheap next to the network write), and
 * file bytes go out through a libevent file segment that owns a dup of the
 * descriptor (EVBUF_FS_CLOSE_ON_FREE).  Segments are refcounted by the
 * evbuffer chains that use them, so an output buffer stays valid after
 * spool_reset or spool_free, and the unlinked file lives until the last
 * reference is drained.
 */
#include "autoconf.h"

#include <sys/types.h>
#include <sys/uio.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "spool.h"

#define SPOOL_WBUF_SIZE		16384	/* write-behind buffer for file appends */
#define SPOOL_MEM_INITIAL	4096	/* first memory allocation */

struct spool {
	size_t		 mem_limit;	/* bytes kept in memory before the file */
	char		*dir;		/* where the temporary file goes */
	unsigned char	*mem;		/* memory store, NULL once on disk */
	size_t		 mem_cap;	/* allocated bytes of mem */
	size_t		 size;		/* bytes appended */
	int		 fd;		/* the unlinked file, -1 while in memory */
	size_t		 file_size;	/* bytes written to fd */
	unsigned char	*wbuf;		/* write-behind buffer, bytes file_size..size */
	size_t		 wbuf_len;	/* bytes in wbuf */
	int		 error;		/* latched errno of a failed write, 0 if none */
	struct evbuffer_file_segment *seg;	/* segment over [0, seg_len) of the file */
	size_t		 seg_len;	/* bytes seg covers */
};

static int	 spool_fail(struct spool *, int);
static int	 spool_open_file(struct spool *);
static int	 spool_pwrite_all(int, struct iovec *, int, off_t);
static int	 spool_to_file(struct spool *);
static int	 spool_append_mem(struct spool *, const void *, size_t);
static int	 spool_append_file(struct spool *, const void *, size_t);
static int	 spool_segment(struct spool *);
static void	 spool_drop_file(struct spool *);

struct spool *
spool_new(size_t mem_limit, const char *dir)
{
	struct spool	*spool;

	if ((spool = calloc(1, sizeof(*spool))) == NULL)
		return NULL;
	if ((spool->dir = strdup(dir)) == NULL) {
		free(spool);
		return NULL;
	}
	spool->mem_limit = mem_limit;
	spool->fd = -1;
	return spool;
}

void
spool_free(struct spool *spool)
{
	if (spool == NULL)
		return;
	spool_drop_file(spool);
	free(spool->mem);
	free(spool->dir);
	free(spool);
}

void
spool_reset(struct spool *spool)
{
	/* The memory array is kept: the next message likely needs it too. */
	spool_drop_file(spool);
	spool->size = 0;
	spool->error = 0;
}

/* Close the file and let go of the segment; chains still using it keep it. */
static void
spool_drop_file(struct spool *spool)
{
	if (spool->seg != NULL) {
		evbuffer_file_segment_free(spool->seg);
		spool->seg = NULL;
		spool->seg_len = 0;
	}
	if (spool->fd != -1) {
		close(spool->fd);
		spool->fd = -1;
	}
	free(spool->wbuf);
	spool->wbuf = NULL;
	spool->wbuf_len = 0;
	spool->file_size = 0;
}

static int
spool_fail(struct spool *spool, int error)
{
	spool->error = error != 0 ? error : EIO;
	errno = spool->error;
	return -1;
}

int
spool_append(struct spool *spool, const void *data, size_t len)
{
	if (spool->error != 0) {
		errno = spool->error;
		return -1;
	}
	if (len == 0)
		return 0;
	if (len > SIZE_MAX - spool->size)
		return spool_fail(spool, EFBIG);
	if (spool->fd == -1 && spool->size + len <= spool->mem_limit)
		return spool_append_mem(spool, data, len);
	if (spool->fd == -1 && spool_to_file(spool) == -1)
		return -1;
	return spool_append_file(spool, data, len);
}

static int
spool_append_mem(struct spool *spool, const void *data, size_t len)
{
	size_t		 need = spool->size + len, cap;
	unsigned char	*p;

	if (need > spool->mem_cap) {
		/* Doubling, capped at mem_limit (need never exceeds it here). */
		cap = spool->mem_cap != 0 ? spool->mem_cap : SPOOL_MEM_INITIAL;
		while (cap < need)
			cap = cap > spool->mem_limit / 2 ? spool->mem_limit : cap * 2;
		if (cap > spool->mem_limit)
			cap = spool->mem_limit;
		if ((p = realloc(spool->mem, cap)) == NULL)
			return spool_fail(spool, ENOMEM);
		spool->mem = p;
		spool->mem_cap = cap;
	}
	memcpy(spool->mem + spool->size, data, len);
	spool->size = need;
	return 0;
}

static int
spool_append_file(struct spool *spool, const void *data, size_t len)
{
	struct iovec	 iov[2];

	if (spool->wbuf_len + len <= SPOOL_WBUF_SIZE) {
		memcpy(spool->wbuf + spool->wbuf_len, data, len);
		spool->wbuf_len += len;
		spool->size += len;
		return 0;
	}
	iov[0].iov_base = spool->wbuf;
	iov[0].iov_len = spool->wbuf_len;
	iov[1].iov_base = (void *)data;
	iov[1].iov_len = len;
	if (spool_pwrite_all(spool->fd, iov, 2, (off_t)spool->file_size) == -1)
		return spool_fail(spool, errno);
	spool->file_size += spool->wbuf_len + len;
	spool->wbuf_len = 0;
	spool->size += len;
	return 0;
}

/* Move the memory bytes to a new file; memory is freed only when they are written. */
static int
spool_to_file(struct spool *spool)
{
	struct iovec	 iov;

	if ((spool->wbuf = malloc(SPOOL_WBUF_SIZE)) == NULL)
		return spool_fail(spool, ENOMEM);
	if (spool_open_file(spool) == -1) {
		free(spool->wbuf);
		spool->wbuf = NULL;
		return spool_fail(spool, errno);
	}
	iov.iov_base = spool->mem;
	iov.iov_len = spool->size;
	if (spool->size > 0 && spool_pwrite_all(spool->fd, &iov, 1, 0) == -1) {
		int	 error = errno;

		spool_drop_file(spool);
		return spool_fail(spool, error);
	}
	spool->file_size = spool->size;
	free(spool->mem);
	spool->mem = NULL;
	spool->mem_cap = 0;
	return 0;
}

/* An unlinked file in dir: O_TMPFILE when the kernel and file system can, else mkstemp. */
static int
spool_open_file(struct spool *spool)
{
	char	 path[PATH_MAX];
	int	 fd;

#ifdef O_TMPFILE
	if ((fd = open(spool->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)) != -1) {
		spool->fd = fd;
		return 0;
	}
#endif
	if ((size_t)snprintf(path, sizeof(path), "%s/sluice-spool.XXXXXX", spool->dir) >=
	    sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = mkostemp(path, O_CLOEXEC)) == -1)
		return -1;
	if (unlink(path) == -1) {
		int	 error = errno;

		close(fd);
		errno = error;
		return -1;
	}
	spool->fd = fd;
	return 0;
}

/* Write every byte of iov at offset, across short writes and EINTR. */
static int
spool_pwrite_all(int fd, struct iovec *iov, int n, off_t offset)
{
	ssize_t	 w;
	size_t	 left;

	while (n > 0) {
		if (iov->iov_len == 0) {
			iov++;
			n--;
			continue;
		}
		if ((w = pwritev(fd, iov, n, offset)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (w == 0) {
			errno = EIO;
			return -1;
		}
		offset += w;
		for (left = (size_t)w; left > 0 && left >= iov->iov_len; n--, iov++)
			left -= iov->iov_len;
		if (left > 0) {
			iov->iov_base = (char *)iov->iov_base + left;
			iov->iov_len -= left;
		}
	}
	return 0;
}

/* Write out the write-behind buffer. */
int
spool_flush(struct spool *spool)
{
	struct iovec	 iov;

	if (spool->error != 0) {
		errno = spool->error;
		return -1;
	}
	if (spool->wbuf_len == 0)
		return 0;
	iov.iov_base = spool->wbuf;
	iov.iov_len = spool->wbuf_len;
	if (spool_pwrite_all(spool->fd, &iov, 1, (off_t)spool->file_size) == -1)
		return spool_fail(spool, errno);
	spool->file_size += spool->wbuf_len;
	spool->wbuf_len = 0;
	return 0;
}

size_t
spool_size(const struct spool *spool)
{
	return spool->size;
}

int
spool_on_disk(const struct spool *spool)
{
	return spool->fd != -1;
}

ssize_t
spool_read(struct spool *spool, off_t offset, void *buf, size_t len)
{
	unsigned char	*out = buf;
	size_t		 n, done = 0;
	ssize_t		 r;

	if (offset < 0) {
		errno = EINVAL;
		return -1;
	}
	if ((size_t)offset >= spool->size || len == 0)
		return 0;
	n = spool->size - (size_t)offset;
	if (len > n)
		len = n;
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	if (spool->fd == -1) {
		memcpy(out, spool->mem + offset, len);
		return (ssize_t)len;
	}
	while ((size_t)offset + done < spool->file_size && done < len) {
		n = spool->file_size - ((size_t)offset + done);
		if (n > len - done)
			n = len - done;
		if ((r = pread(spool->fd, out + done, n, offset + (off_t)done)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0) {
			errno = EIO;	/* the file is shorter than what we wrote */
			return -1;
		}
		done += (size_t)r;
	}
	if (done < len)
		memcpy(out + done, spool->wbuf + ((size_t)offset + done - spool->file_size),
		    len - done);
	return (ssize_t)len;
}

int
spool_add_to(struct spool *spool, off_t offset, size_t len, struct evbuffer *out)
{
	if (offset < 0 || (size_t)offset > spool->size || len > spool->size - (size_t)offset) {
		errno = EINVAL;
		return -1;
	}
	if (len == 0)
		return 0;
	if (spool->fd == -1) {
		if (evbuffer_add(out, spool->mem + offset, len) == -1) {
			errno = ENOMEM;
			return -1;
		}
		return 0;
	}
	if (spool_flush(spool) == -1 || spool_segment(spool) == -1)
		return -1;
	errno = 0;
	if (evbuffer_add_file_segment(out, spool->seg, offset, (ev_off_t)len) == -1) {
		/*
		 * On failure libevent drops a reference it never took: ours.
		 * The segment may be gone now, so forget it without freeing.
		 */
		spool->seg = NULL;
		spool->seg_len = 0;
		if (errno == 0)
			errno = EIO;
		return -1;
	}
	return 0;
}

/*
 * Make seg cover the whole file.  A segment's length is fixed when it is
 * made, so a spool that grew gets a new one; the old one lives on in any
 * chain that references it.
 */
static int
spool_segment(struct spool *spool)
{
	int	 fd;

	if (spool->seg != NULL && spool->seg_len == spool->size)
		return 0;
	if (spool->seg != NULL) {
		evbuffer_file_segment_free(spool->seg);
		spool->seg = NULL;
	}
	if ((fd = fcntl(spool->fd, F_DUPFD_CLOEXEC, 0)) == -1)
		return -1;
	spool->seg = evbuffer_file_segment_new(fd, 0, (ev_off_t)spool->size,
	    EVBUF_FS_CLOSE_ON_FREE | EVBUF_FS_DISABLE_LOCKING);
	if (spool->seg == NULL) {
		close(fd);
		errno = ENOMEM;
		return -1;
	}
	spool->seg_len = spool->size;
	return 0;
}
