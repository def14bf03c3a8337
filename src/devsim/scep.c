/* scep.c: a simulated device gets its identity over SCEP (RFC 8894) the way
 * iOS does for a SCEP payload: new RSA 2048 key, CSR with the challenge,
 * temporary self-signed certificate, GetCACert, PKIOperation (POST), CertPoll
 * while PENDING; and renews it (RenewalReq signed by the current identity).
 * The challenge is --challenge or one fetched per device from the API, as an
 * enrollment portal would. Called by load.c, inside a worker thread. */
#include "devsim/devsim.h"

#include "scep/message.h"
#include "util/log.h"

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CT_PKI "application/x-pki-message"
#define CSR_ORG "Steward"

/* Everything one SCEP transaction needs; freed by txn_clear. */
struct txn {
    X509 *ca;           /* from GetCACert: the RA when there is one, else the issuing CA */
    EVP_PKEY *new_key;  /* the key being certified */
    X509_REQ *csr;
    X509 *signer;       /* temporary self-signed cert, or the current identity */
    EVP_PKEY *signer_key;
    int renewal;
    char *challenge;
    char tid[129];
    uint8_t nonce[16];
};

static void txn_clear(struct txn *t)
{
    X509_free(t->ca);
    EVP_PKEY_free(t->new_key);
    X509_REQ_free(t->csr);
    X509_free(t->signer);
    EVP_PKEY_free(t->signer_key);
    if (t->challenge) {
        OPENSSL_cleanse(t->challenge, strlen(t->challenge));
        free(t->challenge);
    }
    memset(t, 0, sizeof *t);
}

/* Prints and records a failure; always -1 so callers can return it. */
static int scep_fail(struct devsim_report *r, const struct devsim_device *d, const char *phase,
                     long status, const char *what)
{
    ERR_clear_error();
    fprintf(stderr, "steward-devsim: %s %s: %s\n", d->facts.udid, phase, what);
    devsim_report_err(r, d->facts.udid, phase, status, what);
    return -1;
}

/* One plain HTTP exchange, counted. 0 when the answer has status `want`
 * (resp holds the body), else -1 (printed, recorded, resp freed). */
static int exchange(struct devsim_http *h, struct devsim_device *d, struct devsim_report *r,
                    const char *phase, const char *method, const char *url, const char *ctype,
                    const char *extra, const void *body, size_t len, long want,
                    struct devsim_http_resp *resp)
{
    r->requests++;
    if (devsim_http_plain(h, method, url, ctype, extra, body, len, resp) != 0)
        return scep_fail(r, d, phase, 0, resp->error);
    devsim_report_http(r, resp->status);
    if (resp->status == want)
        return 0;
    char msg[600];
    snprintf(msg, sizeof msg, "HTTP %ld %.*s", resp->status,
             (int)(resp->body.len > 400 ? 400 : resp->body.len),
             resp->body.data ? resp->body.data : "");
    buf_free(&resp->body);
    return scep_fail(r, d, phase, resp->status, msg);
}

static char *op_url(const char *scep_url, const char *op)
{
    char *out = NULL;
    if (asprintf(&out, "%s%coperation=%s", scep_url, strchr(scep_url, '?') ? '&' : '?', op) < 0)
        return NULL;
    return out;
}

/* ---- the CA ---- */

/* Is x issued (and signed) by issuer? */
static int issued_by(X509 *x, X509 *issuer)
{
    return X509_cmp(x, issuer) != 0 && X509_check_issued(issuer, x) == X509_V_OK &&
           X509_verify(x, X509_get0_pubkey(issuer)) == 1;
}

/* The issuing CA in a GetCACert bundle, as a client picks it (a PKCS#7's
 * certificates are a DER SET, so their order means nothing): the RA's
 * issuer when there is an RA; else a CA certificate that issues no other CA
 * of the bundle (not a root above an intermediate), the newest of those
 * (during a rotation overlap the server also lists the previous CA). */
