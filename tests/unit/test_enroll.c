/* test_enroll.c: the enrollment building blocks. The profile builder's
 * payloads use exactly the key names and types of Apple's schema
 * (shared/apple-schema/mdm/profiles), the SCEP subject is an array of RDN
 * arrays, encryption round-trips only for the right recipient; web/session's
 * cookie and form parsing, HTML escaping, CSRF check, sessions and the
 * sign-in throttle with lock-out; store/enroll.c's users and records (one-time
 * phase advance, expiry). Runs on SQLite, and on PostgreSQL via tests/pg. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "enroll/enroll.h"
#include "enroll/profile.h"
#include "pki/cms.h"
#include "pki/pki.h"
#include "plist/pl.h"
#include "store/store.h"
#include "store_fixture.h"
#include "util/config.h"
#include "web/session.h"

/* ---- a certificate to put in profiles and encrypt to ---- */

static X509 *make_cert(EVP_PKEY **key, const char *cn)
{
    *key = EVP_RSA_gen(2048);
    X509 *c = X509_new();
    X509_NAME *n = X509_get_subject_name(c);
    X509_set_version(c, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c), 7);
    X509_gmtime_adj(X509_getm_notBefore(c), 0);
    X509_gmtime_adj(X509_getm_notAfter(c), 3600);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(c, n);
    X509_set_pubkey(c, *key);
    assert_true(X509_sign(c, *key, EVP_sha256()) > 0);
    return c;
}

/* ---- Apple's schema: "- key: K" followed by "type: <T>" lines ---- */

struct schema {
    char keys[256][64];
    char types[256][24];
    int n;
};

static void schema_load(struct schema *s, const char *file)
{
    const char *dir = getenv("STEWARD_SHARED");
    char path[1024], line[512], pending[64] = "";
    snprintf(path, sizeof path, "%s/apple-schema/mdm/profiles/%s", dir ? dir : "../shared", file);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof line, f)) {
        char *p = line;
        while (*p == ' ')
            p++;
        if (strncmp(p, "- key: ", 7) == 0) {
            snprintf(pending, sizeof pending, "%s", p + 7);
            pending[strcspn(pending, "\r\n")] = '\0';
        } else if (strncmp(p, "type: ", 6) == 0 && pending[0] && s->n < 256) {
            snprintf(s->keys[s->n], sizeof s->keys[0], "%s", pending);
            snprintf(s->types[s->n], sizeof s->types[0], "%s", p + 6);
            s->types[s->n][strcspn(s->types[s->n], "\r\n")] = '\0';
            s->n++;
            pending[0] = '\0';
        }
    }
    fclose(f);
}

static const char *type_name(plist_t v)
{
    switch (plist_get_node_type(v)) {
    case PLIST_STRING: return "<string>";
    case PLIST_UINT: return "<integer>";
    case PLIST_BOOLEAN: return "<boolean>";
    case PLIST_DATA: return "<data>";
    case PLIST_DICT: return "<dictionary>";
    case PLIST_ARRAY: return "<array>";
    default: return "?";
    }
}

/* Every key of dict is in one of the schemas with the same type. */
static void check_dict(plist_t dict, const struct schema *a, const struct schema *b)
{
    plist_dict_iter it = NULL;
    plist_dict_new_iter(dict, &it);
    char *key = NULL;
    plist_t v = NULL;
    int seen = 0;
    for (plist_dict_next_item(dict, it, &key, &v); key; plist_dict_next_item(dict, it, &key, &v)) {
        const char *want = NULL;
        for (int i = 0; !want && i < a->n; i++)
            if (strcmp(a->keys[i], key) == 0)
                want = a->types[i];
        for (int i = 0; b && !want && i < b->n; i++)
            if (strcmp(b->keys[i], key) == 0)
                want = b->types[i];
        if (!want)
            fail_msg("key %s is not in Apple's schema", key);
        if (strcmp(want, type_name(v)) != 0)
            fail_msg("key %s: schema says %s, we emit %s", key, want, type_name(v));
        free(key);
        key = NULL;
        seen++;
    }
    free(it);
    assert_true(seen > 0);
}

static plist_t payload_of(plist_t arr, const char *type)
{
    for (uint32_t i = 0; i < plist_array_get_size(arr); i++) {
        plist_t p = plist_array_get_item(arr, i);
        const char *t = pl_str(p, "PayloadType");
        if (t && strcmp(t, type) == 0)
            return p;
    }
    return NULL;
}

