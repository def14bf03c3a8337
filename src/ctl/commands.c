/* commands.c: `stewardctl commands send|list|cancel`: builds the "command"
 * object from --type/--set/--queries (or takes it from a JSON file, or sends
 * a whole plist as command_plist), POSTs /api/v1/commands and prints the
 * per-device result; lists and cancels a device's queued commands.
 * Called by main.c's dispatch. */
#include "ctl/ctl.h"
#include "ctl/catalog.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/ids.h"

/* Larger than the server's default API body limit (16 MiB) is pointless. */
#define CTL_MAX_FILE (16u * 1024 * 1024)

const struct ctl_optspec ctl_commands_send_opts[] = {
    {"device", 1}, {"type", 1}, {"set", 1},  {"queries", 1},
    {"json-file", 1}, {"plist", 1}, {"uuid", 1}, {"ttl", 1}, {NULL, 0},
};

const struct ctl_optspec ctl_commands_list_opts[] = {{"limit", 1}, {NULL, 0}};

/* ---- --set, --queries --------------------------------------------------- */

static int is_decimal_int(const char *s)
{
    const char *p = s[0] == '-' ? s + 1 : s;
    if (!*p || (p[0] == '0' && p[1])) /* "007" stays text: PINs, codes */
        return 0;
    for (; *p; p++)
        if (*p < '0' || *p > '9')
            return 0;
    return 1;
}

json_t *ctl_set_value(const char *text)
{
    if (strcmp(text, "true") == 0)
        return json_true();
    if (strcmp(text, "false") == 0)
        return json_false();
    if (is_decimal_int(text)) {
        errno = 0;
        long long v = strtoll(text, NULL, 10);
        if (errno == 0)
            return json_integer((json_int_t)v);
        /* Out of int64 range: sent as the text it is. */
    }
    return json_string(text);
}

/* 1 when every dot-separated segment of key is non-empty. Checked before any
 * dictionary is created, so a refused key leaves the command untouched. */
static int key_segments_ok(const char *key)
{
    size_t len = strlen(key);
    return len && key[0] != '.' && key[len - 1] != '.' && !strstr(key, "..");
}

/* Walks (creating) the dictionaries for every dotted segment of key but the
 * last; returns the parent and points *leaf at the last segment (inside the
 * copy keyc, which the caller owns). NULL with a reason in why. */
static json_t *walk_to_parent(json_t *obj, char *keyc, char **leaf, char *why, size_t n)
{
    char *seg = keyc;
    for (;;) {
        char *dot = strchr(seg, '.');
        if (!*seg || (dot && dot == seg)) {
            snprintf(why, n, "empty key segment");
            return NULL;
        }
        if (!dot) {
            *leaf = seg;
            return obj;
        }
        *dot = '\0';
        json_t *child = json_object_get(obj, seg);
        if (child && !json_is_object(child)) {
            snprintf(why, n, "%s already has a value, it cannot also hold keys", seg);
            return NULL;
        }
        if (!child) {
            child = json_object();
            if (!child || json_object_set_new(obj, seg, child) < 0) {
                snprintf(why, n, "out of memory");
                return NULL;
            }
        }
        obj = child;
        seg = dot + 1;
    }
}

int ctl_set_apply(json_t *obj, const char *assignment, char *why, size_t n)
{
    const char *eq = strchr(assignment, '=');
    if (!eq || eq == assignment) {
        snprintf(why, n, "--set wants Key=Value (got \"%s\")", assignment);
        return -1;
    }
    char *keyc = strndup(assignment, (size_t)(eq - assignment));
    json_t *value = ctl_set_value(eq + 1);
    char *leaf = NULL;
    json_t *parent = NULL;
    if (keyc && value && !key_segments_ok(keyc))
        snprintf(why, n, "empty key segment");
    else if (keyc && value)
        parent = walk_to_parent(obj, keyc, &leaf, why, n);
    int rc = -1;
    if (!keyc || !value)
        snprintf(why, n, "--set %s: %s", assignment,
                 keyc ? "the value is not valid UTF-8" : "out of memory");
    else if (!parent) {
        char inner[256];
        snprintf(inner, sizeof inner, "%s", why);
        snprintf(why, n, "--set %s: %s", assignment, inner);
    } else if (parent == obj && strcmp(leaf, "RequestType") == 0)
        snprintf(why, n, "give the request type with --type, not --set");
    else if (json_is_object(json_object_get(parent, leaf)))
        snprintf(why, n, "--set %s: %s already holds keys", assignment, leaf);
    else if (json_object_set(parent, leaf, value) < 0)
        snprintf(why, n, "--set %s: the key is not valid UTF-8 (or out of memory)", assignment);
    else
        rc = 0;
    json_decref(value);
    free(keyc);
    return rc;
}

