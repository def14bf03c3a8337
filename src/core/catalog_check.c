/* catalog_check.c: validates a Command dictionary against the catalog
 * (catalog.h): key names, types, allowed values and required keys, the
 * rules a type adds (one app source, known queries, Settings items), and
 * what the command asks of the device (rights, supervision). */
#include "core/catalog.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(struct cat_error *err, const char *code, const char *fmt, ...)
{
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return -1;
}

static int type_matches(enum cat_type t, plist_t v)
{
    plist_type pt = plist_get_node_type(v);
    switch (t) {
    case CAT_STRING: return pt == PLIST_STRING;
    case CAT_INTEGER: return pt == PLIST_UINT;
    case CAT_BOOLEAN: return pt == PLIST_BOOLEAN;
    case CAT_REAL: return pt == PLIST_REAL || pt == PLIST_UINT;
    case CAT_DATA: return pt == PLIST_DATA;
    case CAT_DATE: return pt == PLIST_DATE;
    case CAT_ARRAY: return pt == PLIST_ARRAY;
    case CAT_DICT: return pt == PLIST_DICT;
    }
    return 0;
}

static int string_allowed(const char *const *allowed, plist_t v)
{
    if (!allowed)
        return 1;
    char *s = NULL;
    plist_get_string_val(v, &s);
    int ok = 0;
    for (size_t i = 0; s && allowed[i] && !ok; i++)
        ok = strcmp(allowed[i], s) == 0;
    free(s);
    return ok;
}

static int int_allowed(const struct cat_key *k, plist_t v)
{
    if (!k->ints)
        return 1;
    uint64_t u = 0;
    plist_get_uint_val(v, &u);
    for (size_t i = 0; i < k->nints; i++)
        if ((uint64_t)k->ints[i] == u)
            return 1;
    return 0;
}

static int check_dict(const struct cat_key *keys, size_t n, plist_t dict, const char *skip,
                      const char *where, struct cat_error *err);

static int check_value(const struct cat_key *k, plist_t v, const char *where,
                       struct cat_error *err)
{
    if (!type_matches(k->type, v))
        return fail(err, "wrong_type", "%s%s must be %s %s", where, k->name,
                    k->type == CAT_ARRAY || k->type == CAT_INTEGER ? "an" : "a",
                    catalog_type_name(k->type));
    if (k->type == CAT_STRING && !string_allowed(k->strings, v))
        return fail(err, "bad_value", "%s%s is not one of the allowed values", where, k->name);
    if (k->type == CAT_INTEGER && !int_allowed(k, v))
        return fail(err, "bad_value", "%s%s is not one of the allowed values", where, k->name);
    if (k->type == CAT_ARRAY) {
        uint32_t n = plist_array_get_size(v);
        for (uint32_t i = 0; i < n; i++) {
            plist_t it = plist_array_get_item(v, i);
            if (!type_matches(k->item, it))
                return fail(err, "wrong_type", "%s%s[%u] must be a %s", where, k->name, i,
                            catalog_type_name(k->item));
            if (k->item == CAT_STRING && !string_allowed(k->strings, it))
                return fail(err, "bad_value", "%s%s[%u] is not one of the allowed values", where,
                            k->name, i);
        }
    }
    if (k->type == CAT_DICT && k->sub) {
        char inner[96];
        snprintf(inner, sizeof inner, "%s%s.", where, k->name);
        return check_dict(k->sub, k->nsub, v, NULL, inner, err);
    }
    return 0;
}

static const struct cat_key *key_find(const struct cat_key *keys, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

/* Every key known and well typed (skip: a key checked elsewhere), every
 * required key present. where prefixes key names in messages. */
static int check_dict(const struct cat_key *keys, size_t n, plist_t dict, const char *skip,
                      const char *where, struct cat_error *err)
{
    plist_dict_iter it = NULL;
    plist_dict_new_iter(dict, &it);
    int rc = 0;
    for (;;) {
        char *name = NULL;
        plist_t v = NULL;
        plist_dict_next_item(dict, it, &name, &v);
        if (!name)
            break;
        if (!skip || strcmp(name, skip) != 0) {
            const struct cat_key *k = key_find(keys, n, name);
            if (!k)
                rc = fail(err, "unknown_key", "%s%s is not a key of this command", where, name);
            else
                rc = check_value(k, v, where, err);
        }
        free(name);
        if (rc < 0)
            break;
    }
    free(it);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n; i++)
        if ((keys[i].flags & CAT_REQUIRED) && !plist_dict_get_item(dict, keys[i].name))
            return fail(err, "missing_key", "%s%s is required", where, keys[i].name);
    return 0;
}

