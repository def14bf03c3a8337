/* pl.h: typed helpers over libplist for the device-facing front ends.
 * Parsing is strict about size and shape (XML or binary, must be well formed)
 * and lenient about content: every key is optional; accessors return NULL or
 * a default when a key is absent or of another type. */
#ifndef STEWARD_PL_H
#define STEWARD_PL_H

#include <plist/plist.h>
#include <stddef.h>
#include <stdint.h>

/* Parses an XML or binary plist. Returns the root (caller plist_free()s) or
 * NULL with *err set to a static reason. */
plist_t pl_parse(const uint8_t *data, size_t len, const char **err);
/* Same, and requires the root to be a dict. */
plist_t pl_parse_dict(const uint8_t *data, size_t len, const char **err);

/* String value of key, pointing into the plist (valid while it lives). */
const char *pl_str(plist_t dict, const char *key);
/* Data value of key, pointing into the plist; sets *len. */
const uint8_t *pl_data(plist_t dict, const char *key, size_t *len);
/* Bool value of key, or def when absent or not a bool. */
int pl_bool(plist_t dict, const char *key, int def);
/* Integer value of key, or def. */
int64_t pl_int(plist_t dict, const char *key, int64_t def);

/* Serialises to XML: malloc'd text (caller frees) and its length. 0 or -1. */
int pl_to_xml(plist_t node, char **out, size_t *len);

#endif
