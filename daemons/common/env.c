/* Environment configuration helpers: see env.h. */
#include "env.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

extern char **environ;

#define SECRET_MAX (1024 * 1024)

const char *td_env_str(const char *name, const char *def) {
    const char *v = name ? getenv(name) : NULL;
    return v && *v ? v : def;
}

long td_env_long(const char *name, long def, long min, long max, int *bad) {
    const char *v = td_env_str(name, NULL);
    if (!v)
        return def;
    const char *p = v;
    while (isspace((unsigned char)*p))
        p++;
    char *end = NULL;
    errno = 0;
    long n = strtol(p, &end, 10);
    int ok = end != p && errno == 0;
    if (ok) {
        while (isspace((unsigned char)*end))
            end++;
        ok = *end == '\0' && n >= min && n <= max;
    }
    if (!ok) {
        if (bad)
            *bad = 1;
        return def;
    }
    return n;
}

int td_env_bool_checked(const char *name, int def, int *bad) {
    const char *v = td_env_str(name, NULL);
    if (!v)
        return def;
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (!strcasecmp(v, yes[i]))
            return 1;
        if (!strcasecmp(v, no[i]))
            return 0;
    }
    if (bad)
        *bad = 1;
    return def;
}

int td_env_bool(const char *name, int def) { return td_env_bool_checked(name, def, NULL); }

static char *fail(int *err, char *errstr, size_t errstr_size, const char *var, const char *path,
                  const char *why) {
    if (err)
        *err = 1;
    if (errstr && errstr_size)
        snprintf(errstr, errstr_size, "%s: %s: %s", var, path, why);
    return NULL;
}

/* One trailing "\n" or "\r\n" of a secret's text is not part of it. */
static void strip_newline(char *v, size_t len) {
    if (len && v[len - 1] == '\n') {
        v[--len] = '\0';
        if (len && v[len - 1] == '\r') v[--len] = '\0';
    }
}

static td_secret_resolver_t resolver;
static void *resolver_arg;

void td_env_set_secret_resolver(td_secret_resolver_t fn, void *arg) {
    resolver = fn;
    resolver_arg = arg;
}

/* NAME_SECRET="<secret>[/<key>]" through the resolver (the Dapr secret
 * store), when one is set. */
static char *secret_from_store(const char *name, int *err, char *errstr, size_t errstr_size) {
    char var[128];
    snprintf(var, sizeof var, "%s_SECRET", name);
    const char *ref = td_env_str(var, NULL);
    if (!ref) return NULL;
    char why[256] = "no secret store (TE_TRANSPORT=dapr is needed)";
    char *v = resolver ? resolver(ref, resolver_arg, why, sizeof why) : NULL;
    if (v) strip_newline(v, strlen(v)); /* as for _FILE */
    if (!v) {
        if (err) *err = 1;
        if (errstr && errstr_size) snprintf(errstr, errstr_size, "%s=%s: %s", var, ref, why);
    }
    return v;
}

char *td_env_secret_ex(const char *name, int *err, char *errstr, size_t errstr_size) {
    if (err)
        *err = 0;
    if (errstr && errstr_size)
        errstr[0] = '\0';
    if (!name)
        return NULL;
    const char *v = td_env_str(name, NULL);
    if (v) {
        char *s = strdup(v);
        if (!s && err)
            *err = 1;
        return s;
    }
    size_t nlen = strlen(name);
    char *var = malloc(nlen + sizeof "_FILE");
    if (!var) {
        if (err)
            *err = 1;
        return NULL;
    }
    memcpy(var, name, nlen);
    memcpy(var + nlen, "_FILE", sizeof "_FILE");
    const char *path = td_env_str(var, NULL);
    if (!path) {
        free(var);
        return secret_from_store(name, err, errstr, errstr_size);
    }
    char *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        fail(err, errstr, errstr_size, var, path, strerror(errno));
        free(var);
        return NULL;
    }
    size_t len = 0, cap = 256;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            fail(err, errstr, errstr_size, var, path, "out of memory");
            break;
        }
        if (len + 1 == cap) {
            if (cap > SECRET_MAX) {
                fail(err, errstr, errstr_size, var, path, "larger than 1 MiB");
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                fail(err, errstr, errstr_size, var, path, "out of memory");
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t n = fread(buf + len, 1, cap - 1 - len, f);
        len += n;
        if (n == 0) {
            if (ferror(f)) {
                fail(err, errstr, errstr_size, var, path, strerror(errno ? errno : EIO));
                break;
            }
            if (len > SECRET_MAX) {
                fail(err, errstr, errstr_size, var, path, "larger than 1 MiB");
                break;
            }
            buf[len] = '\0';
            if (memchr(buf, '\0', len)) {
                fail(err, errstr, errstr_size, var, path, "contains a NUL byte");
                break;
            }
            strip_newline(buf, len);
            out = buf;
            buf = NULL;
            break;
        }
    }
    if (buf) {
        memset(buf, 0, cap);
        free(buf);
    }
    fclose(f);
    free(var);
    return out;
}

char *td_env_secret(const char *name, int *err) { return td_env_secret_ex(name, err, NULL, 0); }

void td_env_each_prefixed(const char *prefix, const char *const *skip,
                          void (*cb)(const char *key, const char *value, void *arg), void *arg) {
    if (!prefix || !cb || !environ)
        return;
    size_t plen = strlen(prefix);
    for (char **e = environ; *e; e++) {
        const char *entry = *e;
        const char *eq = strchr(entry, '=');
        if (!eq || strncmp(entry, prefix, plen) != 0)
            continue;
        size_t nlen = (size_t)(eq - entry);
        if (nlen <= plen || eq[1] == '\0')
            continue;
        int skipped = 0;
        for (size_t i = 0; skip && skip[i]; i++) {
            if (strlen(skip[i]) == nlen && !strncmp(skip[i], entry, nlen)) {
                skipped = 1;
                break;
            }
        }
        if (skipped)
            continue;
        size_t klen = nlen - plen;
        char small[128];
        char *key = klen < sizeof small ? small : malloc(klen + 1);
        if (!key)
            continue;
        for (size_t i = 0; i < klen; i++) {
            char c = entry[plen + i];
            key[i] = c == '_' ? '.' : (char)tolower((unsigned char)c);
        }
        key[klen] = '\0';
        cb(key, eq + 1, arg);
        if (key != small)
            free(key);
    }
}
