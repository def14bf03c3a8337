/* cms.c: the one CMS (RFC 5652) module on OpenSSL 3: SignedData signing
 * (with optional signed attributes), verification (attached or detached,
 * signer chain left to the caller), EnvelopedData encryption and decryption,
 * and certificate-only SignedData. Called by pki/verify.c (Mdm-Signature),
 * scep/ (pkiMessages) and the profile signer. DER in, malloc'd DER out. */
#include "pki/cms.h"

#include <limits.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>

const char cms_reason_malformed[] = "not a DER CMS structure";
const char cms_reason_not_signed[] = "not a CMS SignedData";
const char cms_reason_attached[] = "content is attached, expected detached";
const char cms_reason_no_content[] = "SignedData has no content";
const char cms_reason_signers[] = "SignedData must have exactly one signer";
const char cms_reason_no_signer_cert[] = "SignedData does not carry the signer certificate";
const char cms_reason_bad_signature[] = "signature does not verify";
const char cms_reason_not_enveloped[] = "not a CMS EnvelopedData";
const char cms_reason_not_for_us[] = "not addressed to us";
const char cms_reason_cipher[] = "unsupported cipher";
const char cms_reason_decrypt[] = "decryption failed";

/* ---- small helpers ---- */

/* A read-only memory BIO over data; an empty buffer still gets a BIO. */
static BIO *bio_from(const uint8_t *data, size_t len)
{
    static const uint8_t empty[1];
    if ((!data && len) || len > INT_MAX)
        return NULL;
    return BIO_new_mem_buf(len ? data : empty, (int)len);
}

/* Copies what a memory BIO holds into a malloc'd, NUL-terminated buffer
 * (the NUL is not counted; it makes text content convenient). */
static int bio_take(BIO *b, uint8_t **out, size_t *out_len)
{
    char *p = NULL;
    long n = BIO_get_mem_data(b, &p);
    if (n < 0)
        return -1;
    uint8_t *copy = malloc((size_t)n + 1);
    if (!copy)
        return -1;
    if (n)
        memcpy(copy, p, (size_t)n);
    copy[n] = '\0';
    *out = copy;
    *out_len = (size_t)n;
    return 0;
}

/* DER of a ContentInfo into a malloc'd buffer (not OPENSSL_malloc, so the
 * caller frees with free()). */
static int cms_to_der(CMS_ContentInfo *cms, uint8_t **der, size_t *der_len)
{
    unsigned char *tmp = NULL;
    int n = i2d_CMS_ContentInfo(cms, &tmp);
    if (n <= 0)
        return -1;
    uint8_t *copy = malloc((size_t)n);
    if (copy)
        memcpy(copy, tmp, (size_t)n);
    OPENSSL_free(tmp);
    if (!copy)
        return -1;
    *der = copy;
    *der_len = (size_t)n;
    return 0;
}

/* Parses exactly der[0..len): trailing bytes mean a confused or hostile
 * sender, so they are refused rather than ignored. */
static CMS_ContentInfo *parse_exact(const uint8_t *der, size_t len)
{
    if (!der || len == 0 || len > LONG_MAX)
        return NULL;
    const unsigned char *p = der;
    CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
    if (cms && p != der + len) {
        CMS_ContentInfo_free(cms);
        cms = NULL;
    }
    return cms;
}

static CMS_SignerInfo *first_signer(CMS_ContentInfo *cms)
{
    STACK_OF(CMS_SignerInfo) *sis = CMS_get0_SignerInfos(cms);
    return sk_CMS_SignerInfo_num(sis) > 0 ? sk_CMS_SignerInfo_value(sis, 0) : NULL;
}

/* ---- signing ---- */

static int add_extra_certs(CMS_ContentInfo *cms, X509 *signer, STACK_OF(X509) *extra)
{
    for (int i = 0; i < sk_X509_num(extra); i++) {
        X509 *x = sk_X509_value(extra, i);
        if (X509_cmp(x, signer) == 0)
            continue; /* already there as the signer's certificate */
        if (CMS_add1_cert(cms, x) != 1) {
            /* A duplicate in extra is harmless; anything else is not. */
            unsigned long e = ERR_peek_last_error();
            if (ERR_GET_LIB(e) != ERR_LIB_CMS ||
                ERR_GET_REASON(e) != CMS_R_CERTIFICATE_ALREADY_PRESENT)
                return -1;
            ERR_clear_error();
        }
    }
    return 0;
}

