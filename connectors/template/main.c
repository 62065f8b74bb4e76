/* omni-template: everything a connector's main() needs is the runtime (include/omni/connector.h). */
#include "template.h"

int main(int argc, char **argv)
{
    return omni_connector_main(&template_connector, argc, argv);
}
