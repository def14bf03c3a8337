/* push.c: `stewardctl push-cert import|list|show` (push certificates over
 * /api/v1/pushcerts) and `stewardctl push ID…` (POST /api/v1/push in chunks,
 * with a progress bar on stderr for large lists). Registered in main.c. */
#include "ctl/push.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/ids.h"

const struct ctl_optspec ctl_pushcert_import_opts[] = {
    {"cert", 1}, {"key", 1}, {"p12", 1}, {"password-file", 1}, {"force", 0}, {NULL, 0},
};
const struct ctl_optspec ctl_push_opts[] = {{"file", 1}, {"chunk", 1}, {NULL, 0}};

#define FILE_MAX (1 << 20)

/* Reads a whole file (at most 1 MiB) into a NUL-terminated buffer. */
static char *slurp(struct ctl *c, const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        ctl_fail(c, "cannot open %s", path);
        return NULL;
    }
    char *data = malloc(FILE_MAX + 1);
    size_t n = data ? fread(data, 1, FILE_MAX + 1, f) : 0;
    if (f != stdin)
        fclose(f);
    if (!data || n > FILE_MAX) {
        ctl_fail(c, "%s: larger than 1 MiB", path);
        free(data);
        return NULL;
    }
    data[n] = '\0';
    *len = n;
    return data;
}

/* The import body from --cert/--key or --p12 (password from --password-file
 * or STEWARD_P12_PASSWORD, never the command line). NULL after a message. */
static json_t *import_body(struct ctl *c, const struct ctl_args *a)
{
    const char *cert = ctl_args_get(a, "cert"), *key = ctl_args_get(a, "key");
    const char *p12 = ctl_args_get(a, "p12"), *pwfile = ctl_args_get(a, "password-file");
    if (!((cert && key && !p12) || (p12 && !cert && !key))) {
        ctl_fail(c, "give --cert FILE --key FILE, or --p12 FILE");
        return NULL;
    }
    json_t *body = json_object();
    char *password = NULL;
    if (pwfile) {
        size_t n;
        if (!(password = slurp(c, pwfile, &n))) {
            json_decref(body);
            return NULL;
        }
        password[strcspn(password, "\r\n")] = '\0';
    } else if (getenv("STEWARD_P12_PASSWORD")) {
        password = strdup(getenv("STEWARD_P12_PASSWORD"));
    }
    int ok = body != NULL;
    if (ok && p12) {
        size_t n;
        char *der = slurp(c, p12, &n);
        char *b64 = der ? ids_b64_encode((const uint8_t *)der, n) : NULL;
        ok = b64 && json_object_set_new(body, "p12", json_string(b64)) == 0;
        free(der);
        free(b64);
    } else if (ok) {
        size_t n1, n2;
        char *ctext = slurp(c, cert, &n1), *ktext = ctext ? slurp(c, key, &n2) : NULL;
        ok = ctext && ktext && json_object_set_new(body, "cert", json_stringn(ctext, n1)) == 0 &&
             json_object_set_new(body, "key", json_stringn(ktext, n2)) == 0;
        free(ctext);
        free(ktext);
    }
    if (ok && password)
        ok = json_object_set_new(body, "password", json_string(password)) == 0;
    if (ok && ctl_args_has(a, "force"))
        ok = json_object_set_new(body, "force", json_true()) == 0;
    free(password);
    if (!ok) {
        json_decref(body);
        return NULL;
    }
    return body;
}

static int render_cert(struct ctl *c, const json_t *cert)
{
    struct buf out = {0};
    int rc = ctl_render_keyvalues(cert, &out) < 0 || ctl_write(c, &out) < 0 ? CTL_EXIT_FAIL
                                                                             : CTL_EXIT_OK;
    buf_free(&out);
    return rc;
}

