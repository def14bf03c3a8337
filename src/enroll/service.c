/* service.c: what the enrollment routes share: the topic, the per-request
 * profile settings (URLs, trust root, payload options), one-time SCEP
 * challenges for profiles, signing and serving a profile with the server's
 * certificate, refusals, and the hooks the MDM check-in calls so an
 * enrollment record follows its device (Authenticate, CheckOut). */
#include "enroll/enroll.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/certs.h"
#include "pki/pki.h"
#include "store/store.h"
#include "util/config.h"
#include "util/log.h"

int enroll_topic(struct store *s, const struct config *cfg, char *out, size_t n,
                 int *configured)
{
    /* The installed push certificate's topic when there is one: a profile
     * with any other topic would enroll devices nobody can wake. */
    *configured = 0;
    if (store_pushcert_topic_default(s, out, n) == STORE_OK && out[0])
        return 0;
    static atomic_int said;
    *configured = 1;
    if (!cfg->enroll_topic[0] || strlen(cfg->enroll_topic) >= n)
        return -1;
    snprintf(out, n, "%s", cfg->enroll_topic);
    if (!atomic_exchange(&said, 1))
        log_warn("enrollment topic from configuration",
                 "topic=%s reason=\"no push certificate installed; profiles use enroll_topic\"",
                 out);
    return 0;
}

void enroll_refuse(const struct request *req, struct response *resp, int status,
                   const char *reason)
{
    char q[300];
    log_msg(status >= 500 ? LOG_WARN : LOG_INFO, "enrollment refused",
            "rid=%s addr=%s path=%s status=%d reason=\"%s\"", req->id, req->remote_addr,
            log_quote(q, sizeof q, req->path), status, reason);
    response_text(resp, status, reason);
}

/* A Host header is a host name or address with an optional port. */
static int host_ok(const char *h)
{
    size_t n = strlen(h);
    if (n == 0 || n > 255)
        return 0;
    for (const char *p = h; *p; p++)
        if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') && !(*p >= '0' && *p <= '9') &&
            !strchr(".-:[]", *p))
            return 0;
    return 1;
}

static X509 *trust_root(const struct pki_ca *ca)
{
    int n = ca->chain ? sk_X509_num(ca->chain) : 0;
    return n > 0 ? sk_X509_value(ca->chain, n - 1) : ca->cert;
}

int enroll_ctx_init(struct worker *w, const struct request *req, struct enroll_ctx *ctx,
                    const char **why)
{
    const struct config *cfg = w->svc->cfg;
    memset(ctx, 0, sizeof *ctx);
    if (cfg->enroll_base_url[0]) {
        snprintf(ctx->base_url, sizeof ctx->base_url, "%s", cfg->enroll_base_url);
    } else {
        const char *host = request_header(req, "Host");
        if (!host || !host_ok(host)) {
            *why = "no usable Host header (set enroll_base_url)";
            return -1;
        }
        snprintf(ctx->base_url, sizeof ctx->base_url, "https://%s", host);
    }
    size_t bl = strlen(ctx->base_url);
    while (bl > 0 && ctx->base_url[bl - 1] == '/')
        ctx->base_url[--bl] = '\0';
    int configured = 0;
    if (enroll_topic(w->store, cfg, ctx->topic, sizeof ctx->topic, &configured) != 0) {
        *why = "no APNs topic: install a push certificate or set enroll_topic";
        return -1;
    }
    int external = cfg->scep_external_url[0] != '\0';
    snprintf(ctx->scep_url, sizeof ctx->scep_url, "%s%s", external ? cfg->scep_external_url
                                                                    : ctx->base_url,
             external ? "" : "/scep");
    struct enroll_settings *st = &ctx->st;
    st->base_url = ctx->base_url;
    st->scep_url = ctx->scep_url;
    st->scep_name = "steward";
    st->topic = ctx->topic;
    st->topic_configured = configured;
    st->organization = cfg->enroll_organization;
    st->identifier = ENROLL_IDENTIFIER;
    st->access_rights = cfg->enroll_access_rights;
    st->sign_message = (int)cfg->enroll_sign_message;
    st->checkout_when_removed = (int)cfg->enroll_checkout_when_removed;
    /* steward's CA is private: devices must be told to trust it (the TLS
     * server certificate chains to it too). An external SCEP CA's trust is
     * the operator's to distribute. */
    st->trust_root = external || !w->svc->ca ? NULL : trust_root(w->svc->ca);
    return 0;
}

int enroll_scep_challenge(struct worker *w, const char *created_for, char *out, size_t n,
                          const char **challenge)
{
    const struct config *cfg = w->svc->cfg;
    *challenge = NULL;
    if (cfg->scep_external_url[0]) {
        if (cfg->scep_external_challenge[0]) {
            snprintf(out, n, "%s", cfg->scep_external_challenge);
            *challenge = out;
        }
        return 0;
    }
    if (strcmp(cfg->scep_challenge, "static") == 0) {
        snprintf(out, n, "%s", cfg->scep_static_challenge);
        *challenge = out;
        return 0;
    }
    if (strcmp(cfg->scep_challenge, "dynamic") != 0)
        return 0;
    char ch[33];
    int64_t expires = 0;
    int store_rc = STORE_OK;
    int64_t ttl = cfg->scep_challenge_ttl > 0 ? cfg->scep_challenge_ttl : 3600;
    if (n < sizeof ch ||
        certs_challenge_create(w->store, created_for, ttl, (int64_t)time(NULL), ch, &expires,
                               &store_rc) != CERTS_OK)
        return -1;
    memcpy(out, ch, sizeof ch);
    *challenge = out;
    return 0;
}

