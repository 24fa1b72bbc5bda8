#ifndef CHATMAIL_PUSH_CURL_H
#define CHATMAIL_PUSH_CURL_H

#include <stddef.h>

/// One libcurl easy handle: it keeps its connection to the proxy open between posts.
typedef struct chatmail_push_handle chatmail_push_handle;

/// A new handle, or NULL; libcurl's global state is set up on the first call.
chatmail_push_handle *chatmail_push_handle_new(void);
void chatmail_push_handle_free(chatmail_push_handle *handle);

/// POSTs `length` bytes of `body` to `url` (https verified against the system's CAs, or against
/// `ca_file` when not NULL; no redirects; http and https only) within `timeout_ms`. Returns the
/// HTTP status, or -1 on a transport error with its description in `error` (never the body).
long chatmail_push_post(
    chatmail_push_handle *handle, const char *url, const char *ca_file, const void *body, size_t length,
    long timeout_ms, char *error, size_t error_size);

#endif
