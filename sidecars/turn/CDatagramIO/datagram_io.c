#define _GNU_SOURCE
#include "datagram_io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct cm_datagrams {
    unsigned capacity;
    struct mmsghdr *messages;
    struct iovec *vectors;
    struct sockaddr_storage *addresses;
};

cm_datagrams *cm_datagrams_create(unsigned capacity) {
    cm_datagrams *batch = calloc(1, sizeof *batch);
    if (batch == NULL) return NULL;
    batch->capacity = capacity;
    batch->messages = calloc(capacity, sizeof *batch->messages);
    batch->vectors = calloc(capacity, sizeof *batch->vectors);
    batch->addresses = calloc(capacity, sizeof *batch->addresses);
    if (batch->messages == NULL || batch->vectors == NULL || batch->addresses == NULL) {
        cm_datagrams_destroy(batch);
        return NULL;
    }
    for (unsigned i = 0; i < capacity; i++) {
        batch->messages[i].msg_hdr.msg_iov = &batch->vectors[i];
        batch->messages[i].msg_hdr.msg_iovlen = 1;
        batch->messages[i].msg_hdr.msg_name = &batch->addresses[i];
        batch->messages[i].msg_hdr.msg_namelen = sizeof batch->addresses[i];
    }
    return batch;
}

void cm_datagrams_destroy(cm_datagrams *batch) {
    if (batch == NULL) return;
    free(batch->messages);
    free(batch->vectors);
    free(batch->addresses);
    free(batch);
}

void cm_datagrams_set_buffer(cm_datagrams *batch, unsigned index, void *base, size_t length) {
    batch->vectors[index].iov_base = base;
    batch->vectors[index].iov_len = length;
}

struct sockaddr *cm_datagrams_address(cm_datagrams *batch, unsigned index) {
    return (struct sockaddr *)&batch->addresses[index];
}

void cm_datagrams_set_address_length(cm_datagrams *batch, unsigned index, socklen_t length) {
    batch->messages[index].msg_hdr.msg_namelen = length;
}

long cm_datagrams_received_length(const cm_datagrams *batch, unsigned index) {
    const struct mmsghdr *message = &batch->messages[index];
    if (message->msg_hdr.msg_flags & MSG_TRUNC) return -1;
    return (long)message->msg_len;
}

int cm_datagrams_receive(int fd, cm_datagrams *batch, unsigned count) {
    if (count > batch->capacity) count = batch->capacity;
    for (unsigned i = 0; i < count; i++) {
        batch->messages[i].msg_hdr.msg_namelen = sizeof batch->addresses[i];
        batch->messages[i].msg_hdr.msg_flags = 0;
    }
    int received;
    do {
        received = recvmmsg(fd, batch->messages, count, MSG_DONTWAIT, NULL);
    } while (received < 0 && errno == EINTR);
    if (received >= 0) return received;
    return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno;
}

int cm_datagrams_send(int fd, cm_datagrams *batch, unsigned start, unsigned count) {
    if (start >= batch->capacity) return 0;
    if (count > batch->capacity - start) count = batch->capacity - start;
    int sent;
    do {
        sent = sendmmsg(fd, &batch->messages[start], count, MSG_DONTWAIT);
    } while (sent < 0 && errno == EINTR);
    if (sent >= 0) return sent;
    return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno;
}

int cm_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int cm_epoll_watch(int epoll, int fd, uint64_t token) {
    struct epoll_event event = {.events = EPOLLIN, .data.u64 = token};
    return epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event);
}

void cm_epoll_unwatch(int epoll, int fd) { epoll_ctl(epoll, EPOLL_CTL_DEL, fd, NULL); }

int cm_epoll_wait(int epoll, uint64_t *tokens, int capacity, int timeout_ms) {
    struct epoll_event events[64];
    if (capacity > 64) capacity = 64;
    int ready = epoll_wait(epoll, events, capacity, timeout_ms);
    if (ready < 0) return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < ready; i++) tokens[i] = events[i].data.u64;
    return ready;
}

void cm_set_thread_name(const char *name) {
    char truncated[16];
    strncpy(truncated, name, sizeof truncated - 1);
    truncated[sizeof truncated - 1] = 0;
    pthread_setname_np(pthread_self(), truncated);
}

int cm_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

void cm_eventfd_signal(int fd) {
    uint64_t one = 1;
    ssize_t written;
    do {
        written = write(fd, &one, sizeof one);
    } while (written < 0 && errno == EINTR);
}

void cm_eventfd_drain(int fd) {
    uint64_t value;
    ssize_t got;
    do {
        got = read(fd, &value, sizeof value);
    } while (got < 0 && errno == EINTR);
}
