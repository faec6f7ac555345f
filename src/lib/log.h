/*
 * log.h - leveled logging to stderr.
 *
 * The logger takes only strings and numbers; keys live in struct types that
 * cannot be passed to a %s, and are logged only as fingerprints
 * (scone_fingerprint in crypto.h). SCONE_LOG selects the level
 * (error|warn|info|debug, default warn); SCONE_LOG_FORMAT=json prints one
 * JSON object per line.
 */
#ifndef SCONE_LOG_H
#define SCONE_LOG_H

enum scone_log_level {
	SCONE_LOG_ERROR,
	SCONE_LOG_WARN,
	SCONE_LOG_INFO,
	SCONE_LOG_DEBUG,
};

/* Read SCONE_LOG / SCONE_LOG_FORMAT; safe to call more than once. */
void scone_log_init(const char *component);

void scone_log_set_level(enum scone_log_level level);

int scone_log_enabled(enum scone_log_level level);

void scone_log(enum scone_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * A line with structured fields: members is a JSON object's text (e.g. from
 * json_dumps); in JSON mode its members join ts/level/component/msg in the
 * same object, in text mode it follows msg. The caller guarantees members
 * is a valid JSON object and holds no secret.
 */
void scone_log_fields(enum scone_log_level level, const char *msg, const char *members);

#define scone_error(...) scone_log(SCONE_LOG_ERROR, __VA_ARGS__)
#define scone_warn(...) scone_log(SCONE_LOG_WARN, __VA_ARGS__)
#define scone_info(...) scone_log(SCONE_LOG_INFO, __VA_ARGS__)
#define scone_debug(...) scone_log(SCONE_LOG_DEBUG, __VA_ARGS__)

#endif
