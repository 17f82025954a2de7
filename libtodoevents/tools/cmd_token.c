/* todoctl token — mint HS256 development tokens and verify tokens.
 *
 *   todoctl token --user U [--ttl SECONDS] [--secret-file F] [--issuer I] [--audience A]
 *   todoctl token verify [TOKEN|-] [--secret-file F] [--public-key F]
 *                        [--issuer I] [--audience A] [--leeway SECONDS]
 *
 * The settings default to the daemons' environment (docs/jwt.md):
 * TE_JWT_SECRET_FILE / TE_JWT_SECRET, TE_JWT_PUBLIC_KEY_FILE (verify),
 * TE_JWT_ISSUER, TE_JWT_AUDIENCE, TE_JWT_LEEWAY (verify).  Neither the
 * secret nor a token is ever written to stderr. */
#include "todoctl.h"

#include <todoevents/datetime.h>
#include <todoevents/error.h>
#include <todoevents/jwt.h>

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_DEFAULT_TTL 3600L

static void token_usage(FILE *out) {
    fprintf(out,
            "usage: todoctl token --user U [--ttl SECONDS] [--secret-file F]\n"
            "                     [--issuer I] [--audience A]\n"
            "       todoctl token verify [TOKEN|-] [--secret-file F] [--public-key F]\n"
            "                     [--issuer I] [--audience A] [--leeway SECONDS]\n"
            "\n"
            "Mints an HS256 development token (printed with a newline), or verifies a\n"
            "token (argument, or stdin for '-' or none) and prints its sub and exp.\n"
            "\n"
            "  --user U          the token's sub (1-%d bytes, no control characters)\n"
            "  --ttl SECONDS     lifetime, 1-%ld (default %ld = 1 hour)\n"
            "  --secret-file F   HS256 secret: the file's contents, one trailing newline\n"
            "                    stripped; default: the file named by TE_JWT_SECRET_FILE,\n"
            "                    else TE_JWT_SECRET itself (at least %d bytes)\n"
            "  --public-key F    verify: PEM public key (RSA -> RS256, EC P-256 -> ES256);\n"
            "                    default TE_JWT_PUBLIC_KEY_FILE.  With --secret-file or\n"
            "                    --public-key only the keys given are used, none from the\n"
            "                    environment\n"
            "  --issuer I        iss (default TE_JWT_ISSUER); verify: required iss\n"
            "  --audience A      aud (default TE_JWT_AUDIENCE); verify: required aud\n"
            "  --leeway SECONDS  verify: clock skew for exp/nbf (default TE_JWT_LEEWAY or %d)\n"
            "\n"
            "exit status: 0 ok, 1 invalid token, 2 usage or no secret/key\n",
            TE_JWT_SUB_MAX, TE_JWT_MAX_TTL, TOKEN_DEFAULT_TTL, TE_JWT_HS256_MIN_SECRET,
            TE_JWT_DEFAULT_LEEWAY);
}

static const char *env(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static int parse_long(const char *s, long min, long max, long *out) {
    if (!s || !*s || !isdigit((unsigned char)s[0]))
        return 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v < min || v > max)
        return 0;
    *out = v;
    return 1;
}

/* Reads a secret file: contents with one trailing newline stripped.  NULL
 * on error (message printed). */
static char *read_secret_file(const char *path, const char *what, size_t *len) {
    if (strcmp(path, "-") == 0) {
        fprintf(stderr, "todoctl: token: %s: give a file, not '-'\n", what);
        return NULL;
    }
    char *s = todoctl_read_input(path, len);
    if (s && *len > 0 && s[*len - 1] == '\n')
        s[--*len] = '\0';
    return s;
}

/* The HS256 secret from --secret-file, else TE_JWT_SECRET_FILE, else
 * TE_JWT_SECRET (use_env = 0: only --secret-file).  1 found (*secret
 * malloc'd), 0 none configured, -1 error (message printed). */
static int load_secret(const char *file, int use_env, char **secret, size_t *len) {
    const char *what = "--secret-file";
    *secret = NULL;
    if (!file && use_env && (file = env("TE_JWT_SECRET_FILE")))
        what = "TE_JWT_SECRET_FILE";
    if (file) {
        *secret = read_secret_file(file, what, len);
        if (!*secret)
            return -1;
    } else if (use_env && env("TE_JWT_SECRET")) {
        what = "TE_JWT_SECRET";
        *secret = strdup(env("TE_JWT_SECRET"));
        if (!*secret) {
            fprintf(stderr, "todoctl: token: out of memory\n");
            return -1;
        }
        *len = strlen(*secret);
    } else {
        return 0;
    }
    if (*len < TE_JWT_HS256_MIN_SECRET) {
        fprintf(stderr,
                "todoctl: token: the secret from %s is %zu bytes; HS256 needs at least %d\n",
                what, *len, TE_JWT_HS256_MIN_SECRET);
        free(*secret);
        *secret = NULL;
        return -1;
    }
    return 1;
}

