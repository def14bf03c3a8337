/* compliance.c: the store half of compliance.h: loads the facts a compiled
 * policy set needs (for one device or the whole fleet, a handful of indexed
 * scans joined in memory by enrollment id), evaluates each device in each
 * policy's scope, writes transitions to the sparse state table and history,
 * fires each policy's actions once per non-compliance episode after its
 * grace period (the state row is claimed by one conditional write before
 * anything fires, so evaluations racing on any node fire once), and runs
 * lost mode and the confirmed wipe. Rule parsing and evaluation are in
 * compliance_rules.c. */
#include "core/compliance.h"

#include <plist/plist.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/compliance_int.h"
#include "core/events.h"
#include "core/inventory.h"
#include "core/queue.h"
#include "store/sql.h"
#include "util/log.h"

static compliance_group_fn group_resolver;

void compliance_set_group_resolver(compliance_group_fn fn)
{
    group_resolver = fn;
}

/* ---- facts --------------------------------------------------------------------------- */

struct srow { /* an existing state row, copied */
    size_t dev;
    int64_t policy_id;
    char *state, *rule, *observed, *fired;
    int64_t since, evaluated_at, episode_since;
};

static void srow_clear(struct srow *r)
{
    free(r->state);
    free(r->rule);
    free(r->observed);
    free(r->fired);
    memset(r, 0, sizeof *r);
}

/* A state row into r (copies): -1 when out of memory. */
static int srow_copy(struct srow *r, const struct store_compliance_state *st)
{
    r->policy_id = st->policy_id;
    r->since = st->since;
    r->evaluated_at = st->evaluated_at;
    r->episode_since = st->episode_since;
    r->state = strdup(st->state);
    r->rule = st->rule ? strdup(st->rule) : NULL;
    r->observed = st->observed ? strdup(st->observed) : NULL;
    r->fired = st->fired ? strdup(st->fired) : NULL;
    return !r->state || (st->rule && !r->rule) || (st->observed && !r->observed) ||
                   (st->fired && !r->fired)
               ? -1
               : 0;
}

struct fleet {
    const struct compliance_set *set;
    struct compliance_facts *d;
    size_t n, cap;
    struct srow *rows;
    size_t nrows, rowcap;
    size_t hint; /* find_dev's, for the state scan */
    int oom;
};

static void fleet_free(struct fleet *fl)
{
    for (size_t i = 0; i < fl->n; i++)
        compliance_facts_clear(fl->set, &fl->d[i]);
    free(fl->d);
    for (size_t i = 0; i < fl->nrows; i++)
        srow_clear(&fl->rows[i]);
    free(fl->rows);
}

static int on_device(void *ctx, const struct store_compliance_device *d)
{
    struct fleet *fl = ctx;
    if (fl->n == fl->cap) {
        size_t c = fl->cap ? fl->cap * 2 : 64;
        struct compliance_facts *p = realloc(fl->d, c * sizeof *p);
        if (!p)
            return fl->oom = 1;
        fl->d = p;
        fl->cap = c;
    }
    struct compliance_facts *f = &fl->d[fl->n];
    if (compliance_facts_init(fl->set, f) < 0)
        return fl->oom = 1;
    fl->n++;
    f->id = strdup(d->id);
    f->os_version = d->os_version ? strdup(d->os_version) : NULL;
    if (!f->id || (d->os_version && !f->os_version))
        return fl->oom = 1;
    f->last_seen = d->last_seen_at;
    f->supervised = d->supervised;
    f->passcode_present = d->passcode_present;
    f->passcode_compliant = d->passcode_compliant;
    f->encryption_caps = d->encryption_caps;
    f->device_at = d->device_at;
    f->security_at = d->security_at;
    return 0;
}

static int cmp_facts(const void *a, const void *b)
{
    return strcmp(((const struct compliance_facts *)a)->id,
                  ((const struct compliance_facts *)b)->id);
}

/* The device with this id: a few steps from *hint first (the fact scans
 * return rows in id order, so the next row is usually the next device),
 * else a binary search. hint may be NULL. */
