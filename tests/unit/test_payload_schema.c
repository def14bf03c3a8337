/* test_payload_schema.c: holds steward's payload tables (src/profiles/
 * payload_tables.c) against Apple's schema in ../shared/apple-schema/mdm/
 * profiles: every key of every supported payload type, nested ones too, has
 * the schema's name, type, presence and supervised-only mark, and every
 * schema key is in the table. Reads the YAML with libyaml into a small tree.
 * Skips (clearly) when ../shared is absent. */
#include "profiles/payloads.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include <cmocka.h>

/* ---- a tiny YAML tree ---- */

enum node_kind { N_SCALAR, N_MAP, N_SEQ };
struct node {
    enum node_kind kind;
    char *text;            /* scalar */
    struct node **items;   /* seq items, or map key/value pairs (2*n) */
    size_t n;
};

static void node_free(struct node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < (n->kind == N_MAP ? 2 * n->n : n->n); i++)
        node_free(n->items[i]);
    free(n->items);
    free(n->text);
    free(n);
}

static struct node *parse_node(yaml_parser_t *ps, yaml_event_t *ev);

static struct node *parse_collection(yaml_parser_t *ps, enum node_kind kind)
{
    struct node *n = calloc(1, sizeof *n);
    n->kind = kind;
    size_t cap = 0;
    struct node **flat = NULL;
    size_t cnt = 0;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(ps, &ev))
            break;
        if (ev.type == YAML_MAPPING_END_EVENT || ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        struct node *c = parse_node(ps, &ev);
        yaml_event_delete(&ev);
        if (cnt == cap) {
            cap = cap ? cap * 2 : 8;
            flat = realloc(flat, cap * sizeof *flat);
        }
        flat[cnt++] = c;
    }
    n->items = flat;
    n->n = kind == N_MAP ? cnt / 2 : cnt;
    return n;
}

/* Anchors seen in the current file (&name), resolved by aliases (*name). */
static struct {
    char name[64];
    struct node *node;
} anchors[64];
static size_t nanchors;

static struct node *node_copy(const struct node *n)
{
    struct node *c = calloc(1, sizeof *c);
    c->kind = n->kind;
    c->text = n->text ? strdup(n->text) : NULL;
    size_t cnt = n->kind == N_MAP ? 2 * n->n : n->n;
    c->items = cnt ? calloc(cnt, sizeof *c->items) : NULL;
    for (size_t i = 0; i < cnt; i++)
        c->items[i] = node_copy(n->items[i]);
    c->n = n->n;
    return c;
}

static struct node *parse_node(yaml_parser_t *ps, yaml_event_t *ev)
{
    struct node *n;
    const yaml_char_t *anchor = NULL;
    if (ev->type == YAML_ALIAS_EVENT) {
        for (size_t i = 0; i < nanchors; i++)
            if (strcmp(anchors[i].name, (const char *)ev->data.alias.anchor) == 0)
                return node_copy(anchors[i].node);
        n = calloc(1, sizeof *n);
        n->text = strdup("");
        return n;
    }
    if (ev->type == YAML_MAPPING_START_EVENT) {
        anchor = ev->data.mapping_start.anchor;
        n = parse_collection(ps, N_MAP);
    } else if (ev->type == YAML_SEQUENCE_START_EVENT) {
        anchor = ev->data.sequence_start.anchor;
        n = parse_collection(ps, N_SEQ);
    } else {
        n = calloc(1, sizeof *n);
        n->kind = N_SCALAR;
        n->text = strdup(ev->type == YAML_SCALAR_EVENT ? (const char *)ev->data.scalar.value : "");
        if (ev->type == YAML_SCALAR_EVENT)
            anchor = ev->data.scalar.anchor;
    }
    if (anchor && nanchors < 64) {
        snprintf(anchors[nanchors].name, sizeof anchors[nanchors].name, "%s", (const char *)anchor);
        anchors[nanchors++].node = n;
    }
    return n;
}

static struct node *load_yaml(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    yaml_parser_t ps;
    yaml_parser_initialize(&ps);
    yaml_parser_set_input_file(&ps, f);
    struct node *root = NULL;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&ps, &ev))
            break;
        int done = ev.type == YAML_STREAM_END_EVENT;
        if (!root && (ev.type == YAML_MAPPING_START_EVENT || ev.type == YAML_SEQUENCE_START_EVENT))
            root = parse_node(&ps, &ev);
        yaml_event_delete(&ev);
        if (done)
            break;
    }
    yaml_parser_delete(&ps);
    fclose(f);
    nanchors = 0;
    return root;
}

static struct node *get(struct node *m, const char *key)
{
    if (!m || m->kind != N_MAP)
        return NULL;
    for (size_t i = 0; i < m->n; i++)
        if (m->items[2 * i]->kind == N_SCALAR && strcmp(m->items[2 * i]->text, key) == 0)
            return m->items[2 * i + 1];
    return NULL;
}

static const char *text(struct node *n)
{
    return n && n->kind == N_SCALAR ? n->text : NULL;
}

/* ---- the comparison ---- */