static int add_signed_attrs(CMS_SignerInfo *si, const struct cms_attr *attrs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (attrs[i].len > INT_MAX)
            return -1;
        ASN1_OBJECT *obj = OBJ_txt2obj(attrs[i].oid, 1);
        int ok = obj && CMS_signed_add1_attr_by_OBJ(si, obj, attrs[i].type, attrs[i].value,
                                                    (int)attrs[i].len) == 1;
        ASN1_OBJECT_free(obj);
        if (!ok)
            return -1;
    }
    return 0;
}

/* CMS_PARTIAL first, then one explicit signer, so the digest is ours rather
 * than CMS_sign's default; CMS_BINARY signs the exact bytes (no MIME
 * canonicalisation of line endings). */
static int sign_common(X509 *signer, EVP_PKEY *key, STACK_OF(X509) *extra, const EVP_MD *md,
                       const uint8_t *data, size_t len, int detached, unsigned int more_flags,
                       const struct cms_attr *attrs, size_t nattrs, uint8_t **der,
                       size_t *der_len)
{
    if (!signer || !key || !der || !der_len || (!attrs && nattrs))
        return -1;
    const unsigned int flags = CMS_BINARY | more_flags | (detached ? CMS_DETACHED : 0);
    int rc = -1;
    BIO *in = bio_from(data, len);
    CMS_ContentInfo *cms = in ? CMS_sign(NULL, NULL, NULL, NULL, flags | CMS_PARTIAL) : NULL;
    if (!cms)
        goto done;
    CMS_SignerInfo *si = CMS_add1_signer(cms, signer, key, md ? md : EVP_sha256(), flags);
    if (!si || add_signed_attrs(si, attrs, nattrs) != 0 ||
        add_extra_certs(cms, signer, extra) != 0 || CMS_final(cms, in, NULL, flags) != 1)
        goto done;
    rc = cms_to_der(cms, der, der_len);
done:
    CMS_ContentInfo_free(cms);
    BIO_free(in);
    ERR_clear_error();
    return rc;
}

int cms_sign(X509 *signer, EVP_PKEY *key, STACK_OF(X509) *extra, const EVP_MD *md,
             const uint8_t *data, size_t len, int detached, uint8_t **der, size_t *der_len)
{
    return sign_common(signer, key, extra, md, data, len, detached, 0, NULL, 0, der, der_len);
}

/* SCEP messages carry their own attributes; SMIMECapabilities would only
 * add bytes no SCEP peer reads. */
int cms_sign_attrs(X509 *signer, EVP_PKEY *key, STACK_OF(X509) *extra, const EVP_MD *md,
                   const uint8_t *data, size_t len, const struct cms_attr *attrs, size_t nattrs,
                   uint8_t **der, size_t *der_len)
{
    return sign_common(signer, key, extra, md, data, len, 0, CMS_NOSMIMECAP, attrs, nattrs, der,
                       der_len);
}

/* ---- verification ---- */

CMS_ContentInfo *cms_signed_parse(const uint8_t *der, size_t len, const char **reason)
{
    CMS_ContentInfo *cms = parse_exact(der, len);
    if (!cms) {
        *reason = cms_reason_malformed;
    } else if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed) {
        *reason = cms_reason_not_signed;
        CMS_ContentInfo_free(cms);
        cms = NULL;
    }
    ERR_clear_error();
    return cms;
}

/* The content must be where the caller expects it and there must be one
 * signer, checked before any cryptography. */
static int check_signed_shape(CMS_ContentInfo *cms, int want_detached, const char **reason)
{
    int detached = CMS_is_detached(cms);
    if (want_detached && detached != 1) {
        *reason = cms_reason_attached;
        return -1;
    }
    if (!want_detached && detached != 0) {
        *reason = cms_reason_no_content;
        return -1;
    }
    if (sk_CMS_SignerInfo_num(CMS_get0_SignerInfos(cms)) != 1) {
        *reason = cms_reason_signers;
        return -1;
    }
    return 0;
}

