/* array.h: growing a malloc'd array one item at a time, the list builder of
 * the store's row readers and the simulator's reports. */
#ifndef STEWARD_UTIL_ARRAY_H
#define STEWARD_UTIL_ARRAY_H

#include <stddef.h>

/* Grows *arr, an array of elem-sized items with room for *cap, so that item
 * n fits (doubling, from 16). 0, or -1 out of memory (*arr and *cap
 * untouched). */
int array_grow(void **arr, size_t *cap, size_t n, size_t elem);

#endif
