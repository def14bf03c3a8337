/* ota.c: phases 2 and 3 of Apple's over-the-air Profile Service enrollment
 * (PROTOCOL.md §7b) at POST /enroll/ota. The device posts a CMS SignedData
 * (content attached) of a plist with its attributes:
 *  - signed by its Apple-issued device certificate (phase 2): the signature
 *    is verified, the signer checked against enroll_device_ca_files when
 *    configured, the one-time challenge from phase 1 consumed, the attributes
 *    stored; the answer is a signed profile with a SCEP payload (one-time
 *    challenge, subject CN = the UDID);
 *  - signed by the identity that SCEP payload produced (phase 3): it must
 *    chain to steward's CA, be unrevoked and name the same UDID; the answer
 *    is the final enrollment profile (trust root, SCEP, MDM payloads) with
 *    its content encrypted to that certificate, signed.
 * Every refusal is a 4xx with a reason, a log line, and nothing enrolled. */
#include "enroll/enroll.h"

#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/certs.h"
#include "pki/cms.h"
#include "pki/pki.h"
#include "plist/pl.h"
#include "store/store.h"
#include "util/config.h"
#include "util/ids.h"
#include "util/log.h"

#define OTA_MAX_BODY (256 * 1024)

struct ota_msg {
    plist_t attrs;          /* the posted plist (owned) */
    X509 *signer;           /* owned */
    STACK_OF(X509) *others; /* owned, may be NULL */
    const char *udid;
};

static void ota_msg_free(struct ota_msg *m)
{
    plist_free(m->attrs);
    X509_free(m->signer);
    if (m->others)
        sk_X509_pop_free(m->others, X509_free);
    memset(m, 0, sizeof *m);
}

/* Verifies the CMS structure and signature and parses the attributes. */
static int ota_decode(const struct request *req, struct ota_msg *m, const char **why)
{
    uint8_t *content = NULL;
    size_t clen = 0;
    memset(m, 0, sizeof *m);
    if (req->body_len == 0 || req->body_len > OTA_MAX_BODY) {
        *why = "the body must be a CMS SignedData of at most 256 KiB";
        return -1;
    }
    const char *reason = NULL;
    if (cms_verify(req->body, req->body_len, NULL, 0, &content, &clen, &m->signer, &m->others,
                   &reason) != 0) {
        ERR_clear_error();
        *why = reason ? reason : "the signature does not verify";
        return -1;
    }
    const char *perr = NULL;
    m->attrs = content ? pl_parse_dict(content, clen, &perr) : NULL;
    free(content);
    if (!m->attrs) {
        *why = "the signed content is not a property list dictionary";
        ota_msg_free(m);
        return -1;
    }
    m->udid = pl_str(m->attrs, "UDID");
    if (!m->udid || !*m->udid || strlen(m->udid) > 64) {
        *why = "the attributes hold no UDID";
        ota_msg_free(m);
        return -1;
    }
    return 0;
}

/* The configured Apple device CAs, or NULL when none are configured. */
static int device_trusted(const struct config *cfg, X509 *signer, STACK_OF(X509) *others,
                          const char **why)
{
    if (!cfg->enroll_device_ca_files[0])
        return 1;
    char paths[8][CONFIG_STR * 2];
    const char *files[8];
    size_t n = 0;
    const char *p = cfg->enroll_device_ca_files;
    while (*p && n < 8) {
        while (*p == ',' || *p == ' ')
            p++;
        size_t l = strcspn(p, ",");
        while (l > 0 && p[l - 1] == ' ')
            l--;
        if (l > 0) {
            if (*p == '/')
                snprintf(paths[n], sizeof paths[n], "%.*s", (int)l, p);
            else
                snprintf(paths[n], sizeof paths[n], "%s/%.*s", cfg->data_dir, (int)l, p);
            files[n] = paths[n];
            n++;
        }
        p += l;
        while (*p && *p != ',')
            p++;
    }
    char *err = NULL;
    struct pki_trust *t = pki_trust_new_files(files, n, &err);
    if (!t) {
        log_warn("enroll_device_ca_files unreadable", "err=\"%s\"", err ? err : "?");
        free(err);
        *why = "the device CA files cannot be read";
        return 0;
    }
    const char *reason = NULL;
    int ok = pki_verify_device_cert(t, signer, others, &reason) == 0;
    pki_trust_free(t);
    if (!ok)
        *why = "the attributes are signed by an untrusted certificate";
    return ok;
}

