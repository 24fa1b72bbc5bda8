#ifndef CHATMAIL_SHIMS_H
#define CHATMAIL_SHIMS_H

#include <sys/types.h>
#include <stdint.h>

/// Spawns `path` (looked up in PATH when it has no slash) as the leader of a new process group,
/// with an empty signal mask, default signal dispositions, stdin on /dev/null, stdout and stderr
/// inherited (or both `output_fd` when it is >= 0, e.g. a journal stream), `control_fd` (when >= 0)
/// as fd 3 and every other fd closed. Returns 0 or an errno.
int cm_spawn(const char *path, char *const argv[], char *const envp[], int control_fd, int output_fd,
             pid_t *pid_out);

/// pidfd_open(2); -1 with errno on failure.
int cm_pidfd_open(pid_t pid);

/// Reaps the child behind `pidfd` without blocking. Returns 1 when reaped (with `*exited` 1 for a
/// normal exit and `*status` the exit code, or `*exited` 0 and `*status` the signal number),
/// 0 when it is still running, -1 with errno on error.
int cm_reap_pidfd(int pidfd, int *exited, int *status);

/// A connected AF_UNIX stream socket pair, both ends close-on-exec. 0 or -1 with errno.
int cm_socketpair(int fds[2]);

/// The uid and pid of the peer of a connected AF_UNIX socket (SO_PEERCRED). 0 or -1 with errno.
int cm_peer_credentials(int fd, uid_t *uid, pid_t *pid);

/// CLOCK_MONOTONIC in microseconds, as systemd's MONOTONIC_USEC wants it.
uint64_t cm_monotonic_usec(void);

/// Tunes glibc's malloc for a server that moves data in buffers of up to a few hundred KiB: such
/// buffers come from the heap instead of a fresh mmap each (below 1 MiB), and up to 16 MiB of free
/// heap stays mapped instead of going back to the kernel after every burst. Without it every large
/// read or write buffer costs page faults and zeroed pages, a large share of the CPU in bulk relaying.
void cm_tune_malloc(void);

#endif
