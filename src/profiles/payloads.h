/* payloads.h: the payload key tables of every payload type the profile
 * builder supports (payload_tables.c, generated from Apple's schema by
 * scripts/gen_payload_tables.py) and the lookups over them. Used by
 * profiles/profile.c to build and validate profiles and by the schema test. */
#ifndef STEWARD_PAYLOADS_H
#define STEWARD_PAYLOADS_H

#include <stddef.h>
#include <stdint.h>

enum pk_type { PK_ANY, PK_STRING, PK_INTEGER, PK_BOOL, PK_ARRAY, PK_DICT, PK_DATA, PK_DATE, PK_REAL };

/* One key of a payload (or of a dictionary inside it). For an array, sub[0]
 * describes its items; for a dictionary, sub lists its keys. A key named
 * "ANY" matches any name. */
struct pk_key {
    const char *name;
    enum pk_type type;
    unsigned char required;
    unsigned char supervised; /* iOS honours it on supervised devices only */
    unsigned char secret;     /* a password or private key: never logged or shown */
    const char *def;          /* default as text, or NULL */
    const char *const *allowed; /* NULL-terminated allowed values as text, or NULL */
    unsigned char has_range;
    int64_t min, max;
    const struct pk_key *sub;
    size_t nsub;
};

struct pk_payload {
    const char *type;  /* PayloadType; also "CommonPayloadKeys" and "TopLevel" */
    const char *title;
    int supervised;    /* the whole payload is supervised-only on iOS */
    const struct pk_key *keys;
    size_t nkeys;
};

extern const struct pk_payload payload_tables[];
extern const size_t payload_tables_n;

/* The table of a payload type (or "CommonPayloadKeys" / "TopLevel"), NULL
 * when the builder does not know it. */
const struct pk_payload *payload_find(const char *type);
/* 1 for the payload types a profile may contain (not the two pseudo types). */
int payload_is_buildable(const struct pk_payload *p);
/* The key named name in keys[0..n) ("ANY" rows match everything), or NULL. */
const struct pk_key *payload_key(const struct pk_key *keys, size_t n, const char *name);
/* "string", "integer", "boolean", "array", "dictionary", "data", "date",
 * "real", "any". */
const char *pk_type_name(enum pk_type t);

#endif
