/* MQTT settings: broker URL, topic prefix, topic levels made from names. */
#include "server/mqtt.h"

#include "gpuguard/error.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Copies s[0..n) percent-decoded into out (cap bytes with the NUL).
 * Returns 0, or -1 on a bad escape, a decoded NUL or no room. */
static int pct_decode(const char *s, size_t n, char *out, size_t cap) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= n) return -1;
      int a = hexval(s[i + 1]), b = hexval(s[i + 2]);
      if (a < 0 || b < 0 || (a == 0 && b == 0)) return -1;
      c = (char)(a * 16 + b);
      i += 2;
    }
    if (o + 1 >= cap) return -1;
    out[o++] = c;
  }
  out[o] = 0;
  return 0;
}

#define URL_FORM "mqtt://[user[:pass]@]host[:port]"

int gg__mqtt_url_parse(const char *url, gg_mqtt_url *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  out->port = GG_MQTT_DEFAULT_PORT;
  if (!url || !*url) {
    snprintf(err, errlen, "the MQTT URL is empty; expected " URL_FORM);
    return GG_EINVAL;
  }
  const char *sep = strstr(url, "://");
  if (!sep) {
    snprintf(err, errlen, "'%.100s' is not an MQTT URL; expected " URL_FORM, url);
    return GG_EINVAL;
  }
  size_t slen = (size_t)(sep - url);
  if (slen != 4 || strncmp(url, "mqtt", 4)) {
    if (slen == 5 && !strncmp(url, "mqtts", 5))
      snprintf(err, errlen,
               "mqtts:// (MQTT over TLS) is not supported yet; use " URL_FORM
               " on a trusted network, or a local broker that bridges over TLS");
    else
      snprintf(err, errlen, "unsupported scheme '%.*s://'; expected " URL_FORM,
               (int)(slen > 20 ? 20 : slen), url);
    return GG_EINVAL;
  }
  const char *auth = sep + 3;
  size_t alen = strlen(auth);
  if (alen && auth[alen - 1] == '/') alen--; /* a bare trailing slash is harmless */
  for (size_t i = 0; i < alen; i++) {
    unsigned char c = (unsigned char)auth[i];
    if (c == '/' || c == '?' || c == '#') {
      snprintf(err, errlen, "the MQTT URL has a path or query after the host; expected " URL_FORM);
      return GG_EINVAL;
    }
    if (c <= 0x20 || c == 0x7f) {
      snprintf(err, errlen,
               "the MQTT URL contains a space or control character; expected " URL_FORM);
      return GG_EINVAL;
    }
  }
  /* userinfo ends at the last '@' (a password may contain '@' unescaped). */
  const char *hostport = auth;
  const char *at = NULL;
  for (size_t i = 0; i < alen; i++)
    if (auth[i] == '@') at = auth + i;
  if (at) {
    const char *colon = memchr(auth, ':', (size_t)(at - auth));
    size_t ulen = colon ? (size_t)(colon - auth) : (size_t)(at - auth);
    if (pct_decode(auth, ulen, out->user, sizeof out->user)) {
      snprintf(err, errlen, "the MQTT user name is too long or has a bad %%-escape");
      return GG_EINVAL;
    }
    if (colon && pct_decode(colon + 1, (size_t)(at - colon - 1), out->pass, sizeof out->pass)) {
      snprintf(err, errlen, "the MQTT password is too long or has a bad %%-escape");
      return GG_EINVAL;
    }
    out->has_user = 1;
    hostport = at + 1;
  }
  size_t hplen = alen - (size_t)(hostport - auth);
  const char *host = hostport, *port = NULL;
  size_t hlen = hplen;
  if (hplen && hostport[0] == '[') { /* [IPv6]:port */
    const char *close = memchr(hostport, ']', hplen);
    if (!close) {
      snprintf(err, errlen, "the MQTT URL has '[' without ']' around an IPv6 address");
      return GG_EINVAL;
    }
    host = hostport + 1;
    hlen = (size_t)(close - host);
    size_t rest = hplen - (size_t)(close + 1 - hostport);
    if (rest) {
      if (close[1] != ':') {
        snprintf(err, errlen, "unexpected text after ']' in the MQTT URL; expected " URL_FORM);
        return GG_EINVAL;
      }
      port = close + 2;
    }
  } else {
    const char *colon = memchr(hostport, ':', hplen);
    if (colon) {
      hlen = (size_t)(colon - hostport);
      port = colon + 1;
    }
  }
  if (hlen == 0) {
    snprintf(err, errlen, "the MQTT URL has no host; expected " URL_FORM);
    return GG_EINVAL;
  }
  if (hlen >= sizeof out->host) {
    snprintf(err, errlen, "the MQTT host name is longer than %zu bytes", sizeof out->host - 1);
    return GG_EINVAL;
  }
  memcpy(out->host, host, hlen);
  out->host[hlen] = 0;
  if (port) {
    size_t plen = alen - (size_t)(port - auth);
    long v = 0;
    int ok = plen > 0 && plen <= 5;
    for (size_t i = 0; ok && i < plen; i++) {
      if (port[i] < '0' || port[i] > '9')
        ok = 0;
      else
        v = v * 10 + (port[i] - '0');
    }
    if (!ok || v < 1 || v > 65535) {
      snprintf(err, errlen, "the MQTT port '%.*s' is not a number in 1..65535",
               (int)(plen > 16 ? 16 : plen), port);
      return GG_EINVAL;
    }
    out->port = (int)v;
  }
  return 0;
}