static void attrs_of(plist_t d, struct store_enroll_attrs *a)
{
    a->udid = pl_str(d, "UDID");
    a->serial = pl_str(d, "SERIAL");
    a->imei = pl_str(d, "IMEI");
    a->iccid = pl_str(d, "ICCID");
    a->product = pl_str(d, "PRODUCT");
    a->version = pl_str(d, "VERSION");
    a->mac = pl_str(d, "MAC_ADDRESS_EN0");
    a->device_name = pl_str(d, "DEVICE_NAME");
}

static void log_phase(const struct request *req, const char *rid, int phase, const char *udid)
{
    char q[100];
    log_info("enrollment phase", "rid=%s record=%s phase=%d udid=%s", req->id, rid, phase,
             log_quote(q, sizeof q, udid));
}

/* Phase 2: challenge + attributes signed by the device's Apple certificate. */
static void phase2(struct worker *w, struct request *req, struct response *resp,
                   struct ota_msg *m, struct enroll_ctx *ctx)
{
    const struct config *cfg = w->svc->cfg;
    const char *why = NULL, *challenge = pl_str(m->attrs, "CHALLENGE");
    if (!device_trusted(cfg, m->signer, m->others, &why)) {
        enroll_refuse(req, resp, 403, why);
        return;
    }
    if (!challenge || !*challenge || strlen(challenge) > 128) {
        enroll_refuse(req, resp, 403, "the attributes hold no CHALLENGE");
        return;
    }
    char hash[65];
    ids_sha256_hex((const uint8_t *)challenge, strlen(challenge), hash);
    struct store_enroll_record r;
    int64_t now = (int64_t)time(NULL);
    int rc = store_enroll_record_by_challenge(w->store, hash, &r);
    if (rc == STORE_NOTFOUND) {
        enroll_refuse(req, resp, 403, "unknown enrollment challenge");
        return;
    }
    if (rc != STORE_OK) {
        enroll_refuse(req, resp, 503, "storage unavailable");
        return;
    }
    const char *refusal = r.phase != 1 || strcmp(r.status, "pending") != 0
                              ? "the enrollment challenge was already used"
                          : r.expires_at <= now ? "the enrollment challenge expired"
                                                : NULL;
    struct store_enroll_attrs a;
    attrs_of(m->attrs, &a);
    if (!refusal) {
        rc = store_enroll_record_advance(w->store, r.id, 1, 2, &a, now,
                                         now + cfg->enroll_pending_ttl);
        refusal = rc == STORE_NOTFOUND ? "the enrollment challenge was already used"
                  : rc != STORE_OK     ? "storage unavailable"
                                       : NULL;
    }
    if (refusal) {
        enroll_refuse(req, resp, rc == STORE_OK || rc == STORE_NOTFOUND ? 403 : 503, refusal);
        store_enroll_record_clear(&r);
        return;
    }
    log_phase(req, r.id, 2, m->udid);
    char created_for[64], chbuf[600];
    const char *scep_ch = NULL;
    snprintf(created_for, sizeof created_for, "enroll:%s", r.id);
    if (enroll_scep_challenge(w, created_for, chbuf, sizeof chbuf, &scep_ch) != 0) {
        store_enroll_record_clear(&r);
        enroll_refuse(req, resp, 503, "cannot make a SCEP challenge");
        return;
    }
    store_enroll_record_clear(&r);
    struct enroll_identity id = {scep_ch, m->udid, NULL};
    plist_t content = enroll_payloads_scep(&ctx->st, &id);
    plist_t p = content ? enroll_profile_wrap(&ctx->st, "ota-identity", "Device identity",
                                              "Gets this device's enrollment certificate.",
                                              content)
                        : NULL;
    enroll_send_profile(w, req, resp, p, "identity.mobileconfig");
}

/* The identity's subject CN. */
static int subject_cn(X509 *c, char *out, size_t n)
{
    return X509_NAME_get_text_by_NID(X509_get_subject_name(c), NID_commonName, out, (int)n) > 0
               ? 0
               : -1;
}

