/* ota.c: steward-devsim enrolls the way iOS does from an enrollment
 * profile (--method profile|ota):
 *  - profile: fetches the signed enrollment profile from the admin API (as
 *    Apple Configurator or a USB flow would install it);
 *  - ota: Safari on the portal (GET /enroll, POST the sign-in form with its
 *    CSRF token, keep the cookies), then Apple's Profile Service flow:
 *    phase 1 profile -> POST the attributes with the challenge, CMS-signed by
 *    a device certificate from --device-ca-cert/--device-ca-key (the
 *    simulator's stand-in for Apple's iPhone Device CA; self-signed without)
 *    -> phase 2 profile: SCEP -> POST the attributes signed with that
 *    identity -> phase 3: decrypt EncryptedPayloadContent with it.
 * Either way it then installs the payloads: SCEP with the profile's
 * challenge, then Authenticate and TokenUpdate at the MDM payload's
 * CheckInURL with its Topic (and Mdm-Signature when SignMessage is set).
 * Called by load.c inside a worker thread. */
#include "devsim/devsim.h"

#include "pki/cms.h"
#include "plist/pl.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CT_PROFILE "application/x-apple-aspen-config"

/* What installing a profile's payloads tells the device. */
struct installed {
    char scep_url[1024];
    char challenge[256];
    int has_challenge;
    char server_url[1024];
    char checkin_url[1024];
    char topic[160];
    int sign_message;
    int has_mdm;
};

static int ota_fail(struct devsim_report *r, const struct devsim_device *d, const char *phase,
                    long status, const char *what)
{
    ERR_clear_error();
    fprintf(stderr, "steward-devsim: %s %s: %s\n", d->facts.udid, phase, what);
    devsim_report_err(r, d->facts.udid, phase, status, what);
    return -1;
}

/* One plain exchange, counted; 0 when the status is want. */
static int call(struct devsim_http *h, const struct devsim_device *d, struct devsim_report *r,
                const char *phase, const char *method, const char *url, const char *ctype,
                const char *extra, const void *body, size_t len, long want,
                struct devsim_http_resp *resp)
{
    r->requests++;
    if (devsim_http_plain(h, method, url, ctype, extra, body, len, resp) != 0)
        return ota_fail(r, d, phase, 0, resp->error);
    devsim_report_http(r, resp->status);
    if (resp->status == want)
        return 0;
    char msg[600];
    snprintf(msg, sizeof msg, "HTTP %ld %.*s", resp->status,
             (int)(resp->body.len > 300 ? 300 : resp->body.len),
             resp->body.data ? resp->body.data : "");
    buf_free(&resp->body);
    return ota_fail(r, d, phase, resp->status, msg);
}

static char *url_join(const char *base, const char *path)
{
    char *out = NULL;
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        n--;
    return asprintf(&out, "%.*s%s", (int)n, base, path) < 0 ? NULL : out;
}

/* A signed profile of PayloadType type: verifies the CMS signature and
 * parses the plist. */
static plist_t open_signed_profile(const struct buf *b, const char *type, const char **why)
{
    uint8_t *content = NULL;
    size_t clen = 0;
    X509 *signer = NULL;
    STACK_OF(X509) *others = NULL;
    if (cms_verify((const uint8_t *)b->data, b->len, NULL, 0, &content, &clen, &signer, &others,
                   why) != 0)
        return NULL;
    X509_free(signer);
    if (others)
        sk_X509_pop_free(others, X509_free);
    plist_t p = content ? pl_parse_dict(content, clen, why) : NULL;
    free(content);
    if (p && strcmp(pl_str(p, "PayloadType") ? pl_str(p, "PayloadType") : "", type)) {
        *why = "the profile has another PayloadType";
        plist_free(p);
        return NULL;
    }
    return p;
}

static void copy(char *dst, size_t n, const char *s)
{
    snprintf(dst, n, "%s", s ? s : "");
}

/* Reads the SCEP and MDM payloads of a PayloadContent array. */
static void install_payloads(plist_t arr, struct installed *in)
{
    uint32_t n = plist_array_get_size(arr);
    for (uint32_t i = 0; i < n; i++) {
        plist_t p = plist_array_get_item(arr, i);
        const char *type = pl_str(p, "PayloadType");
        if (!type)
            continue;
        if (strcmp(type, "com.apple.security.scep") == 0) {
            plist_t c = plist_dict_get_item(p, "PayloadContent");
            copy(in->scep_url, sizeof in->scep_url, pl_str(c, "URL"));
            const char *ch = pl_str(c, "Challenge");
            in->has_challenge = ch != NULL;
            copy(in->challenge, sizeof in->challenge, ch);
        } else if (strcmp(type, "com.apple.mdm") == 0) {
            in->has_mdm = 1;
            copy(in->server_url, sizeof in->server_url, pl_str(p, "ServerURL"));
            copy(in->checkin_url, sizeof in->checkin_url, pl_str(p, "CheckInURL"));
            if (!in->checkin_url[0])
                copy(in->checkin_url, sizeof in->checkin_url, in->server_url);
            copy(in->topic, sizeof in->topic, pl_str(p, "Topic"));
            in->sign_message = pl_bool(p, "SignMessage", 0);
        }
    }
}

