/* Standard Webhooks signing secrets (see whsec.h). */
#include "whsec.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>

static int b64_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

int td_whsec_key(const char *secret, unsigned char *key, size_t cap) {
    if (!secret || strncmp(secret, "whsec_", 6) != 0) return -1;
    const char *b = secret + 6;
    size_t n = strlen(b), pad = 0;
    if (n == 0 || n % 4 != 0 || n > 4 * ((TD_WHSEC_MAX_KEY + 2) / 3)) return -1;
    while (pad < 2 && b[n - 1 - pad] == '=') pad++;
    for (size_t i = 0; i < n - pad; i++)
        if (!b64_char(b[i])) return -1;
    unsigned char out[4 * ((TD_WHSEC_MAX_KEY + 2) / 3)];
    int len = EVP_DecodeBlock(out, (const unsigned char *)b, (int)n);
    if (len < 0) return -1;
    len -= (int)pad; /* EVP_DecodeBlock counts padding as zero bytes */
    if (len < TD_WHSEC_MIN_KEY || len > TD_WHSEC_MAX_KEY || (size_t)len > cap) return -1;
    memcpy(key, out, (size_t)len);
    return len;
}

int td_whsec_new(char *out, size_t size) {
    unsigned char key[32];
    if (size < 6 + 45 || RAND_bytes(key, sizeof key) != 1) return -1;
    memcpy(out, "whsec_", 6);
    EVP_EncodeBlock((unsigned char *)out + 6, key, sizeof key);
    return 0;
}
