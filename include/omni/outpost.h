/* An outpost channel (DOMAIN.md): one the business does not staff. Its connector answers a customer who writes
 * there with a pointer to a covered channel, once per sender per window, and the message still goes to the
 * router (docs/routing.md "Outpost channels"). This is the memory of who was pointed when: a small state file
 * in the connector's state directory, rewritten atomically (omni_state_write) each time somebody is pointed, so
 * a restart does not point everybody again. Senders are kept while their window lasts, at most max of them
 * (OMNI_OUTPOST_MAX in the connectors): past that the one pointed longest ago is forgotten (and pointed again
 * when they next write). */
#ifndef OMNI_OUTPOST_H
#define OMNI_OUTPOST_H

#include <stdint.h>
#include "omni/connector.h"

#define OMNI_OUTPOST_MAX 20000 /* senders remembered; a line each in the state file, under OMNI_STATE_MAX */

typedef struct omni_outpost omni_outpost_t;

/* Reads the state file dir/name (a connector's omni_connector_state_dir; missing: nobody pointed yet; a line
 * that is not "MS SENDER", in time order, is skipped with a warning; a file that cannot be read at all, over
 * OMNI_STATE_MAX or not a file, is logged and nobody is remembered: it never stops the connector). dir and name
 * are borrowed and must outlive it. Never NULL: nothing here can fail. */
omni_outpost_t *omni_outpost_new(const char *dir, const char *name, int64_t window_ms, size_t max);
/* Frees and sets *o = NULL; NULL and *o == NULL are fine. */
void omni_outpost_destroy(omni_outpost_t **o);

/* Whether sender (borrowed; its identity as the channel writes it, no spaces or newlines) is to be pointed
 * now: 1 when nobody pointed them within the window before now_ms (wall clock); they are then recorded as
 * pointed now and the file saved (a save that fails is logged and the pointer still goes: at worst they get
 * a second one after a restart). 0 when they were pointed within the window. A time kept from ahead of now_ms
 * (the wall clock stepped back since) is read as now_ms. */
int omni_outpost_claim(omni_outpost_t *o, const char *sender, int64_t now_ms);

/* Whether claim would point sender now (1) or not (0), recording nothing: a connector that must make its
 * message durable before it records the pointer (omni-sms commits first) asks this, then commits, then claims. */
int omni_outpost_due(omni_outpost_t *o, const char *sender, int64_t now_ms);

/* Forgets that sender was pointed (the pointer could not be sent): their next message claims again. */
void omni_outpost_forget(omni_outpost_t *o, const char *sender);

#endif
