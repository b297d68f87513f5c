/* The MQTT settings of the event publisher (app-events.c): the broker URL,
 * the topic prefix, and the one rule that turns a name into a topic level.
 * Pure string work with no libmosquitto dependency, so it is built and
 * tested in every configuration. */
#ifndef GG_SERVER_MQTT_H
#define GG_SERVER_MQTT_H

#include <stddef.h>

#define GG_MQTT_DEFAULT_PORT 1883
#define GG_MQTT_DEFAULT_PREFIX "gpuguard"
/* Longest topic level made from a name (bytes, without the NUL). */
#define GG_MQTT_SEGMENT_MAX 128

/* A parsed mqtt://[user[:pass]@]host[:port] URL. */
typedef struct gg_mqtt_url {
  char host[256]; /* a name or address; an IPv6 address without its brackets */
  int port;       /* GG_MQTT_DEFAULT_PORT when the URL has none */
  char user[128]; /* "" when none; percent-decoded */
  char pass[128]; /* "" when none; percent-decoded */
  int has_user;   /* 1 when the URL names a user (possibly "") */
} gg_mqtt_url;

/* Parses url into *out. Returns 0, or GG_EINVAL with what is wrong and the
 * expected form in err (the password is never copied into err): another
 * scheme (mqtts:// included: TLS is not supported yet), an empty host, a
 * port outside 1..65535, a path or query, bad percent-escapes, fields too
 * long. */
int gg__mqtt_url_parse(const char *url, gg_mqtt_url *out, char *err, size_t errlen);

/* Checks a topic prefix ("gpuguard", "home/cams"): non-empty, at most 200
 * bytes, no '+', '#', control characters or empty levels, and not starting
 * with '$' (reserved for the broker). Returns 0, or GG_EINVAL with the
 * reason in err. */
int gg__mqtt_prefix_check(const char *prefix, char *err, size_t errlen);

/* Writes name as a single topic level into out (outlen bytes, at least 2):
 * '/', '+', '#', control characters (U+0000..U+001F, U+007F) and bytes of
 * invalid UTF-8 each become '_'; an empty name becomes "_"; the result is
 * cut at GG_MQTT_SEGMENT_MAX bytes (or outlen - 1) on a character boundary.
 * Returns out. Different names can map to one level ("a/b" and "a_b"):
 * the payload carries the exact name and id. */
char *gg__mqtt_topic_level(const char *name, char *out, size_t outlen);

#endif
