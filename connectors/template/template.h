/* The template connector: the smallest complete connector, to copy when writing a new one.
 * docs/connectors.md walks through it. */
#ifndef OMNI_TEMPLATE_H
#define OMNI_TEMPLATE_H

#include "omni/connector.h"

/* The definition handed to the runtime (program omni-template, channel x-template). */
extern const omni_connector_def_t template_connector;

#endif