static X509 *pick_issuing_ca(STACK_OF(X509) *certs, X509 *ra)
{
    X509 *best = NULL;
    for (int i = 0; i < sk_X509_num(certs); i++) {
        X509 *c = sk_X509_value(certs, i);
        if (!X509_check_ca(c))
            continue;
        if (ra && issued_by(ra, c))
            return c;
        int issues_ca = 0;
        for (int j = 0; j < sk_X509_num(certs) && !issues_ca; j++) {
            X509 *o = sk_X509_value(certs, j);
            issues_ca = X509_check_ca(o) && issued_by(o, c);
        }
        if (!issues_ca && (!best || ASN1_TIME_compare(X509_get0_notBefore(c),
                                                      X509_get0_notBefore(best)) > 0))
            best = c;
    }
    ERR_clear_error();
    return best;
}

/* The RA: a certificate of the bundle that is no CA and may encrypt. */
static X509 *pick_ra(STACK_OF(X509) *certs)
{
    for (int i = 0; i < sk_X509_num(certs); i++) {
        X509 *c = sk_X509_value(certs, i);
        if (!X509_check_ca(c) && (X509_get_key_usage(c) & KU_KEY_ENCIPHERMENT))
            return c;
    }
    return NULL;
}

/* GetCACert answers one DER certificate, or (RA, intermediate, rotation) a
 * degenerate PKCS#7. *ca gets the issuing CA, *ra the RA or NULL (both
 * up-ref'd); 0 or -1. */
static int parse_ca_answer(const struct buf *b, X509 **ca, X509 **ra)
{
    *ca = *ra = NULL;
    const unsigned char *p = (const unsigned char *)b->data;
    X509 *x = d2i_X509(NULL, &p, (long)b->len);
    if (x) {
        *ca = x;
        return 0;
    }
    p = (const unsigned char *)b->data;
    PKCS7 *p7 = d2i_PKCS7(NULL, &p, (long)b->len);
    STACK_OF(X509) *certs = p7 && PKCS7_type_is_signed(p7) && p7->d.sign ? p7->d.sign->cert : NULL;
    X509 *r = certs ? pick_ra(certs) : NULL;
    X509 *c = certs ? pick_issuing_ca(certs, r) : NULL;
    if (c && X509_up_ref(c) == 1)
        *ca = c;
    if (*ca && r && issued_by(r, *ca) && X509_up_ref(r) == 1)
        *ra = r;
    PKCS7_free(p7);
    return *ca ? 0 : -1;
}

/* With --ca, the CA the SCEP server names must be in that bundle or be
 * issued by one of its certificates: a device trusts its MDM profile's
 * anchors, not whatever the server hands out. 0 trusted, -1 not. */
static int ca_trusted(const char *bundle, X509 *ca)
{
    FILE *fp = fopen(bundle, "r");
    if (!fp)
        return -1;
    int ok = 0;
    X509 *x;
    while (!ok && (x = PEM_read_X509(fp, NULL, NULL, NULL)) != NULL) {
        ok = X509_cmp(x, ca) == 0 ||
             (X509_check_issued(x, ca) == X509_V_OK && X509_verify(ca, X509_get0_pubkey(x)) == 1);
        X509_free(x);
    }
    fclose(fp);
    ERR_clear_error();
    return ok ? 0 : -1;
}

static int fetch_ca(const struct devsim_opts *o, struct devsim_http *h, struct devsim_device *d,
                    struct devsim_report *r, X509 **ca)
{
    char *url = op_url(o->scep_url, "GetCACert");
    if (!url)
        return scep_fail(r, d, "GetCACert", 0, "out of memory");
    struct devsim_http_resp resp;
    int rc = exchange(h, d, r, "GetCACert", "GET", url, NULL, NULL, NULL, 0, 200, &resp);
    free(url);
    if (rc != 0)
        return -1;
    X509 *issuing = NULL, *ra = NULL;
    rc = resp.body.len ? parse_ca_answer(&resp.body, &issuing, &ra) : -1;
    buf_free(&resp.body);
    if (rc != 0)
        return scep_fail(r, d, "GetCACert", 200, "the answer is no DER certificate");
    if (o->ca_file && ca_trusted(o->ca_file, issuing) != 0) {
        X509_free(issuing);
        X509_free(ra);
        return scep_fail(r, d, "GetCACert", 200, "the SCEP CA is not in (or issued by) --ca");
    }
    /* With an RA, requests are enveloped to it and its signature on the
     * CertRep is checked (it was checked above to be issued by the CA). */
    *ca = ra ? ra : issuing;
    X509_free(ra ? issuing : NULL);
    return 0;
}