/* The single signer's certificate, with a new reference. */
static X509 *signer_cert(CMS_ContentInfo *cms)
{
    STACK_OF(X509) *signers = CMS_get0_signers(cms);
    X509 *x = NULL;
    if (sk_X509_num(signers) == 1) {
        x = sk_X509_value(signers, 0);
        if (X509_up_ref(x) != 1)
            x = NULL;
    }
    sk_X509_free(signers);
    return x;
}

/* Every certificate in the SignedData except the signer's; NULL when none. */
static STACK_OF(X509) *other_certs(CMS_ContentInfo *cms, X509 *signer)
{
    STACK_OF(X509) *all = CMS_get1_certs(cms);
    for (int i = sk_X509_num(all) - 1; i >= 0; i--) {
        X509 *x = sk_X509_value(all, i);
        if (X509_cmp(x, signer) == 0) {
            (void)sk_X509_delete(all, i);
            X509_free(x);
        }
    }
    if (sk_X509_num(all) <= 0) {
        sk_X509_free(all);
        all = NULL;
    }
    return all;
}

/* CMS_NO_SIGNER_CERT_VERIFY: the chain is the caller's business (its own
 * trust store, or none for SCEP's self-signed requests). SHA-1 passes:
 * OpenSSL's security level governs TLS and chains, not CMS digests. */
static int verify_signature(CMS_ContentInfo *cms, BIO *dcont, BIO *out, const char **reason)
{
    if (CMS_verify(cms, NULL, NULL, dcont, out, CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY) == 1)
        return 0;
    unsigned long e = ERR_peek_last_error();
    if (ERR_GET_LIB(e) == ERR_LIB_CMS && ERR_GET_REASON(e) == CMS_R_SIGNER_CERTIFICATE_NOT_FOUND)
        *reason = cms_reason_no_signer_cert;
    else
        *reason = cms_reason_bad_signature;
    return -1;
}

int cms_verify_parsed(CMS_ContentInfo *cms, const uint8_t *detached, size_t detached_len,
                      uint8_t **content, size_t *content_len, X509 **signer,
                      STACK_OF(X509) **others, const char **reason)
{
    if (content)
        *content = NULL;
    if (content_len)
        *content_len = 0;
    if (signer)
        *signer = NULL;
    if (others)
        *others = NULL;
    if (!cms || OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed) {
        *reason = cms_reason_not_signed;
        return -1;
    }
    if (check_signed_shape(cms, detached != NULL, reason) != 0)
        return -1;
    int rc = -1;
    X509 *x = NULL;
    BIO *dcont = detached ? bio_from(detached, detached_len) : NULL;
    BIO *out = BIO_new(BIO_s_mem());
    if ((detached && !dcont) || !out) {
        *reason = "out of memory";
        goto done;
    }
    if (verify_signature(cms, dcont, out, reason) != 0)
        goto done;
    x = signer_cert(cms);
    if (!x) {
        *reason = cms_reason_no_signer_cert;
        goto done;
    }
    if (content && !detached && bio_take(out, content, content_len) != 0) {
        *reason = "out of memory";
        goto done;
    }
    if (others)
        *others = other_certs(cms, x);
    if (signer) {
        *signer = x;
        x = NULL;
    }
    rc = 0;
done:
    X509_free(x);
    BIO_free(out);
    BIO_free(dcont);
    ERR_clear_error();
    return rc;
}

int cms_verify(const uint8_t *der, size_t len, const uint8_t *detached, size_t detached_len,
               uint8_t **content, size_t *content_len, X509 **signer, STACK_OF(X509) **others,
               const char **reason)
{
    if (signer)
        *signer = NULL;
    if (content)
        *content = NULL;
    if (others)
        *others = NULL;
    CMS_ContentInfo *cms = cms_signed_parse(der, len, reason);
    if (!cms)
        return -1;
    int rc = cms_verify_parsed(cms, detached, detached_len, content, content_len, signer, others,
                               reason);
    CMS_ContentInfo_free(cms);
    return rc;
}

