/* td_common (internal to the daemons) — process-wide Prometheus metrics.
 *
 * Families (counter, gauge, histogram) are registered by name in one
 * registry and rendered in the text exposition format 0.0.4 for GET
 * /metrics.  Families are rendered in registration order, the label sets
 * of a family in the order of their first use.  An unlabelled counter or
 * gauge is rendered as 0 before its first update, an unlabelled histogram
 * with zero buckets; a labelled family without label sets only has its
 * HELP and TYPE lines.
 *
 * Ownership: the registry owns every family; the td_metric_t pointers
 * stay valid until td_metrics_shutdown().  Names, help texts, label names,
 * bucket bounds and label values are copied.
 *
 * Thread-safety: every function is thread-safe, except that no other call
 * may run concurrently with (or after, using old pointers)
 * td_metrics_shutdown().  Updates take one mutex per family (label sets
 * are found by hash), so families never contend with each other.
 *
 * Programming errors — an invalid metric or label name, "le" as a
 * histogram label, re-registering a name with another type, other label
 * names or other buckets — are logged (td_log error) and return NULL; every
 * update function accepts NULL as a no-op, so a mistake never crashes the
 * daemon. */
#ifndef TD_METRICS_H
#define TD_METRICS_H

#include <stddef.h>

typedef struct td_metric_s td_metric_t;

/* label_names: NULL-terminated array (copied) or NULL for no labels.
 * Registering the same name twice returns the same family. */
td_metric_t *td_counter(const char *name, const char *help, const char *const *label_names);
td_metric_t *td_gauge(const char *name, const char *help, const char *const *label_names);
/* buckets: ascending upper bounds (copied); +Inf is added automatically
 * (a trailing +Inf given by the caller is ignored).  NULL = the default
 * latency buckets 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
 * 0.25, 0.5, 1, 2.5, 5, 10 (nbuckets ignored). */
td_metric_t *td_histogram(const char *name, const char *help, const char *const *label_names,
                          const double *buckets, size_t nbuckets);

/* label_values: as many as the family has label names (NULL when it has
 * none; a NULL array or NULL value reads as ""); copied on first use of a
 * label set.
 *   inc:     counter (by must be >= 0, otherwise ignored) or gauge (any by)
 *   set:     gauge (also accepted for a counter, e.g. to mirror a total)
 *   observe: histogram (NaN is ignored) */
void td_metric_inc(td_metric_t *m, const char *const *label_values, double by);
void td_metric_set(td_metric_t *m, const char *const *label_values, double v);
void td_metric_observe(td_metric_t *m, const char *const *label_values, double v);

/* Current value of a label set (counter/gauge value; histogram: number of
 * observations); 0 when the label set was never used or m is NULL.  For
 * tests and health checks. */
double td_metric_value(td_metric_t *m, const char *const *label_values);

/* Prometheus text exposition format 0.0.4 of every family (HELP, TYPE,
 * samples; histograms with cumulative _bucket{le="…"}, _sum, _count; label
 * values escaped: backslash, double quote, newline; HELP: backslash,
 * newline).  *len (if not NULL) is set to strlen of the result.  Caller
 * frees with free().  NULL only when out of memory. */
char *td_metrics_render(size_t *len);

/* The Content-Type to serve td_metrics_render() with. */
#define TD_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Frees every family (for a leak-free exit).  The registry may be used
 * again afterwards (it starts empty). */
void td_metrics_shutdown(void);

#endif /* TD_METRICS_H */
