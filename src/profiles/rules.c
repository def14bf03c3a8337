/* rules.c: group membership rules over inventory (model, OS version range,
 * supervision, enrolling user, custom attributes): parsed from a group's
 * JSON once per convergence run and matched against each device. Part of the
 * convergence service (converge.h). */
#include "profiles/converge.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- group rules ------------------------------------------------------------------ */

struct rules {
    json_t *models;     /* array of strings or NULL */
    json_t *users;
    json_t *attributes; /* object name → string, or NULL */
    int64_t os_min, os_max;
    int supervised;     /* -1 any */
};

/* "17.2.1" → 170201; -1 when it does not parse. */
static int64_t os_num(const char *v)
{
    long part[3] = {0, 0, 0};
    int i = 0;
    const char *p = v;
    while (i < 3 && *p) {
        char *end = NULL;
        long x = strtol(p, &end, 10);
        if (end == p || x < 0 || x > 99)
            return -1;
        part[i++] = x;
        if (*end == '.')
            end++;
        else if (*end)
            return -1;
        p = end;
    }
    return i ? part[0] * 10000 + part[1] * 100 + part[2] : -1;
}

static json_t *string_list(json_t *v)
{
    if (json_is_string(v)) {
        json_t *a = json_array();
        json_array_append(a, v);
        return a;
    }
    if (!json_is_array(v))
        return NULL;
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) if (!json_is_string(x)) return NULL;
    return json_incref(v);
}

void converge_rules_free(void *r)
{
    struct rules *ru = r;
    if (!ru)
        return;
    json_decref(ru->models);
    json_decref(ru->users);
    json_decref(ru->attributes);
    free(ru);
}

void *converge_rules_parse(const char *text, char *err, size_t errlen)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    if (!json_is_object(j)) {
        snprintf(err, errlen, "rules: expected a JSON object");
        json_decref(j);
        return NULL;
    }
    struct rules *r = calloc(1, sizeof *r);
    if (!r) {
        json_decref(j);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->os_min = r->os_max = -1;
    r->supervised = -1;
    const char *key;
    json_t *v;
    int bad = 0;
    json_object_foreach(j, key, v) {
        if (strcmp(key, "model") == 0) {
            if (!(r->models = string_list(v)))
                bad = snprintf(err, errlen, "rules.model: a string or an array of strings");
        } else if (strcmp(key, "user") == 0) {
            if (!(r->users = string_list(v)))
                bad = snprintf(err, errlen, "rules.user: a string or an array of strings");
        } else if (strcmp(key, "os_min") == 0 || strcmp(key, "os_max") == 0) {
            int64_t n = json_is_string(v) ? os_num(json_string_value(v)) : -1;
            if (n < 0)
                bad = snprintf(err, errlen, "rules.%s: a version such as \"17.2\"", key);
            *(key[4] == 'i' ? &r->os_min : &r->os_max) = n;
        } else if (strcmp(key, "supervised") == 0) {
            if (!json_is_boolean(v))
                bad = snprintf(err, errlen, "rules.supervised: expected boolean");
            r->supervised = json_is_true(v);
        } else if (strcmp(key, "attributes") == 0) {
            const char *k2;
            json_t *v2;
            if (!json_is_object(v))
                bad = snprintf(err, errlen, "rules.attributes: an object of strings");
            else
                json_object_foreach(v, k2, v2) if (!json_is_string(v2)) bad = snprintf(
                    err, errlen, "rules.attributes.%s: expected string", k2);
            r->attributes = json_incref(v);
        } else {
            bad = snprintf(err, errlen,
                           "rules.%s: unknown rule (model, os_min, os_max, supervised, user, "
                           "attributes)", key);
        }
        if (bad)
            break;
    }
    json_decref(j);
    if (bad) {
        converge_rules_free(r);
        return NULL;
    }
    return r;
}

static int in_list(json_t *list, const char *v)
{
    size_t i;
    json_t *x;
    if (!v)
        return 0;
    json_array_foreach(list, i, x) if (strcmp(json_string_value(x), v) == 0) return 1;
    return 0;
}

static int attr_is(const char *attrs, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    for (const char *p = attrs; p && *p;) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len == nl + 1 + vl && strncmp(p, name, nl) == 0 && p[nl] == '=' &&
            strncmp(p + nl + 1, value, vl) == 0)
            return 1;
        p = eol ? eol + 1 : p + len;
    }
    return 0;
}

static int rules_hold(const struct rules *r, const struct store_pdevice *d)
{
    if (r->models && !in_list(r->models, d->product_name) && !in_list(r->models, d->model) &&
        !in_list(r->models, d->model_name))
        return 0;
    if (r->users && !in_list(r->users, d->user))
        return 0;
    if (r->supervised >= 0 && d->supervised != r->supervised)
        return 0;
    if (r->os_min >= 0 && (d->os_num < 0 || d->os_num < r->os_min))
        return 0;
    if (r->os_max >= 0 && (d->os_num < 0 || d->os_num > r->os_max))
        return 0;
    if (r->attributes) {
        const char *k;
        json_t *v;
        json_object_foreach(r->attributes, k, v) if (!attr_is(d->attrs, k, json_string_value(v)))
            return 0;
    }
    return 1;
}

int converge_rules_match(const void *rules, const struct store_pdevice *d)
{
    return rules_hold(rules, d);
}
