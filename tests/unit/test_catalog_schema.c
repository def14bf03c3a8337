/* test_catalog_schema.c: holds the command catalog (core/catalog.c) against
 * Apple's schema in ../shared/apple-schema/mdm/commands, so drift is caught:
 * every cataloged command's RequestType, access right and supervised mark,
 * every request key both ways (name, type, required, iOS or macOS only,
 * allowed values, array item types, dictionary keys), every Settings item,
 * and every DeviceInformation query with its right. Parses the YAML with
 * libyaml. Skips, saying so, when ../shared is absent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include <cmocka.h>

#include "core/catalog.h"

static char schema_dir[1024];
static int mismatches;

static void mismatch(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("MISMATCH: ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    mismatches++;
}

/* ---- a small reader over libyaml's document tree ---------------------------- */

struct doc {
    yaml_document_t d;
    int loaded;
};

static int doc_load(struct doc *doc, const char *file)
{
    char path[1400];
    snprintf(path, sizeof path, "%s/%s", schema_dir, file);
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    yaml_parser_t p;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_file(&p, f);
    int ok = yaml_parser_load(&p, &doc->d);
    yaml_parser_delete(&p);
    fclose(f);
    doc->loaded = ok;
    return ok && yaml_document_get_root_node(&doc->d) ? 0 : -1;
}

static void doc_free(struct doc *doc)
{
    if (doc->loaded)
        yaml_document_delete(&doc->d);
}

static yaml_node_t *root(struct doc *doc)
{
    return yaml_document_get_root_node(&doc->d);
}

static const char *scalar(struct doc *doc, yaml_node_t *n)
{
    (void)doc;
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static yaml_node_t *get(struct doc *doc, yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        const char *k = scalar(doc, yaml_document_get_node(&doc->d, p->key));
        if (k && strcmp(k, key) == 0)
            return yaml_document_get_node(&doc->d, p->value);
    }
    return NULL;
}

static const char *get_str(struct doc *doc, yaml_node_t *map, const char *key)
{
    return scalar(doc, get(doc, map, key));
}

static size_t seq_len(yaml_node_t *seq)
{
    return seq && seq->type == YAML_SEQUENCE_NODE
               ? (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start)
               : 0;
}

static yaml_node_t *seq_at(struct doc *doc, yaml_node_t *seq, size_t i)
{
    return yaml_document_get_node(&doc->d, seq->data.sequence.items.start[i]);
}

/* The iOS entry of a node's supportedOS, or NULL. */
static yaml_node_t *ios(struct doc *doc, yaml_node_t *n)
{
    return get(doc, get(doc, n, "supportedOS"), "iOS");
}

static int ios_na(struct doc *doc, yaml_node_t *n)
{
    const char *intro = get_str(doc, ios(doc, n), "introduced");
    return intro && strcmp(intro, "n/a") == 0;
}

static int ios_supervised(struct doc *doc, yaml_node_t *n)
{
    const char *s = get_str(doc, ios(doc, n), "supervised");
    return s && strcmp(s, "true") == 0;
}

static const char *schema_type(enum cat_type t)
{
    switch (t) {
    case CAT_STRING: return "<string>";
    case CAT_INTEGER: return "<integer>";
    case CAT_BOOLEAN: return "<boolean>";
    case CAT_REAL: return "<real>";
    case CAT_DATA: return "<data>";
    case CAT_DATE: return "<date>";
    case CAT_ARRAY: return "<array>";
    case CAT_DICT: return "<dictionary>";
    }
    return "?";
}

static yaml_node_t *key_node(struct doc *doc, yaml_node_t *seq, const char *name)
{
    for (size_t i = 0; i < seq_len(seq); i++) {
        yaml_node_t *k = seq_at(doc, seq, i);
        const char *kn = get_str(doc, k, "key");
        if (kn && strcmp(kn, name) == 0)
            return k;
    }
    return NULL;
}

/* ---- comparing keys ---------------------------------------------------------------- */

static void compare_keys(struct doc *doc, const char *where, const struct cat_key *keys,
                         size_t n, yaml_node_t *seq, const char *skip);