/* "A, B,C" -> ["A","B","C"]; NULL with why on an empty item. */
static json_t *split_queries(const char *list, char *why, size_t n)
{
    json_t *arr = json_array();
    const char *p = list;
    while (arr) {
        size_t len = strcspn(p, ",");
        const char *s = p, *e = p + len;
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (s == e) {
            snprintf(why, n, "--queries has an empty item (got \"%s\")", list);
            json_decref(arr);
            return NULL;
        }
        if (json_array_append_new(arr, json_stringn(s, (size_t)(e - s))) < 0) {
            snprintf(why, n, "--queries: not valid UTF-8");
            json_decref(arr);
            return NULL;
        }
        if (!p[len])
            break;
        p += len + 1;
    }
    if (!arr)
        snprintf(why, n, "out of memory");
    return arr;
}

json_t *ctl_command_from_flags(const struct ctl_args *a, char *why, size_t n)
{
    const char *type = ctl_args_get(a, "type");
    const char *queries = ctl_args_get(a, "queries");
    json_t *cmd = type ? json_pack("{s:s}", "RequestType", type) : NULL;
    if (!cmd) {
        snprintf(why, n, type ? "--type: not valid UTF-8" : "--type is missing");
        return NULL;
    }
    for (size_t i = 0; i < a->nflags; i++) {
        if (strcmp(a->flags[i].name, "set") == 0 && ctl_set_apply(cmd, a->flags[i].value, why, n) < 0) {
            json_decref(cmd);
            return NULL;
        }
    }
    if (queries) {
        json_t *arr = NULL;
        if (json_object_get(cmd, "Queries"))
            snprintf(why, n, "Queries given by both --set and --queries");
        else
            arr = split_queries(queries, why, n);
        if (!arr || json_object_set_new(cmd, "Queries", arr) < 0) {
            json_decref(cmd);
            return NULL;
        }
    }
    return cmd;
}

/* ---- commands send ------------------------------------------------------ */

/* Reads a whole file ("-" is standard input) into b. 0 or -1 with why. */
static int read_all(const char *path, struct buf *b, char *why, size_t n)
{
    const char *name = strcmp(path, "-") == 0 ? "standard input" : path;
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        snprintf(why, n, "cannot open %s: %s", name, strerror(errno));
        return -1;
    }
    char chunk[8192];
    size_t got;
    int rc = 0;
    while (rc == 0 && (got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b->len + got > CTL_MAX_FILE) {
            snprintf(why, n, "%s is larger than %u bytes", name, CTL_MAX_FILE);
            rc = -1;
        } else if (buf_append(b, chunk, got) < 0) {
            snprintf(why, n, "out of memory reading %s", name);
            rc = -1;
        }
    }
    if (rc == 0 && ferror(f)) {
        snprintf(why, n, "cannot read %s: %s", name, strerror(errno));
        rc = -1;
    }
    if (f != stdin)
        fclose(f);
    return rc;
}

static json_t *command_from_json_file(const char *path, char *why, size_t n)
{
    struct buf b = {0};
    if (read_all(path, &b, why, n) < 0) {
        buf_free(&b);
        return NULL;
    }
    json_error_t e;
    json_t *cmd = json_loadb(b.data ? b.data : "", b.len, 0, &e);
    buf_free(&b);
    if (!cmd)
        snprintf(why, n, "%s: line %d: %s", strcmp(path, "-") == 0 ? "standard input" : path,
                 e.line, e.text);
    else if (!json_is_object(cmd)) {
        snprintf(why, n, "%s must hold a JSON object (the \"command\")", path);
        json_decref(cmd);
        cmd = NULL;
    }
    return cmd;
}