/* Phase 3: attributes signed by the identity issued after phase 2. */
static void phase3(struct worker *w, struct request *req, struct response *resp,
                   struct ota_msg *m, struct enroll_ctx *ctx)
{
    const struct config *cfg = w->svc->cfg;
    char fp[65], cn[128];
    const char *reason = NULL;
    int store_rc = STORE_OK;
    pki_cert_fingerprint(m->signer, fp);
    if (certs_check_not_revoked(w->store, fp, &reason, &store_rc) != CERTS_OK) {
        enroll_refuse(req, resp, store_rc != STORE_OK ? 503 : 403,
                      store_rc != STORE_OK ? "storage unavailable" : "the identity is revoked");
        return;
    }
    if (subject_cn(m->signer, cn, sizeof cn) != 0 || strcmp(cn, m->udid) != 0) {
        enroll_refuse(req, resp, 403, "the identity was not issued to the device with this UDID");
        return;
    }
    struct store_enroll_record r;
    int64_t now = (int64_t)time(NULL);
    int rc = store_enroll_record_pending_for(w->store, m->udid, 2, now, &r);
    if (rc == STORE_NOTFOUND) {
        enroll_refuse(req, resp, 403,
                      "no enrollment of this device is waiting for its identity (phase 2 first)");
        return;
    }
    if (rc != STORE_OK) {
        enroll_refuse(req, resp, 503, "storage unavailable");
        return;
    }
    const char *serial = pl_str(m->attrs, "SERIAL");
    const char *refusal = NULL;
    if (r.serial && serial && strcmp(r.serial, serial) != 0)
        refusal = "the device's attributes changed between phases";
    else if (ASN1_TIME_cmp_time_t(X509_get0_notBefore(m->signer), (time_t)r.created_at - 360) < 0)
        refusal = "the identity is older than this enrollment";
    if (refusal) {
        store_enroll_record_fail(w->store, r.id, refusal, now);
        store_enroll_record_clear(&r);
        enroll_refuse(req, resp, 403, refusal);
        return;
    }
    rc = store_enroll_record_advance(w->store, r.id, 2, 3, NULL, now, now + cfg->enroll_pending_ttl);
    if (rc != STORE_OK) {
        store_enroll_record_clear(&r);
        enroll_refuse(req, resp, rc == STORE_NOTFOUND ? 409 : 503,
                      rc == STORE_NOTFOUND ? "this phase was already answered"
                                           : "storage unavailable");
        return;
    }
    log_phase(req, r.id, 3, m->udid);
    char created_for[64], chbuf[600];
    const char *scep_ch = NULL;
    snprintf(created_for, sizeof created_for, "enroll:%s", r.id);
    store_enroll_record_clear(&r);
    if (enroll_scep_challenge(w, created_for, chbuf, sizeof chbuf, &scep_ch) != 0) {
        enroll_refuse(req, resp, 503, "cannot make a SCEP challenge");
        return;
    }
    struct enroll_identity id = {scep_ch, m->udid, NULL};
    plist_t content = enroll_payloads_mdm(&ctx->st, &id);
    plist_t p = content ? enroll_profile_wrap(&ctx->st, "profile", "Device enrollment",
                                              "Enrolls this device in device management.",
                                              content)
                        : NULL;
    if (p && enroll_profile_encrypt(p, m->signer) != 0) {
        plist_free(p);
        enroll_refuse(req, resp, 500, "cannot encrypt the profile to the device");
        return;
    }
    enroll_send_profile(w, req, resp, p, "enroll.mobileconfig");
}

void enroll_ota(struct worker *w, struct request *req, struct response *resp)
{
    struct ota_msg m;
    const char *why = NULL;
    if (ota_decode(req, &m, &why) != 0) {
        enroll_refuse(req, resp, 400, why);
        return;
    }
    struct enroll_ctx ctx;
    if (enroll_ctx_init(w, req, &ctx, &why) != 0) {
        ota_msg_free(&m);
        enroll_refuse(req, resp, 503, why);
        return;
    }
    /* An identity from steward's CA means phase 3; anything else phase 2. */
    const char *reason = NULL;
    if (pki_verify_device_cert(w->svc->trust, m.signer, m.others, &reason) == 0)
        phase3(w, req, resp, &m, &ctx);
    else
        phase2(w, req, resp, &m, &ctx);
    ERR_clear_error();
    ota_msg_free(&m);
}
