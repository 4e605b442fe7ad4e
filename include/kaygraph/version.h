/* kaygraph/version.h - the library's version and its export macro.
 *
 * Versions follow the ABI rule written in docs/abi.md: a MAJOR bump may
 * break compiled callers (the SONAME is libkaygraph.so.MAJOR); a MINOR
 * release only adds (functions, event names, options at the end of a config
 * struct that is initialised by its *_init function); a PATCH release
 * changes no interface.  KG_VERSION_NUMBER orders versions: 0xMMmmpp. */
#ifndef KAYGRAPH_VERSION_H
#define KAYGRAPH_VERSION_H

#define KG_VERSION_MAJOR 0
#define KG_VERSION_MINOR 2
#define KG_VERSION_PATCH 0
#define KG_VERSION_STRING "0.2.0"
#define KG_VERSION_NUMBER ((KG_VERSION_MAJOR << 16) | (KG_VERSION_MINOR << 8) | KG_VERSION_PATCH)

/* Every public function carries KG_API.  The libraries are built with
 * hidden visibility, so this is what a program linking them can call, and
 * nothing else. */
#if defined(__GNUC__) || defined(__clang__)
#define KG_API __attribute__((visibility("default")))
#else
#define KG_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The version of the library actually linked (which may be newer than the
 * headers a program was compiled with): "0.2.0".  Static string. */
KG_API const char *kg_version(void);

/* KG_VERSION_NUMBER of the linked library. */
KG_API unsigned kg_version_number(void);

#ifdef __cplusplus
}
#endif
#endif
