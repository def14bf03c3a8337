/* operators.c: stewardctl's commands for who may use steward and what they
 * did (operators.h): console users, API keys, the audit log and webhooks.
 * Passwords come from a file or STEWARD_NEW_PASSWORD, never the command
 * line; keys and webhook secrets the server shows once are printed once.
 * Called by main.c's dispatch. */
#include "ctl/operators.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct ctl_optspec ctl_users_opts[] = {{"role", 1}, {"password-file", 1}, {NULL, 0}};
const struct ctl_optspec ctl_keys_opts[] = {{"role", 1}, {NULL, 0}};
const struct ctl_optspec ctl_audit_opts[] = {
    {"actor", 1}, {"method", 1}, {"target", 1}, {"since", 1}, {"until", 1},
    {"failed", 0}, {"limit", 1}, {"offset", 1}, {"format", 1}, {NULL, 0},
};
const struct ctl_optspec ctl_webhooks_opts[] = {
    {"events", 1}, {"secret", 1}, {"description", 1}, {"url", 1},
    {"enable", 0}, {"disable", 0}, {NULL, 0},
};
const struct ctl_optspec ctl_deliveries_opts[] = {
    {"status", 1}, {"limit", 1}, {"offset", 1}, {NULL, 0},
};

/* ---- shared ------------------------------------------------------------------ */

static int want_args(struct ctl *c, const struct ctl_args *a, size_t n, const char *usage)
{
    if (a->npos == n)
        return 0;
    ctl_fail(c, "usage: stewardctl %s", usage);
    return -1;
}

/* "/api/v1/<base>/<encoded id>[/<tail>]" into path. 0 or -1. */
static int item_path(struct buf *path, const char *base, const char *id, const char *tail)
{
    char *enc = ctl_url_encode(id);
    int rc = enc ? buf_printf(path, "/api/v1/%s/%s%s%s", base, enc, tail ? "/" : "", tail ? tail : "")
                 : -1;
    free(enc);
    return rc < 0 ? -1 : 0;
}

/* Sends and, unless --json, prints done (then the answer as key: value
 * lines when show). */
static int call_and_say(struct ctl *c, const char *method, const char *path, const json_t *body,
                        const char *done, int show)
{
    struct ctl_response r;
    int rc = ctl_call(c, method, path, body, &r);
    if (rc == CTL_EXIT_OK && !c->opts.json) {
        struct buf out = {0};
        if ((done && buf_printf(&out, "%s\n", done) < 0) ||
            (show && json_is_object(r.json) && ctl_render_keyvalues(r.json, &out) < 0) ||
            ctl_write(c, &out) < 0)
            rc = CTL_EXIT_FAIL;
        buf_free(&out);
    }
    ctl_response_free(&r);
    return rc;
}

static int list(struct ctl *c, const char *path, ctl_render_fn render)
{
    return ctl_get_and_render(c, path, render);
}

static int role_valid(const char *r)
{
    return r && (strcmp(r, "viewer") == 0 || strcmp(r, "operator") == 0 || strcmp(r, "admin") == 0);
}

/* ---- whoami ------------------------------------------------------------------ */

int ctl_whoami(struct ctl *c, const struct ctl_args *a)
{
    if (want_args(c, a, 0, "whoami") < 0)
        return CTL_EXIT_USAGE;
    return call_and_say(c, "GET", "/api/v1/session", NULL, NULL, 1);
}

/* ---- users ------------------------------------------------------------------- */

static int render_users(const json_t *answer, struct buf *out)
{
    static const char *const h[] = {"NAME", "ROLE", "LAST SIGN-IN", "LOCKED"};
    static const char *const f[] = {"name", "role", "last_login_at", "locked"};
    static const struct ctl_list_view v = {"users", 4, h, f, "user", "users"};
    return ctl_render_list(answer, &v, out);
}

int ctl_users_list(struct ctl *c, const struct ctl_args *a)
{
    if (want_args(c, a, 0, "users list") < 0)
        return CTL_EXIT_USAGE;
    return list(c, "/api/v1/users", render_users);
}

/* The new password: --password-file's first line, else STEWARD_NEW_PASSWORD.
 * A malloc'd string, or NULL after saying why. */
