#ifndef CHATMAIL_DATAGRAM_IO_H
#define CHATMAIL_DATAGRAM_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/// A batch of datagrams for recvmmsg(2) and sendmmsg(2): per entry one buffer and one address.
typedef struct cm_datagrams cm_datagrams;

/// A batch of `capacity` entries, or NULL when out of memory.
cm_datagrams *cm_datagrams_create(unsigned capacity);
void cm_datagrams_destroy(cm_datagrams *batch);

/// Entry `index` receives into, or sends, `length` bytes at `base`.
void cm_datagrams_set_buffer(cm_datagrams *batch, unsigned index, void *base, size_t length);
/// The address of entry `index`: the source after a receive, the destination to fill in before a send
/// (room for any address family), then `cm_datagrams_set_address_length`.
struct sockaddr *cm_datagrams_address(cm_datagrams *batch, unsigned index);
void cm_datagrams_set_address_length(cm_datagrams *batch, unsigned index, socklen_t length);
/// The length of the datagram entry `index` received, or -1 if it did not fit its buffer (truncated).
long cm_datagrams_received_length(const cm_datagrams *batch, unsigned index);

/// Receives up to `count` datagrams into entries 0..count-1 without blocking: the number received, 0 when none
/// is waiting, or -errno.
int cm_datagrams_receive(int fd, cm_datagrams *batch, unsigned count);
/// Sends entries `start`..`start+count-1` without blocking: the number sent (0 when the socket buffer is full),
/// or -errno when the first one failed.
int cm_datagrams_send(int fd, cm_datagrams *batch, unsigned start, unsigned count);

/// A close-on-exec epoll instance, or -1 with errno.
int cm_epoll_create(void);
/// Watches `fd` for input, reported as `token`. 0 or -1 with errno.
int cm_epoll_watch(int epoll, int fd, uint64_t token);
/// Stops watching `fd`.
void cm_epoll_unwatch(int epoll, int fd);
/// Waits up to `timeout_ms` for input; writes the tokens of ready descriptors to `tokens`. Their number, 0 on
/// timeout or signal, or -errno.
int cm_epoll_wait(int epoll, uint64_t *tokens, int capacity, int timeout_ms);

/// Names the calling thread (up to 15 characters show).
void cm_set_thread_name(const char *name);

/// A non-blocking, close-on-exec eventfd, or -1 with errno.
int cm_eventfd(void);
/// Wakes whoever polls `fd`.
void cm_eventfd_signal(int fd);
/// Resets `fd` after a wake-up.
void cm_eventfd_drain(int fd);

#endif
