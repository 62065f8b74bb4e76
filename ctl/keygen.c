/* omnictl keygen NAME: a CURVE key pair for OMNI/1 over TCP, as two files (omni/curve.h): NAME.key, the
 * secret (mode 0600; give it to the one process it identifies), and NAME.pub, the public key (give it to
 * the other side: a connector's goes into the router's router.curve.allowed_keys, the router's into each
 * connector's router.server_public_key). Prints the public key and its fingerprint, the short name the
 * router's log uses for a key. Needs no configuration and no Redis. */
#include <stdio.h>

#include "ctl.h"
#include "omni/curve.h"

int ctl_keygen(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '\0' || argv[1][0] == '-') {
        fprintf(stderr, "usage: omnictl keygen NAME   (writes NAME.key and NAME.pub)\n");
        return 2;
    }
    char pub[OMNI_CURVE_Z85_LEN + 1], fp[OMNI_CURVE_FP_LEN + 1], err[512];
    if (omni_curve_keygen(argv[1], pub, err, sizeof err) != 0) {
        fprintf(stderr, "omnictl: keygen: %s\n", err);
        return 1;
    }
    omni_curve_fingerprint(pub, fp);
    printf("wrote %s.key (secret, mode 0600) and %s.pub\npublic key: %s\nfingerprint: %s\n", argv[1], argv[1], pub,
           fp);
    return 0;
}