/* SCEP as the payload says: URL and challenge. */
static int payload_scep(const struct devsim_opts *o, struct devsim_http *h,
                        struct devsim_device *d, struct devsim_report *r,
                        const struct installed *in)
{
    if (!in->scep_url[0])
        return ota_fail(r, d, "install", 0, "the profile has no SCEP payload");
    struct devsim_opts so = *o;
    so.scep_url = (char *)in->scep_url;
    so.challenge = in->has_challenge ? in->challenge : NULL;
    so.api_key = NULL;
    so.api_url = NULL;
    return devsim_scep_enroll(&so, h, d, r);
}

/* The MDM payload's URLs and topic, then the verb's check-in steps. */
static int payload_mdm(const struct devsim_opts *o, struct devsim_http *h,
                       struct devsim_device *d, struct devsim_report *r,
                       const struct installed *in)
{
    if (!in->has_mdm || !in->server_url[0] || !in->topic[0])
        return ota_fail(r, d, "install", 0, "the profile has no usable MDM payload");
    struct devsim_opts mo = *o;
    mo.checkin_url = (char *)in->checkin_url;
    mo.connect_url = (char *)in->server_url;
    mo.signature = o->signature || in->sign_message;
    copy(d->facts.topic, sizeof d->facts.topic, in->topic);
    if (devsim_flow_enroll(&mo, h, d, r) != 0)
        return -1;
    return o->verb == DEVSIM_RUN ? devsim_flow_connect(&mo, h, d, r) : 0;
}

static int install(const struct devsim_opts *o, struct devsim_http *h, struct devsim_device *d,
                   struct devsim_report *r, plist_t content)
{
    struct installed in;
    memset(&in, 0, sizeof in);
    install_payloads(content, &in);
    if (payload_scep(o, h, d, r, &in) != 0)
        return -1;
    return payload_mdm(o, h, d, r, &in);
}

/* ---- --method profile ---- */

static int method_profile(const struct devsim_opts *o, struct devsim_http *h,
                          struct devsim_device *d, struct devsim_report *r)
{
    if (!o->api_url || !o->api_key)
        return ota_fail(r, d, "profile", 0, "--method profile needs --url and --api-key");
    char *url = url_join(o->api_url, "/api/v1/enroll/profile");
    char auth[600];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", o->api_key);
    struct devsim_http_resp resp;
    int rc = url ? call(h, d, r, "profile", "GET", url, NULL, auth, NULL, 0, 200, &resp) : -1;
    free(url);
    if (rc != 0)
        return -1;
    const char *why = "unreadable";
    plist_t p = open_signed_profile(&resp.body, "Configuration", &why);
    buf_free(&resp.body);
    if (!p)
        return ota_fail(r, d, "profile", 200, why);
    plist_t content = plist_dict_get_item(p, "PayloadContent");
    rc = content && plist_get_node_type(content) == PLIST_ARRAY
             ? install(o, h, d, r, content)
             : ota_fail(r, d, "profile", 200, "the profile has no PayloadContent array");
    plist_free(p);
    return rc;
}

/* ---- --method ota ---- */

static int form_escape(struct buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        int plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    strchr("-._~", c);
        if (plain ? buf_append(b, s, 1) : buf_printf(b, "%%%02X", c))
            return -1;
    }
    return 0;
}

/* Safari: the sign-in page, then the form. */
static int portal_sign_in(const struct devsim_opts *o, struct devsim_http *h,
                          struct devsim_device *d, struct devsim_report *r)
{
    char *url = url_join(o->api_url, "/enroll");
    struct devsim_http_resp resp;
    if (!url || devsim_http_cookies_reset(h) != 0) {
        free(url);
        return ota_fail(r, d, "portal", 0, "cannot set up the browser");
    }
    int rc = call(h, d, r, "portal", "GET", url, NULL, NULL, NULL, 0, 200, &resp);
    if (rc != 0) {
        free(url);
        return -1;
    }
    char token[80] = "";
    const char *t = resp.body.data ? strstr(resp.body.data, "name=\"csrf\" value=\"") : NULL;
    if (t)
        sscanf(t + 19, "%79[0-9a-f]", token);
    buf_free(&resp.body);
    if (!token[0]) {
        free(url);
        return ota_fail(r, d, "portal", 200, "the sign-in page has no CSRF token");
    }
    struct buf form = {0};
    if (buf_printf(&form, "csrf=%s&username=", token) < 0 || form_escape(&form, o->enroll_user) ||
        buf_puts(&form, "&password=") || form_escape(&form, o->enroll_password)) {
        buf_free(&form);
        free(url);
        return ota_fail(r, d, "portal", 0, "out of memory");
    }
    rc = call(h, d, r, "sign-in", "POST", url, "application/x-www-form-urlencoded", NULL,
              form.data, form.len, 303, &resp);
    buf_free(&form);
    free(url);
    if (rc == 0)
        buf_free(&resp.body);
    return rc;
}

