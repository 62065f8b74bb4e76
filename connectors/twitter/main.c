/* omni-twitter: everything a connector's main() needs is the runtime (include/omni/connector.h). */
#include "twitter.h"

int main(int argc, char **argv)
{
    return omni_connector_main(&twitter_connector, argc, argv);
}