static json_t *plist_as_base64(const char *path, char *why, size_t n)
{
    struct buf b = {0};
    if (read_all(path, &b, why, n) < 0) {
        buf_free(&b);
        return NULL;
    }
    json_t *out = NULL;
    if (b.len == 0)
        snprintf(why, n, "%s is empty", path);
    else {
        char *b64 = ids_b64_encode((const uint8_t *)b.data, b.len);
        out = b64 ? json_string(b64) : NULL;
        free(b64);
        if (!out)
            snprintf(why, n, "out of memory");
    }
    buf_free(&b);
    return out;
}

/* Checks that exactly one way of giving the command is used. 0 or -1. */
static int check_send_flags(struct ctl *c, const struct ctl_args *a)
{
    int ways = ctl_args_has(a, "type") + ctl_args_has(a, "json-file") + ctl_args_has(a, "plist");
    if (a->npos) {
        ctl_fail(c, "commands send takes no arguments (got \"%s\"); name devices with --device",
                 a->pos[0]);
        return -1;
    }
    if (!ctl_args_has(a, "device")) {
        ctl_fail(c, "commands send needs at least one --device ID");
        return -1;
    }
    if (ways != 1) {
        ctl_fail(c, "commands send needs exactly one of --type, --json-file or --plist");
        return -1;
    }
    if (!ctl_args_has(a, "type") && (ctl_args_has(a, "set") || ctl_args_has(a, "queries"))) {
        ctl_fail(c, "--set and --queries go with --type");
        return -1;
    }
    return 0;
}

/* The POST body; NULL after printing why (usage problems and unreadable
 * files alike are the operator's to fix, so *exit_code says which). */
static json_t *send_body(struct ctl *c, const struct ctl_args *a, int *exit_code)
{
    char why[512] = "";
    json_t *body = json_object();
    json_t *devices = json_array();
    int ok = body && devices && json_object_set(body, "devices", devices) == 0;
    for (size_t i = 0; ok && i < a->nflags; i++)
        if (strcmp(a->flags[i].name, "device") == 0)
            ok = json_array_append_new(devices, json_string(a->flags[i].value)) == 0;
    json_decref(devices);
    if (!ok) {
        snprintf(why, sizeof why, "out of memory (or a --device that is not UTF-8)");
    } else if (ctl_args_has(a, "type")) {
        json_t *cmd = ctl_command_from_flags(a, why, sizeof why);
        ok = cmd && json_object_set_new(body, "command", cmd) == 0;
    } else if (ctl_args_has(a, "json-file")) {
        json_t *cmd = command_from_json_file(ctl_args_get(a, "json-file"), why, sizeof why);
        ok = cmd && json_object_set_new(body, "command", cmd) == 0;
    } else {
        json_t *b64 = plist_as_base64(ctl_args_get(a, "plist"), why, sizeof why);
        ok = b64 && json_object_set_new(body, "command_plist", b64) == 0;
    }
    const char *uuid = ctl_args_get(a, "uuid");
    if (ok && uuid)
        ok = json_object_set_new(body, "command_uuid", json_string(uuid)) == 0;
    const char *ttl = ctl_args_get(a, "ttl");
    int bad_ttl = ok && ttl && !ctl_is_count(ttl);
    if (bad_ttl) {
        snprintf(why, sizeof why, "--ttl wants a number of seconds, not \"%.64s\"", ttl);
        ok = 0;
    } else if (ok && ttl) {
        ok = json_object_set_new(body, "ttl", json_integer(strtoll(ttl, NULL, 10))) == 0;
    }
    if (!ok) {
        ctl_fail(c, "%s", why[0] ? why : "out of memory");
        *exit_code = ctl_args_has(a, "type") || bad_ttl ? CTL_EXIT_USAGE : CTL_EXIT_FAIL;
        json_decref(body);
        return NULL;
    }
    return body;
}

/* The per-device table of a send answer; counts queued devices. -1 when the
 * answer has no "devices" object. */
