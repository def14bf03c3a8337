/* compliance_rules.c: the pure half of compliance.h: rule trees parsed from
 * JSON, scopes and actions checked, policies to and from the API's JSON,
 * compiled sets with their identifier slots, and the three-valued
 * evaluation of a rule tree over one device's facts. No store access; the
 * loaders and the transitions are in compliance.c. */
#include "core/compliance.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/compliance_int.h"
#include "util/log.h"

#define RULE_MAX_DEPTH 8
#define RULE_MAX_KIDS 64
#define RULE_MAX_IDS 256

static int64_t max_age_s = 7 * 86400;

void compliance_configure(int64_t max_age)
{
    max_age_s = max_age;
}

const char *compliance_state_name(enum compliance_state st)
{
    switch (st) {
    case COMPLIANCE_COMPLIANT: return "compliant";
    case COMPLIANCE_NONCOMPLIANT: return "noncompliant";
    case COMPLIANCE_UNKNOWN: return "unknown";
    }
    return "unknown";
}

int compliance_state_from_name(const char *name)
{
    for (int i = 0; name && i <= COMPLIANCE_UNKNOWN; i++)
        if (strcmp(name, compliance_state_name((enum compliance_state)i)) == 0)
            return i;
    return -1;
}

/* ---- versions ----------------------------------------------------------------- */

/* The next numeric part of a dotted version; -1 when malformed. */
static int next_part(const char **p, long *out)
{
    if (**p == '\0') {
        *out = 0;
        return 0;
    }
    if (**p < '0' || **p > '9')
        return -1;
    char *end = NULL;
    *out = strtol(*p, &end, 10);
    if (*out > 1000000)
        return -1;
    *p = end;
    if (**p == '.') {
        (*p)++;
        if (**p == '\0')
            return -1;
    } else if (**p != '\0') {
        return -1;
    }
    return 0;
}

int compliance_version_cmp(const char *a, const char *b, int *cmp)
{
    if (!a || !b || !*a || !*b)
        return -1;
    *cmp = 0;
    for (int i = 0; i < 8 && (*a || *b); i++) {
        long x = 0, y = 0;
        if (next_part(&a, &x) < 0 || next_part(&b, &y) < 0)
            return -1;
        if (x != y && *cmp == 0)
            *cmp = x < y ? -1 : 1;
    }
    return (*a || *b) ? -1 : 0;
}

/* ---- rule trees ---------------------------------------------------------------- */

enum rule_kind {
    R_ALL, R_ANY, R_PASSCODE, R_ENCRYPTION, R_OS_VERSION, R_SUPERVISED, R_PROFILES,
    R_APPS_FORBIDDEN, R_APPS_REQUIRED, R_CERTIFICATES, R_CHECKED_IN, R_ROAMING, R_RESTRICTION,
};

static const char *const rule_types[] = {
    [R_PASSCODE] = "passcode",          [R_ENCRYPTION] = "encryption",
    [R_OS_VERSION] = "os_version",      [R_SUPERVISED] = "supervised",
    [R_PROFILES] = "profiles_installed", [R_APPS_FORBIDDEN] = "apps_forbidden",
    [R_APPS_REQUIRED] = "apps_required", [R_CERTIFICATES] = "certificates_valid",
    [R_CHECKED_IN] = "checked_in",      [R_ROAMING] = "roaming",
    [R_RESTRICTION] = "restriction",
};
#define NRULE_TYPES (sizeof rule_types / sizeof rule_types[0])

struct rule {
    enum rule_kind kind;
    char label[96];
    struct rule *kids;
    size_t nkids;
    char **ids;   /* identifiers (apps, profiles), or [0] = restriction name */
    int *slots;   /* their slots in the set */
    size_t nids;
    char *text;   /* os min version, restriction value */
    char *text2;  /* os max version */
    int64_t num;  /* days, encryption caps */
    int flag, flag2;
};

static void rule_clear(struct rule *r)
{
    for (size_t i = 0; i < r->nkids; i++)
        rule_clear(&r->kids[i]);
    free(r->kids);
    for (size_t i = 0; i < r->nids; i++)
        free(r->ids[i]);
    free(r->ids);
    free(r->slots);
    free(r->text);
    free(r->text2);
}

#define FAIL(...) (snprintf(err, errlen, __VA_ARGS__), -1)

static int parse_rule(json_t *j, struct rule *r, int depth, char *err, size_t errlen);

