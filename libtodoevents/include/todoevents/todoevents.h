/* libtodoevents — umbrella header: include this one.
 *
 * Link with `pkg-config --cflags --libs todoevents` or, in CMake,
 * find_package(todoevents) and target_link_libraries(x todoevents::todoevents). */
#ifndef TODOEVENTS_H
#define TODOEVENTS_H

#include "todoevents/common.h"
#include "todoevents/version.h"
#include "todoevents/error.h"
#include "todoevents/problems.h"
#include "todoevents/datetime.h"
#include "todoevents/task.h"
#include "todoevents/recurrence.h"
#include "todoevents/cloudevent.h"
#include "todoevents/event_catalog.h"
#include "todoevents/kafka.h"
#include "todoevents/jwt.h"

#endif
