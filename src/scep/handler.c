/* handler.c: the /scep endpoint. GET/POST with ?operation=: GetCACaps (what
 * we support), GetCACert (the CA certificate in DER), PKIOperation (a
 * pkiMessage, base64 in ?message= for GET or the binary body for POST). A
 * message we can read but refuse gets a signed FAILURE CertRep with the
 * right failInfo; one we cannot read gets 400 with a reason. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/certs.h"
#include "scep/message.h"
#include "scep/scep.h"
#include "util/config.h"
#include "util/ids.h"
#include "util/log.h"

/* The whole message, base64 in a query string, stays far below this. */
#define SCEP_MAX_MESSAGE (256 * 1024)

static const char caps[] = "AES\nPOSTPKIOperation\nRenewal\nSHA-1\nSHA-256\nSHA-512\nSCEPStandard\n";

void scep_policy(const struct config *cfg, struct certs_policy *p)
{
    certs_policy_defaults(p);
    if (strcmp(cfg->scep_challenge, "none") == 0)
        p->challenge_mode = CHALLENGE_NONE;
    else if (strcmp(cfg->scep_challenge, "static") == 0)
        p->challenge_mode = CHALLENGE_STATIC;
    else
        p->challenge_mode = CHALLENGE_DYNAMIC;
    p->static_challenge = cfg->scep_static_challenge;
    p->challenge_ttl = cfg->scep_challenge_ttl;
    p->days = (int)cfg->scep_cert_days;
    p->allow_ec = (int)cfg->scep_allow_ec;
    p->manual_approval = (int)cfg->scep_manual_approval;
}

static void scep_fail_http(struct request *req, struct response *resp, int status,
                           const char *reason)
{
    char q[200];
    log_warn("scep refused", "rid=%s addr=%s status=%d reason=%s", req->id, req->remote_addr,
             status, log_quote(q, sizeof q, reason));
    response_text(resp, status, reason);
}

/* With an RA, an intermediate or a previous CA in its overlap window the
 * answer is every certificate as a degenerate PKCS#7 (RA first, then the
 * issuing CA and its chain, then the previous CA), RFC 8894 §4.2.1.2. */
static void get_ca_certs(struct worker *w, struct response *resp)
{
    const struct pki_ca *ca = w->svc->ca;
    STACK_OF(X509) *certs = pki_ca_certs(ca, 1, (int64_t)time(NULL));
    uint8_t *der = NULL;
    size_t len = 0;
    if (!certs || scep_degenerate_certs(certs, &der, &len) != 0) {
        sk_X509_pop_free(certs, X509_free);
        response_text(resp, 500, "cannot encode the CA certificates");
        return;
    }
    sk_X509_pop_free(certs, X509_free);
    response_set(resp, 200, "application/x-x509-ca-ra-cert", der, len);
    free(der);
}

static void get_ca_cert(struct worker *w, struct response *resp)
{
    const struct pki_ca *ca = w->svc->ca;
    if (ca->ra_cert || sk_X509_num(ca->chain) > 0 ||
        (ca->previous && (int64_t)time(NULL) < ca->previous_until)) {
        get_ca_certs(w, resp);
        return;
    }
    unsigned char *der = NULL;
    int len = i2d_X509(w->svc->ca->cert, &der);
    if (len <= 0) {
        response_text(resp, 500, "cannot encode the CA certificate");
        return;
    }
    response_set(resp, 200, "application/x-x509-ca-cert", der, (size_t)len);
    OPENSSL_free(der);
}

/* When the issuing CA is an intermediate, the certificates between the
 * issued one and the root: the intermediate itself and any other
 * non-self-signed CA above it. A client that only holds the root (the
 * enrollment profile's trust payload) then has the whole path. A new stack
 * of borrowed pointers (sk_X509_free only), or NULL for a root CA. */
