/* omni-sms: Twilio-compatible inbound SMS/MMS webhooks (docs/connectors.md "omni-sms"). */
#ifndef OMNI_SMS_H
#define OMNI_SMS_H

#include "omni/connector.h"

/* The definition handed to the runtime (program omni-sms, channel sms). */
extern const omni_connector_def_t sms_connector;

#endif
