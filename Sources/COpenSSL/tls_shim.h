/* Small C helpers for the TLS handler: macros Swift cannot import, and the ALPN and SNI
 * callbacks, which are simplest in C. */
#ifndef CHATMAIL_TLS_SHIM_H
#define CHATMAIL_TLS_SHIM_H

#include <string.h>
#include <strings.h>
#include <stdlib.h>
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/bn.h>
#include <fcntl.h>
#include <stdio.h>

static inline long cm_ssl_ctx_set_min_proto(SSL_CTX *ctx, int version) {
    return SSL_CTX_set_min_proto_version(ctx, version);
}
static inline long cm_ssl_ctx_set_max_proto(SSL_CTX *ctx, int version) {
    return SSL_CTX_set_max_proto_version(ctx, version);
}
static inline long cm_ssl_ctx_set_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_set_mode(ctx, mode); }
/* No compression (CRIME), no renegotiation, the server's cipher order. */
static inline void cm_ssl_ctx_set_policy_options(SSL_CTX *ctx) {
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
}
static inline long cm_ssl_set_tlsext_host_name(SSL *ssl, const char *name) {
    return SSL_set_tlsext_host_name(ssl, name);
}
static inline long cm_bio_pending(BIO *bio) { return (long)BIO_ctrl_pending(bio); }

/* ALPN: the server's protocols in wire format (length-prefixed), in order of preference. */
typedef struct {
    unsigned char *protocols;
    unsigned int length;
} cm_alpn_list;

static int cm_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                          unsigned int inlen, void *arg) {
    (void)ssl;
    const cm_alpn_list *list = (const cm_alpn_list *)arg;
    unsigned char *selected = NULL;
    if (list == NULL || list->length == 0) return SSL_TLSEXT_ERR_NOACK;
    if (SSL_select_next_proto(&selected, outlen, list->protocols, list->length, in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK; /* no common protocol: go on without ALPN */
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
}

static inline void cm_ssl_ctx_set_alpn_list(SSL_CTX *ctx, cm_alpn_list *list) {
    SSL_CTX_set_alpn_select_cb(ctx, cm_alpn_select, list);
}

/* SNI: which context serves which name. Names are lower case; "*.example.org" matches one label. */
typedef struct {
    int count;
    const char **names;
    SSL_CTX **contexts;
} cm_sni_table;

static int cm_sni_select(SSL *ssl, int *alert, void *arg) {
    (void)alert;
    const cm_sni_table *table = (const cm_sni_table *)arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (name == NULL || table == NULL) return SSL_TLSEXT_ERR_OK; /* the default certificate */
    const char *dot = strchr(name, '.');
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < table->count; i++) {
            const char *candidate = table->names[i];
            int match = pass == 0 ? strcasecmp(candidate, name) == 0
                                  : (candidate[0] == '*' && candidate[1] == '.' && dot != NULL &&
                                     strcasecmp(candidate + 1, dot) == 0);
            if (match) {
                if (SSL_get_SSL_CTX(ssl) != table->contexts[i]) SSL_set_SSL_CTX(ssl, table->contexts[i]);
                return SSL_TLSEXT_ERR_OK;
            }
        }
    }
    return SSL_TLSEXT_ERR_OK;
}

static inline void cm_ssl_ctx_set_sni_table(SSL_CTX *ctx, cm_sni_table *table) {
    SSL_CTX_set_tlsext_servername_callback(ctx, cm_sni_select);
    SSL_CTX_set_tlsext_servername_arg(ctx, table);
}

/* The DNS names of a certificate: its subjectAltName entries, else its common name.
 * Calls `add(context, name)` for each. */
static inline void cm_x509_names(X509 *cert, void *context, void (*add)(void *, const char *)) {
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    int found = 0;
    if (names != NULL) {
        for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
            const GENERAL_NAME *entry = sk_GENERAL_NAME_value(names, i);
            if (entry->type != GEN_DNS) continue;
            const unsigned char *data = ASN1_STRING_get0_data(entry->d.dNSName);
            int length = ASN1_STRING_length(entry->d.dNSName);
            char buffer[256];
            if (length <= 0 || length >= (int)sizeof(buffer)) continue;
            memcpy(buffer, data, (size_t)length);
            buffer[length] = 0;
            add(context, buffer);
            found = 1;
        }
        GENERAL_NAMES_free(names);
    }
    if (!found) {
        char buffer[256];
        if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buffer, sizeof(buffer)) > 0)
            add(context, buffer);
    }
}

/* Copies what `bio` (a memory BIO) holds into a new malloc'd buffer; NULL when empty or out of memory. */
static inline char *cm_bio_copy(BIO *bio, size_t *length) {
    char *data = NULL;
    long size = BIO_get_mem_data(bio, &data);
    if (size <= 0 || data == NULL) return NULL;
    char *copy = malloc((size_t)size);
    if (copy == NULL) return NULL;
    memcpy(copy, data, (size_t)size);
    *length = (size_t)size;
    return copy;
}

/* A self-signed P-256 certificate for development: subject CN = `common_name`, subjectAltName
 * = `san` (e.g. "DNS:localhost,IP:127.0.0.1"), valid `days` days, as PEM in two new malloc'd
 * buffers (the caller frees them and writes them out). Returns 1, or 0 with the reason in the
 * error queue. */
static inline int cm_make_self_signed_pem(const char *common_name, const char *san, int days, char **cert_pem,
                                          size_t *cert_length, char **key_pem, size_t *key_length) {
    int ok = 0;
    *cert_pem = NULL;
    *key_pem = NULL;
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *cert = X509_new();
    X509_EXTENSION *extension = NULL;
    BIO *cert_bio = BIO_new(BIO_s_mem());
    BIO *key_bio = BIO_new(BIO_s_mem());
    if (key == NULL || cert == NULL || cert_bio == NULL || key_bio == NULL) goto done;
    X509_set_version(cert, 2);
    ASN1_INTEGER *serial = X509_get_serialNumber(cert);
    unsigned char random_serial[16];
    if (RAND_bytes(random_serial, sizeof(random_serial)) != 1) goto done;
    random_serial[0] &= 0x7f;
    BIGNUM *number = BN_bin2bn(random_serial, sizeof(random_serial), NULL);
    BN_to_ASN1_INTEGER(number, serial);
    BN_free(number);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), (long)days * 86400);
    X509_set_pubkey(cert, key);
    X509_NAME *name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)common_name, -1, -1, 0);
    X509_set_issuer_name(cert, name);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, cert, cert, NULL, NULL, 0);
    extension = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
    if (extension == NULL || X509_add_ext(cert, extension, -1) != 1) goto done;
    if (X509_sign(cert, key, EVP_sha256()) == 0) goto done;
    if (PEM_write_bio_PrivateKey(key_bio, key, NULL, NULL, 0, NULL, NULL) != 1) goto done;
    if (PEM_write_bio_X509(cert_bio, cert) != 1) goto done;
    *key_pem = cm_bio_copy(key_bio, key_length);
    *cert_pem = cm_bio_copy(cert_bio, cert_length);
    if (*key_pem == NULL || *cert_pem == NULL) {
        free(*key_pem);
        free(*cert_pem);
        *key_pem = NULL;
        *cert_pem = NULL;
        goto done;
    }
    ok = 1;
done:
    BIO_free(cert_bio);
    BIO_free(key_bio);
    X509_EXTENSION_free(extension);
    X509_free(cert);
    EVP_PKEY_free(key);
    return ok;
}

#endif
