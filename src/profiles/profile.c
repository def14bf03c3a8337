/* profile.c: validation, building, import, secret stripping, per-device
 * encryption and signing of configuration profiles (profile.h). The payload
 * knowledge is in the generated tables (payloads.h); this file only walks
 * plists against them. */
#include "profiles/profile.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "pki/cms.h"
#include "pki/pki.h"
#include "plist/pl.h"
#include "profiles/payloads.h"
#include "util/buf.h"
#include "util/ids.h"

/* ---- validation ------------------------------------------------------------------- */

struct vctx {
    struct profile_check *c;
    struct buf flags;
    char *err;
    size_t errlen;
};

static void flag(struct vctx *v, const char *path, const char *what)
{
    buf_append(&v->flags, path, strlen(path));
    buf_append(&v->flags, ": ", 2);
    buf_append(&v->flags, what, strlen(what));
    buf_append(&v->flags, "\n", 1);
}

static int fail(struct vctx *v, const char *path, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(v->err, v->errlen, "%s: %s", path, what);
    return -1;
}

static enum pk_type type_of(plist_t n)
{
    switch (plist_get_node_type(n)) {
    case PLIST_STRING: return PK_STRING;
    case PLIST_UINT: return PK_INTEGER;
    case PLIST_BOOLEAN: return PK_BOOL;
    case PLIST_ARRAY: return PK_ARRAY;
    case PLIST_DICT: return PK_DICT;
    case PLIST_DATA: return PK_DATA;
    case PLIST_DATE: return PK_DATE;
    case PLIST_REAL: return PK_REAL;
    default: return PK_ANY;
    }
}

static int type_fits(enum pk_type want, enum pk_type have)
{
    return want == PK_ANY || want == have || (want == PK_REAL && have == PK_INTEGER);
}

/* The value as text for allowed-value checks ("" when not a scalar). */
static void scalar_text(plist_t n, char *out, size_t len)
{
    out[0] = '\0';
    if (plist_get_node_type(n) == PLIST_STRING) {
        const char *s = plist_get_string_ptr(n, NULL);
        snprintf(out, len, "%s", s ? s : "");
    } else if (plist_get_node_type(n) == PLIST_UINT) {
        uint64_t u = 0;
        plist_get_uint_val(n, &u);
        snprintf(out, len, "%lld", (long long)(int64_t)u);
    } else if (plist_get_node_type(n) == PLIST_BOOLEAN) {
        uint8_t b = 0;
        plist_get_bool_val(n, &b);
        snprintf(out, len, "%s", b ? "true" : "false");
    }
}

static int is_empty(plist_t n)
{
    if (plist_get_node_type(n) == PLIST_STRING) {
        const char *s = plist_get_string_ptr(n, NULL);
        return !s || !*s;
    }
    if (plist_get_node_type(n) == PLIST_DATA) {
        uint64_t len = 0;
        plist_get_data_ptr(n, &len);
        return len == 0;
    }
    return 0;
}

static int check_dict(struct vctx *v, const struct pk_key *keys, size_t nkeys, plist_t d,
                      const char *path, int top);

static int check_value(struct vctx *v, const struct pk_key *k, plist_t n, const char *path)
{
    enum pk_type have = type_of(n);
    if (!type_fits(k->type, have))
        return fail(v, path, "expected %s, got %s", pk_type_name(k->type), pk_type_name(have));
    if (k->secret && !is_empty(n))
        v->c->has_secrets = 1;
    if (k->allowed && (have == PK_STRING || have == PK_INTEGER)) {
        char text[256];
        scalar_text(n, text, sizeof text);
        int ok = 0;
        for (const char *const *a = k->allowed; *a && !ok; a++)
            ok = strcmp(*a, text) == 0;
        if (!ok) {
            char list[200] = "";
            for (const char *const *a = k->allowed; *a; a++) {
                size_t l = strlen(list);
                snprintf(list + l, sizeof list - l, "%s%s", l ? ", " : "", *a);
            }
            return fail(v, path, "value \"%s\" not allowed (one of: %s)", text, list);
        }
    }
    if (k->has_range && have == PK_INTEGER) {
        uint64_t u = 0;
        plist_get_uint_val(n, &u);
        int64_t i = (int64_t)u;
        if (i < k->min || i > k->max)
            return fail(v, path, "%lld out of range %lld..%lld", (long long)i,
                        (long long)k->min, (long long)k->max);
    }
    if (have == PK_DICT && k->nsub)
        return check_dict(v, k->sub, k->nsub, n, path, 0);
    if (have == PK_ARRAY && k->nsub) {
        uint32_t cnt = plist_array_get_size(n);
        for (uint32_t i = 0; i < cnt; i++) {
            char sub[600];
            snprintf(sub, sizeof sub, "%s[%u]", path, i);
            if (check_value(v, &k->sub[0], plist_array_get_item(n, i), sub) != 0)
                return -1;
        }
    }
    return 0;
}

