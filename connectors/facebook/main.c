/* omni-facebook: the runtime (include/omni/connector.h) runs the Messenger webhook connector (facebook.c). */
#include "facebook.h"

int main(int argc, char **argv)
{
    return omni_connector_main(&facebook_connector, argc, argv);
}
