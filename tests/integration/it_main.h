/* Shared runner of the integration test programs (tests/integration/test_*.c):
 * a Check suite built from a table of tests, each in its own TCase with the
 * program's setup/teardown fixture, and a main() body that runs it. */
#ifndef IT_MAIN_H
#define IT_MAIN_H

#include <check.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    const char *name;
    const TTest *t;
} it_test_t;

/* A suite NAME with one TCase per test: timeout_s seconds each, checked
 * fixture setup/teardown. */
static inline Suite *it_suite(const char *name, const it_test_t *tests, size_t ntests,
                              double timeout_s, SFun setup, SFun teardown) {
    Suite *s = suite_create(name);
    for (size_t i = 0; i < ntests; i++) {
        TCase *tc = tcase_create(tests[i].name);
        tcase_set_timeout(tc, timeout_s);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, tests[i].t);
        suite_add_tcase(s, tc);
    }
    return s;
}

/* Seeds rand(), runs the suite make_suite() builds; EXIT_SUCCESS when no
 * test failed, else EXIT_FAILURE. */
static inline int it_run(Suite *(*make_suite)(void)) {
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    SRunner *sr = srunner_create(make_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