static char *new_password(struct ctl *c, const struct ctl_args *a)
{
    const char *file = ctl_args_get(a, "password-file");
    char line[1100] = "";
    if (file) {
        FILE *f = fopen(file, "r");
        if (!f || !fgets(line, sizeof line, f)) {
            if (f)
                fclose(f);
            ctl_fail(c, "cannot read a password from %s", file);
            return NULL;
        }
        fclose(f);
        line[strcspn(line, "\r\n")] = '\0';
    } else {
        const char *e = getenv("STEWARD_NEW_PASSWORD");
        if (!e) {
            ctl_fail(c, "give the password with --password-file FILE or STEWARD_NEW_PASSWORD");
            return NULL;
        }
        snprintf(line, sizeof line, "%s", e);
    }
    return strdup(line);
}

int ctl_users_add(struct ctl *c, const struct ctl_args *a)
{
    const char *role = ctl_args_get(a, "role");
    if (want_args(c, a, 1, "users add NAME --role viewer|operator|admin [--password-file F]") < 0)
        return CTL_EXIT_USAGE;
    if (!role_valid(role)) {
        ctl_fail(c, "--role must be viewer, operator or admin");
        return CTL_EXIT_USAGE;
    }
    char *pw = new_password(c, a);
    if (!pw)
        return CTL_EXIT_USAGE;
    json_t *body = json_pack("{s:s,s:s,s:s}", "name", a->pos[0], "role", role, "password", pw);
    free(pw);
    int rc = body ? call_and_say(c, "POST", "/api/v1/users", body, "User added.", 1) : CTL_EXIT_FAIL;
    json_decref(body);
    return rc;
}

int ctl_users_set(struct ctl *c, const struct ctl_args *a)
{
    const char *role = ctl_args_get(a, "role");
    if (want_args(c, a, 1, "users set NAME [--role R] [--password-file F]") < 0)
        return CTL_EXIT_USAGE;
    if (role && !role_valid(role)) {
        ctl_fail(c, "--role must be viewer, operator or admin");
        return CTL_EXIT_USAGE;
    }
    json_t *body = json_object();
    if (role)
        json_object_set_new(body, "role", json_string(role));
    if (ctl_args_has(a, "password-file") || (!role && getenv("STEWARD_NEW_PASSWORD"))) {
        char *pw = new_password(c, a);
        if (!pw) {
            json_decref(body);
            return CTL_EXIT_USAGE;
        }
        json_object_set_new(body, "password", json_string(pw));
        free(pw);
    }
    struct buf path = {0};
    int rc = item_path(&path, "users", a->pos[0], NULL) < 0
                 ? CTL_EXIT_FAIL
                 : call_and_say(c, "PATCH", path.data, body, "User updated.", 0);
    buf_free(&path);
    json_decref(body);
    return rc;
}

int ctl_users_delete(struct ctl *c, const struct ctl_args *a)
{
    if (want_args(c, a, 1, "users delete NAME") < 0)
        return CTL_EXIT_USAGE;
    struct buf path = {0};
    int rc = item_path(&path, "users", a->pos[0], NULL) < 0
                 ? CTL_EXIT_FAIL
                 : call_and_say(c, "DELETE", path.data, NULL, "User deleted.", 0);
    buf_free(&path);
    return rc;
}

/* ---- keys ---------------------------------------------------------------------- */

static int render_keys(const json_t *answer, struct buf *out)
{
    static const char *const h[] = {"ID", "NAME", "ROLE", "CREATED", "LAST USED"};
    static const char *const f[] = {"id", "name", "role", "created_at", "last_used_at"};
    static const struct ctl_list_view v = {"keys", 5, h, f, "key", "keys"};
    return ctl_render_list(answer, &v, out);
}

int ctl_keys_list(struct ctl *c, const struct ctl_args *a)
{
    if (want_args(c, a, 0, "keys list") < 0)
        return CTL_EXIT_USAGE;
    return list(c, "/api/v1/keys", render_keys);
}