/* ---- rules of particular commands ------------------------------------------- */

static int check_install_application(plist_t cmd, struct cat_needs *needs, struct cat_error *err)
{
    plist_t store_id = plist_dict_get_item(cmd, "iTunesStoreID");
    plist_t ident = plist_dict_get_item(cmd, "Identifier");
    plist_t manifest = plist_dict_get_item(cmd, "ManifestURL");
    int sources = !!store_id + !!ident + !!manifest;
    if (sources != 1)
        return fail(err, sources ? "conflicting_keys" : "missing_key",
                    "InstallApplication needs exactly one of iTunesStoreID, Identifier and "
                    "ManifestURL");
    if (manifest) {
        char *url = NULL;
        plist_get_string_val(manifest, &url);
        int https = url && strncmp(url, "https://", 8) == 0 && url[8];
        free(url);
        if (!https)
            return fail(err, "bad_value", "ManifestURL must be an https:// URL");
    } else {
        needs->app_store = 1;
    }
    return 0;
}

static int check_device_information(plist_t cmd, struct cat_needs *needs, struct cat_error *err)
{
    size_t nq = 0;
    const struct cat_query *known = catalog_queries(&nq);
    plist_t qs = plist_dict_get_item(cmd, "Queries");
    uint32_t n = plist_array_get_size(qs);
    for (uint32_t i = 0; i < n; i++) {
        char *q = NULL;
        plist_get_string_val(plist_array_get_item(qs, i), &q);
        size_t j = 0;
        while (q && j < nq && strcmp(known[j].name, q) != 0)
            j++;
        if (!q || j == nq) {
            fail(err, "unknown_query", "Queries[%u] (%.64s) is not a DeviceInformation query", i,
                 q ? q : "");
            free(q);
            return -1;
        }
        free(q);
        needs->rights |= known[j].rights;
    }
    uint64_t len = 0;
    plist_t nonce = plist_dict_get_item(cmd, "DeviceAttestationNonce");
    if (nonce) {
        char *buf = NULL;
        plist_get_data_val(nonce, &buf, &len);
        free(buf);
        if (len > 32)
            return fail(err, "bad_value", "DeviceAttestationNonce is at most 32 bytes");
    }
    return 0;
}

static int check_settings(plist_t cmd, struct cat_needs *needs, struct cat_error *err)
{
    plist_t items = plist_dict_get_item(cmd, "Settings");
    uint32_t n = plist_array_get_size(items);
    if (n == 0)
        return fail(err, "missing_key", "Settings must list at least one item");
    for (uint32_t i = 0; i < n; i++) {
        plist_t d = plist_array_get_item(items, i);
        plist_t item = plist_dict_get_item(d, "Item");
        if (!item || plist_get_node_type(item) != PLIST_STRING)
            return fail(err, "missing_key", "Settings[%u].Item is required (a string)", i);
        char *name = NULL;
        plist_get_string_val(item, &name);
        const struct cat_setting *s = NULL;
        size_t ns = 0;
        const struct cat_setting *all = catalog_settings(&ns);
        for (size_t j = 0; name && j < ns && !s; j++)
            if (strcmp(all[j].item, name) == 0)
                s = &all[j];
        if (!s) {
            fail(err, "unknown_setting", "Settings[%u].Item (%.64s) is not a Settings item", i,
                 name ? name : "");
            free(name);
            return -1;
        }
        free(name);
        char where[64];
        snprintf(where, sizeof where, "Settings[%u].", i);
        if (check_dict(s->keys, s->nkeys, d, "Item", where, err) < 0)
            return -1;
        needs->rights |= s->rights;
        needs->supervised |= s->supervised;
    }
    return 0;
}

int catalog_check(const struct cat_command *c, plist_t cmd, struct cat_needs *needs,
                  struct cat_error *err)
{
    memset(needs, 0, sizeof *needs);
    err->code = NULL;
    err->message[0] = '\0';
    if (!cmd || plist_get_node_type(cmd) != PLIST_DICT)
        return fail(err, "bad_request", "the command is not a dictionary");
    if (check_dict(c->keys, c->nkeys, cmd, "RequestType", "", err) < 0)
        return -1;
    needs->rights = c->rights;
    needs->supervised = c->supervised;
    if (strcmp(c->request_type, "InstallApplication") == 0)
        return check_install_application(cmd, needs, err);
    if (strcmp(c->request_type, "DeviceInformation") == 0)
        return check_device_information(cmd, needs, err);
    if (strcmp(c->request_type, "Settings") == 0)
        return check_settings(cmd, needs, err);
    return 0;
}
