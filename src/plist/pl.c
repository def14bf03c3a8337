/* pl.c: plist parsing and typed accessors behind pl.h. Device bodies arrive
 * here first, so parsing checks size and shape before libplist sees them and
 * never trusts a key's type. Called by mdm/ and api/. */
#include "plist/pl.h"

#include <stdlib.h>
#include <string.h>

/* libplist takes a uint32_t length; the HTTP layer caps bodies far lower. */
#define PL_MAX_INPUT (64u * 1024 * 1024)

static int looks_like_xml(const uint8_t *data, size_t len)
{
    size_t i = 0;
    if (len >= 3 && data[0] == 0xef && data[1] == 0xbb && data[2] == 0xbf)
        i = 3; /* UTF-8 byte order mark */
    while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n'))
        i++;
    return i < len && data[i] == '<';
}

plist_t pl_parse(const uint8_t *data, size_t len, const char **err)
{
    plist_t root = NULL;
    if (!data || len == 0) {
        *err = "empty body";
        return NULL;
    }
    if (len > PL_MAX_INPUT) {
        *err = "plist too large";
        return NULL;
    }
    if (len >= 8 && memcmp(data, "bplist00", 8) == 0) {
        plist_from_bin((const char *)data, (uint32_t)len, &root);
    } else if (looks_like_xml(data, len)) {
        /* libplist's XML reader wants no embedded NUL before the end, and
         * refuses a UTF-8 byte order mark, which some tools write. */
        if (memchr(data, '\0', len)) {
            *err = "plist contains a NUL byte";
            return NULL;
        }
        if (len >= 3 && data[0] == 0xef && data[1] == 0xbb && data[2] == 0xbf) {
            data += 3;
            len -= 3;
        }
        plist_from_xml((const char *)data, (uint32_t)len, &root);
    } else {
        *err = "body is not a property list (XML or binary)";
        return NULL;
    }
    if (!root)
        *err = "malformed property list";
    return root;
}

plist_t pl_parse_dict(const uint8_t *data, size_t len, const char **err)
{
    plist_t root = pl_parse(data, len, err);
    if (root && plist_get_node_type(root) != PLIST_DICT) {
        plist_free(root);
        *err = "property list root is not a dictionary";
        return NULL;
    }
    return root;
}

static plist_t pl_get(plist_t dict, const char *key, plist_type type)
{
    if (!dict || plist_get_node_type(dict) != PLIST_DICT)
        return NULL;
    plist_t n = plist_dict_get_item(dict, key);
    if (!n || plist_get_node_type(n) != type)
        return NULL;
    return n;
}

const char *pl_str(plist_t dict, const char *key)
{
    plist_t n = pl_get(dict, key, PLIST_STRING);
    return n ? plist_get_string_ptr(n, NULL) : NULL;
}

const uint8_t *pl_data(plist_t dict, const char *key, size_t *len)
{
    plist_t n = pl_get(dict, key, PLIST_DATA);
    if (!n)
        return NULL;
    uint64_t l = 0;
    const char *p = plist_get_data_ptr(n, &l);
    *len = (size_t)l;
    /* An empty <data/> gives a NULL pointer; callers want "present, empty". */
    return p ? (const uint8_t *)p : (const uint8_t *)"";
}

int pl_bool(plist_t dict, const char *key, int def)
{
    plist_t n = pl_get(dict, key, PLIST_BOOLEAN);
    if (!n)
        return def;
    uint8_t v = 0;
    plist_get_bool_val(n, &v);
    return v != 0;
}

int64_t pl_int(plist_t dict, const char *key, int64_t def)
{
    plist_t n = pl_get(dict, key, PLIST_UINT);
    if (!n)
        return def;
    uint64_t v = 0;
    plist_get_uint_val(n, &v);
    return (int64_t)v;
}

int pl_to_xml(plist_t node, char **out, size_t *len)
{
    char *xml = NULL;
    uint32_t l = 0;
    plist_to_xml(node, &xml, &l);
    if (!xml)
        return -1;
    *out = xml; /* plist_to_xml allocates with malloc; free() is right */
    *len = l;
    return 0;
}
