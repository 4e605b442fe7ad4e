/* dashboard/prometheus.h - the Prometheus text exposition of /metrics (prometheus.c). */
#ifndef KG_DASH_PROMETHEUS_H
#define KG_DASH_PROMETHEUS_H

#include "hub.h"
#include "util/buf.h"

/* The whole exposition: the model's families and the hub's own. */
void kg__prom_render(kg__hub *h, double now, kg_buf *sb);
/* The model's families alone (tests, fuzz targets); the caller keeps `a`
 * from changing meanwhile. */
void kg__prom_render_agg(kg__agg *a, double now, kg_buf *sb);
/* Append a label value escaped per the exposition format. */
void kg__prom_label(kg_buf *sb, const char *v);

#endif