/* The device's "Apple-issued" certificate: from the device CA, else
 * self-signed. */
static int device_cert(const struct devsim_opts *o, const struct devsim_device *d, X509 **cert,
                       EVP_PKEY **key)
{
    X509 *ca = NULL;
    EVP_PKEY *ca_key = NULL;
    *cert = X509_new();
    *key = EVP_RSA_gen(2048);
    int ok = *cert && *key;
    if (ok && o->device_ca_cert) {
        FILE *f = fopen(o->device_ca_cert, "r");
        ca = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
        if (f)
            fclose(f);
        f = fopen(o->device_ca_key, "r");
        ca_key = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
        if (f)
            fclose(f);
        ok = ca && ca_key;
    }
    X509_NAME *n = ok ? X509_get_subject_name(*cert) : NULL;
    ok = ok && X509_set_version(*cert, 2) == 1 &&
         ASN1_INTEGER_set(X509_get_serialNumber(*cert), (long)(d->index + 1000)) == 1 &&
         X509_gmtime_adj(X509_getm_notBefore(*cert), -3600) &&
         X509_gmtime_adj(X509_getm_notAfter(*cert), 86400L * 365) &&
         X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)d->facts.udid,
                                    -1, -1, 0) == 1 &&
         X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8,
                                    (const unsigned char *)"Simulated Apple iPhone Device", -1, -1,
                                    0) == 1 &&
         X509_set_issuer_name(*cert, ca ? X509_get_subject_name(ca) : n) == 1 &&
         X509_set_pubkey(*cert, *key) == 1 &&
         X509_sign(*cert, ca_key ? ca_key : *key, EVP_sha256()) > 0;
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    if (!ok) {
        X509_free(*cert);
        EVP_PKEY_free(*key);
        *cert = NULL;
        *key = NULL;
        ERR_clear_error();
    }
    return ok ? 0 : -1;
}

static void set_attr(plist_t d, const char *k, const char *v)
{
    if (v && *v)
        plist_dict_set_item(d, k, plist_new_string(v));
}

/* The attributes plist, CMS-signed (attached) by cert/key. */
static int signed_attributes(const struct devsim_device *d, const char *challenge, X509 *cert,
                             EVP_PKEY *key, uint8_t **der, size_t *len)
{
    const struct devsim_facts *f = &d->facts;
    plist_t a = plist_new_dict();
    set_attr(a, "UDID", f->udid);
    set_attr(a, "SERIAL", f->serial);
    set_attr(a, "PRODUCT", f->product_name);
    set_attr(a, "VERSION", f->build_version);
    set_attr(a, "DEVICE_NAME", f->device_name);
    set_attr(a, "IMEI", f->imei);
    set_attr(a, "ICCID", f->iccid);
    set_attr(a, "MAC_ADDRESS_EN0", f->wifi_mac);
    set_attr(a, "CHALLENGE", challenge);
    char *xml = NULL;
    size_t xl = 0;
    int rc = pl_to_xml(a, &xml, &xl);
    plist_free(a);
    if (rc == 0)
        rc = cms_sign(cert, key, NULL, EVP_sha256(), (const uint8_t *)xml, xl, 0, der, len);
    free(xml);
    return rc;
}

static int post_attributes(struct devsim_http *h, struct devsim_device *d,
                           struct devsim_report *r, const char *phase, const char *url,
                           const char *challenge, X509 *cert, EVP_PKEY *key, plist_t *profile,
                           struct buf *raw)
{
    uint8_t *der = NULL;
    size_t len = 0;
    if (signed_attributes(d, challenge, cert, key, &der, &len) != 0)
        return ota_fail(r, d, phase, 0, "cannot sign the attributes");
    struct devsim_http_resp resp;
    int rc = call(h, d, r, phase, "POST", url, "application/pkcs7-signature", NULL, der, len,
                  200, &resp);
    free(der);
    if (rc != 0)
        return -1;
    const char *why = "unreadable";
    *profile = open_signed_profile(&resp.body, "Configuration", &why);
    if (raw)
        *raw = resp.body;
    else
        buf_free(&resp.body);
    return *profile ? 0 : ota_fail(r, d, phase, 200, why);
}