int cms_signed_attr(CMS_ContentInfo *cms, const char *oid, const ASN1_STRING **value)
{
    CMS_SignerInfo *si = first_signer(cms);
    ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
    int rc = -1;
    if (!si || !obj)
        goto done;
    int idx = CMS_signed_get_attr_by_OBJ(si, obj, -1);
    if (idx < 0) {
        rc = 0;
        goto done;
    }
    /* A repeated attribute or a set of several values is ambiguous: which
     * transactionID would we answer to? Refuse both. */
    if (CMS_signed_get_attr_by_OBJ(si, obj, idx) >= 0)
        goto done;
    X509_ATTRIBUTE *a = CMS_signed_get_attr(si, idx);
    if (!a || X509_ATTRIBUTE_count(a) != 1)
        goto done;
    ASN1_TYPE *t = X509_ATTRIBUTE_get0_type(a, 0);
    if (!t || t->type == V_ASN1_BOOLEAN || t->type == V_ASN1_NULL || t->type == V_ASN1_OBJECT ||
        t->type == V_ASN1_SEQUENCE || t->type == V_ASN1_SET || t->type == V_ASN1_OTHER)
        goto done;
    *value = t->value.asn1_string;
    rc = 1;
done:
    ASN1_OBJECT_free(obj);
    ERR_clear_error();
    return rc;
}

int cms_signed_digest_nid(CMS_ContentInfo *cms)
{
    CMS_SignerInfo *si = first_signer(cms);
    if (!si)
        return NID_undef;
    X509_ALGOR *dig = NULL;
    CMS_SignerInfo_get0_algs(si, NULL, NULL, &dig, NULL);
    const ASN1_OBJECT *oid = NULL;
    if (!dig)
        return NID_undef;
    X509_ALGOR_get0(&oid, NULL, NULL, dig);
    return OBJ_obj2nid(oid);
}

/* ---- enveloping ---- */

int cms_encrypt(X509 *recipient, const EVP_CIPHER *cipher, const uint8_t *data, size_t len,
                uint8_t **der, size_t *der_len)
{
    if (!recipient || !der || !der_len)
        return -1;
    int rc = -1;
    BIO *in = bio_from(data, len);
    STACK_OF(X509) *to = sk_X509_new_null();
    CMS_ContentInfo *cms = NULL;
    if (!in || !to || sk_X509_push(to, recipient) <= 0)
        goto done;
    cms = CMS_encrypt(to, in, cipher ? cipher : EVP_aes_256_cbc(), CMS_BINARY);
    if (cms)
        rc = cms_to_der(cms, der, der_len);
done:
    CMS_ContentInfo_free(cms);
    sk_X509_free(to); /* the stack only borrowed recipient */
    BIO_free(in);
    ERR_clear_error();
    return rc;
}

/* ---- a minimal DER walk for the content cipher ----
 * OpenSSL 3.0 has no getter for an EnvelopedData's content-encryption
 * algorithm, so it is read from the (re-encoded, hence definite-length DER)
 * structure: ContentInfo { OID, [0] EnvelopedData { version,
 * [0] originatorInfo OPTIONAL, recipientInfos SET, EncryptedContentInfo {
 * contentType, AlgorithmIdentifier { OID, ... } ... } } }. */

/* Reads one TLV header at *p; on success *p points at its contents. */
static int der_header(const unsigned char **p, const unsigned char *end, int *tag, int *cls,
                      long *len)
{
    int r = ASN1_get_object(p, len, tag, cls, (long)(end - *p));
    if ((r & 0x80) || (r & 0x01))
        return -1; /* error, or indefinite length */
    return 0;
}

static int der_enter(const unsigned char **p, const unsigned char *end, int want_tag,
                     int want_cls, const unsigned char **inner_end)
{
    int tag, cls;
    long len;
    if (der_header(p, end, &tag, &cls, &len) != 0 || tag != want_tag || cls != want_cls)
        return -1;
    *inner_end = *p + len;
    return 0;
}

