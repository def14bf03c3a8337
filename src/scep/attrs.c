/* attrs.c: SCEP (RFC 8894) signed attributes and small ASN.1 bodies:
 * reading messageType, pkiStatus, failInfo, nonces, transactionID,
 * challengePassword and failInfoText from a SignedData's signer; encoding
 * them for cms_sign_attrs; the CSR's challengePassword; IssuerAndSubject and
 * IssuerAndSerialNumber. Called by scep/message.c and scep/client.c. */
#include "scep/attrs.h"

#include <limits.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void scep_attrs_init(struct scep_attrs *a)
{
    memset(a, 0, sizeof *a);
    a->message_type = -1;
    a->pki_status = -1;
    a->fail_info = -1;
}

/* ---- reading ---- */

/* messageType, pkiStatus and failInfo are decimal numbers in a
 * PrintableString ("19", "0"); three digits is more than any defined value. */
static int read_number(CMS_ContentInfo *cms, const char *oid, int *out)
{
    const ASN1_STRING *s = NULL;
    int r = cms_signed_attr(cms, oid, &s);
    if (r <= 0)
        return r;
    const unsigned char *d = ASN1_STRING_get0_data(s);
    int n = ASN1_STRING_length(s);
    if (ASN1_STRING_type(s) != V_ASN1_PRINTABLESTRING || n < 1 || n > 3)
        return -1;
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (d[i] < '0' || d[i] > '9')
            return -1;
        v = v * 10 + (d[i] - '0');
    }
    *out = v;
    return 1;
}

static int read_nonce(CMS_ContentInfo *cms, const char *oid, uint8_t out[SCEP_NONCE_LEN],
                      size_t *len)
{
    const ASN1_STRING *s = NULL;
    int r = cms_signed_attr(cms, oid, &s);
    if (r <= 0)
        return r;
    int n = ASN1_STRING_length(s);
    /* RFC 8894 says 16 octets; shorter ones are tolerated (they are only
     * echoed back), longer ones would not fit and are refused. */
    if (ASN1_STRING_type(s) != V_ASN1_OCTET_STRING || n < 1 || n > SCEP_NONCE_LEN)
        return -1;
    memcpy(out, ASN1_STRING_get0_data(s), (size_t)n);
    *len = (size_t)n;
    return 1;
}

/* transactionID is a PrintableString; IA5String / UTF8String holding only
 * printable ASCII are accepted too, since the value is only compared. */
static int read_transaction_id(CMS_ContentInfo *cms, char out[SCEP_TID_MAX + 1])
{
    const ASN1_STRING *s = NULL;
    int r = cms_signed_attr(cms, SCEP_OID_TRANSACTION_ID, &s);
    if (r <= 0)
        return r;
    int t = ASN1_STRING_type(s);
    int n = ASN1_STRING_length(s);
    const unsigned char *d = ASN1_STRING_get0_data(s);
    if ((t != V_ASN1_PRINTABLESTRING && t != V_ASN1_IA5STRING && t != V_ASN1_UTF8STRING) ||
        n < 1 || n > SCEP_TID_MAX)
        return -1;
    for (int i = 0; i < n; i++)
        if (d[i] < 0x20 || d[i] > 0x7e)
            return -1;
    memcpy(out, d, (size_t)n);
    out[n] = '\0';
    return 1;
}

static int is_directory_string(int type)
{
    return type == V_ASN1_PRINTABLESTRING || type == V_ASN1_UTF8STRING ||
           type == V_ASN1_IA5STRING || type == V_ASN1_T61STRING || type == V_ASN1_BMPSTRING ||
           type == V_ASN1_UNIVERSALSTRING;
}

/* A DirectoryString as malloc'd UTF-8 of at most max bytes, without NULs. */
static char *directory_string_utf8(const ASN1_STRING *s, size_t max)
{
    if (!is_directory_string(ASN1_STRING_type(s)))
        return NULL;
    unsigned char *utf8 = NULL;
    int n = ASN1_STRING_to_UTF8(&utf8, s);
    if (n < 0) {
        ERR_clear_error();
        return NULL;
    }
    if ((size_t)n > max || memchr(utf8, '\0', (size_t)n)) {
        OPENSSL_free(utf8);
        return NULL;
    }
    char *out = strndup((const char *)utf8, (size_t)n);
    OPENSSL_free(utf8);
    return out;
}

static int read_challenge(CMS_ContentInfo *cms, struct scep_attrs *a)
{
    const ASN1_STRING *s = NULL;
    int r = cms_signed_attr(cms, SCEP_OID_CHALLENGE, &s);
    if (r <= 0)
        return r;
    char *c = directory_string_utf8(s, SCEP_CHALLENGE_MAX);
    if (!c)
        return -1;
    snprintf(a->challenge, sizeof a->challenge, "%s", c);
    a->has_challenge = 1;
    free(c);
    return 1;
}

