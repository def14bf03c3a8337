/* args.c: stewardctl's command-line parser. Global flags (--url, --api-key,
 * --cacert, --insecure, --json, --timeout, -h) may appear anywhere; each
 * command adds its own long options. Hand-written rather than getopt_long
 * because global and command options mix freely around the command words.
 * Called by main.c. */
#include "ctl/ctl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum global_id { G_URL, G_API_KEY, G_CACERT, G_INSECURE, G_JSON, G_TIMEOUT, G_HELP };

struct global_spec {
    const char *name; /* with its dashes */
    int has_value;
    enum global_id id;
};

static const struct global_spec GLOBALS[] = {
    {"--url", 1, G_URL},         {"--api-key", 1, G_API_KEY}, {"--cacert", 1, G_CACERT},
    {"--insecure", 0, G_INSECURE}, {"--json", 0, G_JSON},      {"--timeout", 1, G_TIMEOUT},
    {"--help", 0, G_HELP},       {"-h", 0, G_HELP},
};

void ctl_opts_defaults(struct ctl_opts *o)
{
    memset(o, 0, sizeof *o);
    const char *v = getenv("STEWARD_URL");
    o->url = v && *v ? v : CTL_DEFAULT_URL;
    v = getenv("STEWARD_API_KEY");
    o->api_key = v && *v ? v : NULL;
    v = getenv("STEWARD_CACERT");
    o->cacert = v && *v ? v : NULL;
    o->timeout = CTL_DEFAULT_TIMEOUT;
}

/* Splits "--name=value" into the name length and value (NULL without '='). */
static size_t option_name_len(const char *arg, const char **inline_value)
{
    const char *eq = strchr(arg, '=');
    *inline_value = eq ? eq + 1 : NULL;
    return eq ? (size_t)(eq - arg) : strlen(arg);
}

static const struct global_spec *find_global(const char *arg, size_t len)
{
    for (size_t i = 0; i < sizeof GLOBALS / sizeof GLOBALS[0]; i++)
        if (strlen(GLOBALS[i].name) == len && strncmp(GLOBALS[i].name, arg, len) == 0)
            return &GLOBALS[i];
    return NULL;
}

static const struct ctl_optspec *find_spec(const struct ctl_optspec *specs, const char *arg,
                                           size_t len)
{
    if (!specs || len < 3 || strncmp(arg, "--", 2) != 0)
        return NULL;
    for (; specs->name; specs++)
        if (strlen(specs->name) == len - 2 && strncmp(specs->name, arg + 2, len - 2) == 0)
            return specs;
    return NULL;
}

static int is_option(const char *arg) { return arg[0] == '-' && arg[1] != '\0'; }

/* Whether option arg (name part of length len) takes a value in any of the
 * spec lists. Command options may come before the command words
 * ("--search x devices list"), so the word finder must step over values. */
static int any_spec_has_value(const struct ctl_optspec *const *all, const char *arg, size_t len)
{
    for (; all && *all; all++) {
        const struct ctl_optspec *s = find_spec(*all, arg, len);
        if (s)
            return s->has_value;
    }
    return -1;
}

size_t ctl_args_words(int argc, char **argv, size_t max, int *idx,
                      const struct ctl_optspec *const *all)
{
    size_t n = 0;
    for (int i = 1; i < argc && n < max; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--") == 0)
            break;
        if (!is_option(arg)) {
            idx[n++] = i;
            continue;
        }
        const char *inl;
        size_t len = option_name_len(arg, &inl);
        const struct global_spec *g = find_global(arg, len);
        int has_value = g ? g->has_value : any_spec_has_value(all, arg, len);
        if (has_value < 0)
            break; /* unknown: leave it to ctl_args_parse to complain */
        if (has_value && !inl)
            i++;
    }
    return n;
}

static int parse_timeout(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v <= 0 || v > 86400)
        return -1;
    *out = v;
    return 0;
}

static int set_global(const struct global_spec *g, const char *value, struct ctl_opts *o, FILE *err)
{
    switch (g->id) {
    case G_URL:
        if (strncmp(value, "http://", 7) != 0 && strncmp(value, "https://", 8) != 0) {
            fprintf(err, "stewardctl: --url must start with https:// or http:// (got \"%s\")\n",
                    value);
            return -1;
        }
        o->url = value;
        break;
    case G_API_KEY:
        o->api_key = *value ? value : NULL;
        break;
    case G_CACERT:
        o->cacert = value;
        break;
    case G_INSECURE:
        o->insecure = 1;
        break;
    case G_JSON:
        o->json = 1;
        break;
    case G_TIMEOUT:
        if (parse_timeout(value, &o->timeout) < 0) {
            fprintf(err, "stewardctl: --timeout wants whole seconds between 1 and 86400\n");
            return -1;
        }
        break;
    case G_HELP:
        o->help = 1;
        break;
    }
    return 0;
}