static int der_skip(const unsigned char **p, const unsigned char *end, int want_tag,
                    int want_cls)
{
    const unsigned char *inner_end;
    if (der_enter(p, end, want_tag, want_cls, &inner_end) != 0)
        return -1;
    *p = inner_end;
    return 0;
}

static int der_peek_is(const unsigned char *p, const unsigned char *end, int want_tag,
                       int want_cls)
{
    int tag, cls;
    long len;
    return der_header(&p, end, &tag, &cls, &len) == 0 && tag == want_tag && cls == want_cls;
}

static int envelope_cipher_nid_der(const unsigned char *p, const unsigned char *end)
{
    const unsigned char *e1, *e2, *e3, *e4, *e5;
    if (der_enter(&p, end, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &e1) ||
        der_skip(&p, e1, V_ASN1_OBJECT, V_ASN1_UNIVERSAL) ||
        der_enter(&p, e1, 0, V_ASN1_CONTEXT_SPECIFIC, &e2) ||
        der_enter(&p, e2, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &e3) ||
        der_skip(&p, e3, V_ASN1_INTEGER, V_ASN1_UNIVERSAL))
        return NID_undef;
    if (der_peek_is(p, e3, 0, V_ASN1_CONTEXT_SPECIFIC) &&
        der_skip(&p, e3, 0, V_ASN1_CONTEXT_SPECIFIC))
        return NID_undef;
    if (der_skip(&p, e3, V_ASN1_SET, V_ASN1_UNIVERSAL) ||
        der_enter(&p, e3, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &e4) ||
        der_skip(&p, e4, V_ASN1_OBJECT, V_ASN1_UNIVERSAL) ||
        der_enter(&p, e4, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &e5))
        return NID_undef;
    ASN1_OBJECT *oid = d2i_ASN1_OBJECT(NULL, &p, (long)(e5 - p));
    int nid = oid ? OBJ_obj2nid(oid) : NID_undef;
    ASN1_OBJECT_free(oid);
    return nid;
}

static int envelope_cipher_nid(CMS_ContentInfo *cms)
{
    unsigned char *der = NULL;
    int n = i2d_CMS_ContentInfo(cms, &der);
    int nid = n > 0 ? envelope_cipher_nid_der(der, der + n) : NID_undef;
    OPENSSL_free(der);
    return nid;
}

/* The ciphers SCEP clients use and we accept: AES-CBC and three-key 3DES.
 * Single DES, RC2 and anything else are refused even when OpenSSL could
 * decrypt them; 3DES only when this OpenSSL provides it. */
static int cipher_acceptable(int nid)
{
    switch (nid) {
    case NID_aes_128_cbc:
    case NID_aes_192_cbc:
    case NID_aes_256_cbc:
        return 1;
    case NID_des_ede3_cbc: {
        EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, OBJ_nid2sn(nid), NULL);
        EVP_CIPHER_free(c);
        ERR_clear_error();
        return c != NULL;
    }
    default:
        return 0;
    }
}

static int recipient_matches(CMS_RecipientInfo *ri, X509 *cert)
{
    switch (CMS_RecipientInfo_type(ri)) {
    case CMS_RECIPINFO_TRANS:
        return CMS_RecipientInfo_ktri_cert_cmp(ri, cert) == 0;
    case CMS_RECIPINFO_AGREE: {
        STACK_OF(CMS_RecipientEncryptedKey) *reks = CMS_RecipientInfo_kari_get0_reks(ri);
        for (int i = 0; i < sk_CMS_RecipientEncryptedKey_num(reks); i++)
            if (CMS_RecipientEncryptedKey_cert_cmp(sk_CMS_RecipientEncryptedKey_value(reks, i),
                                                   cert) == 0)
                return 1;
        return 0;
    }
    default:
        return 0;
    }
}

static int addressed_to(CMS_ContentInfo *cms, X509 *cert)
{
    STACK_OF(CMS_RecipientInfo) *ris = CMS_get0_RecipientInfos(cms);
    for (int i = 0; i < sk_CMS_RecipientInfo_num(ris); i++)
        if (recipient_matches(sk_CMS_RecipientInfo_value(ris, i), cert))
            return 1;
    return 0;
}

