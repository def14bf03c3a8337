/* apps.c: managed apps (docs/commands.md): App Store apps (iTunesStoreID or
 * bundle id) and enterprise apps whose .ipa is uploaded and hosted here,
 * with the manifest plist iOS reads (GET /apps/{id}/manifest.plist and
 * /apps/{id}/app.ipa, open: iOS fetches them without a client identity;
 * the ids are random UUIDs), VPP redemption code pools, and installs
 * through the typed-command path (typed.c) so every refusal applies. */
#include "api/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/catalog.h"
#include "plist/pl.h"
#include "util/config.h"
#include "util/ids.h"
#include "util/log.h"

static json_t *app_json(const struct store_app *a)
{
    return json_pack("{s:s,s:s,s:s?,s:s?,s:s?,s:I,s:I,s:s?,s:o,s:I,s:I}", "id", a->id, "kind",
                     a->kind, "name", a->name, "bundle_id", a->bundle_id, "version", a->version,
                     "itunes_store_id", (json_int_t)a->itunes_store_id, "ipa_size",
                     (json_int_t)a->ipa_size, "ipa_sha256", a->ipa_sha256, "created_at",
                     api_time_json(a->created_at), "codes_free", (json_int_t)a->codes_free,
                     "codes_used", (json_int_t)a->codes_used);
}

/* "https://host" devices reach hosted apps at: apps_base_url, else the
 * Host the request came to. 0 or -1 after answering. */
static int base_url(struct worker *w, const struct request *req, struct response *resp,
                    char *out, size_t n)
{
    const char *cfg = w->svc->cfg->apps_base_url;
    const char *host = request_header(req, "Host");
    if (cfg[0])
        snprintf(out, n, "%s", cfg);
    else if (host && *host && !strpbrk(host, "/\\ \"<>&"))
        snprintf(out, n, "https://%s", host);
    else {
        api_fail(req, resp, 500, "no_base_url", "set apps_base_url: no usable Host header");
        return -1;
    }
    size_t l = strlen(out);
    if (l && out[l - 1] == '/')
        out[l - 1] = '\0';
    return 0;
}

static json_t *parse_body(const struct request *req, struct response *resp)
{
    json_error_t jerr;
    json_t *root = json_loadb(req->body ? (const char *)req->body : "", req->body_len,
                              JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(root)) {
        json_decref(root);
        char msg[256];
        snprintf(msg, sizeof msg, "the body must be a JSON object (%s)", jerr.text);
        api_fail(req, resp, 400, "bad_json", msg);
        return NULL;
    }
    return root;
}

static void send_app(struct worker *w, struct request *req, struct response *resp,
                     const char *id, int status)
{
    struct store_app *a = NULL;
    int rc = store_app_get(w->store, id, &a);
    if (rc != STORE_OK)
        api_fail_store(req, resp, rc, "loading the app");
    else
        api_send_json(req, resp, status, app_json(a));
    store_app_free(a);
}

/* ---- POST /api/v1/apps ---------------------------------------------------------- */

/* An App Store app: {"itunes_store_id": N, "bundle_id": "…", "name": "…"}. */
static int store_app_from_json(const struct request *req, struct response *resp, json_t *root,
                               struct store_app *a)
{
    json_t *sid = json_object_get(root, "itunes_store_id");
    a->bundle_id = (char *)json_string_value(json_object_get(root, "bundle_id"));
    a->name = (char *)json_string_value(json_object_get(root, "name"));
    a->version = (char *)json_string_value(json_object_get(root, "version"));
    if (sid && (!json_is_integer(sid) || json_integer_value(sid) <= 0)) {
        api_fail(req, resp, 422, "wrong_type", "itunes_store_id must be a positive integer");
        return -1;
    }
    a->itunes_store_id = sid ? json_integer_value(sid) : 0;
    if (!a->itunes_store_id && !a->bundle_id) {
        api_fail(req, resp, 422, "missing_key",
                 "an App Store app needs itunes_store_id or bundle_id (upload an .ipa with "
                 "Content-Type application/octet-stream for an enterprise app)");
        return -1;
    }
    a->kind = "store";
    return 0;
}