/* Every key of d against keys; top is a payload dict, whose common keys are
 * checked against CommonPayloadKeys. */
static int check_dict(struct vctx *v, const struct pk_key *keys, size_t nkeys, plist_t d,
                      const char *path, int top)
{
    const struct pk_payload *common = payload_find("CommonPayloadKeys");
    plist_dict_iter it = NULL;
    plist_dict_new_iter(d, &it);
    int rc = 0;
    for (;;) {
        char *key = NULL;
        plist_t val = NULL;
        plist_dict_next_item(d, it, &key, &val);
        if (!val) {
            free(key);
            break;
        }
        char sub[600];
        snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", key);
        const struct pk_key *k = payload_key(keys, nkeys, key);
        if (!k && top)
            k = payload_key(common->keys, common->nkeys, key);
        if (!k)
            flag(v, sub, "unknown key (kept)");
        else if (check_value(v, k, val, sub) != 0)
            rc = -1;
        else if (k->supervised && top)
            flag(v, sub, "applies to supervised devices only");
        free(key);
        if (rc)
            break;
    }
    free(it);
    if (rc)
        return rc;
    for (size_t i = 0; i < nkeys; i++) {
        if (!keys[i].required || strcmp(keys[i].name, "ANY") == 0 ||
            plist_dict_get_item(d, keys[i].name))
            continue;
        char sub[600];
        snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", keys[i].name);
        return fail(v, sub, "required key missing");
    }
    return 0;
}

static void add_type(struct buf *types, const char *t)
{
    if (types->len)
        buf_append(types, ",", 1);
    buf_append(types, t, strlen(t));
}

static int check_payload(struct vctx *v, plist_t p, uint32_t i, struct buf *types)
{
    char path[64];
    snprintf(path, sizeof path, "PayloadContent[%u]", i);
    if (plist_get_node_type(p) != PLIST_DICT)
        return fail(v, path, "expected dictionary, got %s", pk_type_name(type_of(p)));
    plist_t tn = plist_dict_get_item(p, "PayloadType");
    char tpath[96];
    snprintf(tpath, sizeof tpath, "%s.PayloadType", path);
    if (!tn)
        return fail(v, tpath, "required key missing");
    if (plist_get_node_type(tn) != PLIST_STRING)
        return fail(v, tpath, "expected string, got %s", pk_type_name(type_of(tn)));
    const char *type = plist_get_string_ptr(tn, NULL);
    add_type(types, type);
    const struct pk_payload *pt = payload_find(type);
    const struct pk_payload *common = payload_find("CommonPayloadKeys");
    if (!payload_is_buildable(pt)) {
        v->c->unknown_types++;
        char what[300];
        snprintf(what, sizeof what, "unknown payload type %s (kept, not validated)", type);
        flag(v, path, what);
        /* The common keys still have to be right. */
        for (size_t k = 0; k < common->nkeys; k++) {
            plist_t val = plist_dict_get_item(p, common->keys[k].name);
            char sub[160];
            snprintf(sub, sizeof sub, "%s.%s", path, common->keys[k].name);
            if (val && check_value(v, &common->keys[k], val, sub) != 0)
                return -1;
        }
        return 0;
    }
    if (pt->supervised)
        v->c->supervised_only = 1;
    for (size_t k = 0; k < common->nkeys; k++) {
        if (!common->keys[k].required || plist_dict_get_item(p, common->keys[k].name))
            continue;
        char sub[160];
        snprintf(sub, sizeof sub, "%s.%s", path, common->keys[k].name);
        return fail(v, sub, "required key missing");
    }
    return check_dict(v, pt->keys, pt->nkeys, p, path, 1);
}

/* The buffer's text, malloc'd ("" when empty), or NULL on out of memory. */
static char *steal_str(struct buf *b)
{
    size_t len = 0;
    char *s = b->data ? buf_steal(b, &len) : NULL;
    return s ? s : strdup("");
}