static int parse_kids(json_t *arr, struct rule *r, int depth, const char *op, char *err,
                      size_t errlen)
{
    if (!json_is_array(arr) || json_array_size(arr) == 0 || json_array_size(arr) > RULE_MAX_KIDS)
        return FAIL("\"%s\" must be a non-empty array of at most %d rules", op, RULE_MAX_KIDS);
    r->kids = calloc(json_array_size(arr), sizeof *r->kids);
    if (!r->kids)
        return FAIL("out of memory");
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        if (parse_rule(v, &r->kids[i], depth + 1, err, errlen) < 0) {
            rule_clear(&r->kids[i]); /* not counted yet: freed here */
            return -1;
        }
        r->nkids++;
    }
    return 0;
}

static int parse_ids(json_t *j, struct rule *r, const char *type, char *err, size_t errlen)
{
    json_t *arr = json_object_get(j, "identifiers");
    if (!json_is_array(arr) || json_array_size(arr) == 0 || json_array_size(arr) > RULE_MAX_IDS)
        return FAIL("%s: \"identifiers\" must be a non-empty array of strings", type);
    r->ids = calloc(json_array_size(arr), sizeof *r->ids);
    r->slots = calloc(json_array_size(arr), sizeof *r->slots);
    if (!r->ids || !r->slots)
        return FAIL("out of memory");
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        const char *s = json_string_value(v);
        if (!s || !*s || strlen(s) > 255)
            return FAIL("%s: \"identifiers\" entries must be non-empty strings", type);
        if (!(r->ids[i] = strdup(s)))
            return FAIL("out of memory");
        r->nids++;
    }
    return 0;
}

/* A non-negative integer member, def when absent; -1 when wrong. */
static int opt_num(json_t *j, const char *key, int64_t def, int64_t max, int64_t *out)
{
    json_t *v = json_object_get(j, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max)
        return -1;
    *out = json_integer_value(v);
    return 0;
}

static int opt_bool(json_t *j, const char *key, int def, int *out)
{
    json_t *v = json_object_get(j, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!json_is_boolean(v))
        return -1;
    *out = json_is_true(v);
    return 0;
}

static int parse_leaf(json_t *j, struct rule *r, const char *type, char *err, size_t errlen)
{
    size_t k;
    for (k = 0; k < NRULE_TYPES; k++)
        if (rule_types[k] && strcmp(rule_types[k], type) == 0)
            break;
    if (k == NRULE_TYPES)
        return FAIL("unknown rule type \"%.64s\" (passcode, encryption, os_version, supervised, "
                    "profiles_installed, apps_forbidden, apps_required, certificates_valid, "
                    "checked_in, roaming, restriction)", type);
    r->kind = (enum rule_kind)k;
    switch (r->kind) {
    case R_PASSCODE:
        if (opt_bool(j, "compliant", 1, &r->flag) < 0)
            return FAIL("passcode: \"compliant\" must be true or false");
        break;
    case R_ENCRYPTION:
        if (opt_num(j, "caps", 3, 3, &r->num) < 0 || r->num == 0)
            return FAIL("encryption: \"caps\" must be 1 (block), 2 (file) or 3 (both)");
        break;
    case R_OS_VERSION: {
        const char *mn = json_string_value(json_object_get(j, "min"));
        const char *mx = json_string_value(json_object_get(j, "max"));
        int c;
        if (!mn && !mx)
            return FAIL("os_version: give \"min\" and/or \"max\" as a version string");
        if ((mn && compliance_version_cmp(mn, mn, &c) < 0) ||
            (mx && compliance_version_cmp(mx, mx, &c) < 0))
            return FAIL("os_version: \"min\"/\"max\" must be dotted numbers like \"17.4\"");
        if ((mn && !(r->text = strdup(mn))) || (mx && !(r->text2 = strdup(mx))))
            return FAIL("out of memory");
        break;
    }
    case R_SUPERVISED:
        if (opt_bool(j, "value", 1, &r->flag) < 0)
            return FAIL("supervised: \"value\" must be true or false");
        break;
    case R_PROFILES:
    case R_APPS_FORBIDDEN:
    case R_APPS_REQUIRED:
        return parse_ids(j, r, type, err, errlen);
    case R_CERTIFICATES:
    case R_CHECKED_IN:
        if (!json_object_get(j, "days") || opt_num(j, "days", 0, 3650, &r->num) < 0)
            return FAIL("%s: \"days\" must be an integer from 0 to 3650", type);
        break;
    case R_ROAMING:
        if (opt_bool(j, "allow_roaming", 0, &r->flag) < 0 ||
            opt_bool(j, "allow_data_roaming", 1, &r->flag2) < 0)
            return FAIL("roaming: \"allow_roaming\"/\"allow_data_roaming\" must be booleans");
        break;
    case R_RESTRICTION: {
        const char *name = json_string_value(json_object_get(j, "name"));
        json_t *v = json_object_get(j, "value");
        char buf[64];
        if (!name || !*name || strlen(name) > 128)
            return FAIL("restriction: \"name\" must be a restriction key like \"allowCamera\"");
        if (json_is_boolean(v))
            snprintf(buf, sizeof buf, "%s", json_is_true(v) ? "true" : "false");
        else if (json_is_integer(v))
            snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
        else if (json_is_string(v) && json_string_length(v) < sizeof buf)
            snprintf(buf, sizeof buf, "%s", json_string_value(v));
        else
            return FAIL("restriction: \"value\" must be a boolean, integer or short string");
        r->ids = calloc(1, sizeof *r->ids);
        r->slots = calloc(1, sizeof *r->slots);
        if (!r->ids || !r->slots || !(r->ids[0] = strdup(name)) || !(r->text = strdup(buf)))
            return FAIL("out of memory");
        r->nids = 1;
        break;
    }
    default:
        break;
    }
    return 0;
}