static int render_send_result(const json_t *answer, struct buf *out, size_t *queued,
                              size_t *total)
{
    const json_t *devices = json_object_get(answer, "devices");
    const char *uuid = json_string_value(json_object_get(answer, "command_uuid"));
    const char *type = json_string_value(json_object_get(answer, "request_type"));
    if (!json_is_object(devices))
        return -1;
    static const char *const headers[] = {"DEVICE", "RESULT"};
    struct ctl_table *t = ctl_table_new(2, headers);
    int rc = t ? 0 : -1;
    const char *id;
    const json_t *res;
    *queued = *total = 0;
    json_object_foreach((json_t *)devices, id, res) {
        int ok = json_is_true(json_object_get(res, "queued"));
        const char *err = json_string_value(json_object_get(res, "error"));
        struct buf cell = {0};
        if (rc == 0)
            rc = ok ? buf_puts(&cell, "queued")
                    : buf_printf(&cell, "not queued: %s", err ? err : "no reason given");
        const char *row[2] = {id, cell.data};
        if (rc == 0)
            rc = ctl_table_add(t, row);
        buf_free(&cell);
        *queued += (size_t)ok;
        (*total)++;
    }
    if (rc == 0 && uuid)
        rc = buf_printf(out, "Command %s (%s)\n", uuid, type ? type : "?");
    if (rc == 0)
        rc = ctl_table_render(t, out);
    if (rc == 0)
        rc = buf_printf(out, "%zu of %zu device%s queued.\n", *queued, *total,
                        *total == 1 ? "" : "s");
    ctl_table_free(t);
    return rc;
}

/* Prints the human result of a send and returns the exit code: 0 only when
 * the server said 200 (every device got the command). */
static int report_send(struct ctl *c, const struct ctl_response *r)
{
    struct buf out = {0};
    size_t queued = 0, total = 0;
    int has_table = json_is_object(r->json) && render_send_result(r->json, &out, &queued, &total) == 0;
    int rc = CTL_EXIT_OK;
    if (has_table && ctl_write(c, &out) < 0)
        rc = CTL_EXIT_FAIL;
    buf_free(&out);
    if (r->status == 207) {
        ctl_fail(c, "the command was not queued for %zu of %zu devices (HTTP 207)", total - queued,
                 total);
        return CTL_EXIT_FAIL;
    }
    if (ctl_report_http_error(c, r))
        return CTL_EXIT_FAIL;
    if (!has_table || r->status < 200 || r->status >= 300) /* e.g. a redirect, not followed */
        return ctl_unexpected(c, r);
    return rc;
}

int ctl_commands_send(struct ctl *c, const struct ctl_args *a)
{
    if (check_send_flags(c, a) < 0)
        return CTL_EXIT_USAGE;
    int rc = CTL_EXIT_FAIL;
    json_t *body = send_body(c, a, &rc);
    if (!body)
        return rc;
    struct ctl_client *client = ctl_connect(c);
    struct ctl_response r = {0};
    if (!client || ctl_request(client, "POST", "/api/v1/commands", body, 1, &r) < 0) {
        json_decref(body);
        return CTL_EXIT_FAIL;
    }
    json_decref(body);
    if (c->opts.json) {
        ctl_print_json(c, &r);
        rc = r.status == 200 ? CTL_EXIT_OK : CTL_EXIT_FAIL;
        if (r.status == 207)
            ctl_fail(c, "the command was not queued for every device (HTTP 207)");
        else
            ctl_report_http_error(c, &r);
    } else {
        rc = report_send(c, &r);
    }
    ctl_response_free(&r);
    return rc;
}

/* ---- commands list, cancel ---------------------------------------------- */

/* "/api/v1/devices/<id>/commands[/<uuid>]" with both encoded. 0 or -1. */
static int device_commands_path(struct buf *b, const char *id, const char *uuid)
{
    char *eid = ctl_url_encode(id);
    char *euuid = uuid ? ctl_url_encode(uuid) : NULL;
    int rc = eid && (!uuid || euuid) ? buf_printf(b, "/api/v1/devices/%s/commands", eid) : -1;
    if (rc == 0 && uuid)
        rc = buf_printf(b, "/%s", euuid);
    free(eid);
    free(euuid);
    return rc;
}

