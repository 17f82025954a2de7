/* daemons/common (td_common) without services: the Prometheus registry
 * (exact exposition format, escaping, concurrent updates), the environment
 * helpers and the JSON-lines logger (captured stderr). */
#include <check.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "env.h"
#include "log.h"
#include "metrics.h"

/* ---- helpers -------------------------------------------------------------- */

static char *render(void) {
    size_t len = 12345;
    char *s = td_metrics_render(&len);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(len, strlen(s));
    return s;
}

static void metrics_setup(void) {
    td_metrics_shutdown();
    td_log_set_level(TD_LOG_INFO); /* metrics_refusals counts the error lines */
}
static void metrics_teardown(void) { td_metrics_shutdown(); }

/* stderr capture into a temporary file (O_APPEND: concurrent writes keep
 * whole lines). */
static int saved_stderr = -1;
static char cap_path[64];

static void capture_start(void) {
    snprintf(cap_path, sizeof cap_path, "/tmp/td-common-log-XXXXXX");
    int fd = mkstemp(cap_path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    fd = open(cap_path, O_WRONLY | O_APPEND);
    ck_assert_int_ge(fd, 0);
    fflush(stderr);
    saved_stderr = dup(STDERR_FILENO);
    ck_assert_int_ge(saved_stderr, 0);
    ck_assert_int_ge(dup2(fd, STDERR_FILENO), 0);
    close(fd);
}

/* Stops capturing; returns what was written (malloc'd). */
static char *capture_end(void) {
    fflush(stderr);
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    saved_stderr = -1;
    FILE *f = fopen(cap_path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    unlink(cap_path);
    return buf;
}

static size_t count_lines(const char *s) {
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Parses one line (without its '\n') as a JSON object. */
static struct json_object *parse_line(const char *line, size_t len) {
    struct json_tokener *tok = json_tokener_new();
    struct json_object *o = json_tokener_parse_ex(tok, line, (int)len);
    int complete = json_tokener_get_error(tok) == json_tokener_success &&
                   json_tokener_get_parse_end(tok) == len;
    json_tokener_free(tok);
    ck_assert_msg(o && complete, "not one JSON value: %.*s", (int)len, line);
    ck_assert_msg(json_object_is_type(o, json_type_object), "not an object: %.*s", (int)len,
                  line);
    return o;
}

static const char *sget(struct json_object *o, const char *k) {
    struct json_object *v;
    if (!json_object_object_get_ex(o, k, &v))
        return NULL;
    return json_object_get_string(v);
}

/* ---- metrics ---------------------------------------------------------------- */

START_TEST(metrics_counter_gauge_format) {
    td_metric_t *c = td_counter("t_requests_total", "Requests served.", NULL);
    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_eq(td_counter("t_requests_total", "other help", NULL), c);
    const char *room[] = {"room", NULL};
    td_metric_t *g = td_gauge("t_temperature", "Temperature", room);
    ck_assert_ptr_nonnull(g);
    char *s = render();
    ck_assert_str_eq(s, "# HELP t_requests_total Requests served.\n"
                        "# TYPE t_requests_total counter\n"
                        "t_requests_total 0\n"
                        "# HELP t_temperature Temperature\n"
                        "# TYPE t_temperature gauge\n");
    free(s);

    td_metric_inc(c, NULL, 1);
    td_metric_inc(c, NULL, 2.5);
    td_metric_inc(c, NULL, -1); /* counters never go down */
    td_metric_set(g, (const char *[]){"b"}, 21.5);
    td_metric_set(g, (const char *[]){"a"}, -3);
    td_metric_inc(g, (const char *[]){"b"}, 1);
    td_metric_inc(g, (const char *[]){"a"}, -0.25);
    td_metric_observe(g, (const char *[]){"a"}, 100); /* not a histogram: ignored */
    s = render();
    ck_assert_str_eq(s, "# HELP t_requests_total Requests served.\n"
                        "# TYPE t_requests_total counter\n"
                        "t_requests_total 3.5\n"
                        "# HELP t_temperature Temperature\n"
                        "# TYPE t_temperature gauge\n"
                        "t_temperature{room=\"b\"} 22.5\n"
                        "t_temperature{room=\"a\"} -3.25\n");
    free(s);
    ck_assert(td_metric_value(c, NULL) == 3.5);
    ck_assert(td_metric_value(g, (const char *[]){"a"}) == -3.25);
    ck_assert(td_metric_value(g, (const char *[]){"zzz"}) == 0);

    /* Large and fractional values keep their precision. */
    td_metric_t *big = td_gauge("t_big", "b", NULL);
    td_metric_set(big, NULL, 1234567890123.0);
    td_metric_t *frac = td_gauge("t_frac", "f", NULL);
    td_metric_set(frac, NULL, 0.1);
    s = render();
    ck_assert_ptr_nonnull(strstr(s, "\nt_big 1234567890123\n"));
    ck_assert_ptr_nonnull(strstr(s, "\nt_frac 0.1\n"));
    free(s);
}
END_TEST

START_TEST(metrics_histogram_format) {
    const char *labels[] = {"method", "route", NULL};
    const double b[] = {0.25, 0.5, 1};
    td_metric_t *h = td_histogram("t_duration_seconds", "Latency.", labels, b, 3);
    ck_assert_ptr_nonnull(h);
    ck_assert_ptr_eq(td_histogram("t_duration_seconds", "x", labels, b, 3), h);
    const char *get[] = {"GET", "/api/tasks/{id}"};
    const char *post[] = {"POST", "/api/tasks"};
    td_metric_observe(h, get, 0.125);
    td_metric_observe(h, get, 0.25); /* upper bounds are inclusive */
    td_metric_observe(h, get, 0.75);
    td_metric_observe(h, get, 2);
    td_metric_observe(h, post, 0.5);
    char *s = render();
    ck_assert_str_eq(
        s, "# HELP t_duration_seconds Latency.\n"
           "# TYPE t_duration_seconds histogram\n"
           "t_duration_seconds_bucket{method=\"GET\",route=\"/api/tasks/{id}\",le=\"0.25\"} 2\n"
           "t_duration_seconds_bucket{method=\"GET\",route=\"/api/tasks/{id}\",le=\"0.5\"} 2\n"
           "t_duration_seconds_bucket{method=\"GET\",route=\"/api/tasks/{id}\",le=\"1\"} 3\n"
           "t_duration_seconds_bucket{method=\"GET\",route=\"/api/tasks/{id}\",le=\"+Inf\"} 4\n"
           "t_duration_seconds_sum{method=\"GET\",route=\"/api/tasks/{id}\"} 3.125\n"
           "t_duration_seconds_count{method=\"GET\",route=\"/api/tasks/{id}\"} 4\n"
           "t_duration_seconds_bucket{method=\"POST\",route=\"/api/tasks\",le=\"0.25\"} 0\n"
           "t_duration_seconds_bucket{method=\"POST\",route=\"/api/tasks\",le=\"0.5\"} 1\n"
           "t_duration_seconds_bucket{method=\"POST\",route=\"/api/tasks\",le=\"1\"} 1\n"
           "t_duration_seconds_bucket{method=\"POST\",route=\"/api/tasks\",le=\"+Inf\"} 1\n"
           "t_duration_seconds_sum{method=\"POST\",route=\"/api/tasks\"} 0.5\n"
           "t_duration_seconds_count{method=\"POST\",route=\"/api/tasks\"} 1\n");
    free(s);
    ck_assert(td_metric_value(h, get) == 4);
}
END_TEST

START_TEST(metrics_default_buckets) {
    td_metric_t *h = td_histogram("t_kafka_delivery_seconds", "Delivery.", NULL, NULL, 0);
    ck_assert_ptr_nonnull(h);
    char *s = render();
    static const char *const les[] = {"0.0005", "0.001", "0.0025", "0.005", "0.01",
                                      "0.025",  "0.05",  "0.1",    "0.25",  "0.5",
                                      "1",      "2.5",   "5",      "10",    "+Inf"};
    const char *p = s;
    for (size_t i = 0; i < sizeof les / sizeof les[0]; i++) {
        char want[96];
        snprintf(want, sizeof want, "t_kafka_delivery_seconds_bucket{le=\"%s\"} 0\n", les[i]);
        const char *q = strstr(p, want);
        ck_assert_msg(q, "missing (in order) %s in\n%s", want, s);
        p = q + strlen(want);
    }
    ck_assert_str_eq(p, "t_kafka_delivery_seconds_sum 0\nt_kafka_delivery_seconds_count 0\n");
    free(s);
    td_metric_observe(h, NULL, 0.003);
    td_metric_observe(h, NULL, 99);
    s = render();
    ck_assert_ptr_nonnull(strstr(s, "t_kafka_delivery_seconds_bucket{le=\"0.0025\"} 0\n"));
    ck_assert_ptr_nonnull(strstr(s, "t_kafka_delivery_seconds_bucket{le=\"0.005\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(s, "t_kafka_delivery_seconds_bucket{le=\"10\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(s, "t_kafka_delivery_seconds_bucket{le=\"+Inf\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(s, "t_kafka_delivery_seconds_count 2\n"));
    free(s);
}
END_TEST

START_TEST(metrics_escaping) {
    const char *labels[] = {"v", NULL};
    td_metric_t *c = td_counter("t_esc_total", "Line one\nback\\slash \"quoted\"", labels);
    td_metric_inc(c, (const char *[]){"a\"b\\c\nd"}, 1);
    td_metric_inc(c, NULL, 1); /* NULL values read as "" */
    char *s = render();
    ck_assert_str_eq(s, "# HELP t_esc_total Line one\\nback\\\\slash \"quoted\"\n"
                        "# TYPE t_esc_total counter\n"
                        "t_esc_total{v=\"a\\\"b\\\\c\\nd\"} 1\n"
                        "t_esc_total{v=\"\"} 1\n");
    free(s);
}
END_TEST

START_TEST(metrics_refusals) {
    /* Each refusal logs an error line: keep it out of the test output. */
    capture_start();
    ck_assert_ptr_null(td_counter("bad name", "x", NULL));
    ck_assert_ptr_null(td_counter("9starts_with_digit", "x", NULL));
    ck_assert_ptr_null(td_counter("t_ok", "x", (const char *[]){"bad-label", NULL}));
    ck_assert_ptr_null(td_counter("t_ok", "x", (const char *[]){"__reserved", NULL}));
    ck_assert_ptr_null(td_counter("t_ok", "x", (const char *[]){"a", "a", NULL}));
    ck_assert_ptr_null(td_histogram("t_h", "x", (const char *[]){"le", NULL}, NULL, 0));
    ck_assert_ptr_null(td_histogram("t_h", "x", NULL, (const double[]){1, 0.5}, 2));
    td_metric_t *c = td_counter("t_same", "x", NULL);
    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_null(td_gauge("t_same", "x", NULL));
    ck_assert_ptr_null(td_counter("t_same", "x", (const char *[]){"a", NULL}));
    td_metric_t *h = td_histogram("t_h2", "x", NULL, (const double[]){1, 2}, 2);
    ck_assert_ptr_null(td_histogram("t_h2", "x", NULL, (const double[]){1, 3}, 2));
    char *log = capture_end();
    ck_assert_uint_eq(count_lines(log), 10);
    ck_assert_ptr_nonnull(strstr(log, "\"metric\":\"bad name\""));
    free(log);
    /* A caller-given trailing +Inf is the implicit one. */
    ck_assert_ptr_eq(td_histogram("t_h2", "x", NULL, (const double[]){1, 2, 1.0 / 0.0}, 3), h);
    /* NULL metrics are no-ops. */
    td_metric_inc(NULL, NULL, 1);
    td_metric_set(NULL, NULL, 1);
    td_metric_observe(NULL, NULL, 1);
    ck_assert(td_metric_value(NULL, NULL) == 0);
    char *s = render();
    ck_assert_ptr_null(strstr(s, "bad"));
    free(s);
}
END_TEST

#define NTHREADS 4
#define PER_THREAD 50000

static td_metric_t *conc_h, *conc_c, *conc_g;

static void *hammer(void *arg) {
    long id = (long)arg;
    const char *mine[] = {id % 2 ? "odd" : "even", "/x"};
    const char *shared[] = {"all", "/x"};
    for (int i = 0; i < PER_THREAD; i++) {
        td_metric_observe(conc_h, mine, 0.001 * (i % 20));
        td_metric_observe(conc_h, shared, 0.5);
        td_metric_inc(conc_c, NULL, 1);
        td_metric_inc(conc_g, NULL, i % 2 ? 1 : -1);
        if (i % 5000 == 0)
            free(td_metrics_render(NULL)); /* rendering concurrently is fine too */
    }
    return NULL;
}

START_TEST(metrics_concurrent_exact) {
    conc_h = td_histogram("t_conc_seconds", "c", (const char *[]){"k", "route", NULL}, NULL, 0);
    conc_c = td_counter("t_conc_total", "c", NULL);
    conc_g = td_gauge("t_conc_gauge", "c", NULL);
    pthread_t t[NTHREADS];
    for (long i = 0; i < NTHREADS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, hammer, (void *)i), 0);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    ck_assert(td_metric_value(conc_h, (const char *[]){"all", "/x"}) == NTHREADS * PER_THREAD);
    ck_assert(td_metric_value(conc_h, (const char *[]){"odd", "/x"}) == NTHREADS / 2 * PER_THREAD);
    ck_assert(td_metric_value(conc_h, (const char *[]){"even", "/x"}) ==
              NTHREADS / 2 * PER_THREAD);
    ck_assert(td_metric_value(conc_c, NULL) == NTHREADS * PER_THREAD);
    ck_assert(td_metric_value(conc_g, NULL) == 0);
    char *s = render();
    char want[128];
    snprintf(want, sizeof want, "t_conc_seconds_count{k=\"all\",route=\"/x\"} %d\n",
             NTHREADS * PER_THREAD);
    ck_assert_ptr_nonnull(strstr(s, want));
    snprintf(want, sizeof want, "t_conc_seconds_bucket{k=\"all\",route=\"/x\",le=\"+Inf\"} %d\n",
             NTHREADS * PER_THREAD);
    ck_assert_ptr_nonnull(strstr(s, want));
    snprintf(want, sizeof want, "t_conc_seconds_sum{k=\"all\",route=\"/x\"} %d\n",
             NTHREADS * PER_THREAD / 2);
    ck_assert_ptr_nonnull(strstr(s, want));
    snprintf(want, sizeof want, "t_conc_total %d\n", NTHREADS * PER_THREAD);
    ck_assert_ptr_nonnull(strstr(s, want));
    free(s);
}
END_TEST

START_TEST(metrics_many_label_sets) {
    /* Enough label sets to grow the hash table several times. */
    td_metric_t *c = td_counter("t_many_total", "m", (const char *[]){"a", "b", NULL});
    char v[32];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 1000; i++) {
            snprintf(v, sizeof v, "%d", i);
            td_metric_inc(c, (const char *[]){v, "x"}, 1);
        }
    }
    for (int i = 0; i < 1000; i += 97) {
        snprintf(v, sizeof v, "%d", i);
        ck_assert(td_metric_value(c, (const char *[]){v, "x"}) == 3);
    }
    /* ("1","2x") and ("12","x") are different sets. */
    td_metric_inc(c, (const char *[]){"1", "2x"}, 5);
    ck_assert(td_metric_value(c, (const char *[]){"12", "x"}) == 3);
    ck_assert(td_metric_value(c, (const char *[]){"1", "2x"}) == 5);
    char *s = render();
    ck_assert_uint_eq(count_lines(s), 2 + 1001);
    ck_assert(strncmp(strstr(s, "t_many_total{"), "t_many_total{a=\"0\",b=\"x\"} 3\n", 28) == 0);
    free(s);
}
END_TEST

/* ---- env -------------------------------------------------------------------- */

START_TEST(env_str_long_bool) {
    unsetenv("TT_S");
    ck_assert_str_eq(td_env_str("TT_S", "def"), "def");
    setenv("TT_S", "", 1);
    ck_assert_str_eq(td_env_str("TT_S", "def"), "def");
    ck_assert_ptr_null(td_env_str("TT_S", NULL));
    setenv("TT_S", "val", 1);
    ck_assert_str_eq(td_env_str("TT_S", "def"), "val");

    int bad = 0;
    unsetenv("TT_L");
    ck_assert_int_eq(td_env_long("TT_L", 7, 0, 100, &bad), 7);
    ck_assert_int_eq(bad, 0);
    setenv("TT_L", "", 1);
    ck_assert_int_eq(td_env_long("TT_L", 7, 0, 100, &bad), 7);
    ck_assert_int_eq(bad, 0);
    setenv("TT_L", "42", 1);
    ck_assert_int_eq(td_env_long("TT_L", 7, 0, 100, &bad), 42);
    setenv("TT_L", " 43 ", 1);
    ck_assert_int_eq(td_env_long("TT_L", 7, 0, 100, &bad), 43);
    setenv("TT_L", "-5", 1);
    ck_assert_int_eq(td_env_long("TT_L", 7, -10, 100, &bad), -5);
    ck_assert_int_eq(bad, 0);
    ck_assert_int_eq(td_env_long("TT_L", 7, 0, 100, &bad), 7); /* below min */
    ck_assert_int_eq(bad, 1);
    const char *garbage[] = {"101", "abc", "12abc", "1.5", "0x10", "99999999999999999999999", "-"};
    for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
        bad = 0;
        setenv("TT_L", garbage[i], 1);
        ck_assert_int_eq(td_env_long("TT_L", 7, 0, 100, &bad), 7);
        ck_assert_msg(bad == 1, "'%s' accepted", garbage[i]);
    }
    ck_assert_int_eq(td_env_long("TT_L", 7, 0, 100, NULL), 7); /* bad may be NULL */

    const char *yes[] = {"1", "true", "TRUE", "yes", "Yes", "on", "ON"};
    const char *no[] = {"0", "false", "False", "no", "NO", "off", "Off"};
    for (size_t i = 0; i < 7; i++) {
        setenv("TT_B", yes[i], 1);
        ck_assert_msg(td_env_bool("TT_B", 0) == 1, "%s", yes[i]);
        setenv("TT_B", no[i], 1);
        ck_assert_msg(td_env_bool("TT_B", 1) == 0, "%s", no[i]);
    }
    unsetenv("TT_B");
    ck_assert_int_eq(td_env_bool("TT_B", 1), 1);
    ck_assert_int_eq(td_env_bool("TT_B", 0), 0);
    setenv("TT_B", "", 1);
    ck_assert_int_eq(td_env_bool("TT_B", 1), 1);
    setenv("TT_B", "maybe", 1);
    ck_assert_int_eq(td_env_bool("TT_B", 1), 1);
    ck_assert_int_eq(td_env_bool("TT_B", 0), 0);
    bad = 0;
    ck_assert_int_eq(td_env_bool_checked("TT_B", 1, &bad), 1);
    ck_assert_int_eq(bad, 1);
    bad = 0;
    setenv("TT_B", "off", 1);
    ck_assert_int_eq(td_env_bool_checked("TT_B", 1, &bad), 0);
    ck_assert_int_eq(bad, 0);
}
END_TEST

static char *write_temp(const char *content, size_t len) {
    char *path = strdup("/tmp/td-common-secret-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, content, len), (ssize_t)len);
    close(fd);
    return path;
}

static void check_file_secret(const char *content, size_t len, const char *want) {
    char *path = write_temp(content, len);
    setenv("TT_SECRET_FILE", path, 1);
    int err = -1;
    char *s = td_env_secret("TT_SECRET", &err);
    ck_assert_int_eq(err, 0);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s, want);
    free(s);
    unlink(path);
    free(path);
}

START_TEST(env_secrets) {
    unsetenv("TT_SECRET");
    unsetenv("TT_SECRET_FILE");
    int err = -1;
    ck_assert_ptr_null(td_env_secret("TT_SECRET", &err));
    ck_assert_int_eq(err, 0);

    setenv("TT_SECRET", "direct", 1);
    char *s = td_env_secret("TT_SECRET", &err);
    ck_assert_str_eq(s, "direct");
    ck_assert_int_eq(err, 0);
    free(s);

    /* NAME wins over NAME_FILE; "" counts as unset. */
    setenv("TT_SECRET_FILE", "/nonexistent/secret", 1);
    s = td_env_secret("TT_SECRET", &err);
    ck_assert_str_eq(s, "direct");
    free(s);
    setenv("TT_SECRET", "", 1);

    check_file_secret("s3cret\n", 7, "s3cret");
    check_file_secret("s3cret", 6, "s3cret");
    check_file_secret("two\n\n", 5, "two\n"); /* only one newline stripped */
    check_file_secret("crlf\r\n", 6, "crlf");
    check_file_secret("  spaced \n", 10, "  spaced ");
    check_file_secret("", 0, "");

    /* Unreadable file: NULL, err, a reason naming the variable and the path. */
    setenv("TT_SECRET_FILE", "/nonexistent/secret", 1);
    char es[256] = "x";
    err = 0;
    ck_assert_ptr_null(td_env_secret_ex("TT_SECRET", &err, es, sizeof es));
    ck_assert_int_eq(err, 1);
    ck_assert_ptr_nonnull(strstr(es, "TT_SECRET_FILE"));
    ck_assert_ptr_nonnull(strstr(es, "/nonexistent/secret"));
    err = 0;
    ck_assert_ptr_null(td_env_secret("TT_SECRET", &err));
    ck_assert_int_eq(err, 1);
    ck_assert_ptr_null(td_env_secret("TT_SECRET", NULL)); /* err may be NULL */

    /* A NUL byte would silently truncate the secret: refused, content not shown. */
    char *path = write_temp("abc\0hidden", 10);
    setenv("TT_SECRET_FILE", path, 1);
    err = 0;
    ck_assert_ptr_null(td_env_secret_ex("TT_SECRET", &err, es, sizeof es));
    ck_assert_int_eq(err, 1);
    ck_assert_ptr_null(strstr(es, "hidden"));
    ck_assert_ptr_null(strstr(es, "abc"));
    unlink(path);
    free(path);
    /* A directory can't be read either. */
    setenv("TT_SECRET_FILE", "/tmp", 1);
    err = 0;
    ck_assert_ptr_null(td_env_secret("TT_SECRET", &err));
    ck_assert_int_eq(err, 1);
    unsetenv("TT_SECRET");
    unsetenv("TT_SECRET_FILE");
}
END_TEST

static void collect(const char *key, const char *value, void *arg) {
    struct json_object *o = arg;
    ck_assert_msg(!json_object_object_get_ex(o, key, NULL), "twice: %s", key);
    json_object_object_add(o, key, json_object_new_string(value));
}

START_TEST(env_prefixed) {
    setenv("TT_KAFKA_SECURITY_PROTOCOL", "SASL_SSL", 1);
    setenv("TT_KAFKA_SASL_MECHANISMS", "PLAIN", 1);
    setenv("TT_KAFKA_TE_SEND_TIMEOUT_MS", "1000", 1);
    setenv("TT_KAFKA_BROKERS", "b:9092", 1);       /* skipped */
    setenv("TT_KAFKA_SASL_PASSWORD_FILE", "/x", 1); /* skipped */
    setenv("TT_KAFKA_EMPTY", "", 1);                /* empty value */
    setenv("TT_KAFKA_", "nokey", 1);                /* empty key */
    setenv("TT_KAFKAX", "other", 1);                /* not the prefix */
    setenv("XTT_KAFKA_Y", "other", 1);
    struct json_object *o = json_object_new_object();
    const char *skip[] = {"TT_KAFKA_BROKERS", "TT_KAFKA_SASL_PASSWORD_FILE", NULL};
    td_env_each_prefixed("TT_KAFKA_", skip, collect, o);
    ck_assert_int_eq(json_object_object_length(o), 3);
    ck_assert_str_eq(sget(o, "security.protocol"), "SASL_SSL");
    ck_assert_str_eq(sget(o, "sasl.mechanisms"), "PLAIN");
    ck_assert_str_eq(sget(o, "te.send.timeout.ms"), "1000");
    json_object_put(o);

    o = json_object_new_object();
    td_env_each_prefixed("TT_KAFKA_", NULL, collect, o); /* no skip list */
    ck_assert_int_eq(json_object_object_length(o), 5);
    ck_assert_str_eq(sget(o, "brokers"), "b:9092");
    ck_assert_str_eq(sget(o, "sasl.password.file"), "/x");
    json_object_put(o);

    /* A long key takes the heap path. */
    char name[300] = "TT_KAFKA_";
    memset(name + 9, 'A', 250);
    name[259] = '\0';
    setenv(name, "long", 1);
    o = json_object_new_object();
    td_env_each_prefixed("TT_KAFKA_", skip, collect, o);
    ck_assert_int_eq(json_object_object_length(o), 4);
    char key[300];
    memset(key, 'a', 250);
    key[250] = '\0';
    ck_assert_str_eq(sget(o, key), "long");
    json_object_put(o);
    unsetenv(name);
}
END_TEST

/* ---- log -------------------------------------------------------------------- */

static void log_setup(void) {
    unsetenv("TE_LOG_LEVEL");
    td_log_init("test-svc");
}

START_TEST(log_line_fields) {
    capture_start();
    struct json_object *f = json_object_new_object();
    json_object_object_add(f, "user", json_object_new_string("u1"));
    json_object_object_add(f, "status", json_object_new_int(201));
    json_object_object_add(f, "duration_ms", json_object_new_double(1.5));
    json_object_object_add(f, "msg", json_object_new_string("cannot override")); /* dropped */
    td_log(TD_LOG_INFO, "4bf92f3577b34da6a3ce929d0e0e4736", "request", f);
    td_log(TD_LOG_WARN, NULL, NULL, NULL);
    char *out = capture_end();
    ck_assert_uint_eq(count_lines(out), 2);

    char *nl = strchr(out, '\n');
    ck_assert(strncmp(out, "{\"ts\":\"", 7) == 0); /* ts comes first */
    struct json_object *o = parse_line(out, (size_t)(nl - out));
    const char *ts = sget(o, "ts");
    ck_assert_ptr_nonnull(ts);
    /* 2026-03-27T08:00:00.123Z */
    ck_assert_uint_eq(strlen(ts), 24);
    ck_assert(ts[4] == '-' && ts[7] == '-' && ts[10] == 'T' && ts[13] == ':' && ts[16] == ':' &&
              ts[19] == '.' && ts[23] == 'Z');
    ck_assert_str_eq(sget(o, "level"), "info");
    ck_assert_str_eq(sget(o, "service"), "test-svc");
    ck_assert_str_eq(sget(o, "msg"), "request");
    ck_assert_str_eq(sget(o, "trace_id"), "4bf92f3577b34da6a3ce929d0e0e4736");
    ck_assert_str_eq(sget(o, "user"), "u1");
    struct json_object *v;
    ck_assert(json_object_object_get_ex(o, "status", &v) && json_object_get_int(v) == 201);
    ck_assert(json_object_object_get_ex(o, "duration_ms", &v) && json_object_get_double(v) == 1.5);
    ck_assert_int_eq(json_object_object_length(o), 8);
    json_object_put(o);

    o = parse_line(nl + 1, strlen(nl + 1) - 1);
    ck_assert_str_eq(sget(o, "level"), "warn");
    ck_assert_str_eq(sget(o, "msg"), "");
    ck_assert(!json_object_object_get_ex(o, "trace_id", NULL)); /* omitted when NULL */
    json_object_put(o);
    free(out);
}
END_TEST

START_TEST(log_escaping) {
    const char *msg = "say \"hi\"\nnext\tline \\ / \x01 caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 end";
    capture_start();
    struct json_object *f = json_object_new_object();
    json_object_object_add(f, "path", json_object_new_string("/a\"b\n"));
    td_log(TD_LOG_ERROR, "t\"1", msg, f);
    td_log(TD_LOG_ERROR, NULL, "bad \xff utf8 \xc3", NULL); /* invalid bytes */
    td_logf(TD_LOG_ERROR, NULL, "%s=%d", "n", 42);
    char *out = capture_end();
    ck_assert_uint_eq(count_lines(out), 3); /* the newline in msg is escaped */
    ck_assert_ptr_nonnull(strstr(out, "say \\\"hi\\\"\\nnext\\tline \\\\ / \\u0001 caf\xc3\xa9"));

    char *l1 = out, *l2 = strchr(l1, '\n') + 1, *l3 = strchr(l2, '\n') + 1;
    struct json_object *o = parse_line(l1, (size_t)(l2 - l1 - 1));
    ck_assert_str_eq(sget(o, "msg"), msg);
    ck_assert_str_eq(sget(o, "trace_id"), "t\"1");
    ck_assert_str_eq(sget(o, "path"), "/a\"b\n");
    json_object_put(o);
    o = parse_line(l2, (size_t)(l3 - l2 - 1));
    ck_assert_str_eq(sget(o, "msg"), "bad \xef\xbf\xbd utf8 \xef\xbf\xbd");
    json_object_put(o);
    o = parse_line(l3, strlen(l3) - 1);
    ck_assert_str_eq(sget(o, "msg"), "n=42");
    json_object_put(o);
    free(out);
}
END_TEST

START_TEST(log_levels) {
    setenv("TE_LOG_LEVEL", "warn", 1);
    td_log_init("lv");
    ck_assert_int_eq(td_log_get_level(), TD_LOG_WARN);
    ck_assert(!td_log_enabled(TD_LOG_DEBUG));
    ck_assert(!td_log_enabled(TD_LOG_INFO));
    ck_assert(td_log_enabled(TD_LOG_WARN));
    ck_assert(td_log_enabled(TD_LOG_ERROR));
    capture_start();
    struct json_object *f = json_object_new_object(); /* freed although filtered */
    json_object_object_add(f, "k", json_object_new_string("v"));
    td_log(TD_LOG_INFO, NULL, "hidden info", f);
    td_log(TD_LOG_DEBUG, NULL, "hidden debug", NULL);
    td_logf(TD_LOG_INFO, NULL, "hidden %d", 1);
    td_log(TD_LOG_WARN, NULL, "shown warn", NULL);
    td_logf(TD_LOG_ERROR, NULL, "shown %s", "error");
    char *out = capture_end();
    ck_assert_uint_eq(count_lines(out), 2);
    ck_assert_ptr_null(strstr(out, "hidden"));
    ck_assert_ptr_nonnull(strstr(out, "\"msg\":\"shown warn\""));
    ck_assert_ptr_nonnull(strstr(out, "\"level\":\"error\""));
    free(out);

    setenv("TE_LOG_LEVEL", "DEBUG", 1);
    td_log_init("lv");
    ck_assert(td_log_enabled(TD_LOG_DEBUG));

    /* Unknown level: a warning, then info. */
    setenv("TE_LOG_LEVEL", "loud", 1);
    capture_start();
    td_log_init("lv");
    out = capture_end();
    ck_assert_int_eq(td_log_get_level(), TD_LOG_INFO);
    ck_assert_uint_eq(count_lines(out), 1);
    ck_assert_ptr_nonnull(strstr(out, "TE_LOG_LEVEL"));
    ck_assert_ptr_nonnull(strstr(out, "\"value\":\"loud\""));
    free(out);

    td_log_level_t l;
    ck_assert_int_eq(td_log_level_parse("Warning", &l), 0);
    ck_assert_int_eq(l, TD_LOG_WARN);
    ck_assert_int_eq(td_log_level_parse("verbose", &l), -1);
    ck_assert_int_eq(td_log_level_parse(NULL, &l), -1);
    ck_assert_str_eq(td_log_level_name(TD_LOG_ERROR), "error");
    td_log_set_level(TD_LOG_ERROR);
    ck_assert(!td_log_enabled(TD_LOG_WARN));
    unsetenv("TE_LOG_LEVEL");
}
END_TEST

START_TEST(log_long_message) {
    size_t n = 100000;
    char *big = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + i % 26);
    big[n] = '\0';
    capture_start();
    td_logf(TD_LOG_INFO, NULL, "%s", big); /* longer than the stack buffers */
    char *out = capture_end();
    ck_assert_uint_eq(count_lines(out), 1);
    struct json_object *o = parse_line(out, strlen(out) - 1);
    ck_assert_str_eq(sget(o, "msg"), big);
    json_object_put(o);
    free(out);
    free(big);
}
END_TEST

#define LOG_THREADS 4
#define LOG_LINES 300

static void *log_worker(void *arg) {
    long id = (long)arg;
    char msg[3000];
    memset(msg, 'a' + (int)id, sizeof msg - 1);
    msg[sizeof msg - 1] = '\0';
    for (int i = 0; i < LOG_LINES; i++) {
        struct json_object *f = json_object_new_object();
        json_object_object_add(f, "thread", json_object_new_int((int)id));
        json_object_object_add(f, "i", json_object_new_int(i));
        td_log(TD_LOG_INFO, NULL, msg, f);
    }
    return NULL;
}

START_TEST(log_threads_whole_lines) {
    capture_start();
    pthread_t t[LOG_THREADS];
    for (long i = 0; i < LOG_THREADS; i++)
        pthread_create(&t[i], NULL, log_worker, (void *)i);
    for (int i = 0; i < LOG_THREADS; i++)
        pthread_join(t[i], NULL);
    char *out = capture_end();
    ck_assert_uint_eq(count_lines(out), LOG_THREADS * LOG_LINES);
    int seen[LOG_THREADS] = {0};
    for (char *line = out; *line;) {
        char *nl = strchr(line, '\n');
        struct json_object *o = parse_line(line, (size_t)(nl - line));
        struct json_object *v;
        ck_assert(json_object_object_get_ex(o, "thread", &v));
        int id = json_object_get_int(v);
        ck_assert_int_eq(strlen(sget(o, "msg")), 2999);
        ck_assert_int_eq(sget(o, "msg")[0], 'a' + id);
        seen[id]++;
        json_object_put(o);
        line = nl + 1;
    }
    for (int i = 0; i < LOG_THREADS; i++)
        ck_assert_int_eq(seen[i], LOG_LINES);
    free(out);
}
END_TEST

/* ---- suite ------------------------------------------------------------------ */

static Suite *suite(void) {
    Suite *s = suite_create("td_common");
    TCase *m = tcase_create("metrics");
    tcase_add_checked_fixture(m, metrics_setup, metrics_teardown);
    tcase_set_timeout(m, 60);
    tcase_add_test(m, metrics_counter_gauge_format);
    tcase_add_test(m, metrics_histogram_format);
    tcase_add_test(m, metrics_default_buckets);
    tcase_add_test(m, metrics_escaping);
    tcase_add_test(m, metrics_refusals);
    tcase_add_test(m, metrics_concurrent_exact);
    tcase_add_test(m, metrics_many_label_sets);
    suite_add_tcase(s, m);

    TCase *e = tcase_create("env");
    tcase_add_test(e, env_str_long_bool);
    tcase_add_test(e, env_secrets);
    tcase_add_test(e, env_prefixed);
    suite_add_tcase(s, e);

    TCase *l = tcase_create("log");
    tcase_add_checked_fixture(l, log_setup, NULL);
    tcase_set_timeout(l, 60);
    tcase_add_test(l, log_line_fields);
    tcase_add_test(l, log_escaping);
    tcase_add_test(l, log_levels);
    tcase_add_test(l, log_long_message);
    tcase_add_test(l, log_threads_whole_lines);
    suite_add_tcase(s, l);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    td_metrics_shutdown();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
