/* omni-facebook: Messenger Platform webhooks (docs/connectors.md "omni-facebook"). */
#ifndef OMNI_FACEBOOK_H
#define OMNI_FACEBOOK_H

#include "omni/connector.h"

/* The definition handed to the runtime (program omni-facebook, channel facebook). */
extern const omni_connector_def_t facebook_connector;

#endif
