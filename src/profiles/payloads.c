/* payloads.c: lookups over the generated payload tables (payload_tables.c). */
#include "profiles/payloads.h"

#include <string.h>

const struct pk_payload *payload_find(const char *type)
{
    if (!type)
        return NULL;
    for (size_t i = 0; i < payload_tables_n; i++)
        if (strcmp(payload_tables[i].type, type) == 0)
            return &payload_tables[i];
    return NULL;
}

int payload_is_buildable(const struct pk_payload *p)
{
    return p && strcmp(p->type, "CommonPayloadKeys") != 0 && strcmp(p->type, "TopLevel") != 0;
}

const struct pk_key *payload_key(const struct pk_key *keys, size_t n, const char *name)
{
    const struct pk_key *any = NULL;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
        if (strcmp(keys[i].name, "ANY") == 0)
            any = &keys[i];
    }
    return any;
}

const char *pk_type_name(enum pk_type t)
{
    switch (t) {
    case PK_STRING: return "string";
    case PK_INTEGER: return "integer";
    case PK_BOOL: return "boolean";
    case PK_ARRAY: return "array";
    case PK_DICT: return "dictionary";
    case PK_DATA: return "data";
    case PK_DATE: return "date";
    case PK_REAL: return "real";
    case PK_ANY: break;
    }
    return "any";
}