static void default_label(struct rule *r)
{
    switch (r->kind) {
    case R_ALL: snprintf(r->label, sizeof r->label, "all"); break;
    case R_ANY: snprintf(r->label, sizeof r->label, "any"); break;
    case R_OS_VERSION:
        snprintf(r->label, sizeof r->label, "os_version%s%s%s%s", r->text ? ">=" : "",
                 r->text ? r->text : "", r->text2 ? "<=" : "", r->text2 ? r->text2 : "");
        break;
    case R_CERTIFICATES:
    case R_CHECKED_IN:
        snprintf(r->label, sizeof r->label, "%s(%lld days)", rule_types[r->kind],
                 (long long)r->num);
        break;
    case R_RESTRICTION:
        snprintf(r->label, sizeof r->label, "restriction %.40s=%.40s", r->ids[0], r->text);
        break;
    default: snprintf(r->label, sizeof r->label, "%s", rule_types[r->kind]); break;
    }
}

static int parse_rule(json_t *j, struct rule *r, int depth, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    if (depth > RULE_MAX_DEPTH)
        return FAIL("rules nest deeper than %d levels", RULE_MAX_DEPTH);
    if (!json_is_object(j))
        return FAIL("a rule must be an object: {\"type\": …}, {\"all\": […]} or {\"any\": […]}");
    json_t *all = json_object_get(j, "all"), *any = json_object_get(j, "any");
    const char *type = json_string_value(json_object_get(j, "type"));
    int forms = !!all + !!any + !!type;
    if (forms != 1)
        return FAIL("a rule has exactly one of \"type\", \"all\" and \"any\"");
    int rc;
    if (all || any) {
        r->kind = all ? R_ALL : R_ANY;
        rc = parse_kids(all ? all : any, r, depth, all ? "all" : "any", err, errlen);
    } else {
        rc = parse_leaf(j, r, type, err, errlen);
    }
    if (rc < 0)
        return -1;
    const char *name = json_string_value(json_object_get(j, "name"));
    if (name && *name)
        snprintf(r->label, sizeof r->label, "%s", name);
    else
        default_label(r);
    return 0;
}

/* ---- scope and actions ---------------------------------------------------------- */

enum action_kind { A_NOTIFY, A_REQUERY, A_PUSH, A_REMOVE_PROFILES, A_REMOVE_APPS, A_LOCK, A_WIPE };
static const char *const action_types[] = {"notify", "requery", "push", "remove_profiles",
                                           "remove_apps", "lock", "wipe"};
#define NACTION_TYPES (sizeof action_types / sizeof action_types[0])

static int check_scope(json_t *scope, char *err, size_t errlen)
{
    if (json_is_string(scope) && strcmp(json_string_value(scope), "all") == 0)
        return 0;
    if (!json_is_object(scope) || json_object_size(scope) != 1)
        return FAIL("\"scope\" must be \"all\", {\"groups\": [names]} or {\"devices\": [ids]}");
    json_t *arr = json_object_get(scope, "groups");
    if (!arr)
        arr = json_object_get(scope, "devices");
    if (!json_is_array(arr) || json_array_size(arr) == 0)
        return FAIL("\"scope\" must be \"all\", {\"groups\": [names]} or {\"devices\": [ids]}");
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
        if (!json_is_string(v) || json_string_length(v) == 0)
            return FAIL("\"scope\" lists must hold non-empty strings");
    return 0;
}