static void compare_values(struct doc *doc, const char *where, const struct cat_key *k,
                           yaml_node_t *sk)
{
    yaml_node_t *range = get(doc, sk, "rangelist");
    if (k->strings) {
        size_t m = 0;
        while (k->strings[m])
            m++;
        if (m != seq_len(range))
            mismatch("%s%s: %zu allowed values, schema has %zu", where, k->name, m,
                     seq_len(range));
        for (size_t i = 0; i < m && i < seq_len(range); i++) {
            const char *v = scalar(doc, seq_at(doc, range, i));
            if (!v || strcmp(v, k->strings[i]) != 0)
                mismatch("%s%s: value %s, schema %s", where, k->name, k->strings[i],
                         v ? v : "?");
        }
    }
    if (k->ints) {
        if (k->nints != seq_len(range))
            mismatch("%s%s: %zu allowed integers, schema has %zu", where, k->name, k->nints,
                     seq_len(range));
        for (size_t i = 0; i < k->nints && i < seq_len(range); i++) {
            const char *v = scalar(doc, seq_at(doc, range, i));
            if (!v || strtoll(v, NULL, 10) != k->ints[i])
                mismatch("%s%s: integer %lld, schema %s", where, k->name, (long long)k->ints[i],
                         v ? v : "?");
        }
    }
}

static void compare_key(struct doc *doc, const char *where, const struct cat_key *k,
                        yaml_node_t *sk)
{
    const char *type = get_str(doc, sk, "type");
    if (!type || strcmp(type, schema_type(k->type)) != 0)
        mismatch("%s%s: type %s, schema %s", where, k->name, schema_type(k->type),
                 type ? type : "?");
    const char *presence = get_str(doc, sk, "presence");
    int required = presence && strcmp(presence, "required") == 0;
    if (required != !!(k->flags & CAT_REQUIRED))
        mismatch("%s%s: required %d, schema %s", where, k->name, !!(k->flags & CAT_REQUIRED),
                 presence ? presence : "?");
    if (ios_na(doc, sk) != !!(k->flags & CAT_MACOS))
        mismatch("%s%s: macOS-only mark %d, schema iOS n/a %d", where, k->name,
                 !!(k->flags & CAT_MACOS), ios_na(doc, sk));
    if (k->type != CAT_ARRAY)
        compare_values(doc, where, k, sk);
    yaml_node_t *sub = get(doc, sk, "subkeys");
    if (k->type == CAT_ARRAY) {
        yaml_node_t *item = seq_len(sub) ? seq_at(doc, sub, 0) : NULL;
        const char *it = get_str(doc, item, "type");
        if (!it || strcmp(it, schema_type(k->item)) != 0)
            mismatch("%s%s: items %s, schema %s", where, k->name, schema_type(k->item),
                     it ? it : "?");
        if (k->strings && item)
            compare_values(doc, where, k, item);
    }
    if (k->type == CAT_DICT && k->sub) {
        char inner[256];
        snprintf(inner, sizeof inner, "%s%s.", where, k->name);
        compare_keys(doc, inner, k->sub, k->nsub, sub, NULL);
    }
}

static void compare_keys(struct doc *doc, const char *where, const struct cat_key *keys,
                         size_t n, yaml_node_t *seq, const char *skip)
{
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *sk = key_node(doc, seq, keys[i].name);
        if (!sk)
            mismatch("%s%s: not in the schema", where, keys[i].name);
        else
            compare_key(doc, where, &keys[i], sk);
    }
    for (size_t i = 0; i < seq_len(seq); i++) {
        const char *name = get_str(doc, seq_at(doc, seq, i), "key");
        if (!name || (skip && strcmp(name, skip) == 0))
            continue;
        size_t j = 0;
        while (j < n && strcmp(keys[j].name, name) != 0)
            j++;
        if (j == n)
            mismatch("%s%s: in the schema, not in the catalog", where, name);
    }
}

/* ---- the tests ---------------------------------------------------------------------- */

static int have_schema(void)
{
    struct stat st;
    if (stat(schema_dir, &st) == 0)
        return 1;
    printf("SKIP: %s is absent: ../shared/apple-schema is needed for this test\n", schema_dir);
    return 0;
}

static void test_commands(void **state)
{
    (void)state;
    if (!have_schema())
        skip();
    mismatches = 0;
    size_t n = 0;
    const struct cat_command *c = catalog_commands(&n);
    for (size_t i = 0; i < n; i++) {
        struct doc doc = {0};
        if (doc_load(&doc, c[i].schema) < 0) {
            mismatch("%s: cannot read %s", c[i].request_type, c[i].schema);
            doc_free(&doc);
            continue;
        }
        yaml_node_t *payload = get(&doc, root(&doc), "payload");
        const char *rt = get_str(&doc, payload, "requesttype");
        if (!rt || strcmp(rt, c[i].request_type) != 0)
            mismatch("%s: schema requesttype %s", c[i].request_type, rt ? rt : "?");
        const char *right = get_str(&doc, ios(&doc, payload), "accessrights");
        const char *mine = catalog_right_name(c[i].rights);
        int special = !strcmp(c[i].request_type, "DeviceInformation");
        if (!special && (!right || !mine || strcmp(right, mine) != 0))
            mismatch("%s: right %s, schema %s", c[i].request_type, mine ? mine : "?",
                     right ? right : "?");
        if (ios_supervised(&doc, payload) != c[i].supervised)
            mismatch("%s: supervised %d, schema %d", c[i].request_type, c[i].supervised,
                     ios_supervised(&doc, payload));
        char where[128];
        snprintf(where, sizeof where, "%s: ", c[i].request_type);
        compare_keys(&doc, where, c[i].keys, c[i].nkeys, get(&doc, root(&doc), "payloadkeys"),
                     NULL);
        doc_free(&doc);
    }
    assert_int_equal(mismatches, 0);
}

