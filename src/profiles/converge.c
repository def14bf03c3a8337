/* converge.c: the convergence service behind converge.h: group rules, the
 * pure desired-against-installed diff (converge_plan), and converge_run,
 * which loads what the diff needs, queues the commands it decides (one
 * shared signed command per plain profile, one encrypted command per device
 * for a profile holding secrets) and records each device's state. Also the
 * result handlers for ProfileList, InstallProfile and RemoveProfile. */
#include "profiles/converge.h"

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/inventory.h"
#include "core/queue.h"
#include "pki/pki.h"
#include "plist/pl.h"
#include "profiles/profile.h"
#include "store/sql.h"
#include "util/config.h"
#include "util/log.h"

/* Loaded at start-up, read-only while serving. */
static struct profile_signer *owned_signer;
static const struct profile_signer *signer;

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

static int rules_match(const struct rules *r, const struct store_pdevice *d)
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

/* ---- the diff ------------------------------------------------------------------------ */

struct plan_out {
    struct converge_action *a;
    size_t n, cap;
    size_t waiting;
};

static int emit(struct plan_out *o, enum converge_op op, size_t device, size_t profile,
                size_t state)
{
    if (o->n == o->cap) {
        size_t c = o->cap ? o->cap * 2 : 64;
        void *p = realloc(o->a, c * sizeof *o->a);
        if (!p)
            return -1;
        o->a = p;
        o->cap = c;
    }
    o->a[o->n++] = (struct converge_action){op, device, profile, state};
    return 0;
}

static int same(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

static int cmd_failed(const struct store_pstate *st)
{
    return st->cmd_active == 0 &&
           (same(st->cmd_status, "Error") || same(st->cmd_status, "CommandFormatError"));
}

/* A desired profile p on device d (st: its state or NULL). */
static int decide_desired(const struct converge_input *in, struct plan_out *o, size_t d,
                          size_t p, const struct store_pstate *st, size_t si)
{
    const struct converge_profile *pr = &in->profiles[p];
    const struct store_pdevice *dev = &in->devices[d];
    if (pr->supervised_only && dev->supervised != 1) {
        if (st && same(st->state, "not_applicable") && st->desired_version == pr->version)
            return 0;
        return emit(o, CONVERGE_NA, d, p, si);
    }
    if (st && same(st->installed_uuid, pr->payload_uuid)) {
        if (same(st->state, "installed") && st->desired_version == pr->version && !st->action)
            return 0;
        if (st->cmd_active == 1 && same(st->action, "install")) {
            o->waiting++;
            return 0;
        }
        return emit(o, CONVERGE_INSTALLED, d, p, si);
    }
    if (st && same(st->action, "install") && st->desired_version == pr->version) {
        if (st->cmd_active == 1) {
            o->waiting++;
            return 0;
        }
        if (cmd_failed(st)) {
            if (same(st->state, "error"))
                return 0;
            return emit(o, CONVERGE_ERROR, d, p, si);
        }
    }
    if (st && same(st->state, "error") && st->desired_version == pr->version && !st->action)
        return 0; /* failed before (e.g. no identity to encrypt to): wait for a new version */
    return emit(o, CONVERGE_INSTALL, d, p, si);
}

/* A state row whose profile the device should no longer have. */
static int decide_unwanted(struct plan_out *o, size_t d, const struct store_pstate *st, size_t si)
{
    if (same(st->action, "remove")) {
        if (st->cmd_active == 1) {
            o->waiting++;
            return 0;
        }
        if (cmd_failed(st))
            return same(st->state, "error") ? 0 : emit(o, CONVERGE_ERROR, d, SIZE_MAX, si);
    }
    int install_waiting = same(st->action, "install") && st->cmd_active == 1;
    if (!st->installed_uuid && !install_waiting)
        return emit(o, CONVERGE_FORGET, d, SIZE_MAX, si);
    return emit(o, CONVERGE_REMOVE, d, SIZE_MAX, si);
}

static int cmp_str(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "");
}

