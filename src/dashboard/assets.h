/* dashboard/assets.h - the web UI, embedded at build time from web/ (web/gen_assets.cmake). */
#ifndef KG_DASH_ASSETS_H
#define KG_DASH_ASSETS_H

#include <stddef.h>

typedef struct kg_web_asset {
    const char *path;          /* "/index.html" */
    const char *content_type;
    const unsigned char *data;
    size_t len;
    const unsigned char *gz;   /* gzip of data, or NULL */
    size_t gz_len;
} kg_web_asset;

extern const kg_web_asset kg__web_assets[];   /* ends with path == NULL */

#endif
