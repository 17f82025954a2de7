/* Small string helpers shared by the modules. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

te_err_t te__seterr(char *errstr, size_t size, te_err_t err, const char *fmt, ...) {
    if (errstr && size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errstr, size, fmt, ap);
        va_end(ap);
    }
    return err;
}

char *te__strdup(const char *s) {
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

int te__utf8_next(const unsigned char *s, uint32_t *cp) {
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if ((s[0] & 0xE0) == 0xC0) {
        *cp = ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
        return 2;
    }
    if ((s[0] & 0xF0) == 0xE0) {
        *cp = ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        return 3;
    }
    *cp = ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
          ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    return 4;
}

long te__utf8_count(const char *str, size_t len) {
    const unsigned char *s = (const unsigned char *)str;
    long n = 0;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t need;
        uint32_t min, cp;
        if (c < 0x80) {
            i++;
            n++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            need = 1, min = 0x80, cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            need = 2, min = 0x800, cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            need = 3, min = 0x10000, cp = c & 0x07;
        } else {
            return -1;
        }
        if (i + need >= len) /* truncated sequence */
            return -1;
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return -1;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return -1;
        i += need + 1;
        n++;
    }
    return n;
}

static bool is_white_space(uint32_t cp) {
    /* Unicode White_Space property. */
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 ||
           cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

bool te__utf8_is_blank(const char *str) {
    const unsigned char *s = (const unsigned char *)str;
    while (*s) {
        uint32_t cp;
        s += te__utf8_next(s, &cp);
        if (!is_white_space(cp))
            return false;
    }
    return true;
}

bool te__utf8_has_control(const char *str, bool allow_newline_tab) {
    const unsigned char *s = (const unsigned char *)str;
    while (*s) {
        uint32_t cp;
        s += te__utf8_next(s, &cp);
        if (allow_newline_tab && (cp == '\n' || cp == '\r' || cp == '\t'))
            continue;
        if (cp <= 0x1F || (cp >= 0x7F && cp <= 0x9F))
            return true;
    }
    return false;
}