int ctl_pushcert_import(struct ctl *c, const struct ctl_args *a)
{
    json_t *body = import_body(c, a);
    if (!body)
        return CTL_EXIT_USAGE;
    struct ctl_response r;
    int rc = ctl_call(c, "PUT", "/api/v1/pushcerts", body, &r);
    json_decref(body);
    if (rc == CTL_EXIT_OK && !c->opts.json) {
        json_t *cert = json_object_get(r.json, "pushcert");
        if (!json_is_object(cert)) {
            rc = ctl_unexpected(c, &r);
        } else {
            fprintf(c->out, "%s push certificate for %s\n",
                    json_is_true(json_object_get(r.json, "replaced")) ? "Replaced" : "Imported",
                    json_string_value(json_object_get(cert, "topic")));
            rc = render_cert(c, cert);
        }
    }
    ctl_response_free(&r);
    return rc;
}

static const char *const LIST_HEADERS[] = {"TOPIC", "NOT AFTER", "DAYS LEFT", "WARNING",
                                           "DEVICES", "DISABLED"};
static const char *const LIST_FIELDS[] = {"topic", "not_after", "days_left", "expiry_warning",
                                          "devices", "disabled_reason"};
#define NCOLS (sizeof LIST_HEADERS / sizeof LIST_HEADERS[0])

static int render_list(const json_t *answer, struct buf *out)
{
    json_t *arr = json_object_get(answer, "pushcerts");
    if (!json_is_array(arr))
        return -1;
    if (json_array_size(arr) == 0)
        return buf_puts(out, "No push certificates.\n");
    struct ctl_table *t = ctl_table_new(NCOLS, LIST_HEADERS);
    if (!t)
        return -1;
    size_t i;
    json_t *row;
    int rc = 0;
    json_array_foreach(arr, i, row) {
        char *cells[NCOLS] = {0};
        for (size_t k = 0; k < NCOLS; k++) {
            json_t *v = json_object_get(row, LIST_FIELDS[k]);
            if (k == 2 && json_is_real(v)) {
                char num[32];
                snprintf(num, sizeof num, "%.1f", json_real_value(v));
                cells[k] = strdup(num);
            } else {
                cells[k] = ctl_json_text(v);
            }
        }
        rc |= ctl_table_add(t, (const char *const *)cells);
        for (size_t k = 0; k < NCOLS; k++)
            free(cells[k]);
    }
    rc |= ctl_table_render(t, out);
    const char *def = json_string_value(json_object_get(answer, "default_topic"));
    if (def)
        rc |= buf_printf(out, "New enrollments use %s\n", def);
    ctl_table_free(t);
    return rc < 0 ? -1 : 0;
}

int ctl_pushcert_list(struct ctl *c, const struct ctl_args *a)
{
    (void)a;
    return ctl_get_and_render(c, "/api/v1/pushcerts", render_list);
}

int ctl_pushcert_show(struct ctl *c, const struct ctl_args *a)
{
    if (a->npos != 1) {
        ctl_fail(c, "push-cert show needs one TOPIC");
        return CTL_EXIT_USAGE;
    }
    char *enc = ctl_url_encode(a->pos[0]);
    struct buf path = {0};
    if (!enc || buf_printf(&path, "/api/v1/pushcerts/%s", enc) < 0) {
        free(enc);
        buf_free(&path);
        return CTL_EXIT_FAIL;
    }
    free(enc);
    struct ctl_response r;
    int rc = ctl_call(c, "GET", path.data, NULL, &r);
    buf_free(&path);
    if (rc == CTL_EXIT_OK && !c->opts.json) {
        json_t *cert = json_object_get(r.json, "pushcert");
        rc = json_is_object(cert) ? render_cert(c, cert) : ctl_unexpected(c, &r);
    }
    ctl_response_free(&r);
    return rc;
}

/* ---- push ID… -------------------------------------------------------------- */

