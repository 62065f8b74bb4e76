/* The web console's static files (console/ in the source tree; console.directory once installed), served under
 * /console/ without a token: they hold nothing secret, and the page asks for a token and sends it with each
 * request it makes. Only names api_console_name accepts reach here (no '/', no leading '.'), only regular
 * files of a known type are served, and every answer to a /console URL (a file, the redirect, an error: server.c)
 * goes with a Content-Security-Policy that lets the page load nothing but its own files and talk to nothing but
 * this server, and the other headers of api_console_headers (docs/console.md). */
#include "console.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "omni/log.h"

#define FILE_MAX (4 * 1024 * 1024)

/* What the page may do: its own scripts and styles, fetch() to this origin (the API and its event stream),
 * images it draws itself; no inline script, no frames, no forms elsewhere. */
static const char CSP[] = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                          "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

static const struct {
    const char *ext, *type;
} TYPES[] = {
    { ".html", "text/html; charset=utf-8" }, { ".css", "text/css; charset=utf-8" },
    { ".js", "text/javascript; charset=utf-8" }, { ".svg", "image/svg+xml" },
    { ".png", "image/png" }, { ".ico", "image/x-icon" }, { ".txt", "text/plain; charset=utf-8" },
};

const char *api_console_type(const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++) {
        size_t e = strlen(TYPES[i].ext);
        if (n > e && !strcmp(name + n - e, TYPES[i].ext))
            return TYPES[i].type;
    }
    return NULL;
}

void api_console_headers(struct MHD_Response *resp)
{
    MHD_add_response_header(resp, "Content-Security-Policy", CSP);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
}

struct MHD_Response *api_console_file(const api_config_t *cfg, const char *name)
{
    const char *type = api_console_type(name);
    if (!cfg->console.directory || !type)
        return NULL;
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", cfg->console.directory, name) >= sizeof path)
        return NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > FILE_MAX) {
        if (fd >= 0)
            close(fd);
        omni_debug("console: %s: not served (no such regular file, or larger than %d bytes)", path, FILE_MAX);
        return NULL;
    }
    struct MHD_Response *resp = MHD_create_response_from_fd((uint64_t)st.st_size, fd); /* MHD closes fd */
    if (!resp) {
        close(fd);
        return NULL;
    }
    MHD_add_response_header(resp, "Content-Type", type);
    MHD_add_response_header(resp, "Cache-Control", "no-cache"); /* an error answer says no-store (server.c) */
    api_console_headers(resp);
    return resp;
}
