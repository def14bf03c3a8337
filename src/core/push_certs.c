/* push_certs.c: push certificate import and expiry (push_certs.h). The
 * parsers turn PEM or PKCS#12 into one canonical form (certificate chain PEM,
 * unencrypted PKCS#8 key PEM) after checking what a working MDM push
 * certificate needs; pushcert_import adds the topic-mismatch rule; the
 * expiry job warns at 30/14/7/1 days. */
#include "core/push_certs.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pki/pki.h"
#include "store/store.h"
#include "util/log.h"
#include "util/metrics.h"

void pushcert_clear(struct store_pushcert *c)
{
    free(c->topic);
    free(c->cert_pem);
    free(c->key_pem);
    free(c->subject);
    free(c->serial);
    free(c->fingerprint);
    free(c->disabled_reason);
    memset(c, 0, sizeof *c);
}

static int fail(char *err, size_t n, const char *msg)
{
    snprintf(err, n, "%s", msg);
    ERR_clear_error();
    return PUSHCERT_INVALID;
}

/* The subject's UID (OID 0.9.2342.19200300.100.1.1) as a new string. */
static char *subject_uid(X509 *cert)
{
    X509_NAME *name = X509_get_subject_name(cert);
    int i = X509_NAME_get_index_by_NID(name, NID_userId, -1);
    if (i < 0)
        return NULL;
    ASN1_STRING *v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    unsigned char *utf8 = NULL;
    int len = ASN1_STRING_to_UTF8(&utf8, v);
    if (len < 0)
        return NULL;
    char *s = strndup((const char *)utf8, (size_t)len);
    OPENSSL_free(utf8);
    return s;
}

static char *bio_text(BIO *b)
{
    char *data = NULL;
    long len = BIO_get_mem_data(b, &data);
    return len >= 0 ? strndup(data, (size_t)len) : NULL;
}

static char *serial_hex(X509 *cert)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    char *s = hex ? strdup(hex) : NULL;
    OPENSSL_free(hex);
    BN_free(bn);
    return s;
}

/* Checks cert + key and fills out. chain may be NULL. */
static int fill(X509 *cert, EVP_PKEY *key, STACK_OF(X509) *chain, int64_t now,
                struct store_pushcert *out, char *err, size_t errn)
{
    memset(out, 0, sizeof *out);
    if (X509_check_private_key(cert, key) != 1)
        return fail(err, errn, "the private key does not match the certificate");
    char *uid = subject_uid(cert);
    if (!uid)
        return fail(err, errn, "the certificate has no UID in its subject: not an MDM push "
                               "certificate (Apple puts the topic there)");
    if (strncmp(uid, PUSHCERT_TOPIC_PREFIX, strlen(PUSHCERT_TOPIC_PREFIX)) != 0 ||
        strlen(uid) <= strlen(PUSHCERT_TOPIC_PREFIX) || strlen(uid) > 200) {
        char msg[300];
        snprintf(msg, sizeof msg, "the certificate's UID \"%.120s\" does not start with "
                                  PUSHCERT_TOPIC_PREFIX ": not an MDM push certificate", uid);
        free(uid);
        return fail(err, errn, msg);
    }
    struct pki_cert_info info;
    pki_cert_info(cert, &info);
    if (info.not_after <= now) {
        free(uid);
        return fail(err, errn, "the certificate has expired; renew it in Apple's Push "
                               "Certificates Portal (keep the same topic)");
    }
    if (info.not_before > now + 300) {
        free(uid);
        return fail(err, errn, "the certificate is not valid yet");
    }
    BIO *cb = BIO_new(BIO_s_mem()), *kb = BIO_new(BIO_s_mem());
    int ok = cb && kb && PEM_write_bio_X509(cb, cert) == 1 &&
             PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL) == 1;
    for (int i = 0; ok && chain && i < sk_X509_num(chain); i++)
        if (X509_cmp(sk_X509_value(chain, i), cert) != 0)
            ok = PEM_write_bio_X509(cb, sk_X509_value(chain, i)) == 1;
    out->topic = uid;
    out->cert_pem = ok ? bio_text(cb) : NULL;
    out->key_pem = ok ? bio_text(kb) : NULL;
    out->subject = strdup(info.subject);
    out->serial = serial_hex(cert);
    out->fingerprint = strdup(info.fingerprint);
    out->not_before = info.not_before;
    out->not_after = info.not_after;
    BIO_free(cb);
    BIO_free(kb);
    if (!out->cert_pem || !out->key_pem || !out->subject || !out->serial || !out->fingerprint) {
        pushcert_clear(out);
        return fail(err, errn, "out of memory");
    }
    return PUSHCERT_OK;
}

