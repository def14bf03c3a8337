/* scep_load.c: the SCEP enrollment load generator behind bench/scep/run.
 * Prepares N enrollments beforehand (an RSA-2048 key, a CSR carrying the
 * challenge, a self-signed signer certificate and the enveloped, signed
 * PKCSReq, exactly what a device sends), then POSTs them to steward's
 * /scep from C threads over keep-alive connections and reads every CertRep.
 * Only the sending phase is timed, so the figure is the server's issuance
 * rate, not the client's key generation. Prints one line of key=value
 * results for the run script. */
#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "scep/message.h"
#include "util/buf.h"

struct enrollment {
    EVP_PKEY *key;
    X509 *signer;
    uint8_t *msg;
    size_t msg_len;
    char tid[129];
    uint8_t nonce[16];
};

struct run {
    const char *url;
    X509 *ca;
    struct enrollment *e;
    int n;
    atomic_int next;
    atomic_int ok, failed;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static X509_REQ *make_csr(EVP_PKEY *key, int i, const char *challenge)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_NAME_new();
    char cn[64];
    snprintf(cn, sizeof cn, "bench-scep-%d", i);
    int ok = req && name &&
             X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (unsigned char *)cn, -1, -1,
                                        0) == 1 &&
             X509_REQ_set_subject_name(req, name) == 1 && X509_REQ_set_pubkey(req, key) == 1 &&
             X509_REQ_add1_attr_by_NID(req, NID_pkcs9_challengePassword, MBSTRING_UTF8,
                                       (const unsigned char *)challenge, -1) == 1 &&
             X509_REQ_sign(req, key, EVP_sha256()) > 0;
    X509_NAME_free(name);
    if (!ok) {
        X509_REQ_free(req);
        return NULL;
    }
    return req;
}

/* SCEP's signer before issuance: a short-lived self-signed certificate for
 * the same key, with the CSR's subject (RFC 8894 §2.3). */
static X509 *make_signer(X509_REQ *req, EVP_PKEY *key)
{
    X509 *x = X509_new();
    if (!x || X509_set_version(x, 2) != 1 ||
        ASN1_INTEGER_set(X509_get_serialNumber(x), 1) != 1 ||
        X509_set_subject_name(x, X509_REQ_get_subject_name(req)) != 1 ||
        X509_set_issuer_name(x, X509_REQ_get_subject_name(req)) != 1 ||
        !X509_gmtime_adj(X509_getm_notBefore(x), -60) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), 3600) || X509_set_pubkey(x, key) != 1 ||
        X509_sign(x, key, EVP_sha256()) <= 0) {
        X509_free(x);
        return NULL;
    }
    return x;
}

static int prepare_one(struct enrollment *e, int i, X509 *ca, const char *challenge)
{
    e->key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    if (!e->key)
        return -1;
    X509_REQ *req = make_csr(e->key, i, challenge);
    if (!req)
        return -1;
    e->signer = make_signer(req, e->key);
    int rc = e->signer ? scep_pkcsreq_build(req, e->signer, e->key, ca, 0, NULL, e->tid,
                                            e->nonce, &e->msg, &e->msg_len)
                       : -1;
    X509_REQ_free(req);
    return rc;
}

struct prep_arg {
    struct run *r;
    const char *challenge;
    int from, step, failed;
};

static void *prepare_thread(void *p)
{
    struct prep_arg *a = p;
    for (int i = a->from; i < a->r->n; i += a->step)
        if (prepare_one(&a->r->e[i], i, a->r->ca, a->challenge) != 0)
            a->failed++;
    return NULL;
}

static size_t collect(char *data, size_t size, size_t nmemb, void *userp)
{
    return buf_append(userp, data, size * nmemb) == 0 ? size * nmemb : 0;
}

/* One enrollment: POST the PKCSReq, read the CertRep, check it is a SUCCESS
 * carrying a certificate for our key. */
