/* store_pki.h: store.h's section for CA generations and certificate re-enrollment, included by
 * store.h (include store.h, not this). Implemented in store/pki.c on sql.h, so
 * every backend runs the same code. */
#ifndef STEWARD_STORE_PKI_H
#define STEWARD_STORE_PKI_H

#include <stddef.h>
#include <stdint.h>

struct store;

#endif