static int pass_cb(char *buf, int size, int rwflag, void *u)
{
    (void)rwflag;
    const char *p = u;
    if (!p)
        return -1;
    int n = (int)strlen(p);
    if (n > size)
        return -1;
    memcpy(buf, p, (size_t)n);
    return n;
}

int pushcert_parse_pem(const char *cert_pem, size_t cert_len, const char *key_pem, size_t key_len,
                       const char *password, int64_t now, struct store_pushcert *out, char *err,
                       size_t errn)
{
    memset(out, 0, sizeof *out);
    if (cert_len > 1 << 20 || key_len > 1 << 20)
        return fail(err, errn, "certificate or key larger than 1 MiB");
    BIO *cb = BIO_new_mem_buf(cert_pem, (int)cert_len);
    BIO *kb = BIO_new_mem_buf(key_pem, (int)key_len);
    X509 *cert = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
    STACK_OF(X509) *chain = sk_X509_new_null();
    X509 *extra;
    while (cert && chain && (extra = PEM_read_bio_X509(cb, NULL, NULL, NULL)) != NULL)
        if (!sk_X509_push(chain, extra))
            X509_free(extra);
    ERR_clear_error();
    EVP_PKEY *key = kb ? PEM_read_bio_PrivateKey(kb, NULL, pass_cb, (void *)password) : NULL;
    int rc;
    if (!cert)
        rc = fail(err, errn, "the certificate is not PEM (expected -----BEGIN CERTIFICATE-----)");
    else if (!key)
        rc = fail(err, errn, password ? "cannot read the private key (not PEM, or wrong password)"
                                      : "cannot read the private key (not PEM, or encrypted: "
                                        "give its password)");
    else
        rc = fill(cert, key, chain, now, out, err, errn);
    X509_free(cert);
    EVP_PKEY_free(key);
    sk_X509_pop_free(chain, X509_free);
    BIO_free(cb);
    BIO_free(kb);
    return rc;
}

int pushcert_parse_p12(const uint8_t *der, size_t len, const char *password, int64_t now,
                       struct store_pushcert *out, char *err, size_t errn)
{
    memset(out, 0, sizeof *out);
    if (len > 1 << 20)
        return fail(err, errn, "PKCS#12 file larger than 1 MiB");
    const unsigned char *p = der;
    PKCS12 *p12 = d2i_PKCS12(NULL, &p, (long)len);
    if (!p12)
        return fail(err, errn, "not a PKCS#12 file");
    const char *pass = password ? password : "";
    if (PKCS12_mac_present(p12) && PKCS12_verify_mac(p12, pass, -1) != 1 &&
        !(pass[0] == '\0' && PKCS12_verify_mac(p12, NULL, 0) == 1)) {
        PKCS12_free(p12);
        return fail(err, errn, "wrong PKCS#12 password");
    }
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    STACK_OF(X509) *chain = NULL;
    int rc;
    if (PKCS12_parse(p12, pass, &key, &cert, &chain) != 1)
        rc = fail(err, errn, "cannot read the PKCS#12 contents (an unsupported legacy "
                             "cipher? re-export with AES)");
    else if (!cert || !key)
        rc = fail(err, errn, "the PKCS#12 file needs both the certificate and its private key");
    else
        rc = fill(cert, key, chain, now, out, err, errn);
    X509_free(cert);
    EVP_PKEY_free(key);
    sk_X509_pop_free(chain, X509_free);
    PKCS12_free(p12);
    return rc;
}

