/* parse.c - SIZE, DUR, TIME and COUNT grammars, and their human renderings. */
#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "parse.h"

/*
 * A decimal number "123" or "1.5" at *pp, exactly: mant / 10^scale (a
 * binary fraction such as 0.1 would make 1.9GB a fraction of a byte and
 * 0.05s 49999999ns).  Fraction digits past what 64 bits hold are dropped
 * (below 10^-19 of the value) and counted in dropped.  Advances *pp.
 * -1: no digits; -2: the whole part does not fit in 64 bits.
 */
struct decimal {
	uint64_t mant;
	unsigned scale;		/* 0..19 */
	int dropped;		/* nonzero fraction digits were dropped */
};

static int
number(const char **pp, struct decimal *out)
{
	const char *p = *pp;
	uint64_t m = 0;
	unsigned scale = 0;
	int digits = 0, dropped = 0;

	while (isdigit((unsigned char)*p)) {
		if (__builtin_mul_overflow(m, 10, &m) ||
		    __builtin_add_overflow(m, (uint64_t)(*p - '0'), &m))
			return -2;
		p++;
		digits++;
	}
	if (*p == '.' && isdigit((unsigned char)p[1])) {
		const char *end = ++p, *last;
		while (isdigit((unsigned char)*end))
			end++;
		for (last = end; last > p && last[-1] == '0'; last--)
			;	/* trailing zeros add nothing */
		for (; p < last; p++) {
			uint64_t n;
			if (scale == 19 || __builtin_mul_overflow(m, 10, &n) ||
			    __builtin_add_overflow(n, (uint64_t)(*p - '0'), &n)) {
				dropped = 1;
				break;
			}
			m = n;
			scale++;
		}
		p = end;
		digits++;
	}
	if (!digits)
		return -1;
	*pp = p;
	out->mant = m;
	out->scale = scale;
	out->dropped = dropped;
	return 0;
}