static void settings(struct enroll_settings *st, X509 *root)
{
    memset(st, 0, sizeof *st);
    st->base_url = "https://mdm.example.com";
    st->scep_url = "https://mdm.example.com/scep";
    st->scep_name = "steward";
    st->topic = "com.apple.mgmt.External.2c4a1e7f-9b43-4f0e-8d1e-5f2a3b6c7d8e";
    st->topic_configured = 1;
    st->organization = "Example Org";
    st->identifier = "com.example.enroll";
    st->access_rights = 8191;
    st->sign_message = 1;
    st->checkout_when_removed = 1;
    st->trust_root = root;
}

static void profile_matches_schema(void **state)
{
    (void)state;
    EVP_PKEY *k = NULL;
    X509 *root = make_cert(&k, "Test CA");
    struct enroll_settings st;
    settings(&st, root);
    struct enroll_identity id = {"0123456789abcdef0123456789abcdef", "device-1", NULL};
    plist_t content = enroll_payloads_mdm(&st, &id);
    assert_non_null(content);
    assert_int_equal(plist_array_get_size(content), 3);
    static struct schema common, top, mdm, scep, rootsch;
    memset(&common, 0, sizeof common);
    schema_load(&common, "CommonPayloadKeys.yaml");
    schema_load(&top, "TopLevel.yaml");
    schema_load(&mdm, "com.apple.mdm.yaml");
    schema_load(&scep, "com.apple.security.scep.yaml");
    schema_load(&rootsch, "com.apple.security.root.yaml");
    plist_t m = payload_of(content, "com.apple.mdm"), s = payload_of(content, "com.apple.security.scep"),
            r = payload_of(content, "com.apple.security.root");
    assert_non_null(m);
    assert_non_null(s);
    assert_non_null(r);
    check_dict(m, &mdm, &common);
    check_dict(s, &scep, &common);
    check_dict(plist_dict_get_item(s, "PayloadContent"), &scep, NULL);
    check_dict(r, &rootsch, &common);
    /* the MDM payload points at the SCEP payload; the values we promise */
    assert_string_equal(pl_str(m, "IdentityCertificateUUID"), pl_str(s, "PayloadUUID"));
    assert_int_equal(pl_int(m, "AccessRights", 0), 8191);
    assert_int_equal(pl_bool(m, "SignMessage", 0), 1);
    assert_int_equal(pl_bool(m, "CheckOutWhenRemoved", 0), 1);
    assert_string_equal(pl_str(m, "ServerURL"), "https://mdm.example.com/mdm/connect");
    assert_string_equal(pl_str(m, "CheckInURL"), "https://mdm.example.com/mdm/checkin");
    assert_non_null(strstr(pl_str(m, "PayloadDescription"), "enroll_topic"));
    plist_t sc = plist_dict_get_item(s, "PayloadContent");
    assert_int_equal(pl_int(sc, "Keysize", 0), 2048);
    assert_int_equal(pl_int(sc, "Key Usage", 0), 5);
    assert_string_equal(pl_str(sc, "Challenge"), id.challenge);
    /* Subject: [[["CN","device-1"]], [["O","Example Org"]]] */
    plist_t subj = plist_dict_get_item(sc, "Subject");
    assert_int_equal(plist_array_get_size(subj), 2);
    plist_t pair = plist_array_get_item(plist_array_get_item(subj, 0), 0);
    assert_int_equal(plist_get_node_type(pair), PLIST_ARRAY);
    char *v = NULL;
    plist_get_string_val(plist_array_get_item(pair, 1), &v);
    assert_string_equal(v, "device-1");
    free(v);
    /* the root payload carries the DER certificate */
    size_t len = 0;
    const uint8_t *der = pl_data(r, "PayloadContent", &len);
    X509 *back = pki_cert_from_der(der, len);
    assert_non_null(back);
    assert_int_equal(X509_cmp(back, root), 0);
    X509_free(back);
    /* the top level */
    plist_t p = enroll_profile_wrap(&st, "profile", "Enrollment", "desc", content);
    check_dict(p, &top, &common);
    assert_string_equal(pl_str(p, "PayloadType"), "Configuration");
    plist_free(p);
    /* without a private CA there is no root payload */
    st.trust_root = NULL;
    content = enroll_payloads_scep(&st, &id);
    assert_int_equal(plist_array_get_size(content), 1);
    assert_null(payload_of(content, "com.apple.mdm"));
    plist_free(content);
    X509_free(root);
    EVP_PKEY_free(k);
}