/* ---- the challenge ---- */

static int read_challenge(const struct buf *b, char **out)
{
    json_error_t je;
    json_t *j = json_loadb(b->data ? b->data : "", b->len, 0, &je);
    const char *c = json_string_value(json_object_get(j, "challenge"));
    *out = c && *c ? strdup(c) : NULL;
    json_decref(j);
    return *out ? 0 : -1;
}

/* --challenge, else a fresh one-time challenge from the API, else none
 * (servers with scep_challenge = none). */
static int get_challenge(const struct devsim_opts *o, struct devsim_http *h,
                         struct devsim_device *d, struct devsim_report *r, char **out)
{
    *out = NULL;
    if (o->challenge) {
        *out = strdup(o->challenge);
        return *out ? 0 : scep_fail(r, d, "challenge", 0, "out of memory");
    }
    if (!o->api_key)
        return 0;
    if (!o->api_url)
        return scep_fail(r, d, "challenge", 0, "--url is needed to fetch a challenge");
    char *url = NULL, *auth = NULL, *body = NULL;
    int rc = -1;
    if (asprintf(&url, "%s/api/v1/scep/challenges", o->api_url) < 0)
        url = NULL;
    if (asprintf(&auth, "Authorization: Bearer %s", o->api_key) < 0)
        auth = NULL;
    if (asprintf(&body, "{\"created_for\":\"steward-devsim %s\"}", d->facts.udid) < 0)
        body = NULL;
    struct devsim_http_resp resp;
    if (!url || !auth || !body)
        scep_fail(r, d, "challenge", 0, "out of memory");
    else if (exchange(h, d, r, "challenge", "POST", url, "application/json", auth, body,
                      strlen(body), 201, &resp) == 0) {
        rc = read_challenge(&resp.body, out);
        buf_free(&resp.body);
        if (rc != 0)
            scep_fail(r, d, "challenge", 201, "the answer holds no \"challenge\"");
    }
    free(url);
    if (auth) {
        OPENSSL_cleanse(auth, strlen(auth));
        free(auth);
    }
    free(body);
    return rc;
}

/* ---- key, CSR, temporary certificate ---- */

static X509_NAME *device_name(const struct devsim_device *d)
{
    X509_NAME *n = X509_NAME_new();
    if (!n ||
        X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_UTF8,
                                   (const unsigned char *)d->facts.udid, -1, -1, 0) != 1 ||
        X509_NAME_add_entry_by_NID(n, NID_organizationName, MBSTRING_UTF8,
                                   (const unsigned char *)CSR_ORG, -1, -1, 0) != 1) {
        X509_NAME_free(n);
        return NULL;
    }
    return n;
}

/* CN=<UDID>, O=Steward, challengePassword (1.2.840.113549.1.9.7) when we
 * have one, signed with SHA-256 by key. */
static X509_REQ *make_csr(const struct devsim_device *d, EVP_PKEY *key, const char *challenge)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = device_name(d);
    int ok = req && name && X509_REQ_set_version(req, 0) == 1 &&
             X509_REQ_set_subject_name(req, name) == 1 && X509_REQ_set_pubkey(req, key) == 1;
    if (ok && challenge)
        ok = X509_REQ_add1_attr_by_NID(req, NID_pkcs9_challengePassword, MBSTRING_UTF8,
                                       (const unsigned char *)challenge, -1) == 1;
    ok = ok && X509_REQ_sign(req, key, EVP_sha256()) > 0;
    X509_NAME_free(name);
    if (!ok) {
        X509_REQ_free(req);
        return NULL;
    }
    return req;
}