static STACK_OF(X509) *intermediates(const struct pki_ca *ca)
{
    if (sk_X509_num(ca->chain) <= 0)
        return NULL;
    STACK_OF(X509) *out = sk_X509_new_null();
    if (!out || sk_X509_push(out, ca->cert) <= 0) {
        sk_X509_free(out);
        return NULL;
    }
    for (int i = 0; i < sk_X509_num(ca->chain); i++) {
        X509 *x = sk_X509_value(ca->chain, i);
        if ((X509_get_extension_flags(x) & EXFLAG_SS) == 0 && sk_X509_push(out, x) <= 0) {
            sk_X509_free(out);
            return NULL;
        }
    }
    return out;
}

/* Answers req with a CertRep built from rep. */
static void send_certrep(struct worker *w, struct request *hreq, struct response *resp,
                         const struct scep_request *req, const struct scep_reply *rep)
{
    uint8_t *der = NULL;
    size_t len = 0;
    const struct pki_ca *ca = w->svc->ca;
    /* The RA signs replies when there is one (RFC 8894 §2.1): clients
     * verify it up to the CA from GetCACert. */
    X509 *signer = ca->ra_cert ? ca->ra_cert : ca->cert;
    EVP_PKEY *key = ca->ra_cert ? ca->ra_key : ca->key;
    struct scep_reply with_chain = *rep;
    STACK_OF(X509) *chain = rep->issued && !rep->chain ? intermediates(ca) : NULL;
    if (chain)
        with_chain.chain = chain;
    int rc = scep_certrep_build(req, &with_chain, signer, key, &der, &len);
    sk_X509_free(chain);
    if (rc < 0) {
        scep_fail_http(hreq, resp, 500, "cannot build the CertRep");
        return;
    }
    char q[160];
    log_info("scep", "rid=%s type=%d tid=%s status=%d fail_info=%d", hreq->id, req->message_type,
             log_quote(q, sizeof q, req->transaction_id), rep->status,
             rep->status == SCEP_FAILURE ? rep->fail_info : -1);
    response_set(resp, 200, "application/x-pki-message", der, len);
    free(der);
}

static void reply_failure(struct worker *w, struct request *hreq, struct response *resp,
                          const struct scep_request *req, int fail_info, const char *text)
{
    struct scep_reply rep = {.status = SCEP_FAILURE, .fail_info = fail_info, .fail_text = text};
    char q[200];
    log_warn("scep failure", "rid=%s tid=%s fail_info=%d reason=%s", hreq->id,
             req->transaction_id, fail_info, log_quote(q, sizeof q, text));
    send_certrep(w, hreq, resp, req, &rep);
}

/* Storage trouble is ours, not the client's: HTTP 503/500, so it retries. */
static void reply_store_error(struct request *hreq, struct response *resp, int store_rc)
{
    if (store_rc == STORE_UNAVAILABLE)
        scep_fail_http(hreq, resp, 503, "database busy, retry later");
    else
        scep_fail_http(hreq, resp, 500, "internal storage error");
}

static void on_enroll(struct worker *w, struct request *hreq, struct response *resp,
                      struct scep_request *req)
{
    struct certs_policy policy;
    scep_policy(w->svc->cfg, &policy);
    struct certs_issue_request ir = {
        .csr = req->csr, .challenge = req->challenge, .transaction_id = req->transaction_id,
        .renewing = req->message_type == SCEP_RENEWALREQ ? req->signer : NULL,
    };
    X509 *issued = NULL;
    const char *reason = "request refused";
    int store_rc = STORE_OK;
    int rc = certs_issue(w->store, w->svc->ca, &policy, &ir, (int64_t)time(NULL), &issued, &reason,
                         &store_rc);
    if (rc == CERTS_OK) {
        struct scep_reply rep = {.status = SCEP_SUCCESS, .issued = issued};
        send_certrep(w, hreq, resp, req, &rep);
        X509_free(issued);
    } else if (rc == CERTS_PENDING) {
        struct scep_reply rep = {.status = SCEP_PENDING};
        send_certrep(w, hreq, resp, req, &rep);
    } else if (rc == CERTS_BAD_REQUEST || rc == CERTS_BAD_CHALLENGE) {
        reply_failure(w, hreq, resp, req, SCEP_BAD_REQUEST, reason);
    } else if (rc == CERTS_STORE) {
        reply_store_error(hreq, resp, store_rc);
    } else {
        scep_fail_http(hreq, resp, 500, reason);
    }
}