void profile_check_free(struct profile_check *c)
{
    if (!c)
        return;
    free(c->types);
    free(c->flags);
    c->types = c->flags = NULL;
}

static void copy_top_str(plist_t root, const char *key, char *out, size_t n)
{
    const char *s = pl_str(root, key);
    snprintf(out, n, "%s", s ? s : "");
}

int profile_validate(plist_t root, struct profile_check *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    struct vctx v = {.c = c, .err = err, .errlen = errlen};
    struct buf types = {0};
    int rc = 0;
    if (!root || plist_get_node_type(root) != PLIST_DICT) {
        rc = fail(&v, "(top level)", "expected dictionary");
        goto out;
    }
    const char *pt = pl_str(root, "PayloadType");
    if (!pt || strcmp(pt, "Configuration") != 0) {
        rc = fail(&v, "PayloadType", "must be \"Configuration\"");
        goto out;
    }
    const struct pk_payload *top = payload_find("TopLevel");
    static const char *const required[] = {"PayloadIdentifier", "PayloadUUID", "PayloadVersion"};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        if (!plist_dict_get_item(root, required[i])) {
            rc = fail(&v, required[i], "required key missing");
            goto out;
        }
    plist_t content = plist_dict_get_item(root, "PayloadContent");
    if (!content && plist_dict_get_item(root, "EncryptedPayloadContent")) {
        rc = fail(&v, "EncryptedPayloadContent",
                  "encrypted to a device; upload the profile before encryption");
        goto out;
    }
    if (!content) {
        rc = fail(&v, "PayloadContent", "required key missing");
        goto out;
    }
    /* Top-level keys other than PayloadContent (checked payload by payload). */
    plist_dict_iter it = NULL;
    plist_dict_new_iter(root, &it);
    for (;;) {
        char *key = NULL;
        plist_t val = NULL;
        plist_dict_next_item(root, it, &key, &val);
        if (!val) {
            free(key);
            break;
        }
        const struct pk_key *k = payload_key(top->keys, top->nkeys, key);
        if (!k)
            flag(&v, key, "unknown key (kept)");
        else if (strcmp(key, "PayloadContent") != 0 && check_value(&v, k, val, key) != 0)
            rc = -1;
        free(key);
        if (rc)
            break;
    }
    free(it);
    if (rc)
        goto out;
    if (plist_get_node_type(content) != PLIST_ARRAY) {
        rc = fail(&v, "PayloadContent", "expected array, got %s",
                  pk_type_name(type_of(content)));
        goto out;
    }
    uint32_t n = plist_array_get_size(content);
    for (uint32_t i = 0; i < n && rc == 0; i++)
        rc = check_payload(&v, plist_array_get_item(content, i), i, &types);
    if (rc)
        goto out;
    copy_top_str(root, "PayloadIdentifier", c->identifier, sizeof c->identifier);
    copy_top_str(root, "PayloadUUID", c->uuid, sizeof c->uuid);
    copy_top_str(root, "PayloadDisplayName", c->display_name, sizeof c->display_name);
    if (!c->identifier[0] || !c->uuid[0]) {
        rc = fail(&v, c->identifier[0] ? "PayloadUUID" : "PayloadIdentifier", "must not be empty");
        goto out;
    }
    c->types = steal_str(&types);
    c->flags = v.flags.len ? steal_str(&v.flags) : NULL;
    if (!c->types) {
        rc = fail(&v, "(top level)", "out of memory");
        goto out;
    }
out:
    buf_free(&types);
    buf_free(&v.flags);
    if (rc)
        profile_check_free(c);
    return rc;
}

/* ---- builder ---------------------------------------------------------------------- */

static int spec_str(json_t *spec, const char *name, const char **out, char *err, size_t errlen)
{
    json_t *j = json_object_get(spec, name);
    *out = NULL;
    if (!j || json_is_null(j))
        return 0;
    if (!json_is_string(j)) {
        snprintf(err, errlen, "%s: expected string", name);
        return -1;
    }
    *out = json_string_value(j);
    return 0;
}

static int identifier_ok(const char *s)
{
    if (!s || !*s || strlen(s) > 200)
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '-' || *p == '_'))
            return 0;
    return 1;
}

static void set_uuid(plist_t d, const char *key)
{
    char u[UUID_STR_LEN];
    if (ids_uuid(u) == 0)
        plist_dict_set_item(d, key, plist_new_string(u));
}

/* One JSON value as the table's type wants it: base64 strings for data,
 * RFC 3339 strings for dates, the generic mapping otherwise. */