/* The self-signed certificate a SCEP client signs its first request with
 * (it has no identity yet); same subject and key as the CSR. */
static X509 *make_temp_cert(X509_REQ *csr, EVP_PKEY *key)
{
    X509 *x = X509_new();
    uint8_t serial[8];
    BIGNUM *bn = NULL;
    int ok = x && RAND_bytes(serial, sizeof serial) == 1;
    if (ok) {
        serial[0] &= 0x7f; /* positive */
        bn = BN_bin2bn(serial, sizeof serial, NULL);
    }
    ok = ok && bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) &&
         X509_set_version(x, 2) == 1 &&
         X509_set_subject_name(x, X509_REQ_get_subject_name(csr)) == 1 &&
         X509_set_issuer_name(x, X509_REQ_get_subject_name(csr)) == 1 &&
         X509_gmtime_adj(X509_getm_notBefore(x), -300) && /* tolerate clock skew */
         X509_gmtime_adj(X509_getm_notAfter(x), 86400) && X509_set_pubkey(x, key) == 1 &&
         X509_sign(x, key, EVP_sha256()) > 0;
    BN_free(bn);
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

static int make_request_material(struct txn *t, const struct devsim_device *d)
{
    t->new_key = EVP_RSA_gen(2048);
    if (!t->new_key)
        return -1;
    t->csr = make_csr(d, t->new_key, t->challenge);
    if (!t->csr)
        return -1;
    if (t->renewal) {
        if (X509_up_ref(d->cert) != 1)
            return -1;
        t->signer = d->cert;
        if (EVP_PKEY_up_ref(d->key) != 1)
            return -1;
        t->signer_key = d->key;
        return 0;
    }
    t->signer = make_temp_cert(t->csr, t->new_key);
    if (!t->signer || EVP_PKEY_up_ref(t->new_key) != 1)
        return -1;
    t->signer_key = t->new_key;
    return 0;
}

/* ---- PKIOperation ---- */

static const char *fail_info_name(int fi)
{
    static const char *const names[] = {"badAlg", "badMessageCheck", "badRequest", "badTime",
                                        "badCertId"};
    return fi >= 0 && fi < (int)(sizeof names / sizeof names[0]) ? names[fi] : "unknown";
}

/* POSTs one pkiMessage and reads the CertRep. 0 with *status (and *issued
 * on SUCCESS), or -1 (printed, recorded). */
static int pki_operation(const struct devsim_opts *o, struct devsim_http *h,
                         struct devsim_device *d, struct devsim_report *r, struct txn *t,
                         const char *phase, uint8_t *msg, size_t msg_len, int *status,
                         int *fail_info, X509 **issued)
{
    char *url = op_url(o->scep_url, "PKIOperation");
    if (!url) {
        free(msg);
        return scep_fail(r, d, phase, 0, "out of memory");
    }
    struct devsim_http_resp resp;
    int rc = exchange(h, d, r, phase, "POST", url, CT_PKI, NULL, msg, msg_len, 200, &resp);
    free(url);
    free(msg);
    if (rc != 0)
        return -1;
    const char *why = "unreadable CertRep";
    rc = scep_certrep_read((const uint8_t *)resp.body.data, resp.body.len, t->ca, t->signer,
                           t->signer_key, t->tid, t->nonce, status, fail_info, issued, &why);
    buf_free(&resp.body);
    if (rc != 0)
        return scep_fail(r, d, phase, 200, why);
    if (o->verbose)
        log_info("devsim.scep", "udid=%s phase=%s pki_status=%d transaction_id=%s",
                 d->facts.udid, phase, *status, t->tid);
    return 0;
}

static void wait_seconds(int s)
{
    struct timespec ts = {.tv_sec = s, .tv_nsec = 0};
    while (s > 0 && nanosleep(&ts, &ts) != 0)
        ; /* interrupted: sleep the rest */
}

/* PKCSReq/RenewalReq, then CertPoll every poll_interval while PENDING.
 * 0 with *issued, or -1 (printed, recorded). */