static int check_actions(json_t *actions, int wipe_enabled, char *err, size_t errlen)
{
    if (!json_is_array(actions))
        return FAIL("\"actions\" must be an array of {\"type\": …} objects");
    unsigned seen = 0;
    size_t i;
    json_t *a;
    json_array_foreach(actions, i, a) {
        const char *type = json_string_value(json_object_get(a, "type"));
        size_t k;
        for (k = 0; type && k < NACTION_TYPES; k++)
            if (strcmp(action_types[k], type) == 0)
                break;
        if (!type || k == NACTION_TYPES)
            return FAIL("action %zu: \"type\" must be one of notify, requery, push, "
                        "remove_profiles, remove_apps, lock, wipe", i);
        if (seen & (1u << k))
            return FAIL("action \"%s\" is listed twice", type);
        seen |= 1u << k;
        json_t *after = json_object_get(a, "after_seconds");
        if (after && (!json_is_integer(after) || json_integer_value(after) < 0))
            return FAIL("action \"%s\": \"after_seconds\" must be a non-negative integer", type);
        if (k == A_REMOVE_PROFILES || k == A_REMOVE_APPS) {
            struct rule tmp = {0};
            int rc = parse_ids(a, &tmp, type, err, errlen);
            rule_clear(&tmp);
            if (rc < 0)
                return -1;
        }
        if (k == A_LOCK) {
            json_t *m = json_object_get(a, "message"), *p = json_object_get(a, "phone");
            if ((m && !json_is_string(m)) || (p && !json_is_string(p)))
                return FAIL("lock: \"message\" and \"phone\" must be strings");
        }
        if (k == A_WIPE && !wipe_enabled)
            return FAIL("the wipe action needs \"wipe_enabled\": true on the policy");
    }
    return 0;
}

/* ---- policies <-> JSON --------------------------------------------------------------- */

static char *dump(json_t *j)
{
    return json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
}

static int replace_str(char **dst, char *v)
{
    if (!v)
        return -1;
    free(*dst);
    *dst = v;
    return 0;
}

int compliance_policy_from_json(json_t *j, int partial, struct store_compliance_policy *p,
                                char *err, size_t errlen)
{
    static const char *const known[] = {"name", "description", "enabled", "rules", "scope",
                                        "grace_seconds", "actions", "wipe_enabled"};
    if (!json_is_object(j))
        return FAIL("the body must be a JSON object");
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v) {
        size_t i = 0;
        while (i < sizeof known / sizeof known[0] && strcmp(known[i], key) != 0)
            i++;
        if (i == sizeof known / sizeof known[0])
            return FAIL("unknown field \"%.64s\" (expected name, description, enabled, rules, "
                        "scope, grace_seconds, actions, wipe_enabled)", key);
    }
    json_t *name = json_object_get(j, "name");
    if (name || !partial) {
        if (!json_is_string(name) || json_string_length(name) == 0 ||
            json_string_length(name) > 128)
            return FAIL("\"name\" must be a non-empty string of at most 128 characters");
        if (replace_str(&p->name, strdup(json_string_value(name))) < 0)
            return FAIL("out of memory");
    }
    json_t *desc = json_object_get(j, "description");
    if (desc) {
        if (!json_is_string(desc) && !json_is_null(desc))
            return FAIL("\"description\" must be a string");
        free(p->description);
        p->description = json_is_string(desc) ? strdup(json_string_value(desc)) : NULL;
    }
    json_t *en = json_object_get(j, "enabled");
    if (en && !json_is_boolean(en))
        return FAIL("\"enabled\" must be true or false");
    if (en)
        p->enabled = json_is_true(en);
    else if (!partial)
        p->enabled = 1;
    json_t *wipe = json_object_get(j, "wipe_enabled");
    if (wipe && !json_is_boolean(wipe))
        return FAIL("\"wipe_enabled\" must be true or false");
    if (wipe)
        p->wipe_enabled = json_is_true(wipe);
    json_t *grace = json_object_get(j, "grace_seconds");
    if (grace && (!json_is_integer(grace) || json_integer_value(grace) < 0 ||
                  json_integer_value(grace) > 366LL * 86400))
        return FAIL("\"grace_seconds\" must be an integer from 0 to 31622400");
    if (grace)
        p->grace_seconds = json_integer_value(grace);
    json_t *rules = json_object_get(j, "rules");
    if (rules || !partial) {
        if (!rules)
            return FAIL("\"rules\" is required");
        struct rule r;
        int rc = parse_rule(rules, &r, 0, err, errlen);
        rule_clear(&r);
        if (rc < 0)
            return -1;
        if (replace_str(&p->rules, dump(rules)) < 0)
            return FAIL("out of memory");
    }
    json_t *scope = json_object_get(j, "scope");
    if (scope) {
        if (check_scope(scope, err, errlen) < 0)
            return -1;
        if (replace_str(&p->scope, dump(scope)) < 0)
            return FAIL("out of memory");
    } else if (!p->scope && replace_str(&p->scope, strdup("\"all\"")) < 0) {
        return FAIL("out of memory");
    }
    json_t *actions = json_object_get(j, "actions");
    if (actions) {
        if (replace_str(&p->actions, dump(actions)) < 0)
            return FAIL("out of memory");
    } else if (!p->actions && replace_str(&p->actions, strdup("[]")) < 0) {
        return FAIL("out of memory");
    }
    /* checked against the final wipe_enabled, whichever member changed */
    json_error_t je;
    json_t *acts = json_loads(p->actions, JSON_DECODE_ANY, &je);
    int rc = acts ? check_actions(acts, p->wipe_enabled, err, errlen) : FAIL("bad actions");
    json_decref(acts);
    return rc;
}