static void on_poll(struct worker *w, struct request *hreq, struct response *resp,
                    struct scep_request *req)
{
    X509 *issued = NULL;
    int store_rc = STORE_OK;
    int rc = certs_poll(w->store, req->transaction_id, &issued, &store_rc);
    if (rc == CERTS_OK) {
        struct scep_reply rep = {.status = SCEP_SUCCESS, .issued = issued};
        send_certrep(w, hreq, resp, req, &rep);
        X509_free(issued);
    } else if (rc == CERTS_PENDING) {
        struct scep_reply rep = {.status = SCEP_PENDING};
        send_certrep(w, hreq, resp, req, &rep);
    } else if (rc == CERTS_NOTFOUND) {
        reply_failure(w, hreq, resp, req, SCEP_BAD_CERT_ID, "no request with this transaction id");
    } else {
        reply_store_error(hreq, resp, store_rc);
    }
}

static void on_get_cert(struct worker *w, struct request *hreq, struct response *resp,
                        struct scep_request *req)
{
    X509 *cert = NULL;
    int store_rc = STORE_OK;
    int rc = req->serial ? certs_get_by_serial(w->store, req->serial, &cert, &store_rc) : CERTS_NOTFOUND;
    if (rc == CERTS_OK) {
        struct scep_reply rep = {.status = SCEP_SUCCESS, .issued = cert};
        send_certrep(w, hreq, resp, req, &rep);
        X509_free(cert);
    } else if (rc == CERTS_NOTFOUND) {
        reply_failure(w, hreq, resp, req, SCEP_BAD_CERT_ID, "no certificate with this serial");
    } else {
        reply_store_error(hreq, resp, store_rc);
    }
}

/* CRLs are valid for a day; clients fetch again well before. */
#define CRL_VALIDITY (24 * 3600)

static void on_get_crl(struct worker *w, struct request *hreq, struct response *resp,
                       struct scep_request *req)
{
    X509_CRL *crl = NULL;
    int store_rc = STORE_OK;
    int rc = certs_crl(w->store, w->svc->ca, (int64_t)time(NULL), CRL_VALIDITY, &crl, &store_rc);
    if (rc != CERTS_OK) {
        reply_store_error(hreq, resp, store_rc);
        return;
    }
    struct scep_reply rep = {.status = SCEP_SUCCESS, .crl = crl};
    send_certrep(w, hreq, resp, req, &rep);
    X509_CRL_free(crl);
}

/* The pkiMessage bytes: the POST body, or ?message= (base64) of a GET. */
static uint8_t *message_bytes(struct request *req, size_t *len, int *owned, const char **reason)
{
    *owned = 0;
    if (strcmp(req->method, "POST") == 0) {
        *len = req->body_len;
        return req->body;
    }
    size_t cap = SCEP_MAX_MESSAGE * 4 / 3 + 8;
    char *b64 = malloc(cap);
    if (!b64) {
        *reason = "out of memory";
        return NULL;
    }
    const char *m = request_query(req, "message", b64, cap);
    if (!m) {
        free(b64);
        *reason = "PKIOperation by GET needs a message parameter";
        return NULL;
    }
    uint8_t *der = ids_b64_decode(m, strlen(m), len);
    free(b64);
    if (!der) {
        *reason = "message is not valid base64";
        return NULL;
    }
    *owned = 1;
    return der;
}

