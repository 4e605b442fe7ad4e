/* kaygraph/kaygraph.h - everything: the engine, its observer interface,
 * monitoring and the bundled backends. */
#ifndef KAYGRAPH_KAYGRAPH_H
#define KAYGRAPH_KAYGRAPH_H

#include "version.h"
#include "error.h"
#include "node.h"
#include "observer.h"
#include "backend.h"
#include "backends.h"
#include "monitor.h"

#endif