static json_t *time_or_null(int64_t t)
{
    if (t <= 0)
        return json_null();
    char buf[32];
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(buf);
}

json_t *compliance_policy_json(const struct store_compliance_policy *p)
{
    json_error_t je;
    json_t *j = json_object();
    if (!j)
        return NULL;
    json_t *rules = json_loads(p->rules ? p->rules : "null", JSON_DECODE_ANY, &je);
    json_t *scope = json_loads(p->scope ? p->scope : "\"all\"", JSON_DECODE_ANY, &je);
    json_t *actions = json_loads(p->actions ? p->actions : "[]", JSON_DECODE_ANY, &je);
    json_object_set_new(j, "id", json_integer(p->id));
    json_object_set_new(j, "name", json_string(p->name ? p->name : ""));
    json_object_set_new(j, "description", p->description ? json_string(p->description)
                                                         : json_null());
    json_object_set_new(j, "enabled", json_boolean(p->enabled));
    json_object_set_new(j, "rules", rules ? rules : json_null());
    json_object_set_new(j, "scope", scope ? scope : json_null());
    json_object_set_new(j, "grace_seconds", json_integer(p->grace_seconds));
    json_object_set_new(j, "actions", actions ? actions : json_array());
    json_object_set_new(j, "wipe_enabled", json_boolean(p->wipe_enabled));
    json_object_set_new(j, "devices_in_scope", json_integer(p->in_scope));
    json_object_set_new(j, "evaluated_at", time_or_null(p->evaluated_at));
    json_object_set_new(j, "created_at", time_or_null(p->created_at));
    json_object_set_new(j, "updated_at", time_or_null(p->updated_at));
    return j;
}

/* ---- compiled sets ------------------------------------------------------------------ */

struct cpolicy {
    int64_t id;
    char *name;
    struct rule root;
    json_t *scope;   /* "all", {"groups": […]} or {"devices": […]} */
    json_t *actions;
    int64_t grace;
    int wipe_enabled;
    unsigned needs;  /* bits: 1 << section, plus NEED_* */
};

#define NEED_ROAMING COMPLIANCE_NEED_ROAMING
#define NEED_CERTS COMPLIANCE_NEED_CERTS

struct slot {
    enum compliance_slot_kind kind;
    char *name;
};

struct compliance_set {
    struct cpolicy *p;
    size_t n;
    struct slot *slots;       /* apps and profiles share the item slots */
    size_t nitems, nrestr;    /* item slots are 0..nitems; restriction slots numbered apart */
    size_t cap;
    int64_t cert_days_max;
    unsigned needs;
};

static int slot_find(const struct compliance_set *set, enum compliance_slot_kind kind,
                     const char *name)
{
    int item = 0, restr = 0;
    for (size_t i = 0; i < set->nitems + set->nrestr; i++) {
        const struct slot *s = &set->slots[i];
        if (s->kind == kind && strcmp(s->name, name) == 0)
            return kind == CSLOT_RESTRICTION ? restr : item;
        if (s->kind == CSLOT_RESTRICTION)
            restr++;
        else
            item++;
    }
    return -1;
}

int compliance_set_slot(const struct compliance_set *set, enum compliance_slot_kind kind,
                        const char *name)
{
    return slot_find(set, kind, name);
}

static int slot_add(struct compliance_set *set, enum compliance_slot_kind kind, const char *name)
{
    int found = slot_find(set, kind, name);
    if (found >= 0)
        return found;
    size_t total = set->nitems + set->nrestr;
    if (total == set->cap) {
        size_t c = set->cap ? set->cap * 2 : 16;
        struct slot *p = realloc(set->slots, c * sizeof *p);
        if (!p)
            return -1;
        set->slots = p;
        set->cap = c;
    }
    if (!(set->slots[total].name = strdup(name)))
        return -1;
    set->slots[total].kind = kind;
    if (kind == CSLOT_RESTRICTION)
        return (int)set->nrestr++;
    return (int)set->nitems++;
}

