/* omni-sms: the runtime (include/omni/connector.h) runs the Twilio webhook connector (sms.c). */
#include "sms.h"

int main(int argc, char **argv)
{
    return omni_connector_main(&sms_connector, argc, argv);
}