static void save_raw(const struct devsim_device *d, const char *name, const struct buf *b)
{
    if (!d->dir[0] || !b->data)
        return;
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", d->dir, name);
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(b->data, 1, b->len, f);
        fclose(f);
    }
}

/* Phase 3's answer: EncryptedPayloadContent decrypted with the identity. */
static plist_t decrypt_content(const struct devsim_device *d, plist_t profile, const char **why)
{
    size_t len = 0;
    const uint8_t *enc = pl_data(profile, "EncryptedPayloadContent", &len);
    uint8_t *out = NULL;
    size_t out_len = 0;
    if (!enc) {
        *why = "the final profile is not encrypted";
        return NULL;
    }
    if (cms_decrypt(d->cert, d->key, enc, len, &out, &out_len, NULL, why) != 0)
        return NULL;
    plist_t arr = pl_parse(out, out_len, why);
    free(out);
    if (arr && plist_get_node_type(arr) != PLIST_ARRAY) {
        plist_free(arr);
        *why = "the decrypted content is not an array";
        return NULL;
    }
    return arr;
}

static int method_ota(const struct devsim_opts *o, struct devsim_http *h,
                      struct devsim_device *d, struct devsim_report *r)
{
    if (!o->api_url || !o->enroll_user || !o->enroll_password)
        return ota_fail(r, d, "ota", 0, "--method ota needs --url, --enroll-user and "
                                        "--enroll-password");
    if (portal_sign_in(o, h, d, r) != 0)
        return -1;
    /* phase 1: the Profile Service profile */
    char *url = url_join(o->api_url, "/enroll/profile");
    struct devsim_http_resp resp;
    int rc = url ? call(h, d, r, "phase1", "GET", url, NULL, NULL, NULL, 0, 200, &resp) : -1;
    free(url);
    if (rc != 0)
        return -1;
    const char *why = "unreadable";
    plist_t p1 = open_signed_profile(&resp.body, "Profile Service", &why);
    buf_free(&resp.body);
    if (!p1)
        return ota_fail(r, d, "phase1", 200, why);
    plist_t svc = plist_dict_get_item(p1, "PayloadContent");
    char ota_url[1024], challenge[256];
    copy(ota_url, sizeof ota_url, pl_str(svc, "URL"));
    copy(challenge, sizeof challenge, pl_str(svc, "Challenge"));
    plist_free(p1);
    if (!ota_url[0] || !challenge[0])
        return ota_fail(r, d, "phase1", 200, "no Profile Service URL and Challenge");
    /* phase 2: attributes signed by the device certificate */
    X509 *dc = NULL;
    EVP_PKEY *dk = NULL;
    if (device_cert(o, d, &dc, &dk) != 0)
        return ota_fail(r, d, "phase2", 0, "cannot make the device certificate");
    plist_t p2 = NULL;
    rc = post_attributes(h, d, r, "phase2", ota_url, challenge, dc, dk, &p2, NULL);
    X509_free(dc);
    EVP_PKEY_free(dk);
    if (rc != 0)
        return -1;
    struct installed in;
    memset(&in, 0, sizeof in);
    install_payloads(plist_dict_get_item(p2, "PayloadContent"), &in);
    plist_free(p2);
    if (payload_scep(o, h, d, r, &in) != 0)
        return -1;
    if (o->ota_stop == 2)
        return devsim_device_save(d) == 0 ? 0 : ota_fail(r, d, "phase2", 0, "cannot save");
    /* phase 3: attributes signed by the new identity */
    plist_t p3 = NULL;
    struct buf raw = {0};
    if (post_attributes(h, d, r, "phase3", ota_url, challenge, d->cert, d->key, &p3, &raw) != 0)
        return -1;
    save_raw(d, "ota-final.mobileconfig", &raw);
    buf_free(&raw);
    plist_t content = decrypt_content(d, p3, &why);
    plist_free(p3);
    if (!content)
        return ota_fail(r, d, "phase3", 200, why);
    if (o->ota_stop == 3) { /* identity installed, no check-in yet */
        struct installed in;
        memset(&in, 0, sizeof in);
        install_payloads(content, &in);
        rc = payload_scep(o, h, d, r, &in) == 0 && devsim_device_save(d) == 0 ? 0 : -1;
    } else {
        rc = install(o, h, d, r, content);
    }
    plist_free(content);
    return rc;
}

int devsim_method_run(const struct devsim_opts *o, struct devsim_http *h,
                      struct devsim_device *d, struct devsim_report *r)
{
    if (strcmp(o->method, "profile") == 0)
        return method_profile(o, h, d, r);
    return method_ota(o, h, d, r);
}