int ctl_keys_create(struct ctl *c, const struct ctl_args *a)
{
    const char *role = ctl_args_get(a, "role");
    if (want_args(c, a, 1, "keys create NAME --role viewer|operator|admin") < 0)
        return CTL_EXIT_USAGE;
    if (!role_valid(role)) {
        ctl_fail(c, "--role must be viewer, operator or admin");
        return CTL_EXIT_USAGE;
    }
    json_t *body = json_pack("{s:s,s:s}", "name", a->pos[0], "role", role);
    struct ctl_response r;
    int rc = ctl_call(c, "POST", "/api/v1/keys", body, &r);
    json_decref(body);
    if (rc == CTL_EXIT_OK && !c->opts.json) {
        const char *key = json_string_value(json_object_get(r.json, "key"));
        if (!key)
            rc = ctl_unexpected(c, &r);
        else
            fprintf(c->out, "%s\n", key); /* the only time it is shown */
    }
    ctl_response_free(&r);
    return rc;
}

int ctl_keys_revoke(struct ctl *c, const struct ctl_args *a)
{
    if (want_args(c, a, 1, "keys revoke ID   (the ID column of `keys list`)") < 0)
        return CTL_EXIT_USAGE;
    struct buf path = {0};
    int rc = item_path(&path, "keys", a->pos[0], NULL) < 0
                 ? CTL_EXIT_FAIL
                 : call_and_say(c, "DELETE", path.data, NULL, "Key revoked.", 0);
    buf_free(&path);
    return rc;
}

/* ---- audit -------------------------------------------------------------------------- */

static int render_audit(const json_t *answer, struct buf *out)
{
    static const char *const h[] = {"AT", "ACTOR", "ACTION", "TARGET", "STATUS", "FROM"};
    static const char *const f[] = {"at", "actor", "action", "target", "status", "remote_addr"};
    static const struct ctl_list_view v = {"entries", 6, h, f, "entry", "entries"};
    return ctl_render_list(answer, &v, out);
}

static int audit_path(struct ctl *c, const struct ctl_args *a, const char *format, struct buf *p)
{
    static const char *const names[] = {"actor", "method", "target", "since", "until", "limit", "offset"};
    if (buf_puts(p, "/api/v1/audit") < 0)
        return -1;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *v = ctl_args_get(a, names[i]);
        if (v && ctl_query_add(p, names[i], v) < 0)
            return -1;
    }
    if (ctl_args_has(a, "failed") && ctl_query_add(p, "failed", "1") < 0)
        return -1;
    if (format && ctl_query_add(p, "format", format) < 0)
        return -1;
    (void)c;
    return 0;
}

int ctl_audit_list(struct ctl *c, const struct ctl_args *a)
{
    if (want_args(c, a, 0, "audit list [--actor A] [--method M] [--target T] [--failed] [--limit N]") < 0)
        return CTL_EXIT_USAGE;
    struct buf p = {0};
    int rc = audit_path(c, a, NULL, &p) < 0 ? CTL_EXIT_FAIL : list(c, p.data, render_audit);
    buf_free(&p);
    return rc;
}

int ctl_audit_export(struct ctl *c, const struct ctl_args *a)
{
    const char *format = ctl_args_get(a, "format");
    if (want_args(c, a, 0, "audit export --format csv|jsonl [filters]") < 0)
        return CTL_EXIT_USAGE;
    if (!format || (strcmp(format, "csv") != 0 && strcmp(format, "jsonl") != 0)) {
        ctl_fail(c, "--format must be csv or jsonl");
        return CTL_EXIT_USAGE;
    }
    struct buf p = {0};
    struct ctl_response r = {0};
    struct ctl_client *client = ctl_connect(c);
    int rc = CTL_EXIT_FAIL;
    if (audit_path(c, a, format, &p) == 0 && client &&
        ctl_request(client, "GET", p.data, NULL, 1, &r) == 0) {
        rc = ctl_report_http_error(c, &r) ? CTL_EXIT_FAIL : CTL_EXIT_OK;
        if (rc == CTL_EXIT_OK && fwrite(r.body, 1, r.len, c->out) != r.len)
            rc = CTL_EXIT_FAIL;
    }
    ctl_response_free(&r);
    buf_free(&p);
    return rc;
}

/* ---- webhooks ------------------------------------------------------------------------ */

static int render_webhooks(const json_t *answer, struct buf *out)
{
    static const char *const h[] = {"ID", "URL", "EVENTS", "ENABLED", "DESCRIPTION"};
    static const char *const f[] = {"id", "url", "events", "enabled", "description"};
    static const struct ctl_list_view v = {"webhooks", 5, h, f, "webhook", "webhooks"};
    return ctl_render_list(answer, &v, out);
}