/* Assigns slots and collects what the tree needs. -1 when out of memory. */
static int compile_rule(struct compliance_set *set, struct cpolicy *cp, struct rule *r)
{
    for (size_t i = 0; i < r->nkids; i++)
        if (compile_rule(set, cp, &r->kids[i]) < 0)
            return -1;
    enum compliance_slot_kind kind = r->kind == R_PROFILES      ? CSLOT_PROFILE
                                     : r->kind == R_RESTRICTION ? CSLOT_RESTRICTION
                                                                : CSLOT_APP;
    for (size_t i = 0; i < r->nids; i++)
        if ((r->slots[i] = slot_add(set, kind, r->ids[i])) < 0)
            return -1;
    switch (r->kind) {
    case R_PROFILES: cp->needs |= 1u << CSEC_PROFILES; break;
    case R_APPS_FORBIDDEN:
    case R_APPS_REQUIRED: cp->needs |= 1u << CSEC_APPS; break;
    case R_RESTRICTION: cp->needs |= 1u << CSEC_RESTRICTIONS; break;
    case R_ROAMING: cp->needs |= NEED_ROAMING; break;
    case R_CERTIFICATES:
        cp->needs |= (1u << CSEC_CERTIFICATES) | NEED_CERTS;
        if (r->num > set->cert_days_max)
            set->cert_days_max = r->num;
        break;
    default: break;
    }
    return 0;
}

static void cpolicy_clear(struct cpolicy *cp)
{
    free(cp->name);
    rule_clear(&cp->root);
    json_decref(cp->scope);
    json_decref(cp->actions);
}

void compliance_set_free(struct compliance_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->n; i++)
        cpolicy_clear(&set->p[i]);
    free(set->p);
    for (size_t i = 0; i < set->nitems + set->nrestr; i++)
        free(set->slots[i].name);
    free(set->slots);
    free(set);
}

/* Parses one stored policy into cp: 1 done, 0 skipped (logged), -1 OOM. */
static int compile_policy(struct compliance_set *set, const struct store_compliance_policy *p,
                          struct cpolicy *cp)
{
    char err[256] = "";
    json_error_t je;
    memset(cp, 0, sizeof *cp);
    json_t *rules = json_loads(p->rules ? p->rules : "", JSON_DECODE_ANY, &je);
    cp->scope = json_loads(p->scope ? p->scope : "", JSON_DECODE_ANY, &je);
    cp->actions = json_loads(p->actions ? p->actions : "[]", JSON_DECODE_ANY, &je);
    int ok = rules && cp->scope && json_is_array(cp->actions) &&
             parse_rule(rules, &cp->root, 0, err, sizeof err) == 0;
    json_decref(rules);
    if (!ok) {
        log_warn("compliance policy skipped", "policy=%lld reason=\"%s\"", (long long)p->id,
                 err[0] ? err : "stored JSON does not parse");
        cpolicy_clear(cp);
        return 0;
    }
    cp->id = p->id;
    cp->grace = p->grace_seconds;
    cp->wipe_enabled = p->wipe_enabled;
    if (!(cp->name = strdup(p->name ? p->name : "")) || compile_rule(set, cp, &cp->root) < 0) {
        cpolicy_clear(cp);
        return -1;
    }
    set->needs |= cp->needs;
    return 1;
}

struct compliance_set *compliance_set_new(const struct store_compliance_policy *p, size_t n)
{
    struct compliance_set *set = calloc(1, sizeof *set);
    if (!set || !(set->p = calloc(n ? n : 1, sizeof *set->p))) {
        free(set);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        int rc = compile_policy(set, &p[i], &set->p[set->n]);
        if (rc < 0) {
            compliance_set_free(set);
            return NULL;
        }
        set->n += (size_t)rc;
    }
    return set;
}

size_t compliance_set_count(const struct compliance_set *set)
{
    return set->n;
}

int compliance_facts_init(const struct compliance_set *set, struct compliance_facts *f)
{
    memset(f, 0, sizeof *f);
    f->supervised = f->passcode_present = f->passcode_compliant = f->encryption_caps = -1;
    f->is_roaming = f->data_roaming = -1;
    f->has = calloc(set->nitems ? set->nitems : 1, 1);
    f->restriction = calloc(set->nrestr ? set->nrestr : 1, sizeof *f->restriction);
    if (!f->has || !f->restriction) {
        free(f->has);
        free(f->restriction);
        return -1;
    }
    return 0;
}

void compliance_facts_clear(const struct compliance_set *set, struct compliance_facts *f)
{
    free(f->id);
    free(f->os_version);
    free(f->has);
    if (f->restriction)
        for (size_t i = 0; i < set->nrestr; i++)
            free(f->restriction[i]);
    free(f->restriction);
    memset(f, 0, sizeof *f);
}

/* ---- evaluation ------------------------------------------------------------------------ */

static void day_text(int64_t t, char *buf, size_t n)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, n, "%Y-%m-%d", &tm);
}