int cms_decrypt(X509 *cert, EVP_PKEY *key, const uint8_t *der, size_t len, uint8_t **out,
                size_t *out_len, int *cipher_nid, const char **reason)
{
    *out = NULL;
    *out_len = 0;
    if (cipher_nid)
        *cipher_nid = NID_undef;
    /* A key that is not the certificate's would not always fail: RSA key
     * transport may then yield a stray content key (implicit rejection),
     * and about one CBC padding in 256 checks out, so garbage would come
     * back as the content. Refused before anything is decrypted. */
    if (!cert || !key || X509_check_private_key(cert, key) != 1) {
        ERR_clear_error();
        *reason = cms_reason_decrypt;
        return -1;
    }
    CMS_ContentInfo *cms = parse_exact(der, len);
    if (!cms || OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_enveloped) {
        CMS_ContentInfo_free(cms);
        ERR_clear_error();
        *reason = cms_reason_not_enveloped;
        return -1;
    }
    int rc = -1;
    BIO *plain = NULL;
    int nid = envelope_cipher_nid(cms);
    if (cipher_nid)
        *cipher_nid = nid;
    if (!addressed_to(cms, cert)) {
        *reason = cms_reason_not_for_us;
        goto done;
    }
    if (!cipher_acceptable(nid)) {
        *reason = cms_reason_cipher;
        goto done;
    }
    plain = BIO_new(BIO_s_mem());
    if (!plain) {
        *reason = "out of memory";
        goto done;
    }
    /* With cert given, OpenSSL decrypts only that recipient's key. */
    if (CMS_decrypt(cms, key, cert, NULL, plain, CMS_BINARY) != 1) {
        *reason = cms_reason_decrypt;
        goto done;
    }
    if (bio_take(plain, out, out_len) != 0) {
        *reason = "out of memory";
        goto done;
    }
    rc = 0;
done:
    BIO_free(plain);
    CMS_ContentInfo_free(cms);
    ERR_clear_error();
    return rc;
}

/* ---- certificate-only SignedData ---- */

int cms_certs_only(STACK_OF(X509) *certs, X509_CRL *crl, uint8_t **der, size_t *der_len)
{
    int rc = -1;
    /* No signer and CMS_PARTIAL: OpenSSL builds the SignedData shell, which
     * then only needs its certificates (and CRL) and no content at all. */
    CMS_ContentInfo *cms = CMS_sign(NULL, NULL, certs, NULL, CMS_PARTIAL | CMS_BINARY);
    if (!cms || CMS_set_detached(cms, 1) != 1 || (crl && CMS_add1_crl(cms, crl) != 1))
        goto done;
    rc = cms_to_der(cms, der, der_len);
done:
    CMS_ContentInfo_free(cms);
    ERR_clear_error();
    return rc;
}

int cms_certs_read(const uint8_t *der, size_t len, STACK_OF(X509) **certs,
                   STACK_OF(X509_CRL) **crls, const char **reason)
{
    *certs = NULL;
    if (crls)
        *crls = NULL;
    CMS_ContentInfo *cms = cms_signed_parse(der, len, reason);
    if (!cms)
        return -1;
    /* CMS_get1_* return NULL both for "none" and for failure; an empty
     * stack keeps the caller's loops simple. */
    STACK_OF(X509) *xs = CMS_get1_certs(cms);
    STACK_OF(X509_CRL) *cs = crls ? CMS_get1_crls(cms) : NULL;
    if (!xs)
        xs = sk_X509_new_null();
    if (crls && !cs)
        cs = sk_X509_CRL_new_null();
    CMS_ContentInfo_free(cms);
    ERR_clear_error();
    if (!xs || (crls && !cs)) {
        sk_X509_pop_free(xs, X509_free);
        sk_X509_CRL_pop_free(cs, X509_CRL_free);
        *reason = "out of memory";
        return -1;
    }
    *certs = xs;
    if (crls)
        *crls = cs;
    return 0;
}
