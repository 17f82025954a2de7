/* Error names/messages generated from the single TE_ERROR_TABLE. */
#include "todoevents/error.h"
#include "todoevents/version.h"

#include <stdlib.h>

static const struct {
    const char *name;
    const char *msg;
    int retriable;
} err_table[] = {
#define TE_ERR_ROW_(name, msg, retriable) {#name, msg, retriable},
    TE_ERROR_TABLE(TE_ERR_ROW_)
#undef TE_ERR_ROW_
};

static int err_in_range(te_err_t err) {
    return (int)err >= 0 && (int)err < (int)TE_ERR__END;
}

const char *te_err2str(te_err_t err) {
    return err_in_range(err) ? err_table[err].msg : "unknown error";
}

const char *te_err_name(te_err_t err) {
    return err_in_range(err) ? err_table[err].name : "TE_ERR_UNKNOWN";
}

int te_err_is_retriable(te_err_t err) {
    return err_in_range(err) ? err_table[err].retriable : 0;
}

int te_version(void) { return TE_VERSION_NUM; }

#define TE_STR2_(x) #x
#define TE_STR_(x) TE_STR2_(x)
const char *te_version_str(void) {
    return TE_STR_(TE_VERSION_MAJOR) "." TE_STR_(TE_VERSION_MINOR) "." TE_STR_(TE_VERSION_PATCH);
}

void te_free(void *ptr) { free(ptr); }