static uint64_t
gcd_u64(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

/* d * mult: the whole part in *whole, what is left in *frac (0 <= frac <
 * 1; exactly 0 when d * mult is whole).  -1 if the whole part does not
 * fit. */
static int
scaled(const struct decimal *d, uint64_t mult, uint64_t *whole,
    long double *frac)
{
	uint64_t p10 = 1;

	for (unsigned i = 0; i < d->scale; i++)
		p10 *= 10;
	uint64_t g = gcd_u64(mult, p10);
	uint64_t num = mult / g, den = p10 / g;	/* coprime */
	if (__builtin_mul_overflow(d->mant / den, num, whole))
		return -1;
	if (d->mant % den == 0) {	/* den and num are coprime */
		*frac = 0;
		return 0;
	}
	*frac = (long double)(d->mant % den) * (long double)num /
	    (long double)den;
	/* the fraction times num may hold whole units too */
	uint64_t more = (uint64_t)*frac;
	if (__builtin_add_overflow(*whole, more, whole))
		return -1;
	*frac -= (long double)more;
	if (*frac <= 0)		/* rounded to whole: still not whole */
		*frac = 0x1p-64L;
	return 0;
}

/* d * mult nanoseconds, rounded to the nearest; -1 past INT64_MAX. */
static int
scaled_ns(const struct decimal *d, uint64_t mult, int64_t *out)
{
	uint64_t whole;
	long double frac;

	if (scaled(d, mult, &whole, &frac) < 0)
		return -1;
	if (frac >= 0.5L && __builtin_add_overflow(whole, 1, &whole))
		return -1;
	if (whole > INT64_MAX)
		return -1;
	*out = (int64_t)whole;
	return 0;
}

int
ch_parse_u64(const char *s, uint64_t *out, struct ch_error *err)
{
	uint64_t v = 0;
	const char *p = s;

	if (!*p)
		return ch_err(err, CH_EXIT_USAGE, "empty number");
	for (; *p; p++) {
		if (!isdigit((unsigned char)*p))
			return ch_err(err, CH_EXIT_USAGE,
			    "'%s' is not a non-negative decimal integer", s);
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return ch_err(err, CH_EXIT_USAGE, "'%s' is too large", s);
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*out = v;
	return 0;
}

int
ch_parse_count(const char *s, uint64_t min, uint64_t max, uint64_t *out,
    struct ch_error *err)
{
	if (ch_parse_u64(s, out, err) < 0)
		return -1;
	if (*out < min || *out > max)
		return ch_err(err, CH_EXIT_USAGE,
		    "'%s' is out of range (%" PRIu64 "..%" PRIu64 ")", s, min, max);
	return 0;
}

static const struct {
	const char *suffix;
	uint64_t mult;
} size_units[] = {
	{ "", 1 }, { "B", 1 }, { "c", 1 },
	{ "K", 1ULL << 10 }, { "k", 1ULL << 10 }, { "KiB", 1ULL << 10 },
	{ "M", 1ULL << 20 }, { "MiB", 1ULL << 20 },
	{ "G", 1ULL << 30 }, { "GiB", 1ULL << 30 },
	{ "T", 1ULL << 40 }, { "TiB", 1ULL << 40 },
	{ "KB", 1000ULL }, { "kB", 1000ULL },
	{ "MB", 1000000ULL }, { "GB", 1000000000ULL },
	{ "TB", 1000000000000ULL },
};

int
ch_parse_size(const char *s, uint64_t *out, struct ch_error *err)
{
	const char *p = s;
	struct decimal v;
	int rc;

	while (*p == ' ')
		p++;
	if ((rc = number(&p, &v)) == -2)
		return ch_err(err, CH_EXIT_USAGE, "size '%s' is too large", s);
	if (rc < 0)
		goto bad;
	while (*p == ' ')
		p++;
	for (size_t i = 0; i < sizeof size_units / sizeof size_units[0]; i++) {
		if (strcmp(p, size_units[i].suffix) != 0)
			continue;
		uint64_t bytes;
		long double frac;
		if (scaled(&v, size_units[i].mult, &bytes, &frac) < 0 ||
		    bytes == UINT64_MAX)
			return ch_err(err, CH_EXIT_USAGE, "size '%s' is too large", s);
		if (frac != 0 || v.dropped)
			return ch_err(err, CH_EXIT_USAGE,
			    "size '%s' is not a whole number of bytes", s);
		*out = bytes;
		return 0;
	}
bad:
	return ch_err(err, CH_EXIT_USAGE,
	    "invalid size '%s' (expected bytes, or a number with K, M, G, T, "
	    "KiB, MiB, GiB, TiB, KB, MB, GB or TB, e.g. 64MiB)", s);
}

int
ch_parse_duration(const char *s, int64_t *out_ns, struct ch_error *err)
{
	const char *p = s;
	int64_t total = 0;
	int pairs = 0;

	while (*p) {
		struct decimal v;
		uint64_t mult;
		int64_t ns;
		int rc = number(&p, &v);
		if (rc == -2)
			goto too_long;
		if (rc < 0)
			goto bad;
		if (strncmp(p, "ms", 2) == 0) {
			mult = 1000000;
			p += 2;
		} else if (*p == 's') {
			mult = 1000000000;
			p++;
		} else if (*p == 'm') {
			mult = 60000000000ULL;
			p++;
		} else if (*p == 'h') {
			mult = 3600000000000ULL;
			p++;
		} else if (*p == 'd') {
			mult = 86400000000000ULL;
			p++;
		} else if (*p == '\0' && pairs == 0) {
			mult = 1000000000;	/* a bare number is seconds */
		} else {
			goto bad;
		}
		if (scaled_ns(&v, mult, &ns) < 0 ||
		    __builtin_add_overflow(total, ns, &total))
			goto too_long;
		pairs++;
	}
	if (!pairs)
		goto bad;
	*out_ns = total;
	return 0;
too_long:
	return ch_err(err, CH_EXIT_USAGE, "duration '%s' is too long", s);
bad:
	return ch_err(err, CH_EXIT_USAGE,
	    "invalid duration '%s' (expected e.g. 500ms, 90s, 15m, 1h30m, 7d)", s);
}

/* Read exactly n digits. */
static int
digits(const char **pp, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*pp)[i]))
			return -1;
		v = v * 10 + ((*pp)[i] - '0');
	}
	*pp += n;
	*out = v;
	return 0;
}