int pushcert_any(struct store *s)
{
    struct store_pushcert **list = NULL;
    size_t n = 0;
    int rc = store_pushcert_list(s, 0, &list, &n);
    if (rc != STORE_OK)
        return 1;
    store_pushcert_list_free(list, n);
    return n > 0;
}

int pushcert_import(struct store *s, const struct store_pushcert *c, int force, int64_t now,
                    int *replaced, char *err, size_t errn)
{
    *replaced = 0;
    struct store_pushcert *old = NULL;
    int rc = store_pushcert_get(s, c->topic, &old);
    if (rc == STORE_OK) {
        *replaced = 1;
        store_pushcert_free(old);
    } else if (rc != STORE_NOTFOUND) {
        snprintf(err, errn, "storage error");
        return PUSHCERT_STORE;
    } else {
        int64_t others = 0;
        if (store_push_topic_devices(s, NULL, c->topic, &others) != STORE_OK) {
            snprintf(err, errn, "storage error");
            return PUSHCERT_STORE;
        }
        if (others > 0 && !force) {
            snprintf(err, errn,
                     "%lld enrolled device(s) use another topic than this certificate's %s: a "
                     "renewed certificate must keep its topic (renew the existing certificate in "
                     "Apple's portal rather than creating a new one), or devices can no longer "
                     "be woken; import with force to add it anyway",
                     (long long)others, c->topic);
            log_warn("push certificate refused: topic mismatch", "topic=%s devices_other=%lld",
                     c->topic, (long long)others);
            return PUSHCERT_TOPIC_MISMATCH;
        }
    }
    if (store_pushcert_put(s, c, now) != STORE_OK) {
        snprintf(err, errn, "storage error");
        return PUSHCERT_STORE;
    }
    log_info("push certificate imported", "topic=%s not_after=%lld replaced=%d force=%d",
             c->topic, (long long)c->not_after, *replaced, force);
    return PUSHCERT_OK;
}

int pushcert_warn_days(int64_t not_after, int64_t now)
{
    static const int thresholds[] = {1, 7, 14, 30};
    if (not_after <= now)
        return -1;
    int64_t left = not_after - now;
    for (size_t i = 0; i < sizeof thresholds / sizeof thresholds[0]; i++)
        if (left <= (int64_t)thresholds[i] * 86400)
            return thresholds[i];
    return 0;
}

void pushcert_expiry_job(struct store *s, void *arg, int64_t now)
{
    (void)arg;
    struct store_pushcert **list = NULL;
    size_t n = 0;
    if (store_pushcert_list(s, 0, &list, &n) != STORE_OK) {
        log_warn("push certificate expiry check failed", "%s", "");
        return;
    }
    long long expiring = 0;
    double soonest = -1e9;
    for (size_t i = 0; i < n; i++) {
        struct store_pushcert *c = list[i];
        double days = (double)(c->not_after - now) / 86400.0;
        if (soonest < -1e8 || days < soonest)
            soonest = days;
        int w = pushcert_warn_days(c->not_after, now);
        if (w != 0)
            expiring++;
        if (w == -1 && c->warned_days != -1) {
            log_error("push certificate expired: devices on this topic can no longer be woken",
                      "topic=%s not_after=%lld", c->topic, (long long)c->not_after);
            store_pushcert_set_warned(s, c->topic, -1);
        } else if (w > 0 && (c->warned_days == 0 || c->warned_days > w)) {
            log_warn("push certificate expires soon: renew it (same topic) in Apple's portal",
                     "topic=%s days_left=%.1f threshold=%d", c->topic, days, w);
            store_pushcert_set_warned(s, c->topic, w);
        }
    }
    metrics_push_cert_expiry(n ? expiring : -1, soonest);
    store_pushcert_list_free(list, n);
}