int gg__mqtt_prefix_check(const char *prefix, char *err, size_t errlen) {
  size_t n = prefix ? strlen(prefix) : 0;
  if (n == 0 || n > 200) {
    snprintf(err, errlen, "the MQTT topic prefix must have 1..200 bytes (it has %zu)", n);
    return GG_EINVAL;
  }
  if (prefix[0] == '$') {
    snprintf(err, errlen, "the MQTT topic prefix '%s' starts with '$', which brokers reserve",
             prefix);
    return GG_EINVAL;
  }
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)prefix[i];
    if (c == '+' || c == '#' || c < 0x20 || c == 0x7f) {
      snprintf(err, errlen,
               "the MQTT topic prefix '%.200s' contains '+', '#' or a control character; use "
               "letters, digits, '-', '_' and '/' between levels",
               prefix);
      return GG_EINVAL;
    }
    if (c == '/' && (i == 0 || i + 1 == n || prefix[i + 1] == '/')) {
      snprintf(err, errlen,
               "the MQTT topic prefix '%.200s' has an empty level ('/' at an end or '//')", prefix);
      return GG_EINVAL;
    }
  }
  return 0;
}

/* Length of the valid UTF-8 sequence at s (1..4), 0 when it is invalid
 * (overlong, surrogate, beyond U+10FFFF, truncated); *cp gets the code point. */
static int utf8_seq(const unsigned char *s, uint32_t *cp) {
  unsigned char c = s[0];
  int n;
  uint32_t v, min;
  if (c < 0x80) {
    *cp = c;
    return 1;
  } else if ((c & 0xe0) == 0xc0) {
    n = 2, v = c & 0x1f, min = 0x80;
  } else if ((c & 0xf0) == 0xe0) {
    n = 3, v = c & 0x0f, min = 0x800;
  } else if ((c & 0xf8) == 0xf0) {
    n = 4, v = c & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  for (int i = 1; i < n; i++) {
    if ((s[i] & 0xc0) != 0x80) return 0; /* also stops at the NUL */
    v = (v << 6) | (s[i] & 0x3f);
  }
  if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;
  *cp = v;
  return n;
}

char *gg__mqtt_topic_level(const char *name, char *out, size_t outlen) {
  size_t cap = outlen - 1 < GG_MQTT_SEGMENT_MAX ? outlen - 1 : GG_MQTT_SEGMENT_MAX;
  size_t o = 0;
  const unsigned char *s = (const unsigned char *)(name ? name : "");
  while (*s) {
    uint32_t cp = 0;
    int n = utf8_seq(s, &cp);
    /* What brokers refuse in a topic (mosquitto_validate_utf8): control
     * characters C0 and C1, and the Unicode non-characters. */
    int bad = n == 0 || cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || (cp >= 0xfdd0 && cp <= 0xfdef) ||
              (cp & 0xfffe) == 0xfffe || cp == '/' || cp == '+' || cp == '#';
    if (bad) {
      if (o + 1 > cap) break;
      out[o++] = '_';
      s += n ? n : 1;
    } else {
      if (o + (size_t)n > cap) break;
      memcpy(out + o, s, (size_t)n);
      o += (size_t)n;
      s += n;
    }
  }
  if (o == 0) out[o++] = '_';
  out[o] = 0;
  return out;
}