static int
days_in_month(int y, int mo)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
	    30, 31 };
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return days[mo - 1] + (mo == 2 && leap);
}

/* The local time in want, as mktime takes it with want's tm_isdst; 1 if
 * it exists that way (mktime normalised nothing away). */
static int
local_time(const struct tm *want, time_t *t)
{
	struct tm tm = *want;

	*t = mktime(&tm);
	/* -1 is a time too (a second before the epoch), and what mktime
	 * returns, fields untouched, for a time it cannot make: ask back. */
	if (*t == (time_t)-1 && !localtime_r(t, &tm))
		return 0;
	return tm.tm_year == want->tm_year && tm.tm_mon == want->tm_mon &&
	    tm.tm_mday == want->tm_mday && tm.tm_hour == want->tm_hour &&
	    tm.tm_min == want->tm_min && tm.tm_sec == want->tm_sec;
}

/* 0, or -1 if s is not ISO 8601, -2 if it is but out of range, -3 if it
 * is a local time that a change of the zone's offset (to daylight saving
 * time, say) skips. */
static int
iso8601(const char *s, int64_t *out_ns)
{
	const char *p = s;
	struct tm tm = { 0 };
	int y, mo, d, h = 0, mi = 0, sec = 0;
	long nanos = 0;
	int have_zone = 0;
	long zone_sec = 0;
	time_t t;

	if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) ||
	    *p++ != '-' || digits(&p, 2, &d))
		return -1;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		p++;
		if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi))
			return -1;
		if (*p == ':') {
			p++;
			if (digits(&p, 2, &sec))
				return -1;
			if (*p == '.' || *p == ',') {
				long scale = 100000000;
				p++;
				if (!isdigit((unsigned char)*p))
					return -1;
				while (isdigit((unsigned char)*p)) {
					nanos += (*p++ - '0') * scale;
					scale /= 10;
				}
			}
		}
		if (*p == 'Z' || *p == 'z') {
			have_zone = 1;
			p++;
		} else if (*p == '+' || *p == '-') {
			int sign = *p++ == '-' ? -1 : 1, zh, zm = 0;
			if (digits(&p, 2, &zh))
				return -1;
			if (*p == ':') {
				p++;
				if (digits(&p, 2, &zm))
					return -1;	/* "+02:" */
			} else if (*p && digits(&p, 2, &zm)) {
				return -1;
			}
			/* Offsets in use run from -12:00 to +14:00. */
			if (zm > 59 || zh * 60 + zm > (sign < 0 ? 12 : 14) * 60)
				return -1;
			have_zone = 1;
			zone_sec = sign * (zh * 3600L + zm * 60L);
		}
	}
	if (*p)
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) ||
	    h > 23 || mi > 59 || sec > 60)
		return -1;
	/* A leap second (23:59:60 UTC: 05:29:60 in India) is the second
	 * after :59, as POSIX time, which has none, counts it. */
	int leap = sec == 60;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec - leap;
	if (have_zone) {
		/* No time_t overflow with four-digit years: -1 is a time. */
		t = timegm(&tm) - zone_sec;
	} else {
		/* Asked as standard time and as daylight saving time: a time
		 * the change in spring skips is neither, one the change in
		 * autumn repeats is both, and the first of the two counts
		 * (mktime's own guess, tm_isdst -1, takes either). */
		time_t ts, td;
		tm.tm_isdst = 0;
		int is = local_time(&tm, &ts);
		tm.tm_isdst = 1;
		int id = local_time(&tm, &td);
		if (!is && !id)
			return -3;
		t = is && id ? (ts < td ? ts : td) : is ? ts : td;
	}
	if (leap && ((t % 86400) + 86400) % 86400 != 86399)
		return -1;	/* not the last second of a UTC day */
	t += leap;
	/* Nanoseconds since the epoch fit int64_t only from 1677 to 2262;
	 * -2 tells the caller the date was fine but is out of that range. */
	if (__builtin_mul_overflow((int64_t)t, 1000000000, out_ns) ||
	    __builtin_add_overflow(*out_ns, nanos, out_ns))
		return -2;
	return 0;
}

