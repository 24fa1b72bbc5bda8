#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/kdf.h>
#include <openssl/core_names.h>
#include <openssl/params.h>

/// HKDF (RFC 5869, extract-then-expand) through an already fetched EVP_KDF "HKDF".
/// OSSL_PARAM arrays keep raw pointers, so they are built here in C, on this stack frame,
/// rather than from Swift. Returns 1 on success, 0 on failure (the OpenSSL error queue says why).
/// An empty salt or info is left out, which RFC 5869 treats as HashLen zero bytes / the empty string.
static inline int chatmail_hkdf(EVP_KDF *kdf, const char *digest, const unsigned char *key, size_t key_len,
                                const unsigned char *salt, size_t salt_len, const unsigned char *info,
                                size_t info_len, unsigned char *out, size_t out_len) {
    if (kdf == NULL || digest == NULL || key == NULL || out == NULL) {
        return 0;
    }
    EVP_KDF_CTX *ctx = EVP_KDF_CTX_new(kdf);
    if (ctx == NULL) {
        return 0;
    }
    OSSL_PARAM params[5];
    OSSL_PARAM *p = params;
    *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)digest, 0);
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)key, key_len);
    if (salt != NULL && salt_len > 0) {
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len);
    }
    if (info != NULL && info_len > 0) {
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, info_len);
    }
    *p = OSSL_PARAM_construct_end();
    int ok = EVP_KDF_derive(ctx, out, out_len, params);
    EVP_KDF_CTX_free(ctx);
    return ok == 1 ? 1 : 0;
}
