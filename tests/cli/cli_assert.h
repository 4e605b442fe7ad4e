/* cli_assert.h - assertions for the CLI tests that print what was seen. */
#ifndef KG_TEST_CLI_ASSERT_H
#define KG_TEST_CLI_ASSERT_H

#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* `hay` contains `needle`; on failure prints both. */
#define assert_contains(hay, needle)                                                      \
    do {                                                                                  \
        const char *kg__h = (hay), *kg__n = (needle);                                     \
        if (!kg__h || !strstr(kg__h, kg__n))                                              \
            fail_msg("expected \"%s\" in:\n---\n%s\n---", kg__n, kg__h ? kg__h : "(null)"); \
    } while (0)

#define assert_not_contains(hay, needle)                                                  \
    do {                                                                                  \
        const char *kg__h = (hay), *kg__n = (needle);                                     \
        if (kg__h && strstr(kg__h, kg__n))                                                \
            fail_msg("did not expect \"%s\" in:\n---\n%s\n---", kg__n, kg__h);            \
    } while (0)

/* An exit code, with the command's stderr when it differs. */
#define assert_exit(code, expected, err)                                                  \
    do {                                                                                  \
        int kg__c = (code), kg__e = (expected);                                           \
        if (kg__c != kg__e)                                                               \
            fail_msg("exit status %d, expected %d; stderr:\n---\n%s\n---", kg__c, kg__e,  \
                     (err) ? (err) : "(none)");                                           \
    } while (0)

#endif