static int render_deliveries(const json_t *answer, struct buf *out)
{
    static const char *const h[] = {"ID", "EVENT", "STATUS", "ATTEMPTS", "HTTP", "ERROR", "CREATED"};
    static const char *const f[] = {"id", "event", "status", "attempts", "last_http_status",
                                    "last_error", "created_at"};
    static const struct ctl_list_view v = {"deliveries", 7, h, f, "delivery", "deliveries"};
    return ctl_render_list(answer, &v, out);
}

int ctl_webhooks_list(struct ctl *c, const struct ctl_args *a)
{
    if (want_args(c, a, 0, "webhooks list") < 0)
        return CTL_EXIT_USAGE;
    return list(c, "/api/v1/webhooks", render_webhooks);
}

/* The members --events, --secret, --description, --url, --enable/--disable give. */
static json_t *webhook_body(const struct ctl_args *a)
{
    json_t *b = json_object();
    const char *names[] = {"events", "secret", "description", "url"};
    for (size_t i = 0; b && i < 4; i++) {
        const char *v = ctl_args_get(a, names[i]);
        if (v)
            json_object_set_new(b, names[i], json_string(v));
    }
    if (b && ctl_args_has(a, "enable"))
        json_object_set_new(b, "enabled", json_true());
    if (b && ctl_args_has(a, "disable"))
        json_object_set_new(b, "enabled", json_false());
    return b;
}

int ctl_webhooks_add(struct ctl *c, const struct ctl_args *a)
{
    if (want_args(c, a, 1, "webhooks add URL [--events LIST] [--secret S] [--description D]") < 0)
        return CTL_EXIT_USAGE;
    json_t *body = webhook_body(a);
    json_object_set_new(body, "url", json_string(a->pos[0]));
    int rc = call_and_say(c, "POST", "/api/v1/webhooks", body,
                          "Webhook added. Its signing secret is shown this once:", 1);
    json_decref(body);
    return rc;
}

int ctl_webhooks_set(struct ctl *c, const struct ctl_args *a)
{
    if (want_args(c, a, 1, "webhooks set ID [--url U] [--events LIST] [--secret S] [--enable|--disable]") < 0)
        return CTL_EXIT_USAGE;
    json_t *body = webhook_body(a);
    struct buf path = {0};
    int rc = item_path(&path, "webhooks", a->pos[0], NULL) < 0
                 ? CTL_EXIT_FAIL
                 : call_and_say(c, "PATCH", path.data, body, "Webhook updated.", 1);
    buf_free(&path);
    json_decref(body);
    return rc;
}

static int webhook_simple(struct ctl *c, const struct ctl_args *a, const char *method,
                          const char *tail, const char *usage, const char *done)
{
    if (want_args(c, a, 1, usage) < 0)
        return CTL_EXIT_USAGE;
    struct buf path = {0};
    int rc = item_path(&path, "webhooks", a->pos[0], tail) < 0
                 ? CTL_EXIT_FAIL
                 : call_and_say(c, method, path.data, NULL, done, 0);
    buf_free(&path);
    return rc;
}

int ctl_webhooks_delete(struct ctl *c, const struct ctl_args *a)
{
    return webhook_simple(c, a, "DELETE", NULL, "webhooks delete ID", "Webhook deleted.");
}

int ctl_webhooks_test(struct ctl *c, const struct ctl_args *a)
{
    return webhook_simple(c, a, "POST", "test", "webhooks test ID",
                          "Test event queued; see `stewardctl webhooks deliveries ID`.");
}

int ctl_webhooks_deliveries(struct ctl *c, const struct ctl_args *a)
{
    if (want_args(c, a, 1, "webhooks deliveries ID [--status pending|delivered|failed] [--limit N]") < 0)
        return CTL_EXIT_USAGE;
    struct buf path = {0};
    const char *names[] = {"status", "limit", "offset"};
    int bad = item_path(&path, "webhooks", a->pos[0], "deliveries");
    for (size_t i = 0; !bad && i < 3; i++)
        if (ctl_args_get(a, names[i]))
            bad = ctl_query_add(&path, names[i], ctl_args_get(a, names[i]));
    int rc = bad ? CTL_EXIT_FAIL : list(c, path.data, render_deliveries);
    buf_free(&path);
    return rc;
}
