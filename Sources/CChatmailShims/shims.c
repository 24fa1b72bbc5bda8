#define _GNU_SOURCE
#include "chatmail_shims.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

int cm_spawn(const char *path, char *const argv[], char *const envp[], int control_fd, int output_fd,
             pid_t *pid_out) {
    posix_spawnattr_t attr;
    posix_spawn_file_actions_t actions;
    sigset_t empty, all;
    int rc;

    if ((rc = posix_spawnattr_init(&attr)) != 0) return rc;
    if ((rc = posix_spawn_file_actions_init(&actions)) != 0) {
        posix_spawnattr_destroy(&attr);
        return rc;
    }
    sigemptyset(&empty);
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
    if (rc == 0) rc = posix_spawnattr_setsigmask(&attr, &empty);
    if (rc == 0) rc = posix_spawnattr_setsigdefault(&attr, &all);
    if (rc == 0) rc = posix_spawnattr_setpgroup(&attr, 0);
    if (rc == 0) rc = posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    /* Before fd 3 is taken by the control fd, so that an output_fd of 3 is read first. */
    if (rc == 0 && output_fd >= 0) rc = posix_spawn_file_actions_adddup2(&actions, output_fd, 1);
    if (rc == 0 && output_fd >= 0) rc = posix_spawn_file_actions_adddup2(&actions, output_fd, 2);
    if (rc == 0 && control_fd >= 0) {
        /* dup2 onto itself would keep FD_CLOEXEC set; callers pass an fd other than 3. */
        if (control_fd == 3) rc = EINVAL;
        else rc = posix_spawn_file_actions_adddup2(&actions, control_fd, 3);
    }
    if (rc == 0) rc = posix_spawn_file_actions_addclosefrom_np(&actions, control_fd >= 0 ? 4 : 3);
    if (rc == 0) {
        if (strchr(path, '/') != NULL) rc = posix_spawn(pid_out, path, &actions, &attr, argv, envp);
        else rc = posix_spawnp(pid_out, path, &actions, &attr, argv, envp);
    }
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    return rc;
}

int cm_pidfd_open(pid_t pid) {
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

int cm_reap_pidfd(int pidfd, int *exited, int *status) {
    siginfo_t info;
    memset(&info, 0, sizeof(info));
    if (waitid((idtype_t)P_PIDFD, (id_t)pidfd, &info, WEXITED | WNOHANG) != 0) return -1;
    if (info.si_pid == 0) return 0;
    *exited = info.si_code == CLD_EXITED;
    *status = info.si_status;
    return 1;
}

int cm_socketpair(int fds[2]) {
    return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds);
}

int cm_peer_credentials(int fd, uid_t *uid, pid_t *pid) {
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return -1;
    *uid = cred.uid;
    *pid = cred.pid;
    return 0;
}

uint64_t cm_monotonic_usec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void cm_tune_malloc(void) {
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    mallopt(M_TRIM_THRESHOLD, 16 << 20);
}