static long find_profile(const struct converge_input *in, const char *identifier)
{
    size_t lo = 0, hi = in->nprofiles;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = cmp_str(in->profiles[mid].identifier, identifier);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static long find_group(const struct converge_input *in, const char *name)
{
    size_t lo = 0, hi = in->ngroups;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = cmp_str(in->groups[mid].name, name);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* First index in [0, n) of rows (stride size, id at offset) with id >= key. */
static size_t lower_bound(const void *rows, size_t n, size_t size, size_t offset, const char *key)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const char *id = *(const char *const *)((const char *)rows + mid * size + offset);
        if (cmp_str(id, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void mark_group(const struct converge_group *g, unsigned char *desired)
{
    for (size_t k = 0; k < g->nprofiles; k++)
        desired[g->profiles[k]] = 1;
}

int converge_plan(const struct converge_input *in, struct converge_action **out, size_t *n,
                  size_t *waiting)
{
    struct plan_out o = {0};
    unsigned char *desired = calloc(in->nprofiles + 1, 1);
    if (!desired)
        return -1;
    size_t si = 0, mi = 0;
    int rc = 0;
    for (size_t d = 0; d < in->ndevices && rc == 0; d++) {
        const struct store_pdevice *dev = &in->devices[d];
        memset(desired, 0, in->nprofiles);
        for (size_t g = 0; g < in->ngroups; g++)
            if (in->groups[g].rules && rules_match(in->groups[g].rules, dev))
                mark_group(&in->groups[g], desired);
        /* members and states are sorted like devices: walk them along */
        if (mi < in->nmembers && cmp_str(in->members[mi].b, dev->id) < 0)
            mi = lower_bound(in->members, in->nmembers, sizeof *in->members,
                             offsetof(struct store_pair, b), dev->id);
        for (; mi < in->nmembers && cmp_str(in->members[mi].b, dev->id) == 0; mi++) {
            long g = find_group(in, in->members[mi].a);
            if (g >= 0)
                mark_group(&in->groups[g], desired);
        }
        if (si < in->nstates && cmp_str(in->states[si].enrollment_id, dev->id) < 0)
            si = lower_bound(in->states, in->nstates, sizeof *in->states,
                             offsetof(struct store_pstate, enrollment_id), dev->id);
        size_t s0 = si;
        while (si < in->nstates && cmp_str(in->states[si].enrollment_id, dev->id) == 0)
            si++;
        /* merge walk: profiles and this device's states are both by identifier */
        size_t p = 0, s = s0;
        while (rc == 0 && (p < in->nprofiles || s < si)) {
            int c = p >= in->nprofiles ? 1
                    : s >= si          ? -1
                                       : cmp_str(in->profiles[p].identifier, in->states[s].identifier);
            if (c < 0) {
                if (desired[p])
                    rc = decide_desired(in, &o, d, p, NULL, SIZE_MAX);
                p++;
            } else if (c == 0) {
                if (desired[p])
                    rc = decide_desired(in, &o, d, p, &in->states[s], s);
                else
                    rc = decide_unwanted(&o, d, &in->states[s], s);
                p++;
                s++;
            } else {
                rc = decide_unwanted(&o, d, &in->states[s], s);
                s++;
            }
        }
    }
    free(desired);
    if (rc) {
        free(o.a);
        return -1;
    }
    *out = o.a;
    *n = o.n;
    if (waiting)
        *waiting = o.waiting;
    return 0;
}

/* ---- loading ------------------------------------------------------------------------ */

struct loaded {
    struct store_profile *prof;
    size_t nprof;
    struct converge_profile *cp;
    struct store_group *grp;
    size_t ngrp;
    struct converge_group *cg;
    struct store_pair *assign, *members;
    size_t nassign, nmembers;
    struct store_pdevice *dev;
    size_t ndev;
    struct store_pstate *st;
    size_t nst;
};

static void loaded_free(struct loaded *l)
{
    for (size_t i = 0; l->cg && i < l->ngrp; i++) {
        converge_rules_free(l->cg[i].rules);
        free(l->cg[i].profiles);
    }
    free(l->cg);
    free(l->cp);
    store_profiles_free(l->prof, l->nprof);
    store_groups_free(l->grp, l->ngrp);
    store_pairs_free(l->assign, l->nassign);
    store_pairs_free(l->members, l->nmembers);
    store_pdevices_free(l->dev, l->ndev);
    store_pstates_free(l->st, l->nst);
}

static int by_profile(const void *a, const void *b)
{
    return cmp_str(((const struct store_profile *)a)->identifier,
                   ((const struct store_profile *)b)->identifier);
}
static int by_group(const void *a, const void *b)
{
    return cmp_str(((const struct store_group *)a)->name, ((const struct store_group *)b)->name);
}
static int by_device(const void *a, const void *b)
{
    return cmp_str(((const struct store_pdevice *)a)->id, ((const struct store_pdevice *)b)->id);
}
static int by_member_device(const void *a, const void *b)
{
    return cmp_str(((const struct store_pair *)a)->b, ((const struct store_pair *)b)->b);
}
static int by_state(const void *a, const void *b)
{
    const struct store_pstate *x = a, *y = b;
    int c = cmp_str(x->enrollment_id, y->enrollment_id);
    return c ? c : cmp_str(x->identifier, y->identifier);
}

static int load(struct store *s, const char *only, struct loaded *l)
{
    int rc = store_profile_list(s, &l->prof, &l->nprof);
    if (rc == STORE_OK)
        rc = store_group_list(s, &l->grp, &l->ngrp);
    if (rc == STORE_OK)
        rc = store_profiles_assignments(s, &l->assign, &l->nassign);
    if (rc == STORE_OK)
        rc = store_profiles_members(s, &l->members, &l->nmembers);
    if (rc == STORE_OK)
        rc = store_profiles_devices(s, only, &l->dev, &l->ndev);
    if (rc == STORE_OK)
        rc = store_profiles_states(s, only, NULL, &l->st, &l->nst);
    if (rc != STORE_OK)
        return rc;
    qsort(l->prof, l->nprof, sizeof *l->prof, by_profile);
    qsort(l->grp, l->ngrp, sizeof *l->grp, by_group);
    qsort(l->dev, l->ndev, sizeof *l->dev, by_device);
    qsort(l->members, l->nmembers, sizeof *l->members, by_member_device);
    qsort(l->st, l->nst, sizeof *l->st, by_state);
    l->cp = calloc(l->nprof + 1, sizeof *l->cp);
    l->cg = calloc(l->ngrp + 1, sizeof *l->cg);
    if (!l->cp || !l->cg)
        return sql_out_of_memory("converge.load");
    for (size_t i = 0; i < l->nprof; i++)
        l->cp[i] = (struct converge_profile){l->prof[i].identifier, l->prof[i].version,
                                             l->prof[i].payload_uuid, l->prof[i].supervised_only,
                                             l->prof[i].has_secrets};
    for (size_t i = 0; i < l->ngrp; i++) {
        l->cg[i].name = l->grp[i].name;
        if (l->grp[i].rules) {
            char err[256];
            l->cg[i].rules = converge_rules_parse(l->grp[i].rules, err, sizeof err);
            if (!l->cg[i].rules)
                log_warn("group rules ignored", "group=\"%s\" err=\"%s\"", l->grp[i].name, err);
        }
        l->cg[i].profiles = calloc(l->grp[i].profiles + 1, sizeof *l->cg[i].profiles);
        if (!l->cg[i].profiles)
            return sql_out_of_memory("converge.load");
    }
    struct converge_input tmp = {.profiles = l->cp, .nprofiles = l->nprof, .groups = l->cg,
                                 .ngroups = l->ngrp};
    for (size_t i = 0; i < l->nassign; i++) {
        long g = find_group(&tmp, l->assign[i].a), p = find_profile(&tmp, l->assign[i].b);
        if (g < 0 || p < 0 || l->cg[g].nprofiles >= (size_t)l->grp[g].profiles)
            continue;
        l->cg[g].profiles[l->cg[g].nprofiles++] = (size_t)p;
    }
    return STORE_OK;
}

/* ---- carrying out the plan ---------------------------------------------------------- */

static int put_state(struct store *s, const char *id, const char *identifier, int64_t desired,
                     const struct store_pstate *old, const char *state, const char *action,
                     const char *cmd, const char *detail, int64_t installed_version, int64_t now)
{
    struct store_pstate p = {
        .enrollment_id = (char *)id,
        .identifier = (char *)identifier,
        .desired_version = desired,
        .installed_uuid = old ? old->installed_uuid : NULL,
        .installed_version = installed_version ? installed_version
                             : old               ? old->installed_version
                                                 : 0,
        .state = (char *)state,
        .action = (char *)action,
        .command_uuid = (char *)cmd,
        .detail = (char *)detail,
    };
    return store_profiles_state_put(s, &p, now);
}

static plist_t new_command(const char *type)
{
    plist_t c = plist_new_dict();
    plist_t inner = plist_new_dict();
    plist_dict_set_item(inner, "RequestType", plist_new_string(type));
    plist_dict_set_item(c, "Command", inner);
    const char *why = NULL;
    queue_command_prepare(c, &why);
    return c;
}

/* Queues cmd for ids; records each device that took it. */
static int enqueue(struct store *s, plist_t cmd, const char **ids, size_t n, int64_t now,
                   const char *identifier, int64_t version, const struct store_pstate *const *olds,
                   const char *action, struct converge_stats *st)
{
    int *per_id = calloc(n + 1, sizeof *per_id);
    if (!per_id)
        return sql_out_of_memory("converge.enqueue");
    struct queue_enqueued out;
    int rc = queue_enqueue(s, cmd, ids, n, now, &out, per_id);
    for (size_t i = 0; rc == STORE_OK && i < n; i++) {
        if (per_id[i] != STORE_OK) {
            log_warn("profile command not queued", "id=\"%s\" profile=\"%s\" rc=%d", ids[i],
                     identifier, per_id[i]);
            continue;
        }
        rc = put_state(s, ids[i], identifier, version, olds[i],
                       strcmp(action, "install") == 0 ? "installing" : "removing", action,
                       out.uuid, NULL, 0, now);
        if (strcmp(action, "install") == 0)
            st->installs++;
        else
            st->removes++;
    }
    if (rc == STORE_OK)
        st->commands++;
    free(per_id);
    return rc;
}

static plist_t install_command(const uint8_t *signed_der, size_t len)
{
    plist_t cmd = new_command("InstallProfile");
    plist_dict_set_item(plist_dict_get_item(cmd, "Command"), "Payload",
                        plist_new_data((const char *)signed_der, len));
    return cmd;
}

/* The device's copy of a profile holding secrets: encrypted to its identity. */
static int install_encrypted(struct store *s, plist_t profile, const char *id, int64_t version,
                             const char *identifier, const struct store_pstate *old, int64_t now,
                             struct converge_stats *st)
{
    uint8_t *der = NULL;
    size_t len = 0;
    int rc = store_profiles_identity(s, id, &der, &len);
    X509 *cert = rc == STORE_OK ? pki_cert_from_der(der, len) : NULL;
    free(der);
    if (rc != STORE_OK && rc != STORE_NOTFOUND)
        return rc;
    if (!cert) {
        log_warn("profile not sent: no identity certificate to encrypt to",
                 "id=\"%s\" profile=\"%s\"", id, identifier);
        return put_state(s, id, identifier, version, old, "error", NULL,
                         NULL, "no identity certificate to encrypt to", 0, now);
    }
    plist_t copy = plist_copy(profile);
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    int ok = profile_encrypt(copy, cert) == 0 && profile_sign(signer, copy, &sig, &sig_len) == 0;
    X509_free(cert);
    plist_free(copy);
    if (!ok) {
        free(sig);
        return put_state(s, id, identifier, version, old, "error", NULL, NULL,
                         "cannot encrypt or sign", 0, now);
    }
    plist_t cmd = install_command(sig, sig_len);
    free(sig);
    const char *ids[] = {id};
    const struct store_pstate *olds[] = {old};
    rc = enqueue(s, cmd, ids, 1, now, identifier, version, olds, "install", st);
    plist_free(cmd);
    return rc;
}

/* Every INSTALL of profile p: one shared signed command, or one per device. */
static int run_installs(struct store *s, const struct loaded *l, const struct converge_action *a,
                        size_t n, size_t p, int64_t now, struct converge_stats *st)
{
    const struct converge_profile *pr = &l->cp[p];
    const char **ids = calloc(n + 1, sizeof *ids);
    const struct store_pstate **olds = calloc(n + 1, sizeof *olds);
    size_t k = 0;
    if (!ids || !olds) {
        free(ids);
        free(olds);
        return sql_out_of_memory("converge.install");
    }
    for (size_t i = 0; i < n; i++)
        if (a[i].op == CONVERGE_INSTALL && a[i].profile == p) {
            ids[k] = l->dev[a[i].device].id;
            olds[k++] = a[i].state == SIZE_MAX ? NULL : &l->st[a[i].state];
        }
    int rc = STORE_OK;
    uint8_t *content = NULL;
    size_t clen = 0;
    struct store_profile *ver = NULL;
    plist_t profile = NULL;
    if (k) {
        rc = store_profile_get(s, pr->identifier, pr->version, &ver, &content, &clen);
        const char *why = NULL;
        profile = rc == STORE_OK ? pl_parse_dict(content, clen, &why) : NULL;
        if (rc == STORE_OK && !profile)
            rc = STORE_ERR;
    }
    if (k && rc == STORE_OK && !signer) {
        log_error("profiles not sent: no profile-signing identity", "profile=\"%s\"",
                  pr->identifier);
        for (size_t i = 0; rc == STORE_OK && i < k; i++)
            rc = put_state(s, ids[i], pr->identifier, pr->version, olds[i], "error", NULL, NULL,
                           "no profile-signing identity", 0, now);
        k = 0;
    }
    if (k && rc == STORE_OK && pr->has_secrets) {
        for (size_t i = 0; rc == STORE_OK && i < k; i++)
            rc = install_encrypted(s, profile, ids[i], pr->version, pr->identifier, olds[i], now,
                                   st);
    } else if (k && rc == STORE_OK) {
        uint8_t *sig = NULL;
        size_t sig_len = 0;
        if (profile_sign(signer, profile, &sig, &sig_len) != 0) {
            rc = STORE_ERR;
        } else {
            plist_t cmd = install_command(sig, sig_len);
            rc = enqueue(s, cmd, ids, k, now, pr->identifier, pr->version, olds, "install", st);
            plist_free(cmd);
        }
        free(sig);
    }
    plist_free(profile);
    free(content);
    store_profile_free(ver);
    free(ids);
    free(olds);
    return rc;
}

/* Every REMOVE of one identifier (the first action at index first). */
static int run_removes(struct store *s, const struct loaded *l, struct converge_action *a,
                       size_t n, size_t first, int64_t now, struct converge_stats *st)
{
    const char *identifier = l->st[a[first].state].identifier;
    const char **ids = calloc(n + 1, sizeof *ids);
    const struct store_pstate **olds = calloc(n + 1, sizeof *olds);
    size_t k = 0;
    if (!ids || !olds) {
        free(ids);
        free(olds);
        return sql_out_of_memory("converge.remove");
    }
    for (size_t i = first; i < n; i++)
        if (a[i].op == CONVERGE_REMOVE && strcmp(l->st[a[i].state].identifier, identifier) == 0) {
            ids[k] = l->dev[a[i].device].id;
            olds[k++] = &l->st[a[i].state];
            a[i].op = CONVERGE_DONE;
        }
    plist_t cmd = new_command("RemoveProfile");
    plist_dict_set_item(plist_dict_get_item(cmd, "Command"), "Identifier",
                        plist_new_string(identifier));
    int rc = enqueue(s, cmd, ids, k, now, identifier, 0, olds, "remove", st);
    plist_free(cmd);
    free(ids);
    free(olds);
    return rc;
}

static int carry_out(struct store *s, const struct loaded *l, struct converge_action *a, size_t n,
                     int64_t now, struct converge_stats *st)
{
    int rc = STORE_OK;
    for (size_t i = 0; rc == STORE_OK && i < n; i++) {
        const char *id = l->dev[a[i].device].id;
        const struct store_pstate *old = a[i].state == SIZE_MAX ? NULL : &l->st[a[i].state];
        const struct converge_profile *pr = a[i].profile == SIZE_MAX ? NULL : &l->cp[a[i].profile];
        switch (a[i].op) {
        case CONVERGE_NA:
            rc = put_state(s, id, pr->identifier, pr->version, old, "not_applicable", NULL, NULL,
                           "supervised devices only", 0, now);
            st->not_applicable++;
            break;
        case CONVERGE_INSTALLED:
            rc = put_state(s, id, pr->identifier, pr->version, old, "installed", NULL, NULL, NULL,
                           pr->version, now);
            break;
        case CONVERGE_ERROR:
            rc = put_state(s, id, old->identifier, old->desired_version, old, "error", old->action,
                           old->command_uuid, old->cmd_status, 0, now);
            break;
        case CONVERGE_FORGET:
            rc = store_profiles_state_delete(s, id, old->identifier);
            break;
        default:
            break;
        }
    }
    /* Installs, one batch per profile. */
    unsigned char *seen = calloc(l->nprof + 1, 1);
    if (!seen)
        return sql_out_of_memory("converge.carry_out");
    for (size_t i = 0; rc == STORE_OK && i < n; i++)
        if (a[i].op == CONVERGE_INSTALL && !seen[a[i].profile]) {
            seen[a[i].profile] = 1;
            rc = run_installs(s, l, a, n, a[i].profile, now, st);
        }
    free(seen);
    for (size_t i = 0; rc == STORE_OK && i < n; i++)
        if (a[i].op == CONVERGE_REMOVE)
            rc = run_removes(s, l, a, n, i, now, st);
    return rc;
}

int converge_run(struct store *s, const char *only, int64_t now, struct converge_stats *st)
{
    struct converge_stats local;
    if (!st)
        st = &local;
    memset(st, 0, sizeof *st);
    struct loaded l = {0};
    int nested = 0;
    int rc = sql_atomic_begin(s, "converge.run", &nested);
    if (rc != STORE_OK)
        return rc;
    rc = load(s, only, &l);
    struct converge_action *a = NULL;
    size_t n = 0;
    if (rc == STORE_OK) {
        struct converge_input in = {l.cp, l.nprof, l.cg, l.ngrp, l.dev, l.ndev,
                                    l.members, l.nmembers, l.st, l.nst};
        if (converge_plan(&in, &a, &n, &st->waiting) != 0)
            rc = sql_out_of_memory("converge.plan");
        st->devices = l.ndev;
    }
    if (rc == STORE_OK)
        rc = carry_out(s, &l, a, n, now, st);
    free(a);
    loaded_free(&l);
    rc = sql_atomic_end(s, nested, rc, "converge.run");
    if (rc == STORE_OK && (st->installs || st->removes))
        log_info("profiles converging", "devices=%zu installs=%zu removes=%zu commands=%zu",
                 st->devices, st->installs, st->removes, st->commands);
    return rc;
}

void converge_job(struct store *s, void *arg, int64_t now)
{
    (void)arg;
    int rc = converge_run(s, NULL, now, NULL);
    if (rc != STORE_OK)
        log_warn("profile convergence failed", "rc=%d", rc);
}

/* ---- result handlers ------------------------------------------------------------------ */

static int on_profile_list(struct store *s, const char *id, plist_t command, plist_t report,
                           int64_t now)
{
    int rc = inventory_on_profile_list(s, id, command, report, now);
    if (rc != STORE_OK || !plist_dict_get_item(report, "ProfileList"))
        return rc;
    /* A ManagedOnly list still holds every managed profile, steward's included. */
    rc = store_profiles_sync_installed(s, id, now);
    if (rc == STORE_OK)
        rc = converge_run(s, id, now, NULL);
    return rc;
}

static int on_install(struct store *s, const char *id, plist_t command, plist_t report,
                      int64_t now)
{
    (void)command;
    const char *uuid = pl_str(report, "CommandUUID");
    return uuid ? store_profiles_ack_install(s, id, uuid, now) : STORE_OK;
}

static int on_remove(struct store *s, const char *id, plist_t command, plist_t report,
                     int64_t now)
{
    (void)command, (void)now;
    const char *uuid = pl_str(report, "CommandUUID");
    return uuid ? store_profiles_ack_remove(s, id, uuid) : STORE_OK;
}

const struct profile_signer *converge_signer(void)
{
    return signer;
}

void converge_set_signer(const struct profile_signer *sg)
{
    signer = sg;
}

int converge_init(const struct config *cfg)
{
    if (inventory_register("ProfileList", on_profile_list) != 0 ||
        inventory_register("InstallProfile", on_install) != 0 ||
        inventory_register("RemoveProfile", on_remove) != 0)
        return -1;
    char *err = NULL;
    owned_signer = profile_signer_load(cfg->tls_cert, cfg->tls_key, &err);
    if (!owned_signer) {
        log_error("no profile-signing identity: profiles cannot be sent", "err=\"%s\"",
                  err ? err : "?");
        free(err);
        return -1;
    }
    signer = owned_signer;
    return 0;
}

void converge_shutdown(void)
{
    signer = NULL;
    profile_signer_free(owned_signer);
    owned_signer = NULL;
}
