#include "push_curl.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct chatmail_push_handle {
    CURL *curl;
    struct curl_slist *headers;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_result = CURLE_FAILED_INIT;

static void global_init(void) { global_result = curl_global_init(CURL_GLOBAL_DEFAULT); }

/// The proxy's answer body is not needed: it is read and dropped.
static size_t discard(char *data, size_t size, size_t count, void *context) {
    (void)data;
    (void)context;
    return size * count;
}

chatmail_push_handle *chatmail_push_handle_new(void) {
    pthread_once(&global_once, global_init);
    if (global_result != CURLE_OK) return NULL;
    chatmail_push_handle *handle = calloc(1, sizeof *handle);
    if (!handle) return NULL;
    handle->curl = curl_easy_init();
    // No "Expect: 100-continue" round trip; the body is the token as it is.
    handle->headers = curl_slist_append(NULL, "Expect:");
    handle->headers = curl_slist_append(handle->headers, "Content-Type: text/plain");
    if (!handle->curl || !handle->headers) {
        chatmail_push_handle_free(handle);
        return NULL;
    }
    return handle;
}

void chatmail_push_handle_free(chatmail_push_handle *handle) {
    if (!handle) return;
    if (handle->curl) curl_easy_cleanup(handle->curl);
    curl_slist_free_all(handle->headers);
    free(handle);
}

long chatmail_push_post(
    chatmail_push_handle *handle, const char *url, const char *ca_file, const void *body, size_t length,
    long timeout_ms, char *error, size_t error_size) {
    CURL *curl = handle->curl;
    char buffer[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(curl, CURLOPT_CAINFO, ca_file);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "chatmail-imap");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, handle->headers);
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)length);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, buffer);
    CURLcode result = curl_easy_perform(curl);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, NULL);
    // The body belongs to the caller: nothing of it stays in the handle.
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, NULL);
    if (result != CURLE_OK) {
        snprintf(error, error_size, "%s", buffer[0] ? buffer : curl_easy_strerror(result));
        return -1;
    }
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    return status;
}