static int enroll_one(CURL *c, struct run *r, struct enrollment *e)
{
    struct buf body = {0};
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)e->msg);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)e->msg_len);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    long code = 0;
    int ok = curl_easy_perform(c) == CURLE_OK &&
             curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code == 200;
    if (ok) {
        int status = -1, fail_info = -1;
        X509 *issued = NULL;
        const char *reason = NULL;
        ok = scep_certrep_read((const uint8_t *)body.data, body.len, r->ca, e->signer, e->key, e->tid, e->nonce,
                               &status, &fail_info, &issued, &reason) == 0 &&
             status == SCEP_SUCCESS && issued;
        X509_free(issued);
    }
    buf_free(&body);
    return ok ? 0 : -1;
}

static void *send_thread(void *p)
{
    struct run *r = p;
    CURL *c = curl_easy_init();
    if (!c)
        return NULL;
    char url[1024];
    snprintf(url, sizeof url, "%s?operation=PKIOperation", r->url);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/x-pki-message");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    for (int i; (i = atomic_fetch_add(&r->next, 1)) < r->n;)
        atomic_fetch_add(enroll_one(c, r, &r->e[i]) == 0 ? &r->ok : &r->failed, 1);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return NULL;
}

static void *send_thread_of(void *p)
{
    return send_thread(*(struct run **)p);
}

static X509 *read_cert(const char *path)
{
    FILE *f = fopen(path, "r");
    X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    return x;
}

/* Runs nthreads copies of fn(arg-for-thread) and joins them. */
static int run_threads(int nthreads, void *(*fn)(void *), void *args, size_t arg_size)
{
    pthread_t *t = calloc((size_t)nthreads, sizeof *t);
    if (!t)
        return -1;
    int started = 0;
    for (; started < nthreads; started++)
        if (pthread_create(&t[started], NULL, fn, (char *)args + arg_size * (size_t)started))
            break;
    for (int i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    free(t);
    return started == nthreads ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fputs("usage: bench-scep_load SCEP_URL CA_PEM CHALLENGE N CONNS PREP_THREADS\n", stderr);
        return 2;
    }
    struct run r = {.url = argv[1], .ca = read_cert(argv[2]), .n = atoi(argv[4])};
    int conns = atoi(argv[5]), prep = atoi(argv[6]);
    if (!r.ca || r.n <= 0 || conns <= 0 || prep <= 0) {
        fputs("bench-scep_load: bad CA file or counts\n", stderr);
        return 2;
    }
    r.e = calloc((size_t)r.n, sizeof *r.e);
    struct prep_arg *pa = calloc((size_t)prep, sizeof *pa);
    if (!r.e || !pa || curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
        return 1;
    double t0 = now_s();
    for (int i = 0; i < prep; i++)
        pa[i] = (struct prep_arg){.r = &r, .challenge = argv[3], .from = i, .step = prep};
    int prep_failed = run_threads(prep, prepare_thread, pa, sizeof *pa);
    for (int i = 0; i < prep; i++)
        prep_failed |= pa[i].failed;
    if (prep_failed) {
        fputs("bench-scep_load: preparing requests failed\n", stderr);
        return 1;
    }
    double t1 = now_s();
    /* Every sender thread shares r; the args array is conns copies of &r. */
    struct run **rp = calloc((size_t)conns, sizeof *rp);
    for (int i = 0; rp && i < conns; i++)
        rp[i] = &r;
    if (!rp || run_threads(conns, send_thread_of, rp, sizeof *rp) != 0)
        return 1;
    double t2 = now_s();
    printf("prepared=%d prep_seconds=%.2f sent=%d ok=%d failed=%d seconds=%.3f per_second=%.1f\n",
           r.n, t1 - t0, r.n, atomic_load(&r.ok), atomic_load(&r.failed), t2 - t1,
           atomic_load(&r.ok) / (t2 - t1));
    for (int i = 0; i < r.n; i++) {
        EVP_PKEY_free(r.e[i].key);
        X509_free(r.e[i].signer);
        free(r.e[i].msg);
    }
    free(r.e);
    free(pa);
    free(rp);
    X509_free(r.ca);
    curl_global_cleanup();
    return atomic_load(&r.failed) ? 1 : 0;
}
