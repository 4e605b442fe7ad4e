/* test_filter.c - run one case of a cmocka test program.
 *
 * ctest starts every case as its own process (tests/CMakeLists.txt) with
 * KG_TEST_FILTER naming the case.  A constructor installs it as cmocka's
 * filter before main runs, so the test files need no code for it; without
 * the variable (a developer running the binary) every case runs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

__attribute__((constructor)) static void kg__test_filter_install(void)
{
    const char *case_name = getenv("KG_TEST_FILTER");
    if (case_name && *case_name)
        cmocka_set_test_filter(case_name);
}
