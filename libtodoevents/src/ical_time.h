/* Private: civil time <-> libical (datetime.c); for modules using libical. */
#ifndef TODOEVENTS_ICAL_TIME_H
#define TODOEVENTS_ICAL_TIME_H

#include <libical/ical.h>

#include "todoevents/datetime.h"

/* A floating (zone-less, not all-day) libical time with c's fields;
 * sub-second digits are dropped (libical has none). */
struct icaltimetype te__civil_to_ical(const te_civil_t *c);

#endif
