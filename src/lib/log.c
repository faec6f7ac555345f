/* log.c - leveled logging; text or JSON lines on stderr. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum scone_log_level log_level = SCONE_LOG_WARN;
static int log_json;
static const char *log_component = "scone";

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void scone_log_init(const char *component)
{
	const char *lvl = getenv("SCONE_LOG");
	const char *fmt = getenv("SCONE_LOG_FORMAT");

	if (component)
		log_component = component;
	if (lvl) {
		for (int i = 0; i <= SCONE_LOG_DEBUG; i++)
			if (strcmp(lvl, level_names[i]) == 0)
				log_level = (enum scone_log_level)i;
	}
	log_json = fmt && strcmp(fmt, "json") == 0;
}

void scone_log_set_level(enum scone_log_level level)
{
	log_level = level;
}

int scone_log_enabled(enum scone_log_level level)
{
	return level <= log_level;
}

/* Escape msg into out as a JSON string body; truncates safely. */
static void json_escape(char *out, size_t out_size, const char *msg)
{
	size_t o = 0;

	for (const char *p = msg; *p && o + 7 < out_size; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < 0x20) {
			o += (size_t)snprintf(out + o, out_size - o, "\\u%04x", c);
		} else {
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
}

void scone_log(enum scone_log_level level, const char *fmt, ...)
{
	char msg[1024];
	char line[2300];
	va_list ap;
	int n;

	if (!scone_log_enabled(level))
		return;
	va_start(ap, fmt);
	if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
		msg[0] = '\0';
	va_end(ap);
	if (log_json) {
		char esc[2100];
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		json_escape(esc, sizeof(esc), msg);
		n = snprintf(line, sizeof(line),
			     "{\"ts\":%lld.%03ld,\"level\":\"%s\",\"component\":\"%s\",\"msg\":\"%s\"}\n",
			     (long long)ts.tv_sec, ts.tv_nsec / 1000000, level_names[level], log_component,
			     esc);
	} else {
		n = snprintf(line, sizeof(line), "%s: %s: %s\n", log_component, level_names[level], msg);
	}
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = (int)sizeof(line) - 1;
	/* One write per line so concurrent lines do not interleave. */
	ssize_t w = write(STDERR_FILENO, line, (size_t)n);
	(void)w;
}

void scone_log_fields(enum scone_log_level level, const char *msg, const char *members)
{
	char line[2300], esc[1100];
	size_t mlen = members ? strlen(members) : 0;
	struct timespec ts;
	int n;

	if (!scone_log_enabled(level))
		return;
	if (!log_json || mlen < 2 || members[0] != '{' || members[mlen - 1] != '}') {
		scone_log(level, "%s %s", msg, members ? members : "");
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	json_escape(esc, sizeof(esc), msg);
	n = snprintf(line, sizeof(line),
		     "{\"ts\":%lld.%03ld,\"level\":\"%s\",\"component\":\"%s\",\"msg\":\"%s\"%s%.*s}\n",
		     (long long)ts.tv_sec, ts.tv_nsec / 1000000, level_names[level], log_component, esc,
		     mlen > 2 ? "," : "", (int)(mlen - 2), members + 1);
	if (n < 0 || (size_t)n >= sizeof(line))
		return; /* never emit a cut, invalid JSON line */
	ssize_t w = write(STDERR_FILENO, line, (size_t)n);
	(void)w;
}