static void free_secret(char *s, size_t len) {
    if (s) {
        volatile char *p = s;
        for (size_t i = 0; i < len; i++)
            p[i] = 0;
        free(s);
    }
}

static int no_secret(int with_public_key) {
    fprintf(stderr,
            "todoctl: token: no %s: use --secret-file F, or set TE_JWT_SECRET_FILE or "
            "TE_JWT_SECRET%s\n",
            with_public_key ? "secret or public key" : "secret",
            with_public_key ? " (or --public-key F / TE_JWT_PUBLIC_KEY_FILE)" : "");
    return TODOCTL_USAGE;
}

static int token_mint(int argc, char **argv) {
    const char *user = NULL, *ttl = NULL, *secret_file = NULL, *iss = NULL, *aud = NULL;
    todoctl_opt_t opts[] = {{"--user", &user},
                            {"--ttl", &ttl},
                            {"--secret-file", &secret_file},
                            {"--issuer", &iss},
                            {"--audience", &aud}};
    int rc = todoctl_parse_opts("token", token_usage, TODOCTL_OPTS_POSITIONAL, argc, argv, 1, opts,
                                sizeof opts / sizeof *opts, NULL);
    if (rc)
        return rc == TODOCTL_OPTS_HELP ? TODOCTL_OK : rc;
    if (!user) {
        fprintf(stderr, "todoctl: token: --user is required\n");
        token_usage(stderr);
        return TODOCTL_USAGE;
    }
    long ttl_s = TOKEN_DEFAULT_TTL;
    if (ttl && !parse_long(ttl, 1, TE_JWT_MAX_TTL, &ttl_s)) {
        fprintf(stderr, "todoctl: token: invalid --ttl: not an integer between 1 and %ld\n",
                TE_JWT_MAX_TTL);
        return TODOCTL_USAGE;
    }
    if (!iss)
        iss = env("TE_JWT_ISSUER");
    if (!aud)
        aud = env("TE_JWT_AUDIENCE");
    size_t slen = 0;
    char *secret = NULL;
    int found = load_secret(secret_file, 1, &secret, &slen);
    if (found < 0)
        return TODOCTL_USAGE;
    if (found == 0)
        return no_secret(0);
    char *tok = NULL;
    te_err_t e = te_jwt_sign_hs256(secret, slen, user, te_time_now(), ttl_s, iss, aud, &tok);
    free_secret(secret, slen);
    if (e == TE_ERR_INVALID_ARG) {
        fprintf(stderr,
                "todoctl: token: invalid --user, --issuer or --audience (UTF-8 without control "
                "characters; --user 1-%d bytes)\n",
                TE_JWT_SUB_MAX);
        return TODOCTL_USAGE;
    }
    if (e != TE_OK) {
        fprintf(stderr, "todoctl: token: %s\n", te_err2str(e));
        return TODOCTL_USAGE;
    }
    printf("%s\n", tok);
    te_free(tok);
    return TODOCTL_OK;
}