int
ch_parse_time(const char *s, int64_t now_ns, int64_t *out_ns,
    struct ch_error *err)
{
	struct ch_error ignored;
	int64_t ago;
	int rc;

	if (s[0] == '@') {
		const char *p = s + 1;
		struct decimal v;
		int rc2 = number(&p, &v);
		if (rc2 == -2)
			goto range;
		if (rc2 == 0 && *p == '\0') {
			if (scaled_ns(&v, 1000000000, out_ns) < 0)
				goto range;
			return 0;
		}
	} else if (strlen(s) >= 10 && s[4] == '-' &&
	    (rc = iso8601(s, out_ns)) != -1) {
		if (rc == -3)
			return ch_err(err, CH_EXIT_USAGE, "time '%s' does not "
			    "exist in local time (a change of the zone's "
			    "offset, to daylight saving time say, skips it); "
			    "give a zone, such as Z or +01:00", s);
		if (rc < 0)
			goto range;
		return 0;
	} else if (ch_parse_duration(s, &ago, &ignored) == 0) {
		if (__builtin_sub_overflow(now_ns, ago, out_ns))
			goto range;
		return 0;
	}
	return ch_err(err, CH_EXIT_USAGE,
	    "invalid time '%s' (expected ISO 8601 like 2026-11-22T10:00:00Z, "
	    "@EPOCH, or a duration like 1h meaning that long ago)", s);
range:
	ch_err(err, CH_EXIT_USAGE, "time '%s' is out of range (times "
	    "are kept in nanoseconds: 1677-09-21 to 2262-04-11)", s);
	return -2;
}

void
ch_format_size(char *buf, int len, uint64_t bytes)
{
	static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)bytes;
	int u = 0;

	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, (size_t)len, "%" PRIu64 " B", bytes);
	else
		snprintf(buf, (size_t)len, v < 10 ? "%.1f %s" : "%.0f %s", v,
		    units[u]);
}

void
ch_format_duration(char *buf, int len, int64_t ns)
{
	int64_t s = ns / 1000000000;

	if (ns < 0) {
		snprintf(buf, (size_t)len, "-");
	} else if (ns < 1000000000) {
		snprintf(buf, (size_t)len, "%" PRId64 "ms", ns / 1000000);
	} else if (s < 60) {
		snprintf(buf, (size_t)len, "%" PRId64 "s", s);
	} else if (s < 3600) {
		snprintf(buf, (size_t)len, "%" PRId64 "m%02" PRId64 "s", s / 60,
		    s % 60);
	} else if (s < 86400) {
		snprintf(buf, (size_t)len, "%" PRId64 "h%02" PRId64 "m",
		    s / 3600, s % 3600 / 60);
	} else {
		snprintf(buf, (size_t)len, "%" PRId64 "d%02" PRId64 "h",
		    s / 86400, s % 86400 / 3600);
	}
}

int64_t
ch_age(int64_t now, int64_t then)
{
	int64_t d;

	if (__builtin_sub_overflow(now, then, &d))
		return then < 0 ? INT64_MAX : 0;
	return d < 0 ? 0 : d;
}

void
ch_format_time(char *buf, int len, int64_t ns, int nanos)
{
	time_t t = (time_t)(ns / 1000000000);
	long frac = (long)(ns % 1000000000);
	struct tm tm;
	char base[64];

	if (frac < 0) {
		frac += 1000000000;
		t--;
	}
	gmtime_r(&t, &tm);
	strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
	if (nanos)
		snprintf(buf, (size_t)len, "%s.%09ldZ", base, frac);
	else
		snprintf(buf, (size_t)len, "%sZ", base);
}