/* Unknown unless `at` is set and fresh. 1 when fresh. */
static int fresh(int64_t at, int64_t now, const char *what, struct compliance_result *out)
{
    if (at <= 0) {
        out->state = COMPLIANCE_UNKNOWN;
        snprintf(out->observed, sizeof out->observed, "no %s answer", what);
        return 0;
    }
    if (max_age_s > 0 && now - at > max_age_s) {
        char d[16];
        day_text(at, d, sizeof d);
        out->state = COMPLIANCE_UNKNOWN;
        snprintf(out->observed, sizeof out->observed, "%s answer is stale (%s)", what, d);
        return 0;
    }
    return 1;
}

static void set_result(struct compliance_result *out, int ok, const char *fmt, const char *a,
                       const char *b)
{
    out->state = ok ? COMPLIANCE_COMPLIANT : COMPLIANCE_NONCOMPLIANT;
    snprintf(out->observed, sizeof out->observed, fmt, a ? a : "", b ? b : "");
}

static const char *tf(int v)
{
    return v ? "true" : "false";
}

static void eval_ids(const struct rule *r, const struct compliance_facts *f, int want_present,
                     struct compliance_result *out)
{
    for (size_t i = 0; i < r->nids; i++) {
        int present = f->has[r->slots[i]] != 0;
        if (present != want_present) {
            set_result(out, 0, "%s %s", r->ids[i], present ? "installed" : "missing");
            return;
        }
    }
    set_result(out, 1, "%s%s", want_present ? "all installed" : "none installed", "");
}

static void eval_leaf(const struct rule *r, const struct compliance_facts *f, int64_t now,
                      struct compliance_result *out)
{
    char buf[64];
    switch (r->kind) {
    case R_PASSCODE:
        if (!fresh(f->security_at, now, "SecurityInfo", out))
            return;
        if (f->passcode_present < 0 || (r->flag && f->passcode_compliant < 0)) {
            out->state = COMPLIANCE_UNKNOWN;
            snprintf(out->observed, sizeof out->observed, "passcode state not reported");
        } else if (!f->passcode_present) {
            set_result(out, 0, "PasscodePresent=false%s%s", "", "");
        } else if (r->flag && !f->passcode_compliant) {
            set_result(out, 0, "PasscodeCompliant=false%s%s", "", "");
        } else {
            set_result(out, 1, "PasscodePresent=true%s%s", "", "");
        }
        return;
    case R_ENCRYPTION:
        if (!fresh(f->security_at, now, "SecurityInfo", out))
            return;
        if (f->encryption_caps < 0) {
            out->state = COMPLIANCE_UNKNOWN;
            snprintf(out->observed, sizeof out->observed, "HardwareEncryptionCaps not reported");
            return;
        }
        snprintf(buf, sizeof buf, "%d", f->encryption_caps);
        set_result(out, (f->encryption_caps & r->num) == r->num, "HardwareEncryptionCaps=%s%s",
                   buf, "");
        return;
    case R_OS_VERSION: {
        if (!fresh(f->device_at, now, "DeviceInformation", out))
            return;
        int lo = 0, hi = 0;
        if (!f->os_version || (r->text && compliance_version_cmp(f->os_version, r->text, &lo) < 0) ||
            (r->text2 && compliance_version_cmp(f->os_version, r->text2, &hi) < 0)) {
            out->state = COMPLIANCE_UNKNOWN;
            snprintf(out->observed, sizeof out->observed, "OSVersion %s",
                     f->os_version ? "unreadable" : "not reported");
            return;
        }
        set_result(out, lo >= 0 && hi <= 0, "%s%s", f->os_version, "");
        return;
    }
    case R_SUPERVISED:
        if (!fresh(f->device_at, now, "DeviceInformation", out))
            return;
        if (f->supervised < 0) {
            out->state = COMPLIANCE_UNKNOWN;
            snprintf(out->observed, sizeof out->observed, "IsSupervised not reported");
            return;
        }
        set_result(out, f->supervised == r->flag, "IsSupervised=%s%s", tf(f->supervised), "");
        return;
    case R_PROFILES:
        if (fresh(f->reported[CSEC_PROFILES], now, "ProfileList", out))
            eval_ids(r, f, 1, out);
        return;
    case R_APPS_FORBIDDEN:
    case R_APPS_REQUIRED:
        if (fresh(f->reported[CSEC_APPS], now, "InstalledApplicationList", out))
            eval_ids(r, f, r->kind == R_APPS_REQUIRED, out);
        return;
    case R_CERTIFICATES: {
        if (!fresh(f->reported[CSEC_CERTIFICATES], now, "CertificateList", out))
            return;
        int ok = f->cert_min == 0 || f->cert_min >= now + r->num * 86400;
        if (f->cert_min)
            day_text(f->cert_min, buf, sizeof buf);
        set_result(out, ok, f->cert_min ? "a certificate expires %s%s" : "no certificate expiring%s%s",
                   f->cert_min ? buf : "", "");
        return;
    }
    case R_CHECKED_IN:
        if (f->last_seen <= 0) {
            out->state = COMPLIANCE_UNKNOWN;
            snprintf(out->observed, sizeof out->observed, "never seen");
            return;
        }
        day_text(f->last_seen, buf, sizeof buf);
        set_result(out, now - f->last_seen <= r->num * 86400, "last seen %s%s", buf, "");
        return;
    case R_ROAMING:
        if (!fresh(f->device_at, now, "DeviceInformation", out))
            return;
        if (f->is_roaming > 0 && !r->flag)
            set_result(out, 0, "IsRoaming=true%s%s", "", "");
        else if (f->data_roaming > 0 && !r->flag2)
            set_result(out, 0, "DataRoamingEnabled=true%s%s", "", "");
        else
            set_result(out, 1, "IsRoaming=%s DataRoamingEnabled=%s",
                       f->is_roaming < 0 ? "n/a" : tf(f->is_roaming),
                       f->data_roaming < 0 ? "n/a" : tf(f->data_roaming));
        return;
    case R_RESTRICTION: {
        if (!fresh(f->reported[CSEC_RESTRICTIONS], now, "Restrictions", out))
            return;
        const char *v = f->restriction[r->slots[0]];
        out->state = v && strcmp(v, r->text) == 0 ? COMPLIANCE_COMPLIANT : COMPLIANCE_NONCOMPLIANT;
        snprintf(out->observed, sizeof out->observed, "%s=%s", r->ids[0], v ? v : "(not set)");
        return;
    }
    default:
        return;
    }
}