static int token_verify(int argc, char **argv) {
    const char *secret_file = NULL, *pub = NULL, *iss = NULL, *aud = NULL, *leeway = NULL,
               *input = NULL;
    todoctl_opt_t opts[] = {{"--secret-file", &secret_file},
                            {"--public-key", &pub},
                            {"--issuer", &iss},
                            {"--audience", &aud},
                            {"--leeway", &leeway}};
    int rc = todoctl_parse_opts("token", token_usage, TODOCTL_OPTS_POSITIONAL, argc, argv, 1, opts,
                                sizeof opts / sizeof *opts, &input);
    if (rc)
        return rc == TODOCTL_OPTS_HELP ? TODOCTL_OK : rc;
    int use_env = !secret_file && !pub;
    if (use_env)
        pub = env("TE_JWT_PUBLIC_KEY_FILE");
    if (!iss)
        iss = env("TE_JWT_ISSUER");
    if (!aud)
        aud = env("TE_JWT_AUDIENCE");
    const char *leeway_from = "--leeway";
    if (!leeway && (leeway = env("TE_JWT_LEEWAY")))
        leeway_from = "TE_JWT_LEEWAY";
    long leeway_s = TE_JWT_DEFAULT_LEEWAY;
    if (leeway && !parse_long(leeway, 0, TE_JWT_MAX_LEEWAY, &leeway_s)) {
        fprintf(stderr, "todoctl: token: invalid %s: not an integer between 0 and %d\n",
                leeway_from, TE_JWT_MAX_LEEWAY);
        return TODOCTL_USAGE;
    }

    te_jwt_verifier_t *v = NULL;
    if (te_jwt_verifier_new(&v) != TE_OK) {
        fprintf(stderr, "todoctl: token: out of memory\n");
        return TODOCTL_USAGE;
    }
    char *secret = NULL, *tokbuf = NULL;
    size_t slen = 0;
    rc = TODOCTL_USAGE;
    int found = load_secret(secret_file, use_env, &secret, &slen);
    if (found < 0)
        goto done;
    if (found && te_jwt_verifier_set_secret(v, secret, slen) != TE_OK) {
        fprintf(stderr, "todoctl: token: cannot use the secret\n");
        goto done;
    }
    if (pub) {
        size_t plen = 0;
        char err[TE_ERRSTR_SIZE] = "";
        char *pem = strcmp(pub, "-") == 0 ? NULL : todoctl_read_input(pub, &plen);
        if (!pem) {
            if (strcmp(pub, "-") == 0)
                fprintf(stderr, "todoctl: token: --public-key: give a file, not '-'\n");
            goto done;
        }
        te_err_t e = te_jwt_verifier_set_public_key_pem(v, pem, plen, err, sizeof err);
        free(pem);
        if (e != TE_OK) {
            fprintf(stderr, "todoctl: token: public key %s: %s\n", pub,
                    err[0] ? err : te_err2str(e));
            goto done;
        }
    }
    if (!found && !pub) {
        rc = no_secret(1);
        goto done;
    }
    if ((iss && te_jwt_verifier_set_issuer(v, iss) != TE_OK) ||
        (aud && te_jwt_verifier_set_audience(v, aud) != TE_OK)) {
        fprintf(stderr, "todoctl: token: out of memory\n");
        goto done;
    }
    te_jwt_verifier_set_leeway(v, (int)leeway_s);

    const char *tok = input;
    size_t len = 0;
    if (input && strcmp(input, "-") != 0) {
        len = strlen(input);
    } else {
        if (!(tokbuf = todoctl_read_input(NULL, &len)))
            goto done;
        tok = tokbuf;
    }
    /* surrounding white space (a trailing newline from a file or echo) */
    while (len > 0 && isspace((unsigned char)*tok))
        tok++, len--;
    while (len > 0 && isspace((unsigned char)tok[len - 1]))
        len--;

    char sub[TE_JWT_SUB_MAX + 1], err[TE_ERRSTR_SIZE] = "";
    long long exp = 0;
    te_err_t e = te_jwt_verify(v, tok, len, te_time_now(), sub, sizeof sub, &exp, err, sizeof err);
    if (e == TE_ERR_UNAUTHORIZED) {
        fprintf(stderr, "todoctl: token: invalid token: %s\n", err);
        rc = TODOCTL_INVALID;
    } else if (e != TE_OK) {
        fprintf(stderr, "todoctl: token: %s\n", err[0] ? err : te_err2str(e));
    } else {
        char when[TE_TIME_STRLEN] = "";
        printf("sub: %s\n", sub);
        if (te_time_format_utc((te_time_t)exp * TE_USEC_PER_SEC, when, sizeof when) == TE_OK)
            printf("exp: %lld (%s)\n", exp, when);
        else
            printf("exp: %lld\n", exp);
        rc = TODOCTL_OK;
    }
done:
    free(tokbuf);
    free_secret(secret, slen);
    te_jwt_verifier_destroy(v);
    return rc;
}

int cmd_token(int argc, char **argv) {
    if (argc >= 2 && (strcmp(argv[1], "help") == 0)) {
        token_usage(stdout);
        return TODOCTL_OK;
    }
    if (argc >= 2 && strcmp(argv[1], "verify") == 0)
        return token_verify(argc - 1, argv + 1);
    if (argc < 2) {
        token_usage(stderr);
        return TODOCTL_USAGE;
    }
    return token_mint(argc, argv);
}