void api_apps_create(struct worker *w, struct request *req, struct response *resp)
{
    const char *ctype = request_header(req, "Content-Type");
    int is_json = ctype && strncmp(ctype, "application/json", 16) == 0;
    struct store_app a = {0};
    char id[UUID_STR_LEN], sha[65];
    char bundle[256], version[128], name[256];
    json_t *root = NULL;
    const uint8_t *ipa = NULL;
    if (ids_uuid(id) < 0) {
        api_fail(req, resp, 500, "internal", "no randomness");
        return;
    }
    a.id = id;
    a.created_at = (int64_t)time(NULL);
    if (is_json) {
        if (!(root = parse_body(req, resp)) || store_app_from_json(req, resp, root, &a) < 0)
            goto done;
    } else {
        /* An enterprise .ipa (a zip: "PK\3\4"), described by query parameters. */
        const char *q = NULL;
        if (req->body_len < 4 || memcmp(req->body, "PK\3\4", 4) != 0) {
            api_fail(req, resp, 422, "not_an_ipa", "the body is not an .ipa (a zip archive)");
            goto done;
        }
        if (api_query_text(req, resp, "bundle_id", bundle, sizeof bundle, &q) < 0)
            goto done;
        if (!q || !*q) {
            api_fail(req, resp, 422, "missing_key", "give the app's bundle_id as a query parameter");
            goto done;
        }
        a.bundle_id = bundle;
        if (api_query_text(req, resp, "version", version, sizeof version, &q) < 0)
            goto done;
        a.version = q ? version : "1.0";
        if (api_query_text(req, resp, "name", name, sizeof name, &q) < 0)
            goto done;
        a.name = q ? name : bundle;
        a.kind = "enterprise";
        ipa = req->body;
        ids_sha256_hex(req->body, req->body_len, sha);
        a.ipa_sha256 = sha;
    }
    int rc = store_app_add(w->store, &a, ipa, ipa ? req->body_len : 0);
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "storing the app");
        goto done;
    }
    log_info("app_added", "req=%s id=%s kind=%s bundle=%s size=%zu", req->id, id, a.kind,
             a.bundle_id ? a.bundle_id : "-", ipa ? req->body_len : 0);
    send_app(w, req, resp, id, 201);
done:
    json_decref(root);
}

/* ---- GET /api/v1/apps, GET and DELETE /api/v1/apps/{id} --------------------------- */

void api_apps_list(struct worker *w, struct request *req, struct response *resp)
{
    struct store_app **list = NULL;
    size_t n = 0;
    int rc = store_app_list(w->store, &list, &n);
    if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "listing apps");
        return;
    }
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, app_json(list[i]));
    store_app_list_free(list, n);
    api_send_json(req, resp, 200, json_pack("{s:o}", "apps", a));
}

void api_apps_get(struct worker *w, struct request *req, struct response *resp, const char *id)
{
    struct store_app *a = NULL;
    int rc = store_app_get(w->store, id, &a);
    if (rc == STORE_NOTFOUND)
        api_fail(req, resp, 404, "not_found", "no app with this id");
    else if (rc != STORE_OK)
        api_fail_store(req, resp, rc, "loading the app");
    else
        api_send_json(req, resp, 200, app_json(a));
    store_app_free(a);
}

void api_apps_delete(struct worker *w, struct request *req, struct response *resp,
                     const char *id)
{
    int rc = store_app_delete(w->store, id);
    if (rc == STORE_NOTFOUND)
        api_fail(req, resp, 404, "not_found", "no app with this id");
    else if (rc != STORE_OK)
        api_fail_store(req, resp, rc, "deleting the app");
    else
        api_send_json(req, resp, 200, json_pack("{s:b}", "deleted", 1));
}

/* ---- POST /api/v1/apps/{id}/codes ---------------------------------------------------- */

