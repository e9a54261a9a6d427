/*
 * io.h - optimistic writes on socket bufferevents.
 *
 * A socket bufferevent with EV_WRITE enabled registers for writability
 * (epoll_ctl) each time output is queued and deregisters once it drained:
 * two system calls and a loop turn per reply, measured at 28 epoll_ctl per
 * proxied message.  Our bufferevents keep EV_WRITE disabled; after queuing
 * a batch we write it at once, and only what the socket did not take is
 * left to the bufferevent (EV_WRITE enabled until it drains; the owner's
 * write callback then disables it again).
 */
#ifndef SLUICE_IO_H
#define SLUICE_IO_H

struct bufferevent;

/*
 * Write as much of bev's output as the socket takes now.  Returns 1 when
 * everything went out, 0 when the rest waits for writability (EV_WRITE is
 * now enabled), -1 on a socket error (EV_WRITE enabled too, so the
 * bufferevent's event callback reports it).
 */
int	 io_write_now(struct bufferevent *bev);

/* From the owner's write callback: all written, back to optimistic mode. */
void	 io_write_drained(struct bufferevent *bev);

#endif /* SLUICE_IO_H */
