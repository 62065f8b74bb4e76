/* Near-duplicate detection for folding: the same customer sending near-identical text over several
 * channels (or in a burst) within policy folding.window is recorded as folded into the first message's
 * conversation and routed no further. The text's fingerprint is a 64-bit SimHash over character 4-grams
 * of a normalized text (ASCII case folded, every run of spaces and punctuation one space), so spacing,
 * case and punctuation barely move it; ingest.lua compares fingerprints bit by bit. */
#ifndef OMNI_DAEMON_FOLD_H
#define OMNI_DAEMON_FOLD_H

#include <stdint.h>

#define FOLD_MIN_CHARS 12 /* shorter normalized texts ("ok", "thanks") never fold: too many are alike */

/* The fingerprint of text, or 0 when it is too short to fold. */
uint64_t fold_hash(const char *text);
/* How many of 64 bits two fingerprints may differ in and still count as near-identical at a similarity
 * (percent, 50..100): 100 -> 0 bits, 90 -> 6. */
int fold_max_bits(int similarity_pct);
/* Number of differing bits. */
int fold_distance(uint64_t a, uint64_t b);

#endif
