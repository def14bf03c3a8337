/* pki_load.c: builds what `steward serve` trusts and signs with from the
 * configuration: the active CA (with its chain), the previous CA during the
 * rotation overlap window, the SCEP RA when its file exists, and the trust
 * store for device identities (steward's CA plus device_ca_files, external
 * enterprise CAs). Also used by `steward ca show`. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "app/app.h"
#include "pki/pki.h"
#include "util/log.h"

#define MAX_DEVICE_CA_FILES 16

int64_t app_previous_ca_until(const struct config *cfg, const struct pki_ca *ca)
{
    struct pki_cert_info info;
    pki_cert_info(ca->cert, &info);
    return info.not_before + (int64_t)cfg->ca_overlap_days * 86400;
}

/* Splits device_ca_files (comma-separated, relative to the data dir) into
 * paths[]; returns how many, or -1 when there are too many. */
static int device_ca_paths(const struct config *cfg, char paths[][CONFIG_STR * 2], int max)
{
    int n = 0;
    const char *p = cfg->device_ca_files;
    while (*p) {
        while (*p == ',' || *p == ' ')
            p++;
        const char *end = p;
        while (*end && *end != ',')
            end++;
        const char *last = end;
        while (last > p && last[-1] == ' ')
            last--;
        if (last > p) {
            if (n == max)
                return -1;
            int len = (int)(last - p);
            if (*p == '/' || !cfg->data_dir[0])
                snprintf(paths[n], sizeof paths[n], "%.*s", len, p);
            else
                snprintf(paths[n], sizeof paths[n], "%s/%.*s", cfg->data_dir, len, p);
            n++;
        }
        p = end;
    }
    return n;
}

struct pki_trust *app_device_trust(const struct config *cfg, const struct pki_ca *ca, char **err)
{
    static char paths[MAX_DEVICE_CA_FILES][CONFIG_STR * 2];
    const char *files[MAX_DEVICE_CA_FILES + 1];
    int n = device_ca_paths(cfg, paths, MAX_DEVICE_CA_FILES);
    if (n < 0) {
        *err = strdup("device_ca_files: too many files (at most 16)");
        return NULL;
    }
    files[0] = cfg->ca_cert;
    for (int i = 0; i < n; i++)
        files[i + 1] = paths[i];
    struct pki_trust *t = pki_trust_new_files(files, (size_t)n + 1, err);
    if (!t)
        return NULL;
    for (int i = 0; i < n; i++)
        log_info("device CA trusted", "file=\"%s\"", paths[i]);
    if (ca->previous &&
        pki_trust_set_previous(t, cfg->ca_previous_cert, ca->previous_until, err) != 0) {
        pki_trust_free(t);
        return NULL;
    }
    return t;
}

int app_load_ca(const struct config *cfg, struct pki_ca **out, char **err)
{
    struct pki_ca *ca = pki_ca_load(cfg->ca_cert, cfg->ca_key, err);
    if (!ca)
        return -1;
    if (access(cfg->ca_previous_cert, F_OK) == 0) {
        int64_t until = app_previous_ca_until(cfg, ca);
        if ((int64_t)time(NULL) < until) {
            if (pki_ca_load_previous(ca, cfg->ca_previous_cert, cfg->ca_previous_key, until,
                                     err) != 0)
                goto fail;
            log_info("previous CA trusted", "until=%lld", (long long)until);
        } else {
            log_info("previous CA no longer trusted", "ended=%lld", (long long)until);
        }
    }
    if (access(cfg->scep_ra_cert, F_OK) == 0) {
        if (pki_ca_load_ra(ca, cfg->scep_ra_cert, cfg->scep_ra_key, err) != 0)
            goto fail;
        log_info("SCEP RA loaded", "cert=\"%s\"", cfg->scep_ra_cert);
    }
    *out = ca;
    return 0;
fail:
    pki_ca_free(ca);
    return -1;
}