static void pki_operation(struct worker *w, struct request *hreq, struct response *resp)
{
    size_t len = 0;
    int owned = 0;
    const char *reason = NULL;
    uint8_t *der = message_bytes(hreq, &len, &owned, &reason);
    if (!der) {
        scep_fail_http(hreq, resp, 400, reason);
        return;
    }
    if (len == 0 || len > SCEP_MAX_MESSAGE) {
        if (owned)
            free(der);
        scep_fail_http(hreq, resp, len ? 413 : 400, len ? "pkiMessage too large" : "empty pkiMessage");
        return;
    }
    struct scep_request *req = NULL, *partial = NULL;
    int fail_info = SCEP_BAD_REQUEST;
    const struct pki_ca *ca = w->svc->ca;
    /* Clients envelope to the RA, or to the CA (some ignore the RA), or
     * during a rotation overlap to the previous CA they still know. */
    struct scep_keypair keys[3];
    size_t nkeys = 0;
    if (ca->ra_cert)
        keys[nkeys++] = (struct scep_keypair){ca->ra_cert, ca->ra_key};
    keys[nkeys++] = (struct scep_keypair){ca->cert, ca->key};
    if (ca->previous && (int64_t)time(NULL) < ca->previous_until)
        keys[nkeys++] = (struct scep_keypair){ca->previous->cert, ca->previous->key};
    int rc = scep_request_parse_keys(der, len, keys, nkeys, &req, &partial, &fail_info, &reason);
    if (owned)
        free(der);
    if (rc < 0) {
        if (partial)
            reply_failure(w, hreq, resp, partial, fail_info, reason);
        else
            scep_fail_http(hreq, resp, 400, reason ? reason : "malformed pkiMessage");
        scep_request_free(partial);
        return;
    }
    if (scep_request_time_ok(req, (int64_t)time(NULL)) != 0) {
        reply_failure(w, hreq, resp, req, SCEP_BAD_TIME, "signingTime too far from the server's clock");
        scep_request_free(req);
        return;
    }
    switch (req->message_type) {
    case SCEP_PKCSREQ:
    case SCEP_RENEWALREQ: on_enroll(w, hreq, resp, req); break;
    case SCEP_CERTPOLL: on_poll(w, hreq, resp, req); break;
    case SCEP_GETCERT: on_get_cert(w, hreq, resp, req); break;
    case SCEP_GETCRL: on_get_crl(w, hreq, resp, req); break;
    default: reply_failure(w, hreq, resp, req, SCEP_BAD_REQUEST, "unsupported messageType"); break;
    }
    scep_request_free(req);
}

void scep_handle(struct worker *w, struct request *req, struct response *resp)
{
    char op[64];
    if (!request_query(req, "operation", op, sizeof op)) {
        scep_fail_http(req, resp, 400, "missing operation parameter");
        return;
    }
    if (strcmp(op, "GetCACaps") == 0)
        response_set(resp, 200, "text/plain", caps, sizeof caps - 1);
    else if (strcmp(op, "GetCACert") == 0)
        get_ca_cert(w, resp);
    else if (strcmp(op, "PKIOperation") == 0)
        pki_operation(w, req, resp);
    else
        scep_fail_http(req, resp, 400, "unsupported operation");
}

void scep_handle_crl(struct worker *w, struct request *req, struct response *resp)
{
    X509_CRL *crl = NULL;
    int store_rc = STORE_OK;
    if (certs_crl(w->store, w->svc->ca, (int64_t)time(NULL), CRL_VALIDITY, &crl, &store_rc) != CERTS_OK) {
        reply_store_error(req, resp, store_rc);
        return;
    }
    unsigned char *der = NULL;
    int len = i2d_X509_CRL(crl, &der);
    X509_CRL_free(crl);
    if (len <= 0) {
        response_text(resp, 500, "cannot encode the CRL");
        return;
    }
    response_set(resp, 200, "application/pkix-crl", der, (size_t)len);
    OPENSSL_free(der);
}