/* failInfoText is informative only: any readable string, truncated. */
static int read_fail_text(CMS_ContentInfo *cms, char *out, size_t cap)
{
    const ASN1_STRING *s = NULL;
    int r = cms_signed_attr(cms, SCEP_OID_FAIL_INFO_TEXT, &s);
    if (r <= 0)
        return r;
    char *t = directory_string_utf8(s, 64 * 1024);
    if (!t)
        return -1;
    snprintf(out, cap, "%s", t);
    free(t);
    return 1;
}

int scep_attrs_read(CMS_ContentInfo *cms, struct scep_attrs *a, const char **reason)
{
    scep_attrs_init(a);
    if (read_number(cms, SCEP_OID_MESSAGE_TYPE, &a->message_type) < 0) {
        *reason = "malformed messageType attribute";
        return -1;
    }
    if (read_number(cms, SCEP_OID_PKI_STATUS, &a->pki_status) < 0) {
        *reason = "malformed pkiStatus attribute";
        return -1;
    }
    if (read_number(cms, SCEP_OID_FAIL_INFO, &a->fail_info) < 0) {
        *reason = "malformed failInfo attribute";
        return -1;
    }
    if (read_transaction_id(cms, a->transaction_id) < 0) {
        *reason = "malformed transactionID attribute";
        return -1;
    }
    if (read_nonce(cms, SCEP_OID_SENDER_NONCE, a->sender_nonce, &a->sender_nonce_len) < 0) {
        *reason = "malformed senderNonce attribute";
        return -1;
    }
    if (read_nonce(cms, SCEP_OID_RECIPIENT_NONCE, a->recipient_nonce,
                   &a->recipient_nonce_len) < 0) {
        *reason = "malformed recipientNonce attribute";
        return -1;
    }
    if (read_challenge(cms, a) < 0) {
        *reason = "malformed challengePassword attribute";
        return -1;
    }
    if (read_fail_text(cms, a->fail_text, sizeof a->fail_text) < 0) {
        *reason = "malformed failInfoText attribute";
        return -1;
    }
    return 0;
}

/* ---- encoding ---- */

static void add(struct scep_attrs_enc *e, const char *oid, int type, const void *v, size_t len)
{
    e->list[e->n++] = (struct cms_attr){.oid = oid, .type = type, .value = v, .len = len};
}

void scep_attrs_encode(const struct scep_attrs *a, struct scep_attrs_enc *out)
{
    memset(out, 0, sizeof *out);
    if (a->message_type >= 0) {
        snprintf(out->type, sizeof out->type, "%d", a->message_type);
        add(out, SCEP_OID_MESSAGE_TYPE, V_ASN1_PRINTABLESTRING, out->type, strlen(out->type));
    }
    if (a->pki_status >= 0) {
        snprintf(out->status, sizeof out->status, "%d", a->pki_status);
        add(out, SCEP_OID_PKI_STATUS, V_ASN1_PRINTABLESTRING, out->status, strlen(out->status));
    }
    if (a->fail_info >= 0) {
        snprintf(out->fail, sizeof out->fail, "%d", a->fail_info);
        add(out, SCEP_OID_FAIL_INFO, V_ASN1_PRINTABLESTRING, out->fail, strlen(out->fail));
    }
    if (a->sender_nonce_len)
        add(out, SCEP_OID_SENDER_NONCE, V_ASN1_OCTET_STRING, a->sender_nonce,
            a->sender_nonce_len);
    if (a->recipient_nonce_len)
        add(out, SCEP_OID_RECIPIENT_NONCE, V_ASN1_OCTET_STRING, a->recipient_nonce,
            a->recipient_nonce_len);
    if (a->transaction_id[0])
        add(out, SCEP_OID_TRANSACTION_ID, V_ASN1_PRINTABLESTRING, a->transaction_id,
            strlen(a->transaction_id));
    if (a->has_challenge) {
        /* PrintableString when the password allows it (most readers expect
         * that), UTF8String otherwise. */
        size_t n = strlen(a->challenge);
        int printable = ASN1_PRINTABLE_type((const unsigned char *)a->challenge, (int)n) ==
                        V_ASN1_PRINTABLESTRING;
        add(out, SCEP_OID_CHALLENGE, printable ? V_ASN1_PRINTABLESTRING : V_ASN1_UTF8STRING,
            a->challenge, n);
    }
    if (a->fail_text[0])
        add(out, SCEP_OID_FAIL_INFO_TEXT, V_ASN1_UTF8STRING, a->fail_text, strlen(a->fail_text));
}

/* ---- the CSR's challengePassword ---- */