static plist_t build_value(const struct pk_key *k, json_t *j, const char *path, char *err,
                           size_t errlen)
{
    if (k && k->type == PK_DATA && json_is_string(j)) {
        size_t len = 0;
        const char *s = json_string_value(j);
        uint8_t *d = ids_b64_decode(s, strlen(s), &len);
        if (!d) {
            snprintf(err, errlen, "%s: expected base64 data", path);
            return NULL;
        }
        plist_t n = plist_new_data((const char *)d, len);
        free(d);
        return n;
    }
    json_t *wrapped = NULL;
    if (k && k->type == PK_DATE && json_is_string(j))
        j = wrapped = json_pack("{sO}", "$date", j);
    char why[200] = "";
    plist_t n = j ? json_to_plist(j, why, sizeof why) : NULL;
    json_decref(wrapped);
    if (!n)
        snprintf(err, errlen, "%s: %s", path, why[0] ? why : "cannot convert");
    return n;
}

static plist_t build_payload(json_t *pj, size_t i, const char *identifier, char *err,
                             size_t errlen)
{
    char path[64];
    snprintf(path, sizeof path, "payloads[%zu]", i);
    if (!json_is_object(pj)) {
        snprintf(err, errlen, "%s: expected object", path);
        return NULL;
    }
    const char *type = json_string_value(json_object_get(pj, "PayloadType"));
    const struct pk_payload *pt = payload_find(type);
    if (!type) {
        snprintf(err, errlen, "%s.PayloadType: required key missing", path);
        return NULL;
    }
    if (!payload_is_buildable(pt)) {
        snprintf(err, errlen, "%s.PayloadType: unknown payload type \"%s\"", path, type);
        return NULL;
    }
    const struct pk_payload *common = payload_find("CommonPayloadKeys");
    plist_t d = plist_new_dict();
    const char *key;
    json_t *val;
    json_object_foreach(pj, key, val) {
        const struct pk_key *k = payload_key(pt->keys, pt->nkeys, key);
        if (!k)
            k = payload_key(common->keys, common->nkeys, key);
        char kpath[300];
        snprintf(kpath, sizeof kpath, "%s.%s", path, key);
        plist_t n = build_value(k, val, kpath, err, errlen);
        if (!n) {
            plist_free(d);
            return NULL;
        }
        plist_dict_set_item(d, key, n);
    }
    if (!plist_dict_get_item(d, "PayloadUUID"))
        set_uuid(d, "PayloadUUID");
    if (!plist_dict_get_item(d, "PayloadIdentifier")) {
        char pid[300];
        snprintf(pid, sizeof pid, "%s.%zu", identifier, i);
        plist_dict_set_item(d, "PayloadIdentifier", plist_new_string(pid));
    }
    if (!plist_dict_get_item(d, "PayloadVersion"))
        plist_dict_set_item(d, "PayloadVersion", plist_new_uint(1));
    if (!plist_dict_get_item(d, "PayloadDisplayName"))
        plist_dict_set_item(d, "PayloadDisplayName", plist_new_string(pt->title));
    return d;
}