static void test_settings_items(void **state)
{
    (void)state;
    if (!have_schema())
        skip();
    mismatches = 0;
    struct doc doc = {0};
    assert_int_equal(doc_load(&doc, "settings.yaml"), 0);
    yaml_node_t *settings = key_node(&doc, get(&doc, root(&doc), "payloadkeys"), "Settings");
    yaml_node_t *items = get(&doc, settings, "subkeys");
    assert_non_null(items);
    size_t n = 0;
    const struct cat_setting *s = catalog_settings(&n);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *it = key_node(&doc, items, s[i].item);
        if (!it) {
            mismatch("Settings %s: not in the schema", s[i].item);
            continue;
        }
        if (ios_supervised(&doc, it) != s[i].supervised)
            mismatch("Settings %s: supervised %d, schema %d", s[i].item, s[i].supervised,
                     ios_supervised(&doc, it));
        if (ios_na(&doc, it) != !!(s[i].flags & CAT_MACOS))
            mismatch("Settings %s: macOS-only mark differs", s[i].item);
        yaml_node_t *keys = get(&doc, it, "subkeys");
        yaml_node_t *item = key_node(&doc, keys, "Item");
        yaml_node_t *range = get(&doc, item, "rangelist");
        const char *named = seq_len(range) ? scalar(&doc, seq_at(&doc, range, 0)) : NULL;
        if (!named || strcmp(named, s[i].item) != 0)
            mismatch("Settings %s: Item value %s", s[i].item, named ? named : "?");
        char where[128];
        snprintf(where, sizeof where, "Settings %s: ", s[i].item);
        compare_keys(&doc, where, s[i].keys, s[i].nkeys, keys, "Item");
    }
    for (size_t i = 0; i < seq_len(items); i++) {
        const char *name = get_str(&doc, seq_at(&doc, items, i), "key");
        if (name && !catalog_setting_find(name))
            mismatch("Settings %s: in the schema, not in the catalog", name);
    }
    doc_free(&doc);
    assert_int_equal(mismatches, 0);
}

static unsigned right_bit(const char *name)
{
    for (unsigned bit = 1; bit <= RIGHTS_ALL; bit <<= 1)
        if (name && strcmp(catalog_right_name(bit), name) == 0)
            return bit;
    return 0; /* n/a, None, absent: no right needed */
}

static void test_device_information_queries(void **state)
{
    (void)state;
    if (!have_schema())
        skip();
    mismatches = 0;
    struct doc doc = {0};
    assert_int_equal(doc_load(&doc, "information.device.yaml"), 0);
    yaml_node_t *q = key_node(&doc, get(&doc, root(&doc), "payloadkeys"), "Queries");
    yaml_node_t *item = seq_len(get(&doc, q, "subkeys")) ? seq_at(&doc, get(&doc, q, "subkeys"), 0)
                                                         : NULL;
    yaml_node_t *names = get(&doc, item, "subkeys");
    size_t n = 0;
    const struct cat_query *cq = catalog_queries(&n);
    assert_int_equal(n, seq_len(names));
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *sk = key_node(&doc, names, cq[i].name);
        if (!sk) {
            mismatch("DeviceInformation query %s: not in the schema", cq[i].name);
            continue;
        }
        unsigned bit = right_bit(get_str(&doc, ios(&doc, sk), "accessrights"));
        if (bit != cq[i].rights)
            mismatch("DeviceInformation query %s: right %u, schema %u", cq[i].name,
                     cq[i].rights, bit);
    }
    doc_free(&doc);
    assert_int_equal(mismatches, 0);
}

int main(void)
{
    const char *shared = getenv("STEWARD_SHARED");
    snprintf(schema_dir, sizeof schema_dir, "%s/apple-schema/mdm/commands",
             shared ? shared : "../shared");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commands),
        cmocka_unit_test(test_settings_items),
        cmocka_unit_test(test_device_information_queries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
