/* See zap.h. Keys are kept raw (32 bytes), sorted, and found by binary search: a handshake costs a lookup. */
#include "zap.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zmq.h>

#include "omni/curve.h"
#include "omni/frames.h"
#include "omni/log.h"
#include "omni/util.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define REMEMBERED 256 /* unknown keys remembered as already logged; the oldest is forgotten first */

typedef struct key32 {
    unsigned char b[32];
} key32_t;

struct zap {
    void *sock;
    loop_t *loop;
    key32_t *keys; /* sorted */
    size_t n_keys;
    key32_t logged[REMEMBERED]; /* unknown keys already logged, a ring */
    size_t n_logged, next_logged;
    int64_t window_start; /* monotonic ms: the minute ZAP_LOG_PER_MIN counts in */
    int logged_in_window;
    zap_stats_t stats;
};

static int cmp_key(const void *a, const void *b) { return memcmp(a, b, 32); }

static int add_key(zap_t *z, const char *z85, size_t *cap)
{
    if (z->n_keys == *cap) {
        *cap = *cap ? 2 * *cap : 16;
        z->keys = omni_realloc(z->keys, *cap * sizeof *z->keys);
    }
    if (zmq_z85_decode(z->keys[z->n_keys].b, z85) == NULL)
        return -1;
    z->n_keys++;
    return 0;
}

/* A directory of .pub files: each is read; anything else in it is left alone (NAME.key may sit beside). */
static int add_dir(zap_t *z, const char *dir, size_t *cap, char *err, size_t errsz)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        snprintf(err, errsz, "router.curve.allowed_keys: cannot read the directory %s: %s", dir, strerror(errno));
        return -1;
    }
    int rc = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d)) != NULL;) {
        size_t n = strlen(e->d_name);
        if (n <= 4 || strcmp(e->d_name + n - 4, ".pub") != 0)
            continue;
        char *path = omni_asprintf("%s/%s", dir, e->d_name), key[OMNI_CURVE_Z85_LEN + 1];
        rc = omni_curve_read_public(path, key, "router.curve.allowed_keys", err, errsz);
        if (rc == 0)
            add_key(z, key, cap);
        free(path);
    }
    closedir(d);
    return rc;
}

static int load_keys(zap_t *z, const router_config_t *cfg, char *err, size_t errsz)
{
    size_t cap = 0;
    for (size_t i = 0; i < cfg->router.curve.n_allowed_keys; i++) {
        const char *entry = cfg->router.curve.allowed_keys[i];
        char key[OMNI_CURVE_Z85_LEN + 1];
        struct stat st;
        if (!omni_curve_is_key(entry) && stat(entry, &st) == 0 && S_ISDIR(st.st_mode)) {
            if (add_dir(z, entry, &cap, err, errsz) != 0)
                return -1;
        } else if (omni_curve_read_public(entry, key, "router.curve.allowed_keys", err, errsz) != 0) {
            return -1;
        } else {
            add_key(z, key, &cap);
        }
    }
    qsort(z->keys, z->n_keys, sizeof *z->keys, cmp_key);
    return 0;
}

/* Logs a refused key unless it was logged already or this minute's lines are spent (then it is counted,
 * and the count is logged with the next line that may go out). */
static void log_refusal(zap_t *z, const unsigned char *key, const char *address)
{
    for (size_t i = 0; i < z->n_logged; i++)
        if (memcmp(z->logged[i].b, key, 32) == 0)
            return;
    int64_t now = omni_mono_ms();
    if (now - z->window_start >= 60000) {
        z->window_start = now;
        z->logged_in_window = 0;
    }
    if (z->logged_in_window >= ZAP_LOG_PER_MIN) {
        z->stats.refusals_not_logged++;
        return;
    }
    z->logged_in_window++;
    memcpy(z->logged[z->next_logged].b, key, 32);
    z->next_logged = (z->next_logged + 1) % REMEMBERED;
    if (z->n_logged < REMEMBERED)
        z->n_logged++;
    char z85[OMNI_CURVE_Z85_LEN + 1], fp[OMNI_CURVE_FP_LEN + 1];
    zmq_z85_encode(z85, key, 32);
    omni_curve_fingerprint_raw(key, fp);
    omni_log_event(OMNI_LOG_WARN, OMNI_MSGID_PEER_REFUSED, NULL,
                   "ingest: refused a connector from %s with CURVE key %s (fingerprint %s): not in "
                   "router.curve.allowed_keys (%llu refusals of other unknown keys not logged so far)", address, z85,
                   fp, z->stats.refusals_not_logged);
}

