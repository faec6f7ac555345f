/* rfc3339.c - RFC 3339 UTC times (see rfc3339.h). */
#include "rfc3339.h"

#include <stdbool.h>
#include <stdio.h>

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int64_t scone_utc_seconds(int year, int mon, int day, int hour, int min, int sec)
{
	return days_from_civil(year, mon, day) * 86400 + (int64_t)hour * 3600 + min * 60 + sec;
}

static bool digits(const char *s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

static int month_days(int year, int mon)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	return mon == 2 && leap ? 29 : days[mon - 1];
}

/* The zone suffix at s: its offset from UTC in seconds; false unless it ends the text. */
static bool zone(const char *s, int *offset)
{
	int hh, mm;

	if ((s[0] == 'Z' || s[0] == 'z') && s[1] == '\0') {
		*offset = 0;
		return true;
	}
	if ((s[0] != '+' && s[0] != '-') || !digits(s + 1, 2, &hh) || s[3] != ':' || !digits(s + 4, 2, &mm) ||
	    s[6] != '\0' || hh > 23 || mm > 59)
		return false;
	*offset = (s[0] == '-' ? -1 : 1) * (hh * 3600 + mm * 60);
	return true;
}

enum scone_err scone_rfc3339_parse(const char *s, const char *what, int64_t *out)
{
	int y, mo, d, h, mi, se, off;
	const char *p = s;

	if (!digits(p, 4, &y) || p[4] != '-' || !digits(p + 5, 2, &mo) || p[7] != '-' ||
	    !digits(p + 8, 2, &d) || (p[10] != 'T' && p[10] != 't') || !digits(p + 11, 2, &h) ||
	    p[13] != ':' || !digits(p + 14, 2, &mi) || p[16] != ':' || !digits(p + 17, 2, &se))
		goto bad;
	p += 19;
	if (*p == '.') {
		do
			p++;
		while (*p >= '0' && *p <= '9');
		if (p[-1] == '.')
			goto bad;
	}
	if (!zone(p, &off) || y < 1970 || mo < 1 || mo > 12 || d < 1 || d > month_days(y, mo) || h > 23 ||
	    mi > 59 || se > 60)
		goto bad;
	*out = scone_utc_seconds(y, mo, d, h, mi, se > 59 ? 59 : se) - off;
	return SCONE_ERR_OK;
bad:
	return scone_err_set(SCONE_ERR_INVALID,
			     "%s: \"%.40s\" is not an RFC 3339 time such as 2025-06-19T10:56:11Z", what, s);
}

void scone_rfc3339_format(int64_t t, char out[static SCONE_RFC3339_SIZE])
{
	int64_t days = t / 86400, rem = t % 86400;
	int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097, yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
	int d = (int)(doy - (153 * mp + 2) / 5 + 1), m = (int)(mp < 10 ? mp + 3 : mp - 9);
	int64_t y = yoe + era * 400 + (m <= 2);

	if (t < 0 || y > 9999) {
		snprintf(out, SCONE_RFC3339_SIZE, "%s", "out-of-range-time");
		return;
	}
	snprintf(out, SCONE_RFC3339_SIZE, "%04d-%02d-%02dT%02d:%02d:%02dZ", (int)y, m, d, (int)(rem / 3600),
		 (int)(rem / 60 % 60), (int)(rem % 60));
}
