/* log.h: logfmt logging (one line per event: ts=… level=… msg=… key=value…).
 * Every layer logs through here; secrets never reach these functions.
 * Thread-safe: each line is formatted into a local buffer and written with one write(2). */
#ifndef STEWARD_LOG_H
#define STEWARD_LOG_H

#include <stddef.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level level);
void log_set_fd(int fd);
int log_enabled(enum log_level level);

/* fmt holds extra key=value pairs (may be ""); msg is a short event name. */
void log_msg(enum log_level level, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(msg, ...) log_msg(LOG_DEBUG, msg, __VA_ARGS__)
#define log_info(msg, ...)  log_msg(LOG_INFO, msg, __VA_ARGS__)
#define log_warn(msg, ...)  log_msg(LOG_WARN, msg, __VA_ARGS__)
#define log_error(msg, ...) log_msg(LOG_ERROR, msg, __VA_ARGS__)

/* Quotes an untrusted string for a logfmt value into buf (truncated at n-1,
 * control characters and quotes escaped). Returns buf. */
const char *log_quote(char *buf, size_t n, const char *s);

#endif