int scep_csr_challenge(X509_REQ *csr, char **out)
{
    *out = NULL;
    int idx = X509_REQ_get_attr_by_NID(csr, NID_pkcs9_challengePassword, -1);
    if (idx < 0)
        return 0;
    if (X509_REQ_get_attr_by_NID(csr, NID_pkcs9_challengePassword, idx) >= 0)
        return -1; /* two passwords: which one would we check? */
    X509_ATTRIBUTE *a = X509_REQ_get_attr(csr, idx);
    ASN1_TYPE *t = a && X509_ATTRIBUTE_count(a) == 1 ? X509_ATTRIBUTE_get0_type(a, 0) : NULL;
    if (!t || !is_directory_string(t->type))
        return -1;
    *out = directory_string_utf8(t->value.asn1_string, SCEP_CHALLENGE_MAX);
    return *out ? 1 : -1;
}

/* ---- IssuerAndSubject / IssuerAndSerialNumber ---- */

/* Opens the outer SEQUENCE, which must span exactly der[0..len). */
static int open_sequence(const uint8_t *der, size_t len, const unsigned char **p,
                         const unsigned char **end)
{
    if (!der || len == 0 || len > LONG_MAX)
        return -1;
    *p = der;
    long inner;
    int tag, cls;
    int r = ASN1_get_object(p, &inner, &tag, &cls, (long)len);
    if ((r & 0x80) || (r & 0x01) || !(r & V_ASN1_CONSTRUCTED) || tag != V_ASN1_SEQUENCE ||
        cls != V_ASN1_UNIVERSAL || *p + inner != der + len) {
        ERR_clear_error();
        return -1;
    }
    *end = der + len;
    return 0;
}

int scep_issuer_subject_decode(const uint8_t *der, size_t len, X509_NAME **issuer,
                               X509_NAME **subject)
{
    const unsigned char *p, *end;
    *issuer = NULL;
    *subject = NULL;
    if (open_sequence(der, len, &p, &end) != 0)
        return -1;
    X509_NAME *i = d2i_X509_NAME(NULL, &p, (long)(end - p));
    X509_NAME *s = i ? d2i_X509_NAME(NULL, &p, (long)(end - p)) : NULL;
    ERR_clear_error();
    if (!s || p != end) {
        X509_NAME_free(i);
        X509_NAME_free(s);
        return -1;
    }
    *issuer = i;
    *subject = s;
    return 0;
}

int scep_issuer_serial_decode(const uint8_t *der, size_t len, X509_NAME **issuer,
                              ASN1_INTEGER **serial)
{
    const unsigned char *p, *end;
    *issuer = NULL;
    *serial = NULL;
    if (open_sequence(der, len, &p, &end) != 0)
        return -1;
    X509_NAME *i = d2i_X509_NAME(NULL, &p, (long)(end - p));
    ASN1_INTEGER *s = i ? d2i_ASN1_INTEGER(NULL, &p, (long)(end - p)) : NULL;
    ERR_clear_error();
    if (!s || p != end) {
        X509_NAME_free(i);
        ASN1_INTEGER_free(s);
        return -1;
    }
    *issuer = i;
    *serial = s;
    return 0;
}

/* SEQUENCE { a, b } from two DER encodings. */
static int wrap_pair(const unsigned char *a, int alen, const unsigned char *b, int blen,
                     uint8_t **der, size_t *len)
{
    if (alen <= 0 || blen <= 0 || alen > INT_MAX / 2 - 16 || blen > INT_MAX / 2 - 16)
        return -1;
    int body = alen + blen;
    int total = ASN1_object_size(1, body, V_ASN1_SEQUENCE);
    if (total <= 0)
        return -1;
    uint8_t *out = malloc((size_t)total);
    if (!out)
        return -1;
    unsigned char *p = out;
    ASN1_put_object(&p, 1, body, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
    memcpy(p, a, (size_t)alen);
    memcpy(p + alen, b, (size_t)blen);
    *der = out;
    *len = (size_t)total;
    return 0;
}

int scep_issuer_subject_encode(X509_NAME *issuer, X509_NAME *subject, uint8_t **der,
                               size_t *len)
{
    unsigned char *a = NULL, *b = NULL;
    int alen = i2d_X509_NAME(issuer, &a);
    int blen = i2d_X509_NAME(subject, &b);
    int rc = wrap_pair(a, alen, b, blen, der, len);
    OPENSSL_free(a);
    OPENSSL_free(b);
    return rc;
}

int scep_issuer_serial_encode(X509_NAME *issuer, const ASN1_INTEGER *serial, uint8_t **der,
                              size_t *len)
{
    unsigned char *a = NULL, *b = NULL;
    int alen = i2d_X509_NAME(issuer, &a);
    int blen = i2d_ASN1_INTEGER(serial, &b);
    int rc = wrap_pair(a, alen, b, blen, der, len);
    OPENSSL_free(a);
    OPENSSL_free(b);
    return rc;
}
