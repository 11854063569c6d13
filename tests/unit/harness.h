/* tests/unit/harness.h - one CUnit executable per test file.
 *
 *     static void test_x(void) { CU_ASSERT_EQUAL(1, 1); }
 *     static CU_TestInfo tests[] = { {"x", test_x}, CU_TEST_INFO_NULL };
 *     DSNN_TEST_MAIN("suite name", tests)
 *
 * The sparse kernel set is taken from DSNN_ISA (dsnn/isa.h) before the tests run: ctest runs the
 * kernel tests once per set (tests/CMakeLists.txt). A set this CPU cannot run makes the
 * executable exit with 77, which ctest reports as skipped; an unknown word is an error (2).
 */
#ifndef DSNN_TEST_HARNESS_H
#define DSNN_TEST_HARNESS_H

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>

#include "dsnn/isa.h"

#define DSNN_TEST_SKIP 77

/* Applies DSNN_ISA; returns -1 to go on, or the exit status. */
static inline int dsnn_test_isa_init(void)
{
    struct dsnn_error err = {0};
    enum dsnn_status st = dsnn_isa_init_env(&err);
    if (st == DSNN_ERR_UNSUPPORTED) {
        printf("SKIPPED: %s\n", err.msg);
        return DSNN_TEST_SKIP;
    }
    if (st != DSNN_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 2;
    }
    printf("sparse kernels: %s (this CPU has: %s)\n", dsnn_isa_str(dsnn_isa_active()),
           dsnn_isa_cpu_list());
    return -1;
}

/* Directory of the source tree and of the build tree (set by ctest). */
static inline const char *dsnn_test_source_dir(void)
{
    const char *d = getenv("DSNN_SOURCE_DIR");
    return d ? d : ".";
}
static inline const char *dsnn_test_build_dir(void)
{
    const char *d = getenv("DSNN_BUILD_DIR");
    return d ? d : ".";
}

#define DSNN_TEST_MAIN(suite_name, test_array)                                                    \
    int main(void)                                                                                \
    {                                                                                             \
        int isa_rc = dsnn_test_isa_init();                                                        \
        if (isa_rc >= 0)                                                                          \
            return isa_rc;                                                                        \
        if (CU_initialize_registry() != CUE_SUCCESS)                                              \
            return 2;                                                                             \
        CU_SuiteInfo suites[] = {{suite_name, NULL, NULL, NULL, NULL, test_array},                \
                                 CU_SUITE_INFO_NULL};                                             \
        if (CU_register_suites(suites) != CUE_SUCCESS) {                                          \
            fprintf(stderr, "cannot register suite: %s\n", CU_get_error_msg());                   \
            CU_cleanup_registry();                                                                \
            return 2;                                                                             \
        }                                                                                         \
        CU_basic_set_mode(CU_BRM_VERBOSE);                                                        \
        CU_basic_run_tests();                                                                     \
        unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();          \
        CU_cleanup_registry();                                                                    \
        return failed ? 1 : 0;                                                                    \
    }

#endif