void api_apps_codes_add(struct worker *w, struct request *req, struct response *resp,
                        const char *id)
{
    json_t *root = parse_body(req, resp);
    if (!root)
        return;
    json_t *arr = json_object_get(root, "codes");
    size_t n = json_array_size(arr);
    const char **codes = n ? calloc(n, sizeof *codes) : NULL;
    size_t i;
    json_t *v;
    int ok = json_is_array(arr) && n > 0 && codes;
    json_array_foreach(arr, i, v) {
        const char *c = json_string_value(v);
        if (!c || !*c || strlen(c) > 128 || !codes) {
            ok = 0;
            break;
        }
        codes[i] = c;
    }
    size_t added = 0;
    int rc = ok ? store_app_codes_add(w->store, id, codes, n, (int64_t)time(NULL), &added)
                : STORE_OK;
    if (!ok)
        api_fail(req, resp, 422, "wrong_type",
                 "\"codes\" must be a non-empty array of redemption codes (strings)");
    else if (rc == STORE_NOTFOUND)
        api_fail(req, resp, 404, "not_found", "no app with this id");
    else if (rc != STORE_OK)
        api_fail_store(req, resp, rc, "importing codes");
    else {
        log_info("app_codes_imported", "req=%s app=%s added=%zu of=%zu", req->id, id, added, n);
        struct store_app *a = NULL;
        rc = store_app_get(w->store, id, &a);
        if (rc != STORE_OK)
            api_fail_store(req, resp, rc, "loading the app");
        else
            api_send_json(req, resp, 200,
                          json_pack("{s:I,s:I,s:I}", "added", (json_int_t)added, "codes_free",
                                    (json_int_t)a->codes_free, "codes_used",
                                    (json_int_t)a->codes_used));
        store_app_free(a);
    }
    free(codes);
    json_decref(root);
}

/* ---- POST /api/v1/apps/{id}/install ------------------------------------------------ */

/* The InstallApplication for this app: ManifestURL for a hosted .ipa,
 * iTunesStoreID (or Identifier) from the App Store, ManagementFlags 1
 * (removed with the MDM profile) unless told. */
static plist_t install_command(const struct store_app *a, const char *base, json_t *root)
{
    plist_t cmd = plist_new_dict();
    plist_dict_set_item(cmd, "RequestType", plist_new_string("InstallApplication"));
    if (strcmp(a->kind, "enterprise") == 0) {
        char url[1024];
        snprintf(url, sizeof url, "%s/apps/%s/manifest.plist", base, a->id);
        plist_dict_set_item(cmd, "ManifestURL", plist_new_string(url));
    } else if (a->itunes_store_id) {
        plist_dict_set_item(cmd, "iTunesStoreID", plist_new_uint((uint64_t)a->itunes_store_id));
    } else {
        plist_dict_set_item(cmd, "Identifier", plist_new_string(a->bundle_id));
    }
    json_t *flags = json_object_get(root, "management_flags");
    plist_dict_set_item(cmd, "ManagementFlags",
                        plist_new_uint(json_is_integer(flags) && json_integer_value(flags) >= 0
                                           ? (uint64_t)json_integer_value(flags)
                                           : 1));
    if (json_is_true(json_object_get(root, "purchase_method_vpp"))) {
        plist_t opts = plist_new_dict();
        plist_dict_set_item(opts, "PurchaseMethod", plist_new_uint(1));
        plist_dict_set_item(cmd, "Options", opts);
    }
    json_t *conf = json_object_get(root, "configuration");
    char why[160];
    plist_t pc = json_is_object(conf) ? json_to_plist(conf, why, sizeof why) : NULL;
    if (pc)
        plist_dict_set_item(cmd, "Configuration", pc);
    return cmd;
}