/* The server's signing identity: tls_cert (its chain follows) and tls_key. */
static int load_signer(const struct config *cfg, X509 **cert, EVP_PKEY **key,
                       STACK_OF(X509) **chain)
{
    *cert = NULL;
    *key = NULL;
    *chain = pki_read_certs(cfg->tls_cert);
    if (!*chain || sk_X509_num(*chain) == 0)
        goto fail;
    *cert = sk_X509_shift(*chain);
    FILE *f = fopen(cfg->tls_key, "r");
    if (!f)
        goto fail;
    *key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (*key && X509_check_private_key(*cert, *key) == 1)
        return 0;
fail:
    ERR_clear_error();
    X509_free(*cert);
    EVP_PKEY_free(*key);
    if (*chain)
        sk_X509_pop_free(*chain, X509_free);
    *cert = NULL;
    *key = NULL;
    *chain = NULL;
    return -1;
}

int enroll_send_profile(struct worker *w, const struct request *req, struct response *resp,
                        plist_t profile, const char *filename)
{
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    STACK_OF(X509) *chain = NULL;
    uint8_t *der = NULL;
    size_t len = 0;
    int rc = -1;
    if (!profile || load_signer(w->svc->cfg, &cert, &key, &chain) != 0) {
        enroll_refuse(req, resp, 500, "cannot load the profile signing certificate");
        goto out;
    }
    if (enroll_profile_sign(profile, cert, key, chain, &der, &len) != 0) {
        enroll_refuse(req, resp, 500, "cannot sign the profile");
        goto out;
    }
    char disp[200];
    snprintf(disp, sizeof disp, "attachment; filename=\"%s\"", filename);
    if (response_set(resp, 200, ENROLL_CONTENT_TYPE, der, len) != 0 ||
        response_add_header(resp, "Content-Disposition", disp) != 0 ||
        response_add_header(resp, "Cache-Control", "no-store") != 0) {
        response_text(resp, 500, "out of memory");
        goto out;
    }
    rc = 0;
out:
    free(der);
    X509_free(cert);
    EVP_PKEY_free(key);
    if (chain)
        sk_X509_pop_free(chain, X509_free);
    plist_free(profile);
    return rc;
}

/* ---- check-in hooks ---- */

/* 1 when the certificate steward issued with fingerprint fp names another
 * subject CN than udid (certificates of other CAs are not judged here). */
static int issued_for_other(struct store *s, const char *fp, const char *udid)
{
    struct store_cert *c = NULL;
    if (!fp || !*fp || store_cert_get_by_fingerprint(s, fp, &c) != STORE_OK)
        return 0;
    X509 *x = c->der ? pki_cert_from_der(c->der, c->der_len) : NULL;
    char cn[128];
    int other = x && X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
                                               (int)sizeof cn) > 0 &&
                strcmp(cn, udid) != 0;
    X509_free(x);
    store_cert_free(c);
    ERR_clear_error();
    return other;
}

int enroll_check_authenticate(struct store *s, const char *udid, const char *serial,
                              const char *cert_fp, const char **reason)
{
    struct store_enroll_record r;
    int rc = store_enroll_record_pending_for(s, udid, 3, (int64_t)time(NULL), &r);
    if (rc != STORE_OK)
        return 0; /* nothing pending (or the store is down: Authenticate decides) */
    const char *why = NULL;
    if (r.serial && serial && strcmp(r.serial, serial) != 0)
        why = "Authenticate's serial number differs from the enrolled device's attributes";
    else if (issued_for_other(s, cert_fp, udid))
        why = "the identity certificate was issued for another device";
    if (why) {
        *reason = why;
        store_enroll_record_fail(s, r.id, why, (int64_t)time(NULL));
    }
    store_enroll_record_clear(&r);
    return why ? -1 : 0;
}

void enroll_note_authenticated(struct store *s, const char *id, const char *udid)
{
    struct store_enroll_record r;
    int64_t now = (int64_t)time(NULL);
    if (store_enroll_record_pending_for(s, udid, 3, now, &r) != STORE_OK)
        return;
    if (store_enroll_record_enrolled(s, r.id, id, now) == STORE_OK)
        log_info("enrolled", "record=%s user=%s id=%s method=%s", r.id,
                 r.user_name ? r.user_name : "", id, r.method);
    store_enroll_record_clear(&r);
}

void enroll_note_checkout(struct store *s, const char *id)
{
    if (store_enroll_record_ended(s, id, "unenrolled", (int64_t)time(NULL)) != STORE_OK)
        log_warn("enrollment record not ended", "id=%s", id);
}

void enroll_housekeeping_job(struct store *s, void *arg, int64_t now)
{
    (void)arg;
    int64_t expired = 0;
    int rc = store_enroll_records_expire(s, now, &expired);
    if (rc == STORE_OK)
        rc = store_web_purge(s, now);
    if (rc != STORE_OK)
        log_warn("enrollment housekeeping failed", "rc=%d", rc);
    else if (expired)
        log_info("enrollments expired", "records=%lld", (long long)expired);
}