static enum pk_type schema_type(const char *t)
{
    static const struct { const char *s; enum pk_type t; } map[] = {
        {"<string>", PK_STRING}, {"<integer>", PK_INTEGER}, {"<boolean>", PK_BOOL},
        {"<array>", PK_ARRAY},   {"<dictionary>", PK_DICT}, {"<data>", PK_DATA},
        {"<date>", PK_DATE},     {"<real>", PK_REAL},       {"<url>", PK_STRING},
        {"<hostname>", PK_STRING},
    };
    for (size_t i = 0; t && i < sizeof map / sizeof map[0]; i++)
        if (strcmp(map[i].s, t) == 0)
            return map[i].t;
    return PK_ANY;
}

static int ios_supervised(struct node *k)
{
    const char *s = text(get(get(get(k, "supportedOS"), "iOS"), "supervised"));
    return s && strcmp(s, "true") == 0;
}

static size_t checked_keys;

static void compare_keys(const char *where, const struct pk_key *keys, size_t nkeys,
                         struct node *schema_keys)
{
    size_t schema_n = 0;
    for (size_t i = 0; schema_keys && i < schema_keys->n; i++) {
        struct node *k = schema_keys->items[i];
        const char *name = text(get(k, "key"));
        if (!name)
            continue;
        schema_n++;
        const struct pk_key *t = NULL;
        for (size_t j = 0; j < nkeys && !t; j++)
            if (strcmp(keys[j].name, name) == 0)
                t = &keys[j];
        if (!t) {
            print_error("%s.%s: in the schema, missing from the table\n", where, name);
            fail();
        }
        if (t->type != schema_type(text(get(k, "type")))) {
            print_error("%s.%s: table says %s, schema %s\n", where, name, pk_type_name(t->type),
                        text(get(k, "type")));
            fail();
        }
        const char *presence = text(get(k, "presence"));
        if (t->required != (presence && strcmp(presence, "required") == 0) ||
            t->supervised != ios_supervised(k)) {
            print_error("%s.%s: required/supervised differ from the schema\n", where, name);
            fail();
        }
        checked_keys++;
        char sub[512];
        snprintf(sub, sizeof sub, "%s.%s", where, name);
        compare_keys(sub, t->sub, t->nsub, get(k, "subkeys"));
    }
    if (schema_n != nkeys) {
        print_error("%s: %zu keys in the schema, %zu in the table\n", where, schema_n, nkeys);
        fail();
    }
}

static void test_tables_match_schema(void **state)
{
    (void)state;
    const char *shared = getenv("STEWARD_SHARED");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/apple-schema/mdm/profiles", shared ? shared : "../shared");
    char probe[1100];
    snprintf(probe, sizeof probe, "%s/TopLevel.yaml", dir);
    FILE *f = fopen(probe, "r");
    if (!f) {
        print_message("SKIPPED: %s not found (../shared absent)\n", dir);
        skip();
    }
    fclose(f);
    size_t payloads = 0;
    for (size_t i = 0; i < payload_tables_n; i++) {
        const struct pk_payload *p = &payload_tables[i];
        char path[1200];
        snprintf(path, sizeof path, "%s/%s.yaml", dir, p->type);
        struct node *y = load_yaml(path);
        if (!y) {
            print_error("cannot read %s\n", path);
            fail();
        }
        struct node *pl = get(y, "payload");
        if (payload_is_buildable(p)) {
            assert_string_equal(text(get(pl, "payloadtype")), p->type);
            assert_int_equal(p->supervised, ios_supervised(pl));
            payloads++;
        }
        compare_keys(p->type, p->keys, p->nkeys, get(y, "payloadkeys"));
        node_free(y);
    }
    /* Every payload type the issue lists. */
    assert_int_equal(payloads, 20);
    print_message("checked %zu payload types, %zu keys\n", payloads, checked_keys);
}

static void test_lookup(void **state)
{
    (void)state;
    const struct pk_payload *w = payload_find("com.apple.wifi.managed");
    assert_non_null(w);
    const struct pk_key *enc = payload_key(w->keys, w->nkeys, "EncryptionType");
    assert_non_null(enc);
    assert_int_equal(enc->type, PK_STRING);
    assert_non_null(enc->allowed);
    assert_true(payload_key(w->keys, w->nkeys, "Password")->secret);
    assert_true(payload_find("com.apple.app.lock")->supervised);
    assert_true(payload_find("com.apple.proxy.http.global")->supervised);
    assert_false(payload_find("com.apple.mail.managed")->supervised);
    const struct pk_payload *r = payload_find("com.apple.applicationaccess");
    assert_true(payload_key(r->keys, r->nkeys, "allowAccountModification")->supervised);
    assert_false(payload_key(r->keys, r->nkeys, "allowCamera")->supervised);
    const struct pk_payload *pc = payload_find("com.apple.mobiledevice.passwordpolicy");
    for (const char *k = "forcePIN,allowSimple,requireAlphanumeric,minLength,minComplexChars,"
                         "maxPINAgeInDays,maxInactivity,pinHistory,maxGracePeriod,maxFailedAttempts";
         *k;) {
        char name[64];
        size_t l = strcspn(k, ",");
        snprintf(name, sizeof name, "%.*s", (int)l, k);
        assert_non_null(payload_key(pc->keys, pc->nkeys, name));
        k += l + (k[l] == ',');
    }
    assert_null(payload_find("com.example.nothing"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_tables_match_schema),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