void api_apps_install(struct worker *w, struct request *req, struct response *resp,
                      const char *id)
{
    json_t *root = parse_body(req, resp);
    if (!root)
        return;
    struct store_app *a = NULL;
    const char **ids = NULL;
    size_t nids = 0;
    char base[CONFIG_STR + 16];
    int rc = store_app_get(w->store, id, &a);
    json_t *ttl = json_object_get(root, "ttl");
    int vpp = json_is_true(json_object_get(root, "redemption_code"));
    if (rc == STORE_NOTFOUND) {
        api_fail(req, resp, 404, "not_found", "no app with this id");
    } else if (rc != STORE_OK) {
        api_fail_store(req, resp, rc, "loading the app");
    } else if (ttl && (!json_is_integer(ttl) || json_integer_value(ttl) < 0)) {
        api_fail(req, resp, 400, "bad_request", "\"ttl\" must be a number of seconds (>= 0)");
    } else if (vpp && !a->bundle_id) {
        api_fail(req, resp, 422, "missing_key",
                 "a redemption code install needs the app's bundle_id");
    } else if (base_url(w, req, resp, base, sizeof base) == 0 &&
               api_decode_devices(req, resp, root, &ids, &nids) == 0) {
        struct typed_opts o = {0};
        o.ttl = ttl ? json_integer_value(ttl) : 0;
        o.vpp_app = vpp ? a->id : NULL;
        o.vpp_bundle = a->bundle_id;
        api_caller_name(w, req, o.who, sizeof o.who);
        plist_t cmd = install_command(a, base, root);
        api_typed_submit(w, req, resp, catalog_find("InstallApplication"), cmd, ids, nids, &o);
        plist_free(cmd);
    }
    free(ids);
    store_app_free(a);
    json_decref(root);
}

/* ---- GET /apps/{id}/manifest.plist and /apps/{id}/app.ipa (devices) ----------------- */

void api_apps_manifest(struct worker *w, struct request *req, struct response *resp,
                       const char *id)
{
    struct store_app *a = NULL;
    int rc = store_app_get(w->store, id, &a);
    char base[CONFIG_STR + 16];
    if (rc == STORE_OK && strcmp(a->kind, "enterprise") != 0)
        rc = STORE_NOTFOUND;
    if (rc != STORE_OK) {
        response_text(resp, rc == STORE_NOTFOUND ? 404 : 503, "no such app");
        store_app_free(a);
        return;
    }
    if (base_url(w, req, resp, base, sizeof base) < 0) {
        store_app_free(a);
        return;
    }
    char url[1024];
    snprintf(url, sizeof url, "%s/apps/%s/app.ipa", base, a->id);
    plist_t asset = plist_new_dict();
    plist_dict_set_item(asset, "kind", plist_new_string("software-package"));
    plist_dict_set_item(asset, "url", plist_new_string(url));
    plist_t assets = plist_new_array();
    plist_array_append_item(assets, asset);
    plist_t meta = plist_new_dict();
    plist_dict_set_item(meta, "bundle-identifier", plist_new_string(a->bundle_id));
    plist_dict_set_item(meta, "bundle-version", plist_new_string(a->version ? a->version : "1.0"));
    plist_dict_set_item(meta, "kind", plist_new_string("software"));
    plist_dict_set_item(meta, "title", plist_new_string(a->name ? a->name : a->bundle_id));
    plist_t item = plist_new_dict();
    plist_dict_set_item(item, "assets", assets);
    plist_dict_set_item(item, "metadata", meta);
    plist_t items = plist_new_array();
    plist_array_append_item(items, item);
    plist_t root = plist_new_dict();
    plist_dict_set_item(root, "items", items);
    char *xml = NULL;
    size_t len = 0;
    if (pl_to_xml(root, &xml, &len) < 0)
        response_text(resp, 500, "cannot build the manifest");
    else
        response_set(resp, 200, "application/xml", xml, len);
    free(xml);
    plist_free(root);
    store_app_free(a);
}

void api_apps_ipa(struct worker *w, struct request *req, struct response *resp, const char *id)
{
    uint8_t *ipa = NULL;
    size_t len = 0;
    int rc = store_app_ipa(w->store, id, &ipa, &len);
    if (rc != STORE_OK) {
        response_text(resp, rc == STORE_NOTFOUND ? 404 : 503, "no such app");
        return;
    }
    log_info("app_downloaded", "req=%s id=%s size=%zu remote=%s", req->id, id, len,
             req->remote_addr);
    response_set(resp, 200, "application/octet-stream", ipa, len);
    free(ipa);
}