static int render_command_list(const json_t *answer, struct buf *out)
{
    static const char *const headers[] = {"UUID", "TYPE", "STATUS", "CREATED", "UPDATED"};
    static const char *const fields[] = {"command_uuid", "request_type", "status", "created_at",
                                         "updated_at"};
    const json_t *list = json_object_get(answer, "commands");
    if (!json_is_array(list))
        return -1;
    if (json_array_size(list) == 0)
        return buf_puts(out, "No commands.\n");
    struct ctl_table *t = ctl_table_new(5, headers);
    int rc = t ? 0 : -1;
    size_t i;
    const json_t *cmd;
    json_array_foreach(list, i, cmd) {
        char *cells[5];
        for (size_t k = 0; k < 5; k++)
            cells[k] = ctl_json_text(json_object_get(cmd, fields[k]));
        if (rc == 0)
            rc = json_is_object(cmd) ? ctl_table_add(t, (const char *const *)cells) : -1;
        for (size_t k = 0; k < 5; k++)
            free(cells[k]);
    }
    if (rc == 0)
        rc = ctl_table_render(t, out);
    if (rc == 0)
        rc = buf_printf(out, "%zu command%s\n", json_array_size(list),
                        json_array_size(list) == 1 ? "" : "s");
    ctl_table_free(t);
    return rc;
}

int ctl_commands_list(struct ctl *c, const struct ctl_args *a)
{
    const char *limit = ctl_args_get(a, "limit");
    if (a->npos != 1) {
        ctl_fail(c, "commands list wants exactly one device id");
        return CTL_EXIT_USAGE;
    }
    if (limit && !ctl_is_count(limit)) {
        ctl_fail(c, "--limit wants a whole number (got \"%s\")", limit);
        return CTL_EXIT_USAGE;
    }
    struct buf path = {0};
    if (device_commands_path(&path, a->pos[0], NULL) < 0 ||
        (limit && ctl_query_add(&path, "limit", limit) < 0)) {
        buf_free(&path);
        ctl_fail(c, "out of memory");
        return CTL_EXIT_FAIL;
    }
    int rc = ctl_get_and_render(c, path.data, render_command_list);
    buf_free(&path);
    return rc;
}

/* commands cancel UUID: everywhere it still waits. */
int ctl_commands_cancel_all(struct ctl *c, const char *uuid)
{
    struct buf p = {0};
    char *enc = NULL;
    struct ctl_response r;
    memset(&r, 0, sizeof r);
    int rc = (enc = ctl_url_encode(uuid)) && buf_printf(&p, "/api/v1/commands/%s", enc) == 0 ? ctl_call(c, "DELETE", p.data, NULL, &r)
                                           : CTL_EXIT_FAIL;
    if (rc == CTL_EXIT_OK && !c->opts.json)
        fprintf(c->out, "Canceled command %s on %lld devices.\n", enc,
                (long long)json_integer_value(json_object_get(r.json, "canceled")));
    free(enc);
    buf_free(&p);
    ctl_response_free(&r);
    return rc;
}

int ctl_commands_cancel(struct ctl *c, const struct ctl_args *a)
{
    if (a->npos == 1)
        return ctl_commands_cancel_all(c, a->pos[0]);
    if (a->npos != 2) {
        ctl_fail(c, "commands cancel wants a device id and a command UUID");
        return CTL_EXIT_USAGE;
    }
    struct buf path = {0};
    if (device_commands_path(&path, a->pos[0], a->pos[1]) < 0) {
        buf_free(&path);
        ctl_fail(c, "out of memory");
        return CTL_EXIT_FAIL;
    }
    struct ctl_response r;
    int rc = ctl_call(c, "DELETE", path.data, NULL, &r);
    buf_free(&path);
    if (rc == CTL_EXIT_OK && !c->opts.json) {
        if (!json_is_true(json_object_get(r.json, "canceled")))
            rc = ctl_unexpected(c, &r);
        else {
            struct buf out = {0};
            if (buf_puts(&out, "Canceled command ") < 0 || ctl_put_clean(&out, a->pos[1]) < 0 ||
                buf_puts(&out, " for ") < 0 || ctl_put_clean(&out, a->pos[0]) < 0 ||
                buf_puts(&out, ".\n") < 0 || ctl_write(c, &out) < 0)
                rc = CTL_EXIT_FAIL;
            buf_free(&out);
        }
    }
    ctl_response_free(&r);
    return rc;
}