static void profile_service_and_encryption(void **state)
{
    (void)state;
    EVP_PKEY *ka = NULL, *kb = NULL;
    X509 *a = make_cert(&ka, "device A"), *b = make_cert(&kb, "device B");
    struct enroll_settings st;
    settings(&st, NULL);
    plist_t ps = enroll_profile_service(&st, "https://mdm.example.com/enroll/ota", "chal");
    assert_string_equal(pl_str(ps, "PayloadType"), "Profile Service");
    plist_t c = plist_dict_get_item(ps, "PayloadContent");
    assert_string_equal(pl_str(c, "Challenge"), "chal");
    assert_int_equal(plist_array_get_size(plist_dict_get_item(c, "DeviceAttributes")), 8);
    plist_free(ps);

    struct enroll_identity id = {"x", "A", NULL};
    plist_t p = enroll_profile_wrap(&st, "profile", "E", "d", enroll_payloads_mdm(&st, &id));
    assert_int_equal(enroll_profile_encrypt(p, a), 0);
    assert_null(plist_dict_get_item(p, "PayloadContent"));
    size_t len = 0, out_len = 0;
    const uint8_t *enc = pl_data(p, "EncryptedPayloadContent", &len);
    assert_non_null(enc);
    uint8_t *out = NULL;
    const char *why = NULL;
    int nid = 0;
    assert_int_equal(cms_decrypt(a, ka, enc, len, &out, &out_len, &nid, &why), 0);
    assert_int_equal(nid, NID_aes_256_cbc);
    plist_t arr = pl_parse(out, out_len, &why);
    assert_non_null(payload_of(arr, "com.apple.mdm"));
    plist_free(arr);
    free(out);
    out = NULL;
    assert_int_equal(cms_decrypt(b, kb, enc, len, &out, &out_len, NULL, &why), -1);
    /* signing: verifies and gives back the profile */
    uint8_t *der = NULL;
    size_t der_len = 0;
    assert_int_equal(enroll_profile_sign(p, a, ka, NULL, &der, &der_len), 0);
    uint8_t *content = NULL;
    size_t clen = 0;
    X509 *signer = NULL;
    assert_int_equal(cms_verify(der, der_len, NULL, 0, &content, &clen, &signer, NULL, &why), 0);
    assert_non_null(strstr((char *)content, "EncryptedPayloadContent"));
    free(content);
    free(der);
    X509_free(signer);
    plist_free(p);
    X509_free(a);
    X509_free(b);
    EVP_PKEY_free(ka);
    EVP_PKEY_free(kb);
}

/* ---- web/session.h ---- */

static void request_with(struct request *req, struct http_header *h, const char *cookie)
{
    memset(req, 0, sizeof *req);
    h[0].name = "Host";
    h[0].value = "x";
    h[1].name = "Cookie";
    h[1].value = (char *)cookie;
    req->headers = h;
    req->nheaders = cookie ? 2 : 1;
    snprintf(req->remote_addr, sizeof req->remote_addr, "10.0.0.9");
}

static void https_and_client_address(void **state)
{
    (void)state;
    static struct config cfg;
    config_defaults(&cfg, "");
    struct http_header h[2] = {{"X-Forwarded-Proto", "https"},
                               {"X-Forwarded-For", "203.0.113.9, 198.51.100.7"}};
    struct request req;
    memset(&req, 0, sizeof req);
    req.headers = h;
    req.nheaders = 2;
    snprintf(req.remote_addr, sizeof req.remote_addr, "10.0.0.1");
    char addr[64];
    /* an untrusted peer's headers mean nothing */
    assert_int_equal(web_request_is_https(&cfg, &req), 0);
    assert_string_equal(web_client_addr(&cfg, &req, addr, sizeof addr), "10.0.0.1");
    snprintf(cfg.trusted_proxies, sizeof cfg.trusted_proxies, "10.0.0.2, 10.0.0.1");
    assert_int_equal(web_request_is_https(&cfg, &req), 1);
    assert_string_equal(web_client_addr(&cfg, &req, addr, sizeof addr), "198.51.100.7");
    h[0].value = "http";
    assert_int_equal(web_request_is_https(&cfg, &req), 0);
    req.tls = 1;
    assert_int_equal(web_request_is_https(&cfg, &req), 1);
}