static int request_cert(const struct devsim_opts *o, struct devsim_http *h,
                        struct devsim_device *d, struct devsim_report *r, struct txn *t,
                        X509 **issued)
{
    const char *phase = t->renewal ? "RenewalReq" : "PKCSReq";
    uint8_t *msg = NULL;
    size_t len = 0;
    if (scep_pkcsreq_build(t->csr, t->signer, t->signer_key, t->ca, t->renewal, t->challenge,
                           t->tid, t->nonce, &msg, &len) != 0)
        return scep_fail(r, d, phase, 0, "cannot build the pkiMessage");
    int status = -1, fail_info = -1;
    if (pki_operation(o, h, d, r, t, phase, msg, len, &status, &fail_info, issued) != 0)
        return -1;
    for (int polls = 0; status == SCEP_PENDING; polls++) {
        if (polls >= o->poll_max)
            return scep_fail(r, d, "CertPoll", 200, "still PENDING after --poll-max polls");
        wait_seconds(o->poll_interval);
        if (scep_certpoll_build_nonce(t->signer, t->signer_key, t->ca, t->tid,
                                      X509_REQ_get_subject_name(t->csr), t->nonce, &msg,
                                      &len) != 0)
            return scep_fail(r, d, "CertPoll", 0, "cannot build the CertPoll");
        if (pki_operation(o, h, d, r, t, "CertPoll", msg, len, &status, &fail_info, issued) != 0)
            return -1;
    }
    if (status == SCEP_SUCCESS)
        return 0;
    char text[128];
    snprintf(text, sizeof text, "CertRep FAILURE failInfo=%d (%s)", fail_info,
             fail_info_name(fail_info));
    return scep_fail(r, d, phase, 200, text);
}

/* Enrollment and renewal differ only in the signer and the challenge. */
static int run_transaction(const struct devsim_opts *o, struct devsim_http *h,
                           struct devsim_device *d, struct devsim_report *r, int renewal)
{
    struct txn t;
    memset(&t, 0, sizeof t);
    t.renewal = renewal;
    X509 *issued = NULL;
    int rc = -1;
    if (fetch_ca(o, h, d, r, &t.ca) != 0)
        goto done;
    if (renewal) {
        /* no challenge needed: the current identity authorises it */
        if (o->challenge && !(t.challenge = strdup(o->challenge))) {
            scep_fail(r, d, "RenewalReq", 0, "out of memory");
            goto done;
        }
    } else if (get_challenge(o, h, d, r, &t.challenge) != 0) {
        goto done;
    }
    if (make_request_material(&t, d) != 0) {
        scep_fail(r, d, renewal ? "RenewalReq" : "PKCSReq", 0,
                  "cannot make the key, CSR or temporary certificate");
        goto done;
    }
    if (request_cert(o, h, d, r, &t, &issued) != 0)
        goto done;
    /* set_identity takes both; the key is shared with t until txn_clear */
    if (EVP_PKEY_up_ref(t.new_key) != 1) {
        X509_free(issued);
        scep_fail(r, d, "identity", 0, "cannot share the key");
        goto done;
    }
    if (devsim_device_set_identity(d, issued, t.new_key) != 0) {
        scep_fail(r, d, "identity", 0, "the issued certificate does not fit our key, or cannot be saved");
        goto done;
    }
    rc = 0;
    if (o->verbose)
        log_info("devsim.scep", "udid=%s event=%s transaction_id=%s", d->facts.udid,
                 renewal ? "renewed" : "enrolled", t.tid);
done:
    txn_clear(&t);
    return rc;
}

int devsim_scep_enroll(const struct devsim_opts *o, struct devsim_http *h,
                       struct devsim_device *d, struct devsim_report *r)
{
    return run_transaction(o, h, d, r, 0);
}

int devsim_scep_renew(const struct devsim_opts *o, struct devsim_http *h,
                      struct devsim_device *d, struct devsim_report *r)
{
    if (!d->cert || !d->key)
        return scep_fail(r, d, "RenewalReq", 0, "no identity to renew (enroll first)");
    return run_transaction(o, h, d, r, 1);
}
