/*
 * server_metrics.c - the HTTPS front end's counters (lock-free atomics,
 * updated from every worker) and their Prometheus text exposition.
 *
 * The histogram keeps one non-cumulative count per bucket; exposition sums
 * them, so _count always equals the +Inf bucket even while workers update.
 */
#include "server_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

static const double dur_bounds[CAS_SERVER_DUR_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
};

static const char *const dur_labels[CAS_SERVER_DUR_BUCKETS] = {
    "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1",
};

static const char *const limit_names[CAS_LIMIT_COUNT_] = {"header",  "body",   "rate",
							  "timeout", "method", "memory"};

static const char *const class_names[4] = {"2xx", "3xx", "4xx", "5xx"};

void cas_server_metrics_add(atomic_uint_least64_t *counter)
{
	atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

void cas_server_metrics_limit(struct cas_server_metrics_state *m, enum cas_server_limit l)
{
	if (l >= 0 && l < CAS_LIMIT_COUNT_)
		cas_server_metrics_add(&m->limits[l]);
}

void cas_server_metrics_request(struct cas_server_metrics_state *m, int status, uint64_t dur_ns)
{
	double secs = (double)dur_ns / 1e9;
	int b = 0;

	if (status >= 200 && status < 600)
		cas_server_metrics_add(&m->requests[status / 100 - 2]);
	while (b < CAS_SERVER_DUR_BUCKETS && secs > dur_bounds[b])
		b++;
	cas_server_metrics_add(&m->dur_buckets[b]);
	atomic_fetch_add_explicit(&m->dur_sum_ns, dur_ns, memory_order_relaxed);
}

static uint64_t get(const atomic_uint_least64_t *counter)
{
	return atomic_load_explicit(counter, memory_order_relaxed);
}

/* Append printf-formatted text; fails when the line does not fit or out is full. */
static enum scone_err put(struct scone_wbuf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static enum scone_err put(struct scone_wbuf *out, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		return scone_err_set(SCONE_ERR_TOO_LARGE, "metrics: line longer than %zu bytes",
				     sizeof(line));
	return scone_wbuf_put(out, line, (size_t)n);
}

static enum scone_err head(struct scone_wbuf *out, const char *name, const char *type, const char *help)
{
	return put(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

enum scone_err cas_server_metric(struct scone_wbuf *out, const char *name, const char *type, const char *help,
				 uint64_t v)
{
	SCONE_TRY(head(out, name, type, help));
	return put(out, "%s %" PRIu64 "\n", name, v);
}

static enum scone_err requests(const struct cas_server *srv, struct scone_wbuf *out)
{
	static const char name[] = "scone_cas_requests_total";

	SCONE_TRY(head(out, name, "counter", "HTTP responses sent, by status class."));
	for (int i = 0; i < 4; i++)
		SCONE_TRY(put(out, "%s{code=\"%s\"} %" PRIu64 "\n", name, class_names[i],
			      get(&srv->m.requests[i])));
	return SCONE_ERR_OK;
}

static enum scone_err histogram(const struct cas_server *srv, struct scone_wbuf *out)
{
	static const char name[] = "scone_cas_request_duration_seconds";
	uint64_t cum = 0, sum_ns = get(&srv->m.dur_sum_ns);

	SCONE_TRY(
	    head(out, name, "histogram", "Time from a request's first byte to its response being queued."));
	for (int b = 0; b < CAS_SERVER_DUR_BUCKETS; b++) {
		cum += get(&srv->m.dur_buckets[b]);
		SCONE_TRY(put(out, "%s_bucket{le=\"%s\"} %" PRIu64 "\n", name, dur_labels[b], cum));
	}
	cum += get(&srv->m.dur_buckets[CAS_SERVER_DUR_BUCKETS]);
	SCONE_TRY(put(out, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, cum));
	SCONE_TRY(
	    put(out, "%s_sum %" PRIu64 ".%09" PRIu64 "\n", name, sum_ns / 1000000000u, sum_ns % 1000000000u));
	return put(out, "%s_count %" PRIu64 "\n", name, cum);
}

static enum scone_err limits(const struct cas_server *srv, struct scone_wbuf *out)
{
	static const char name[] = "scone_cas_limit_rejections_total";

	SCONE_TRY(
	    head(out, name, "counter", "Requests or connections refused or cut off by a limit, by reason."));
	for (int i = 0; i < CAS_LIMIT_COUNT_; i++)
		SCONE_TRY(put(out, "%s{reason=\"%s\"} %" PRIu64 "\n", name, limit_names[i],
			      get(&srv->m.limits[i])));
	return SCONE_ERR_OK;
}

enum scone_err cas_server_metrics(const struct cas_server *srv, struct scone_wbuf *out)
{
	int open;

	if (!srv || !out)
		return scone_err_set(SCONE_ERR_INVALID, "cas_server_metrics: no server or no output buffer");
	open = atomic_load_explicit(&srv->open, memory_order_relaxed);
	SCONE_TRY(requests(srv, out));
	SCONE_TRY(cas_server_metric(out, "scone_cas_connections_open", "gauge",
				    "Client connections open now.", (uint64_t)(open > 0 ? open : 0)));
	SCONE_TRY(cas_server_metric(out, "scone_cas_connections_total", "counter",
				    "Client connections accepted.", get(&srv->m.conn_total)));
	SCONE_TRY(cas_server_metric(out, "scone_cas_connections_rejected_total", "counter",
				    "Connections closed at once because max_connections were open.",
				    get(&srv->m.conn_rejected)));
	SCONE_TRY(cas_server_metric(out, "scone_cas_tls_handshake_failures_total", "counter",
				    "Connections that sent bytes but never completed a TLS handshake.",
				    get(&srv->m.hs_failures)));
	SCONE_TRY(cas_server_metric(out, "scone_cas_request_bytes_charged", "gauge",
				    "Bytes of unanswered requests charged to max_pending_bytes now.",
				    (uint64_t)atomic_load_explicit(&srv->pending, memory_order_relaxed)));
	SCONE_TRY(
	    cas_server_metric(out, "scone_cas_slow_calls", "gauge",
			      "Requests in the slow lane now (session writes: queued or being handled).",
			      (uint64_t)atomic_load_explicit(&srv->slow.busy, memory_order_relaxed)));
	SCONE_TRY(histogram(srv, out));
	return limits(srv, out);
}
