/* testutil.h - what every cmocka test file includes: cmocka (with the
 * headers it needs first) and the fixtures (fixture.h). */
#ifndef KG_TESTUTIL_H
#define KG_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fixture.h"

#endif
