/* version.c - the linked library's version (kaygraph/version.h). */
#include "kaygraph/version.h"

const char *kg_version(void)
{
    return KG_VERSION_STRING;
}

unsigned kg_version_number(void)
{
    return KG_VERSION_NUMBER;
}