/* Three-valued all/any: all fails on the first failing child, else is
 * unknown when a child is; any holds on the first holding child, else is
 * unknown when a child is, else fails (reporting its first child). */
static void eval_rule(const struct rule *r, const struct compliance_facts *f, int64_t now,
                      struct compliance_result *out)
{
    out->state = COMPLIANCE_COMPLIANT;
    out->rule[0] = out->observed[0] = '\0';
    if (r->kind != R_ALL && r->kind != R_ANY) {
        eval_leaf(r, f, now, out);
        if (out->state != COMPLIANCE_COMPLIANT)
            snprintf(out->rule, sizeof out->rule, "%s", r->label);
        return;
    }
    int want = r->kind == R_ALL ? COMPLIANCE_NONCOMPLIANT : COMPLIANCE_COMPLIANT;
    struct compliance_result first_unknown = {0}, first_other = {0}, kid;
    int have_unknown = 0, have_other = 0;
    for (size_t i = 0; i < r->nkids; i++) {
        eval_rule(&r->kids[i], f, now, &kid);
        if ((int)kid.state == want) {
            *out = kid;
            return;
        }
        if (kid.state == COMPLIANCE_UNKNOWN && !have_unknown) {
            first_unknown = kid;
            have_unknown = 1;
        } else if (kid.state != COMPLIANCE_UNKNOWN && !have_other) {
            first_other = kid;
            have_other = 1;
        }
    }
    if (have_unknown)
        *out = first_unknown;
    else
        *out = first_other;
    if (out->state == COMPLIANCE_COMPLIANT)
        out->rule[0] = '\0';
    else if (r->kind == R_ANY && !have_unknown) {
        char inner[sizeof out->rule];
        snprintf(inner, sizeof inner, "%s", out->rule);
        snprintf(out->rule, sizeof out->rule, "%.40s (none of %zu held; first: %.60s)", r->label,
                 r->nkids, inner);
    }
}

void compliance_eval(const struct compliance_set *set, size_t i, const struct compliance_facts *f,
                     int64_t now, struct compliance_result *out)
{
    eval_rule(&set->p[i].root, f, now, out);
}

/* ---- accessors for compliance.c ----------------------------------------------------------- */

const struct compliance_policy_view *compliance_set_policy(const struct compliance_set *set,
                                                           size_t i,
                                                           struct compliance_policy_view *v)
{
    const struct cpolicy *cp = &set->p[i];
    v->id = cp->id;
    v->name = cp->name;
    v->scope = cp->scope;
    v->actions = cp->actions;
    v->grace = cp->grace;
    v->wipe_enabled = cp->wipe_enabled;
    return v;
}

unsigned compliance_set_needs(const struct compliance_set *set, int64_t *cert_days_max)
{
    *cert_days_max = set->cert_days_max;
    return set->needs;
}

const char *compliance_set_slot_name(const struct compliance_set *set, size_t i,
                                     enum compliance_slot_kind *kind, int *slot)
{
    if (i >= set->nitems + set->nrestr)
        return NULL;
    *kind = set->slots[i].kind;
    *slot = slot_find(set, set->slots[i].kind, set->slots[i].name);
    return set->slots[i].name;
}