/* Answers one request: version, request id, status code and text, user id, metadata (RFC 27). */
static void answer(zap_t *z, const omni_frame_t *f, int n)
{
    static const omni_frame_t empty = { "", 0 };
    /* request: version, request id, domain, address, routing id, mechanism, credentials... */
    bool well_formed = n >= 6 && f[0].size == 3 && memcmp(f[0].data, "1.0", 3) == 0;
    const omni_frame_t *mech = well_formed ? &f[5] : &empty;
    char address[64] = "an unknown address", user[OMNI_CURVE_Z85_LEN + 1] = "";
    if (well_formed)
        snprintf(address, sizeof address, "%.*s", (int)(f[3].size < 63 ? f[3].size : 63), (const char *)f[3].data);
    const char *code = "400", *text = "not allowed";
    if (mech->size == 4 && memcmp(mech->data, "NULL", 4) == 0) {
        code = "200", text = "ipc: the socket file's permissions decide";
    } else if (mech->size == 5 && memcmp(mech->data, "CURVE", 5) == 0 && n == 7 && f[6].size == 32) {
        if (bsearch(f[6].data, z->keys, z->n_keys, sizeof *z->keys, cmp_key) != NULL) {
            code = "200", text = "OK";
            zmq_z85_encode(user, f[6].data, 32);
        } else {
            text = "unknown key";
            log_refusal(z, f[6].data, address);
        }
    }
    if (*code == '2')
        z->stats.admitted++;
    else
        z->stats.refused++;
    const omni_frame_t reply[] = { { "1.0", 3 }, n >= 2 ? f[1] : empty, { code, 3 }, { text, strlen(text) },
                                   { user, strlen(user) }, empty };
    for (int i = 0; i < 6; i++)
        zmq_send(z->sock, reply[i].data, reply[i].size, (i < 5 ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT);
}

static void on_request(loop_t *loop, int fd, int events, void *data)
{
    (void)loop, (void)fd, (void)events;
    zap_t *z = data;
    omni_frames_t fr;
    while (omni_frames_recv(z->sock, &fr) > 0) {
        omni_frame_t f[OMNI_FRAMES_KEEP];
        omni_frames_view(&fr, f);
        answer(z, f, fr.n > fr.kept ? fr.kept : fr.n);
        omni_frames_close(&fr);
    }
}

zap_t *zap_new(void *zctx, loop_t *loop, const router_config_t *cfg, char *err, size_t errsz)
{
    zap_t *z = omni_calloc(1, sizeof *z);
    z->loop = loop;
    z->window_start = omni_mono_ms();
    if (load_keys(z, cfg, err, errsz) != 0) {
        zap_destroy(&z);
        return NULL;
    }
    int zero = 0;
    z->sock = zmq_socket(zctx, ZMQ_REP);
    if (z->sock == NULL || zmq_setsockopt(z->sock, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        zmq_bind(z->sock, ZAP_ENDPOINT) != 0) {
        snprintf(err, errsz, "cannot start the CURVE handler on %s: %s", ZAP_ENDPOINT, zmq_strerror(zmq_errno()));
        if (z->sock != NULL)
            zmq_close(z->sock);
        z->sock = NULL; /* not watched yet */
        zap_destroy(&z);
        return NULL;
    }
    loop_add_socket(loop, z->sock, LOOP_READ, on_request, z);
    return z;
}

void zap_destroy(zap_t **zp)
{
    if (zp == NULL || *zp == NULL)
        return;
    zap_t *z = *zp;
    if (z->sock != NULL) {
        loop_del_socket(z->loop, z->sock);
        zmq_close(z->sock);
    }
    free(z->keys);
    free(z);
    *zp = NULL;
}

size_t zap_allowed(const zap_t *z) { return z->n_keys; }
const zap_stats_t *zap_stats(const zap_t *z) { return &z->stats; }
