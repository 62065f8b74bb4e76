/* See transport.h. ZeroMQ takes a socket's security options when an endpoint is bound, so ipc endpoints are
 * bound first, with the NULL mechanism, then CURVE is switched on for the tcp ones. */
#include "transport.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "omni/curve.h"
#include "omni/log.h"

#define ZAP_DOMAIN "omnirouter"

/* Binds an ipc endpoint and gives its socket file the configured mode and owner. The umask is narrowed
 * around the bind so the file never exists with wider access than asked, even for a moment. */
static int bind_ipc(void *sock, const char *ep, const router_config_t *cfg, char *err, size_t errsz)
{
    mode_t mode = (mode_t)strtol(cfg->router.ipc_mode, NULL, 8); /* checked by config.c */
    uid_t uid = (uid_t)-1;
    gid_t gid = (gid_t)-1;
    if (cfg->router.ipc_owner != NULL) {
        struct passwd *pw = getpwnam(cfg->router.ipc_owner);
        if (pw == NULL) {
            snprintf(err, errsz, "router.ipc_owner: no user named %s", cfg->router.ipc_owner);
            return -1;
        }
        uid = pw->pw_uid;
    }
    if (cfg->router.ipc_group != NULL) {
        struct group *gr = getgrnam(cfg->router.ipc_group);
        if (gr == NULL) {
            snprintf(err, errsz, "router.ipc_group: no group named %s", cfg->router.ipc_group);
            return -1;
        }
        gid = gr->gr_gid;
    }
    mode_t old = umask(0777 & ~mode);
    int rc = zmq_bind(sock, ep);
    int e = errno;
    umask(old);
    if (rc != 0) {
        snprintf(err, errsz, "cannot bind %s: %s", ep, zmq_strerror(e));
        return -1;
    }
    const char *path = ep + 6;
    if (path[0] == '@') /* Linux's abstract namespace: no file, so no permissions to set */
        return 0;
    if (chmod(path, mode) != 0) {
        snprintf(err, errsz, "router.ipc_mode: cannot chmod %s: %s", path, strerror(errno));
        return -1;
    }
    if ((uid != (uid_t)-1 || gid != (gid_t)-1) && chown(path, uid, gid) != 0) {
        snprintf(err, errsz, "router.ipc_%s: cannot give %s to %s: %s", uid != (uid_t)-1 ? "owner" : "group", path,
                 uid != (uid_t)-1 ? cfg->router.ipc_owner : cfg->router.ipc_group, strerror(errno));
        return -1;
    }
    return 0;
}

/* Switches CURVE on for the endpoints bound from now on, with the router's secret key, and logs the public
 * key connectors need (router.server_public_key). */
static int curve_on(void *sock, const router_config_t *cfg, size_t allowed, char *err, size_t errsz)
{
    char secret[OMNI_CURVE_Z85_LEN + 1], pub[OMNI_CURVE_Z85_LEN + 1], fp[OMNI_CURVE_FP_LEN + 1];
    if (!zmq_has("curve")) {
        snprintf(err, errsz, "router.curve.secret_key_file: this libzmq has no CURVE support");
        return -1;
    }
    if (omni_curve_read_secret(cfg->router.curve.secret_key_file, secret, "router.curve.secret_key_file", err,
                               errsz) != 0)
        return -1;
    int one = 1;
    int rc = omni_curve_public_of(secret, pub) == 0 && zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one) == 0 &&
                     zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, secret, OMNI_CURVE_Z85_LEN + 1) == 0 &&
                     zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN, strlen(ZAP_DOMAIN)) == 0
                 ? 0
                 : -1;
    explicit_bzero(secret, sizeof secret);
    if (rc != 0) {
        snprintf(err, errsz, "router.curve.secret_key_file: %s: %s", cfg->router.curve.secret_key_file,
                 zmq_strerror(zmq_errno()));
        return -1;
    }
    omni_curve_fingerprint(pub, fp);
    omni_info("ingest: tcp endpoints use CURVE; the router's public key is %s (fingerprint %s); %zu connector "
              "keys allowed", pub, fp, allowed);
    return 0;
}

int transport_bind(void *zctx, void *sock, loop_t *loop, const router_config_t *cfg, zap_t **zap, char *err,
                   size_t errsz)
{
    *zap = NULL;
    bool tcp = false;
    for (size_t i = 0; i < cfg->router.n_ingest; i++) {
        const char *ep = cfg->router.ingest[i];
        if (strncmp(ep, "ipc://", 6) != 0)
            tcp = true;
        else if (bind_ipc(sock, ep, cfg, err, errsz) != 0)
            return -1;
    }
    if (!tcp)
        return 0;
    if (cfg->router.curve.secret_key_file != NULL) {
        /* the handler first: a handshake that finds none is let through by ZeroMQ */
        if ((*zap = zap_new(zctx, loop, cfg, err, errsz)) == NULL)
            return -1;
        if (curve_on(sock, cfg, zap_allowed(*zap), err, errsz) != 0) {
            zap_destroy(zap);
            return -1;
        }
    }
    for (size_t i = 0; i < cfg->router.n_ingest; i++) {
        const char *ep = cfg->router.ingest[i];
        if (strncmp(ep, "ipc://", 6) == 0)
            continue;
        if (zmq_bind(sock, ep) != 0) {
            snprintf(err, errsz, "cannot bind %s: %s", ep, zmq_strerror(errno));
            zap_destroy(zap);
            return -1;
        }
        if (*zap == NULL)
            omni_warn("ingest: %s is in clear and admits anyone who can reach it (router.insecure_tcp)", ep);
    }
    return 0;
}