static struct compliance_facts *find_dev(struct fleet *fl, const char *id, size_t *hint)
{
    if (!id)
        return NULL;
    for (size_t k = hint ? *hint : fl->n, end = k + 4; k < fl->n && k < end; k++) {
        int c = strcmp(fl->d[k].id, id);
        if (c == 0) {
            *hint = k + 1;
            return &fl->d[k];
        }
        if (c > 0)
            break;
    }
    size_t lo = 0, hi = fl->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(fl->d[mid].id, id);
        if (c == 0) {
            if (hint)
                *hint = mid + 1;
            return &fl->d[mid];
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* The fact being loaded: which slot or section it fills. */
struct fact_ctx {
    struct fleet *fl;
    enum store_compliance_fact kind;
    int slot;
    int section;
    int roaming_flag; /* 0 IsRoaming, 1 DataRoamingEnabled */
    size_t hint;      /* where the last row's device was */
};

static int on_fact(void *ctx, const char *id, const char *text, int64_t num)
{
    struct fact_ctx *c = ctx;
    struct compliance_facts *f = find_dev(c->fl, id, &c->hint);
    if (!f)
        return 0; /* not an enrolled device channel */
    switch (c->kind) {
    case STORE_CFACT_APP: f->has[c->slot] = 1; break;
    case STORE_CFACT_PROFILE: f->has[c->slot] = num ? 2 : 1; break;
    case STORE_CFACT_RESTRICTION:
        free(f->restriction[c->slot]);
        if (text && !(f->restriction[c->slot] = strdup(text)))
            return c->fl->oom = 1;
        break;
    case STORE_CFACT_REPORTED: f->reported[c->section] = num; break;
    case STORE_CFACT_ROAMING: {
        int v = text && strcmp(text, "true") == 0;
        if (c->roaming_flag)
            f->data_roaming = v;
        else
            f->is_roaming = v;
        if (num > f->roaming_at)
            f->roaming_at = num;
        break;
    }
    case STORE_CFACT_CERT_EXPIRY: f->cert_min = num; break;
    }
    return 0;
}

static const char *const section_store_names[CSEC_N] = {
    [CSEC_PROFILES] = "profiles",
    [CSEC_CERTIFICATES] = "certificates",
    [CSEC_APPS] = "apps",
    [CSEC_RESTRICTIONS] = "restrictions",
};

static int scan(struct store *s, struct fleet *fl, struct fact_ctx *c, const char *key,
                int64_t below, const char *only_id)
{
    c->fl = fl;
    int rc = store_compliance_scan_facts(s, c->kind, key, below, only_id, on_fact, c);
    return fl->oom ? sql_out_of_memory("compliance.facts") : rc;
}

static int load_facts(struct store *s, struct fleet *fl, const char *only_id, int64_t now)
{
    int64_t cert_days = 0;
    unsigned needs = compliance_set_needs(fl->set, &cert_days);
    int rc = STORE_OK;
    for (int sec = 0; rc == STORE_OK && sec < CSEC_N; sec++) {
        if (!(needs & (1u << sec)))
            continue;
        struct fact_ctx c = {.kind = STORE_CFACT_REPORTED, .section = sec};
        rc = scan(s, fl, &c, section_store_names[sec], 0, only_id);
    }
    enum compliance_slot_kind kind;
    int slot;
    const char *name;
    for (size_t i = 0; rc == STORE_OK && (name = compliance_set_slot_name(fl->set, i, &kind, &slot));
         i++) {
        struct fact_ctx c = {.slot = slot};
        c.kind = kind == CSLOT_APP       ? STORE_CFACT_APP
                 : kind == CSLOT_PROFILE ? STORE_CFACT_PROFILE
                                         : STORE_CFACT_RESTRICTION;
        rc = scan(s, fl, &c, name, 0, only_id);
    }
    if (rc == STORE_OK && (needs & COMPLIANCE_NEED_ROAMING)) {
        struct fact_ctx c = {.kind = STORE_CFACT_ROAMING};
        rc = scan(s, fl, &c, "IsRoaming", 0, only_id);
        c.roaming_flag = 1;
        if (rc == STORE_OK)
            rc = scan(s, fl, &c, "DataRoamingEnabled", 0, only_id);
    }
    if (rc == STORE_OK && (needs & COMPLIANCE_NEED_CERTS)) {
        struct fact_ctx c = {.kind = STORE_CFACT_CERT_EXPIRY};
        rc = scan(s, fl, &c, NULL, now + cert_days * 86400 + 1, only_id);
    }
    return rc;
}

static int on_state(void *ctx, const struct store_compliance_state *st)
{
    struct fleet *fl = ctx;
    struct compliance_facts *f = find_dev(fl, st->enrollment_id, &fl->hint);
    if (!f)
        return 0;
    if (fl->nrows == fl->rowcap) {
        size_t c = fl->rowcap ? fl->rowcap * 2 : 64;
        struct srow *p = realloc(fl->rows, c * sizeof *p);
        if (!p)
            return fl->oom = 1;
        fl->rows = p;
        fl->rowcap = c;
    }
    struct srow *r = &fl->rows[fl->nrows++];
    memset(r, 0, sizeof *r);
    r->dev = (size_t)(f - fl->d);
    if (srow_copy(r, st) < 0)
        return fl->oom = 1;
    return 0;
}

static int cmp_rows(const void *a, const void *b)
{
    const struct srow *x = a, *y = b;
    if (x->dev != y->dev)
        return x->dev < y->dev ? -1 : 1;
    return x->policy_id < y->policy_id ? -1 : x->policy_id > y->policy_id;
}

/* 1 when base[0..n) is already in cmp's order (the scans' usual case). */
static int sorted(const void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
    const char *p = base;
    for (size_t i = 1; i < n; i++)
        if (cmp(p + (i - 1) * size, p + i * size) > 0)
            return 0;
    return 1;
}

/* ---- scope ----------------------------------------------------------------------------- */

struct scope {
    int all;
    char **ids; /* sorted, owned */
    size_t n;
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int scope_add(struct scope *sc, const char *id)
{
    char **p = realloc(sc->ids, (sc->n + 1) * sizeof *p);
    if (!p)
        return -1;
    sc->ids = p;
    if (!(sc->ids[sc->n] = strdup(id)))
        return -1;
    sc->n++;
    return 0;
}

static int scope_build(struct store *s, json_t *scope, const char *policy, struct scope *sc)
{
    memset(sc, 0, sizeof *sc);
    if (json_is_string(scope)) {
        sc->all = 1;
        return 0;
    }
    json_t *devs = json_object_get(scope, "devices"), *groups = json_object_get(scope, "groups");
    size_t i;
    json_t *v;
    json_array_foreach(devs, i, v)
        if (json_is_string(v) && scope_add(sc, json_string_value(v)) < 0)
            return sql_out_of_memory("compliance.scope");
    json_array_foreach(groups, i, v) {
        if (!group_resolver) {
            char q[160];
            log_warn("compliance group scope not resolved", "policy=%s reason=\"%s\"",
                     log_quote(q, sizeof q, policy), "no groups area wired");
            break;
        }
        char **ids = NULL;
        size_t n = 0;
        int rc = group_resolver(s, json_string_value(v), &ids, &n);
        for (size_t k = 0; rc == STORE_OK && k < n; k++)
            if (scope_add(sc, ids[k]) < 0)
                rc = sql_out_of_memory("compliance.scope");
        for (size_t k = 0; k < n; k++)
            free(ids[k]);
        free(ids);
        if (rc != STORE_OK && rc != STORE_NOTFOUND)
            return rc;
    }
    if (sc->n)
        qsort(sc->ids, sc->n, sizeof *sc->ids, cmp_str);
    return STORE_OK;
}

static int scope_has(const struct scope *sc, const char *id)
{
    if (sc->all)
        return 1;
    return sc->n && bsearch(&id, sc->ids, sc->n, sizeof *sc->ids, cmp_str) != NULL;
}

static void scope_free(struct scope *sc)
{
    for (size_t i = 0; i < sc->n; i++)
        free(sc->ids[i]);
    free(sc->ids);
}

/* ---- notices ------------------------------------------------------------------------------ */

/* Where notices go besides the log: webhooks (set once at start-up). */
static struct events *notice_events;

void compliance_set_events(struct events *ev)
{
    notice_events = ev;
}

/* The webhook event for a notice: "compliance.noncompliant", ".lost", ".wipe". */
static void notify_webhooks(const struct compliance_notice *n)
{
    char type[64];
    snprintf(type, sizeof type, "compliance.%s", n->event);
    if (!notice_events || !events_wanted(notice_events, type))
        return;
    json_t *policy = n->policy ? json_pack("{s:s,s:I}", "name", n->policy, "id",
                                           (json_int_t)n->policy_id)
                               : json_null();
    events_emit(notice_events, type,
                json_pack("{s:{s:s},s:o,s:s?,s:s?,s:s?}", "device", "id", n->device, "policy",
                          policy, "state", n->state, "rule", n->rule, "observed", n->observed));
}

void compliance_notify(const struct compliance_notice *n)
{
    char qd[160], qp[160], qr[200], qo[300];
    log_info("compliance notice", "event=%s device=%s policy=%s policy_id=%lld state=%s rule=%s "
             "observed=%s", n->event, log_quote(qd, sizeof qd, n->device),
             log_quote(qp, sizeof qp, n->policy ? n->policy : ""), (long long)n->policy_id,
             n->state ? n->state : "", log_quote(qr, sizeof qr, n->rule ? n->rule : ""),
             log_quote(qo, sizeof qo, n->observed ? n->observed : ""));
    notify_webhooks(n);
}

/* Notices wait for the commit of the outermost transaction (the device's
 * check-in when an inventory answer triggered the evaluation), so none
 * leaves for undone work and a retried exchange does not send one twice. */
struct notices {
    struct compliance_notice *v;
    char **strs;
    size_t n, nstrs;
};

static const char *keep_str(struct notices *ns, const char *s)
{
    if (!s)
        return NULL;
    char **p = realloc(ns->strs, (ns->nstrs + 1) * sizeof *p);
    if (!p)
        return NULL;
    ns->strs = p;
    char *copy = strdup(s);
    if (copy)
        ns->strs[ns->nstrs++] = copy;
    return copy;
}

static void notice_add(struct notices *ns, const struct compliance_notice *n)
{
    struct compliance_notice *p = realloc(ns->v, (ns->n + 1) * sizeof *p);
    if (!p)
        return;
    ns->v = p;
    struct compliance_notice *c = &ns->v[ns->n++];
    *c = *n;
    c->device = keep_str(ns, n->device);
    c->policy = keep_str(ns, n->policy);
    c->rule = keep_str(ns, n->rule);
    c->observed = keep_str(ns, n->observed);
}

static void notices_flush(struct notices *ns, int send)
{
    for (size_t i = 0; send && i < ns->n; i++)
        compliance_notify(&ns->v[i]);
    for (size_t i = 0; i < ns->nstrs; i++)
        free(ns->strs[i]);
    free(ns->strs);
    free(ns->v);
    memset(ns, 0, sizeof *ns);
}

static void notices_on_end(void *arg, int committed)
{
    struct notices *held = arg;
    notices_flush(held, committed);
    free(held);
}

/* Sends the notices when the transaction around this evaluation commits
 * (at once when there is none); drops them when ok is 0. ns is emptied. */
static void notices_after_commit(struct store *s, struct notices *ns, int ok)
{
    struct notices *held = ok && ns->n ? malloc(sizeof *held) : NULL;
    if (!held) {
        notices_flush(ns, ok); /* nothing to hold, or no memory: now rather than never */
        return;
    }
    *held = *ns;
    memset(ns, 0, sizeof *ns);
    (void)store_after_commit(s, notices_on_end, held); /* its own failure is logged */
}

/* ---- commands ------------------------------------------------------------------------------ */

/* Queues a command (Command dict cmd, taken) for one enrollment.
 * STORE_CONFLICT when the device is checked out, QUEUE_ALREADY_PENDING
 * when a destructive command of the type already waits for it. */
static int enqueue_one(struct store *s, const char *id, plist_t cmd, int64_t now, char uuid[128])
{
    plist_t root = plist_new_dict();
    plist_dict_set_item(root, "Command", cmd);
    const char *err = NULL;
    int rc = STORE_ERR;
    if (queue_command_prepare(root, &err) == 0) {
        struct queue_enqueued out;
        int per = STORE_OK;
        rc = queue_enqueue(s, root, &id, 1, now, &out, &per);
        if (rc == STORE_OK && per != STORE_OK)
            rc = per == QUEUE_CHECKED_OUT ? STORE_CONFLICT : per; /* or ALREADY_PENDING */
        if (rc == STORE_OK && uuid)
            snprintf(uuid, 128, "%s", out.uuid);
        if (rc == STORE_OK)
            queue_wake(&id, NULL, 1);
    }
    plist_free(root);
    return rc;
}

static plist_t command_new(const char *type)
{
    plist_t c = plist_new_dict();
    plist_dict_set_item(c, "RequestType", plist_new_string(type));
    return c;
}

static int queue_lock(struct store *s, const char *id, const char *message, const char *phone,
                      int64_t now, char uuid[128])
{
    plist_t c = command_new("DeviceLock");
    if (message && *message)
        plist_dict_set_item(c, "Message", plist_new_string(message));
    if (phone && *phone)
        plist_dict_set_item(c, "PhoneNumber", plist_new_string(phone));
    return enqueue_one(s, id, c, now, uuid);
}

static int queue_remove(struct store *s, const char *id, const char *type, const char *ident,
                        int64_t now)
{
    plist_t c = command_new(type);
    plist_dict_set_item(c, "Identifier", plist_new_string(ident));
    return enqueue_one(s, id, c, now, NULL);
}

/* 1 when the identifier is in the json list (or the list is NULL = all). */
static int listed(json_t *list, const char *ident)
{
    if (!list)
        return 1;
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
        if (json_is_string(v) && strcmp(json_string_value(v), ident) == 0)
            return 1;
    return 0;
}

/* Appends ", ident" to a detail buffer. */
static void detail_add(char *buf, size_t n, const char *ident)
{
    size_t l = strlen(buf);
    if (l + 4 < n)
        snprintf(buf + l, n - l, "%s%s", l ? ", " : "", ident);
}

/* RemoveProfile for the device's managed profiles (only those listed, when
 * a list is given), never the MDM enrollment profile itself. */
static int remove_profiles(struct store *s, const char *id, json_t *only, int64_t now,
                           size_t *count, char *detail, size_t dn)
{
    struct store_inv_table *t = NULL;
    int rc = store_inventory_rows_get(s, id, STORE_INV_PROFILES, 1000, &t);
    if (rc != STORE_OK)
        return rc;
    size_t nc = t->shape->ncols;
    for (size_t r = 0; rc == STORE_OK && r < t->nrows; r++) {
        char **row = &t->cells[r * nc];
        const char *ident = row[0], *managed = row[6], *types = row[10];
        if (!ident || !managed || strcmp(managed, "1") != 0 || !listed(only, ident))
            continue;
        if (types && strstr(types, "com.apple.mdm"))
            continue; /* removing it would unenroll the device */
        rc = queue_remove(s, id, "RemoveProfile", ident, now);
        if (rc == STORE_OK) {
            (*count)++;
            detail_add(detail, dn, ident);
        }
    }
    store_inv_table_free(t);
    return rc;
}

/* RemoveApplication for the device's managed apps (only those listed). */
static int remove_apps(struct store *s, const char *id, json_t *only, int64_t now, size_t *count,
                       char *detail, size_t dn)
{
    struct store_inv_table *t = NULL;
    int rc = store_inventory_rows_get(s, id, STORE_INV_MANAGED_APPS, 1000, &t);
    if (rc != STORE_OK)
        return rc;
    size_t nc = t->shape->ncols;
    for (size_t r = 0; rc == STORE_OK && r < t->nrows; r++) {
        const char *ident = t->cells[r * nc];
        if (!ident || !listed(only, ident))
            continue;
        rc = queue_remove(s, id, "RemoveApplication", ident, now);
        if (rc == STORE_OK) {
            (*count)++;
            detail_add(detail, dn, ident);
        }
    }
    store_inv_table_free(t);
    return rc;
}

/* ---- transitions and actions --------------------------------------------------------------- */

struct eval_ctx {
    struct store *s;
    int64_t now;
    int one_device; /* transitions logged at info for one device, debug for the fleet */
    struct notices notices;
    struct compliance_run *run;
};

static int history(struct store *s, const char *id, const struct compliance_policy_view *p,
                   const char *kind, const char *old_state, const char *new_state,
                   const char *rule, const char *observed, const char *action, const char *detail,
                   int64_t now)
{
    struct store_compliance_event e = {
        .at = now, .policy_id = p ? p->id : 0, .policy_name = p ? (char *)p->name : NULL,
        .kind = (char *)kind, .old_state = (char *)old_state, .new_state = (char *)new_state,
        .rule = (char *)rule, .observed = (char *)observed, .action = (char *)action,
        .detail = (char *)detail,
    };
    return store_compliance_history_add(s, id, &e);
}

/* Runs one action for a device; detail says what was done. */
static int run_action(struct eval_ctx *c, const char *id, const struct compliance_policy_view *p,
                      json_t *a, const struct compliance_result *res, char *detail, size_t dn)
{
    const char *type = json_string_value(json_object_get(a, "type"));
    struct store *s = c->s;
    int64_t now = c->now;
    char uuid[128] = "";
    size_t n = 0;
    int rc = STORE_OK;
    detail[0] = '\0';
    if (strcmp(type, "notify") == 0) {
        struct compliance_notice nt = {id, p->name, p->id, compliance_state_name(res->state),
                                       res->rule, res->observed, "noncompliant"};
        notice_add(&c->notices, &nt);
        snprintf(detail, dn, "notification sent");
    } else if (strcmp(type, "requery") == 0) {
        rc = inventory_refresh_device(s, id, now, &n);
        snprintf(detail, dn, "%zu inventory queries queued", n);
    } else if (strcmp(type, "push") == 0) {
        queue_wake(&id, NULL, 1); /* the push service, when APNs is configured */
        snprintf(detail, dn, "push requested");
    } else if (strcmp(type, "remove_profiles") == 0) {
        char list[200] = "";
        rc = remove_profiles(s, id, json_object_get(a, "identifiers"), now, &n, list, sizeof list);
        snprintf(detail, dn, n ? "RemoveProfile queued: %s" : "no listed managed profile installed%s",
                 list);
    } else if (strcmp(type, "remove_apps") == 0) {
        char list[200] = "";
        rc = remove_apps(s, id, json_object_get(a, "identifiers"), now, &n, list, sizeof list);
        snprintf(detail, dn, n ? "RemoveApplication queued: %s" : "no listed managed app installed%s",
                 list);
    } else if (strcmp(type, "lock") == 0) {
        rc = queue_lock(s, id, json_string_value(json_object_get(a, "message")),
                        json_string_value(json_object_get(a, "phone")), now, uuid);
        snprintf(detail, dn, "DeviceLock queued (%s)", uuid);
    } else if (strcmp(type, "wipe") == 0) {
        if (!p->wipe_enabled) {
            char q[160];
            log_warn("compliance wipe refused", "policy=%s reason=\"%s\"",
                     log_quote(q, sizeof q, p->name), "wipe_enabled is not set on the policy");
            snprintf(detail, dn, "refused: wipe_enabled is not set");
        } else {
            rc = enqueue_one(s, id, command_new("EraseDevice"), now, uuid);
            if (rc == STORE_OK)
                rc = store_compliance_device_wiped(s, id, now);
            snprintf(detail, dn, "EraseDevice queued (%s)", uuid);
        }
    }
    if (rc == STORE_CONFLICT) { /* checked out: nothing can be sent */
        snprintf(detail, dn, "not sent: the device is not enrolled");
        rc = STORE_OK;
    } else if (rc == QUEUE_ALREADY_PENDING) { /* a destructive command is never queued twice */
        snprintf(detail, dn, "not queued again: a %s already waits for the device",
                 strcmp(type, "wipe") == 0 ? "EraseDevice" : "DeviceLock");
        rc = STORE_OK;
    } else if (rc == STORE_OK && uuid[0]) { /* a DeviceLock or EraseDevice was queued */
        char ev[400];
        snprintf(ev, sizeof ev, "%s queued by compliance policy %s (command %s)",
                 strcmp(type, "wipe") == 0 ? "EraseDevice" : "DeviceLock", p->name, uuid);
        char q[160];
        log_warn("security_action", "by=compliance device=%s %s", log_quote(q, sizeof q, id), ev);
        rc = store_event_add(s, id, "security_action", ev, now);
    }
    return rc;
}

/* What one evaluation decides for a (device, policy) from the row it read:
 * the row to write and the actions due now (bits over the policy's actions
 * array, already entered in fired with the time). Writing the row is the
 * claim: only the evaluation whose write lands carries the decision out. */
struct decision {
    const char *old_state, *new_state, *rule, *observed;
    int changed, moved;
    int64_t since, episode;
    json_t *fired; /* owned */
    uint64_t due;
};

static int same_text(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Marks the actions due in the episode: 1 when any is. */
static int due_actions(const struct eval_ctx *c, const struct compliance_policy_view *p,
                       const struct compliance_result *res, struct decision *d)
{
    size_t i;
    json_t *a;
    json_array_foreach(p->actions, i, a) {
        const char *type = json_string_value(json_object_get(a, "type"));
        if (i >= 64 || !type || json_object_get(d->fired, type))
            continue;
        /* unknown data: only asking again makes sense, and at once */
        if (res->state == COMPLIANCE_UNKNOWN && strcmp(type, "requery") != 0)
            continue;
        int64_t after = json_integer_value(json_object_get(a, "after_seconds"));
        if (res->state == COMPLIANCE_NONCOMPLIANT && c->now < d->episode + p->grace + after)
            continue;
        if (json_object_set_new(d->fired, type, json_integer(c->now)) < 0)
            return -1;
        d->due |= (uint64_t)1 << i;
    }
    return d->due != 0;
}

/* Decides from the row read (NULL = compliant, no row): 1 with a row to
 * write, 0 when nothing changed, -1 when out of memory. d->fired is set
 * (or NULL) either way. */
static int decide(const struct eval_ctx *c, const struct compliance_policy_view *p,
                  const struct compliance_result *res, const struct srow *row,
                  struct decision *d)
{
    memset(d, 0, sizeof *d);
    d->new_state = compliance_state_name(res->state);
    d->old_state = row ? row->state : "compliant";
    if (!row && res->state == COMPLIANCE_COMPLIANT)
        return 0;
    d->rule = res->state == COMPLIANCE_COMPLIANT ? NULL : res->rule;
    d->observed = res->observed[0] ? res->observed : NULL;
    d->changed = !row || !same_text(row->state, d->new_state) || !same_text(row->rule, d->rule) ||
                 !same_text(row->observed, d->observed);
    d->moved = strcmp(d->old_state, d->new_state) != 0;
    /* Nothing new and nothing that could fire: the common case of a re-check. */
    if (!d->changed && (res->state == COMPLIANCE_COMPLIANT || json_array_size(p->actions) == 0))
        return 0;
    d->since = d->moved || !row ? c->now : row->since;
    d->episode = row ? row->episode_since : 0;
    json_error_t je;
    d->fired = row && row->fired ? json_loads(row->fired, 0, &je) : NULL;
    if (!d->fired)
        d->fired = json_object();
    if (!d->fired)
        return -1;
    if (res->state == COMPLIANCE_COMPLIANT) {
        if (d->episode || json_object_size(d->fired))
            d->changed = 1;
        d->episode = 0; /* the episode ends: actions may fire again next time */
        json_object_clear(d->fired);
    } else if (res->state == COMPLIANCE_NONCOMPLIANT && !d->episode) {
        d->episode = c->now;
        d->changed = 1;
    }
    if (res->state != COMPLIANCE_COMPLIANT) {
        int due = due_actions(c, p, res, d);
        if (due < 0)
            return -1;
        d->changed |= due;
    }
    return d->changed;
}

/* Writes the decided row over the one read: STORE_CONFLICT when another
 * evaluation (this node or another) changed it in between. */
static int claim(struct eval_ctx *c, const char *id, const struct compliance_policy_view *p,
                 const struct srow *row, const struct decision *d)
{
    char *fired_text = json_object_size(d->fired) ? json_dumps(d->fired, JSON_COMPACT) : NULL;
    if (json_object_size(d->fired) && !fired_text)
        return sql_out_of_memory("compliance.claim");
    struct store_compliance_state st = {
        .enrollment_id = id, .policy_id = p->id, .state = d->new_state, .rule = d->rule,
        .observed = d->observed, .since = d->since, .evaluated_at = c->now,
        .episode_since = d->episode, .fired = fired_text,
    };
    struct store_compliance_state old;
    if (row)
        old = (struct store_compliance_state){
            .enrollment_id = id, .policy_id = p->id, .state = row->state, .rule = row->rule,
            .observed = row->observed, .since = row->since, .evaluated_at = row->evaluated_at,
            .episode_since = row->episode_since, .fired = row->fired,
        };
    int rc = store_compliance_state_claim(c->s, row ? &old : NULL, &st);
    free(fired_text);
    return rc;
}

/* The claimed decision: the transition in the history, then each due action
 * run, logged and audited. */
static int carry_out(struct eval_ctx *c, const char *id, const struct compliance_policy_view *p,
                     const struct compliance_result *res, const struct decision *d)
{
    int rc = STORE_OK;
    if (d->moved) {
        c->run->transitions++;
        char qi[160], qp[160], qr[160], qo[300];
        log_msg(c->one_device ? LOG_INFO : LOG_DEBUG, "compliance transition",
                "device=%s policy=%s from=%s to=%s rule=%s observed=%s",
                log_quote(qi, sizeof qi, id), log_quote(qp, sizeof qp, p->name), d->old_state,
                d->new_state, log_quote(qr, sizeof qr, d->rule ? d->rule : ""),
                log_quote(qo, sizeof qo, d->observed ? d->observed : ""));
        rc = history(c->s, id, p, "transition", d->old_state, d->new_state, d->rule,
                     d->observed, NULL, NULL, c->now);
    }
    size_t i;
    json_t *a;
    json_array_foreach(p->actions, i, a) {
        if (rc != STORE_OK || i >= 64 || !(d->due & ((uint64_t)1 << i)))
            continue;
        const char *type = json_string_value(json_object_get(a, "type"));
        char detail[300];
        rc = run_action(c, id, p, a, res, detail, sizeof detail);
        if (rc != STORE_OK)
            break;
        c->run->actions++;
        char qi[160], qp[160];
        log_info("compliance action", "device=%s policy=%s action=%s detail=\"%s\"",
                 log_quote(qi, sizeof qi, id), log_quote(qp, sizeof qp, p->name), type, detail);
        rc = history(c->s, id, p, "action", NULL, NULL, res->rule, res->observed, type, detail,
                     c->now);
    }
    return rc;
}

struct reread {
    int64_t policy_id;
    struct srow *row;
    int found, oom;
};

static int on_reread(void *ctx, const struct store_compliance_state *st)
{
    struct reread *r = ctx;
    if (st->policy_id != r->policy_id)
        return 0;
    r->found = 1;
    if (srow_copy(r->row, st) < 0)
        r->oom = 1;
    return r->oom;
}

/* The row of (id, policy) as stored now, into *row (cleared first); *found
 * 0 when there is none. */
static int reread_row(struct store *s, const char *id, int64_t policy_id, struct srow *row,
                      int *found)
{
    srow_clear(row);
    struct reread r = {.policy_id = policy_id, .row = row};
    int rc = store_compliance_states_scan(s, id, on_reread, &r);
    *found = r.found;
    return r.oom ? sql_out_of_memory("compliance.reread") : rc;
}

/* Applies one result against the row read (NULL = compliant, no row). The
 * row is claimed before anything fires: when another evaluation changed it
 * since it was read, a fleet run leaves this (device, policy) to that one
 * (its facts were read before the other committed); one device's
 * evaluation, whose facts are the newest, reads the row again and decides
 * anew. Either way each action fires once per episode, whatever node runs
 * which path. */
static int apply(struct eval_ctx *c, const char *id, const struct compliance_policy_view *p,
                 const struct compliance_result *res, const struct srow *row)
{
    struct srow fresh = {0};
    int rc = STORE_OK;
    for (int attempt = 0;; attempt++) {
        struct decision d;
        int w = decide(c, p, res, row, &d);
        if (w > 0) {
            rc = claim(c, id, p, row, &d);
            if (rc == STORE_OK)
                rc = carry_out(c, id, p, res, &d);
        } else {
            rc = w < 0 ? sql_out_of_memory("compliance.apply") : STORE_OK;
        }
        json_decref(d.fired);
        if (rc != STORE_CONFLICT)
            break;
        if (!c->one_device || attempt == 3) {
            char qi[160], qp[160];
            log_debug("compliance state changed meanwhile", "device=%s policy=%s "
                      "reason=\"another evaluation decided it\"", log_quote(qi, sizeof qi, id),
                      log_quote(qp, sizeof qp, p->name));
            c->run->skipped++;
            rc = STORE_OK;
            break;
        }
        int found = 0;
        rc = reread_row(c->s, id, p->id, &fresh, &found);
        if (rc != STORE_OK)
            break;
        row = found ? &fresh : NULL;
    }
    srow_clear(&fresh);
    return rc;
}

static const struct srow *find_row(const struct fleet *fl, size_t first, size_t dev,
                                   int64_t policy_id)
{
    for (size_t r = first; r < fl->nrows && fl->rows[r].dev == dev; r++)
        if (fl->rows[r].policy_id == policy_id)
            return &fl->rows[r];
    return NULL;
}

/* Evaluates every loaded device against every policy and writes the results. */
static int evaluate_all(struct eval_ctx *c, struct fleet *fl, struct scope *scopes,
                        int64_t *in_scope)
{
    size_t np = compliance_set_count(fl->set);
    size_t r = 0;
    int rc = STORE_OK;
    for (size_t d = 0; rc == STORE_OK && d < fl->n; d++) {
        const struct compliance_facts *f = &fl->d[d];
        while (r < fl->nrows && fl->rows[r].dev < d)
            r++;
        for (size_t i = 0; rc == STORE_OK && i < np; i++) {
            struct compliance_policy_view pv;
            compliance_set_policy(fl->set, i, &pv);
            const struct srow *row = find_row(fl, r, d, pv.id);
            if (!scope_has(&scopes[i], f->id)) {
                if (row)
                    rc = store_compliance_state_delete(c->s, f->id, pv.id);
                continue;
            }
            in_scope[i]++;
            c->run->evaluated++;
            struct compliance_result res;
            compliance_eval(fl->set, i, f, c->now, &res);
            if (res.state == COMPLIANCE_NONCOMPLIANT)
                c->run->noncompliant++;
            else if (res.state == COMPLIANCE_UNKNOWN)
                c->run->unknown++;
            rc = apply(c, f->id, &pv, &res, row);
        }
    }
    return rc;
}

/* Loads, evaluates and writes: the fleet (only_id NULL) or one device. */
static int evaluate(struct store *s, const char *only_id, int64_t now, struct compliance_run *run)
{
    struct compliance_run local;
    if (!run)
        run = &local;
    memset(run, 0, sizeof *run);
    struct store_compliance_policy *pol = NULL;
    size_t npol = 0;
    int rc = store_compliance_policies_list(s, 1, &pol, &npol);
    if (rc != STORE_OK || npol == 0) {
        store_compliance_policies_free(pol, npol);
        return rc;
    }
    struct compliance_set *set = compliance_set_new(pol, npol);
    store_compliance_policies_free(pol, npol);
    if (!set)
        return sql_out_of_memory("compliance.evaluate");
    size_t np = compliance_set_count(set);
    run->policies = np;
    struct fleet fl = {.set = set};
    struct scope *scopes = calloc(np ? np : 1, sizeof *scopes);
    int64_t *in_scope = calloc(np ? np : 1, sizeof *in_scope);
    struct eval_ctx c = {.s = s, .now = now, .run = run, .one_device = only_id != NULL};
    if (!scopes || !in_scope)
        rc = sql_out_of_memory("compliance.evaluate");
    if (rc == STORE_OK)
        rc = store_compliance_scan_devices(s, only_id, on_device, &fl);
    if (rc == STORE_OK && !fl.oom) {
        if (!sorted(fl.d, fl.n, sizeof *fl.d, cmp_facts))
            qsort(fl.d, fl.n, sizeof *fl.d, cmp_facts);
        rc = load_facts(s, &fl, only_id, now);
    }
    if (rc == STORE_OK && !fl.oom)
        rc = store_compliance_states_scan(s, only_id, on_state, &fl);
    if (fl.oom)
        rc = sql_out_of_memory("compliance.evaluate");
    if (rc == STORE_OK && !sorted(fl.rows, fl.nrows, sizeof *fl.rows, cmp_rows))
        qsort(fl.rows, fl.nrows, sizeof *fl.rows, cmp_rows);
    for (size_t i = 0; rc == STORE_OK && i < np; i++) {
        struct compliance_policy_view pv;
        compliance_set_policy(set, i, &pv);
        rc = scope_build(s, pv.scope, pv.name, &scopes[i]);
    }
    run->devices = fl.n;
    int nested = 0;
    if (rc == STORE_OK && (rc = sql_atomic_begin(s, "compliance.evaluate", &nested)) == STORE_OK) {
        rc = evaluate_all(&c, &fl, scopes, in_scope);
        for (size_t i = 0; rc == STORE_OK && !only_id && i < np; i++) {
            struct compliance_policy_view pv;
            compliance_set_policy(set, i, &pv);
            rc = store_compliance_policy_evaluated(s, pv.id, in_scope[i], now);
        }
        if (rc == STORE_OK && only_id && fl.n)
            rc = store_compliance_device_evaluated(s, only_id, now);
        rc = sql_atomic_end(s, nested, rc, "compliance.evaluate");
    }
    notices_after_commit(s, &c.notices, rc == STORE_OK);
    for (size_t i = 0; scopes && i < np; i++)
        scope_free(&scopes[i]);
    free(scopes);
    free(in_scope);
    fleet_free(&fl);
    compliance_set_free(set);
    return rc;
}

int compliance_evaluate_fleet(struct store *s, int64_t now, struct compliance_run *run)
{
    return evaluate(s, NULL, now, run);
}

int compliance_evaluate_device(struct store *s, const char *id, int64_t now,
                               struct compliance_run *run)
{
    return evaluate(s, id, now, run);
}

void compliance_on_inventory(struct store *s, const char *id, const char *request_type,
                             int64_t now)
{
    /* A savepoint around the reads too: on PostgreSQL a failed statement
     * would otherwise abort the device's whole exchange. */
    int nested = 0;
    int rc = sql_atomic_begin(s, "compliance.on_inventory", &nested);
    if (rc == STORE_OK) {
        rc = compliance_evaluate_device(s, id, now, NULL);
        rc = sql_atomic_end(s, nested, rc, "compliance.on_inventory");
    }
    if (rc != STORE_OK) {
        char qi[160];
        log_warn("compliance evaluation failed", "device=%s after=%s rc=%d",
                 log_quote(qi, sizeof qi, id), request_type ? request_type : "?", rc);
    }
}

void compliance_job(struct store *s, void *arg, int64_t now)
{
    (void)arg;
    struct compliance_run run;
    int rc = compliance_evaluate_fleet(s, now, &run);
    if (rc != STORE_OK)
        log_warn("compliance evaluation failed", "rc=%d", rc);
    else if (run.policies)
        log_info("compliance evaluated", "devices=%zu policies=%zu noncompliant=%zu unknown=%zu "
                 "transitions=%zu actions=%zu", run.devices, run.policies, run.noncompliant,
                 run.unknown, run.transitions, run.actions);
}

/* ---- lost mode and wipe -------------------------------------------------------------------- */

static int enrolled(struct store *s, const char *id)
{
    struct store_enrollment *e = NULL;
    int rc = store_enrollment_get(s, id, &e);
    if (rc != STORE_OK)
        return rc;
    int ok = e->status == ENROLLMENT_ENROLLED;
    store_enrollment_free(e);
    return ok ? STORE_OK : STORE_CONFLICT;
}

/* Cancels the DeviceLock commands still waiting for the device (lost mode's
 * own lock, with its message and phone, takes their place). */
static int cancel_waiting_locks(struct store *s, const char *id, int64_t now)
{
    struct store_queue_item *it = NULL;
    size_t n = 0;
    int rc = store_queue_list(s, id, 1000, &it, &n);
    for (size_t i = 0; rc == STORE_OK && i < n; i++) {
        if (strcmp(it[i].request_type, "DeviceLock") != 0 || !it[i].status ||
            (strcmp(it[i].status, "Pending") != 0 && strcmp(it[i].status, "NotNow") != 0))
            continue;
        rc = store_queue_cancel(s, id, it[i].uuid, now);
        if (rc == STORE_NOTFOUND) /* delivered, its answer awaited: not waiting any more */
            rc = STORE_OK;
    }
    store_queue_items_free(it, n);
    return rc;
}

/* The audit of an operator's security action: "<what> by <who>" into ev
 * (the history's detail too), a warn line and the device's
 * security_action event. */
static int audit_operator(struct store *s, const char *id, const char *who, const char *what,
                          int64_t now, char *ev, size_t evn)
{
    char q[160];
    snprintf(ev, evn, "%s by %s", what, who && *who ? who : "?");
    log_warn("security_action", "device=%s %s", log_quote(q, sizeof q, id), ev);
    return store_event_add(s, id, "security_action", ev, now);
}

int compliance_device_lost(struct store *s, const char *id, const char *message,
                           const char *phone, const char *who, int64_t now,
                           struct compliance_lost_result *r)
{
    memset(r, 0, sizeof *r);
    int rc = store_begin(s);
    if (rc != STORE_OK)
        return rc;
    rc = enrolled(s, id);
    if (rc == STORE_OK)
        rc = queue_lock(s, id, message, phone, now, r->lock_uuid);
    if (rc == QUEUE_ALREADY_PENDING) { /* lost mode's lock replaces a waiting one */
        rc = cancel_waiting_locks(s, id, now);
        if (rc == STORE_OK)
            rc = queue_lock(s, id, message, phone, now, r->lock_uuid);
        if (rc == QUEUE_ALREADY_PENDING) { /* one was delivered and is being answered */
            r->lock_uuid[0] = '\0';
            rc = STORE_OK;
        }
    }
    char profiles[200] = "", apps[200] = "";
    if (rc == STORE_OK)
        rc = remove_profiles(s, id, NULL, now, &r->profiles_removed, profiles, sizeof profiles);
    if (rc == STORE_OK)
        rc = remove_apps(s, id, NULL, now, &r->apps_removed, apps, sizeof apps);
    if (rc == STORE_OK)
        rc = store_compliance_device_lost(s, id, message, phone, now);
    char detail[600], what[640], audited[700];
    snprintf(detail, sizeof detail, "DeviceLock %s; RemoveProfile: %s; RemoveApplication: %s",
             r->lock_uuid[0] ? r->lock_uuid : "already delivered, not queued again",
             profiles[0] ? profiles : "none", apps[0] ? apps : "none");
    snprintf(what, sizeof what, "lost mode (%s)", detail);
    if (rc == STORE_OK)
        rc = audit_operator(s, id, who, what, now, audited, sizeof audited);
    if (rc == STORE_OK)
        rc = history(s, id, NULL, "lost", NULL, NULL, NULL, NULL, "lost", audited, now);
    if (rc == STORE_OK)
        rc = store_commit(s);
    else
        (void)store_rollback(s); /* the first error is the one to report */
    if (rc == STORE_OK) {
        char qi[160];
        log_info("device marked lost", "device=%s %s", log_quote(qi, sizeof qi, id), detail);
        struct compliance_notice n = {id, NULL, 0, NULL, NULL, message, "lost"};
        compliance_notify(&n);
    }
    return rc;
}

int compliance_device_wipe(struct store *s, const char *id, const char *who, int64_t now,
                           char uuid[128])
{
    int rc = store_begin(s);
    if (rc != STORE_OK)
        return rc;
    rc = enrolled(s, id);
    if (rc == STORE_OK)
        rc = enqueue_one(s, id, command_new("EraseDevice"), now, uuid);
    if (rc == STORE_OK)
        rc = store_compliance_device_wiped(s, id, now);
    char what[200], detail[300];
    snprintf(what, sizeof what, "EraseDevice queued (command %s)", uuid);
    if (rc == STORE_OK)
        rc = audit_operator(s, id, who, what, now, detail, sizeof detail);
    if (rc == STORE_OK)
        rc = history(s, id, NULL, "wipe", NULL, NULL, NULL, NULL, "wipe", detail, now);
    if (rc == STORE_OK)
        rc = store_commit(s);
    else
        (void)store_rollback(s);
    if (rc == STORE_OK) {
        char qi[160];
        log_warn("device wipe queued", "device=%s command=%s", log_quote(qi, sizeof qi, id), uuid);
        struct compliance_notice n = {id, NULL, 0, NULL, NULL, NULL, "wipe"};
        compliance_notify(&n);
    }
    return rc;
}

/* ---- the device view -------------------------------------------------------------------- */

struct row_pick {
    json_t *states; /* policy id text -> state object */
};

static json_t *time_json(int64_t t)
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

json_t *compliance_state_json(const struct store_compliance_state *st)
{
    json_error_t je;
    json_t *o = json_object();
    json_t *fired = st->fired ? json_loads(st->fired, 0, &je) : NULL;
    json_t *actions = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(fired, k, v)
        json_object_set_new(actions, k, time_json(json_integer_value(v)));
    json_decref(fired);
    json_object_set_new(o, "device", json_string(st->enrollment_id));
    json_object_set_new(o, "policy_id", json_integer(st->policy_id));
    json_object_set_new(o, "state", json_string(st->state));
    json_object_set_new(o, "rule", st->rule ? json_string(st->rule) : json_null());
    json_object_set_new(o, "observed", st->observed ? json_string(st->observed) : json_null());
    json_object_set_new(o, "since", time_json(st->since));
    json_object_set_new(o, "evaluated_at", time_json(st->evaluated_at));
    json_object_set_new(o, "noncompliant_since", time_json(st->episode_since));
    json_object_set_new(o, "actions_fired", actions);
    return o;
}

static int on_view_state(void *ctx, const struct store_compliance_state *st)
{
    struct row_pick *p = ctx;
    char key[32];
    snprintf(key, sizeof key, "%lld", (long long)st->policy_id);
    return json_object_set_new(p->states, key, compliance_state_json(st));
}

static json_t *event_json(const struct store_compliance_event *e)
{
    json_t *o = json_object();
    json_object_set_new(o, "at", time_json(e->at));
    json_object_set_new(o, "kind", json_string(e->kind));
    json_object_set_new(o, "policy_id", e->policy_id ? json_integer(e->policy_id) : json_null());
    const char *names[] = {"policy", "from", "to", "rule", "observed", "action", "detail"};
    const char *vals[] = {e->policy_name, e->old_state, e->new_state, e->rule,
                          e->observed,    e->action,    e->detail};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (vals[i])
            json_object_set_new(o, names[i], json_string(vals[i]));
    return o;
}

static int device_view(struct store *s, const char *id, int64_t history_limit, json_t *out)
{
    struct store_compliance_policy *pol = NULL;
    size_t npol = 0;
    struct row_pick pick = {json_object()};
    int rc = store_compliance_policies_list(s, 1, &pol, &npol);
    if (rc == STORE_OK)
        rc = store_compliance_states_scan(s, id, on_view_state, &pick);
    json_t *policies = json_array();
    int worst = COMPLIANCE_COMPLIANT;
    int64_t evaluated = 0;
    for (size_t i = 0; rc == STORE_OK && i < npol; i++) {
        json_error_t je;
        json_t *scope = json_loads(pol[i].scope, JSON_DECODE_ANY, &je);
        struct scope sc;
        rc = scope_build(s, scope, pol[i].name, &sc);
        int in = rc == STORE_OK && scope_has(&sc, id);
        scope_free(&sc);
        json_decref(scope);
        if (!in)
            continue;
        char key[32];
        snprintf(key, sizeof key, "%lld", (long long)pol[i].id);
        json_t *st = json_object_get(pick.states, key);
        if (st) {
            json_incref(st);
        } else {
            st = json_object();
            json_object_set_new(st, "device", json_string(id));
            json_object_set_new(st, "policy_id", json_integer(pol[i].id));
            json_object_set_new(st, "state", json_string("compliant"));
            json_object_set_new(st, "rule", json_null());
            json_object_set_new(st, "observed", json_null());
            json_object_set_new(st, "since", json_null());
            json_object_set_new(st, "actions_fired", json_object());
        }
        json_object_set_new(st, "policy", json_string(pol[i].name));
        int stv = compliance_state_from_name(json_string_value(json_object_get(st, "state")));
        if (stv == COMPLIANCE_NONCOMPLIANT ||
            (stv == COMPLIANCE_UNKNOWN && worst == COMPLIANCE_COMPLIANT))
            worst = stv;
        if (pol[i].evaluated_at > evaluated)
            evaluated = pol[i].evaluated_at;
        json_array_append_new(policies, st);
    }
    store_compliance_policies_free(pol, npol);
    json_decref(pick.states);
    struct store_compliance_device_info info;
    int irc = rc == STORE_OK ? store_compliance_device_info(s, id, &info) : STORE_NOTFOUND;
    if (irc != STORE_OK && irc != STORE_NOTFOUND)
        rc = irc;
    if (irc == STORE_OK && info.evaluated_at > evaluated)
        evaluated = info.evaluated_at;
    json_object_set_new(out, "device", json_string(id));
    json_object_set_new(out, "state", json_string(compliance_state_name(worst)));
    json_object_set_new(out, "evaluated_at", time_json(evaluated));
    json_object_set_new(out, "policies", policies);
    json_t *lost = json_null();
    if (irc == STORE_OK && info.lost_at) {
        lost = json_object();
        json_object_set_new(lost, "at", time_json(info.lost_at));
        json_object_set_new(lost, "message",
                            info.lost_message ? json_string(info.lost_message) : json_null());
        json_object_set_new(lost, "phone", info.lost_phone ? json_string(info.lost_phone)
                                                           : json_null());
    }
    json_object_set_new(out, "lost", lost);
    json_object_set_new(out, "wiped_at", time_json(irc == STORE_OK ? info.wiped_at : 0));
    if (irc == STORE_OK) {
        free(info.lost_message);
        free(info.lost_phone);
    }
    struct store_compliance_event *ev = NULL;
    size_t nev = 0;
    if (rc == STORE_OK)
        rc = store_compliance_history_get(s, id, history_limit, &ev, &nev);
    json_t *hist = json_array();
    for (size_t i = 0; i < nev; i++)
        json_array_append_new(hist, event_json(&ev[i]));
    store_compliance_events_free(ev, nev);
    json_object_set_new(out, "history", hist);
    return rc;
}

int compliance_device_report(struct store *s, const char *id, int64_t history_limit,
                             json_t **out)
{
    *out = NULL;
    struct store_enrollment *e = NULL;
    int rc = store_enrollment_get(s, id, &e);
    if (rc != STORE_OK)
        return rc;
    store_enrollment_free(e);
    json_t *o = json_object();
    if (!o)
        return sql_out_of_memory("compliance.device_report");
    rc = store_begin_read(s);
    if (rc == STORE_OK) {
        rc = device_view(s, id, history_limit, o);
        int end = store_commit(s);
        if (rc == STORE_OK)
            rc = end;
    }
    if (rc != STORE_OK) {
        json_decref(o);
        return rc;
    }
    *out = o;
    return STORE_OK;
}