plist_t profile_build(json_t *spec, char *err, size_t errlen)
{
    if (!json_is_object(spec)) {
        snprintf(err, errlen, "(top level): expected a JSON object");
        return NULL;
    }
    const char *identifier, *name, *org, *desc, *scope, *consent;
    if (spec_str(spec, "identifier", &identifier, err, errlen) ||
        spec_str(spec, "display_name", &name, err, errlen) ||
        spec_str(spec, "organization", &org, err, errlen) ||
        spec_str(spec, "description", &desc, err, errlen) ||
        spec_str(spec, "scope", &scope, err, errlen) ||
        spec_str(spec, "consent_text", &consent, err, errlen))
        return NULL;
    if (!identifier_ok(identifier)) {
        snprintf(err, errlen, "identifier: required, letters, digits, '.', '-', '_' (at most 200)");
        return NULL;
    }
    if (scope && strcmp(scope, "System") != 0 && strcmp(scope, "User") != 0) {
        snprintf(err, errlen, "scope: must be \"System\" or \"User\"");
        return NULL;
    }
    json_t *rd = json_object_get(spec, "removal_disallowed");
    if (rd && !json_is_boolean(rd)) {
        snprintf(err, errlen, "removal_disallowed: expected boolean");
        return NULL;
    }
    json_t *payloads = json_object_get(spec, "payloads");
    if (!json_is_array(payloads) || json_array_size(payloads) == 0) {
        snprintf(err, errlen, "payloads: required, a non-empty array");
        return NULL;
    }
    plist_t root = plist_new_dict();
    plist_t content = plist_new_array();
    plist_dict_set_item(root, "PayloadContent", content);
    for (size_t i = 0; i < json_array_size(payloads); i++) {
        plist_t p = build_payload(json_array_get(payloads, i), i, identifier, err, errlen);
        if (!p) {
            plist_free(root);
            return NULL;
        }
        plist_array_append_item(content, p);
    }
    plist_dict_set_item(root, "PayloadType", plist_new_string("Configuration"));
    plist_dict_set_item(root, "PayloadVersion", plist_new_uint(1));
    plist_dict_set_item(root, "PayloadIdentifier", plist_new_string(identifier));
    set_uuid(root, "PayloadUUID");
    plist_dict_set_item(root, "PayloadDisplayName", plist_new_string(name ? name : identifier));
    if (org)
        plist_dict_set_item(root, "PayloadOrganization", plist_new_string(org));
    if (desc)
        plist_dict_set_item(root, "PayloadDescription", plist_new_string(desc));
    if (scope)
        plist_dict_set_item(root, "PayloadScope", plist_new_string(scope));
    if (rd)
        plist_dict_set_item(root, "PayloadRemovalDisallowed", plist_new_bool(json_is_true(rd)));
    if (consent) {
        plist_t ct = plist_new_dict();
        plist_dict_set_item(ct, "default", plist_new_string(consent));
        plist_dict_set_item(root, "ConsentText", ct);
    }
    struct profile_check c;
    if (profile_validate(root, &c, err, errlen) != 0) {
        plist_free(root);
        return NULL;
    }
    profile_check_free(&c);
    return root;
}

/* ---- import ------------------------------------------------------------------------ */

plist_t profile_import(const uint8_t *data, size_t len, char **signer, char *err, size_t errlen)
{
    if (signer)
        *signer = NULL;
    if (!data || len == 0) {
        snprintf(err, errlen, "(upload): empty body");
        return NULL;
    }
    size_t skip = 0;
    while (skip < len && (data[skip] == ' ' || data[skip] == '\n' || data[skip] == '\r' ||
                          data[skip] == '\t'))
        skip++;
    const char *why = NULL;
    if (data[0] == 0x30) { /* DER: a CMS SignedData around the plist */
        uint8_t *content = NULL;
        size_t clen = 0;
        X509 *cert = NULL;
        STACK_OF(X509) *others = NULL;
        if (cms_verify(data, len, NULL, 0, &content, &clen, &cert, &others, &why) != 0) {
            snprintf(err, errlen, "(signature): %s", why ? why : "not a valid CMS SignedData");
            return NULL;
        }
        sk_X509_pop_free(others, X509_free);
        if (signer && cert) {
            char *name = X509_NAME_oneline(X509_get_subject_name(cert), NULL, 0);
            *signer = name ? strdup(name) : NULL;
            OPENSSL_free(name);
        }
        X509_free(cert);
        plist_t root = content ? pl_parse_dict(content, clen, &why) : NULL;
        free(content);
        if (!root) {
            snprintf(err, errlen, "(signed content): %s", why ? why : "no content");
            if (signer) {
                free(*signer);
                *signer = NULL;
            }
        }
        return root;
    }
    plist_t root = pl_parse_dict(data + skip, len - skip, &why);
    if (!root)
        snprintf(err, errlen, "(upload): not a profile: %s", why ? why : "unreadable");
    return root;
}

/* ---- secrets ----------------------------------------------------------------------- */

static void strip_dict(const struct pk_key *keys, size_t nkeys, plist_t d)
{
    for (size_t i = 0; i < nkeys; i++) {
        const struct pk_key *k = &keys[i];
        plist_t v = plist_dict_get_item(d, k->name);
        if (!v)
            continue;
        if (k->secret) {
            plist_dict_remove_item(d, k->name);
            continue;
        }
        if (!k->nsub)
            continue;
        if (plist_get_node_type(v) == PLIST_DICT)
            strip_dict(k->sub, k->nsub, v);
        else if (plist_get_node_type(v) == PLIST_ARRAY && k->sub[0].nsub)
            for (uint32_t j = 0; j < plist_array_get_size(v); j++) {
                plist_t item = plist_array_get_item(v, j);
                if (plist_get_node_type(item) == PLIST_DICT)
                    strip_dict(k->sub[0].sub, k->sub[0].nsub, item);
            }
    }
}

