/* omni-twitter: mentions and direct messages of one X account, polled over the X API v2, handed to the
 * router on channel "twitter" (docs/connectors.md "omni-twitter"). */
#ifndef OMNI_TWITTER_H
#define OMNI_TWITTER_H

#include "omni/connector.h"

/* The definition handed to the runtime (program omni-twitter, channel twitter). */
extern const omni_connector_def_t twitter_connector;

#endif
