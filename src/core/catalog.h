/* catalog.h: the command catalog, steward's own tables of the MDM commands
 * it builds for operators (docs/commands.md): each command's request keys
 * with their types, which are required, the access right (com.apple.mdm
 * AccessRights bits) it needs, whether it is for supervised devices only,
 * and how steward treats it (audited security action, one pending at a
 * time, confirmation). catalog_check validates a Command dictionary against
 * it and says what a target device must allow. Tables in catalog.c,
 * checking in catalog_check.c; used by api/typed.c, and held against Apple's
 * schema by tests/unit/test_catalog_schema.c. */
#ifndef STEWARD_CATALOG_H
#define STEWARD_CATALOG_H

#include <plist/plist.h>
#include <stddef.h>
#include <stdint.h>

/* com.apple.mdm AccessRights bits. */
#define RIGHT_INSPECT_PROFILES 1
#define RIGHT_PROFILES 2
#define RIGHT_LOCK_PASSCODE 4
#define RIGHT_ERASE 8
#define RIGHT_QUERY_DEVICE 16
#define RIGHT_QUERY_NETWORK 32
#define RIGHT_INSPECT_PROVISIONING 64
#define RIGHT_PROVISIONING 128
#define RIGHT_QUERY_APPS 256
#define RIGHT_QUERY_RESTRICTIONS 512
#define RIGHT_QUERY_SECURITY 1024
#define RIGHT_SETTINGS 2048
#define RIGHT_APPS 4096
#define RIGHTS_ALL 8191

enum cat_type {
    CAT_STRING,
    CAT_INTEGER,
    CAT_BOOLEAN,
    CAT_REAL,
    CAT_DATA,
    CAT_DATE,
    CAT_ARRAY,
    CAT_DICT,
};

/* cat_key.flags */
#define CAT_REQUIRED 1u
#define CAT_MACOS 2u /* not for iOS (Apple's schema: iOS introduced n/a) */

struct cat_key {
    const char *name;           /* Apple's key */
    enum cat_type type;
    unsigned flags;
    enum cat_type item;         /* arrays: the element type */
    const char *const *strings; /* allowed string values (NULL-terminated), or NULL */
    const int64_t *ints;        /* allowed integer values, or NULL */
    size_t nints;
    const struct cat_key *sub;  /* dictionaries: their keys; NULL = free-form */
    size_t nsub;
};

/* cat_command.flags */
#define CAT_SECURITY 1u     /* a security action: audited and logged at warn */
#define CAT_ONE_PENDING 2u  /* never queued twice for a device while one waits */
#define CAT_CONFIRM 4u      /* the request must carry an explicit confirmation */
#define CAT_UNLOCK_TOKEN 8u /* steward fills UnlockToken from the enrollment */

struct cat_command {
    const char *request_type;
    const char *schema;      /* file in apple-schema/mdm/commands */
    unsigned rights;         /* AccessRights bits needed (all of them) */
    int supervised;          /* 1: supervised devices only */
    unsigned flags;
    const struct cat_key *keys;
    size_t nkeys;
};

/* One item of the Settings command ({Item: name, ...}). */
struct cat_setting {
    const char *item;
    unsigned rights;   /* needed beside RIGHT_SETTINGS */
    int supervised;
    unsigned flags;    /* CAT_MACOS */
    const struct cat_key *keys; /* beside Item */
    size_t nkeys;
};

/* A DeviceInformation query and the right it needs (0: none). */
struct cat_query {
    const char *name;
    unsigned rights;
};

const struct cat_command *catalog_commands(size_t *n);
const struct cat_setting *catalog_settings(size_t *n);
const struct cat_query *catalog_queries(size_t *n);
/* Exact RequestType match; NULL when not in the catalog. */
const struct cat_command *catalog_find(const char *request_type);
const struct cat_setting *catalog_setting_find(const char *item);
const char *catalog_type_name(enum cat_type t); /* "string", "integer", … */
/* Apple's name of one right bit ("AllowAppInstallation"); NULL for others. */
const char *catalog_right_name(unsigned bit);

/* Whether a and b name the same key, ignoring case and underscores:
 * "phone_number" matches "PhoneNumber", "itunes_store_id" "iTunesStoreID". */
int catalog_name_eq(const char *a, const char *b);

/* What a checked command asks of the device it goes to. */
struct cat_needs {
    unsigned rights;     /* AccessRights bits that must all be granted */
    int supervised;      /* 1: supervised devices only */
    int app_store;       /* 1: installs from the App Store (refused where it is disabled) */
};

/* Why a command was refused: code (stable, for clients) and message. */
struct cat_error {
    const char *code;    /* "unknown_key", "wrong_type", "missing_key", "bad_value", … */
    char message[256];
};

/* Validates a Command dictionary (RequestType and Apple's keys) of a
 * cataloged type: no unknown key, every key of its type (and allowed value),
 * every required key present, command-specific rules (InstallApplication
 * names exactly one app source; DeviceInformation queries are known).
 * Fills needs. Returns 0, or -1 with err filled. Takes no ownership. */
int catalog_check(const struct cat_command *c, plist_t command, struct cat_needs *needs,
                  struct cat_error *err);

#endif