static int push_flag(struct ctl_args *a, const struct ctl_optspec *s, const char *value)
{
    struct ctl_flag *f = realloc(a->flags, (a->nflags + 1) * sizeof *f);
    if (!f)
        return -1;
    a->flags = f;
    a->flags[a->nflags].name = s->name;
    a->flags[a->nflags].value = value;
    a->nflags++;
    return 0;
}

static int push_pos(struct ctl_args *a, const char *arg)
{
    const char **p = realloc(a->pos, (a->npos + 1) * sizeof *p);
    if (!p)
        return -1;
    a->pos = p;
    a->pos[a->npos++] = arg;
    return 0;
}

static int is_word(const int *words, size_t nwords, int i)
{
    for (size_t k = 0; k < nwords; k++)
        if (words[k] == i)
            return 1;
    return 0;
}

/* Handles the option at argv[*i] (advancing *i past a separate value).
 * Returns 0 or -1 after printing a usage error. */
static int take_option(int argc, char **argv, int *i, const struct ctl_optspec *specs,
                       struct ctl_opts *opts, struct ctl_args *out, FILE *err)
{
    const char *arg = argv[*i];
    const char *value;
    size_t len = option_name_len(arg, &value);
    const struct global_spec *g = find_global(arg, len);
    const struct ctl_optspec *s = g ? NULL : find_spec(specs, arg, len);
    if (!g && !s) {
        fprintf(err, "stewardctl: unknown option %.*s (see --help)\n", (int)len, arg);
        return -1;
    }
    int has_value = g ? g->has_value : s->has_value;
    if (!has_value && value) {
        fprintf(err, "stewardctl: option %.*s takes no value\n", (int)len, arg);
        return -1;
    }
    if (has_value && !value) {
        if (*i + 1 >= argc) {
            fprintf(err, "stewardctl: option %s needs a value\n", arg);
            return -1;
        }
        value = argv[++*i];
    }
    if (g)
        return set_global(g, value, opts, err);
    if (push_flag(out, s, value) < 0) {
        fprintf(err, "stewardctl: out of memory\n");
        return -1;
    }
    return 0;
}

int ctl_args_parse(int argc, char **argv, const int *words, size_t nwords,
                   const struct ctl_optspec *specs, struct ctl_opts *opts, struct ctl_args *out,
                   FILE *err)
{
    memset(out, 0, sizeof *out);
    int options_done = 0;
    for (int i = 1; i < argc; i++) {
        if (is_word(words, nwords, i))
            continue;
        const char *arg = argv[i];
        int rc = 0;
        if (!options_done && strcmp(arg, "--") == 0)
            options_done = 1;
        else if (!options_done && is_option(arg))
            rc = take_option(argc, argv, &i, specs, opts, out, err);
        else if (push_pos(out, arg) < 0) {
            fprintf(err, "stewardctl: out of memory\n");
            rc = -1;
        }
        if (rc < 0) {
            ctl_args_free(out);
            return -1;
        }
    }
    return 0;
}

void ctl_args_free(struct ctl_args *a)
{
    if (!a)
        return;
    free(a->pos);
    free(a->flags);
    memset(a, 0, sizeof *a);
}

const char *ctl_args_get(const struct ctl_args *a, const char *name)
{
    const char *v = NULL;
    for (size_t i = 0; i < a->nflags; i++)
        if (strcmp(a->flags[i].name, name) == 0)
            v = a->flags[i].value;
    return v;
}

size_t ctl_args_count(const struct ctl_args *a, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < a->nflags; i++)
        if (strcmp(a->flags[i].name, name) == 0)
            n++;
    return n;
}

int ctl_args_has(const struct ctl_args *a, const char *name) { return ctl_args_count(a, name) > 0; }

int ctl_is_count(const char *s)
{
    if (!s || !*s || strlen(s) > 9) /* beyond 999999999 is no sensible count */
        return 0;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9')
            return 0;
    return 1;
}
