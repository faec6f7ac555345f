/*
 * rfc3339.h - UTC times as RFC 3339 text ("2025-06-19T10:56:11Z") and
 * back, without the C library's time zone state: verifiers and the CLI
 * compare vendor dates and take "verify as of" times with them.
 */
#ifndef SCONE_RFC3339_H
#define SCONE_RFC3339_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define SCONE_RFC3339_SIZE 21 /* "YYYY-MM-DDTHH:MM:SSZ" + NUL */

/*
 * Parse "YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm|-hh:mm)" (T or t, Z or z;
 * the fraction is dropped) into unix seconds. INVALID naming what on any
 * other text, a field out of range or a year outside 1970..9999.
 */
SCONE_MUST_CHECK enum scone_err scone_rfc3339_parse(const char *s, const char *what, int64_t *out);

/* Format unix seconds t (>= 0) as "YYYY-MM-DDTHH:MM:SSZ". */
void scone_rfc3339_format(int64_t t, char out[static SCONE_RFC3339_SIZE]);

/* Unix seconds of a UTC civil time (no range checks; mon 1..12). */
int64_t scone_utc_seconds(int year, int mon, int day, int hour, int min, int sec);

#endif