plist_t profile_strip_secrets(plist_t root)
{
    plist_t copy = plist_copy(root);
    plist_t content = copy ? plist_dict_get_item(copy, "PayloadContent") : NULL;
    uint32_t n = content && plist_get_node_type(content) == PLIST_ARRAY
                     ? plist_array_get_size(content)
                     : 0;
    for (uint32_t i = 0; i < n; i++) {
        plist_t p = plist_array_get_item(content, i);
        const struct pk_payload *pt = payload_find(pl_str(p, "PayloadType"));
        if (payload_is_buildable(pt))
            strip_dict(pt->keys, pt->nkeys, p);
    }
    return copy;
}

/* ---- per-device encryption ------------------------------------------------------------ */

int profile_encrypt(plist_t root, X509 *device)
{
    plist_t content = plist_dict_get_item(root, "PayloadContent");
    if (!content || !device)
        return -1;
    char *xml = NULL;
    size_t xml_len = 0;
    if (pl_to_xml(content, &xml, &xml_len) != 0)
        return -1;
    uint8_t *der = NULL;
    size_t der_len = 0;
    int rc = cms_encrypt(device, EVP_aes_256_cbc(), (const uint8_t *)xml, xml_len, &der, &der_len);
    free(xml);
    if (rc != 0)
        return -1;
    plist_dict_remove_item(root, "PayloadContent");
    plist_dict_set_item(root, "EncryptedPayloadContent", plist_new_data((const char *)der, der_len));
    free(der);
    return 0;
}

int profile_decrypt(plist_t root, X509 *cert, EVP_PKEY *key, const char **reason)
{
    size_t len = 0;
    const uint8_t *der = pl_data(root, "EncryptedPayloadContent", &len);
    if (!der) {
        *reason = "no EncryptedPayloadContent";
        return -1;
    }
    uint8_t *out = NULL;
    size_t out_len = 0;
    if (cms_decrypt(cert, key, der, len, &out, &out_len, NULL, reason) != 0)
        return -1;
    plist_t content = pl_parse(out, out_len, reason);
    free(out);
    if (!content || plist_get_node_type(content) != PLIST_ARRAY) {
        plist_free(content);
        *reason = "decrypted content is not an array";
        return -1;
    }
    plist_dict_remove_item(root, "EncryptedPayloadContent");
    plist_dict_set_item(root, "PayloadContent", content);
    return 0;
}

/* ---- signing ------------------------------------------------------------------------ */

static char *errdup(const char *what, const char *path)
{
    char msg[700];
    snprintf(msg, sizeof msg, "%s: %s", what, path);
    return strdup(msg);
}

struct profile_signer *profile_signer_load(const char *cert_path, const char *key_path,
                                           char **err)
{
    *err = NULL;
    STACK_OF(X509) *certs = pki_read_certs(cert_path);
    if (!certs || sk_X509_num(certs) == 0) {
        sk_X509_pop_free(certs, X509_free);
        *err = errdup("cannot read the profile-signing certificate", cert_path);
        return NULL;
    }
    FILE *f = fopen(key_path, "r");
    EVP_PKEY *key = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    if (!key) {
        sk_X509_pop_free(certs, X509_free);
        *err = errdup("cannot read the profile-signing key", key_path);
        return NULL;
    }
    struct profile_signer *s = calloc(1, sizeof *s);
    if (!s) {
        EVP_PKEY_free(key);
        sk_X509_pop_free(certs, X509_free);
        *err = strdup("out of memory");
        return NULL;
    }
    s->cert = sk_X509_shift(certs);
    s->key = key;
    s->chain = certs;
    return s;
}

void profile_signer_free(struct profile_signer *s)
{
    if (!s)
        return;
    X509_free(s->cert);
    EVP_PKEY_free(s->key);
    sk_X509_pop_free(s->chain, X509_free);
    free(s);
}

int profile_sign(const struct profile_signer *s, plist_t root, uint8_t **der, size_t *len)
{
    char *xml = NULL;
    size_t xml_len = 0;
    if (!s || pl_to_xml(root, &xml, &xml_len) != 0)
        return -1;
    int rc = cms_sign(s->cert, s->key, sk_X509_num(s->chain) ? s->chain : NULL, NULL,
                      (const uint8_t *)xml, xml_len, 0, der, len);
    free(xml);
    return rc;
}