static void cookies_forms_escape(void **state)
{
    (void)state;
    struct request req;
    struct http_header h[2];
    char buf[80];
    request_with(&req, h, "a=1; __Host-s=abc;b=2");
    assert_string_equal(web_cookie_get(&req, "__Host-s", buf, sizeof buf), "abc");
    assert_string_equal(web_cookie_get(&req, "b", buf, sizeof buf), "2");
    assert_null(web_cookie_get(&req, "__Host-", buf, sizeof buf));
    assert_null(web_cookie_get(&req, "__Host-s", buf, 3)); /* too long */
    const char *body = "username=al%40ice&password=a+b%26c&x=%zz&empty=";
    size_t bl = strlen(body);
    assert_string_equal(web_form_get((const uint8_t *)body, bl, "username", buf, sizeof buf), "al@ice");
    assert_string_equal(web_form_get((const uint8_t *)body, bl, "password", buf, sizeof buf), "a b&c");
    assert_null(web_form_get((const uint8_t *)body, bl, "x", buf, sizeof buf));
    assert_string_equal(web_form_get((const uint8_t *)body, bl, "empty", buf, sizeof buf), "");
    assert_null(web_form_get((const uint8_t *)body, bl, "user", buf, sizeof buf));
    assert_null(web_form_get((const uint8_t *)"p=%00", 5, "p", buf, sizeof buf));
    struct buf b = {0};
    assert_int_equal(web_html_escape(&b, "<a href=\"x\">'&'</a>"), 0);
    buf_append(&b, "", 1);
    assert_string_equal(b.data, "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    buf_free(&b);
}

struct fx {
    char dir[64];
    char dsn[1024];
    struct store *s;
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_enroll.XXXXXX");
    char *err = NULL;
    if (!mkdtemp(f->dir) || fixture_dsn(f->dir, f->dsn, sizeof f->dsn) < 0 ||
        store_open(f->dsn, &f->s, &err) != STORE_OK) {
        fprintf(stderr, "store_open: %s\n", err ? err : "?");
        free(err);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    char cmd[200];
    store_close(f->s);
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", f->dir);
    free(f);
    return 0;
}

static const struct web_realm realm = {"enroll", "steward_enroll", 600, 3, 900, 60, 5};

/* The value of the Set-Cookie header whose name starts with prefix. */
static const char *set_cookie(const struct response *resp, const char *prefix)
{
    for (size_t i = 0; i < resp->nheaders; i++)
        if (strcmp(resp->headers[i].name, "Set-Cookie") == 0 &&
            strncmp(resp->headers[i].value, prefix, strlen(prefix)) == 0)
            return resp->headers[i].value;
    return NULL;
}

static void csrf_and_sessions(void **state)
{
    struct fx *f = *state;
    struct response resp;
    memset(&resp, 0, sizeof resp);
    char token[WEB_TOKEN_LEN], cookie[300];
    assert_int_equal(web_csrf_issue(&realm, &resp, token), 0);
    const char *sc = set_cookie(&resp, "__Host-steward_enroll_csrf=");
    assert_non_null(sc);
    assert_non_null(strstr(sc, "Secure; HttpOnly; SameSite=Strict"));
    snprintf(cookie, sizeof cookie, "__Host-steward_enroll_csrf=%s", token);
    struct request req;
    struct http_header h[2];
    request_with(&req, h, cookie);
    assert_int_equal(web_csrf_check(&realm, &req, token), 1);
    char other[WEB_TOKEN_LEN];
    memcpy(other, token, sizeof other);
    other[0] = other[0] == 'a' ? 'b' : 'a';
    assert_int_equal(web_csrf_check(&realm, &req, other), 0);
    assert_int_equal(web_csrf_check(&realm, &req, NULL), 0);
    request_with(&req, h, NULL);
    assert_int_equal(web_csrf_check(&realm, &req, token), 0);
    response_clear(&resp);

    /* a session: start, load by cookie, not in another realm, end */
    memset(&resp, 0, sizeof resp);
    char csrf[WEB_TOKEN_LEN];
    assert_int_equal(web_session_start(f->s, &realm, &resp, "alice", 1000, csrf), STORE_OK);
    sc = set_cookie(&resp, "__Host-steward_enroll=");
    assert_non_null(sc);
    snprintf(cookie, sizeof cookie, "%.*s", (int)strcspn(sc, ";"), sc);
    response_clear(&resp);
    request_with(&req, h, cookie);
    struct store_web_session ws;
    assert_int_equal(web_session_load(f->s, &realm, &req, 1001, &ws), STORE_OK);
    assert_string_equal(ws.subject, "alice");
    assert_string_equal(ws.csrf, csrf);
    store_web_session_clear(&ws);
    assert_int_equal(web_session_load(f->s, &realm, &req, 1000 + 600, &ws), STORE_NOTFOUND);
    struct web_realm console = realm;
    console.name = "console";
    assert_int_equal(web_session_load(f->s, &console, &req, 1001, &ws), STORE_NOTFOUND);
    memset(&resp, 0, sizeof resp);
    assert_int_equal(web_session_end(f->s, &realm, &req, &resp), STORE_OK);
    assert_non_null(strstr(set_cookie(&resp, "__Host-steward_enroll="), "Max-Age=0"));
    response_clear(&resp);
    assert_int_equal(web_session_load(f->s, &realm, &req, 1001, &ws), STORE_NOTFOUND);
}

static void throttle_locks_out(void **state)
{
    struct fx *f = *state;
    int64_t retry = 0;
    assert_int_equal(web_throttle_locked(f->s, &realm, "bob", "10.0.0.1", 100, &retry), 0);
    assert_int_equal(web_throttle_failed(f->s, &realm, "bob", "10.0.0.1", 100), 0);
    assert_int_equal(web_throttle_failed(f->s, &realm, "bob", "10.0.0.1", 101), 0);
    assert_int_equal(web_throttle_failed(f->s, &realm, "bob", "10.0.0.1", 102), 1);
    assert_int_equal(web_throttle_locked(f->s, &realm, "bob", "10.0.0.1", 103, &retry), 1);
    assert_int_equal(retry, 59);
    /* another user is not locked; another realm neither */
    assert_int_equal(web_throttle_locked(f->s, &realm, "carol", "10.0.0.2", 103, &retry), 0);
    struct web_realm console = realm;
    console.name = "console";
    assert_int_equal(web_throttle_locked(f->s, &console, "bob", "10.0.0.1", 103, &retry), 0);
    /* the lock-out ends */
    assert_int_equal(web_throttle_locked(f->s, &realm, "bob", "10.0.0.1", 162, &retry), 0);
    /* failures outside the window restart the count */
    assert_int_equal(web_throttle_failed(f->s, &realm, "dan", "10.0.0.3", 1000), 0);
    assert_int_equal(web_throttle_failed(f->s, &realm, "dan", "10.0.0.3", 1001), 0);
    assert_int_equal(web_throttle_failed(f->s, &realm, "dan", "10.0.0.3", 3000), 0);
    assert_int_equal(web_throttle_failed(f->s, &realm, "dan", "10.0.0.3", 3001), 0);
    /* success clears the count */
    assert_int_equal(web_throttle_succeeded(f->s, &realm, "dan"), STORE_OK);
    assert_int_equal(web_throttle_failed(f->s, &realm, "dan", "10.0.0.3", 3002), 0);
    assert_int_equal(web_throttle_failed(f->s, &realm, "dan", "10.0.0.3", 3003), 0);
    /* the address limit (5) catches spraying over many users */
    int locked = 0;
    char user[16];
    for (int i = 0; i < 5; i++) {
        snprintf(user, sizeof user, "u%d", i);
        locked = web_throttle_failed(f->s, &realm, user, "10.9.9.9", 5000 + i);
    }
    assert_int_equal(locked, 1);
    assert_int_equal(web_throttle_locked(f->s, &realm, "fresh", "10.9.9.9", 5006, &retry), 1);
    assert_int_equal(store_web_purge(f->s, 200000), STORE_OK);
}

static void users_and_records(void **state)
{
    struct fx *f = *state;
    assert_int_equal(store_enroll_user_add(f->s, "alice", "$argon2id$x", 10), STORE_OK);
    assert_int_equal(store_enroll_user_add(f->s, "alice", "$argon2id$y", 11), STORE_CONFLICT);
    assert_int_equal(store_enroll_user_set_password(f->s, "alice", "$argon2id$z", 12), STORE_OK);
    assert_int_equal(store_enroll_user_set_password(f->s, "nobody", "h", 12), STORE_NOTFOUND);
    assert_int_equal(store_enroll_user_set_disabled(f->s, "alice", 1, 13), STORE_OK);
    assert_int_equal(store_enroll_user_signed_in(f->s, "alice", 14), STORE_OK);
    struct store_enroll_user u;
    assert_int_equal(store_enroll_user_get(f->s, "alice", &u), STORE_OK);
    assert_string_equal(u.password_hash, "$argon2id$z");
    assert_int_equal(u.disabled, 1);
    assert_int_equal(u.last_sign_in_at, 14);
    store_enroll_user_clear(&u);
    assert_int_equal(store_enroll_user_add(f->s, "bob", "h", 10), STORE_OK);
    struct store_enroll_user *list = NULL;
    size_t n = 0;
    assert_int_equal(store_enroll_user_list(f->s, &list, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].name, "alice");
    store_enroll_user_list_free(list, n);

    /* an OTA record: phase 1 -> 2 exactly once */
    assert_int_equal(store_enroll_record_add(f->s, "r1", "alice", "ota", 1, "hash1", 100, 200),
                     STORE_OK);
    struct store_enroll_record r;
    assert_int_equal(store_enroll_record_by_challenge(f->s, "hash1", &r), STORE_OK);
    assert_string_equal(r.id, "r1");
    assert_string_equal(r.status, "pending");
    store_enroll_record_clear(&r);
    struct store_enroll_attrs a = {"UDID-1", "SER1", NULL, NULL, "iPhone15,2", "21F90", NULL, "Phone"};
    assert_int_equal(store_enroll_record_advance(f->s, "r1", 1, 2, &a, 150, 1000), STORE_OK);
    assert_int_equal(store_enroll_record_advance(f->s, "r1", 1, 2, &a, 151, 1000), STORE_NOTFOUND);
    assert_int_equal(store_enroll_record_pending_for(f->s, "UDID-1", 2, 160, &r), STORE_OK);
    assert_string_equal(r.serial, "SER1");
    store_enroll_record_clear(&r);
    assert_int_equal(store_enroll_record_advance(f->s, "r1", 2, 3, NULL, 170, 1000), STORE_OK);
    assert_int_equal(store_enroll_record_pending_for(f->s, "UDID-1", 3, 171, &r), STORE_OK);
    assert_string_equal(r.product, "iPhone15,2"); /* NULL attrs keep what was stored */
    store_enroll_record_clear(&r);
    assert_int_equal(store_enroll_record_enrolled(f->s, "r1", "UDID-1", 180), STORE_OK);
    assert_int_equal(store_enroll_record_ended(f->s, "UDID-1", "unenrolled", 190), STORE_OK);
    assert_int_equal(store_enroll_record_get(f->s, "r1", &r), STORE_OK);
    assert_string_equal(r.status, "unenrolled");
    assert_int_equal(r.ended_at, 190);
    store_enroll_record_clear(&r);
    /* expiry, and an expired record cannot advance */
    assert_int_equal(store_enroll_record_add(f->s, "r2", "bob", "ota", 1, "hash2", 100, 200),
                     STORE_OK);
    assert_int_equal(store_enroll_record_advance(f->s, "r2", 1, 2, &a, 200, 1000), STORE_NOTFOUND);
    int64_t expired = 0;
    assert_int_equal(store_enroll_records_expire(f->s, 300, &expired), STORE_OK);
    assert_int_equal(expired, 1);
    assert_int_equal(store_enroll_record_add(f->s, "r3", NULL, "profile", 0, NULL, 400, 500),
                     STORE_OK);
    struct store_enroll_record *rl = NULL;
    int64_t total = 0;
    assert_int_equal(store_enroll_record_list(f->s, NULL, NULL, 10, 0, &rl, &n, &total), STORE_OK);
    assert_int_equal(total, 3);
    assert_string_equal(rl[0].id, "r3");
    assert_string_equal(rl[0].status, "issued");
    store_enroll_record_list_free(rl, n);
    assert_int_equal(store_enroll_record_list(f->s, "bob", "expired", 10, 0, &rl, &n, &total),
                     STORE_OK);
    assert_int_equal(total, 1);
    assert_int_equal(n, 1);
    store_enroll_record_list_free(rl, n);
    /* the scheduler's housekeeping expires what is left pending */
    assert_int_equal(store_enroll_record_add(f->s, "r4", "bob", "ota", 1, "hash4", 600, 700),
                     STORE_OK);
    enroll_housekeeping_job(f->s, NULL, 800);
    assert_int_equal(store_enroll_record_get(f->s, "r4", &r), STORE_OK);
    assert_string_equal(r.status, "expired");
    store_enroll_record_clear(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(profile_matches_schema),
        cmocka_unit_test(profile_service_and_encryption),
        cmocka_unit_test(cookies_forms_escape),
        cmocka_unit_test(https_and_client_address),
        cmocka_unit_test_setup_teardown(csrf_and_sessions, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(throttle_locks_out, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(users_and_records, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
