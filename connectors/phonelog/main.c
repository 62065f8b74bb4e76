/* omni-phonelog: the runtime (include/omni/connector.h) runs the phone-log connector (phonelog.c). */
#include "phonelog.h"

int main(int argc, char **argv)
{
    return omni_connector_main(&phonelog_connector, argc, argv);
}