/* Ids from the arguments and --file (one per line, - for stdin). */
static int collect_ids(struct ctl *c, const struct ctl_args *a, json_t *ids)
{
    for (size_t i = 0; i < a->npos; i++)
        json_array_append_new(ids, json_string(a->pos[i]));
    const char *file = ctl_args_get(a, "file");
    if (file) {
        FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
        if (!f) {
            ctl_fail(c, "cannot open %s", file);
            return -1;
        }
        char line[1024];
        while (fgets(line, sizeof line, f)) {
            line[strcspn(line, "\r\n")] = '\0';
            if (line[0])
                json_array_append_new(ids, json_string(line));
        }
        if (f != stdin)
            fclose(f);
    }
    if (json_array_size(ids) == 0) {
        ctl_fail(c, "push needs at least one device id (arguments or --file)");
        return -1;
    }
    return 0;
}

static void progress(struct ctl *c, size_t done, size_t total, size_t ok)
{
    int width = 30, fill = total ? (int)(done * (size_t)width / total) : width;
    fprintf(c->err, "\r[%.*s%*s] %zu/%zu sent, %zu pushed", fill,
            "##############################", width - fill, "", done, total, ok);
    if (done == total)
        fputc('\n', c->err);
    fflush(c->err);
}

int ctl_push(struct ctl *c, const struct ctl_args *a)
{
    json_t *ids = json_array();
    if (!ids || collect_ids(c, a, ids) < 0) {
        json_decref(ids);
        return CTL_EXIT_USAGE;
    }
    const char *chunk_opt = ctl_args_get(a, "chunk");
    size_t chunk = chunk_opt && ctl_is_count(chunk_opt) && atol(chunk_opt) > 0
                       ? (size_t)atol(chunk_opt)
                       : 500;
    size_t total = json_array_size(ids), ok = 0, shown = 0;
    int bar = total > chunk || isatty(fileno(c->err));
    int rc = CTL_EXIT_OK;
    json_t *all = json_object();
    for (size_t from = 0; from < total && rc == CTL_EXIT_OK; from += chunk) {
        json_t *part = json_array();
        for (size_t i = from; i < total && i < from + chunk; i++)
            json_array_append(part, json_array_get(ids, i));
        json_t *body = json_pack("{s:o}", "devices", part);
        struct ctl_response r;
        int json_mode = c->opts.json;
        c->opts.json = 0; /* print one merged answer at the end */
        rc = ctl_call(c, "POST", "/api/v1/push", body, &r);
        c->opts.json = json_mode;
        json_decref(body);
        json_t *devices = json_object_get(r.json, "devices");
        if (rc == CTL_EXIT_OK && !json_is_object(devices))
            rc = ctl_unexpected(c, &r);
        if (rc == CTL_EXIT_OK) {
            json_object_update(all, devices);
            ok += (size_t)json_integer_value(json_object_get(r.json, "pushed"));
        }
        ctl_response_free(&r);
        if (bar && rc == CTL_EXIT_OK)
            progress(c, from + chunk < total ? from + chunk : total, total, ok);
    }
    if (rc == CTL_EXIT_OK) {
        if (c->opts.json) {
            json_t *answer = json_pack("{s:O,s:I,s:I}", "devices", all, "pushed",
                                       (json_int_t)ok, "failed", (json_int_t)(total - ok));
            char *s = answer ? json_dumps(answer, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
            if (s)
                fprintf(c->out, "%s\n", s);
            free(s);
            json_decref(answer);
        } else {
            const char *id;
            json_t *d;
            json_object_foreach(all, id, d) {
                if (json_is_true(json_object_get(d, "pushed")) || shown >= 20)
                    continue;
                shown++;
                fprintf(c->out, "%s: not pushed (%s)\n", id,
                        json_string_value(json_object_get(d, "result")));
            }
            fprintf(c->out, "Pushed %zu of %zu device%s\n", ok, total, total == 1 ? "" : "s");
        }
        if (ok < total)
            rc = CTL_EXIT_FAIL;
    }
    json_decref(all);
    json_decref(ids);
    return rc;
}
